//! `revocations`: the append-only log of revocations (an access token's `jti`, a refresh
//! family, a grant, a client, or a user's cut-off), each kept until nothing it revokes can
//! still be alive. Replicas follow it by `seq` to keep the revoked ids in memory.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "revocations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub kind: String,
    pub value: String,
    /// For a user's cut-off: tokens issued at or before this instant are dead.
    pub not_before: Option<DateTimeUtc>,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
