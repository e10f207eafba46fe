//! One-time start-up actions, claimed by exactly one replica.

use entity::bootstrap_marker;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use super::StoreError;
use super::is_unique_violation;

/// Claims the action `name`; `true` for the one caller that gets it. Run it in the same
/// transaction as the action, so a failed action releases the claim.
pub async fn claim(db: &impl ConnectionTrait, name: &str) -> Result<bool, StoreError> {
    let row = bootstrap_marker::ActiveModel {
        name: Set(name.to_owned()),
        created_at: Set(chrono::Utc::now()),
    };
    match bootstrap_marker::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
