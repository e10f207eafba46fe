//! Clients that register themselves (RFC 7591) and manage their registration (RFC 7592):
//! closed registration with initial access tokens, open registration of public clients
//! within the ceiling, the refusals, the abuse limits and the expiry of unused clients.

use std::time::Duration;

use castellan::config::RegistrationMode;
use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, PASSWORD, location, params, pkce, user};
use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with};

const NATIVE_REDIRECT: &str = "http://127.0.0.1/callback";
const MCP: &str = "https://mcp.example/mcp";

fn native() -> Value {
    json!({
        "client_name": "Agent CLI",
        "client_uri": "https://agent.example/about",
        "redirect_uris": [NATIVE_REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        // RFC 7591 §2: members the server does not know are ignored, not refused.
        "logo_uri": "https://agent.example/logo.png",
        "software_id": "agent-cli",
    })
}

async fn open_app() -> TestApp {
    spawn_app_with(|s| s.registration = RegistrationMode::Open).await
}

/// `POST /register` with `body`, and `token` as a bearer token if given.
async fn register(app: &TestApp, body: &Value, token: Option<&str>) -> reqwest::Response {
    let mut request = app.http.post(app.url("/register")).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("registration request")
}

async fn registered(app: &TestApp, body: &Value, token: Option<&str>) -> Value {
    let response = register(app, body, token).await;
    assert_eq!(response.status(), 201, "registered");
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.expect("JSON")
}

/// A call to the client's configuration endpoint with its registration access token.
async fn manage(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: &str,
    body: Option<&Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, uri).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("configuration request")
}

async fn set_policy(app: &TestApp, policy: Value) -> reqwest::Response {
    app.admin(Method::PUT, "/admin/registration-policy", Some(policy)).await
}

fn open_policy(kinds: &[&str]) -> Value {
    json!({"mode": "open", "scope": "openid offline_access", "grant_types": ["authorization_code", "refresh_token"],
           "redirect_uri_kinds": kinds, "resources": [MCP]})
}

async fn issue_token(app: &TestApp, body: Value) -> Value {
    let response = app.admin(Method::POST, "/admin/initial-access-tokens", Some(body)).await;
    assert_eq!(response.status(), 201, "initial access token issued");
    response.json().await.expect("JSON")
}

async fn create_scope(app: &TestApp, name: &str) {
    let body = json!({"name": name, "description": name});
    let response = app.admin(Method::POST, "/admin/scopes", Some(body)).await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn an_openly_registered_native_client_signs_a_user_in_for_the_open_resource() {
    let app = open_app().await;
    assert_eq!(set_policy(&app, open_policy(&["loopback", "private_use"])).await.status(), 200);
    user(&app, "alice").await;
    let client = registered(&app, &native(), None).await;
    let client_id = client["client_id"].as_str().expect("id").to_owned();
    assert!(client.get("client_secret").is_none(), "a public client gets no secret");
    assert_eq!(client["registration"], "open");
    assert_eq!(client["scope"], "openid offline_access", "the ceiling, left to the server");
    assert_eq!(client["audience"], json!([MCP]));
    assert!(client.get("logo_uri").is_none(), "unknown members are ignored");
    assert_eq!(client["registration_client_uri"], app.url(&format!("/register/{client_id}")));
    assert_eq!(client["registration_access_token"].as_str().expect("token").len(), 43);

    // The code flow, the consent page saying that nobody vetted this client.
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", "http://127.0.0.1:43117/callback")
        .append_pair("scope", "openid offline_access")
        .append_pair("resource", MCP)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let login =
        browser.follow(&app, browser.get(&app.url(&format!("/authorize?{query}"))).await).await;
    let page = login.text().await.expect("login page");
    let consent = browser
        .follow(&app, crate::browser::log_in(&browser, &app, &page, "alice", PASSWORD).await)
        .await;
    let page = consent.text().await.expect("consent page");
    assert!(page.contains("This application registered itself"), "{page}");
    assert!(page.contains("agent.example"), "its claimed home is shown");
    assert!(page.contains("127.0.0.1"), "and where the answer goes");
    let back = crate::browser::consent(&browser, &app, &page).await;
    let code = params(&location(&back).expect("redirect"))["code"].clone();
    let tokens: Value = app
        .http
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:43117/callback"),
            ("code_verifier", &verifier),
            ("resource", MCP),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("JSON");
    let claims = crate::helpers::jwt_claims(tokens["access_token"].as_str().expect("token"));
    assert!(claims["aud"].to_string().contains(MCP), "a token for the open resource: {claims}");
    assert!(tokens["refresh_token"].is_string());

    // Administrators see it, marked.
    let listed: Value =
        app.admin(Method::GET, "/admin/clients?limit=100", None).await.json().await.expect("JSON");
    let mine = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["client_id"] == client_id.as_str())
        .cloned();
    assert_eq!(mine.expect("listed")["registration"], "open");
}

#[tokio::test]
async fn closed_registration_takes_only_a_valid_initial_access_token() {
    let app = spawn_app().await;
    create_scope(&app, "orders").await;
    let service = json!({"client_name": "Orders sync", "grant_types": ["client_credentials"], "scope": "orders"});

    let response = register(&app, &service, None).await;
    assert_eq!(response.status(), 401, "closed by default");
    assert_eq!(response.headers()["www-authenticate"], r#"Bearer realm="castellan""#);
    let response = register(&app, &service, Some("not-a-token-anyone-issued")).await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"].to_str().expect("ascii").contains("invalid_token")
    );

    let issued = issue_token(&app, json!({"uses": 2, "expires_in": 3600, "scope": "orders"})).await;
    let token = issued["token"].as_str().expect("token").to_owned();
    assert_eq!(issued["uses_left"], 2);

    // Beyond the token's scope, or admin: refused, and no use is taken.
    let wide = json!({"grant_types": ["client_credentials"], "scope": "openid"});
    let refused: Value = register(&app, &wide, Some(&token)).await.json().await.expect("JSON");
    assert_eq!(
        (refused["error"].as_str(), refused["field"].as_str()),
        (Some("invalid_client_metadata"), Some("scope"))
    );
    let admin = json!({"grant_types": ["client_credentials"], "scope": "admin"});
    assert_eq!(register(&app, &admin, Some(&token)).await.status(), 400);

    let first = registered(&app, &service, Some(&token)).await;
    assert_eq!(first["registration"], "token");
    let secret = first["client_secret"].as_str().expect("a confidential client gets its secret");
    let issued_token =
        app.client_token(first["client_id"].as_str().expect("id"), secret, None).await;
    assert_eq!(
        crate::helpers::jwt_claims(issued_token["access_token"].as_str().expect("token"))["scope"],
        "orders"
    );
    registered(&app, &service, Some(&token)).await;
    let response = register(&app, &service, Some(&token)).await;
    assert_eq!(response.status(), 401, "used up after two registrations");

    // Listed without the token; revoked ones and expired ones open nothing.
    let listed: Value = app
        .admin(Method::GET, "/admin/initial-access-tokens", None)
        .await
        .json()
        .await
        .expect("JSON");
    let entry = &listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["id"] == issued["id"])
        .cloned()
        .expect("listed");
    assert_eq!(entry["uses_left"], 0);
    assert!(entry.get("token").is_none(), "a token is shown once");
    let revoked = issue_token(&app, json!({})).await;
    let path = format!("/admin/initial-access-tokens/{}", revoked["id"].as_str().expect("id"));
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    assert_eq!(register(&app, &service, revoked["token"].as_str()).await.status(), 401);
    let short = issue_token(&app, json!({"expires_in": 1})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(register(&app, &service, short["token"].as_str()).await.status(), 401, "expired");

    // What an administrator may not issue.
    for bad in [
        json!({"uses": 0}),
        json!({"expires_in": 99_999_999}),
        json!({"scope": "admin"}),
        json!({"scope": "nope"}),
        json!({"colour": 1}),
    ] {
        let response =
            app.admin(Method::POST, "/admin/initial-access-tokens", Some(bad.clone())).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn open_registration_refuses_what_is_beyond_its_ceiling() {
    let app = open_app().await;
    assert_eq!(set_policy(&app, open_policy(&["loopback"])).await.status(), 200);
    let with = |member: &str, value: Value| {
        let mut body = native();
        body[member] = value;
        body
    };
    let cases = [
        (
            with("token_endpoint_auth_method", json!("client_secret_basic")),
            "invalid_client_metadata",
            "token_endpoint_auth_method",
        ),
        (with("scope", json!("openid admin")), "invalid_client_metadata", "scope"),
        (with("scope", json!("openid profile")), "invalid_client_metadata", "scope"),
        (
            with("redirect_uris", json!(["https://agent.example/cb"])),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            with("redirect_uris", json!(["com.agent.cli:/cb"])),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            with("redirect_uris", json!(["http://agent.example/cb"])),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (
            with("redirect_uris", json!(["javascript:alert(1)"])),
            "invalid_redirect_uri",
            "redirect_uris",
        ),
        (with("served_resources", json!([MCP])), "invalid_client_metadata", "served_resources"),
        (
            with("audience", json!(["https://bank.example/api"])),
            "invalid_client_metadata",
            "audience",
        ),
        (
            with("refresh_token_lifetime", json!(315_360_000)),
            "invalid_client_metadata",
            "refresh_token_lifetime",
        ),
        (with("client_id", json!("mine")), "invalid_client_metadata", "client_id"),
        (with("client_uri", json!("javascript:alert(1)")), "invalid_client_metadata", "client_uri"),
        (
            with("software_statement", json!("eyJ.e30.sig")),
            "unapproved_software_statement",
            "software_statement",
        ),
    ];
    for (body, error, field) in cases {
        let response = register(&app, &body, None).await;
        assert_eq!(response.status(), 400, "{body}");
        let answer: Value = response.json().await.expect("JSON");
        assert_eq!(
            (answer["error"].as_str(), answer["field"].as_str()),
            (Some(error), Some(field)),
            "{body}"
        );
    }
    let not_json =
        app.http.post(app.url("/register")).body("client_name=x").send().await.expect("send");
    assert_eq!(not_json.status(), 400);
    assert_eq!(not_json.json::<Value>().await.expect("JSON")["error"], "invalid_request");
    // Grant types beyond the ceiling.
    let mut code_only = open_policy(&["loopback"]);
    code_only["grant_types"] = json!(["authorization_code"]);
    assert_eq!(set_policy(&app, code_only).await.status(), 200);
    let answer: Value = register(&app, &native(), None).await.json().await.expect("JSON");
    assert_eq!(answer["field"], "grant_types", "refresh_token is not open: {answer}");
    // The ceiling admits what it names: a private-use scheme once the policy allows it.
    assert_eq!(set_policy(&app, open_policy(&["private_use"])).await.status(), 200);
    registered(&app, &with("redirect_uris", json!(["com.agent.cli:/cb"])), None).await;
    let listed: Value =
        app.admin(Method::GET, "/admin/clients?limit=100", None).await.json().await.expect("JSON");
    assert_eq!(
        listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|c| c["registration"] != "admin")
            .count(),
        1,
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn a_client_reads_updates_and_deletes_its_registration_with_a_rotating_token() {
    let app = open_app().await;
    let client = registered(&app, &native(), None).await;
    let uri = client["registration_client_uri"].as_str().expect("uri").to_owned();
    let token = client["registration_access_token"].as_str().expect("token").to_owned();

    let read = manage(&app, Method::GET, &uri, &token, None).await;
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.expect("JSON");
    assert_eq!(read["client_id"], client["client_id"]);
    assert!(read.get("registration_access_token").is_none(), "read does not rotate");
    assert_eq!(manage(&app, Method::GET, &uri, "wrong-token", None).await.status(), 401);
    let response = app.http.get(&uri).send().await.expect("send");
    assert_eq!(response.status(), 401, "no token");
    // Another client's token, an admin's client and an unknown id: the same 401.
    let other = registered(&app, &native(), None).await;
    let other_token = other["registration_access_token"].as_str().expect("token");
    assert_eq!(manage(&app, Method::GET, &uri, other_token, None).await.status(), 401);
    let admin_client = app.create_client(json!({"grant_types": ["client_credentials"]})).await;
    let admin_uri =
        app.url(&format!("/register/{}", admin_client["client_id"].as_str().expect("id")));
    assert_eq!(manage(&app, Method::GET, &admin_uri, &token, None).await.status(), 401);
    assert_eq!(
        manage(&app, Method::GET, &app.url("/register/nobody"), &token, None).await.status(),
        401
    );

    // An update sends the whole registration back (RFC 7592 §2.2), here renamed.
    let mut body = read.clone();
    body["client_name"] = json!("Agent CLI 2");
    let updated = manage(&app, Method::PUT, &uri, &token, Some(&body)).await;
    assert_eq!(updated.status(), 200);
    let updated: Value = updated.json().await.expect("JSON");
    assert_eq!(updated["client_name"], "Agent CLI 2");
    let rotated = updated["registration_access_token"].as_str().expect("a new token").to_owned();
    assert_ne!(rotated, token);
    assert_eq!(
        manage(&app, Method::GET, &uri, &token, None).await.status(),
        401,
        "the old token is gone"
    );
    assert_eq!(manage(&app, Method::GET, &uri, &rotated, None).await.status(), 200);

    for (member, value, field) in [
        ("client_id", json!("someone-else"), "client_id"),
        ("scope", json!("openid offline_access admin"), "scope"),
        ("token_endpoint_auth_method", json!("client_secret_basic"), "token_endpoint_auth_method"),
        ("client_secret", json!("chosen-by-the-client"), "client_secret"),
    ] {
        let mut bad = updated.clone();
        bad[member] = value;
        let response = manage(&app, Method::PUT, &uri, &rotated, Some(&bad)).await;
        assert_eq!(response.status(), 400, "{member}");
        assert_eq!(response.json::<Value>().await.expect("JSON")["field"], field);
    }

    assert_eq!(manage(&app, Method::DELETE, &uri, &rotated, None).await.status(), 204);
    assert_eq!(manage(&app, Method::GET, &uri, &rotated, None).await.status(), 401);
    let admin_view = format!("/admin/clients/{}", client["client_id"].as_str().expect("id"));
    assert_eq!(app.admin(Method::GET, &admin_view, None).await.status(), 404);
}

#[tokio::test]
async fn a_client_registered_with_a_token_cannot_widen_itself() {
    let app = spawn_app().await;
    create_scope(&app, "orders").await;
    create_scope(&app, "billing").await;
    let issued = issue_token(&app, json!({"scope": "orders billing"})).await;
    let body = json!({"grant_types": ["client_credentials"], "scope": "orders"});
    let client = registered(&app, &body, issued["token"].as_str()).await;
    let uri = client["registration_client_uri"].as_str().expect("uri");
    let token = client["registration_access_token"].as_str().expect("token");
    let secret = client["client_secret"].as_str().expect("secret");

    let mut wider = client.clone();
    wider["scope"] = json!("orders billing");
    let response = manage(&app, Method::PUT, uri, token, Some(&wider)).await;
    assert_eq!(response.status(), 400, "billing was never its own");
    // Its current secret may be sent back; a narrower scope is fine.
    let mut same = client.clone();
    same["client_secret"] = json!(secret);
    same["client_name"] = json!("renamed");
    let response = manage(&app, Method::PUT, uri, token, Some(&same)).await;
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.expect("JSON");
    assert!(updated.get("client_secret").is_none(), "the secret is not reissued");
    let still = app.client_token(client["client_id"].as_str().expect("id"), secret, None).await;
    assert!(still["access_token"].is_string(), "the secret still works: {still}");
}

#[tokio::test]
async fn registrations_are_limited_per_address_across_replicas() {
    let app = spawn_app_with(|s| {
        s.registration = RegistrationMode::Open;
        s.registration_limit = 3;
    })
    .await;
    let replica = app.replica().await;
    registered(&app, &native(), None).await;
    registered(&replica, &native(), None).await;
    // A refused registration counts too.
    let mut bad = native();
    bad["scope"] = json!("admin");
    assert_eq!(register(&app, &bad, None).await.status(), 400);
    let response = register(&replica, &native(), None).await;
    assert_eq!(response.status(), 429, "the fourth from this address, on the other replica");
    let retry: u64 =
        response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!(retry >= 1);
}

#[tokio::test]
async fn unused_dynamic_clients_expire_and_admin_clients_stay() {
    let app = spawn_app_with(|s| {
        s.registration = RegistrationMode::Open;
        s.dynamic_client_idle_expiry = Duration::from_secs(2);
        s.purge_interval = Duration::from_millis(300);
    })
    .await;
    let admin_client = app.create_client(json!({"grant_types": ["client_credentials"]})).await;
    let client = registered(&app, &native(), None).await;
    let path = format!("/admin/clients/{}", client["client_id"].as_str().expect("id"));
    assert_eq!(app.admin(Method::GET, &path, None).await.status(), 200);
    let gone = eventually(Duration::from_secs(10), || async {
        app.admin(Method::GET, &path, None).await.status() == 404
    })
    .await;
    assert!(gone, "an unused dynamic client is purged");
    let kept = format!("/admin/clients/{}", admin_client["client_id"].as_str().expect("id"));
    assert_eq!(app.admin(Method::GET, &kept, None).await.status(), 200);
}

#[tokio::test]
async fn the_policy_is_the_settings_until_an_administrator_sets_one() {
    let app = spawn_app().await;
    let discovery: Value =
        app.get("/.well-known/oauth-authorization-server").await.json().await.expect("JSON");
    assert_eq!(discovery["registration_endpoint"], app.url("/register"));
    let policy: Value = app
        .admin(Method::GET, "/admin/registration-policy", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        (policy["mode"].as_str(), policy["source"].as_str()),
        (Some("closed"), Some("settings"))
    );
    assert_eq!(register(&app, &native(), None).await.status(), 401);

    assert_eq!(set_policy(&app, open_policy(&["loopback"])).await.status(), 200);
    let policy: Value = app
        .admin(Method::GET, "/admin/registration-policy", None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!((policy["mode"].as_str(), policy["source"].as_str()), (Some("open"), Some("admin")));
    let replica = app.replica().await;
    registered(&replica, &native(), None).await;

    for bad in [
        json!({"mode": "open"}),
        json!({"mode": "wide", "scope": "", "grant_types": [], "redirect_uri_kinds": [], "resources": []}),
        json!({"mode": "open", "scope": "admin", "grant_types": [], "redirect_uri_kinds": [], "resources": []}),
        json!({"mode": "open", "scope": "nope", "grant_types": [], "redirect_uri_kinds": [], "resources": []}),
        json!({"mode": "open", "scope": "", "grant_types": ["client_credentials"], "redirect_uri_kinds": [], "resources": []}),
        json!({"mode": "open", "scope": "", "grant_types": [], "redirect_uri_kinds": [], "resources": ["not a uri"]}),
    ] {
        assert_eq!(set_policy(&app, bad.clone()).await.status(), 400, "{bad}");
    }

    let off = spawn_app_with(|s| s.registration = RegistrationMode::Off).await;
    let discovery: Value =
        off.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert!(discovery.get("registration_endpoint").is_none());
    assert_eq!(register(&off, &native(), None).await.status(), 404);
    assert_eq!(off.admin(Method::GET, "/admin/registration-policy", None).await.status(), 404);
    assert_eq!(set_policy(&off, open_policy(&["loopback"])).await.status(), 404);
}
