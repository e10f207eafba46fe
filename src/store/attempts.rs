//! Attempt counters: one atomic upsert per attempt, so concurrent attempts at any replica
//! each get their own count and none slips past the limit.

use super::StoreError;
use entity::attempt_counter::{self, Column, Entity as Counters};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};

/// A counter after an attempt: how many attempts its window holds, and when it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub attempts: i32,
    pub window_start: i64,
}

/// Counts one attempt against `key`, opening a new window when the last one (of
/// `window_ms`) is over; returns the count including this attempt.
pub async fn count(
    db: &impl ConnectionTrait,
    key: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<Count, StoreError> {
    let expired = Expr::col((Counters, Column::WindowStart)).lte(now_ms - window_ms);
    let row = attempt_counter::ActiveModel {
        key: Set(key.to_owned()),
        window_start: Set(now_ms),
        attempts: Set(1),
    };
    let upsert = OnConflict::column(Column::Key)
        .value(
            Column::Attempts,
            Expr::case(expired.clone(), 1).finally(Expr::col((Counters, Column::Attempts)).add(1)),
        )
        .value(
            Column::WindowStart,
            Expr::case(expired, now_ms).finally(Expr::col((Counters, Column::WindowStart))),
        )
        .to_owned();
    let counted = Counters::insert(row).on_conflict(upsert).exec_with_returning(db).await?;
    Ok(Count { attempts: counted.attempts, window_start: counted.window_start })
}

/// `key`'s count in a window still open at `now_ms`, without counting anything.
pub async fn current(
    db: &impl ConnectionTrait,
    key: &str,
    now_ms: i64,
    window_ms: i64,
) -> Result<Option<Count>, StoreError> {
    let found = Counters::find_by_id(key)
        .filter(Column::WindowStart.gt(now_ms - window_ms))
        .one(db)
        .await?;
    Ok(found.map(|c| Count { attempts: c.attempts, window_start: c.window_start }))
}

/// Takes back one attempt of `key` (it turned out to be a success).
pub async fn redeem(db: &impl ConnectionTrait, key: &str) -> Result<(), StoreError> {
    Counters::update_many()
        .col_expr(Column::Attempts, Expr::col(Column::Attempts).sub(1))
        .filter(Column::Key.eq(key))
        .filter(Column::Attempts.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets `key`'s attempts (an account's owner proved who they are).
pub async fn forget(db: &impl ConnectionTrait, key: &str) -> Result<(), StoreError> {
    Counters::delete_many().filter(Column::Key.eq(key)).exec(db).await?;
    Ok(())
}

/// Keys with at least `limit` attempts in a window still open at `now_ms`, and when each
/// window opened; at most `max` of them.
pub async fn over(
    db: &impl ConnectionTrait,
    prefix: &str,
    limit: i32,
    now_ms: i64,
    window_ms: i64,
    max: u64,
) -> Result<Vec<(String, i64)>, StoreError> {
    Ok(Counters::find()
        .select_only()
        .column(Column::Key)
        .column(Column::WindowStart)
        .filter(Column::Key.starts_with(prefix))
        .filter(Column::Attempts.gte(limit))
        .filter(Column::WindowStart.gt(now_ms - window_ms))
        .limit(max)
        .into_tuple()
        .all(db)
        .await?)
}

/// Deletes up to `batch` counters whose window closed before `now_ms - window_ms`.
pub async fn purge(
    db: &impl ConnectionTrait,
    now_ms: i64,
    window_ms: i64,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<Counters, String>(
        db,
        Column::WindowStart.lte(now_ms - window_ms),
        Column::Key,
        batch,
    )
    .await
}
