//! `/admin/users`: create, list, read, replace and delete users (docs/REFERENCE.md §6).

use actix_web::{HttpRequest, HttpResponse, web};

use super::{Admin, Page, json_body, page, page_params, well_formed};
use crate::error::AdminError;
use crate::oauth::audit::{Event, EventType};
use crate::oauth::methods::{self, UserMethods};
use crate::oauth::passkeys;
use crate::oauth::users::{self, User, UserError};
use crate::routes::actor;
use crate::startup::AppState;
use crate::store;

const LIST: &str = "users";

impl From<UserError> for AdminError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::UsernameTaken => AdminError::Conflict("the username is taken"),
            UserError::NotFound => AdminError::NotFound,
            UserError::Store(s) => s.into(),
            UserError::Internal(i) => i.into(),
        }
    }
}

/// Create a user: `{"username", "password", "email", "email_verified", "name", "disabled",
/// "admin"}`.
#[utoipa::path(post, path = "/admin/users", tag = "users",
    request_body(content = Object, description = "username and password required; password is write-only"),
    responses((status = 201, body = User), (status = 400), (status = 409)))]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let input = users::parse_input(&json_body(&req, &body)?, true)?;
    let actor = actor::admin(&admin, &state, &req);
    Ok(HttpResponse::Created()
        .json(users::create(&state.db, &state.passwords, input, actor).await?))
}

/// List users, a page at a time.
#[utoipa::path(get, path = "/admin/users", tag = "users",
    params(("limit" = Option<u64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<User>), (status = 400)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (limit, after) = page_params(&state, &req, LIST)?;
    let records = store::users::list(&state.db, after.as_deref(), limit + 1).await?;
    let items = records.into_iter().map(User::from).collect();
    Ok(HttpResponse::Ok().json(page(&state, LIST, items, limit, |u: &User| &u.id)))
}

#[utoipa::path(get, path = "/admin/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 404)))]
pub async fn read(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    let record = store::users::find(&state.db, &id).await?.ok_or(AdminError::NotFound)?;
    Ok(HttpResponse::Ok().json(User::from(record)))
}

/// Replace a user; the password changes only when one is sent.
#[utoipa::path(put, path = "/admin/users/{id}", tag = "users", params(("id" = String, Path)),
    request_body(content = Object, description = "the user; password optional, write-only"),
    responses((status = 200, body = User), (status = 400), (status = 404), (status = 409)))]
pub async fn replace(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    let input = users::parse_input(&json_body(&req, &body)?, false)?;
    let actor = actor::admin(&admin, &state, &req);
    let replaced =
        users::replace(&state.db, &state.passwords, &state.revocations, &id, input, actor).await?;
    Ok(HttpResponse::Ok().json(replaced.user))
}

#[utoipa::path(delete, path = "/admin/users/{id}", tag = "users", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn delete(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    let event =
        Event::new(EventType::UserDeleted, actor::admin(&admin, &state, &req), subject(&id));
    if !state.revocations.delete_user(&state.db, &id, &event).await? {
        return Err(AdminError::NotFound);
    }
    tracing::info!(admin = %admin.actor(), user = %id, "deleted a user");
    Ok(HttpResponse::NoContent().finish())
}

/// End every session of a user and cut off every token issued to them so far.
#[utoipa::path(delete, path = "/admin/users/{id}/sessions", tag = "users",
    params(("id" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn end_sessions(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    let actor = actor::admin(&admin, &state, &req);
    users::end_sessions(&state.db, &state.revocations, &id, actor).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The sign-in methods a user has set up (never a secret or a recovery code).
#[utoipa::path(get, path = "/admin/users/{id}/methods", tag = "users",
    params(("id" = String, Path)), responses((status = 200, body = UserMethods), (status = 404)))]
pub async fn methods(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    let found = methods::of(&state.db, &id).await?.ok_or(AdminError::NotFound)?;
    Ok(HttpResponse::Ok().json(found))
}

/// Turn a user's authenticator app off (a lost phone), with its recovery codes: they sign
/// in with the password alone until they set up another. 404 if none was set up.
#[utoipa::path(delete, path = "/admin/users/{id}/totp", tag = "users",
    params(("id" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn reset_totp(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    let event =
        Event::new(EventType::MfaTotpRemoved, actor::admin(&admin, &state, &req), subject(&id))
            .with("by", "admin");
    if !methods::turn_off_totp(&state.db, &id, &event).await? {
        return Err(AdminError::NotFound);
    }
    tracing::info!(admin = %admin.actor(), user = %id, "turned a user's authenticator app off");
    Ok(HttpResponse::NoContent().finish())
}

/// Remove one of a user's passkeys (a lost device). 404 if the user has no such passkey.
#[utoipa::path(delete, path = "/admin/users/{id}/passkeys/{passkey_id}", tag = "users",
    params(("id" = String, Path), ("passkey_id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn remove_passkey(
    state: web::Data<AppState>,
    admin: Admin,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (id, passkey_id) = path.into_inner();
    well_formed(&id)?;
    well_formed(&passkey_id)?;
    let event =
        Event::new(EventType::MfaPasskeyRemoved, actor::admin(&admin, &state, &req), subject(&id))
            .with("passkey", passkey_id.as_str())
            .with("by", "admin");
    if !passkeys::remove(&state.db, &id, &passkey_id, &event).await? {
        return Err(AdminError::NotFound);
    }
    tracing::info!(admin = %admin.actor(), user = %id, "removed a user's passkey");
    Ok(HttpResponse::NoContent().finish())
}

fn subject(id: &str) -> String {
    format!("user:{id}")
}
