//! The device authorization grant's two endpoints (RFC 8628): `POST /device_authorization`,
//! where a device asks, and `/device`, where its user types the code, sees what the device
//! asks for and approves or denies it.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use aws_lc_rs::digest::{SHA256, digest};
use chrono::Utc;

use super::authorize::{Asking, consent_page_for};
use super::client_auth;
use super::pages::{self, DevicePage, PageError, PageResult, csrf_token, current_session, field};
use crate::error::OAuthError;
use crate::oauth::audit::{self, Event, EventType};
use crate::oauth::grant::authorization_code::SignedIn;
use crate::oauth::grant::device_code::{self, Starting};
use crate::oauth::scope::Scopes;
use crate::oauth::session::Session;
use crate::oauth::{assurance, consent, session};
use crate::startup::AppState;
use crate::store;

/// `POST /device_authorization` (RFC 8628 §3.1): the client authenticates as at `/token`
/// (a public client with `none`) and gets a device code and a user code.
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (form, client) = client_auth::authenticated_form(&state, &req, body).await?;
    let ctx = Starting {
        db: &state.db,
        issuer: &state.issuer,
        lifetime: state.settings.device_code_lifetime,
        interval: state.settings.device_poll_interval,
    };
    let started = device_code::start(&ctx, &client, form.get("scope")?).await?;
    tracing::info!(client_id = %client.client_id, "device authorization started");
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(started))
}

/// What every code-entry answer says about a code that cannot be used, whether it never
/// existed, expired or was already decided: the same, so that it tells a guesser nothing.
const UNUSABLE: &str = "That code is not valid. Check the code on your device and try again.";

/// `GET /device[?user_code=…]`: the code-entry form, filled in from
/// `verification_uri_complete`; signing in first if needed.
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = entry_page(&state, &req).await;
    pages::answer(&state, outcome)
}

async fn entry_page(state: &AppState, req: &HttpRequest) -> PageResult {
    let query = super::form::pairs(req.query_string().as_bytes()).unwrap_or_default();
    let typed = field(&query, "user_code").unwrap_or_default();
    // Only a well-formed code comes back into the page or the login's return address.
    let user_code = device_code::canonical_user_code(typed)
        .map(|c| device_code::display_user_code(&c))
        .unwrap_or_default();
    let Some(session) = current_session(state, req).await? else {
        let mut return_to = "/device".to_owned();
        if !user_code.is_empty() {
            return_to.push_str("?user_code=");
            return_to.push_str(&user_code);
        }
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &return_to)
            .finish();
        return Ok(pages::see_other(&format!("{}/login?{query}", pages::base(state))));
    };
    Ok(entry(state, &session, user_code, None, StatusCode::OK))
}

fn entry(
    state: &AppState,
    session: &Session,
    user_code: String,
    error: Option<&'static str>,
    status: StatusCode,
) -> HttpResponse {
    pages::render(
        state,
        status,
        &DevicePage {
            base: pages::base(state),
            csrf_token: csrf_token(state, &session.id),
            username: session.user.username.clone(),
            user_code,
            error,
            notice: None,
        },
    )
}

/// The entry form again, saying the code cannot be used (400).
fn unusable(state: &AppState, session: &Session, shown: String) -> HttpResponse {
    entry(state, session, shown, Some(UNUSABLE), StatusCode::BAD_REQUEST)
}

fn notice(state: &AppState, session: &Session, message: &'static str) -> HttpResponse {
    pages::render(
        state,
        StatusCode::OK,
        &DevicePage {
            base: pages::base(state),
            csrf_token: String::new(),
            username: session.user.username.clone(),
            user_code: String::new(),
            error: None,
            notice: Some(message),
        },
    )
}

/// `POST /device`: a typed code is looked up (counted against the limits first) and the
/// request it stands for shown for consent; a decision on a code looked up by this session
/// is recorded once.
pub async fn submit(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = decide(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn decide(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    // Session and CSRF first: a forged form looks nothing up and records nothing.
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    let typed = field(&form, "user_code").unwrap_or_default();
    let shown: String = typed.chars().filter(|c| !c.is_control()).take(32).collect();
    let canonical = device_code::canonical_user_code(typed);
    let Some(decision) = field(&form, "decision") else {
        return look_up(state, req, &session, canonical, shown).await;
    };
    // A decision names a code this session looked up: the consent page's `lookup` field
    // proves it, so deciding is no way around the lookup's limits.
    let Some(canonical) = canonical
        .filter(|c| pages::csrf_ok(state, &lookup_binding(&session, c), field(&form, "lookup")))
    else {
        return Err(PageError::bad_request(pages::EXPIRED_FORM));
    };
    let hash = device_code::user_code_hash(&canonical);
    let now = Utc::now();
    let Some(pending) = store::device_authorizations::find_pending(&state.db, &hash, now).await?
    else {
        return Ok(unusable(state, &session, shown));
    };
    let user = session.user.id.as_str();
    let actor = super::actor::user(user, state, req);
    let event = Event::new(EventType::DeviceDenied, actor, format!("client:{}", pending.client_id));
    let recorded = match decision {
        "allow" => {
            let Some(client) = state.registry.find(&state.db, &pending.client_id).await? else {
                return Ok(unusable(state, &session, shown));
            };
            let needed = assurance::required(
                &session.user,
                &client.metadata,
                None,
                state.settings.admin_mfa,
            );
            if session.amr.level() < needed {
                let code = device_code::display_user_code(&canonical);
                let return_to = format!("/device?user_code={code}");
                return super::login::step_up(state, req, &session, needed, return_to).await;
            }
            let asked = asked_scope(&pending.scope, &session)?;
            // The grant gains the scopes, as at /consent: the user sees it at /account.
            let session_hash = session.id_hash();
            let sid = session::sid(&state.csrf_key, &session_hash);
            let signed_in = SignedIn { session_hash: &session_hash, sid: &sid };
            let approval = Some((&asked, session.auth_time, session.amr, signed_in));
            consent::decide_device(&state.db, &hash, &client.client_id, user, approval, event)
                .await?
        }
        "deny" => {
            consent::decide_device(&state.db, &hash, &pending.client_id, user, None, event).await?
        }
        _ => return Err(PageError::bad_request("Choose Allow or Deny.")),
    };
    if !recorded {
        return Ok(unusable(state, &session, shown));
    }
    tracing::info!(user = %session.user.id, client_id = %pending.client_id, decision, "device authorization decided");
    Ok(notice(
        state,
        &session,
        if decision == "allow" {
            "Done: your device is connected. You can close this page and return to it."
        } else {
            "Denied: the device gets no access. You can close this page."
        },
    ))
}

/// Looks a typed code up, counted first (per session and per address, RFC 8628 §5.1), and
/// shows the consent page for the request it stands for.
async fn look_up(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    canonical: Option<String>,
    shown: String,
) -> PageResult {
    let address = super::address::source(req, &state.settings.trusted_proxies);
    if let Err(refused) =
        state.throttle.user_code(&state.db, &session_key(session), address).await?
    {
        tracing::info!(user = %session.user.id, "device code lookup refused: too many attempts");
        // Recorded on the counter's connection, never the code typed.
        let actor = super::actor::user(&session.user.id, state, req);
        let event =
            Event::new(EventType::DeviceLookupLocked, actor, format!("user:{}", session.user.id))
                .failed()
                .with("retry_after", refused.retry_after.as_secs());
        audit::record(&state.db, &event).await?;
        event.log();
        let mut response = entry(
            state,
            session,
            shown,
            Some("Too many codes tried. Wait a while, then try again."),
            StatusCode::TOO_MANY_REQUESTS,
        );
        response.headers_mut().insert(header::RETRY_AFTER, refused.retry_after.as_secs().into());
        return Ok(response);
    }
    let now = Utc::now();
    let pending = match &canonical {
        Some(c) => {
            store::device_authorizations::find_pending(
                &state.db,
                &device_code::user_code_hash(c),
                now,
            )
            .await?
        }
        None => None,
    };
    let (Some(canonical), Some(pending)) = (canonical, pending) else {
        return Ok(unusable(state, session, shown));
    };
    let Some(client) = state.registry.find(&state.db, &pending.client_id).await? else {
        return Ok(unusable(state, session, shown));
    };
    let scope = asked_scope(&pending.scope, session)?;
    let display = device_code::display_user_code(&canonical);
    let asking = Asking {
        client: &client,
        scope: &scope,
        action: "/device",
        hidden: vec![
            ("user_code", display.clone()),
            ("lookup", csrf_token(state, &lookup_binding(session, &canonical))),
        ],
        redirect_uri: None,
        user_code: Some(display),
    };
    consent_page_for(state, session, asking).await
}

/// What the device asked for as this user may be granted it: `admin` only for an
/// administrator (as at `/consent`).
fn asked_scope(stored: &str, session: &Session) -> Result<Scopes, PageError> {
    let scope = Scopes::parse(stored)
        .map_err(|_| store::StoreError::corrupt("a device authorization's scope"))?;
    Ok(crate::oauth::gate::as_held_by(scope, &session.user))
}

/// What the consent page's `lookup` token binds: this session and this code.
fn lookup_binding(session: &Session, canonical: &str) -> String {
    format!("{}\nuser_code\n{canonical}", session.id)
}

/// The session's key in the attempt counters: a hash, never the session id (the cookie).
fn session_key(session: &Session) -> String {
    let hash = digest(&SHA256, format!("session\n{}", session.id).as_bytes());
    hash.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}
