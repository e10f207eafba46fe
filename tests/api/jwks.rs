//! The JWK Set: public members only, unique kids, cache lifetime, and verifiability.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::helpers::{kids, spawn_app, spawn_app_with};

const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

#[tokio::test]
async fn jwks_carries_no_private_member_and_unique_kids() {
    let app = spawn_app().await;

    let jwks = app.jwks().await;

    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2, "the active key and the published next key");
    for key in keys {
        for member in PRIVATE_MEMBERS {
            assert!(key.get(member).is_none(), "private member {member} published");
        }
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "RS256");
        assert!(key["n"].as_str().is_some_and(|n| n.len() >= 342), "a 2048-bit modulus");
        assert_eq!(key["e"], "AQAB");
    }
    let mut unique = kids(&jwks);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), keys.len());
}

#[tokio::test]
async fn jwks_is_cacheable_no_longer_than_its_setting() {
    let app = spawn_app_with(|s| s.jwks_max_age = std::time::Duration::from_secs(120)).await;

    let response = app.get("/jwks").await;

    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"].to_str().expect("ascii");
    assert_eq!(cache, "public, max-age=120");
    assert!(
        response.headers()["content-type"].to_str().expect("ascii").starts_with("application/")
    );
}

#[tokio::test]
async fn a_jwt_signed_by_the_active_key_verifies_with_only_the_published_jwk() {
    let app = spawn_app().await;
    let claims = serde_json::json!({"iss": app.issuer, "sub": "s", "exp": 4_000_000_000u64});
    let token = app.keys.sign("at+jwt", &claims).expect("sign");

    let jwks = app.jwks().await;

    let header = jsonwebtoken::decode_header(&token).expect("header");
    let kid = header.kid.expect("kid in header");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the signing key is published");
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("JWK");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&app.issuer]);
    validation.validate_aud = false;
    let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
        .expect("the token verifies with the published JWK");
    assert_eq!(decoded.claims["iss"], app.issuer.as_str());
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
}

#[tokio::test]
async fn a_tampered_jwt_does_not_verify_with_the_published_jwk() {
    let app = spawn_app().await;
    let token = app
        .keys
        .sign("at+jwt", &serde_json::json!({"sub": "a", "exp": 4_000_000_000u64}))
        .expect("sign");
    let forged_payload = base64_url(br#"{"sub":"b","exp":4000000000}"#);
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

    let jwks = app.jwks().await;

    let jwk = &jwks["keys"][0];
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("JWK");
    let validation = Validation::new(Algorithm::RS256);
    assert!(jsonwebtoken::decode::<serde_json::Value>(&forged, &key, &validation).is_err());
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
