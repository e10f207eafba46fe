//! `/admin/users` and `castellan users create` (docs/REFERENCE.md §6).

use std::io::Write;
use std::process::Stdio;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{castellan, process_env, spawn_app};

async fn call(
    app: &crate::helpers::TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = app.admin(method, path, body).await;
    let status = response.status().as_u16();
    let body = if status == 204 { Value::Null } else { response.json().await.expect("JSON") };
    (status, body)
}

#[tokio::test]
async fn users_are_created_read_replaced_and_deleted_without_ever_showing_a_password() {
    let app = spawn_app().await;
    let alice = json!({"username": "alice", "password": "correct horse battery", "email": "alice@example.com",
        "email_verified": true, "name": "Alice Liddell"});

    let (created, user) = call(&app, Method::POST, "/admin/users", Some(alice)).await;
    let id = user["id"].as_str().expect("id").to_owned();
    let (read, fetched) = call(&app, Method::GET, &format!("/admin/users/{id}"), None).await;
    let (replaced, changed) = call(
        &app,
        Method::PUT,
        &format!("/admin/users/{id}"),
        Some(json!({"username": "alice", "name": "Alice", "disabled": true})),
    )
    .await;
    let (_, list) = call(&app, Method::GET, "/admin/users", None).await;
    let (deleted, _) = call(&app, Method::DELETE, &format!("/admin/users/{id}"), None).await;
    let (gone, _) = call(&app, Method::GET, &format!("/admin/users/{id}"), None).await;

    assert_eq!((created, read, replaced, deleted, gone), (201, 200, 200, 204, 404));
    assert_eq!(fetched["username"], "alice");
    assert_eq!(fetched["email"], "alice@example.com");
    assert_eq!(fetched["email_verified"], true);
    assert_eq!(changed["name"], "Alice");
    assert_eq!(changed["disabled"], true);
    assert!(changed["email"].is_null(), "a replacement drops what it does not restate");
    for body in [&user, &fetched, &changed, &list] {
        let text = body.to_string();
        assert!(
            !text.contains("password")
                && !text.contains("argon2")
                && !text.contains("correct horse")
        );
    }
}

#[tokio::test]
async fn user_bodies_are_validated_and_usernames_unique() {
    let app = spawn_app().await;
    call(
        &app,
        Method::POST,
        "/admin/users",
        Some(json!({"username": "bob", "password": "long enough"})),
    )
    .await;

    let cases = [
        (json!({"username": "bob", "password": "long enough"}), 409, None),
        (json!({"username": "carol"}), 400, Some("password")),
        (json!({"username": "carol", "password": "short"}), 400, Some("password")),
        (json!({"username": "has space", "password": "long enough"}), 400, Some("username")),
        (json!({"username": "nul\u{0}", "password": "long enough"}), 400, Some("username")),
        (
            json!({"username": "carol", "password": "long enough", "email": "not-an-email"}),
            400,
            Some("email"),
        ),
        (
            json!({"username": "carol", "password": "long enough", "disabled": "yes"}),
            400,
            Some("disabled"),
        ),
        (json!({"id": "mine", "username": "carol", "password": "long enough"}), 400, Some("id")),
        (
            json!({"username": "carol", "password": "long enough", "role": "root"}),
            400,
            Some("body"),
        ),
    ];
    for (body, status, field) in cases {
        let (got, answer) = call(&app, Method::POST, "/admin/users", Some(body.clone())).await;
        assert_eq!(got, status, "{body}");
        if let Some(field) = field {
            assert_eq!(answer["field"], field, "{body}");
            assert_eq!(answer["error"], "invalid_request");
        }
    }
}

#[tokio::test]
async fn castellan_users_create_reads_the_password_from_stdin() {
    let app = spawn_app().await;
    let env = process_env(&app.db);
    let mut child = castellan(app.db.dir.path())
        .args(["users", "create", "--username", "dave", "--email", "dave@example.com"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("castellan users create");
    child.stdin.take().expect("stdin").write_all(b"a fine password\n").expect("write");

    let output = child.wait_with_output().expect("wait");

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let user: Value = serde_json::from_slice(&output.stdout).expect("JSON user");
    assert_eq!(user["username"], "dave");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("a fine password"));
    let (status, fetched) = call(
        &app,
        Method::GET,
        &format!("/admin/users/{}", user["id"].as_str().expect("id")),
        None,
    )
    .await;
    assert_eq!((status, fetched["email"].as_str()), (200, Some("dave@example.com")));
}
