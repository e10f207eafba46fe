//! The test harness: a real server on port 0 against a fresh database per test, SQLite
//! by default or Postgres when `TEST_DATABASE_URL` names one.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use castellan::config::Settings;
use castellan::oauth::keyring::Keys;
use castellan::startup::Application;
use castellan::store::{self, Db};
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use tempfile::TempDir;

/// The backend this test run targets.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres { admin_url: String },
}

pub fn backend() -> Backend {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Backend::Postgres { admin_url: url },
        _ => Backend::Sqlite,
    }
}

/// A database of its own for one test, dropped (Postgres) or deleted (SQLite) afterwards.
pub struct TestDatabase {
    pub dir: TempDir,
    url: String,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend() {
            Backend::Sqlite => {
                let url =
                    format!("sqlite://{}?mode=rwc", dir.path().join("castellan.db").display());
                Self { dir, url, postgres: None }
            }
            Backend::Postgres { admin_url } => {
                let name = format!("test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("TEST_DATABASE_URL must reach a running Postgres");
                admin
                    .execute_unprepared(&format!(r#"CREATE DATABASE "{name}""#))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let url = with_database(&admin_url, &name);
                Self { dir, url, postgres: Some((admin_url, name)) }
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// The same database reached through another local port (a proxy in front of Postgres).
    pub fn url_via_port(&self, port: u16) -> String {
        let mut url = url::Url::parse(&self.url).expect("database url");
        url.set_host(Some("127.0.0.1")).expect("host");
        url.set_port(Some(port)).expect("port");
        url.to_string()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs outside async context; use a short-lived runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            }
        })
        .join();
    }
}

fn with_database(admin_url: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Settings for a test server: port 0, a private keys folder, fast cache refresh.
pub fn test_settings(db: &TestDatabase) -> Settings {
    Settings {
        bind: "127.0.0.1:0".parse().expect("address"),
        database_url: SecretString::from(db.url().to_owned()),
        keys_dir: db.dir.path().join("keys"),
        jwks_max_age: Duration::from_secs(1),
        sync_interval: Duration::from_millis(200),
        db_timeout: Duration::from_secs(2),
        shutdown_timeout: Duration::from_secs(10),
        ..Settings::default()
    }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: String,
    pub issuer: String,
    pub keys: Arc<Keys>,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub db: Arc<TestDatabase>,
    /// The admin client made on first start: (client_id, client_secret).
    pub admin: (String, String),
    /// The internal listener (metrics and health), when the settings ask for one.
    pub internal: Option<String>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let db = Arc::new(TestDatabase::create().await);
    let mut settings = test_settings(&db);
    configure(&mut settings);
    start(db, settings).await
}

/// Starts a server on a fresh database, keeping `db` alive as long as the app.
pub async fn start(db: Arc<TestDatabase>, settings: Settings) -> TestApp {
    start_with_admin(db, settings, None).await
}

async fn start_with_admin(
    db: Arc<TestDatabase>,
    settings: Settings,
    admin: Option<(String, String)>,
) -> TestApp {
    init_logging();
    let app = Application::build(settings.clone()).await.expect("the server starts");
    let address = format!("http://{}", app.address());
    let issuer = app.issuer().as_str().to_owned();
    let keys = app.keys();
    let internal = app.internal_address().map(|a| format!("http://{a}"));
    let admin = admin
        .or_else(|| {
            app.first_admin().map(|c| {
                let json: serde_json::Value = serde_json::from_str(&c.to_json()).expect("JSON");
                (
                    json["client_id"].as_str().expect("id").to_owned(),
                    json["client_secret"].as_str().expect("secret").to_owned(),
                )
            })
        })
        .expect("a fresh database gets a first admin client");
    tokio::spawn(app.run_until_stopped());
    TestApp { address, issuer, keys, settings, http: reqwest::Client::new(), db, admin, internal }
}

impl TestApp {
    /// Another replica on the same database with the same master key and issuer (replicas
    /// behind one load balancer share the issuer).
    pub async fn replica(&self) -> TestApp {
        let mut settings = self.settings.clone();
        settings.issuer = Some(castellan::config::Issuer::parse(&self.issuer).expect("issuer"));
        start_with_admin(self.db.clone(), settings, Some(self.admin.clone())).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// POSTs a token request authenticated with HTTP Basic.
    pub async fn token_basic(
        &self,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        self.http
            .post(self.url("/token"))
            .basic_auth(form_encode(client_id), Some(form_encode(secret)))
            .form(form)
            .send()
            .await
            .expect("token request")
    }

    /// A client_credentials access token for `client_id`, or the error body.
    pub async fn client_token(
        &self,
        client_id: &str,
        secret: &str,
        scope: Option<&str>,
    ) -> serde_json::Value {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.token_basic(client_id, secret, &form).await.json().await.expect("token JSON")
    }

    /// An access token with the `admin` scope.
    pub async fn admin_token(&self) -> String {
        let (id, secret) = self.admin.clone();
        let body = self.client_token(&id, &secret, None).await;
        body["access_token"].as_str().expect("admin token").to_owned()
    }

    /// Sends an admin request with a fresh admin token.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let token = self.admin_token().await;
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("admin request")
    }

    /// Registers a client through the admin API; returns its JSON (with its secret).
    pub async fn create_client(&self, metadata: serde_json::Value) -> serde_json::Value {
        let response = self.admin(reqwest::Method::POST, "/admin/clients", Some(metadata)).await;
        assert_eq!(response.status(), 201, "client registration");
        response.json().await.expect("client JSON")
    }

    /// A confidential client_credentials client allowed `scope` and `audience`.
    pub async fn service_client(&self, scope: &str, audience: &[&str]) -> (String, String) {
        let client = self
            .create_client(serde_json::json!({
                "client_name": "service",
                "grant_types": ["client_credentials"],
                "scope": scope,
                "audience": audience,
            }))
            .await;
        (
            client["client_id"].as_str().expect("id").to_owned(),
            client["client_secret"].as_str().expect("secret").to_owned(),
        )
    }

    /// A confidential client that runs the API every token without an `audience` is meant
    /// for (the issuer's): it may introspect those tokens (RFC 7662 §4).
    pub async fn resource_server(&self) -> (String, String) {
        let client = self
            .create_client(serde_json::json!({
                "client_name": "resource server",
                "grant_types": ["client_credentials"],
                "scope": "profile",
                "served_resources": [self.issuer],
            }))
            .await;
        (
            client["client_id"].as_str().expect("id").to_owned(),
            client["client_secret"].as_str().expect("secret").to_owned(),
        )
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.address)).send().await.expect("request")
    }

    /// `POST /introspect` of `token` by `caller`: the JSON answer (always 200, `no-store`).
    pub async fn introspect(&self, caller: &(String, String), token: &str) -> serde_json::Value {
        let response = self
            .http
            .post(self.url("/introspect"))
            .basic_auth(&caller.0, Some(&caller.1))
            .form(&[("token", token)])
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        response.json().await.expect("JSON")
    }

    /// `POST /revoke` of `token` by `caller`, with an optional `token_type_hint`: the status.
    pub async fn revoke(&self, caller: &(String, String), token: &str, hint: Option<&str>) -> u16 {
        let mut form = vec![("token", token)];
        if let Some(hint) = hint {
            form.push(("token_type_hint", hint));
        }
        let response = self
            .http
            .post(self.url("/revoke"))
            .basic_auth(&caller.0, Some(&caller.1))
            .form(&form)
            .send()
            .await
            .expect("POST");
        response.status().as_u16()
    }

    /// `GET /userinfo` with `token` as the bearer.
    pub async fn userinfo(&self, token: &str) -> reqwest::Response {
        self.http.get(self.url("/userinfo")).bearer_auth(token).send().await.expect("GET")
    }

    pub async fn jwks(&self) -> serde_json::Value {
        self.get("/jwks").await.json().await.expect("JWKS JSON")
    }

    pub async fn jwks_kids(&self) -> Vec<String> {
        kids(&self.jwks().await)
    }

    /// A connection of the test's own to the server's database.
    pub async fn store(&self) -> Db {
        store::connect(&self.settings).await.expect("test connection")
    }
}

/// The claims of a JWT, read without verifying it (for asserting what a token says).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64.
fn form_encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Verifies `token` against the JWKS alone (an independent path: jsonwebtoken, from the
/// published JWK, with the algorithm the JWK names), returning its header and claims.
pub async fn verify_with_jwks(
    app: &TestApp,
    token: &str,
    audience: &str,
) -> (jsonwebtoken::Header, serde_json::Value) {
    let header = jsonwebtoken::decode_header(token).expect("JWT header");
    let kid = header.kid.clone().expect("kid");
    let jwks = app.jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published")
        .clone();
    let alg: jsonwebtoken::Algorithm =
        jwk["alg"].as_str().expect("alg").parse().expect("a JWS algorithm");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk).expect("JWK");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("usable JWK");
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[&app.issuer]);
    validation.set_audience(&[audience]);
    let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
        .expect("verifies with the JWKS");
    (data.header, data.claims)
}

/// The kids of the published RS256 keys (every algorithm's keys rotate alike).
pub fn kids(jwks: &serde_json::Value) -> Vec<String> {
    kids_of(jwks, Some("RS256"))
}

/// The kids of every published key, whatever its algorithm.
pub fn all_kids(jwks: &serde_json::Value) -> Vec<String> {
    kids_of(jwks, None)
}

fn kids_of(jwks: &serde_json::Value, alg: Option<&str>) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("keys array")
        .iter()
        .filter(|k| alg.is_none_or(|alg| k["alg"] == alg))
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// Polls `check` every 100 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        static GUARD: std::sync::OnceLock<tracing_appender::non_blocking::WorkerGuard> =
            std::sync::OnceLock::new();
        GUARD.get_or_init(|| {
            castellan::telemetry::init(&Settings {
                log_filter: std::env::var("TEST_LOG_FILTER").unwrap_or_else(|_| "debug".into()),
                ..Settings::default()
            })
        });
    }
}

/// The `castellan` binary with a clean environment (none of the developer's settings).
pub fn castellan(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_castellan"));
    command.current_dir(dir).env_clear();
    for keep in ["PATH", "HOME", "TMPDIR"] {
        if let Some(value) = std::env::var_os(keep) {
            command.env(keep, value);
        }
    }
    command
}

/// A server running as a separate process.
pub struct ServerProcess {
    child: Child,
    pub address: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Spawns `castellan serve` on port 0 with `env`, waiting until it listens.
    pub async fn spawn(dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut command = castellan(dir);
        command
            .args(["--bind", "127.0.0.1:0", "--log-format", "json"])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn castellan");
        let stdout_lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let collected_stdout = stdout_lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                collected_stdout.lock().expect("lock").push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (found, address) = tokio::sync::oneshot::channel();
        let collected = lines.clone();
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<serde_json::Value>(&line)
                    && event["message"] == "listening"
                    && let Some(sender) = found.take()
                {
                    let _ = sender.send(event["address"].as_str().unwrap_or_default().to_owned());
                }
                collected.lock().expect("lock").push(line);
            }
        });
        let address = tokio::time::timeout(Duration::from_secs(60), address)
            .await
            .expect("the server process starts listening within 60 s")
            .unwrap_or_else(|_| panic!("the server exited: {:?}", lines.lock().expect("lock")));
        ServerProcess {
            child,
            address: format!("http://{address}"),
            stdout: stdout_lines,
            stderr: lines,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sigterm(&self) {
        let status =
            Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment that points a `castellan` process at a test database.
pub fn process_env(db: &TestDatabase) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", db.url().to_owned()),
        ("CASTELLAN_KEYS_DIR", keys_dir(db).display().to_string()),
        ("CASTELLAN_SYNC_INTERVAL", "200ms".into()),
        ("CASTELLAN_JWKS_MAX_AGE", "1s".into()),
    ]
}

pub fn keys_dir(db: &TestDatabase) -> PathBuf {
    db.dir.path().join("keys")
}

/// Creates an admin client with `castellan clients create --admin`: (client_id, secret).
pub fn cli_admin(db: &TestDatabase) -> (String, String) {
    let output = castellan(db.dir.path())
        .args(["clients", "create", "--admin"])
        .envs(process_env(db).iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("castellan clients create --admin");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("one JSON object on stdout");
    (
        json["client_id"].as_str().expect("id").to_owned(),
        json["client_secret"].as_str().expect("secret").to_owned(),
    )
}

/// A client_credentials access token from the server at `address`.
pub async fn token_from(address: &str, (id, secret): &(String, String)) -> String {
    let body: serde_json::Value = reqwest::Client::new()
        .post(format!("{address}/token"))
        .basic_auth(form_encode(id), Some(form_encode(secret)))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("JSON");
    body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_owned()
}

pub fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Polls every future together until all are done (no spawning, so they may borrow).
pub async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut slots: Vec<_> = handles.into_iter().map(Some).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..slots.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (slot, output) in slots.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done { std::task::Poll::Ready(()) } else { std::task::Poll::Pending }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("completed")).collect()
}
