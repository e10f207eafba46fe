//! Storage: the only module that imports `entity`; connects, migrates and checks the database.

pub mod attempts;
pub mod backchannel;
pub mod bootstrap;
pub mod clients;
pub mod codes;
pub mod device_authorizations;
pub mod events;
pub mod grants;
pub mod keys;
pub mod overview;
pub mod passkeys;
pub mod proofs;
pub mod purge;
pub mod pushed;
pub mod refresh_tokens;
pub mod registration;
pub mod revocations;
pub mod scopes;
pub mod sessions;
pub mod token_hours;
pub mod totp;
pub mod upstream;
pub mod users;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QuerySelect,
};
use secrecy::ExposeSecret;

use crate::config::Settings;

pub use sea_orm::DatabaseConnection as Db;

/// Why a storage operation failed, in the terms the surfaces answer in: an unreachable or
/// busy database (503), a change refused by a constraint (a conflict), or anything else.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(DbErr),
    #[error("constraint violated: {0}")]
    Conflict(DbErr),
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable(error)
        } else if is_unique_violation(&error) || is_foreign_key_violation(&error) {
            Self::Conflict(error)
        } else {
            Self::Other(error.into())
        }
    }
}

impl StoreError {
    /// A stored value that cannot be what it claims (a bug or tampering, never user input).
    /// Shared state this replica could not read for too long: treated as the database being
    /// unavailable (503), never as an answer.
    pub fn stale(what: &str) -> Self {
        Self::Unavailable(DbErr::Custom(format!("{what} is stale here")))
    }

    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Other(anyhow::anyhow!("stored data is malformed: {what}"))
    }
}

impl From<anyhow::Error> for StoreError {
    fn from(error: anyhow::Error) -> Self {
        Self::Other(error)
    }
}

/// An arbitrary constant naming the advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x4361_7374_656c_6c61;

/// Opens the connection pool the server uses, with bounded waits everywhere.
pub async fn connect(settings: &Settings) -> Result<DatabaseConnection, DbErr> {
    let mut options = options(settings, settings.db_timeout);
    options
        .max_connections(settings.db_max_connections)
        .min_connections(1)
        .acquire_timeout(settings.db_timeout)
        // A pooled connection that has sat idle is checked before use, so a pool
        // whose database restarted recovers without a restart of ours.
        .test_before_acquire(false)
        .test_before_acquire_if_idle_for(Duration::from_secs(1));
    if settings.is_postgres() {
        options.statement_timeout(settings.db_timeout * 2);
    }
    open(options, Duration::from_secs(30)).await
}

/// Connects, waiting out a SQLite database that another process holds locked (its connection
/// pragmas, e.g. switching to WAL, fail at once rather than wait while a replica migrates).
async fn open(options: ConnectOptions, patience: Duration) -> Result<DatabaseConnection, DbErr> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match Database::connect(options.clone()).await {
            Err(e) if is_unavailable(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
}

fn options(settings: &Settings, busy_timeout: Duration) -> ConnectOptions {
    let mut options = ConnectOptions::new(settings.database_url.expose_secret().to_owned());
    options.connect_timeout(settings.db_timeout).sqlx_logging(false).map_sqlx_sqlite_opts(
        move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
        },
    );
    options
}

/// Applies pending migrations on one dedicated connection, holding a lock so that replicas
/// starting together on an empty database take turns: a Postgres advisory lock, or on
/// SQLite an exclusive transaction (which also makes the migration run atomic).
pub async fn migrate(settings: &Settings) -> Result<(), DbErr> {
    const WAIT: Duration = Duration::from_secs(60);
    let mut options = options(settings, WAIT);
    options.max_connections(1).min_connections(1).acquire_timeout(WAIT);
    let connection = open(options, WAIT).await?;
    let (lock, unlock, abandon) = if settings.is_postgres() {
        let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
        (format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"), unlock.clone(), unlock)
    } else {
        ("BEGIN EXCLUSIVE".to_owned(), "COMMIT".to_owned(), "ROLLBACK".to_owned())
    };
    connection.execute_unprepared(&lock).await?;
    let applied = Migrator::up(&connection, None).await;
    let released = match &applied {
        Ok(()) => connection.execute_unprepared(&unlock).await.map(|_| ()),
        Err(_) => connection.execute_unprepared(&abandon).await.map(|_| ()),
    };
    let _ = connection.close().await;
    applied.and(released)
}

/// Why the database cannot serve requests right now.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("{0} migration(s) pending")]
    MigrationsPending(usize),
    #[error("database unavailable: {0}")]
    Unavailable(#[from] DbErr),
    #[error("database timed out")]
    TimedOut,
}

/// Readiness: the schema is current and the database takes writes (a no-op write, so a
/// read-only standby or a database locked by another writer counts as not ready).
pub async fn check_ready(db: &DatabaseConnection, timeout: Duration) -> Result<(), NotReady> {
    let check = async {
        let pending = Migrator::get_pending_migrations_read_only(db).await?.len();
        if pending > 0 {
            return Err(NotReady::MigrationsPending(pending));
        }
        db.execute_unprepared("UPDATE seaql_migrations SET version = version WHERE 1 = 0").await?;
        Ok(())
    };
    tokio::time::timeout(timeout, check).await.map_err(|_| NotReady::TimedOut)?
}

/// Deletes up to `batch` rows of `E` matching `expired`, found by their `key` column first so
/// that no statement holds the table long: the one shape of every purge. The delete repeats
/// the condition, so a key shared with a live row (a composite key's part) spares that row.
pub(crate) async fn purge_where<E, K>(
    db: &impl ConnectionTrait,
    expired: sea_orm::sea_query::SimpleExpr,
    key: E::Column,
    batch: u64,
) -> Result<u64, StoreError>
where
    E: EntityTrait,
    K: sea_orm::TryGetableMany + Into<sea_orm::Value> + Send + Sync + 'static,
{
    let keys: Vec<K> = E::find()
        .select_only()
        .column(key)
        .filter(expired.clone())
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(E::delete_many().filter(key.is_in(keys)).filter(expired).exec(db).await?.rows_affected)
}

/// `column` contains `term`, ASCII case ignored on both databases, with `%`, `_` and `\` in
/// `term` taken literally: the console's searches.
pub(crate) fn contains_ignoring_case(
    column: impl sea_orm::sea_query::IntoColumnRef,
    term: &str,
) -> sea_orm::sea_query::Expr {
    use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr};
    let escaped: String = term
        .to_ascii_lowercase()
        .chars()
        .flat_map(|c| match c {
            '\\' | '%' | '_' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Expr::expr(Func::lower(Expr::col(column)))
        .like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// Whether the error is a unique-constraint violation, on either backend.
pub(crate) fn is_unique_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(_)))
}

/// Whether the error is a foreign-key violation, on either backend. SQLite reports an
/// `ON DELETE RESTRICT` refusal as a trigger constraint (extended code 1811).
pub(crate) fn is_foreign_key_violation(error: &DbErr) -> bool {
    matches!(error.sql_err(), Some(sea_orm::SqlErr::ForeignKeyConstraintViolation(_)))
        || database_code(error).as_deref() == Some("1811")
}

/// The database's own error code, if the error came from the database.
fn database_code(error: &DbErr) -> Option<String> {
    use sea_orm::RuntimeErr;
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            e.as_database_error().and_then(|d| d.code()).map(|c| c.into_owned())
        }
        _ => None,
    }
}

/// Whether the error means the database could not be reached (503, not 500): no pooled
/// connection in time, the connection failed underneath a statement, the database is
/// busy (SQLite), timed out a statement or is shutting down (Postgres).
pub fn is_unavailable(error: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            matches!(
                e.as_ref(),
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_)
            ) || e.as_database_error().is_some_and(|d| {
                let code = d.code().unwrap_or_default();
                if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // BUSY or LOCKED, whatever the extended code (& 0xff: the primary one).
                    code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6))
                } else {
                    // Postgres: statement timeout, shutting down, starting up.
                    matches!(code.as_ref(), "57014" | "57P01" | "57P03")
                }
            })
        }
        _ => false,
    }
}
