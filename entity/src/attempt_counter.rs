//! `attempt_counters`: authentication attempts not yet redeemed by a success, per account or
//! source address, in a fixed window (docs/REFERENCE.md §9).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attempt_counters")]
pub struct Model {
    /// `user:<username>`, `client:<client_id>` or `address:<ip>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Milliseconds since the epoch when the window opened.
    pub window_start: i64,
    pub attempts: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
