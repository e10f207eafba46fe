//! `castellan-bench`: builds the release server, starts it on a fresh database, loads it
//! scenario by scenario and reports throughput, latency, CPU and memory against the
//! in-process signing ceiling.

mod database;
mod dpop;
mod flow;
mod html;
mod http;
mod load;
mod procfs;
mod report;
mod rival;
mod scale;
mod scenarios;
mod server;
mod setup;
mod signing;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::database::{Backend, BenchDatabase, WorkDir};
use crate::report::{Report, ScenarioResult, Status};
use crate::scenarios::Users;
use crate::server::{Launch, Server};

/// How long a server may take to become ready, or to stop after SIGTERM.
const START_LIMIT: Duration = Duration::from_secs(120);
const STOP_LIMIT: Duration = Duration::from_secs(60);
/// How long a pre-loaded server may take to purge its backlog before the scenarios start.
const DRAIN_LIMIT: Duration = Duration::from_secs(900);

/// Benchmarks the Castellan server: throughput, latency, CPU and memory per scenario.
#[derive(Debug, Parser)]
#[command(name = "castellan-bench")]
struct Args {
    /// Database backend.
    #[arg(long, value_enum, default_value = "sqlite")]
    db: Backend,
    /// A Postgres database to connect to for CREATE/DROP DATABASE.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Use this server binary instead of building target/release/castellan.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Keep-alive connections (virtual users) per scenario.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Connections of the authorization_code scenario (each login costs an Argon2id hash).
    #[arg(long, default_value_t = 4)]
    flow_connections: usize,
    /// Measured time per scenario.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured warm-up per scenario.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// Time per algorithm of the in-process signing ceiling (half before the load, half after).
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    signing_duration: Duration,
    /// Scenarios to run, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Worker threads of the load generator (the server gets the rest of the CPU).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Distinct access tokens the `introspection_distinct` scenario cycles through (more than
    /// the server's verified-signature cache holds, 16,384, so none is remembered).
    #[arg(long, default_value_t = 20_000)]
    distinct_tokens: usize,
    /// Send prompt=consent so every browser flow shows the consent page.
    #[arg(long)]
    prompt_consent: bool,
    /// The server's log filter (CASTELLAN_LOG); its logs go to a file, not the terminal.
    #[arg(long, default_value = "info")]
    server_log: String,
    /// Where the .md and .json reports go [default: <workspace>/bench-results].
    #[arg(long)]
    out: Option<PathBuf>,
    /// After Castellan, run node-oidc-provider from this folder [default: <workspace>/bench/rival,
    /// after `npm ci --prefix bench/rival`] through the scenarios both can run, for a side-by-side
    /// table. Needs Node.js and Redis on 127.0.0.1:6379.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    rival: Option<Option<PathBuf>>,
    /// Also run the scenarios on a second database pre-loaded with a large deployment's rows
    /// (1: a million users, sessions, grants and codes, ten million refresh tokens) and compare
    /// them with the empty one: latency, start-up, bytes per row, purge against issuance.
    #[arg(long, value_name = "SCALE")]
    preload_scale: Option<f64>,
    /// Worker processes of the rival's node cluster.
    #[arg(long, default_value_t = 2)]
    rival_workers: usize,
}

fn workspace_root() -> PathBuf {
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest.parent().map_or_else(|| manifest.clone(), Path::to_path_buf)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(report) if report.has_errors() => {
            eprintln!("error: a scenario had errors; its figures are not valid");
            ExitCode::FAILURE
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<Report> {
    let selected = scenarios::select(&args.scenarios)?;
    anyhow::ensure!(args.connections > 0 && args.flow_connections > 0, "connections must be > 0");
    let workspace = workspace_root();
    let rival_dir = args
        .rival
        .as_ref()
        .map(|dir| rival::folder(dir.as_deref(), &workspace, &selected))
        .transpose()?;
    let bin = match &args.server_bin {
        Some(bin) => bin.clone(),
        None => server::build(&workspace)?,
    };
    anyhow::ensure!(bin.is_file(), "no server binary at {}", bin.display());
    let machine = procfs::Machine::describe(&workspace);
    let clock_ticks = procfs::clock_ticks();

    eprintln!(
        "measuring the in-process signing ceiling ({:?} per algorithm)",
        args.signing_duration
    );
    // Measured before and after the load and combined: this machine's speed drifts (shared
    // hosts, turbo), and the ratio should not depend on which moment the ceiling caught.
    let half = args.signing_duration / 2;
    let (before, unmeasured) = signing::measure_all(half, clock_ticks);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    let timestamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let serve = |preload| {
        runtime.block_on(async {
            tokio::select! {
                result = serve_and_load(&args, &bin, &selected, clock_ticks, preload) => result,
                _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
            }
        })
    };
    let Served { startup, mut results, hwm, .. } = serve(None)?;
    let scale = match args.preload_scale {
        Some(factor) => {
            anyhow::ensure!(factor > 0.0, "--preload-scale must be > 0");
            eprintln!("again on a database pre-loaded at scale {factor}");
            let served = serve(Some(scale::Volume::at(factor)))?;
            served.loaded.map(|loaded| loaded.into_report(factor, served.results))
        }
        None => None,
    };
    let rival = match rival_dir {
        Some(dir) => {
            let options = rival::Options {
                dir,
                workers: args.rival_workers.max(1),
                connections: args.connections,
                distinct_tokens: args.distinct_tokens,
                window: load::Window { warmup: args.warmup, duration: args.duration },
            };
            Some(runtime.block_on(rival::run(&options, &selected, clock_ticks))?)
        }
        None => None,
    };
    eprintln!("measuring the in-process signing ceiling again, after the load");
    let (after, _) = signing::measure_all(half, clock_ticks);
    let ceilings = signing::combine(before, after);
    for result in &mut results {
        let alg = match result.name {
            "refresh" => Some("RS256"),
            scenarios::DPOP | "token_exchange" => Some("ES256"),
            name => scenarios::CLIENT_CREDENTIALS.iter().find(|(n, _)| *n == name).map(|(_, a)| *a),
        };
        let ceiling = ceilings
            .iter()
            .find(|c| Some(c.algorithm.as_str()) == alg && c.implementation == signing::ALL_CORES);
        if let (Some(ceiling), Status::Ok | Status::Invalid) = (ceiling, &result.status)
            && ceiling.per_cpu_second > 0.0
            && result.requests > 0
        {
            result.ratio_to_signing_ceiling =
                Some(result.per_server_cpu_second / ceiling.per_cpu_second);
        }
    }
    let report = Report {
        timestamp,
        machine,
        settings: report::Settings {
            db: args.db.as_str(),
            connections: args.connections,
            flow_connections: args.flow_connections,
            duration_seconds: args.duration.as_secs_f64(),
            warmup_seconds: args.warmup.as_secs_f64(),
            client_threads: args.client_threads.max(1),
            prompt_consent: args.prompt_consent,
            server_log: args.server_log.clone(),
            server_bin: bin.display().to_string(),
        },
        startup,
        signing: ceilings,
        signing_unmeasured: unmeasured,
        scenarios: results,
        server_vm_hwm_kib: hwm,
        rival,
        scale,
    };
    println!("{}", report.markdown());
    let out = args.out.clone().unwrap_or_else(|| workspace.join("bench-results"));
    let (markdown, json) = report.write(&out)?;
    eprintln!("wrote {} and {}", markdown.display(), json.display());
    Ok(report)
}

/// What one server's run measured.
struct Served {
    startup: report::Startup,
    results: Vec<ScenarioResult>,
    /// The server's `VmHWM` at the end.
    hwm: Option<u64>,
    /// The pre-load and what the server did on it, when there was one.
    loaded: Option<scale::Loaded>,
}

/// Starts the server twice (empty, then existing database, pre-loaded with `preload` in
/// between), prepares the fixtures and runs each scenario; the database and folder go away
/// when this returns, error or not.
async fn serve_and_load(
    args: &Args,
    bin: &Path,
    selected: &[&'static str],
    clock_ticks: f64,
    preload: Option<scale::Volume>,
) -> anyhow::Result<Served> {
    let dir = WorkDir::create()?;
    let database = BenchDatabase::create(args.db, &dir, &args.postgres_url)?;
    let launch = Launch {
        bin: bin.to_path_buf(),
        database_url: database.url.clone(),
        keys_dir: dir.path().join("keys"),
        port: server::free_port()?,
        log_filter: args.server_log.clone(),
        log_file: dir.path().join("server.log"),
    };

    let mut first = Server::spawn(&launch)?;
    let fresh = first.wait_ready(START_LIMIT).await?;
    let admin = first.first_admin(Duration::from_secs(5)).await?;
    first.stop(STOP_LIMIT).await.context("stopping the first server")?;
    // The pre-load goes in before the fixtures are made, so that none of them (tokens minted
    // for the scenarios) ages while millions of rows are written.
    let mut loaded = None;
    if let Some(volume) = preload {
        let client = scale::some_web_client(&database.url).await?;
        let started = std::time::Instant::now();
        let tables = scale::preload(&database.url, volume, &client).await?;
        let load_seconds = started.elapsed().as_secs_f64();
        // Counted before the server starts: its first purge round begins at once.
        let backlog_before = scale::backlog(&database.url).await?;
        eprintln!("pre-loaded in {load_seconds:.0} s");
        loaded = Some(scale::Loaded {
            volume,
            tables,
            load_seconds,
            startup_ms: 0.0,
            idle_rss_kib: 0,
            backlog_before,
            backlog_after: scale::Backlog::default(),
            samples: Vec::new(),
        });
    }
    let mut server = Server::spawn(&launch)?;
    let existing = server.wait_ready(START_LIMIT).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let startup = report::Startup {
        fresh_database_ms: fresh.as_secs_f64() * 1000.0,
        existing_database_ms: existing.as_secs_f64() * 1000.0,
        idle_rss_kib: procfs::status_kib(server.pid(), "VmRSS")?,
    };
    eprintln!(
        "ready in {:.0} ms (empty database), {:.0} ms (existing{}); idle RSS {} KiB",
        startup.fresh_database_ms,
        startup.existing_database_ms,
        if loaded.is_some() { ", pre-loaded" } else { "" },
        startup.idle_rss_kib
    );
    if let Some(loaded) = &mut loaded {
        loaded.startup_ms = startup.existing_database_ms;
        loaded.idle_rss_kib = startup.idle_rss_kib;
        let before = loaded.backlog_before.total();
        eprintln!("waiting while the server purges {before} expired rows");
        loaded.samples = scale::drain(&database.url, server.started(), before, DRAIN_LIMIT).await?;
    }

    let users = Users {
        connections: args.connections,
        flow_connections: args.flow_connections,
        prompt_consent: args.prompt_consent,
        distinct_tokens: args.distinct_tokens,
    };
    let target = server.target.clone();
    let prepared = scenarios::prepare(&target, (&admin.0, &admin.1), selected, users)
        .await
        .with_context(|| format!("setting up the fixtures; server log:\n{}", server.log_tail()))?;
    let window = load::Window { warmup: args.warmup, duration: args.duration };
    let mut results = Vec::new();
    let pids = [server.pid()];
    for (name, prepared) in prepared {
        let result = load::run_prepared(
            name,
            prepared,
            "castellan",
            &target,
            &pids,
            window,
            clock_ticks,
            &database,
        )
        .await?;
        results.push(result);
    }
    let hwm = procfs::status_kib(server.pid(), "VmHWM").ok();
    server.stop(STOP_LIMIT).await.context("stopping the server")?;
    let loaded = match loaded {
        Some(mut loaded) => {
            loaded.backlog_after = scale::backlog(&database.url).await?;
            Some(loaded)
        }
        None => None,
    };
    Ok(Served { startup, results, hwm, loaded })
}
