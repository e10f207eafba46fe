//! OpenID Connect Back-Channel Logout 1.0: ID tokens carry the session's `sid`; when a
//! session ends (logout, ended from /account, the user disabled, the grant revoked) every
//! client that session signed into gets a signed logout token at its
//! `backchannel_logout_uri`, from a queue in the database, retried until it is taken, across
//! a restart. The receiver is a real HTTP listener on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::browser::{Browser, PASSWORD, REDIRECT, code_at, input, pkce, redeem, user};
use crate::helpers::{
    ServerProcess, TestApp, TestDatabase, as_refs, cli_admin, eventually, jwt_claims, process_env,
    spawn_app_with, token_from, verify_with_jwks,
};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A relying party's back-channel logout endpoint: records each POST (path and
/// `logout_token`) and answers 500 to the first `failures` of them, 200 after.
#[derive(Clone)]
struct Receiver {
    base: String,
    received: Arc<Mutex<Vec<(String, String)>>>,
    failures: Arc<Mutex<u32>>,
}

impl Receiver {
    async fn start(failures: u32) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let receiver =
            Self { base, received: Arc::default(), failures: Arc::new(Mutex::new(failures)) };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let serving = serving.clone();
                tokio::spawn(async move {
                    let Some((path, body)) = read_request(&mut stream).await else { return };
                    let token = url::form_urlencoded::parse(body.as_bytes())
                        .find(|(k, _)| k == "logout_token")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    serving.received.lock().expect("lock").push((path, token));
                    let fail = {
                        let mut left = serving.failures.lock().expect("lock");
                        let fail = *left > 0;
                        *left = left.saturating_sub(1);
                        fail
                    };
                    let status = if fail { "500 Internal Server Error" } else { "200 OK" };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\ncache-control: no-store\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        receiver
    }

    fn uri(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn received(&self) -> Vec<(String, String)> {
        self.received.lock().expect("lock").clone()
    }

    fn fail_next(&self, n: u32) {
        *self.failures.lock().expect("lock") = n;
    }
}

/// The request line's path and the body of one HTTP/1.1 request.
async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some((path, String::from_utf8_lossy(&buffer[header_end..]).to_string()))
}

async fn app() -> TestApp {
    spawn_app_with(|s| {
        s.outbound_allow_private_networks = true;
        s.backchannel_retry_base = Duration::from_millis(200);
    })
    .await
}

/// A web client for the code flow with `openid offline_access`, and `extra` metadata.
async fn client(app: &TestApp, extra: Value) -> (String, String) {
    let mut metadata = json!({
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid offline_access",
    });
    if let (Some(m), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
        m.extend(extra.clone());
    }
    let made = app.create_client(metadata).await;
    assert!(made["client_id"].is_string(), "registered: {made}");
    (
        made["client_id"].as_str().expect("id").to_owned(),
        made["client_secret"].as_str().expect("secret").to_owned(),
    )
}

/// Signs `username` in at `browser` (or reuses its session) for `client`: the token response.
async fn sign_in(
    app: &TestApp,
    browser: &Browser,
    client: &(String, String),
    username: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let code = code_at(browser, &app.address, &client.0, username, &challenge).await;
    let response = redeem(app, client, &code, &verifier).await;
    assert_eq!(response.status(), 200, "code exchange");
    response.json().await.expect("JSON")
}

fn sid_of(tokens: &Value) -> String {
    jwt_claims(tokens["id_token"].as_str().expect("id_token"))["sid"]
        .as_str()
        .expect("the ID token carries sid")
        .to_owned()
}

async fn log_out(app: &TestApp, browser: &Browser) {
    let page = browser.get(&app.url("/logout")).await.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf");
    assert_eq!(browser.post(&app.url("/logout"), &[("csrf_token", &csrf)]).await.status(), 200);
}

/// Checks one logout token as a relying party must (Back-Channel Logout §2.6), with the
/// published JWKS alone; returns its claims.
async fn checked_logout_token(app: &TestApp, token: &str, client_id: &str) -> Value {
    let (header, claims) = verify_with_jwks(app, token, client_id).await;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"), "§2.4: explicitly typed");
    assert_eq!(claims["events"], json!({ EVENT: {} }), "§2.4: the one event member");
    assert!(claims.get("nonce").is_none(), "§2.4: a logout token MUST NOT carry a nonce");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let iat = claims["iat"].as_i64().expect("iat");
    assert!(claims["exp"].as_i64().expect("exp") > iat);
    assert!(claims["sub"].is_string());
    claims
}

async fn pending_deliveries(app: &TestApp) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.store().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM logout_deliveries",
        ))
        .await
        .expect("count")
        .expect("row");
    row.try_get::<i64>("", "n").expect("n")
}

#[tokio::test]
async fn backchannel_sid_is_one_per_session_kept_on_refresh_and_discovery_says_so() {
    let app = app().await;
    let discovery: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);
    user(&app, "sid").await;
    let rp = client(&app, json!({})).await;

    let browser = Browser::new();
    let first = sign_in(&app, &browser, &rp, "sid").await;
    let again = sign_in(&app, &browser, &rp, "sid").await;
    let elsewhere = sign_in(&app, &Browser::new(), &rp, "sid").await;
    let sid = sid_of(&first);
    assert_eq!(sid_of(&again), sid, "the same session, the same sid");
    assert_ne!(sid_of(&elsewhere), sid, "another session, another sid");
    assert!(!sid.contains('.') && sid.len() >= 32, "an opaque MAC: {sid}");

    let refreshed = app
        .token_basic(
            &rp.0,
            &rp.1,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().expect("refresh token")),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed: Value = refreshed.json().await.expect("JSON");
    assert_eq!(sid_of(&refreshed), sid, "a refreshed ID token keeps the session's sid");
}

#[tokio::test]
async fn backchannel_logout_tells_every_client_of_the_session_and_only_those() {
    let app = app().await;
    let receiver = Receiver::start(0).await;
    user(&app, "lena").await;
    user(&app, "otto").await;
    let one = client(&app, json!({"backchannel_logout_uri": receiver.uri("/one")})).await;
    let two = client(
        &app,
        json!({"backchannel_logout_uri": receiver.uri("/two"), "backchannel_logout_session_required": true}),
    )
    .await;
    let silent = client(&app, json!({})).await;
    let other = client(&app, json!({"backchannel_logout_uri": receiver.uri("/other")})).await;
    let registered: Value = app
        .admin(reqwest::Method::GET, &format!("/admin/clients/{}", two.0), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(registered["backchannel_logout_uri"], receiver.uri("/two"));
    assert_eq!(registered["backchannel_logout_session_required"], true);

    let browser = Browser::new();
    let tokens_one = sign_in(&app, &browser, &one, "lena").await;
    let tokens_two = sign_in(&app, &browser, &two, "lena").await;
    sign_in(&app, &browser, &silent, "lena").await;
    // Another session (another user) signs into a client that has a receiver too.
    sign_in(&app, &Browser::new(), &other, "otto").await;
    let sid = sid_of(&tokens_one);
    let sub = jwt_claims(tokens_one["id_token"].as_str().expect("id_token"))["sub"].clone();

    log_out(&app, &browser).await;
    assert!(
        eventually(Duration::from_secs(10), || async { receiver.received().len() >= 2 }).await,
        "both clients of the session are told: {:?}",
        receiver.received().iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
    );
    // Nothing else comes: not the client without a receiver, not the other session's.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut received = receiver.received();
    received.sort();
    assert_eq!(received.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["/one", "/two"]);
    for ((_, token), (client_id, tokens)) in
        received.iter().zip([(&one.0, &tokens_one), (&two.0, &tokens_two)])
    {
        let claims = checked_logout_token(&app, token, client_id).await;
        assert_eq!(claims["sid"], sid, "the sid of the ID tokens that session got");
        assert_eq!(claims["sid"], sid_of(tokens));
        assert_eq!(claims["sub"], sub);
        assert_eq!(claims["aud"], client_id.as_str());
    }
    assert_ne!(
        checked_logout_token(&app, &received[0].1, &one.0).await["jti"],
        checked_logout_token(&app, &received[1].1, &two.0).await["jti"]
    );
    assert_eq!(pending_deliveries(&app).await, 0, "sent deliveries leave the queue");

    // An independent relying party (python authlib) verifies one the same way, if installed.
    if let Some(verified) = authlib_verifies(&app, &one.0, &received[0].1).await {
        assert_eq!(verified["claims"]["sid"], sid);
        assert_eq!(verified["header"]["typ"], "logout+jwt");
    }
}

const AUTHLIB_CHECK: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/authlib_logout_token.py");

/// What `tests/interop/authlib_logout_token.py` verified, or `None` (said on stderr) when
/// python3 with authlib and requests is not installed.
async fn authlib_verifies(app: &TestApp, client_id: &str, token: &str) -> Option<Value> {
    let installed = std::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("skipped the authlib check: python3 with authlib and requests is not installed");
        return None;
    }
    let args =
        [AUTHLIB_CHECK.to_owned(), app.issuer.clone(), client_id.to_owned(), token.to_owned()];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3").args(&args).output().expect("python3")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "authlib: {}", String::from_utf8_lossy(&output.stderr));
    Some(serde_json::from_slice(&output.stdout).expect("one JSON line"))
}

#[tokio::test]
async fn backchannel_delivery_failing_twice_arrives_on_the_third_try() {
    let app = app().await;
    let receiver = Receiver::start(2).await;
    user(&app, "tina").await;
    let rp = client(&app, json!({"backchannel_logout_uri": receiver.uri("/logout")})).await;
    let browser = Browser::new();
    let tokens = sign_in(&app, &browser, &rp, "tina").await;

    log_out(&app, &browser).await;
    assert!(
        eventually(Duration::from_secs(15), || async { receiver.received().len() >= 3 }).await,
        "tried again after each failure: {} attempts",
        receiver.received().len()
    );
    assert!(
        eventually(Duration::from_secs(5), || async { pending_deliveries(&app).await == 0 }).await,
        "taken on the third try, so no longer queued"
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let received = receiver.received();
    assert_eq!(received.len(), 3, "no attempt after the one that was taken");
    let claims = checked_logout_token(&app, &received[2].1, &rp.0).await;
    assert_eq!(claims["sid"], sid_of(&tokens));
}

#[tokio::test]
async fn backchannel_ending_from_account_disabling_and_revoking_the_grant_each_notify() {
    let app = app().await;
    let receiver = Receiver::start(0).await;
    let user_id = user(&app, "ada").await;
    let rp = client(&app, json!({"backchannel_logout_uri": receiver.uri("/rp")})).await;
    let arrived = |n: usize| {
        let receiver = receiver.clone();
        async move {
            eventually(Duration::from_secs(10), || async { receiver.received().len() >= n }).await
        }
    };

    // Ended from /account in another browser of the same user.
    let ended = Browser::new();
    let ended_tokens = sign_in(&app, &ended, &rp, "ada").await;
    let here = Browser::new();
    sign_in(&app, &here, &rp, "ada").await;
    let account = here.get(&app.url("/account")).await.text().await.expect("page");
    let handle = input(&account, "session").expect("the other session's form");
    let csrf = input(&account, "csrf_token").expect("csrf");
    let response = here
        .post(&app.url("/account/sessions/end"), &[("csrf_token", &csrf), ("session", &handle)])
        .await;
    assert!(response.status().is_redirection() || response.status().is_success());
    assert!(arrived(1).await, "ending a session from /account tells its client");
    let claims = checked_logout_token(&app, &receiver.received()[0].1, &rp.0).await;
    assert_eq!(claims["sid"], sid_of(&ended_tokens));

    // The grant revoked by an administrator: the client is told for the user's session.
    let grants: Value = app
        .admin(reqwest::Method::GET, &format!("/admin/users/{user_id}/grants"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let grant_id = grants["items"][0]["id"].as_str().expect("a grant").to_owned();
    let revoked =
        app.admin(reqwest::Method::DELETE, &format!("/admin/grants/{grant_id}"), None).await;
    assert!(revoked.status().is_success());
    assert!(arrived(2).await, "revoking the grant tells its client");
    let claims = checked_logout_token(&app, &receiver.received()[1].1, &rp.0).await;
    assert_eq!(claims["sub"], user_id.as_str());

    // Disabling the user ends their sessions: each one's clients are told.
    let again = sign_in(&app, &here, &rp, "ada").await;
    let disabled = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/users/{user_id}"),
            Some(json!({"username": "ada", "disabled": true})),
        )
        .await;
    assert!(disabled.status().is_success());
    assert!(arrived(3).await, "disabling the user tells the clients of their sessions");
    let claims = checked_logout_token(&app, &receiver.received()[2].1, &rp.0).await;
    assert_eq!(claims["sid"], sid_of(&again));
    assert_eq!(claims["sub"], user_id.as_str());
}

#[tokio::test]
async fn backchannel_logout_uri_must_be_https_without_fragment_nor_a_private_address() {
    let app = app().await;
    for uri in [
        "http://rp.example.com/logout",
        "https://rp.example.com/logout#x",
        "logout",
        "https://10.0.0.7/logout",
        "https://169.254.169.254/latest",
        "https://[fd00::1]/logout",
    ] {
        let response = app
            .admin(
                reqwest::Method::POST,
                "/admin/clients",
                Some(json!({
                    "redirect_uris": [REDIRECT],
                    "grant_types": ["authorization_code"],
                    "scope": "openid",
                    "backchannel_logout_uri": uri,
                })),
            )
            .await;
        assert_eq!(response.status(), 400, "{uri}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_client_metadata", "{uri}: {body}");
    }
}

/// A restart between the logout and the delivery loses nothing: the queue is in the
/// database, and another process sends what the first one could not.
#[tokio::test]
async fn backchannel_deliveries_survive_a_restart() {
    let db = TestDatabase::create().await;
    let receiver = Receiver::start(u32::MAX).await;
    let mut env = process_env(&db);
    env.push(("CASTELLAN_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true".into()));
    env.push(("CASTELLAN_BACKCHANNEL_RETRY_BASE", "200ms".into()));
    let mut server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let base = server.address.clone();
    let admin = cli_admin(&db);
    let http = reqwest::Client::new();
    let token = token_from(&base, &admin).await;
    let made: Value = http
        .post(format!("{base}/admin/clients"))
        .bearer_auth(&token)
        .json(&json!({
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "openid offline_access",
            "backchannel_logout_uri": receiver.uri("/rp"),
        }))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let client_id = made["client_id"].as_str().expect("id").to_owned();
    let created = http
        .post(format!("{base}/admin/users"))
        .bearer_auth(&token)
        .json(&json!({"username": "rhea", "password": PASSWORD}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);
    let browser = Browser::new();
    let (_, challenge) = pkce();
    code_at(&browser, &base, &client_id, "rhea", &challenge).await;
    let page = browser.get(&format!("{base}/logout")).await.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf");
    assert_eq!(
        browser.post(&format!("{base}/logout"), &[("csrf_token", &csrf)]).await.status(),
        200
    );
    // The receiver is down (answers 500) while the first process runs.
    assert!(
        eventually(Duration::from_secs(10), || async { !receiver.received().is_empty() }).await,
        "the first process tries"
    );
    server.sigterm();
    assert!(server.wait(Duration::from_secs(20)).await.is_some(), "the first process stops");
    let tried = receiver.received().len();
    receiver.fail_next(0);

    let restarted = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    assert!(
        eventually(Duration::from_secs(75), || async { receiver.received().len() > tried }).await,
        "the next process sends what was still queued"
    );
    let (_, token) = receiver.received().last().cloned().expect("a delivery");
    let claims = jwt_claims(&token);
    assert_eq!(claims["aud"], client_id.as_str());
    assert_eq!(claims["events"], json!({ EVENT: {} }));
    assert!(claims["sid"].is_string());
    drop(restarted);
}

/// A session that simply expires is purged through the same rule: its clients are told, and
/// what the purge leaves of `session_clients` is nothing.
#[tokio::test]
async fn backchannel_an_expired_session_purged_tells_its_clients() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = app().await;
    let receiver = Receiver::start(0).await;
    user(&app, "eve").await;
    let rp = client(&app, json!({"backchannel_logout_uri": receiver.uri("/rp")})).await;
    let tokens = sign_in(&app, &Browser::new(), &rp, "eve").await;

    let db = app.store().await;
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE sessions SET expires_at = $1",
        [past.into()],
    ))
    .await
    .expect("expire the session");
    let windows = castellan::store::purge::Windows {
        attempts: Duration::from_secs(60),
        events: Duration::ZERO,
    };
    let purged =
        castellan::store::purge::round(&db, windows, Duration::from_secs(5)).await.expect("purge");
    let sessions = purged.iter().find(|(kind, _)| kind.table() == "sessions").expect("kind").1;
    assert_eq!(sessions, 1);

    assert!(
        eventually(Duration::from_secs(10), || async { !receiver.received().is_empty() }).await,
        "the expired session's client is told"
    );
    let claims = checked_logout_token(&app, &receiver.received()[0].1, &rp.0).await;
    assert_eq!(claims["sid"], sid_of(&tokens));
    let left = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM session_clients",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(left, 0);
}

/// A receiver that never takes the token: after the last attempt the delivery is dropped and
/// `logout.delivery_failed` recorded, naming the client and the user, never the token.
#[tokio::test]
async fn backchannel_a_delivery_given_up_is_recorded_without_the_token() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = app().await;
    let receiver = Receiver::start(u32::MAX).await;
    let user_id = user(&app, "gus").await;
    let rp = client(&app, json!({"backchannel_logout_uri": receiver.uri("/rp")})).await;
    let browser = Browser::new();
    sign_in(&app, &browser, &rp, "gus").await;
    log_out(&app, &browser).await;
    assert!(
        eventually(Duration::from_secs(10), || async { !receiver.received().is_empty() }).await,
        "a first attempt"
    );
    // As if every attempt but the last had failed already.
    let db = app.store().await;
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "UPDATE logout_deliveries SET attempts = $1, next_attempt_at = $2",
        [(castellan::oauth::backchannel::MAX_ATTEMPTS - 1).into(), chrono::Utc::now().into()],
    ))
    .await
    .expect("fast-forward");
    assert!(
        eventually(Duration::from_secs(10), || async { pending_deliveries(&app).await == 0 }).await,
        "given up after the last attempt"
    );
    let response =
        app.admin(reqwest::Method::GET, "/admin/events?type=logout.delivery_failed", None).await;
    let page: Value = response.json().await.expect("JSON");
    let events = page["items"].as_array().expect("items");
    assert_eq!(events.len(), 1, "{page}");
    let event = &events[0];
    assert_eq!(event["subject"], format!("client:{}", rp.0));
    assert_eq!(event["outcome"], "failure");
    assert_eq!(event["detail"]["user"], user_id.as_str());
    assert_eq!(event["detail"]["attempts"], castellan::oauth::backchannel::MAX_ATTEMPTS);
    let token = &receiver.received()[0].1;
    assert!(!page.to_string().contains(token.as_str()), "never the token");
}

/// The device grant: a device is told when the browser session that approved its request
/// ends, with the `sid` its ID token carries.
#[tokio::test]
async fn backchannel_a_device_is_told_when_the_session_that_approved_it_ends() {
    let app = app().await;
    let receiver = Receiver::start(0).await;
    user(&app, "ines").await;
    let made = app
        .create_client(json!({
            "client_name": "Terminal Tool",
            "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid offline_access",
            "backchannel_logout_uri": receiver.uri("/tv"),
        }))
        .await;
    let client_id = made["client_id"].as_str().expect("id").to_owned();
    let (_, started) = crate::device::start(&app, &client_id, None).await;
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = crate::device::sign_in_at_device(&browser, &app, complete, "ines").await;
    let typed = input(&entry, "user_code").expect("prefilled code");
    let consent = crate::device::look_up(&browser, &app, &entry, &typed).await;
    let consent = consent.text().await.expect("consent page");
    let (status, _) = crate::device::answer(&browser, &app, &consent, "allow").await;
    assert_eq!(status, 200);
    let device_code = started["device_code"].as_str().expect("device_code");
    let (status, tokens) = crate::device::poll(&app, &client_id, device_code).await;
    assert_eq!(status, 200, "{tokens}");
    let sid = sid_of(&tokens);

    log_out(&app, &browser).await;
    assert!(
        eventually(Duration::from_secs(10), || async { !receiver.received().is_empty() }).await,
        "the device is told"
    );
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].0, "/tv");
    let claims = checked_logout_token(&app, &received[0].1, &client_id).await;
    assert_eq!(claims["sid"], sid, "the sid of the device's ID token");
}
