//! `/admin/scopes`: the registered scopes and the descriptions users see at consent.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;

use super::{Admin, Page, json_body, page, page_params};
use crate::error::AdminError;
use crate::oauth::scopes::{self as changes, Invalid};
use crate::routes::actor;
use crate::startup::AppState;
use crate::store::scopes::{self, ScopeRecord, Written};

const LIST: &str = "scopes";

/// A scope in the admin API.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScopeView {
    pub name: String,
    pub description: String,
}

impl From<ScopeRecord> for ScopeView {
    fn from(r: ScopeRecord) -> Self {
        Self { name: r.name, description: r.description }
    }
}

/// Register a scope: `{"name", "description"}`.
#[utoipa::path(post, path = "/admin/scopes", tag = "scopes", request_body = ScopeView,
    responses((status = 201, body = ScopeView), (status = 400), (status = 409)))]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let body = json_body(&req, &body)?;
    let name = string_member(&body, "name")?;
    changes::check_name(&name).map_err(refused)?;
    let description = description(&body, &["name", "description"])?;
    let record = ScopeRecord { name, description, created_at: Utc::now() };
    match changes::create(&state.db, &record, actor::admin(&admin, &state, &req)).await? {
        Written::Done => Ok(HttpResponse::Created().json(ScopeView::from(record))),
        _ => Err(AdminError::Conflict("a scope with this name exists")),
    }
}

/// List scopes, a page at a time.
#[utoipa::path(get, path = "/admin/scopes", tag = "scopes",
    params(("limit" = Option<u64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<ScopeView>), (status = 400)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (limit, after) = page_params(&state, &req, LIST)?;
    let records = scopes::list(&state.db, after.as_deref(), limit + 1).await?;
    let views = records.into_iter().map(ScopeView::from).collect();
    Ok(HttpResponse::Ok().json(page(&state, LIST, views, limit, |v: &ScopeView| &v.name)))
}

#[utoipa::path(get, path = "/admin/scopes/{name}", tag = "scopes", params(("name" = String, Path)),
    responses((status = 200, body = ScopeView), (status = 404)))]
pub async fn read(
    state: web::Data<AppState>,
    _admin: Admin,
    name: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    if changes::check_name(&name).is_err() {
        return Err(AdminError::NotFound);
    }
    let record = scopes::find(&state.db, &name).await?.ok_or(AdminError::NotFound)?;
    Ok(HttpResponse::Ok().json(ScopeView::from(record)))
}

/// Replace a scope's description: `{"description"}` (a `name`, if sent, must match).
#[utoipa::path(put, path = "/admin/scopes/{name}", tag = "scopes", params(("name" = String, Path)),
    request_body = ScopeView, responses((status = 200, body = ScopeView), (status = 400), (status = 404)))]
pub async fn replace(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    if changes::check_name(&name).is_err() {
        return Err(AdminError::NotFound);
    }
    let body = json_body(&req, &body)?;
    if body.get("name").is_some_and(|n| n.as_str() != Some(name.as_str())) {
        return Err(AdminError::invalid_request("a scope cannot be renamed", "name"));
    }
    let description = description(&body, &["name", "description"])?;
    let actor = actor::admin(&admin, &state, &req);
    match changes::update(&state.db, &name, &description, actor).await? {
        Written::Done => {
            Ok(HttpResponse::Ok().json(ScopeView { name: name.into_inner(), description }))
        }
        _ => Err(AdminError::NotFound),
    }
}

/// Delete a scope no client is allowed any more; built-in scopes stay.
#[utoipa::path(delete, path = "/admin/scopes/{name}", tag = "scopes", params(("name" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)))]
pub async fn delete(
    state: web::Data<AppState>,
    admin: Admin,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    if changes::check_name(&name).is_err() {
        return Err(AdminError::NotFound);
    }
    if changes::is_built_in(&name) {
        return Err(AdminError::Conflict("built-in scopes cannot be deleted"));
    }
    match changes::delete(&state.db, &name, actor::admin(&admin, &state, &req)).await? {
        Written::Done => Ok(HttpResponse::NoContent().finish()),
        Written::NotFound => Err(AdminError::NotFound),
        Written::Conflict => Err(AdminError::Conflict("the scope is still allowed to some client")),
    }
}

fn string_member(body: &Value, name: &'static str) -> Result<String, AdminError> {
    body.get(name).and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
        AdminError::invalid_request("this member is required and must be a string", name)
    })
}

/// The `description` member, checked by the scope rules; other members than `allowed` refused.
fn description(body: &Value, allowed: &[&str]) -> Result<String, AdminError> {
    if let Some(map) = body.as_object()
        && map.keys().any(|k| !allowed.contains(&k.as_str()))
    {
        return Err(AdminError::invalid_request("unknown member", "body"));
    }
    let description = string_member(body, "description")?;
    changes::check_description(&description).map_err(refused)?;
    Ok(description)
}

fn refused(e: Invalid) -> AdminError {
    AdminError::invalid_request(e.description, e.field)
}
