//! Login sessions: idle and absolute lifetimes, and logout deleting the session server-side.

use std::time::Duration;

use reqwest::StatusCode;

use crate::browser::{Browser, PASSWORD, input, location, log_in, user};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

async fn logged_in(app: &TestApp, username: &str) -> (Browser, String) {
    user(app, username).await;
    let browser = Browser::new();
    let page = browser.get(&app.url("/login")).await.text().await.expect("page");
    let response = log_in(&browser, app, &page, username, PASSWORD).await;
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("castellan_session="))
        .expect("session cookie");
    let value = cookie.split(';').next().expect("pair").to_owned();
    (browser, value)
}

async fn signed_in(browser: &Browser, app: &TestApp) -> bool {
    browser.get(&app.url("/account")).await.status() == StatusCode::OK
}

#[tokio::test]
async fn a_session_ends_after_its_idle_timeout() {
    let app = spawn_app_with(|s| s.session_idle_timeout = Duration::from_secs(1)).await;
    let (browser, _) = logged_in(&app, "una").await;
    assert!(signed_in(&browser, &app).await);

    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert!(!signed_in(&browser, &app).await);
}

#[tokio::test]
async fn use_keeps_a_session_alive_until_its_absolute_lifetime() {
    let app = spawn_app_with(|s| {
        s.session_lifetime = Duration::from_secs(3);
        s.session_idle_timeout = Duration::from_secs(1);
    })
    .await;
    let (browser, _) = logged_in(&app, "vic").await;
    let mut alive = Vec::new();

    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        alive.push(signed_in(&browser, &app).await);
    }

    assert!(
        alive[..4].iter().all(|a| *a),
        "used every 0.5 s, it outlives its 1 s idle timeout: {alive:?}"
    );
    assert!(!alive[7], "but ends at its 3 s absolute lifetime: {alive:?}");
}

#[tokio::test]
async fn logout_asks_on_get_and_deletes_the_session_on_post() {
    let app = spawn_app().await;
    let (browser, cookie) = logged_in(&app, "walt").await;

    let confirm = browser.get(&app.url("/logout")).await.text().await.expect("page");
    assert!(signed_in(&browser, &app).await, "a GET alone signs nobody out");
    let forged = browser.post(&app.url("/logout"), &[("csrf_token", "nope")]).await;
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);
    let done = browser
        .post(&app.url("/logout"), &[("csrf_token", &input(&confirm, "csrf_token").expect("csrf"))])
        .await;

    assert_eq!(done.status(), StatusCode::OK);
    assert!(!signed_in(&browser, &app).await);
    // Replaying the old cookie finds nothing: the row is gone, not just the cookie.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(app.url("/account"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET");
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    assert!(location(&replay).expect("to login").contains("/login"));
}

#[tokio::test]
async fn with_an_https_issuer_cookies_are_secure_and_host_prefixed() {
    let issuer = castellan::config::Issuer::parse("https://login.example.test").expect("issuer");
    let app = spawn_app_with(|s| s.issuer = Some(issuer)).await;
    user(&app, "xena").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let set_cookies = |response: &reqwest::Response| -> Vec<String> {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("ascii").to_owned())
            .collect()
    };

    let login = http.get(app.url("/login")).send().await.expect("GET");
    let csrf_cookie = set_cookies(&login)
        .into_iter()
        .find(|c| c.starts_with("__Host-castellan_csrf="))
        .expect("csrf cookie");
    let page = login.text().await.expect("page");
    let posted = http
        .post(app.url("/login"))
        .header("cookie", csrf_cookie.split(';').next().expect("pair"))
        .form(&[
            ("username", "xena"),
            ("password", PASSWORD),
            ("csrf_token", &input(&page, "csrf_token").expect("csrf")),
            ("return_to", "/account"),
        ])
        .send()
        .await
        .expect("POST");

    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    let session = set_cookies(&posted)
        .into_iter()
        .find(|c| c.starts_with("__Host-castellan_session="))
        .expect("session cookie");
    for cookie in [&csrf_cookie, &session] {
        assert!(
            cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("Path=/"),
            "{cookie}"
        );
        assert!(!cookie.contains("Domain"), "{cookie}");
    }
}
