//! Tokens issued per UTC hour, summed over every replica: each replica adds its in-memory
//! tally (`oauth::tally`) with one upsert per hour, the dashboard reads the last hours, and
//! the purge drops what is older than two days.

use chrono::{DateTime, Utc};
use entity::token_hour::{self, Column, Entity as TokenHours};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StoreError;

/// How many hours of counts are kept: twice what the dashboard shows.
pub const KEPT_HOURS: i64 = 48;

/// Adds `count` tokens to `hour` (the hour's start): one statement,
/// `INSERT … ON CONFLICT (hour) DO UPDATE SET count = token_hours.count + excluded.count`,
/// so replicas flushing the same hour at once both count.
pub async fn add(
    db: &impl ConnectionTrait,
    hour: DateTime<Utc>,
    count: u64,
) -> Result<(), StoreError> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let row = token_hour::ActiveModel { hour: Set(hour), count: Set(count) };
    let upsert = OnConflict::column(Column::Hour)
        .value(
            Column::Count,
            Expr::col((TokenHours, Column::Count))
                .add(Expr::col((Alias::new("excluded"), Column::Count))),
        )
        .to_owned();
    TokenHours::insert(row).on_conflict(upsert).exec_without_returning(db).await?;
    Ok(())
}

/// The hours from `since` on that have a count, with their counts.
pub async fn since(
    db: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<(DateTime<Utc>, u64)>, StoreError> {
    let rows = TokenHours::find().filter(Column::Hour.gte(since)).all(db).await?;
    Ok(rows.into_iter().map(|r| (r.hour, u64::try_from(r.count).unwrap_or(0))).collect())
}

/// Deletes up to `batch` hours that started before `cutoff`.
pub async fn purge(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<TokenHours, DateTime<Utc>>(
        db,
        Column::Hour.lt(cutoff),
        Column::Hour,
        batch,
    )
    .await
}
