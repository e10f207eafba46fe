//! Back-Channel Logout (docs/REFERENCE.md §3.6): which clients each session signed into
//! (`session_clients`), and the queue of logout tokens still to send (`logout_deliveries`).
//!
//! [`sessions_ending`] is the one rule "a session ends → its clients are told": every
//! deletion of sessions in `store::sessions` calls it first, with the same condition, so no
//! session ends without its notifications queued (a deletion that then fails leaves a
//! notification too many, never one too few: delivery is at least once anyway).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement, Value};

use super::StoreError;

/// Records that the session `session_hash` signed `user_id` into `client_id`, with the
/// session's `sid` (one statement; a second code for the same pair changes nothing).
pub async fn record_client(
    db: &impl ConnectionTrait,
    session_hash: &[u8],
    client_id: &str,
    user_id: &str,
    sid: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "INSERT INTO session_clients (session_hash, client_id, user_id, sid, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_hash, client_id) DO NOTHING",
        [session_hash.to_vec().into(), client_id.into(), user_id.into(), sid.into(), now.into()],
    ))
    .await?;
    Ok(())
}

/// Which sessions are ending: the condition on `sessions` (alias `s`) that the deletion
/// about to run uses.
pub enum Ending<'a> {
    /// One session.
    One(&'a [u8]),
    /// One session, only if it is this user's.
    OneOf { user_id: &'a str, session_hash: &'a [u8] },
    /// Every session of a user, but `keep`.
    AllOf { user_id: &'a str, keep: Option<&'a [u8]> },
    /// These sessions (a purge's batch of expired ones).
    These(&'a [Vec<u8>]),
}

impl Ending<'_> {
    /// The `session_clients` rows (alias `sc`) of the ending sessions, as SQL and values.
    fn condition(&self) -> (String, Vec<Value>) {
        match self {
            Self::One(hash) => ("sc.session_hash = $2".into(), vec![hash.to_vec().into()]),
            Self::OneOf { user_id, session_hash } => (
                "sc.session_hash = $2 AND sc.user_id = $3".into(),
                vec![session_hash.to_vec().into(), (*user_id).into()],
            ),
            Self::AllOf { user_id, keep: None } => {
                ("sc.user_id = $2".into(), vec![(*user_id).into()])
            }
            Self::AllOf { user_id, keep: Some(keep) } => (
                "sc.user_id = $2 AND sc.session_hash <> $3".into(),
                vec![(*user_id).into(), keep.to_vec().into()],
            ),
            Self::These(hashes) => {
                let placeholders: Vec<String> =
                    (0..hashes.len()).map(|i| format!("${}", i + 2)).collect();
                (
                    format!("sc.session_hash IN ({})", placeholders.join(", ")),
                    hashes.iter().map(|h| h.clone().into()).collect(),
                )
            }
        }
    }
}

/// Queues a logout token for every client with a `backchannel_logout_uri` that the ending
/// sessions signed into, and forgets those sessions' clients: two statements, whatever the
/// number of sessions, and none more when a session signed into no client.
pub async fn sessions_ending(
    db: &impl ConnectionTrait,
    ending: Ending<'_>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if matches!(ending, Ending::These(hashes) if hashes.is_empty()) {
        return Ok(());
    }
    let backend = db.get_database_backend();
    let (condition, values) = ending.condition();
    let mut with_now = vec![Value::from(now)];
    with_now.extend(values.iter().cloned());
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        queuing(
            backend,
            &format!(
                "INSERT INTO logout_deliveries (client_id, user_id, sid, attempts, \
                 next_attempt_at, created_at) SELECT sc.client_id, sc.user_id, sc.sid, 0, $1, $1 \
                 FROM session_clients sc JOIN clients c ON c.client_id = sc.client_id \
                 WHERE c.backchannel_logout_uri IS NOT NULL AND {condition}"
            ),
        ),
        with_now.clone(),
    ))
    .await?;
    // The same condition, numbered from $2: `$1` (now) is simply unused here.
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        format!(
            "DELETE FROM session_clients WHERE (session_hash, client_id) IN \
             (SELECT sc.session_hash, sc.client_id FROM session_clients sc \
              WHERE $1 = $1 AND {condition})"
        ),
        with_now,
    ))
    .await?;
    Ok(())
}

/// A grant ended (revoked by its user or an administrator): the client is told for each
/// session of the user that signed into it, or once without `sid` when none is known
/// (Back-Channel Logout §2.4 allows `sub` alone), and those sessions forget the client.
pub async fn grant_ended(
    db: &impl ConnectionTrait,
    user_id: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    let values: Vec<Value> = vec![now.into(), user_id.into(), client_id.into()];
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        queuing(
            backend,
            "INSERT INTO logout_deliveries (client_id, user_id, sid, attempts, next_attempt_at, \
             created_at) SELECT c.client_id, $2, sc.sid, 0, $1, $1 \
             FROM clients c LEFT JOIN session_clients sc \
             ON sc.client_id = c.client_id AND sc.user_id = $2 \
             WHERE c.client_id = $3 AND c.backchannel_logout_uri IS NOT NULL",
        ),
        values.clone(),
    ))
    .await?;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "DELETE FROM session_clients WHERE $1 = $1 AND user_id = $2 AND client_id = $3",
        values,
    ))
    .await?;
    Ok(())
}

/// The payload of the `castellan_changes` notification that wakes the replicas' workers.
pub const QUEUED: &str = "logout_deliveries";

/// `insert` (an `INSERT … SELECT` into `logout_deliveries`) as one statement that, on
/// Postgres, also sends `NOTIFY castellan_changes, 'logout_deliveries'` when it queued
/// anything: delivered at commit (at once outside a transaction), so every replica's worker
/// wakes to a queued delivery instead of polling for it. Inserting nothing notifies nothing.
/// Here rather than in a trigger: every queue insert is in this module, whoever ends the
/// session (the CLI too), and a statement trigger would fire for empty inserts as well.
fn queuing(backend: DbBackend, insert: &str) -> String {
    match backend {
        DbBackend::Postgres => format!(
            "WITH queued AS ({insert} RETURNING 1) SELECT pg_notify('castellan_changes', \
             '{QUEUED}') WHERE EXISTS (SELECT 1 FROM queued)"
        ),
        _ => insert.to_owned(),
    }
}

/// A claimed delivery: whom to tell what.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Delivery {
    pub id: i64,
    pub client_id: String,
    pub user_id: String,
    pub sid: Option<String>,
    /// Including the one just claimed.
    pub attempts: i32,
}

/// Claims up to `limit` due deliveries for this worker: one conditional update moves each
/// one's next attempt to `lease_until` and counts the attempt, so another replica's worker
/// (or this one, next round) takes it only once the lease has passed without an answer
/// (a crash mid-send: the row is sent again, at least once).
pub async fn claim(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<Delivery>, StoreError> {
    let statement = Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE logout_deliveries SET next_attempt_at = $2, attempts = attempts + 1 \
         WHERE id IN (SELECT id FROM logout_deliveries WHERE next_attempt_at <= $1 \
         ORDER BY next_attempt_at LIMIT $3) AND next_attempt_at <= $1 \
         RETURNING id, client_id, user_id, sid, attempts",
        [now.into(), lease_until.into(), i64::try_from(limit).unwrap_or(8).into()],
    );
    Ok(Delivery::find_by_statement(statement).all(db).await?)
}

/// When the earliest queued delivery is due (a retry, or a lease that passes), if any: one
/// read of the `next_attempt_at` index. Only the Postgres worker, which otherwise sleeps until
/// notified, needs it.
pub async fn next_due(db: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>, StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT MIN(next_attempt_at) AS due FROM logout_deliveries",
        ))
        .await?;
    Ok(match row {
        Some(row) => row.try_get("", "due")?,
        None => None,
    })
}

/// A delivery answered 2xx, or given up: forgotten.
pub async fn delete(db: &impl ConnectionTrait, id: i64) -> Result<(), StoreError> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "DELETE FROM logout_deliveries WHERE id = $1",
        [id.into()],
    ))
    .await?;
    Ok(())
}

/// A failed attempt: tried again at `next_attempt_at`. `error` names the failure, never
/// the token.
pub async fn retry_at(
    db: &impl ConnectionTrait,
    id: i64,
    next_attempt_at: DateTime<Utc>,
    error: &str,
) -> Result<(), StoreError> {
    let error: String = error.chars().take(200).collect();
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE logout_deliveries SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
        [id.into(), next_attempt_at.into(), error.into()],
    ))
    .await?;
    Ok(())
}

/// Forgets up to `batch` clients of sessions that ended without a deletion telling this
/// module (none should; a code issued while its session was being deleted could).
pub async fn purge_orphans(db: &impl ConnectionTrait, batch: u64) -> Result<u64, StoreError> {
    let result = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "DELETE FROM session_clients WHERE (session_hash, client_id) IN \
             (SELECT sc.session_hash, sc.client_id FROM session_clients sc \
              WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.id_hash = sc.session_hash) \
              LIMIT $1)",
            [i64::try_from(batch).unwrap_or(1000).into()],
        ))
        .await?;
    Ok(result.rows_affected())
}
