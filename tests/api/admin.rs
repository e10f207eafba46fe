//! The admin API's behaviour (docs/REFERENCE.md §6): clients, scopes, keys, pagination, validation.

use castellan::oauth::jwk::Algorithm;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn admin_json(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = app.admin(method, path, body).await;
    let status = response.status().as_u16();
    let body = if status == 204 { Value::Null } else { response.json().await.expect("JSON body") };
    (status, body)
}

fn web_client() -> Value {
    json!({"client_name": "Web", "redirect_uris": ["https://app.example/cb"], "scope": "openid profile"})
}

#[tokio::test]
async fn a_client_secret_is_shown_once_and_never_by_read_or_list() {
    let app = spawn_app().await;
    let created = app.create_client(web_client()).await;
    let id = created["client_id"].as_str().expect("id");
    assert!(created["client_secret"].as_str().is_some_and(|s| s.len() == 43));

    let (_, read) = admin_json(&app, Method::GET, &format!("/admin/clients/{id}"), None).await;
    let (_, list) = admin_json(&app, Method::GET, "/admin/clients", None).await;

    assert!(read.get("client_secret").is_none());
    assert_eq!(read["client_name"], "Web");
    assert_eq!(read["redirect_uris"], json!(["https://app.example/cb"]));
    assert_eq!(read["grant_types"], json!(["authorization_code"]));
    assert_eq!(read["token_endpoint_auth_method"], "client_secret_basic");
    for item in list["items"].as_array().expect("items") {
        assert!(item.get("client_secret").is_none());
    }
    let secret = created["client_secret"].as_str().expect("secret");
    assert!(!read.to_string().contains(secret) && !list.to_string().contains(secret));
}

#[tokio::test]
async fn lists_page_with_cursors_and_refuse_a_tampered_one() {
    let app = spawn_app().await;
    for _ in 0..4 {
        app.create_client(web_client()).await;
    }

    let (_, first) = admin_json(&app, Method::GET, "/admin/clients?limit=2", None).await;
    let cursor = first["next_cursor"].as_str().expect("more pages").to_owned();
    let (_, second) =
        admin_json(&app, Method::GET, &format!("/admin/clients?limit=2&cursor={cursor}"), None)
            .await;
    let cursor2 = second["next_cursor"].as_str().expect("a third page").to_owned();
    let (_, third) =
        admin_json(&app, Method::GET, &format!("/admin/clients?limit=2&cursor={cursor2}"), None)
            .await;

    let ids: Vec<Value> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["items"].as_array().expect("items").iter().map(|c| c["client_id"].clone()))
        .collect();
    assert_eq!(ids.len(), 6, "four clients, the first admin and the console's client, each once");
    assert!(third["next_cursor"].is_null());
    let mut tampered = cursor.into_bytes();
    tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for bad in [
        format!("cursor={tampered}"),
        "cursor=garbage".into(),
        "limit=0".into(),
        "limit=101".into(),
    ] {
        let (status, body) =
            admin_json(&app, Method::GET, &format!("/admin/clients?{bad}"), None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{bad}");
        assert!(body["field"].is_string());
    }
}

#[tokio::test]
async fn invalid_bodies_get_the_error_and_field_of_spec_section_6() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            json!({"redirect_uris": ["https://a.example/*"]}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            json!({"redirect_uris": ["javascript:alert(1)"]}),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            json!({"client_id": "mine", "redirect_uris": ["https://a.example/cb"]}),
            "invalid_client_metadata",
            "client_id",
        ),
        (
            json!({"client_secret": "s", "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
            "client_secret",
        ),
        (
            json!({"client_id_issued_at": 1, "grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
            "client_id_issued_at",
        ),
        (
            json!({"grant_types": ["client_credentials"], "favourite": 1}),
            "invalid_client_metadata",
            "favourite",
        ),
        (
            json!({"grant_types": ["client_credentials"], "scope": "unregistered"}),
            "invalid_client_metadata",
            "scope",
        ),
        (json!({"grant_types": "client_credentials"}), "invalid_client_metadata", "grant_types"),
        (
            json!({"grant_types": ["client_credentials"], "response_types": ["code"]}),
            "invalid_client_metadata",
            "response_types",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
            "jwks",
        ),
        (json!([1, 2]), "invalid_request", "body"),
    ];
    for (body, error, field) in cases {
        let (status, answer) =
            admin_json(&app, Method::POST, "/admin/clients", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], error, "{body}");
        assert_eq!(answer["field"], field, "{body}");
        assert!(!answer.to_string().contains("evil.example"), "raw input is never echoed");
    }
    let not_json = app
        .http
        .post(app.url("/admin/clients"))
        .bearer_auth(app.admin_token().await)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert_eq!(not_json.status(), 400);
    assert_eq!(not_json.json::<Value>().await.expect("JSON")["field"], "body");
}

#[tokio::test]
async fn a_client_is_replaced_whole_and_unknown_ids_are_404() {
    let app = spawn_app().await;
    let created = app.create_client(web_client()).await;
    let id = created["client_id"].as_str().expect("id");

    let replacement =
        json!({"client_name": "Renamed", "redirect_uris": ["https://new.example/cb"]});
    let (status, replaced) =
        admin_json(&app, Method::PUT, &format!("/admin/clients/{id}"), Some(replacement)).await;

    assert_eq!(status, 200);
    assert_eq!(replaced["client_name"], "Renamed");
    assert_eq!(replaced["redirect_uris"], json!(["https://new.example/cb"]));
    assert_eq!(replaced["scope"], "", "a replacement drops what it does not restate");
    assert_eq!(replaced["client_id_issued_at"], created["client_id_issued_at"]);
    for (method, path) in [
        (Method::GET, "/admin/clients/%00"),
        (Method::GET, "/admin/users/%00"),
        (Method::GET, "/admin/scopes/%00"),
        (Method::GET, "/admin/clients/nope"),
        (Method::PUT, "/admin/clients/nope"),
        (Method::DELETE, "/admin/clients/nope"),
        (Method::POST, "/admin/clients/nope/secret"),
    ] {
        let body = (method == Method::PUT).then(web_client);
        let (status, answer) = admin_json(&app, method.clone(), path, body).await;
        assert_eq!((status, answer["error"].as_str()), (404, Some("not_found")), "{method} {path}");
    }
}

#[tokio::test]
async fn scopes_are_managed_and_protected() {
    let app = spawn_app().await;

    let (created, _) = admin_json(
        &app,
        Method::POST,
        "/admin/scopes",
        Some(json!({"name": "orders:read", "description": "Read your orders"})),
    )
    .await;
    let (duplicate, _) = admin_json(
        &app,
        Method::POST,
        "/admin/scopes",
        Some(json!({"name": "orders:read", "description": "again"})),
    )
    .await;
    let (bad_name, bad) = admin_json(
        &app,
        Method::POST,
        "/admin/scopes",
        Some(json!({"name": "has space", "description": "x"})),
    )
    .await;
    let (updated, scope) = admin_json(
        &app,
        Method::PUT,
        "/admin/scopes/orders:read",
        Some(json!({"description": "See orders"})),
    )
    .await;
    app.service_client("orders:read", &[]).await;
    let (in_use, _) = admin_json(&app, Method::DELETE, "/admin/scopes/orders:read", None).await;
    let (built_in, _) = admin_json(&app, Method::DELETE, "/admin/scopes/openid", None).await;
    let (_, list) = admin_json(&app, Method::GET, "/admin/scopes?limit=100", None).await;

    assert_eq!((created, duplicate, bad_name, updated), (201, 409, 400, 200));
    assert_eq!(bad["field"], "name");
    assert_eq!(scope["description"], "See orders");
    assert_eq!((in_use, built_in), (409, 409));
    let names: Vec<_> =
        list["items"].as_array().expect("items").iter().map(|s| s["name"].clone()).collect();
    assert!(names.contains(&json!("orders:read")) && names.contains(&json!("offline_access")));
    let advertised = crate::helpers::eventually(std::time::Duration::from_secs(3), || async {
        let d: Value =
            app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
        d["scopes_supported"].as_array().is_some_and(|s| s.contains(&json!("orders:read")))
    })
    .await;
    assert!(advertised, "discovery advertises the new scope within a sync interval");
}

#[tokio::test]
async fn keys_are_listed_and_rotated_through_the_api() {
    let app = spawn_app().await;
    let before = app.keys.active_kid(Algorithm::RS256);

    let (status, listed) = admin_json(&app, Method::GET, "/admin/keys", None).await;
    assert_eq!(status, 200);
    let states: Vec<_> =
        listed["items"].as_array().expect("items").iter().map(|k| k["state"].clone()).collect();
    assert!(states.contains(&json!("active")) && states.contains(&json!("next")));
    assert!(!listed.to_string().contains("\"d\""), "no private member");

    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let (status, rotated) = admin_json(&app, Method::POST, "/admin/keys/rotate", None).await;

    assert_eq!(status, 200);
    assert_ne!(app.keys.active_kid(Algorithm::RS256), before);
    let retired = rotated["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["kid"] == before.as_str())
        .expect("old key");
    assert_eq!(retired["state"], "retired");
    let (too_soon, _) = admin_json(&app, Method::POST, "/admin/keys/rotate", None).await;
    assert_eq!(too_soon, 409, "the new next key is not yet past JWKS caches");
}

#[tokio::test]
async fn the_openapi_document_lists_every_admin_route() {
    let app = spawn_app().await;

    let (status, document) = admin_json(&app, Method::GET, "/admin/openapi.json", None).await;

    assert_eq!(status, 200);
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    for (method, path) in [
        ("post", "/admin/clients"),
        ("get", "/admin/clients"),
        ("get", "/admin/clients/{client_id}"),
        ("put", "/admin/clients/{client_id}"),
        ("delete", "/admin/clients/{client_id}"),
        ("post", "/admin/clients/{client_id}/secret"),
        ("post", "/admin/scopes"),
        ("get", "/admin/scopes"),
        ("get", "/admin/scopes/{name}"),
        ("put", "/admin/scopes/{name}"),
        ("delete", "/admin/scopes/{name}"),
        ("post", "/admin/users"),
        ("get", "/admin/users"),
        ("get", "/admin/users/{id}"),
        ("put", "/admin/users/{id}"),
        ("delete", "/admin/users/{id}"),
        ("get", "/admin/keys"),
        ("post", "/admin/keys/rotate"),
        ("get", "/admin/openapi.json"),
    ] {
        assert!(document["paths"][path][method].is_object(), "{method} {path} is documented");
    }
}
