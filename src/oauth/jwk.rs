//! Signing keys: RSA generated with the `rsa` crate, P-256 and Ed25519 with aws-lc-rs; their
//! public JWKs and RFC 7638 thumbprints.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};

/// Modulus size of every RSA key the ring generates (docs/REFERENCE.md §7: at least 2048).
pub const RSA_BITS: usize = 2048;

/// The JWS algorithms the key ring signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum Algorithm {
    RS256,
    ES256,
    EdDSA,
    /// RSASSA-PSS with SHA-256 (RFC 7518 §3.5), the RSA algorithm FAPI 2.0 allows.
    PS256,
}

impl Algorithm {
    /// Every algorithm the ring keeps keys for; RS256 first, the default.
    pub const ALL: [Algorithm; 4] = [Self::RS256, Self::ES256, Self::EdDSA, Self::PS256];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::PS256 => "PS256",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == value)
    }

    /// The same algorithm as `jsonwebtoken` names it, for verification.
    pub fn verification(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Self::PS256 => jsonwebtoken::Algorithm::PS256,
        }
    }
}

/// The public members of a JWK (RFC 7517 §4): RSA (RFC 7518 §6.3.1), EC P-256 (§6.2.1) or
/// an Ed25519 octet key pair (RFC 8037 §2). Stored as JSON without `kty`, which the members
/// imply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PublicJwk {
    Rsa { n: String, e: String },
    Ec { crv: String, x: String, y: String },
    Okp { crv: String, x: String },
}

impl PublicJwk {
    pub fn kty(&self) -> &'static str {
        match self {
            Self::Rsa { .. } => "RSA",
            Self::Ec { .. } => "EC",
            Self::Okp { .. } => "OKP",
        }
    }

    /// The RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order
    /// (RFC 8037 §2 for OKP).
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            Self::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            Self::Ec { crv, x, y } => {
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            Self::Okp { crv, x } => format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#),
        };
        URL_SAFE_NO_PAD.encode(digest(&SHA256, canonical.as_bytes()))
    }

    /// The published JWK: `kty`, `use`, `alg`, `kid` and the public members.
    pub fn published(&self, kid: &str, alg: Algorithm) -> serde_json::Value {
        let mut jwk = serde_json::json!({
            "kty": self.kty(),
            "use": "sig",
            "alg": alg.as_str(),
            "kid": kid,
        });
        if let (Some(map), Ok(serde_json::Value::Object(members))) =
            (jwk.as_object_mut(), serde_json::to_value(self))
        {
            map.extend(members);
        }
        jwk
    }

    /// A verification key for tokens signed with this key.
    pub fn decoding_key(&self) -> Result<jsonwebtoken::DecodingKey, jsonwebtoken::errors::Error> {
        match self {
            Self::Rsa { n, e } => jsonwebtoken::DecodingKey::from_rsa_components(n, e),
            Self::Ec { x, y, .. } => jsonwebtoken::DecodingKey::from_ec_components(x, y),
            Self::Okp { x, .. } => jsonwebtoken::DecodingKey::from_ed_components(x),
        }
    }
}

/// A freshly generated key: its public JWK, its kid and its private PKCS#8 document.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: Algorithm,
    pub public: PublicJwk,
    pub pkcs8: Zeroizing<Vec<u8>>,
}

/// Generates a key pair for `alg`. RSA is CPU-heavy (tens to hundreds of ms), so callers run
/// it off the async executor. The kid is the RFC 7638 thumbprint, so a kid never names two
/// keys.
pub fn generate(alg: Algorithm) -> anyhow::Result<GeneratedKey> {
    let unspecified = |what: &str| anyhow::anyhow!("generating the {what} key failed");
    let (public, pkcs8) = match alg {
        // One RSA key per algorithm: a key is published for one `alg` only.
        Algorithm::RS256 | Algorithm::PS256 => {
            let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, RSA_BITS)?;
            let public = PublicJwk::Rsa {
                n: URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
                e: URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
            };
            (public, key.to_pkcs8_der()?.as_bytes().to_vec())
        }
        Algorithm::ES256 => {
            let rng = SystemRandom::new();
            let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| unspecified("P-256"))?;
            let pair =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, document.as_ref())
                    .map_err(|_| unspecified("P-256"))?;
            // SEC 1 uncompressed point: 0x04 || X || Y, 32 bytes each.
            let point = pair.public_key().as_ref();
            anyhow::ensure!(point.len() == 65 && point[0] == 4, "unexpected P-256 point");
            let public = PublicJwk::Ec {
                crv: "P-256".into(),
                x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                y: URL_SAFE_NO_PAD.encode(&point[33..]),
            };
            (public, document.as_ref().to_vec())
        }
        Algorithm::EdDSA => {
            let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| unspecified("Ed25519"))?;
            let pair = Ed25519KeyPair::from_pkcs8(document.as_ref())
                .map_err(|_| unspecified("Ed25519"))?;
            let public = PublicJwk::Okp {
                crv: "Ed25519".into(),
                x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            };
            (public, document.as_ref().to_vec())
        }
    };
    Ok(GeneratedKey { kid: public.thumbprint(), alg, public, pkcs8: Zeroizing::new(pkcs8) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1: the example key and its SHA-256 thumbprint.
    #[test]
    fn thumbprint_matches_the_rfc_7638_example() {
        let jwk = PublicJwk::Rsa {
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
        let PublicJwk::Rsa { n, e } = &first.public else { panic!("an RSA key") };
        let modulus = URL_SAFE_NO_PAD.decode(n).expect("base64url n");
        assert_eq!(modulus.len() * 8, RSA_BITS);
        assert_eq!(e, "AQAB");
    }

    /// RFC 8037 Appendix A.3: the Ed25519 example key's thumbprint.
    #[test]
    fn okp_thumbprint_matches_the_rfc_8037_example() {
        let jwk = PublicJwk::Okp {
            crv: "Ed25519".into(),
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
        };
        assert_eq!(jwk.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn ec_and_okp_keys_round_trip_through_their_stored_json() {
        for alg in [Algorithm::ES256, Algorithm::EdDSA] {
            let key = generate(alg).expect("key");
            let stored = serde_json::to_string(&key.public).expect("json");
            let back: PublicJwk = serde_json::from_str(&stored).expect("parse");
            assert_eq!(back, key.public);
            assert_eq!(back.thumbprint(), key.kid);
            back.decoding_key().expect("usable verification key");
        }
    }
}
