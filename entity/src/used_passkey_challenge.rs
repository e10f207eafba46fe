//! `used_passkey_challenges`: the SHA-256 of each WebAuthn challenge answered, until the
//! challenge expires, so that an answer replayed is refused on every replica.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "used_passkey_challenges")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Blob")]
    pub challenge_hash: Vec<u8>,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
