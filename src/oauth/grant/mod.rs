//! Grant types, one file each, and the token response they share (RFC 6749 §5.1).

pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

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
use crate::store::refresh_tokens::RefreshRecord;
use crate::store::users::UserRecord;

/// What issuing user tokens needs from the server.
pub struct Issuing<'a> {
    pub db: &'a Db,
    pub keys: &'a Keys,
    pub refresh_keys: &'a RefreshKeys,
    pub issuer: &'a Issuer,
    pub max_lifetime: Duration,
    pub verdicts: &'a crate::oauth::verdicts::Verdicts,
}

impl Issuing<'_> {
    /// The refresh token (JWT) for a stored refresh-token row.
    pub fn refresh_token(
        &self,
        record: &RefreshRecord,
        now: DateTime<Utc>,
    ) -> Result<String, OAuthError> {
        Ok(self.refresh_keys.sign(&RefreshClaims {
            iss: self.issuer.as_str().to_owned(),
            sub: record.user_id.clone(),
            aud: self.issuer.as_str().to_owned(),
            exp: record.expires_at.timestamp(),
            iat: now.timestamp(),
            jti: record.jti.clone(),
            client_id: record.client_id.clone(),
            scope: record.scope.clone(),
            fid: record.family_id.clone(),
            gid: record.grant_id.clone(),
            auth_time: record.auth_time.timestamp(),
        })?)
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
            },
        )?;
        Ok(Some(token))
    }
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
