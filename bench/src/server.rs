//! The server under test: building the release binary, starting it on a database, timing
//! readiness, and stopping it with SIGTERM.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::http::{self, Connection, Target};

/// How often readiness is polled while a server starts.
const READY_POLL: Duration = Duration::from_millis(5);

/// Builds `target/release/castellan` with the cargo running this bench and returns its path.
pub fn build(workspace: &Path) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    // With the bench in the same build, features unify and the library is built only once.
    eprintln!(
        "building the release server: cargo build --release -p castellan -p castellan-bench --bin castellan"
    );
    let status = Command::new(&cargo)
        .args([
            "build",
            "--release",
            "-p",
            "castellan",
            "-p",
            "castellan-bench",
            "--bin",
            "castellan",
        ])
        .current_dir(workspace)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build of the server failed ({status})");
    }
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => std::env::current_dir()?.join(dir),
        None => workspace.join("target"),
    };
    Ok(target_dir.join("release").join("castellan"))
}

/// The lines a child prints on its piped stdout, read on a thread of their own.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (lines, stdout) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    stdout
}

/// A port free right now on the loopback interface.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct Launch {
    pub bin: PathBuf,
    pub database_url: String,
    pub keys_dir: PathBuf,
    pub port: u16,
    pub log_filter: String,
    /// Server logs (stderr) are appended here.
    pub log_file: PathBuf,
}

/// A running server process; killed when dropped unless it was stopped.
pub struct Server {
    child: Child,
    started: Instant,
    stdout: mpsc::Receiver<String>,
    pub target: Target,
    log_file: PathBuf,
}

impl Server {
    /// Starts the server with a clean environment holding only its settings.
    pub fn spawn(launch: &Launch) -> anyhow::Result<Self> {
        let addr = SocketAddr::from(([127, 0, 0, 1], launch.port));
        let log = File::options().create(true).append(true).open(&launch.log_file)?;
        let mut command = Command::new(&launch.bin);
        command.env_clear();
        for keep in ["PATH", "HOME", "TMPDIR"] {
            if let Some(value) = std::env::var_os(keep) {
                command.env(keep, value);
            }
        }
        command
            .env("DATABASE_URL", &launch.database_url)
            .env("CASTELLAN_BIND", addr.to_string())
            .env("CASTELLAN_ISSUER", format!("http://{addr}"))
            .env("CASTELLAN_KEYS_DIR", &launch.keys_dir)
            .env("CASTELLAN_LOG", &launch.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let started = Instant::now();
        let mut child =
            command.spawn().with_context(|| format!("cannot start {}", launch.bin.display()))?;
        let stdout = stdout_lines(&mut child);
        Ok(Self {
            child,
            started,
            stdout,
            target: Target::new(addr),
            log_file: launch.log_file.clone(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// When the process was spawned.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Polls `GET /health/ready` until it answers 200; the time from spawn to that answer.
    pub async fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let request = http::request("GET", &self.target, "/health/ready", &[], None);
        let deadline = self.started + limit;
        loop {
            if let Ok(mut connection) = Connection::open(self.target.addr).await
                && let Ok(response) = connection.send(&request).await
                && response.status == 200
            {
                return Ok(self.started.elapsed());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited during start-up ({status}):\n{}", self.log_tail());
            }
            if Instant::now() >= deadline {
                bail!("the server was not ready within {limit:?}:\n{}", self.log_tail());
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The first admin client printed on stdout at the first start of an empty database:
    /// one JSON line `{"client_id", "client_secret"}`.
    pub async fn first_admin(&self, limit: Duration) -> anyhow::Result<(String, String)> {
        let deadline = Instant::now() + limit;
        loop {
            match self.stdout.try_recv() {
                Ok(line) => {
                    let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                        continue;
                    };
                    if let (Some(id), Some(secret)) =
                        (json["client_id"].as_str(), json["client_secret"].as_str())
                    {
                        return Ok((id.to_owned(), secret.to_owned()));
                    }
                }
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(_) => bail!("the server printed no admin client credential on stdout"),
            }
        }
    }

    /// SIGTERM (through `kill`: no libc here), then waits for the process to exit.
    pub async fn stop(mut self, limit: Duration) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed", self.pid());
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the server exited with {status} after SIGTERM");
                }
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("the server did not exit within {limit:?} of SIGTERM");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The last lines of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
