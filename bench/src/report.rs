//! The report: every figure of a run as JSON, and the same as Markdown tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::load::Measured;
use crate::procfs::Machine;
use crate::signing::{Ceiling, Unmeasured};

#[derive(Debug, Serialize)]
pub struct Report {
    /// UTC, e.g. `20250101T120000Z`.
    pub timestamp: String,
    pub machine: Machine,
    pub settings: Settings,
    pub startup: Startup,
    pub signing: Vec<Ceiling>,
    pub signing_unmeasured: Vec<Unmeasured>,
    pub scenarios: Vec<ScenarioResult>,
    /// The server's `VmHWM` (peak resident memory of its whole life), in KiB.
    pub server_vm_hwm_kib: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Settings {
    pub db: &'static str,
    pub connections: usize,
    pub flow_connections: usize,
    pub duration_seconds: f64,
    pub warmup_seconds: f64,
    pub client_threads: usize,
    pub prompt_consent: bool,
    pub server_log: String,
    pub server_bin: String,
}

#[derive(Debug, Serialize)]
pub struct Startup {
    /// Spawn to the first 200 from `/health/ready` on an empty database (migrations, first
    /// keys, first admin client).
    pub fresh_database_ms: f64,
    /// The same after SIGTERM, on the database the first start left.
    pub existing_database_ms: f64,
    /// `VmRSS` after ready and one idle second, in KiB.
    pub idle_rss_kib: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Invalid,
    Skipped,
}

#[derive(Debug, Serialize)]
pub struct ScenarioResult {
    pub name: &'static str,
    pub status: Status,
    /// Why it was skipped or could not run.
    pub reason: Option<String>,
    pub connections: usize,
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub server_cpu_seconds: f64,
    /// Units (tokens, requests or flows) per server CPU-second.
    pub per_server_cpu_second: f64,
    /// CPU time of the Postgres backends serving the server (Postgres on this machine).
    pub database_cpu_seconds: Option<f64>,
    /// CPU time of the load generator itself.
    pub client_cpu_seconds: f64,
    pub peak_rss_kib: u64,
    pub consent_pages: u64,
    /// Units per server CPU-second ÷ signatures per CPU-second of the in-process signer.
    pub ratio_to_signing_ceiling: Option<f64>,
}

impl ScenarioResult {
    pub fn not_run(name: &'static str, status: Status, reason: String) -> Self {
        let errors = u64::from(matches!(status, Status::Invalid));
        Self {
            name,
            status,
            first_error: errors.gt(&0).then(|| reason.clone()),
            reason: Some(reason),
            connections: 0,
            requests: 0,
            seconds: 0.0,
            requests_per_second: 0.0,
            p50_ms: 0.0,
            p90_ms: 0.0,
            p99_ms: 0.0,
            max_ms: 0.0,
            errors,
            server_cpu_seconds: 0.0,
            per_server_cpu_second: 0.0,
            database_cpu_seconds: None,
            client_cpu_seconds: 0.0,
            peak_rss_kib: 0,
            consent_pages: 0,
            ratio_to_signing_ceiling: None,
        }
    }

    pub fn measured(name: &'static str, connections: usize, m: &Measured) -> Self {
        let seconds = m.elapsed.as_secs_f64();
        let ms = |q: f64| m.histogram.value_at_quantile(q) as f64 / 1000.0;
        let per = |n: f64, d: f64| if d > 0.0 { n / d } else { 0.0 };
        Self {
            name,
            status: if m.errors == 0 { Status::Ok } else { Status::Invalid },
            reason: None,
            connections,
            requests: m.requests,
            seconds,
            requests_per_second: per(m.requests as f64, seconds),
            p50_ms: ms(0.5),
            p90_ms: ms(0.9),
            p99_ms: ms(0.99),
            max_ms: m.histogram.max() as f64 / 1000.0,
            errors: m.errors,
            first_error: m.first_error.clone(),
            server_cpu_seconds: m.server_cpu_seconds,
            per_server_cpu_second: per(m.requests as f64, m.server_cpu_seconds),
            database_cpu_seconds: m.database_cpu_seconds,
            client_cpu_seconds: m.client_cpu_seconds,
            peak_rss_kib: m.peak_rss_kib,
            consent_pages: m.consents,
            ratio_to_signing_ceiling: None,
        }
    }
}

impl ScenarioResult {
    /// This scenario as a row of the Markdown table.
    fn row(&self) -> String {
        let status = match (&self.status, &self.reason) {
            (Status::Ok, _) => "ok".to_owned(),
            (Status::Invalid, _) => "**INVALID**".to_owned(),
            (Status::Skipped, Some(reason)) => format!("skipped: {}", one_line(reason)),
            (Status::Skipped, None) => "skipped".to_owned(),
        };
        if self.requests == 0 && self.server_cpu_seconds == 0.0 {
            return format!("| {} | | | | | {} | | | | | | | {status} |", self.name, self.errors);
        }
        let optional = |x: Option<f64>| x.map_or_else(|| "–".to_owned(), |x| format!("{x:.2}"));
        format!(
            "| {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.0} | {} | {} | {:.2} | {} | {status} |",
            self.name,
            self.requests_per_second,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.errors,
            self.server_cpu_seconds,
            self.per_server_cpu_second,
            optional(self.ratio_to_signing_ceiling),
            optional(self.database_cpu_seconds),
            self.client_cpu_seconds,
            mib(self.peak_rss_kib),
        )
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.scenarios.iter().any(|s| matches!(s.status, Status::Invalid))
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let m = &self.machine;
        let s = &self.settings;
        let dirty = if m.git_dirty { " (uncommitted changes)" } else { "" };
        let _ = writeln!(out, "## Castellan benchmark: {} ({})\n", s.db, self.timestamp);
        let _ = writeln!(
            out,
            "{} × {}, Linux {}, commit {}{dirty}. {} connections ({} for the browser flow), \
             {:.0} s measured after {:.0} s warm-up, load generator on {} thread(s), server log \
             filter `{}`.\n",
            m.cores,
            m.cpu_model,
            m.kernel,
            m.git_commit,
            s.connections,
            s.flow_connections,
            s.duration_seconds,
            s.warmup_seconds,
            s.client_threads,
            s.server_log,
        );
        let st = &self.startup;
        let _ = writeln!(
            out,
            "Start to ready: {:.0} ms on an empty database, {:.0} ms on an existing one. Idle \
             RSS (restarted server, 1 s after ready) {} MiB; server VmHWM at the end {} MiB.\n",
            st.fresh_database_ms,
            st.existing_database_ms,
            mib(st.idle_rss_kib),
            self.server_vm_hwm_kib.map_or_else(|| "?".to_owned(), mib),
        );
        out.push_str(
            "| scenario | req/s | p50 ms | p90 ms | p99 ms | errors | server CPU-s | \
             req / server CPU-s | ÷ all-core signing ceiling | DB CPU-s | client CPU-s | peak RSS MiB | \
             status |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        );
        for r in &self.scenarios {
            let _ = writeln!(out, "{}", r.row());
        }
        for r in self.scenarios.iter().filter(|r| r.first_error.is_some()) {
            let error = r.first_error.as_deref().unwrap_or_default();
            let _ =
                writeln!(out, "\n{}: {} errors; the first: {}", r.name, r.errors, one_line(error));
        }
        let flows =
            self.scenarios.iter().find(|r| r.name == "authorization_code" && r.requests > 0);
        if let Some(r) = flows {
            let _ = writeln!(
                out,
                "\nauthorization_code: one unit is a whole flow; {} of the flows (warm-up \
                 included) showed the consent page.",
                r.consent_pages
            );
        }
        out.push_str(
            "\n| signing ceiling (before and after the load) | implementation | signatures / CPU-s |\n|---|---|---:|\n",
        );
        for c in &self.signing {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} |",
                c.algorithm, c.implementation, c.per_cpu_second
            );
        }
        for u in &self.signing_unmeasured {
            let _ = writeln!(out, "| {} | not measured: {} | |", u.algorithm, one_line(&u.reason));
        }
        out
    }

    /// Writes `bench-<db>-<timestamp>.md` and `.json` into `dir`; returns both paths.
    pub fn write(&self, dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
        std::fs::create_dir_all(dir)?;
        let stem = format!("bench-{}-{}", self.settings.db, self.timestamp);
        let markdown = dir.join(format!("{stem}.md"));
        let json = dir.join(format!("{stem}.json"));
        std::fs::write(&markdown, self.markdown())?;
        std::fs::write(&json, serde_json::to_string_pretty(self)? + "\n")?;
        Ok((markdown, json))
    }
}

fn one_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c == '\n' || c == '|' { ' ' } else { c }).collect();
    line.trim().to_owned()
}
