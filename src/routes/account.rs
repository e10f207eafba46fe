//! `GET /account` (the signed-in user's grants, sessions and sign-in methods), `POST
//! /account/grants/{id}/revoke`, `POST /account/password` (change the password), `POST
//! /account/sessions/end` (end another session) and the authenticator app's set-up and
//! removal (docs/REFERENCE.md §3.6).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use sea_orm::TransactionTrait;
use secrecy::SecretString;

use super::pages::{
    self, AccountPage, GrantRow, IdentityRow, PageError, PageResult, PasskeyRow, RecoveryCodesPage,
    SessionRow, TotpSetupPage, csrf_token, current_session, field, when,
};
use crate::oauth::audit::{self, Event, EventType};
use crate::oauth::session::Session;
use crate::oauth::upstream::Button;
use crate::oauth::{device, methods, session, totp, users};
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
    Ok(account_page(state, &session, None, StatusCode::OK).await?)
}

pub(super) async fn account_page(
    state: &AppState,
    session: &Session,
    error: Option<&'static str>,
    status: StatusCode,
) -> Result<HttpResponse, store::StoreError> {
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
    let own = session.id_hash();
    let live = session::list_live(&state.db, &session.user.id, state.settings.session_idle_timeout)
        .await?;
    let sessions = live
        .into_iter()
        .map(|s| SessionRow {
            handle: session::handle(&state.csrf_key, &s.id_hash),
            signed_in: when(s.auth_time),
            last_used: when(s.last_seen_at),
            device: s.user_agent,
            address: s.address,
            current: s.id_hash == own,
        })
        .collect();
    let totp = store::totp::find(&state.db, &session.user.id).await?.is_some();
    let recovery_codes_left =
        if totp { store::totp::recovery_codes_left(&state.db, &session.user.id).await? } else { 0 };
    let passkeys = store::passkeys::list_for_user(&state.db, &session.user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: when(p.created_at),
            last_used: p.last_used_at.map(when),
            synced: p.backup_eligible,
        })
        .collect();
    let providers = store::upstream::list(&state.db).await?;
    let links = store::upstream::list_for_user(&state.db, &session.user.id).await?;
    let identities = links
        .iter()
        .map(|l| IdentityRow {
            provider: providers
                .iter()
                .find(|p| p.issuer == l.issuer)
                .map_or_else(|| l.issuer.clone(), |p| p.name.clone()),
            issuer: l.issuer.clone(),
            subject: l.subject.clone(),
            linked: when(l.created_at),
            last_used: when(l.last_used_at),
        })
        .collect();
    let linkable = providers
        .into_iter()
        .filter(|p| !links.iter().any(|l| l.issuer == p.issuer))
        .map(|p| Button { id: p.id, name: p.name })
        .collect();
    let page = AccountPage {
        base: pages::base(state),
        csrf_token: csrf_token(state, &session.id),
        username: session.user.username.clone(),
        grants: rows,
        sessions,
        totp,
        recovery_codes_left,
        passkeys,
        passkey_fresh: super::passkeys::fresh(session),
        passkeys_available: super::passkeys::available(state),
        has_password: session.user.has_password(),
        identities,
        linkable,
        error,
    };
    Ok(pages::render(state, status, &page))
}

/// `GET /account/totp`: a new secret, as a QR code and as text, to confirm with a code.
pub async fn totp_page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = totp_setup(&state, &req).await;
    pages::answer(&state, outcome)
}

async fn totp_setup(state: &AppState, req: &HttpRequest) -> PageResult {
    let Some(session) = current_session(state, req).await? else {
        return Ok(pages::see_other(&format!("{}/login?return_to=%2Faccount", pages::base(state))));
    };
    if store::totp::find(&state.db, &session.user.id).await?.is_some() {
        return Ok(pages::see_other(&format!("{}/account", pages::base(state))));
    }
    let secret = totp::new_secret().map_err(|_| unavailable("the random source failed"))?;
    let now = Utc::now().timestamp();
    let pending =
        totp::seal_enrolment(state.keys.master(), &session.id, &session.user.id, &secret, now)
            .ok_or_else(|| unavailable("cannot seal a pending enrolment"))?;
    Ok(setup_page(state, &session, &secret, pending, None, StatusCode::OK))
}

fn unavailable(what: &'static str) -> PageError {
    PageError::Store(anyhow::anyhow!(what).into())
}

fn setup_page(
    state: &AppState,
    session: &Session,
    secret: &[u8],
    pending: String,
    error: Option<&'static str>,
    status: StatusCode,
) -> HttpResponse {
    let issuer = url::Url::parse(state.issuer.as_str()).ok();
    let host = issuer.as_ref().and_then(|u| u.host_str()).unwrap_or("castellan");
    let uri = totp::otpauth_uri(host, &session.user.username, secret);
    let encoded = totp::base32(secret);
    let grouped = encoded.as_bytes().chunks(4).map(String::from_utf8_lossy).collect::<Vec<_>>();
    let page = TotpSetupPage {
        base: pages::base(state),
        csrf_token: csrf_token(state, &session.id),
        pending,
        qr_svg: totp::qr_svg(&uri).unwrap_or_default(),
        secret: grouped.join(" "),
        error,
    };
    pages::render(state, status, &page)
}

/// `POST /account/totp`: the first code from the app; right, TOTP is on and the recovery
/// codes are shown, once.
pub async fn totp_confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = confirm(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn confirm(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    let now = Utc::now().timestamp();
    let sealed = field(&form, "pending").unwrap_or_default();
    let secret =
        totp::open_enrolment(state.keys.master(), &session.id, &session.user.id, sealed, now)
            .ok_or(PageError::bad_request(
                "This setup has expired. Go back to your account and start again.",
            ))?;
    let presented = field(&form, "code").unwrap_or_default();
    let Some(step) = totp::matching_step(&secret, presented, totp::step_at(now)) else {
        let error = Some("That code is not right. Check the app's clock and try the next one.");
        let status = StatusCode::BAD_REQUEST;
        return Ok(setup_page(state, &session, &secret, sealed.to_owned(), error, status));
    };
    let codes = totp::new_recovery_codes().map_err(|_| unavailable("the random source failed"))?;
    let hashes = codes.iter().map(|c| totp::recovery_hash(c)).collect();
    let sealed_secret = state
        .keys
        .master()
        .seal(&totp::secret_context(&session.user.id), &secret)
        .map_err(|e| PageError::Store(e.into()))?;
    let actor = super::actor::user(&session.user.id, state, req);
    let event = Event::new(EventType::MfaTotpEnrolled, actor, format!("user:{}", session.user.id))
        .with("recovery_codes", codes.len());
    // On, with its recovery codes and its event, or nothing.
    let txn = state.db.begin().await.map_err(store::StoreError::from)?;
    let enabled =
        store::totp::enable(&txn, &session.user.id, sealed_secret, step, hashes, Utc::now())
            .await?;
    if !enabled {
        txn.rollback().await.map_err(store::StoreError::from)?;
        return Ok(pages::see_other(&format!("{}/account", pages::base(state))));
    }
    audit::record(&txn, &event).await?;
    txn.commit().await.map_err(store::StoreError::from)?;
    event.log();
    let page = RecoveryCodesPage { base: pages::base(state), codes };
    Ok(pages::render(state, StatusCode::OK, &page))
}

/// `POST /account/totp/remove`: TOTP off, given the current password or a current code.
pub async fn totp_remove(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = remove(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn remove(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    let user = &session.user;
    let Some(enrolled) = store::totp::find(&state.db, &user.id).await? else {
        return Ok(pages::see_other(&format!("{}/account", pages::base(state))));
    };
    // Guesses here count like sign-in guesses (docs/REFERENCE.md §9.6): a borrowed session
    // cannot try passwords or codes without limit.
    let address = super::address::source(req, &state.settings.trusted_proxies);
    let attempt = match state.throttle.attempt(&state.db, &user.username, None, address).await? {
        Ok(attempt) => attempt,
        Err(refused) => {
            let mut response = account_page(
                state,
                &session,
                Some("Too many failed attempts. Wait a while, then try again."),
                StatusCode::TOO_MANY_REQUESTS,
            )
            .await?;
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, refused.retry_after.as_secs().into());
            return Ok(response);
        }
    };
    let password = field(&form, "password").unwrap_or_default();
    let code = field(&form, "code").unwrap_or_default();
    let proved = if !code.trim().is_empty() {
        let secret = state
            .keys
            .master()
            .open(&totp::secret_context(&user.id), &enrolled.sealed_secret)
            .map_err(|e| PageError::Store(anyhow::Error::from(e).into()))?;
        let now = Utc::now().timestamp();
        match totp::matching_step(&secret, code, totp::step_at(now)) {
            Some(step) => store::totp::accept_step(&state.db, &user.id, step).await?,
            None => false,
        }
    } else if !password.is_empty() {
        let password = SecretString::from(password.to_owned());
        state.passwords.verify(password, Some(user.password_hash.clone())).await
    } else {
        false
    };
    if !proved {
        state.throttle.failed(&state.db, attempt).await?;
        return Ok(account_page(
            state,
            &session,
            Some("Give your current password or a current code from the app."),
            StatusCode::UNAUTHORIZED,
        )
        .await?);
    }
    state.throttle.succeeded(&state.db, attempt).await?;
    let actor = super::actor::user(&user.id, state, req);
    let event = Event::new(EventType::MfaTotpRemoved, actor, format!("user:{}", user.id))
        .with("by", if code.trim().is_empty() { "password" } else { "otp" });
    methods::turn_off_totp(&state.db, &user.id, &event).await?;
    Ok(pages::see_other(&format!("{}/account", pages::base(state))))
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

/// Changes the signed-in user's password (session + CSRF + the current password).
pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = change_own_password(&state, &req, body).await;
    pages::answer(&state, outcome)
}

/// The form is checked first (CSRF, the new password's rule, its confirmation), then the
/// current password, counted like a sign-in (docs/REFERENCE.md §9.6): a stolen session
/// cannot guess its way to the password, nor lock the account out of the sign-in page any
/// more than guessing there could.
async fn change_own_password(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    let new_password = field(&form, "new_password").unwrap_or_default();
    users::check_password(new_password).map_err(PageError::bad_request)?;
    if field(&form, "confirm_password") != Some(new_password) {
        return Err(PageError::bad_request("The new password and its confirmation differ."));
    }
    let user = &session.user;
    let address = super::address::source(req, &state.settings.trusted_proxies);
    let now = Utc::now().timestamp();
    let known = req
        .cookie(pages::device_cookie_name(state))
        .and_then(|c| device::recognise(&state.device_key, c.value(), &user.username, now));
    let actor = || super::actor::user(&user.id, state, req);
    let subject = format!("user:{}", user.id);
    let attempt = match state
        .throttle
        .attempt(&state.db, &user.username, known.as_deref(), address)
        .await?
    {
        Ok(attempt) => attempt,
        Err(refused) => {
            tracing::info!(user = %user.id, "password change refused: too many failed attempts");
            let locked = Event::new(EventType::SignInLocked, actor(), subject)
                .with("retry_after", refused.retry_after.as_secs())
                .with("at", "password_change");
            record_refusal(state, locked).await?;
            let mut response = pages::error_page(
                state,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many wrong passwords. Wait a while, then try again.",
            );
            response
                .headers_mut()
                .insert(actix_web::http::header::RETRY_AFTER, refused.retry_after.as_secs().into());
            return Ok(response);
        }
    };
    let current = SecretString::from(field(&form, "current_password").unwrap_or_default());
    if !state.passwords.verify(current, Some(user.password_hash.clone())).await {
        tracing::info!(user = %user.id, "password change refused: wrong current password");
        state.throttle.failed(&state.db, attempt).await?;
        record_refusal(state, Event::new(EventType::UserPasswordChanged, actor(), subject)).await?;
        return Err(PageError::Shown(
            StatusCode::UNAUTHORIZED,
            "The current password is wrong. Nothing was changed.",
        ));
    }
    state.throttle.succeeded(&state.db, attempt).await?;
    let changed = users::change_own_password(
        &state.db,
        &state.passwords,
        &state.revocations,
        &user.id,
        SecretString::from(new_password),
        &session.id_hash(),
        actor(),
    )
    .await;
    match changed {
        Ok(_) => Ok(pages::see_other(&format!("{}/account", pages::base(state)))),
        Err(users::UserError::Store(error)) => Err(PageError::Store(error)),
        Err(error) => Err(PageError::Store(anyhow::Error::from(error).into())),
    }
}

/// Records a refused change as one more statement after its counter's: nothing else
/// changed, so there is no transaction to share.
async fn record_refusal(state: &AppState, event: Event) -> Result<(), store::StoreError> {
    let event = event.failed();
    audit::record(&state.db, &event).await?;
    event.log();
    Ok(())
}

/// Ends one of the signed-in user's other sessions, named by its handle (session + CSRF).
pub async fn end_session(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = end_other_session(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn end_other_session(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    let handle = field(&form, "session").unwrap_or_default();
    let actor = super::actor::user(&session.user.id, state, req);
    let event = Event::new(EventType::Logout, actor, format!("user:{}", session.user.id))
        .with("by", "account");
    let timeout = state.settings.session_idle_timeout;
    if !session::end_other(&state.db, &state.csrf_key, &session, handle, timeout, &event).await? {
        return Err(PageError::Shown(StatusCode::NOT_FOUND, "No such session."));
    }
    tracing::info!(user = %session.user.id, "a session ended by its user from another");
    Ok(pages::see_other(&format!("{}/account", pages::base(state))))
}
