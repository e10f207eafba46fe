//! Revoking tokens (RFC 7009) and deciding whether one is still active (RFC 7662), against
//! state every replica reads from the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::access_token::AccessClaims;
use super::keyring::LEEWAY;
use super::verdicts::Verdicts;
use crate::store::{self, Db, StoreError};

/// Revokes a refresh-token family: its refresh tokens, and (for as long as any can live) the
/// access tokens issued from it.
pub async fn revoke_family(
    db: &Db,
    verdicts: &Verdicts,
    family_id: &str,
    max_token_lifetime: Duration,
) -> Result<u64, StoreError> {
    let revoked = store::refresh_tokens::revoke_family(db, family_id).await?;
    let until =
        Utc::now() + chrono::Duration::from_std(max_token_lifetime + LEEWAY).unwrap_or_default();
    store::revocations::revoke(db, store::revocations::FAMILY, family_id, until).await?;
    verdicts.forget_all();
    Ok(revoked)
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
}

impl Introspection {
    pub const INACTIVE: Introspection = Introspection { active: false, facts: None };
}

/// What introspection and revocation need from the server.
pub struct Context<'a> {
    pub db: &'a Db,
    pub keys: &'a super::keyring::Keys,
    pub refresh_keys: &'a super::refresh_token::RefreshKeys,
    pub registry: &'a super::registry::Registry,
    pub issuer: &'a str,
    pub max_token_lifetime: Duration,
    pub verdicts: &'a Verdicts,
}

/// Whether `token` is active for `caller` (RFC 7662 §2.2). Whatever `token_type_hint` says,
/// both kinds are tried. Any storage failure is an error, never `active: true`.
pub async fn introspect(
    ctx: &Context<'_>,
    caller: &str,
    token: &str,
) -> Result<Introspection, StoreError> {
    if let Some(claims) = ctx.verdicts.get(token) {
        return Ok(active_access(&claims));
    }
    if let Some(claims) = ctx.refresh_keys.verify(ctx.issuer, token) {
        // Refresh tokens are the business of the client they were issued to alone.
        if claims.client_id != caller || !refresh_is_live(ctx, &claims).await? {
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
            }),
        });
    }
    let generation = ctx.verdicts.generation();
    let Ok(claims) = super::access_token::verify(ctx.keys, ctx.issuer, None, token) else {
        return Ok(Introspection::INACTIVE);
    };
    if !access_is_live(ctx, &claims).await? {
        return Ok(Introspection::INACTIVE);
    }
    let claims = Arc::new(claims);
    ctx.verdicts.put(token, claims.clone(), generation);
    Ok(active_access(&claims))
}

fn active_access(claims: &AccessClaims) -> Introspection {
    Introspection {
        active: true,
        facts: Some(TokenFacts {
            scope: claims.scope.clone(),
            client_id: claims.client_id.clone(),
            sub: claims.sub.clone(),
            exp: claims.exp,
            iat: claims.iat,
            iss: claims.iss.clone(),
            aud: serde_json::to_value(&claims.aud).unwrap_or_default(),
            jti: claims.jti.clone(),
            token_type: "Bearer",
        }),
    }
}

/// Whether a verified access token still stands: its jti and family not revoked, its client
/// there, and for a user's token its grant standing and its user enabled.
pub async fn access_is_live(
    ctx: &Context<'_>,
    claims: &super::access_token::AccessClaims,
) -> Result<bool, StoreError> {
    if store::revocations::any_revoked(ctx.db, store::revocations::JTI, &[&claims.jti]).await? {
        return Ok(false);
    }
    if let Some(family) = &claims.fid
        && store::revocations::any_revoked(ctx.db, store::revocations::FAMILY, &[family]).await?
    {
        return Ok(false);
    }
    if ctx.registry.find(ctx.db, &claims.client_id).await?.is_none() {
        return Ok(false);
    }
    match &claims.gid {
        // A user's token: its grant must stand and its user be enabled.
        Some(grant) => user_grant_stands(ctx, grant, &claims.sub).await,
        None => Ok(true),
    }
}

async fn refresh_is_live(
    ctx: &Context<'_>,
    claims: &super::refresh_token::RefreshClaims,
) -> Result<bool, StoreError> {
    let Some(stored) = store::refresh_tokens::find(ctx.db, &claims.jti).await? else {
        return Ok(false);
    };
    let now = Utc::now();
    if stored.status != "active"
        || stored.record.expires_at <= now
        || stored.record.absolute_expires_at <= now
    {
        return Ok(false);
    }
    if ctx.registry.find(ctx.db, &claims.client_id).await?.is_none() {
        return Ok(false);
    }
    user_grant_stands(ctx, &stored.record.grant_id, &stored.record.user_id).await
}

async fn user_grant_stands(
    ctx: &Context<'_>,
    grant_id: &str,
    user_id: &str,
) -> Result<bool, StoreError> {
    if store::grants::find(ctx.db, grant_id).await?.is_none() {
        return Ok(false);
    }
    Ok(store::users::find(ctx.db, user_id).await?.is_some_and(|u| !u.disabled))
}

/// Revokes `token` if it is `caller`'s (RFC 7009 §2.1): a refresh token takes its family with
/// it; an access token is remembered as revoked until it expires. Anything else (unknown,
/// malformed, another client's) is left alone; the caller gets 200 all the same.
pub async fn revoke(ctx: &Context<'_>, caller: &str, token: &str) -> Result<(), StoreError> {
    if let Some(claims) = ctx.refresh_keys.verify(ctx.issuer, token) {
        if claims.client_id == caller {
            revoke_family(ctx.db, ctx.verdicts, &claims.fid, ctx.max_token_lifetime).await?;
        }
        return Ok(());
    }
    if let Ok(claims) = super::access_token::verify(ctx.keys, ctx.issuer, None, token)
        && claims.client_id == caller
    {
        let until = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now)
            + chrono::Duration::from_std(LEEWAY).unwrap_or_default();
        store::revocations::revoke(ctx.db, store::revocations::JTI, &claims.jti, until).await?;
        ctx.verdicts.forget_all();
    }
    Ok(())
}
