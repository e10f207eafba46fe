//! Refresh tokens: JWTs only this server reads, so they are MACed (HS256) under a key derived
//! from the master key — fast, and shared by every replica. `typ` `rt+jwt` and the HS256
//! algorithm keep them from ever passing as access tokens (those are RS256 `at+jwt`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::keyring::LEEWAY;

pub const TYP: &str = "rt+jwt";

/// The claims of a refresh token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RefreshClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// The family: every refresh token descended from one authorization.
    pub fid: String,
    /// The grant it was issued under.
    pub gid: String,
    pub auth_time: i64,
    /// The DPoP key a public client's family is bound to (RFC 9449 §5): every refresh needs a
    /// proof by it. Carried from token to token, so the binding holds for the family's life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jkt: Option<String>,
}

/// The MAC keys of refresh tokens.
pub struct RefreshKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl RefreshKeys {
    pub fn new(secret: &[u8]) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    pub fn sign(&self, claims: &RefreshClaims) -> anyhow::Result<String> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TYP.into());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// The claims of a refresh token this server issued to `issuer`, if its MAC, `typ`,
    /// audience and expiry check out.
    pub fn verify(&self, issuer: &str, token: &str) -> Option<RefreshClaims> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some(TYP) {
            return None;
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[issuer]);
        jsonwebtoken::decode::<RefreshClaims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> RefreshClaims {
        let now = chrono::Utc::now().timestamp();
        RefreshClaims {
            iss: "https://as.example".into(),
            sub: "user".into(),
            aud: "https://as.example".into(),
            exp: now + 60,
            iat: now,
            jti: "j".into(),
            client_id: "c".into(),
            scope: "offline_access".into(),
            fid: "f".into(),
            gid: "g".into(),
            auth_time: now,
            jkt: None,
        }
    }

    #[test]
    fn a_refresh_token_verifies_with_its_own_key_only() {
        let keys = RefreshKeys::new(&[1; 32]);
        let token = keys.sign(&claims()).expect("sign");
        assert_eq!(keys.verify("https://as.example", &token), Some(claims()));
        assert_eq!(RefreshKeys::new(&[2; 32]).verify("https://as.example", &token), None);
        assert_eq!(keys.verify("https://other.example", &token), None);
    }
}
