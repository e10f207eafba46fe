//! `/console`: the admin console (docs/REFERENCE.md §3.12). It signs in through this server's
//! own code flow as the reserved client `castellan-console`; its session is a login session
//! row in its own cookie, good only while its user holds the administrator flag.

mod chart;
pub mod clients;
pub mod events;
pub mod keys;
pub mod scopes;
pub mod users;

use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::pages::{self, PageError, PageResult};
use super::theme::Page;
use crate::oauth::audit::{Event, EventType};
use crate::oauth::console::{self, Flow, Refused};
use crate::oauth::keyring::{self, KeyInfo};
use crate::oauth::{secret, session};
use crate::startup::{AppState, key_policy};
use crate::store;
use crate::store::overview::{self, Counts};

/// How long a browser has to come back from `/authorize` with the code.
const FLOW_SECS: i64 = 600;
/// Between the binding and the page asked for in the flow cookie: never in a binding, which
/// is base64url.
const RETURN_SEPARATOR: char = '.';
/// The longest page address kept for after the sign-in.
const RETURN_LIMIT: usize = 1024;
const NOT_ADMINISTRATOR: &str = "The console is for administrators only.";
const RESTART: &str = "The console sign-in could not be completed. Open the console again.";

/// What every console page shows around its content: the paths' base, the form token bound
/// to the console session, and who is signed in.
#[derive(Serialize)]
pub(super) struct Frame<'a> {
    base: &'a str,
    csrf_token: String,
    username: String,
}

impl<'a> Frame<'a> {
    pub(super) fn of(state: &'a AppState, session: &session::Session) -> Self {
        Frame {
            base: pages::base(state),
            csrf_token: pages::csrf_token(state, &session.id),
            username: session.user.username.clone(),
        }
    }
}

#[derive(Serialize)]
struct Dashboard<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    counts: Counts,
    keys: Vec<KeyInfo>,
    next_rotation: Option<DateTime<Utc>>,
    sign_ins: chart::Chart,
    tokens: chart::Chart,
    succeeded: u32,
    failed: u32,
    tokens_issued: u32,
    /// Both charts' numbers: each hour's succeeded and failed sign-ins, and tokens issued.
    hours: Vec<chart::Row>,
}

impl Page for Dashboard<'_> {
    const TEMPLATE: &'static str = "console/dashboard.html";
}

#[derive(Serialize)]
struct SignedOut<'a> {
    base: &'a str,
}

impl Page for SignedOut<'_> {
    const TEMPLATE: &'static str = "console/signed_out.html";
}

fn session_cookie(state: &AppState) -> &'static str {
    if state.issuer.is_https() { "__Host-castellan_console" } else { "castellan_console" }
}

fn flow_cookie(state: &AppState) -> &'static str {
    if state.issuer.is_https() { "__Host-castellan_console_flow" } else { "castellan_console_flow" }
}

/// This browser's console session: live, and its user an administrator now. A session whose
/// user lost the flag is ended here.
pub(super) async fn console_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<session::Session>, PageError> {
    let Some(cookie) = req.cookie(session_cookie(state)) else { return Ok(None) };
    let idle = state.settings.session_idle_timeout;
    let Some(found) = session::find(&state.db, cookie.value(), idle).await? else {
        return Ok(None);
    };
    if !found.user.admin {
        session::end(&state.db, &found.id, None).await?;
        return Err(PageError::Shown(StatusCode::FORBIDDEN, NOT_ADMINISTRATOR));
    }
    Ok(Some(found))
}

/// `GET /console`: the dashboard, or off to `/authorize` to sign in.
pub async fn dashboard(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    pages::answer(&state, show_dashboard(&state, &req).await)
}

async fn show_dashboard(state: &AppState, req: &HttpRequest) -> PageResult {
    let Some(session) = console_session(state, req).await? else { return sign_in(state, req) };
    let now = Utc::now();
    let counts = overview::counts(&state.db, now).await?;
    let since = chart::since(now);
    let sign_ins = overview::sign_ins_since(&state.db, since).await?;
    let of = |ok: bool| sign_ins.iter().filter(move |s| s.1 == ok).map(|s| (s.0, 1));
    let succeeded = chart::Series::bucket(now, "succeeded", of(true));
    let failed = chart::Series::bucket(now, "failed", of(false));
    // Every replica's flushed counts: up to a sync interval behind (docs/REFERENCE.md §3.12).
    let issued = store::token_hours::since(&state.db, since).await?;
    let issued = issued.into_iter().map(|(hour, n)| (hour, u32::try_from(n).unwrap_or(u32::MAX)));
    let tokens = chart::Series::bucket(now, "tokens", issued);
    let (keys, next_rotation) = key_ring(state).await?;
    let page = Dashboard {
        frame: Frame::of(state, &session),
        counts,
        keys,
        next_rotation,
        sign_ins: chart::draw(now, &[&succeeded, &failed]),
        tokens: chart::draw(now, &[&tokens]),
        succeeded: succeeded.total(),
        failed: failed.total(),
        tokens_issued: tokens.total(),
        hours: chart::table(now, &[&succeeded, &failed, &tokens]),
    };
    Ok(pages::render(state, StatusCode::OK, &page))
}

/// Every stored key, and when the next scheduled rotation is due.
pub(super) async fn key_ring(
    state: &AppState,
) -> Result<(Vec<KeyInfo>, Option<DateTime<Utc>>), PageError> {
    let policy = key_policy(&state.settings);
    let keys = keyring::list_stored(&state.db, &policy).await?;
    let next_rotation = keyring::next_rotation(&keys, &policy);
    Ok((keys, next_rotation))
}

/// Starts a sign-in: a fresh random binding in the flow cookie, and the authorization
/// request derived from it (state, nonce, PKCE S256). The cookie also keeps the console page
/// asked for, where the callback goes once signed in.
pub(super) fn sign_in(state: &AppState, req: &HttpRequest) -> PageResult {
    let binding = secret::random_token(16).map_err(|e| PageError::Store(e.into()))?;
    let flow = Flow::derive(&state.csrf_key, &binding);
    let mut response = pages::see_other(&flow.authorize_url(state.issuer.as_str()));
    let asked = req.uri().path_and_query().map_or("", |p| p.as_str());
    let value = format!("{binding}{RETURN_SEPARATOR}{}", URL_SAFE_NO_PAD.encode(asked));
    let mut cookie = pages::cookie(state, flow_cookie(state), value);
    cookie.set_max_age(CookieDuration::seconds(FLOW_SECS));
    let _ = response.add_cookie(&cookie);
    Ok(response)
}

/// Where a finished sign-in goes: the console page that was asked for (`asked`, base64url of
/// its path and query) when it is one — a path under `{base}/console`, never another site,
/// never the callback — else the dashboard.
fn return_to(base: &str, asked: &str) -> String {
    let dashboard = format!("{base}/console");
    let Some(path) = URL_SAFE_NO_PAD.decode(asked).ok().and_then(|b| String::from_utf8(b).ok())
    else {
        return dashboard;
    };
    let Some(rest) = path.strip_prefix(&dashboard) else { return dashboard };
    let inside = rest.is_empty() || rest.starts_with('/') || rest.starts_with('?');
    let plain = !path.contains("//") && !path.contains('\\') && !path.chars().any(char::is_control);
    if inside && plain && path.len() <= RETURN_LIMIT && !rest.starts_with("/callback") {
        path
    } else {
        dashboard
    }
}

/// `GET /console/callback`: the end of the code flow. The flow cookie goes either way: an
/// attempt is answered once.
pub async fn callback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let mut response = pages::answer(&state, finish_sign_in(&state, &req).await);
    let mut spent = pages::cookie(&state, flow_cookie(&state), String::new());
    spent.make_removal();
    let _ = response.add_cookie(&spent);
    response
}

async fn finish_sign_in(state: &AppState, req: &HttpRequest) -> PageResult {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let cookie = req.cookie(flow_cookie(state)).map(|c| c.value().to_owned());
    let (binding, asked) = match cookie.as_deref().map(|v| v.split_once(RETURN_SEPARATOR)) {
        Some(Some((binding, asked))) => (Some(binding.to_owned()), asked.to_owned()),
        Some(None) => (cookie.clone(), String::new()),
        None => (None, String::new()),
    };
    let (Some(binding), Some(returned)) = (binding, pages::field(&query, "state")) else {
        return Err(PageError::bad_request(RESTART));
    };
    if !Flow::state_matches(&state.csrf_key, &binding, returned) {
        return Err(PageError::bad_request(RESTART));
    }
    if pages::field(&query, "error") == Some("access_denied") {
        return Err(PageError::Shown(StatusCode::FORBIDDEN, "The console sign-in was declined."));
    }
    let code = pages::field(&query, "code").ok_or(PageError::bad_request(RESTART))?;
    let Some(client) = state.registry.find(&state.db, console::CLIENT_ID).await? else {
        tracing::error!("the console client is missing: it is restored at the next start");
        return Err(PageError::Shown(StatusCode::SERVICE_UNAVAILABLE, RESTART));
    };
    let flow = Flow::derive(&state.csrf_key, &binding);
    let issuing = super::token::issuing(state);
    let user_id = match console::redeem(&issuing, &state.gate(), &client, &flow, code).await {
        Ok(user_id) => user_id,
        Err(Refused::NotAdministrator) => {
            return Err(PageError::Shown(StatusCode::FORBIDDEN, NOT_ADMINISTRATOR));
        }
        Err(refused) => {
            tracing::info!(?refused, "a console sign-in was refused");
            return Err(PageError::bad_request(RESTART));
        }
    };
    if let Some(old) = req.cookie(session_cookie(state)) {
        session::end(&state.db, old.value(), None).await?;
    }
    let actor = super::actor::user(&user_id, state, req);
    let event = Event::new(EventType::ConsoleSignIn, actor, format!("user:{user_id}"));
    // The console's own session claims a password only: what it needs is the user's role,
    // not how strongly they signed in.
    let amr = session::Amr::Password;
    let origin = super::actor::origin(state, req);
    let lifetime = state.settings.session_lifetime;
    let id = session::start(&state.db, &user_id, amr, lifetime, origin, &event).await?;
    let mut response = pages::see_other(&return_to(pages::base(state), &asked));
    let _ = response.add_cookie(&pages::cookie(state, session_cookie(state), id));
    Ok(response)
}

/// A POSTed console form with its CSRF token checked first: the console session and the
/// form's fields, or the error page to answer with (nothing has been done yet).
pub(super) async fn signed_form(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<(session::Session, Vec<(String, String)>), PageError> {
    let form = pages::read_form(req, body)?;
    let Some(session) = console_session(state, req).await? else {
        return Err(PageError::bad_request("You are not signed in to the console."));
    };
    if !pages::csrf_ok(state, &session.id, pages::field(&form, "csrf_token")) {
        return Err(PageError::bad_request(pages::EXPIRED_FORM));
    }
    Ok((session, form))
}

/// `POST /console/logout`: ends the console session (CSRF-checked); the login session stays.
pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    pages::answer(&state, end_session(&state, &req, body).await)
}

async fn end_session(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, _) = signed_form(state, req, body).await?;
    let user_id = &session.user.id;
    let actor = super::actor::user(user_id, state, req);
    let event =
        Event::new(EventType::Logout, actor, format!("user:{user_id}")).with("by", "console");
    session::end(&state.db, &session.id, Some(&event)).await?;
    let mut response =
        pages::render(state, StatusCode::OK, &SignedOut { base: pages::base(state) });
    let mut expired = pages::cookie(state, session_cookie(state), String::new());
    expired.make_removal();
    let _ = response.add_cookie(&expired);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(path: &str) -> String {
        URL_SAFE_NO_PAD.encode(path)
    }

    #[test]
    fn a_sign_in_returns_only_to_a_console_page() {
        assert_eq!(return_to("", &asked("/console/clients?q=a")), "/console/clients?q=a");
        assert_eq!(return_to("/id", &asked("/id/console/events")), "/id/console/events");
        assert_eq!(return_to("", &asked("/console")), "/console");
        for elsewhere in [
            "https://evil.example/console",
            "//evil.example/console",
            "/console//evil.example",
            "/console\\evil",
            "/consolex",
            "/account",
            "/console/callback?code=x",
            "/console/\u{7}",
        ] {
            assert_eq!(return_to("", &asked(elsewhere)), "/console", "{elsewhere}");
        }
        assert_eq!(return_to("", "not base64!"), "/console");
        assert_eq!(return_to("", &asked(&format!("/console/{}", "a".repeat(2000)))), "/console");
    }
}
