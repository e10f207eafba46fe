//! `grant_type=refresh_token`: rotation on every use, reuse detection revoking the family,
//! one winner among concurrent uses (RFC 6749 §6, RFC 9700 §4.14).

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    Browser, authorize_url, authorize_with_consent, location, params, pkce, redeem, user,
    web_client,
};
use crate::helpers::{TestApp, join_all, spawn_app_with, verify_with_jwks};

/// A web client, a user and a first refresh token with `openid profile offline_access`.
async fn first_refresh_token(app: &TestApp) -> ((String, String), String, String) {
    let client = web_client(app, "Refresher", "openid profile offline_access").await;
    let user_id = user(app, "rita").await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        app,
        &authorize_url(app, &client.0, &challenge, "openid profile offline_access", "s"),
        "rita",
    )
    .await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value = redeem(app, &client, &code, &verifier).await.json().await.expect("JSON");
    (client, user_id, tokens["refresh_token"].as_str().expect("refresh token").to_owned())
}

async fn refresh(
    app: &TestApp,
    client: &(String, String),
    token: &str,
    scope: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    let response = app.token_basic(&client.0, &client.1, &form).await;
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

fn grace(ms: u64) -> impl FnOnce(&mut castellan::config::Settings) {
    move |s| s.refresh_reuse_grace = Duration::from_millis(ms)
}

#[tokio::test]
async fn a_refresh_rotates_the_token_and_issues_a_fresh_access_token() {
    let app = spawn_app_with(grace(300)).await;
    let (client, user_id, first) = first_refresh_token(&app).await;

    let (status, body) = refresh(&app, &client, &first, None).await;

    assert_eq!(status, 200, "{body}");
    let second = body["refresh_token"].as_str().expect("a new refresh token");
    assert_ne!(second, first);
    let (_, claims) =
        verify_with_jwks(&app, body["access_token"].as_str().expect("access token"), &app.issuer)
            .await;
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["scope"], "openid profile offline_access");
    assert_eq!(refresh(&app, &client, second, None).await.0, 200, "the new one works");
}

#[tokio::test]
async fn presenting_a_rotated_token_revokes_the_whole_family() {
    let app = spawn_app_with(grace(300)).await;
    let (client, _, first) = first_refresh_token(&app).await;
    let (_, body) = refresh(&app, &client, &first, None).await;
    let second = body["refresh_token"].as_str().expect("second").to_owned();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (status, replay) = refresh(&app, &client, &first, None).await;

    assert_eq!((status, replay["error"].as_str()), (400, Some("invalid_grant")));
    let (status, after) = refresh(&app, &client, &second, None).await;
    assert_eq!(
        (status, after["error"].as_str()),
        (400, Some("invalid_grant")),
        "the family is revoked"
    );
    let rs = app.resource_server().await;
    let inspected: Value = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&rs.0, Some(&rs.1))
        .form(&[("token", body["access_token"].as_str().expect("access"))])
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    assert_eq!(inspected, json!({"active": false}), "and the access tokens issued from it");
}

#[tokio::test]
async fn refresh_tokens_slide_within_their_absolute_lifetime() {
    let app = spawn_app_with(grace(300)).await;
    let client = app
        .create_client(json!({
            "redirect_uris": ["https://app.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access",
            "refresh_token_lifetime": 2,
            "refresh_token_absolute_lifetime": 4,
        }))
        .await;
    let client = (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    );
    user(&app, "sid").await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid offline_access", "s"),
        "sid",
    )
    .await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    let mut token = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let idle = token.clone();

    let mut statuses = Vec::new();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let (status, body) = refresh(&app, &client, &token, None).await;
        statuses.push(status);
        if let Some(next) = body["refresh_token"].as_str() {
            token = next.to_owned();
        }
    }

    assert_eq!(
        &statuses[..3],
        [200, 200, 200],
        "used every second, it slides past its 2 s lifetime"
    );
    assert_eq!(statuses[4], 400, "but not past its 4 s absolute lifetime: {statuses:?}");
    assert_eq!(refresh(&app, &client, &idle, None).await.0, 400, "unused for 2 s it expires");
}

#[tokio::test]
async fn fifty_concurrent_refreshes_leave_one_winner_and_one_live_chain() {
    let app = spawn_app_with(grace(10_000)).await;
    let (client, _, first) = first_refresh_token(&app).await;

    let attempts: Vec<_> = (0..50).map(|_| refresh(&app, &client, &first, None)).collect();
    let results = join_all(attempts).await;

    let winners: Vec<&Value> = results.iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert_eq!(winners.len(), 1);
    for (status, body) in &results {
        assert!(
            *status == 200 || (*status == 400 && body["error"] == "invalid_grant"),
            "{status} {body}"
        );
    }
    let chain = winners[0]["refresh_token"].as_str().expect("winner's token");
    assert_eq!(refresh(&app, &client, chain, None).await.0, 200, "the winner's chain lives on");
}

#[tokio::test]
async fn a_narrower_scope_is_allowed_and_a_wider_one_is_invalid_scope() {
    let app = spawn_app_with(grace(300)).await;
    let (client, _, first) = first_refresh_token(&app).await;

    let (wider, error) = refresh(&app, &client, &first, Some("openid email")).await;
    let (narrower, body) = refresh(&app, &client, &first, Some("openid")).await;

    assert_eq!((wider, error["error"].as_str()), (400, Some("invalid_scope")));
    assert_eq!(narrower, 200);
    assert_eq!(body["scope"], "openid");
    let (_, next) =
        refresh(&app, &client, body["refresh_token"].as_str().expect("token"), None).await;
    assert_eq!(next["scope"], "openid profile offline_access", "the refresh token keeps its scope");
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant_and_stays_usable_by_its_owner() {
    let app = spawn_app_with(grace(300)).await;
    let (client, _, first) = first_refresh_token(&app).await;
    let thief = web_client(&app, "Thief", "openid offline_access").await;

    let (status, body) = refresh(&app, &thief, &first, None).await;

    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(refresh(&app, &client, &first, None).await.0, 200);
}

#[tokio::test]
async fn a_disabled_user_or_a_revoked_grant_ends_refreshing() {
    let app = spawn_app_with(grace(300)).await;
    let (client, user_id, first) = first_refresh_token(&app).await;
    let grants: Value = app
        .admin(Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let grant_id = grants["items"][0]["id"].as_str().expect("grant").to_owned();

    let revoked = app.admin(Method::DELETE, &format!("/admin/grants/{grant_id}"), None).await;
    assert_eq!(revoked.status(), 204);
    let (status, body) = refresh(&app, &client, &first, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "revoked grant");

    let app2 = spawn_app_with(grace(300)).await;
    let (client2, user2, first2) = first_refresh_token(&app2).await;
    app2.admin(
        Method::PUT,
        &format!("/admin/users/{user2}"),
        Some(json!({"username": "rita", "disabled": true})),
    )
    .await;
    let (status, body) = refresh(&app2, &client2, &first2, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "disabled user");
}

#[tokio::test]
async fn a_refresh_token_is_never_accepted_as_an_access_token() {
    let app = spawn_app_with(grace(300)).await;
    let (_, _, first) = first_refresh_token(&app).await;

    let response =
        app.http.get(app.url("/admin/clients")).bearer_auth(&first).send().await.expect("GET");

    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_token_from_one_replica_refreshes_at_another_and_a_rotation_survives_restarts() {
    let app = spawn_app_with(grace(300)).await;
    let other = app.replica().await;
    let (client, _, first) = first_refresh_token(&app).await;

    let (status, body) = refresh(&other, &client, &first, None).await;
    assert_eq!(status, 200, "{body}");
    let restarted = app.replica().await;

    let (status, replay) = refresh(&restarted, &client, &first, None).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant")),
        "rotated stays dead"
    );
}
