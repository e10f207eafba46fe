//! Client authentication at the token endpoint (RFC 6749 §2.3, OAuth 2.1 §2.4, RFC 7523).

use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::helpers::{TestApp, eventually, spawn_app};

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

async fn status_and_error(response: reqwest::Response) -> (u16, String, Option<String>) {
    let status = response.status().as_u16();
    let challenge =
        response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_owned());
    let body: serde_json::Value = response.json().await.expect("JSON");
    (status, body["error"].as_str().expect("error").to_owned(), challenge)
}

async fn post_form(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.http.post(app.url("/token")).form(form).send().await.expect("POST")
}

#[tokio::test]
async fn client_secret_post_works_for_a_client_registered_for_it() {
    let app = spawn_app().await;
    let client = app
        .create_client(json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "client_secret_post"}))
        .await;
    let (id, secret) = (
        client["client_id"].as_str().expect("id"),
        client["client_secret"].as_str().expect("secret"),
    );

    let by_post = post_form(
        &app,
        &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)],
    )
    .await;
    let by_basic = app.token_basic(id, secret, &[("grant_type", "client_credentials")]).await;

    assert_eq!(by_post.status(), 200);
    assert_eq!(status_and_error(by_basic).await.0, 401, "only the registered method is accepted");
}

#[tokio::test]
async fn a_wrong_secret_or_unknown_client_is_invalid_client_with_a_challenge() {
    let app = spawn_app().await;
    let (id, _) = app.admin.clone();

    let wrong =
        app.token_basic(&id, "not-the-secret", &[("grant_type", "client_credentials")]).await;
    let unknown =
        app.token_basic("nobody", "whatever", &[("grant_type", "client_credentials")]).await;
    let by_post = post_form(
        &app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "not-the-secret"),
        ],
    )
    .await;

    for response in [wrong, unknown, by_post] {
        let (status, error, challenge) = status_and_error(response).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"));
        assert!(challenge.is_some_and(|c| c.starts_with("Basic")), "every 401 carries a challenge");
    }
}

#[tokio::test]
async fn two_authentication_methods_at_once_are_invalid_request() {
    let app = spawn_app().await;
    let (id, secret) = app.admin.clone();

    let response = app
        .token_basic(
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("client_secret", &secret), ("client_id", &id)],
        )
        .await;

    assert_eq!(status_and_error(response).await.1, "invalid_request");
}

#[tokio::test]
async fn no_credentials_at_all_is_invalid_client() {
    let app = spawn_app().await;

    let response = post_form(&app, &[("grant_type", "client_credentials")]).await;

    assert_eq!(status_and_error(response).await.0, 401);
}

/// A client registered for private_key_jwt with a fresh P-256 key.
struct KeyClient {
    id: String,
    key: EncodingKey,
}

async fn key_client(app: &TestApp) -> KeyClient {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("key");
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).expect("pair");
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    });
    let client = app
        .create_client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]},
            "scope": "profile",
        }))
        .await;
    KeyClient {
        id: client["client_id"].as_str().expect("id").to_owned(),
        key: EncodingKey::from_ec_der(pkcs8.as_ref()),
    }
}

fn assertion(client: &KeyClient, aud: &str, lifetime: i64, jti: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let claims = json!({"iss": client.id, "sub": client.id, "aud": aud, "iat": now, "exp": now + lifetime, "jti": jti});
    jsonwebtoken::encode(&header, &claims, &client.key).expect("assertion")
}

async fn with_assertion(app: &TestApp, assertion: &str) -> reqwest::Response {
    post_form(
        app,
        &[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", assertion),
        ],
    )
    .await
}

#[tokio::test]
async fn private_key_jwt_authenticates_with_an_assertion_for_the_issuer_or_token_endpoint() {
    let app = spawn_app().await;
    let client = key_client(&app).await;

    let to_issuer = with_assertion(&app, &assertion(&client, &app.issuer, 60, "a")).await;
    let to_endpoint = with_assertion(&app, &assertion(&client, &app.url("/token"), 60, "b")).await;

    assert_eq!(to_issuer.status(), 200);
    assert_eq!(to_endpoint.status(), 200);
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let app = spawn_app().await;
    let client = key_client(&app).await;
    let once = assertion(&client, &app.issuer, 60, "only-once");

    let first = with_assertion(&app, &once).await;
    let replay = with_assertion(&app, &once).await;

    assert_eq!(first.status(), 200);
    assert_eq!(status_and_error(replay).await.1, "invalid_client");
}

#[tokio::test]
async fn assertions_with_a_wrong_audience_a_long_life_or_a_foreign_key_are_refused() {
    let app = spawn_app().await;
    let client = key_client(&app).await;
    let stranger = key_client(&app).await;
    let forged = KeyClient { id: client.id.clone(), key: stranger.key };

    for bad in [
        assertion(&client, "https://elsewhere.example", 60, "c1"),
        assertion(&client, &app.issuer, 3600, "c2"),
        assertion(&client, &app.issuer, -60, "c3"),
        assertion(&forged, &app.issuer, 60, "c4"),
        "not.a.jwt".to_owned(),
    ] {
        let (status, error, _) = status_and_error(with_assertion(&app, &bad).await).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"));
    }
}

/// An assertion with a hand-made protected header and claims, signed with the client's key.
fn raw_assertion(
    client: &KeyClient,
    header: serde_json::Value,
    claims: serde_json::Value,
) -> String {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &client.key,
        jsonwebtoken::Algorithm::ES256,
    )
    .expect("signature");
    format!("{signing_input}.{signature}")
}

#[tokio::test]
async fn assertions_with_an_unknown_critical_header_or_a_future_iat_are_refused() {
    let app = spawn_app().await;
    let client = key_client(&app).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |jti: &str, iat: i64| json!({"iss": client.id, "sub": client.id, "aud": app.issuer, "iat": iat, "exp": now + 60, "jti": jti});
    let header = json!({"alg": "ES256", "kid": "k1"});
    let critical = json!({"alg": "ES256", "kid": "k1", "crit": ["exp-policy"], "exp-policy": 1});

    // RFC 7515 §4.1.11: a `crit` extension the recipient does not understand makes the JWS
    // invalid; an `iat` from the future is not an assertion made now.
    for (what, bad) in [
        ("crit", raw_assertion(&client, critical, claims("d1", now))),
        ("iat an hour ahead", raw_assertion(&client, header.clone(), claims("d2", now + 3600))),
    ] {
        let (status, error, _) = status_and_error(with_assertion(&app, &bad).await).await;
        assert_eq!((status, error.as_str()), (401, "invalid_client"), "{what}");
    }
    let fine = raw_assertion(&client, header, claims("d3", now));
    assert_eq!(with_assertion(&app, &fine).await.status(), 200, "the same, well made");
}

#[tokio::test]
async fn a_rotated_secret_overlaps_its_successor_then_stops() {
    let app = spawn_app().await;
    let (id, old) = app.service_client("profile", &[]).await;

    let rotated = app
        .admin(
            reqwest::Method::POST,
            &format!("/admin/clients/{id}/secret"),
            Some(json!({"overlap_seconds": 2})),
        )
        .await;

    assert_eq!(rotated.status(), 200);
    let new = rotated.json::<serde_json::Value>().await.expect("JSON")["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert_ne!(new, old);
    let works = |secret: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.token_basic(&id, &secret, &[("grant_type", "client_credentials")]).await.status()
                == 200
        }
    };
    assert!(works(new.clone()).await, "the new secret works at once");
    assert!(works(old.clone()).await, "the old secret works during the overlap");
    assert!(
        eventually(Duration::from_secs(5), || works_not(&app, &id, &old)).await,
        "then it stops"
    );
    assert!(works(new).await);
}

async fn works_not(app: &TestApp, id: &str, secret: &str) -> bool {
    app.token_basic(id, secret, &[("grant_type", "client_credentials")]).await.status() == 401
}

#[tokio::test]
async fn a_rotation_without_overlap_ends_the_old_secret_at_once() {
    let app = spawn_app().await;
    let (id, old) = app.service_client("profile", &[]).await;

    let rotated =
        app.admin(reqwest::Method::POST, &format!("/admin/clients/{id}/secret"), None).await;

    assert_eq!(rotated.status(), 200);
    assert!(works_not(&app, &id, &old).await);
}

#[tokio::test]
async fn deleting_a_client_ends_its_secret_here_at_once_and_on_another_replica_within_5_s() {
    let app = spawn_app().await;
    let other = app.replica().await;
    let (id, secret) = app.service_client("profile", &[]).await;
    assert_eq!(
        other.token_basic(&id, &secret, &[("grant_type", "client_credentials")]).await.status(),
        200
    );

    let deleted = app.admin(reqwest::Method::DELETE, &format!("/admin/clients/{id}"), None).await;

    assert_eq!(deleted.status(), 204);
    assert!(works_not(&app, &id, &secret).await, "refused at once where it was deleted");
    assert!(
        eventually(Duration::from_secs(5), || works_not(&other, &id, &secret)).await,
        "refused on the other replica within 5 s"
    );
}

#[tokio::test]
async fn hostile_client_ids_are_invalid_client_not_server_errors() {
    let app = spawn_app().await;
    let long = "x".repeat(10_000);

    for id in ["nul\0byte", "with space", long.as_str(), "caf\u{e9}"] {
        let by_post = post_form(
            &app,
            &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", "s")],
        )
        .await;
        let by_basic = app.token_basic(id, "s", &[("grant_type", "client_credentials")]).await;
        for response in [by_post, by_basic] {
            assert_eq!(status_and_error(response).await.0, 401, "{:?}", &id[..id.len().min(12)]);
        }
    }
}

#[tokio::test]
async fn an_assertion_for_several_audiences_is_refused() {
    let app = spawn_app().await;
    let client = key_client(&app).await;
    let now = chrono::Utc::now().timestamp();
    let mut header = Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let claims = json!({
        "iss": client.id, "sub": client.id, "aud": [app.issuer, "https://elsewhere.example"],
        "iat": now, "exp": now + 60, "jti": "multi",
    });
    let multi = jsonwebtoken::encode(&header, &claims, &client.key).expect("assertion");

    let (status, error, _) = status_and_error(with_assertion(&app, &multi).await).await;

    assert_eq!((status, error.as_str()), (401, "invalid_client"));
}

#[tokio::test]
async fn concurrent_rotations_leave_exactly_one_new_secret() {
    let app = spawn_app().await;
    let (id, old) = app.service_client("profile", &[]).await;
    let path = format!("/admin/clients/{id}/secret");
    let rotate = || app.admin(reqwest::Method::POST, &path, None);

    let (a, b) = tokio::join!(rotate(), rotate());

    let mut works = 0;
    for response in [a, b] {
        assert_eq!(response.status(), 200);
        let secret = response.json::<serde_json::Value>().await.expect("JSON")["client_secret"]
            .as_str()
            .expect("secret")
            .to_owned();
        if !works_not(&app, &id, &secret).await {
            works += 1;
        }
    }
    assert_eq!(works, 1, "the later rotation ends the earlier one's secret");
    assert!(works_not(&app, &id, &old).await);
}

#[tokio::test]
async fn switching_away_from_secrets_and_back_never_revives_the_old_secret() {
    let app = spawn_app().await;
    let (id, old) = app.service_client("profile", &[]).await;
    let client = key_client(&app).await;
    let jwks = app
        .admin(reqwest::Method::GET, &format!("/admin/clients/{}", client.id), None)
        .await
        .json::<serde_json::Value>()
        .await
        .expect("JSON")["jwks"]
        .clone();
    let path = format!("/admin/clients/{id}");
    let put = |body: serde_json::Value| app.admin(reqwest::Method::PUT, &path, Some(body));

    let to_keys = put(json!({"grant_types": ["client_credentials"], "scope": "profile",
        "token_endpoint_auth_method": "private_key_jwt", "jwks": jwks}))
    .await;
    let back = put(json!({"grant_types": ["client_credentials"], "scope": "profile"})).await;

    assert_eq!(to_keys.status(), 200);
    assert_eq!(back.status(), 200);
    let new = back.json::<serde_json::Value>().await.expect("JSON")["client_secret"]
        .as_str()
        .expect("a new secret")
        .to_owned();
    assert!(works_not(&app, &id, &old).await, "the old secret stays dead");
    assert!(!works_not(&app, &id, &new).await, "the new secret works");
}
