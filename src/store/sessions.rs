//! Login sessions, found by the hash of their id.

use chrono::{DateTime, Utc};
use entity::session;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub user_id: String,
    pub auth_time: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: &impl ConnectionTrait, r: &SessionRecord) -> Result<(), DbErr> {
    session::Entity::insert(session::ActiveModel {
        id_hash: Set(r.id_hash.clone()),
        user_id: Set(r.user_id.clone()),
        auth_time: Set(r.auth_time),
        last_seen_at: Set(r.last_seen_at),
        expires_at: Set(r.expires_at),
    })
    .exec(db)
    .await?;
    Ok(())
}

pub async fn find(
    db: &impl ConnectionTrait,
    id_hash: &[u8],
) -> Result<Option<SessionRecord>, DbErr> {
    Ok(session::Entity::find_by_id(id_hash.to_vec()).one(db).await?.map(|m| SessionRecord {
        id_hash: m.id_hash,
        user_id: m.user_id,
        auth_time: m.auth_time,
        last_seen_at: m.last_seen_at,
        expires_at: m.expires_at,
    }))
}

pub async fn touch(
    db: &impl ConnectionTrait,
    id_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(now))
        .filter(session::Column::IdHash.eq(id_hash.to_vec()))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, id_hash: &[u8]) -> Result<(), DbErr> {
    session::Entity::delete_by_id(id_hash.to_vec()).exec(db).await?;
    Ok(())
}

/// Removes up to `batch` sessions past their absolute expiry.
pub async fn purge(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let expired: Vec<Vec<u8>> = session::Entity::find()
        .select_only()
        .column(session::Column::IdHash)
        .filter(session::Column::ExpiresAt.lt(now))
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    Ok(session::Entity::delete_many()
        .filter(session::Column::IdHash.is_in(expired))
        .exec(db)
        .await?
        .rows_affected)
}
