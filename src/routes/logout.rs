//! `GET`/`POST /logout`: RP-Initiated Logout 1.0 at the `end_session_endpoint`, and ending the
//! login session (docs/REFERENCE.md §3). With a valid `id_token_hint` the session ends at once and the
//! browser goes back to a *registered* `post_logout_redirect_uri` with `state`; without one,
//! a page asks, and only its POST (with a CSRF token) signs out.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::pages::{
    self, EXPIRED_FORM, LogoutPage, PageError, PageResult, csrf_ok, csrf_token, current_session,
    field,
};
use crate::oauth::audit::{Event, EventType};
use crate::oauth::authorize::redirect_url;
use crate::oauth::{id_token, session};
use crate::startup::AppState;

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = ask(&state, &req).await;
    pages::answer(&state, outcome)
}

async fn ask(state: &AppState, req: &HttpRequest) -> PageResult {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    if field(&params, "id_token_hint").is_some() {
        return rp_initiated(state, req, &params).await;
    }
    let session = current_session(state, req).await?;
    let page = LogoutPage {
        base: pages::base(state),
        csrf_token: session.as_ref().map(|s| csrf_token(state, &s.id)),
        username: session.map(|s| s.user.username).unwrap_or_default(),
    };
    Ok(pages::render(state, StatusCode::OK, &page))
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = sign_out(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn sign_out(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let form = pages::read_form(req, body)?;
    if field(&form, "id_token_hint").is_some() {
        return rp_initiated(state, req, &form).await;
    }
    if let Some(session) = current_session(state, req).await? {
        if !csrf_ok(state, &session.id, field(&form, "csrf_token")) {
            return Err(PageError::bad_request(EXPIRED_FORM));
        }
        let event = logout(state, req, &session.user.id, "user");
        session::end(&state.db, &session.id, Some(&event)).await?;
        tracing::info!(user = %session.user.id, "logged out");
    }
    Ok(signed_out(state, None))
}

/// RP-Initiated Logout 1.0 §2–§3: the hint must be an ID token of ours (never `alg: none` or
/// foreign); the redirect only to a URI registered for the hint's client.
async fn rp_initiated(
    state: &AppState,
    req: &HttpRequest,
    params: &[(String, String)],
) -> PageResult {
    const INVALID: &str = "The logout request is not valid.";
    let hint = field(params, "id_token_hint").unwrap_or_default();
    let hint = id_token::verify_hint(&state.keys, state.issuer.as_str(), hint)
        .ok_or(PageError::bad_request(INVALID))?;
    if field(params, "client_id").is_some_and(|c| !hint.aud.iter().any(|a| a == c)) {
        return Err(PageError::bad_request(INVALID));
    }
    // Only the hinted user's session ends: a hint cannot sign someone else out.
    if let Some(session) = current_session(state, req).await?
        && session.user.id == hint.sub
    {
        let event = logout(state, req, &session.user.id, "relying_party");
        session::end(&state.db, &session.id, Some(&event)).await?;
        tracing::info!(user = %session.user.id, "logged out by the relying party");
    }
    let mut target = None;
    if let Some(uri) = field(params, "post_logout_redirect_uri") {
        for client_id in &hint.aud {
            if let Some(client) = state.registry.find(&state.db, client_id).await?
                && client.metadata.post_logout_redirect_uris.iter().any(|r| r == uri)
            {
                target = Some(uri.to_owned());
            }
        }
    }
    let redirect = target.map(|uri| match field(params, "state") {
        Some(s) => redirect_url(&uri, &[("state", s)]),
        None => uri,
    });
    Ok(signed_out(state, redirect))
}

/// The `logout` event of `user_id`'s session, ended at the request of `by`.
fn logout(state: &AppState, req: &HttpRequest, user_id: &str, by: &str) -> Event {
    let actor = super::actor::user(user_id, state, req);
    Event::new(EventType::Logout, actor, format!("user:{user_id}")).with("by", by)
}

/// The signed-out answer: back to the relying party, or our page; the cookie goes either way.
fn signed_out(state: &AppState, redirect: Option<String>) -> HttpResponse {
    let mut response = match redirect {
        Some(location) => pages::see_other(&location),
        None => pages::render(
            state,
            StatusCode::OK,
            &LogoutPage { base: pages::base(state), csrf_token: None, username: String::new() },
        ),
    };
    let mut expired = pages::cookie(state, pages::session_cookie_name(state), String::new());
    expired.make_removal();
    let _ = response.add_cookie(&expired);
    response
}
