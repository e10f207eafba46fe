//! Authorization codes: issued, and redeemed exactly once by one conditional update.

use chrono::{DateTime, Utc};
use entity::authorization_code as code;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    pub redirect_uri: String,
    pub redirect_uri_sent: bool,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: &impl ConnectionTrait, r: &CodeRecord) -> Result<(), DbErr> {
    code::Entity::insert(code::ActiveModel {
        code_hash: Set(r.code_hash.clone()),
        client_id: Set(r.client_id.clone()),
        user_id: Set(r.user_id.clone()),
        grant_id: Set(r.grant_id.clone()),
        redirect_uri: Set(r.redirect_uri.clone()),
        redirect_uri_sent: Set(r.redirect_uri_sent),
        code_challenge: Set(r.code_challenge.clone()),
        scope: Set(r.scope.clone()),
        nonce: Set(r.nonce.clone()),
        auth_time: Set(r.auth_time),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
        redeemed_at: Set(None),
        family_id: Set(None),
        access_jti: Set(None),
        access_expires_at: Set(None),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Marks the code redeemed if it is unredeemed and unexpired, in one statement, and returns
/// it; of N concurrent redemptions exactly one gets `Some`.
pub async fn redeem(
    db: &impl ConnectionTrait,
    code_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<CodeRecord>, DbErr> {
    let updated = code::Entity::update_many()
        .col_expr(code::Column::RedeemedAt, Expr::value(now))
        .filter(code::Column::CodeHash.eq(code_hash.to_vec()))
        .filter(code::Column::RedeemedAt.is_null())
        .filter(code::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Ok(None);
    }
    let Some(m) = code::Entity::find_by_id(code_hash.to_vec()).one(db).await? else {
        return Ok(None);
    };
    Ok(Some(CodeRecord {
        code_hash: m.code_hash,
        client_id: m.client_id,
        user_id: m.user_id,
        grant_id: m.grant_id,
        redirect_uri: m.redirect_uri,
        redirect_uri_sent: m.redirect_uri_sent,
        code_challenge: m.code_challenge,
        scope: m.scope,
        nonce: m.nonce,
        auth_time: m.auth_time,
        created_at: m.created_at,
        expires_at: m.expires_at,
    }))
}

/// Records what a redemption issued, so a replay of the code can revoke it.
pub async fn record_issued(
    db: &impl ConnectionTrait,
    code_hash: &[u8],
    family_id: Option<&str>,
    access_jti: &str,
    access_expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    code::Entity::update_many()
        .col_expr(code::Column::FamilyId, Expr::value(family_id.map(str::to_owned)))
        .col_expr(code::Column::AccessJti, Expr::value(access_jti))
        .col_expr(code::Column::AccessExpiresAt, Expr::value(access_expires_at))
        .filter(code::Column::CodeHash.eq(code_hash.to_vec()))
        .exec(db)
        .await?;
    Ok(())
}

/// What an already-redeemed code issued: (client, challenge, family, access jti and expiry).
pub struct Redeemed {
    pub client_id: String,
    pub code_challenge: String,
    pub family_id: Option<String>,
    pub access_jti: Option<String>,
    pub access_expires_at: Option<DateTime<Utc>>,
}

/// The code if it was already redeemed (a replay), whatever its expiry.
pub async fn find_redeemed(
    db: &impl ConnectionTrait,
    code_hash: &[u8],
) -> Result<Option<Redeemed>, DbErr> {
    let found = code::Entity::find_by_id(code_hash.to_vec())
        .filter(code::Column::RedeemedAt.is_not_null())
        .one(db)
        .await?;
    Ok(found.map(|m| Redeemed {
        client_id: m.client_id,
        code_challenge: m.code_challenge,
        family_id: m.family_id,
        access_jti: m.access_jti,
        access_expires_at: m.access_expires_at,
    }))
}

/// Forgets up to `batch` codes that expired before `before`.
pub async fn purge(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let expired: Vec<Vec<u8>> = code::Entity::find()
        .select_only()
        .column(code::Column::CodeHash)
        .filter(code::Column::ExpiresAt.lt(before))
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    Ok(code::Entity::delete_many()
        .filter(code::Column::CodeHash.is_in(expired))
        .exec(db)
        .await?
        .rows_affected)
}
