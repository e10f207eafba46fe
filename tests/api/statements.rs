//! Database statements per operation, counted by the server itself
//! (`castellan_db_statements_total{route}`): deterministic, unlike timings, so a change that
//! adds a query to a hot path fails here (docs/SCALING.md).

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, authorize_url, input, location, params, pkce, redeem, user, web_client_with,
};
use crate::helpers::{TestApp, spawn_app};

/// Statements so far, by route.
pub async fn statements(app: &TestApp) -> HashMap<String, u64> {
    let text = app.get("/metrics").await.text().await.expect("metrics");
    text.lines()
        .filter_map(|line| line.strip_prefix("castellan_db_statements_total{route=\""))
        .filter_map(|rest| {
            let (route, count) = rest.split_once("\"} ")?;
            Some((route.to_owned(), count.trim().parse().ok()?))
        })
        .collect()
}

/// Statements `route` ran during `work`.
pub(crate) async fn counted<F: std::future::Future>(app: &TestApp, route: &str, work: F) -> u64 {
    let before = statements(app).await.get(route).copied().unwrap_or(0);
    work.await;
    statements(app).await.get(route).copied().unwrap_or(0) - before
}

#[tokio::test]
async fn issuing_introspecting_and_checking_a_signed_token_read_nothing() {
    let app = spawn_app().await;
    let (id, secret) = app.service_client("profile", &[]).await;
    app.client_token(&id, &secret, None).await; // the client is now in this replica's cache

    let issuing = counted(&app, "/token", async {
        for _ in 0..5 {
            assert!(app.client_token(&id, &secret, None).await["access_token"].is_string());
        }
    })
    .await;
    assert_eq!(issuing, 0, "client_credentials: signature only");

    user(&app, "stan").await;
    let client = web_client_with(&app, "openid profile", json!({})).await;
    let tokens = crate::browser::tokens_for(&app, &client, "stan", "openid profile").await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let rs = app.resource_server().await;
    let introspect = || async {
        assert_eq!(app.introspect(&rs, &access).await["active"], true);
    };
    introspect().await;
    let introspection = counted(&app, "/introspect", async {
        for _ in 0..5 {
            introspect().await;
        }
    })
    .await;
    assert_eq!(introspection, 0, "introspection of a signed token: liveness is in memory");

    let userinfo = counted(&app, "/userinfo", async {
        for _ in 0..5 {
            let response =
                app.http.get(app.url("/userinfo")).bearer_auth(&access).send().await.expect("GET");
            assert_eq!(response.status(), 200);
        }
    })
    .await;
    assert_eq!(userinfo, 5, "UserInfo: the user's claims, one row; the gate reads nothing");

    let admin = app.admin_token().await;
    let reads = counted(&app, "/admin/scopes", async {
        for _ in 0..5 {
            let response = app
                .http
                .get(app.url("/admin/scopes"))
                .bearer_auth(&admin)
                .send()
                .await
                .expect("GET");
            assert_eq!(response.status(), 200);
        }
    })
    .await;
    assert_eq!(reads, 5, "the admin gate reads nothing; the list is one statement");
}

#[tokio::test]
async fn refresh_login_consent_and_code_exchange_run_their_minimum() {
    let app = spawn_app().await;
    user(&app, "rosa").await;
    let scope = "openid offline_access";
    let client = web_client_with(&app, scope, json!({})).await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, scope, "s");
    let login_page =
        browser.follow(&app, browser.get(&url).await).await.text().await.expect("page");

    let mut consent_page = String::new();
    let login = counted(&app, "/login", async {
        let response = crate::browser::log_in(&browser, &app, &login_page, "rosa", PASSWORD).await;
        consent_page = browser.follow(&app, response).await.text().await.expect("the consent page");
    })
    .await;
    let mut back = None;
    let consent = counted(&app, "/consent", async {
        let form = [
            ("csrf_token", input(&consent_page, "csrf_token").expect("csrf")),
            ("request", input(&consent_page, "request").expect("request")),
            ("decision", "allow".to_owned()),
        ];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        back = location(&browser.post(&app.url("/consent"), &form).await);
    })
    .await;
    let code = params(&back.expect("back to the client"))["code"].clone();
    let mut tokens = Value::Null;
    let exchange = counted(&app, "/token", async {
        tokens = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    })
    .await;
    let mut refresh_token = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let refresh = counted(&app, "/token", async {
        for _ in 0..5 {
            let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
            let body: Value =
                app.token_basic(&client.0, &client.1, &form).await.json().await.expect("JSON");
            refresh_token = body["refresh_token"].as_str().expect("rotated").to_owned();
        }
    })
    .await;
    eprintln!(
        "statements: login {login}, consent {consent}, code exchange {exchange}, 5 refreshes {refresh}"
    );
    // One round trip per rotation on Postgres (one statement marks the token used, checks its
    // family, grant and user, and stores the successor); SQLite has no data-modifying CTEs,
    // so an UPDATE … RETURNING, a SELECT and an INSERT in one transaction.
    let per_refresh = if app.db.is_postgres() { 1 } else { 3 };
    assert_eq!(refresh, 5 * per_refresh);
    // Redeem the code (recording what it will issue), read the user with the grant, start the
    // refresh family with its first token: one statement on Postgres, two on SQLite.
    let exchange_expected = if app.db.is_postgres() { 3 } else { 4 };
    assert_eq!(exchange, exchange_expected, "code exchange");
    assert_eq!(login, LOGIN, "login");
    assert_eq!(consent, CONSENT, "consent");
}

#[tokio::test]
async fn a_refresh_that_keeps_its_token_costs_no_more_than_a_rotation() {
    let app = spawn_app().await;
    user(&app, "kit").await;
    let scope = "openid offline_access";
    let client = web_client_with(&app, scope, json!({"refresh_token_rotation": false})).await;
    let tokens = crate::browser::tokens_for(&app, &client, "kit", scope).await;
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let refresh = counted(&app, "/token", async {
        for _ in 0..5 {
            let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token.as_str())];
            let response = app.token_basic(&client.0, &client.1, &form).await;
            assert_eq!(response.status(), 200, "the same token, five times");
        }
    })
    .await;
    // Postgres: one statement checks the family, grant and user and renews the expiry;
    // SQLite: the same SELECT, then the UPDATE, in one transaction.
    let per_refresh = if app.db.is_postgres() { 1 } else { 2 };
    assert_eq!(refresh, 5 * per_refresh);
}

/// Count the attempt per (account, address) and per account before the password is checked,
/// read the user, clear both counts, store the session with its `sign_in` audit event.
const LOGIN: u64 = 7;
/// Read the session with its user, create the grant (an insert that does nothing when the
/// grant exists, then a read and a conditional write) with its `consent.given` audit event,
/// record that the session signed into the client (for back-channel logout: an insert that
/// does nothing when it did already), store the code.
const CONSENT: u64 = 5;

#[tokio::test]
async fn on_postgres_refresh_token_pages_keep_room_for_the_rotation_update() {
    let app = spawn_app().await;
    if !app.db.is_postgres() {
        eprintln!("skipped: SQLite updates rows in place and has no fillfactor");
        return;
    }
    use sea_orm::ConnectionTrait;
    let db = app.store().await;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = 'refresh_tokens'",
        ))
        .await
        .expect("query")
        .expect("the table");
    let options: Option<String> = row.try_get_by_index(0).expect("reloptions");
    // Marking a token used then writes a heap-only tuple on the same page: no index entry.
    assert_eq!(options.as_deref(), Some("fillfactor=90"));
}

#[tokio::test]
async fn a_dpop_proof_alone_costs_one_statement_at_the_token_endpoint_and_at_a_resource() {
    use crate::dpop::DpopKey;
    let app = spawn_app().await;
    let (id, secret) = app.service_client("", &[]).await;
    app.client_token(&id, &secret, None).await; // the client is now in this replica's cache
    let key = DpopKey::es256();
    let url = app.url("/token");
    let bound = || async {
        let response = app
            .http
            .post(&url)
            .basic_auth(&id, Some(&secret))
            .header("DPoP", key.proof("POST", &url, None))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("POST");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["token_type"], "DPoP", "{body}");
        body["access_token"].as_str().expect("token").to_owned()
    };
    let issuing = counted(&app, "/token", async {
        for _ in 0..5 {
            bound().await;
        }
    })
    .await;
    assert_eq!(issuing, 0, "client_credentials with DPoP: the route itself reads nothing");
    let recorded = counted(&app, "dpop_proofs", async {
        for _ in 0..5 {
            bound().await;
        }
    })
    .await;
    assert_eq!(recorded, 5, "one at a time, each proof's jti is one statement");

    let token = bound().await;
    let admin = app.url("/admin/clients");
    let at_resource = counted(&app, "dpop_proofs", async {
        let response = app
            .http
            .get(&admin)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", key.proof("GET", &admin, Some(&token)))
            .send()
            .await
            .expect("GET");
        assert_eq!(response.status(), 403, "bound and proven, but without the admin scope");
    })
    .await;
    assert_eq!(at_resource, 1, "the gate: the proof's jti");
}

#[tokio::test]
async fn a_push_costs_one_statement_and_its_use_one_more() {
    let app = spawn_app().await;
    let client = web_client_with(&app, "openid", json!({})).await;
    let (_, challenge) = pkce();
    let form = [
        ("response_type", "code"),
        ("client_id", client.0.as_str()),
        ("redirect_uri", crate::browser::REDIRECT),
        ("scope", "openid"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let push = || async {
        let response = app
            .http
            .post(app.url("/par"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&form)
            .send()
            .await
            .expect("POST /par");
        assert_eq!(response.status(), 201);
    };
    push().await; // the client is now in this replica's cache
    let pushed = counted(&app, "/par", async {
        for _ in 0..5 {
            push().await;
        }
    })
    .await;
    assert_eq!(pushed, 5, "one insert per pushed request");
}

#[tokio::test]
async fn a_registration_runs_a_fixed_handful_and_a_dynamic_clients_use_is_written_once() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.registration = castellan::config::RegistrationMode::Open;
    })
    .await;
    let body = json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none",
                      "grant_types": ["authorization_code", "refresh_token"]});
    let register = |body: Value, token: Option<String>| {
        let app = &app;
        async move {
            let mut request = app.http.post(app.url("/register")).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().await.expect("send");
            assert_eq!(response.status(), 201);
            response.json::<Value>().await.expect("JSON")
        }
    };
    // The address's counter, the policy, the scopes' existence, the client and its scopes,
    // and the `client.registered` audit event.
    for _ in 0..2 {
        assert_eq!(counted(&app, "/register", register(body.clone(), None)).await, 6);
    }
    // With an initial access token: the counter, the policy, the token's lookup, its use, the
    // client and its secret (no scopes to check or insert: it asked for none), the event.
    let issued: Value = app
        .admin(reqwest::Method::POST, "/admin/initial-access-tokens", Some(json!({"uses": 1})))
        .await
        .json()
        .await
        .expect("JSON");
    let service = json!({"grant_types": ["client_credentials"]});
    let mut client = Value::Null;
    let with_token = counted(&app, "/register", async {
        client = register(service, issued["token"].as_str().map(str::to_owned)).await;
    })
    .await;
    assert_eq!(with_token, 7);

    // Its tokens: one write records its first use; then nothing for the hour.
    let (id, secret) = (
        client["client_id"].as_str().expect("id"),
        client["client_secret"].as_str().expect("secret"),
    );
    let first = counted(&app, "/token", async {
        assert!(app.client_token(id, secret, None).await["access_token"].is_string());
    })
    .await;
    assert_eq!(first, 4, "the client's first load (row, scopes, secrets), and its use recorded");
    let later = counted(&app, "/token", async {
        for _ in 0..5 {
            assert!(app.client_token(id, secret, None).await["access_token"].is_string());
        }
    })
    .await;
    assert_eq!(later, 0, "a dynamic client's client_credentials stay off the database");
}

#[tokio::test]
async fn a_device_authorization_costs_one_statement_and_so_does_each_poll() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.device_poll_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let client_id = crate::device::device_client(&app, "openid offline_access").await;
    user(&app, "dev").await;
    crate::device::start(&app, &client_id, None).await; // the client is now cached here
    let mut started = Value::Null;
    let starts = counted(&app, "/device_authorization", async {
        for _ in 0..5 {
            started = crate::device::start(&app, &client_id, None).await.1;
        }
    })
    .await;
    assert_eq!(starts, 5, "one insert per request");
    let device_code = started["device_code"].as_str().expect("device_code").to_owned();
    let polls = counted(&app, "/token", async {
        for _ in 0..5 {
            let (status, _) = crate::device::poll(&app, &client_id, &device_code).await;
            assert_eq!(status, 400, "pending or slow_down");
        }
    })
    .await;
    assert_eq!(polls, 5, "a poll is one conditional update, whatever it finds");
    crate::device::decide(&app, &started, "dev", "allow").await;
    let redeemed = counted(&app, "/token", async {
        let (status, body) = crate::device::poll(&app, &client_id, &device_code).await;
        assert_eq!(status, 200, "{body}");
    })
    .await;
    // The poll that redeems, the user with the grant, the refresh family with its first token
    // (one statement on Postgres, two on SQLite): as a code exchange.
    assert_eq!(redeemed, if app.db.is_postgres() { 3 } else { 4 }, "the redeeming poll");
}

#[tokio::test]
async fn a_token_exchange_reads_nothing_once_its_clients_are_cached() {
    let app = spawn_app().await;
    user(&app, "tess").await;
    let api = "https://a.api.example";
    let web = web_client_with(&app, "openid profile", json!({"audience": [api]})).await;
    let tokens = crate::browser::tokens_for(&app, &web, "tess", "openid profile").await;
    let subject = tokens["access_token"].as_str().expect("access").to_owned();
    let exchanger = app
        .create_client(json!({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                              "scope": "openid profile", "served_resources": [api]}))
        .await;
    let (id, secret) = (
        exchanger["client_id"].as_str().expect("id"),
        exchanger["client_secret"].as_str().expect("secret"),
    );
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", subject.as_str()),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
    ];
    let exchange = || async {
        let response = app.token_basic(id, secret, &form).await;
        assert_eq!(response.status(), 200);
    };
    exchange().await; // both clients are now in this replica's cache

    let exchanges = counted(&app, "/token", async {
        for _ in 0..5 {
            exchange().await;
        }
    })
    .await;
    assert_eq!(exchanges, 0, "the subject token's liveness is the gate's, in memory");
}

#[tokio::test]
async fn the_token_tally_costs_the_token_endpoint_nothing_and_its_flush_one_upsert_per_hour() {
    let app = spawn_app().await;
    let (id, secret) = app.service_client("profile", &[]).await;
    app.client_token(&id, &secret, None).await; // the client is now in this replica's cache
    let flushes = || async { statements(&app).await.get("token_hours").copied().unwrap_or(0) };
    let settle = std::time::Duration::from_secs(5);
    assert!(crate::helpers::eventually(settle, || async { flushes().await > 0 }).await);
    tokio::time::sleep(app.settings.sync_interval * 2).await;
    let before = flushes().await;

    let issuing = counted(&app, "/token", async {
        for _ in 0..5 {
            assert!(app.client_token(&id, &secret, None).await["access_token"].is_string());
        }
    })
    .await;
    assert_eq!(issuing, 0, "counted in memory");

    assert!(crate::helpers::eventually(settle, || async { flushes().await > before }).await);
    // Then syncs with nothing counted write nothing.
    tokio::time::sleep(app.settings.sync_interval * 3).await;
    let flushed = flushes().await - before;
    // One upsert per flush for the hour the five fell in: one flush, or two if a sync tick
    // (or the hour) fell between them.
    assert!(flushed == 1 || flushed == 2, "{flushed} statements");
}
