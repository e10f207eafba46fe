//! `events`: the audit trail, one row per recorded change or sign-in outcome, by a
//! time-ordered id; never a secret, token, password or code in any column.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub at: DateTimeUtc,
    /// The event type, e.g. `client.created`.
    pub kind: String,
    /// `client:<id>`, `user:<id>` or `anonymous`.
    pub actor: String,
    pub actor_address: Option<String>,
    pub request_id: Option<String>,
    /// What it touched, e.g. `scope:<name>`.
    pub subject: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// A small JSON object.
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
