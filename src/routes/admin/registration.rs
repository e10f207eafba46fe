//! Dynamic registration for administrators (docs/REFERENCE.md §5.10, §6): initial access
//! tokens that open closed registration, and the policy itself.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;

use super::{Admin, Page, json_body, page, page_params};
use crate::error::AdminError;
use crate::oauth::client::is_client_id;
use crate::oauth::gate::ADMIN_SCOPE;
use crate::oauth::registration::{Mode, Policy};
use crate::oauth::registration_admin;
use crate::oauth::registry;
use crate::oauth::scope::Scopes;
use crate::oauth::secret;
use crate::routes::actor;
use crate::startup::AppState;
use crate::store::{self, registration::InitialAccessToken};

const LIST: &str = "initial-access-tokens";
/// The most registrations one token may open, and the longest it may live (30 days).
const MAX_USES: i64 = 1000;
const MAX_EXPIRES_IN: i64 = 30 * 24 * 3600;

/// An initial access token as administrators see it; `token` only in the answer that made it.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The scopes a client registered with it may hold (empty: any but `admin`).
    pub scope: String,
    pub uses: i32,
    pub uses_left: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Never the token in a log.
impl std::fmt::Debug for TokenView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenView")
            .field("id", &self.id)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("uses_left", &self.uses_left)
            .finish_non_exhaustive()
    }
}

fn view(token: InitialAccessToken, secret: Option<String>) -> TokenView {
    TokenView {
        id: token.id,
        token: secret,
        scope: token.scope,
        uses: token.uses,
        uses_left: token.uses_left,
        created_by: token.created_by,
        created_at: token.created_at,
        expires_at: token.expires_at,
    }
}

/// Issue an initial access token: `{"uses", "expires_in", "scope"}`, all optional (1 use,
/// a day, any scope but admin). The token is in this answer only.
#[utoipa::path(post, path = "/admin/initial-access-tokens", tag = "registration",
    request_body(content = Object, description = "{\"uses\": 1-1000, \"expires_in\": seconds up to 30 days, \"scope\": \"…\"}"),
    responses((status = 201, body = TokenView), (status = 400)))]
pub async fn issue(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let body = json_body(&req, &body)?;
    let map = body
        .as_object()
        .ok_or_else(|| AdminError::invalid_request("the body must be a JSON object", "body"))?;
    if map.keys().any(|k| !["uses", "expires_in", "scope"].contains(&k.as_str())) {
        return Err(AdminError::invalid_request(
            "only uses, expires_in and scope may be sent",
            "body",
        ));
    }
    let number = |name: &str, default: i64, max: i64, description: &'static str| match map.get(name)
    {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| AdminError::invalid_request(description, name)),
    };
    let uses = number("uses", 1, MAX_USES, "uses must be an integer from 1 to 1000")?;
    let expires_in = number(
        "expires_in",
        24 * 3600,
        MAX_EXPIRES_IN,
        "expires_in must be a number of seconds from 1 to 2592000",
    )?;
    let scope = match map.get("scope") {
        None | Some(Value::Null) => Scopes::default(),
        Some(Value::String(s)) => {
            Scopes::parse(s).map_err(|_| AdminError::invalid_request("malformed scope", "scope"))?
        }
        Some(_) => return Err(AdminError::invalid_request("scope must be a string", "scope")),
    };
    if scope.contains(ADMIN_SCOPE) {
        return Err(AdminError::invalid_request(
            "admin is never granted to clients that register themselves",
            "scope",
        ));
    }
    check_scopes_exist(&state, &scope).await?;
    let token = secret::generate()?;
    let now = Utc::now();
    let stored = InitialAccessToken {
        id: secret::random_token(12)?,
        hash: secret::hash(&token),
        scope: scope.to_string(),
        uses: i32::try_from(uses).unwrap_or(i32::MAX),
        uses_left: i32::try_from(uses).unwrap_or(i32::MAX),
        created_by: admin.actor(),
        created_at: now,
        expires_at: now + chrono::Duration::seconds(expires_in),
    };
    registration_admin::issue(&state.db, &stored, actor::admin(&admin, &state, &req)).await?;
    tracing::info!(admin = %admin.actor(), id = %stored.id, uses, "issued an initial access token");
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view(stored, Some(token.expose_secret().to_owned()))))
}

/// List initial access tokens (never the tokens themselves), a page at a time.
#[utoipa::path(get, path = "/admin/initial-access-tokens", tag = "registration",
    params(("limit" = Option<u64>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<TokenView>), (status = 400)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (limit, after) = page_params(&state, &req, LIST)?;
    let tokens = store::registration::list_tokens(&state.db, after.as_deref(), limit + 1).await?;
    let views = tokens.into_iter().map(|t| view(t, None)).collect();
    Ok(HttpResponse::Ok().json(page(&state, LIST, views, limit, |v: &TokenView| &v.id)))
}

/// Revoke an initial access token (clients it registered stay).
#[utoipa::path(delete, path = "/admin/initial-access-tokens/{id}", tag = "registration",
    params(("id" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn revoke(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    if !is_client_id(&id)
        || !registration_admin::revoke(&state.db, &id, actor::admin(&admin, &state, &req)).await?
    {
        return Err(AdminError::NotFound);
    }
    tracing::info!(admin = %admin.actor(), id = %id, "revoked an initial access token");
    Ok(HttpResponse::NoContent().finish())
}

/// The registration policy in force, and where it comes from.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub policy: Policy,
    /// `settings` until an administrator stores a policy, then `admin`.
    pub source: &'static str,
}

/// Read the registration policy (404 when CASTELLAN_REGISTRATION is off).
#[utoipa::path(get, path = "/admin/registration-policy", tag = "registration",
    responses((status = 200, body = PolicyView), (status = 404)))]
pub async fn policy(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, AdminError> {
    let policy = Policy::load(&state.db, &state.settings).await?.ok_or(AdminError::NotFound)?;
    let source =
        if store::registration::policy(&state.db).await?.is_some() { "admin" } else { "settings" };
    Ok(HttpResponse::Ok().json(PolicyView { policy, source }))
}

/// Replace the registration policy: `mode` (`open` or `closed`) and the open ceiling, all
/// members required. Every replica applies it to the next registration.
#[utoipa::path(put, path = "/admin/registration-policy", tag = "registration",
    request_body(content = Object, description = "{\"mode\", \"scope\", \"grant_types\", \"redirect_uri_kinds\", \"resources\"}"),
    responses((status = 200, body = PolicyView), (status = 400), (status = 404)))]
pub async fn set_policy(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    if Policy::from_settings(&state.settings).is_none() {
        return Err(AdminError::NotFound);
    }
    let policy = Policy::parse(&json_body(&req, &body)?)?;
    check_scopes_exist(&state, &policy.scopes()).await?;
    let json = serde_json::to_string(&policy).map_err(anyhow::Error::from)?;
    let mode = match policy.mode {
        Mode::Open => "open",
        Mode::Closed => "closed",
    };
    let actor = actor::admin(&admin, &state, &req);
    registration_admin::set_policy(&state.db, &json, mode, &admin.actor(), actor, Utc::now())
        .await?;
    tracing::info!(admin = %admin.actor(), policy = %json, "set the registration policy");
    Ok(HttpResponse::Ok().json(PolicyView { policy, source: "admin" }))
}

async fn check_scopes_exist(state: &AppState, scopes: &Scopes) -> Result<(), AdminError> {
    if !registry::all_registered(&state.db, scopes).await? {
        return Err(AdminError::invalid_request(
            "scope names a scope that is not registered",
            "scope",
        ));
    }
    Ok(())
}
