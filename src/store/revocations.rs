//! Revoked access-token ids and token families, until they expire.

use chrono::{DateTime, Utc};
use entity::revocation;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
};

pub const JTI: &str = "jti";
pub const FAMILY: &str = "family";

/// Records a revocation (idempotent).
pub async fn revoke(
    db: &impl ConnectionTrait,
    kind: &str,
    value: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = revocation::ActiveModel {
        kind: Set(kind.to_owned()),
        value: Set(value.to_owned()),
        expires_at: Set(expires_at),
    };
    revocation::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([revocation::Column::Kind, revocation::Column::Value])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Whether any of `values` of `kind` is revoked.
pub async fn any_revoked(
    db: &impl ConnectionTrait,
    kind: &str,
    values: &[&str],
) -> Result<bool, DbErr> {
    if values.is_empty() {
        return Ok(false);
    }
    let found = revocation::Entity::find()
        .filter(revocation::Column::Kind.eq(kind))
        .filter(revocation::Column::Value.is_in(values.iter().map(|v| (*v).to_owned())))
        .one(db)
        .await?;
    Ok(found.is_some())
}

/// Forgets up to `batch` revocations of things that have expired anyway.
pub async fn purge(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let expired: Vec<(String, String)> = revocation::Entity::find()
        .select_only()
        .column(revocation::Column::Kind)
        .column(revocation::Column::Value)
        .filter(revocation::Column::ExpiresAt.lt(now))
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    let mut purged = 0;
    for kind in [JTI, FAMILY] {
        let values: Vec<String> =
            expired.iter().filter(|(k, _)| k == kind).map(|(_, v)| v.clone()).collect();
        if !values.is_empty() {
            purged += revocation::Entity::delete_many()
                .filter(revocation::Column::Kind.eq(kind))
                .filter(revocation::Column::Value.is_in(values))
                .exec(db)
                .await?
                .rows_affected;
        }
    }
    Ok(purged)
}
