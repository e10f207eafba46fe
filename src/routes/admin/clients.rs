//! `/admin/clients`: register, list, read, replace, delete clients and rotate their secrets.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{Admin, Page, json_body, page, page_params, well_formed};
use crate::error::AdminError;
use crate::oauth::client::ClientView;
use crate::oauth::client_metadata;
use crate::oauth::registry::{self, RegistryError};
use crate::routes::actor;
use crate::startup::AppState;

const LIST: &str = "clients";

impl From<RegistryError> for AdminError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Metadata(m) => m.into(),
            RegistryError::Store(s) => s.into(),
            RegistryError::Internal(i) => i.into(),
        }
    }
}

/// Register a client (RFC 7591 metadata); the answer carries its secret, once.
#[utoipa::path(post, path = "/admin/clients", tag = "clients",
    request_body(content = Object, description = "RFC 7591 client metadata (docs/REFERENCE.md §5)"),
    responses((status = 201, body = ClientView), (status = 400), (status = 401), (status = 403)))]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let metadata =
        client_metadata::parse(&json_body(&req, &body)?, state.settings.max_token_lifetime)?;
    let actor = actor::admin(&admin, &state, &req);
    let registered = state.registry.register(&state.db, metadata, actor).await?;
    let secret = registered.secret.map(|s| s.expose_secret().to_owned());
    Ok(no_store(HttpResponse::Created()).json(registered.client.view(secret)))
}

/// List clients, a page at a time.
#[utoipa::path(get, path = "/admin/clients", tag = "clients",
    params(("limit" = Option<u64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<ClientView>), (status = 400)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (limit, after) = page_params(&state, &req, LIST)?;
    let clients = state.registry.list(&state.db, after.as_deref(), limit + 1).await?;
    let views = clients.iter().map(|c| c.view(None)).collect();
    Ok(HttpResponse::Ok().json(page(&state, LIST, views, limit, |v: &ClientView| &v.client_id)))
}

/// Read a client (never its secret).
#[utoipa::path(get, path = "/admin/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)), responses((status = 200, body = ClientView), (status = 404)))]
pub async fn read(
    state: web::Data<AppState>,
    _admin: Admin,
    client_id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    well_formed(&client_id)?;
    let client = state.registry.load(&state.db, &client_id).await?.ok_or(AdminError::NotFound)?;
    Ok(HttpResponse::Ok().json(client.view(None)))
}

/// Replace a client's metadata; its id and secrets stay.
#[utoipa::path(put, path = "/admin/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)),
    request_body(content = Object, description = "RFC 7591 client metadata (docs/REFERENCE.md §5)"),
    responses((status = 200, body = ClientView), (status = 400), (status = 404)))]
pub async fn replace(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    well_formed(&client_id)?;
    let metadata =
        client_metadata::parse(&json_body(&req, &body)?, state.settings.max_token_lifetime)?;
    let actor = actor::admin(&admin, &state, &req);
    let registered = state
        .registry
        .replace(&state.db, &state.revocations, &client_id, metadata, None, actor)
        .await?
        .ok_or(AdminError::NotFound)?;
    let secret = registered.secret.map(|s| s.expose_secret().to_owned());
    Ok(no_store(HttpResponse::Ok()).json(registered.client.view(secret)))
}

/// Delete a client; its secrets stop working at once.
#[utoipa::path(delete, path = "/admin/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn delete(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    well_formed(&client_id)?;
    let actor = actor::admin(&admin, &state, &req);
    if !state.registry.delete(&state.db, &state.revocations, &client_id, actor).await? {
        return Err(AdminError::NotFound);
    }
    tracing::info!(admin = %admin.actor(), client_id = %client_id, "deleted a client");
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a client's secret; `{"overlap_seconds": N}` keeps the old one valid N seconds.
#[utoipa::path(post, path = "/admin/clients/{client_id}/secret", tag = "clients",
    params(("client_id" = String, Path)),
    request_body(content = Option<Object>, description = "{\"overlap_seconds\": N} (default 0)"),
    responses((status = 200, body = ClientView), (status = 400), (status = 404)))]
pub async fn rotate_secret(
    state: web::Data<AppState>,
    admin: Admin,
    client_id: web::Path<String>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    well_formed(&client_id)?;
    let overlap = match &body {
        Ok(bytes) if bytes.is_empty() => Duration::ZERO,
        _ => overlap_of(&json_body(&req, &body)?)?,
    };
    let client = state.registry.load(&state.db, &client_id).await?.ok_or(AdminError::NotFound)?;
    if !client.metadata.token_endpoint_auth_method.uses_secret() {
        return Err(AdminError::invalid_request(
            "this client authenticates without a secret",
            "client_id",
        ));
    }
    let (client, secret) = state
        .registry
        .rotate_secret(
            &state.db,
            &state.revocations,
            &client_id,
            overlap,
            actor::admin(&admin, &state, &req),
        )
        .await?
        .ok_or(AdminError::NotFound)?;
    let overlap = overlap.as_secs();
    tracing::info!(admin = %admin.actor(), client_id = %client_id, overlap, "rotated a client secret");
    Ok(no_store(HttpResponse::Ok()).json(client.view(Some(secret.expose_secret().to_owned()))))
}

fn overlap_of(body: &Value) -> Result<Duration, AdminError> {
    let map = body
        .as_object()
        .ok_or_else(|| AdminError::invalid_request("the body must be a JSON object", "body"))?;
    if map.keys().any(|k| k != "overlap_seconds") {
        return Err(AdminError::invalid_request("only overlap_seconds may be sent", "body"));
    }
    match map.get("overlap_seconds") {
        None | Some(Value::Null) => Ok(Duration::ZERO),
        Some(v) => v.as_u64().and_then(registry::secret_overlap).ok_or_else(|| {
            AdminError::invalid_request(
                "overlap_seconds must be an integer from 0 to 604800",
                "overlap_seconds",
            )
        }),
    }
}

/// Answers carrying a secret are never cached.
fn no_store(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder.insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}
