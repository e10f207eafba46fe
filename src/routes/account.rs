//! `GET /account` (the signed-in user's grants) and `POST /account/grants/{id}/revoke`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::{
    self, AccountPage, GrantRow, csrf_token, current_session, error_page, unavailable,
};
use crate::startup::AppState;
use crate::store;

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = match current_session(&state, &req).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return pages::see_other(&format!(
                "{}/login?return_to=%2Faccount",
                pages::base(&state)
            ));
        }
        Err(e) => return unavailable(&state, e),
    };
    let grants = match store::grants::list_for_user(&state.db, &session.user.id).await {
        Ok(grants) => grants,
        Err(e) => return unavailable(&state, e),
    };
    let mut rows = Vec::with_capacity(grants.len());
    for grant in grants {
        let client_name = match state.registry.find(&state.db, &grant.client_id).await {
            Ok(Some(client)) if !client.metadata.client_name.is_empty() => {
                client.metadata.client_name.clone()
            }
            Ok(_) => grant.client_id.clone(),
            Err(e) => return unavailable(&state, e),
        };
        rows.push(GrantRow { id: grant.id, client_name, scope: grant.scope });
    }
    let page = AccountPage {
        base: pages::base(&state),
        csrf_token: csrf_token(&state, &session.id),
        username: session.user.username.clone(),
        grants: rows,
    };
    pages::render(StatusCode::OK, &page)
}

/// Revokes one of the signed-in user's own grants (session + CSRF).
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let (session, _) = match pages::signed_in_form(&state, &req, body).await {
        Ok(signed) => signed,
        Err(page) => return page,
    };
    match state.revocations.revoke_grant(&state.db, &id, Some(&session.user.id)).await {
        Ok(true) => {
            tracing::info!(user = %session.user.id, grant = %id, "grant revoked by its user");
            pages::see_other(&format!("{}/account", pages::base(&state)))
        }
        Ok(false) => error_page(&state, StatusCode::NOT_FOUND, "No such grant."),
        Err(e) => unavailable(&state, e),
    }
}
