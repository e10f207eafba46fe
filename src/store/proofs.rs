//! The DPoP proof replay guard (RFC 9449 §11.1): one row per accepted proof while it could be
//! presented again.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::used_dpop_proof as proof;
use sea_orm::{ColumnTrait, ConnectionTrait, FromQueryResult, Statement, Value};

use super::StoreError;

#[derive(FromQueryResult)]
struct Recorded {
    jkt: String,
    jti: String,
}

/// Records proof ids (`jkt`, `jti`, when to forget them) in one statement; returns those that
/// were new. An id recorded before (a replay, on any replica) is not among them; of
/// concurrent statements recording the same id exactly one returns it. `rows` holds no id
/// twice.
pub async fn record(
    db: &impl ConnectionTrait,
    rows: &[(&str, &str, DateTime<Utc>)],
) -> Result<HashSet<(String, String)>, StoreError> {
    if rows.is_empty() {
        return Ok(HashSet::new());
    }
    let mut sql = String::from("INSERT INTO used_dpop_proofs (jkt, jti, expires_at) VALUES ");
    let mut values: Vec<Value> = Vec::with_capacity(rows.len() * 3);
    for (i, (jkt, jti, expires_at)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        let n = i * 3;
        sql.push_str(&format!("(${}, ${}, ${})", n + 1, n + 2, n + 3));
        values.extend([(*jkt).into(), (*jti).into(), (*expires_at).into()]);
    }
    sql.push_str(" ON CONFLICT (jkt, jti) DO NOTHING RETURNING jkt, jti");
    let statement = Statement::from_sql_and_values(db.get_database_backend(), sql, values);
    let recorded = Recorded::find_by_statement(statement).all(db).await?;
    Ok(recorded.into_iter().map(|r| (r.jkt, r.jti)).collect())
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
