//! Administrators' changes to dynamic registration (initial access tokens, the policy), each
//! in one transaction with its audit event.

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;

use super::audit::{self, Actor, Event, EventType};
use crate::store::registration::{self, InitialAccessToken};
use crate::store::{Db, StoreError};

/// Stores an initial access token (its hash), recording `initial_access_token.issued`.
pub async fn issue(db: &Db, token: &InitialAccessToken, actor: Actor) -> Result<(), StoreError> {
    let event = Event::new(EventType::InitialAccessTokenIssued, actor, subject(&token.id))
        .with("uses", token.uses)
        .with("scope", token.scope.as_str());
    let txn = db.begin().await?;
    registration::insert_token(&txn, token).await?;
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(())
}

/// Deletes an initial access token; `false` (nothing recorded) when there was none.
pub async fn revoke(db: &Db, id: &str, actor: Actor) -> Result<bool, StoreError> {
    let event = Event::new(EventType::InitialAccessTokenRevoked, actor, subject(id));
    let txn = db.begin().await?;
    if !registration::delete_token(&txn, id).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(true)
}

/// Stores the registration policy (JSON), recording `registration_policy.set` with its mode.
pub async fn set_policy(
    db: &Db,
    json: &str,
    mode: &str,
    updated_by: &str,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let event = Event::new(EventType::RegistrationPolicySet, actor, "registration_policy")
        .with("mode", mode);
    let txn = db.begin().await?;
    registration::set_policy(&txn, json, updated_by, now).await?;
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(())
}

fn subject(id: &str) -> String {
    format!("initial_access_token:{id}")
}
