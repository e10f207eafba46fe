//! End-to-end runs in a real headless browser (Debian's chromium and chromedriver, spoken
//! to over the W3C WebDriver protocol): log in, consent, land on a local redirect URI with a
//! code, exchange it; and a device polling while its user types the code and approves.
//! Skipped where no browser is installed, except under CI.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::browser::{PASSWORD, params, pkce, user};
use crate::helpers::{eventually, spawn_app, spawn_app_with};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    process: Child,
    http: reqwest::Client,
    base: String,
    session: String,
}

impl Driver {
    async fn start() -> Option<Driver> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            assert!(std::env::var("CI").is_err(), "CI must install chromium and chromium-driver");
            eprintln!("skipped: no {CHROMEDRIVER} or {CHROMIUM} here");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(15), || {
            let status = http.get(format!("{base}/status")).send();
            async move { status.await.is_ok() }
        })
        .await;
        assert!(up, "chromedriver starts");
        let profile = tempfile::tempdir().expect("profile dir").keep();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                format!("--user-data-dir={}", profile.display()),
            ]},
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("session")
            .json()
            .await
            .expect("JSON");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_owned();
        Some(Driver { process, http, base, session })
    }

    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method, url);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("WebDriver command");
        response.json::<Value>().await.expect("JSON")["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    /// The element `css` selects, waiting up to 15 s for it: after a click the next page may
    /// take a while (an Argon2 hash on a loaded machine), and asking too early is no failure.
    async fn element(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .command(
                    reqwest::Method::POST,
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                return id.to_owned();
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("no element {css}: {found}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text}))
            .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
    }

    /// With `CASTELLAN_SCREENSHOTS` set to a folder (docs/screenshots), saves what the
    /// browser shows there as `name`.png, at 1000×800: the README's pictures come from here.
    async fn screenshot(&self, name: &str) {
        let Ok(folder) = std::env::var("CASTELLAN_SCREENSHOTS") else { return };
        self.command(reqwest::Method::POST, "/window/rect", json!({"width": 1000, "height": 800}))
            .await;
        let shot = self.command(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot.as_str().expect("a base64 PNG"))
            .expect("base64");
        std::fs::write(std::path::Path::new(&folder).join(format!("{name}.png")), png)
            .expect("the screenshot is saved");
    }

    /// The `value` of the form field `css` selects (what a user would copy).
    async fn value(&self, css: &str) -> String {
        let id = self.element(css).await;
        let path = format!("/element/{id}/property/value");
        let value = self.command(reqwest::Method::GET, &path, Value::Null).await;
        value.as_str().unwrap_or_default().to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        let path = format!("/element/{id}/text");
        let text = self.command(reqwest::Method::GET, &path, Value::Null).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    async fn displayed(&self, css: &str) -> bool {
        let id = self.element(css).await;
        let path = format!("/element/{id}/displayed");
        let shown = self.command(reqwest::Method::GET, &path, Value::Null).await;
        shown.as_bool().unwrap_or(false)
    }

    async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// A local redirect URI: answers every request with a small page.
async fn landing_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 14\r\nconnection: close\r\n\r\n<p>landed</p>\n")
                .await;
        }
    });
    port
}

#[tokio::test]
async fn a_real_browser_logs_in_consents_and_lands_on_the_redirect_uri_with_a_code() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app().await;
    let port = landing_server().await;
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client = app
        .create_client(json!({"client_name": "Browser App", "redirect_uris": [redirect], "scope": "openid profile"}))
        .await;
    let (id, secret) = (
        client["client_id"].as_str().expect("id"),
        client["client_secret"].as_str().expect("secret"),
    );
    user(&app, "olga").await;
    let (verifier, challenge) = pkce();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "browser-state")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();

    driver.go(&app.url(&format!("/authorize?{query}"))).await;
    driver.type_into("input[name=username]", "olga").await;
    driver.type_into("input[name=password]", PASSWORD).await;
    driver.screenshot("login").await;
    driver.click("button[type=submit]").await;
    driver.element("button[name=decision][value=allow]").await;
    driver.screenshot("consent").await;
    driver.click("button[name=decision][value=allow]").await;

    let landed =
        eventually(Duration::from_secs(10), || async { driver.url().await.starts_with(&redirect) })
            .await;
    let url = driver.url().await;
    assert!(landed, "the browser ends on the redirect URI, not {url}");
    let query = params(&url);
    assert_eq!(query["state"], "browser-state");
    assert_eq!(query["iss"], app.issuer);
    let tokens: Value = app
        .token_basic(
            id,
            secret,
            &[
                ("grant_type", "authorization_code"),
                ("code", &query["code"]),
                ("redirect_uri", &redirect),
                ("code_verifier", &verifier),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert!(tokens["access_token"].is_string(), "{tokens}");

    // The account page lists what the user allowed, and the authenticator app's set-up shows
    // its QR code: both drawn without script or inline style.
    driver.go(&app.url("/account")).await;
    assert!(driver.text("main").await.contains("Browser App"), "the grant is listed");
    driver.screenshot("account").await;
    driver.go(&app.url("/account/totp")).await;
    driver.element("svg").await;
    driver.screenshot("totp-setup").await;
    driver.command(reqwest::Method::DELETE, "", Value::Null).await;
}

/// A device as RFC 8628 §3.4–§3.5 describes it: polls at its interval, 5 s slower after each
/// `slow_down`, until an answer other than `authorization_pending`, which it returns;
/// `pending` counts the polls answered `authorization_pending`.
async fn device_polls(
    token_endpoint: String,
    client_id: String,
    device_code: String,
    interval: u64,
    pending: Arc<AtomicU32>,
) -> Value {
    let http = reqwest::Client::new();
    let mut interval = Duration::from_secs(interval);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let answer: Value = http
            .post(&token_endpoint)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("device_code", device_code.as_str()),
                ("client_id", client_id.as_str()),
            ])
            .send()
            .await
            .expect("poll")
            .json()
            .await
            .expect("JSON");
        match answer["error"].as_str() {
            Some("authorization_pending") => {
                pending.fetch_add(1, Ordering::SeqCst);
            }
            Some("slow_down") => interval += Duration::from_secs(5),
            _ => return answer,
        }
        tokio::time::sleep(interval).await;
    }
    panic!("no answer within a minute");
}

#[tokio::test]
async fn a_device_polls_while_its_user_types_the_code_in_a_real_browser_and_approves() {
    let Some(driver) = Driver::start().await else { return };
    let app = spawn_app_with(|s| s.device_poll_interval = Duration::from_secs(1)).await;
    let client_id = crate::device::device_client(&app, "openid offline_access").await;
    user(&app, "tess").await;
    let (_, started) = crate::device::start(&app, &client_id, None).await;
    let pending = Arc::new(AtomicU32::new(0));
    let device = tokio::spawn(device_polls(
        app.url("/token"),
        client_id.clone(),
        started["device_code"].as_str().expect("device_code").to_owned(),
        started["interval"].as_u64().expect("interval"),
        pending.clone(),
    ));

    // The user opens the short address the device shows and types the code by hand: in
    // lower case and without the dash, as people do.
    driver.go(started["verification_uri"].as_str().expect("verification_uri")).await;
    driver.type_into("input[name=username]", "tess").await;
    driver.type_into("input[name=password]", PASSWORD).await;
    driver.click("button[type=submit]").await;
    let typed = started["user_code"].as_str().expect("user_code").replace('-', "").to_lowercase();
    driver.element("input[name=user_code]").await;
    driver.screenshot("device").await;
    driver.type_into("input[name=user_code]", &typed).await;
    driver.click("button[type=submit]").await;
    driver.element("button[name=decision][value=allow]").await;
    driver.screenshot("device-consent").await;
    let polled =
        eventually(Duration::from_secs(10), || async { pending.load(Ordering::SeqCst) > 0 }).await;
    assert!(polled, "the device is told to wait while its user has not answered");
    driver.click("button[name=decision][value=allow]").await;
    driver.element("p.notice").await;

    let tokens = device.await.expect("the device's task");
    assert!(tokens["access_token"].is_string(), "{tokens}");
    assert!(tokens["refresh_token"].is_string(), "offline_access: {tokens}");
    assert!(tokens["id_token"].is_string(), "openid: {tokens}");
    driver.command(reqwest::Method::DELETE, "", Value::Null).await;
}

/// The walk through the console, in a real browser: an administrator signs in,
/// registers a client and copies its secret, rotates it, disables a user, revokes a grant,
/// rotates the keys, and finds each of those on the events page; the pages' screenshots for
/// the README come from here. Every click is a plain form
/// post: the console's script only adds the Copy button.
#[tokio::test]
async fn an_administrator_walks_the_console_in_a_real_browser() {
    let Some(driver) = Driver::start().await else { return };
    // JWKS caches of five minutes: a rotation right after start is refused until forced.
    let app = spawn_app_with(|s| s.jwks_max_age = Duration::from_secs(300)).await;
    let root = json!({"username": "root", "password": PASSWORD, "admin": true});
    let root = app.admin(reqwest::Method::POST, "/admin/users", Some(root)).await;
    let root_id = root.json::<Value>().await.expect("JSON")["id"].as_str().expect("id").to_owned();
    let bob = user(&app, "bob").await;
    let (printer, _) = crate::browser::web_client(&app, "Photo Printer", "openid profile").await;
    let (_, challenge) = pkce();
    let asked = crate::browser::authorize_url(&app, &printer, &challenge, "openid profile", "s");
    let bobs_browser = crate::browser::Browser::new();
    crate::browser::authorize_with_consent(&bobs_browser, &app, &asked, "bob").await;
    let actor = format!("user:{root_id}");

    // Signing in: the console sends the browser through the login page and back.
    driver.go(&app.url("/console")).await;
    driver.type_into("input[name=username]", "root").await;
    driver.type_into("input[name=password]", PASSWORD).await;
    driver.click("button[type=submit]").await;
    assert_eq!(driver.text("#count-users").await, "2");
    driver.screenshot("console-dashboard").await;

    // A client registered, its secret shown once and copyable, and working.
    driver.go(&app.url("/console/clients/new")).await;
    driver.type_into("#client_name", "Nightly reports").await;
    driver.click("input[value=authorization_code]").await;
    driver.click("input[value=refresh_token]").await;
    driver.click("input[value=client_credentials]").await;
    driver.click("form[action$='/console/clients'] button[type=submit]").await;
    let secret = driver.value("#client_secret").await;
    let client_id = driver.text("#client-id").await;
    assert!(driver.displayed("button[data-copy=client_secret]").await, "the script ran");
    driver.screenshot("console-client").await;
    let form = [("grant_type", "client_credentials")];
    assert_eq!(app.token_basic(&client_id, &secret, &form).await.status(), 200);

    // Rotated: the new secret works and the old one stops.
    driver.click("form[action$='/secret'] button[type=submit]").await;
    let rotated = eventually(Duration::from_secs(15), || async {
        driver.value("#client_secret").await != secret
    })
    .await;
    assert!(rotated, "a new secret is shown");
    let new_secret = driver.value("#client_secret").await;
    assert_eq!(app.token_basic(&client_id, &new_secret, &form).await.status(), 200);
    assert_eq!(app.token_basic(&client_id, &secret, &form).await.status(), 401);
    driver.go(&app.url("/console/clients")).await;
    driver.element("table").await;
    driver.screenshot("console-clients").await;

    // Bob disabled, then his grant revoked, from his page.
    driver.go(&app.url(&format!("/console/users/{bob}"))).await;
    driver.screenshot("console-user").await;
    driver.click("form[action$='/disabled'] button[type=submit]").await;
    let disabled = eventually(Duration::from_secs(15), || async {
        driver.text("#user-disabled").await == "yes"
    })
    .await;
    assert!(disabled, "the page shows bob disabled");
    driver.click("form[action*='/console/grants/'] button[type=submit]").await;
    let path = format!("/admin/users/{bob}/grants");
    let revoked = eventually(Duration::from_secs(15), || async {
        let grants = app.admin(reqwest::Method::GET, &path, None).await;
        grants.json::<Value>().await.expect("JSON")["items"] == json!([])
    })
    .await;
    assert!(revoked, "the grant is gone");
    let login = bobs_browser.get(&app.url("/account")).await;
    assert_ne!(login.status(), 200, "bob's session ended with the disabling");
    driver.go(&app.url("/console/users")).await;
    driver.element("table").await;
    driver.screenshot("console-users").await;

    // The keys rotated: refused at first while the next key may be missing from caches,
    // then forced; the page then names a new signing key.
    driver.go(&app.url("/console/keys")).await;
    let before = driver.text("#signing-kid").await;
    driver.screenshot("console-keys").await;
    driver.click("form[action$='/console/keys/rotate'] button[type=submit]").await;
    let refused = eventually(Duration::from_secs(15), || async {
        driver.text("h1").await.contains("too new")
    })
    .await;
    assert!(refused, "refused first: the next key is younger than the JWKS caches");
    driver.click("input[name=force] ~ div button[type=submit]").await;
    // The forced rotation's answer (back to the keys page) first: navigating away while
    // the form is still being posted would cancel the post.
    let answered = eventually(Duration::from_secs(15), || async {
        let heading = driver.text("h1").await;
        !heading.is_empty() && !heading.contains("too new")
    })
    .await;
    assert!(answered, "the forced rotation is answered");
    let rotated = eventually(Duration::from_secs(15), || async {
        driver.go(&app.url("/console/keys")).await;
        driver.text("#signing-kid").await != before
    })
    .await;
    assert!(rotated, "a new key signs");
    let after = driver.text("#signing-kid").await;
    assert!(app.jwks_kids().await.contains(&after), "the new signing key is published");
    driver.go(&app.url("/console/scopes")).await;
    driver.element("table").await;
    driver.screenshot("console-scopes").await;

    // Each change is on the events page, with the administrator as its actor.
    driver.go(&app.url(&format!("/console/events?type=&actor={actor}&subject="))).await;
    driver.element("table.events").await;
    driver.screenshot("console-events").await;
    let shown = driver.text("table.events").await;
    for kind in [
        "console.sign_in",
        "client.created",
        "client.secret_rotated",
        "user.disabled",
        "grant.revoked",
        "key.rotated",
    ] {
        assert!(shown.contains(kind), "{kind} in {shown}");
    }
    driver.command(reqwest::Method::DELETE, "", Value::Null).await;
}

/// Passkeys in a real browser (docs/REFERENCE.md §3.4, §3.6): Chromium's virtual
/// authenticator (WebDriver's WebAuthn extension) with user verification. A fresh sign-in
/// registers a passkey from /account and names it; signed out, the login page's passkey
/// button signs in with it alone (no username typed) and lands on /account. WebAuthn refuses
/// IP addresses, so the issuer here is `http://localhost:PORT` (a secure context).
#[tokio::test]
async fn a_real_browser_registers_a_passkey_and_signs_in_with_it_alone() {
    let Some(driver) = Driver::start().await else { return };
    let app = crate::passkeys::spawn_localhost(|_| {}).await;
    let id = user(&app, "petra").await;
    let authenticator = driver
        .command(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            json!({"protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
                   "hasUserVerification": true, "isUserVerified": true}),
        )
        .await;
    let authenticator = authenticator.as_str().unwrap_or_else(|| panic!("{authenticator}"));
    let at = |path: &str| format!("{}{path}", app.issuer);

    driver.go(&at("/login?return_to=%2Faccount")).await;
    driver.type_into("input[name=username]", "petra").await;
    driver.type_into("input[name=password]", PASSWORD).await;
    driver.click("button[type=submit]").await;
    assert!(driver.displayed("#passkey-register").await, "the script shows the passkey form");
    let name = driver.element("#passkey_name").await;
    driver.command(reqwest::Method::POST, &format!("/element/{name}/clear"), json!({})).await;
    driver.type_into("#passkey_name", "Chromium key").await;
    driver.click("#passkey-register button[type=submit]").await;
    let listed = eventually(Duration::from_secs(15), || async {
        driver.text("main").await.contains("Chromium key")
    })
    .await;
    let source = driver.command(reqwest::Method::GET, "/source", Value::Null).await;
    assert!(listed, "registered and listed: {source}");
    driver.screenshot("account-passkey").await;
    let credentials = driver
        .command(
            reqwest::Method::GET,
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            Value::Null,
        )
        .await;
    assert_eq!(credentials.as_array().map(Vec::len), Some(1), "{credentials}");
    assert_eq!(credentials[0]["isResidentCredential"], true, "a discoverable credential");

    // Signed out, then in with the passkey alone.
    driver.click("form[action$='/logout'] button").await;
    eventually(Duration::from_secs(10), || async { !driver.url().await.ends_with("/account") })
        .await;
    driver.go(&at("/login?return_to=%2Faccount")).await;
    assert!(driver.displayed("#passkey-signin button").await, "the passkey button shows");
    driver.screenshot("login-passkey").await;
    driver.click("#passkey-signin button").await;
    let landed = eventually(Duration::from_secs(15), || async {
        driver.url().await == at("/account")
            && driver.text("main").await.contains("Signed in as petra")
    })
    .await;
    assert!(
        landed,
        "signed in with the passkey: {} {}",
        driver.url().await,
        driver.text("main").await
    );

    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let db = app.store().await;
    let sessions = entity::session::Entity::find()
        .filter(entity::session::Column::UserId.eq(id.clone()))
        .all(&db)
        .await
        .expect("sessions");
    let amr: Vec<Option<String>> = sessions.into_iter().map(|s| s.amr).collect();
    assert!(
        amr.iter().any(|a| matches!(a.as_deref(), Some("hwk user mfa" | "swk user mfa"))),
        "a passkey session: {amr:?}"
    );
    let stored = entity::passkey::Entity::find()
        .filter(entity::passkey::Column::UserId.eq(id))
        .one(&db)
        .await
        .expect("read")
        .expect("the passkey");
    assert!(stored.last_used_at.is_some() && stored.user_verified);
    driver.command(reqwest::Method::DELETE, "", Value::Null).await;
}

/// Signing in through an upstream provider in a real browser: the downstream's login page
/// offers it, the upstream (another Castellan, on `localhost` so that the two servers' cookies
/// stay apart as two sites' would) signs the user in and asks for consent, and the browser
/// comes back signed in downstream with the identity linked on /account.
#[tokio::test]
async fn a_real_browser_signs_in_through_an_upstream_provider() {
    let Some(driver) = Driver::start().await else { return };
    let up = crate::passkeys::spawn_localhost(|_| {}).await;
    let down = spawn_app_with(|s| s.outbound_allow_private_networks = true).await;
    user(&up, "ada").await;
    let callback = format!("{}/login/upstream/corp/callback", down.issuer);
    let client = up
        .create_client(json!({"client_name": "Downstream", "redirect_uris": [callback], "grant_types": ["authorization_code"], "scope": "openid email profile"}))
        .await;
    let made = down
        .admin(
            reqwest::Method::POST,
            "/admin/upstream-providers",
            Some(json!({
                "id": "corp", "name": "Corp", "issuer": up.issuer, "create_users": true,
                "client_id": client["client_id"], "client_secret": client["client_secret"],
            })),
        )
        .await;
    assert_eq!(made.status(), 201);

    driver.go(&down.url("/login?return_to=%2Faccount")).await;
    driver.screenshot("login-upstream").await;
    driver.click("form[action$='/login/upstream/corp'] button").await;
    // At the upstream: its own login page and consent page. A click does not wait for the
    // next page, and this page has a username field too: wait to be there before typing.
    let there = eventually(Duration::from_secs(10), || async {
        driver.url().await.starts_with(&up.issuer)
    })
    .await;
    assert!(there, "at the upstream, not {}", driver.url().await);
    driver.type_into("input[name=username]", "ada").await;
    driver.type_into("input[name=password]", PASSWORD).await;
    driver.click("button[type=submit]").await;
    driver.click("button[name=decision][value=allow]").await;
    let home = eventually(Duration::from_secs(10), || async {
        driver.url().await == down.url("/account")
    })
    .await;
    assert!(home, "back downstream on /account, not {}", driver.url().await);
    let shown = driver.text("main").await;
    assert!(shown.contains("Signed in as ada") && shown.contains("Linked identities"), "{shown}");
    assert!(shown.contains("Corp"), "the provider is named: {shown}");
    driver.screenshot("account-identities").await;
}
