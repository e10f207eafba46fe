//! What RFC 9068 asks of a resource server checking a JWT access token, and nothing it does
//! not: `typ` `at+jwt` (§4 step 1, RFC 8725 §3.11), the signature by a key of the issuer with
//! that key's algorithm (§4 step 3, RFC 8725 §3.1), `iss` (§4 step 2), `aud` (§4 step 4),
//! `exp` and `nbf` with a small leeway (§4 step 5), and the claims §2.2 makes required.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Validation;
use serde::{Deserialize, Serialize};

use crate::keys::{ALGORITHMS, KeyStore};

/// The claims of a verified access token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user, or for a service token the client itself.
    pub sub: String,
    pub client_id: String,
    #[serde(deserialize_with = "audience")]
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    /// Space-separated, as issued; see [`Claims::scopes`] and [`Claims::has_scope`].
    #[serde(default)]
    pub scope: String,
    /// When the user signed in (OIDC Core §2), for tokens issued to a user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The acting party of a token obtained by exchange (RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// The key the token is bound to (RFC 9449 §6: `jkt`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// `cnf` (RFC 7800): the thumbprint of the DPoP key a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

impl Claims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}

fn audience<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Why a token was refused; the description is safe to send back (it names no secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidToken(pub &'static str);

/// The checks of one issuer and audience.
pub struct Verifier {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) leeway: Duration,
    pub(crate) keys: std::sync::Arc<KeyStore>,
}

/// The largest token looked at; anything longer is refused unread.
const MAX_TOKEN_LEN: usize = 16 * 1024;

impl Verifier {
    pub async fn verify(&self, token: &str) -> Result<Claims, InvalidToken> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(InvalidToken("the token is too long"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| InvalidToken("the token is not a signed JWT"))?;
        // RFC 9068 §4: typ at+jwt (or its media type), so no other JWT of the issuer (an ID
        // token above all) passes as an access token.
        let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
        if !matches!(typ.as_deref(), Some("at+jwt" | "application/at+jwt")) {
            return Err(InvalidToken("the token is not an access token (typ at+jwt)"));
        }
        // RFC 7515 §4.1.11: no extension the guard would have to understand.
        if has_crit(token) {
            return Err(InvalidToken("the token has a crit header"));
        }
        if !ALGORITHMS.contains(&header.alg) {
            return Err(InvalidToken("the token's algorithm is not accepted"));
        }
        let kid = header.kid.as_deref().ok_or(InvalidToken("the token names no key (kid)"))?;
        let key = self.keys.key(kid).await.ok_or(InvalidToken("the token's key is unknown"))?;
        // The key's algorithm, never the header's alone: a public key never becomes a MAC key.
        if header.alg != key.algorithm {
            return Err(InvalidToken("the token's algorithm is not its key's"));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["iss", "exp", "aud", "sub", "iat", "jti"]);
        jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map(|d| d.claims).map_err(
            |e| {
                use jsonwebtoken::errors::ErrorKind as Kind;
                InvalidToken(match e.kind() {
                    Kind::ExpiredSignature => "the token has expired",
                    Kind::ImmatureSignature => "the token is not valid yet",
                    Kind::InvalidIssuer => "the token is from another issuer",
                    Kind::InvalidAudience => "the token is not meant for this API",
                    Kind::InvalidSignature => "the token's signature is invalid",
                    Kind::MissingRequiredClaim(_) | Kind::Json(_) => {
                        "the token lacks a required claim"
                    }
                    _ => "the token is invalid",
                })
            },
        )
    }
}

/// Whether the JOSE header of `jwt` has a `crit` member.
pub(crate) fn has_crit(jwt: &str) -> bool {
    let Some(encoded) = jwt.split('.').next() else { return true };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(encoded) else { return true };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .map_or(true, |header| header.contains_key("crit"))
}
