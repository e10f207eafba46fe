//! Login sessions, found by the hash of their id.

use super::StoreError;
use super::backchannel::Ending;
use chrono::{DateTime, Utc};
use entity::session;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id_hash: Vec<u8>,
    pub user_id: String,
    pub auth_time: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// The browser's User-Agent, cut short; `None` for sessions older than the column.
    pub user_agent: Option<String>,
    /// The address the session signed in from.
    pub address: Option<String>,
    /// How the user signed in (`session::Amr::as_stored`); `None`: a password alone.
    pub amr: Option<String>,
}

impl From<session::Model> for SessionRecord {
    fn from(m: session::Model) -> Self {
        Self {
            id_hash: m.id_hash,
            user_id: m.user_id,
            auth_time: m.auth_time,
            last_seen_at: m.last_seen_at,
            expires_at: m.expires_at,
            user_agent: m.user_agent,
            address: m.address,
            amr: m.amr,
        }
    }
}

pub async fn insert(db: &impl ConnectionTrait, r: &SessionRecord) -> Result<(), StoreError> {
    session::Entity::insert(session::ActiveModel {
        id_hash: Set(r.id_hash.clone()),
        user_id: Set(r.user_id.clone()),
        auth_time: Set(r.auth_time),
        last_seen_at: Set(r.last_seen_at),
        expires_at: Set(r.expires_at),
        user_agent: Set(r.user_agent.clone()),
        address: Set(r.address.clone()),
        amr: Set(r.amr.clone()),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// The session `id_hash` names, with its user (one statement: every page with a session
/// reads both).
pub async fn find_with_user(
    db: &impl ConnectionTrait,
    id_hash: &[u8],
) -> Result<Option<(SessionRecord, Option<super::users::UserRecord>)>, StoreError> {
    let found = session::Entity::find_by_id(id_hash.to_vec())
        .find_also_related(entity::user::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(m, user)| (m.into(), user.map(super::users::UserRecord::from))))
}

pub async fn touch(
    db: &impl ConnectionTrait,
    id_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(now))
        .filter(session::Column::IdHash.eq(id_hash.to_vec()))
        .exec(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &impl ConnectionTrait, id_hash: &[u8]) -> Result<(), StoreError> {
    super::backchannel::sessions_ending(db, Ending::One(id_hash), Utc::now()).await?;
    session::Entity::delete_by_id(id_hash.to_vec()).exec(db).await?;
    Ok(())
}

/// Ends the session `id_hash` names only if it is `user_id`'s; whether one ended.
pub async fn delete_of_user(
    db: &impl ConnectionTrait,
    user_id: &str,
    id_hash: &[u8],
) -> Result<bool, StoreError> {
    let ending = Ending::OneOf { user_id, session_hash: id_hash };
    super::backchannel::sessions_ending(db, ending, Utc::now()).await?;
    let deleted = session::Entity::delete_many()
        .filter(session::Column::IdHash.eq(id_hash.to_vec()))
        .filter(session::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Removes up to `batch` sessions past their absolute expiry, their clients told first.
pub async fn purge(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    let keys: Vec<Vec<u8>> = session::Entity::find()
        .select_only()
        .column(session::Column::IdHash)
        .filter(session::Column::ExpiresAt.lt(now))
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if keys.is_empty() {
        return Ok(0);
    }
    super::backchannel::sessions_ending(db, Ending::These(&keys), now).await?;
    let deleted = session::Entity::delete_many()
        .filter(session::Column::IdHash.is_in(keys))
        .filter(session::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// Up to `limit` live sessions of `user_id`: not past their absolute expiry at `now`, used
/// after `idle_since`; the most recently used first.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: &str,
    now: DateTime<Utc>,
    idle_since: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<SessionRecord>, StoreError> {
    let rows = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::LastSeenAt.gt(idle_since))
        .order_by_desc(session::Column::LastSeenAt)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(SessionRecord::from).collect())
}

/// Ends every session of `user_id` but `keep` (the caller's own, when a user changes their
/// own password); returns how many ended.
pub async fn delete_for_user(
    db: &impl ConnectionTrait,
    user_id: &str,
    keep: Option<&[u8]>,
) -> Result<u64, StoreError> {
    super::backchannel::sessions_ending(db, Ending::AllOf { user_id, keep }, Utc::now()).await?;
    let mut query = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        query = query.filter(session::Column::IdHash.ne(keep.to_vec()));
    }
    Ok(query.exec(db).await?.rows_affected)
}
