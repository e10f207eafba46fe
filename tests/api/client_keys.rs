//! Client keys by reference (`jwks_uri`): fetched through the one outbound client, which
//! refuses private, loopback and link-local addresses unless a setting allows them, and
//! cached so that neither a busy client nor a forged `kid` makes the server fetch again.

use std::time::Duration;

use serde_json::{Value, json};

use crate::client_jwt::{JwksServer, assertion, post_with_assertion};
use crate::dpop::DpopKey;
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

/// A client_credentials client authenticating with private_key_jwt, its keys at `jwks_uri`.
async fn keyed_client(app: &TestApp, jwks_uri: &str) -> String {
    let registered = app
        .create_client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": jwks_uri,
        }))
        .await;
    assert_eq!(registered["jwks_uri"], jwks_uri);
    registered["client_id"].as_str().expect("id").to_owned()
}

async fn token(app: &TestApp, client_id: &str, key: &DpopKey, kid: &str) -> (u16, Value) {
    let assertion = assertion(key, kid, key.alg(), client_id, &app.issuer);
    let form = [("grant_type", "client_credentials".to_owned())];
    post_with_assertion(app, "/token", &form, &assertion, None).await
}

/// A server that may fetch from loopback over http, refetching at most once a second.
async fn app_allowing_loopback() -> TestApp {
    spawn_app_with(|s| {
        s.outbound_allow_private_networks = true;
        s.client_jwks_refetch_interval = Duration::from_secs(1);
    })
    .await
}

#[tokio::test]
async fn keys_by_reference_are_fetched_once_and_again_only_for_a_new_kid() {
    let app = app_allowing_loopback().await;
    let first = DpopKey::es256();
    let server =
        JwksServer::start(json!({"keys": [first.registered("k1")]}), "public, max-age=600").await;
    let client_id = keyed_client(&app, &server.url).await;

    for _ in 0..3 {
        assert_eq!(token(&app, &client_id, &first, "k1").await.0, 200);
    }
    assert_eq!(server.connections(), 1, "max-age=600: fetched once for three authentications");

    // A kid the set lacks: one refetch once the interval has passed, then none until the next.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let forged = DpopKey::es256();
    assert_eq!(token(&app, &client_id, &forged, "forged").await.0, 401);
    assert_eq!(server.connections(), 2, "an unknown kid refetches");
    for _ in 0..5 {
        assert_eq!(token(&app, &client_id, &forged, "forged").await.0, 401);
    }
    assert_eq!(server.connections(), 2, "a forged kid cannot make it fetch again at once");

    // The client rotates: its new key is found by the refetch its kid causes.
    let second = DpopKey::ps256();
    server.publish(json!({"keys": [first.registered("k1"), second.registered("k2")]}));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(token(&app, &client_id, &second, "k2").await.0, 200, "PS256 assertion by k2");
    assert_eq!(server.connections(), 3);
    assert_eq!(token(&app, &client_id, &first, "k1").await.0, 200, "k1 still registered");
    assert_eq!(server.connections(), 3);
}

#[tokio::test]
async fn fetched_keys_keep_working_while_the_clients_server_is_down() {
    let app = app_allowing_loopback().await;
    let key = DpopKey::es256();
    let server = JwksServer::start(json!({"keys": [key.registered("k1")]}), "no-store").await;
    let client_id = keyed_client(&app, &server.url).await;
    assert_eq!(token(&app, &client_id, &key, "k1").await.0, 200);

    server.stop();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // Stale now (no-store is held for the refetch interval): the refetch fails, the keys stay.
    assert_eq!(token(&app, &client_id, &key, "k1").await.0, 200);
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn an_oversized_or_malformed_key_set_authenticates_nobody() {
    // A long interval: a failed fetch is not retried by the next authentication.
    let app = spawn_app_with(|s| {
        s.outbound_allow_private_networks = true;
        s.client_jwks_refetch_interval = Duration::from_secs(60);
    })
    .await;
    let key = DpopKey::es256();
    let server = JwksServer::start(json!({}), "max-age=1").await;
    server.publish_raw(format!(r#"{{"keys": [], "padding": "{}"}}"#, "x".repeat(300 * 1024)));
    let client_id = keyed_client(&app, &server.url).await;
    assert_eq!(token(&app, &client_id, &key, "k1").await.0, 401, "more than 256 KiB");

    let other = JwksServer::start(json!({}), "max-age=1").await;
    other.publish_raw("<html>not a key set</html>".into());
    let client_id = keyed_client(&app, &other.url).await;
    assert_eq!(token(&app, &client_id, &key, "k1").await.0, 401, "not JSON");

    // Keys fetched obey the rules of keys registered: no private member.
    let mut private = key.registered("k1");
    private["d"] = json!("c2VjcmV0");
    let leaky = JwksServer::start(json!({"keys": [private]}), "max-age=600").await;
    let client_id = keyed_client(&app, &leaky.url).await;
    for _ in 0..3 {
        assert_eq!(token(&app, &client_id, &key, "k1").await.0, 401, "a private key published");
    }
    assert_eq!(leaky.connections(), 1, "a failed fetch is not retried before the interval");
}

#[tokio::test]
async fn jwks_uri_at_a_private_address_is_never_fetched() {
    // The default: only public addresses, https only.
    let app = spawn_app().await;
    let key = DpopKey::es256();
    let server = JwksServer::start(json!({"keys": [key.registered("k1")]}), "max-age=600").await;
    let port = server.port();
    for jwks_uri in [
        server.url.clone(),
        format!("https://127.0.0.1:{port}/jwks.json"),
        format!("https://localhost:{port}/jwks.json"),
        format!("https://[::1]:{port}/jwks.json"),
        format!("https://[::ffff:127.0.0.1]:{port}/jwks.json"),
        "https://169.254.169.254/latest/meta-data/jwks.json".to_owned(),
        "https://10.0.0.1/jwks.json".to_owned(),
    ] {
        let client_id = keyed_client(&app, &jwks_uri).await;
        let (status, body) = token(&app, &client_id, &key, "k1").await;
        assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{jwks_uri}");
    }
    assert_eq!(server.connections(), 0, "no connection ever reached the loopback server");
}

#[tokio::test]
async fn jwks_uri_is_validated_at_registration() {
    let app = spawn_app().await;
    let key = DpopKey::es256();
    for (body, reason) in [
        (json!({"jwks_uri": "http://keys.example/jwks"}), "plain http to a public host"),
        (json!({"jwks_uri": "ftp://keys.example/jwks"}), "not http(s)"),
        (json!({"jwks_uri": "https://keys.example/jwks#frag"}), "a fragment"),
        (json!({"jwks_uri": "https://user:pw@keys.example/jwks"}), "credentials in the URL"),
        (
            json!({"jwks_uri": "https://keys.example/jwks", "jwks": {"keys": [key.registered("k1")]}}),
            "both jwks and jwks_uri",
        ),
    ] {
        let mut metadata = json!({"grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt"});
        metadata.as_object_mut().expect("object").extend(body.as_object().expect("body").clone());
        let response = app.admin(reqwest::Method::POST, "/admin/clients", Some(metadata)).await;
        assert_eq!(response.status(), 400, "{reason}");
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["error"], "invalid_client_metadata", "{reason}: {error}");
    }
}
