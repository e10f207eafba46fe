//! DPoP proofs at a resource (RFC 9449 §4.3, §7): a token bound to a key (`cnf.jkt`) is
//! accepted only with a fresh proof signed by that key, for this request and this token.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

/// The proof algorithms accepted (asymmetric only, §4.3 item 5).
pub const ALGORITHMS: [&str; 4] = ["ES256", "EdDSA", "PS256", "RS256"];
/// A proof is good this long after its `iat`...
const MAX_AGE_SECS: i64 = 60;
/// ...and from this long before it (clock skew).
const MAX_FUTURE_SECS: i64 = 10;
const MAX_PROOF_LEN: usize = 8 * 1024;
/// Proof ids remembered at most; past it the expired ones are dropped first.
const MAX_REMEMBERED: usize = 100_000;

/// Why a proof was refused (sent back as `invalid_dpop_proof`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidProof(pub &'static str);

/// What a proof must match.
pub struct Expected<'a> {
    pub method: &'a str,
    /// The request URL as the client addressed it (query and fragment are ignored).
    pub url: &'a str,
    pub access_token: &'a str,
    /// The thumbprint the token is bound to.
    pub jkt: &'a str,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
}

/// The ids of the proofs accepted by this process, so each is accepted once (§11.1). A
/// resource served by several processes keeps one memory per process.
#[derive(Default)]
pub struct Replays {
    seen: Mutex<HashMap<String, i64>>,
}

impl Replays {
    /// Records `id` until `forget_at`; false if it was already there.
    fn record(&self, id: String, forget_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, until| *until > now);
        }
        match seen.get(&id) {
            Some(until) if *until > now => false,
            _ => {
                seen.insert(id, forget_at);
                true
            }
        }
    }
}

/// Checks `proof` against `expected` and records its id.
pub fn check(proof: &str, expected: &Expected<'_>, replays: &Replays) -> Result<(), InvalidProof> {
    let invalid = InvalidProof;
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the proof is too large"));
    }
    let raw_header = proof
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice::<Map<String, Value>>(&h).ok())
        .ok_or(invalid("the proof header is malformed"))?;
    if raw_header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("the proof typ must be dpop+jwt"));
    }
    if raw_header.contains_key("crit") {
        return Err(invalid("the proof header has crit"));
    }
    let alg = raw_header.get("alg").and_then(Value::as_str).unwrap_or_default();
    if !ALGORITHMS.contains(&alg) {
        return Err(invalid("the proof algorithm is not accepted"));
    }
    let jwk = raw_header.get("jwk").and_then(Value::as_object).ok_or(invalid("no jwk"))?;
    // §4.3 item 6: a public key only.
    if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"].iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid("the proof jwk holds a private key"));
    }
    // The token's binding (§7.1): the proof's key is the one it is bound to.
    if thumbprint(jwk).as_deref() != Some(expected.jkt) {
        return Err(invalid("the proof key is not the token's"));
    }
    let parsed: jsonwebtoken::jwk::Jwk = serde_json::from_value(Value::Object(jwk.clone()))
        .map_err(|_| invalid("the proof jwk is malformed"))?;
    let key = DecodingKey::from_jwk(&parsed).map_err(|_| invalid("the proof jwk is unusable"))?;
    let algorithm: Algorithm = alg.parse().map_err(|_| invalid("unknown algorithm"))?;
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &validation)
        .map_err(|_| invalid("the proof signature or claims are invalid"))?
        .claims;
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(invalid("the proof jti is malformed"));
    }
    if claims.htm != expected.method {
        return Err(invalid("the proof htm does not match the request method"));
    }
    if !same_target(&claims.htu, expected.url) {
        return Err(invalid("the proof htu does not match the request URL"));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if !(-MAX_FUTURE_SECS..=MAX_AGE_SECS).contains(&(now - claims.iat)) {
        return Err(invalid("the proof iat is outside the accepted window"));
    }
    let ath = URL_SAFE_NO_PAD.encode(digest(&SHA256, expected.access_token.as_bytes()));
    if claims.ath.as_deref() != Some(ath.as_str()) {
        return Err(invalid("the proof ath does not match the access token"));
    }
    let forget_at = claims.iat + MAX_AGE_SECS + MAX_FUTURE_SECS;
    if !replays.record(format!("{}:{}", expected.jkt, claims.jti), forget_at, now) {
        return Err(invalid("the proof was already used"));
    }
    Ok(())
}

/// The RFC 7638 thumbprint of a public JWK (its required members, in lexicographic order).
fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    let member = |name: &str| jwk.get(name).and_then(Value::as_str);
    let canonical = match member("kty")? {
        "EC" => {
            serde_json::json!({"crv": member("crv")?, "kty": "EC", "x": member("x")?, "y": member("y")?})
        }
        "OKP" => serde_json::json!({"crv": member("crv")?, "kty": "OKP", "x": member("x")?}),
        "RSA" => serde_json::json!({"e": member("e")?, "kty": "RSA", "n": member("n")?}),
        _ => return None,
    };
    // serde_json writes object members sorted: the order RFC 7638 asks for.
    Some(URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.to_string().as_bytes())))
}

/// §4.3 item 9: `htu` names the request's URL, query and fragment aside.
fn same_target(htu: &str, url: &str) -> bool {
    let strip = |value: &str| {
        url::Url::parse(value).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        })
    };
    matches!((strip(htu), strip(url)), (Some(a), Some(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the example RSA key's thumbprint.
    #[test]
    fn thumbprint_matches_the_rfc_7638_example() {
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAt",
                "VT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn6",
                "4tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F",
                "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n9",
                "1CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINH",
                "aQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            ),
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29",
        });
        let map = jwk.as_object().expect("object");
        assert_eq!(thumbprint(map).as_deref(), Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"));
    }

    #[test]
    fn htu_ignores_query_and_fragment_and_default_ports() {
        assert!(same_target("https://api.example/orders?x=1", "https://api.example/orders"));
        assert!(same_target("https://API.example:443/orders", "https://api.example/orders"));
        assert!(!same_target("https://api.example/orders/1", "https://api.example/orders"));
        assert!(!same_target("http://api.example/orders", "https://api.example/orders"));
    }

    #[test]
    fn a_proof_id_is_accepted_once_until_it_is_forgotten() {
        let replays = Replays::default();
        assert!(replays.record("k:1".into(), 100, 10));
        assert!(!replays.record("k:1".into(), 100, 50));
        assert!(replays.record("k:1".into(), 200, 150), "forgotten after its window");
    }
}
