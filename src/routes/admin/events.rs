//! `GET /admin/events`: the audit trail, newest first, filtered and a page at a time
//! (docs/REFERENCE.md §6.5).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{Admin, Page, page, page_params};
use crate::error::AdminError;
use crate::oauth::audit::EventType;
use crate::startup::AppState;
use crate::store::events::{self, EventRecord, Filter};

const LIST: &str = "events";

/// Who acted.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ActorView {
    /// `client:<id>`, `user:<id>`, `system:<what>` or `anonymous`.
    pub id: String,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

/// One recorded event.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EventView {
    pub id: String,
    pub at: DateTime<Utc>,
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: ActorView,
    pub subject: String,
    /// `success` or `failure`.
    pub outcome: String,
    #[schema(value_type = Object)]
    pub detail: Value,
}

impl From<EventRecord> for EventView {
    fn from(r: EventRecord) -> Self {
        Self {
            id: r.id,
            at: r.at,
            kind: r.kind,
            actor: ActorView { id: r.actor, address: r.actor_address, request_id: r.request_id },
            subject: r.subject,
            outcome: r.outcome,
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
        }
    }
}

/// List events, newest first: `type`, `actor`, `subject` (exact), `since`, `until` (RFC 3339,
/// inclusive), `limit` and `cursor`.
#[utoipa::path(get, path = "/admin/events", tag = "events",
    params(("type" = Option<String>, Query), ("actor" = Option<String>, Query),
        ("subject" = Option<String>, Query), ("since" = Option<String>, Query),
        ("until" = Option<String>, Query), ("limit" = Option<u64>, Query),
        ("cursor" = Option<String>, Query)),
    responses((status = 200, body = Page<EventView>), (status = 400), (status = 401), (status = 403)))]
pub async fn list(
    state: web::Data<AppState>,
    _admin: Admin,
    req: HttpRequest,
) -> Result<HttpResponse, AdminError> {
    let (limit, before) = page_params(&state, &req, LIST)?;
    let filter = filter(&req)?;
    let records = events::list(&state.db, &filter, before.as_deref(), limit + 1).await?;
    let views = records.into_iter().map(EventView::from).collect();
    Ok(HttpResponse::Ok().json(page(&state, LIST, views, limit, |v: &EventView| &v.id)))
}

/// The filters of the query; a value that cannot match anything well-formed is refused.
fn filter(req: &HttpRequest) -> Result<Filter, AdminError> {
    filter_of(url::form_urlencoded::parse(req.query_string().as_bytes()))
}

/// The filters named by `pairs` (the console's event page uses the same rules).
pub(crate) fn filter_of<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Result<Filter, AdminError> {
    let mut filter = Filter::default();
    for (name, value) in pairs {
        match name.as_ref() {
            "type" => {
                let kind = EventType::parse(&value).ok_or_else(|| {
                    AdminError::invalid_request("type must be one of the event types", "type")
                })?;
                filter.kind = Some(kind.as_str().to_owned());
            }
            "actor" => filter.actor = Some(name_value(&value, "actor")?),
            "subject" => filter.subject = Some(name_value(&value, "subject")?),
            "since" => filter.since = Some(instant(&value, "since")?),
            "until" => filter.until = Some(instant(&value, "until")?),
            _ => {}
        }
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until)
        && since > until
    {
        return Err(AdminError::invalid_request("since must not be after until", "since"));
    }
    Ok(filter)
}

fn name_value(value: &str, field: &str) -> Result<String, AdminError> {
    if value.is_empty() || value.chars().count() > 300 || value.chars().any(char::is_control) {
        return Err(AdminError::invalid_request(
            "must be 1 to 300 printable characters, e.g. client:<id>",
            field,
        ));
    }
    Ok(value.to_owned())
}

fn instant(value: &str, field: &str) -> Result<DateTime<Utc>, AdminError> {
    DateTime::parse_from_rfc3339(value).map(|t| t.with_timezone(&Utc)).map_err(|_| {
        AdminError::invalid_request("must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z", field)
    })
}
