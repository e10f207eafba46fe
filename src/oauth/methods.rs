//! A user's sign-in methods as administrators see and manage them (docs/REFERENCE.md §6):
//! which are set up, and turning one off for a user who lost the device. Each change is an
//! audit event in the change's transaction.

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::Serialize;

use super::audit::{self, Event};
use crate::store::{self, Db, StoreError};

/// What a user can sign in with. Never a secret, a hash or a recovery code.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserMethods {
    /// Whether the user has a password (one created by an upstream provider has none until
    /// an administrator sets one).
    pub password: bool,
    /// The authenticator app, if one is set up.
    pub totp: Option<TotpMethod>,
    /// Passkeys, the oldest first.
    pub passkeys: Vec<PasskeyMethod>,
    /// Identities at upstream providers linked to the user, the oldest first.
    pub identities: Vec<IdentityMethod>,
}

/// An identity at an upstream provider (docs/REFERENCE.md §3.14).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IdentityMethod {
    pub issuer: String,
    pub subject: String,
    pub linked_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

/// A passkey as administrators see it: never its credential id or public key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasskeyMethod {
    pub id: String,
    pub name: String,
    /// Whether it may be synced between devices (`phr`), else bound to one (`phrh`).
    pub synced: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TotpMethod {
    pub enrolled_at: DateTime<Utc>,
    pub recovery_codes_left: u64,
}

/// The methods of `user_id`; `None` if there is no such user.
pub async fn of(db: &Db, user_id: &str) -> Result<Option<UserMethods>, StoreError> {
    let Some(user) = store::users::find(db, user_id).await? else { return Ok(None) };
    let totp = match store::totp::find(db, user_id).await? {
        Some(record) => Some(TotpMethod {
            enrolled_at: record.created_at,
            recovery_codes_left: store::totp::recovery_codes_left(db, user_id).await?,
        }),
        None => None,
    };
    let passkeys = store::passkeys::list_for_user(db, user_id)
        .await?
        .into_iter()
        .map(|p| PasskeyMethod {
            id: p.id,
            name: p.name,
            synced: p.backup_eligible,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        })
        .collect();
    let identities = store::upstream::list_for_user(db, user_id)
        .await?
        .into_iter()
        .map(|i| IdentityMethod {
            issuer: i.issuer,
            subject: i.subject,
            linked_at: i.created_at,
            last_used_at: i.last_used_at,
        })
        .collect();
    let password = user.has_password();
    Ok(Some(UserMethods { password, totp, passkeys, identities }))
}

/// Turns the authenticator app of `user_id` off, with its recovery codes, recording `event`
/// (`mfa.totp_removed`) in the same transaction; `false`, recording nothing, if it was off.
pub async fn turn_off_totp(db: &Db, user_id: &str, event: &Event) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    if !store::totp::remove(&txn, user_id).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    audit::record(&txn, event).await?;
    txn.commit().await?;
    event.log();
    Ok(true)
}
