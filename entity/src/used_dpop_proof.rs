//! `used_dpop_proofs`: the `jti` of each accepted DPoP proof, by key, while its `iat` is in the
//! accepted window, so a replay is refused on every replica (RFC 9449 §11.1).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "used_dpop_proofs")]
pub struct Model {
    /// The RFC 7638 thumbprint of the proof's key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub jkt: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub jti: String,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
