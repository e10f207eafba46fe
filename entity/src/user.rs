//! `users`: people who log in; `id` is their OIDC `sub`, the password an Argon2id hash.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub username: String,
    #[sea_orm(column_type = "Text")]
    pub password_hash: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub email: Option<String>,
    pub email_verified: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub name: Option<String>,
    pub disabled: bool,
    /// May hold the `admin` scope.
    pub admin: bool,
    /// Must sign in with a second factor or a passkey.
    pub require_mfa: bool,
    /// Every token of this user issued at or before this instant is dead.
    pub tokens_not_before: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

/// A user's TOTP secret, if they set one up: read with the user at sign-in, in one statement.
impl Related<super::user_totp::Entity> for Entity {
    fn to() -> RelationDef {
        super::user_totp::Relation::User.def().rev()
    }
}

impl ActiveModelBehavior for ActiveModel {}
