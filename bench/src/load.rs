//! The load runner: virtual users, each on its own keep-alive connection, run until told to
//! stop; after a warm-up, a measured window records latencies, errors, the server's CPU time
//! and its peak memory.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::Barrier;

use crate::database::BenchDatabase;
use crate::flow::{self, Login};
use crate::http::{self, Connection, Failure, Target};
use crate::procfs::{self, RssSampler};
use crate::report::{ScenarioResult, Status};
use crate::scenarios::Prepared;

/// How often the server's `VmRSS` is sampled.
const RSS_EVERY: Duration = Duration::from_millis(20);
/// A virtual user pauses this long after an error, so a broken scenario does not spin.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// What one virtual user does over and over.
pub enum Workload {
    /// The same request every time: any 2xx answer whose body holds `must_contain`.
    Fixed { request: Arc<[u8]>, must_contain: Option<&'static [u8]> },
    /// A shared pool of requests, each user cycling through it from its own offset: no
    /// request repeats before the whole pool has been sent (defeats per-request caches).
    Cycle { pool: Arc<[Arc<[u8]>]>, next: usize, must_contain: &'static [u8] },
    /// A refresh token chain: each answer's refresh token is the next request's. The chain
    /// starts (and restarts after an error) with one whole authorization code flow.
    Refresh { login: Login, refresh_token: Option<String> },
    /// The whole browser flow, signing in every time; one flow is one unit.
    Flow { login: Login },
    /// client_credentials with a new DPoP proof by `key` each time: a `DPoP` token.
    Dpop { key: crate::dpop::ProofKey, basic: String },
    /// A device polling its own authorization, which nobody answers (RFC 8628 §3.5): every
    /// answer must be a 400 saying `authorization_pending` or `slow_down`.
    Pending { request: Arc<[u8]> },
}

/// The warm-up and the measured window.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a scenario measured.
pub struct Measured {
    /// Units completed inside the window.
    pub requests: u64,
    pub elapsed: Duration,
    /// Latencies of those units, in microseconds.
    pub histogram: Histogram<u64>,
    /// Failures at any time (preparation, warm-up or window).
    pub errors: u64,
    pub first_error: Option<String>,
    pub server_cpu_seconds: f64,
    /// The database processes serving the server: Postgres backends (Postgres on this machine
    /// only), or the rival's Redis.
    pub database_cpu_seconds: Option<f64>,
    pub client_cpu_seconds: f64,
    pub peak_rss_kib: u64,
    /// Flows that went through the consent page.
    pub consents: u64,
}

#[derive(Default)]
struct Shared {
    recording: AtomicBool,
    stop: AtomicBool,
    errors: AtomicU64,
    consents: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Shared {
    fn fail(&self, failure: &Failure) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock()
            && first.is_none()
        {
            *first = Some(failure.to_string());
        }
    }
}

/// Stops every virtual user when the measurement ends, however it ends.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}

fn new_histogram() -> anyhow::Result<Histogram<u64>> {
    // 1 µs to 10 min at 3 significant figures.
    Ok(Histogram::new_with_bounds(1, 600_000_000, 3)?)
}

struct VirtualUser {
    workload: Workload,
    target: Target,
    connection: Option<Connection>,
}

impl VirtualUser {
    /// One step: `Ok(true)` when it completed a unit, `Ok(false)` when it only (re)started a
    /// refresh chain.
    async fn step(&mut self, shared: &Shared) -> Result<bool, Failure> {
        if self.connection.is_none() {
            self.connection = Some(Connection::open(self.target.addr).await?);
        }
        let Some(connection) = self.connection.as_mut() else { return Ok(false) };
        match &mut self.workload {
            Workload::Fixed { request, must_contain } => {
                let response = connection.send(request).await?;
                if response.close {
                    self.connection = None;
                }
                if !response.is_success() {
                    return Err(Failure::unexpected("response", &response));
                }
                if must_contain.is_some_and(|needle| !response.contains(needle)) {
                    return Err(Failure::unexpected("response body", &response));
                }
                Ok(true)
            }
            Workload::Pending { request } => {
                let response = connection.send(request).await?;
                if response.close {
                    self.connection = None;
                }
                let waiting =
                    response.contains(b"authorization_pending") || response.contains(b"slow_down");
                if response.status != 400 || !waiting {
                    return Err(Failure::unexpected("poll", &response));
                }
                Ok(true)
            }
            Workload::Cycle { pool, next, must_contain } => {
                let request = pool[*next % pool.len()].clone();
                *next = next.wrapping_add(1);
                let response = connection.send(&request).await?;
                if response.close {
                    self.connection = None;
                }
                if !response.is_success() || !response.contains(must_contain) {
                    return Err(Failure::unexpected("response body", &response));
                }
                Ok(true)
            }
            Workload::Refresh { login, refresh_token } => {
                let Some(current) = refresh_token.take() else {
                    let completed = flow::run(connection, &self.target, login).await?;
                    let next = completed.refresh_token.ok_or_else(|| Failure::Unexpected {
                        step: "code exchange",
                        status: 200,
                        body: "no refresh_token (offline_access not granted?)".into(),
                    })?;
                    *refresh_token = Some(next);
                    return Ok(false);
                };
                let form = [("grant_type", "refresh_token"), ("refresh_token", current.as_str())];
                let request = http::post_form(
                    &self.target,
                    "/token",
                    &[("Authorization", &login.basic)],
                    &form,
                );
                let response = connection.send(&request).await?;
                let next = response
                    .json()
                    .ok()
                    .filter(|_| response.status == 200)
                    .and_then(|json| json["refresh_token"].as_str().map(str::to_owned));
                match next {
                    Some(next) => {
                        *refresh_token = Some(next);
                        Ok(true)
                    }
                    None => Err(Failure::unexpected("refresh", &response)),
                }
            }
            Workload::Dpop { key, basic } => {
                let request = key.client_credentials_request(&self.target, basic);
                let response = connection.send(&request).await?;
                if response.close {
                    self.connection = None;
                }
                if !response.is_success() || !response.contains(br#""token_type":"DPoP""#) {
                    return Err(Failure::unexpected("DPoP token response", &response));
                }
                Ok(true)
            }
            Workload::Flow { login } => {
                let completed = flow::run(connection, &self.target, login).await?;
                if completed.consented {
                    shared.consents.fetch_add(1, Ordering::Relaxed);
                }
                Ok(true)
            }
        }
    }
}

async fn run_user(
    mut user: VirtualUser,
    mut histogram: Histogram<u64>,
    shared: Arc<Shared>,
    ready: Arc<Barrier>,
) -> Histogram<u64> {
    // A refresh chain gets its first token before the clock starts.
    if let Workload::Refresh { .. } = user.workload
        && let Err(failure) = user.step(&shared).await
    {
        shared.fail(&failure);
        user.connection = None;
    }
    ready.wait().await;
    while !shared.stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        match user.step(&shared).await {
            Ok(true) => {
                if shared.recording.load(Ordering::Relaxed) {
                    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                    histogram.saturating_record(micros.max(1));
                }
            }
            Ok(false) => {}
            Err(failure) => {
                shared.fail(&failure);
                if let Failure::Io(_) = failure {
                    user.connection = None;
                }
                tokio::time::sleep(ERROR_PAUSE).await;
            }
        }
    }
    histogram
}

/// The processes whose CPU time counts as the database's during a measurement.
pub trait DatabaseProcesses {
    /// Read after the warm-up, when the server's connections to the database are open.
    fn pids(&self) -> Vec<u32>;
}

impl DatabaseProcesses for BenchDatabase {
    fn pids(&self) -> Vec<u32> {
        self.backend_pids()
    }
}

/// Runs `workloads` (one virtual user each) against the server at `target`, made of the
/// processes `pids` (one for Castellan; a primary and its workers for a cluster): their CPU
/// times and resident memory are summed.
pub async fn measure(
    target: &Target,
    pids: &[u32],
    workloads: Vec<Workload>,
    window: Window,
    clock_ticks: f64,
    database: &dyn DatabaseProcesses,
) -> anyhow::Result<Measured> {
    anyhow::ensure!(!pids.is_empty(), "no server process to measure");
    let shared = Arc::new(Shared::default());
    let _stop = StopOnDrop(shared.clone());
    let ready = Arc::new(Barrier::new(workloads.len() + 1));
    let sampler = RssSampler::start(pids.to_vec(), RSS_EVERY);
    let mut users = Vec::with_capacity(workloads.len());
    for workload in workloads {
        let user = VirtualUser { workload, target: target.clone(), connection: None };
        let task = run_user(user, new_histogram()?, shared.clone(), ready.clone());
        users.push(tokio::spawn(task));
    }
    ready.wait().await;
    tokio::time::sleep(window.warmup).await;

    let me = std::process::id();
    // After the warm-up the server's connection pool is open: these backends serve it.
    let backends = database.pids();
    let database_before = procfs::cpu_ticks_of(&backends);
    let (server_before, client_before) =
        (procfs::processes_cpu_ticks(pids)?, procfs::process_cpu_ticks(me)?);
    let started = Instant::now();
    shared.recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(window.duration).await;
    shared.recording.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let (server_after, client_after) =
        (procfs::processes_cpu_ticks(pids)?, procfs::process_cpu_ticks(me)?);
    let database_after = procfs::cpu_ticks_of(&backends);

    shared.stop.store(true, Ordering::Relaxed);
    let mut histogram = new_histogram()?;
    for user in users {
        histogram.add(user.await?)?;
    }
    let peak_rss_kib = sampler.finish();
    let first_error = shared.first_error.lock().ok().and_then(|first| first.clone());
    let seconds = |ticks: u64| ticks as f64 / clock_ticks;
    Ok(Measured {
        requests: histogram.len(),
        elapsed,
        histogram,
        errors: shared.errors.load(Ordering::Relaxed),
        first_error,
        server_cpu_seconds: seconds(server_after.saturating_sub(server_before)),
        database_cpu_seconds: (!database_before.is_empty())
            .then(|| seconds(procfs::ticks_between(&database_before, &database_after))),
        client_cpu_seconds: seconds(client_after.saturating_sub(client_before)),
        peak_rss_kib,
        consents: shared.consents.load(Ordering::Relaxed),
    })
}

/// Runs one prepared scenario against `server` (its name in the log) and reports it: a
/// skipped or failed preparation is reported as such, without load.
#[allow(clippy::too_many_arguments)]
pub async fn run_prepared(
    name: &'static str,
    prepared: Prepared,
    server: &str,
    target: &Target,
    pids: &[u32],
    window: Window,
    clock_ticks: f64,
    database: &dyn DatabaseProcesses,
) -> anyhow::Result<ScenarioResult> {
    let result = match prepared {
        Prepared::Skipped(reason) => ScenarioResult::not_run(name, Status::Skipped, reason),
        Prepared::Failed(reason) => ScenarioResult::not_run(name, Status::Invalid, reason),
        Prepared::Run(workloads) => {
            let connections = workloads.len();
            eprintln!("running {name} on {server}, {connections} connections");
            let measured = measure(target, pids, workloads, window, clock_ticks, database).await?;
            ScenarioResult::measured(name, connections, &measured)
        }
    };
    if let Some(error) = &result.first_error {
        eprintln!("{server} {name}: {} errors; the first: {error}", result.errors);
    }
    Ok(result)
}
