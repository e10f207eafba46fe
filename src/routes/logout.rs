//! `GET`/`POST /logout`: ending the login session (SPEC §3). A GET only asks; the POST, with
//! its CSRF token, deletes the session row and the cookie.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::{
    self, LogoutPage, csrf_ok, csrf_token, current_session, error_page, field, form_pairs,
    unavailable,
};
use crate::oauth::session;
use crate::startup::AppState;

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(e) => return unavailable(&state, e),
    };
    let page = LogoutPage {
        base: pages::base(&state),
        csrf_token: session.as_ref().map(|s| csrf_token(&state, &s.id)),
        username: session.map(|s| s.user.username).unwrap_or_default(),
    };
    pages::render(StatusCode::OK, &page)
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let Some(form) = body.ok().and_then(|b| form_pairs(&req, &b)) else {
        return error_page(&state, StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let session = match current_session(&state, &req).await {
        Ok(session) => session,
        Err(e) => return unavailable(&state, e),
    };
    if let Some(session) = &session {
        if !csrf_ok(&state, &session.id, field(&form, "csrf_token")) {
            return error_page(
                &state,
                StatusCode::BAD_REQUEST,
                "The form has expired. Reload the page and try again.",
            );
        }
        if let Err(e) = session::end(&state.db, &session.id).await {
            return unavailable(&state, e);
        }
        tracing::info!(user = %session.user.id, "logged out");
    }
    let mut response = pages::render(
        StatusCode::OK,
        &LogoutPage { base: pages::base(&state), csrf_token: None, username: String::new() },
    );
    let mut expired = pages::cookie(&state, pages::session_cookie_name(&state), String::new());
    expired.make_removal();
    let _ = response.add_cookie(&expired);
    response
}
