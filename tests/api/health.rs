//! Liveness and readiness, including a database outage and its recovery.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectOptions, ConnectionTrait, Database};

use crate::helpers::{TestDatabase, eventually, spawn_app, start, test_settings};
use crate::proxy::TcpProxy;

#[tokio::test]
async fn live_and_ready_answer_200_when_all_is_well() {
    let app = spawn_app().await;

    assert_eq!(app.get("/health/live").await.status(), 200);
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

/// The database becomes unavailable to the server: on Postgres a proxy between them is
/// cut; on SQLite another process holds the write lock (as a stuck writer or backup would).
#[tokio::test]
async fn ready_is_503_while_the_database_is_unavailable_and_recovers_without_restart() {
    let db = Arc::new(TestDatabase::create().await);
    if db.is_postgres() {
        let upstream = url::Url::parse(db.url()).expect("url");
        let proxy = TcpProxy::start(format!(
            "{}:{}",
            upstream.host_str().expect("host"),
            upstream.port().unwrap_or(5432)
        ))
        .await;
        let mut settings = test_settings(&db);
        settings.database_url = db.url_via_port(proxy.port).into();
        let app = start(db.clone(), settings).await;
        assert_eq!(app.get("/health/ready").await.status(), 200);

        proxy.cut().await;
        let down = eventually(Duration::from_secs(10), || async {
            app.get("/health/ready").await.status() == 503
        })
        .await;
        assert!(down, "readiness turns 503 while the database is unreachable");
        assert_eq!(app.get("/health/live").await.status(), 200);
        let (id, secret) = app.admin.clone();
        let token = app.token_basic(&id, &secret, &[("grant_type", "client_credentials")]).await;
        assert_eq!(token.status(), 503, "the token endpoint fails closed");
        let body: serde_json::Value = token.json().await.expect("JSON");
        assert_eq!(body["error"], "temporarily_unavailable");
        for endpoint in ["/introspect", "/revoke"] {
            let response = app
                .http
                .post(app.url(endpoint))
                .basic_auth(&id, Some(&secret))
                .form(&[("token", "anything")])
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), 503, "{endpoint} never answers 200 without its database");
        }
        let body: serde_json::Value = app.get("/health/ready").await.json().await.expect("JSON");
        assert_eq!(body["status"], "unavailable");

        proxy.restore();
        let up = eventually(Duration::from_secs(15), || async {
            app.get("/health/ready").await.status() == 200
        })
        .await;
        assert!(up, "readiness recovers when the database returns");
    } else {
        let app = start(db.clone(), test_settings(&db)).await;
        assert_eq!(app.get("/health/ready").await.status(), 200);
        let mut options = ConnectOptions::new(db.url().to_owned());
        options.max_connections(1);
        let blocker = Database::connect(options).await.expect("second connection");
        blocker.execute_unprepared("BEGIN IMMEDIATE").await.expect("take the write lock");

        let response = app.get("/health/ready").await;
        assert_eq!(response.status(), 503, "readiness is 503 while the database is locked");
        assert_eq!(app.get("/health/live").await.status(), 200);

        blocker.execute_unprepared("ROLLBACK").await.expect("release");
        let up = eventually(Duration::from_secs(10), || async {
            app.get("/health/ready").await.status() == 200
        })
        .await;
        assert!(up, "readiness recovers when the lock is released");
    }
}

#[tokio::test]
async fn ready_is_503_while_migrations_are_pending() {
    let app = spawn_app().await;
    let db = app.store().await;
    db.execute_unprepared("DELETE FROM seaql_migrations").await.expect("forget migrations");

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["reason"], "migrations pending");
}
