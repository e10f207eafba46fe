//! The rival: node-oidc-provider (`bench/rival/server.js`, a node `cluster`), started after
//! Castellan's scenarios and loaded through the scenarios both servers can run, with the same
//! load generator, connections, warm-up and duration, so the two sets of figures come from one
//! run on one machine.

use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::database::WorkDir;
use crate::http::{self, Connection, Target};
use crate::load::{self, DatabaseProcesses, Window};
use crate::procfs;
use crate::report;
use crate::scenarios::{self, Prepared, Users};
use crate::server;
use crate::setup;

/// The scenarios both servers run, in the bench's order.
pub const COMPARABLE: [&str; 5] =
    ["client_credentials_rs256", "introspection", "introspection_distinct", "jwks", "discovery"];

const NAME: &str = "node-oidc-provider";

/// The rival's set-up, for the report (`bench/rival/server.js` says why each choice).
const CONFIGURATION: &str = "one confidential client (client_secret_basic), scope `bench`; \
    client_credentials with a resource indicator gives an RS256 JWT (`accessTokenFormat: 'jwt'`), \
    without one an opaque token, which is what its introspection endpoint accepts (it refuses \
    JWT access tokens); tokens shared by the workers through its Redis adapter \
    (127.0.0.1:6379); NODE_ENV=production, no request log. Its `introspection` scenario \
    introspects a client_credentials token, Castellan's a user's.";

/// Where the rival is and how to run it.
#[derive(Debug, Clone)]
pub struct Options {
    /// `bench/rival`, with its `node_modules` installed.
    pub dir: PathBuf,
    pub workers: usize,
    pub connections: usize,
    pub distinct_tokens: usize,
    pub window: Window,
}

/// The rival's folder (`dir`, or `<workspace>/bench/rival`), checked to be installed and to
/// have something to run, so a missing `npm ci` fails the run before Castellan's long part
/// rather than after.
pub fn folder(dir: Option<&Path>, workspace: &Path, selected: &[&str]) -> anyhow::Result<PathBuf> {
    anyhow::ensure!(
        COMPARABLE.iter().any(|name| selected.contains(name)),
        "--rival runs only {}, and none is selected",
        COMPARABLE.join(", ")
    );
    let dir = dir.map_or_else(|| workspace.join("bench").join("rival"), Path::to_path_buf);
    anyhow::ensure!(
        dir.join("server.js").is_file(),
        "no rival server at {}/server.js",
        dir.display()
    );
    anyhow::ensure!(
        dir.join("node_modules").join("oidc-provider").is_dir(),
        "the rival's dependencies are not installed: run `npm ci --prefix {}`",
        dir.display()
    );
    locked_version(&dir)?;
    Ok(dir)
}

/// oidc-provider's version as the rival's `package-lock.json` pins it.
pub fn locked_version(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("package-lock.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    version_in_lock(&text)
        .with_context(|| format!("no oidc-provider version in {}", path.display()))
}

fn version_in_lock(lock: &str) -> Option<String> {
    let lock: serde_json::Value = serde_json::from_str(lock).ok()?;
    lock["packages"]["node_modules/oidc-provider"]["version"].as_str().map(str::to_owned)
}

/// Runs the rival through the selected scenarios it shares with Castellan; Ctrl-C stops it.
pub async fn run(
    options: &Options,
    selected: &[&'static str],
    clock_ticks: f64,
) -> anyhow::Result<report::Rival> {
    tokio::select! {
        result = start_and_load(options, selected, clock_ticks) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    }
}

async fn start_and_load(
    options: &Options,
    selected: &[&'static str],
    clock_ticks: f64,
) -> anyhow::Result<report::Rival> {
    let version = locked_version(&options.dir)?;
    let dir = WorkDir::create()?;
    let (rival, ready, pids) = start(options, &version, dir.path().join("rival.log")).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kib = procfs::total_rss_kib(&pids);
    let ready_ms = rival.ready_after.as_secs_f64() * 1000.0;
    eprintln!(
        "{NAME} {version} ready in {ready_ms:.0} ms ({} workers, pids {pids:?}); idle RSS \
         {idle_rss_kib} KiB",
        options.workers,
    );

    let mut results = Vec::new();
    for name in COMPARABLE.into_iter().filter(|name| selected.contains(name)) {
        let prepared = prepare(name, &rival.target, &ready, options).await;
        let (target, window) = (&rival.target, options.window);
        let result =
            load::run_prepared(name, prepared, NAME, target, &pids, window, clock_ticks, &Redis)
                .await
                .with_context(|| format!("{NAME} {name}; its log:\n{}", rival.log_tail()))?;
        results.push(result);
    }
    rival.stop(crate::STOP_LIMIT).await.with_context(|| format!("stopping {NAME}"))?;
    Ok(report::Rival {
        name: NAME,
        version,
        node: ready.node,
        workers: options.workers,
        configuration: CONFIGURATION,
        ready_ms,
        idle_rss_kib,
        scenarios: results,
    })
}

/// Starts the rival and checks that it runs the pinned version with the workers asked for:
/// the rival, its ready line, and the pids of its primary and workers.
async fn start(
    options: &Options,
    version: &str,
    log_file: PathBuf,
) -> anyhow::Result<(Rival, Ready, Vec<u32>)> {
    let mut rival = Rival::spawn(options, server::free_port()?, log_file)?;
    let ready = rival.wait_ready(crate::START_LIMIT).await?;
    anyhow::ensure!(
        ready.oidc_provider == version,
        "node_modules holds oidc-provider {} but package-lock.json pins {version}: run `npm ci \
         --prefix {}`",
        ready.oidc_provider,
        options.dir.display()
    );
    anyhow::ensure!(ready.workers == options.workers, "{NAME} started {} workers", ready.workers);
    let pids = rival.pids(options.workers)?;
    Ok((rival, ready, pids))
}

/// The local Redis server holding the rival's tokens: its CPU time is the rival's database
/// time, as the Postgres backends' is Castellan's.
struct Redis;

impl DatabaseProcesses for Redis {
    fn pids(&self) -> Vec<u32> {
        procfs::named("redis-server")
    }
}

/// The workloads of one scenario, against the rival's endpoints.
async fn prepare(name: &str, target: &Target, ready: &Ready, options: &Options) -> Prepared {
    let users = Users {
        connections: options.connections,
        flow_connections: options.connections,
        prompt_consent: false,
        distinct_tokens: options.distinct_tokens,
    };
    let count = options.connections;
    match name {
        "client_credentials_rs256" => jwt_tokens(target, ready, count).await,
        "introspection" => introspection(target, ready, count).await,
        "introspection_distinct" => {
            let introspect = |token: &str| ready.introspection_request(target, token);
            scenarios::distinct_introspection(
                target,
                ready.opaque_request(target),
                introspect,
                users,
            )
            .await
        }
        "jwks" => get(target, &ready.jwks_path, count),
        "discovery" => get(target, &ready.discovery_path, count),
        other => Prepared::Skipped(format!("{NAME} has no {other} scenario here")),
    }
}

fn get(target: &Target, path: &str, count: usize) -> Prepared {
    scenarios::fixed(http::request("GET", target, path, &[], None), None, count)
}

/// RS256 JWT access tokens, checked with one first.
async fn jwt_tokens(target: &Target, ready: &Ready, count: usize) -> Prepared {
    let request = ready.jwt_request(target);
    match setup::access_token(target, &request).await {
        Err(reason) => Prepared::Failed(format!("probe token: {reason}")),
        Ok(token) => match setup::jws_alg(&token) {
            Some(alg) if alg == "RS256" => scenarios::fixed(request, None, count),
            other => Prepared::Failed(format!(
                "asked for an RS256 JWT access token but got alg {}",
                other.unwrap_or_else(|| "(not a JWT)".into())
            )),
        },
    }
}

/// One opaque token introspected again and again; checked once first.
async fn introspection(target: &Target, ready: &Ready, count: usize) -> Prepared {
    let token = match setup::access_token(target, &ready.opaque_request(target)).await {
        Ok(token) => token,
        Err(reason) => return Prepared::Failed(format!("the token to introspect: {reason}")),
    };
    let request = ready.introspection_request(target, &token);
    let answer = match Connection::open(target.addr).await {
        Ok(mut connection) => connection.send(&request).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match answer {
        Ok(response) if response.status == 200 && response.contains(br#""active":true"#) => {
            scenarios::fixed(request, Some(br#""active":true"#), count)
        }
        Ok(response) => Prepared::Failed(format!(
            "probe introspection: HTTP {}: {}",
            response.status,
            response.text()
        )),
        Err(reason) => Prepared::Failed(format!("probe introspection: {reason}")),
    }
}

/// The line `server.js` prints on stdout once every worker listens.
#[derive(Debug, Deserialize)]
struct Ready {
    workers: usize,
    oidc_provider: String,
    node: String,
    client_id: String,
    client_secret: String,
    scope: String,
    /// The resource indicator whose tokens are RS256 JWTs.
    resource: String,
    token_path: String,
    introspection_path: String,
    jwks_path: String,
    discovery_path: String,
}

impl Ready {
    fn basic(&self) -> String {
        http::basic(&self.client_id, &self.client_secret)
    }

    /// client_credentials for the resource server: an RS256 JWT access token.
    fn jwt_request(&self, target: &Target) -> Vec<u8> {
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", self.scope.as_str()),
            ("resource", self.resource.as_str()),
        ];
        http::post_form(target, &self.token_path, &[("Authorization", &self.basic())], &form)
    }

    /// client_credentials without a resource: an opaque access token, kept in Redis.
    fn opaque_request(&self, target: &Target) -> Vec<u8> {
        let form = [("grant_type", "client_credentials"), ("scope", self.scope.as_str())];
        http::post_form(target, &self.token_path, &[("Authorization", &self.basic())], &form)
    }

    fn introspection_request(&self, target: &Target, token: &str) -> Vec<u8> {
        let form = [("token", token)];
        http::post_form(
            target,
            &self.introspection_path,
            &[("Authorization", &self.basic())],
            &form,
        )
    }
}

/// The running cluster; the whole process group is killed when dropped unless it was stopped.
struct Rival {
    child: Child,
    started: Instant,
    ready_after: Duration,
    stdout: mpsc::Receiver<String>,
    target: Target,
    log_file: PathBuf,
    stopped: bool,
}

impl Rival {
    /// Starts `node server.js` in a process group of its own (so its workers can be killed
    /// with it), with a clean environment holding only its settings.
    fn spawn(options: &Options, port: u16, log_file: PathBuf) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = File::options().create(true).append(true).open(&log_file)?;
        let mut command = Command::new("node");
        command.env_clear();
        for keep in ["PATH", "HOME", "TMPDIR"] {
            if let Some(value) = std::env::var_os(keep) {
                command.env(keep, value);
            }
        }
        command
            .arg("server.js")
            .current_dir(&options.dir)
            .env("NODE_ENV", "production")
            .env("RIVAL_PORT", port.to_string())
            .env("RIVAL_WORKERS", options.workers.to_string())
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let started = Instant::now();
        let mut child =
            command.spawn().context("cannot start node (install Node.js 20 or newer)")?;
        let stdout = server::stdout_lines(&mut child);
        Ok(Self {
            child,
            started,
            ready_after: Duration::ZERO,
            stdout,
            target: Target::new(addr),
            log_file,
            stopped: false,
        })
    }

    /// Waits for the ready line on stdout.
    async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Ready> {
        let deadline = self.started + limit;
        loop {
            match self.stdout.try_recv() {
                Ok(line) => {
                    if let Ok(ready) = serde_json::from_str::<Ready>(&line) {
                        self.ready_after = self.started.elapsed();
                        return Ok(ready);
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {}
                Err(mpsc::TryRecvError::Disconnected) => {
                    bail!("{NAME} closed its stdout during start-up:\n{}", self.log_tail())
                }
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("{NAME} exited during start-up ({status}):\n{}", self.log_tail());
            }
            if Instant::now() >= deadline {
                bail!("{NAME} was not ready within {limit:?}:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The primary and its workers, found in /proc: exactly `workers` of them, or an error.
    fn pids(&self, workers: usize) -> anyhow::Result<Vec<u32>> {
        let primary = self.child.id();
        let children = procfs::children(primary)?;
        anyhow::ensure!(
            children.len() == workers,
            "{NAME}'s primary (pid {primary}) has {} child processes, not {workers} workers",
            children.len()
        );
        Ok([vec![primary], children].concat())
    }

    /// SIGTERM to the primary (through `kill`: no libc here), which stops its workers first.
    async fn stop(mut self, limit: Duration) -> anyhow::Result<()> {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().context("kill")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                anyhow::ensure!(status.success(), "{NAME} exited with {status} after SIGTERM");
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{NAME} did not exit within {limit:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The last lines of the rival's log (its stderr), for an error message.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Rival {
    /// Kills the whole process group (primary and workers) before reaping the primary: its
    /// pid, the group's id, cannot be reused until then.
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_comes_from_the_lock_entry_of_oidc_provider() {
        let lock = r#"{"packages": {"": {"dependencies": {"oidc-provider": "9.13.3"}},
            "node_modules/oidc-provider": {"version": "9.13.3"},
            "node_modules/jose": {"version": "6.2.13"}}}"#;
        assert_eq!(version_in_lock(lock).as_deref(), Some("9.13.3"));
        assert_eq!(version_in_lock(r#"{"packages": {}}"#), None);
        assert_eq!(version_in_lock("not json"), None);
    }

    #[test]
    fn the_ready_line_parses_into_the_rival_endpoints() {
        let line = r#"{"ready":true,"issuer":"http://127.0.0.1:1","workers":2,
            "oidc_provider":"9.13.3","node":"v20.20.2","client_id":"bench","client_secret":"s",
            "scope":"bench","resource":"https://api.bench.invalid/","token_path":"/token",
            "introspection_path":"/token/introspection","jwks_path":"/jwks",
            "discovery_path":"/.well-known/openid-configuration"}"#;
        let ready: Ready = serde_json::from_str(line).expect("ready line");
        let target = Target::new(SocketAddr::from(([127, 0, 0, 1], 1)));
        let request = String::from_utf8(ready.jwt_request(&target)).expect("utf-8");
        assert!(request.starts_with("POST /token HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("resource=https%3A%2F%2Fapi.bench.invalid%2F"), "{request}");
        let request = String::from_utf8(ready.introspection_request(&target, "t")).expect("utf-8");
        assert!(request.starts_with("POST /token/introspection HTTP/1.1\r\n"), "{request}");
        assert!(request.ends_with("token=t"), "{request}");
        assert_eq!(ready.workers, 2);
    }

    #[test]
    fn the_folder_check_asks_for_npm_ci() {
        let dir = WorkDir::create().expect("dir");
        std::fs::write(dir.path().join("server.js"), "").expect("server.js");
        let error = folder(Some(dir.path()), Path::new("/"), &["jwks"]).expect_err("no modules");
        assert!(error.to_string().contains("npm ci --prefix"), "{error}");
        let error = folder(Some(dir.path()), Path::new("/"), &["refresh"]).expect_err("nothing");
        assert!(error.to_string().contains("none is selected"), "{error}");
    }
}
