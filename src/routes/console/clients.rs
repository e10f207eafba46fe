//! `/console/clients`: list and search clients, register one, edit one, rotate a secret
//! (with an overlap), delete with a confirmation — each change through the same registry
//! functions and audit events as `/admin/clients`, with the console's administrator as the
//! actor.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Frame, console_session, signed_form};
use crate::oauth::client::{AuthMethod, Client, ClientView, GrantType};
use crate::oauth::client_metadata;
use crate::oauth::console::CLIENT_ID as CONSOLE_CLIENT;
use crate::oauth::registry::{self, RegistryError};
use crate::oauth::session::Session;
use crate::routes::pages::when;
use crate::routes::pages::{self, PageError, PageResult};
use crate::routes::theme::Page;
use crate::startup::AppState;

/// Clients per page of the list.
const PAGE: u64 = 50;
const NOT_FOUND: &str = "There is no such client.";
const RESERVED: &str = "The console's own client is managed by the server.";

#[derive(Serialize)]
struct ListPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
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
    #[serde(flatten)]
    frame: Frame<'a>,
    form: FormView,
}

impl Page for NewPage<'_> {
    const TEMPLATE: &'static str = "console/client_new.html";
}

#[derive(Serialize)]
struct EditPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    client_id: String,
    form: FormView,
}

impl Page for EditPage<'_> {
    const TEMPLATE: &'static str = "console/client_edit.html";
}

/// What the create and edit forms hold (given back as typed when they are refused).
#[derive(Default)]
struct ClientForm {
    client_name: String,
    redirect_uris: String,
    grant_types: Vec<String>,
    scope: String,
    token_endpoint_auth_method: String,
}

/// A checkbox or an option of a form.
#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: &'static str,
    chosen: bool,
}

/// A form as its template shows it: every choice and the error precomputed.
#[derive(Serialize)]
struct FormView {
    client_name: String,
    redirect_uris: String,
    scope: String,
    grant_types: Vec<Choice>,
    methods: Vec<Choice>,
    has_error: bool,
    error: String,
}

/// The grant types and client authentication the registration form offers; the edit form
/// offers every one, so that it shows (and keeps) whatever the client has.
const NEW_GRANTS: [GrantType; 3] =
    [GrantType::AuthorizationCode, GrantType::RefreshToken, GrantType::ClientCredentials];
const NEW_METHODS: [AuthMethod; 3] =
    [AuthMethod::ClientSecretBasic, AuthMethod::ClientSecretPost, AuthMethod::None];

fn grant_label(grant: GrantType) -> &'static str {
    match grant {
        GrantType::DeviceCode => "device code (RFC 8628)",
        GrantType::TokenExchange => "token exchange (RFC 8693)",
        other => other.as_str(),
    }
}

fn method_label(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::None => "none (public client, PKCE)",
        other => other.as_str(),
    }
}

impl ClientForm {
    /// The form's fields as posted.
    fn posted(fields: &[(String, String)]) -> Self {
        let one = |name: &str| pages::field(fields, name).unwrap_or_default().to_owned();
        Self {
            client_name: one("client_name"),
            redirect_uris: one("redirect_uris"),
            grant_types: fields
                .iter()
                .filter(|(k, _)| k == "grant_types")
                .map(|(_, v)| v.clone())
                .collect(),
            scope: one("scope"),
            token_endpoint_auth_method: one("token_endpoint_auth_method"),
        }
    }

    /// What a client has, in the form's fields.
    fn of(client: &Client) -> Self {
        let m = &client.metadata;
        Self {
            client_name: m.client_name.clone(),
            redirect_uris: m.redirect_uris.join("\n"),
            grant_types: m.grant_types.iter().map(|g| g.as_str().to_owned()).collect(),
            scope: m.scope.to_string(),
            token_endpoint_auth_method: m.token_endpoint_auth_method.as_str().to_owned(),
        }
    }

    /// `metadata` (the JSON of §5.1) with the form's members written over it; the others stay.
    fn apply(&self, mut metadata: Value) -> Value {
        let redirect_uris: Vec<&str> =
            self.redirect_uris.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        if let Some(m) = metadata.as_object_mut() {
            m.insert("client_name".into(), json!(self.client_name));
            m.insert("redirect_uris".into(), json!(redirect_uris));
            m.insert("grant_types".into(), json!(self.grant_types));
            m.insert("scope".into(), json!(self.scope));
            m.insert("token_endpoint_auth_method".into(), json!(self.token_endpoint_auth_method));
            // It follows the grant types (§5.1): the parser derives it again from the new ones.
            m.remove("response_types");
        }
        metadata
    }

    fn view(self, grants: &[GrantType], methods: &[AuthMethod], error: Option<String>) -> FormView {
        let grant_types = grants
            .iter()
            .map(|g| Choice {
                value: g.as_str(),
                label: grant_label(*g),
                chosen: self.grant_types.iter().any(|held| held == g.as_str()),
            })
            .collect();
        let methods = methods
            .iter()
            .map(|m| Choice {
                value: m.as_str(),
                label: method_label(*m),
                chosen: self.token_endpoint_auth_method == m.as_str(),
            })
            .collect();
        FormView {
            client_name: self.client_name,
            redirect_uris: self.redirect_uris,
            scope: self.scope,
            grant_types,
            methods,
            has_error: error.is_some(),
            error: error.unwrap_or_default(),
        }
    }
}

/// How long the old secret keeps working, as the rotate form offers it (each within
/// `registry::MAX_SECRET_OVERLAP`, the admin API's limit, which the posted value is checked by).
const OVERLAPS: [(&str, &str); 4] = [
    ("0", "stops working now"),
    ("3600", "keeps working for 1 hour"),
    ("86400", "keeps working for 24 hours"),
    ("604800", "keeps working for 7 days"),
];

#[derive(Serialize)]
struct ClientPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    client: ClientView,
    grant_types: String,
    /// Set once, on the answer that created or rotated the secret.
    has_secret: bool,
    secret: String,
    /// When the previous secrets stop working, while some still do.
    has_overlap: bool,
    overlap_until: String,
    overlaps: Vec<Choice>,
    heading: &'static str,
    rotatable: bool,
    reserved: bool,
}

impl Page for ClientPage<'_> {
    const TEMPLATE: &'static str = "console/client.html";
    /// The Copy button for a secret shown once.
    const SCRIPTED: bool = true;
}

#[derive(Serialize)]
struct DeletePage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
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

fn metadata_error(e: client_metadata::FieldError) -> String {
    format!("{}: {}", e.field, e.description)
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
        frame: Frame::of(state, &session),
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
        let form = ClientForm {
            grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
            scope: "openid".to_owned(),
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
            ..ClientForm::default()
        };
        Ok(new_page(&state, &session, form, None, StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

fn new_page(
    state: &AppState,
    session: &Session,
    form: ClientForm,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let page = NewPage {
        frame: Frame::of(state, session),
        form: form.view(&NEW_GRANTS, &NEW_METHODS, error),
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
    let form = ClientForm::posted(&fields);
    let metadata = form.apply(json!({}));
    let parsed = client_metadata::parse(&metadata, state.settings.max_token_lifetime);
    let actor = super::super::actor::user(&session.user.id, state, req);
    let registered = match parsed {
        Ok(m) => state.registry.register(&state.db, m, actor).await,
        Err(e) => Err(RegistryError::Metadata(e)),
    };
    let registered = match registered {
        Ok(r) => r,
        Err(RegistryError::Metadata(e)) => {
            let error = Some(metadata_error(e));
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
    session: &Session,
    client: &Client,
    secret: Option<String>,
    heading: &'static str,
    status: StatusCode,
) -> HttpResponse {
    let now = Utc::now();
    let overlap_until =
        client.secrets.iter().filter_map(|s| s.expires_at).filter(|at| *at > now).max();
    let view = client.view(None);
    let page = ClientPage {
        frame: Frame::of(state, session),
        rotatable: client.metadata.token_endpoint_auth_method.uses_secret(),
        reserved: client.client_id == CONSOLE_CLIENT,
        grant_types: view.grant_types.join(" "),
        client: view,
        has_secret: secret.is_some(),
        secret: secret.unwrap_or_default(),
        has_overlap: overlap_until.is_some(),
        overlap_until: overlap_until.map(when).unwrap_or_default(),
        overlaps: OVERLAPS
            .iter()
            .map(|(value, label)| Choice { value, label, chosen: *value == "0" })
            .collect(),
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

/// `GET /console/clients/{id}/edit`: the form, holding what the client has now.
pub async fn edit(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        changeable(&id)?;
        let client = loaded(&state, &id).await?;
        let form = ClientForm::of(&client);
        Ok(edit_page(&state, &session, &id, form, None, StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

fn edit_page(
    state: &AppState,
    session: &Session,
    client_id: &str,
    form: ClientForm,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let page = EditPage {
        frame: Frame::of(state, session),
        client_id: client_id.to_owned(),
        form: form.view(&GrantType::ALL, &AuthMethod::ALL, error),
    };
    pages::render(state, status, &page)
}

/// `POST /console/clients/{id}`: saves the form over the client's current metadata (members
/// the form does not show stay as they are), through the same parser and `registry.replace`
/// as `PUT /admin/clients/{id}`. A client that newly needs a secret gets one, shown once.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, fields) = signed_form(&state, &req, body).await?;
        changeable(&id)?;
        let client = loaded(&state, &id).await?;
        let form = ClientForm::posted(&fields);
        let metadata = form.apply(client_metadata::to_json(&client.metadata));
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        let replaced = match client_metadata::parse(&metadata, state.settings.max_token_lifetime) {
            Ok(m) => {
                let (db, revocations) = (&state.db, &state.revocations);
                state.registry.replace(db, revocations, &id, m, None, actor).await
            }
            Err(e) => Err(RegistryError::Metadata(e)),
        };
        let registered = match replaced {
            Ok(Some(r)) => r,
            Ok(None) => return Err(PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND)),
            Err(RegistryError::Metadata(e)) => {
                let error = Some(metadata_error(e));
                return Ok(edit_page(&state, &session, &id, form, error, StatusCode::BAD_REQUEST));
            }
            Err(e) => return Err(registry_error(e)),
        };
        let secret = registered.secret.map(|s| s.expose_secret().to_owned());
        let client = &registered.client;
        Ok(client_page(&state, &session, client, secret, "Client saved", StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/clients/{id}/secret`: a new secret, shown once; the old one keeps working
/// for the chosen `overlap` (seconds, within the admin API's limit; none when absent).
pub async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, fields) = signed_form(&state, &req, body).await?;
        changeable(&id)?;
        let overlap =
            match pages::field(&fields, "overlap") {
                None => Duration::ZERO,
                Some(seconds) => seconds.parse().ok().and_then(registry::secret_overlap).ok_or(
                    PageError::bad_request("Choose how long the old secret keeps working."),
                )?,
            };
        let client = loaded(&state, &id).await?;
        if !client.metadata.token_endpoint_auth_method.uses_secret() {
            return Err(PageError::bad_request("This client authenticates without a secret."));
        }
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        let (client, secret) = state
            .registry
            .rotate_secret(&state.db, &state.revocations, &id, overlap, actor)
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
        let page = DeletePage { frame: Frame::of(&state, &session), client: client.view(None) };
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
        changeable(&id)?;
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        if !state.registry.delete(&state.db, &state.revocations, &id, actor).await? {
            return Err(PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND));
        }
        Ok(pages::see_other(&format!("{}/console/clients", pages::base(&state))))
    };
    pages::answer(&state, outcome.await)
}

/// Refuses any change to the console's own client: the server manages it.
fn changeable(id: &str) -> Result<(), PageError> {
    if id == CONSOLE_CLIENT { Err(PageError::bad_request(RESERVED)) } else { Ok(()) }
}

/// The client `id` as the admin API reads it, or the console's 404 page.
async fn loaded(state: &AppState, id: &str) -> Result<Client, PageError> {
    let client = state.registry.load(&state.db, id).await.map_err(registry_error)?;
    client.ok_or(PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_overlap_offered_is_within_the_admin_apis_limit() {
        for (seconds, _) in OVERLAPS {
            let parsed = seconds.parse().ok().and_then(registry::secret_overlap);
            assert!(parsed.is_some(), "{seconds}");
        }
    }
}
