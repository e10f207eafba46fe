//! The device authorization grant (RFC 8628): a device asks, its user approves at `/device`
//! in a browser, the device polls `/token`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::{Browser, PASSWORD, input, location, user};
use crate::helpers::{TestApp, join_all, jwt_claims, spawn_app, spawn_app_with};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public client for a device (a command-line tool) allowed `scope`.
pub async fn device_client(app: &TestApp, scope: &str) -> String {
    let client = app
        .create_client(json!({
            "client_name": "Terminal Tool",
            "grant_types": [DEVICE_GRANT, "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": scope,
        }))
        .await;
    client["client_id"].as_str().expect("id").to_owned()
}

/// `POST /device_authorization` for a public client: status and body.
pub async fn start(app: &TestApp, client_id: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![("client_id", client_id)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = app
        .http
        .post(app.url("/device_authorization"))
        .form(&form)
        .send()
        .await
        .expect("device authorization");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// One poll of `/token`: status and body.
pub async fn poll(app: &TestApp, client_id: &str, device_code: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", client_id),
        ])
        .send()
        .await
        .expect("poll");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// Signs `username` in from `/device?user_code=…` and returns the code-entry page.
pub(crate) async fn sign_in_at_device(
    browser: &Browser,
    app: &TestApp,
    complete: &str,
    username: &str,
) -> String {
    let login = browser.follow(app, browser.get(complete).await).await;
    let page = login.text().await.expect("login page");
    let csrf = input(&page, "csrf_token").expect("csrf_token");
    let return_to = input(&page, "return_to").expect("return_to");
    assert!(return_to.starts_with("/device?user_code="), "{return_to}");
    let form = [
        ("username", username),
        ("password", PASSWORD),
        ("csrf_token", csrf.as_str()),
        ("return_to", return_to.as_str()),
    ];
    let entry = browser.follow(app, browser.post(&app.url("/login"), &form).await).await;
    assert_eq!(entry.status(), 200);
    entry.text().await.expect("entry page")
}

/// Types `user_code` into the entry form of `page`: the response (a consent page when found).
pub(crate) async fn look_up(
    browser: &Browser,
    app: &TestApp,
    page: &str,
    user_code: &str,
) -> reqwest::Response {
    let csrf = input(page, "csrf_token").expect("csrf_token");
    browser.post(&app.url("/device"), &[("csrf_token", &csrf), ("user_code", user_code)]).await
}

/// Answers the consent page `page` with `decision`: the resulting page's status and text.
pub(crate) async fn answer(
    browser: &Browser,
    app: &TestApp,
    page: &str,
    decision: &str,
) -> (u16, String) {
    let csrf = input(page, "csrf_token").expect("csrf_token");
    let user_code = input(page, "user_code").expect("user_code");
    let lookup = input(page, "lookup").expect("lookup");
    let response = browser
        .post(
            &app.url("/device"),
            &[
                ("csrf_token", csrf.as_str()),
                ("user_code", &user_code),
                ("lookup", &lookup),
                ("decision", decision),
            ],
        )
        .await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

/// The user signs in at the complete verification URI, confirms the code and decides.
pub async fn decide(app: &TestApp, started: &Value, username: &str, decision: &str) -> String {
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = sign_in_at_device(&browser, app, complete, username).await;
    let typed = input(&entry, "user_code").expect("prefilled code");
    assert_eq!(typed, started["user_code"].as_str().expect("user_code"), "prefilled");
    let consent = look_up(&browser, app, &entry, &typed).await;
    assert_eq!(consent.status(), 200);
    let consent = consent.text().await.expect("consent page");
    assert!(consent.contains("Terminal Tool"), "the client is named: {consent}");
    let (status, page) = answer(&browser, app, &consent, decision).await;
    assert_eq!(status, 200, "{page}");
    page
}

#[tokio::test]
async fn discovery_names_the_device_authorization_endpoint_and_grant() {
    let app = spawn_app().await;
    let metadata: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert_eq!(metadata["device_authorization_endpoint"], app.url("/device_authorization"));
    let grants = metadata["grant_types_supported"].as_array().expect("grants");
    assert!(grants.contains(&json!(DEVICE_GRANT)), "{grants:?}");
}

#[tokio::test]
async fn a_device_gets_the_code_flows_tokens_once_its_user_approves() {
    let app = spawn_app().await;
    let client_id = device_client(&app, "openid profile offline_access").await;
    user(&app, "dora").await;
    let (status, started) = start(&app, &client_id, Some("openid profile offline_access")).await;
    assert_eq!(status, 200, "{started}");
    let user_code = started["user_code"].as_str().expect("user_code");
    assert_eq!(user_code.len(), 9);
    assert_eq!(&user_code[4..5], "-");
    assert_eq!(started["verification_uri"], app.url("/device"));
    assert_eq!(started["expires_in"], 600);
    assert_eq!(started["interval"], 5);
    let device_code = started["device_code"].as_str().expect("device_code");

    let (status, pending) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, pending["error"].as_str()), (400, Some("authorization_pending")));

    let done = decide(&app, &started, "dora", "allow").await;
    assert!(done.contains("Done"), "{done}");

    let (status, tokens) = poll(&app, &client_id, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile offline_access");
    let id_token = jwt_claims(tokens["id_token"].as_str().expect("an ID token with openid"));
    assert_eq!(id_token["aud"], client_id.as_str());
    let access = jwt_claims(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(access["sub"], id_token["sub"]);
    assert!(access["gid"].is_string(), "tied to the user's grant");
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token with offline_access");
    let refreshed = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", &client_id),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), 200);
    let userinfo = app.userinfo(tokens["access_token"].as_str().expect("access")).await;
    assert_eq!(userinfo.status(), 200);

    // Redeemed once: the device code is used up.
    let (status, again) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn the_approval_is_a_grant_the_user_sees_and_revokes_at_account() {
    let app = spawn_app().await;
    let client_id = device_client(&app, "openid profile").await;
    user(&app, "ada").await;
    let (_, started) = start(&app, &client_id, None).await;
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = sign_in_at_device(&browser, &app, complete, "ada").await;
    let consent = look_up(&browser, &app, &entry, started["user_code"].as_str().expect("code"))
        .await
        .text()
        .await
        .expect("consent");
    answer(&browser, &app, &consent, "allow").await;
    let (status, tokens) =
        poll(&app, &client_id, started["device_code"].as_str().expect("device_code")).await;
    assert_eq!(status, 200);
    let access = tokens["access_token"].as_str().expect("access");

    let account = browser.get(&app.url("/account")).await.text().await.expect("account");
    assert!(account.contains("Terminal Tool"), "the grant is listed");
    let csrf = input(&account, "csrf_token").expect("csrf");
    let start_at =
        account.find("/account/grants/").expect("a revoke form") + "/account/grants/".len();
    let grant_id: String = account[start_at..].chars().take_while(|c| *c != '/').collect();
    let revoked = browser
        .post(&app.url(&format!("/account/grants/{grant_id}/revoke")), &[("csrf_token", &csrf)])
        .await;
    assert!(revoked.status().is_redirection() || revoked.status().is_success());
    let stopped = crate::helpers::eventually(Duration::from_secs(5), || async {
        app.userinfo(access).await.status() == 401
    })
    .await;
    assert!(stopped, "revoking the grant ends the device's tokens");
}

#[tokio::test]
async fn a_denied_request_answers_access_denied() {
    let app = spawn_app().await;
    let client_id = device_client(&app, "openid").await;
    user(&app, "dan").await;
    let (_, started) = start(&app, &client_id, Some("openid")).await;
    let page = decide(&app, &started, "dan", "deny").await;
    assert!(page.contains("Denied"), "{page}");
    let (status, body) =
        poll(&app, &client_id, started["device_code"].as_str().expect("device_code")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")), "{body}");
}

#[tokio::test]
async fn an_expired_request_answers_expired_token_and_its_code_is_not_valid() {
    let app = spawn_app_with(|s| s.device_code_lifetime = Duration::from_secs(1)).await;
    let client_id = device_client(&app, "openid").await;
    user(&app, "eve").await;
    let (_, started) = start(&app, &client_id, None).await;
    assert_eq!(started["expires_in"], 1);
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = sign_in_at_device(&browser, &app, complete, "eve").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, body) =
        poll(&app, &client_id, started["device_code"].as_str().expect("device_code")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("expired_token")), "{body}");

    let expired =
        look_up(&browser, &app, &entry, started["user_code"].as_str().expect("code")).await;
    assert_eq!(expired.status(), 400);
    let expired = expired.text().await.expect("page");
    let unknown = look_up(&browser, &app, &entry, "ZZZZ-ZZZZ").await.text().await.expect("page");
    let message = |page: &str| {
        page.split("role=\"alert\">")
            .nth(1)
            .map(|m| m.split('<').next().unwrap_or_default().to_owned())
    };
    assert!(message(&expired).is_some(), "{expired}");
    assert_eq!(message(&expired), message(&unknown), "expired and unknown codes get one answer");
}

#[tokio::test]
async fn a_used_code_gets_the_same_answer_as_an_unknown_one() {
    let app = spawn_app().await;
    let client_id = device_client(&app, "openid").await;
    user(&app, "uma").await;
    let (_, started) = start(&app, &client_id, None).await;
    decide(&app, &started, "uma", "allow").await;
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = sign_in_at_device(&browser, &app, complete, "uma").await;
    let used = look_up(&browser, &app, &entry, started["user_code"].as_str().expect("code")).await;
    assert_eq!(used.status(), 400);
    let used = used.text().await.expect("page");
    assert!(used.contains("That code is not valid"), "{used}");
    assert!(!used.contains("Terminal Tool"), "nothing about the request is shown");
}

#[tokio::test]
async fn a_device_polling_too_fast_is_slowed_down_for_good() {
    let app = spawn_app_with(|s| s.device_poll_interval = Duration::from_secs(1)).await;
    let client_id = device_client(&app, "openid").await;
    let (_, started) = start(&app, &client_id, None).await;
    assert_eq!(started["interval"], 1);
    let device_code = started["device_code"].as_str().expect("device_code");
    let (_, first) = poll(&app, &client_id, device_code).await;
    assert_eq!(first["error"], "authorization_pending");
    let (status, second) = poll(&app, &client_id, device_code).await;
    assert_eq!((status, second["error"].as_str()), (400, Some("slow_down")), "{second}");
    // The interval is now 6 s: waiting the original second is still too soon.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, third) = poll(&app, &client_id, device_code).await;
    assert_eq!(third["error"], "slow_down", "the interval grew by 5 s");
}

#[tokio::test]
async fn twenty_concurrent_polls_after_approval_get_exactly_one_token_response() {
    let app = spawn_app().await;
    let other = app.replica().await;
    let client_id = device_client(&app, "openid offline_access").await;
    user(&app, "carl").await;
    let (_, started) = start(&app, &client_id, None).await;
    decide(&app, &started, "carl", "allow").await;
    let device_code = started["device_code"].as_str().expect("device_code");
    let polls = (0..20)
        .map(|i| {
            let replica = if i % 2 == 0 { &app } else { &other };
            poll(replica, &client_id, device_code)
        })
        .collect();
    let answers = join_all(polls).await;
    let issued = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(issued, 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 400);
        assert!(
            ["invalid_grant", "slow_down"].contains(&body["error"].as_str().unwrap_or_default()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn a_wrong_code_guessed_eleven_times_is_refused() {
    let app = spawn_app().await;
    let client_id = device_client(&app, "openid").await;
    user(&app, "gus").await;
    let (_, started) = start(&app, &client_id, None).await;
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = sign_in_at_device(&browser, &app, complete, "gus").await;
    for guess in 0..10 {
        let wrong = look_up(&browser, &app, &entry, &format!("ABCD-{guess:04}")).await;
        assert_eq!(wrong.status(), 400, "guess {guess}");
    }
    let eleventh = look_up(&browser, &app, &entry, "ABCD-9999").await;
    assert_eq!(eleventh.status(), 429);
    assert!(eleventh.headers().contains_key("retry-after"));
    let right = look_up(&browser, &app, &entry, started["user_code"].as_str().expect("code")).await;
    assert_eq!(right.status(), 429, "past the limit, even the right code waits");
}

#[tokio::test]
async fn a_decision_needs_a_code_this_session_looked_up() {
    let app = spawn_app().await;
    let client_id = device_client(&app, "openid").await;
    user(&app, "mal").await;
    user(&app, "vic").await;
    let (_, started) = start(&app, &client_id, None).await;
    let user_code = started["user_code"].as_str().expect("code");
    // The victim looks the code up; the attacker's session posts a decision with the
    // victim's lookup token.
    let victim = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = sign_in_at_device(&victim, &app, complete, "vic").await;
    let consent = look_up(&victim, &app, &entry, user_code).await.text().await.expect("consent");
    let lookup = input(&consent, "lookup").expect("lookup");
    let attacker = Browser::new();
    let attacker_entry = sign_in_at_device(&attacker, &app, complete, "mal").await;
    let csrf = input(&attacker_entry, "csrf_token").expect("csrf");
    let forged = attacker
        .post(
            &app.url("/device"),
            &[
                ("csrf_token", csrf.as_str()),
                ("user_code", user_code),
                ("lookup", &lookup),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 400);
    let (_, body) = poll(&app, &client_id, started["device_code"].as_str().expect("dc")).await;
    assert_eq!(body["error"], "authorization_pending", "nothing was decided");
}

#[tokio::test]
async fn the_device_page_sends_a_stranger_to_sign_in_first() {
    let app = spawn_app().await;
    let response = Browser::new().get(&app.url("/device?user_code=bdwp-hqpk")).await;
    assert_eq!(response.status(), 303);
    let to = location(&response).expect("location");
    assert!(to.contains("/login?return_to=%2Fdevice%3Fuser_code%3DBDWP-HQPK"), "{to}");
    let odd = Browser::new().get(&app.url("/device?user_code=%3Cscript%3E")).await;
    let to = location(&odd).expect("location");
    assert!(to.ends_with("return_to=%2Fdevice"), "a malformed code is dropped: {to}");
}

#[tokio::test]
async fn device_authorization_refuses_clients_without_the_grant_and_scopes_beyond_the_client() {
    let app = spawn_app().await;
    let client_id = device_client(&app, "openid").await;
    let (status, body) = start(&app, &client_id, Some("openid email")).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")));
    let web = app
        .create_client(json!({"client_name": "Web", "redirect_uris": ["https://app.example/cb"], "token_endpoint_auth_method": "none", "scope": "openid"}))
        .await;
    let (status, body) = start(&app, web["client_id"].as_str().expect("id"), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    let (status, body) = poll(&app, web["client_id"].as_str().expect("id"), "whatever").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")));
    let (status, body) = poll(&app, &client_id, "not-a-device-code").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = start(&app, "nobody", None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
}

#[tokio::test]
async fn another_clients_device_code_is_unknown_to_a_client() {
    let app = spawn_app().await;
    let first = device_client(&app, "openid").await;
    let second = device_client(&app, "openid").await;
    user(&app, "fay").await;
    let (_, started) = start(&app, &first, None).await;
    decide(&app, &started, "fay", "allow").await;
    let device_code = started["device_code"].as_str().expect("device_code");
    let (status, body) = poll(&app, &second, device_code).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = poll(&app, &first, device_code).await;
    assert_eq!(status, 200, "the other client's poll took nothing from it");
}
