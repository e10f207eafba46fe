//! `GET /account` (the signed-in user's grants) and `POST /account/grants/{id}/revoke`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::{
    self, AccountPage, GrantRow, PageError, PageResult, csrf_token, current_session,
};
use crate::oauth::audit::{Event, EventType};
use crate::startup::AppState;
use crate::store;

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = show(&state, &req).await;
    pages::answer(&state, outcome)
}

async fn show(state: &AppState, req: &HttpRequest) -> PageResult {
    let Some(session) = current_session(state, req).await? else {
        return Ok(pages::see_other(&format!("{}/login?return_to=%2Faccount", pages::base(state))));
    };
    let grants = store::grants::list_for_user(&state.db, &session.user.id).await?;
    let mut rows = Vec::with_capacity(grants.len());
    for grant in grants {
        let client_name = match state.registry.find(&state.db, &grant.client_id).await? {
            Some(client) if !client.metadata.client_name.is_empty() => {
                client.metadata.client_name.clone()
            }
            _ => grant.client_id.clone(),
        };
        rows.push(GrantRow { id: grant.id, client_name, scope: grant.scope });
    }
    let page = AccountPage {
        base: pages::base(state),
        csrf_token: csrf_token(state, &session.id),
        username: session.user.username.clone(),
        grants: rows,
    };
    Ok(pages::render(state, StatusCode::OK, &page))
}

/// Revokes one of the signed-in user's own grants (session + CSRF).
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = revoke_own(&state, &req, &id, body).await;
    pages::answer(&state, outcome)
}

async fn revoke_own(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, _) = pages::signed_in_form(state, req, body).await?;
    let actor = super::actor::user(&session.user.id, state, req);
    let event =
        Event::new(EventType::GrantRevoked, actor, format!("grant:{id}")).with("by", "user");
    if !state.revocations.revoke_grant(&state.db, id, Some(&session.user.id), &event).await? {
        return Err(PageError::Shown(StatusCode::NOT_FOUND, "No such grant."));
    }
    tracing::info!(user = %session.user.id, grant = %id, "grant revoked by its user");
    Ok(pages::see_other(&format!("{}/account", pages::base(state))))
}
