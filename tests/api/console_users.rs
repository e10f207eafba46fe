//! `/console/users`: an administrator manages users from the console through the admin API's
//! own code paths (docs/REFERENCE.md §3.12).

use chrono::Utc;
use reqwest::{Method, Response};
use serde_json::Value;

use crate::browser::{
    Browser, PASSWORD, input, location, log_in, tokens_for, unescape, user, web_client,
};
use crate::console::{console_browser, events_about, inside, page, sign_in};
use crate::helpers::{TestApp, spawn_app};

const NEW_PASSWORD: &str = "another long passphrase";

/// Whether `username` can log in with `password` (a fresh browser at `/login`).
async fn can_log_in(app: &TestApp, username: &str, password: &str) -> bool {
    logged_in(app, username, password).await.is_some()
}

/// A browser logged in as `username`, or `None` when the login is refused.
async fn logged_in(app: &TestApp, username: &str, password: &str) -> Option<Browser> {
    let browser = Browser::new();
    let login = browser.get(&app.url("/login?return_to=%2Faccount")).await;
    let form = login.text().await.expect("login page");
    let answer = log_in(&browser, app, &form, username, password).await;
    (answer.status() == 303).then_some(browser)
}

/// Whether this browser's login session still stands.
async fn has_session(browser: &Browser, app: &TestApp) -> bool {
    browser.get(&app.url("/account")).await.status() == 200
}

/// The console's CSRF token, read off the user's page.
async fn csrf(browser: &Browser, app: &TestApp, user_id: &str) -> String {
    let html = page(browser, app, &format!("/console/users/{user_id}")).await;
    input(&html, "csrf_token").expect("csrf")
}

/// POSTs a console form to `path`.
async fn post(browser: &Browser, app: &TestApp, path: &str, form: &[(&str, &str)]) -> Response {
    browser.post(&app.url(path), form).await
}

/// Asserts a 303 back to the user's page.
fn back_to_user(response: &Response, user_id: &str) {
    assert_eq!(response.status(), 303);
    let to = location(response).expect("a redirect");
    assert!(to.ends_with(&format!("/console/users/{user_id}")), "{to}");
}

/// A user's access token from the code flow (which also opens a login session and a grant).
async fn access_token(app: &TestApp, username: &str) -> (Value, (String, String)) {
    let scope = "openid profile offline_access";
    let client = web_client(app, "Web app", scope).await;
    (tokens_for(app, &client, username, scope).await, client)
}

async fn userinfo_status(app: &TestApp, token: &Value) -> u16 {
    let token = token["access_token"].as_str().expect("access token");
    app.userinfo(token).await.status().as_u16()
}

async fn grants_of(app: &TestApp, user_id: &str) -> Vec<String> {
    let path = format!("/admin/users/{user_id}/grants");
    let body: Value = app.admin(Method::GET, &path, None).await.json().await.expect("JSON");
    let items = body["items"].as_array().expect("items").iter();
    items.map(|g| g["id"].as_str().expect("id").to_owned()).collect()
}

async fn user_json(app: &TestApp, user_id: &str) -> Value {
    let path = format!("/admin/users/{user_id}");
    app.admin(Method::GET, &path, None).await.json().await.expect("JSON")
}

/// The create form for carol.
fn create_form<'a>(csrf: &'a str, password: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("csrf_token", csrf),
        ("username", "carol"),
        ("password", password),
        ("email", "carol@example.com"),
        ("name", "Carol"),
    ]
}

/// The changes to a user recorded about them, newest first, as (type, actor id).
async fn user_changes(app: &TestApp, user_id: &str) -> Vec<(String, String)> {
    let events = events_about(app, &format!("user:{user_id}")).await;
    events.into_iter().filter(|(kind, _)| kind.starts_with("user.")).collect()
}

fn by(admin_id: &str, kind: &str) -> (String, String) {
    (kind.to_owned(), format!("user:{admin_id}"))
}

#[tokio::test]
async fn console_users_creates_a_user_who_can_then_log_in_and_refuses_bad_input() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let form = page(&browser, &app, "/console/users/new").await;
    let csrf = input(&form, "csrf_token").expect("csrf");

    let refused = post(&browser, &app, "/console/users", &create_form(&csrf, "short")).await;
    let refused_status = refused.status();
    let refused_html = refused.text().await.expect("page");
    let created = post(&browser, &app, "/console/users", &create_form(&csrf, PASSWORD)).await;
    let taken = post(&browser, &app, "/console/users", &create_form(&csrf, PASSWORD)).await;

    assert_eq!(refused_status, 400);
    assert!(refused_html.contains("class=\"error\"") && refused_html.contains("password:"));
    assert!(refused_html.contains("value=\"carol\""), "the form comes back as typed");
    assert!(!refused_html.contains("value=\"short\""), "never the password");
    assert_eq!(created.status(), 303);
    let to = location(&created).expect("to the user's page");
    let id = to.rsplit('/').next().expect("id").to_owned();
    assert_eq!(taken.status(), 409);
    let fetched = user_json(&app, &id).await;
    assert_eq!(fetched["username"], "carol");
    assert_eq!(fetched["email"], "carol@example.com");
    assert_eq!(fetched["admin"], false);
    assert!(can_log_in(&app, "carol", PASSWORD).await);
    let shown = page(&browser, &app, &format!("/console/users/{id}")).await;
    assert!(shown.contains(&format!("id=\"user-id\">{id}<")) && shown.contains("Carol"));
    assert_eq!(user_changes(&app, &id).await, [by(&admin_id, "user.created")]);
}

#[tokio::test]
async fn console_users_lists_a_page_at_a_time_and_searches_usernames_literally() {
    let app = spawn_app().await;
    let (browser, _) = console_browser(&app).await;
    user(&app, "Alice_Admin").await;
    user(&app, "alicexadmin").await;
    // Enough users for a second page, written straight to the store (hashing 50 passwords
    // would only slow the test).
    let db = app.store().await;
    for n in 0..50 {
        let now = Utc::now();
        let record = castellan::store::users::UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            username: format!("user{n:02}"),
            password_hash: "unusable".to_owned(),
            email: None,
            email_verified: false,
            name: None,
            disabled: false,
            admin: false,
            require_mfa: false,
            tokens_not_before: None,
            created_at: now,
            updated_at: now,
        };
        castellan::store::users::insert(&db, &record).await.expect("insert");
    }

    let first = page(&browser, &app, "/console/users").await;
    let next = first.split("href=\"").find_map(|rest| {
        let href = unescape(&rest[..rest.find('"')?]);
        href.contains("after=").then_some(href)
    });
    let next = next.expect("a next page link");
    let second = page(&browser, &app, &next[next.find("/console").expect("path")..]).await;
    let search = page(&browser, &app, "/console/users?q=ALICE_").await;
    let wildcard = page(&browser, &app, "/console/users?q=e%25a").await;

    // By username: Alice_Admin, alicexadmin, root, user00… user46 on the first page.
    assert!(first.contains(">Alice_Admin<") && first.contains(">user46<"), "{first}");
    assert!(!first.contains(">user47<"));
    assert!(second.contains(">user47<") && second.contains(">user49<"));
    assert!(!second.contains(">user46<") && !second.contains("after="));
    assert!(search.contains(">Alice_Admin<") && !search.contains(">alicexadmin<"));
    assert!(wildcard.contains("No users match"), "% is matched literally");
}

#[tokio::test]
async fn console_users_disabling_ends_tokens_and_logins_and_enabling_lets_them_in_again() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let bob = user(&app, "bob").await;
    let (tokens, _) = access_token(&app, "bob").await;
    let before = userinfo_status(&app, &tokens).await;
    let csrf = csrf(&browser, &app, &bob).await;
    let path = format!("/console/users/{bob}/disabled");

    let disabled =
        post(&browser, &app, &path, &[("csrf_token", &csrf), ("disabled", "true")]).await;
    let shown = page(&browser, &app, &format!("/console/users/{bob}")).await;
    let token_after = userinfo_status(&app, &tokens).await;
    let login_while_disabled = can_log_in(&app, "bob", PASSWORD).await;
    let enabled =
        post(&browser, &app, &path, &[("csrf_token", &csrf), ("disabled", "false")]).await;

    assert_eq!(before, 200);
    back_to_user(&disabled, &bob);
    assert!(shown.contains("id=\"user-disabled\">yes<") && shown.contains(">Enable<"));
    assert_eq!(token_after, 401, "a disabled user's token is refused");
    assert!(!login_while_disabled);
    back_to_user(&enabled, &bob);
    assert!(can_log_in(&app, "bob", PASSWORD).await);
    assert_eq!(userinfo_status(&app, &tokens).await, 401, "re-enabling brings nothing back");
    let changes = user_changes(&app, &bob).await;
    assert_eq!(changes[..2], [by(&admin_id, "user.updated"), by(&admin_id, "user.disabled")]);
}

#[tokio::test]
async fn console_users_resetting_a_password_swaps_it_and_ends_the_users_sessions() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let bob = user(&app, "bob").await;
    let bobs_browser = logged_in(&app, "bob", PASSWORD).await.expect("bob logs in");
    let csrf = csrf(&browser, &app, &bob).await;
    let path = format!("/console/users/{bob}/password");

    let too_short =
        post(&browser, &app, &path, &[("csrf_token", &csrf), ("password", "short")]).await;
    let too_short_status = too_short.status();
    let too_short_html = too_short.text().await.expect("page");
    let session_after_refusal = has_session(&bobs_browser, &app).await;
    let reset =
        post(&browser, &app, &path, &[("csrf_token", &csrf), ("password", NEW_PASSWORD)]).await;

    assert_eq!(too_short_status, 400);
    assert!(too_short_html.contains("a password is 8 to 1024 characters"), "{too_short_html}");
    assert!(session_after_refusal, "a refused change changes nothing");
    back_to_user(&reset, &bob);
    assert!(!has_session(&bobs_browser, &app).await, "the user's sessions ended");
    assert!(!can_log_in(&app, "bob", PASSWORD).await);
    assert!(can_log_in(&app, "bob", NEW_PASSWORD).await);
    let changes = user_changes(&app, &bob).await;
    assert_eq!(changes[0], by(&admin_id, "user.password_reset"), "{changes:?}");
    assert_eq!(changes.len(), 2, "the refused reset recorded nothing: {changes:?}");
}

#[tokio::test]
async fn console_users_admin_flag_decides_whether_the_user_may_open_the_console() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let bob = user(&app, "bob").await;
    let csrf = csrf(&browser, &app, &bob).await;
    let path = format!("/console/users/{bob}/admin-flag");
    let bobs_browser = Browser::new();

    let (refused, _) = sign_in(&bobs_browser, &app, "bob").await;
    let made = post(&browser, &app, &path, &[("csrf_token", &csrf), ("admin", "true")]).await;
    let (admitted, _) = sign_in(&bobs_browser, &app, "bob").await;
    let inside_as_admin = inside(&bobs_browser, &app).await;
    let removed = post(&browser, &app, &path, &[("csrf_token", &csrf), ("admin", "false")]).await;

    assert_eq!(refused, 403);
    back_to_user(&made, &bob);
    assert_eq!(admitted, 303);
    assert!(inside_as_admin);
    back_to_user(&removed, &bob);
    assert!(!inside(&bobs_browser, &app).await);
    assert_eq!(user_json(&app, &bob).await["admin"], false);
    let changes = user_changes(&app, &bob).await;
    assert_eq!(changes[..2], [by(&admin_id, "user.updated"), by(&admin_id, "user.updated")]);
}

#[tokio::test]
async fn console_users_revoking_a_grant_removes_it_and_stops_its_tokens() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let bob = user(&app, "bob").await;
    let (tokens, client) = access_token(&app, "bob").await;
    let grants = grants_of(&app, &bob).await;
    let [grant] = grants.as_slice() else { panic!("one grant: {grants:?}") };
    let shown = page(&browser, &app, &format!("/console/users/{bob}")).await;
    let csrf = input(&shown, "csrf_token").expect("csrf");

    let revoked =
        post(&browser, &app, &format!("/console/grants/{grant}/revoke"), &[("csrf_token", &csrf)])
            .await;
    let again =
        post(&browser, &app, &format!("/console/grants/{grant}/revoke"), &[("csrf_token", &csrf)])
            .await;

    assert!(
        shown.contains(&format!("/console/grants/{grant}/revoke")) && shown.contains("Web app")
    );
    back_to_user(&revoked, &bob);
    assert_eq!(again.status(), 404);
    assert!(grants_of(&app, &bob).await.is_empty());
    assert_eq!(userinfo_status(&app, &tokens).await, 401);
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    assert_eq!(app.token_basic(&client.0, &client.1, &form).await.status(), 400);
    let body: Value = app
        .admin(Method::GET, &format!("/admin/events?subject=grant:{grant}"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let event = &body["items"][0];
    assert_eq!(event["type"], "grant.revoked");
    assert_eq!(event["actor"]["id"], format!("user:{admin_id}"));
    assert_eq!(event["detail"]["by"], "admin");
}

#[tokio::test]
async fn console_users_ending_sessions_signs_the_user_out_everywhere() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let bob = user(&app, "bob").await;
    let bobs_browser = logged_in(&app, "bob", PASSWORD).await.expect("bob logs in");
    let (tokens, _) = access_token(&app, "bob").await;
    let shown = page(&browser, &app, &format!("/console/users/{bob}")).await;
    let csrf = input(&shown, "csrf_token").expect("csrf");

    let ended = post(
        &browser,
        &app,
        &format!("/console/users/{bob}/sessions/end"),
        &[("csrf_token", &csrf)],
    )
    .await;
    let after = page(&browser, &app, &format!("/console/users/{bob}")).await;

    assert!(shown.contains("id=\"sessions-summary\">2 active sessions.<"), "{shown}");
    back_to_user(&ended, &bob);
    assert!(after.contains("id=\"sessions-summary\">No active sessions.<"));
    assert!(!has_session(&bobs_browser, &app).await);
    assert_eq!(userinfo_status(&app, &tokens).await, 401);
    assert!(can_log_in(&app, "bob", PASSWORD).await, "the password still works");
    let changes = user_changes(&app, &bob).await;
    assert_eq!(changes[0], by(&admin_id, "user.sessions_ended"), "{changes:?}");
}

#[tokio::test]
async fn console_users_changes_without_the_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (browser, _) = console_browser(&app).await;
    let bob = user(&app, "bob").await;
    let bobs_browser = logged_in(&app, "bob", PASSWORD).await.expect("bob logs in");
    let (tokens, _) = access_token(&app, "bob").await;
    let grants = grants_of(&app, &bob).await;
    let user_before = user_json(&app, &bob).await;
    let events_before = events_about(&app, &format!("user:{bob}")).await;

    let attempts: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/console/users/{bob}/disabled"), vec![("disabled", "true")]),
        (format!("/console/users/{bob}/admin-flag"), vec![("admin", "true")]),
        (format!("/console/users/{bob}/password"), vec![("password", NEW_PASSWORD)]),
        (format!("/console/users/{bob}/sessions/end"), vec![]),
        (format!("/console/grants/{}/revoke", grants[0]), vec![]),
        ("/console/users".to_owned(), vec![("username", "mallory"), ("password", PASSWORD)]),
    ];
    for (path, form) in &attempts {
        let mut forged = form.clone();
        forged.push(("csrf_token", "forged"));
        for form in [form.clone(), forged] {
            let answer = post(&browser, &app, path, &form).await;
            assert_eq!(answer.status(), 400, "{path}");
        }
    }

    assert_eq!(user_json(&app, &bob).await, user_before);
    assert_eq!(events_about(&app, &format!("user:{bob}")).await, events_before);
    assert!(has_session(&bobs_browser, &app).await);
    assert_eq!(userinfo_status(&app, &tokens).await, 200);
    assert_eq!(grants_of(&app, &bob).await, grants);
    assert!(can_log_in(&app, "bob", PASSWORD).await);
    let listed = page(&browser, &app, "/console/users?q=mallory").await;
    assert!(listed.contains("No users match"));
}

#[tokio::test]
async fn console_users_an_administrator_cannot_disable_or_demote_themselves() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let own = page(&browser, &app, &format!("/console/users/{admin_id}")).await;
    let csrf = input(&own, "csrf_token").expect("csrf");

    let disable = post(
        &browser,
        &app,
        &format!("/console/users/{admin_id}/disabled"),
        &[("csrf_token", &csrf), ("disabled", "true")],
    )
    .await;
    let disable_status = disable.status();
    let disable_html = disable.text().await.expect("page");
    let demote = post(
        &browser,
        &app,
        &format!("/console/users/{admin_id}/admin-flag"),
        &[("csrf_token", &csrf), ("admin", "false")],
    )
    .await;
    let demote_status = demote.status();
    let demote_html = demote.text().await.expect("page");

    assert!(own.contains("This is you"));
    assert!(!own.contains("Disable (") && !own.contains(">Remove administrator<"));
    assert_eq!(disable_status, 400);
    assert!(disable_html.contains("You cannot disable yourself"), "{disable_html}");
    assert_eq!(demote_status, 400);
    assert!(demote_html.contains("You cannot remove your own administrator flag"));
    assert!(inside(&browser, &app).await, "still signed in to the console");
    let fetched = user_json(&app, &admin_id).await;
    assert_eq!(
        (fetched["admin"].as_bool(), fetched["disabled"].as_bool()),
        (Some(true), Some(false))
    );
    let changes = user_changes(&app, &admin_id).await;
    assert_eq!(changes.len(), 1, "only its creation: {changes:?}");
}

#[tokio::test]
async fn console_users_requires_a_second_factor_and_turns_a_lost_app_off() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let (milo, _, _) = crate::totp::enrolled(&app, "milo").await;
    let shown = page(&browser, &app, &format!("/console/users/{milo}")).await;
    let csrf = input(&shown, "csrf_token").expect("csrf");
    // The session the enrolment signed in with: its browser, address and method are shown.
    assert!(shown.contains("<td>pwd</td>"), "{shown}");
    assert!(shown.contains("127.0.0.1"), "{shown}");
    assert!(shown.contains("set up ") && shown.contains("10 recovery codes left"), "{shown}");

    let required = post(
        &browser,
        &app,
        &format!("/console/users/{milo}/require-mfa"),
        &[("csrf_token", &csrf), ("require_mfa", "true")],
    )
    .await;
    back_to_user(&required, &milo);
    assert_eq!(user_json(&app, &milo).await["require_mfa"], true);
    // Another change keeps the flag: the console writes the whole user.
    let disabled = post(
        &browser,
        &app,
        &format!("/console/users/{milo}/disabled"),
        &[("csrf_token", &csrf), ("disabled", "true")],
    )
    .await;
    back_to_user(&disabled, &milo);
    assert_eq!(user_json(&app, &milo).await["require_mfa"], true);

    let removed = post(
        &browser,
        &app,
        &format!("/console/users/{milo}/totp/remove"),
        &[("csrf_token", &csrf)],
    )
    .await;
    back_to_user(&removed, &milo);
    let methods: Value = app
        .admin(Method::GET, &format!("/admin/users/{milo}/methods"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(methods["totp"], Value::Null);
    let after = page(&browser, &app, &format!("/console/users/{milo}")).await;
    assert!(!after.contains("/totp/remove"), "no button without an app");
    let removal = events_about(&app, &format!("user:{milo}")).await;
    assert!(removal.contains(&("mfa.totp_removed".to_owned(), format!("user:{admin_id}"))));
    // Without the console's CSRF token nothing changes.
    let forged = post(
        &browser,
        &app,
        &format!("/console/users/{milo}/require-mfa"),
        &[("require_mfa", "false")],
    )
    .await;
    assert_eq!(forged.status(), 400);
    assert_eq!(user_json(&app, &milo).await["require_mfa"], true);
}
