//! ID tokens (OpenID Connect Core §2, §3.1.3.6): who signed in, for which client, when; plus
//! the profile and email claims the granted scopes allow.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, SHA512, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use super::session::Amr;

use super::jwk::Algorithm;
use super::keyring::{KeyError, Keys};
use super::scope::Scopes;
use crate::store::users::UserRecord;

/// `at_hash`: base64url of the left half of a hash of the access token.
/// OIDC Core §3.1.3.6: the left half of the hash the token's `alg` uses (SHA-256 for RS256,
/// PS256 and ES256; SHA-512 for Ed25519, whose signature hashes with it).
pub fn at_hash(alg: Algorithm, access_token: &str) -> String {
    let hash = match alg {
        Algorithm::EdDSA => digest(&SHA512, access_token.as_bytes()),
        Algorithm::RS256 | Algorithm::PS256 | Algorithm::ES256 => {
            digest(&SHA256, access_token.as_bytes())
        }
    };
    let hash = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&hash[..hash.len() / 2])
}

/// The user claims a set of scopes releases (OIDC Core §5.4), with `sub` always.
#[derive(Debug, Serialize, PartialEq)]
pub struct UserClaims {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl UserClaims {
    pub fn new(user: &UserRecord, scope: &Scopes) -> Self {
        let profile = scope.contains("profile");
        let email = scope.contains("email") && user.email.is_some();
        Self {
            sub: user.id.clone(),
            name: user.name.clone().filter(|_| profile),
            preferred_username: profile.then(|| user.username.clone()),
            updated_at: profile.then(|| user.updated_at.timestamp()),
            email: user.email.clone().filter(|_| email),
            email_verified: email.then_some(user.email_verified),
        }
    }
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    /// RFC 8176: how the user signed in, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    amr: Option<Vec<&'static str>>,
    /// OIDC Core §2: the assurance that sign-in reached (`session::Level`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<&'static str>,
    /// Back-Channel Logout §2.1: the session the user signed in with, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(flatten)]
    user: UserClaims,
}

/// What an ID token states.
pub struct IdToken<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub user: &'a UserRecord,
    pub scope: &'a Scopes,
    pub auth_time: i64,
    /// How the user signed in, when known.
    pub amr: Option<Amr>,
    /// The session's `sid`, when known.
    pub sid: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub access_token: &'a str,
    pub lifetime: Duration,
    /// The client's `id_token_signed_response_alg`.
    pub alg: Algorithm,
}

/// Signs an ID token with the key ring's active key of the client's algorithm (RS256 unless
/// it registered another; OIDC Core §15.1 requires RS256 of every OP).
pub fn issue(keys: &Keys, token: IdToken<'_>) -> Result<String, KeyError> {
    let iat = chrono::Utc::now().timestamp();
    let claims = IdClaims {
        iss: token.issuer,
        aud: token.client_id,
        exp: iat + i64::try_from(token.lifetime.as_secs()).unwrap_or(600),
        iat,
        auth_time: token.auth_time,
        amr: token.amr.map(Amr::values),
        acr: token.amr.map(|amr| amr.level().acr()),
        sid: token.sid,
        nonce: token.nonce,
        at_hash: at_hash(token.alg, token.access_token),
        user: UserClaims::new(token.user, token.scope),
    };
    keys.sign(token.alg, "JWT", &claims)
}

/// What a verified `id_token_hint` says (OIDC Core §3.1.2.1, RP-Initiated Logout §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub sub: String,
    /// The client(s) it was issued to.
    pub aud: Vec<String>,
}

/// Verifies an ID token this server issued, as a hint: its signature by one of our published
/// keys with that key's own algorithm, and its issuer. It may have expired. An `alg: none`,
/// foreign or access token is no hint.
pub fn verify_hint(keys: &Keys, issuer: &str, hint: &str) -> Option<Hint> {
    #[derive(serde::Deserialize)]
    struct Claims {
        sub: String,
        aud: super::access_token::Audience,
    }
    let header = jsonwebtoken::decode_header(hint).ok()?;
    // RFC 8725 §3.11: our ID tokens say `typ: JWT`; anything else (an access token's
    // at+jwt above all) is not one.
    if !header.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("JWT")) {
        return None;
    }
    let verifier = keys.verifier(header.kid.as_deref()?)?;
    let mut validation = jsonwebtoken::Validation::new(verifier.alg);
    validation.validate_exp = false;
    validation.validate_nbf = true;
    validation.leeway = super::keyring::LEEWAY.as_secs();
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<Claims>(hint, &verifier.key, &validation).ok()?.claims;
    let aud = match claims.aud {
        super::access_token::Audience::One(a) => vec![a],
        super::access_token::Audience::Many(a) => a,
    };
    Some(Hint { sub: claims.sub, aud })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// OpenID Connect Core 1.0 Appendix A: the example access token and its at_hash.
    #[test]
    fn at_hash_matches_the_oidc_core_example() {
        assert_eq!(
            at_hash(Algorithm::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
