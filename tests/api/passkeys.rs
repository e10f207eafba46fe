//! Passkeys (docs/REFERENCE.md §3.4, §3.6) at the HTTP level, with a software authenticator
//! written here (P-256 keys from aws-lc-rs, CBOR by hand, "none" attestation): registration
//! from /account after a fresh sign-in, sign-in with no username, the counter and flags
//! stored, renaming and removal with their events; and the refusals: an answer replayed, a
//! challenge of another browser, an expired one, another origin, a disabled user, a removed
//! passkey, a stale sign-in. The real browser walk is in headless.rs.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::{passkey, session};
use reqwest::{Method, Response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, authorize_url, consent, input, location, log_in, params, pkce, redeem, user,
    web_client,
};
use crate::helpers::{TestApp, jwt_claims, spawn_app_with};

/// A server whose issuer is `http://localhost:PORT` (WebAuthn refuses IP addresses as
/// relying party ids), listening on that port; `configure` may change more.
pub async fn spawn_localhost(configure: impl FnOnce(&mut castellan::config::Settings)) -> TestApp {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    spawn_app_with(move |s| {
        s.bind = format!("127.0.0.1:{port}").parse().expect("address");
        s.issuer = Some(
            castellan::config::Issuer::parse(&format!("http://localhost:{port}")).expect("issuer"),
        );
        configure(s);
    })
    .await
}

/// A software authenticator holding one discoverable P-256 credential.
struct Authenticator {
    key: EcdsaKeyPair,
    credential_id: Vec<u8>,
    user_handle: Vec<u8>,
    count: u32,
    /// The BE flag: a synced passkey.
    backup_eligible: bool,
    /// Whether it keeps a signature counter (many synced passkeys report zero always).
    counter: bool,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// CBOR byte string header for `len` bytes (up to 65535).
fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes.len() {
        n if n < 24 => out.push(0x40 | n as u8),
        n if n < 256 => out.extend([0x58, n as u8]),
        n => out.extend([0x59, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(bytes);
}

impl Authenticator {
    fn new(backup_eligible: bool) -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("key generation");
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref()).expect("key");
        let credential_id = uuid::Uuid::new_v4().as_bytes().to_vec();
        Self {
            key,
            credential_id,
            user_handle: Vec::new(),
            count: 0,
            backup_eligible,
            counter: true,
        }
    }

    fn flags(&self, attested: bool) -> u8 {
        // UP, UV, BE when eligible, AT for a registration.
        let mut flags = 0x01 | 0x04;
        if self.backup_eligible {
            flags |= 0x08;
        }
        if attested {
            flags |= 0x40;
        }
        flags
    }

    fn auth_data(&mut self, rp_id: &str, attested: bool) -> Vec<u8> {
        if self.counter {
            self.count += 1;
        }
        let mut data = digest(&SHA256, rp_id.as_bytes()).as_ref().to_vec();
        data.push(self.flags(attested));
        data.extend(self.count.to_be_bytes());
        if attested {
            data.extend([0u8; 16]); // AAGUID
            data.extend((self.credential_id.len() as u16).to_be_bytes());
            data.extend(&self.credential_id);
            let point = self.key.public_key().as_ref(); // 0x04 || x || y
            // COSE_Key, canonical order: kty 2 (EC2), alg -7 (ES256), crv 1 (P-256), x, y.
            data.extend([0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21]);
            cbor_bytes(&mut data, &point[1..33]);
            data.push(0x22);
            cbor_bytes(&mut data, &point[33..65]);
        }
        data
    }

    fn client_data(kind: &str, challenge: &str, origin: &str) -> Vec<u8> {
        json!({"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": false})
            .to_string()
            .into_bytes()
    }

    /// The answer to registration `options` (the server's JSON), from `origin`.
    fn register(&mut self, options: &Value, origin: &str) -> String {
        let pk = public_key(options);
        let rp_id = pk["rp"]["id"].as_str().expect("rp.id").to_owned();
        self.user_handle = URL_SAFE_NO_PAD
            .decode(pk["user"]["id"].as_str().expect("user.id"))
            .expect("user handle");
        let client_data = Self::client_data(
            "webauthn.create",
            pk["challenge"].as_str().expect("challenge"),
            origin,
        );
        let auth_data = self.auth_data(&rp_id, true);
        let mut attestation = vec![0xa3, 0x63];
        attestation.extend(b"fmt");
        attestation.push(0x64);
        attestation.extend(b"none");
        attestation.push(0x67);
        attestation.extend(b"attStmt");
        attestation.push(0xa0);
        attestation.push(0x68);
        attestation.extend(b"authData");
        cbor_bytes(&mut attestation, &auth_data);
        json!({
            "attestationObject": b64(&attestation),
            "authenticatorAttachment": "platform",
            "clientDataJSON": b64(&client_data),
            "clientExtensionResults": {},
            "transports": ["internal"],
            "type": "public-key",
        })
        .to_string()
    }

    /// The answer to sign-in `options`, from `origin`.
    fn assert(&mut self, options: &Value, origin: &str) -> String {
        let pk = public_key(options);
        let rp_id = pk["rpId"].as_str().expect("rpId").to_owned();
        let client_data =
            Self::client_data("webauthn.get", pk["challenge"].as_str().expect("challenge"), origin);
        let auth_data = self.auth_data(&rp_id, false);
        let mut signed = auth_data.clone();
        signed.extend(digest(&SHA256, &client_data).as_ref());
        let signature = self.key.sign(&SystemRandom::new(), &signed).expect("signature");
        json!({
            "authenticatorAttachment": "platform",
            "authenticatorData": b64(&auth_data),
            "clientDataJSON": b64(&client_data),
            "clientExtensionResults": {},
            "id": b64(&self.credential_id),
            "signature": b64(signature.as_ref()),
            "type": "public-key",
            "userHandle": b64(&self.user_handle),
        })
        .to_string()
    }
}

fn public_key(options: &Value) -> &Value {
    let options = &options["options"];
    if options["publicKey"].is_object() { &options["publicKey"] } else { options }
}

fn origin(app: &TestApp) -> String {
    app.issuer.clone()
}

/// A browser signed in (just now) as a new user `name`: (browser, user id).
async fn signed_in(app: &TestApp, name: &str) -> (Browser, String) {
    let id = user(app, name).await;
    let browser = Browser::new();
    let page =
        browser.get(&app.url("/login?return_to=%2Faccount")).await.text().await.expect("page");
    let response = log_in(&browser, app, &page, name, PASSWORD).await;
    assert_eq!(response.status(), 303, "signed in");
    (browser, id)
}

async fn account(app: &TestApp, browser: &Browser) -> String {
    let response = browser.get(&app.url("/account")).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("page")
}

/// The registration options for the signed-in `browser` (its CSRF token from /account).
async fn registration_options(app: &TestApp, browser: &Browser) -> Response {
    let html = account(app, browser).await;
    let csrf = input(&html, "csrf_token").expect("csrf");
    browser.post(&app.url("/account/passkeys/options"), &[("csrf_token", &csrf)]).await
}

async fn finish_registration(
    app: &TestApp,
    browser: &Browser,
    options: &Value,
    credential: &str,
    name: &str,
) -> Response {
    let html = account(app, browser).await;
    let csrf = input(&html, "csrf_token").expect("csrf");
    let state = options["state"].as_str().expect("state");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("state", state),
        ("credential", credential),
        ("name", name),
    ];
    browser.post(&app.url("/account/passkeys"), &form).await
}

/// Registers `authenticator` for the signed-in `browser` under `name`.
async fn register(app: &TestApp, browser: &Browser, authenticator: &mut Authenticator, name: &str) {
    let response = registration_options(app, browser).await;
    assert_eq!(response.status(), 200);
    let options: Value = response.json().await.expect("JSON");
    let credential = authenticator.register(&options, &origin(app));
    let response = finish_registration(app, browser, &options, &credential, name).await;
    assert_eq!(response.status(), 303, "registered");
}

/// A login page in `browser` (for `return_to`), and sign-in options for it: (page, options).
async fn login_options(app: &TestApp, browser: &Browser, return_to: &str) -> (String, Value) {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let page = browser.get(&app.url(&format!("/login?{query}"))).await.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf");
    let response = browser.post(&app.url("/login/passkey/options"), &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), 200);
    (page, response.json().await.expect("JSON"))
}

async fn finish_login(
    app: &TestApp,
    browser: &Browser,
    page: &str,
    options: &Value,
    credential: &str,
) -> Response {
    let csrf = input(page, "csrf_token").expect("csrf");
    let return_to = input(page, "return_to").expect("return_to");
    let state = options["state"].as_str().expect("state");
    let form = [
        ("csrf_token", csrf.as_str()),
        ("return_to", return_to.as_str()),
        ("state", state),
        ("credential", credential),
    ];
    browser.post(&app.url("/login/passkey"), &form).await
}

/// A whole passkey sign-in in a new browser: the answer to it.
async fn passkey_sign_in(app: &TestApp, authenticator: &mut Authenticator) -> (Browser, Response) {
    let browser = Browser::new();
    let (page, options) = login_options(app, &browser, "/account").await;
    let credential = authenticator.assert(&options, &origin(app));
    let response = finish_login(app, &browser, &page, &options, &credential).await;
    (browser, response)
}

async fn events(app: &TestApp, id: &str) -> Vec<Value> {
    let path = format!("/admin/events?limit=100&subject=user:{id}");
    let response = app.admin(Method::GET, &path, None).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.expect("JSON")["items"].as_array().expect("items").clone()
}

/// The reasons of the refused passkey sign-ins, oldest first.
async fn refusals(app: &TestApp) -> Vec<String> {
    let response =
        app.admin(Method::GET, "/admin/events?limit=100&subject=user:unknown", None).await;
    let body: Value = response.json().await.expect("JSON");
    let mut reasons: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["detail"]["factor"] == "passkey")
        .map(|e| e["detail"]["reason"].as_str().expect("reason").to_owned())
        .collect();
    reasons.reverse();
    reasons
}

fn has_event(events: &[Value], kind: &str) -> bool {
    events.iter().any(|e| e["type"] == kind)
}

#[tokio::test]
async fn passkey_registered_from_account_signs_in_alone_and_is_renamed_and_removed() {
    let app = spawn_localhost(|_| {}).await;
    let (browser, id) = signed_in(&app, "pia").await;
    let html = account(&app, &browser).await;
    assert!(html.contains("id=\"passkey-register\""), "a fresh sign-in may add a passkey");
    assert!(html.contains("/static/passkeys.js"));
    let mut authenticator = Authenticator::new(false);
    register(&app, &browser, &mut authenticator, "Work laptop").await;
    let html = account(&app, &browser).await;
    assert!(html.contains("Work laptop"), "listed by name");
    assert!(html.contains("on one device only"), "not backup eligible");

    let db = app.store().await;
    let row = passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(id.clone()))
        .one(&db)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(row.credential_id, authenticator.credential_id);
    assert_eq!(row.sign_count, 1);
    assert!(!row.backup_eligible && !row.backup_state && row.user_verified);
    assert!(row.last_used_at.is_none());

    // Signed out, a new browser signs in with the passkey alone: no username typed. The
    // options cost no statement (their state is sealed to the browser), the answer five
    // (docs/SCALING.md).
    let count = |route: &'static str| {
        let app = &app;
        async move { crate::statements::statements(app).await.get(route).copied().unwrap_or(0) }
    };
    let other = Browser::new();
    let before = count("/login/passkey/options").await;
    let (page, options) = login_options(&app, &other, "/account").await;
    assert_eq!(count("/login/passkey/options").await - before, 0, "options: no statement");
    let credential = authenticator.assert(&options, &origin(&app));
    let before = count("/login/passkey").await;
    let response = finish_login(&app, &other, &page, &options, &credential).await;
    assert_eq!(count("/login/passkey").await - before, 5, "a passkey sign-in's statements");
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response).as_deref(), Some("/account"));
    let html = account(&app, &other).await;
    assert!(html.contains("Signed in as <strong>pia</strong>"));
    let row =
        passkey::Entity::find_by_id(row.id.clone()).one(&db).await.expect("read").expect("row");
    assert_eq!(row.sign_count, 2, "the counter is stored");
    assert!(row.last_used_at.is_some());

    // A second passkey: the first is excluded (its authenticator would refuse to make
    // another), the user handle is the same, and each signs in.
    let response = registration_options(&app, &other).await;
    let options: Value = response.json().await.expect("JSON");
    let first = &authenticator;
    assert_eq!(
        public_key(&options)["excludeCredentials"][0]["id"],
        b64(&first.credential_id),
        "{options}"
    );
    assert_eq!(public_key(&options)["user"]["id"], b64(&first.user_handle));
    let mut phone = Authenticator::new(true);
    let credential = phone.register(&options, &origin(&app));
    assert_eq!(
        finish_registration(&app, &other, &options, &credential, "Phone").await.status(),
        303
    );
    let (_, response) = passkey_sign_in(&app, &mut phone).await;
    assert_eq!(response.status(), 303);
    let html = account(&app, &other).await;
    assert!(html.contains("Phone") && html.contains("Work laptop"));

    // Renamed, then removed: each an event; a removed passkey signs no one in.
    let csrf = input(&html, "csrf_token").expect("csrf");
    let renamed = other
        .post(
            &app.url(&format!("/account/passkeys/{}/rename", row.id)),
            &[("csrf_token", &csrf), ("name", "Old laptop")],
        )
        .await;
    assert_eq!(renamed.status(), 303);
    assert!(account(&app, &other).await.contains("Old laptop"));
    let stranger =
        other.post(&app.url("/account/passkeys/nope/remove"), &[("csrf_token", &csrf)]).await;
    assert_eq!(stranger.status(), 404);
    let removed = other
        .post(&app.url(&format!("/account/passkeys/{}/remove", row.id)), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(removed.status(), 303);
    assert!(!account(&app, &other).await.contains("Old laptop"));
    let (_, refused) = passkey_sign_in(&app, &mut authenticator).await;
    assert_eq!(refused.status(), 401, "a removed passkey is refused");

    let all = events(&app, &id).await;
    for kind in ["mfa.passkey_registered", "mfa.passkey_renamed", "mfa.passkey_removed"] {
        assert!(has_event(&all, kind), "{kind} recorded: {all:?}");
    }
    let sign_in = all
        .iter()
        .find(|e| e["type"] == "sign_in" && e["detail"]["amr"] == "hwk user mfa")
        .unwrap_or_else(|| panic!("a passkey sign-in event: {all:?}"));
    assert_eq!(sign_in["outcome"], "success");
    let text = serde_json::to_string(&all).expect("JSON");
    assert!(!text.contains(&b64(&authenticator.credential_id)), "no credential in events");
}

#[tokio::test]
async fn passkey_sign_in_in_a_code_flow_gives_amr_swk_for_a_synced_passkey() {
    let app = spawn_localhost(|_| {}).await;
    let client = web_client(&app, "App", "openid").await;
    let (browser, _) = signed_in(&app, "sam").await;
    let mut authenticator = Authenticator::new(true);
    register(&app, &browser, &mut authenticator, "Phone").await;
    assert!(account(&app, &browser).await.contains("synced between your devices"));

    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let to_login = browser.get(&url).await;
    let login = location(&to_login).expect("to the login page");
    let return_to = params(&app.url(&login))["return_to"].clone();
    let (page, options) = login_options(&app, &browser, &return_to).await;
    let credential = authenticator.assert(&options, &origin(&app));
    let accepted = finish_login(&app, &browser, &page, &options, &credential).await;
    assert_eq!(accepted.status(), 303);
    let after = browser.follow(&app, accepted).await;
    let back = match location(&after) {
        Some(_) => after,
        None => consent(&browser, &app, &after.text().await.expect("consent")).await,
    };
    let code = params(&location(&back).expect("to the client"))["code"].clone();
    let response = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("JSON");
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["amr"], json!(["swk", "user", "mfa"]));
}

#[tokio::test]
async fn passkey_answers_replayed_are_refused() {
    let app = spawn_localhost(|_| {}).await;
    let (browser, id) = signed_in(&app, "rex").await;
    // No counter: only the challenge's single use stops a replay.
    let mut authenticator = Authenticator::new(true);
    authenticator.counter = false;
    let options: Value = registration_options(&app, &browser).await.json().await.expect("JSON");
    let credential = authenticator.register(&options, &origin(&app));
    let first = finish_registration(&app, &browser, &options, &credential, "One").await;
    assert_eq!(first.status(), 303);
    // Removed, so that the credential is new again: the answer is still refused.
    let db = app.store().await;
    passkey::Entity::delete_many()
        .filter(passkey::Column::UserId.eq(id.clone()))
        .exec(&db)
        .await
        .expect("delete");
    let again = finish_registration(&app, &browser, &options, &credential, "Two").await;
    assert_eq!(again.status(), 400, "the same registration answer twice");
    register(&app, &browser, &mut authenticator, "Three").await;

    let other = Browser::new();
    let (page, options) = login_options(&app, &other, "/account").await;
    let credential = authenticator.assert(&options, &origin(&app));
    let first = finish_login(&app, &other, &page, &options, &credential).await;
    assert_eq!(first.status(), 303);
    let replayed = finish_login(&app, &other, &page, &options, &credential).await;
    assert_eq!(replayed.status(), 401, "the same assertion twice");
    assert_eq!(refusals(&app).await, ["replayed"]);
    // A new challenge answered with a fresh signature works (the counter went up).
    let (_, response) = passkey_sign_in(&app, &mut authenticator).await;
    assert_eq!(response.status(), 303);
}

#[tokio::test]
async fn passkey_challenge_of_another_browser_is_refused() {
    let app = spawn_localhost(|_| {}).await;
    let (browser, _) = signed_in(&app, "bea").await;
    let mut authenticator = Authenticator::new(false);
    // A registration started in one session, finished in another of the same user.
    let options: Value = registration_options(&app, &browser).await.json().await.expect("JSON");
    let credential = authenticator.register(&options, &origin(&app));
    let page = Browser::new();
    let login = page.get(&app.url("/login?return_to=%2Faccount")).await.text().await.expect("page");
    assert_eq!(log_in(&page, &app, &login, "bea", PASSWORD).await.status(), 303);
    let refused = finish_registration(&app, &page, &options, &credential, "Stolen").await;
    assert_eq!(refused.status(), 400);
    assert_eq!(
        finish_registration(&app, &browser, &options, &credential, "Mine").await.status(),
        303
    );

    // Sign-in options fetched by one browser, answered from another.
    let victim = Browser::new();
    let (_, options) = login_options(&app, &victim, "/account").await;
    let credential = authenticator.assert(&options, &origin(&app));
    let attacker = Browser::new();
    let (page, _) = login_options(&app, &attacker, "/account").await;
    let refused = finish_login(&app, &attacker, &page, &options, &credential).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refusals(&app).await, ["expired"], "not this browser's");
}

#[tokio::test]
async fn passkey_expired_challenge_is_refused() {
    let app = spawn_localhost(|s| s.passkey_timeout = Duration::from_secs(1)).await;
    let (browser, _) = signed_in(&app, "eve").await;
    let mut authenticator = Authenticator::new(false);
    let options: Value = registration_options(&app, &browser).await.json().await.expect("JSON");
    let credential = authenticator.register(&options, &origin(&app));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = finish_registration(&app, &browser, &options, &credential, "Late").await;
    assert_eq!(late.status(), 400, "an expired registration");
    register(&app, &browser, &mut authenticator, "On time").await;

    let other = Browser::new();
    let (page, options) = login_options(&app, &other, "/account").await;
    let credential = authenticator.assert(&options, &origin(&app));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let late = finish_login(&app, &other, &page, &options, &credential).await;
    assert_eq!(late.status(), 401, "an expired sign-in");
    assert_eq!(refusals(&app).await, ["expired"]);
}

#[tokio::test]
async fn passkey_answer_for_another_origin_is_refused() {
    let app = spawn_localhost(|_| {}).await;
    let (browser, _) = signed_in(&app, "ori").await;
    let mut authenticator = Authenticator::new(false);
    let phishing = app.issuer.replace("localhost", "login.localhost");
    let options: Value = registration_options(&app, &browser).await.json().await.expect("JSON");
    let credential = authenticator.register(&options, &phishing);
    let refused = finish_registration(&app, &browser, &options, &credential, "Phished").await;
    assert_eq!(refused.status(), 400, "a registration made for another origin");
    register(&app, &browser, &mut authenticator, "Real").await;

    let other = Browser::new();
    let (page, options) = login_options(&app, &other, "/account").await;
    let credential = authenticator.assert(&options, &phishing);
    let refused = finish_login(&app, &other, &page, &options, &credential).await;
    assert_eq!(refused.status(), 401, "an assertion made for another origin");
    assert_eq!(refusals(&app).await, ["invalid"]);
    assert_eq!(account_status(&app, &other).await, 303, "no session");
}

async fn account_status(app: &TestApp, browser: &Browser) -> u16 {
    browser.get(&app.url("/account")).await.status().as_u16()
}

#[tokio::test]
async fn passkey_of_a_disabled_user_is_refused() {
    let app = spawn_localhost(|_| {}).await;
    let (browser, id) = signed_in(&app, "dora").await;
    let mut authenticator = Authenticator::new(false);
    register(&app, &browser, &mut authenticator, "Key").await;
    let disabled = app
        .admin(
            Method::PUT,
            &format!("/admin/users/{id}"),
            Some(json!({"username": "dora", "disabled": true})),
        )
        .await;
    assert_eq!(disabled.status(), 200);
    let (other, refused) = passkey_sign_in(&app, &mut authenticator).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(account_status(&app, &other).await, 303, "no session");
    assert!(
        events(&app, &id).await.iter().any(|e| e["detail"]["reason"] == "disabled"),
        "refused as disabled"
    );
}

#[tokio::test]
async fn passkey_registration_needs_a_fresh_sign_in() {
    let app = spawn_localhost(|_| {}).await;
    let (browser, id) = signed_in(&app, "stan").await;
    let db = app.store().await;
    let stale = chrono::Utc::now() - chrono::Duration::minutes(10);
    session::Entity::update_many()
        .col_expr(session::Column::AuthTime, sea_orm::sea_query::Expr::value(stale))
        .filter(session::Column::UserId.eq(id))
        .exec(&db)
        .await
        .expect("update");
    let html = account(&app, &browser).await;
    assert!(!html.contains("id=\"passkey-register\""));
    assert!(html.contains("Sign in again to add a passkey"));
    let response = registration_options(&app, &browser).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "login_required");
    // Without a session at all, or a CSRF token: refused, in the JSON shape.
    let anonymous = Browser::new();
    let response =
        anonymous.post(&app.url("/account/passkeys/options"), &[("csrf_token", "x")]).await;
    assert_eq!(response.status(), 401);
    let response = anonymous.post(&app.url("/login/passkey/options"), &[("csrf_token", "x")]).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["error_description"].is_string());
    // Garbage answers are 4xx pages, never a 500.
    let (page, options) = login_options(&app, &anonymous, "/account").await;
    for garbage in ["", "{}", "null", "{\"id\":\"AA\"}"] {
        let response = finish_login(&app, &anonymous, &page, &options, garbage).await;
        assert_eq!(response.status(), 401, "{garbage}");
    }
}

#[tokio::test]
async fn passkeys_are_not_offered_with_an_ip_address_issuer() {
    // The default test issuer is http://127.0.0.1:PORT: no relying party id.
    let app = crate::helpers::spawn_app().await;
    let (browser, _) = signed_in(&app, "ivy").await;
    assert!(!account(&app, &browser).await.contains("passkey-register"));
    let anonymous = Browser::new();
    let page = anonymous.get(&app.url("/login")).await.text().await.expect("page");
    assert!(!page.contains("passkey-signin"), "no passkey button");
    assert!(page.contains("name=\"password\""), "the password form as before");
    let csrf = input(&page, "csrf_token").expect("csrf");
    let response =
        anonymous.post(&app.url("/login/passkey/options"), &[("csrf_token", &csrf)]).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"], "passkeys_unavailable");
}

#[tokio::test]
async fn passkey_steps_a_password_session_up_where_a_phishing_resistant_sign_in_is_asked() {
    let app = spawn_localhost(|_| {}).await;
    let client = web_client(&app, "App", "openid").await;
    let (browser, _) = signed_in(&app, "sam").await;
    let mut authenticator = Authenticator::new(true);
    register(&app, &browser, &mut authenticator, "Phone").await;

    // The password session asks for `phr`: the login page, asking for the passkey.
    let (verifier, challenge) = pkce();
    let url =
        format!("{}&acr_values=phr", authorize_url(&app, &client.0, &challenge, "openid", "s"));
    let asked = browser.get(&url).await;
    assert_eq!(asked.status(), 303);
    let login = location(&asked).expect("to the login page");
    assert!(login.contains("step_up=passkey"), "{login}");
    let page = browser.get(&app.url(&login)).await.text().await.expect("login page");
    assert!(page.contains("This application asks you to sign in with a passkey."));
    // A synced passkey cannot reach `phrh`: no way to sign in that strongly.
    let hardware = browser.get(&url.replace("acr_values=phr", "acr_values=phrh")).await;
    assert_eq!(hardware.status(), 403);
    assert!(hardware.text().await.expect("page").contains("a passkey kept on one device"));

    let return_to = params(&app.url(&login))["return_to"].clone();
    let (page, options) = login_options(&app, &browser, &return_to).await;
    let credential = authenticator.assert(&options, &origin(&app));
    let accepted = finish_login(&app, &browser, &page, &options, &credential).await;
    assert_eq!(accepted.status(), 303);
    let after = browser.follow(&app, accepted).await;
    let back = match location(&after) {
        Some(_) => after,
        None => consent(&browser, &app, &after.text().await.expect("consent")).await,
    };
    let code = params(&location(&back).expect("to the client"))["code"].clone();
    let tokens: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["acr"], "phr");
    assert_eq!(claims["amr"], json!(["swk", "user", "mfa"]));
}

#[tokio::test]
async fn passkey_administrators_list_and_remove_a_lost_one() {
    let app = spawn_localhost(|_| {}).await;
    let (browser, id) = signed_in(&app, "lena").await;
    let mut authenticator = Authenticator::new(false);
    register(&app, &browser, &mut authenticator, "Security key").await;

    let methods: Value = app
        .admin(Method::GET, &format!("/admin/users/{id}/methods"), None)
        .await
        .json()
        .await
        .expect("JSON");
    let listed = methods["passkeys"].as_array().expect("passkeys");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "Security key");
    assert_eq!(listed[0]["synced"], false);
    let text = methods.to_string();
    assert!(!text.contains(&b64(&authenticator.credential_id)), "no credential id: {text}");
    let passkey_id = listed[0]["id"].as_str().expect("id").to_owned();

    let path = format!("/admin/users/{id}/passkeys/{passkey_id}");
    let stranger = app
        .admin(Method::DELETE, &format!("/admin/users/nobody/passkeys/{passkey_id}"), None)
        .await;
    assert_eq!(stranger.status(), 404, "only the owner's passkey");
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 404);
    let removed: Vec<Value> = events(&app, &id)
        .await
        .into_iter()
        .filter(|e| e["type"] == "mfa.passkey_removed")
        .collect();
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0]["detail"]["by"], "admin");
    let (_, refused) = passkey_sign_in(&app, &mut authenticator).await;
    assert_eq!(refused.status(), 401, "the removed passkey signs nobody in");
}
