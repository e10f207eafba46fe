//! `grant_type=refresh_token` (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14): every use rotates
//! the token; presenting a rotated one again revokes its whole family.

use std::time::Duration;

use chrono::Utc;

use super::Issuing;
use super::TokenResponse;
use super::client_credentials::audience;
use crate::error::OAuthError;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::client::{Client, DEFAULT_REFRESH_TOKEN_LIFETIME, GrantType};
use crate::oauth::revocation;
use crate::oauth::scope::Scopes;
use crate::store;

const INVALID: OAuthError =
    OAuthError::InvalidGrant("the refresh token is invalid, expired or already used");

/// The parameters of a refresh_token request.
pub struct Request<'a> {
    pub refresh_token: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub resources: Vec<&'a str>,
    /// See `Settings::refresh_reuse_grace`.
    pub reuse_grace: Duration,
}

pub async fn exchange(
    ctx: &Issuing<'_>,
    client: &Client,
    request: Request<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::RefreshToken) {
        return Err(OAuthError::UnauthorizedClient(
            "the client is not registered for this grant type",
        ));
    }
    let presented =
        request.refresh_token.ok_or(OAuthError::InvalidRequest("refresh_token is required"))?;
    let claims = ctx.refresh_keys.verify(ctx.issuer.as_str(), presented).ok_or(INVALID)?;
    // RFC 6749 §6: bound to the client it was issued to (no revocation: the caller is not it).
    if claims.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant("the refresh token was issued to another client"));
    }
    // The token's signed claims carry its family's scope: everything is checked before the
    // rotation, so a bad request never consumes the token.
    let family_scope = Scopes::parse(&claims.scope).map_err(|_| INVALID)?;
    // RFC 6749 §6: a narrower scope is fine; the refresh token keeps the family's.
    let scope = match request.scope {
        None => family_scope.clone(),
        Some(value) => {
            let requested =
                Scopes::parse(value).map_err(|_| OAuthError::InvalidScope("malformed scope"))?;
            if !requested.is_subset_of(&family_scope) {
                return Err(OAuthError::InvalidScope(
                    "the scope is wider than the refresh token's",
                ));
            }
            requested
        }
    };
    let audience = audience(ctx.issuer, client, &request.resources)?;
    let now = Utc::now();
    let sliding = i64::from(
        client.metadata.lifetimes.refresh_token.unwrap_or(DEFAULT_REFRESH_TOKEN_LIFETIME),
    );
    let successor_jti = uuid::Uuid::new_v4().to_string();
    // RFC 9700 §4.14.2: rotation; exactly one of concurrent uses wins.
    let rotated = store::refresh_tokens::rotate(
        ctx.db,
        &claims.jti,
        &successor_jti,
        now,
        now + chrono::Duration::seconds(sliding),
    )
    .await?;
    let Some(successor) = rotated else {
        return Err(refused(ctx, &claims.jti, request.reuse_grace).await?);
    };
    let lifetime = client.access_token_lifetime().min(ctx.max_lifetime);
    let (access_token, _) = access_token::issue(
        ctx.keys,
        Grant {
            issuer: ctx.issuer.as_str(),
            client_id: &client.client_id,
            subject: &successor.user_id,
            audience,
            scope: &scope,
            lifetime,
            auth_time: Some(successor.auth_time.timestamp()),
            grant_id: Some(&successor.grant_id),
            family_id: Some(&successor.family_id),
            alg: client.metadata.access_token_alg,
        },
    )?;
    let refresh_token = ctx.refresh_token(&successor, now)?;
    // OIDC Core §12.2: a fresh ID token, same iss, sub and aud, new iat, original auth_time.
    let id_token = if scope.contains("openid") {
        let user = store::users::find(ctx.db, &successor.user_id).await?.ok_or(INVALID)?;
        ctx.id_token(client, &user, &scope, successor.auth_time, None, &access_token)?
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime.as_secs(),
        scope: scope.to_string(),
        refresh_token: Some(refresh_token),
        id_token,
    })
}

/// The rotation refused the token. Rotated moments ago, this use merely lost a race (the
/// winner's chain lives on); rotated earlier, it is a replay of a stolen or leaked token, and
/// the whole family goes (RFC 9700 §4.14.2). Still active, its grant or user went away (or it
/// expired): the family goes too, so nothing of it outlives what it was granted under.
async fn refused(ctx: &Issuing<'_>, jti: &str, grace: Duration) -> Result<OAuthError, OAuthError> {
    let Some(current) = store::refresh_tokens::find(ctx.db, jti).await? else { return Ok(INVALID) };
    let family = &current.record.family_id;
    let grace = chrono::Duration::from_std(grace).unwrap_or_default();
    let now = Utc::now();
    let replayed = current.status == "used" && current.used_at.is_some_and(|at| now - at > grace);
    let orphaned = current.status == "active" && {
        let user = store::users::find(ctx.db, &current.record.user_id).await?;
        let grant = store::grants::find(ctx.db, &current.record.grant_id).await?;
        !(user.is_some_and(|u| !u.disabled) && grant.is_some())
    };
    if replayed || orphaned {
        let revoked =
            revocation::revoke_family(ctx.db, ctx.verdicts, family, ctx.max_lifetime).await?;
        if replayed {
            tracing::warn!(client_id = %current.record.client_id, family = %family, revoked, "refresh token reuse: family revoked");
        }
    }
    Ok(INVALID)
}
