//! `GET /metrics`: Prometheus text exposition.

use actix_web::{HttpResponse, web};

use crate::telemetry::Metrics;

pub async fn render(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.render() {
        Ok(body) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
