//! `/console`: the admin console signs in through our own code flow and shows a dashboard
//! (docs/REFERENCE.md §3.12).

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::browser::{Browser, PASSWORD, consent, input, location, log_in, user};
use crate::helpers::{TestApp, spawn_app};

/// An administrator with `PASSWORD`; returns their id.
pub(crate) async fn administrator(app: &TestApp, username: &str) -> String {
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
pub(crate) async fn sign_in(browser: &Browser, app: &TestApp, username: &str) -> (u16, Response) {
    let callback = walk_to_callback(browser, app, username).await;
    let answer = browser.get(&callback).await;
    let status = answer.status().as_u16();
    (status, browser.follow(app, answer).await)
}

/// Whether this browser is inside the console (not sent off to sign in).
pub(crate) async fn inside(browser: &Browser, app: &TestApp) -> bool {
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
    assert!(!html.contains("style="));
    // No script on a page that needs none; nothing inline anywhere.
    assert_eq!(html.matches("<script").count(), 0);
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

/// An administrator's browser inside the console; returns it with the administrator's id.
pub(crate) async fn console_browser(app: &TestApp) -> (Browser, String) {
    let id = administrator(app, "root").await;
    let browser = Browser::new();
    let (status, _) = sign_in(&browser, app, "root").await;
    assert_eq!(status, 303);
    (browser, id)
}

pub(crate) async fn page(browser: &Browser, app: &TestApp, path: &str) -> String {
    let response = browser.get(&app.url(path)).await;
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.expect("page")
}

fn shown_client_id(html: &str) -> String {
    let start = html.find("id=\"client-id\">").expect("a client id") + "id=\"client-id\">".len();
    html[start..start + html[start..].find('<').expect("end")].to_owned()
}

pub(crate) async fn client_credentials_status(app: &TestApp, id: &str, secret: &str) -> u16 {
    let form = [("grant_type", "client_credentials")];
    app.token_basic(id, secret, &form).await.status().as_u16()
}

/// The events about `subject`, as (type, actor id).
pub(crate) async fn events_about(app: &TestApp, subject: &str) -> Vec<(String, String)> {
    let path = format!("/admin/events?subject={subject}");
    let body: Value = app.admin(Method::GET, &path, None).await.json().await.expect("JSON");
    let items = body["items"].as_array().expect("items").iter();
    items
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_owned(),
                e["actor"]["id"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Registers a client_credentials client through the console's form.
async fn register_at_console(browser: &Browser, app: &TestApp, csrf: Option<&str>) -> Response {
    let mut form = vec![
        ("client_name", "Nightly reports"),
        ("grant_types", "client_credentials"),
        ("scope", ""),
        ("token_endpoint_auth_method", "client_secret_basic"),
    ];
    if let Some(csrf) = csrf {
        form.push(("csrf_token", csrf));
    }
    browser.post(&app.url("/console/clients"), &form).await
}

#[tokio::test]
async fn console_registers_a_client_and_shows_its_secret_once_for_use_at_the_token_endpoint() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let form = page(&browser, &app, "/console/clients/new").await;
    let csrf = input(&form, "csrf_token").expect("csrf");

    let without_token = register_at_console(&browser, &app, None).await;
    let created = register_at_console(&browser, &app, Some(&csrf)).await;

    assert_eq!(without_token.status(), 400);
    assert_eq!(created.status(), 201);
    let html = created.text().await.expect("page");
    let id = shown_client_id(&html);
    let secret = input(&html, "client_secret").expect("the secret, once");
    assert_eq!(client_credentials_status(&app, &id, &secret).await, 200);
    let again = page(&browser, &app, &format!("/console/clients/{id}")).await;
    assert!(!again.contains(&secret), "the secret is shown only once");
    let listed = page(&browser, &app, "/console/clients").await;
    assert_eq!(
        listed.matches("Nightly reports").count(),
        1,
        "one client: the refused form made none"
    );
    let events = events_about(&app, &format!("client:{id}")).await;
    assert_eq!(events, [("client.created".to_owned(), format!("user:{admin_id}"))]);
}

#[tokio::test]
async fn console_refuses_invalid_client_metadata_with_the_admin_api_rules() {
    let app = spawn_app().await;
    let (browser, _) = console_browser(&app).await;
    let csrf =
        input(&page(&browser, &app, "/console/clients/new").await, "csrf_token").expect("csrf");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("client_name", "Web"),
        ("grant_types", "authorization_code"),
        ("redirect_uris", "http://evil.example/cb"),
        ("scope", "openid"),
        ("token_endpoint_auth_method", "client_secret_basic"),
    ];

    let refused = browser.post(&app.url("/console/clients"), &form).await;

    assert_eq!(refused.status(), 400);
    let html = refused.text().await.expect("page");
    assert!(html.contains("redirect_uris") && html.contains("class=\"error\""), "{html}");
}

#[tokio::test]
async fn console_rotates_a_secret_so_only_the_new_one_works() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let (id, old) = app.service_client("", &[]).await;
    let detail = page(&browser, &app, &format!("/console/clients/{id}")).await;
    let csrf = input(&detail, "csrf_token").expect("csrf");
    let rotate = app.url(&format!("/console/clients/{id}/secret"));

    let forged = browser.post(&rotate, &[("csrf_token", "forged")]).await;
    let old_after_forged = client_credentials_status(&app, &id, &old).await;
    let rotated = browser.post(&rotate, &[("csrf_token", &csrf)]).await;

    assert_eq!(forged.status(), 400);
    assert_eq!(old_after_forged, 200, "a refused change changes nothing");
    assert_eq!(rotated.status(), 200);
    let new = input(&rotated.text().await.expect("page"), "client_secret").expect("new secret");
    assert_eq!(client_credentials_status(&app, &id, &new).await, 200);
    assert_eq!(client_credentials_status(&app, &id, &old).await, 401);
    let events = events_about(&app, &format!("client:{id}")).await;
    assert_eq!(events[0], ("client.secret_rotated".to_owned(), format!("user:{admin_id}")));
}

#[tokio::test]
async fn console_deletes_a_client_only_after_the_confirmation_step() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let (id, secret) = app.service_client("", &[]).await;

    let detail = page(&browser, &app, &format!("/console/clients/{id}")).await;
    let confirm = page(&browser, &app, &format!("/console/clients/{id}/delete")).await;
    let still_there = client_credentials_status(&app, &id, &secret).await;
    let csrf = input(&confirm, "csrf_token").expect("csrf");
    let deleted = browser
        .post(&app.url(&format!("/console/clients/{id}/delete")), &[("csrf_token", &csrf)])
        .await;

    assert!(detail.contains(&format!("/console/clients/{id}/delete")));
    assert!(confirm.contains("cannot be undone"));
    assert_eq!(still_there, 200, "opening the confirmation deletes nothing");
    assert_eq!(deleted.status(), 303);
    assert_eq!(app.admin(Method::GET, &format!("/admin/clients/{id}"), None).await.status(), 404);
    assert_eq!(client_credentials_status(&app, &id, &secret).await, 401);
    let events = events_about(&app, &format!("client:{id}")).await;
    assert_eq!(events[0], ("client.deleted".to_owned(), format!("user:{admin_id}")));
}

#[tokio::test]
async fn console_searches_clients_by_name_or_id_ignoring_case() {
    let app = spawn_app().await;
    let (browser, _) = console_browser(&app).await;
    let alpha = app
        .create_client(
            json!({"client_name": "Alpha_Reports", "grant_types": ["client_credentials"]}),
        )
        .await;
    app.create_client(json!({"client_name": "Beta", "grant_types": ["client_credentials"]})).await;
    let alpha_id = alpha["client_id"].as_str().expect("id");

    let by_name = page(&browser, &app, "/console/clients?q=alpha_r").await;
    let by_id = page(&browser, &app, &format!("/console/clients?q={alpha_id}")).await;
    let wildcard = page(&browser, &app, "/console/clients?q=a%25r").await;

    assert!(by_name.contains("Alpha_Reports") && !by_name.contains("Beta"));
    assert!(by_id.contains("Alpha_Reports") && !by_id.contains("Beta"));
    assert!(wildcard.contains("No clients match"), "% is matched literally");
}

#[tokio::test]
async fn console_events_page_shows_the_consoles_changes_with_the_administrator_as_actor() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let (id, _) = app.service_client("", &[]).await;
    let detail = page(&browser, &app, &format!("/console/clients/{id}")).await;
    let csrf = input(&detail, "csrf_token").expect("csrf");
    let rotate = app.url(&format!("/console/clients/{id}/secret"));
    assert_eq!(browser.post(&rotate, &[("csrf_token", &csrf)]).await.status(), 200);
    let actor = format!("user:{admin_id}");

    let by_actor =
        page(&browser, &app, &format!("/console/events?type=&actor={actor}&subject=")).await;
    let by_type = page(&browser, &app, "/console/events?type=client.created&actor=&subject=").await;
    let bad_type = browser.get(&app.url("/console/events?type=nonsense")).await;

    let rows: Vec<&str> = by_actor.split("<tr>").skip(2).collect();
    assert!(
        rows.iter().any(|r| r.contains("client.secret_rotated")
            && r.contains(&format!(">{actor}<"))
            && r.contains(&format!(">client:{id}<"))),
        "{by_actor}"
    );
    assert!(rows.iter().any(|r| r.contains("console.sign_in")));
    assert!(rows.iter().all(|r| r.contains(&format!(">{actor}<"))), "only that actor's events");
    assert!(by_type.contains(&format!(">client:{id}<")));
    assert!(!by_type.contains("client.secret_rotated</td>"));
    assert_eq!(bad_type.status(), 400);
}

#[tokio::test]
async fn console_sign_in_asks_no_consent_and_returns_to_the_page_asked_for() {
    let app = spawn_app().await;
    let admin_id = administrator(&app, "root").await;
    let browser = Browser::new();
    let asked = "/console/events?type=client.created&actor=&subject=";

    let login = browser.follow(&app, browser.get(&app.url(asked)).await).await;
    let login = login.text().await.expect("login page");
    let signed_in = log_in(&browser, &app, &login, "root", PASSWORD).await;
    let landed = browser.follow(&app, signed_in).await;

    // Straight from the login to the page first asked for: no consent page in between.
    assert_eq!(landed.status(), 200);
    assert_eq!(landed.url().path(), "/console/events");
    assert_eq!(landed.url().query(), Some("type=client.created&actor=&subject="));
    assert!(landed.text().await.expect("page").contains("<h1>Events</h1>"));
    // The grant is recorded all the same, as implied by the console.
    let path = "/admin/events?type=consent.given";
    let body: Value = app.admin(Method::GET, path, None).await.json().await.expect("JSON");
    let given = &body["items"][0];
    assert_eq!(given["actor"]["id"], format!("user:{admin_id}"));
    assert_eq!(given["detail"]["by"], "console");
}

#[tokio::test]
async fn console_events_page_through_a_macd_cursor_and_refuse_a_forged_one() {
    let app = spawn_app().await;
    let (browser, _) = console_browser(&app).await;
    for i in 0..55 {
        let scope = json!({"name": format!("reports.{i:02}"), "description": "Reports"});
        assert_eq!(app.admin(Method::POST, "/admin/scopes", Some(scope)).await.status(), 201);
    }
    let subjects = |html: &str| -> Vec<String> {
        html.split("event-subject\">")
            .skip(1)
            .map(|r| r[..r.find('<').expect("end")].to_owned())
            .collect()
    };

    let first = page(&browser, &app, "/console/events?type=scope.created&actor=&subject=").await;
    let end = first.find("\">Older events</a>").expect("a link to older events");
    let start = first[..end].rfind("href=\"").expect("href") + "href=\"".len();
    let older = crate::browser::unescape(&first[start..end]);
    let second = page(&browser, &app, &older).await;
    let cursor = older.split("cursor=").nth(1).expect("a cursor").to_owned();
    let forged = older.replace(&cursor, &format!("A{}", &cursor[1..]));
    let raw_id = older.replace(&format!("cursor={cursor}"), "before=00");

    let mut seen = subjects(&first);
    assert_eq!(seen.len(), 50);
    assert_eq!(subjects(&second).len(), 5);
    assert!(!second.contains("Older events"));
    seen.extend(subjects(&second));
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 55, "every event once, across the two pages");
    assert_eq!(browser.get(&app.url(&forged)).await.status(), 400);
    // A raw event id is not a cursor: it is ignored, and the first page comes back.
    assert_eq!(subjects(&page(&browser, &app, &raw_id).await).len(), 50);
}

#[tokio::test]
async fn only_the_client_page_may_run_the_consoles_own_script_and_other_pages_none() {
    let app = spawn_app().await;
    let (browser, _) = console_browser(&app).await;
    let (id, _) = app.service_client("", &[]).await;

    let client = browser.get(&app.url(&format!("/console/clients/{id}"))).await;
    let dashboard = browser.get(&app.url("/console")).await;
    let script = app.get("/static/console.js").await;

    let csp =
        |r: &Response| r.headers()["content-security-policy"].to_str().expect("csp").to_owned();
    assert_eq!(
        csp(&client),
        "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    );
    let html = client.text().await.expect("page");
    assert_eq!(html.matches("<script").count(), 1, "one script, the console's own file");
    assert!(html.contains(r#"<script src="/static/console.js" defer></script>"#));
    assert!(!csp(&dashboard).contains("script-src"));
    assert_eq!(script.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(script.text().await.expect("script").contains("data-copy"));
}

/// What the dashboard shows for `id`, once it shows `value` (the counts are flushed every
/// sync interval, so they may lag that long).
async fn eventually_shows(browser: &Browser, app: &TestApp, id: &str, value: &str) -> String {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let html = browser.get(&app.url("/console")).await.text().await.expect("dashboard");
        if shows(&html, id, value) {
            return html;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} never showed {value:?}:\n{html}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_dashboard_counts_every_successful_token_response_and_nothing_else() {
    use crate::browser::{tokens_for, web_client_with};
    let app = spawn_app().await;
    let hour = chrono::Utc::now().format("%Y-%m-%d %H:00").to_string();
    // Every admin API call below takes a fresh client_credentials token: 4 of them.
    administrator(&app, "root").await;
    user(&app, "stan").await;
    let (id, secret) = app.service_client("profile", &[]).await;
    let web = web_client_with(&app, "openid offline_access", json!({})).await;
    for _ in 0..3 {
        assert!(app.client_token(&id, &secret, None).await["access_token"].is_string());
    }
    // A code exchange and a refresh: 2 more.
    let tokens = tokens_for(&app, &web, "stan", "openid offline_access").await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    assert_eq!(app.token_basic(&web.0, &web.1, &form).await.status(), 200);
    // Refused: neither counts.
    let wrong = app.token_basic(&id, "not the secret", &[("grant_type", "client_credentials")]);
    assert_eq!(wrong.await.status(), 401);
    let unknown = app.token_basic(&web.0, &web.1, &[("grant_type", "password")]).await;
    assert_eq!(unknown.status(), 400);

    // The console's own sign-in redeems its code in-process, not at /token: not counted.
    let browser = Browser::new();
    let (status, _) = sign_in(&browser, &app, "root").await;
    assert_eq!(status, 303);
    let html = eventually_shows(&browser, &app, "token-totals", "9 tokens issued.").await;

    // In the table too, beside the hour's sign-ins (stan's and root's), unless the hour turned.
    if hour == chrono::Utc::now().format("%Y-%m-%d %H:00").to_string() {
        let row = format!("<td>{hour}</td><td>2</td><td>0</td><td>9</td>");
        assert!(html.contains(&row), "{row} in\n{html}");
    }
    assert!(html.contains("<rect class=\"tokens\""));
    assert!(!html.contains("style="));
}
