//! `/console/users`: list and search users, create one, and on a user's page disable or
//! enable them, set or remove the administrator flag, reset the password, end their sessions
//! and revoke their grants — each through the same functions and audit events as
//! `/admin/users` and `/admin/grants`, with the console's administrator as the actor.
//!
//! A change to one field reads the user, changes that member of the user's admin-API body and
//! replaces the user with it: the same validation (`users::parse_input`) and the same
//! replacement, cut-off and event (`users::replace`) as `PUT /admin/users/{id}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Frame, console_session, signed_form};
use crate::oauth::audit::{Event, EventType};
use crate::oauth::client::is_client_id;
use crate::oauth::client_metadata::FieldError;
use crate::oauth::session::{self, Session};
use crate::oauth::users::{self, UserError};
use crate::oauth::{methods, passkeys};
use crate::routes::admin::grants::revoke_by_admin;
use crate::routes::pages::{self, PageError, PageResult, when};
use crate::routes::theme::Page;
use crate::startup::AppState;
use crate::store;
use crate::store::users::UserRecord;

/// Users per page of the list.
const PAGE: u64 = 50;
/// Sessions listed on a user's page, the most recently used first.
const SESSIONS_SHOWN: u64 = 50;
const NOT_FOUND: &str = "There is no such user.";
const NO_SUCH_GRANT: &str = "There is no such grant.";
const TAKEN: &str = "the username is taken";
const UNREADABLE: &str = "The form could not be read.";
const NOT_YOURSELF_DISABLED: &str =
    "You cannot disable yourself: your console session would end. Ask another administrator.";
const NOT_YOURSELF_ADMIN: &str = "You cannot remove your own administrator flag: your console \
     session would end. Ask another administrator.";

/// A row of the list, every value ready to show.
#[derive(Serialize)]
struct UserRow {
    id: String,
    username: String,
    name: String,
    email: String,
    admin: String,
    disabled: String,
    created: String,
}

#[derive(Serialize)]
struct ListPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    q: String,
    users: Vec<UserRow>,
    has_users: bool,
    has_next: bool,
    /// The link to the next page (query included), when there is one.
    next_href: String,
}

impl Page for ListPage<'_> {
    const TEMPLATE: &'static str = "console/users.html";
}

/// What the create form holds (given back as typed, never the password, when refused).
#[derive(Default, Serialize)]
struct NewForm {
    username: String,
    email: String,
    name: String,
    admin: bool,
}

#[derive(Serialize)]
struct NewPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    form: NewForm,
    has_error: bool,
    error_field: String,
    error: String,
}

impl Page for NewPage<'_> {
    const TEMPLATE: &'static str = "console/user_new.html";
}

/// The facts of a user, ready to show.
#[derive(Serialize)]
struct UserFacts {
    id: String,
    username: String,
    name: String,
    email: String,
    email_verified: String,
    admin: bool,
    disabled: bool,
    require_mfa: bool,
    created: String,
    updated: String,
}

#[derive(Serialize)]
struct GrantRow {
    id: String,
    client: String,
    client_id: String,
    scope: String,
    created: String,
    updated: String,
}

#[derive(Serialize)]
struct SessionRow {
    signed_in: String,
    last_used: String,
    expires: String,
    /// The browser's User-Agent and address when it signed in, if known.
    device: String,
    address: String,
    /// How it signed in (`amr` values).
    method: String,
}

#[derive(Serialize)]
struct UserPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    user: UserFacts,
    /// The user is the signed-in administrator: no disabling, no removing the flag.
    yourself: bool,
    /// The Disable button: an enabled user other than the signed-in administrator.
    may_disable: bool,
    /// The Remove administrator button: an administrator other than the signed-in one.
    may_remove_admin: bool,
    grants: Vec<GrantRow>,
    has_grants: bool,
    sessions: Vec<SessionRow>,
    has_sessions: bool,
    sessions_summary: String,
    has_error: bool,
    error: String,
    /// The authenticator app, when one is set up.
    totp: Option<TotpFacts>,
    passkeys: Vec<PasskeyFacts>,
    /// Identities at upstream providers linked to the user.
    identities: Vec<IdentityFacts>,
}

#[derive(Serialize)]
struct IdentityFacts {
    issuer: String,
    subject: String,
    linked: String,
    last_used: String,
}

#[derive(Serialize)]
struct PasskeyFacts {
    id: String,
    name: String,
    kind: &'static str,
    created: String,
    last_used: String,
}

#[derive(Serialize)]
struct TotpFacts {
    enrolled: String,
    recovery_codes_left: u64,
}

impl Page for UserPage<'_> {
    const TEMPLATE: &'static str = "console/user.html";
}

fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}

fn query(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
}

/// A path id that cannot name a user or grant is not found, before any lookup (as in the
/// admin API).
fn well_formed(id: &str, missing: &'static str) -> Result<(), PageError> {
    if is_client_id(id) { Ok(()) } else { Err(PageError::Shown(StatusCode::NOT_FOUND, missing)) }
}

fn user_error(e: UserError) -> PageError {
    match e {
        UserError::NotFound => PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND),
        UserError::UsernameTaken => {
            PageError::Shown(StatusCode::CONFLICT, "The username is taken.")
        }
        UserError::Store(s) => PageError::Store(s),
        UserError::Internal(i) => PageError::Store(i.into()),
    }
}

fn user_path(state: &AppState, id: &str) -> String {
    format!("{}/console/users/{id}", pages::base(state))
}

/// `GET /console/users[?q=…&after=…]`: by username, 50 a page.
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
    let term = (!q.is_empty()).then_some(q.as_str());
    let mut found =
        store::users::list_by_username(&state.db, term, after.as_deref(), PAGE + 1).await?;
    let has_next = found.len() as u64 > PAGE;
    found.truncate(PAGE as usize);
    let next_href = match (has_next, found.last()) {
        (true, Some(last)) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("q", &q)
                .append_pair("after", &last.username)
                .finish();
            format!("{}/console/users?{query}", pages::base(state))
        }
        _ => String::new(),
    };
    let users: Vec<UserRow> = found
        .into_iter()
        .map(|u| UserRow {
            admin: yes_no(u.admin),
            disabled: yes_no(u.disabled),
            created: when(u.created_at),
            name: u.name.unwrap_or_default(),
            email: u.email.unwrap_or_default(),
            username: u.username,
            id: u.id,
        })
        .collect();
    let page = ListPage {
        frame: Frame::of(state, &session),
        q,
        has_users: !users.is_empty(),
        users,
        has_next,
        next_href,
    };
    Ok(pages::render(state, StatusCode::OK, &page))
}

/// `GET /console/users/new`: the create form.
pub async fn new(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        Ok(new_page(&state, &session, NewForm::default(), None, StatusCode::OK))
    };
    pages::answer(&state, outcome.await)
}

fn new_page(
    state: &AppState,
    session: &Session,
    form: NewForm,
    error: Option<(String, &'static str)>,
    status: StatusCode,
) -> HttpResponse {
    let (error_field, error_text) = error.unwrap_or_default();
    let page = NewPage {
        frame: Frame::of(state, session),
        form,
        has_error: !error_text.is_empty(),
        error_field,
        error: error_text.to_owned(),
    };
    pages::render(state, status, &page)
}

/// `POST /console/users`: creates a user from the form, through the admin API's parser and
/// `users::create`; then off to the user's page.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    pages::answer(&state, add(&state, &req, body).await)
}

async fn add(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> PageResult {
    let (session, fields) = signed_form(state, req, body).await?;
    let one = |name: &str| pages::field(&fields, name).unwrap_or_default().to_owned();
    let form = NewForm {
        username: one("username"),
        email: one("email"),
        name: one("name"),
        admin: one("admin") == "true",
    };
    let mut body = json!({
        "username": form.username,
        "password": one("password"),
        "admin": form.admin,
    });
    if let Some(members) = body.as_object_mut() {
        for (member, value) in [("email", &form.email), ("name", &form.name)] {
            if !value.is_empty() {
                members.insert(member.to_owned(), Value::String(value.clone()));
            }
        }
    }
    let input = match users::parse_input(&body, true) {
        Ok(input) => input,
        Err(FieldError { description, field, .. }) => {
            let error = Some((field, description));
            return Ok(new_page(state, &session, form, error, StatusCode::BAD_REQUEST));
        }
    };
    let actor = super::super::actor::user(&session.user.id, state, req);
    match users::create(&state.db, &state.passwords, input, actor).await {
        Ok(user) => Ok(pages::see_other(&user_path(state, &user.id))),
        Err(UserError::UsernameTaken) => {
            let error = Some(("username".to_owned(), TAKEN));
            Ok(new_page(state, &session, form, error, StatusCode::CONFLICT))
        }
        Err(e) => Err(user_error(e)),
    }
}

/// `GET /console/users/{id}`: the user, their grants and sessions, and the changes.
pub async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        let user = loaded(&state, &id).await?;
        user_page(&state, &session, user, None, StatusCode::OK).await
    };
    pages::answer(&state, outcome.await)
}

async fn user_page(
    state: &AppState,
    session: &Session,
    user: UserRecord,
    error: Option<&'static str>,
    status: StatusCode,
) -> PageResult {
    let stored = store::grants::list_for_user(&state.db, &user.id).await?;
    let mut grants = Vec::with_capacity(stored.len());
    for grant in stored {
        let client = match state.registry.find(&state.db, &grant.client_id).await? {
            Some(client) if !client.metadata.client_name.is_empty() => {
                client.metadata.client_name.clone()
            }
            _ => grant.client_id.clone(),
        };
        grants.push(GrantRow {
            id: grant.id,
            client,
            client_id: grant.client_id,
            scope: grant.scope,
            created: when(grant.created_at),
            updated: when(grant.updated_at),
        });
    }
    let now = Utc::now();
    let idle = chrono::Duration::from_std(state.settings.session_idle_timeout)
        .unwrap_or(chrono::Duration::minutes(30));
    let mut live =
        store::sessions::list_for_user(&state.db, &user.id, now, now - idle, SESSIONS_SHOWN + 1)
            .await?;
    let sessions_summary = match live.len() as u64 {
        0 => "No active sessions.".to_owned(),
        1 => "1 active session.".to_owned(),
        n if n > SESSIONS_SHOWN => {
            format!("More than {SESSIONS_SHOWN} active sessions; the most recently used:")
        }
        n => format!("{n} active sessions."),
    };
    live.truncate(SESSIONS_SHOWN as usize);
    let sessions: Vec<SessionRow> = live
        .into_iter()
        .map(|s| SessionRow {
            signed_in: when(s.auth_time),
            last_used: when(s.last_seen_at),
            expires: when(s.expires_at),
            device: s.user_agent.unwrap_or_default(),
            address: s.address.unwrap_or_default(),
            method: session::Amr::from_stored(s.amr.as_deref()).as_stored(),
        })
        .collect();
    let yourself = user.id == session.user.id;
    let methods = methods::of(&state.db, &user.id).await?;
    let page = UserPage {
        frame: Frame::of(state, session),
        yourself,
        may_disable: !user.disabled && !yourself,
        may_remove_admin: user.admin && !yourself,
        user: UserFacts {
            email_verified: yes_no(user.email_verified),
            admin: user.admin,
            disabled: user.disabled,
            require_mfa: user.require_mfa,
            created: when(user.created_at),
            updated: when(user.updated_at),
            name: user.name.unwrap_or_default(),
            email: user.email.unwrap_or_default(),
            username: user.username,
            id: user.id,
        },
        has_grants: !grants.is_empty(),
        grants,
        has_sessions: !sessions.is_empty(),
        sessions,
        sessions_summary,
        has_error: error.is_some(),
        error: error.unwrap_or_default().to_owned(),
        passkeys: methods
            .iter()
            .flat_map(|m| &m.passkeys)
            .map(|p| PasskeyFacts {
                id: p.id.clone(),
                name: p.name.clone(),
                kind: if p.synced { "synced (phr)" } else { "one device (phrh)" },
                created: when(p.created_at),
                last_used: p.last_used_at.map_or_else(|| "never".to_owned(), when),
            })
            .collect(),
        identities: methods
            .iter()
            .flat_map(|m| &m.identities)
            .map(|i| IdentityFacts {
                issuer: i.issuer.clone(),
                subject: i.subject.clone(),
                linked: when(i.linked_at),
                last_used: when(i.last_used_at),
            })
            .collect(),
        totp: methods.and_then(|m| m.totp).map(|t| TotpFacts {
            enrolled: when(t.enrolled_at),
            recovery_codes_left: t.recovery_codes_left,
        }),
    };
    Ok(pages::render(state, status, &page))
}

/// The user `id`, or the console's 404 page.
async fn loaded(state: &AppState, id: &str) -> Result<UserRecord, PageError> {
    well_formed(id, NOT_FOUND)?;
    let user = store::users::find(&state.db, id).await?;
    user.ok_or(PageError::Shown(StatusCode::NOT_FOUND, NOT_FOUND))
}

/// The user's body as `PUT /admin/users/{id}` takes it, without a password (which then
/// stays as it is).
fn admin_body(user: &UserRecord) -> Map<String, Value> {
    let body = json!({
        "username": user.username,
        "email": user.email,
        "email_verified": user.email_verified,
        "name": user.name,
        "disabled": user.disabled,
        "admin": user.admin,
        "require_mfa": user.require_mfa,
    });
    body.as_object().cloned().unwrap_or_default()
}

/// Changes one member of the user `id` (`member` set to `value`) and replaces the user with
/// it, exactly as `PUT /admin/users/{id}` would; then back to the user's page. Refused input
/// shows the user's page again with the reason, 400.
async fn change(
    state: &AppState,
    req: &HttpRequest,
    session: &Session,
    id: &str,
    member: &str,
    value: Value,
) -> PageResult {
    let current = loaded(state, id).await?;
    let mut body = admin_body(&current);
    body.insert(member.to_owned(), value);
    let input = match users::parse_input(&Value::Object(body), false) {
        Ok(input) => input,
        Err(e) => {
            return user_page(
                state,
                session,
                current,
                Some(e.description),
                StatusCode::BAD_REQUEST,
            )
            .await;
        }
    };
    let actor = super::super::actor::user(&session.user.id, state, req);
    let replaced =
        users::replace(&state.db, &state.passwords, &state.revocations, id, input, actor)
            .await
            .map_err(user_error)?;
    Ok(pages::see_other(&user_path(state, &replaced.user.id)))
}

/// `true` or `false` from a form field, else the page saying the form could not be read.
fn flag(fields: &[(String, String)], name: &str) -> Result<bool, PageError> {
    match pages::field(fields, name) {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err(PageError::bad_request(UNREADABLE)),
    }
}

/// A user flag the console sets from the form field of the same name, and the value an
/// administrator may not give it on their own account (it would lock them out mid-session).
struct Flag {
    member: &'static str,
    refused_for_yourself: Option<(bool, &'static str)>,
}

const DISABLED: Flag =
    Flag { member: "disabled", refused_for_yourself: Some((true, NOT_YOURSELF_DISABLED)) };
const ADMIN: Flag =
    Flag { member: "admin", refused_for_yourself: Some((false, NOT_YOURSELF_ADMIN)) };
const REQUIRE_MFA: Flag = Flag { member: "require_mfa", refused_for_yourself: None };

/// `POST /console/users/{id}/disabled` (`disabled=true|false`): disabling cuts the user off,
/// as the admin API's; an administrator cannot disable themselves here.
pub async fn set_disabled(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = set_flag(&state, &req, &id, body, &DISABLED).await;
    pages::answer(&state, outcome)
}

/// `POST /console/users/{id}/admin-flag` (`admin=true|false`); an administrator cannot remove
/// their own flag here.
pub async fn set_admin(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = set_flag(&state, &req, &id, body, &ADMIN).await;
    pages::answer(&state, outcome)
}

/// `POST /console/users/{id}/require-mfa` (`require_mfa=true|false`): whether the user must
/// sign in with a second factor or a passkey.
pub async fn set_require_mfa(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = set_flag(&state, &req, &id, body, &REQUIRE_MFA).await;
    pages::answer(&state, outcome)
}

/// `POST /console/users/{id}/totp/remove`: the admin API's `DELETE /admin/users/{id}/totp`
/// (a lost phone); then back to the user.
pub async fn reset_totp(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, _) = signed_form(&state, &req, body).await?;
        let user = loaded(&state, &id).await?;
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        let event = Event::new(EventType::MfaTotpRemoved, actor, format!("user:{}", user.id))
            .with("by", "admin");
        methods::turn_off_totp(&state.db, &user.id, &event).await?;
        Ok(pages::see_other(&user_path(&state, &user.id)))
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/users/{id}/passkeys/{passkey_id}/remove`: the admin API's
/// `DELETE /admin/users/{id}/passkeys/{passkey_id}` (a lost device); then back to the user.
pub async fn remove_passkey(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, _) = signed_form(&state, &req, body).await?;
        let (id, passkey_id) = path.into_inner();
        let user = loaded(&state, &id).await?;
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        let event = Event::new(EventType::MfaPasskeyRemoved, actor, format!("user:{}", user.id))
            .with("passkey", passkey_id.as_str())
            .with("by", "admin");
        if !passkeys::remove(&state.db, &user.id, &passkey_id, &event).await? {
            return Err(PageError::Shown(StatusCode::NOT_FOUND, "There is no such passkey."));
        }
        Ok(pages::see_other(&user_path(&state, &user.id)))
    };
    pages::answer(&state, outcome.await)
}

async fn set_flag(
    state: &AppState,
    req: &HttpRequest,
    id: &str,
    body: Result<web::Bytes, actix_web::Error>,
    flag_of: &Flag,
) -> PageResult {
    let (session, fields) = signed_form(state, req, body).await?;
    let value = flag(&fields, flag_of.member)?;
    if let Some((refused, why)) = flag_of.refused_for_yourself
        && value == refused
        && id == session.user.id
    {
        return Err(PageError::bad_request(why));
    }
    change(state, req, &session, id, flag_of.member, Value::Bool(value)).await
}

/// `POST /console/users/{id}/password` (`password`): a new password typed by the
/// administrator; the user's sessions and tokens end, as with the admin API's.
pub async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, fields) = signed_form(&state, &req, body).await?;
        let password = pages::field(&fields, "password").unwrap_or_default().to_owned();
        change(&state, &req, &session, &id, "password", Value::String(password)).await
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/users/{id}/sessions/end`: the admin API's `DELETE /admin/users/{id}/sessions`.
pub async fn end_sessions(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, _) = signed_form(&state, &req, body).await?;
        let user = loaded(&state, &id).await?;
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        users::end_sessions(&state.db, &state.revocations, &user.id, actor)
            .await
            .map_err(user_error)?;
        Ok(pages::see_other(&user_path(&state, &user.id)))
    };
    pages::answer(&state, outcome.await)
}

/// `POST /console/grants/{id}/revoke`: the admin API's `DELETE /admin/grants/{id}`; then back
/// to the grant's user.
pub async fn revoke_grant(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, _) = signed_form(&state, &req, body).await?;
        well_formed(&id, NO_SUCH_GRANT)?;
        let missing = PageError::Shown(StatusCode::NOT_FOUND, NO_SUCH_GRANT);
        let grant = store::grants::find(&state.db, &id).await?.ok_or(missing)?;
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        if !revoke_by_admin(&state, &grant.id, actor).await? {
            return Err(PageError::Shown(StatusCode::NOT_FOUND, NO_SUCH_GRANT));
        }
        Ok(pages::see_other(&user_path(&state, &grant.user_id)))
    };
    pages::answer(&state, outcome.await)
}
