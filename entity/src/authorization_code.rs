//! `authorization_codes`: one-time codes, stored as hashes; kept after redemption so that a
//! replay can find and revoke what the first redemption issued.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "authorization_codes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Blob")]
    pub code_hash: Vec<u8>,
    pub client_id: String,
    pub user_id: String,
    pub grant_id: String,
    #[sea_orm(column_type = "Text")]
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (then the token request must).
    pub redirect_uri_sent: bool,
    pub code_challenge: String,
    #[sea_orm(column_type = "Text")]
    pub scope: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub nonce: Option<String>,
    /// RFC 9449 §10: the thumbprint of the key the code's tokens must be bound to.
    pub dpop_jkt: Option<String>,
    pub auth_time: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub redeemed_at: Option<DateTimeUtc>,
    /// The refresh-token family the redemption started, if any.
    pub family_id: Option<String>,
    /// The access token the redemption issued, to revoke it if the code is replayed.
    pub access_jti: Option<String>,
    pub access_expires_at: Option<DateTimeUtc>,
    /// When the code was presented again after its redemption.
    pub replayed_at: Option<DateTimeUtc>,
    /// How the user signed in (the session's `amr`); NULL: a password alone.
    pub amr: Option<String>,
    /// The session's `sid` claim (Back-Channel Logout §2.1); NULL: issued before it.
    pub sid: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
