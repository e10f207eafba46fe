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
    /// node-oidc-provider through the comparable scenarios (`--rival`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rival: Option<Rival>,
    /// The same scenarios on a pre-loaded database (`--preload-scale`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<crate::scale::ScaleReport>,
}

/// node-oidc-provider, run through the scenarios it can be compared on, in the same invocation
/// after Castellan's, on the same machine with the same connections, warm-up and duration.
#[derive(Debug, Serialize)]
pub struct Rival {
    pub name: &'static str,
    /// oidc-provider's version, as `bench/rival/package-lock.json` pins it.
    pub version: String,
    /// The Node.js version that ran it.
    pub node: String,
    /// Worker processes of its `cluster` (besides the primary).
    pub workers: usize,
    /// How it was set up, in a sentence (`bench/rival/server.js` says why).
    pub configuration: &'static str,
    /// Spawn to the ready line, every worker listening.
    pub ready_ms: f64,
    /// `VmRSS` of the primary and the workers, summed, one idle second after ready, in KiB.
    pub idle_rss_kib: u64,
    /// Its CPU and RSS are those of the primary and the workers summed; its database CPU is
    /// Redis's.
    pub scenarios: Vec<ScenarioResult>,
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
        let rival = self.rival.iter().flat_map(|r| &r.scenarios);
        self.scenarios.iter().chain(rival).any(|s| matches!(s.status, Status::Invalid))
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
        out.push_str(SCENARIO_TABLE_HEAD);
        for r in &self.scenarios {
            let _ = writeln!(out, "{}", r.row());
        }
        write_errors(&mut out, &self.scenarios);
        let measured =
            |name: &str| self.scenarios.iter().find(|r| r.name == name && r.requests > 0);
        if let (Some(plain), Some(dpop)) =
            (measured("client_credentials_es256"), measured(crate::scenarios::DPOP))
            && dpop.per_server_cpu_second > 0.0
        {
            let _ = writeln!(
                out,
                "\nDPoP: checking and recording an ES256 proof adds {:.0} % to the server CPU of an \
                 ES256 client_credentials token ({:.0} tokens per server CPU-second with a proof, \
                 {:.0} without); the proofs are signed by the load generator.",
                (plain.per_server_cpu_second / dpop.per_server_cpu_second - 1.0) * 100.0,
                dpop.per_server_cpu_second,
                plain.per_server_cpu_second,
            );
            let check =
                self.signing.iter().find(|c| c.implementation == crate::signing::PROOF_CHECK);
            if let Some(check) = check.filter(|c| c.per_cpu_second > 0.0) {
                let _ = writeln!(
                    out,
                    "The check alone, in process (signature and claims, no storage): {:.0} per \
                     CPU-second, {:.1} µs each, against {:.1} µs of server CPU per plain ES256 \
                     token and {:.1} µs per ES256 signature.",
                    check.per_cpu_second,
                    1e6 / check.per_cpu_second,
                    1e6 / plain.per_server_cpu_second,
                    self.signing
                        .iter()
                        .find(|c| c.algorithm == "ES256" && c.implementation == "castellan")
                        .map_or(0.0, |c| 1e6 / c.per_cpu_second),
                );
            }
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
            "\n| signing ceiling (before and after the load) | implementation | operations / CPU-s |\n|---|---|---:|\n",
        );
        for c in &self.signing {
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} |",
                c.algorithm, c.implementation, c.per_cpu_second
            );
        }
        // The resource server's side: what castellan-guard's extractor adds to an actix route.
        let guard_rows = |label: &'static str| {
            self.signing.iter().filter(move |c| c.implementation == label && c.per_cpu_second > 0.0)
        };
        for verify in guard_rows(crate::signing::GUARD_VERIFY) {
            if let Some(extract) =
                guard_rows(crate::signing::GUARD_EXTRACT).find(|c| c.algorithm == verify.algorithm)
            {
                let (verify_us, extract_us) =
                    (1e6 / verify.per_cpu_second, 1e6 / extract.per_cpu_second);
                // Two separate timings: an extractor measured cheaper than the verification
                // it contains is noise, and says so rather than print a negative cost.
                let beyond = if extract_us > verify_us {
                    format!("{:.1} µs beyond the verification", extract_us - verify_us)
                } else {
                    "nothing measurable beyond the verification".to_owned()
                };
                let _ = writeln!(
                    out,
                    "\ncastellan-guard, {}: {:.0} verifications per CPU-second ({verify_us:.1} µs); \
                     the extractor on a request costs {extract_us:.1} µs, {beyond}.",
                    verify.algorithm, verify.per_cpu_second,
                );
            }
        }
        for u in &self.signing_unmeasured {
            let _ = writeln!(out, "| {} | not measured: {} | |", u.algorithm, one_line(&u.reason));
        }
        if let Some(rival) = &self.rival {
            out.push_str(&rival.markdown(&self.scenarios));
        }
        if let Some(scale) = &self.scale {
            out.push_str(&scale.markdown(&self.scenarios));
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

/// The head of a table of [`ScenarioResult::row`]s.
const SCENARIO_TABLE_HEAD: &str = "| scenario | req/s | p50 ms | p90 ms | p99 ms | errors | \
    server CPU-s | req / server CPU-s | ÷ all-core signing ceiling | DB CPU-s | client CPU-s | \
    peak RSS MiB | status |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

/// The first error of every scenario that had one, a line each.
fn write_errors(out: &mut String, scenarios: &[ScenarioResult]) {
    for r in scenarios.iter().filter(|r| r.first_error.is_some()) {
        let error = r.first_error.as_deref().unwrap_or_default();
        let _ = writeln!(out, "\n{}: {} errors; the first: {}", r.name, r.errors, one_line(error));
    }
}

impl Rival {
    /// The side-by-side table (Castellan's figures from `castellan`), then the rival's own.
    fn markdown(&self, castellan: &[ScenarioResult]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "\n### Side by side with {}\n", self.name);
        let _ = writeln!(
            out,
            "{} {} on Node.js {}, {} workers (node cluster) — {} Run after Castellan's \
             scenarios in the same invocation, with the same connections, warm-up and duration. \
             Its CPU and RSS are its primary's and workers' summed. Ready in {:.0} ms; idle RSS \
             {} MiB. Ratios are Castellan ÷ {}.\n",
            self.name,
            self.version,
            self.node,
            self.workers,
            self.configuration,
            self.ready_ms,
            mib(self.idle_rss_kib),
            self.name,
        );
        out.push_str(SIDE_BY_SIDE_HEAD);
        for rival in &self.scenarios {
            let ours = castellan.iter().find(|c| c.name == rival.name);
            let _ = writeln!(out, "{}", side_by_side_row(ours, rival));
        }
        let _ = writeln!(out, "\n{} alone (DB CPU-s is Redis's):\n", self.name);
        out.push_str(SCENARIO_TABLE_HEAD);
        for r in &self.scenarios {
            let _ = writeln!(out, "{}", r.row());
        }
        write_errors(&mut out, &self.scenarios);
        out
    }
}

const SIDE_BY_SIDE_HEAD: &str = "| scenario | Castellan req/s | rival req/s | req/s ratio | \
    Castellan p99 ms | rival p99 ms | Castellan req / server CPU-s | rival req / server CPU-s | \
    per CPU-s ratio | Castellan peak RSS MiB | rival peak RSS MiB | note |\n\
    |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

/// One scenario of both servers; the ratios only where both ran without errors.
fn side_by_side_row(ours: Option<&ScenarioResult>, rival: &ScenarioResult) -> String {
    let theirs = Some(rival);
    let figure = |r: Option<&ScenarioResult>, value: fn(&ScenarioResult) -> String| {
        r.filter(|r| r.requests > 0).map_or_else(|| "–".to_owned(), value)
    };
    let both_valid = ours.is_some_and(valid) && valid(rival);
    let ratio_of = |value: fn(&ScenarioResult) -> f64| {
        ours.filter(|_| both_valid)
            .and_then(|ours| ratio(value(ours), value(rival)))
            .map_or_else(|| "–".to_owned(), times)
    };
    format!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        rival.name,
        figure(ours, |r| format!("{:.0}", r.requests_per_second)),
        figure(theirs, |r| format!("{:.0}", r.requests_per_second)),
        ratio_of(|r| r.requests_per_second),
        figure(ours, |r| format!("{:.2}", r.p99_ms)),
        figure(theirs, |r| format!("{:.2}", r.p99_ms)),
        figure(ours, |r| format!("{:.0}", r.per_server_cpu_second)),
        figure(theirs, |r| format!("{:.0}", r.per_server_cpu_second)),
        ratio_of(|r| r.per_server_cpu_second),
        figure(ours, |r| mib(r.peak_rss_kib)),
        figure(theirs, |r| mib(r.peak_rss_kib)),
        side_by_side_note(ours, rival),
    )
}

/// Why a row has no ratio: which side did not run, or ran with errors.
fn side_by_side_note(ours: Option<&ScenarioResult>, rival: &ScenarioResult) -> String {
    let mut notes = Vec::new();
    match ours {
        None => notes.push("Castellan: not run".to_owned()),
        Some(r) if !valid(r) => notes.push(format!("Castellan: {}", status_word(r))),
        Some(_) => {}
    }
    if !valid(rival) {
        notes.push(format!("rival: {}", status_word(rival)));
    }
    notes.join("; ")
}

/// Measured, with no error.
fn valid(r: &ScenarioResult) -> bool {
    matches!(r.status, Status::Ok) && r.requests > 0
}

fn status_word(r: &ScenarioResult) -> String {
    match (&r.status, &r.reason) {
        (Status::Ok, _) => "no requests".to_owned(),
        (Status::Invalid, _) => format!("INVALID ({} errors)", r.errors),
        (Status::Skipped, Some(reason)) => format!("skipped: {}", one_line(reason)),
        (Status::Skipped, None) => "skipped".to_owned(),
    }
}

/// `ours ÷ theirs`, when both are positive.
fn ratio(ours: f64, theirs: f64) -> Option<f64> {
    (ours > 0.0 && theirs > 0.0).then(|| ours / theirs)
}

/// A ratio as `2.0×`, with two decimals below 1 (`0.45×`) so a loss is not rounded away.
fn times(x: f64) -> String {
    if x < 1.0 { format!("{x:.2}×") } else { format!("{x:.1}×") }
}

fn one_line(text: &str) -> String {
    let line: String = text.chars().map(|c| if c == '\n' || c == '|' { ' ' } else { c }).collect();
    line.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(name: &'static str, rps: f64, per_cpu: f64) -> ScenarioResult {
        let mut r = ScenarioResult::not_run(name, Status::Ok, String::new());
        r.reason = None;
        r.requests = 1000;
        r.requests_per_second = rps;
        r.per_server_cpu_second = per_cpu;
        r.p99_ms = 1.5;
        r.peak_rss_kib = 2048;
        r
    }

    fn cells(row: &str) -> Vec<String> {
        row.trim_matches('|').split('|').map(|c| c.trim().to_owned()).collect()
    }

    #[test]
    fn ratios_keep_one_decimal_and_two_below_one() {
        assert_eq!(ratio(4000.0, 2000.0).map(times).as_deref(), Some("2.0×"));
        assert_eq!(ratio(4830.0, 1000.0).map(times).as_deref(), Some("4.8×"));
        assert_eq!(ratio(450.0, 1000.0).map(times).as_deref(), Some("0.45×"));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(0.0, 1.0), None);
    }

    #[test]
    fn a_row_of_two_valid_runs_has_both_ratios_and_no_note() {
        let ours = measured("jwks", 50_000.0, 40_000.0);
        let rival = measured("jwks", 10_000.0, 8_000.0);
        let row = cells(&side_by_side_row(Some(&ours), &rival));
        assert_eq!(row.len(), 12, "{row:?}");
        assert_eq!(&row[..4], ["jwks", "50000", "10000", "5.0×"]);
        assert_eq!(&row[4..9], ["1.50", "1.50", "40000", "8000", "5.0×"]);
        assert_eq!(&row[9..], ["2.0", "2.0", ""]);
    }

    #[test]
    fn a_row_with_an_invalid_or_missing_side_has_no_ratio_and_says_why() {
        let ours = measured("introspection", 50_000.0, 40_000.0);
        let mut rival = measured("introspection", 10_000.0, 8_000.0);
        rival.status = Status::Invalid;
        rival.errors = 3;
        let row = cells(&side_by_side_row(Some(&ours), &rival));
        assert_eq!((row[2].as_str(), row[3].as_str(), row[8].as_str()), ("10000", "–", "–"));
        assert_eq!(row[11], "rival: INVALID (3 errors)");

        let row = cells(&side_by_side_row(None, &measured("discovery", 1.0, 1.0)));
        assert_eq!((row[1].as_str(), row[3].as_str()), ("–", "–"));
        assert_eq!(row[11], "Castellan: not run");
    }

    #[test]
    fn the_rival_section_has_the_table_and_the_rival_errors() {
        let rival = Rival {
            name: "node-oidc-provider",
            version: "9.0.0".into(),
            node: "v20".into(),
            workers: 2,
            configuration: "test.",
            ready_ms: 1.0,
            idle_rss_kib: 1024,
            scenarios: vec![ScenarioResult::not_run("jwks", Status::Invalid, "boom".into())],
        };
        let markdown = rival.markdown(&[measured("jwks", 2.0, 2.0)]);
        assert!(markdown.contains("### Side by side with node-oidc-provider"), "{markdown}");
        assert!(markdown.contains("jwks: 1 errors; the first: boom"), "{markdown}");
    }
}
