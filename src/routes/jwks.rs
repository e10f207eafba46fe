//! `GET /jwks`: the public signing keys (RFC 7517 §5), cached no longer than a next key's lead.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::startup::AppState;

pub async fn publish(state: web::Data<AppState>) -> HttpResponse {
    let max_age = state.settings.jwks_max_age.as_secs();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={max_age}")))
        .content_type("application/jwk-set+json")
        .body(state.keys.jwks().to_vec())
}
