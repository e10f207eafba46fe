//! Pushed authorization requests (RFC 9126): stored by the hash of their `request_uri`, read
//! while the user signs in and consents, and consumed by the approval that issues the code.

use chrono::{DateTime, Utc};
use entity::pushed_request as pushed;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StoreError;

/// A pushed request: its client and its parameters, in order.
#[derive(Debug, Clone)]
pub struct PushedRecord {
    pub client_id: String,
    pub parameters: Vec<(String, String)>,
    pub created_at: DateTime<Utc>,
}

pub async fn insert(
    db: &impl ConnectionTrait,
    uri_hash: &[u8],
    record: &PushedRecord,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let parameters = serde_json::to_string(&record.parameters).map_err(anyhow::Error::from)?;
    pushed::Entity::insert(pushed::ActiveModel {
        uri_hash: Set(uri_hash.to_vec()),
        client_id: Set(record.client_id.clone()),
        parameters: Set(parameters),
        created_at: Set(record.created_at),
        expires_at: Set(expires_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The unexpired, unused request `uri_hash` stands for.
pub async fn find(
    db: &impl ConnectionTrait,
    uri_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<PushedRecord>, StoreError> {
    let Some(row) = pushed::Entity::find_by_id(uri_hash.to_vec())
        .filter(pushed::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let parameters = serde_json::from_str(&row.parameters)
        .map_err(|_| StoreError::corrupt("pushed request parameters"))?;
    Ok(Some(PushedRecord { client_id: row.client_id, parameters, created_at: row.created_at }))
}

/// Uses the request up (RFC 9126 §4: one authorization per pushed request): `false` when it
/// was used, expired or is another client's. One statement, so of concurrent approvals
/// exactly one wins.
pub async fn consume(
    db: &impl ConnectionTrait,
    uri_hash: &[u8],
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let deleted = pushed::Entity::delete_many()
        .filter(pushed::Column::UriHash.eq(uri_hash.to_vec()))
        .filter(pushed::Column::ClientId.eq(client_id))
        .filter(pushed::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Forgets up to `batch` requests that expired unused.
pub async fn purge(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<pushed::Entity, Vec<u8>>(
        db,
        pushed::Column::ExpiresAt.lt(now),
        pushed::Column::UriHash,
        batch,
    )
    .await
}
