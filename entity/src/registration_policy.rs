//! `registration_policy`: the dynamic registration policy an administrator set (one row,
//! id 1); without it the settings' policy holds.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "registration_policy")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The policy as JSON (docs/REFERENCE.md §6.7).
    #[sea_orm(column_type = "Text")]
    pub policy: String,
    #[sea_orm(column_type = "Text")]
    pub updated_by: String,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
