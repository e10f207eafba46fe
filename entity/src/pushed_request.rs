//! `pushed_requests`: authorization requests pushed by clients (RFC 9126), by the hash of the
//! `request_uri` that stands for them, until used or expired.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pushed_requests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Blob")]
    pub uri_hash: Vec<u8>,
    pub client_id: String,
    /// The request's parameters: a JSON array of `[name, value]` pairs.
    #[sea_orm(column_type = "Text")]
    pub parameters: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
