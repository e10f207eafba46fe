//! `clients`: registered clients and their RFC 7591 metadata; list members are JSON text.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clients")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    #[sea_orm(column_type = "Text")]
    pub client_name: String,
    #[sea_orm(column_type = "Text")]
    pub redirect_uris: String,
    #[sea_orm(column_type = "Text")]
    pub grant_types: String,
    #[sea_orm(column_type = "Text")]
    pub response_types: String,
    pub token_endpoint_auth_method: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub jwks: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub post_logout_redirect_uris: String,
    #[sea_orm(column_type = "Text")]
    pub audience: String,
    pub access_token_signed_response_alg: String,
    /// JSON array of the resource identifiers of the APIs this client runs.
    #[sea_orm(column_type = "Text")]
    pub served_resources: String,
    pub access_token_lifetime: Option<i32>,
    pub id_token_lifetime: Option<i32>,
    pub refresh_token_lifetime: Option<i32>,
    pub refresh_token_absolute_lifetime: Option<i32>,
    pub authorization_code_lifetime: Option<i32>,
    /// RFC 9449 §5.2: every token request of this client carries a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// RFC 9126 §6: authorization requests only by reference to a pushed one.
    pub require_pushed_authorization_requests: bool,
    /// Every sign-in for this client uses a second factor or a passkey.
    pub require_mfa: bool,
    /// Where the client publishes its public keys (instead of `jwks`).
    #[sea_orm(column_type = "Text", nullable)]
    pub jwks_uri: Option<String>,
    pub id_token_signed_response_alg: String,
    /// `fapi2` for a client held to the FAPI 2.0 Security Profile.
    pub security_profile: Option<String>,
    /// Whether each refresh replaces the refresh token.
    pub refresh_token_rotation: bool,
    /// `admin` (registered by an administrator) or `dynamic` (registered itself, RFC 7591).
    pub registration: String,
    /// SHA-256 of a dynamic client's registration access token (RFC 7592 §3).
    #[sea_orm(column_type = "Blob", nullable)]
    pub registration_token_hash: Option<Vec<u8>>,
    /// When a dynamic client last got tokens (its registration time until then).
    pub last_used_at: Option<DateTimeUtc>,
    /// The client's home page (RFC 7591 §2).
    #[sea_orm(column_type = "Text", nullable)]
    pub client_uri: Option<String>,
    /// Where logout tokens are POSTed (Back-Channel Logout §2.2).
    #[sea_orm(column_type = "Text", nullable)]
    pub backchannel_logout_uri: Option<String>,
    /// Whether the client needs `sid` in its logout tokens (Back-Channel Logout §2.2).
    pub backchannel_logout_session_required: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
