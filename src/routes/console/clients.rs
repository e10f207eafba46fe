//! `/console/clients`: list and search clients, register one, rotate a secret, delete with a
//! confirmation — each change through the same registry functions and audit events as
//! `/admin/clients`, with the console's administrator as the actor.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::json;

use super::{console_session, signed_form};
use crate::oauth::client::{Client, ClientView};
use crate::oauth::client_metadata;
use crate::oauth::console::CLIENT_ID as CONSOLE_CLIENT;
use crate::oauth::registry::RegistryError;
use crate::routes::pages::{self, PageError, PageResult};
use crate::routes::theme::Page;
use crate::startup::AppState;

/// Clients per page of the list.
const PAGE: u64 = 50;
const NOT_FOUND: &str = "There is no such client.";
const RESERVED: &str = "The console's own client is managed by the server.";

#[derive(Serialize)]
struct ListPage<'a> {
    base: &'a str,
    csrf_token: String,
    username: String,
    q: String,
    clients: Vec<ClientView>,
    /// The `after` of the next page, when there is one.
    next: Option<String>,
}

impl Page for ListPage<'_> {
    const TEMPLATE: &'static str = "console/clients.html";
}

#[derive(Serialize)]
struct NewPage<'a> {
    base: &'a str,
    csrf_token: String,
    username: String,
    form: NewForm,
    error: Option<(&'static str, String)>,
}

impl Page for NewPage<'_> {
    const TEMPLATE: &'static str = "console/client_new.html";
}

/// What the create form holds (given back as typed when it is refused).
#[derive(Default, Serialize)]
struct NewForm {
    client_name: String,
    redirect_uris: String,
    grant_types: Vec<String>,
    scope: String,
    token_endpoint_auth_method: String,
}

#[derive(Serialize)]
struct ClientPage<'a> {
    base: &'a str,
    csrf_token: String,
    username: String,
    client: ClientView,
    /// Set once, on the answer that created or rotated the secret.
    secret: Option<String>,
    heading: &'static str,
    rotatable: bool,
    reserved: bool,
}

impl Page for ClientPage<'_> {
    const TEMPLATE: &'static str = "console/client.html";
}

#[derive(Serialize)]
struct DeletePage<'a> {
    base: &'a str,
    csrf_token: String,
    username: String,
    client: ClientView,
}

impl Page for DeletePage<'_> {
    const TEMPLATE: &'static str = "console/client_delete.html";
}

fn registry_error(e: RegistryError) -> PageError {
    match e {
        RegistryError::Store(s) => PageError::Store(s),
        RegistryError::Internal(i) => PageError::Store(i.into()),
        RegistryError::Metadata(_) => PageError::bad_request("The client could not be changed."),
    }
}

fn query(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// `GET /console/clients[?q=…&after=…]`.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    pages::answer(&state, show_list(&state, &req).await)
}

async fn show_list(state: &AppState, req: &HttpRequest) -> PageResult {
    let Some(session) = console_session(state, req).await? else {
        return super::sign_in(state, req);
    };
    let q = query(req, "q").unwrap_or_default();
    let q: String = q.chars().filter(|c| !c.is_control()).take(200).collect();
    let after = query(req, "after");
    let mut clients = if q.is_empty() {
        state.registry.list(&state.db, after.as_deref(), PAGE + 1).await
    } else {
        state.registry.search(&state.db, &q, after.as_deref(), PAGE + 1).await
    }
    .map_err(registry_error)?;
    let next = (clients.len() as u64 > PAGE).then(|| {
        clients.truncate(PAGE as usize);
        clients.last().map(|c| c.client_id.clone()).unwrap_or_default()
    });
    let page = ListPage {
        base: pages::base(state),
        csrf_token: pages::csrf_token(state, &session.id),
        username: session.user.username,
        q,
        clients: clients.iter().map(|c| c.view(None)).collect(),
        next,
    };
    Ok(pages::render(state, StatusCode::OK, &page))
}

/// `GET /console/clients/new`: the registration form.
pub async fn new(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        let form = NewForm {
            grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            scope: "openid".to_owned(),
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
            ..NewForm::default()
        };
        Ok(new_page(&state, &session, form, None, StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

fn new_page(
    state: &AppState,
    session: &crate::oauth::session::Session,
    form: NewForm,
    error: Option<(&'static str, String)>,
    status: StatusCode,
) -> HttpResponse {
    let page = NewPage {
        base: pages::base(state),
        csrf_token: pages::csrf_token(state, &session.id),
        username: session.user.username.clone(),
        form,
        error,
    };
    pages::render(state, status, &page)
}

/// `POST /console/clients`: registers a client from the form, validated by the same parser as
/// the admin API's JSON, and shows its secret once.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    pages::answer(&state, register(&state, &req, body).await)
}

async fn register(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, fields) = signed_form(state, req, body).await?;
    let all = |name: &str| -> Vec<String> {
        fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect()
    };
    let one = |name: &str| pages::field(&fields, name).unwrap_or_default().to_owned();
    let form = NewForm {
        client_name: one("client_name"),
        redirect_uris: one("redirect_uris"),
        grant_types: all("grant_types"),
        scope: one("scope"),
        token_endpoint_auth_method: one("token_endpoint_auth_method"),
    };
    let redirect_uris: Vec<&str> =
        form.redirect_uris.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let mut metadata = json!({
        "client_name": form.client_name,
        "redirect_uris": redirect_uris,
        "grant_types": form.grant_types,
        "scope": form.scope,
        "token_endpoint_auth_method": form.token_endpoint_auth_method,
    });
    if redirect_uris.is_empty()
        && let Some(m) = metadata.as_object_mut()
    {
        m.remove("redirect_uris");
    }
    let parsed = client_metadata::parse(&metadata, state.settings.max_token_lifetime);
    let actor = super::super::actor::user(&session.user.id, state, req);
    let registered = match parsed {
        Ok(m) => state.registry.register(&state.db, m, actor).await,
        Err(e) => Err(RegistryError::Metadata(e)),
    };
    let registered = match registered {
        Ok(r) => r,
        Err(RegistryError::Metadata(e)) => {
            let error = Some((e.description, e.field));
            return Ok(new_page(state, &session, form, error, StatusCode::BAD_REQUEST));
        }
        Err(e) => return Err(registry_error(e)),
    };
    let secret = registered.secret.map(|s| s.expose_secret().to_owned());
    let heading = "Client registered";
    Ok(client_page(state, &session, &registered.client, secret, heading, StatusCode::CREATED))
}

fn client_page(
    state: &AppState,
    session: &crate::oauth::session::Session,
    client: &Client,
    secret: Option<String>,
    heading: &'static str,
    status: StatusCode,
) -> HttpResponse {
    let page = ClientPage {
        base: pages::base(state),
        csrf_token: pages::csrf_token(state, &session.id),
        username: session.user.username.clone(),
        rotatable: client.metadata.token_endpoint_auth_method.uses_secret(),
        reserved: client.client_id == CONSOLE_CLIENT,
        client: client.view(None),
        secret,
        heading,
    };
    pages::render(state, status, &page)
}

/// `GET /console/clients/{id}`.
pub async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        let client = loaded(&state, &id).await?;
        Ok(client_page(&state, &session, &client, None, "Client", StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/clients/{id}/secret`: a new secret, shown once; the old one stops now.
pub async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, _) = signed_form(&state, &req, body).await?;
        if id.as_str() == CONSOLE_CLIENT {
            return Err(PageError::bad_request(RESERVED));
        }
        let client = loaded(&state, &id).await?;
        if !client.metadata.token_endpoint_auth_method.uses_secret() {
            return Err(PageError::bad_request("This client authenticates without a secret."));
        }
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        let (client, secret) = state
            .registry
            .rotate_secret(&state.db, &state.revocations, &id, Duration::ZERO, actor)
            .await
            .map_err(registry_error)?
            .ok_or(PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND))?;
        let secret = Some(secret.expose_secret().to_owned());
        let heading = "Secret rotated";
        Ok(client_page(&state, &session, &client, secret, heading, StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

/// `GET /console/clients/{id}/delete`: the confirmation step.
pub async fn confirm_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        let client = loaded(&state, &id).await?;
        let page = DeletePage {
            base: pages::base(&state),
            csrf_token: pages::csrf_token(&state, &session.id),
            username: session.user.username,
            client: client.view(None),
        };
        Ok(pages::render(&state, StatusCode::OK, &page))
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/clients/{id}/delete`: deletes through the revocation hook, as the admin API.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, _) = signed_form(&state, &req, body).await?;
        if id.as_str() == CONSOLE_CLIENT {
            return Err(PageError::bad_request(RESERVED));
        }
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        if !state.registry.delete(&state.db, &state.revocations, &id, actor).await? {
            return Err(PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND));
        }
        Ok(pages::see_other(&format!("{}/console/clients", pages::base(&state))))
    };
    pages::answer(&state, outcome.await)
}

/// The client `id` as the admin API reads it, or the console's 404 page.
async fn loaded(state: &AppState, id: &str) -> Result<Client, PageError> {
    let client = state.registry.load(&state.db, id).await.map_err(registry_error)?;
    client.ok_or(PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND))
}
