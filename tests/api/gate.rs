//! The one bearer gate and the administrator role (docs/REFERENCE.md §4.2–§4.3, §5.8): the
//! defects found by trying real clients, each shown fixed.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, authorize_url, input, location, tokens_for, user, web_client_with,
};
use crate::helpers::{TestApp, eventually, join_all, jwt_claims, spawn_app, spawn_app_with};

async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    app.userinfo(token).await
}

async fn admin_with(app: &TestApp, token: &str) -> StatusCode {
    let response =
        app.http.get(app.url("/admin/clients")).bearer_auth(token).send().await.expect("GET");
    response.status()
}

async fn an_admin_user(app: &TestApp, username: &str) -> String {
    let response = app
        .admin(
            Method::POST,
            "/admin/users",
            Some(json!({"username": username, "password": PASSWORD, "admin": true})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["admin"], true);
    body["id"].as_str().expect("id").to_owned()
}

#[tokio::test]
async fn userinfo_takes_a_user_token_meant_for_an_api_but_the_admin_api_does_not() {
    let app = spawn_app().await;
    user(&app, "ava").await;
    let api = "https://api.example.com";
    let client = web_client_with(&app, "openid profile", json!({"audience": [api]})).await;

    let tokens = tokens_for(&app, &client, "ava", "openid profile").await;
    let access = tokens["access_token"].as_str().expect("access");

    assert_eq!(jwt_claims(access)["aud"], json!([api, app.issuer]), "the API, then the issuer");
    let info = userinfo(&app, access).await;
    assert_eq!(info.status(), 200);
    assert_eq!(info.json::<Value>().await.expect("JSON")["preferred_username"], "ava");
    assert_eq!(admin_with(&app, access).await, StatusCode::UNAUTHORIZED, "not meant for it");
}

#[tokio::test]
async fn a_revoked_admin_token_stops_at_once_here_and_within_the_interval_elsewhere() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let token = app.admin_token().await;
    assert_eq!(admin_with(&app, &token).await, StatusCode::OK);
    assert_eq!(admin_with(&replica, &token).await, StatusCode::OK);

    assert_eq!(app.revoke(&app.admin, &token, None).await, 200);

    assert_eq!(admin_with(&app, &token).await, StatusCode::UNAUTHORIZED, "at once, here");
    let seen = eventually(Duration::from_secs(2), || async {
        admin_with(&replica, &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(seen, "within the sync interval at the other replica");
}

#[tokio::test]
async fn an_ordinary_user_never_reaches_the_admin_api_while_an_administrator_does() {
    let app = spawn_app().await;
    user(&app, "olga").await;
    an_admin_user(&app, "root").await;
    let console = web_client_with(&app, "openid admin", json!({})).await;

    // The consent page offers an ordinary user nothing of `admin`...
    let browser = Browser::new();
    let (_, challenge) = crate::browser::pkce();
    let url = authorize_url(&app, &console.0, &challenge, "openid admin", "s");
    let login = browser.follow(&app, browser.get(&url).await).await.text().await.expect("page");
    let consent = browser
        .follow(&app, crate::browser::log_in(&browser, &app, &login, "olga", PASSWORD).await)
        .await
        .text()
        .await
        .expect("consent page");
    assert!(input(&consent, "request").is_some(), "a consent page");
    assert!(!consent.contains(">admin<"), "admin is not offered");

    // ...and grants nothing of it: the token says so, and the admin API refuses it.
    let ordinary = tokens_for(&app, &console, "olga", "openid admin").await;
    assert_eq!(ordinary["scope"], "openid");
    let token = ordinary["access_token"].as_str().expect("access");
    assert_eq!(admin_with(&app, token).await, StatusCode::FORBIDDEN);

    let admin = tokens_for(&app, &console, "root", "openid admin").await;
    assert_eq!(admin["scope"], "openid admin");
    let token = admin["access_token"].as_str().expect("access");
    assert_eq!(admin_with(&app, token).await, StatusCode::OK, "what a console signs in with");
}

#[tokio::test]
async fn an_administrator_demoted_loses_the_admin_api_at_once() {
    let app = spawn_app().await;
    let id = an_admin_user(&app, "root").await;
    let console = web_client_with(&app, "openid admin", json!({})).await;
    let tokens = tokens_for(&app, &console, "root", "openid admin").await;
    let token = tokens["access_token"].as_str().expect("access");
    assert_eq!(admin_with(&app, token).await, StatusCode::OK);

    let demoted = app
        .admin(
            Method::PUT,
            &format!("/admin/users/{id}"),
            Some(json!({"username": "root", "admin": false})),
        )
        .await;
    assert_eq!(demoted.status(), 200);

    assert_eq!(admin_with(&app, token).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_replayed_code_ends_a_token_that_introspection_just_found_live() {
    let app = spawn_app().await;
    user(&app, "rex").await;
    let client = web_client_with(&app, "openid offline_access", json!({})).await;
    let rs = app.resource_server().await;
    let browser = Browser::new();
    let (verifier, challenge) = crate::browser::pkce();
    let back = crate::browser::authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid offline_access", "s"),
        "rex",
    )
    .await;
    let code = crate::browser::params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value =
        crate::browser::redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    let access = tokens["access_token"].as_str().expect("access");
    let introspect = || async { app.introspect(&rs, access).await["active"] == true };
    assert!(introspect().await, "live, and remembered as verified");

    let replay = crate::browser::redeem(&app, &client, &code, &verifier).await;
    assert_eq!(replay.status(), 400);

    assert!(!introspect().await, "inactive at once at the same replica");
    assert_eq!(userinfo(&app, access).await.status(), 401);
}

#[tokio::test]
async fn concurrent_consents_lose_no_scope() {
    let app = spawn_app_with(|_| {}).await;
    let user_id = user(&app, "cora").await;
    let client = web_client_with(&app, "openid profile email", json!({})).await;
    // One browser signed in, two consent pages for different scopes, allowed together.
    let browser = Browser::new();
    let (_, challenge) = crate::browser::pkce();
    let first = authorize_url(&app, &client.0, &challenge, "openid profile", "a");
    let login = browser.follow(&app, browser.get(&first).await).await.text().await.expect("page");
    let page_a = browser
        .follow(&app, crate::browser::log_in(&browser, &app, &login, "cora", PASSWORD).await)
        .await
        .text()
        .await
        .expect("consent");
    let second = authorize_url(&app, &client.0, &challenge, "openid email", "b");
    let page_b = browser.follow(&app, browser.get(&second).await).await.text().await.expect("page");
    let allow = |page: String| {
        let browser = &browser;
        let app = &app;
        async move {
            let form = [
                ("csrf_token", input(&page, "csrf_token").expect("csrf")),
                ("request", input(&page, "request").expect("request")),
                ("decision", "allow".to_owned()),
            ];
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.post(&app.url("/consent"), &form).await.status()
        }
    };

    let statuses = join_all(vec![allow(page_a), allow(page_b)]).await;

    assert!(statuses.iter().all(|s| *s == StatusCode::SEE_OTHER), "{statuses:?}");
    let grants: Value = app
        .admin(Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let scope = grants["items"][0]["scope"].as_str().expect("scope");
    for wanted in ["openid", "profile", "email"] {
        assert!(scope.split(' ').any(|s| s == wanted), "{wanted} kept in {scope:?}");
    }
}

#[tokio::test]
async fn every_form_endpoint_answers_a_body_that_is_not_utf8_with_400_invalid_request() {
    let app = spawn_app().await;
    let rs = app.resource_server().await;
    for path in ["/token", "/introspect", "/revoke"] {
        for body in [&b"token=\xff\xfe"[..], b"token=%FF%FE&grant_type=client_credentials"] {
            let response = app
                .http
                .post(app.url(path))
                .basic_auth(&rs.0, Some(&rs.1))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_vec())
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), 400, "{path}");
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["error"], "invalid_request", "{path}");
        }
    }
    let login = Browser::new()
        .http
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"username=%FF&password=x".to_vec())
        .send()
        .await
        .expect("POST");
    assert_eq!(login.status(), 400, "the pages too");
}
