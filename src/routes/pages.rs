//! The HTML side: templates, security headers on every page, cookies, the session and the
//! CSRF binding of a browser.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::oauth::{csrf, secret, session};
use crate::startup::AppState;

/// docs/REFERENCE.md §3: no framing, no referrer, only our own stylesheet, nothing else loads.
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    pub return_to: String,
    pub username: String,
    pub error: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    pub request: String,
    pub client_name: String,
    pub username: String,
    /// (scope, description)
    pub scopes: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub base: &'a str,
    pub message: &'a str,
}

#[derive(Template)]
#[template(path = "logout.html")]
pub struct LogoutPage<'a> {
    pub base: &'a str,
    /// Set while a session is open: the confirmation form's token.
    pub csrf_token: Option<String>,
    pub username: String,
}

pub struct GrantRow {
    pub id: String,
    pub client_name: String,
    pub scope: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    pub username: String,
    pub grants: Vec<GrantRow>,
}

/// The path prefix of the issuer, so links work behind a path-prefixing proxy.
pub fn base(state: &AppState) -> &str {
    let issuer = state.issuer.as_str();
    let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
    issuer[after_scheme..].find('/').map_or("", |i| &issuer[after_scheme + i..])
}

/// Renders a page with the security headers of docs/REFERENCE.md §3.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => {
            secured(HttpResponse::build(status)).content_type("text/html; charset=utf-8").body(body)
        }
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            secured(HttpResponse::InternalServerError())
                .content_type("text/plain")
                .body("server error")
        }
    }
}

pub fn error_page(state: &AppState, status: StatusCode, message: &str) -> HttpResponse {
    render(status, &ErrorPage { base: base(state), message })
}

/// A 303 redirect (after a POST the browser must GET the target).
pub fn see_other(location: &str) -> HttpResponse {
    secured(HttpResponse::SeeOther()).insert_header((header::LOCATION, location)).finish()
}

fn secured(mut builder: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    builder
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    builder
}

/// Cookie names: `__Host-` prefixed when the issuer is https (RFC 6265bis §4.1.3.2).
pub fn session_cookie_name(state: &AppState) -> &'static str {
    if state.issuer.is_https() { "__Host-castellan_session" } else { "castellan_session" }
}

/// The known-device cookie (`oauth::device`).
pub fn device_cookie_name(state: &AppState) -> &'static str {
    if state.issuer.is_https() { "__Host-castellan_device" } else { "castellan_device" }
}

fn csrf_cookie_name(state: &AppState) -> &'static str {
    if state.issuer.is_https() { "__Host-castellan_csrf" } else { "castellan_csrf" }
}

pub fn cookie(state: &AppState, name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.issuer.is_https())
        .finish()
}

/// The logged-in session of this browser, if any.
pub async fn current_session(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<session::Session>, crate::store::StoreError> {
    let Some(cookie) = req.cookie(session_cookie_name(state)) else { return Ok(None) };
    session::find(&state.db, cookie.value(), state.settings.session_idle_timeout).await
}

/// The pre-session CSRF binding of this browser: its cookie value, or a new one to set.
pub fn pre_session_binding(
    state: &AppState,
    req: &HttpRequest,
) -> (String, Option<Cookie<'static>>) {
    if let Some(existing) = req.cookie(csrf_cookie_name(state))
        && existing.value().len() == 22
    {
        return (existing.value().to_owned(), None);
    }
    let value = secret::random_token(16).unwrap_or_default();
    (value.clone(), Some(cookie(state, csrf_cookie_name(state), value)))
}

/// Whether `token` is this browser's CSRF token for `binding`.
pub fn csrf_ok(state: &AppState, binding: &str, token: Option<&str>) -> bool {
    !binding.is_empty() && token.is_some_and(|t| csrf::verify(&state.csrf_key, binding, t))
}

pub fn csrf_token(state: &AppState, binding: &str) -> String {
    csrf::token(&state.csrf_key, binding)
}

/// The pairs of a form body; `None` unless the body is `application/x-www-form-urlencoded`
/// and UTF-8 throughout (see `routes::form`).
pub fn form_pairs(req: &HttpRequest, body: &[u8]) -> Option<Vec<(String, String)>> {
    if !super::form::is_form(req) {
        return None;
    }
    super::form::pairs(body)
}

/// The single value of `name` in `pairs`.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The page for a database that cannot be reached (503); the cause goes to the log.
pub fn unavailable(state: &AppState, error: crate::store::StoreError) -> HttpResponse {
    tracing::warn!(error = %error, "page unavailable: database");
    error_page(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        "The service is temporarily unavailable. Try again shortly.",
    )
}

/// A POSTed form from a signed-in browser with its CSRF token checked first: the session and
/// the form's fields, or the error page to answer with (nothing has been done yet).
pub async fn signed_in_form(
    state: &AppState,
    req: &HttpRequest,
    body: Result<actix_web::web::Bytes, actix_web::Error>,
) -> Result<(session::Session, Vec<(String, String)>), HttpResponse> {
    let Some(form) = body.ok().and_then(|b| form_pairs(req, &b)) else {
        return Err(error_page(state, StatusCode::BAD_REQUEST, "The form could not be read."));
    };
    let session = match current_session(state, req).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return Err(error_page(
                state,
                StatusCode::BAD_REQUEST,
                "Your session has ended. Sign in and try again.",
            ));
        }
        Err(e) => return Err(unavailable(state, e)),
    };
    if !csrf_ok(state, &session.id, field(&form, "csrf_token")) {
        return Err(error_page(
            state,
            StatusCode::BAD_REQUEST,
            "The form has expired. Reload the page and try again.",
        ));
    }
    Ok((session, form))
}
