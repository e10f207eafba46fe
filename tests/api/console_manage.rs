//! The console's scope and key pages, client editing and secret rotation with an overlap
//! (docs/REFERENCE.md §3.12): each change as the admin API would make it, recorded with the
//! console's administrator as the actor, and nothing done without the CSRF token.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, input, location, unescape};
use crate::console::{client_credentials_status, console_browser, events_about, page};
use crate::helpers::{TestApp, all_kids, spawn_app, spawn_app_with};

/// The console's user as the audit trail names it.
fn user(id: &str) -> String {
    format!("user:{id}")
}

/// `GET /admin/{path}`: status and JSON.
async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.admin(Method::GET, path, None).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// POSTs a console form to `path` (the request is built before the answer is awaited).
fn post<const N: usize>(
    browser: &Browser,
    app: &TestApp,
    path: &str,
    form: [(&str, &str); N],
) -> impl std::future::Future<Output = reqwest::Response> + use<N> {
    let request = browser.http.post(app.url(path)).form(&form[..]).send();
    async move { request.await.expect("POST") }
}

/// The text of a page's `<textarea name="…">`.
fn textarea(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let start = html.find(&marker).expect("the textarea") + marker.len();
    let start = start + html[start..].find('>').expect("its opening tag") + 1;
    let end = start + html[start..].find("</textarea>").expect("its end");
    unescape(&html[start..end])
}

/// Whether the page shows `value` as the text of the element with `id`.
fn shows(html: &str, id: &str, value: &str) -> bool {
    html.contains(&format!("id=\"{id}\">{value}<"))
}

#[tokio::test]
async fn console_creates_edits_and_deletes_a_scope_with_the_admin_api_rules() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let list = page(&browser, &app, "/console/scopes").await;
    let csrf = input(&list, "csrf_token").expect("csrf");
    let create = |name, description, csrf| {
        let form = [("name", name), ("description", description), ("csrf_token", csrf)];
        post(&browser, &app, "/console/scopes", form)
    };

    let forged = create("reports:read", "Read the reports", "forged").await;
    let absent = admin_get(&app, "/admin/scopes/reports:read").await.0;
    let created = create("reports:read", "Read the reports", &csrf).await;
    let taken = create("reports:read", "Again", &csrf).await;
    let bad_name = create("two words", "A description", &csrf).await;

    assert!(list.contains(">openid<"), "the built-in scopes are listed");
    assert_eq!(forged.status(), 400);
    assert_eq!(absent, 404, "a form without its CSRF token creates nothing");
    assert_eq!(created.status(), 303);
    let at = location(&created).expect("the scope's page");
    assert_eq!(at, "/console/scopes/reports%3Aread");
    let (_, listed) = admin_get(&app, "/admin/scopes?limit=100").await;
    let listed = listed["items"].as_array().expect("items").clone();
    assert!(
        listed
            .iter()
            .any(|s| s == &json!({"name": "reports:read", "description": "Read the reports"})),
        "{listed:?}"
    );
    assert_eq!(taken.status(), 409);
    assert_eq!(bad_name.status(), 400);
    let refused = bad_name.text().await.expect("page");
    assert!(refused.contains("class=\"error\"") && refused.contains("name: a scope name is"));
    assert_eq!(input(&refused, "name").as_deref(), Some("two words"), "the form, as typed");
    assert!(!page(&browser, &app, "/console/scopes").await.contains("two words"));

    // Edit the description; an empty one is refused with the form shown again.
    let scope_page = page(&browser, &app, &at).await;
    assert_eq!(input(&scope_page, "description").as_deref(), Some("Read the reports"));
    let edit = |description, csrf| {
        post(&browser, &app, &at, [("description", description), ("csrf_token", csrf)])
    };
    let empty = edit("", &csrf).await;
    let saved = edit("Read every report", &csrf).await;
    let forged_edit = edit("Forged", "forged").await;

    assert_eq!(empty.status(), 400);
    assert!(empty.text().await.expect("page").contains("description: description must be"));
    assert_eq!(saved.status(), 200);
    assert_eq!(forged_edit.status(), 400);
    let (_, scope) = admin_get(&app, "/admin/scopes/reports:read").await;
    assert_eq!(scope["description"], "Read every report");

    // Delete after the confirmation step; built-in scopes stay.
    let confirm = page(&browser, &app, &format!("{at}/delete")).await;
    let still_there = admin_get(&app, "/admin/scopes/reports:read").await.0;
    let deleted = post(&browser, &app, &format!("{at}/delete"), [("csrf_token", &csrf)]).await;
    let builtin_confirm = browser.get(&app.url("/console/scopes/openid/delete")).await;
    let builtin = post(&browser, &app, "/console/scopes/openid/delete", [("csrf_token", &csrf)]);
    let builtin = builtin.await;

    assert!(confirm.contains("cannot be undone"));
    assert_eq!(still_there, 200, "opening the confirmation deletes nothing");
    assert_eq!(deleted.status(), 303);
    assert_eq!(admin_get(&app, "/admin/scopes/reports:read").await.0, 404);
    assert_eq!(builtin_confirm.status(), 409);
    assert_eq!(builtin.status(), 409);
    assert!(builtin.text().await.expect("page").contains("built in"));
    assert_eq!(admin_get(&app, "/admin/scopes/openid").await.0, 200);
    let events = events_about(&app, "scope:reports:read").await;
    let actor = user(&admin_id);
    let expected: Vec<(String, String)> = ["scope.deleted", "scope.updated", "scope.created"]
        .into_iter()
        .map(|t| (t.to_owned(), actor.clone()))
        .collect();
    assert_eq!(events, expected, "one event per change, none for the refused ones");
    assert!(events_about(&app, "scope:openid").await.is_empty());
}

/// The `kid` of a fresh client_credentials access token.
async fn signing_kid(app: &TestApp, (id, secret): &(String, String)) -> String {
    let token = app.client_token(id, secret, None).await;
    let token = token["access_token"].as_str().expect("access token");
    jsonwebtoken::decode_header(token).expect("JWT header").kid.expect("kid")
}

#[tokio::test]
async fn console_lists_the_keys_and_rotates_them_explaining_a_refusal_first() {
    // JWKS caches of a minute: the next key made at start is too new to sign yet.
    let app = spawn_app_with(|s| s.jwks_max_age = Duration::from_secs(60)).await;
    let (browser, admin_id) = console_browser(&app).await;
    let service = app.service_client("", &[]).await;
    let before = signing_kid(&app, &service).await;
    let keys = page(&browser, &app, "/console/keys").await;
    let published = all_kids(&app.jwks().await);
    let csrf = input(&keys, "csrf_token").expect("csrf");
    let rotate = app.url("/console/keys/rotate");

    let forged = browser.post(&rotate, &[("csrf_token", "forged")]).await;
    let refused = browser.post(&rotate, &[("csrf_token", &csrf)]).await;
    let after_refusal = signing_kid(&app, &service).await;
    let refused_status = refused.status();
    let explained = refused.text().await.expect("page");
    let forced = browser.post(&rotate, &[("csrf_token", &csrf), ("force", "true")]).await;
    let after = signing_kid(&app, &service).await;

    assert!(shows(&keys, "signing-kid", &before), "{keys}");
    assert!(published.iter().all(|kid| keys.contains(&format!(">{kid}<"))), "every key listed");
    assert!(keys.contains(">active<") && keys.contains(">next<"));
    assert!(!keys.contains("none scheduled"), "the next rotation is shown");
    assert_eq!(forged.status(), 400);
    assert_eq!(refused_status, 409);
    assert!(explained.contains("too new") && explained.contains("Rotate anyway"), "{explained}");
    assert_eq!(input(&explained, "force").as_deref(), Some("true"));
    assert_eq!(after_refusal, before, "neither refusal rotated anything");
    assert_eq!(forced.status(), 303);
    assert_ne!(after, before, "tokens are signed by the new key");
    let published = all_kids(&app.jwks().await);
    assert!(published.contains(&after) && published.contains(&before), "both stay published");
    assert!(shows(&page(&browser, &app, "/console/keys").await, "signing-kid", &after));
    let events = events_about(&app, &format!("key:{after}")).await;
    assert_eq!(events, [("key.rotated".to_owned(), user(&admin_id))]);
}

/// The edit form of a client, posted with `redirect_uris` and `csrf`.
async fn save_client(
    browser: &Browser,
    app: &TestApp,
    id: &str,
    redirect_uris: &str,
    csrf: &str,
) -> reqwest::Response {
    let form = [
        ("csrf_token", csrf),
        ("client_name", "Reports web"),
        ("redirect_uris", redirect_uris),
        ("grant_types", "authorization_code"),
        ("grant_types", "refresh_token"),
        ("scope", "openid email"),
        ("token_endpoint_auth_method", "client_secret_basic"),
    ];
    browser.post(&app.url(&format!("/console/clients/{id}")), &form).await
}

#[tokio::test]
async fn console_edits_a_client_keeping_the_metadata_its_form_does_not_show() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let registered = app
        .create_client(json!({
            "client_name": "Reports",
            "redirect_uris": ["https://app.example/cb"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid",
            "audience": ["https://api.example/reports"],
            "access_token_lifetime": 300,
            "post_logout_redirect_uris": ["https://app.example/bye"],
        }))
        .await;
    let id = registered["client_id"].as_str().expect("id").to_owned();
    let (_, before) = admin_get(&app, &format!("/admin/clients/{id}")).await;
    let form = page(&browser, &app, &format!("/console/clients/{id}/edit")).await;
    let csrf = input(&form, "csrf_token").expect("csrf");

    let forged = save_client(&browser, &app, &id, "https://app.example/new", "forged").await;
    let bad = save_client(&browser, &app, &id, "http://evil.example/cb", &csrf).await;
    let unchanged = admin_get(&app, &format!("/admin/clients/{id}")).await.1;
    let uris = "https://app.example/cb\r\nhttps://app.example/cb2\r\n";
    let saved = save_client(&browser, &app, &id, uris, &csrf).await;
    let console_client = browser.get(&app.url("/console/clients/castellan-console/edit")).await;

    assert_eq!(input(&form, "client_name").as_deref(), Some("Reports"), "prefilled");
    assert_eq!(textarea(&form, "redirect_uris"), "https://app.example/cb");
    assert!(form.contains("value=\"refresh_token\" checked"));
    assert_eq!(forged.status(), 400);
    assert_eq!(bad.status(), 400);
    let bad = bad.text().await.expect("page");
    assert!(bad.contains("class=\"error\"") && bad.contains("redirect_uris:"), "{bad}");
    assert_eq!(textarea(&bad, "redirect_uris"), "http://evil.example/cb", "as typed");
    assert_eq!(unchanged, before, "refused forms change nothing");
    assert_eq!(saved.status(), 200);
    let (_, after) = admin_get(&app, &format!("/admin/clients/{id}")).await;
    assert_eq!(after["client_name"], "Reports web");
    assert_eq!(
        after["redirect_uris"],
        json!(["https://app.example/cb", "https://app.example/cb2"])
    );
    assert_eq!(after["scope"], "openid email");
    for kept in [
        "audience",
        "access_token_lifetime",
        "post_logout_redirect_uris",
        "client_id_issued_at",
        "grant_types",
        "response_types",
        "refresh_token_rotation",
    ] {
        assert_eq!(after[kept], before[kept], "{kept} is kept");
    }
    assert_eq!(console_client.status(), 400, "the console's own client is not editable");
    let events = events_about(&app, &format!("client:{id}")).await;
    assert_eq!(events[0], ("client.updated".to_owned(), user(&admin_id)));
    assert_eq!(events.iter().filter(|(t, _)| t == "client.updated").count(), 1);
}

#[tokio::test]
async fn console_rotates_a_secret_with_an_overlap_or_without() {
    let app = spawn_app().await;
    let (browser, admin_id) = console_browser(&app).await;
    let (id, first) = app.service_client("", &[]).await;
    let detail = page(&browser, &app, &format!("/console/clients/{id}")).await;
    let csrf = input(&detail, "csrf_token").expect("csrf");
    let rotate = app.url(&format!("/console/clients/{id}/secret"));

    let too_long = browser.post(&rotate, &[("csrf_token", &csrf), ("overlap", "604801")]).await;
    let forged = browser.post(&rotate, &[("csrf_token", "forged"), ("overlap", "3600")]).await;
    let overlapping = browser.post(&rotate, &[("csrf_token", &csrf), ("overlap", "3600")]).await;
    let overlapping = overlapping.text().await.expect("page");
    let second = input(&overlapping, "client_secret").expect("the new secret");
    let first_during_overlap = client_credentials_status(&app, &id, &first).await;
    let second_works = client_credentials_status(&app, &id, &second).await;
    let stops_now = browser.post(&rotate, &[("csrf_token", &csrf), ("overlap", "0")]).await;
    let stops_now = stops_now.text().await.expect("page");
    let third = input(&stops_now, "client_secret").expect("the newest secret");

    assert!(detail.contains("name=\"overlap\"") && detail.contains("value=\"604800\""));
    assert_eq!(too_long.status(), 400, "the admin API's limit: a week");
    assert_eq!(forged.status(), 400);
    assert_eq!(first_during_overlap, 200, "the old secret works for the overlap");
    assert_eq!(second_works, 200);
    assert!(overlapping.contains("id=\"previous-secret\""), "{overlapping}");
    assert_eq!(client_credentials_status(&app, &id, &third).await, 200);
    assert_eq!(client_credentials_status(&app, &id, &second).await, 401, "stopped now");
    assert_eq!(client_credentials_status(&app, &id, &first).await, 401, "its overlap ended too");
    assert!(!stops_now.contains("id=\"previous-secret\""));
    let path = format!("/admin/events?subject=client:{id}&type=client.secret_rotated");
    let (_, events) = admin_get(&app, &path).await;
    let rotations: Vec<(Value, Value)> = events["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| (e["actor"]["id"].clone(), e["detail"]["overlap_seconds"].clone()))
        .collect();
    let actor = json!(user(&admin_id));
    assert_eq!(rotations, [(actor.clone(), json!(0)), (actor, json!(3600))], "newest first");
    assert_eq!(events_about(&app, &format!("client:{id}")).await.len(), 3, "and its creation");
}
