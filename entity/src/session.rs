//! `sessions`: server-side login sessions; only the SHA-256 of the cookie's id is stored.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Blob")]
    pub id_hash: Vec<u8>,
    pub user_id: String,
    pub auth_time: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// The User-Agent that started the session, cut to 120 characters (NULL before it was kept).
    pub user_agent: Option<String>,
    /// The address it signed in from, as the audit trail sees it (trusted proxies honoured).
    pub address: Option<String>,
    /// How the user signed in (RFC 8176 values, space-separated); NULL: a password alone.
    pub amr: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
