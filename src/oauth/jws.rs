//! Compact JWS signing (RFC 7515 §7.1) with a key pair parsed once and kept in memory.
//!
//! Parsing is the expensive part `jsonwebtoken::encode` repeats for every token: it builds
//! an `RsaKeyPair` from DER (with its consistency checks) per signature. Here a key is parsed
//! once, when the ring loads it, and signing is the signature alone.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::jwk::Algorithm;

/// A private key ready to sign: decrypted and parsed once, never per token.
pub struct Signer {
    kid: String,
    pair: Pair,
    rng: SystemRandom,
}

enum Pair {
    Rsa(RsaKeyPair),
    /// RSASSA-PSS (RFC 7518 §3.5: MGF1 with SHA-256, a 32-byte salt).
    RsaPss(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
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
        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            anyhow::anyhow!("the private key of {kid} does not parse: {e}")
        };
        let pair = match alg {
            Algorithm::RS256 => Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?),
            Algorithm::PS256 => Pair::RsaPss(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?),
            Algorithm::ES256 => Pair::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(rejected)?,
            ),
            Algorithm::EdDSA => Pair::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?),
        };
        Ok(Self { kid, pair, rng: SystemRandom::new() })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> Algorithm {
        match self.pair {
            Pair::Rsa(_) => Algorithm::RS256,
            Pair::RsaPss(_) => Algorithm::PS256,
            Pair::Ecdsa(_) => Algorithm::ES256,
            Pair::Ed25519(_) => Algorithm::EdDSA,
        }
    }

    /// Signs `claims` as a compact JWS whose header carries `typ` and this key's `kid`.
    pub fn sign<C: Serialize>(&self, typ: &str, claims: &C) -> anyhow::Result<String> {
        let header = Header { alg: self.alg().as_str(), typ, kid: &self.kid };
        let header = serde_json::to_vec(&header)?;
        let payload = serde_json::to_vec(claims)?;
        // base64url of header and payload, two dots, and a signature of at most 256 bytes.
        let mut token = String::with_capacity((header.len() + payload.len() + 256) * 4 / 3 + 8);
        URL_SAFE_NO_PAD.encode_string(&header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let failed = || anyhow::anyhow!("{} signing failed", self.alg().as_str());
        let signature = match &self.pair {
            Pair::Rsa(pair) | Pair::RsaPss(pair) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                    if matches!(self.pair, Pair::Rsa(_)) {
                        &RSA_PKCS1_SHA256
                    } else {
                        &RSA_PSS_SHA256
                    };
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(padding, &self.rng, token.as_bytes(), &mut signature)
                    .map_err(|_| failed())?;
                signature
            }
            // RFC 7518 §3.4: R || S, 32 bytes each (the "fixed" encoding, not DER).
            Pair::Ecdsa(pair) => {
                pair.sign(&self.rng, token.as_bytes()).map_err(|_| failed())?.as_ref().to_vec()
            }
            Pair::Ed25519(pair) => pair.sign(token.as_bytes()).as_ref().to_vec(),
        };
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
        for alg in Algorithm::ALL {
            let key = jwk::generate(alg).expect("key");
            let signer = Signer::from_pkcs8(key.kid.clone(), key.alg, &key.pkcs8).expect("signer");
            assert_eq!(signer.alg(), alg);
            let token = signer.sign("at+jwt", &serde_json::json!({"sub": "x"})).expect("sign");

            let decoding = key.public.decoding_key().expect("jwk");
            let mut validation = jsonwebtoken::Validation::new(alg.verification());
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            let decoded = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation)
                .expect("valid");
            assert_eq!(decoded.header.alg, alg.verification());
            assert_eq!(decoded.header.kid.as_deref(), Some(key.kid.as_str()));
            assert_eq!(decoded.header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(decoded.claims["sub"], "x");
        }
    }
}
