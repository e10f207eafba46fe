//! The authorization code flow with PKCE, login sessions and consent (docs/REFERENCE.md §3–§5,
//! RFC 6749 §4.1, OAuth 2.1 §4.1, RFC 7636, RFC 9207), driven as a browser would.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, REDIRECT, authorize_url, authorize_with_consent, input, location, log_in,
    params, pkce, redeem, user, web_client,
};
use crate::helpers::{spawn_app, verify_with_jwks};

#[tokio::test]
async fn the_full_flow_logs_in_consents_and_exchanges_the_code_for_tokens() {
    let app = spawn_app().await;
    let client = web_client(&app, "Photo Printer", "openid profile offline_access").await;
    let user_id = user(&app, "alice").await;
    let (verifier, challenge) = pkce();
    let browser = Browser::new();

    let first = browser
        .get(&authorize_url(&app, &client.0, &challenge, "openid profile offline_access", "xyz"))
        .await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    assert!(location(&first).expect("location").contains("/login?return_to="));
    let login = browser.follow(&app, first).await;
    let login_page = login.text().await.expect("page");
    assert!(
        login_page.contains(r#"<form method="post""#) && login_page.contains(r#"name="username""#)
    );
    assert!(
        login_page.contains(r#"name="password""#) && login_page.contains(r#"name="csrf_token""#)
    );
    let after_login =
        browser.follow(&app, log_in(&browser, &app, &login_page, "alice", PASSWORD).await).await;
    let consent = after_login.text().await.expect("consent page");
    assert!(consent.contains("Photo Printer"));
    assert!(
        consent.contains("Your name and basic profile information"),
        "each scope with its description"
    );
    assert!(
        consent.contains(r#"name="decision" value="allow""#)
            && consent.contains(r#"name="decision" value="deny""#)
    );
    let allowed = browser
        .post(
            &app.url("/consent"),
            &[
                ("csrf_token", &input(&consent, "csrf_token").expect("csrf")),
                ("request", &input(&consent, "request").expect("request")),
                ("decision", "allow"),
            ],
        )
        .await;

    assert_eq!(allowed.status(), StatusCode::SEE_OTHER);
    let back = location(&allowed).expect("redirect to the client");
    assert!(back.starts_with(REDIRECT));
    let query = params(&back);
    assert_eq!(query["state"], "xyz");
    assert_eq!(query["iss"], app.issuer);
    let tokens: Value =
        redeem(&app, &client, &query["code"], &verifier).await.json().await.expect("JSON");
    let (_, claims) =
        verify_with_jwks(&app, tokens["access_token"].as_str().expect("access token"), &app.issuer)
            .await;
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["client_id"], client.0.as_str());
    assert_eq!(claims["scope"], "openid profile offline_access");
    assert!(claims["auth_time"].is_i64());
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token for offline_access");
    let header = jsonwebtoken::decode_header(refresh).expect("JWT");
    assert_eq!(header.typ.as_deref(), Some("rt+jwt"));
    let refresh_claims =
        jsonwebtoken::dangerous::insecure_decode_claims::<Value>(refresh).expect("claims");
    assert_eq!(refresh_claims["aud"], app.issuer.as_str());
    assert_eq!(refresh_claims["client_id"], client.0.as_str());
    assert_eq!(refresh_claims["sub"], user_id.as_str());
}

#[tokio::test]
async fn a_grant_that_covers_the_request_skips_the_consent_page() {
    let app = spawn_app().await;
    let client = web_client(&app, "Repeat", "openid profile").await;
    user(&app, "bob").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let first = authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid profile", "1"),
        "bob",
    )
    .await;
    assert!(location(&first).expect("code").starts_with(REDIRECT));

    let again = browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "2")).await;

    let back = location(&again).expect("straight back to the client");
    assert!(back.starts_with(REDIRECT), "{back}");
    assert!(params(&back).contains_key("code"));
}

#[tokio::test]
async fn client_and_redirect_uri_errors_render_a_page_and_never_redirect() {
    let app = spawn_app().await;
    let client = web_client(&app, "Errors", "openid").await;
    let (_, challenge) = pkce();
    let base = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let cases = [
        base.replace(&client.0, "unknown-client"),
        base.replace("app.example%2Fcb", "evil.example%2Fcb"),
        base.replace("app.example%2Fcb", "app.example%2Fcb%2F"),
        format!("{base}&client_id={}", client.0),
        app.url("/authorize?response_type=code"),
    ];
    for url in cases {
        let response = Browser::new().get(&url).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(location(&response).is_none(), "{url} must not redirect");
        assert!(
            response.headers()["content-type"].to_str().expect("ascii").starts_with("text/html")
        );
    }
}

#[tokio::test]
async fn other_errors_redirect_with_error_state_and_iss() {
    let app = spawn_app().await;
    let client = web_client(&app, "Errors", "openid").await;
    let (_, challenge) = pkce();
    let base = authorize_url(&app, &client.0, &challenge, "openid", "st<ate");
    let cases = [
        (base.replace("response_type=code", "response_type=token"), "unsupported_response_type"),
        (
            base.replace("&code_challenge_method=S256", "&code_challenge_method=plain"),
            "invalid_request",
        ),
        (base.replace("&code_challenge_method=S256", ""), "invalid_request"),
        (
            base.replace(&format!("code_challenge={challenge}"), "code_challenge=short"),
            "invalid_request",
        ),
        (base.replace(&format!("&code_challenge={challenge}"), ""), "invalid_request"),
        (base.replace("scope=openid", "scope=openid+admin"), "invalid_scope"),
        (base.replace("scope=openid", "scope=unheard-of"), "invalid_scope"),
        (format!("{base}&scope=openid"), "invalid_request"),
    ];
    for (url, error) in cases {
        let response = Browser::new().get(&url).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{url}");
        let query = params(&location(&response).expect("redirect"));
        assert_eq!(query["error"], error, "{url}");
        assert_eq!(query["iss"], app.issuer);
        if error != "invalid_request" || !url.ends_with("&scope=openid") {
            assert_eq!(query.get("state").map(String::as_str), Some("st<ate"), "{url}");
        }
    }
}

#[tokio::test]
async fn a_client_with_one_redirect_uri_may_omit_it_and_loopback_matches_any_port() {
    let app = spawn_app().await;
    let client = app
        .create_client(json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "openid"}))
        .await;
    let id = client["client_id"].as_str().expect("id");
    let (_, challenge) = pkce();
    let common = format!(
        "response_type=code&client_id={id}&scope=openid&code_challenge={challenge}&code_challenge_method=S256"
    );

    let omitted = Browser::new().get(&app.url(&format!("/authorize?{common}"))).await;
    let other_port =
        Browser::new()
            .get(&app.url(&format!(
                "/authorize?{common}&redirect_uri=http%3A%2F%2F127.0.0.1%3A53211%2Fcb"
            )))
            .await;
    let other_path = Browser::new()
        .get(&app.url(&format!(
            "/authorize?{common}&redirect_uri=http%3A%2F%2F127.0.0.1%3A53211%2Fother"
        )))
        .await;

    assert!(location(&omitted).expect("to login").contains("/login"));
    assert!(location(&other_port).expect("to login").contains("/login"));
    assert_eq!(other_path.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deny_sends_access_denied_back_and_records_nothing() {
    let app = spawn_app().await;
    let client = web_client(&app, "Denied", "openid").await;
    let user_id = user(&app, "carol").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let login = browser
        .follow(
            &app,
            browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "s1")).await,
        )
        .await;
    let page = login.text().await.expect("page");
    let consent = browser
        .follow(&app, log_in(&browser, &app, &page, "carol", PASSWORD).await)
        .await
        .text()
        .await
        .expect("consent");

    let denied = browser
        .post(
            &app.url("/consent"),
            &[
                ("csrf_token", &input(&consent, "csrf_token").expect("csrf")),
                ("request", &input(&consent, "request").expect("req")),
                ("decision", "deny"),
            ],
        )
        .await;

    let query = params(&location(&denied).expect("redirect"));
    assert_eq!(query["error"], "access_denied");
    assert_eq!(query["state"], "s1");
    let grants: Value = app
        .admin(reqwest::Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert!(grants["items"].as_array().expect("items").is_empty());
}

#[tokio::test]
async fn login_and_consent_posts_without_a_valid_csrf_token_are_refused_and_create_nothing() {
    let app = spawn_app().await;
    let client = web_client(&app, "Csrf", "openid").await;
    let user_id = user(&app, "dave").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let login = browser
        .follow(&app, browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "s")).await)
        .await;
    let page = login.text().await.expect("page");
    let return_to = input(&page, "return_to").expect("return_to");

    for token in ["", "forged"] {
        let forged = browser
            .post(
                &app.url("/login"),
                &[
                    ("username", "dave"),
                    ("password", PASSWORD),
                    ("csrf_token", token),
                    ("return_to", &return_to),
                ],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
        assert!(forged.headers().get("set-cookie").is_none(), "no session is created");
    }
    let stranger = Browser::new();
    let stolen_token = input(&page, "csrf_token").expect("csrf");
    let cross_site = stranger
        .post(
            &app.url("/login"),
            &[
                ("username", "dave"),
                ("password", PASSWORD),
                ("csrf_token", &stolen_token),
                ("return_to", &return_to),
            ],
        )
        .await;
    assert_eq!(cross_site.status(), StatusCode::BAD_REQUEST, "a token is bound to its own browser");

    let consent = browser
        .follow(&app, log_in(&browser, &app, &page, "dave", PASSWORD).await)
        .await
        .text()
        .await
        .expect("consent");
    let request = input(&consent, "request").expect("request");
    let forged_consent = browser
        .post(
            &app.url("/consent"),
            &[("csrf_token", "forged"), ("request", &request), ("decision", "allow")],
        )
        .await;

    assert_eq!(forged_consent.status(), StatusCode::BAD_REQUEST);
    assert!(location(&forged_consent).is_none());
    let grants: Value = app
        .admin(reqwest::Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert!(grants["items"].as_array().expect("items").is_empty(), "no grant was recorded");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_user_look_the_same() {
    let app = spawn_app().await;
    user(&app, "erin").await;
    let browser = Browser::new();
    let page = browser.get(&app.url("/login")).await.text().await.expect("page");

    let wrong = log_in(&browser, &app, &page, "erin", "not the password").await;
    let unknown = log_in(&browser, &app, &page, "nobody-at-all", "not the password").await;

    assert_eq!(wrong.status(), unknown.status());
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let scrub = |html: String, name: &str| html.replace(name, "USER");
    let wrong = scrub(wrong.text().await.expect("page"), "erin");
    let unknown = scrub(unknown.text().await.expect("page"), "nobody-at-all");
    assert_eq!(wrong, unknown);
    assert!(wrong.contains("Wrong username or password."));
}

#[tokio::test]
async fn a_disabled_user_cannot_log_in_and_their_codes_stop_working() {
    let app = spawn_app().await;
    let client = web_client(&app, "Disable", "openid").await;
    let user_id = user(&app, "frank").await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid", "s"),
        "frank",
    )
    .await;
    let code = params(&location(&back).expect("code"))["code"].clone();

    let disabled = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/users/{user_id}"),
            Some(json!({"username": "frank", "disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), 200);

    let exchange: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    assert_eq!(exchange["error"], "invalid_grant");
    let page = Browser::new().get(&app.url("/login")).await.text().await.expect("page");
    let fresh = Browser::new();
    let page2 = fresh.get(&app.url("/login")).await.text().await.expect("page");
    let refused = log_in(&fresh, &app, &page2, "frank", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(page.contains("Sign in"));
    let session_gone =
        browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "s")).await;
    assert!(
        location(&session_gone).expect("redirect").contains("/login"),
        "the disabled user's session ended"
    );
}

#[tokio::test]
async fn the_session_cookie_is_opaque_http_only_lax_and_new_at_every_login() {
    let app = spawn_app().await;
    user(&app, "gina").await;
    let browser = Browser::new();
    let first = session_cookie_of_login(&app, &browser, "gina").await;
    let second = session_cookie_of_login(&app, &browser, "gina").await;

    for cookie in [&first, &second] {
        assert!(cookie.contains("HttpOnly"));
        assert!(cookie.contains("SameSite=Lax"));
        assert!(!cookie.contains("Secure"), "http issuer");
        let value =
            cookie.split(';').next().expect("pair").trim_start_matches("castellan_session=");
        assert_eq!(value.len(), 43, "256 random bits");
        assert!(!value.contains('.'), "opaque, not a token");
    }
    assert_ne!(first.split(';').next(), second.split(';').next(), "a new id at every login");
    let account = browser.get(&app.url("/account")).await;
    assert_eq!(account.status(), 200);
}

#[tokio::test]
async fn anything_but_a_live_session_id_in_the_cookie_is_ignored() {
    let app = spawn_app().await;
    let (id, secret) = app.admin.clone();
    let token = app.client_token(&id, &secret, None).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    for value in [token.as_str(), "garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let response = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
            .get(app.url("/account"))
            .header("cookie", format!("castellan_session={value}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(location(&response).expect("to login").contains("/login"));
    }
}

#[tokio::test]
async fn every_page_has_the_security_headers_and_escapes_what_it_reflects() {
    let app = spawn_app().await;
    let client = web_client(&app, "<script>alert('x')</script>", "openid").await;
    user(&app, "hank").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let login = browser
        .follow(&app, browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "s")).await)
        .await;
    let login_page = login.text().await.expect("page");
    let consent =
        browser.follow(&app, log_in(&browser, &app, &login_page, "hank", PASSWORD).await).await;
    let hinted = browser.get(&app.url("/login?login_hint=%22%3E%3Cimg%20src%3Dx%3E")).await;
    let error = browser.get(&app.url("/authorize?client_id=%3Cb%3E")).await;
    let account = browser.get(&app.url("/account")).await;

    for response in [consent, hinted, error, account] {
        let headers = response.headers().clone();
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("http"), "no third-party sources");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        let html = response.text().await.expect("page");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("src=\"http"), "no third-party assets");
    }
}

#[tokio::test]
async fn the_account_page_lists_grants_and_revokes_one_with_session_and_csrf() {
    let app = spawn_app().await;
    let client = web_client(&app, "Listed App", "openid profile").await;
    let user_id = user(&app, "ivy").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid profile", "s"),
        "ivy",
    )
    .await;

    let page = browser.get(&app.url("/account")).await.text().await.expect("page");
    assert!(page.contains("Listed App") && page.contains("openid profile"));
    let grants: Value = app
        .admin(reqwest::Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let grant_id = grants["items"][0]["id"].as_str().expect("grant").to_owned();
    let revoke_url = app.url(&format!("/account/grants/{grant_id}/revoke"));

    let forged = browser.post(&revoke_url, &[("csrf_token", "nope")]).await;
    let other_browser = Browser::new()
        .post(&revoke_url, &[("csrf_token", &input(&page, "csrf_token").expect("csrf"))])
        .await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    assert_eq!(other_browser.status(), StatusCode::BAD_REQUEST);
    let revoked = browser
        .post(&revoke_url, &[("csrf_token", &input(&page, "csrf_token").expect("csrf"))])
        .await;

    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    let after: Value = app
        .admin(reqwest::Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert!(after["items"].as_array().expect("items").is_empty());
}

#[tokio::test]
async fn admins_list_and_revoke_grants() {
    let app = spawn_app().await;
    let client = web_client(&app, "Admin Revoked", "openid").await;
    let user_id = user(&app, "jack").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid", "s"),
        "jack",
    )
    .await;
    let grants: Value = app
        .admin(reqwest::Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let grant = &grants["items"][0];
    assert_eq!(grant["client_id"], client.0.as_str());
    assert_eq!(grant["scope"], "openid");

    let deleted = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/grants/{}", grant["id"].as_str().expect("id")),
            None,
        )
        .await;
    let again = app
        .admin(
            reqwest::Method::DELETE,
            &format!("/admin/grants/{}", grant["id"].as_str().expect("id")),
            None,
        )
        .await;

    assert_eq!((deleted.status().as_u16(), again.status().as_u16()), (204, 404));
    let next = browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "s")).await;
    assert!(location(&next).expect("redirect").contains("/consent"), "consent is asked again");
}

async fn session_cookie_of_login(
    app: &crate::helpers::TestApp,
    browser: &Browser,
    username: &str,
) -> String {
    let page = browser.get(&app.url("/login")).await.text().await.expect("page");
    let response = log_in(browser, app, &page, username, PASSWORD).await;
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("castellan_session="))
        .expect("a session cookie")
}
