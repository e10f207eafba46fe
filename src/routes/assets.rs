//! `GET /static/castellan.css` and `GET /static/logo`: the theme's stylesheet and logo
//! (docs/REFERENCE.md §3.13), read once at start; `GET /static/console.js`, the console's
//! optional script, and `GET /static/passkeys.js`, compiled in.

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::error::ApiError;
use crate::startup::AppState;

pub async fn stylesheet(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(state.theme.stylesheet().to_owned())
}

const CONSOLE_SCRIPT: &str = include_str!("../../static/console.js");

const PASSKEYS_SCRIPT: &str = include_str!("../../static/passkeys.js");

/// The login and account pages' passkey script (docs/REFERENCE.md §3.4): without it, or
/// without WebAuthn in the browser, those pages work as before, with no passkey button.
pub async fn passkeys_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(PASSKEYS_SCRIPT)
}

pub async fn console_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(CONSOLE_SCRIPT)
}

/// The brand's logo; 404 when none is set. An SVG opened on its own runs nothing: the
/// sandbox and `default-src 'none'` keep its scripts and links inert.
pub async fn logo(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let logo = state.theme.logo().ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(logo.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        ))
        .body(logo.bytes.clone()))
}
