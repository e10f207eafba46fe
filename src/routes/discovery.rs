//! `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::startup::AppState;

/// Serves the metadata document.
pub async fn publish(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(state.discovery.load().as_ref().clone())
}
