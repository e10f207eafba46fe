//! Changes to the registered scopes, each in one transaction with its audit event: a change
//! refused (taken name, unknown scope, still in use) rolls back and records nothing.

use sea_orm::{DatabaseTransaction, TransactionTrait};

use super::audit::{self, Actor, Event, EventType};
use crate::store::scopes::{self, ScopeRecord, Written};
use crate::store::{Db, StoreError};

/// Registers a scope.
pub async fn create(db: &Db, record: &ScopeRecord, actor: Actor) -> Result<Written, StoreError> {
    let txn = db.begin().await?;
    let written = scopes::insert(&txn, record).await?;
    let event = Event::new(EventType::ScopeCreated, actor, subject(&record.name));
    finish(txn, written, event).await
}

/// Replaces a scope's description.
pub async fn update(
    db: &Db,
    name: &str,
    description: &str,
    actor: Actor,
) -> Result<Written, StoreError> {
    let txn = db.begin().await?;
    let written = scopes::update(&txn, name, description).await?;
    finish(txn, written, Event::new(EventType::ScopeUpdated, actor, subject(name))).await
}

/// Deletes a scope no client is allowed.
pub async fn delete(db: &Db, name: &str, actor: Actor) -> Result<Written, StoreError> {
    let txn = db.begin().await?;
    let written = scopes::delete(&txn, name).await?;
    finish(txn, written, Event::new(EventType::ScopeDeleted, actor, subject(name))).await
}

fn subject(name: &str) -> String {
    format!("scope:{name}")
}

/// Commits a change that was done with its event, or rolls back one that was not.
async fn finish(
    txn: DatabaseTransaction,
    written: Written,
    event: Event,
) -> Result<Written, StoreError> {
    if written != Written::Done {
        txn.rollback().await?;
        return Ok(written);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(written)
}
