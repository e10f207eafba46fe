//! Start-up and shut-down of the real binary: first start, bad settings, the master key,
//! migrations, concurrent replicas and SIGTERM.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::Engine;
use castellan::oauth::jwk::Algorithm;
use sea_orm::{ConnectOptions, ConnectionTrait, Database};

use crate::helpers::{
    ServerProcess, TestDatabase, as_refs, castellan, eventually, kids, process_env, spawn_app_with,
};

/// stderr lines that are not JSON log events: what a person reads when start-up fails.
fn plain_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| !l.starts_with('{'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_fresh_directory_with_no_environment_serves_discovery_and_jwks() {
    let dir = tempfile::tempdir().expect("temp dir");

    // Only the port differs from a bare `castellan`: tests run side by side.
    let server = ServerProcess::spawn(dir.path(), &[]).await;

    let http = reqwest::Client::new();
    let metadata: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", server.address))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("JSON");
    assert_eq!(metadata["issuer"].as_str(), Some(server.address.as_str()));
    let jwks: serde_json::Value = http
        .get(metadata["jwks_uri"].as_str().expect("jwks_uri"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("JSON");
    assert_eq!(kids(&jwks).len(), 2);
    assert!(dir.path().join("castellan.db").exists(), "the default SQLite file is created");
    let master = dir.path().join("keys/master.key");
    let mode = std::fs::metadata(&master).expect("master key created").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn a_missing_keys_folder_is_created() {
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let keys_dir = elsewhere.path().join("not/yet/there");

    let _app = spawn_app_with(|s| s.keys_dir = keys_dir.clone()).await;

    assert!(keys_dir.join("master.key").exists());
    let mode = std::fs::metadata(&keys_dir).expect("folder").permissions().mode();
    assert_eq!(mode & 0o077, 0, "the keys folder is private");
}

#[tokio::test]
async fn a_wrong_master_key_stops_start_up_with_one_clear_line() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let first = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    drop(first);
    let wrong = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);

    let output = castellan(db.dir.path())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("CASTELLAN_MASTER_KEY", &wrong)
        .env("CASTELLAN_LOG_FORMAT", "json")
        .env("CASTELLAN_BIND", "127.0.0.1:0")
        .output()
        .expect("run castellan");

    assert_eq!(output.status.code(), Some(1));
    let lines = plain_lines(&output.stderr);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("error: the master key does not open signing key"), "{lines:?}");
    assert!(!String::from_utf8_lossy(&output.stderr).contains("panicked"));
}

#[tokio::test]
async fn a_bad_setting_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, value) in [
        ("CASTELLAN_BIND", "not-an-address"),
        ("CASTELLAN_ISSUER", "ftp://example.com"),
        ("CASTELLAN_ISSUER", "https://example.com/?q=1"),
        ("CASTELLAN_JWKS_MAX_AGE", "10m"),
        ("CASTELLAN_SYNC_INTERVAL", "banana"),
        ("CASTELLAN_LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://x"),
        ("CASTELLAN_BRAND_ACCENT", "red; } body { display: none"),
        ("CASTELLAN_BRAND_NAME", " "),
    ] {
        let output = castellan(dir.path()).env(name, value).output().expect("run castellan");

        assert_eq!(output.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "{name}={value}: {stderr}");
        assert!(stderr.starts_with(&format!("error: invalid {name}:")), "{stderr}");
    }
    let everywhere =
        castellan(dir.path()).env("CASTELLAN_BIND", "0.0.0.0:0").output().expect("run castellan");
    assert_eq!(everywhere.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&everywhere.stderr).starts_with("error: invalid CASTELLAN_ISSUER:")
    );
    assert!(!dir.path().join("castellan.db").exists(), "nothing was created");
}

#[tokio::test]
async fn a_malformed_master_key_stops_start_up_with_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");

    let output = castellan(dir.path())
        .env("CASTELLAN_MASTER_KEY", "c2hvcnQ=")
        .output()
        .expect("run castellan");

    assert_eq!(output.status.code(), Some(1));
    let lines = plain_lines(&output.stderr);
    let errors: Vec<_> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{lines:?}");
    assert!(errors[0].contains("CASTELLAN_MASTER_KEY"));
}

#[tokio::test]
async fn migrate_applies_the_schema_and_exits() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);

    let output = castellan(db.dir.path())
        .arg("migrate")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("castellan migrate");

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut options = ConnectOptions::new(db.url().to_owned());
    options.max_connections(1);
    let connection = Database::connect(options).await.expect("connect");
    let applied = connection
        .query_all_raw(sea_orm::Statement::from_string(
            connection.get_database_backend(),
            "SELECT version FROM seaql_migrations",
        ))
        .await
        .expect("migrations table");
    assert!(!applied.is_empty());
    connection.execute_unprepared("SELECT kid FROM signing_keys").await.expect("keys table");
}

#[tokio::test]
async fn keys_list_shows_the_active_and_next_keys() {
    let app = spawn_app_with(|_| {}).await;
    let env = process_env(&app.db);

    let output = castellan(app.db.dir.path())
        .args(["keys", "list"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("castellan keys list");

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listing = String::from_utf8(output.stdout).expect("utf-8");
    for alg in Algorithm::ALL {
        let of = |state: &str| {
            let matches = |l: &str| {
                l.split_whitespace().skip(1).take(2).eq([alg.as_str(), state].into_iter())
            };
            listing.lines().filter(|l| matches(l)).collect::<Vec<_>>()
        };
        let active = of("active");
        assert_eq!(active.len(), 1, "{listing}");
        assert!(active[0].starts_with(&app.keys.active_kid(alg)));
        assert_eq!(of("next").len(), 1, "{listing}");
    }
}

#[tokio::test]
async fn replicas_started_together_on_an_empty_database_all_come_up() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let refs = as_refs(&env);

    let dir = db.dir.path();
    // Polled together, so the five processes start at the same moment.
    let replicas = tokio::join!(
        ServerProcess::spawn(dir, &refs),
        ServerProcess::spawn(dir, &refs),
        ServerProcess::spawn(dir, &refs),
        ServerProcess::spawn(dir, &refs),
        ServerProcess::spawn(dir, &refs),
    );
    let replicas = [replicas.0, replicas.1, replicas.2, replicas.3, replicas.4];

    let http = reqwest::Client::new();
    let mut sets = Vec::new();
    for replica in &replicas {
        let ready =
            http.get(format!("{}/health/ready", replica.address)).send().await.expect("GET");
        assert_eq!(ready.status(), 200);
        let jwks: serde_json::Value = http
            .get(format!("{}/jwks", replica.address))
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
        sets.push(jwks);
    }
    let converged = eventually(Duration::from_secs(5), || async {
        let mut sets = Vec::new();
        for replica in &replicas {
            let jwks: serde_json::Value = http
                .get(format!("{}/jwks", replica.address))
                .send()
                .await
                .expect("GET")
                .json()
                .await
                .expect("JSON");
            sets.push(jwks);
        }
        sets.windows(2).all(|w| w[0] == w[1]) && kids(&sets[0]).len() == 2
    })
    .await;
    assert!(converged, "one active and one next key, the same everywhere: {sets:?}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_and_exits_zero() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let mut server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    // A request that takes a while: readiness waits on a database write lock held here.
    let mut options = ConnectOptions::new(db.url().to_owned());
    options.max_connections(1);
    let blocker = Database::connect(options).await.expect("connect");
    if db.is_postgres() {
        blocker.execute_unprepared("BEGIN").await.expect("begin");
        blocker
            .execute_unprepared("LOCK TABLE seaql_migrations IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
    } else {
        blocker.execute_unprepared("BEGIN IMMEDIATE").await.expect("lock");
    }
    let http = reqwest::Client::new();
    let in_flight = tokio::spawn(http.get(format!("{}/health/ready", server.address)).send());
    tokio::time::sleep(Duration::from_millis(500)).await;

    server.sigterm();

    let response = in_flight.await.expect("join").expect("the in-flight request completes");
    assert_eq!(response.status(), 503);
    assert_eq!(server.wait(Duration::from_secs(15)).await, Some(0), "exit code 0");
    blocker.execute_unprepared("ROLLBACK").await.expect("release");
}

#[tokio::test]
async fn the_first_start_prints_an_admin_credential_once() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let first = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    eventually(Duration::from_secs(5), || async { !first.stdout.lock().expect("lock").is_empty() })
        .await;
    let printed = first.stdout.lock().expect("lock").clone();
    assert_eq!(printed.len(), 1, "{printed:?}");
    let credential: serde_json::Value = serde_json::from_str(&printed[0]).expect("one JSON object");
    let admin = (
        credential["client_id"].as_str().expect("id").to_owned(),
        credential["client_secret"].as_str().expect("secret").to_owned(),
    );
    let token = crate::helpers::token_from(&first.address, &admin).await;
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<serde_json::Value>(&token)
        .expect("claims");
    assert_eq!(claims["scope"], "admin");
    assert!(
        !first.stderr.lock().expect("lock").iter().any(|l| l.contains(&admin.1)),
        "the secret never reaches the logs"
    );
    drop(first);

    let again = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(again.stdout.lock().expect("lock").is_empty(), "never printed twice");
}

#[tokio::test]
async fn clients_create_admin_prints_exactly_one_json_object() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);

    let output = castellan(db.dir.path())
        .args(["clients", "create", "--admin"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("castellan clients create --admin");

    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
    let mut keys: Vec<_> = json.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["client_id", "client_secret"]);
    let server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let admin = (
        json["client_id"].as_str().expect("id").to_owned(),
        json["client_secret"].as_str().expect("secret").to_owned(),
    );
    let token = crate::helpers::token_from(&server.address, &admin).await;
    let listed = reqwest::Client::new()
        .get(format!("{}/admin/clients", server.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert_eq!(listed.status(), 200);
}
