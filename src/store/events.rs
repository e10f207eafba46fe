//! The audit trail's rows: inserted with the change they record, listed newest first by
//! their time-ordered id (the cursor key), purged after the retention period.

use chrono::{DateTime, Utc};
use entity::event::{self, Column, Entity as Events};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::StoreError;

/// A stored event.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventRecord {
    /// Hex of `at` in microseconds, then random bits: ordering ids orders by time.
    pub id: String,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor: String,
    pub actor_address: Option<String>,
    pub request_id: Option<String>,
    pub subject: String,
    pub outcome: String,
    pub detail: String,
}

impl From<event::Model> for EventRecord {
    fn from(m: event::Model) -> Self {
        Self {
            id: m.id,
            at: m.at,
            kind: m.kind,
            actor: m.actor,
            actor_address: m.actor_address,
            request_id: m.request_id,
            subject: m.subject,
            outcome: m.outcome,
            detail: m.detail,
        }
    }
}

/// Which events a listing wants; every filter given must match.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// An id for an event at `at`: sorts with time, unique by its random half.
pub fn new_id(at: DateTime<Utc>) -> String {
    let micros = u64::try_from(at.timestamp_micros()).unwrap_or(0);
    format!("{micros:016x}{:016x}", uuid::Uuid::new_v4().as_u64_pair().0)
}

/// One statement, in the caller's transaction.
pub async fn insert(db: &impl ConnectionTrait, record: &EventRecord) -> Result<(), StoreError> {
    let row = event::ActiveModel {
        id: Set(record.id.clone()),
        at: Set(record.at),
        kind: Set(record.kind.clone()),
        actor: Set(record.actor.clone()),
        actor_address: Set(record.actor_address.clone()),
        request_id: Set(record.request_id.clone()),
        subject: Set(record.subject.clone()),
        outcome: Set(record.outcome.clone()),
        detail: Set(record.detail.clone()),
    };
    Events::insert(row).exec_without_returning(db).await?;
    Ok(())
}

/// Up to `limit` events matching `filter`, newest first, older than the id `before`.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &Filter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<EventRecord>, StoreError> {
    let mut query = Events::find().order_by_desc(Column::Id).limit(limit);
    if let Some(before) = before {
        query = query.filter(Column::Id.lt(before));
    }
    if let Some(kind) = &filter.kind {
        query = query.filter(Column::Kind.eq(kind.as_str()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(Column::Actor.eq(actor.as_str()));
    }
    if let Some(subject) = &filter.subject {
        query = query.filter(Column::Subject.eq(subject.as_str()));
    }
    if let Some(since) = filter.since {
        query = query.filter(Column::At.gte(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(Column::At.lte(until));
    }
    Ok(query.all(db).await?.into_iter().map(EventRecord::from).collect())
}

/// Deletes up to `batch` events recorded before `cutoff`.
pub async fn purge(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<Events, String>(db, Column::At.lt(cutoff), Column::Id, batch).await
}
