//! `GET`/`POST /login`: the login page and form (docs/REFERENCE.md §3.4).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;

use super::actor::anonymous;
use sea_orm::TransactionTrait;

use super::pages::{
    self, LoginPage, PageError, PageResult, StepUpPage, TotpLoginPage, csrf_ok, csrf_token, field,
    pre_session_binding,
};
use crate::oauth::assurance::Methods;
use crate::oauth::audit::{self, Event, EventType};
use crate::oauth::session::Level;
use crate::oauth::{device, session, totp};
use crate::startup::AppState;
use crate::store;

/// Where a login may send the browser next: back into an authorization request, to the
/// device page, or the account page. Anything else (another site, a protocol-relative URL) is ignored; a value
/// with control characters (header splitting) is refused outright.
pub(super) fn safe_return(value: Option<&str>) -> Result<String, PageError> {
    match value {
        Some(v) if v.chars().any(char::is_control) => {
            Err(PageError::bad_request("The sign-in link is malformed."))
        }
        Some(v)
            if v.starts_with("/authorize?")
                || v == "/account"
                || v == "/device"
                || v.starts_with("/device?") =>
        {
            Ok(v.to_owned())
        }
        _ => Ok("/account".to_owned()),
    }
}

pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let return_to = match safe_return(field(&query, "return_to")) {
        Ok(return_to) => return_to,
        Err(refused) => return pages::answer(&state, Err(refused)),
    };
    let upstreams = match state.upstream.buttons(&state.db).await {
        Ok(buttons) => buttons,
        Err(e) => return pages::answer(&state, Err(e.into())),
    };
    let (binding, new_cookie) = pre_session_binding(&state, &req);
    let page = LoginPage {
        base: pages::base(&state),
        csrf_token: csrf_token(&state, &binding),
        return_to,
        username: field(&query, "login_hint").unwrap_or_default().chars().take(64).collect(),
        error: None,
        passkeys: super::passkeys::available(&state),
        passkey_asked: field(&query, "step_up") == Some("passkey"),
        upstreams,
    };
    let mut response = pages::render(&state, StatusCode::OK, &page);
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    response
}

pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = sign_in(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn sign_in(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let form = pages::read_form(req, body)?;
    // Refused before anything is counted or written.
    let return_to = safe_return(field(&form, "return_to"))?;
    let (binding, _) = pre_session_binding(state, req);
    // Checked before anything else: a forged login creates nothing.
    // (Without the pre-session cookie the binding is new, so no token matches it.)
    if !csrf_ok(state, &binding, field(&form, "csrf_token")) {
        return Err(PageError::bad_request(
            "The form has expired. Go back, reload the page and try again.",
        ));
    }
    let username = field(&form, "username").unwrap_or_default();
    let password = SecretString::from(field(&form, "password").unwrap_or_default().to_owned());
    let retry = |error, status: StatusCode| {
        let page = LoginPage {
            base: pages::base(state),
            csrf_token: csrf_token(state, &binding),
            return_to: return_to.clone(),
            username: username.chars().take(64).collect(),
            error: Some(error),
            passkeys: super::passkeys::available(state),
            passkey_asked: false,
            upstreams: state.upstream.last_buttons(),
        };
        pages::render(state, status, &page)
    };
    // Counted before the password is checked, so concurrency cannot beat the limit; the same
    // for unknown and known usernames (docs/REFERENCE.md §9.6).
    let address = super::address::source(req, &state.settings.trusted_proxies);
    let now = chrono::Utc::now().timestamp();
    let device = req
        .cookie(pages::device_cookie_name(state))
        .and_then(|c| device::recognise(&state.device_key, c.value(), username, now));
    let attempt =
        match state.throttle.attempt(&state.db, username, device.as_deref(), address).await? {
            Ok(attempt) => attempt,
            Err(refused) => {
                tracing::info!("login refused: too many failed attempts");
                // This path only: a read of whom it was for, then the event.
                let user = store::users::find_by_username(&state.db, username).await?;
                let locked =
                    Event::new(EventType::SignInLocked, anonymous(state, req), subject(&user))
                        .with("retry_after", refused.retry_after.as_secs());
                record_refusal(state, locked).await?;
                let mut response = retry(
                    "Too many failed sign-ins. Wait a while, then try again.",
                    StatusCode::TOO_MANY_REQUESTS,
                );
                response.headers_mut().insert(
                    actix_web::http::header::RETRY_AFTER,
                    refused.retry_after.as_secs().into(),
                );
                return Ok(response);
            }
        };
    let found = store::users::find_for_login(&state.db, username).await?;
    // Unknown users are checked against a dummy hash: same answer, about the same time.
    let hash = found.as_ref().map(|(u, _)| u.password_hash.clone());
    let verified = state.passwords.verify(password, hash).await;
    let (user, second_factor) = match found {
        Some((user, totp)) if verified && !user.disabled => (user, totp),
        found => {
            let user = found.map(|(user, _)| user);
            tracing::info!("login refused");
            state.throttle.failed(&state.db, attempt).await?;
            record_refusal(
                state,
                Event::new(EventType::SignIn, anonymous(state, req), subject(&user)),
            )
            .await?;
            return Ok(retry("Wrong username or password.", StatusCode::UNAUTHORIZED));
        }
    };
    // A second factor to come: no session yet, only a sealed pending sign-in on the next form.
    if second_factor {
        state.throttle.first_factor_passed(&state.db, attempt).await?;
        return ask_for_code(state, req, &user.id, return_to, session::Amr::Password, false);
    }
    state.throttle.succeeded(&state.db, attempt).await?;
    let event = Event::new(
        EventType::SignIn,
        super::actor::user(&user.id, state, req),
        format!("user:{}", user.id),
    );
    start_session(state, req, &user, session::Amr::Password, &return_to, event, now).await
}

/// Ends this browser's old session and starts a new one (a new id at every login: no
/// fixation), then sends the browser on to `return_to` as a known device of the account.
pub(super) async fn start_session(
    state: &AppState,
    req: &HttpRequest,
    user: &store::users::UserRecord,
    amr: session::Amr,
    return_to: &str,
    event: Event,
    now: i64,
) -> PageResult {
    if let Some(old) = req.cookie(pages::session_cookie_name(state)) {
        let _ = session::end(&state.db, old.value(), None).await;
    }
    let event = event.with("amr", amr.as_stored());
    let lifetime = state.settings.session_lifetime;
    let origin = super::actor::origin(state, req);
    let id = session::start(&state.db, &user.id, amr, lifetime, origin, &event).await?;
    tracing::info!(user = %user.id, amr = %amr.as_stored(), "logged in");
    let mut response = pages::see_other(&format!("{}{return_to}", pages::base(state)));
    let _ = response.add_cookie(&pages::cookie(state, pages::session_cookie_name(state), id));
    // This browser is now a known device of this account (for 90 days).
    if let Ok(known) = device::issue(&state.device_key, &user.username, now) {
        let mut cookie = pages::cookie(state, pages::device_cookie_name(state), known);
        cookie.set_max_age(actix_web::cookie::time::Duration::seconds(device::LIFETIME_SECS));
        let _ = response.add_cookie(&cookie);
    }
    Ok(response)
}

/// The page asking for the authenticator app's code (or a recovery code).
fn code_page(
    state: &AppState,
    binding: &str,
    pending: String,
    error: Option<&'static str>,
    status: StatusCode,
    step_up: bool,
) -> HttpResponse {
    let page = TotpLoginPage {
        base: pages::base(state),
        csrf_token: csrf_token(state, binding),
        pending,
        error,
        step_up,
    };
    pages::render(state, status, &page)
}

/// A signed-in browser whose sign-in is weaker than `needed` (`oauth::assurance`) is asked
/// for more before `return_to` goes on, never let through: the authenticator app's code when
/// that reaches `needed` (then a new session, as at any sign-in), else a page saying which
/// method to set up at /account. The caller answers `prompt=none` itself.
pub(crate) async fn step_up(
    state: &AppState,
    req: &HttpRequest,
    session: &session::Session,
    needed: Level,
    return_to: String,
) -> PageResult {
    let user_id = &session.user.id;
    let totp = store::totp::find(&state.db, user_id).await?.is_some();
    let passkeys = store::passkeys::list_for_user(&state.db, user_id).await?;
    let methods = Methods::new(totp, passkeys.iter().map(|p| p.backup_eligible));
    tracing::info!(user = %user_id, needed = needed.acr(), "a stronger sign-in is needed");
    if !methods.otp_reaches(needed) {
        if methods.passkey_reaches(needed) && super::passkeys::available(state) {
            // The login page, saying a passkey is what is asked; its sign-in replaces this
            // session, and the request goes on.
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("return_to", &return_to)
                .append_pair("step_up", "passkey")
                .finish();
            return Ok(pages::see_other(&format!("{}/login?{query}", pages::base(state))));
        }
        let needed = match needed {
            Level::Password | Level::MultiFactor => {
                "a second factor (an authenticator app) or a passkey"
            }
            Level::PhishingResistant => "a passkey",
            Level::PhishingResistantHardware => {
                "a passkey kept on one device, such as a security key"
            }
        };
        let page = StepUpPage { base: pages::base(state), needed };
        return Ok(pages::render(state, StatusCode::FORBIDDEN, &page));
    }
    ask_for_code(state, req, &session.user.id, return_to, session.amr, true)
}

/// The authenticator app's code page for `user_id`, whose first step (`first`: a password,
/// a sign-in through an upstream provider, or the session stepping up) is done: no session
/// yet, only a sealed pending sign-in on the form, bound to this browser.
pub(super) fn ask_for_code(
    state: &AppState,
    req: &HttpRequest,
    user_id: &str,
    return_to: String,
    first: session::Amr,
    step_up: bool,
) -> PageResult {
    let (binding, new_cookie) = pre_session_binding(state, req);
    let pending = totp::PendingLogin {
        user_id: user_id.to_owned(),
        return_to,
        expires_at: chrono::Utc::now().timestamp() + totp::PENDING_LOGIN_SECS,
        first: Some(first.as_stored()),
    };
    let sealed = totp::seal_login(state.keys.master(), &binding, &pending)
        .ok_or_else(|| store::StoreError::from(anyhow::anyhow!("cannot seal a pending sign-in")))?;
    let mut response = code_page(state, &binding, sealed, None, StatusCode::OK, step_up);
    if let Some(cookie) = new_cookie {
        let _ = response.add_cookie(&cookie);
    }
    Ok(response)
}

/// `POST /login/totp`: the second step of a sign-in whose password was right.
pub async fn submit_code(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = second_step(&state, &req, body).await;
    pages::answer(&state, outcome)
}

const SIGN_IN_AGAIN: &str = "This sign-in has expired. Go back and sign in again.";

async fn second_step(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let form = pages::read_form(req, body)?;
    let (binding, _) = pre_session_binding(state, req);
    if !csrf_ok(state, &binding, field(&form, "csrf_token")) {
        return Err(PageError::bad_request(pages::EXPIRED_FORM));
    }
    let now = chrono::Utc::now().timestamp();
    let sealed = field(&form, "pending").unwrap_or_default();
    // Sealed for this browser's binding, and live: else start again.
    let pending = totp::open_login(state.keys.master(), &binding, sealed, now)
        .ok_or(PageError::bad_request(SIGN_IN_AGAIN))?;
    let return_to = safe_return(Some(&pending.return_to))?;
    let user = match store::users::find(&state.db, &pending.user_id).await? {
        Some(user) if !user.disabled => user,
        _ => return Err(PageError::bad_request(SIGN_IN_AGAIN)),
    };
    let retry =
        |error, status| code_page(state, &binding, sealed.to_owned(), Some(error), status, false);
    // The same limits as the password's (docs/REFERENCE.md §9.6): counted before the code
    // is checked, against the same account and address.
    let address = super::address::source(req, &state.settings.trusted_proxies);
    let device = req
        .cookie(pages::device_cookie_name(state))
        .and_then(|c| device::recognise(&state.device_key, c.value(), &user.username, now));
    let attempt = match state
        .throttle
        .attempt(&state.db, &user.username, device.as_deref(), address)
        .await?
    {
        Ok(attempt) => attempt,
        Err(refused) => {
            tracing::info!("sign-in code refused: too many failed attempts");
            let locked = Event::new(
                EventType::SignInLocked,
                anonymous(state, req),
                format!("user:{}", user.id),
            )
            .with("factor", "otp")
            .with("retry_after", refused.retry_after.as_secs());
            record_refusal(state, locked).await?;
            let mut response = retry(
                "Too many failed sign-ins. Wait a while, then try again.",
                StatusCode::TOO_MANY_REQUESTS,
            );
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, refused.retry_after.as_secs().into());
            return Ok(response);
        }
    };
    let Some(enrolled) = store::totp::find(&state.db, &user.id).await? else {
        // Turned off meanwhile: the password alone is no longer what was asked.
        return Err(PageError::bad_request(SIGN_IN_AGAIN));
    };
    let presented = field(&form, "code").unwrap_or_default();
    let actor = super::actor::user(&user.id, state, req);
    let accepted = if totp::normalise_code(presented).is_some() {
        let secret = state
            .keys
            .master()
            .open(&totp::secret_context(&user.id), &enrolled.sealed_secret)
            .map_err(|e| store::StoreError::from(anyhow::Error::from(e)))?;
        match totp::matching_step(&secret, presented, totp::step_at(now)) {
            // Once per step: a code already accepted (or an older one) is refused.
            Some(step) => store::totp::accept_step(&state.db, &user.id, step).await?,
            None => false,
        }
        .then_some(false)
    } else if !presented.trim().is_empty() && presented.len() <= 64 {
        let hash = totp::recovery_hash(presented);
        // Used up and recorded together, in one transaction.
        let txn = state.db.begin().await.map_err(store::StoreError::from)?;
        let accepted = store::totp::use_recovery_code(&txn, &user.id, &hash).await?;
        if accepted {
            let left = store::totp::recovery_codes_left(&txn, &user.id).await?;
            let used = Event::new(
                EventType::MfaRecoveryCodeUsed,
                actor.clone(),
                format!("user:{}", user.id),
            )
            .with("left", left);
            audit::record(&txn, &used).await?;
            txn.commit().await.map_err(store::StoreError::from)?;
            used.log();
        } else {
            txn.rollback().await.map_err(store::StoreError::from)?;
        }
        accepted.then_some(true)
    } else {
        None
    };
    let Some(recovery) = accepted else {
        tracing::info!("sign-in code refused");
        state.throttle.failed(&state.db, attempt).await?;
        let refused =
            Event::new(EventType::SignIn, anonymous(state, req), format!("user:{}", user.id))
                .with("factor", "otp");
        record_refusal(state, refused).await?;
        return Ok(retry("Wrong code.", StatusCode::UNAUTHORIZED));
    };
    state.throttle.succeeded(&state.db, attempt).await?;
    let mut event = Event::new(EventType::SignIn, actor, format!("user:{}", user.id));
    if recovery {
        event = event.with("recovery_code", true);
    }
    // The first step's method, completed with the code.
    let amr = session::Amr::from_stored(pending.first.as_deref()).with_code();
    start_session(state, req, &user, amr, &return_to, event, now).await
}

/// A refused sign-in's subject: the user it was for, or `user:unknown`. Never the username
/// as typed (people type passwords there), never the password.
fn subject(user: &Option<store::users::UserRecord>) -> String {
    format!("user:{}", user.as_ref().map_or("unknown", |u| u.id.as_str()))
}

/// Records a refused sign-in as one more statement after its counter's: it changes nothing
/// else, so there is no transaction to share.
pub(super) async fn record_refusal(
    state: &AppState,
    event: Event,
) -> Result<(), store::StoreError> {
    let event = event.failed();
    audit::record(&state.db, &event).await?;
    event.log();
    Ok(())
}
