//! The authorization code grant (RFC 6749 §4.1, OAuth 2.1 §4.1): codes issued after login and
//! consent, redeemed once for tokens under PKCE.

use aws_lc_rs::digest::{SHA256, digest};
use chrono::Utc;

use super::client_credentials::audience;
use super::{Issuing, TokenResponse};
use crate::error::OAuthError;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::client::{Client, DEFAULT_AUTHORIZATION_CODE_LIFETIME, GrantType};
use crate::oauth::revocation;
use crate::oauth::scope::Scopes;
use crate::oauth::{pkce, secret};
use crate::store::codes::CodeRecord;
use crate::store::refresh_tokens::RefreshRecord;
use crate::store::{self, Db, StoreError};

fn code_hash(code: &str) -> Vec<u8> {
    digest(&SHA256, code.as_bytes()).as_ref().to_vec()
}

/// Stores a new one-time code (256 random bits, kept only as a hash) for an approved request.
pub async fn issue_code(
    db: &Db,
    request: &AuthorizationRequest,
    user_id: &str,
    grant_id: &str,
    auth_time: chrono::DateTime<Utc>,
) -> Result<String, StoreError> {
    let code = secret::random_token(32).map_err(|e| StoreError::Custom(e.to_string()))?;
    let now = Utc::now();
    let lifetime = request
        .client
        .metadata
        .lifetimes
        .authorization_code
        .unwrap_or(DEFAULT_AUTHORIZATION_CODE_LIFETIME);
    let record = CodeRecord {
        code_hash: code_hash(&code),
        client_id: request.client.client_id.clone(),
        user_id: user_id.to_owned(),
        grant_id: grant_id.to_owned(),
        redirect_uri: request.redirect_uri.clone(),
        redirect_uri_sent: request.redirect_uri_sent,
        code_challenge: request.code_challenge.clone(),
        scope: request.scope.to_string(),
        nonce: request.nonce.clone(),
        auth_time,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(i64::from(lifetime)),
    };
    store::codes::insert(db, &record).await?;
    Ok(code)
}

/// The parameters of an authorization_code token request.
pub struct Request<'a> {
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub resources: Vec<&'a str>,
}

pub async fn exchange(
    ctx: &Issuing<'_>,
    client: &Client,
    request: Request<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient(
            "the client is not registered for this grant type",
        ));
    }
    let code = request.code.ok_or(OAuthError::InvalidRequest("code is required"))?;
    if code.len() > 256 {
        return Err(OAuthError::InvalidGrant("the code is invalid, expired or already used"));
    }
    // Redeemed before it is checked: a failed check burns the code (one statement, so of
    // concurrent redemptions exactly one wins).
    let hash = code_hash(code);
    let Some(record) = store::codes::redeem(ctx.db, &hash, Utc::now()).await? else {
        replayed(ctx, client, &hash, request.code_verifier).await?;
        return Err(OAuthError::InvalidGrant("the code is invalid, expired or already used"));
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::InvalidGrant("the code was issued to another client"));
    }
    // RFC 6749 §4.1.3: the same redirect_uri as in the authorization request.
    let redirect_ok = match request.redirect_uri {
        Some(uri) => uri == record.redirect_uri,
        None => !record.redirect_uri_sent,
    };
    if !redirect_ok {
        return Err(OAuthError::InvalidGrant(
            "redirect_uri does not match the authorization request",
        ));
    }
    // RFC 7636 §4.6.
    let verifier =
        request.code_verifier.ok_or(OAuthError::InvalidGrant("code_verifier is required"))?;
    if !pkce::verify_s256(verifier, &record.code_challenge) {
        return Err(OAuthError::InvalidGrant(
            "the code_verifier does not match the code_challenge",
        ));
    }
    let user = store::users::find(ctx.db, &record.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(OAuthError::InvalidGrant("the user can no longer sign in"))?;
    if store::grants::find(ctx.db, &record.grant_id).await?.is_none() {
        return Err(OAuthError::InvalidGrant("the grant was revoked"));
    }
    let scope = Scopes::parse(&record.scope)
        .map_err(|_| anyhow::anyhow!("a stored code has a malformed scope"))?;
    let audience = audience(ctx.issuer, client, &request.resources)?;
    let lifetime = client.access_token_lifetime().min(ctx.max_lifetime);
    let family_id = (scope.contains("offline_access")
        && client.allows_grant(GrantType::RefreshToken))
    .then(|| uuid::Uuid::new_v4().to_string());
    let (access_token, claims) = access_token::issue(
        ctx.keys,
        Grant {
            issuer: ctx.issuer.as_str(),
            client_id: &client.client_id,
            subject: &record.user_id,
            audience,
            scope: &scope,
            lifetime,
            auth_time: Some(record.auth_time.timestamp()),
            grant_id: Some(&record.grant_id),
            family_id: family_id.as_deref(),
            alg: client.metadata.access_token_alg,
        },
    )?;
    let expires = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now);
    store::codes::record_issued(
        ctx.db,
        &record.code_hash,
        family_id.as_deref(),
        &claims.jti,
        expires,
    )
    .await?;
    let refresh_token = match family_id {
        Some(family_id) => Some(start_family(ctx, client, &record, &scope, family_id).await?),
        None => None,
    };
    let id_token = ctx.id_token(
        client,
        &user,
        &scope,
        record.auth_time,
        record.nonce.as_deref(),
        &access_token,
    )?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: lifetime.as_secs(),
        scope: scope.to_string(),
        refresh_token,
        id_token,
    })
}

/// Issues the first refresh token of a new family, bound to client, user and grant.
async fn start_family(
    ctx: &Issuing<'_>,
    client: &Client,
    code: &CodeRecord,
    scope: &Scopes,
    family_id: String,
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
    let record = RefreshRecord {
        jti: uuid::Uuid::new_v4().to_string(),
        family_id,
        grant_id: code.grant_id.clone(),
        client_id: client.client_id.clone(),
        user_id: code.user_id.clone(),
        scope: scope.to_string(),
        auth_time: code.auth_time,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(sliding.min(absolute)),
        absolute_expires_at: now + chrono::Duration::seconds(absolute),
    };
    store::refresh_tokens::insert(ctx.db, &record).await?;
    let token = ctx.refresh_token(&record, now)?;
    Ok(token)
}

/// A code presented again (OAuth 2.1 §4.1.3): if this caller is the code's client and proves
/// PKCE, the code was stolen or replayed, so everything the first redemption issued is
/// revoked. A replay that fails either check revokes nothing (it proves nothing).
async fn replayed(
    ctx: &Issuing<'_>,
    client: &Client,
    hash: &[u8],
    verifier: Option<&str>,
) -> Result<(), OAuthError> {
    let Some(first) = store::codes::find_redeemed(ctx.db, hash).await? else { return Ok(()) };
    if first.client_id != client.client_id
        || !verifier.is_some_and(|v| pkce::verify_s256(v, &first.code_challenge))
    {
        return Ok(());
    }
    if let Some(family_id) = &first.family_id {
        revocation::revoke_family(ctx.db, ctx.verdicts, family_id, ctx.max_lifetime).await?;
    }
    if let (Some(jti), Some(expires)) = (&first.access_jti, first.access_expires_at) {
        store::revocations::revoke(ctx.db, store::revocations::JTI, jti, expires).await?;
    }
    tracing::warn!(client_id = %client.client_id, "authorization code replayed: what it issued is revoked");
    Ok(())
}
