//! The registered scopes: the rules a name and a description follow, which scopes are built
//! in, and the changes, each in one transaction with its audit event: a change refused (taken
//! name, unknown scope, still in use) rolls back and records nothing. The admin API and the
//! console both check and change scopes here.

use sea_orm::{DatabaseTransaction, TransactionTrait};

use super::audit::{self, Actor, Event, EventType};
use super::scope::is_scope_token;
use crate::store::scopes::{self, ScopeRecord, Written};
use crate::store::{Db, StoreError};

/// Scopes the server itself relies on; they cannot be deleted.
pub const BUILT_IN: [&str; 5] = ["openid", "profile", "email", "offline_access", "admin"];

/// A name or description that breaks the rules: the member at fault and a fixed description
/// (never the input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {description}")]
pub struct Invalid {
    pub field: &'static str,
    pub description: &'static str,
}

/// A scope name is an RFC 6749 §3.3 scope-token of at most 128 characters.
pub fn check_name(name: &str) -> Result<(), Invalid> {
    if is_scope_token(name) {
        return Ok(());
    }
    Err(Invalid {
        field: "name",
        description: "a scope name is 1 to 128 printable characters without spaces, quotes or \
                      backslashes",
    })
}

/// A description is 1 to 500 characters, none of them a control character.
pub fn check_description(description: &str) -> Result<(), Invalid> {
    let length = description.chars().count();
    if (1..=500).contains(&length) && !description.chars().any(char::is_control) {
        return Ok(());
    }
    Err(Invalid {
        field: "description",
        description: "description must be 1 to 500 printable characters",
    })
}

/// Whether `name` is one of the scopes the server relies on (never deleted).
pub fn is_built_in(name: &str) -> bool {
    BUILT_IN.contains(&name)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_scope_tokens_and_descriptions_printable() {
        assert!(check_name("reports:read").is_ok());
        for bad in ["", "two words", "a\"b", "a\\b", &"x".repeat(129)] {
            assert_eq!(check_name(bad).map_err(|e| e.field), Err("name"), "{bad:?}");
        }
        assert!(check_description("Read the reports").is_ok());
        for bad in ["", "line\nbreak", &"x".repeat(501)] {
            assert_eq!(check_description(bad).map_err(|e| e.field), Err("description"));
        }
        assert!(is_built_in("openid") && !is_built_in("reports:read"));
    }
}
