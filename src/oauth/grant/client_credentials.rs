//! `grant_type=client_credentials` (RFC 6749 §4.4, OAuth 2.1 §4.2): a confidential client
//! gets an access token for itself, within the scopes and audiences an admin allowed.

use super::{ProofKey, TokenResponse, token_type};
use crate::config::Issuer;
use crate::error::OAuthError;
use crate::oauth::access_token::{self, Grant};
use crate::oauth::client::{Client, GrantType};
use crate::oauth::client_metadata::is_absolute_uri;
use crate::oauth::keyring::Keys;
use crate::oauth::scope::Scopes;

/// The parameters of a client_credentials request.
pub struct Request<'a> {
    pub scope: Option<&'a str>,
    pub resources: Vec<&'a str>,
    /// The key of the request's DPoP proof: the token is bound to it.
    pub proof: ProofKey<'a>,
}

pub fn exchange(
    keys: &Keys,
    issuer: &Issuer,
    max_lifetime: std::time::Duration,
    client: &Client,
    request: Request<'_>,
) -> Result<TokenResponse, OAuthError> {
    // OAuth 2.1 §4.2: only confidential clients use this grant.
    if client.is_public() {
        return Err(OAuthError::UnauthorizedClient("public clients cannot use client_credentials"));
    }
    if !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::UnauthorizedClient(
            "the client is not registered for this grant type",
        ));
    }
    let allowed = &client.metadata.scope;
    let scope = match request.scope {
        // RFC 6749 §3.3: without a scope, the client's pre-defined default applies.
        None => allowed.clone(),
        Some(value) => {
            let requested =
                Scopes::parse(value).map_err(|_| OAuthError::InvalidScope("malformed scope"))?;
            if !requested.is_subset_of(allowed) {
                return Err(OAuthError::InvalidScope(
                    "a requested scope is not allowed for this client",
                ));
            }
            requested
        }
    };
    let audience = audience(issuer, client, &request.resources)?;
    let lifetime = client.access_token_lifetime().min(max_lifetime);
    let (access_token, claims) = access_token::issue(
        keys,
        Grant {
            issuer: issuer.as_str(),
            client_id: &client.client_id,
            subject: &client.client_id,
            audience,
            scope: &scope,
            lifetime,
            auth_time: None,
            amr: None,
            grant_id: None,
            family_id: None,
            alg: client.metadata.access_token_alg,
            jti: None,
            jkt: request.proof.map(|p| p.jkt.as_str()),
            act: None,
            not_after: None,
        },
    )?;
    tracing::info!(client_id = %client.client_id, jti = %claims.jti, "issued a client_credentials token");
    Ok(TokenResponse {
        access_token,
        token_type: token_type(request.proof),
        expires_in: lifetime.as_secs(),
        scope: scope.to_string(),
        refresh_token: None,
        id_token: None,
        issued_token_type: None,
    })
}

/// The token's audience (docs/REFERENCE.md §4, RFC 8707 §2): the requested resources, each
/// one the client may address; else its first allowed audience; else the issuer.
pub fn audience(
    issuer: &Issuer,
    client: &Client,
    resources: &[&str],
) -> Result<Vec<String>, OAuthError> {
    let allowed = &client.metadata.audience;
    if resources.is_empty() {
        return Ok(vec![allowed.first().cloned().unwrap_or_else(|| issuer.as_str().to_owned())]);
    }
    let mut audience = Vec::new();
    for resource in resources {
        if !is_absolute_uri(resource) {
            return Err(OAuthError::InvalidTarget(
                "a resource must be an absolute URI without fragment",
            ));
        }
        if !allowed.iter().any(|a| a == resource) {
            return Err(OAuthError::InvalidTarget(
                "a requested resource is not allowed for this client",
            ));
        }
        if !audience.iter().any(|a| a == resource) {
            audience.push((*resource).to_owned());
        }
    }
    Ok(audience)
}

/// A user's token's audience: as `audience`, plus the issuer when it carries `openid`, so
/// that it opens UserInfo whatever API it is meant for (docs/REFERENCE.md §4).
pub fn user_audience(
    issuer: &Issuer,
    client: &Client,
    resources: &[&str],
    scope: &Scopes,
) -> Result<Vec<String>, OAuthError> {
    let mut audience = audience(issuer, client, resources)?;
    if scope.contains("openid") && !audience.iter().any(|a| a == issuer.as_str()) {
        audience.push(issuer.as_str().to_owned());
    }
    Ok(audience)
}
