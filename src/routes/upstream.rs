//! Signing in through an upstream identity provider (docs/REFERENCE.md §3.14):
//! `POST /login/upstream/{id}` starts it, `GET /login/upstream/{id}/callback` ends it;
//! `POST /account/identities/link` and `POST /account/identities/unlink` manage the signed-in
//! user's links.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::actor;
use super::login::{ask_for_code, record_refusal, safe_return, start_session};
use super::pages::{
    self, PageError, PageResult, csrf_ok, current_session, field, pre_session_binding,
};
use crate::oauth::audit::{Event, EventType};
use crate::oauth::session::Level;
use crate::oauth::upstream::{self, Flow, Linking, Resolved, UpstreamError};
use crate::startup::AppState;
use crate::store;

const EXPIRED: &str = "This sign-in has expired or was started in another browser. Start again from the sign-in page.";
const NOT_VERIFIED: &str =
    "The identity provider's answer could not be verified. Start again from the sign-in page.";

fn flow_cookie(state: &AppState) -> &'static str {
    if state.issuer.is_https() { "__Host-castellan_upstream" } else { "castellan_upstream" }
}

/// `POST /login/upstream/{id}` (the login page's button: `csrf_token`, `return_to`): off to
/// the provider. A form with the login page's CSRF token, so another site cannot start a
/// sign-in (and replace this browser's session) behind the user's back.
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let form = pages::read_form(&req, body)?;
        let return_to = safe_return(field(&form, "return_to"))?;
        let (binding, _) = pre_session_binding(&state, &req);
        if !csrf_ok(&state, &binding, field(&form, "csrf_token")) {
            return Err(PageError::bad_request(pages::EXPIRED_FORM));
        }
        begin(&state, &req, &id, return_to, None).await
    }
    .await;
    pages::answer(&state, outcome)
}

/// `POST /account/identities/link` (`provider`): the signed-in user links an identity. Like
/// adding a passkey, it needs a recent sign-in: it adds a way into the account.
pub async fn link(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, form) = pages::signed_in_form(&state, &req, body).await?;
        if !super::passkeys::fresh(&session) {
            return Err(PageError::Shown(
                StatusCode::FORBIDDEN,
                "Linking needs a recent sign-in. Sign in again, then link it.",
            ));
        }
        let provider = field(&form, "provider").unwrap_or_default().to_owned();
        begin(&state, &req, &provider, "/account".to_owned(), Some(session.user.id)).await
    }
    .await;
    pages::answer(&state, outcome)
}

/// The flow sealed in a cookie bound to this browser, and the browser sent to the provider.
async fn begin(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    return_to: String,
    link_user: Option<String>,
) -> PageResult {
    let provider = match upstream::valid_id(id) {
        true => store::upstream::find(&state.db, id).await?,
        false => None,
    };
    let Some(provider) = provider else {
        return Err(PageError::Shown(StatusCode::NOT_FOUND, "There is no such identity provider."));
    };
    let (binding, new_binding) = pre_session_binding(state, req);
    let redirect_uri = upstream::redirect_uri(&state.issuer, id);
    let (url, flow) = state
        .upstream
        .start(&provider, &redirect_uri, return_to, link_user)
        .await
        .map_err(|e| refused(id, e))?;
    // Too long for a cookie: a `return_to` no application needs.
    let sealed = flow.seal(state.keys.master(), &binding).ok_or(PageError::bad_request(
        "The sign-in link is too long. Go back to the application and start again.",
    ))?;
    let mut response = pages::see_other(&url);
    let mut cookie = pages::cookie(state, flow_cookie(state), sealed);
    cookie.set_max_age(actix_web::cookie::time::Duration::seconds(upstream::FLOW_SECS));
    let _ = response.add_cookie(&cookie);
    if let Some(binding) = new_binding {
        let _ = response.add_cookie(&binding);
    }
    Ok(response)
}

/// A provider failure as the browser sees it; the cause goes to the log only.
fn refused(provider: &str, error: UpstreamError) -> PageError {
    match error {
        UpstreamError::Unreachable(cause) => {
            tracing::warn!(provider, error = %cause, "upstream provider unreachable");
            PageError::Shown(
                StatusCode::BAD_GATEWAY,
                "The identity provider cannot be reached right now. Try again shortly, or sign in another way.",
            )
        }
        UpstreamError::Refused(why) => {
            tracing::info!(provider, why, "upstream answer refused");
            PageError::Shown(StatusCode::BAD_REQUEST, NOT_VERIFIED)
        }
        UpstreamError::Store(e) => PageError::Store(e),
    }
}

/// `GET /login/upstream/{id}/callback`: the provider's answer. The flow cookie goes either
/// way: a flow is answered once.
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let outcome = finish(&state, &req, &id).await;
    let mut response = pages::answer(&state, outcome);
    let mut spent = pages::cookie(&state, flow_cookie(&state), String::new());
    spent.make_removal();
    let _ = response.add_cookie(&spent);
    response
}

async fn finish(state: &AppState, req: &HttpRequest, id: &str) -> PageResult {
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(req.query_string().as_bytes()).into_owned().collect();
    let (binding, _) = pre_session_binding(state, req);
    let now = Utc::now().timestamp();
    let flow = req
        .cookie(flow_cookie(state))
        .and_then(|c| Flow::open(state.keys.master(), &binding, c.value(), now))
        .filter(|f| f.provider == id)
        .ok_or(PageError::bad_request(EXPIRED))?;
    // Checked when the flow began; checked again where it is used, as every sign-in does.
    let return_to = safe_return(Some(&flow.return_to))?;
    let failed = |why: &'static str| {
        Event::new(EventType::SignIn, actor::anonymous(state, req), format!("upstream:{id}"))
            .with("provider", id.to_owned())
            .with("reason", why)
    };
    // RFC 6749 §10.12: the answer must carry this browser's own state, or it is forged.
    if field(&query, "state") != Some(flow.state.as_str()) {
        record_refusal(state, failed("state")).await?;
        return Err(PageError::bad_request(NOT_VERIFIED));
    }
    if field(&query, "error").is_some() {
        return Err(PageError::Shown(
            StatusCode::FORBIDDEN,
            "The identity provider did not sign you in: it was cancelled or refused.",
        ));
    }
    let code = field(&query, "code").ok_or(PageError::bad_request(NOT_VERIFIED))?;
    let Some(provider) = store::upstream::find(&state.db, id).await? else {
        return Err(PageError::Shown(StatusCode::NOT_FOUND, "There is no such identity provider."));
    };
    let redirect_uri = upstream::redirect_uri(&state.issuer, id);
    let asserted = match state
        .upstream
        .finish(state.keys.master(), &provider, &redirect_uri, &flow, code, field(&query, "iss"))
        .await
    {
        Ok(asserted) => asserted,
        Err(UpstreamError::Refused(why)) => {
            record_refusal(state, failed(why)).await?;
            return Err(refused(id, UpstreamError::Refused(why)));
        }
        Err(other) => return Err(refused(id, other)),
    };
    // Linking: only into the account still signed in here, the one that asked.
    if let Some(link_user) = flow.link_user.as_deref() {
        let session = current_session(state, req).await?;
        if session.as_ref().is_none_or(|s| s.user.id != link_user) {
            return Err(PageError::bad_request(EXPIRED));
        }
    }
    let acting = match flow.link_user.as_deref() {
        Some(user) => actor::user(user, state, req),
        None => actor::anonymous(state, req),
    };
    let resolved =
        upstream::resolve(&state.db, &provider, &asserted, flow.link_user.as_deref(), acting)
            .await?;
    let user = match resolved {
        Resolved::User(user, _) if flow.link_user.is_some() => {
            tracing::info!(user = %user.id, provider = id, "identity linked");
            return Ok(pages::see_other(&format!("{}/account", pages::base(state))));
        }
        Resolved::User(user, linking) => {
            if linking == Linking::Created {
                tracing::info!(user = %user.id, provider = id, "user created by an upstream sign-in");
            }
            user
        }
        Resolved::Disabled => {
            record_refusal(state, failed("disabled")).await?;
            return Err(PageError::Shown(StatusCode::FORBIDDEN, "This account is disabled."));
        }
        // One answer for both: whoever controls the provider's claims learns nothing of which
        // emails or usernames have accounts here.
        Resolved::NotLinked | Resolved::Taken => {
            return Err(PageError::Shown(
                StatusCode::FORBIDDEN,
                "No account here is linked to this identity. If you have one, sign in with your username and password, then link it from your account page.",
            ));
        }
        Resolved::LinkedElsewhere => {
            return Err(PageError::Shown(
                StatusCode::CONFLICT,
                "This identity is linked to another account.",
            ));
        }
    };
    // A user who set up an authenticator app is asked for its code after a provider too,
    // unless the provider is trusted to have asked for a second factor and did.
    if asserted.amr.level() < Level::MultiFactor
        && store::totp::find(&state.db, &user.id).await?.is_some()
    {
        return ask_for_code(state, req, &user.id, return_to, asserted.amr, false);
    }
    let mut event = Event::new(
        EventType::SignIn,
        actor::user(&user.id, state, req),
        format!("user:{}", user.id),
    )
    .with("provider", id.to_owned());
    if !asserted.upstream_amr.is_empty() {
        event = event.with("upstream_amr", asserted.upstream_amr.join(" "));
    }
    start_session(state, req, &user, asserted.amr, &return_to, event, now).await
}

/// `POST /account/identities/unlink` (`issuer`, `subject`): the signed-in user removes a
/// link, unless it is their only way in.
pub async fn unlink(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, form) = pages::signed_in_form(&state, &req, body).await?;
        let issuer = field(&form, "issuer").unwrap_or_default();
        let subject = field(&form, "subject").unwrap_or_default();
        let acting = actor::user(&session.user.id, &state, &req);
        match upstream::unlink(&state.db, &session.user, issuer, subject, acting).await? {
            None => Err(PageError::Shown(StatusCode::NOT_FOUND, "No such linked identity.")),
            Some(false) => Ok(super::account::account_page(
                &state,
                &session,
                Some("This identity is how you sign in: it stays linked until the account has a password."),
                StatusCode::CONFLICT,
            )
            .await?),
            Some(true) => Ok(pages::see_other(&format!("{}/account", pages::base(&state)))),
        }
    }
    .await;
    pages::answer(&state, outcome)
}
