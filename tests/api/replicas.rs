//! Two server processes on one database: tokens, refresh races and revocations cross between
//! them (docs/REFERENCE.md §8).

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{
    ServerProcess, TestDatabase, as_refs, cli_admin, eventually, join_all, process_env,
};

struct Pair {
    a: ServerProcess,
    b: ServerProcess,
    http: reqwest::Client,
}

async fn post(
    http: &reqwest::Client,
    url: String,
    auth: &(String, String),
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response =
        http.post(url).basic_auth(&auth.0, Some(&auth.1)).form(form).send().await.expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A user's refresh token from process A, through the admin API and the code flow at A.
async fn refresh_token_from_a(
    pair: &Pair,
    admin: &(String, String),
) -> ((String, String), String, String) {
    use crate::browser::{PASSWORD, input, location, params, pkce};
    let http = &pair.http;
    let admin_token = crate::helpers::token_from(&pair.a.address, admin).await;
    let client: Value = http
        .post(format!("{}/admin/clients", pair.a.address))
        .bearer_auth(&admin_token)
        .json(&serde_json::json!({"redirect_uris": ["https://app.example/cb"], "grant_types": ["authorization_code", "refresh_token"], "scope": "openid offline_access"}))
        .send()
        .await
        .expect("client")
        .json()
        .await
        .expect("JSON");
    http.post(format!("{}/admin/users", pair.a.address))
        .bearer_auth(&admin_token)
        .json(&serde_json::json!({"username": "pat", "password": PASSWORD}))
        .send()
        .await
        .expect("user");
    let creds = (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    );
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let (verifier, challenge) = pkce();
    let a = &pair.a.address;
    let start = format!(
        "{a}/authorize?response_type=code&client_id={}&scope=openid+offline_access&code_challenge={challenge}&code_challenge_method=S256",
        creds.0
    );
    let to_login = browser.get(&start).send().await.expect("authorize");
    let login_page = browser
        .get(format!("{a}{}", location(&to_login).expect("login")))
        .send()
        .await
        .expect("login")
        .text()
        .await
        .expect("page");
    let logged_in = browser
        .post(format!("{a}/login"))
        .form(&[
            ("username", "pat"),
            ("password", PASSWORD),
            ("csrf_token", &input(&login_page, "csrf_token").expect("csrf")),
            ("return_to", &input(&login_page, "return_to").expect("rt")),
        ])
        .send()
        .await
        .expect("login");
    let to_consent = browser
        .get(format!("{a}{}", location(&logged_in).expect("authorize")))
        .send()
        .await
        .expect("authorize");
    let consent = browser
        .get(format!("{a}{}", location(&to_consent).expect("consent")))
        .send()
        .await
        .expect("consent")
        .text()
        .await
        .expect("page");
    let allowed = browser
        .post(format!("{a}/consent"))
        .form(&[
            ("csrf_token", input(&consent, "csrf_token").expect("csrf").as_str()),
            ("request", input(&consent, "request").expect("req").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .expect("consent");
    let code = params(&location(&allowed).expect("code"))["code"].clone();
    let (_, tokens) = post(
        http,
        format!("{a}/token"),
        &creds,
        &[("grant_type", "authorization_code"), ("code", &code), ("code_verifier", &verifier)],
    )
    .await;
    (
        creds,
        tokens["refresh_token"].as_str().expect("refresh").to_owned(),
        tokens["access_token"].as_str().expect("access").to_owned(),
    )
}

async fn pair(db: &TestDatabase) -> Pair {
    let mut env = process_env(db);
    env.push(("CASTELLAN_ISSUER", "https://castellan.test".into()));
    env.push(("CASTELLAN_REFRESH_REUSE_GRACE", "10s".into()));
    let refs = as_refs(&env);
    let (a, b) = tokio::join!(
        ServerProcess::spawn(db.dir.path(), &refs),
        ServerProcess::spawn(db.dir.path(), &refs)
    );
    Pair { a, b, http: reqwest::Client::new() }
}

#[tokio::test]
async fn a_token_from_one_process_is_refreshed_and_revoked_at_the_other() {
    let db = TestDatabase::create().await;
    let pair = pair(&db).await;
    let admin = cli_admin(&db);
    let (client, refresh, access) = refresh_token_from_a(&pair, &admin).await;

    let (status, refreshed) = post(
        &pair.http,
        format!("{}/token", pair.b.address),
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let (status, _) =
        post(&pair.http, format!("{}/revoke", pair.b.address), &client, &[("token", &access)])
            .await;
    assert_eq!(status, 200);

    let seen = eventually(Duration::from_secs(5), || async {
        let (_, answer) = post(
            &pair.http,
            format!("{}/introspect", pair.a.address),
            &client,
            &[("token", &access)],
        )
        .await;
        answer == serde_json::json!({"active": false})
    })
    .await;
    assert!(seen, "a revocation at B is seen by introspection at A within 5 s");
}

#[tokio::test]
async fn a_refresh_race_split_across_two_processes_has_exactly_one_winner() {
    let db = TestDatabase::create().await;
    let pair = pair(&db).await;
    let admin = cli_admin(&db);
    let (client, refresh, _) = refresh_token_from_a(&pair, &admin).await;
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];

    let attempts = (0..20)
        .map(|i| {
            let address = if i % 2 == 0 { &pair.a.address } else { &pair.b.address };
            post(&pair.http, format!("{address}/token"), &client, &form)
        })
        .collect();
    let mut winners = Vec::new();
    for (status, body) in join_all(attempts).await {
        assert!(
            status == 200 || (status == 400 && body["error"] == "invalid_grant"),
            "{status} {body}"
        );
        if status == 200 {
            winners.push(body);
        }
    }

    assert_eq!(winners.len(), 1);
    let chain = winners[0]["refresh_token"].as_str().expect("token");
    let (status, _) = post(
        &pair.http,
        format!("{}/token", pair.b.address),
        &client,
        &[("grant_type", "refresh_token"), ("refresh_token", chain)],
    )
    .await;
    assert_eq!(status, 200, "one live chain");
}

/// Tokens issued in the last hours, as the table has them: every
/// replica's flushed tallies added up.
async fn tokens_in_table(app: &crate::helpers::TestApp) -> u64 {
    let since = chrono::Utc::now() - chrono::Duration::hours(2);
    let db = app.store().await;
    let hours = castellan::store::token_hours::since(&db, since).await.expect("token hours");
    hours.iter().map(|(_, n)| n).sum()
}

#[tokio::test]
async fn each_replica_tallies_its_own_tokens_and_the_table_adds_them_up() {
    let a = crate::helpers::spawn_app().await;
    let b = a.replica().await;
    for _ in 0..2 {
        a.admin_token().await;
    }
    for _ in 0..3 {
        b.admin_token().await;
    }

    let five = eventually(Duration::from_secs(5), || async { tokens_in_table(&a).await == 5 });
    assert!(five.await, "{} tokens in the table", tokens_in_table(&a).await);
    // Flushed once: later syncs add nothing more.
    tokio::time::sleep(a.settings.sync_interval * 3).await;
    assert_eq!(tokens_in_table(&a).await, 5);
}
