//! The revocation log: one row per revocation (and per client change, so that replicas drop
//! their cached copy), numbered by `seq`, kept until nothing it revokes can still be alive.
//! Replicas read it whole at start and then follow it by `seq`.

use chrono::{DateTime, Utc};
use entity::revocation;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use super::StoreError;

/// What a log row revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// One access token, by `jti`.
    AccessToken,
    /// A refresh-token family and every access token issued from it.
    Family,
    /// A grant, and every token issued under it.
    Grant,
    /// A client, and every token issued to it.
    Client,
    /// A user's tokens issued at or before `not_before`.
    User,
    /// Not a revocation: a client's metadata or secrets changed, so cached copies must go.
    ClientChanged,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::AccessToken => "jti",
            Self::Family => "family",
            Self::Grant => "grant",
            Self::Client => "client",
            Self::User => "user",
            Self::ClientChanged => "client-changed",
        }
    }

    fn parse(value: &str) -> Option<Self> {
        [
            Self::AccessToken,
            Self::Family,
            Self::Grant,
            Self::Client,
            Self::User,
            Self::ClientChanged,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }
}

/// One revocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: i64,
    pub kind: Kind,
    pub value: String,
    pub not_before: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

/// Appends a revocation to the log; returns its `seq`.
pub async fn append(
    db: &impl ConnectionTrait,
    kind: Kind,
    value: &str,
    not_before: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let row = revocation::ActiveModel {
        seq: NotSet,
        kind: Set(kind.as_str().to_owned()),
        value: Set(value.to_owned()),
        not_before: Set(not_before),
        expires_at: Set(expires_at),
    };
    Ok(revocation::Entity::insert(row).exec(db).await?.last_insert_id)
}

/// Up to `limit` entries after `seq`, in order, unexpired at `now`.
pub async fn after(
    db: &impl ConnectionTrait,
    seq: i64,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Entry>, StoreError> {
    let rows = revocation::Entity::find()
        .filter(revocation::Column::Seq.gt(seq))
        .filter(revocation::Column::ExpiresAt.gt(now))
        .order_by_asc(revocation::Column::Seq)
        .limit(limit)
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(entry).collect())
}

/// The entries among `seqs` (numbers skipped earlier, which a slow transaction may have
/// committed since).
pub async fn among(db: &impl ConnectionTrait, seqs: &[i64]) -> Result<Vec<Entry>, StoreError> {
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let rows = revocation::Entity::find()
        .filter(revocation::Column::Seq.is_in(seqs.iter().copied()))
        .all(db)
        .await?;
    Ok(rows.into_iter().filter_map(entry).collect())
}

/// The highest `seq` in the log (0 when empty).
pub async fn last_seq(db: &impl ConnectionTrait) -> Result<i64, StoreError> {
    let last: Option<i64> = revocation::Entity::find()
        .select_only()
        .column(revocation::Column::Seq)
        .order_by_desc(revocation::Column::Seq)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(last.unwrap_or(0))
}

fn entry(m: revocation::Model) -> Option<Entry> {
    Some(Entry {
        seq: m.seq,
        kind: Kind::parse(&m.kind)?,
        value: m.value,
        not_before: m.not_before,
        expires_at: m.expires_at,
    })
}

/// Forgets up to `batch` revocations of things that have expired anyway.
pub async fn purge(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<revocation::Entity, i64>(
        db,
        revocation::Column::ExpiresAt.lt(now),
        revocation::Column::Seq,
        batch,
    )
    .await
}
