//! Signing in through an upstream identity provider, against a real upstream: a second
//! Castellan server on its own database, with a client registered for the first.
//! Each server's cookies live in their own browser jar, as a real browser keeps them per
//! site.

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;

use reqwest::{Method, Response};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, authorize_url, consent, input, location, params, pkce, redeem, user,
    web_client,
};
use crate::helpers::{
    ServerProcess, TestApp, TestDatabase, as_refs, castellan, cli_admin, jwt_claims, process_env,
    spawn_app, spawn_app_with, start, test_settings, token_from,
};

/// The upstream (its base URL, also its issuer) and the downstream signing users in through it.
struct Federation {
    up: String,
    down: TestApp,
}

/// The callback URL the downstream registers at the upstream for provider `id`.
fn callback(down: &TestApp, id: &str) -> String {
    format!("{}/login/upstream/{id}/callback", down.issuer)
}

/// A client at `up` for `down`'s provider `id`: (client_id, secret).
async fn upstream_client(up: &TestApp, down: &TestApp, id: &str) -> (String, String) {
    let made = up
        .create_client(json!({
            "client_name": "Downstream",
            "redirect_uris": [callback(down, id)],
            "grant_types": ["authorization_code"],
            "scope": "openid email profile",
        }))
        .await;
    (
        made["client_id"].as_str().expect("id").to_owned(),
        made["client_secret"].as_str().expect("secret").to_owned(),
    )
}

/// An upstream and a downstream allowed to reach it (both on loopback), with the upstream
/// registered downstream as `corp`.
async fn federation(extra: Value) -> (Federation, TestApp) {
    let up = spawn_app().await;
    let down = spawn_app_with(|s| {
        s.outbound_allow_private_networks = true;
        s.client_jwks_refetch_interval = std::time::Duration::from_secs(1);
    })
    .await;
    let (client_id, secret) = upstream_client(&up, &down, "corp").await;
    let mut body = json!({
        "id": "corp",
        "name": "Corp",
        "issuer": up.issuer,
        "client_id": client_id,
        "client_secret": secret,
    });
    if let (Some(b), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(extra.clone());
    }
    let made = down.admin(Method::POST, "/admin/upstream-providers", Some(body)).await;
    assert_eq!(made.status(), 201);
    let made: Value = made.json().await.expect("JSON");
    assert_eq!(made["redirect_uri"], callback(&down, "corp"));
    assert!(made.get("client_secret").is_none(), "the secret is write-only: {made}");
    (Federation { up: up.issuer.clone(), down }, up)
}

fn absolute(base: &str, to: &str) -> String {
    if to.starts_with('/') { format!("{base}{to}") } else { to.to_owned() }
}

/// From the upstream's authorization URL, signs `username` in there (and consents, if
/// asked) in the upstream's browser `u`; returns the URL the upstream sends the browser
/// back to (the downstream's callback).
async fn at_upstream(f: &Federation, u: &Browser, url: &str, username: &str) -> String {
    walk_upstream(f, u, url, username, None).await
}

/// As [`at_upstream`], answering the upstream's code page with `totp`'s current code.
async fn walk_upstream(
    f: &Federation,
    u: &Browser,
    url: &str,
    username: &str,
    totp: Option<&[u8]>,
) -> String {
    let mut response = u.get(url).await;
    for _ in 0..8 {
        if let Some(to) = location(&response) {
            let to = absolute(&f.up, &to);
            if to.starts_with(&f.down.issuer) {
                return to;
            }
            response = u.get(&to).await;
            continue;
        }
        let page = response.text().await.expect("page");
        let csrf = input(&page, "csrf_token").expect("a form at the upstream: {page}");
        if let Some(pending) = input(&page, "pending") {
            let secret = totp.expect("a code page only for a user with an authenticator app");
            // The next step's: enrolling used this one's.
            let code = crate::totp::code(secret, crate::totp::now_step() + 1);
            let form = [("csrf_token", csrf.as_str()), ("pending", &pending), ("code", &code)];
            response = u.post(&format!("{}/login/totp", f.up), &form).await;
            continue;
        }
        response = match input(&page, "request") {
            Some(request) => {
                let form =
                    [("csrf_token", csrf.as_str()), ("request", &request), ("decision", "allow")];
                u.post(&format!("{}/consent", f.up), &form).await
            }
            None => {
                let return_to = input(&page, "return_to").expect("return_to");
                let form = [
                    ("username", username),
                    ("password", PASSWORD),
                    ("csrf_token", csrf.as_str()),
                    ("return_to", return_to.as_str()),
                ];
                u.post(&format!("{}/login", f.up), &form).await
            }
        };
    }
    panic!("the upstream never sent the browser back");
}

/// Starts a sign-in at the downstream's `corp` button (returning to `return_to`): the
/// upstream authorization URL it sends the browser to.
async fn start_at(f: &Federation, d: &Browser, return_to: &str) -> String {
    let started = press(&f.down, d, "corp", return_to).await;
    assert_eq!(started.status(), 303, "off to the provider");
    let to = location(&started).expect("location");
    assert!(to.starts_with(&f.up), "to the upstream: {to}");
    let sent = params(&to);
    assert_eq!(sent["code_challenge_method"], "S256");
    assert!(sent.contains_key("nonce") && sent.contains_key("state"), "{to}");
    to
}

/// Presses the login page's button for provider `id` (a form with the page's CSRF token).
async fn press(down: &TestApp, d: &Browser, id: &str, return_to: &str) -> Response {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let page = d.get(&down.url(&format!("/login?{query}"))).await.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf_token");
    let form = [("csrf_token", csrf.as_str()), ("return_to", return_to)];
    d.post(&down.url(&format!("/login/upstream/{id}")), &form).await
}

/// A whole sign-in through `corp` in fresh browsers, for `username` at the upstream: the
/// downstream's answer to the callback.
async fn sign_in_through(f: &Federation, d: &Browser, username: &str) -> Response {
    let u = Browser::new();
    let to = start_at(f, d, "/account").await;
    let back = at_upstream(f, &u, &to, username).await;
    d.get(&back).await
}

/// The username signed in at the downstream in `d`, if any.
async fn signed_in_as(f: &Federation, d: &Browser) -> Option<String> {
    let page = d.get(&f.down.url("/account")).await;
    if page.status() != 200 {
        return None;
    }
    let html = page.text().await.expect("page");
    let start = html.find("Signed in as <strong>")? + "Signed in as <strong>".len();
    Some(html[start..start + html[start..].find('<')?].to_owned())
}

async fn users_of(app: &TestApp) -> Vec<Value> {
    let listed: Value =
        app.admin(Method::GET, "/admin/users", None).await.json().await.expect("JSON");
    listed["items"].as_array().expect("items").clone()
}

async fn events(app: &TestApp, kind: &str) -> Vec<Value> {
    let path = format!("/admin/events?limit=100&type={kind}");
    let listed: Value = app.admin(Method::GET, &path, None).await.json().await.expect("JSON");
    listed["items"].as_array().expect("items").clone()
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("URL");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .into_owned()
        .map(|(k, v)| if k == name { (k, value.to_owned()) } else { (k, v) })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[tokio::test]
async fn upstream_first_sign_in_creates_the_user_and_a_returning_one_finds_them() {
    let (f, up) = federation(json!({"create_users": true})).await;
    let ada_upstream = user(&up, "ada").await;
    let client = web_client(&f.down, "Downstream app", "openid profile email").await;
    let before = users_of(&f.down).await.len();

    // The downstream client's own flow: its login page offers the provider.
    let claims = id_token_through(&f, &client, "openid profile email", &Browser::new(), None).await;
    assert_eq!(
        claims["amr"],
        json!(["fed", "pwd"]),
        "federated, and what the upstream said: {claims}"
    );
    assert_eq!(claims["acr"], "urn:castellan:acr:pwd");
    assert_eq!(claims["preferred_username"], "ada", "mapped from the upstream's claim");
    assert_eq!(claims["email"], "ada@example.com");
    assert_ne!(claims["sub"], ada_upstream, "a new user here, with its own id");
    let sub = claims["sub"].as_str().expect("sub").to_owned();
    assert_eq!(users_of(&f.down).await.len(), before + 1, "created just in time");
    let created = events(&f.down, "user.created").await;
    assert!(
        created
            .iter()
            .any(|e| e["subject"] == format!("user:{sub}") && e["detail"]["provider"] == "corp"),
        "{created:?}"
    );
    let signed = events(&f.down, "sign_in").await;
    assert!(
        signed.iter().any(|e| e["detail"]["provider"] == "corp"
            && e["detail"]["amr"] == "fed pwd"
            && e["outcome"] == "success"),
        "{signed:?}"
    );

    // Administrators see how the user signs in: no password, one linked identity.
    let methods: Value = f
        .down
        .admin(Method::GET, &format!("/admin/users/{sub}/methods"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(methods["password"], false, "{methods}");
    assert_eq!(methods["identities"][0]["issuer"], f.up);
    assert_eq!(methods["identities"][0]["subject"], ada_upstream);
    // The user has no password here: theirs at the upstream does not work downstream.
    let direct = Browser::new();
    let page = direct.get(&f.down.url("/login")).await.text().await.expect("page");
    let refused = crate::browser::log_in(&direct, &f.down, &page, "ada", PASSWORD).await;
    assert_eq!(refused.status(), 401);

    // A returning user, in a fresh browser: the same account, no new one.
    let again = Browser::new();
    assert_eq!(sign_in_through(&f, &again, "ada").await.status(), 303);
    assert_eq!(signed_in_as(&f, &again).await.as_deref(), Some("ada"));
    assert_eq!(users_of(&f.down).await.len(), before + 1, "found by the link, not created");
    let account = again.get(&f.down.url("/account")).await.text().await.expect("page");
    assert!(account.contains("this account has no password here"), "{account}");
    assert!(!account.contains("Change your password"), "no password to change");
    assert!(account.contains("Linked identities") && account.contains(&ada_upstream), "{account}");
    // Their only way in stays linked.
    let csrf = input(&account, "csrf_token").expect("csrf");
    let unlink = again
        .post(
            &f.down.url("/account/identities/unlink"),
            &[("csrf_token", &csrf), ("issuer", &f.up), ("subject", &ada_upstream)],
        )
        .await;
    assert_eq!(unlink.status(), 409);

    // The console's user page lists the link.
    let (console, _) = crate::console::console_browser(&f.down).await;
    let shown = crate::console::page(&console, &f.down, &format!("/console/users/{sub}")).await;
    assert!(shown.contains("id=\"user-identities\"") && shown.contains(&ada_upstream), "{shown}");
}

/// A downstream client's code flow in a fresh browser, asking `scope`, signed in through the
/// provider as `ada` (in the upstream browser `u`): the claims of its ID token.
async fn id_token_through(
    f: &Federation,
    client: &(String, String),
    scope: &str,
    u: &Browser,
    totp: Option<&[u8]>,
) -> Value {
    let d = Browser::new();
    let (verifier, challenge) = pkce();
    let login = d.get(&authorize_url(&f.down, &client.0, &challenge, scope, "s")).await;
    let page = d.follow(&f.down, login).await.text().await.expect("login page");
    assert!(page.contains("Sign in with Corp"), "the login page offers the provider: {page}");
    let return_to = input(&page, "return_to").expect("return_to");
    let to = start_at(f, &d, &return_to).await;
    let back = d.get(&walk_upstream(f, u, &to, "ada", totp).await).await;
    assert_eq!(back.status(), 303, "signed in and sent on");
    let after = d.follow(&f.down, back).await;
    let allowed = match location(&after) {
        Some(_) => after,
        None => consent(&d, &f.down, &after.text().await.expect("consent page")).await,
    };
    let code = params(&location(&allowed).expect("to the client"))["code"].clone();
    let tokens: Value = redeem(&f.down, client, &code, &verifier).await.json().await.expect("JSON");
    jwt_claims(tokens["id_token"].as_str().expect("id_token"))
}

#[tokio::test]
async fn upstream_amr_says_fed_and_what_the_provider_said_mfa_only_when_trusted() {
    let (f, up) = federation(json!({"create_users": true})).await;
    let (_, secret, _) = crate::totp::enrolled(&up, "ada").await;
    let client = web_client(&f.down, "Downstream app", "openid").await;
    let u = Browser::new();
    // The upstream says ["pwd", "otp", "mfa"]; untrusted, its `mfa` is not ours to say.
    let claims = id_token_through(&f, &client, "openid", &u, Some(&secret)).await;
    assert_eq!(claims["amr"], json!(["fed", "otp", "pwd"]), "{claims}");
    assert_eq!(claims["acr"], "urn:castellan:acr:pwd");

    let body = json!({"name": "Corp", "issuer": f.up, "client_id": client_id_of(&f).await, "create_users": true, "trust_mfa": true});
    let trusted = f.down.admin(Method::PUT, "/admin/upstream-providers/corp", Some(body)).await;
    assert_eq!(trusted.status(), 200);
    let claims = id_token_through(&f, &client, "openid", &u, Some(&secret)).await;
    assert_eq!(claims["amr"], json!(["fed", "otp", "pwd", "mfa"]), "{claims}");
    assert_eq!(claims["acr"], "urn:castellan:acr:mfa", "a trusted second factor counts");
    assert_eq!(events(&f.down, "upstream_provider.updated").await.len(), 1);
}

#[tokio::test]
async fn upstream_an_email_alone_links_nothing_until_the_account_links_itself() {
    let (f, up) = federation(json!({})).await;
    let ada_upstream = user(&up, "ada").await;
    // An account here with the same email address (browser::user gives ada@example.com).
    let local = user(&f.down, "ada").await;

    let d = Browser::new();
    let refused = sign_in_through(&f, &d, "ada").await;
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.expect("page").contains("No account here is linked"));
    assert_eq!(signed_in_as(&f, &d).await, None, "no session");

    // Allowed to create users, a provider still cannot take an address an account has.
    let update = f
        .down
        .admin(
            Method::PUT,
            "/admin/upstream-providers/corp",
            Some(json!({"name": "Corp", "issuer": f.up, "client_id": client_id_of(&f).await, "create_users": true})),
        )
        .await;
    assert_eq!(update.status(), 200, "updated without resending the secret");
    let taken = sign_in_through(&f, &Browser::new(), "ada").await;
    assert_eq!(taken.status(), 403, "the same answer as no link: nothing learnt of accounts here");

    // The account signs in itself, then links the identity.
    let d = Browser::new();
    let page = d.get(&f.down.url("/login?return_to=%2Faccount")).await.text().await.expect("page");
    assert_eq!(crate::browser::log_in(&d, &f.down, &page, "ada", PASSWORD).await.status(), 303);
    let account = d.get(&f.down.url("/account")).await.text().await.expect("account");
    assert!(account.contains("Link Corp"), "{account}");
    let csrf = input(&account, "csrf_token").expect("csrf");
    let started = d
        .post(
            &f.down.url("/account/identities/link"),
            &[("csrf_token", &csrf), ("provider", "corp")],
        )
        .await;
    assert_eq!(started.status(), 303);
    let back = at_upstream(&f, &Browser::new(), &location(&started).expect("to"), "ada").await;
    let linked = d.get(&back).await;
    assert_eq!(location(&linked).as_deref(), Some("/account"));
    let account = d.get(&f.down.url("/account")).await.text().await.expect("account");
    assert!(account.contains(&ada_upstream), "the identity is listed: {account}");
    assert!(!events(&f.down, "identity.linked").await.is_empty());

    // Now the identity signs in to that same account.
    let other = Browser::new();
    assert_eq!(sign_in_through(&f, &other, "ada").await.status(), 303);
    let claims = id_of(&f, &other).await;
    assert_eq!(claims, local, "the linked account");

    // Unlinked, it no longer does.
    let csrf = input(&account, "csrf_token").expect("csrf");
    let unlinked = d
        .post(
            &f.down.url("/account/identities/unlink"),
            &[("csrf_token", &csrf), ("issuer", &f.up), ("subject", &ada_upstream)],
        )
        .await;
    assert_eq!(unlinked.status(), 303);
    assert_eq!(
        sign_in_through(&f, &Browser::new(), "ada").await.status(),
        403,
        "email taken, not joined"
    );
    assert_eq!(events(&f.down, "identity.unlinked").await.len(), 1);
}

async fn client_id_of(f: &Federation) -> String {
    let read: Value = f
        .down
        .admin(Method::GET, "/admin/upstream-providers/corp", None)
        .await
        .json()
        .await
        .expect("JSON");
    read["client_id"].as_str().expect("client_id").to_owned()
}

/// The downstream user id signed in at `d`, from the admin API's list by username.
async fn id_of(f: &Federation, d: &Browser) -> String {
    let name = signed_in_as(f, d).await.expect("signed in");
    let users = users_of(&f.down).await;
    users.iter().find(|u| u["username"] == name).expect("user")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[tokio::test]
async fn upstream_tampered_state_nonce_or_iss_are_refused() {
    let (f, up) = federation(json!({"create_users": true})).await;
    user(&up, "ada").await;
    // Another person here already has the username (not the email address).
    let other = json!({"username": "ada", "password": PASSWORD, "email": "ada@elsewhere.example"});
    assert_eq!(f.down.admin(Method::POST, "/admin/users", Some(other)).await.status(), 201);
    let before = users_of(&f.down).await.len();
    let u = Browser::new();

    // A state that is not this browser's.
    let d = Browser::new();
    let back = at_upstream(&f, &u, &start_at(&f, &d, "/account").await, "ada").await;
    let forged = d.get(&with_param(&back, "state", "forged")).await;
    assert_eq!(forged.status(), 400);
    assert_eq!(signed_in_as(&f, &d).await, None);
    // The flow is spent either way: the genuine answer after it is refused too.
    assert_eq!(d.get(&back).await.status(), 400, "a flow is answered once");

    // An answer naming another issuer (RFC 9207 mix-up).
    let d = Browser::new();
    let back = at_upstream(&f, &u, &start_at(&f, &d, "/account").await, "ada").await;
    assert_eq!(params(&back)["iss"], f.up, "the upstream names itself");
    let mixed = d.get(&with_param(&back, "iss", "https://evil.example")).await;
    assert_eq!(mixed.status(), 400);
    assert_eq!(signed_in_as(&f, &d).await, None);

    // A nonce changed on the way to the provider: its ID token carries the wrong one.
    let d = Browser::new();
    let to = with_param(&start_at(&f, &d, "/account").await, "nonce", "attacker-chosen");
    let back = at_upstream(&f, &u, &to, "ada").await;
    let replayed = d.get(&back).await;
    assert_eq!(replayed.status(), 400);
    assert!(replayed.text().await.expect("page").contains("could not be verified"));
    assert_eq!(signed_in_as(&f, &d).await, None);

    // The callback in a browser that never started the flow.
    let d = Browser::new();
    let back = at_upstream(&f, &u, &start_at(&f, &d, "/account").await, "ada").await;
    assert_eq!(Browser::new().get(&back).await.status(), 400, "no flow cookie");

    let refusals = events(&f.down, "sign_in").await;
    let reasons: Vec<&str> = refusals
        .iter()
        .filter(|e| e["outcome"] == "failure")
        .filter_map(|e| e["detail"]["reason"].as_str())
        .collect();
    assert!(reasons.contains(&"state"), "{refusals:?}");
    assert!(reasons.contains(&"the answer names another issuer"), "{reasons:?}");
    assert!(reasons.contains(&"the ID token is not valid for this sign-in"), "{reasons:?}");
    assert_eq!(users_of(&f.down).await.len(), before, "no one created");

    // Untampered, the same browser setup signs in: a new user, whose username is made from
    // the provider and the subject, since "ada" is someone else's here.
    let d = Browser::new();
    let back = at_upstream(&f, &u, &start_at(&f, &d, "/account").await, "ada").await;
    assert_eq!(d.get(&back).await.status(), 303);
    let name = signed_in_as(&f, &d).await.expect("signed in");
    assert!(name.starts_with("corp-"), "{name}");
    assert_eq!(users_of(&f.down).await.len(), before + 1);
}

/// A user who set up an authenticator app here is asked for its code after the provider
/// too; the session then says both.
#[tokio::test]
async fn upstream_a_user_with_an_authenticator_app_here_is_asked_for_its_code() {
    let (f, up) = federation(json!({})).await;
    user(&up, "ada").await;
    // Enrolling used this time step's code: a recovery code signs in first, the next step's
    // code after the provider.
    let (_, secret, recovery) = crate::totp::enrolled(&f.down, "ada").await;
    // Ada signs in here (password, then a recovery code) and links the identity.
    let d = Browser::new();
    let page = d.get(&f.down.url("/login?return_to=%2Faccount")).await.text().await.expect("page");
    let code_page = crate::browser::log_in(&d, &f.down, &page, "ada", PASSWORD).await;
    let code_page = code_page.text().await.expect("code page");
    let step = crate::totp::now_step();
    let accepted = crate::totp::submit_code(&f.down, &d, &code_page, &recovery[0]).await;
    assert_eq!(accepted.status(), 303);
    let account = d.get(&f.down.url("/account")).await.text().await.expect("account");
    let csrf = input(&account, "csrf_token").expect("csrf");
    let form = [("csrf_token", csrf.as_str()), ("provider", "corp")];
    let started = d.post(&f.down.url("/account/identities/link"), &form).await;
    let back = at_upstream(&f, &Browser::new(), &location(&started).expect("to"), "ada").await;
    assert_eq!(location(&d.get(&back).await).as_deref(), Some("/account"), "linked");

    // Through the provider: the code page, not a session.
    let other = Browser::new();
    let asked = sign_in_through(&f, &other, "ada").await;
    assert_eq!(asked.status(), 200);
    let asked = asked.text().await.expect("code page");
    assert!(input(&asked, "pending").is_some(), "{asked}");
    assert_eq!(signed_in_as(&f, &other).await, None);
    let next = crate::totp::code(&secret, step + 1);
    let accepted = crate::totp::submit_code(&f.down, &other, &asked, &next).await;
    assert_eq!(accepted.status(), 303);
    assert_eq!(signed_in_as(&f, &other).await.as_deref(), Some("ada"));
    let signed = events(&f.down, "sign_in").await;
    assert_eq!(signed[0]["detail"]["amr"], "fed otp pwd mfa", "{:?}", signed[0]);
}

/// A provider that rotates its signing key: an ID token signed with a key this replica has
/// not seen fetches the provider's keys again (at most once per refetch interval).
#[tokio::test]
async fn upstream_a_provider_key_rotation_is_picked_up_at_once() {
    let (f, up) = federation(json!({"create_users": true})).await;
    user(&up, "ada").await;
    assert_eq!(sign_in_through(&f, &Browser::new(), "ada").await.status(), 303);
    // Twice: the key signing now was not even the next key when the keys were fetched.
    for _ in 0..2 {
        let rotated = up.admin(Method::POST, "/admin/keys/rotate?force=true", None).await;
        assert_eq!(rotated.status(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(sign_in_through(&f, &Browser::new(), "ada").await.status(), 303);
}

#[tokio::test]
async fn upstream_down_or_private_is_answered_with_a_clear_page() {
    // A provider whose issuer nothing listens at.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let down = spawn_app_with(|s| s.outbound_allow_private_networks = true).await;
    let made = down
        .admin(
            Method::POST,
            "/admin/upstream-providers",
            Some(json!({"id": "gone", "name": "Gone", "issuer": format!("http://127.0.0.1:{port}"), "client_id": "c", "client_secret": "s"})),
        )
        .await;
    assert_eq!(made.status(), 201);
    let answer = press(&down, &Browser::new(), "gone", "/account").await;
    assert_eq!(answer.status(), 502);
    let page = answer.text().await.expect("page");
    assert!(page.contains("cannot be reached right now"), "{page}");
    assert_eq!(press(&down, &Browser::new(), "nope", "/account").await.status(), 404);
    // The button is a form with the login page's CSRF token: no other site starts a sign-in.
    let forged =
        Browser::new().post(&down.url("/login/upstream/gone"), &[("return_to", "/account")]).await;
    assert_eq!(forged.status(), 400);
    assert_eq!(Browser::new().get(&down.url("/login/upstream/gone")).await.status(), 405);

    // Without the setting that allows private networks, a loopback provider is never asked:
    // plain http is refused when it is set, a private address when it is used.
    let guarded = spawn_app().await;
    let add = |issuer: String| {
        let guarded = &guarded;
        async move {
            let body = json!({"id": "corp", "name": "Corp", "issuer": issuer, "client_id": "c", "client_secret": "s"});
            guarded.admin(Method::POST, "/admin/upstream-providers", Some(body)).await
        }
    };
    let http: Value = add(format!("http://127.0.0.1:{port}")).await.json().await.expect("JSON");
    assert_eq!(http["field"], "issuer", "{http}");
    assert_eq!(add(format!("https://127.0.0.1:{port}")).await.status(), 201);
    let refused = press(&guarded, &Browser::new(), "corp", "/account").await;
    assert_eq!(refused.status(), 502);
}

#[tokio::test]
async fn upstream_providers_are_checked_sealed_and_removed_through_the_admin_api() {
    let (f, up) = federation(
        json!({"claim_mapping": {"username": "email", "name": null}, "create_users": true}),
    )
    .await;
    let refused = |body: Value| {
        let down = &f.down;
        async move {
            let answer = down.admin(Method::POST, "/admin/upstream-providers", Some(body)).await;
            let status = answer.status();
            let body: Value = answer.json().await.expect("JSON");
            (status.as_u16(), body["field"].as_str().unwrap_or_default().to_owned())
        }
    };
    let base = json!({"id": "x", "name": "X", "issuer": "https://id.example", "client_id": "c", "client_secret": "s"});
    let with = |member: &str, value: Value| {
        let mut body = base.clone();
        body[member] = value;
        body
    };
    assert_eq!(refused(with("id", json!("Not/An/Id"))).await, (400, "id".to_owned()));
    assert_eq!(refused(with("issuer", json!("not a url"))).await, (400, "issuer".to_owned()));
    assert_eq!(refused(with("scope", json!("email"))).await, (400, "scope".to_owned()));
    assert_eq!(
        refused(with("client_secret", Value::Null)).await,
        (400, "client_secret".to_owned())
    );
    assert_eq!(
        refused(with("claim_mapping", json!({"admin": "x"}))).await,
        (400, "claim_mapping".to_owned())
    );
    assert_eq!(refused(with("id", json!("corp"))).await.0, 409, "the id is taken");
    // The stored secret is only ever sent where it was set for: moving needs a new one.
    let moved = json!({"name": "Corp", "issuer": "https://elsewhere.example", "client_id": client_id_of(&f).await});
    let moved = f.down.admin(Method::PUT, "/admin/upstream-providers/corp", Some(moved)).await;
    assert_eq!(moved.status(), 400);
    assert_eq!(moved.json::<Value>().await.expect("JSON")["field"], "client_secret");

    // The secret is stored sealed, never as sent.
    let (_, secret) = upstream_client(&up, &f.down, "spare").await;
    let made = f
        .down
        .admin(Method::POST, "/admin/upstream-providers", Some(json!({"id": "spare", "name": "Spare", "issuer": "https://spare.example", "client_id": "c", "client_secret": secret})))
        .await;
    assert_eq!(made.status(), 201);
    let db = f.down.store().await;
    let row = entity::upstream_provider::Entity::find_by_id("spare")
        .one(&db)
        .await
        .expect("read")
        .expect("row");
    assert!(!row.client_secret.contains(&secret) && row.client_secret.len() > secret.len());
    let listed: Value = f
        .down
        .admin(Method::GET, "/admin/upstream-providers", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    assert!(!listed.to_string().contains(&secret), "never answered");

    // The mapping: the username from the email claim, the name left alone.
    user(&up, "grace").await;
    let d = Browser::new();
    assert_eq!(sign_in_through(&f, &d, "grace").await.status(), 303);
    assert_eq!(signed_in_as(&f, &d).await.as_deref(), Some("grace@example.com"));
    let made = users_of(&f.down).await;
    let grace = made.iter().find(|u| u["username"] == "grace@example.com").expect("created");
    assert_eq!(grace["name"], Value::Null, "name mapped to nothing");

    // A disabled account is refused, even through its link.
    let id = grace["id"].as_str().expect("id");
    let disable = f
        .down
        .admin(Method::PUT, &format!("/admin/users/{id}"), Some(json!({"username": "grace@example.com", "disabled": true, "email": "grace@example.com"})))
        .await;
    assert_eq!(disable.status(), 200);
    assert_eq!(sign_in_through(&f, &Browser::new(), "grace").await.status(), 403);

    // Removed: no button, no sign-in.
    assert_eq!(
        f.down.admin(Method::DELETE, "/admin/upstream-providers/corp", None).await.status(),
        204
    );
    let page = Browser::new().get(&f.down.url("/login")).await.text().await.expect("page");
    assert!(!page.contains("Sign in with Corp") && page.contains("Sign in with Spare"), "{page}");
    assert_eq!(press(&f.down, &Browser::new(), "corp", "/account").await.status(), 404);
    assert_eq!(
        f.down.admin(Method::DELETE, "/admin/upstream-providers/corp", None).await.status(),
        404
    );
    assert_eq!(events(&f.down, "upstream_provider.created").await.len(), 2);
    assert_eq!(events(&f.down, "upstream_provider.deleted").await.len(), 1);
}

/// The upstream here is another `castellan` process on its own database; the provider is
/// added downstream with the CLI, before the downstream server first starts.
#[tokio::test]
async fn upstream_a_provider_added_with_the_cli_signs_users_in() {
    let up_db = TestDatabase::create().await;
    let upstream = ServerProcess::spawn(up_db.dir.path(), &as_refs(&process_env(&up_db))).await;
    let up = upstream.address.clone();
    let token = token_from(&up, &cli_admin(&up_db)).await;
    let http = reqwest::Client::new();
    let created = http
        .post(format!("{up}/admin/users"))
        .bearer_auth(&token)
        .json(&json!({"username": "ada", "password": PASSWORD, "name": "Ada Lovelace"}))
        .send()
        .await
        .expect("POST");
    assert_eq!(created.status(), 201);

    // The downstream's address is chosen first, so the upstream client can name its callback.
    let db = Arc::new(TestDatabase::create().await);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("port")
        .local_addr()
        .expect("addr")
        .port();
    let issuer = format!("http://127.0.0.1:{port}");
    let redirect = format!("{issuer}/login/upstream/corp/callback");
    let made: Value = http
        .post(format!("{up}/admin/clients"))
        .bearer_auth(&token)
        .json(&json!({"redirect_uris": [redirect], "grant_types": ["authorization_code"], "scope": "openid email profile"}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let mut cli = castellan(db.dir.path())
        .args(["upstream", "add", "--id", "corp", "--name", "Corp", "--provider-issuer", &up])
        // `=`: a client id may begin with '-'.
        .arg(format!("--client-id={}", made["client_id"].as_str().expect("id")))
        .arg("--create-users")
        .args(["--map", "username=name"])
        .envs(process_env(&db).iter().map(|(k, v)| (*k, v.as_str())))
        .env("CASTELLAN_ISSUER", &issuer)
        .env("CASTELLAN_OUTBOUND_ALLOW_PRIVATE_NETWORKS", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("castellan upstream add");
    let secret = made["client_secret"].as_str().expect("secret");
    writeln!(cli.stdin.take().expect("stdin"), "{secret}").expect("secret on stdin");
    let output = cli.wait_with_output().expect("done");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(printed["redirect_uri"], redirect);
    assert_eq!(printed["claim_mapping"]["username"], "name");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(secret));

    let mut settings = test_settings(&db);
    settings.bind = format!("127.0.0.1:{port}").parse().expect("address");
    settings.issuer = Some(castellan::config::Issuer::parse(&issuer).expect("issuer"));
    settings.outbound_allow_private_networks = true;
    let down = start(db, settings).await;
    let f = Federation { up, down };
    let d = Browser::new();
    assert_eq!(sign_in_through(&f, &d, "ada").await.status(), 303, "the CLI's sealed secret works");
    // "Ada Lovelace" is no username here: one is made from the provider and the subject.
    let name = signed_in_as(&f, &d).await.expect("signed in");
    assert!(name.starts_with("corp-") && name.len() == "corp-".len() + 12, "{name}");
}

/// What a sign-in through a provider costs here, in statements (docs/SCALING.md): counted at
/// the callback's route, besides the HTTP exchanges with the provider.
#[tokio::test]
async fn upstream_a_sign_in_runs_its_minimum_of_statements() {
    let (f, up) = federation(json!({"create_users": true})).await;
    user(&up, "ada").await;
    let route = "/login/upstream/{id}/callback";
    let first = crate::statements::counted(&f.down, route, async {
        assert_eq!(sign_in_through(&f, &Browser::new(), "ada").await.status(), 303);
    })
    .await;
    let returning = crate::statements::counted(&f.down, route, async {
        assert_eq!(sign_in_through(&f, &Browser::new(), "ada").await.status(), 303);
    })
    .await;
    println!("statements: a first sign-in {first}, a returning one {returning}");
    assert_eq!((first, returning), (FIRST, RETURNING));
}

/// The provider's row, no link found, the email check, the user with its link and two events
/// (4, one transaction), the authenticator app looked up, the session with its `sign_in`
/// event (2, one transaction).
const FIRST: u64 = 10;
/// The provider's row, the link with its user (one join), the link's time of use, the
/// authenticator app looked up, the session with its `sign_in` event (2, one transaction).
const RETURNING: u64 = 6;
