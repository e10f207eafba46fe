//! Grant types, one file each, and the token response they share (RFC 6749 §5.1).

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod refresh_token;
pub mod token_exchange;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::Issuer;
use crate::error::OAuthError;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::client::Client;
use crate::oauth::client::GrantType;
use crate::oauth::id_token::{self, IdToken};
use crate::oauth::keyring::Keys;
use crate::oauth::refresh_token::{RefreshClaims, RefreshKeys};
use crate::oauth::scope::Scopes;
use crate::oauth::session::Amr;
use crate::store::refresh_tokens::{FamilyRecord, Origin};
use crate::store::users::UserRecord;
use crate::store::{self, Db};

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
        crate::oauth::gate::as_held_by(requested.intersection(&client.metadata.scope), user)
    }

    /// The tokens of a user's approval, redeemed once (a code, a device authorization): the
    /// access token, a refresh family with `offline_access`, an ID token with `openid` — if
    /// the user can still sign in, was not cut off since approving, and the grant stands.
    pub async fn user_tokens(
        &self,
        client: &Client,
        approved: Approved<'_>,
        resources: &[&str],
        proof: ProofKey<'_>,
    ) -> Result<TokenResponse, OAuthError> {
        let (user, grant_stands) =
            store::users::find_with_grant(self.db, approved.user_id, approved.grant_id)
                .await?
                .filter(|(u, _)| {
                    !u.disabled && u.tokens_not_before.is_none_or(|cut| cut < approved.approved_at)
                })
                .ok_or(OAuthError::InvalidGrant("the user can no longer sign in"))?;
        if !grant_stands {
            return Err(OAuthError::InvalidGrant("the grant was revoked"));
        }
        let requested = Scopes::parse(approved.scope)
            .map_err(|_| anyhow::anyhow!("a stored approval has a malformed scope"))?;
        let scope = Self::user_scope(&requested, client, &user);
        let audience = client_credentials::user_audience(self.issuer, client, resources, &scope)?;
        let offline =
            scope.contains("offline_access") && client.allows_grant(GrantType::RefreshToken);
        let lifetime = client.access_token_lifetime().min(self.max_lifetime);
        let (access_token, _) = access_token::issue(
            self.keys,
            Grant {
                issuer: self.issuer.as_str(),
                client_id: &client.client_id,
                subject: approved.user_id,
                audience,
                scope: &scope,
                lifetime,
                auth_time: Some(approved.auth_time.timestamp()),
                amr: approved.amr,
                grant_id: Some(approved.grant_id),
                family_id: offline.then_some(approved.family_id.as_str()),
                alg: client.metadata.access_token_alg,
                jti: Some(approved.access_jti.clone()),
                jkt: proof.map(|p| p.jkt.as_str()),
                act: None,
                not_after: None,
            },
        )?;
        let refresh_token = if offline {
            // RFC 9449 §5: a public client's refresh tokens are bound to its DPoP key (a
            // confidential client's are bound to its credentials already).
            let jkt = proof.filter(|_| client.is_public()).map(|p| p.jkt.as_str());
            Some(self.start_family(client, &approved, &scope, jkt).await?)
        } else {
            None
        };
        let id_token = self.id_token(
            client,
            &user,
            &scope,
            (approved.auth_time, approved.amr, approved.sid),
            approved.nonce,
            &access_token,
        )?;
        Ok(TokenResponse {
            access_token,
            token_type: token_type(proof),
            expires_in: lifetime.as_secs(),
            scope: scope.to_string(),
            refresh_token,
            id_token,
            issued_token_type: None,
        })
    }

    /// Issues the first refresh token of a new family, bound to client, user and grant,
    /// unless the approval's origin was replayed meanwhile.
    async fn start_family(
        &self,
        client: &Client,
        approved: &Approved<'_>,
        scope: &Scopes,
        jkt: Option<&str>,
    ) -> Result<String, OAuthError> {
        let now = Utc::now();
        let lifetimes = &client.metadata.lifetimes;
        let sliding = i64::from(
            lifetimes.refresh_token.unwrap_or(crate::oauth::client::DEFAULT_REFRESH_TOKEN_LIFETIME),
        );
        let absolute = i64::from(
            lifetimes
                .refresh_token_absolute
                .unwrap_or(crate::oauth::client::DEFAULT_REFRESH_TOKEN_ABSOLUTE_LIFETIME),
        );
        let family = FamilyRecord {
            id: approved.family_id.clone(),
            grant_id: approved.grant_id.to_owned(),
            client_id: client.client_id.clone(),
            user_id: approved.user_id.to_owned(),
            scope: scope.to_string(),
            auth_time: approved.auth_time,
            amr: approved.amr.map(Amr::as_stored),
            sid: approved.sid.map(str::to_owned),
            created_at: now,
            absolute_expires_at: now + chrono::Duration::seconds(absolute),
        };
        let jti = uuid::Uuid::new_v4().to_string();
        let expires_at = now + chrono::Duration::seconds(sliding.min(absolute));
        if !store::refresh_tokens::start_family(self.db, approved.origin, &family, &jti, expires_at)
            .await?
        {
            // A replay of the code got there first: what this redemption issued is revoked.
            return Err(OAuthError::InvalidGrant("the code is invalid, expired or already used"));
        }
        self.refresh_token(&family, &jti, expires_at, now, jkt)
    }

    /// An ID token when `openid` was granted (OIDC Core §3.1.3.3, §12.2), else none.
    pub fn id_token(
        &self,
        client: &Client,
        user: &UserRecord,
        scope: &Scopes,
        // When and how the user signed in (`amr` when known), and the session's `sid`.
        (auth_time, amr, sid): (DateTime<Utc>, Option<Amr>, Option<&str>),
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
                amr,
                sid,
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

/// A user's approval, redeemed once, and what its redemption will issue.
pub struct Approved<'a> {
    pub user_id: &'a str,
    pub grant_id: &'a str,
    /// The scope the user approved (narrowed at issuance to what client and user may hold).
    pub scope: &'a str,
    pub auth_time: DateTime<Utc>,
    /// How the user signed in, when known (a code records it; a device approval does not yet).
    pub amr: Option<Amr>,
    /// The `sid` of the session that signed in (a code records it; a device approval not).
    pub sid: Option<&'a str>,
    /// When the user approved: a cut-off since then (password reset, disabling) stops it.
    pub approved_at: DateTime<Utc>,
    pub nonce: Option<&'a str>,
    /// The access token's id, chosen before (a code records it when it is redeemed).
    pub access_jti: String,
    /// The refresh family's id, chosen before, used with `offline_access`.
    pub family_id: String,
    /// Where the approval comes from, whose row the family needs.
    pub origin: Origin<'a>,
}

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
