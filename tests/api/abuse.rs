//! Brute-force limits (docs/REFERENCE.md §9.6): guessing is stopped per address and per
//! (account, address), an account guessed at from everywhere goes into soft lockout, and the
//! owner with the right credential still gets in; across replicas, under concurrency, with
//! `Retry-After`.

use std::time::Duration;

use reqwest::Response;

use crate::browser::{Browser, PASSWORD, input, user};
use crate::helpers::{TestApp, eventually, join_all, spawn_app_with};

/// A browser on the login page: its CSRF token, ready to post the form many times.
async fn login_form(app: &TestApp) -> (Browser, String) {
    let browser = Browser::new();
    let page = browser.get(&app.url("/login")).await.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf_token");
    (browser, csrf)
}

async fn log_in(
    app: &TestApp,
    (browser, csrf): &(Browser, String),
    username: &str,
    password: &str,
) -> Response {
    let form = [
        ("username", username),
        ("password", password),
        ("csrf_token", csrf.as_str()),
        ("return_to", "/account"),
    ];
    browser.post(&app.url("/login"), &form).await
}

/// Signs in as if from `address` (the app trusts its loopback proxy).
async fn log_in_from(
    app: &TestApp,
    (browser, csrf): &(Browser, String),
    username: &str,
    password: &str,
    address: &str,
) -> u16 {
    let form = [
        ("username", username),
        ("password", password),
        ("csrf_token", csrf.as_str()),
        ("return_to", "/account"),
    ];
    browser.post_from(&app.url("/login"), &form, address).await.status().as_u16()
}

/// Settings behind a trusted loopback proxy, with `limit` failures per account.
fn proxied(limit: u32) -> impl FnOnce(&mut castellan::config::Settings) {
    move |s| {
        s.account_failure_limit = limit;
        s.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    }
}

fn retry_after(response: &Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds")
}

/// The page without what legitimately differs between two answers (the CSRF token).
async fn page_shape(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    let page = response.text().await.expect("page");
    let csrf = input(&page, "csrf_token").unwrap_or_default();
    (status, page.replace(&csrf, "CSRF"))
}

#[tokio::test]
async fn ten_failed_logins_from_one_address_stop_it_but_the_owner_gets_in_from_another() {
    let app = spawn_app_with(proxied(10)).await;
    user(&app, "ann").await;
    user(&app, "bob").await;
    let attacker = login_form(&app).await;

    for attempt in 1..=10 {
        let status = log_in_from(&app, &attacker, "ann", "wrong", "198.51.100.7").await;
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let form = [("username", "ann"), ("password", PASSWORD), ("csrf_token", attacker.1.as_str())];
    let locked = attacker.0.post_from(&app.url("/login"), &form, "198.51.100.7").await;

    assert_eq!(locked.status(), 429, "the guessing address waits, even with the password");
    assert!((1..=900).contains(&retry_after(&locked)));
    assert!(locked.text().await.expect("page").contains("Too many failed sign-ins"));
    let owner = login_form(&app).await;
    assert_eq!(
        log_in_from(&app, &owner, "ann", PASSWORD, "203.0.113.20").await,
        303,
        "the owner signs in from an address that did not guess"
    );
    let other = login_form(&app).await;
    assert_eq!(
        log_in_from(&app, &other, "bob", PASSWORD, "198.51.100.7").await,
        303,
        "another account signs in from the guessing address"
    );
}

#[tokio::test]
async fn an_account_guessed_at_from_everywhere_refuses_the_guessers_but_not_its_owner() {
    let app = spawn_app_with(proxied(3)).await;
    user(&app, "ida").await;
    // The owner's browser signed in before: it holds a known-device cookie for "ida".
    let owners_device = login_form(&app).await;
    assert_eq!(log_in_from(&app, &owners_device, "ida", PASSWORD, "192.0.2.1").await, 303);

    // Three addresses guess once each: the account has reached its limit.
    let attacker = login_form(&app).await;
    let mut wrong = 0;
    for n in 1..=3 {
        assert_eq!(
            log_in_from(&app, &attacker, "ida", "guess", &format!("198.51.100.{n}")).await,
            401
        );
        wrong += 1;
    }
    // Soft lockout: an address that already guessed is refused, whatever it sends...
    for n in 1..=3 {
        let again = log_in_from(&app, &attacker, "ida", PASSWORD, &format!("198.51.100.{n}")).await;
        assert_eq!(again, 429, "a guessing address is refused, even with the password");
    }
    // ...a fresh address gets one try before it is a guessing address too...
    assert_eq!(log_in_from(&app, &attacker, "ida", "guess", "198.51.100.50").await, 401);
    wrong += 1;
    assert_eq!(log_in_from(&app, &attacker, "ida", "guess", "198.51.100.50").await, 429);

    // ...and the owner gets in: from a fresh address, and on the known device even from an
    // address the attacker guessed from.
    let fresh = login_form(&app).await;
    assert_eq!(log_in_from(&app, &fresh, "ida", PASSWORD, "203.0.113.9").await, 303);
    assert_eq!(log_in_from(&app, &owners_device, "ida", PASSWORD, "198.51.100.1").await, 303);
    assert_eq!(wrong, 4, "four guesses in all: one per address");
}

#[tokio::test]
async fn an_unknown_user_gets_exactly_the_answers_a_wrong_password_gets() {
    let app = spawn_app_with(|_| {}).await;
    user(&app, "cara").await;
    let form = login_form(&app).await;

    for _ in 0..10 {
        let wrong = page_shape(log_in(&app, &form, "cara", "wrong").await).await;
        let unknown = page_shape(log_in(&app, &form, "nobody", "wrong").await).await;
        assert_eq!(wrong.0, 401);
        assert_eq!(wrong.1.replace("cara", "USER"), unknown.1.replace("nobody", "USER"));
    }
    let wrong = log_in(&app, &form, "cara", "wrong").await;
    let unknown = log_in(&app, &form, "nobody", "wrong").await;
    assert_eq!((wrong.status().as_u16(), unknown.status().as_u16()), (429, 429), "both counted");
}

#[tokio::test]
async fn fifty_parallel_wrong_passwords_are_checked_at_most_ten_times() {
    let app = spawn_app_with(|_| {}).await;
    user(&app, "dan").await;
    let form = login_form(&app).await;

    let statuses = join_all(
        (0..50).map(|_| async { log_in(&app, &form, "dan", "wrong").await.status() }).collect(),
    )
    .await;

    let checked = statuses.iter().filter(|s| s.as_u16() == 401).count();
    let refused = statuses.iter().filter(|s| s.as_u16() == 429).count();
    assert_eq!((checked, refused), (10, 40), "{statuses:?}");
    assert_eq!(log_in(&app, &form, "dan", PASSWORD).await.status(), 429);
}

#[tokio::test]
async fn the_address_limit_refuses_every_account_from_that_address() {
    let app = spawn_app_with(|s| s.address_failure_limit = 5).await;
    user(&app, "eli").await;
    let form = login_form(&app).await;

    for n in 0..5 {
        let refused = log_in(&app, &form, &format!("guess{n}"), "wrong").await;
        assert_eq!(refused.status(), 401);
    }

    let blocked = log_in(&app, &form, "eli", PASSWORD).await;
    assert_eq!(blocked.status(), 429, "a sixth account from the same address");
    assert!(retry_after(&blocked) >= 1);
}

#[tokio::test]
async fn a_successful_login_resets_the_count_of_its_account_and_address() {
    let app = spawn_app_with(|_| {}).await;
    user(&app, "fia").await;
    let form = login_form(&app).await;

    for _ in 0..9 {
        assert_eq!(log_in(&app, &form, "fia", "wrong").await.status(), 401);
    }
    assert_eq!(log_in(&app, &form, "fia", PASSWORD).await.status(), 303);
    for _ in 0..9 {
        assert_eq!(log_in(&app, &form, "fia", "wrong").await.status(), 401, "a fresh count");
    }
}

#[tokio::test]
async fn the_lock_lifts_when_the_window_closes() {
    let app = spawn_app_with(|s| {
        s.account_failure_limit = 2;
        // Long enough that two slow (argon2, busy machine) failed logins fall inside it.
        s.failure_window = Duration::from_secs(6);
    })
    .await;
    user(&app, "gil").await;
    let form = login_form(&app).await;
    for _ in 0..2 {
        log_in(&app, &form, "gil", "wrong").await;
    }
    let locked = log_in(&app, &form, "gil", PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(retry_after(&locked) <= 7);

    tokio::time::sleep(Duration::from_millis(6100)).await;

    assert_eq!(log_in(&app, &form, "gil", PASSWORD).await.status(), 303);
}

async fn token_status(app: &TestApp, id: &str, secret: &str) -> Response {
    app.token_basic(id, secret, &[("grant_type", "client_credentials")]).await
}

/// A client_credentials request as if from `address` (the app trusts its loopback proxy).
async fn token_from_address(app: &TestApp, id: &str, secret: &str, address: &str) -> Response {
    app.http
        .post(app.url("/token"))
        .basic_auth(id, Some(secret))
        .header("x-forwarded-for", address)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn wrong_client_secrets_stop_their_address_but_never_lock_the_client() {
    let app = spawn_app_with(|s| {
        s.address_failure_limit = 5;
        s.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    let (id, secret) = app.service_client("profile", &[]).await;

    for attempt in 1..=5 {
        let status = token_from_address(&app, &id, "wrong", "198.51.100.7").await.status();
        assert_eq!(status, 401, "attempt {attempt}");
    }
    let blocked = token_from_address(&app, &id, &secret, "198.51.100.7").await;

    assert_eq!(blocked.status(), 429, "the guessing address is stopped");
    assert!((1..=900).contains(&retry_after(&blocked)));
    let body: serde_json::Value = blocked.json().await.expect("JSON");
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"].as_str().is_some_and(|d| d.contains("Retry-After")));
    let elsewhere = token_from_address(&app, &id, &secret, "203.0.113.5").await;
    assert_eq!(elsewhere.status(), 200, "the client itself is never locked");
    let introspect = app
        .http
        .post(app.url("/introspect"))
        .basic_auth(&id, Some(&secret))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[("token", "x")])
        .send()
        .await
        .expect("POST");
    assert_eq!(introspect.status(), 429, "every endpoint that authenticates clients");
}

#[tokio::test]
async fn public_clients_are_never_counted() {
    let app = spawn_app_with(|s| s.address_failure_limit = 3).await;
    let (id, secret) = app.service_client("profile", &[]).await;

    for _ in 0..10 {
        let response = app
            .http
            .post(app.url("/token"))
            .form(&[("grant_type", "authorization_code"), ("client_id", "no-such-public-client")])
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 401);
    }

    assert_eq!(token_status(&app, &id, &secret).await.status(), 200, "the address is not blocked");
}

#[tokio::test]
async fn fifty_parallel_wrong_secrets_get_at_most_ten_answers() {
    let app = spawn_app_with(|s| s.address_failure_limit = 10).await;
    let (id, _) = app.service_client("profile", &[]).await;

    let statuses = join_all(
        (0..50).map(|_| async { token_status(&app, &id, "wrong").await.status() }).collect(),
    )
    .await;

    let answered = statuses.iter().filter(|s| s.as_u16() == 401).count();
    let refused = statuses.iter().filter(|s| s.as_u16() == 429).count();
    assert_eq!((answered, refused), (10, 40), "{statuses:?}");
}

#[tokio::test]
async fn limits_hold_across_replicas() {
    // The logins below count 12 attempts against the address; ten wrong secrets reach 22.
    let app = spawn_app_with(|s| s.address_failure_limit = 22).await;
    let replica = app.replica().await;
    user(&app, "hana").await;
    let (at_a, at_b) = (login_form(&app).await, login_form(&replica).await);

    for _ in 0..5 {
        assert_eq!(log_in(&app, &at_a, "hana", "wrong").await.status(), 401);
        assert_eq!(log_in(&replica, &at_b, "hana", "wrong").await.status(), 401);
    }
    assert_eq!(log_in(&app, &at_a, "hana", PASSWORD).await.status(), 429);
    assert_eq!(log_in(&replica, &at_b, "hana", PASSWORD).await.status(), 429);

    let (id, secret) = app.service_client("profile", &[]).await;
    for _ in 0..10 {
        assert_eq!(token_status(&app, &id, "wrong").await.status(), 401);
    }
    let refused_at_b = eventually(Duration::from_secs(5), || async {
        token_status(&replica, &id, &secret).await.status() == 429
    })
    .await;
    assert!(refused_at_b, "the other replica refuses the address within 5 s");
    assert_eq!(token_status(&replica, &id, "wrong").await.status(), 429);
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    async fn failed_from(app: &TestApp, id: &str, forwarded: &str) -> u16 {
        let response = app
            .http
            .post(app.url("/token"))
            .basic_auth(id, Some("wrong"))
            .header("x-forwarded-for", forwarded)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .expect("POST");
        response.status().as_u16()
    }

    // Untrusted: X-Forwarded-For is the client's own claim, so varying it evades nothing.
    let app = spawn_app_with(|s| s.address_failure_limit = 3).await;
    let statuses: Vec<u16> = join_all(
        ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"]
            .iter()
            .enumerate()
            .map(|(n, ip)| {
                let app = &app;
                async move { failed_from(app, &format!("client-{n}"), ip).await }
            })
            .collect(),
    )
    .await;
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");

    // Behind a trusted proxy, each forwarded address has a count of its own.
    let proxied = spawn_app_with(|s| {
        s.address_failure_limit = 3;
        s.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    // A proxy may append `ip:port` (or `[v6]:port`): the port is not part of the address.
    for (n, hop) in ["203.0.113.7", "203.0.113.7:4711", "203.0.113.7:5000"].iter().enumerate() {
        let status = failed_from(&proxied, &format!("c{n}"), &format!("1.2.3.4, {hop}")).await;
        assert_eq!(status, 401);
    }
    assert_eq!(failed_from(&proxied, "c9", "203.0.113.7").await, 429);
    assert_eq!(failed_from(&proxied, "c9", "203.0.113.8").await, 401, "another source");
}

#[tokio::test]
async fn every_endpoint_refuses_a_body_over_its_limit() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.admin_token().await;
    let huge_form = format!("grant_type=client_credentials&pad={}", "a".repeat(100 * 1024));
    let huge_json = format!(r#"{{"client_name":"{}"}}"#, "a".repeat(100 * 1024));
    // Every route that reads a body (the others never read one, so never buffer it).
    let routes = [
        ("POST", "/token", false),
        ("POST", "/introspect", false),
        ("POST", "/revoke", false),
        ("POST", "/authorize", false),
        ("POST", "/login", false),
        ("POST", "/consent", false),
        ("POST", "/logout", false),
        ("POST", "/userinfo", false),
        ("POST", "/account/grants/some-id/revoke", false),
        ("POST", "/admin/clients", true),
        ("PUT", "/admin/clients/some-id", true),
        ("POST", "/admin/clients/some-id/secret", true),
        ("POST", "/admin/scopes", true),
        ("PUT", "/admin/scopes/profile", true),
        ("POST", "/admin/users", true),
        ("PUT", "/admin/users/some-id", true),
    ];
    for (method, path, json) in routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let request = app.http.request(method, app.url(path));
        let request = if json {
            request
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(huge_json.clone())
        } else {
            request
                .basic_auth(&app.admin.0, Some(&app.admin.1))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(huge_form.clone())
        };
        let response = request.send().await.expect("the server answers, not resets");
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
        if json {
            let body: serde_json::Value = response.json().await.expect("a JSON error");
            assert!(body["error"].is_string(), "{path}");
        }
    }
    assert_eq!(app.get("/health/ready").await.status(), 200, "the server is unharmed");
}
