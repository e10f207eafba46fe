//! A fresh database per run: a SQLite file in the run's own folder, or a new
//! `bench_<uuid>` database on Postgres, dropped (with its folder) when the run ends.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The database backend to benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A temporary folder (keys, SQLite file, server log), deleted when dropped.
pub struct WorkDir(PathBuf);

impl WorkDir {
    pub fn create() -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("castellan-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The run's database; a Postgres one is dropped when this is (also after an error).
pub struct BenchDatabase {
    pub url: String,
    postgres: Option<(String, String)>,
}

impl BenchDatabase {
    /// The pids of the Postgres backends serving this database right now (none for SQLite),
    /// so their CPU time can be counted too when Postgres runs on this machine.
    pub fn backend_pids(&self) -> Vec<u32> {
        let Some((admin_url, name)) = &self.postgres else { return Vec::new() };
        let sql = format!("SELECT pid FROM pg_stat_activity WHERE datname = '{name}'");
        psql(admin_url, &sql)
            .map(|out| out.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }
}

impl BenchDatabase {
    /// `postgres_url` names a database to connect to for `CREATE`/`DROP DATABASE`.
    pub fn create(backend: Backend, dir: &WorkDir, postgres_url: &str) -> anyhow::Result<Self> {
        match backend {
            Backend::Sqlite => {
                let file = dir.path().join("castellan.db");
                Ok(Self { url: format!("sqlite://{}?mode=rwc", file.display()), postgres: None })
            }
            Backend::Postgres => {
                let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
                psql(postgres_url, &format!("CREATE DATABASE \"{name}\""))?;
                let url = with_database(postgres_url, &name)?;
                Ok(Self { url, postgres: Some((postgres_url.to_owned(), name)) })
            }
        }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.postgres.take() {
            let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            if let Err(e) = psql(&admin_url, &sql) {
                eprintln!("warning: cannot drop the bench database {name}: {e:#}");
            }
        }
    }
}

/// Runs one statement with the `psql` command-line client; its unaligned, tuples-only output.
fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .output()
        .context("cannot run psql (install the PostgreSQL client)")?;
    if !out.status.success() {
        bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `url` with its path (the database name) replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url).context("--postgres-url is not a URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_replaces_the_path_and_keeps_the_rest() {
        let url = with_database("postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "b")
            .expect("url");
        assert_eq!(url, "postgres://postgres@127.0.0.1:5432/b?sslmode=disable");
    }
}
