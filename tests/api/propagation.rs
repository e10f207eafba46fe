//! How changes reach the other replicas: through the revocation log, followed every sync
//! interval, and on Postgres at once through `LISTEN`/`NOTIFY` (docs/SCALING.md).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};

async fn admin_status(app: &TestApp, token: &str) -> StatusCode {
    let response =
        app.http.get(app.url("/admin/scopes")).bearer_auth(token).send().await.expect("GET");
    response.status()
}

/// A replica keeps a client it has seen until the log says the client changed: a secret
/// rotated at one replica stops working at the other within the interval, and the new one
/// works there.
#[tokio::test]
async fn a_client_changed_at_one_replica_is_dropped_from_the_others_cache() {
    let app = spawn_app().await;
    let replica = app.replica().await;
    let (id, old) = app.service_client("profile", &[]).await;
    assert!(replica.client_token(&id, &old, None).await["access_token"].is_string());

    let rotated: Value = app
        .admin(
            reqwest::Method::POST,
            &format!("/admin/clients/{id}/secret"),
            Some(serde_json::json!({"overlap_seconds": 0})),
        )
        .await
        .json()
        .await
        .expect("JSON");
    let new = rotated["client_secret"].as_str().expect("secret").to_owned();

    let dropped = eventually(Duration::from_secs(2), || async {
        replica.client_token(&id, &old, None).await["error"] == "invalid_client"
    })
    .await;
    assert!(dropped, "the old secret stops at the other replica within the interval");
    assert!(replica.client_token(&id, &new, None).await["access_token"].is_string());
}

/// On Postgres a revocation reaches another replica as a notification, in milliseconds, long
/// before its next sync (5 s here).
#[tokio::test]
async fn on_postgres_a_revocation_reaches_another_replica_within_milliseconds() {
    let app = spawn_app_with(|s| s.sync_interval = Duration::from_secs(5)).await;
    if !app.db.is_postgres() {
        eprintln!("skipped: change notifications are a Postgres feature (SQLite relies on sync)");
        return;
    }
    let replica = app.replica().await;
    // Let the replica's listener connect before anything is revoked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let token = app.admin_token().await;
        assert_eq!(admin_status(&replica, &token).await, StatusCode::OK);
        let before = notified(&replica).await;
        assert_eq!(app.revoke(&app.admin, &token, None).await, 200);
        let since = Instant::now();
        while admin_status(&replica, &token).await != StatusCode::UNAUTHORIZED {
            assert!(since.elapsed() < Duration::from_secs(10), "the revocation never arrived");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        seen.push(since.elapsed());
        // The replica counts the reads a notification caused: deterministic proof that the
        // notification arrived, where the times printed below depend on the machine's load.
        while notified(&replica).await == before {
            assert!(since.elapsed() < Duration::from_secs(10), "no notification arrived");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    eprintln!("revocation visible at the other replica after {seen:?}");
}

/// Statements `app` ran because a change notification arrived.
async fn notified(app: &TestApp) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    let label = format!(
        "castellan_db_statements_total{{route=\"{}\"}} ",
        castellan::startup::NOTIFIED_STATEMENTS
    );
    text.lines()
        .find_map(|l| l.strip_prefix(label.as_str()))
        .map_or(0, |n| n.trim().parse().expect("count"))
}
