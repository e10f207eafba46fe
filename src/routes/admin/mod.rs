//! The admin REST API (docs/REFERENCE.md §6): JSON under `/admin`, every route behind an `admin` token.

mod auth;
mod clients;
pub(crate) mod events;
pub(crate) mod grants;
mod json;
mod keys;
mod openapi;
mod registration;
mod scopes;
mod upstream;
mod users;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use serde::Serialize;
use serde_json::Value;

pub use auth::Admin;

use super::resource;
use crate::error::AdminError;
use crate::startup::AppState;

/// Registers the admin routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        resource("/admin/clients", web::post().to(clients::create))
            .route(web::get().to(clients::list)),
    )
    .service(
        resource("/admin/clients/{client_id}", web::get().to(clients::read))
            .route(web::put().to(clients::replace))
            .route(web::delete().to(clients::delete)),
    )
    .service(resource("/admin/clients/{client_id}/secret", web::post().to(clients::rotate_secret)))
    .service(
        resource("/admin/scopes", web::post().to(scopes::create))
            .route(web::get().to(scopes::list)),
    )
    .service(
        resource("/admin/scopes/{name}", web::get().to(scopes::read))
            .route(web::put().to(scopes::replace))
            .route(web::delete().to(scopes::delete)),
    )
    .service(
        resource("/admin/users", web::post().to(users::create)).route(web::get().to(users::list)),
    )
    .service(
        resource("/admin/users/{id}", web::get().to(users::read))
            .route(web::put().to(users::replace))
            .route(web::delete().to(users::delete)),
    )
    .service(resource("/admin/users/{id}/grants", web::get().to(grants::for_user)))
    .service(resource("/admin/users/{id}/sessions", web::delete().to(users::end_sessions)))
    .service(resource("/admin/users/{id}/methods", web::get().to(users::methods)))
    .service(resource("/admin/users/{id}/totp", web::delete().to(users::reset_totp)))
    .service(resource(
        "/admin/users/{id}/passkeys/{passkey_id}",
        web::delete().to(users::remove_passkey),
    ))
    .service(resource("/admin/grants/{id}", web::delete().to(grants::revoke)))
    .service(resource("/admin/keys", web::get().to(keys::list)))
    .service(resource("/admin/keys/rotate", web::post().to(keys::rotate)))
    .service(
        resource("/admin/initial-access-tokens", web::post().to(registration::issue))
            .route(web::get().to(registration::list)),
    )
    .service(resource("/admin/initial-access-tokens/{id}", web::delete().to(registration::revoke)))
    .service(
        resource("/admin/registration-policy", web::get().to(registration::policy))
            .route(web::put().to(registration::set_policy)),
    )
    .service(
        resource("/admin/upstream-providers", web::post().to(upstream::create))
            .route(web::get().to(upstream::list)),
    )
    .service(
        resource("/admin/upstream-providers/{id}", web::get().to(upstream::read))
            .route(web::put().to(upstream::replace))
            .route(web::delete().to(upstream::delete)),
    )
    .service(resource("/admin/events", web::get().to(events::list)))
    .service(resource("/admin/openapi.json", web::get().to(openapi::document)));
}

/// A path id that cannot name anything stored (too long, spaces, control characters) is
/// simply not found, before it reaches the database.
fn well_formed(id: &str) -> Result<&str, AdminError> {
    if crate::oauth::client::is_client_id(id) { Ok(id) } else { Err(AdminError::NotFound) }
}

/// A page of a list (docs/REFERENCE.md §6).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// The JSON object of a request body, refused unless it is JSON.
fn json_body(
    req: &HttpRequest,
    body: &Result<web::Bytes, actix_web::Error>,
) -> Result<Value, AdminError> {
    json_object(req, body).map_err(|reason| AdminError::invalid_request(reason, "body"))
}

/// The JSON object of a request body (`application/json`, every member named once), or why
/// not: for the admin API and for client registration alike.
pub(crate) fn json_object(
    req: &HttpRequest,
    body: &Result<web::Bytes, actix_web::Error>,
) -> Result<Value, &'static str> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err("the body must be application/json");
    }
    let body = body.as_ref().map_err(|_| "the body is too large or unreadable")?;
    let value: Value = json::parse_unique(body)
        .map_err(|_| "the body is not valid JSON, or names a member twice")?;
    if !value.is_object() {
        return Err("the body must be a JSON object");
    }
    Ok(value)
}

/// `limit` (1–100, default 20) and the key to resume after, from the `cursor` of `list`.
fn page_params(
    state: &AppState,
    req: &HttpRequest,
    list: &str,
) -> Result<(u64, Option<String>), AdminError> {
    let mut limit = 20;
    let mut after = None;
    for (name, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        match name.as_ref() {
            "limit" => {
                limit = value.parse().ok().filter(|l| (1..=100).contains(l)).ok_or_else(|| {
                    AdminError::invalid_request("limit must be an integer from 1 to 100", "limit")
                })?;
            }
            "cursor" => {
                let last = state.cursors.open(list, &value).map_err(|_| {
                    AdminError::invalid_request("the cursor is not valid", "cursor")
                })?;
                after = Some(last);
            }
            _ => {}
        }
    }
    Ok((limit, after))
}

/// The page of `items` (fetched with one extra to know whether more follow).
fn page<T>(
    state: &AppState,
    list: &str,
    mut items: Vec<T>,
    limit: u64,
    key: impl Fn(&T) -> &str,
) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let more = items.len() > limit;
    items.truncate(limit);
    let next_cursor =
        if more { items.last().map(|last| state.cursors.make(list, key(last))) } else { None };
    Page { items, next_cursor }
}
