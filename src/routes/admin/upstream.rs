//! `/admin/upstream-providers`: the OpenID providers users may sign in through (docs/REFERENCE.md
//! §3.14). The client secret is write-only: sealed under the master key when stored, never
//! answered.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{Admin, json_body};
use crate::error::AdminError;
use crate::oauth::upstream::{self, Change, Provider};
use crate::routes::actor;
use crate::startup::AppState;

/// A provider, and the redirect URI to register for this server at the provider.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProviderView {
    #[serde(flatten)]
    pub provider: Provider,
    pub redirect_uri: String,
}

fn view(state: &AppState, provider: Provider) -> ProviderView {
    let redirect_uri = upstream::redirect_uri(&state.issuer, &provider.id);
    ProviderView { provider, redirect_uri }
}

fn known_id(id: &str) -> Result<&str, AdminError> {
    if upstream::valid_id(id) { Ok(id) } else { Err(AdminError::NotFound) }
}

/// Add a provider: `{"id", "name", "issuer", "client_id", "client_secret", "scope"?,
/// "claim_mapping"?, "create_users"?, "trust_mfa"?}`.
#[utoipa::path(post, path = "/admin/upstream-providers", tag = "upstream providers",
    responses((status = 201, body = ProviderView), (status = 400), (status = 409)))]
pub async fn create(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let body = json_body(&req, &body)?;
    let id = body.get("id").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
    if !upstream::valid_id(&id) {
        return Err(AdminError::invalid_request(
            "id is 1 to 32 lowercase letters, digits or '-'",
            "id",
        ));
    }
    let input = upstream::parse_input(&body, true, state.settings.outbound_allow_private_networks)?;
    let actor = actor::admin(&admin, &state, &req);
    match upstream::create(&state.db, state.keys.master(), &id, input, actor).await? {
        Change::Done(provider) => {
            state.upstream.forget();
            Ok(HttpResponse::Created().json(view(&state, provider)))
        }
        _ => Err(AdminError::Conflict("a provider with this id exists")),
    }
}

/// Every provider.
#[utoipa::path(get, path = "/admin/upstream-providers", tag = "upstream providers",
    responses((status = 200, body = Vec<ProviderView>)))]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, AdminError> {
    let providers = upstream::list(&state.db).await?;
    let views: Vec<ProviderView> = providers.into_iter().map(|p| view(&state, p)).collect();
    Ok(HttpResponse::Ok().json(views))
}

#[utoipa::path(get, path = "/admin/upstream-providers/{id}", tag = "upstream providers",
    params(("id" = String, Path)), responses((status = 200, body = ProviderView), (status = 404)))]
pub async fn read(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let provider = upstream::find(&state.db, known_id(&id)?).await?.ok_or(AdminError::NotFound)?;
    Ok(HttpResponse::Ok().json(view(&state, provider)))
}

/// Replace a provider's settings; without `client_secret` the stored one is kept.
#[utoipa::path(put, path = "/admin/upstream-providers/{id}", tag = "upstream providers",
    params(("id" = String, Path)),
    responses((status = 200, body = ProviderView), (status = 400), (status = 404)))]
pub async fn replace(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let id = known_id(&id)?;
    let body = json_body(&req, &body)?;
    if body.get("id").is_some_and(|v| v.as_str() != Some(id)) {
        return Err(AdminError::invalid_request("a provider cannot be renamed", "id"));
    }
    let input =
        upstream::parse_input(&body, false, state.settings.outbound_allow_private_networks)?;
    let actor = actor::admin(&admin, &state, &req);
    match upstream::replace(&state.db, state.keys.master(), id, input, actor).await? {
        Change::Done(provider) => {
            state.upstream.forget();
            Ok(HttpResponse::Ok().json(view(&state, provider)))
        }
        Change::SecretNeeded => Err(AdminError::invalid_request(
            "a new issuer or client_id needs its client_secret",
            "client_secret",
        )),
        _ => Err(AdminError::NotFound),
    }
}

/// Remove a provider. Identities linked through it stay linked (by issuer and subject), and
/// work again if it is added back.
#[utoipa::path(delete, path = "/admin/upstream-providers/{id}", tag = "upstream providers",
    params(("id" = String, Path)), responses((status = 204), (status = 404)))]
pub async fn delete(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let id = known_id(&id)?;
    if !upstream::delete(&state.db, id, actor::admin(&admin, &state, &req)).await? {
        return Err(AdminError::NotFound);
    }
    state.upstream.forget();
    Ok(HttpResponse::NoContent().finish())
}
