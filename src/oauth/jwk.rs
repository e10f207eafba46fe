//! RSA signing keys: generation with the `rsa` crate, public JWKs and RFC 7638 thumbprints.

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};

/// Modulus size of every RSA key the ring generates (SPEC §7: at least 2048).
pub const RSA_BITS: usize = 2048;

/// The JWS algorithms the key ring signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Algorithm {
    RS256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "RS256" => Some(Self::RS256),
            _ => None,
        }
    }
}

/// The public members of an RSA JWK (RFC 7517 §4, RFC 7518 §6.3.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RsaPublicJwk {
    pub n: String,
    pub e: String,
}

impl RsaPublicJwk {
    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, self.e, self.n);
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
    }
}

/// A freshly generated key: its public JWK, its kid and its private PKCS#8 document.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: Algorithm,
    pub public: RsaPublicJwk,
    pub pkcs8: Zeroizing<Vec<u8>>,
}

/// Generates an RSA key pair; CPU-heavy (tens to hundreds of ms), so callers run it off the
/// async executor. The kid is the RFC 7638 thumbprint, so a kid never names two keys.
pub fn generate(alg: Algorithm) -> anyhow::Result<GeneratedKey> {
    let Algorithm::RS256 = alg;
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)?;
    let public = RsaPublicJwk {
        n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    };
    let document = key.to_pkcs8_der()?;
    Ok(GeneratedKey {
        kid: public.thumbprint(),
        alg,
        public,
        pkcs8: Zeroizing::new(document.as_bytes().to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the example key and its SHA-256 thumbprint.
    #[test]
    fn thumbprint_matches_the_rfc_7638_example() {
        let jwk = RsaPublicJwk {
            n: concat!(
                "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAt",
                "VT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn6",
                "4tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F",
                "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n9",
                "1CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINH",
                "aQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            )
            .into(),
            e: "AQAB".into(),
        };
        assert_eq!(jwk.thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn generated_keys_are_2048_bit_with_distinct_kids() {
        let first = generate(Algorithm::RS256).expect("key");
        let second = generate(Algorithm::RS256).expect("key");
        assert_ne!(first.kid, second.kid);
        let modulus = URL_SAFE_NO_PAD.decode(&first.public.n).expect("base64url n");
        assert_eq!(modulus.len() * 8, RSA_BITS);
        assert_eq!(first.public.e, "AQAB");
    }
}
