//! `GET /admin/users/{id}/grants` and `DELETE /admin/grants/{id}`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Admin, Page, well_formed};
use crate::error::AdminError;
use crate::oauth::audit::{Actor, Event, EventType};
use crate::routes::actor;
use crate::startup::AppState;
use crate::store::{self, StoreError};

/// A grant: a user's consent to a client's scopes.
#[derive(Serialize, utoipa::ToSchema)]
pub struct GrantView {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A user's grants.
#[utoipa::path(get, path = "/admin/users/{id}/grants", tag = "grants", params(("id" = String, Path)),
    responses((status = 200, body = Page<GrantView>), (status = 404)))]
pub async fn for_user(
    state: web::Data<AppState>,
    _admin: Admin,
    id: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    if store::users::find(&state.db, &id).await?.is_none() {
        return Err(AdminError::NotFound);
    }
    let items = store::grants::list_for_user(&state.db, &id)
        .await?
        .into_iter()
        .map(|g| GrantView {
            id: g.id,
            user_id: g.user_id,
            client_id: g.client_id,
            scope: g.scope,
            created_at: g.created_at,
            updated_at: g.updated_at,
        })
        .collect();
    Ok(HttpResponse::Ok().json(Page { items, next_cursor: None }))
}

/// Revoke a grant.
#[utoipa::path(delete, path = "/admin/grants/{id}", tag = "grants", params(("id" = String, Path)),
    responses((status = 204), (status = 404)))]
pub async fn revoke(
    state: web::Data<AppState>,
    admin: Admin,
    id: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    well_formed(&id)?;
    let actor = actor::admin(&admin, &state, &req);
    if !revoke_by_admin(&state, &id, actor).await? {
        return Err(AdminError::NotFound);
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Revokes any user's grant as an administrator (`actor`), recording `grant.revoked` with
/// `by: admin`: the admin API's and the console's one path. `false` if there was none.
pub(crate) async fn revoke_by_admin(
    state: &AppState,
    id: &str,
    actor: Actor,
) -> Result<bool, StoreError> {
    let by = actor.id.clone();
    let event =
        Event::new(EventType::GrantRevoked, actor, format!("grant:{id}")).with("by", "admin");
    let revoked = state.revocations.revoke_grant(&state.db, id, None, &event).await?;
    if revoked {
        tracing::info!(admin = %by, grant = %id, "grant revoked by an admin");
    }
    Ok(revoked)
}
