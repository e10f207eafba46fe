//! Every admin route refuses callers without a valid `admin` access token (docs/REFERENCE.md §6).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use castellan::oauth::jwk::Algorithm;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::Method;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs1::EncodeRsaPublicKey;
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// Every admin route of docs/REFERENCE.md §6 that exists so far, with a method.
const ROUTES: [(&str, &str); 19] = [
    ("POST", "/admin/clients"),
    ("GET", "/admin/clients"),
    ("GET", "/admin/clients/some-id"),
    ("PUT", "/admin/clients/some-id"),
    ("DELETE", "/admin/clients/some-id"),
    ("POST", "/admin/clients/some-id/secret"),
    ("POST", "/admin/scopes"),
    ("GET", "/admin/scopes"),
    ("GET", "/admin/scopes/profile"),
    ("PUT", "/admin/scopes/profile"),
    ("DELETE", "/admin/scopes/profile"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users"),
    ("GET", "/admin/users/some-id"),
    ("PUT", "/admin/users/some-id"),
    ("DELETE", "/admin/users/some-id"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys/rotate"),
    ("GET", "/admin/openapi.json"),
];

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = app.http.request(method, app.url(path)).json(&json!({"description": "x"}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

/// Claims of a would-be admin token for `app`.
fn admin_claims(app: &TestApp, exp_offset: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "iss": app.issuer, "sub": app.admin.0, "aud": app.issuer, "client_id": app.admin.0,
        "scope": "admin", "iat": now - 60, "exp": now + exp_offset, "jti": uuid::Uuid::new_v4().to_string(),
    })
}

async fn assert_every_route_refuses(app: &TestApp, token: Option<&str>, status: u16, what: &str) {
    for (method, path) in ROUTES {
        let response = call(app, method, path, token).await;
        assert_eq!(response.status(), status, "{what}: {method} {path}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ascii").to_owned());
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "{what}: {method} {path}");
        let body: serde_json::Value = response.json().await.expect("JSON error body");
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn every_admin_route_refuses_a_request_without_a_token() {
    let app = spawn_app().await;
    assert_every_route_refuses(&app, None, 401, "no token").await;
}

#[tokio::test]
async fn every_admin_route_refuses_an_expired_token() {
    let app = spawn_app().await;
    let expired =
        app.keys.sign(Algorithm::RS256, "at+jwt", &admin_claims(&app, -30)).expect("sign");
    assert_every_route_refuses(&app, Some(&expired), 401, "expired").await;
}

#[tokio::test]
async fn every_admin_route_refuses_a_token_without_the_admin_scope() {
    let app = spawn_app().await;
    let (id, secret) = app.service_client("profile", &[]).await;
    let token = app.client_token(&id, &secret, None).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_every_route_refuses(&app, Some(&token), 403, "no admin scope").await;
}

#[tokio::test]
async fn every_admin_route_refuses_an_unsigned_alg_none_token() {
    let app = spawn_app().await;
    let kid = app.keys.active_kid(Algorithm::RS256);
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(admin_claims(&app, 300).to_string());
    let token = format!("{header}.{payload}.");
    assert_every_route_refuses(&app, Some(&token), 401, "alg none").await;
}

#[tokio::test]
async fn every_admin_route_refuses_an_hs256_token_keyed_with_our_rsa_public_key() {
    let app = spawn_app().await;
    let jwks = app.jwks().await;
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == app.keys.active_kid(Algorithm::RS256).as_str())
        .expect("active");
    let n = rsa::BigUint::from_bytes_be(
        &URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("b64"),
    );
    let e = rsa::BigUint::from_bytes_be(
        &URL_SAFE_NO_PAD.decode(jwk["e"].as_str().expect("e")).expect("b64"),
    );
    let public_der = rsa::RsaPublicKey::new(n, e).expect("key").to_pkcs1_der().expect("der");
    let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(app.keys.active_kid(Algorithm::RS256));
    for secret in [public_der.as_bytes().to_vec(), jwk.to_string().into_bytes()] {
        let token = jsonwebtoken::encode(
            &header,
            &admin_claims(&app, 300),
            &EncodingKey::from_secret(&secret),
        )
        .expect("hs256");
        assert_every_route_refuses(&app, Some(&token), 401, "HS256 with the public key").await;
    }
}

#[tokio::test]
async fn every_admin_route_refuses_a_token_signed_by_an_unknown_key() {
    let app = spawn_app().await;
    let stranger = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("key");
    let key = EncodingKey::from_rsa_der(stranger.to_pkcs1_der().expect("der").as_bytes());
    let mut header = Header::new(jsonwebtoken::Algorithm::RS256);
    header.typ = Some("at+jwt".into());

    header.kid = Some("unknown-kid".into());
    let unknown_kid = jsonwebtoken::encode(&header, &admin_claims(&app, 300), &key).expect("sign");
    header.kid = Some(app.keys.active_kid(Algorithm::RS256));
    let our_kid = jsonwebtoken::encode(&header, &admin_claims(&app, 300), &key).expect("sign");

    assert_every_route_refuses(&app, Some(&unknown_kid), 401, "unknown kid").await;
    assert_every_route_refuses(&app, Some(&our_kid), 401, "our kid, foreign key").await;
}

#[tokio::test]
async fn a_token_of_another_type_or_audience_is_refused() {
    let app = spawn_app().await;
    let id_token_like =
        app.keys.sign(Algorithm::RS256, "JWT", &admin_claims(&app, 300)).expect("sign");
    let mut other_audience = admin_claims(&app, 300);
    other_audience["aud"] = json!("https://api.example.com");
    let other_audience = app.keys.sign(Algorithm::RS256, "at+jwt", &other_audience).expect("sign");

    for token in [id_token_like, other_audience] {
        assert_eq!(call(&app, "GET", "/admin/clients", Some(&token)).await.status(), 401);
    }
}

#[tokio::test]
async fn a_valid_admin_token_is_accepted_and_loses_power_with_its_client() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    assert_eq!(call(&app, "GET", "/admin/clients", Some(&token)).await.status(), 200);

    let created =
        app.create_client(json!({"grant_types": ["client_credentials"], "scope": "admin"})).await;
    let (id, secret) = (
        created["client_id"].as_str().expect("id"),
        created["client_secret"].as_str().expect("secret"),
    );
    let second = app.client_token(id, secret, None).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(call(&app, "GET", "/admin/keys", Some(&second)).await.status(), 200);
    let deleted = app.admin(Method::DELETE, &format!("/admin/clients/{id}"), None).await;
    assert_eq!(deleted.status(), 204);

    assert_eq!(call(&app, "GET", "/admin/keys", Some(&second)).await.status(), 401);
}
