//! The DPoP proof replay guard (RFC 9449 §11.1): one row per accepted proof while it could be
//! presented again.

use chrono::{DateTime, Utc};
use entity::used_dpop_proof as proof;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait};

use super::StoreError;

/// Records a proof's `jti` under its key's thumbprint; `false` if it was already recorded (a
/// replay). One statement; of concurrent presentations on any replicas exactly one wins.
pub async fn record(
    db: &impl ConnectionTrait,
    jkt: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = proof::ActiveModel {
        jkt: Set(jkt.to_owned()),
        jti: Set(jti.to_owned()),
        expires_at: Set(expires_at),
    };
    let inserted = proof::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([proof::Column::Jkt, proof::Column::Jti]).do_nothing().to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(inserted == 1)
}

/// Forgets up to `batch` proofs that can no longer be accepted.
pub async fn purge(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<proof::Entity, String>(
        db,
        proof::Column::ExpiresAt.lt(now),
        proof::Column::Jti,
        batch,
    )
    .await
}
