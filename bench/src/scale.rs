//! The data-size axis: a database pre-loaded with what a large deployment holds (at scale 1:
//! a million users, sessions, grants, refresh families and codes, ten million refresh-token
//! rows, a hundred thousand revoked access tokens), so the scenarios can be run against it
//! and compared with the empty database.
//!
//! The rows are generated inside the database (`generate_series` on Postgres, a recursive
//! CTE on SQLite): no row crosses the wire, which is faster than COPY from here. They look like
//! the server's own (random UUIDs, the same timestamp text on SQLite), so indexes grow as
//! they would in production. A tenth of the expiring rows are already expired: the backlog the
//! server's purge must work through while it serves.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde::Serialize;

use crate::report::ScenarioResult;

/// Rows per table at scale 1.
const USERS: f64 = 1_000_000.0;
const REVOKED_ACCESS_TOKENS: f64 = 100_000.0;
/// How often the purge backlog is counted while the loaded server runs.
const BACKLOG_EVERY: Duration = Duration::from_secs(2);
/// Refresh-token rows per family: the family's live token and the used ones before it.
const TOKENS_PER_FAMILY: u64 = 10;
/// What the pre-loaded rows' names start with.
const PREFIX: &str = "scale-";
/// An Argon2id hash of no password anyone knows: pre-loaded users never sign in.
const PASSWORD_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2NhbGVzY2FsZXNjYWxl$\
                             AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// How many rows of each kind to pre-load.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Volume {
    /// Users; each also gets one session, one grant, one refresh family and one code.
    pub users: u64,
    pub refresh_tokens: u64,
    pub revoked_access_tokens: u64,
}

impl Volume {
    /// The volume at `scale` (1.0: 1M users, 10M refresh tokens); at least one of each.
    pub fn at(scale: f64) -> Self {
        let rows = |base: f64| ((base * scale).round() as u64).max(1);
        let users = rows(USERS);
        Self {
            users,
            refresh_tokens: users * TOKENS_PER_FAMILY,
            revoked_access_tokens: rows(REVOKED_ACCESS_TOKENS),
        }
    }
}

/// One table's pre-load: how long it took and what it costs on disk.
#[derive(Debug, Clone, Serialize)]
pub struct TableLoad {
    pub table: &'static str,
    pub rows: u64,
    pub seconds: f64,
    /// Bytes the table and its indexes take per row: Postgres' total relation size divided by
    /// its rows; on SQLite the file's growth while this table was loaded, per row loaded.
    pub bytes_per_row: f64,
}

/// Rows a purge may delete now: the backlog before and after the loaded run.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Backlog {
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub codes: u64,
    pub revocations: u64,
}

impl Backlog {
    pub fn total(&self) -> u64 {
        self.refresh_tokens + self.sessions + self.codes + self.revocations
    }
}

/// A pre-load and what followed it, while the loaded server runs.
pub struct Loaded {
    pub volume: Volume,
    pub tables: Vec<TableLoad>,
    pub load_seconds: f64,
    pub startup_ms: f64,
    pub idle_rss_kib: u64,
    pub backlog_before: Backlog,
    /// What was left when the scenarios were done.
    pub backlog_after: Backlog,
    /// (seconds since the loaded server started, expired rows left), while it purged with
    /// nothing else running (`drain`).
    pub samples: Vec<(f64, u64)>,
}

/// Waits while the loaded server purges the pre-loaded backlog, counting it every few seconds,
/// until a hundredth of it is left (rows keep expiring meanwhile) or `limit` has passed: the
/// purge's throughput with nothing else running, and a steady state for the scenarios after.
/// Samples are (seconds since `started`, expired rows left); the first is `before` at 0.
pub async fn drain(
    url: &str,
    started: Instant,
    before: u64,
    limit: Duration,
) -> anyhow::Result<Vec<(f64, u64)>> {
    let mut samples = vec![(0.0, before)];
    let mut left = before;
    while left > before / 100 && started.elapsed() < limit {
        tokio::time::sleep(BACKLOG_EVERY).await;
        left = backlog(url).await?.total();
        samples.push((started.elapsed().as_secs_f64(), left));
    }
    Ok(samples)
}

/// Rows purged per second from the first sample to the last, and whether the backlog was
/// (all but a hundredth) gone by then.
fn purge_rate(samples: &[(f64, u64)]) -> (f64, bool) {
    let (Some(&(t0, first)), Some(&(t1, last))) = (samples.first(), samples.last()) else {
        return (0.0, false);
    };
    let rate = if t1 > t0 { first.saturating_sub(last) as f64 / (t1 - t0) } else { 0.0 };
    (rate, last <= first / 100)
}

/// Rows that will expire, written per unit of a scenario: a rotation writes one refresh token;
/// a browser flow a session, a code, a family and its first token.
const ROWS_PER_UNIT: [(&str, f64); 2] = [("refresh", 1.0), ("authorization_code", 4.0)];

impl Loaded {
    pub fn into_report(self, scale: f64, scenarios: Vec<ScenarioResult>) -> ScaleReport {
        let issued_per_second = scenarios
            .iter()
            .filter_map(|s| {
                let (_, rows) = ROWS_PER_UNIT.iter().find(|(name, _)| *name == s.name)?;
                Some(s.requests_per_second * rows)
            })
            .fold(0.0, f64::max);
        let (purged_per_second, drained) = purge_rate(&self.samples);
        let purge_seconds = self.samples.last().map_or(0.0, |&(t, _)| t);
        ScaleReport {
            scale,
            volume: self.volume,
            tables: self.tables,
            load_seconds: self.load_seconds,
            startup_ms: self.startup_ms,
            idle_rss_kib: self.idle_rss_kib,
            backlog_before: self.backlog_before,
            backlog_after: self.backlog_after,
            purge_seconds,
            drained,
            purged_per_second,
            purge_samples: self.samples,
            issued_per_second,
            scenarios,
        }
    }
}

/// The whole data-size comparison, for the report.
#[derive(Debug, Serialize)]
pub struct ScaleReport {
    pub scale: f64,
    pub volume: Volume,
    pub tables: Vec<TableLoad>,
    pub load_seconds: f64,
    /// Start to ready of a server on the loaded database (revocations read into memory).
    pub startup_ms: f64,
    pub idle_rss_kib: u64,
    /// Expired rows when the loaded server started, and when its scenarios were done.
    pub backlog_before: Backlog,
    pub backlog_after: Backlog,
    /// Seconds the server purged with nothing else running before the scenarios began.
    pub purge_seconds: f64,
    /// Whether all but a hundredth of the backlog was gone by then.
    pub drained: bool,
    /// Rows the server's own purge deleted per second meanwhile.
    pub purged_per_second: f64,
    /// (seconds since the loaded server started, expired rows left) while it purged.
    pub purge_samples: Vec<(f64, u64)>,
    /// The most rows per second any scenario wrote (refresh: one token row per rotation).
    pub issued_per_second: f64,
    pub scenarios: Vec<ScenarioResult>,
}

impl ScaleReport {
    /// Purge throughput over the benchmark's top issuance rate (the target is at least 2).
    pub fn purge_ratio(&self) -> Option<f64> {
        (self.issued_per_second > 0.0).then(|| self.purged_per_second / self.issued_per_second)
    }

    /// The section of the Markdown report: loaded against empty, scenario by scenario.
    pub fn markdown(&self, empty: &[ScenarioResult]) -> String {
        let mut out = String::new();
        let v = &self.volume;
        let _ = writeln!(
            out,
            "\n### At scale {}: {} users, sessions, grants, families and codes; {} refresh-token \
             rows; {} revoked access tokens\n",
            self.scale, v.users, v.refresh_tokens, v.revoked_access_tokens
        );
        let _ = writeln!(
            out,
            "Loaded in {:.0} s. Start to ready on the loaded database {:.0} ms, idle RSS {:.1} MiB.\n",
            self.load_seconds,
            self.startup_ms,
            self.idle_rss_kib as f64 / 1024.0
        );
        out.push_str(
            "| scenario | req/s empty | req/s loaded | p50 ms empty | p50 ms loaded | p99 ms empty | p99 ms loaded | p99 loaded ÷ empty |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for loaded in &self.scenarios {
            let Some(base) = empty.iter().find(|e| e.name == loaded.name) else { continue };
            if loaded.requests == 0 || base.requests == 0 {
                continue;
            }
            let _ = writeln!(
                out,
                "| {} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                loaded.name,
                base.requests_per_second,
                loaded.requests_per_second,
                base.p50_ms,
                loaded.p50_ms,
                base.p99_ms,
                loaded.p99_ms,
                ratio(loaded.p99_ms, base.p99_ms),
            );
        }
        out.push_str("\n| table (with its indexes) | rows loaded | load s | bytes / row |\n|---|---:|---:|---:|\n");
        for t in &self.tables {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.0} |",
                t.table, t.rows, t.seconds, t.bytes_per_row
            );
        }
        let before = self.backlog_before;
        let left = self.purge_samples.last().map_or(0, |&(_, left)| left);
        let _ = writeln!(
            out,
            "\nPurge: {} expired rows when the loaded server started ({} refresh tokens, {} \
             sessions, {} codes, {} revocations); the server purged them with nothing else \
             running, {left} left after {:.0} s{}: {:.0} rows/s, against {:.0} rows/s issued at \
             most by the scenarios ({}). The scenarios ran after that; {} expired rows were \
             left when they were done.",
            before.total(),
            before.refresh_tokens,
            before.sessions,
            before.codes,
            before.revocations,
            self.purge_seconds,
            if self.drained { "" } else { " (stopped waiting)" },
            self.purged_per_second,
            self.issued_per_second,
            self.purge_ratio().map_or_else(|| "no issuance".to_owned(), |r| format!("{r:.1}×")),
            self.backlog_after.total(),
        );
        out
    }
}

fn ratio(loaded: f64, empty: f64) -> String {
    if empty > 0.0 { format!("{:.2}", loaded / empty) } else { "–".to_owned() }
}

/// Pre-loads `volume` into the (stopped) server's database. The grants and families belong to
/// `client_id`, an existing client. Ends with the tables vacuumed and their statistics up to
/// date, as an operator's autovacuum would have them.
pub async fn preload(url: &str, volume: Volume, client_id: &str) -> anyhow::Result<Vec<TableLoad>> {
    let db = Database::connect(url).await.context("connecting to the bench database")?;
    let sql = Sql(db.get_database_backend());
    if sql.0 == DbBackend::Postgres {
        // A bulk load, not a commit per request: nothing here must survive a crash.
        db.execute_unprepared("SET synchronous_commit = off").await?;
    }
    let mut tables = Vec::new();
    for (table, statement) in sql.statements(volume, client_id) {
        let pages_before = sql.file_bytes(&db).await?;
        let started = Instant::now();
        let rows = db
            .execute_unprepared(&statement)
            .await
            .with_context(|| format!("pre-loading {table}"))?
            .rows_affected();
        let seconds = started.elapsed().as_secs_f64();
        let bytes = match sql.0 {
            DbBackend::Postgres => {
                let total = sql
                    .scalar(&db, &format!("SELECT pg_total_relation_size('{table}')::bigint"))
                    .await?;
                let all = sql.scalar(&db, &format!("SELECT count(*) FROM {table}")).await?;
                total as f64 / all.max(1) as f64
            }
            _ => (sql.file_bytes(&db).await? - pages_before) as f64 / rows.max(1) as f64,
        };
        eprintln!("pre-loaded {rows} rows into {table} in {seconds:.1} s ({bytes:.0} bytes/row)");
        tables.push(TableLoad { table, rows, seconds, bytes_per_row: bytes });
    }
    // A database that grew over months has been vacuumed as it grew: without this, Postgres'
    // insert-triggered autovacuum of ten million fresh rows would run through the scenarios.
    let maintenance = if sql.0 == DbBackend::Postgres { "VACUUM (ANALYZE)" } else { "ANALYZE" };
    let started = Instant::now();
    db.execute_unprepared(maintenance).await?;
    eprintln!("{maintenance} in {:.0} s", started.elapsed().as_secs_f64());
    db.close().await?;
    Ok(tables)
}

/// The rows a purge may delete right now, by the server's own rules (codes a day after expiry).
pub async fn backlog(url: &str) -> anyhow::Result<Backlog> {
    let db = Database::connect(url).await.context("connecting to the bench database")?;
    let sql = Sql(db.get_database_backend());
    let (now, day_ago) = (sql.now_plus("0"), sql.now_plus("-86400"));
    let count = |table: &str, column: &str, before: &str| {
        format!("SELECT count(*) FROM {table} WHERE {column} < {before}")
    };
    let backlog = Backlog {
        refresh_tokens: sql.scalar(&db, &count("refresh_tokens", "expires_at", &now)).await?,
        sessions: sql.scalar(&db, &count("sessions", "expires_at", &now)).await?,
        codes: sql.scalar(&db, &count("authorization_codes", "expires_at", &day_ago)).await?,
        revocations: sql.scalar(&db, &count("revocations", "expires_at", &now)).await?,
    };
    db.close().await?;
    Ok(backlog)
}

/// The client the pre-loaded grants belong to: the first one with a redirect URI, or the first
/// (on a database that has only its first admin client, that one).
pub async fn some_web_client(url: &str) -> anyhow::Result<String> {
    let db = Database::connect(url).await.context("connecting to the bench database")?;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT client_id FROM clients ORDER BY redirect_uris = '[]', created_at LIMIT 1",
        ))
        .await?
        .context("no client with a redirect URI to pre-load grants for")?;
    let id = row.try_get_by_index::<String>(0)?;
    db.close().await?;
    Ok(id)
}

/// The SQL dialect of one backend.
#[derive(Clone, Copy)]
struct Sql(DbBackend);

impl Sql {
    /// (table, statement) in load order: parents before the rows that point at them.
    fn statements(self, v: Volume, client: &str) -> Vec<(&'static str, String)> {
        let (uuid, now, bytes) = (self.uuid(), self.now_plus("0"), self.random_bytes());
        // A tenth already expired (up to a day ago), the rest expiring within 30 days.
        let expiring = self.now_plus(&format!(
            "CASE WHEN {r} % 10 = 0 THEN -1 - {r} % 86400 ELSE 1 + {r} % 2592000 END",
            r = self.random_int()
        ));
        let in_scale = format!("(SELECT id FROM users WHERE username LIKE '{PREFIX}%')");
        let a_day_ago = self.now_plus(&format!("-{} % 86400", self.random_int()));
        vec![
            (
                "users",
                format!(
                    "INSERT INTO users (id, username, password_hash, email, email_verified, \
                     name, disabled, admin, created_at, updated_at) {}",
                    self.series(
                        v.users,
                        &format!(
                            "{uuid}, '{PREFIX}' || i, '{PASSWORD_HASH}', '{PREFIX}' || i || \
                             '@example.com', true, 'Scale User ' || i, false, false, {now}, {now}"
                        )
                    )
                ),
            ),
            (
                "sessions",
                format!(
                    "INSERT INTO sessions (id_hash, user_id, auth_time, last_seen_at, expires_at) \
                     SELECT {bytes}, id, {a_day_ago}, {now}, {expiring} FROM users \
                     WHERE id IN {in_scale}"
                ),
            ),
            (
                "grants",
                format!(
                    "INSERT INTO grants (id, user_id, client_id, scope, created_at, updated_at) \
                     SELECT {uuid}, id, '{client}', 'openid offline_access', {now}, {now} \
                     FROM users WHERE id IN {in_scale}"
                ),
            ),
            (
                "refresh_families",
                format!(
                    "INSERT INTO refresh_families (id, grant_id, client_id, user_id, scope, \
                     auth_time, created_at, absolute_expires_at, revoked_at) \
                     SELECT {uuid}, id, client_id, user_id, scope, {a_day_ago}, {now}, {}, NULL \
                     FROM grants WHERE user_id IN {in_scale}",
                    self.now_plus("7776000"),
                ),
            ),
            (
                "refresh_tokens",
                format!(
                    "INSERT INTO refresh_tokens (jti, family_id, status, used_at, created_at, \
                     expires_at) {}",
                    self.cross(
                        TOKENS_PER_FAMILY,
                        &format!(
                            "{uuid}, f.id, CASE WHEN i = {TOKENS_PER_FAMILY} THEN 'active' \
                             ELSE 'used' END, CASE WHEN i = {TOKENS_PER_FAMILY} THEN NULL \
                             ELSE {now} END, {now}, {expiring}"
                        ),
                        &format!("refresh_families f WHERE f.user_id IN {in_scale}"),
                    )
                ),
            ),
            (
                "authorization_codes",
                format!(
                    "INSERT INTO authorization_codes (code_hash, client_id, user_id, grant_id, \
                     redirect_uri, redirect_uri_sent, code_challenge, scope, nonce, auth_time, \
                     created_at, expires_at, redeemed_at, family_id, access_jti, \
                     access_expires_at, replayed_at) \
                     SELECT {bytes}, client_id, user_id, id, 'https://app.example/callback', \
                     true, 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', scope, NULL, {now}, \
                     {now}, {}, NULL, NULL, NULL, NULL, NULL FROM grants WHERE user_id IN {in_scale}",
                    self.now_plus(&format!(
                        "CASE WHEN {r} % 10 = 0 THEN -86401 - {r} % 86400 ELSE -{r} % 86400 END",
                        r = self.random_int()
                    )),
                ),
            ),
            (
                "revocations",
                format!(
                    "INSERT INTO revocations (kind, value, not_before, expires_at) {}",
                    self.series(
                        v.revoked_access_tokens,
                        &format!("'jti', {uuid}, NULL, {expiring}")
                    )
                ),
            ),
        ]
    }

    /// `SELECT <columns> FROM` the numbers 1..=n as `i`.
    fn series(self, n: u64, columns: &str) -> String {
        match self.0 {
            DbBackend::Postgres => {
                format!("SELECT {columns} FROM generate_series(1, {n}) AS s(i)")
            }
            _ => format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
                 SELECT {columns} FROM s"
            ),
        }
    }

    /// `SELECT <columns> FROM <from>` with every row repeated for `i` in 1..=n.
    fn cross(self, n: u64, columns: &str, from: &str) -> String {
        let (table, filter) = from.split_once(" WHERE ").unwrap_or((from, "TRUE"));
        match self.0 {
            DbBackend::Postgres => format!(
                "SELECT {columns} FROM {table} CROSS JOIN generate_series(1, {n}) AS s(i) \
                 WHERE {filter}"
            ),
            _ => format!(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
                 SELECT {columns} FROM {table} CROSS JOIN s WHERE {filter}"
            ),
        }
    }

    /// A random version 4 UUID as text.
    fn uuid(self) -> &'static str {
        match self.0 {
            DbBackend::Postgres => "gen_random_uuid()::text",
            _ => {
                "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || \
                 substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(2)) || '-' || \
                 hex(randomblob(6)))"
            }
        }
    }

    /// A non-negative random integer, new for each row.
    fn random_int(self) -> &'static str {
        match self.0 {
            DbBackend::Postgres => "(floor(random() * 2147483647)::bigint)",
            _ => "(abs(random() % 2147483647))",
        }
    }

    /// 32 random bytes: a session id's or a code's hash.
    fn random_bytes(self) -> &'static str {
        match self.0 {
            DbBackend::Postgres => "sha256(gen_random_uuid()::text::bytea)",
            _ => "randomblob(32)",
        }
    }

    /// Now plus `seconds` (an SQL expression), as the server stores a timestamp.
    fn now_plus(self, seconds: &str) -> String {
        match self.0 {
            DbBackend::Postgres => format!("(now() + make_interval(secs => ({seconds})))"),
            _ => format!("strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now', ({seconds}) || ' seconds')"),
        }
    }

    /// The size of the SQLite file (pages × page size); 0 on Postgres (sizes are per table).
    async fn file_bytes(self, db: &DatabaseConnection) -> anyhow::Result<u64> {
        if self.0 == DbBackend::Postgres {
            return Ok(0);
        }
        let pages = self
            .scalar(
                db,
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .await?;
        Ok(pages)
    }

    async fn scalar(self, db: &DatabaseConnection, sql: &str) -> anyhow::Result<u64> {
        let row = db
            .query_one_raw(Statement::from_string(self.0, sql))
            .await?
            .with_context(|| format!("no row from {sql}"))?;
        Ok(u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_rate_stops_at_the_sample_where_the_backlog_was_gone() {
        assert_eq!(purge_rate(&[(0.0, 1000), (2.0, 600), (4.0, 8)]), (248.0, true));
        assert_eq!(purge_rate(&[(0.0, 1000), (2.0, 600), (4.0, 200)]), (200.0, false));
        assert_eq!(purge_rate(&[(0.0, 0)]), (0.0, true));
    }

    #[test]
    fn scale_one_is_the_issue_s_deployment_and_a_tiny_scale_keeps_one_of_each() {
        let v = Volume::at(1.0);
        assert_eq!(
            (v.users, v.refresh_tokens, v.revoked_access_tokens),
            (1_000_000, 10_000_000, 100_000)
        );
        let tiny = Volume::at(0.000_000_1);
        assert_eq!((tiny.users, tiny.refresh_tokens, tiny.revoked_access_tokens), (1, 10, 1));
    }
}
