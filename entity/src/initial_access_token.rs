//! `initial_access_tokens`: tokens an administrator issues to open closed registration
//! (RFC 7591 §3), by hash, each good for a number of registrations until it expires.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "initial_access_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(column_type = "Blob", unique)]
    pub token_hash: Vec<u8>,
    /// The scopes a client registered with it may be allowed (space-separated; empty: any
    /// scope but `admin`).
    #[sea_orm(column_type = "Text")]
    pub scope: String,
    pub uses_left: i32,
    /// The registrations it was issued for.
    pub uses: i32,
    #[sea_orm(column_type = "Text")]
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
