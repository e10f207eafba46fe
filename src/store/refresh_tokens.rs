//! Issued refresh tokens by `jti`, with their family, grant and state.

use chrono::{DateTime, Utc};
use entity::refresh_token;
use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub jti: String,
    pub family_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
}

pub async fn insert(db: &impl ConnectionTrait, r: &RefreshRecord) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        jti: Set(r.jti.clone()),
        family_id: Set(r.family_id.clone()),
        grant_id: Set(r.grant_id.clone()),
        client_id: Set(r.client_id.clone()),
        user_id: Set(r.user_id.clone()),
        scope: Set(r.scope.clone()),
        status: Set("active".into()),
        auth_time: Set(r.auth_time),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
        absolute_expires_at: Set(r.absolute_expires_at),
    })
    .exec(db)
    .await?;
    Ok(())
}
