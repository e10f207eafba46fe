//! JWT access tokens (RFC 9068): issued with the key ring, and verified the way a careful
//! resource server does (RFC 8725): algorithm from our key, never from the token.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::jwk::Algorithm;
use super::keyring::{KeyError, Keys, LEEWAY};
use super::scope::Scopes;
use super::session::Amr;

/// The `typ` header of an access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";

/// RFC 9068 §2.2 claims, plus `auth_time` for tokens issued to a user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// How the user signed in (RFC 8176) and the assurance it reached (RFC 9068 §2.2.1),
    /// when known: a resource server may ask for more (RFC 9470).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The grant a user's token was issued under (revoking the grant ends the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    /// The refresh-token family it came from, if any (revoking the family ends the token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<String>,
    /// The key the token is bound to (RFC 9449 §6.1): only a proof by it opens a resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Who acts for `sub` in a token from a token exchange (RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// Who may act for `sub` (RFC 8693 §4.4). Castellan never issues it; token exchange
    /// honours it where a subject token carries it (`delegation::may_act`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_act: Option<serde_json::Value>,
}

/// The actor claim (RFC 8693 §4.1): the current actor, with the prior ones nested inside.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Actor {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Actor>>,
}

/// The confirmation claim (RFC 7800 §3.1) of a DPoP-bound token: its key's thumbprint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: String,
}

impl AccessClaims {
    /// The thumbprint of the key the token is bound to, if it is.
    pub fn jkt(&self) -> Option<&str> {
        self.cnf.as_ref().map(|c| c.jkt.as_str())
    }

    /// `DPoP` for a bound token, `Bearer` otherwise (RFC 9449 §5, §6.2).
    pub fn token_type(&self) -> &'static str {
        if self.cnf.is_some() { "DPoP" } else { "Bearer" }
    }
}

/// One audience as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn new(mut values: Vec<String>) -> Self {
        if values.len() == 1 { Self::One(values.remove(0)) } else { Self::Many(values) }
    }

    pub fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(v) => v == value,
            Self::Many(vs) => vs.iter().any(|v| v == value),
        }
    }
}

/// What a new access token is for.
pub struct Grant<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    pub audience: Vec<String>,
    pub scope: &'a Scopes,
    pub lifetime: Duration,
    pub auth_time: Option<i64>,
    /// How the user signed in, when known.
    pub amr: Option<Amr>,
    pub grant_id: Option<&'a str>,
    pub family_id: Option<&'a str>,
    /// The client's `access_token_signed_response_alg`.
    pub alg: Algorithm,
    /// The token's id, chosen by the caller when it must be recorded before the token exists.
    pub jti: Option<String>,
    /// The thumbprint of the DPoP key the token is bound to, if any.
    pub jkt: Option<&'a str>,
    /// The actor chain of a token from a token exchange (RFC 8693 §4.1).
    pub act: Option<Actor>,
    /// The latest `exp` it may have, whatever its lifetime: a token from a token exchange
    /// never outlives its subject token.
    pub not_after: Option<i64>,
}

/// Signs a new access token; returns it with its claims.
pub fn issue(keys: &Keys, grant: Grant<'_>) -> Result<(String, AccessClaims), KeyError> {
    let iat = chrono::Utc::now().timestamp();
    let lifetime = i64::try_from(grant.lifetime.as_secs()).map_err(anyhow::Error::from)?;
    let claims = AccessClaims {
        iss: grant.issuer.to_owned(),
        sub: grant.subject.to_owned(),
        aud: Audience::new(grant.audience),
        exp: grant.not_after.map_or(iat + lifetime, |cap| (iat + lifetime).min(cap)),
        iat,
        jti: grant.jti.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        client_id: grant.client_id.to_owned(),
        scope: grant.scope.to_string(),
        auth_time: grant.auth_time,
        acr: grant.amr.map(|amr| amr.level().acr().to_owned()),
        amr: grant.amr.map(|amr| amr.values().iter().map(|v| (*v).to_owned()).collect()),
        gid: grant.grant_id.map(str::to_owned),
        fid: grant.family_id.map(str::to_owned),
        cnf: grant.jkt.map(|jkt| Confirmation { jkt: jkt.to_owned() }),
        act: grant.act,
        may_act: None,
    };
    let token = keys.sign(grant.alg, TYP, &claims)?;
    Ok((token, claims))
}

/// Why a presented access token is refused. The messages are fixed, safe to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Malformed,
    WrongType,
    UnknownKey,
    Invalid,
    Expired,
}

impl Rejected {
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the token is malformed",
            Self::WrongType => "the token is not an access token",
            Self::UnknownKey => "the token is signed by an unknown key",
            Self::Invalid => "the token signature or claims are invalid",
            Self::Expired => "the token has expired",
        }
    }
}

/// Verifies an access token issued by this server (for `audience`, when given): `typ at+jwt`,
/// a `kid` of the key ring, that key's own algorithm, `iss`, `aud`, `exp` (5 s leeway).
pub fn verify(
    keys: &Keys,
    issuer: &str,
    audience: Option<&str>,
    token: &str,
) -> Result<AccessClaims, Rejected> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| Rejected::Malformed)?;
    // RFC 9068 §4: the typ must be at+jwt (or its full media type).
    let typ = header.typ.as_deref().map(str::to_ascii_lowercase);
    if !matches!(typ.as_deref(), Some("at+jwt") | Some("application/at+jwt")) {
        return Err(Rejected::WrongType);
    }
    let kid = header.kid.as_deref().ok_or(Rejected::UnknownKey)?;
    let verifier = keys.verifier(kid).ok_or(Rejected::UnknownKey)?;
    let mut validation = jsonwebtoken::Validation::new(verifier.alg);
    validation.leeway = LEEWAY.as_secs();
    // RFC 7519 §4.1.5: a token is not accepted before its `nbf` (when it has one).
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    match audience {
        Some(audience) => validation.set_audience(&[audience]),
        // Introspection answers for every audience; `aud` must still be present.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&["exp", "iat", "iss", "sub", "aud"]);
    jsonwebtoken::decode::<AccessClaims>(token, &verifier.key, &validation)
        .map(|data| data.claims)
        .map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => Rejected::Expired,
            _ => Rejected::Invalid,
        })
}
