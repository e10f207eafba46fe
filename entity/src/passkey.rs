//! `passkeys`: a user's registered WebAuthn credentials (docs/REFERENCE.md §3.4, §3.6).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkeys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    /// The credential id the authenticator chose (unique).
    #[sea_orm(column_type = "Blob")]
    pub credential_id: Vec<u8>,
    /// The user handle the authenticator keeps and returns at sign-in.
    #[sea_orm(column_type = "Blob")]
    pub user_handle: Vec<u8>,
    pub name: String,
    /// The public key and its static extensions, as the WebAuthn library encodes them.
    #[sea_orm(column_type = "Blob")]
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// 0 unknown, 1 platform, 2 cross-platform.
    pub attachment: i16,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
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
