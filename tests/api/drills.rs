//! Failure drills (docs/REFERENCE.md §8, §9): a database that goes away or slows down, SIGTERM under
//! load, and several server processes on one database. Recovery and propagation times are
//! printed (run with `--nocapture`); the assertions are on behaviour, with generous bounds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, Database};
use serde_json::{Value, json};

use crate::browser::{Browser, PASSWORD, REDIRECT, code_at, pkce};
use crate::helpers::{
    ServerProcess, TestApp, TestDatabase, as_refs, cli_admin, join_all, process_env, start,
    test_settings, token_from,
};
use crate::proxy::TcpProxy;

/// What must never appear in an answer: SQL, driver or ORM names, panics, backtraces.
const LEAKS: [&str; 12] = [
    "SELECT",
    "INSERT",
    "UPDATE ",
    "sqlx",
    "sea_orm",
    "sea-orm",
    "DbErr",
    "panicked",
    "backtrace",
    "Connection refused",
    "pool timed out",
    "postgres",
];

fn assert_no_leak(what: &str, body: &str) {
    for leak in LEAKS {
        assert!(!body.contains(leak), "{what} leaks {leak:?}: {body}");
    }
}

/// Polls every `every` until `check` holds; how long that took.
async fn time_until<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    polled_until(limit, Duration::from_millis(50), &mut check).await
}

async fn polled_until<F, Fut>(limit: Duration, every: Duration, check: &mut F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(every).await;
    }
    None
}

/// How long until `check` holds, polled back to back (each check is a request or two over
/// loopback, so the figure is good to about a millisecond).
async fn propagated<F, Fut>(limit: Duration, mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    polled_until(limit, Duration::ZERO, &mut check).await
}

/// Statements a replica ran because a change notification arrived (Postgres only).
async fn notified(base: &str) -> u64 {
    let text =
        reqwest::get(format!("{base}/metrics")).await.expect("GET").text().await.expect("text");
    let line = format!(
        "castellan_db_statements_total{{route=\"{}\"}} ",
        castellan::startup::NOTIFIED_STATEMENTS
    );
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map_or(0, |count| count.trim().parse().expect("count"))
}

/// On Postgres, the change reached both other replicas as a notification: each counts the
/// reads one caused (deterministic, where the drill's times depend on the machine's load).
async fn notice(db: &TestDatabase, change: &str, before: (u64, u64), at: [&String; 2]) {
    if !db.is_postgres() {
        return;
    }
    let arrived = propagated(Duration::from_secs(10), || async {
        notified(at[0]).await > before.0 && notified(at[1]).await > before.1
    })
    .await;
    assert!(arrived.is_some(), "no notification of the {change} reached the other replicas");
}

async fn admin_call(
    http: &reqwest::Client,
    base: &str,
    admin: &(String, String),
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let token = token_from(base, admin).await;
    let mut request = http.request(method, format!("{base}{path}")).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("admin request")
}

/// A web client and a user, made through the admin API of `base`.
async fn web_client_and_user(
    http: &reqwest::Client,
    base: &str,
    admin: &(String, String),
    username: &str,
) -> ((String, String), String) {
    let client: Value = admin_call(
        http,
        base,
        admin,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access",
        })),
    )
    .await
    .json()
    .await
    .expect("JSON");
    let made: Value = admin_call(
        http,
        base,
        admin,
        reqwest::Method::POST,
        "/admin/users",
        Some(json!({"username": username, "password": PASSWORD})),
    )
    .await
    .json()
    .await
    .expect("JSON");
    let client = (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    );
    (client, made["id"].as_str().expect("user id").to_owned())
}

async fn redeem_at(
    http: &reqwest::Client,
    base: &str,
    client: &(String, String),
    code: &str,
    verifier: &str,
) -> Result<reqwest::Response, reqwest::Error> {
    http.post(format!("{base}/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
}

/// A user's tokens: the browser flow at `login_at` (leaving `browser` signed in there), the
/// code redeemed at `redeem_at_base`.
async fn user_tokens(
    http: &reqwest::Client,
    browser: &Browser,
    login_at: &str,
    redeem_at_base: &str,
    client: &(String, String),
    username: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let code = code_at(browser, login_at, &client.0, username, &challenge).await;
    let response = redeem_at(http, redeem_at_base, client, &code, &verifier).await.expect("POST");
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn a_database_outage_fails_closed_everywhere_and_service_returns_without_restart() {
    let db = Arc::new(TestDatabase::create().await);
    if !db.is_postgres() {
        // A SQLite file has no network to lose; its locked-database drill is in health.rs.
        return;
    }
    let upstream = url::Url::parse(db.url()).expect("url");
    let proxy = TcpProxy::start(format!(
        "{}:{}",
        upstream.host_str().expect("host"),
        upstream.port().unwrap_or(5432)
    ))
    .await;
    let mut settings = test_settings(&db);
    settings.database_url = db.url_via_port(proxy.port).into();
    let app: TestApp = start(db.clone(), settings).await;
    let (client, _) = web_client_and_user(&app.http, &app.address, &app.admin, "olga").await;
    let browser = Browser::new();
    let tokens =
        user_tokens(&app.http, &browser, &app.address, &app.address, &client, "olga").await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();

    proxy.cut().await;
    let down = time_until(Duration::from_secs(15), || async {
        app.get("/health/ready").await.status() == 503
    })
    .await
    .expect("readiness turns 503");

    // Issuing and checking signed tokens reads nothing from the database, so for a moment
    // they go on from memory; past the staleness bound (5 s + the sync interval) without the
    // log and the key ring, no replica answers from memory any more.
    let closed = time_until(Duration::from_secs(15), || async {
        let (id, secret) = app.admin.clone();
        app.token_basic(&id, &secret, &[("grant_type", "client_credentials")]).await.status() == 503
    })
    .await
    .expect("token issuance fails closed");
    eprintln!("issuance stopped {closed:?} after readiness turned 503");
    // OAuth endpoints: 503 temporarily_unavailable JSON; introspection never says active.
    let (id, secret) = app.admin.clone();
    let oauth = [
        app.token_basic(&id, &secret, &[("grant_type", "client_credentials")]).await,
        app.token_basic(
            &client.0,
            &client.1,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await,
        app.http
            .post(app.url("/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", &access)])
            .send()
            .await
            .expect("POST"),
        // By the token's own client: a revocation that cannot be recorded is never a 200.
        app.http
            .post(app.url("/revoke"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("token", &access)])
            .send()
            .await
            .expect("POST"),
        app.http.get(app.url("/userinfo")).bearer_auth(&access).send().await.expect("GET"),
    ];
    for response in oauth {
        let url = response.url().path().to_owned();
        let to = crate::browser::location(&response);
        assert_eq!(response.status(), 503, "{url} {to:?}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/json"),
            "{url}"
        );
        let body = response.text().await.expect("body");
        assert_no_leak(&url, &body);
        let body: Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(body["error"], "temporarily_unavailable", "{url}");
    }
    // Browser routes: an HTML error page.
    let pages = [
        // A complete request from a signed-in browser: its session is a row.
        browser
            .get(&crate::browser::authorize_url(
                &app,
                &client.0,
                &crate::browser::pkce().1,
                "openid",
                "s",
            ))
            .await,
        browser.get(&app.url("/account")).await,
    ];
    for response in pages {
        let url = response.url().path().to_owned();
        let to = crate::browser::location(&response);
        assert_eq!(response.status(), 503, "{url} {to:?}");
        assert!(
            response.headers()["content-type"].to_str().expect("ascii").starts_with("text/html"),
            "{url}"
        );
        assert_no_leak(&url, &response.text().await.expect("body"));
    }

    proxy.restore();
    let up = time_until(Duration::from_secs(30), || async {
        app.get("/health/ready").await.status() == 200
            && app.token_basic(&id, &secret, &[("grant_type", "client_credentials")]).await.status()
                == 200
    })
    .await
    .expect("service returns without a restart");
    let refreshed = app
        .token_basic(
            &client.0,
            &client.1,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(refreshed.status(), 200, "the refresh token survived the outage unconsumed");
    println!("outage drill: readiness 503 after {down:?}; service back {up:?} after the database");
}

#[tokio::test]
async fn a_slow_database_hits_a_bounded_timeout_instead_of_piling_up() {
    let db = Arc::new(TestDatabase::create().await);
    let app: TestApp = start(db.clone(), test_settings(&db)).await;
    let (client, _) = web_client_and_user(&app.http, &app.address, &app.admin, "sam").await;
    let tokens =
        user_tokens(&app.http, &Browser::new(), &app.address, &app.address, &client, "sam").await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh").to_owned();

    // Another connection holds the refresh tokens' table: every rotation must wait on it.
    let mut options = ConnectOptions::new(db.url().to_owned());
    options.max_connections(1);
    let blocker = Database::connect(options).await.expect("connect");
    if db.is_postgres() {
        blocker.execute_unprepared("BEGIN").await.expect("begin");
        blocker
            .execute_unprepared("LOCK TABLE refresh_tokens IN ACCESS EXCLUSIVE MODE")
            .await
            .expect("lock");
    } else {
        blocker.execute_unprepared("BEGIN IMMEDIATE").await.expect("lock");
    }
    let started = Instant::now();
    let answers = join_all(
        (0..30)
            .map(|_| async {
                let response = app
                    .token_basic(
                        &client.0,
                        &client.1,
                        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
                    )
                    .await;
                (response.status().as_u16(), started.elapsed())
            })
            .collect(),
    )
    .await;
    let slowest = answers.iter().map(|(_, t)| *t).max().unwrap_or_default();
    blocker.execute_unprepared("ROLLBACK").await.expect("release");

    // db_timeout is 2 s here: each request gives up on the database, none waits forever.
    assert!(answers.iter().all(|(status, _)| *status == 503), "{answers:?}");
    assert!(slowest < Duration::from_secs(20), "30 requests piled up for {slowest:?}");
    let after = app
        .token_basic(
            &client.0,
            &client.1,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(after.status(), 200, "nothing was consumed by the timed-out rotations");
    println!("slow database drill: 30 blocked rotations all answered 503 within {slowest:?}");
}

#[tokio::test]
async fn sigterm_under_load_completes_what_it_accepted_and_never_loses_a_code() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let mut server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let base = server.address.clone();
    let admin = cli_admin(&db);
    let http = reqwest::Client::new();
    let (client, _) = web_client_and_user(&http, &base, &admin, "tess").await;
    let browser = Browser::new();
    let mut codes = Vec::new();
    for _ in 0..16 {
        let (verifier, challenge) = pkce();
        codes.push((code_at(&browser, &base, &client.0, "tess", &challenge).await, verifier));
    }

    let load = async {
        join_all(
            codes
                .iter()
                .enumerate()
                .map(|(n, (code, verifier))| {
                    let (http, base, client) = (&http, &base, &client);
                    async move {
                        tokio::time::sleep(Duration::from_millis(n as u64 * 3)).await;
                        match redeem_at(http, base, client, code, verifier).await {
                            Ok(response) => Some(response.status().as_u16()),
                            Err(_) => None,
                        }
                    }
                })
                .collect(),
        )
        .await
    };
    let terminate = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        server.sigterm();
    };
    let (outcomes, ()) = tokio::join!(load, terminate);
    assert_eq!(server.wait(Duration::from_secs(20)).await, Some(0), "exit code 0");

    // Every code either got its tokens, or was never consumed and still redeems.
    let restarted = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let mut answered = 0;
    for ((code, verifier), outcome) in codes.iter().zip(&outcomes) {
        match outcome {
            Some(200) => answered += 1,
            Some(status) => panic!("a redemption failed with {status} during the drain"),
            None => {
                let again = redeem_at(&http, &restarted.address, &client, code, verifier)
                    .await
                    .expect("POST");
                assert_eq!(again.status(), 200, "a code was consumed without its tokens");
            }
        }
    }
    println!(
        "SIGTERM drill: {answered} of {} redemptions completed while draining; the rest were \
         never accepted and redeemed after the restart",
        codes.len()
    );
}

/// Three server processes on one database; each change at one is seen at the others
/// within 5 s (docs/REFERENCE.md §8).
#[tokio::test]
async fn three_processes_share_codes_tokens_revocations_deletions_and_keys() {
    let db = TestDatabase::create().await;
    let mut env = process_env(&db);
    // Replicas behind one load balancer share one issuer.
    env.push(("CASTELLAN_ISSUER", "https://login.castellan.test".into()));
    // On Postgres the periodic re-read is made as slow as allowed (5 s), so the times printed
    // below measure the notifications; SQLite has none and relies on the re-read.
    let sync = if db.is_postgres() { Duration::from_secs(5) } else { Duration::from_millis(200) };
    env.retain(|(name, _)| *name != "CASTELLAN_SYNC_INTERVAL");
    env.push(("CASTELLAN_SYNC_INTERVAL", format!("{}ms", sync.as_millis())));
    // Within the re-read's bound in any case (plus a request's time on a loaded machine).
    let bound = sync + Duration::from_secs(3);
    let refs = as_refs(&env);
    let (a, b, c) = tokio::join!(
        ServerProcess::spawn(db.dir.path(), &refs),
        ServerProcess::spawn(db.dir.path(), &refs),
        ServerProcess::spawn(db.dir.path(), &refs),
    );
    let admin = cli_admin(&db);
    let http = reqwest::Client::new();
    let (client, user_id) = web_client_and_user(&http, &a.address, &admin, "uma").await;

    // A code from A is redeemed at B; its refresh token rotates at C.
    let tokens = user_tokens(&http, &Browser::new(), &a.address, &b.address, &client, "uma").await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refreshed = http
        .post(format!("{}/token", c.address))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().expect("rt")),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(refreshed.status(), 200, "a refresh token from B rotates at C");
    let refreshed: Value = refreshed.json().await.expect("JSON");
    let refresh = refreshed["refresh_token"].as_str().expect("rt").to_owned();

    // A resource server of the issuer's API: it may introspect the user's tokens.
    let made: Value = admin_call(
        &http,
        &a.address,
        &admin,
        reqwest::Method::POST,
        "/admin/clients",
        Some(json!({"grant_types": ["client_credentials"], "scope": "profile",
            "served_resources": ["https://login.castellan.test"]})),
    )
    .await
    .json()
    .await
    .expect("JSON");
    let rs = (
        made["client_id"].as_str().expect("id").to_owned(),
        made["client_secret"].as_str().expect("secret").to_owned(),
    );

    let active_at = |base: String| {
        let (http, rs, access) = (http.clone(), rs.clone(), access.clone());
        async move {
            let answer: Value = http
                .post(format!("{base}/introspect"))
                .basic_auth(&rs.0, Some(&rs.1))
                .form(&[("token", access.as_str())])
                .send()
                .await
                .expect("POST")
                .json()
                .await
                .expect("JSON");
            answer["active"] == true
        }
    };
    // The grant revoked at A: the access token is inactive at B and C, the refresh token dead.
    let grants: Value = admin_call(
        &http,
        &a.address,
        &admin,
        reqwest::Method::GET,
        &format!("/admin/users/{user_id}/grants"),
        None,
    )
    .await
    .json()
    .await
    .expect("JSON");
    let grant = grants["items"][0]["id"].as_str().expect("grant").to_owned();
    assert!(active_at(b.address.clone()).await, "control: the access token is active at B");
    let before = (notified(&b.address).await, notified(&c.address).await);
    let revoked = admin_call(
        &http,
        &a.address,
        &admin,
        reqwest::Method::DELETE,
        &format!("/admin/grants/{grant}"),
        None,
    )
    .await;
    assert_eq!(revoked.status(), 204);
    let grant_seen = propagated(bound, || async {
        !active_at(b.address.clone()).await && !active_at(c.address.clone()).await
    })
    .await
    .expect("the grant's access token turns inactive at B and C");
    notice(&db, "grant revocation", before, [&b.address, &c.address]).await;
    let dead = http
        .post(format!("{}/token", b.address))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(dead.status(), 400, "the grant's refresh token is dead at B");

    // The client deleted at B stops authenticating at A and C within 5 s.
    let before = (notified(&a.address).await, notified(&c.address).await);
    let deleted = admin_call(
        &http,
        &b.address,
        &admin,
        reqwest::Method::DELETE,
        &format!("/admin/clients/{}", client.0),
        None,
    )
    .await;
    assert_eq!(deleted.status(), 204);
    let refused = |base: String| {
        let (http, client) = (http.clone(), client.clone());
        async move {
            let response = http
                .post(format!("{base}/introspect"))
                .basic_auth(&client.0, Some(&client.1))
                .form(&[("token", "x")])
                .send()
                .await
                .expect("POST");
            response.status() == 401
        }
    };
    let client_seen = propagated(bound, || async {
        refused(a.address.clone()).await && refused(c.address.clone()).await
    })
    .await
    .expect("the deleted client is refused at A and C");
    notice(&db, "client deletion", before, [&a.address, &c.address]).await;

    // Keys rotated at C: A and B sign with the new key within 5 s.
    let before = (notified(&a.address).await, notified(&b.address).await);
    let rotated = admin_call(
        &http,
        &c.address,
        &admin,
        reqwest::Method::POST,
        "/admin/keys/rotate?force=true",
        None,
    )
    .await;
    assert_eq!(rotated.status(), 200);
    let listed: Value = rotated.json().await.expect("JSON");
    let active = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["state"] == "active" && k["alg"] == "RS256")
        .expect("active")["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    let kid_at = |base: String| {
        let admin = admin.clone();
        async move {
            let token = token_from(&base, &admin).await;
            jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid")
        }
    };
    let key_seen = propagated(bound, || async {
        kid_at(a.address.clone()).await == active && kid_at(b.address.clone()).await == active
    })
    .await
    .expect("A and B sign with the key activated at C");
    let backend = if db.is_postgres() { "Postgres, by notification" } else { "SQLite, by re-read" };
    println!(
        "replica drill ({backend}; sync interval {sync:?}): after the answer at one replica, \
         the grant revocation held at both others in {grant_seen:?}, the client deletion in \
         {client_seen:?}, the key rotation in {key_seen:?}"
    );
    notice(&db, "key rotation", before, [&a.address, &b.address]).await;
}

#[tokio::test]
async fn after_sigterm_readiness_is_503_while_requests_are_still_served() {
    let db = TestDatabase::create().await;
    let mut env = process_env(&db);
    env.push(("CASTELLAN_SHUTDOWN_DELAY", "2s".into()));
    let mut server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let admin = cli_admin(&db);
    let http = reqwest::Client::new();
    let ready = || http.get(format!("{}/health/ready", server.address)).send();
    assert_eq!(ready().await.expect("GET").status(), 200);

    server.sigterm();

    let draining = time_until(Duration::from_secs(2), || async {
        ready().await.is_ok_and(|r| r.status() == 503)
    })
    .await;
    assert!(draining.is_some(), "readiness turns 503 first");
    let token = token_from(&server.address, &admin).await;
    assert!(!token.is_empty(), "requests are still served during the delay");
    assert_eq!(server.wait(Duration::from_secs(15)).await, Some(0), "then it exits 0");
}
