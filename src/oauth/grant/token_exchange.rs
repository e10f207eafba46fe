//! `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693; docs/REFERENCE.md
//! §4.11): a confidential client that runs an API exchanges a user's access token meant for
//! that API for one meant for an API it calls, acting for the user (delegation, §4.1).

use std::time::Duration;

use chrono::Utc;

use super::client_credentials::user_audience;
use super::{ProofKey, TokenResponse, token_type};
use crate::config::Issuer;
use crate::error::OAuthError;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::client::{Client, GrantType};
use crate::oauth::delegation;
use crate::oauth::dpop::ProofError;
use crate::oauth::gate::{ADMIN_SCOPE, Admitted, Gate, Refused};
use crate::oauth::scope::Scopes;
use crate::oauth::session::Amr;

/// The one token type exchanged, accepted as actor and issued (RFC 8693 §3).
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The parameters of a token exchange request (RFC 8693 §2.1).
pub struct Request<'a> {
    pub subject_token: Option<&'a str>,
    pub subject_token_type: Option<&'a str>,
    pub actor_token: Option<&'a str>,
    pub actor_token_type: Option<&'a str>,
    pub requested_token_type: Option<&'a str>,
    pub scope: Option<&'a str>,
    /// Every `resource` and `audience`: both name where the new token is for.
    pub targets: Vec<&'a str>,
    /// The key of the request's DPoP proof: the new token is bound to it.
    pub proof: ProofKey<'a>,
}

pub async fn exchange(
    gate: &Gate<'_>,
    issuer: &Issuer,
    max_lifetime: Duration,
    client: &Client,
    request: Request<'_>,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::UnauthorizedClient("public clients cannot exchange tokens"));
    }
    if !client.allows_grant(GrantType::TokenExchange) {
        return Err(OAuthError::UnauthorizedClient(
            "the client is not registered for this grant type",
        ));
    }
    let (subject_token, actor_token) = tokens(&request)?;
    let subject = accept_subject(gate, client, subject_token).await?;
    let claims = &subject.claims;
    let actor = match actor_token {
        None => client.client_id.clone(),
        Some(token) => accept_actor(gate, client, token).await?,
    };
    // RFC 8693 §4.4: where the subject token says who may act for its subject, only they may.
    if let Some(may_act) = &claims.may_act
        && !delegation::may_act(may_act, &actor, gate.issuer)
    {
        return Err(OAuthError::InvalidRequest("the subject token does not let this actor act"));
    }
    let act = delegation::delegate(&actor, claims.act.as_ref())
        .ok_or(OAuthError::InvalidRequest("the delegation chain is too long"))?;
    let scope = scope(&subject, client, request.scope)?;
    let audience = user_audience(issuer, client, &request.targets, &scope)?;
    // Never past the subject token: it is the user's authorization this token derives from.
    let remaining = u64::try_from(claims.exp - Utc::now().timestamp())
        .ok()
        .filter(|s| *s > 0)
        .ok_or(OAuthError::InvalidRequest("the subject token is invalid, expired or revoked"))?;
    let lifetime =
        client.access_token_lifetime().min(max_lifetime).min(Duration::from_secs(remaining));
    let (access_token, issued) = access_token::issue(
        gate.keys,
        Grant {
            issuer: issuer.as_str(),
            client_id: &client.client_id,
            subject: &claims.sub,
            audience,
            scope: &scope,
            lifetime,
            auth_time: claims.auth_time,
            amr: claims.amr.as_deref().and_then(Amr::from_values),
            grant_id: claims.gid.as_deref(),
            family_id: claims.fid.as_deref(),
            alg: client.metadata.access_token_alg,
            jti: None,
            jkt: request.proof.map(|p| p.jkt.as_str()),
            act: Some(act),
            not_after: Some(claims.exp),
        },
    )?;
    tracing::info!(client_id = %client.client_id, jti = %issued.jti, subject_jti = %claims.jti, "exchanged a token");
    Ok(TokenResponse {
        access_token,
        token_type: token_type(request.proof),
        expires_in: u64::try_from(issued.exp - issued.iat).unwrap_or(0),
        // RFC 8693 §2.2.1: `scope` is required when it differs from the request's; always sent.
        scope: scope.to_string(),
        refresh_token: None,
        id_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

/// The subject token and the actor token, if any, once their types are ones Castellan
/// exchanges: its own access tokens. An ID token is no authorization to act for anyone
/// (docs/REFERENCE.md §4.11).
fn tokens<'a>(request: &Request<'a>) -> Result<(&'a str, Option<&'a str>), OAuthError> {
    // RFC 8693 §2.1: subject_token and subject_token_type are REQUIRED.
    let subject =
        request.subject_token.ok_or(OAuthError::InvalidRequest("subject_token is required"))?;
    match request.subject_token_type {
        None => return Err(OAuthError::InvalidRequest("subject_token_type is required")),
        Some(ACCESS_TOKEN_TYPE) => {}
        Some(_) => {
            return Err(OAuthError::InvalidRequest(
                "only access tokens are accepted as subject_token",
            ));
        }
    }
    if request.requested_token_type.is_some_and(|t| t != ACCESS_TOKEN_TYPE) {
        return Err(OAuthError::InvalidRequest("only access tokens are issued"));
    }
    // RFC 8693 §2.1: actor_token_type is REQUIRED with actor_token, and MUST NOT be sent
    // without it.
    match (request.actor_token, request.actor_token_type) {
        (None, None) => Ok((subject, None)),
        (Some(_), None) => Err(OAuthError::InvalidRequest("actor_token needs actor_token_type")),
        (None, Some(_)) => Err(OAuthError::InvalidRequest("actor_token_type needs actor_token")),
        (Some(actor), Some(ACCESS_TOKEN_TYPE)) => Ok((subject, Some(actor))),
        (Some(_), Some(_)) => {
            Err(OAuthError::InvalidRequest("only access tokens are accepted as actor_token"))
        }
    }
}

/// The subject token, if it stands and this client may exchange it: a user's token (the new
/// one carries its grant and family, and ends with them) meant for an API the client runs.
async fn accept_subject(
    gate: &Gate<'_>,
    client: &Client,
    token: &str,
) -> Result<Admitted, OAuthError> {
    let subject = stands(gate, token, "the subject token is invalid, expired or revoked").await?;
    if subject.claims.gid.is_none() {
        return Err(OAuthError::InvalidRequest("the subject token is not a user's token"));
    }
    // Unacceptable by policy is invalid_request too (RFC 8693 §2.2.2).
    if !client.metadata.served_resources.iter().any(|r| subject.claims.aud.contains(r)) {
        return Err(OAuthError::InvalidRequest(
            "the subject token is not meant for an API this client serves",
        ));
    }
    Ok(subject)
}

/// Who the actor token names, if it stands and is the client's own: a token the client
/// received at its API would let it claim to be whoever sent that token.
async fn accept_actor(gate: &Gate<'_>, client: &Client, token: &str) -> Result<String, OAuthError> {
    let actor = stands(gate, token, "the actor token is invalid, expired or revoked").await?;
    if actor.claims.client_id != client.client_id {
        return Err(OAuthError::InvalidRequest("the actor token was not issued to this client"));
    }
    Ok(actor.claims.sub.clone())
}

/// The token at the one gate: signature, issuer, expiry and liveness (revoked `jti`, family,
/// grant, client, user cut-off). A refusal is `invalid_request` (RFC 8693 §2.2.2: a subject
/// or actor token invalid for any reason MUST be answered with it); an unreadable revoked
/// state is a storage failure, never a pass.
async fn stands(
    gate: &Gate<'_>,
    token: &str,
    refusal: &'static str,
) -> Result<Admitted, OAuthError> {
    gate.subject(token).await.map_err(|refused| match refused {
        Refused::Store(e) | Refused::Proof(ProofError::Store(e)) => OAuthError::Store(e),
        Refused::Invalid(_) | Refused::Revoked | Refused::Proof(_) => {
            OAuthError::InvalidRequest(refusal)
        }
    })
}

/// The new token's scope: what was asked for, else all it may carry, which is what the subject
/// token carries now and the client is allowed, never `admin`. Asking beyond the subject token
/// or beyond the client is `invalid_scope`: a token exchange never widens.
fn scope(
    subject: &Admitted,
    client: &Client,
    requested: Option<&str>,
) -> Result<Scopes, OAuthError> {
    let ceiling = subject.scope.intersection(&client.metadata.scope).without(ADMIN_SCOPE);
    let Some(value) = requested else { return Ok(ceiling) };
    let requested =
        Scopes::parse(value).map_err(|_| OAuthError::InvalidScope("malformed scope"))?;
    if !requested.is_subset_of(&subject.scope) {
        return Err(OAuthError::InvalidScope("a requested scope goes beyond the subject token's"));
    }
    if !requested.is_subset_of(&ceiling) {
        return Err(OAuthError::InvalidScope("a requested scope is not allowed for this client"));
    }
    Ok(requested)
}
