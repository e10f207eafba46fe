//! `/console`: the admin console signs in through our own code flow and shows a dashboard
//! (docs/REFERENCE.md §3.12).

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::browser::{Browser, PASSWORD, consent, input, location, log_in, user};
use crate::helpers::{TestApp, spawn_app};

/// An administrator with `PASSWORD`; returns their id.
async fn administrator(app: &TestApp, username: &str) -> String {
    let body = json!({"username": username, "password": PASSWORD, "admin": true});
    let response = app.admin(Method::POST, "/admin/users", Some(body)).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("JSON")["id"].as_str().expect("id").to_owned()
}

fn absolute(app: &TestApp, location: &str) -> String {
    if location.starts_with('/') { app.url(location) } else { location.to_owned() }
}

/// Opens `/console` and walks authorize → login → consent (if shown) as `username`, up to
/// the redirect to the console's callback, which is returned unfollowed.
async fn walk_to_callback(browser: &Browser, app: &TestApp, username: &str) -> String {
    let mut response = browser.get(&app.url("/console")).await;
    for _ in 0..12 {
        if let Some(next) = location(&response) {
            let next = absolute(app, &next);
            if next.contains("/console/callback") {
                return next;
            }
            response = browser.get(&next).await;
            continue;
        }
        let page = response.text().await.expect("page");
        response = if input(&page, "request").is_some() {
            consent(browser, app, &page).await
        } else if input(&page, "return_to").is_some() {
            log_in(browser, app, &page, username, PASSWORD).await
        } else {
            panic!("an unexpected page on the way to the console: {page}");
        };
    }
    panic!("the sign-in never reached the console's callback");
}

/// The whole sign-in: the callback's answer and, when it redirects, the page it leads to.
async fn sign_in(browser: &Browser, app: &TestApp, username: &str) -> (u16, Response) {
    let callback = walk_to_callback(browser, app, username).await;
    let answer = browser.get(&callback).await;
    let status = answer.status().as_u16();
    (status, browser.follow(app, answer).await)
}

/// Whether this browser is inside the console (not sent off to sign in).
async fn inside(browser: &Browser, app: &TestApp) -> bool {
    browser.get(&app.url("/console")).await.status() == 200
}

fn shows(html: &str, id: &str, value: &str) -> bool {
    html.contains(&format!("id=\"{id}\">{value}<"))
}

#[tokio::test]
async fn console_signs_an_administrator_in_through_the_code_flow_and_shows_the_dashboard() {
    let app = spawn_app().await;
    administrator(&app, "root").await;
    user(&app, "bob").await;
    // One failed sign-in, for the chart.
    let stranger = Browser::new();
    let login = stranger.follow(&app, stranger.get(&app.url("/console")).await).await;
    let page = login.text().await.expect("login page");
    log_in(&stranger, &app, &page, "root", "not the password").await;
    let browser = Browser::new();

    let first = browser.get(&app.url("/console")).await;
    let to_authorize = location(&first).expect("a redirect to sign in");
    let (status, dashboard) = sign_in(&browser, &app, "root").await;

    assert_eq!(first.status(), 303);
    let query: std::collections::HashMap<String, String> =
        url::Url::parse(&to_authorize).expect("URL").query_pairs().into_owned().collect();
    assert!(to_authorize.starts_with(&format!("{}/authorize?", app.issuer)));
    assert_eq!(query["client_id"], "castellan-console");
    assert_eq!(query["code_challenge_method"], "S256");
    assert!(query["state"].len() >= 32 && query["nonce"].len() >= 32);
    assert_eq!(query["redirect_uri"], format!("{}/console/callback", app.issuer));
    assert_eq!(status, 303);
    assert_eq!(dashboard.status(), 200);
    let csp = dashboard.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    assert!(csp.starts_with("default-src 'none'; style-src 'self'"));
    let html = dashboard.text().await.expect("dashboard");
    let clients = app.admin(Method::GET, "/admin/clients", None).await;
    let clients =
        clients.json::<Value>().await.expect("JSON")["items"].as_array().expect("items").len();
    assert!(shows(&html, "count-clients", &clients.to_string()), "{html}");
    assert!(shows(&html, "count-users", "2"));
    // The login session and the console's own.
    assert!(shows(&html, "count-sessions", "2"));
    assert!(shows(&html, "count-grants", "1"));
    assert!(shows(&html, "sign-in-totals", "1 succeeded, 1 failed."), "{html}");
    assert!(html.contains("<svg") && html.contains("<rect class=\"failed\""));
    assert!(html.contains(">active<") && html.contains(">next<"));
    assert!(!html.contains("Next rotation: none"));
    assert!(!html.contains("style=") && !html.contains("<script"));
}

#[tokio::test]
async fn console_refuses_an_ordinary_user_and_opens_no_session() {
    let app = spawn_app().await;
    user(&app, "bob").await;
    let browser = Browser::new();

    let (status, page) = sign_in(&browser, &app, "bob").await;

    assert_eq!(status, 403);
    assert!(page.text().await.expect("page").contains("administrators only"));
    let again = browser.get(&app.url("/console")).await;
    assert_eq!(again.status(), 303, "no console session: off to sign in again");
}

#[tokio::test]
async fn console_refuses_a_callback_whose_state_was_forged() {
    let app = spawn_app().await;
    administrator(&app, "root").await;
    let browser = Browser::new();
    let callback = walk_to_callback(&browser, &app, "root").await;
    let mut forged = url::Url::parse(&callback).expect("URL");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { "forged".to_owned() } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);

    let answer = browser.get(forged.as_str()).await;

    assert_eq!(answer.status(), 400);
    assert!(!inside(&browser, &app).await);
}

#[tokio::test]
async fn console_sign_out_needs_the_csrf_token_and_then_ends_the_console_session() {
    let app = spawn_app().await;
    administrator(&app, "root").await;
    let browser = Browser::new();
    let (_, dashboard) = sign_in(&browser, &app, "root").await;
    let csrf = input(&dashboard.text().await.expect("dashboard"), "csrf_token").expect("csrf");

    let forged = browser.post(&app.url("/console/logout"), &[("csrf_token", "forged")]).await;
    let still_inside = inside(&browser, &app).await;
    let signed_out = browser.post(&app.url("/console/logout"), &[("csrf_token", &csrf)]).await;

    assert_eq!(forged.status(), 400);
    assert!(still_inside, "a refused change changes nothing");
    assert_eq!(signed_out.status(), 200);
    assert!(!inside(&browser, &app).await);
}

#[tokio::test]
async fn console_session_ends_when_its_user_is_no_longer_an_administrator() {
    let app = spawn_app().await;
    let id = administrator(&app, "root").await;
    let browser = Browser::new();
    sign_in(&browser, &app, "root").await;
    assert!(inside(&browser, &app).await);

    let body = json!({"username": "root", "admin": false});
    let demoted = app.admin(Method::PUT, &format!("/admin/users/{id}"), Some(body)).await;
    let refused = browser.get(&app.url("/console")).await;

    assert_eq!(demoted.status(), 200);
    assert_eq!(refused.status(), 403);
    assert!(!inside(&browser, &app).await);
}
