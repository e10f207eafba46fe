//! `GET /health/live` and `GET /health/ready`.

use std::sync::atomic::Ordering;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::startup::AppState;
use crate::store;

/// The process is up and answering.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({"status": "ok"}))
}

/// Ready when not draining, the database answers within the timeout, takes writes, and
/// has every migration applied; 503 otherwise, recovering by itself.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let reason = if state.draining.load(Ordering::Relaxed) {
        Some("draining")
    } else if state.keys.is_stale() {
        Some("key ring stale")
    } else if state.revocations.is_stale() {
        Some("revocation log stale")
    } else {
        match store::check_ready(&state.db, state.settings.db_timeout).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(error = %e, "not ready");
                Some(match e {
                    store::NotReady::MigrationsPending(_) => "migrations pending",
                    store::NotReady::Unavailable(_) | store::NotReady::TimedOut => {
                        "database unavailable"
                    }
                })
            }
        }
    };
    match reason {
        None => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({"status": "ready"})),
        Some(reason) => HttpResponse::ServiceUnavailable()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(json!({"status": "unavailable", "reason": reason})),
    }
}
