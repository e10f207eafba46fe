//! `GET /metrics`: Prometheus text exposition.

use actix_web::{HttpResponse, web};

use crate::startup::AppState;
use crate::telemetry::Metrics;

pub async fn render(metrics: web::Data<Metrics>, state: web::Data<AppState>) -> HttpResponse {
    match metrics.render(state.revocations.len()) {
        Ok(body) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
