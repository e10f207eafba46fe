//! `/admin/keys`: the signing keys and on-demand rotation (docs/REFERENCE.md §6–§7).

use actix_web::{HttpRequest, HttpResponse, web};

use super::{Admin, Page};
use crate::error::AdminError;
use crate::oauth::keyring::{self, KeyInfo};
use crate::startup::{AppState, key_policy};

/// Every key with its state and timestamps (never private material).
#[utoipa::path(get, path = "/admin/keys", tag = "keys", responses((status = 200, body = Page<KeyInfo>)))]
pub async fn list(state: web::Data<AppState>, _admin: Admin) -> Result<HttpResponse, AdminError> {
    Ok(HttpResponse::Ok().json(key_page(&state).await?))
}

/// Activate the published next key, retire the active one, create a new next key.
/// Refused (409) while the next key may be missing from JWKS caches, unless `?force=true`.
#[utoipa::path(post, path = "/admin/keys/rotate", tag = "keys",
    params(("force" = Option<bool>, Query)),
    responses((status = 200, body = Page<KeyInfo>), (status = 409)))]
pub async fn rotate(
    state: web::Data<AppState>,
    admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let force = url::form_urlencoded::parse(req.query_string().as_bytes())
        .any(|(name, value)| name == "force" && value == "true");
    let actor = crate::routes::actor::admin(&admin, &state, &req);
    state.keys.rotate(&state.db, force, actor).await?;
    let kid = state.keys.active_kid(crate::oauth::jwk::Algorithm::RS256);
    tracing::info!(admin = %admin.actor(), rs256_kid = %kid, "rotated the signing keys");
    Ok(HttpResponse::Ok().json(key_page(&state).await?))
}

async fn key_page(state: &AppState) -> Result<Page<KeyInfo>, AdminError> {
    let items = keyring::list_stored(&state.db, &key_policy(&state.settings)).await?;
    Ok(Page { items, next_cursor: None })
}
