//! `GET`/`POST /authorize` (RFC 6749 §4.1.1) and `GET`/`POST /consent`: validate the request,
//! send the browser to log in or consent as needed, then back to the client with a code.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;

use super::pages::{
    self, ConsentPage, csrf_token, current_session, error_page, field, form_pairs, unavailable,
};
use crate::oauth::authorize::{self, AuthorizationRequest, ErrorRedirect, Refusal, redirect_url};
use crate::oauth::grant::authorization_code;
use crate::oauth::scope::Scopes;
use crate::oauth::session::Session;
use crate::startup::AppState;
use crate::store::{self, grants::GrantRecord};

/// `GET /authorize?…`
pub async fn by_query(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    match super::form::pairs(req.query_string().as_bytes()) {
        Some(params) => authorize(&state, &req, params).await,
        None => unreadable(&state),
    }
}

fn unreadable(state: &AppState) -> HttpResponse {
    error_page(state, StatusCode::BAD_REQUEST, "The authorization request could not be read.")
}

/// `POST /authorize` with the same parameters as a form (OIDC Core §3.1.2.1).
pub async fn by_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    match body.ok().and_then(|b| form_pairs(&req, &b)) {
        Some(params) => authorize(&state, &req, params).await,
        None => unreadable(&state),
    }
}

async fn validate(
    state: &AppState,
    params: &[(String, String)],
) -> Result<AuthorizationRequest, Refusal> {
    authorize::validate(&state.db, &state.registry, &state.keys, state.issuer.as_str(), params)
        .await
}

async fn authorize(
    state: &AppState,
    req: &HttpRequest,
    params: Vec<(String, String)>,
) -> HttpResponse {
    let request = match validate(state, &params).await {
        Ok(request) => request,
        Err(refusal) => return refused(state, refusal),
    };
    let back = |error, description| {
        let redirect = ErrorRedirect {
            redirect_uri: request.redirect_uri.clone(),
            error,
            description,
            state: request.state.clone(),
        };
        refused(state, Refusal::Redirect(redirect))
    };
    let session = match current_session(state, req).await {
        Ok(session) => session,
        Err(e) => return unavailable(state, e),
    };
    let now = Utc::now();
    let must_log_in = match &session {
        None => true,
        // OIDC Core §3.1.2.1: prompt=login, an authentication older than max_age, or a
        // session of someone other than the id_token_hint's subject means signing in again.
        Some(s) => {
            request.prompt.login
                || request.max_age.is_some_and(|max| (now - s.auth_time).num_seconds() > max)
                || request.hinted_subject.as_ref().is_some_and(|sub| *sub != s.user.id)
        }
    };
    if must_log_in {
        if request.prompt.none {
            return back("login_required", "the user must sign in");
        }
        // After this login the request goes on without asking for another one.
        let return_to = format!("/authorize?{}", encode(&after_login(&params)));
        let mut login_params = vec![("return_to", return_to.as_str())];
        if let Some(hint) = request.login_hint.as_deref() {
            login_params.push(("login_hint", hint));
        }
        return pages::see_other(&redirect_url_relative(
            &format!("{}/login", pages::base(state)),
            &login_params,
        ));
    }
    let Some(session) = session else { return back("login_required", "the user must sign in") };
    let request = request.clone().for_user(&session.user);
    match store::grants::find_for(&state.db, &session.user.id, &request.client.client_id).await {
        Ok(Some(grant)) if covers(&grant, &request.scope) && !request.prompt.consent => {
            approve(state, &request, &session, &grant.id).await
        }
        Ok(_) if request.prompt.none => back("consent_required", "the user has not consented"),
        Ok(_) => pages::see_other(&format!("{}/consent?{}", pages::base(state), encode(&params))),
        Err(e) => unavailable(state, e),
    }
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
    let Some(params) = super::form::pairs(req.query_string().as_bytes()) else {
        return unreadable(&state);
    };
    let request = match validate(&state, &params).await {
        Ok(request) => request,
        Err(refusal) => return refused(&state, refusal),
    };
    let session = match current_session(&state, &req).await {
        Ok(Some(session)) => session,
        Ok(None) => {
            return pages::see_other(&format!(
                "{}/authorize?{}",
                pages::base(&state),
                encode(&params)
            ));
        }
        Err(e) => return unavailable(&state, e),
    };
    let request = request.for_user(&session.user);
    let mut scopes = Vec::new();
    for name in request.scope.iter() {
        let description = match store::scopes::find(&state.db, name).await {
            Ok(found) => found.map(|s| s.description).unwrap_or_default(),
            Err(e) => return unavailable(&state, e),
        };
        scopes.push((name.to_owned(), description));
    }
    let client = &request.client;
    let consent = ConsentPage {
        base: pages::base(&state),
        csrf_token: csrf_token(&state, &session.id),
        request: encode(&params),
        client_name: if client.metadata.client_name.is_empty() {
            client.client_id.clone()
        } else {
            client.metadata.client_name.clone()
        },
        username: session.user.username.clone(),
        scopes,
    };
    pages::render(StatusCode::OK, &consent)
}

/// `POST /consent`: `allow` records or extends the grant and continues; `deny` tells the
/// client `access_denied`.
pub async fn decide(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    // Session and CSRF are checked before anything is recorded: a forged consent records nothing.
    let (session, form) = match pages::signed_in_form(&state, &req, body).await {
        Ok(signed) => signed,
        Err(page) => return page,
    };
    let Some(params) = super::form::pairs(field(&form, "request").unwrap_or_default().as_bytes())
    else {
        return unreadable(&state);
    };
    let request = match validate(&state, &params).await {
        Ok(request) => request,
        Err(refusal) => return refused(&state, refusal),
    };
    match field(&form, "decision") {
        Some("allow") => {}
        Some("deny") => {
            return refused(
                &state,
                Refusal::Redirect(ErrorRedirect {
                    redirect_uri: request.redirect_uri.clone(),
                    error: "access_denied",
                    description: "the user denied the request",
                    state: request.state.clone(),
                }),
            );
        }
        _ => return error_page(&state, StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    }
    let request = request.for_user(&session.user);
    // The grant gains the requested scopes, atomically (concurrent consents lose nothing).
    let consented = store::grants::consent(
        &state.db,
        &session.user.id,
        &request.client.client_id,
        Utc::now(),
        |current| {
            let held = Scopes::parse(current.unwrap_or_default()).unwrap_or_default();
            held.union(&request.scope).to_string()
        },
    )
    .await;
    match consented {
        Ok(grant) => {
            tracing::info!(user = %session.user.id, client_id = %request.client.client_id, "consent recorded");
            approve(&state, &request, &session, &grant.id).await
        }
        Err(e) => unavailable(&state, e),
    }
}

/// Issues a code and sends the browser back to the client with it (RFC 6749 §4.1.2, RFC 9207).
async fn approve(
    state: &AppState,
    request: &AuthorizationRequest,
    session: &Session,
    grant_id: &str,
) -> HttpResponse {
    match authorization_code::issue_code(
        &state.db,
        request,
        &session.user.id,
        grant_id,
        session.auth_time,
    )
    .await
    {
        Ok(code) => {
            let mut params = vec![("code", code.as_str())];
            if let Some(s) = request.state.as_deref() {
                params.push(("state", s));
            }
            params.push(("iss", state.issuer.as_str()));
            pages::see_other(&redirect_url(&request.redirect_uri, &params))
        }
        Err(e) => unavailable(state, e),
    }
}

fn covers(grant: &GrantRecord, requested: &Scopes) -> bool {
    Scopes::parse(&grant.scope).is_ok_and(|granted| requested.is_subset_of(&granted))
}

fn refused(state: &AppState, refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::Page(message) => error_page(state, StatusCode::BAD_REQUEST, message),
        Refusal::Store(e) => unavailable(state, e),
        Refusal::Redirect(e) => {
            let mut params = vec![("error", e.error), ("error_description", e.description)];
            if let Some(s) = e.state.as_deref() {
                params.push(("state", s));
            }
            params.push(("iss", state.issuer.as_str()));
            pages::see_other(&redirect_url(&e.redirect_uri, &params))
        }
    }
}

fn encode(params: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish()
}

/// A same-site path with a query added.
fn redirect_url_relative(path: &str, params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
    format!("{path}?{query}")
}
