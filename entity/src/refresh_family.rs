//! `refresh_families`: what every refresh token descended from one authorization shares, and
//! whether the family was revoked. Rotation and revocation serialize on this row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_families")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    #[sea_orm(column_type = "Text")]
    pub scope: String,
    pub auth_time: DateTimeUtc,
    /// How the user signed in (space-separated `amr` values); NULL: a password alone.
    pub amr: Option<String>,
    /// The `sid` of the session that signed in (Back-Channel Logout §2.1), if known.
    pub sid: Option<String>,
    pub created_at: DateTimeUtc,
    pub absolute_expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
