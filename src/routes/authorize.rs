//! `GET`/`POST /authorize` (RFC 6749 §4.1.1) and `GET`/`POST /consent`: validate the request,
//! send the browser to log in or consent as needed, then back to the client with a code.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::pages::{
    self, ConsentPage, PageError, PageResult, csrf_token, current_session, field, form_pairs,
};
use crate::oauth::audit::{Event, EventType};
use crate::oauth::authorize::{
    self, AuthorizationRequest, Authorizing, ErrorRedirect, Origin, Refusal, redirect_url,
};
use crate::oauth::client::{Client, Registration};
use crate::oauth::grant::authorization_code;
use crate::oauth::scope::Scopes;
use crate::oauth::session::{Level, Session};
use crate::oauth::{assurance, consent, console, session};
use crate::startup::AppState;
use crate::store::{self, grants::GrantRecord};

/// `GET /authorize?…`
pub async fn by_query(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = match super::form::pairs(req.query_string().as_bytes()) {
        Some(params) => authorize(&state, &req, params).await,
        None => Err(unreadable()),
    };
    pages::answer(&state, outcome)
}

fn unreadable() -> PageError {
    PageError::bad_request("The authorization request could not be read.")
}

/// `POST /authorize` with the same parameters as a form (OIDC Core §3.1.2.1).
pub async fn by_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = match body.ok().and_then(|b| form_pairs(&req, &b)) {
        Some(params) => authorize(&state, &req, params).await,
        None => Err(unreadable()),
    };
    pages::answer(&state, outcome)
}

async fn validate(
    state: &AppState,
    params: &[(String, String)],
) -> Result<AuthorizationRequest, Refusal> {
    authorize::validate(&authorizing(state), params, Origin::Browser).await
}

/// What validating authorization requests needs, for `/authorize`, `/consent` and `/par`.
pub(crate) fn authorizing(state: &AppState) -> Authorizing<'_> {
    Authorizing {
        db: &state.db,
        registry: &state.registry,
        keys: &state.keys,
        issuer: state.issuer.as_str(),
        require_pushed_requests: state.settings.require_pushed_authorization_requests,
        client_keys: &state.client_keys,
        client_documents: &state.client_documents,
        revocations: &state.revocations,
    }
}

async fn authorize(
    state: &AppState,
    req: &HttpRequest,
    params: Vec<(String, String)>,
) -> PageResult {
    if params.iter().any(|(k, v)| k == "request" && !v.is_empty()) {
        return push_request_object(state, &params).await;
    }
    let request = validate(state, &params).await?;
    let back = |error, description| {
        Err(PageError::Redirect(ErrorRedirect {
            redirect_uri: request.redirect_uri.clone(),
            error,
            description,
            state: request.state.clone(),
        }))
    };
    let session = current_session(state, req).await?;
    let now = Utc::now();
    let must_log_in = match &session {
        None => true,
        // OIDC Core §3.1.2.1: prompt=login, an authentication older than max_age, or a
        // session of someone other than the id_token_hint's subject means signing in again.
        // A pushed request cannot lose its prompt=login after the login it asked for: a login
        // since it was pushed answers it.
        Some(s) => {
            (request.prompt.login
                && request.pushed.as_ref().is_none_or(|(_, pushed_at)| s.auth_time < *pushed_at))
                || request.max_age.is_some_and(|max| (now - s.auth_time).num_seconds() > max)
                || request.hinted_subject.as_ref().is_some_and(|sub| *sub != s.user.id)
        }
    };
    if must_log_in {
        if request.prompt.none {
            return back("login_required", "the user must sign in");
        }
        // After this login the request goes on without asking for another one; a
        // re-authentication must reach what the session it replaces had reached (a request
        // that asked for more keeps its own `acr_values`).
        let mut resumed = after_login(&params);
        if let Some(before) = session
            .as_ref()
            .filter(|s| request.hinted_subject.as_ref().is_none_or(|sub| *sub == s.user.id))
            .map(|s| s.amr.level())
            .filter(|before| *before > request.acr.unwrap_or(Level::Password))
        {
            resumed.retain(|(k, _)| k != "acr_values");
            resumed.push(("acr_values".to_owned(), before.acr().to_owned()));
        }
        let return_to = format!("/authorize?{}", encode(&resumed));
        let mut login_params = vec![("return_to", return_to.as_str())];
        if let Some(hint) = request.login_hint.as_deref() {
            login_params.push(("login_hint", hint));
        }
        return Ok(pages::see_other(&redirect_url_relative(
            &format!("{}/login", pages::base(state)),
            &login_params,
        )));
    }
    let Some(session) = session else { return back("login_required", "the user must sign in") };
    let request = request.clone().for_user(&session.user);
    if let Some(needed) = stronger_needed(state, &request, &session) {
        if request.prompt.none {
            return back("login_required", "the user must sign in more strongly");
        }
        return step_up(state, req, &session, needed, &params).await;
    }
    match store::grants::find_for(&state.db, &session.user.id, &request.client.client_id).await? {
        Some(grant) if covers(&grant, &request.scope) && !request.prompt.consent => {
            approve(state, &request, &session, &grant.id).await
        }
        // The console is this server's own page, not a third party: nobody is asked whether
        // Castellan may show them Castellan. The grant is recorded all the same, as implied.
        _ if request.client.client_id == console::CLIENT_ID => {
            consent_and_approve(state, req, &request, &session, "console").await
        }
        _ if request.prompt.none => back("consent_required", "the user has not consented"),
        _ => Ok(pages::see_other(&format!("{}/consent?{}", pages::base(state), encode(&params)))),
    }
}

/// A request object by value (RFC 9101 §5.1) is verified once, here, and then goes on as a
/// pushed request would: by a one-time `request_uri`, so the login and consent pages carry
/// no object that could expire under them, and a `prompt=login` inside it is answered by the
/// login that follows.
async fn push_request_object(state: &AppState, params: &[(String, String)]) -> PageResult {
    let ctx = authorizing(state);
    let unpacked = authorize::unpack(&ctx, params).await?;
    // As a browser request: a client that must push cannot send its object this way.
    let request = authorize::validate(&ctx, &unpacked, Origin::Browser).await?;
    let client_id = request.client.client_id.clone();
    let request_uri = authorize::push(&state.db, &client_id, unpacked).await?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client_id)
        .append_pair("request_uri", &request_uri)
        .finish();
    Ok(pages::see_other(&format!("{}/authorize?{query}", pages::base(state))))
}

/// The request to resume after a login: without `prompt=login` or `id_token_hint`, which
/// that login has answered.
fn after_login(params: &[(String, String)]) -> Vec<(String, String)> {
    params
        .iter()
        .filter(|(k, _)| k != "id_token_hint")
        .filter_map(|(k, v)| {
            if k != "prompt" {
                return Some((k.clone(), v.clone()));
            }
            let rest: Vec<&str> = v.split(' ').filter(|p| *p != "login" && !p.is_empty()).collect();
            (!rest.is_empty()).then(|| (k.clone(), rest.join(" ")))
        })
        .collect()
}

/// `GET /consent?…`: the consent page for a pending request (never records anything).
pub async fn page(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = consent_page(&state, &req).await;
    pages::answer(&state, outcome)
}

async fn consent_page(state: &AppState, req: &HttpRequest) -> PageResult {
    let params = super::form::pairs(req.query_string().as_bytes()).ok_or_else(unreadable)?;
    let request = validate(state, &params).await?;
    let Some(session) = current_session(state, req).await? else {
        return Ok(pages::see_other(&format!(
            "{}/authorize?{}",
            pages::base(state),
            encode(&params)
        )));
    };
    let request = request.for_user(&session.user);
    let asking = Asking {
        client: &request.client,
        scope: &request.scope,
        action: "/consent",
        hidden: vec![("request", encode(&params))],
        redirect_uri: Some(&request.redirect_uri),
        user_code: None,
    };
    consent_page_for(state, &session, asking).await
}

/// What a consent page asks the user about.
pub(crate) struct Asking<'a> {
    pub client: &'a Client,
    pub scope: &'a Scopes,
    /// Where the decision is posted, and the fields that name the request there.
    pub action: &'static str,
    pub hidden: Vec<(&'static str, String)>,
    /// Where the answer goes (none for a device, which polls).
    pub redirect_uri: Option<&'a str>,
    /// A device's user code, for the user to compare (RFC 8628 §5.4).
    pub user_code: Option<String>,
}

/// The consent page of `/consent` and `/device`: the client, the scopes with their
/// descriptions, and for a client nobody vetted, what it says about itself.
pub(crate) async fn consent_page_for(
    state: &AppState,
    session: &Session,
    asking: Asking<'_>,
) -> PageResult {
    let mut scopes = Vec::new();
    for name in asking.scope.iter() {
        let description = store::scopes::find(&state.db, name).await?;
        scopes.push((name.to_owned(), description.map(|s| s.description).unwrap_or_default()));
    }
    let client = asking.client;
    let consent = ConsentPage {
        base: pages::base(state),
        csrf_token: csrf_token(state, &session.id),
        action: asking.action,
        hidden: asking.hidden,
        user_code: asking.user_code,
        client_name: if client.metadata.client_name.is_empty() {
            client.client_id.clone()
        } else {
            client.metadata.client_name.clone()
        },
        username: session.user.username.clone(),
        scopes,
        unvetted: client.registration.is_dynamic().then(|| pages::Unvetted {
            document_host: (client.registration == Registration::Document)
                .then(|| destination(&client.client_id)),
            client_uri: client.metadata.client_uri.as_ref().and_then(|uri| {
                Some((uri.clone(), url::Url::parse(uri).ok()?.host_str()?.to_owned()))
            }),
            destination: asking.redirect_uri.map(destination),
        }),
    };
    Ok(pages::render(state, StatusCode::OK, &consent))
}

/// Where a redirect URI sends the user: its host, or for a native app's private-use scheme
/// the scheme (`com.example.app`).
fn destination(redirect_uri: &str) -> String {
    match url::Url::parse(redirect_uri) {
        Ok(url) => url.host_str().map_or_else(|| url.scheme().to_owned(), str::to_owned),
        Err(_) => redirect_uri.to_owned(),
    }
}

/// `POST /consent`: `allow` records or extends the grant and continues; `deny` tells the
/// client `access_denied`.
pub async fn decide(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = record_decision(&state, &req, body).await;
    pages::answer(&state, outcome)
}

async fn record_decision(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    // Session and CSRF are checked before anything is recorded: a forged consent records nothing.
    let (session, form) = pages::signed_in_form(state, req, body).await?;
    let params = super::form::pairs(field(&form, "request").unwrap_or_default().as_bytes())
        .ok_or_else(unreadable)?;
    let request = validate(state, &params).await?;
    match field(&form, "decision") {
        Some("allow") => {}
        Some("deny") => {
            return Err(PageError::Redirect(ErrorRedirect {
                redirect_uri: request.redirect_uri.clone(),
                error: "access_denied",
                description: "the user denied the request",
                state: request.state.clone(),
            }));
        }
        _ => return Err(PageError::bad_request("Choose Allow or Deny.")),
    }
    let request = request.for_user(&session.user);
    // The consent form names the request again: the session that posts it must be as strong
    // as the request needs, whatever session was shown the page.
    if let Some(needed) = stronger_needed(state, &request, &session) {
        return step_up(state, req, &session, needed, &params).await;
    }
    consent_and_approve(state, req, &request, &session, "user").await
}

/// The level `request` needs when `session` is weaker (`oauth::assurance`, docs/REFERENCE.md
/// §3.4): checked before anything is approved, at `/authorize` and at `/consent`.
fn stronger_needed(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &Session,
) -> Option<Level> {
    let needed = assurance::required(
        &session.user,
        &request.client.metadata,
        request.acr,
        state.settings.admin_mfa,
    );
    (session.amr.level() < needed).then_some(needed)
}

/// Steps `session` up to `needed`, then resumes the request at `/authorize`.
async fn step_up(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    needed: Level,
    params: &[(String, String)],
) -> PageResult {
    let return_to = format!("/authorize?{}", encode(&after_login(params)));
    super::login::step_up(state, req, session, needed, return_to).await
}

/// Records the consent — the grant gains the requested scopes, atomically, with its event,
/// whose `by` says who gave it — and issues the code.
async fn consent_and_approve(
    state: &AppState,
    req: &HttpRequest,
    request: &AuthorizationRequest,
    session: &Session,
    by: &'static str,
) -> PageResult {
    let actor = super::actor::user(&session.user.id, state, req);
    let event = Event::new(EventType::ConsentGiven, actor, String::new()).with("by", by);
    let grant = consent::give(
        &state.db,
        &session.user.id,
        &request.client.client_id,
        &request.scope,
        event,
    )
    .await?;
    tracing::info!(user = %session.user.id, client_id = %request.client.client_id, "consent recorded");
    approve(state, request, session, &grant.id).await
}

/// Issues a code and sends the browser back to the client with it (RFC 6749 §4.1.2, RFC 9207).
async fn approve(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &Session,
    grant_id: &str,
) -> PageResult {
    // RFC 9126 §4: a pushed request yields one code; used up here, not when a page shows it.
    if let Some((hash, _)) = &request.pushed
        && !store::pushed::consume(&state.db, hash, &request.client.client_id, Utc::now()).await?
    {
        return Err(PageError::bad_request(
            "This authorization request has expired or was already used. Start again from the application.",
        ));
    }
    let code = authorization_code::issue_code(
        &state.db,
        request,
        &session.user.id,
        grant_id,
        session.auth_time,
        session.amr,
        authorization_code::SignedIn {
            session_hash: &session.id_hash(),
            sid: &session::sid(&state.csrf_key, &session.id_hash()),
        },
    )
    .await?;
    let mut params = vec![("code", code.as_str())];
    if let Some(s) = request.state.as_deref() {
        params.push(("state", s));
    }
    params.push(("iss", state.issuer.as_str()));
    Ok(pages::see_other(&redirect_url(&request.redirect_uri, &params)))
}

fn covers(grant: &GrantRecord, requested: &Scopes) -> bool {
    Scopes::parse(&grant.scope).is_ok_and(|granted| requested.is_subset_of(&granted))
}

fn encode(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// A same-site path with a query added.
fn redirect_url_relative(path: &str, params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("{path}?{query}")
}
