//! Registered clients (docs/REFERENCE.md §5): their validated metadata, authentication method, grant
//! types, lifetimes, and the JSON form admins see.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::jwk::Algorithm;
use super::scope::Scopes;

/// Default lifetimes (docs/REFERENCE.md §4).
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: u32 = 600;
pub const DEFAULT_ID_TOKEN_LIFETIME: u32 = 600;
pub const DEFAULT_REFRESH_TOKEN_LIFETIME: u32 = 14 * 24 * 3600;
pub const DEFAULT_REFRESH_TOKEN_ABSOLUTE_LIFETIME: u32 = 90 * 24 * 3600;
pub const DEFAULT_AUTHORIZATION_CODE_LIFETIME: u32 = 60;

/// Whether `value` can be a client id: 1–64 visible ASCII characters (RFC 6749 §A.1
/// VSCHAR without space), or the URL of a client's metadata document
/// (`client_documents::is_document_url`). Anything else is refused before it reaches a
/// lookup or a log.
pub fn is_client_id(value: &str) -> bool {
    let plain =
        (1..=64).contains(&value.len()) && value.bytes().all(|b| (0x21..=0x7E).contains(&b));
    plain || super::client_documents::is_document_url(value)
}

/// How a client authenticates at the token endpoint (RFC 7591 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] =
        [Self::ClientSecretBasic, Self::ClientSecretPost, Self::PrivateKeyJwt, Self::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == value)
    }

    /// Whether the client holds a server-made secret.
    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

/// The device authorization grant's `grant_type` (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Token exchange's `grant_type` (RFC 8693 §2.1).
pub const TOKEN_EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The grant types this server implements. The serde names are the `grant_type` values
/// (`as_str`): stored metadata and the registration policy are read back with either.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    ClientCredentials,
    RefreshToken,
    /// RFC 8628 §3.4: a device polls for what its user approved (docs/REFERENCE.md §3.11).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// RFC 8693 §2.1: a confidential client exchanges a user's access token (docs/REFERENCE.md §4.11).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
}

impl GrantType {
    pub const ALL: [GrantType; 5] = [
        Self::AuthorizationCode,
        Self::ClientCredentials,
        Self::RefreshToken,
        Self::DeviceCode,
        Self::TokenExchange,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::DeviceCode => DEVICE_CODE_GRANT,
            Self::TokenExchange => TOKEN_EXCHANGE_GRANT,
        }
    }

    /// Whether only a confidential client may hold it: a public client holds no credential
    /// to prove it is the one using it (OAuth 2.1 §4.2; docs/REFERENCE.md §5.6).
    pub fn needs_confidential_client(self) -> bool {
        matches!(self, Self::ClientCredentials | Self::TokenExchange)
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == value)
    }

    /// Whether `grants` hold one that a user approves, which may come with refresh tokens.
    pub fn yields_refresh(grants: &[GrantType]) -> bool {
        grants.contains(&Self::AuthorizationCode) || grants.contains(&Self::DeviceCode)
    }
}

/// A security profile a client is held to, beyond its own metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The FAPI 2.0 Security Profile: what its metadata must say is checked at registration
    /// (`client_metadata`), what its requests must do at `/authorize`, `/par` and `/token`.
    Fapi2,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fapi2 => "fapi2",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        (value == "fapi2").then_some(Self::Fapi2)
    }
}

/// How a client came to be registered (docs/REFERENCE.md §5.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// By an administrator (admin API, CLI, first start).
    Admin,
    /// By itself at `/register`, under the open policy's ceiling.
    Open,
    /// By itself at `/register`, with an initial access token an administrator issued.
    Token,
    /// By the metadata document its id names, fetched when it first asked for authorization.
    Document,
}

impl Registration {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Open => "open",
            Self::Token => "token",
            Self::Document => "document",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Admin, Self::Open, Self::Token, Self::Document]
            .into_iter()
            .find(|r| r.as_str() == value)
    }

    /// Whether the client registered itself (RFC 7591): no administrator vetted it.
    pub fn is_dynamic(self) -> bool {
        self != Self::Admin
    }
}

/// FAPI 2.0 Security Profile §5.3.2.1: an authorization code lives at most 60 s.
pub const FAPI2_MAX_CODE_LIFETIME: u32 = 60;

/// Per-client lifetimes in seconds; `None` takes the server default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lifetimes {
    pub access_token: Option<u32>,
    pub id_token: Option<u32>,
    pub refresh_token: Option<u32>,
    pub refresh_token_absolute: Option<u32>,
    pub authorization_code: Option<u32>,
}

/// Client metadata, already validated (see `client_metadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMetadata {
    pub client_name: String,
    /// The client's home page (RFC 7591 §2), shown on the consent page.
    pub client_uri: Option<String>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub response_types: Vec<String>,
    pub scope: Scopes,
    pub token_endpoint_auth_method: AuthMethod,
    pub jwks: Option<serde_json::Value>,
    /// Where the client publishes its keys instead (fetched through `outbound`).
    pub jwks_uri: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub audience: Vec<String>,
    /// The resource identifiers of the APIs this client runs: it may introspect tokens
    /// meant for them (RFC 7662 §4).
    pub served_resources: Vec<String>,
    pub lifetimes: Lifetimes,
    /// How its access tokens are signed (RS256 unless the client asks otherwise).
    pub access_token_alg: Algorithm,
    /// RFC 9449 §5.2: every token request carries a DPoP proof, so every token is bound.
    pub dpop_bound_access_tokens: bool,
    /// RFC 9126 §6: `/authorize` takes only a `request_uri` of a request pushed to `/par`.
    pub require_pushed_authorization_requests: bool,
    /// Every sign-in for this client uses a second factor or a passkey (`oauth::assurance`).
    pub require_mfa: bool,
    /// Where logout tokens are POSTed (Back-Channel Logout §2.2), if anywhere.
    pub backchannel_logout_uri: Option<String>,
    /// Whether its logout tokens must carry `sid` (Back-Channel Logout §2.2).
    pub backchannel_logout_session_required: bool,
    /// How its ID tokens are signed (OIDC Registration §2 `id_token_signed_response_alg`).
    pub id_token_alg: Algorithm,
    pub profile: Option<Profile>,
    /// Whether each refresh replaces the refresh token (the reuse defence of public
    /// clients); without it the refresh token stays until it expires or is revoked.
    pub refresh_token_rotation: bool,
}

/// A secret hash and when it stops working.
#[derive(Debug, Clone)]
pub struct SecretHash {
    pub hash: Vec<u8>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A registered client as the token endpoint sees it.
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub metadata: ClientMetadata,
    pub secrets: Vec<SecretHash>,
    pub registration: Registration,
    /// SHA-256 of a dynamic client's registration access token (RFC 7592 §3).
    pub registration_token_hash: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Client {
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.metadata.grant_types.contains(&grant)
    }

    /// Public clients hold no credentials (RFC 6749 §2.1).
    pub fn is_public(&self) -> bool {
        self.metadata.token_endpoint_auth_method == AuthMethod::None
    }

    /// Hashes of the secrets still valid at `now`.
    pub fn live_secret_hashes(&self, now: DateTime<Utc>) -> impl Iterator<Item = &[u8]> {
        self.secrets
            .iter()
            .filter(move |s| s.expires_at.is_none_or(|t| t > now))
            .map(|s| s.hash.as_slice())
    }

    pub fn access_token_lifetime(&self) -> Duration {
        secs(self.metadata.lifetimes.access_token, DEFAULT_ACCESS_TOKEN_LIFETIME)
    }

    /// Whether the client is held to the FAPI 2.0 Security Profile.
    pub fn is_fapi2(&self) -> bool {
        self.metadata.profile == Some(Profile::Fapi2)
    }

    pub fn id_token_lifetime(&self) -> Duration {
        secs(self.metadata.lifetimes.id_token, DEFAULT_ID_TOKEN_LIFETIME)
    }

    /// The JSON an admin sees: RFC 7591 names, effective lifetimes, never a secret hash.
    pub fn view(&self, client_secret: Option<String>) -> ClientView {
        let m = &self.metadata;
        let l = &m.lifetimes;
        ClientView {
            client_id: self.client_id.clone(),
            client_id_issued_at: self.created_at.timestamp(),
            client_secret_expires_at: client_secret.as_ref().map(|_| 0),
            client_secret,
            client_name: m.client_name.clone(),
            client_uri: m.client_uri.clone(),
            registration: self.registration.as_str(),
            redirect_uris: m.redirect_uris.clone(),
            grant_types: m.grant_types.iter().map(|g| g.as_str()).collect(),
            response_types: m.response_types.clone(),
            scope: m.scope.to_string(),
            token_endpoint_auth_method: m.token_endpoint_auth_method.as_str(),
            jwks: m.jwks.clone(),
            jwks_uri: m.jwks_uri.clone(),
            post_logout_redirect_uris: m.post_logout_redirect_uris.clone(),
            audience: m.audience.clone(),
            served_resources: m.served_resources.clone(),
            access_token_signed_response_alg: m.access_token_alg.as_str(),
            dpop_bound_access_tokens: m.dpop_bound_access_tokens,
            require_pushed_authorization_requests: m.require_pushed_authorization_requests,
            require_mfa: m.require_mfa,
            backchannel_logout_uri: m.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: m.backchannel_logout_session_required,
            id_token_signed_response_alg: m.id_token_alg.as_str(),
            security_profile: m.profile.map(Profile::as_str),
            refresh_token_rotation: m.refresh_token_rotation,
            access_token_lifetime: l.access_token.unwrap_or(DEFAULT_ACCESS_TOKEN_LIFETIME),
            id_token_lifetime: l.id_token.unwrap_or(DEFAULT_ID_TOKEN_LIFETIME),
            refresh_token_lifetime: l.refresh_token.unwrap_or(DEFAULT_REFRESH_TOKEN_LIFETIME),
            refresh_token_absolute_lifetime: l
                .refresh_token_absolute
                .unwrap_or(DEFAULT_REFRESH_TOKEN_ABSOLUTE_LIFETIME),
            authorization_code_lifetime: l
                .authorization_code
                .unwrap_or(DEFAULT_AUTHORIZATION_CODE_LIFETIME),
        }
    }
}

fn secs(value: Option<u32>, default: u32) -> Duration {
    Duration::from_secs(u64::from(value.unwrap_or(default)))
}

/// A client in the admin API (docs/REFERENCE.md §6).
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    pub client_id: String,
    /// Seconds since the epoch.
    pub client_id_issued_at: i64,
    /// Present only in the answer that created or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// 0: the secret does not expire (RFC 7591 §3.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    pub client_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// `admin`, or for a client that registered itself `open` (under the open policy),
    /// `token` (with an initial access token) or `document` (its id is its metadata
    /// document's URL).
    pub registration: &'static str,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<&'static str>,
    pub response_types: Vec<String>,
    pub scope: String,
    pub token_endpoint_auth_method: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub audience: Vec<String>,
    /// The APIs this client runs (it may introspect their tokens).
    pub served_resources: Vec<String>,
    /// RS256 (the default), PS256, ES256 or EdDSA.
    pub access_token_signed_response_alg: &'static str,
    /// Whether every token request must carry a DPoP proof (RFC 9449 §5.2).
    pub dpop_bound_access_tokens: bool,
    /// Whether authorization requests must be pushed first (RFC 9126 §6).
    pub require_pushed_authorization_requests: bool,
    /// Whether every sign-in for it must use a second factor or a passkey.
    pub require_mfa: bool,
    /// Where logout tokens are POSTed, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Whether its logout tokens carry `sid`.
    pub backchannel_logout_session_required: bool,
    /// RS256 (the default), PS256, ES256 or EdDSA.
    pub id_token_signed_response_alg: &'static str,
    /// `fapi2`, or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_profile: Option<&'static str>,
    /// Whether each refresh replaces the refresh token.
    pub refresh_token_rotation: bool,
    pub access_token_lifetime: u32,
    pub id_token_lifetime: u32,
    pub refresh_token_lifetime: u32,
    pub refresh_token_absolute_lifetime: u32,
    pub authorization_code_lifetime: u32,
}

/// Never the secret (shown once, to the admin who made it) in a log.
impl std::fmt::Debug for ClientView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientView")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "[redacted]"))
            .field("client_name", &self.client_name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_types_stored_name_is_its_grant_type_value() {
        // Stored metadata is written with serde and read back with `parse` (registry.rs).
        for grant in GrantType::ALL {
            assert_eq!(serde_json::to_value(grant).expect("JSON"), grant.as_str());
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
    }
}
