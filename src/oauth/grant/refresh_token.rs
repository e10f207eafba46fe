//! `grant_type=refresh_token` (RFC 6749 §6, OAuth 2.1 §4.3, RFC 9700 §4.14): every use rotates
//! the token, unless the client's `refresh_token_rotation` is off; presenting a rotated one
//! again revokes its whole family.

use std::time::Duration;

use chrono::Utc;

use super::Issuing;
use super::client_credentials::user_audience;
use super::{ProofKey, TokenResponse, require_key, token_type};
use crate::error::OAuthError;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::audit::{Actor, Event, EventType};
use crate::oauth::client::{Client, DEFAULT_REFRESH_TOKEN_LIFETIME, GrantType};
use crate::oauth::gate::ADMIN_SCOPE;
use crate::oauth::revocation::Revocation;
use crate::oauth::scope::Scopes;
use crate::oauth::session::Amr;
use crate::store;
use crate::store::refresh_tokens::Status;

const INVALID: OAuthError =
    OAuthError::InvalidGrant("the refresh token is invalid, expired or already used");

/// The parameters of a refresh_token request.
pub struct Request<'a> {
    pub refresh_token: Option<&'a str>,
    pub scope: Option<&'a str>,
    pub resources: Vec<&'a str>,
    /// See `Settings::refresh_reuse_grace`.
    pub reuse_grace: Duration,
    /// The key of the request's DPoP proof.
    pub proof: ProofKey<'a>,
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
    // RFC 9449 §5: a family bound to a key refreshes only with a proof by that key.
    require_key(
        claims.jkt.as_deref(),
        request.proof,
        "the refresh token is DPoP-bound",
        "the DPoP proof key is not the refresh token's",
    )?;
    // A client no longer allowed offline access holds no refresh token that works.
    if !client.metadata.scope.contains("offline_access") {
        return Err(INVALID);
    }
    // The token's signed claims carry its family's scope: everything is checked before the
    // rotation, so a bad request never consumes the token.
    let family_scope = Scopes::parse(&claims.scope).map_err(|_| INVALID)?;
    // RFC 6749 §6: a narrower scope is fine; the refresh token keeps the family's.
    let requested = match request.scope {
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
    let now = Utc::now();
    let sliding = i64::from(
        client.metadata.lifetimes.refresh_token.unwrap_or(DEFAULT_REFRESH_TOKEN_LIFETIME),
    );
    let sliding_expiry = now + chrono::Duration::seconds(sliding);
    let rotated = if client.metadata.refresh_token_rotation {
        // RFC 9700 §4.14.2: rotation; exactly one of concurrent uses wins.
        let successor_jti = uuid::Uuid::new_v4().to_string();
        store::refresh_tokens::rotate(ctx.db, &claims.jti, &successor_jti, now, sliding_expiry)
            .await?
    } else {
        // RFC 9700 §4.14.2 lets a sender-constrained client keep its token: the same jti,
        // with its sliding expiry renewed.
        store::refresh_tokens::keep(ctx.db, &claims.jti, now, sliding_expiry).await?
    };
    let Some(rotated) = rotated else {
        return Err(refused(ctx, &claims.jti, request.reuse_grace).await?);
    };
    let family = &rotated.family;
    // How the user signed in when the family started (unknown for one from before it was
    // recorded): the refreshed tokens say the same.
    let amr = Amr::recorded(family.amr.as_deref());
    // What the token may carry now: the family's scope as far as the grant still holds it
    // and the client is still allowed it (a narrowed client narrows what it holds).
    let grant_scope = Scopes::parse(&rotated.grant_scope).map_err(|_| INVALID)?;
    let held = requested.intersection(&grant_scope).intersection(&client.metadata.scope);
    // The rotation returned the user with the family: no other read.
    let user = (held.contains("openid") || held.contains(ADMIN_SCOPE)).then_some(&rotated.user);
    let scope = match &user {
        Some(user) => Issuing::user_scope(&held, client, user),
        None => held,
    };
    let audience = user_audience(ctx.issuer, client, &request.resources, &scope)?;
    let lifetime = client.access_token_lifetime().min(ctx.max_lifetime);
    let (access_token, _) = access_token::issue(
        ctx.keys,
        Grant {
            issuer: ctx.issuer.as_str(),
            client_id: &client.client_id,
            subject: &family.user_id,
            audience,
            scope: &scope,
            lifetime,
            auth_time: Some(family.auth_time.timestamp()),
            amr,
            grant_id: Some(&family.grant_id),
            family_id: Some(&family.id),
            alg: client.metadata.access_token_alg,
            jti: None,
            jkt: request.proof.map(|p| p.jkt.as_str()),
            act: None,
            not_after: None,
        },
    )?;
    let refresh_token = ctx.refresh_token(
        family,
        &rotated.successor_jti,
        rotated.successor_expires_at,
        now,
        claims.jkt.as_deref(),
    )?;
    // OIDC Core §12.2: a fresh ID token, same iss, sub and aud, new iat, original auth_time
    // (and how the user signed in then: `amr`, `acr`).
    let id_token = match &user {
        Some(user) => ctx.id_token(
            client,
            user,
            &scope,
            (family.auth_time, amr, family.sid.as_deref()),
            None,
            &access_token,
        )?,
        None => None,
    };
    Ok(TokenResponse {
        access_token,
        token_type: token_type(request.proof),
        expires_in: lifetime.as_secs(),
        scope: scope.to_string(),
        refresh_token: Some(refresh_token),
        id_token,
        issued_token_type: None,
    })
}

/// The rotation refused the token. Rotated moments ago, this use merely lost a race (the
/// winner's chain lives on); rotated earlier, it is a replay of a stolen or leaked token, and
/// the whole family goes (RFC 9700 §4.14.2). Still active, its grant or user went away (or it
/// expired): the family goes too, so nothing of it outlives what it was granted under.
async fn refused(ctx: &Issuing<'_>, jti: &str, grace: Duration) -> Result<OAuthError, OAuthError> {
    let Some(current) = store::refresh_tokens::find(ctx.db, jti).await? else { return Ok(INVALID) };
    if current.family_revoked {
        return Ok(INVALID);
    }
    let grace = chrono::Duration::from_std(grace).unwrap_or_default();
    let now = Utc::now();
    let replayed =
        current.status == Status::Used && current.used_at.is_some_and(|at| now - at > grace);
    let orphaned = current.status == Status::Active && !current.stands(now);
    if replayed || orphaned {
        let family = &current.family.id;
        // Reuse is an attack on the family's user: recorded with the revocation.
        let event = replayed.then(|| {
            Event::new(
                EventType::RefreshTokenReused,
                Actor::client(&current.family.client_id),
                format!("grant:{}", current.family.grant_id),
            )
            .failed()
            .with("family", family.as_str())
            .with("user_id", current.family.user_id.as_str())
        });
        ctx.revocations.revoke(ctx.db, Revocation::Family(family), event.as_ref()).await?;
        if replayed {
            tracing::warn!(client_id = %current.family.client_id, family = %family, "refresh token reuse: family revoked");
        }
    }
    Ok(INVALID)
}
