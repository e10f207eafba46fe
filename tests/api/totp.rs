//! TOTP as a second factor (docs/REFERENCE.md §3.4, §3.6): enrolment at /account, the code
//! step at sign-in, each code once, recovery codes once, the brute-force limit, `amr`, and
//! nothing secret in the database in clear or in any event.

use aws_lc_rs::hmac;
use entity::{recovery_code, user_totp};
use reqwest::{Method, Response};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::browser::{
    Browser, PASSWORD, authorize_url, consent, input, location, log_in, params, pkce, redeem,
    tokens_for, user, web_client,
};
use crate::helpers::{TestApp, jwt_claims, spawn_app};

/// RFC 6238 with SHA-1, 30-second steps and 6 digits, written again here on purpose.
pub(crate) fn code(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &(step as u64).to_be_bytes());
    let tag = tag.as_ref();
    let at = usize::from(tag[19] & 0x0f);
    let value = u32::from_be_bytes([tag[at], tag[at + 1], tag[at + 2], tag[at + 3]]) & 0x7fff_ffff;
    format!("{:06}", value % 1_000_000)
}

pub(crate) fn now_step() -> i64 {
    chrono::Utc::now().timestamp() / 30
}

fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut buffer, mut bits, mut out) = (0u32, 0, Vec::new());
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        buffer = (buffer << 5) | ALPHABET.find(c).expect("base32") as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

/// A signed-in browser of a new user `name`, at their account page.
pub(crate) async fn signed_in(app: &TestApp, name: &str) -> (Browser, String) {
    let id = user(app, name).await;
    let browser = Browser::new();
    let page =
        browser.get(&app.url("/login?return_to=%2Faccount")).await.text().await.expect("page");
    let response = log_in(&browser, app, &page, name, PASSWORD).await;
    assert_eq!(response.status(), 303, "signed in");
    (browser, id)
}

/// The setup page's secret (as shown for typing) and the page.
pub(crate) async fn setup_page(app: &TestApp, browser: &Browser) -> (Vec<u8>, String, String) {
    let response = browser.get(&app.url("/account/totp")).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.expect("page");
    let start = html.find("class=\"code secret\">").expect("the secret") + 20;
    let shown = html[start..start + html[start..].find('<').expect("end")].to_owned();
    (base32_decode(&shown), shown, html)
}

pub(crate) async fn confirm(app: &TestApp, browser: &Browser, html: &str, code: &str) -> Response {
    let form = [
        ("csrf_token", input(html, "csrf_token").expect("csrf")),
        ("pending", input(html, "pending").expect("pending")),
        ("code", code.to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post(&app.url("/account/totp"), &form).await
}

/// A user with TOTP on: (id, secret, recovery codes).
pub(crate) async fn enrolled(app: &TestApp, name: &str) -> (String, Vec<u8>, Vec<String>) {
    let (browser, id) = signed_in(app, name).await;
    let (secret, _, html) = setup_page(app, &browser).await;
    let response = confirm(app, &browser, &html, &code(&secret, now_step())).await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.expect("page");
    let codes = recovery_codes(&page);
    (id, secret, codes)
}

fn recovery_codes(page: &str) -> Vec<String> {
    page.split("<li class=\"code\">")
        .skip(1)
        .map(|rest| rest[..rest.find('<').expect("end")].to_owned())
        .collect()
}

/// Walks authorize → password → (the code page, returned) for `name` in a fresh browser.
pub(crate) async fn to_code_page(
    app: &TestApp,
    client_id: &str,
    name: &str,
) -> (Browser, String, String) {
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let url = authorize_url(app, client_id, &challenge, "openid", "s");
    let page = browser.follow(app, browser.get(&url).await).await.text().await.expect("login");
    let response = log_in(&browser, app, &page, name, PASSWORD).await;
    assert_eq!(response.status(), 200, "the password asks for a code, no session yet");
    let html = response.text().await.expect("code page");
    assert!(input(&html, "pending").is_some());
    (browser, html, verifier)
}

pub(crate) async fn submit_code(
    app: &TestApp,
    browser: &Browser,
    html: &str,
    code: &str,
) -> Response {
    let form = [
        ("csrf_token", input(html, "csrf_token").expect("csrf")),
        ("pending", input(html, "pending").expect("pending")),
        ("code", code.to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    browser.post(&app.url("/login/totp"), &form).await
}

/// After an accepted code: consent if asked, then the code sent to the client.
pub(crate) async fn client_code(app: &TestApp, browser: &Browser, accepted: Response) -> String {
    assert_eq!(accepted.status(), 303, "the code is accepted");
    let after = browser.follow(app, accepted).await;
    let back = match location(&after) {
        Some(_) => after,
        None => consent(browser, app, &after.text().await.expect("consent")).await,
    };
    params(&location(&back).expect("to the client"))["code"].clone()
}

pub(crate) async fn events(app: &TestApp) -> Vec<Value> {
    let response = app.admin(Method::GET, "/admin/events?limit=100", None).await;
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.expect("JSON")["items"].as_array().expect("items").clone()
}

#[tokio::test]
async fn enrolment_shows_a_qr_code_and_the_key_and_turns_on_only_with_a_right_code() {
    let app = spawn_app().await;
    let (browser, id) = signed_in(&app, "tess").await;
    let account = browser.get(&app.url("/account")).await.text().await.expect("page");
    assert!(account.contains("Set up an authenticator app"));
    let (secret, shown, html) = setup_page(&app, &browser).await;
    assert_eq!(secret.len(), 20);
    assert!(html.contains("<svg ") && html.contains("</svg>"), "an inline SVG QR code");
    assert!(!html.contains("style="), "no inline style (CSP)");

    let wrong = confirm(&app, &browser, &html, &code(&secret, now_step() + 5)).await;
    assert_eq!(wrong.status(), 400);
    let db = app.store().await;
    assert!(user_totp::Entity::find_by_id(id.clone()).one(&db).await.expect("read").is_none());

    let right = confirm(&app, &browser, &html, &code(&secret, now_step())).await;
    assert_eq!(right.status(), 200);
    let codes = recovery_codes(&right.text().await.expect("page"));
    assert_eq!(codes.len(), 10);
    let account = browser.get(&app.url("/account")).await.text().await.expect("page");
    assert!(account.contains("Recovery codes left: 10"));

    // Nothing secret in clear at rest: not the key, not its base32, not a recovery code.
    let row = user_totp::Entity::find_by_id(id.clone()).one(&db).await.expect("read").expect("row");
    let compact: String = shown.split_whitespace().collect();
    assert!(!row.sealed_secret.windows(secret.len()).any(|w| w == secret.as_slice()));
    assert!(!row.sealed_secret.windows(compact.len()).any(|w| w == compact.as_bytes()));
    let stored = recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(id.clone()))
        .all(&db)
        .await
        .expect("read");
    assert_eq!(stored.len(), 10);
    for row in &stored {
        assert_eq!(row.code_hash.len(), 32, "a SHA-256, not the code");
        assert!(codes.iter().all(|c| row.code_hash != c.as_bytes()));
    }
    let all = events(&app).await;
    assert!(
        all.iter()
            .any(|e| e["type"] == "mfa.totp_enrolled" && e["subject"] == format!("user:{id}"))
    );
    let text = serde_json::to_string(&all).expect("JSON");
    assert!(!text.contains(&compact));
    assert!(codes.iter().all(|c| !text.contains(c.as_str())));
}

#[tokio::test]
async fn sign_in_asks_for_the_code_each_code_works_once_and_amr_says_how() {
    let app = spawn_app().await;
    let client = web_client(&app, "App", "openid").await;
    // A user without TOTP: a password alone.
    user(&app, "plain").await;
    let tokens = tokens_for(&app, &client, "plain", "openid").await;
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));

    let (id, secret, recovery) = enrolled(&app, "otto").await;
    // The enrolment used the current step; the next one is still in the window.
    let next = code(&secret, now_step() + 1);
    let (browser, html, verifier) = to_code_page(&app, &client.0, "otto").await;
    assert!(browser.get(&app.url("/account")).await.status() == 303, "no session before the code");
    let wrong = submit_code(&app, &browser, &html, &code(&secret, now_step() + 4)).await;
    assert_eq!(wrong.status(), 401, "a code from a far window is refused");
    let issued = client_code(&app, &browser, submit_code(&app, &browser, &html, &next).await).await;
    let response = redeem(&app, &client, &issued, &verifier).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("JSON");
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));

    // The same code again, in a new sign-in: refused.
    let (browser, html, _) = to_code_page(&app, &client.0, "otto").await;
    assert_eq!(submit_code(&app, &browser, &html, &next).await.status(), 401);
    // A recovery code works once.
    let accepted = submit_code(&app, &browser, &html, &recovery[0]).await;
    client_code(&app, &browser, accepted).await;
    let (browser, html, _) = to_code_page(&app, &client.0, "otto").await;
    assert_eq!(submit_code(&app, &browser, &html, &recovery[0]).await.status(), 401);

    let all = events(&app).await;
    let about = |kind: &str| {
        all.iter().filter(|e| e["type"] == kind && e["subject"] == format!("user:{id}")).count()
    };
    assert_eq!(about("mfa.recovery_code_used"), 1);
    let text = serde_json::to_string(&all).expect("JSON");
    assert!(!text.contains(&next), "no code in any event");
    assert!(!text.contains(recovery[0].as_str()));
}

#[tokio::test]
async fn eleven_wrong_codes_are_refused_with_429() {
    let app = spawn_app().await;
    let client = web_client(&app, "App", "openid").await;
    let (id, secret, _) = enrolled(&app, "gus").await;
    let (browser, html, _) = to_code_page(&app, &client.0, "gus").await;
    let wrong = code(&secret, now_step() + 10);
    for attempt in 1..=10 {
        let status = submit_code(&app, &browser, &html, &wrong).await.status();
        assert_eq!(status, 401, "wrong code {attempt}");
    }
    let eleventh = submit_code(&app, &browser, &html, &wrong).await;
    assert_eq!(eleventh.status(), 429);
    assert!(eleventh.headers().get("retry-after").is_some());

    let _ = id;
}

#[tokio::test]
async fn turning_off_needs_the_password_or_a_code_and_is_recorded() {
    let app = spawn_app().await;
    let (browser, id) = signed_in(&app, "olga").await;
    let (secret, _, html) = setup_page(&app, &browser).await;
    assert_eq!(confirm(&app, &browser, &html, &code(&secret, now_step())).await.status(), 200);
    let account = browser.get(&app.url("/account")).await.text().await.expect("page");
    let csrf = input(&account, "csrf_token").expect("csrf");
    let off = |password: &'static str| {
        let form = [("csrf_token", csrf.clone()), ("password", password.to_owned())];
        let browser = &browser;
        let url = app.url("/account/totp/remove");
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            browser.post(&url, &form).await
        }
    };
    assert_eq!(off("not it").await.status(), 401);
    let db = app.store().await;
    assert!(user_totp::Entity::find_by_id(id.clone()).one(&db).await.expect("read").is_some());
    assert_eq!(off(PASSWORD).await.status(), 303);
    assert!(user_totp::Entity::find_by_id(id.clone()).one(&db).await.expect("read").is_none());
    let left = recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(id.clone()))
        .all(&db)
        .await
        .expect("read");
    assert!(left.is_empty(), "the recovery codes go too");
    let all = events(&app).await;
    assert!(
        all.iter().any(|e| e["type"] == "mfa.totp_removed" && e["subject"] == format!("user:{id}"))
    );
}
