//! `/account` self-service (docs/REFERENCE.md §3.6): changing the password (the current one
//! checked and throttled like a sign-in, the new one under the admin API's rule, every other
//! session and every earlier token ended, this browser kept), the list of live sessions with
//! their device and address, ending another one by its opaque handle, and signing out.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::browser::{
    Browser, PASSWORD, input, location, log_in, tokens_for, unescape, user, web_client,
};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const NEW_PASSWORD: &str = "an even longer passphrase";

/// A browser sending `user_agent`, signed in as `username` with `password`, its sign-in
/// coming from `address` (through the trusted proxy, when the app trusts one).
async fn signed_in_as(
    app: &TestApp,
    username: &str,
    password: &str,
    user_agent: &str,
    address: &str,
) -> Browser {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(user_agent)
        .build()
        .expect("client");
    let browser = Browser { http };
    let page = browser.get(&app.url("/login")).await.text().await.expect("page");
    let form = [
        ("username", username),
        ("password", password),
        ("csrf_token", &input(&page, "csrf_token").expect("csrf")),
        ("return_to", "/account"),
    ];
    let response = browser.post_from(&app.url("/login"), &form, address).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
    browser
}

async fn signed_in(app: &TestApp, username: &str) -> Browser {
    signed_in_as(app, username, PASSWORD, "castellan-tests", "203.0.113.1").await
}

/// Whether `password` signs `username` in, in a fresh browser.
async fn password_works(app: &TestApp, username: &str, password: &str) -> bool {
    let browser = Browser::new();
    let page = browser.get(&app.url("/login")).await.text().await.expect("page");
    log_in(&browser, app, &page, username, password).await.status() == StatusCode::SEE_OTHER
}

async fn account(browser: &Browser, app: &TestApp) -> reqwest::Response {
    browser.get(&app.url("/account")).await
}

async fn still_signed_in(browser: &Browser, app: &TestApp) -> bool {
    let response = account(browser, app).await;
    match response.status() {
        StatusCode::OK => true,
        StatusCode::SEE_OTHER => {
            assert!(location(&response).expect("location").contains("/login"));
            false
        }
        other => panic!("unexpected /account status {other}"),
    }
}

/// Posts the password form from `browser`, with its page's CSRF token unless `csrf` is false.
async fn change_password(
    browser: &Browser,
    app: &TestApp,
    current: &str,
    new: &str,
    confirm: &str,
    csrf: bool,
) -> reqwest::Response {
    let page = account(browser, app).await.text().await.expect("page");
    let token = input(&page, "csrf_token").expect("csrf");
    let mut form =
        vec![("current_password", current), ("new_password", new), ("confirm_password", confirm)];
    if csrf {
        form.push(("csrf_token", &token));
    }
    browser.post(&app.url("/account/password"), &form).await
}

/// The devices a sessions list shows, unescaped.
fn devices(page: &str) -> Vec<String> {
    const OPEN: &str = "<span class=\"device\">";
    page.split(OPEN)
        .skip(1)
        .map(|rest| unescape(&rest[..rest.find("</span>").expect("closed")]))
        .collect()
}

/// The events about `user:{id}`, newest first.
async fn events_about(app: &TestApp, id: &str) -> Vec<Value> {
    let path = format!("/admin/events?limit=100&subject=user:{id}");
    let response = app.admin(Method::GET, &path, None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    body["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_tokens_but_keeps_this_browser() {
    let app = spawn_app().await;
    let id = user(&app, "ada").await;
    let client = web_client(&app, "Notes", "openid profile").await;
    let earlier = tokens_for(&app, &client, "ada", "openid profile").await;
    let earlier = earlier["access_token"].as_str().expect("access token").to_owned();
    assert_eq!(app.userinfo(&earlier).await.status(), 200, "the token works before");
    let here = signed_in(&app, "ada").await;
    let elsewhere = signed_in(&app, "ada").await;

    let response = change_password(&here, &app, PASSWORD, NEW_PASSWORD, NEW_PASSWORD, true).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).expect("location").ends_with("/account"));

    assert!(still_signed_in(&here, &app).await, "this browser stays signed in");
    assert!(!still_signed_in(&elsewhere, &app).await, "the other session ended");
    assert_eq!(app.userinfo(&earlier).await.status(), 401, "the earlier token is cut off");
    assert!(!password_works(&app, "ada", PASSWORD).await, "the old password fails");
    assert!(password_works(&app, "ada", NEW_PASSWORD).await, "the new password works");

    let events = events_about(&app, &id).await;
    let changed: Vec<&Value> =
        events.iter().filter(|e| e["type"] == "user.password_changed").collect();
    assert_eq!(changed.len(), 1, "{events:?}");
    assert_eq!(changed[0]["outcome"], "success");
    assert_eq!(changed[0]["actor"]["id"], format!("user:{id}"));
    let all = serde_json::to_string(&events).expect("JSON");
    assert!(!all.contains(PASSWORD) && !all.contains(NEW_PASSWORD), "no password in events");
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing_and_is_throttled_like_a_sign_in() {
    let app = spawn_app().await;
    let id = user(&app, "bea").await;
    let here = signed_in(&app, "bea").await;
    let elsewhere = signed_in(&app, "bea").await;

    let wrong = "not the password";
    let response = change_password(&here, &app, wrong, NEW_PASSWORD, NEW_PASSWORD, true).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.expect("page").contains("current password is wrong"));
    assert!(still_signed_in(&elsewhere, &app).await, "no session ended");
    assert!(password_works(&app, "bea", PASSWORD).await, "the password is unchanged");
    assert!(!password_works(&app, "bea", NEW_PASSWORD).await);

    for attempt in 2..=10 {
        let response = change_password(&here, &app, wrong, NEW_PASSWORD, NEW_PASSWORD, true).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let response = change_password(&here, &app, wrong, NEW_PASSWORD, NEW_PASSWORD, true).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "the 11th is refused");
    assert!(response.headers().get("retry-after").is_some());
    // Refused before the password is checked: even the right one does nothing now.
    let response = change_password(&here, &app, PASSWORD, NEW_PASSWORD, NEW_PASSWORD, true).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(still_signed_in(&elsewhere, &app).await);

    let events = events_about(&app, &id).await;
    let failed = events
        .iter()
        .filter(|e| e["type"] == "user.password_changed" && e["outcome"] == "failure")
        .count();
    assert_eq!(failed, 10, "each wrong current password is recorded");
    assert!(
        events.iter().all(|e| e["type"] != "user.password_changed" || e["outcome"] == "failure")
    );
    let all = serde_json::to_string(&events).expect("JSON");
    assert!(!all.contains(wrong) && !all.contains(NEW_PASSWORD), "no password in events");
}

#[tokio::test]
async fn a_new_password_must_keep_the_rule_match_its_confirmation_and_carry_the_token() {
    let app = spawn_app().await;
    user(&app, "cy").await;
    let here = signed_in(&app, "cy").await;
    let elsewhere = signed_in(&app, "cy").await;

    let response = change_password(&here, &app, PASSWORD, "short", "short", true).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.expect("page").contains("8 to 1024 characters"));

    let response =
        change_password(&here, &app, PASSWORD, NEW_PASSWORD, "another long passphrase", true).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.expect("page").contains("confirmation differ"));

    let response = change_password(&here, &app, PASSWORD, NEW_PASSWORD, NEW_PASSWORD, false).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "no CSRF token");

    assert!(still_signed_in(&elsewhere, &app).await, "no session ended");
    assert!(password_works(&app, "cy", PASSWORD).await, "the password is unchanged");
}

#[tokio::test]
async fn sessions_show_their_device_and_address_and_one_ends_the_other() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    let id = user(&app, "dee").await;
    let here = signed_in_as(&app, "dee", PASSWORD, "Firefox/140 here", "203.0.113.7").await;
    let long = format!("<b>Phone</b> {}", "x".repeat(200));
    let there = signed_in_as(&app, "dee", PASSWORD, &long, "198.51.100.9").await;

    let page = account(&here, &app).await.text().await.expect("page");
    let shown = devices(&page);
    let cut: String = long.chars().take(120).collect();
    assert_eq!(shown.len(), 2, "{page}");
    assert!(shown.contains(&"Firefox/140 here".to_owned()), "{shown:?}");
    assert!(shown.contains(&cut), "the device, cut to 120 characters: {shown:?}");
    assert!(!page.contains("<b>Phone</b>"), "the device is text, not markup");
    assert!(page.contains("203.0.113.7") && page.contains("198.51.100.9"), "{page}");
    assert_eq!(page.matches("this browser").count(), 1);
    assert_eq!(page.matches("name=\"session\"").count(), 1, "an End button for the other only");

    let handle = input(&page, "session").expect("handle");
    let csrf = input(&page, "csrf_token").expect("csrf");
    let end = app.url("/account/sessions/end");
    let response = here.post(&end, &[("session", &handle)]).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST, "no CSRF token");
    assert!(still_signed_in(&there, &app).await);

    let response = here.post(&end, &[("session", &handle), ("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!still_signed_in(&there, &app).await, "that browser is signed out");
    assert!(still_signed_in(&here, &app).await, "this one is not");
    let page = account(&here, &app).await.text().await.expect("page");
    assert!(!page.contains("198.51.100.9") && !page.contains("name=\"session\""));

    let events = events_about(&app, &id).await;
    let ended = events.iter().find(|e| e["type"] == "logout").expect("a logout event");
    assert_eq!(ended["actor"]["id"], format!("user:{id}"));
    assert_eq!(ended["detail"]["by"], "account");
}

#[tokio::test]
async fn a_handle_of_another_users_session_or_a_made_up_one_ends_nothing() {
    let app = spawn_app().await;
    user(&app, "eve").await;
    user(&app, "fay").await;
    let eve = signed_in(&app, "eve").await;
    let fay = signed_in(&app, "fay").await;
    let fay_elsewhere = signed_in(&app, "fay").await;
    let fays_page = account(&fay, &app).await.text().await.expect("page");
    let fays_handle = input(&fays_page, "session").expect("fay's other session");

    let page = account(&eve, &app).await.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf");
    let end = app.url("/account/sessions/end");
    for handle in [fays_handle.as_str(), "bm90IGEgaGFuZGxl", ""] {
        let response = eve.post(&end, &[("session", handle), ("csrf_token", &csrf)]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "handle {handle:?}");
    }
    assert!(still_signed_in(&fay_elsewhere, &app).await);
    assert!(still_signed_in(&fay, &app).await);
    assert!(still_signed_in(&eve, &app).await);

    // The page's sign-out button posts to /logout with its token.
    assert!(page.contains("action=\"/logout\""), "{page}");
    let response = eve.post(&app.url("/logout"), &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(!still_signed_in(&eve, &app).await);
}
