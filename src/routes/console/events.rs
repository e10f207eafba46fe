//! `/console/events`: the audit trail as a table, filtered by type, actor and subject with the
//! same rules and store query as `GET /admin/events`.

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{Frame, console_session};
use crate::error::AdminError;
use crate::oauth::audit::EventType;
use crate::routes::admin::events::filter_of;
use crate::routes::pages::{self, PageError, PageResult};
use crate::routes::theme::Page;
use crate::startup::AppState;
use crate::store::events::{self, EventRecord};

/// Events per page.
const PAGE: u64 = 50;
/// The cursors' list name: the admin API's, since the two page through the same query.
const LIST: &str = "events";

#[derive(Serialize)]
struct EventsPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    types: Vec<&'static str>,
    kind: String,
    actor: String,
    subject: String,
    events: Vec<EventRecord>,
    /// The query of the next (older) page, when there is one.
    next: Option<String>,
}

impl Page for EventsPage<'_> {
    const TEMPLATE: &'static str = "console/events.html";
}

/// `GET /console/events[?type=…&actor=…&subject=…&cursor=…]`: newest first.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    pages::answer(&state, show(&state, &req).await)
}

async fn show(state: &AppState, req: &HttpRequest) -> PageResult {
    let Some(session) = console_session(state, req).await? else {
        return super::sign_in(state, req);
    };
    // An empty field of the form means "any", so only filled ones reach the filter's rules.
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let value = |name: &str| pages::field(&pairs, name).unwrap_or_default().to_owned();
    let wanted = pairs
        .iter()
        .filter(|(k, _)| matches!(k.as_str(), "type" | "actor" | "subject"))
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_str())));
    let filter = filter_of(wanted).map_err(|e| match e {
        AdminError::Invalid { description, .. } => PageError::bad_request(description),
        _ => PageError::bad_request("The filter is not valid."),
    })?;
    // The admin API's cursor: MACed, so a page link cannot be forged into another query.
    let before = match pages::field(&pairs, "cursor") {
        None => None,
        Some(cursor) => Some(
            state
                .cursors
                .open(LIST, cursor)
                .map_err(|_| PageError::bad_request("That page link is not valid."))?,
        ),
    };
    let mut found = events::list(&state.db, &filter, before.as_deref(), PAGE + 1).await?;
    let next = (found.len() as u64 > PAGE).then(|| {
        found.truncate(PAGE as usize);
        let last = found.last().map(|e| e.id.clone()).unwrap_or_default();
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("type", &value("type"))
            .append_pair("actor", &value("actor"))
            .append_pair("subject", &value("subject"))
            .append_pair("cursor", &state.cursors.make(LIST, &last))
            .finish()
    });
    let page = EventsPage {
        frame: Frame::of(state, &session),
        types: EventType::ALL.iter().map(|t| t.as_str()).collect(),
        kind: value("type"),
        actor: value("actor"),
        subject: value("subject"),
        events: found,
        next,
    };
    Ok(pages::render(state, StatusCode::OK, &page))
}
