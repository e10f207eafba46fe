//! Grant types, one file each, and the token response they share (RFC 6749 §5.1).

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;
pub mod token_exchange;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Issuer;
use crate::error::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::id_token::{self, IdToken};
use crate::oauth::keyring::Keys;
use crate::oauth::refresh_token::{RefreshClaims, RefreshKeys};
use crate::oauth::scope::Scopes;
use crate::store::Db;
use crate::store::refresh_tokens::FamilyRecord;
use crate::store::users::UserRecord;

/// What issuing user tokens needs from the server.
pub struct Issuing<'a> {
    pub db: &'a Db,
    pub keys: &'a Keys,
    pub refresh_keys: &'a RefreshKeys,
    pub issuer: &'a Issuer,
    pub max_lifetime: Duration,
    pub revocations: &'a crate::oauth::revocation::Revocations,
}

impl Issuing<'_> {
    /// The refresh token (JWT) `jti` of `family`, expiring at `expires_at`, bound to the DPoP
    /// key `jkt` when the family is.
    pub fn refresh_token(
        &self,
        family: &FamilyRecord,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
        jkt: Option<&str>,
    ) -> Result<String, OAuthError> {
        Ok(self.refresh_keys.sign(&RefreshClaims {
            iss: self.issuer.as_str().to_owned(),
            sub: family.user_id.clone(),
            aud: self.issuer.as_str().to_owned(),
            exp: expires_at.timestamp(),
            iat: now.timestamp(),
            jti: jti.to_owned(),
            client_id: family.client_id.clone(),
            scope: family.scope.clone(),
            fid: family.id.clone(),
            gid: family.grant_id.clone(),
            auth_time: family.auth_time.timestamp(),
            jkt: jkt.map(str::to_owned),
        })?)
    }

    /// What of `requested` a user's token may carry now: only what the client is allowed
    /// now, and `admin` only for an administrator (docs/REFERENCE.md §5).
    pub fn user_scope(requested: &Scopes, client: &Client, user: &UserRecord) -> Scopes {
        let scope = requested.intersection(&client.metadata.scope);
        if user.admin { scope } else { scope.without(crate::oauth::gate::ADMIN_SCOPE) }
    }

    /// An ID token when `openid` was granted (OIDC Core §3.1.3.3, §12.2), else none.
    pub fn id_token(
        &self,
        client: &Client,
        user: &UserRecord,
        scope: &Scopes,
        auth_time: DateTime<Utc>,
        nonce: Option<&str>,
        access_token: &str,
    ) -> Result<Option<String>, OAuthError> {
        if !scope.contains("openid") {
            return Ok(None);
        }
        let token = id_token::issue(
            self.keys,
            IdToken {
                issuer: self.issuer.as_str(),
                client_id: &client.client_id,
                user,
                scope,
                auth_time: auth_time.timestamp(),
                nonce,
                access_token,
                lifetime: client.id_token_lifetime().min(self.max_lifetime),
                alg: client.metadata.id_token_alg,
            },
        )?;
        Ok(Some(token))
    }
}

/// The DPoP key a request proved it holds (RFC 9449 §5), which what it issues is bound to.
pub type ProofKey<'a> = Option<&'a crate::oauth::dpop::Proof>;

/// `DPoP` when the access token is bound, else `Bearer` (RFC 9449 §5).
pub fn token_type(proof: ProofKey<'_>) -> &'static str {
    if proof.is_some() { "DPoP" } else { "Bearer" }
}

/// What is bound to a DPoP key (a code, a refresh family) redeems only with a proof by that
/// key (RFC 9449 §5, §10): without one it is `invalid_dpop_proof` (`missing`), with another
/// key's `invalid_grant` (`other`).
pub fn require_key(
    bound: Option<&str>,
    proof: ProofKey<'_>,
    missing: &'static str,
    other: &'static str,
) -> Result<(), OAuthError> {
    match (bound, proof) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(OAuthError::InvalidDpopProof(missing)),
        (Some(bound), Some(proof)) if proof.jkt != bound => Err(OAuthError::InvalidGrant(other)),
        (Some(_), Some(_)) => Ok(()),
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// What a token exchange issued (RFC 8693 §2.2.1); other grants leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

/// Never a token in a log: only what kind of response it was.
impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |present: bool| if present { Some("[redacted]") } else { None };
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &redacted(self.refresh_token.is_some()))
            .field("id_token", &redacted(self.id_token.is_some()))
            .field("issued_token_type", &self.issued_token_type)
            .finish()
    }
}
