//! DPoP proofs for the load (RFC 9449 §4.2): one ES256 key per virtual user, a fresh proof
//! (new `jti`, `iat` now) for every request, signed on the client's side of the clock.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use crate::http::{self, Target};

/// A P-256 key and the base64url proof header that names it.
pub struct ProofKey {
    pair: EcdsaKeyPair,
    header: String,
    rng: SystemRandom,
}

impl ProofKey {
    pub fn generate() -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        let failed = |_| anyhow::anyhow!("generating a P-256 key failed");
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(failed)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())
            .map_err(|_| anyhow::anyhow!("parsing a P-256 key failed"))?;
        let point = pair.public_key().as_ref();
        let jwk = json!({"kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
        let header = json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        Ok(Self { pair, header: URL_SAFE_NO_PAD.encode(header.to_string()), rng })
    }

    /// A proof for `POST {target}/token`.
    pub fn proof(&self, target: &Target) -> String {
        let claims = json!({
            "jti": uuid::Uuid::new_v4().to_string(),
            "htm": "POST",
            "htu": format!("http://{}/token", target.host),
            "iat": chrono::Utc::now().timestamp(),
        });
        let mut jws = format!("{}.{}", self.header, URL_SAFE_NO_PAD.encode(claims.to_string()));
        // Signing a few hundred bytes with a valid key cannot fail; an empty signature would
        // only make the server refuse the proof, which the load reports.
        let signature = self
            .pair
            .sign(&self.rng, jws.as_bytes())
            .map(|s| s.as_ref().to_vec())
            .unwrap_or_default();
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        jws
    }

    /// `POST /token` with `grant_type=client_credentials`, HTTP Basic and a fresh proof.
    pub fn client_credentials_request(&self, target: &Target, basic: &str) -> Vec<u8> {
        let proof = self.proof(target);
        let headers = [("Authorization", basic), ("DPoP", proof.as_str())];
        http::post_form(target, "/token", &headers, &[("grant_type", "client_credentials")])
    }
}
