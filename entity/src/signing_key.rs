//! `signing_keys`: one signing key of the key ring, its private part sealed under the master key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signing_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    pub alg: String,
    /// `next`, `active` or `retired`.
    pub state: String,
    /// The public JWK members as JSON text.
    #[sea_orm(column_type = "Text")]
    pub public_jwk: String,
    /// AES-256-GCM nonce followed by the sealed PKCS#8 document.
    #[sea_orm(column_type = "Blob")]
    pub private_key: Vec<u8>,
    pub created_at: DateTimeUtc,
    pub activated_at: Option<DateTimeUtc>,
    pub retired_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
