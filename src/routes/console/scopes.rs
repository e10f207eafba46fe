//! `/console/scopes`: list the registered scopes, register one, change a description, delete
//! with a confirmation — checked by the same rules (`oauth::scopes`) and recorded with the same
//! audit events as `/admin/scopes`, with the console's administrator as the actor.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;

use super::{Frame, console_session, signed_form};
use crate::oauth::scopes::{self as changes, Invalid};
use crate::oauth::session::Session;
use crate::routes::pages::{self, PageError, PageResult};
use crate::routes::theme::Page;
use crate::startup::AppState;
use crate::store::scopes::{self, ScopeRecord, Written};

/// Scopes per page of the list.
const PAGE: u64 = 50;
const NOT_FOUND: &str = "There is no such scope.";
const UNDELETABLE: &str =
    "This scope is built in: the server relies on it, so it cannot be deleted.";
const IN_USE: &str = "This scope is still allowed to some client. Take it off those clients first.";
const TAKEN: &str = "name: a scope with this name exists";

/// A scope as the pages show it.
#[derive(Serialize)]
struct ScopeRow {
    name: String,
    description: String,
    /// The name as one percent-encoded path segment (a scope name may hold `/`, `?` or `#`).
    path: String,
    built_in: bool,
}

impl From<ScopeRecord> for ScopeRow {
    fn from(r: ScopeRecord) -> Self {
        Self {
            path: url::form_urlencoded::byte_serialize(r.name.as_bytes()).collect(),
            built_in: changes::is_built_in(&r.name),
            name: r.name,
            description: r.description,
        }
    }
}

#[derive(Serialize)]
struct ListPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    scopes: Vec<ScopeRow>,
    has_scopes: bool,
    /// The `after` of the next page (query-encoded), when `has_next`.
    has_next: bool,
    next: String,
    /// The registration form, as typed when it is refused.
    name: String,
    description: String,
    has_error: bool,
    error: String,
}

impl Page for ListPage<'_> {
    const TEMPLATE: &'static str = "console/scopes.html";
}

#[derive(Serialize)]
struct ScopePage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    scope: ScopeRow,
    /// What the description field holds (as typed when it is refused).
    description: String,
    saved: bool,
    has_error: bool,
    error: String,
}

impl Page for ScopePage<'_> {
    const TEMPLATE: &'static str = "console/scope.html";
}

#[derive(Serialize)]
struct DeletePage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    scope: ScopeRow,
}

impl Page for DeletePage<'_> {
    const TEMPLATE: &'static str = "console/scope_delete.html";
}

fn shown(e: Invalid) -> String {
    format!("{}: {}", e.field, e.description)
}

fn not_found() -> PageError {
    PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND)
}

/// The scope `name` as stored, or the console's 404 page (a name no scope can have is not
/// looked up).
async fn loaded(state: &AppState, name: &str) -> Result<ScopeRecord, PageError> {
    if changes::check_name(name).is_err() {
        return Err(not_found());
    }
    scopes::find(&state.db, name).await?.ok_or_else(not_found)
}

/// `GET /console/scopes[?after=…]`: the list, by name, and the registration form.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        let after = url::form_urlencoded::parse(req.query_string().as_bytes())
            .find(|(k, v)| k == "after" && !v.is_empty())
            .map(|(_, v)| v.into_owned());
        let form = (String::new(), String::new(), None);
        list_page(&state, &session, after.as_deref(), form, StatusCode::OK).await
    };
    pages::answer(&state, outcome.await)
}

/// The list page after `after`, with the registration form holding `(name, description,
/// error)`.
async fn list_page(
    state: &AppState,
    session: &Session,
    after: Option<&str>,
    (name, description, error): (String, String, Option<String>),
    status: StatusCode,
) -> PageResult {
    let mut found = scopes::list(&state.db, after, PAGE + 1).await?;
    let more = found.len() as u64 > PAGE;
    found.truncate(PAGE as usize);
    let next = match found.last() {
        Some(last) if more => url::form_urlencoded::byte_serialize(last.name.as_bytes()).collect(),
        _ => String::new(),
    };
    let page = ListPage {
        frame: Frame::of(state, session),
        has_scopes: !found.is_empty(),
        scopes: found.into_iter().map(ScopeRow::from).collect(),
        has_next: more,
        next,
        name,
        description,
        has_error: error.is_some(),
        error: error.unwrap_or_default(),
    };
    Ok(pages::render(state, status, &page))
}

/// `POST /console/scopes`: registers a scope (`scope.created`).
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, fields) = signed_form(&state, &req, body).await?;
        let name = pages::field(&fields, "name").unwrap_or_default().to_owned();
        let description = pages::field(&fields, "description").unwrap_or_default().to_owned();
        let checked = changes::check_name(&name).and(changes::check_description(&description));
        if let Err(e) = checked {
            let form = (name, description, Some(shown(e)));
            return list_page(&state, &session, None, form, StatusCode::BAD_REQUEST).await;
        }
        let record = ScopeRecord { name, description, created_at: Utc::now() };
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        match changes::create(&state.db, &record, actor).await? {
            Written::Done => {
                let row = ScopeRow::from(record);
                Ok(pages::see_other(&format!(
                    "{}/console/scopes/{}",
                    pages::base(&state),
                    row.path
                )))
            }
            _ => {
                let form = (record.name, record.description, Some(TAKEN.to_owned()));
                list_page(&state, &session, None, form, StatusCode::CONFLICT).await
            }
        }
    };
    pages::answer(&state, outcome.await)
}

fn scope_page(
    state: &AppState,
    session: &Session,
    scope: ScopeRecord,
    description: String,
    saved: bool,
    error: Option<String>,
    status: StatusCode,
) -> HttpResponse {
    let page = ScopePage {
        frame: Frame::of(state, session),
        scope: ScopeRow::from(scope),
        description,
        saved,
        has_error: error.is_some(),
        error: error.unwrap_or_default(),
    };
    pages::render(state, status, &page)
}

/// `GET /console/scopes/{name}`: the scope, with its description to edit.
pub async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        let scope = loaded(&state, &name).await?;
        let description = scope.description.clone();
        Ok(scope_page(&state, &session, scope, description, false, None, StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/scopes/{name}`: replaces its description (`scope.updated`).
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, fields) = signed_form(&state, &req, body).await?;
        let mut scope = loaded(&state, &name).await?;
        let description = pages::field(&fields, "description").unwrap_or_default().to_owned();
        if let Err(e) = changes::check_description(&description) {
            let error = Some(shown(e));
            let status = StatusCode::BAD_REQUEST;
            return Ok(scope_page(&state, &session, scope, description, false, error, status));
        }
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        match changes::update(&state.db, &scope.name, &description, actor).await? {
            Written::Done => {
                scope.description = description.clone();
                Ok(scope_page(&state, &session, scope, description, true, None, StatusCode::OK))
            }
            _ => Err(not_found()),
        }
    };
    pages::answer(&state, outcome.await)
}

/// `GET /console/scopes/{name}/delete`: the confirmation step (none for a built-in scope).
pub async fn confirm_delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        let scope = loaded(&state, &name).await?;
        if changes::is_built_in(&scope.name) {
            return Err(PageError::Shown(StatusCode::CONFLICT, UNDELETABLE));
        }
        let page = DeletePage { frame: Frame::of(&state, &session), scope: ScopeRow::from(scope) };
        Ok(pages::render(&state, StatusCode::OK, &page))
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/scopes/{name}/delete`: deletes a scope no client is allowed
/// (`scope.deleted`); built-in scopes stay.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    name: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, _) = signed_form(&state, &req, body).await?;
        if changes::check_name(&name).is_err() {
            return Err(not_found());
        }
        if changes::is_built_in(&name) {
            return Err(PageError::Shown(StatusCode::CONFLICT, UNDELETABLE));
        }
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        match changes::delete(&state.db, &name, actor).await? {
            Written::Done => {
                Ok(pages::see_other(&format!("{}/console/scopes", pages::base(&state))))
            }
            Written::NotFound => Err(not_found()),
            Written::Conflict => Err(PageError::Shown(StatusCode::CONFLICT, IN_USE)),
        }
    };
    pages::answer(&state, outcome.await)
}
