//! Compact JWS signing (RFC 7515 §7.1) with a key pair parsed once and kept in memory.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::jwk::Algorithm;

/// A private key ready to sign: decrypted and parsed once, never per token.
pub struct Signer {
    kid: String,
    alg: Algorithm,
    pair: RsaKeyPair,
    rng: SystemRandom,
}

/// The protected header of every JWT the ring signs.
#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'a str,
    kid: &'a str,
}

impl Signer {
    pub fn from_pkcs8(kid: String, alg: Algorithm, pkcs8: &[u8]) -> anyhow::Result<Self> {
        let pair = RsaKeyPair::from_pkcs8(pkcs8)
            .map_err(|e| anyhow::anyhow!("the private key of {kid} does not parse: {e}"))?;
        Ok(Self { kid, alg, pair, rng: SystemRandom::new() })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Algorithm {
        self.alg
    }

    /// Signs `claims` as a compact JWS whose header carries `typ` and this key's `kid`.
    pub fn sign<C: Serialize>(&self, typ: &str, claims: &C) -> anyhow::Result<String> {
        let header = serde_json::to_vec(&Header { alg: self.alg.as_str(), typ, kid: &self.kid })?;
        let payload = serde_json::to_vec(claims)?;
        let mut token = String::with_capacity(
            (header.len() + payload.len() + self.pair.public_modulus_len()) * 4 / 3 + 8,
        );
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let mut signature = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, token.as_bytes(), &mut signature)
            .map_err(|_| anyhow::anyhow!("RS256 signing failed"))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::jwk;

    #[test]
    fn a_signed_token_verifies_with_the_public_jwk_alone() {
        let key = jwk::generate(Algorithm::RS256).expect("key");
        let signer = Signer::from_pkcs8(key.kid.clone(), key.alg, &key.pkcs8).expect("signer");
        let token = signer.sign("at+jwt", &serde_json::json!({"sub": "x"})).expect("sign");

        let decoding = jsonwebtoken::DecodingKey::from_rsa_components(&key.public.n, &key.public.e)
            .expect("jwk");
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
            .expect("valid");
        assert_eq!(decoded.header.kid.as_deref(), Some(key.kid.as_str()));
        assert_eq!(decoded.header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(decoded.claims["sub"], "x");
    }
}
