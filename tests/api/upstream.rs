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
    let down = spawn_app_with(|s| s.outbound_allow_private_networks = true).await;
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
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("return_to", return_to)
        .finish();
    let started = d.get(&f.down.url(&format!("/login/upstream/corp?{query}"))).await;
    assert_eq!(started.status(), 303, "off to the provider");
    let to = location(&started).expect("location");
    assert!(to.starts_with(&f.up), "to the upstream: {to}");
    let sent = params(&to);
    assert_eq!(sent["code_challenge_method"], "S256");
    assert!(sent.contains_key("nonce") && sent.contains_key("state"), "{to}");
    to
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
    let d = Browser::new();
    let (verifier, challenge) = pkce();
    let login =
        d.get(&authorize_url(&f.down, &client.0, &challenge, "openid profile email", "s")).await;
    let login = d.follow(&f.down, login).await;
    let page = login.text().await.expect("login page");
    assert!(page.contains("Sign in with Corp"), "{page}");
    let return_to = input(&page, "return_to").expect("return_to");
    let back = sign_in_via(&f, &d, &return_to).await;
    assert_eq!(back.status(), 303, "signed in and sent on");
    let consent_page = d.follow(&f.down, back).await.text().await.expect("consent page");
    let allowed = consent(&d, &f.down, &consent_page).await;
    let code = params(&location(&allowed).expect("to the client"))["code"].clone();
    let tokens: Value =
        redeem(&f.down, &client, &code, &verifier).await.json().await.expect("JSON");
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["amr"], json!(["fed"]), "amr says federated: {claims}");
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
            && e["detail"]["amr"] == "fed"
            && e["outcome"] == "success"),
        "{signed:?}"
    );

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
}

/// Signs in at the downstream's button with `return_to` in browser `d`; the downstream's
/// answer to the callback.
async fn sign_in_via(f: &Federation, d: &Browser, return_to: &str) -> Response {
    let u = Browser::new();
    let to = start_at(f, d, return_to).await;
    let back = at_upstream(f, &u, &to, "ada").await;
    d.get(&back).await
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
    assert_eq!(taken.status(), 409);

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
        409,
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
    assert!(users_of(&f.down).await.iter().all(|u| u["username"] != "ada"), "no one created");

    // Untampered, the same browser setup signs in.
    let d = Browser::new();
    let back = at_upstream(&f, &u, &start_at(&f, &d, "/account").await, "ada").await;
    assert_eq!(d.get(&back).await.status(), 303);
    assert_eq!(signed_in_as(&f, &d).await.as_deref(), Some("ada"));
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
    let answer = Browser::new().get(&down.url("/login/upstream/gone")).await;
    assert_eq!(answer.status(), 502);
    let page = answer.text().await.expect("page");
    assert!(page.contains("cannot be reached right now"), "{page}");
    assert_eq!(Browser::new().get(&down.url("/login/upstream/nope")).await.status(), 404);

    // Without the setting that allows private networks, a loopback provider is never asked.
    let up = spawn_app().await;
    let guarded = spawn_app().await;
    let made = guarded
        .admin(
            Method::POST,
            "/admin/upstream-providers",
            Some(json!({"id": "corp", "name": "Corp", "issuer": up.issuer, "client_id": "c", "client_secret": "s"})),
        )
        .await;
    assert_eq!(made.status(), 201);
    assert_eq!(Browser::new().get(&guarded.url("/login/upstream/corp")).await.status(), 502);
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
    assert_eq!(Browser::new().get(&f.down.url("/login/upstream/corp")).await.status(), 404);
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
