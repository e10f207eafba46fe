//! The JWK Set: public members only, unique kids, cache lifetime, and verifiability.

use castellan::oauth::jwk::Algorithm;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};

use crate::helpers::{all_kids, spawn_app, spawn_app_with};

const PRIVATE_MEMBERS: [&str; 6] = ["d", "p", "q", "dp", "dq", "qi"];

#[tokio::test]
async fn jwks_carries_no_private_member_and_unique_kids() {
    let app = spawn_app().await;

    let jwks = app.jwks().await;

    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 8, "the active and the published next key of four algorithms");
    for key in keys {
        for member in PRIVATE_MEMBERS {
            assert!(key.get(member).is_none(), "private member {member} published");
        }
        assert_eq!(key["use"], "sig");
        let members: Vec<&str> =
            key.as_object().expect("object").keys().map(String::as_str).collect();
        match key["alg"].as_str().expect("alg") {
            "RS256" | "PS256" => {
                assert_eq!(key["kty"], "RSA");
                assert!(key["n"].as_str().is_some_and(|n| n.len() >= 342), "a 2048-bit modulus");
                assert_eq!(key["e"], "AQAB");
                assert_eq!(members.len(), 6, "{members:?}");
            }
            "ES256" => {
                assert_eq!(key["kty"], "EC");
                assert_eq!(key["crv"], "P-256");
                assert_eq!(key["x"].as_str().map(str::len), Some(43));
                assert_eq!(key["y"].as_str().map(str::len), Some(43));
                assert_eq!(members.len(), 7, "{members:?}");
            }
            "EdDSA" => {
                assert_eq!(key["kty"], "OKP");
                assert_eq!(key["crv"], "Ed25519");
                assert_eq!(key["x"].as_str().map(str::len), Some(43));
                assert_eq!(members.len(), 6, "{members:?}");
            }
            other => panic!("unexpected alg {other}"),
        }
    }
    let mut unique = all_kids(&jwks);
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
async fn a_jwt_signed_by_each_active_key_verifies_with_only_the_published_jwk() {
    let app = spawn_app().await;
    let claims = serde_json::json!({"iss": app.issuer, "sub": "s", "exp": 4_000_000_000u64});
    let jwks = app.jwks().await;

    for alg in Algorithm::ALL {
        let token = app.keys.sign(alg, "at+jwt", &claims).expect("sign");

        let header = jsonwebtoken::decode_header(&token).expect("header");
        assert_eq!(header.alg, alg.verification());
        let jwk = published(&jwks, &header.kid.expect("kid in header"));
        assert_eq!(jwk["alg"], alg.as_str());
        let key = decoding_key(jwk);
        let mut validation = Validation::new(alg.verification());
        validation.set_issuer(&[&app.issuer]);
        validation.validate_aud = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation)
            .expect("the token verifies with the published JWK");
        assert_eq!(decoded.claims["iss"], app.issuer.as_str());
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    }
}

#[tokio::test]
async fn a_tampered_jwt_does_not_verify_with_the_published_jwk() {
    let app = spawn_app().await;
    let jwks = app.jwks().await;

    for alg in Algorithm::ALL {
        let claims = serde_json::json!({"sub": "a", "exp": 4_000_000_000u64});
        let token = app.keys.sign(alg, "at+jwt", &claims).expect("sign");
        let forged_payload = base64_url(br#"{"sub":"b","exp":4000000000}"#);
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);

        let kid = jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
        let key = decoding_key(published(&jwks, &kid));
        let validation = Validation::new(alg.verification());
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).is_ok());
        assert!(jsonwebtoken::decode::<serde_json::Value>(&forged, &key, &validation).is_err());
    }
}

fn published<'a>(jwks: &'a serde_json::Value, kid: &str) -> &'a serde_json::Value {
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("the signing key is published")
}

fn decoding_key(jwk: &serde_json::Value) -> DecodingKey {
    let jwk: Jwk = serde_json::from_value(jwk.clone()).expect("a JWK");
    DecodingKey::from_jwk(&jwk).expect("a usable JWK")
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
