//! Issued refresh tokens by `jti`, with their family, grant and state; rotation is one
//! conditional update inside the transaction that stores the successor.

use chrono::{DateTime, Utc};
use entity::refresh_token;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    TransactionSession, TransactionTrait,
};

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub jti: String,
    pub family_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
}

/// A stored token with its state.
#[derive(Debug, Clone)]
pub struct StoredRefresh {
    pub record: RefreshRecord,
    /// `active`, `used` or `revoked`.
    pub status: String,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert(db: &impl ConnectionTrait, r: &RefreshRecord) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        jti: Set(r.jti.clone()),
        family_id: Set(r.family_id.clone()),
        grant_id: Set(r.grant_id.clone()),
        client_id: Set(r.client_id.clone()),
        user_id: Set(r.user_id.clone()),
        scope: Set(r.scope.clone()),
        status: Set("active".into()),
        used_at: Set(None),
        auth_time: Set(r.auth_time),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
        absolute_expires_at: Set(r.absolute_expires_at),
    })
    .exec(db)
    .await?;
    Ok(())
}

pub async fn find(db: &impl ConnectionTrait, jti: &str) -> Result<Option<StoredRefresh>, DbErr> {
    Ok(refresh_token::Entity::find_by_id(jti).one(db).await?.map(|m| StoredRefresh {
        status: m.status,
        used_at: m.used_at,
        record: RefreshRecord {
            jti: m.jti,
            family_id: m.family_id,
            grant_id: m.grant_id,
            client_id: m.client_id,
            user_id: m.user_id,
            scope: m.scope,
            auth_time: m.auth_time,
            created_at: m.created_at,
            expires_at: m.expires_at,
            absolute_expires_at: m.absolute_expires_at,
        },
    }))
}

/// Marks `jti` used if it is still active and unexpired, and stores its successor, in one
/// transaction; `false` (and nothing stored) when another use got there first.
pub async fn rotate(
    db: &impl TransactionTrait,
    jti: &str,
    successor: &RefreshRecord,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let used = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Status, Expr::value("used"))
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Jti.eq(jti))
        .filter(refresh_token::Column::Status.eq("active"))
        .filter(refresh_token::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if used.rows_affected != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    insert(&txn, successor).await?;
    txn.commit().await?;
    Ok(true)
}

/// Revokes every token of a family (RFC 9700 §4.14.2: reuse of a rotated token).
pub async fn revoke_family(db: &impl ConnectionTrait, family_id: &str) -> Result<u64, DbErr> {
    let revoked = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Status, Expr::value("revoked"))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::Status.ne("revoked"))
        .exec(db)
        .await?;
    Ok(revoked.rows_affected)
}

/// Forgets up to `batch` refresh tokens whose family ended (absolute expiry) before `before`.
pub async fn purge(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let expired: Vec<String> = refresh_token::Entity::find()
        .select_only()
        .column(refresh_token::Column::Jti)
        .filter(refresh_token::Column::AbsoluteExpiresAt.lt(before))
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    let purged = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Jti.is_in(expired))
        .exec(db)
        .await?;
    Ok(purged.rows_affected)
}
