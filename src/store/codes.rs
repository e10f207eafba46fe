//! Authorization codes: issued, and redeemed exactly once by one conditional update.

use super::StoreError;
use chrono::{DateTime, Utc};
use entity::authorization_code as code;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

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
    /// RFC 9449 §10: the thumbprint of the key the tokens must be bound to.
    pub dpop_jkt: Option<String>,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// How the user signed in (`session::Amr::as_stored`); `None`: a password alone.
    pub amr: Option<String>,
    /// The session's `sid` claim (Back-Channel Logout §2.1).
    pub sid: Option<String>,
}

pub async fn insert(db: &impl ConnectionTrait, r: &CodeRecord) -> Result<(), StoreError> {
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
        dpop_jkt: Set(r.dpop_jkt.clone()),
        auth_time: Set(r.auth_time),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
        redeemed_at: Set(None),
        family_id: Set(None),
        access_jti: Set(None),
        access_expires_at: Set(None),
        replayed_at: Set(None),
        amr: Set(r.amr.clone()),
        sid: Set(r.sid.clone()),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// What a redemption will issue, recorded in the same statement that redeems the code, so
/// that a replay at any moment afterwards finds it.
pub struct Issuing<'a> {
    pub access_jti: &'a str,
    pub access_expires_at: DateTime<Utc>,
    pub family_id: &'a str,
}

/// Marks the code redeemed if it is unredeemed and unexpired, recording what the redemption
/// will issue, in one statement, and returns it; of N concurrent redemptions exactly one
/// gets `Some`.
pub async fn redeem(
    db: &impl ConnectionTrait,
    code_hash: &[u8],
    now: DateTime<Utc>,
    issuing: &Issuing<'_>,
) -> Result<Option<CodeRecord>, StoreError> {
    let mut updated = code::Entity::update_many()
        .col_expr(code::Column::RedeemedAt, Expr::value(now))
        .col_expr(code::Column::AccessJti, Expr::value(issuing.access_jti))
        .col_expr(code::Column::AccessExpiresAt, Expr::value(issuing.access_expires_at))
        .col_expr(code::Column::FamilyId, Expr::value(issuing.family_id))
        .filter(code::Column::CodeHash.eq(code_hash.to_vec()))
        .filter(code::Column::RedeemedAt.is_null())
        .filter(code::Column::ExpiresAt.gt(now))
        .exec_with_returning(db)
        .await?;
    let Some(m) = updated.pop() else { return Ok(None) };
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
        dpop_jkt: m.dpop_jkt,
        auth_time: m.auth_time,
        created_at: m.created_at,
        expires_at: m.expires_at,
        amr: m.amr,
        sid: m.sid,
    }))
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
) -> Result<Option<Redeemed>, StoreError> {
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

/// Marks a redeemed code replayed, so that a first redemption still issuing starts no
/// refresh family (see `refresh_tokens::start_family`). Waits for such a redemption's
/// family to be stored, if it holds the row.
pub async fn mark_replayed(
    db: &impl ConnectionTrait,
    code_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    code::Entity::update_many()
        .col_expr(code::Column::ReplayedAt, Expr::value(now))
        .filter(code::Column::CodeHash.eq(code_hash.to_vec()))
        .filter(code::Column::RedeemedAt.is_not_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets up to `batch` codes that expired before `before`.
pub async fn purge(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<code::Entity, Vec<u8>>(
        db,
        code::Column::ExpiresAt.lt(before),
        code::Column::CodeHash,
        batch,
    )
    .await
}
