//! `POST /token` with `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5–§4.6).

use serde_json::{Value, json};

use crate::browser::{
    Browser, REDIRECT, authorize_url, authorize_with_consent, location, params, pkce, redeem, user,
    web_client,
};
use crate::helpers::{TestApp, join_all, spawn_app};

/// A fresh code for `client`, with its verifier.
async fn code_for(
    app: &TestApp,
    browser: &Browser,
    client: &(String, String),
    username: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        browser,
        app,
        &authorize_url(app, &client.0, &challenge, "openid", "s"),
        username,
    )
    .await;
    (params(&location(&back).expect("code"))["code"].clone(), verifier)
}

async fn error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (
        status,
        response.json::<Value>().await.expect("JSON")["error"].as_str().expect("error").to_owned(),
    )
}

#[tokio::test]
async fn each_binding_of_the_code_is_enforced() {
    let app = spawn_app().await;
    let client = web_client(&app, "Bound", "openid").await;
    let other = web_client(&app, "Other", "openid").await;
    user(&app, "kim").await;
    let browser = Browser::new();

    let (code, verifier) = code_for(&app, &browser, &client, "kim").await;
    let wrong_verifier = redeem(&app, &client, &code, &pkce().0).await;
    let (code2, verifier2) = code_for(&app, &browser, &client, "kim").await;
    let other_client = redeem(&app, &other, &code2, &verifier2).await;
    let (code3, verifier3) = code_for(&app, &browser, &client, "kim").await;
    let other_redirect = app
        .token_basic(
            &client.0,
            &client.1,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code3),
                ("redirect_uri", "https://app.example/other"),
                ("code_verifier", &verifier3),
            ],
        )
        .await;
    let (code4, _) = code_for(&app, &browser, &client, "kim").await;
    let no_verifier = app
        .token_basic(
            &client.0,
            &client.1,
            &[("grant_type", "authorization_code"), ("code", &code4), ("redirect_uri", REDIRECT)],
        )
        .await;
    let unknown = redeem(&app, &client, "not-a-code", &verifier).await;

    for (response, what) in [
        (wrong_verifier, "a wrong verifier"),
        (other_client, "another client's code"),
        (other_redirect, "another redirect_uri"),
        (no_verifier, "no verifier"),
        (unknown, "an unknown code"),
    ] {
        assert_eq!(error(response).await, (400, "invalid_grant".into()), "{what}");
    }
    assert_eq!(
        error(redeem(&app, &client, &code, &verifier).await).await.1,
        "invalid_grant",
        "a failed check burns the code"
    );
}

#[tokio::test]
async fn a_code_is_redeemed_once() {
    let app = spawn_app().await;
    let client = web_client(&app, "Once", "openid").await;
    user(&app, "lee").await;
    let browser = Browser::new();
    let (code, verifier) = code_for(&app, &browser, &client, "lee").await;

    let first = redeem(&app, &client, &code, &verifier).await;
    let second = redeem(&app, &client, &code, &verifier).await;

    assert_eq!(first.status(), 200);
    assert_eq!(error(second).await, (400, "invalid_grant".into()));
}

#[tokio::test]
async fn fifty_concurrent_redemptions_yield_exactly_one_token() {
    let app = spawn_app().await;
    let client = web_client(&app, "Race", "openid").await;
    user(&app, "max").await;
    let browser = Browser::new();
    let (code, verifier) = code_for(&app, &browser, &client, "max").await;

    let attempts = (0..50).map(|_| redeem(&app, &client, &code, &verifier)).collect();
    let responses = join_all(attempts).await;

    let mut wins = 0;
    for response in responses {
        match response.status().as_u16() {
            200 => wins += 1,
            400 => {
                assert_eq!(response.json::<Value>().await.expect("JSON")["error"], "invalid_grant")
            }
            other => panic!("status {other}: never a 5xx"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn a_public_client_redeems_with_pkce_alone() {
    let app = spawn_app().await;
    let client = app
        .create_client(json!({"client_name": "SPA", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "openid"}))
        .await;
    let id = client["client_id"].as_str().expect("id").to_owned();
    user(&app, "nia").await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &id, &challenge, "openid", "s"),
        "nia",
    )
    .await;
    let code = params(&location(&back).expect("code"))["code"].clone();

    let response = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", id.as_str()),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("POST");

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["refresh_token"].is_null(), "no offline_access, no refresh token");
}
