//! What the console's dashboard counts: rows per table, and the sign-ins of a recent window.

use chrono::{DateTime, Utc};
use entity::{client, event, grant, session, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};

use super::StoreError;

/// How many of each there are now.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Counts {
    pub clients: u64,
    pub users: u64,
    /// Sessions not past their absolute expiry (an idle one ends at its next use).
    pub sessions: u64,
    pub grants: u64,
}

pub async fn counts(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<Counts, StoreError> {
    Ok(Counts {
        clients: client::Entity::find().count(db).await?,
        users: user::Entity::find().count(db).await?,
        sessions: session::Entity::find()
            .filter(session::Column::ExpiresAt.gt(now))
            .count(db)
            .await?,
        grants: grant::Entity::find().count(db).await?,
    })
}

/// When each `sign_in` event since `since` happened and whether it succeeded.
pub async fn sign_ins_since(
    db: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, bool)>, StoreError> {
    let rows: Vec<(DateTime<Utc>, String)> = event::Entity::find()
        .select_only()
        .column(event::Column::At)
        .column(event::Column::Outcome)
        .filter(event::Column::Kind.eq("sign_in"))
        .filter(event::Column::At.gte(since))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|(at, outcome)| (at, outcome == "success")).collect())
}
