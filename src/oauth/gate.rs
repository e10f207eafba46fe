//! The one gate for presented tokens (docs/REFERENCE.md §4): every bearer-protected route
//! (the admin API, UserInfo) admits a token through `Gate::admit`, which adds the DPoP binding
//! (RFC 9449 §7) to the liveness check introspection shares, so no route can forget a check.
//! Also introspection's and revocation's rules for both kinds of token (RFC 7662, RFC 7009).

use std::sync::Arc;

use chrono::Utc;

use super::access_token::{self, AccessClaims, Actor, Audience, Confirmation, Rejected};
use super::client::Client;
use super::dpop::{Expected, ProofError, Proofs, Replays};
use super::keyring::Keys;
use super::refresh_token::RefreshKeys;
use super::registry::Registry;
use super::revocation::{Revocation, Revocations};
use super::scope::Scopes;
use super::verified::Verified;
use crate::store::{self, Db, StoreError};

/// The scope that opens the admin API.
pub const ADMIN_SCOPE: &str = "admin";

/// What of `scope` `user` may hold: `admin` only for an administrator (docs/REFERENCE.md §5.8).
pub fn as_held_by(scope: Scopes, user: &crate::store::users::UserRecord) -> Scopes {
    if user.admin { scope } else { scope.without(ADMIN_SCOPE) }
}

/// Which audiences a route takes (docs/REFERENCE.md §4, the audience rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audiences {
    /// Only tokens whose one audience is the issuer (the admin API): a token that also names
    /// another API could be replayed by that API's server.
    SoleIssuer,
    /// Tokens that list the issuer among their audiences (UserInfo).
    Issuer,
    /// Any audience (introspection, which then asks whether the caller may see it).
    Any,
}

/// The authentication scheme a token was presented with (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

/// An access token as a request presented it.
pub struct Presented<'a> {
    pub token: &'a str,
    pub scheme: Scheme,
    /// The request's `DPoP` header, if it had one.
    pub proof: Option<&'a str>,
    /// The request's method and path, which a proof must name (`htm`, and `htu` under the
    /// issuer).
    pub method: &'a str,
    pub path: &'a str,
}

/// A token that passed the gate.
#[derive(Debug, Clone)]
pub struct Admitted {
    pub claims: Arc<AccessClaims>,
    pub client: Arc<Client>,
    /// The token's scope as it stands now: within what its client is allowed now, and with
    /// `admin` only while its user (for a user's token) holds the administrator flag.
    pub scope: Scopes,
}

impl Admitted {
    /// Whether the token was issued to a user (it carries its grant), not to a client alone.
    pub fn is_users(&self) -> bool {
        self.claims.gid.is_some()
    }
}

/// Why the gate refused a token.
#[derive(Debug)]
pub enum Refused {
    /// Not a valid access token of ours for this route: the reason is safe to send.
    Invalid(&'static str),
    /// Valid once, but revoked (or its client, grant or user is gone).
    Revoked,
    /// The DPoP proof a bound token came with failed (RFC 9449 §7.1).
    Proof(ProofError),
    /// The revoked state could not be checked: never a pass.
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<Rejected> for Refused {
    fn from(r: Rejected) -> Self {
        Self::Invalid(r.description())
    }
}

/// What deciding about tokens needs from the server.
pub struct Gate<'a> {
    pub db: &'a Db,
    pub keys: &'a Keys,
    pub refresh_keys: &'a RefreshKeys,
    pub issuer: &'a str,
    pub registry: &'a Registry,
    pub revocations: &'a Revocations,
    pub verified: &'a Verified,
    pub proofs: &'a Proofs,
    pub replays: &'a Replays,
}

impl Gate<'_> {
    /// Admits a presented access token for a resource route taking `audiences`: it must be
    /// live (see `live`), and a DPoP-bound one must come with the DPoP scheme and a proof by
    /// its key for this very request and token (RFC 9449 §7.1); a bound token presented as
    /// a bearer token is refused (§7.2), as is an unbound one presented as DPoP.
    pub async fn admit(
        &self,
        presented: &Presented<'_>,
        audiences: Audiences,
    ) -> Result<Admitted, Refused> {
        let admitted = self.live(presented.token, audiences).await?;
        match (admitted.claims.jkt(), presented.scheme) {
            (None, Scheme::Bearer) => {}
            (None, Scheme::Dpop) => {
                return Err(Refused::Invalid("the token is not DPoP-bound: present it as Bearer"));
            }
            (Some(_), Scheme::Bearer) => {
                return Err(Refused::Invalid("the token is DPoP-bound: present it as DPoP"));
            }
            (Some(bound), Scheme::Dpop) => {
                let proof = presented
                    .proof
                    .ok_or(Refused::Proof(ProofError::Invalid("a DPoP proof is required")))?;
                let url = format!("{}{}", self.issuer, presented.path);
                let expected = Expected {
                    method: presented.method,
                    url: &url,
                    access_token: Some(presented.token),
                };
                let proof = self
                    .proofs
                    .accept(self.replays, proof, &expected)
                    .await
                    .map_err(Refused::Proof)?;
                if proof.jkt != bound {
                    return Err(Refused::Invalid("the DPoP proof key is not the token's"));
                }
            }
        }
        Ok(admitted)
    }

    /// Whether an access token presented as a parameter stands: a token exchange's
    /// `subject_token` or `actor_token` (RFC 8693 §2.1). The checks of `live` for any audience;
    /// no DPoP proof, since the token is not the request's credential (the resource server
    /// it was presented to checked its proof). The caller decides which audience it needs.
    pub async fn subject(&self, token: &str) -> Result<Admitted, Refused> {
        self.live(token, Audiences::Any).await
    }

    /// Whether an access token stands for a route taking `audiences`: signature with a key of our
    /// ring and that key's algorithm, `typ` at+jwt, `iss`, `exp`/`nbf` (RFC 9068 §4, RFC 8725),
    /// the audience, and liveness (revoked `jti`, family, grant, client, user cut-off) from
    /// memory. Reads the database only for a client missing from the registry's cache and
    /// for a user's token carrying `admin` (is its user still an administrator?).
    async fn live(&self, token: &str, audiences: Audiences) -> Result<Admitted, Refused> {
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(access_token::verify(self.keys, self.issuer, None, token)?);
                self.verified.put(token, claims.clone());
                claims
            }
        };
        let audience_ok = match audiences {
            Audiences::SoleIssuer => {
                matches!(&claims.aud, Audience::One(a) if a == self.issuer)
                    || matches!(&claims.aud, Audience::Many(all) if all.len() == 1 && all[0] == self.issuer)
            }
            Audiences::Issuer => claims.aud.contains(self.issuer),
            Audiences::Any => true,
        };
        if !audience_ok {
            return Err(Refused::Invalid("the token is not meant for this resource"));
        }
        // A replica that could not read the log for too long answers 503, never a verdict
        // from old state (a revocation made elsewhere may be missing).
        if self.revocations.is_stale() {
            return Err(Refused::Store(StoreError::stale("the revocation log")));
        }
        if !self.revocations.is_live(&claims) {
            return Err(Refused::Revoked);
        }
        let client =
            self.registry.find(self.db, &claims.client_id).await?.ok_or(Refused::Revoked)?;
        let granted =
            Scopes::parse(&claims.scope).map_err(|_| Refused::Invalid("the token is malformed"))?;
        let mut scope = granted.intersection(&client.metadata.scope);
        if claims.gid.is_some() && scope.contains(ADMIN_SCOPE) {
            let user = store::users::find(self.db, &claims.sub).await?;
            if !user.is_some_and(|u| u.admin && !u.disabled) {
                scope = scope.without(ADMIN_SCOPE);
            }
        }
        Ok(Admitted { claims, client, scope })
    }

    /// Whether `token` is active for `caller` (RFC 7662 §2.2), whatever `token_type_hint`
    /// says. An access token is described only to its own client or to a client serving one
    /// of its audiences (RFC 7662 §4); a refresh token only to its own client. Any storage
    /// failure is an error, never `active: true`.
    pub async fn introspect(
        &self,
        caller: &Client,
        token: &str,
    ) -> Result<Introspection, StoreError> {
        if let Some(claims) = self.refresh_keys.verify(self.issuer, token) {
            if claims.client_id != caller.client_id {
                return Ok(Introspection::INACTIVE);
            }
            let Some(stored) = store::refresh_tokens::find(self.db, &claims.jti).await? else {
                return Ok(Introspection::INACTIVE);
            };
            let client_stands = self.registry.find(self.db, &claims.client_id).await?.is_some();
            if !stored.stands(Utc::now()) || !client_stands {
                return Ok(Introspection::INACTIVE);
            }
            return Ok(Introspection {
                active: true,
                facts: Some(TokenFacts {
                    scope: claims.scope,
                    client_id: claims.client_id,
                    sub: claims.sub,
                    exp: claims.exp,
                    iat: claims.iat,
                    iss: claims.iss,
                    aud: serde_json::Value::String(claims.aud),
                    jti: claims.jti,
                    token_type: "refresh_token",
                    cnf: claims.jkt.map(|jkt| Confirmation { jkt }),
                    act: None,
                    auth_time: None,
                    acr: None,
                    amr: None,
                }),
            });
        }
        let admitted = match self.live(token, Audiences::Any).await {
            Ok(admitted) => admitted,
            Err(Refused::Store(e) | Refused::Proof(ProofError::Store(e))) => return Err(e),
            Err(_) => return Ok(Introspection::INACTIVE),
        };
        let claims = &admitted.claims;
        let serves = |aud: &str| caller.metadata.served_resources.iter().any(|r| r == aud);
        let entitled = claims.client_id == caller.client_id
            || match &claims.aud {
                Audience::One(aud) => serves(aud),
                Audience::Many(all) => all.iter().any(|aud| serves(aud)),
            };
        if !entitled {
            return Ok(Introspection::INACTIVE);
        }
        Ok(Introspection {
            active: true,
            facts: Some(TokenFacts {
                scope: admitted.scope.to_string(),
                client_id: claims.client_id.clone(),
                sub: claims.sub.clone(),
                exp: claims.exp,
                iat: claims.iat,
                iss: claims.iss.clone(),
                aud: serde_json::to_value(&claims.aud).unwrap_or_default(),
                jti: claims.jti.clone(),
                token_type: claims.token_type(),
                cnf: claims.cnf.clone(),
                act: claims.act.clone(),
                auth_time: claims.auth_time,
                acr: claims.acr.clone(),
                amr: claims.amr.clone(),
            }),
        })
    }

    /// Revokes `token` if it is `caller`'s (RFC 7009 §2.1): a refresh token takes its family
    /// with it; an access token is revoked until it expires. Anything else (unknown,
    /// malformed, another client's) is left alone; the caller gets 200 all the same.
    pub async fn revoke(&self, caller: &str, token: &str) -> Result<(), StoreError> {
        if let Some(claims) = self.refresh_keys.verify(self.issuer, token) {
            if claims.client_id == caller {
                self.revocations.revoke(self.db, Revocation::Family(&claims.fid), None).await?;
            }
            return Ok(());
        }
        if let Ok(claims) = access_token::verify(self.keys, self.issuer, None, token)
            && claims.client_id == caller
        {
            let expires_at =
                chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
            let revocation = Revocation::AccessToken { jti: &claims.jti, expires_at };
            self.revocations.revoke(self.db, revocation, None).await?;
        }
        Ok(())
    }
}

/// An introspection answer (RFC 7662 §2.2): `{"active": false}` alone, or the token's facts.
#[derive(Debug, serde::Serialize, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub facts: Option<TokenFacts>,
}

#[derive(Debug, serde::Serialize, PartialEq, Eq)]
pub struct TokenFacts {
    pub scope: String,
    pub client_id: String,
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: serde_json::Value,
    pub jti: String,
    pub token_type: &'static str,
    /// The key a DPoP-bound token is bound to (RFC 9449 §6.2): a resource server checks the
    /// proof it came with against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// Who acts for `sub` in a token from a token exchange (RFC 8693 §4.1, §7.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
    /// When and how the user signed in, for a user's access token (RFC 9068 §2.2.1): a
    /// resource server may demand more (RFC 9470).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
}

impl Introspection {
    pub const INACTIVE: Introspection = Introspection { active: false, facts: None };
}
