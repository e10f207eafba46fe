//! Request ids, JSON logs and Prometheus metrics.

use std::time::Duration;

use crate::helpers::{ServerProcess, TestDatabase, as_refs, eventually, process_env, spawn_app};

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;

    let first = app.get("/jwks").await;
    let second = app.get("/no/such/route").await;

    let id =
        |r: &reqwest::Response| r.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert_eq!(id(&first).len(), 32);
    assert_ne!(id(&first), id(&second));
}

#[tokio::test]
async fn a_sane_incoming_request_id_is_kept_and_a_hostile_one_replaced() {
    let app = spawn_app().await;
    let send = |value: &'static str| {
        app.http.get(format!("{}/health/live", app.address)).header("x-request-id", value).send()
    };

    let kept = send("trace-42.a_b").await.expect("GET");
    let replaced = send("bad id\twith\"quotes").await.expect("GET");

    assert_eq!(kept.headers()["x-request-id"], "trace-42.a_b");
    assert_ne!(replaced.headers()["x-request-id"], "bad id\twith\"quotes");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_with_a_latency_histogram() {
    let app = spawn_app().await;
    app.get("/jwks").await;
    app.get("/jwks").await;
    app.get("/nope/123").await;

    let body = app.get("/metrics").await.text().await.expect("text");

    assert!(
        body.contains(
            r#"castellan_http_requests_total{method="GET",route="/jwks",status="200"} 2"#
        ),
        "{body}"
    );
    assert!(body.contains(r#"route="unmatched",status="404"} 1"#), "{body}");
    assert!(!body.contains("/nope/123"), "raw paths never become labels");
    let odd = reqwest::Method::from_bytes(b"BREW").expect("method");
    app.http.request(odd, app.url("/health/live")).send().await.expect("BREW");
    let body = app.get("/metrics").await.text().await.expect("text");
    assert!(!body.contains("BREW"), "nor do method names");
    assert!(body.contains(r#"method="other""#));
    assert!(body.contains(r#"castellan_http_request_duration_seconds_bucket{route="/jwks",le="#));
    assert!(body.contains(r#"castellan_http_request_duration_seconds_count{route="/jwks"} 2"#));
    assert!(body.contains("castellan_revocations_held 0"), "{body}");

    let token = app.admin_token().await;
    assert_eq!(app.revoke(&app.admin, &token, None).await, 200);
    let body = app.get("/metrics").await.text().await.expect("text");
    assert!(body.contains("castellan_revocations_held 1"), "the revoked jti is held: {body}");
}

#[tokio::test]
async fn json_logs_carry_the_request_id_of_each_request() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let http = reqwest::Client::new();

    http.get(format!("{}/jwks", server.address))
        .header("x-request-id", "log-me-7")
        .send()
        .await
        .expect("GET");

    let logged = eventually(Duration::from_secs(5), || async {
        server.stderr.lock().expect("lock").iter().any(|line| {
            serde_json::from_str::<serde_json::Value>(line).is_ok_and(|event| {
                event["span"]["request_id"] == "log-me-7" && event["status"] == 200
            })
        })
    })
    .await;
    assert!(logged, "{:?}", server.stderr.lock().expect("lock"));
}
