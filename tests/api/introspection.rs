//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009), for every kind of token.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    Browser, authorize_url, authorize_with_consent, location, params, pkce, redeem, user,
    web_client,
};
use crate::helpers::{TestApp, eventually, spawn_app_with};

/// A user's tokens from the code flow: (client, user id, access token, refresh token).
async fn user_tokens(app: &TestApp, username: &str) -> ((String, String), String, String, String) {
    let client = web_client(app, "Inspected", "openid profile offline_access").await;
    let user_id = user(app, username).await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        app,
        &authorize_url(app, &client.0, &challenge, "openid profile offline_access", "s"),
        username,
    )
    .await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value = redeem(app, &client, &code, &verifier).await.json().await.expect("JSON");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    (client, user_id, access, refresh)
}

async fn introspect(app: &TestApp, caller: &(String, String), token: &str) -> Value {
    app.introspect(caller, token).await
}

async fn revoke(app: &TestApp, caller: &(String, String), token: &str, hint: Option<&str>) -> u16 {
    app.revoke(caller, token, hint).await
}

fn inactive() -> Value {
    json!({"active": false})
}

fn quick() -> impl FnOnce(&mut castellan::config::Settings) {
    |s| s.refresh_reuse_grace = Duration::from_millis(300)
}

#[tokio::test]
async fn active_tokens_are_described_and_anything_else_is_just_inactive() {
    let app = spawn_app_with(quick()).await;
    let (client, user_id, access, refresh) = user_tokens(&app, "amy").await;
    let resource_server = app.resource_server().await;
    let service_token =
        app.client_token(&resource_server.0, &resource_server.1, None).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned();

    let described = introspect(&app, &resource_server, &access).await;
    let own_refresh = introspect(&app, &client, &refresh).await;
    let service = introspect(&app, &resource_server, &service_token).await;

    assert_eq!(described["active"], true);
    assert_eq!(described["sub"], user_id.as_str());
    assert_eq!(described["client_id"], client.0.as_str());
    assert_eq!(described["scope"], "openid profile offline_access");
    assert_eq!(described["token_type"], "Bearer");
    for member in ["exp", "iat", "iss", "aud", "jti"] {
        assert!(described.get(member).is_some(), "{member}");
    }
    assert_eq!(own_refresh["active"], true);
    assert_eq!(own_refresh["token_type"], "refresh_token");
    assert_eq!(service["active"], true);
    let mut tampered = access.clone();
    tampered.push('x');
    for token in ["garbage", "a.b.c", tampered.as_str()] {
        assert_eq!(introspect(&app, &resource_server, token).await, inactive(), "{token}");
    }
    assert_eq!(
        introspect(&app, &resource_server, &refresh).await,
        inactive(),
        "another client's refresh token"
    );
}

#[tokio::test]
async fn public_clients_may_not_introspect() {
    let app = spawn_app_with(quick()).await;
    let public = app.create_client(json!({"redirect_uris": ["https://spa.example/cb"], "token_endpoint_auth_method": "none"})).await;
    let id = public["client_id"].as_str().expect("id");

    let response = app
        .http
        .post(app.url("/introspect"))
        .form(&[("client_id", id), ("token", "anything")])
        .send()
        .await
        .expect("POST");

    assert_eq!(response.status(), 401);
    let unauthenticated = app
        .http
        .post(app.url("/introspect"))
        .form(&[("token", "anything")])
        .send()
        .await
        .expect("POST");
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn revoking_a_refresh_token_ends_its_family_and_their_access_tokens() {
    let app = spawn_app_with(quick()).await;
    let (client, _, access, refresh) = user_tokens(&app, "ben").await;
    let rs = app.resource_server().await;

    assert_eq!(
        revoke(&app, &client, &refresh, Some("access_token")).await,
        200,
        "a wrong hint does not stop the search"
    );

    assert_eq!(introspect(&app, &client, &refresh).await, inactive());
    assert_eq!(introspect(&app, &rs, &access).await, inactive());
    let refreshed: Value = app
        .token_basic(
            &client.0,
            &client.1,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(refreshed["error"], "invalid_grant");
}

#[tokio::test]
async fn revoking_an_access_token_makes_it_inactive_and_other_clients_cannot_revoke() {
    let app = spawn_app_with(quick()).await;
    let (client, _, access, refresh) = user_tokens(&app, "cleo").await;
    let other = app.resource_server().await;

    assert_eq!(revoke(&app, &other, &access, None).await, 200, "another client: 200, nothing done");
    assert_eq!(revoke(&app, &other, &refresh, None).await, 200);
    assert_eq!(introspect(&app, &other, &access).await["active"], true);
    assert_eq!(introspect(&app, &client, &refresh).await["active"], true);

    assert_eq!(revoke(&app, &client, &access, None).await, 200);

    assert_eq!(introspect(&app, &other, &access).await, inactive());
    assert_eq!(
        introspect(&app, &client, &refresh).await["active"],
        true,
        "the refresh token is another token"
    );
    for junk in ["garbage", ""] {
        let status = revoke(&app, &client, junk, None).await;
        assert!(status == 200 || (junk.is_empty() && status == 400), "{junk:?}: {status}");
    }
}

#[tokio::test]
async fn a_client_credentials_token_can_be_revoked_by_its_client() {
    let app = spawn_app_with(quick()).await;
    let service = app.resource_server().await;
    let token = app.client_token(&service.0, &service.1, None).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    assert_eq!(revoke(&app, &service, &token, Some("refresh_token")).await, 200);

    assert_eq!(introspect(&app, &service, &token).await, inactive());
}

#[tokio::test]
async fn a_rotated_refresh_token_is_inactive() {
    let app = spawn_app_with(quick()).await;
    let (client, _, _, refresh) = user_tokens(&app, "dora").await;

    let rotated: Value = app
        .token_basic(
            &client.0,
            &client.1,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await
        .json()
        .await
        .expect("JSON");

    assert_eq!(introspect(&app, &client, &refresh).await, inactive());
    assert_eq!(
        introspect(&app, &client, rotated["refresh_token"].as_str().expect("new")).await["active"],
        true
    );
}

#[tokio::test]
async fn revoking_the_grant_disabling_the_user_or_deleting_the_client_ends_their_tokens() {
    // A long sync interval: introspection verdicts outlive the test unless forgotten.
    let app = spawn_app_with(|s| s.sync_interval = Duration::from_secs(5)).await;
    let rs = app.resource_server().await;

    let (client, user_id, access, refresh) = user_tokens(&app, "eve").await;
    // Each token is introspected first, so a remembered verdict would have to be forgotten.
    assert_eq!(introspect(&app, &rs, &access).await["active"], true);
    let grants: Value = app
        .admin(Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    app.admin(
        Method::DELETE,
        &format!("/admin/grants/{}", grants["items"][0]["id"].as_str().expect("id")),
        None,
    )
    .await;
    assert_eq!(introspect(&app, &rs, &access).await, inactive(), "grant revoked");
    assert_eq!(introspect(&app, &client, &refresh).await, inactive());

    let (client2, user2, access2, refresh2) = user_tokens(&app, "fay").await;
    assert_eq!(introspect(&app, &rs, &access2).await["active"], true);
    app.admin(
        Method::PUT,
        &format!("/admin/users/{user2}"),
        Some(json!({"username": "fay", "disabled": true})),
    )
    .await;
    assert_eq!(introspect(&app, &rs, &access2).await, inactive(), "user disabled");
    assert_eq!(introspect(&app, &client2, &refresh2).await, inactive());

    let (client3, _, access3, _) = user_tokens(&app, "gus").await;
    assert_eq!(introspect(&app, &rs, &access3).await["active"], true);
    app.admin(Method::DELETE, &format!("/admin/clients/{}", client3.0), None).await;
    assert_eq!(introspect(&app, &rs, &access3).await, inactive(), "client deleted");
}

#[tokio::test]
async fn a_replayed_code_revokes_what_its_first_redemption_issued() {
    let app = spawn_app_with(quick()).await;
    let client = web_client(&app, "Replay", "openid offline_access").await;
    user(&app, "hal").await;
    let rs = app.resource_server().await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid offline_access", "s"),
        "hal",
    )
    .await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let first: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    let access = first["access_token"].as_str().expect("access").to_owned();

    let wrong_pkce: Value =
        redeem(&app, &client, &code, &pkce().0).await.json().await.expect("JSON");
    assert_eq!(wrong_pkce["error"], "invalid_grant");
    assert_eq!(
        introspect(&app, &rs, &access).await["active"],
        true,
        "a replay failing PKCE revokes nothing"
    );

    let replay: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");

    assert_eq!(replay["error"], "invalid_grant");
    assert_eq!(introspect(&app, &rs, &access).await, inactive());
    assert_eq!(
        introspect(&app, &client, first["refresh_token"].as_str().expect("refresh")).await,
        inactive()
    );
}

#[tokio::test]
async fn a_revocation_at_one_replica_holds_at_another_within_5_seconds() {
    let app = spawn_app_with(quick()).await;
    let other = app.replica().await;
    let (client, _, access, _) = user_tokens(&app, "ida").await;
    let rs = app.resource_server().await;
    assert_eq!(introspect(&other, &rs, &access).await["active"], true);

    assert_eq!(revoke(&app, &client, &access, None).await, 200);

    let seen = eventually(Duration::from_secs(5), || async {
        introspect(&other, &rs, &access).await == inactive()
    })
    .await;
    assert!(seen);
}
