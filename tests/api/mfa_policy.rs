//! How strong a sign-in must be (docs/REFERENCE.md §3.4): a client's or a user's
//! `require_mfa`, the administrators' setting and `acr_values` step a weaker session up or
//! stop it, never let it through; `amr` and `acr` travel with every token of the sign-in
//! (ID tokens, refreshed ID tokens, device tokens, introspection); administrators see and
//! reset a user's methods.

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationContextClass, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, RedirectUrl, TokenResponse,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, REDIRECT, authorize_url, consent, input, location, log_in, params, pkce,
    redeem, user, web_client_with,
};
use crate::device;
use crate::helpers::{TestApp, jwt_claims, spawn_app, spawn_app_with};
use crate::totp::{
    client_code, code, confirm, enrolled, events, now_step, setup_page, signed_in, submit_code,
    to_code_page,
};

const MFA: &str = "urn:castellan:acr:mfa";
const PWD: &str = "urn:castellan:acr:pwd";

/// A browser signed in with the password alone whose user then set up an authenticator app
/// (so the session is weaker than the user can be): the browser, user id and app secret.
async fn password_session_with_an_app(app: &TestApp, name: &str) -> (Browser, String, Vec<u8>) {
    let (browser, id) = signed_in(app, name).await;
    let (secret, _, html) = setup_page(app, &browser).await;
    let confirmed = confirm(app, &browser, &html, &code(&secret, now_step())).await;
    assert_eq!(confirmed.status(), 200);
    (browser, id, secret)
}

fn amr(claims: &Value) -> Vec<String> {
    serde_json::from_value(claims["amr"].clone()).unwrap_or_default()
}

async fn introspect(app: &TestApp, client: &(String, String), token: &str) -> Value {
    let response = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", token)])
        .send()
        .await
        .expect("introspect");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn a_client_that_requires_mfa_steps_a_password_session_up_with_the_app_code() {
    let app = spawn_app().await;
    let (browser, _, secret) = password_session_with_an_app(&app, "stella").await;
    let scope = "openid offline_access";
    let client = web_client_with(&app, scope, json!({"require_mfa": true})).await;
    let (verifier, challenge) = pkce();

    let asked = browser.get(&authorize_url(&app, &client.0, &challenge, scope, "s")).await;
    assert_eq!(asked.status(), 200, "the session is not let through");
    let html = asked.text().await.expect("page");
    assert!(html.contains("This application asks for a second factor"), "{html}");
    // The enrolment spent this step's code: the next one.
    let accepted = submit_code(&app, &browser, &html, &code(&secret, now_step() + 1)).await;
    let code_for_client = client_code(&app, &browser, accepted).await;
    let tokens: Value =
        redeem(&app, &client, &code_for_client, &verifier).await.json().await.expect("JSON");

    let id = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(amr(&id), ["pwd", "otp", "mfa"]);
    assert_eq!(id["acr"], MFA);
    let access = jwt_claims(tokens["access_token"].as_str().expect("access"));
    assert_eq!(access["acr"], MFA);
    let described = introspect(&app, &client, tokens["access_token"].as_str().expect("at")).await;
    assert_eq!(described["active"], true);
    assert_eq!(described["acr"], MFA);
    assert_eq!(amr(&described), ["pwd", "otp", "mfa"]);
    assert_eq!(described["auth_time"], id["auth_time"]);

    // A refreshed ID token says how the user signed in then (OIDC Core §12.2).
    let refreshed: Value = app
        .token_basic(
            &client.0,
            &client.1,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().expect("rt")),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let again = jwt_claims(refreshed["id_token"].as_str().expect("refreshed id_token"));
    assert_eq!(amr(&again), ["pwd", "otp", "mfa"]);
    assert_eq!(again["acr"], MFA);
    assert_eq!(again["auth_time"], id["auth_time"]);

    // The step-up was a sign-in: recorded with its method.
    let recorded = events(&app).await;
    assert!(
        recorded.iter().any(|e| e["type"] == "sign_in" && e["detail"]["amr"] == "pwd otp mfa"),
        "{recorded:?}"
    );
}

#[tokio::test]
async fn a_password_alone_gets_no_code_where_a_second_factor_is_required_and_no_app_exists() {
    let app = spawn_app().await;
    let (browser, _) = signed_in(&app, "petra").await;
    let client = web_client_with(&app, "openid", json!({"require_mfa": true})).await;
    let (_, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");

    let refused = browser.get(&url).await;
    assert_eq!(refused.status(), 403);
    let html = refused.text().await.expect("page");
    assert!(html.contains("a second factor (an authenticator app) or a passkey"), "{html}");
    assert!(html.contains("href=\"/account\""));
    assert!(input(&html, "pending").is_none(), "no code page without an app");
    // Without any page: back to the client, which learns a sign-in is needed.
    let silent = browser.get(&format!("{url}&prompt=none")).await;
    let back = params(&location(&silent).expect("a redirect to the client"));
    assert_eq!(back["error"], "login_required");
    assert!(!back.contains_key("code"));
    // The account page stays open, to set a method up.
    assert_eq!(browser.get(&app.url("/account")).await.status(), 200);

    // Control: the same session gets a code from a client that requires nothing.
    let relaxed = web_client_with(&app, "openid", json!({})).await;
    let (_, challenge) = pkce();
    let page = browser.get(&authorize_url(&app, &relaxed.0, &challenge, "openid", "s")).await;
    let page = browser.follow(&app, page).await;
    let back = match location(&page) {
        Some(_) => page,
        None => consent(&browser, &app, &page.text().await.expect("consent")).await,
    };
    assert!(params(&location(&back).expect("to the client")).contains_key("code"));
}

#[tokio::test]
async fn a_user_who_must_use_a_second_factor_is_stepped_up_for_every_client() {
    let app = spawn_app().await;
    let (browser, id, secret) = password_session_with_an_app(&app, "ursula").await;
    let current: Value = app
        .admin(Method::GET, &format!("/admin/users/{id}"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(current["require_mfa"], false);
    let mut body = json!({"username": "ursula", "require_mfa": true});
    body["email"] = current["email"].clone();
    body["name"] = current["name"].clone();
    let changed = app.admin(Method::PUT, &format!("/admin/users/{id}"), Some(body)).await;
    assert_eq!(changed.status(), 200);
    assert_eq!(changed.json::<Value>().await.expect("JSON")["require_mfa"], true);

    let client = web_client_with(&app, "openid", json!({})).await;
    let (verifier, challenge) = pkce();
    let asked = browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "s")).await;
    assert_eq!(asked.status(), 200);
    let html = asked.text().await.expect("page");
    assert!(input(&html, "pending").is_some(), "the code page: {html}");
    // A wrong code is refused and counted like any sign-in code.
    let wrong = submit_code(&app, &browser, &html, "000000").await;
    assert_eq!(wrong.status(), 401);
    let accepted = submit_code(&app, &browser, &html, &code(&secret, now_step() + 1)).await;
    let code_for_client = client_code(&app, &browser, accepted).await;
    let tokens: Value =
        redeem(&app, &client, &code_for_client, &verifier).await.json().await.expect("JSON");
    assert_eq!(jwt_claims(tokens["id_token"].as_str().expect("id"))["acr"], MFA);
}

#[tokio::test]
async fn administrators_need_a_second_factor_when_the_setting_says_so() {
    let app = spawn_app_with(|s| s.admin_mfa = true).await;
    let made = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"username": "ada", "password": PASSWORD, "admin": true})),
        )
        .await;
    assert_eq!(made.status(), 201);
    user(&app, "olga").await;
    let client = web_client_with(&app, "openid", json!({})).await;

    let (_, challenge) = pkce();
    let browser = Browser::new();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let login = browser.follow(&app, browser.get(&url).await).await.text().await.expect("login");
    let after = browser.follow(&app, log_in(&browser, &app, &login, "ada", PASSWORD).await).await;
    assert_eq!(after.status(), 403, "an administrator with a password alone");
    // The console is a client like any other: refused the same way.
    let console = browser.follow(&app, browser.get(&app.url("/console")).await).await;
    assert_eq!(console.status(), 403);

    // Anyone else signs in as before.
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let login = browser.follow(&app, browser.get(&url).await).await.text().await.expect("login");
    let after = browser.follow(&app, log_in(&browser, &app, &login, "olga", PASSWORD).await).await;
    assert_eq!(after.status(), 200, "the consent page");
    assert!(input(&after.text().await.expect("consent"), "request").is_some());
}

#[tokio::test]
async fn acr_values_ask_for_at_least_a_level_and_unknown_values_ask_nothing() {
    let app = spawn_app().await;
    let (browser, _, secret) = password_session_with_an_app(&app, "alma").await;
    let client = web_client_with(&app, "openid", json!({})).await;
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");

    // A passkey's level: the app's code cannot reach it.
    let passkey = browser.get(&format!("{url}&acr_values=phr")).await;
    assert_eq!(passkey.status(), 403);
    assert!(passkey.text().await.expect("page").contains("with a passkey."));
    // Values this server does not know are ignored (acr_values is voluntary).
    let unknown =
        browser.follow(&app, browser.get(&format!("{url}&acr_values=urn:other:gold")).await).await;
    let html = unknown.text().await.expect("consent");
    assert!(input(&html, "request").is_some(), "consent, no step-up: {html}");
    // Any of the listed levels will do: the weakest known one is what is asked.
    let asked = browser
        .get(&format!(
            "{url}&acr_values={}",
            url::form_urlencoded::byte_serialize(format!("phrh {MFA}").as_bytes())
                .collect::<String>()
        ))
        .await;
    assert_eq!(asked.status(), 200);
    let html = asked.text().await.expect("code page");
    let accepted = submit_code(&app, &browser, &html, &code(&secret, now_step() + 1)).await;
    let code_for_client = client_code(&app, &browser, accepted).await;
    let tokens: Value =
        redeem(&app, &client, &code_for_client, &verifier).await.json().await.expect("JSON");
    assert_eq!(jwt_claims(tokens["id_token"].as_str().expect("id"))["acr"], MFA);
}

#[tokio::test]
async fn a_password_only_sign_in_says_so_in_amr_and_acr() {
    let app = spawn_app().await;
    user(&app, "pia").await;
    let client = web_client_with(&app, "openid", json!({})).await;
    let tokens = crate::browser::tokens_for(&app, &client, "pia", "openid").await;
    let id = jwt_claims(tokens["id_token"].as_str().expect("id"));
    assert_eq!(amr(&id), ["pwd"]);
    assert_eq!(id["acr"], PWD);
}

#[tokio::test]
async fn a_re_authentication_must_be_as_strong_as_the_session_it_replaces() {
    let app = spawn_app().await;
    let (id, secret, _) = enrolled(&app, "rhea").await;
    let client = web_client_with(&app, "openid", json!({})).await;
    // Signed in with password and code.
    let (browser, html, verifier) = to_code_page(&app, &client.0, "rhea").await;
    let accepted = submit_code(&app, &browser, &html, &code(&secret, now_step() + 1)).await;
    let code_for_client = client_code(&app, &browser, accepted).await;
    assert_eq!(redeem(&app, &client, &code_for_client, &verifier).await.status(), 200);

    // The phone is lost: an administrator turns the app off.
    let reset = app.admin(Method::DELETE, &format!("/admin/users/{id}/totp"), None).await;
    assert_eq!(reset.status(), 204);
    // The client asks the user to sign in again: a password alone is all that is left,
    // and it is weaker than the session it replaces.
    let (_, challenge) = pkce();
    let url = format!("{}&prompt=login", authorize_url(&app, &client.0, &challenge, "openid", "s"));
    let login = browser.follow(&app, browser.get(&url).await).await.text().await.expect("login");
    let return_to = input(&login, "return_to").expect("return_to");
    assert!(return_to.contains(&format!("acr_values={}", MFA.replace(':', "%3A"))), "{return_to}");
    let after = browser.follow(&app, log_in(&browser, &app, &login, "rhea", PASSWORD).await).await;
    assert_eq!(after.status(), 403, "not let through with less than before");

    // Control: without prompt=login the fresh password session is what the client gets.
    let (_, challenge) = pkce();
    let plain = browser
        .follow(&app, browser.get(&authorize_url(&app, &client.0, &challenge, "openid", "t")).await)
        .await;
    assert!(params(&location(&plain).expect("the code")).contains_key("code"));
}

#[tokio::test]
async fn administrators_see_a_users_methods_and_turn_a_lost_app_off() {
    let app = spawn_app().await;
    let (id, secret, codes) = enrolled(&app, "milo").await;
    let plain = user(&app, "nina").await;

    let methods: Value = app
        .admin(Method::GET, &format!("/admin/users/{id}/methods"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(methods["password"], true);
    assert_eq!(methods["totp"]["recovery_codes_left"], codes.len());
    assert!(methods["totp"]["enrolled_at"].is_string());
    let text = methods.to_string();
    assert!(!text.contains(&codes[0]) && !text.contains("secret"), "{text}");
    let none: Value = app
        .admin(Method::GET, &format!("/admin/users/{plain}/methods"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(none["totp"], Value::Null);
    let missing = app.admin(Method::GET, "/admin/users/nobody/methods", None).await;
    assert_eq!(missing.status(), 404);

    assert_eq!(
        app.admin(Method::DELETE, &format!("/admin/users/{id}/totp"), None).await.status(),
        204
    );
    assert_eq!(
        app.admin(Method::DELETE, &format!("/admin/users/{id}/totp"), None).await.status(),
        404
    );
    let removed: Vec<Value> =
        events(&app).await.into_iter().filter(|e| e["type"] == "mfa.totp_removed").collect();
    assert_eq!(removed.len(), 1, "one event for the one removal");
    assert_eq!(removed[0]["detail"]["by"], "admin");
    assert_eq!(removed[0]["subject"], format!("user:{id}"));

    // The password alone signs the user in again; the old secret no longer matters.
    let client = web_client_with(&app, "openid", json!({})).await;
    let tokens = crate::browser::tokens_for(&app, &client, "milo", "openid").await;
    assert_eq!(amr(&jwt_claims(tokens["id_token"].as_str().expect("id"))), ["pwd"]);
    let _ = secret;
}

#[tokio::test]
async fn a_device_approved_after_the_app_code_gets_tokens_that_say_so() {
    let app = spawn_app().await;
    let (_, secret, _) = enrolled(&app, "dora").await;
    let client_id = device::device_client(&app, "openid").await;
    let (_, started) = device::start(&app, &client_id, Some("openid")).await;

    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete");
    let login =
        browser.follow(&app, browser.get(complete).await).await.text().await.expect("login");
    let coded =
        log_in(&browser, &app, &login, "dora", PASSWORD).await.text().await.expect("code page");
    let entry = browser
        .follow(&app, submit_code(&app, &browser, &coded, &code(&secret, now_step() + 1)).await)
        .await;
    let entry = entry.text().await.expect("entry page");
    let consent =
        device::look_up(&browser, &app, &entry, started["user_code"].as_str().expect("code")).await;
    let consent = consent.text().await.expect("consent");
    let form = [
        ("csrf_token", input(&consent, "csrf_token").expect("csrf")),
        ("user_code", input(&consent, "user_code").expect("user_code")),
        ("lookup", input(&consent, "lookup").expect("lookup")),
        ("decision", "allow".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post(&app.url("/device"), &form).await.status(), 200);

    let device_code = started["device_code"].as_str().expect("device_code");
    let (status, tokens) = device::poll(&app, &client_id, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let id = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(amr(&id), ["pwd", "otp", "mfa"]);
    assert_eq!(id["acr"], MFA);
}

#[tokio::test]
async fn a_device_approval_is_stepped_up_where_the_client_requires_mfa() {
    let app = spawn_app().await;
    user(&app, "vera").await;
    let made = app
        .create_client(json!({"client_name": "Terminal Tool", "token_endpoint_auth_method": "none",
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"], "scope": "openid",
            "require_mfa": true}))
        .await;
    let client_id = made["client_id"].as_str().expect("id");
    let (_, started) = device::start(&app, client_id, Some("openid")).await;
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete");
    let entry = device::sign_in_at_device(&browser, &app, complete, "vera").await;
    let consent =
        device::look_up(&browser, &app, &entry, started["user_code"].as_str().expect("code")).await;
    let consent = consent.text().await.expect("consent");
    let form = [
        ("csrf_token", input(&consent, "csrf_token").expect("csrf")),
        ("user_code", input(&consent, "user_code").expect("user_code")),
        ("lookup", input(&consent, "lookup").expect("lookup")),
        ("decision", "allow".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post(&app.url("/device"), &form).await.status(), 403);
    let device_code = started["device_code"].as_str().expect("device_code");
    let (status, waiting) = device::poll(&app, client_id, device_code).await;
    assert_eq!((status, waiting["error"].as_str()), (400, Some("authorization_pending")));
}

#[tokio::test]
async fn discovery_lists_the_acr_values_and_the_amr_and_acr_claims() {
    let app = spawn_app().await;
    let metadata: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert_eq!(metadata["acr_values_supported"], json!([PWD, MFA, "phr", "phrh"]));
    let claims = metadata["claims_supported"].as_array().expect("claims");
    assert!(claims.contains(&json!("amr")) && claims.contains(&json!("acr")));
}

#[tokio::test]
async fn the_openidconnect_crate_asks_for_mfa_and_verifies_acr_and_amr() {
    let app = spawn_app().await;
    let (_, secret, _) = enrolled(&app, "oona").await;
    let registered = app
        .create_client(json!({"client_name": "RP", "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code"], "scope": "openid"}))
        .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let supported = metadata.acr_values_supported().expect("acr_values_supported");
    assert!(supported.contains(&AuthenticationContextClass::new(MFA.into())));
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered["client_id"].as_str().expect("id").to_owned()),
        Some(ClientSecret::new(registered["client_secret"].as_str().expect("secret").to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_auth_context_value(AuthenticationContextClass::new(MFA.into()))
        .set_pkce_challenge(challenge)
        .url();

    let browser = Browser::new();
    let login =
        browser.follow(&app, browser.get(url.as_str()).await).await.text().await.expect("login");
    let coded =
        log_in(&browser, &app, &login, "oona", PASSWORD).await.text().await.expect("code page");
    let accepted = submit_code(&app, &browser, &coded, &code(&secret, now_step() + 1)).await;
    let code_for_client = client_code(&app, &browser, accepted).await;
    let tokens = client
        .exchange_code(AuthorizationCode::new(code_for_client))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("id_token");
    let verifier = client.id_token_verifier().set_auth_context_verifier_fn(|acr| match acr {
        Some(acr) if acr.as_str() == MFA => Ok(()),
        other => Err(format!("not a second factor: {other:?}")),
    });
    let claims = id_token.claims(&verifier, &nonce).expect("verified, acr included");
    let methods: Vec<&str> =
        claims.auth_method_refs().expect("amr").iter().map(|m| m.as_str()).collect();
    assert_eq!(methods, ["pwd", "otp", "mfa"]);
}

#[tokio::test]
async fn the_cli_creates_a_user_who_must_use_mfa_lists_methods_and_resets_the_app() {
    use std::io::Write;

    use crate::helpers::{as_refs, castellan, process_env};
    let app = spawn_app().await;
    let env = process_env(&app.db);
    let cli = |args: &[&str]| {
        castellan(app.db.dir.path()).args(args).envs(as_refs(&env)).output().expect("castellan")
    };
    let mut child = castellan(app.db.dir.path())
        .args(["users", "create", "--username", "cleo", "--require-mfa"])
        .envs(as_refs(&env))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("castellan users create");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{PASSWORD}\n").as_bytes())
        .expect("write");
    let created = child.wait_with_output().expect("output");
    assert!(created.status.success());
    let made: Value = serde_json::from_slice(&created.stdout).expect("JSON");
    assert_eq!(made["require_mfa"], true);

    let (id, _, _) = enrolled(&app, "cora").await;
    let listed = cli(&["users", "methods", "--id", &id]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let methods: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(methods["totp"]["recovery_codes_left"], 10);
    assert_eq!(methods["passkeys"], json!([]));

    let reset = cli(&["users", "reset-totp", "--id", &id]);
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    let again = cli(&["users", "reset-totp", "--id", &id]);
    assert!(!again.status.success(), "nothing left to turn off");
    let missing = cli(&["users", "remove-passkey", "--id", &id, "--passkey", "nope"]);
    assert!(!missing.status.success());
    let removed: Vec<Value> =
        events(&app).await.into_iter().filter(|e| e["type"] == "mfa.totp_removed").collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["actor"]["id"], "system:cli");
}

#[tokio::test]
async fn a_consent_posted_by_a_weaker_session_is_stepped_up_not_approved() {
    let app = spawn_app().await;
    let (browser, id) = signed_in(&app, "quinn").await;
    let client = web_client_with(&app, "openid", json!({"require_mfa": true})).await;
    let (_, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let request = url.split_once('?').expect("query").1.to_owned();
    // The password session never gets the consent page; it posts the form by hand.
    let account = browser.get(&app.url("/account")).await.text().await.expect("account");
    let csrf = input(&account, "csrf_token").expect("csrf");
    let posted = browser
        .post(
            &app.url("/consent"),
            &[("csrf_token", csrf.as_str()), ("request", request.as_str()), ("decision", "allow")],
        )
        .await;
    assert_eq!(posted.status(), 403, "stopped: no app, no passkey");
    assert!(location(&posted).is_none(), "no code is sent to the client");
    let grants: Value = app
        .admin(Method::GET, &format!("/admin/users/{id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(grants["items"], json!([]), "no grant recorded");
}
