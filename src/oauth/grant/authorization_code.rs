//! The authorization code grant (RFC 6749 §4.1, OAuth 2.1 §4.1): codes issued after login and
//! consent, redeemed once for tokens under PKCE.

use aws_lc_rs::digest::{SHA256, digest};
use chrono::Utc;

use super::{Approved, Issuing, ProofKey, TokenResponse, require_key};
use crate::error::OAuthError;
use crate::oauth::audit::{self, Actor, Event, EventType};
use crate::oauth::authorize::AuthorizationRequest;
use crate::oauth::client::{Client, DEFAULT_AUTHORIZATION_CODE_LIFETIME, GrantType};
use crate::oauth::revocation::Revocation;
use crate::oauth::session::Amr;
use crate::oauth::{pkce, secret};
use crate::store::codes::CodeRecord;
use crate::store::refresh_tokens::Origin;
use crate::store::{self, Db, StoreError};

fn code_hash(code: &str) -> Vec<u8> {
    digest(&SHA256, code.as_bytes()).as_ref().to_vec()
}

/// The session a code is issued in: its stored key and its `sid` claim.
pub struct SignedIn<'a> {
    pub session_hash: &'a [u8],
    pub sid: &'a str,
}

/// Stores a new one-time code (256 random bits, kept only as a hash) for an approved request,
/// and records that the session signed into the client (to tell it when the session ends).
pub async fn issue_code(
    db: &Db,
    request: &AuthorizationRequest,
    user_id: &str,
    grant_id: &str,
    auth_time: chrono::DateTime<Utc>,
    amr: Amr,
    signed_in: SignedIn<'_>,
) -> Result<String, StoreError> {
    let code = secret::random_token(32)?;
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
        dpop_jkt: request.dpop_jkt.clone(),
        auth_time,
        amr: Some(amr.as_stored()),
        sid: Some(signed_in.sid.to_owned()),
        created_at: now,
        expires_at: now + chrono::Duration::seconds(i64::from(lifetime)),
    };
    store::backchannel::record_client(
        db,
        signed_in.session_hash,
        &request.client.client_id,
        user_id,
        signed_in.sid,
        now,
    )
    .await?;
    store::codes::insert(db, &record).await?;
    Ok(code)
}

/// The parameters of an authorization_code token request.
pub struct Request<'a> {
    pub code: Option<&'a str>,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
    pub resources: Vec<&'a str>,
    /// The key of the request's DPoP proof.
    pub proof: ProofKey<'a>,
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
    let now = Utc::now();
    let lifetime = client.access_token_lifetime().min(ctx.max_lifetime);
    let access_jti = uuid::Uuid::new_v4().to_string();
    let family_id = uuid::Uuid::new_v4().to_string();
    // What this redemption will issue is recorded by the statement that redeems the code, so a
    // replay arriving at any moment after it finds what to revoke (OAuth 2.1 §4.1.3).
    let issuing = store::codes::Issuing {
        access_jti: &access_jti,
        // A second of margin: the token's own `exp` is computed a moment later.
        access_expires_at: now
            + chrono::Duration::from_std(lifetime).unwrap_or_default()
            + chrono::Duration::seconds(1),
        family_id: &family_id,
    };
    // Redeemed before it is checked: a failed check burns the code (one statement, so of
    // concurrent redemptions exactly one wins).
    let hash = code_hash(code);
    let Some(record) = store::codes::redeem(ctx.db, &hash, now, &issuing).await? else {
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
    // RFC 9449 §10: a code bound at the authorization request redeems only with that key.
    require_key(
        record.dpop_jkt.as_deref(),
        request.proof,
        "the code is bound to a DPoP key",
        "the DPoP proof key is not the code's",
    )?;
    let approved = Approved {
        user_id: &record.user_id,
        grant_id: &record.grant_id,
        scope: &record.scope,
        auth_time: record.auth_time,
        amr: Some(Amr::from_stored(record.amr.as_deref())),
        sid: record.sid.as_deref(),
        approved_at: record.created_at,
        nonce: record.nonce.as_deref(),
        access_jti,
        family_id,
        origin: Origin::Code(&record.code_hash),
    };
    ctx.user_tokens(client, approved, &request.resources, request.proof).await
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
    // Marked first: a first redemption still issuing then starts no family, or (holding the
    // code row) finishes starting it before this goes on, and the family is revoked below.
    store::codes::mark_replayed(ctx.db, hash, Utc::now()).await?;
    // Recorded with the first revocation it causes (never the code itself).
    let mut event = Some(
        Event::new(
            EventType::AuthorizationCodeReplayed,
            Actor::client(&client.client_id),
            format!("client:{}", client.client_id),
        )
        .failed()
        .with("family_revoked", first.family_id.is_some()),
    );
    if let Some(family_id) = &first.family_id {
        let revocation = Revocation::Family(family_id);
        ctx.revocations.revoke(ctx.db, revocation, event.take().as_ref()).await?;
    }
    if let (Some(jti), Some(expires_at)) = (&first.access_jti, first.access_expires_at) {
        let revocation = Revocation::AccessToken { jti, expires_at };
        ctx.revocations.revoke(ctx.db, revocation, event.take().as_ref()).await?;
    }
    if let Some(event) = event {
        audit::record(ctx.db, &event).await?;
        event.log();
    }
    tracing::warn!(client_id = %client.client_id, "authorization code replayed: what it issued is revoked");
    Ok(())
}
