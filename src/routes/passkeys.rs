//! Passkeys (docs/REFERENCE.md §3.4, §3.6): `POST /login/passkey/options` and `POST
//! /login/passkey` (a sign-in with a discoverable passkey, no username typed), `POST
//! /account/passkeys/options` and `POST /account/passkeys` (registering one, from a session
//! signed in within [`FRESH_SIGN_IN`]), `POST /account/passkeys/{id}/rename` and `POST
//! /account/passkeys/{id}/remove`. The options are JSON, fetched by `/static/passkeys.js`;
//! the answers are forms it posts, answered like the other forms (a redirect or a page).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::actor::anonymous;
use super::pages::{self, PageError, PageResult, csrf_ok, field, pre_session_binding};
use crate::error::json_error;
use crate::oauth::audit::{Event, EventType};
use crate::oauth::passkeys::{self, Refused, RelyingParty};
use crate::oauth::session::{self, Session};
use crate::startup::AppState;
use crate::store;

/// How recent a sign-in must be for its session to register a passkey.
pub const FRESH_SIGN_IN: chrono::Duration = chrono::Duration::minutes(5);

/// Whether `session` signed in recently enough to add a way of signing in.
pub fn fresh(session: &Session) -> bool {
    Utc::now() - session.auth_time <= FRESH_SIGN_IN
}

fn relying_party(state: &AppState) -> Option<RelyingParty> {
    RelyingParty::from_issuer(state.issuer.as_str())
}

/// Whether passkeys can be offered: the issuer's host is a domain name (WebAuthn refuses IP
/// addresses as relying party ids).
pub fn available(state: &AppState) -> bool {
    relying_party(state).is_some()
}

/// A JSON refusal in the documented shape.
fn refused(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    json_error(status, error, description, None)
}

fn options_answer(begun: passkeys::Begun) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({"options": begun.options, "state": begun.state}))
}

fn unavailable(error: &impl std::fmt::Display) -> HttpResponse {
    tracing::warn!(error = %error, "passkey options unavailable");
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the service is temporarily unavailable",
    )
}

/// `POST /login/passkey/options`: a sign-in challenge for this browser (its pre-session
/// binding), given the login page's CSRF token.
pub async fn login_options(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let Some(form) = body.ok().and_then(|b| pages::form_pairs(&req, &b)) else {
        return refused(StatusCode::BAD_REQUEST, "invalid_request", "a form body is expected");
    };
    let (binding, _) = pre_session_binding(&state, &req);
    if !csrf_ok(&state, &binding, field(&form, "csrf_token")) {
        return refused(StatusCode::BAD_REQUEST, "invalid_request", pages::EXPIRED_FORM);
    }
    let Some(rp) = relying_party(&state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "passkeys_unavailable",
            "passkeys need an issuer whose host is a domain name",
        );
    };
    let master = state.keys.master();
    match passkeys::begin_login(&rp, master, &binding, state.settings.passkey_timeout) {
        Ok(begun) => options_answer(begun),
        Err(e) => unavailable(&e),
    }
}

/// `POST /login/passkey`: the browser's answer; right, a session starts (with `amr` `swk` or
/// `hwk`, `user`, `mfa`) and the browser goes on to `return_to`.
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = sign_in(&state, &req, body).await;
    pages::answer(&state, outcome)
}

const PASSKEY_REFUSED: &str =
    "That passkey could not sign you in. Go back to the sign-in page and try again.";

async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let form = pages::read_form(req, body)?;
    let return_to = super::login::safe_return(field(&form, "return_to"))?;
    let (binding, _) = pre_session_binding(state, req);
    if !csrf_ok(state, &binding, field(&form, "csrf_token")) {
        return Err(PageError::bad_request(pages::EXPIRED_FORM));
    }
    let rp = relying_party(state).ok_or(PageError::bad_request(PASSKEY_REFUSED))?;
    let sealed = field(&form, "state").unwrap_or_default();
    let response = field(&form, "credential").unwrap_or_default();
    let master = state.keys.master();
    let outcome =
        passkeys::finish_login(&state.db, &rp, master, &binding, sealed, response.as_bytes()).await;
    let signed_in = match outcome {
        Ok(signed_in) => signed_in,
        Err(Refused::Store(e)) => return Err(PageError::Store(e)),
        Err(refusal) => {
            tracing::info!(reason = %refusal, "passkey sign-in refused");
            let subject = match &refusal {
                Refused::Disabled(user_id) => format!("user:{user_id}"),
                _ => "user:unknown".to_owned(),
            };
            let event = Event::new(EventType::SignIn, anonymous(state, req), subject)
                .with("factor", "passkey")
                .with("reason", refusal_reason(&refusal));
            super::login::record_refusal(state, event).await?;
            return Err(PageError::Shown(StatusCode::UNAUTHORIZED, PASSKEY_REFUSED));
        }
    };
    let user = signed_in.user;
    let amr = if signed_in.backup_eligible {
        session::Amr::PasskeySynced
    } else {
        session::Amr::PasskeyBound
    };
    let event = Event::new(
        EventType::SignIn,
        super::actor::user(&user.id, state, req),
        format!("user:{}", user.id),
    )
    .with("passkey", signed_in.passkey_id.as_str());
    let now = Utc::now().timestamp();
    super::login::start_session(state, req, &user, amr, &return_to, event, now).await
}

/// The reason a refused ceremony is recorded with (never the response itself).
fn refusal_reason(refusal: &Refused) -> &'static str {
    match refusal {
        Refused::Expired => "expired",
        Refused::Replayed => "replayed",
        Refused::Invalid(_) => "invalid",
        Refused::Unknown => "unknown_passkey",
        Refused::Disabled(_) => "disabled",
        Refused::Store(_) => "unavailable",
    }
}

/// `POST /account/passkeys/options`: a registration challenge for the signed-in user, bound
/// to the session; refused (`login_required`) unless the session signed in recently.
pub async fn register_options(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let Some(form) = body.ok().and_then(|b| pages::form_pairs(&req, &b)) else {
        return refused(StatusCode::BAD_REQUEST, "invalid_request", "a form body is expected");
    };
    let session = match pages::current_session(&state, &req).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return refused(StatusCode::UNAUTHORIZED, "login_required", "sign in first");
        }
        Err(e) => return unavailable(&e),
    };
    if !csrf_ok(&state, &session.id, field(&form, "csrf_token")) {
        return refused(StatusCode::BAD_REQUEST, "invalid_request", pages::EXPIRED_FORM);
    }
    if !fresh(&session) {
        return refused(
            StatusCode::BAD_REQUEST,
            "login_required",
            "sign in again (within the last 5 minutes) to add a passkey",
        );
    }
    let Some(rp) = relying_party(&state) else {
        return refused(
            StatusCode::BAD_REQUEST,
            "passkeys_unavailable",
            "passkeys need an issuer whose host is a domain name",
        );
    };
    let existing = match store::passkeys::list_for_user(&state.db, &session.user.id).await {
        Ok(existing) => existing,
        Err(e) => return unavailable(&e),
    };
    let handle = existing.first().map(|p| p.user_handle.as_slice());
    let exclude: Vec<Vec<u8>> = existing.iter().map(|p| p.credential_id.clone()).collect();
    let begun = passkeys::begin_registration(
        &rp,
        state.keys.master(),
        &session.id,
        &session.user.id,
        &session.user.username,
        handle,
        &exclude,
        state.settings.passkey_timeout,
    );
    match begun {
        Ok(begun) => options_answer(begun),
        Err(e) => unavailable(&e),
    }
}

/// `POST /account/passkeys`: the authenticator's new credential, with the name to give it.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = add(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn add(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    if !fresh(&session) {
        return Err(PageError::bad_request(
            "Sign in again (within the last 5 minutes) to add a passkey.",
        ));
    }
    let rp = relying_party(state)
        .ok_or(PageError::bad_request("Passkeys need an issuer whose host is a domain name."))?;
    let name = passkeys::clean_name(field(&form, "name").unwrap_or_default());
    let actor = super::actor::user(&session.user.id, state, req);
    let subject = format!("user:{}", session.user.id);
    let event =
        Event::new(EventType::MfaPasskeyRegistered, actor, subject).with("name", name.as_str());
    let outcome = passkeys::finish_registration(
        &state.db,
        &rp,
        state.keys.master(),
        &session.id,
        &session.user.id,
        field(&form, "state").unwrap_or_default(),
        field(&form, "credential").unwrap_or_default().as_bytes(),
        &name,
        &event,
    )
    .await;
    match outcome {
        Ok(_) => Ok(pages::see_other(&format!("{}/account", pages::base(state)))),
        Err(Refused::Store(e)) => Err(PageError::Store(e)),
        Err(refusal) => {
            tracing::info!(reason = %refusal, user = %session.user.id, "passkey registration refused");
            Err(PageError::bad_request(
                "The passkey could not be registered. Go back to your account and try again.",
            ))
        }
    }
}

/// `POST /account/passkeys/{id}/rename`.
pub async fn rename(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = rename_own(&state, &req, &id, body).await;
    pages::answer(&state, outcome)
}

async fn rename_own(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    let name = passkeys::clean_name(field(&form, "name").unwrap_or_default());
    let actor = super::actor::user(&session.user.id, state, req);
    let event =
        Event::new(EventType::MfaPasskeyRenamed, actor, format!("user:{}", session.user.id))
            .with("passkey", id)
            .with("name", name.as_str());
    if !passkeys::rename(&state.db, &session.user.id, id, &name, &event).await? {
        return Err(PageError::Shown(StatusCode::NOT_FOUND, "No such passkey."));
    }
    Ok(pages::see_other(&format!("{}/account", pages::base(state))))
}

/// `POST /account/passkeys/{id}/remove`.
pub async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = remove_own(&state, &req, &id, body).await;
    pages::answer(&state, outcome)
}

async fn remove_own(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, _) = pages::signed_in_form(state, req, body).await?;
    let actor = super::actor::user(&session.user.id, state, req);
    let event =
        Event::new(EventType::MfaPasskeyRemoved, actor, format!("user:{}", session.user.id))
            .with("passkey", id)
            .with("by", "user");
    if !passkeys::remove(&state.db, &session.user.id, id, &event).await? {
        return Err(PageError::Shown(StatusCode::NOT_FOUND, "No such passkey."));
    }
    tracing::info!(user = %session.user.id, "a passkey removed by its user");
    Ok(pages::see_other(&format!("{}/account", pages::base(state))))
}
