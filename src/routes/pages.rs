//! The HTML side: templates, security headers on every page, cookies, the session and the
//! CSRF binding of a browser.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::theme::Page;
use crate::oauth::authorize::{ErrorRedirect, Refusal, redirect_url};
use crate::oauth::{csrf, secret, session};
use crate::startup::AppState;
use crate::store::StoreError;

/// docs/REFERENCE.md §3: no framing, no referrer, only our own stylesheet, nothing else loads.
const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'";
/// A page that loads a script file of this server's own (`Page::SCRIPTED`: the login and
/// account pages' passkeys, which fetch their WebAuthn options from this origin; the console's
/// client page).
const SCRIPTED_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'";

#[derive(Serialize)]
pub struct LoginPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    pub return_to: String,
    pub username: String,
    pub error: Option<&'static str>,
    /// Whether to offer a passkey sign-in (the issuer's host is a domain name).
    pub passkeys: bool,
    /// A signed-in user is asked for a passkey (a step-up, `login::step_up`).
    pub passkey_asked: bool,
    /// "Sign in with …" buttons, one per upstream provider.
    pub upstreams: Vec<crate::oauth::upstream::Button>,
}

impl Page for LoginPage<'_> {
    const TEMPLATE: &'static str = "login.html";
    /// The passkey button's script.
    const SCRIPTED: bool = true;
}

/// The second step of a sign-in: the authenticator app's code (or a recovery code).
#[derive(Serialize)]
pub struct TotpLoginPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    /// The sealed pending sign-in (`oauth::totp::PendingLogin`).
    pub pending: String,
    pub error: Option<&'static str>,
    /// Asked of a user already signed in, because an application needs a second factor.
    pub step_up: bool,
}

impl Page for TotpLoginPage<'_> {
    const TEMPLATE: &'static str = "login_totp.html";
}

/// A signed-in user asked for a stronger sign-in than any method they have set up reaches.
#[derive(Serialize)]
pub struct StepUpPage<'a> {
    pub base: &'a str,
    /// What the application asks for, in words.
    pub needed: &'static str,
}

impl Page for StepUpPage<'_> {
    const TEMPLATE: &'static str = "step_up.html";
}

/// Setting up an authenticator app: the QR code, the key to type, the confirmation form.
#[derive(Serialize)]
pub struct TotpSetupPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    /// The sealed pending enrolment (the new secret, for this session).
    pub pending: String,
    /// The otpauth URI as an inline SVG QR code (our own markup: no style, no script).
    pub qr_svg: String,
    /// The secret in base32, in groups of four, for typing in.
    pub secret: String,
    pub error: Option<&'static str>,
}

impl Page for TotpSetupPage<'_> {
    const TEMPLATE: &'static str = "totp_setup.html";
}

/// The recovery codes, shown once when an authenticator app is confirmed.
#[derive(Serialize)]
pub struct RecoveryCodesPage<'a> {
    pub base: &'a str,
    pub codes: Vec<String>,
}

impl Page for RecoveryCodesPage<'_> {
    const TEMPLATE: &'static str = "totp_recovery.html";
}

#[derive(Serialize)]
pub struct ConsentPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    /// Where the decision is posted (`/consent`, `/device`), with what names the request.
    pub action: &'static str,
    pub hidden: Vec<(&'static str, String)>,
    /// For a device's request (RFC 8628 §5.4): its user code, to compare with the device's.
    pub user_code: Option<String>,
    pub client_name: String,
    pub username: String,
    /// (scope, description)
    pub scopes: Vec<(String, String)>,
    /// For a client that registered itself, what the user should see because no
    /// administrator vetted it (docs/REFERENCE.md §3.5).
    pub unvetted: Option<Unvetted>,
}

impl Page for ConsentPage<'_> {
    const TEMPLATE: &'static str = "consent.html";
}

/// What the consent page says about a client nobody vetted: where it claims to come from,
/// and where the answer will actually go.
#[derive(Serialize)]
pub struct Unvetted {
    /// For a client whose id is its metadata document's URL: that host, who vouches for it.
    pub document_host: Option<String>,
    /// `client_uri` and its host, if the client gave one.
    pub client_uri: Option<(String, String)>,
    /// The host (or private-use scheme) of the redirect URI the code will be sent to; none
    /// for a device, which polls for its answer.
    pub destination: Option<String>,
}

#[derive(Serialize)]
pub struct DevicePage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    pub username: String,
    /// What the code field holds (from `verification_uri_complete`, or as typed).
    pub user_code: String,
    pub error: Option<&'static str>,
    /// Set once the request is decided: what to tell the user instead of the form.
    pub notice: Option<&'static str>,
}

impl Page for DevicePage<'_> {
    const TEMPLATE: &'static str = "device.html";
}

#[derive(Serialize)]
pub struct ErrorPage<'a> {
    pub base: &'a str,
    pub message: &'a str,
}

impl Page for ErrorPage<'_> {
    const TEMPLATE: &'static str = "error.html";
}

#[derive(Serialize)]
pub struct LogoutPage<'a> {
    pub base: &'a str,
    /// Set while a session is open: the confirmation form's token.
    pub csrf_token: Option<String>,
    pub username: String,
}

impl Page for LogoutPage<'_> {
    const TEMPLATE: &'static str = "logout.html";
}

#[derive(Serialize)]
pub struct GrantRow {
    pub id: String,
    pub client_name: String,
    pub scope: String,
}

/// One of the user's live sessions on /account. `handle` names it in the form that ends it
/// (a MAC, never the cookie or the stored hash); the device is shown as text.
#[derive(Serialize)]
pub struct SessionRow {
    pub handle: String,
    pub signed_in: String,
    pub last_used: String,
    pub device: Option<String>,
    pub address: Option<String>,
    /// The browser looking at the page.
    pub current: bool,
}

#[derive(Serialize)]
pub struct AccountPage<'a> {
    pub base: &'a str,
    pub csrf_token: String,
    pub username: String,
    pub grants: Vec<GrantRow>,
    pub sessions: Vec<SessionRow>,
    /// Whether sign-in asks for an authenticator app's code.
    pub totp: bool,
    /// Unused recovery codes, when `totp`.
    pub recovery_codes_left: u64,
    pub passkeys: Vec<PasskeyRow>,
    /// Whether this session signed in recently enough to add a passkey.
    pub passkey_fresh: bool,
    /// Whether passkeys can be used here at all (the issuer's host is a domain name).
    pub passkeys_available: bool,
    /// Whether the account has a password (one made by an upstream provider has none).
    pub has_password: bool,
    /// Identities at upstream providers linked to the account.
    pub identities: Vec<IdentityRow>,
    /// Upstream providers the account has no link to yet.
    pub linkable: Vec<crate::oauth::upstream::Button>,
    /// Why turning the app off was refused, if it was.
    pub error: Option<&'static str>,
}

impl Page for AccountPage<'_> {
    const TEMPLATE: &'static str = "account.html";
    /// The passkey registration's script.
    const SCRIPTED: bool = true;
}

/// One of the user's linked upstream identities on /account.
#[derive(Serialize)]
pub struct IdentityRow {
    /// The provider's name, or its issuer if it is no longer configured.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    pub linked: String,
    pub last_used: String,
}

/// One of the user's passkeys on /account.
#[derive(Serialize)]
pub struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: Option<String>,
    /// Backup eligible: may be synced between the user's devices.
    pub synced: bool,
}

/// The path prefix of the issuer, so links work behind a path-prefixing proxy.
/// A moment as the pages show it: minutes, in UTC (templates given a timestamp use `|utc`).
pub fn when(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn base(state: &AppState) -> &str {
    let issuer = state.issuer.as_str();
    let after_scheme = issuer.find("://").map_or(0, |i| i + 3);
    issuer[after_scheme..].find('/').map_or("", |i| &issuer[after_scheme + i..])
}

/// Renders a page with the security headers of docs/REFERENCE.md §3.
pub fn render<P: Page>(state: &AppState, status: StatusCode, page: &P) -> HttpResponse {
    match state.theme.render(page) {
        Ok(body) => {
            let mut response = secured(HttpResponse::build(status));
            if P::SCRIPTED {
                response.insert_header((header::CONTENT_SECURITY_POLICY, SCRIPTED_CSP));
            }
            response.content_type("text/html; charset=utf-8").body(body)
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
    render(state, status, &ErrorPage { base: base(state), message })
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
) -> Result<Option<session::Session>, StoreError> {
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

/// Why a browser gets something other than the page it asked for: the one error type of the
/// HTML surface, turned into a response in one place (`answer`).
#[derive(Debug)]
pub enum PageError {
    /// Castellan's error page, with this status and message.
    Shown(StatusCode, &'static str),
    /// The database could not answer: a 503 page; the cause goes to the log.
    Store(StoreError),
    /// Back to the client's redirect URI with an error (RFC 6749 §4.1.2.1).
    Redirect(ErrorRedirect),
}

impl PageError {
    pub fn bad_request(message: &'static str) -> Self {
        Self::Shown(StatusCode::BAD_REQUEST, message)
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// A key ring failure behind a page: the cause goes to the log, the browser gets the 503 page
/// (a refused rotation is answered by the keys page itself, before this).
impl From<crate::oauth::keyring::KeyError> for PageError {
    fn from(error: crate::oauth::keyring::KeyError) -> Self {
        match error {
            crate::oauth::keyring::KeyError::Store(s) => Self::Store(s),
            other => Self::Store(anyhow::Error::from(other).into()),
        }
    }
}

impl From<Refusal> for PageError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Page(message) | Refusal::RequestObject(message) => Self::bad_request(message),
            Refusal::Store(error) => Self::Store(error),
            Refusal::Redirect(redirect) => Self::Redirect(redirect),
        }
    }
}

/// What a page handler ends with.
pub type PageResult = Result<HttpResponse, PageError>;

/// The response for a page handler's outcome.
pub fn answer(state: &AppState, outcome: PageResult) -> HttpResponse {
    match outcome {
        Ok(response) => response,
        Err(PageError::Shown(status, message)) => error_page(state, status, message),
        Err(PageError::Store(error)) => {
            tracing::warn!(error = %error, "page unavailable: database");
            error_page(
                state,
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable. Try again shortly.",
            )
        }
        Err(PageError::Redirect(e)) => {
            let mut params = vec![("error", e.error), ("error_description", e.description)];
            if let Some(s) = e.state.as_deref() {
                params.push(("state", s));
            }
            params.push(("iss", state.issuer.as_str()));
            see_other(&redirect_url(&e.redirect_uri, &params))
        }
    }
}

/// A form body's pairs, or the page saying it could not be read.
pub fn read_form(
    req: &HttpRequest,
    body: Result<actix_web::web::Bytes, actix_web::Error>,
) -> Result<Vec<(String, String)>, PageError> {
    body.ok()
        .and_then(|b| form_pairs(req, &b))
        .ok_or(PageError::bad_request("The form could not be read."))
}

/// The answer to a form whose CSRF token does not match.
pub const EXPIRED_FORM: &str = "The form has expired. Reload the page and try again.";

/// A POSTed form from a signed-in browser with its CSRF token checked first: the session and
/// the form's fields, or the error page to answer with (nothing has been done yet).
pub async fn signed_in_form(
    state: &AppState,
    req: &HttpRequest,
    body: Result<actix_web::web::Bytes, actix_web::Error>,
) -> Result<(session::Session, Vec<(String, String)>), PageError> {
    let form = read_form(req, body)?;
    let Some(session) = current_session(state, req).await? else {
        return Err(PageError::bad_request("Your session has ended. Sign in and try again."));
    };
    if !csrf_ok(state, &session.id, field(&form, "csrf_token")) {
        return Err(PageError::bad_request(EXPIRED_FORM));
    }
    Ok((session, form))
}
