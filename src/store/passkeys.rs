//! Passkeys (docs/REFERENCE.md §3.4, §3.6): a user's registered WebAuthn credentials, found
//! by credential id at sign-in; and the challenges answered, until they expire. A challenge
//! is answered by one insert that does nothing when the row exists: of two replicas given the
//! same answer at once, exactly one accepts it.

use chrono::{DateTime, Utc};
use entity::{passkey, used_passkey_challenge, user};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::StoreError;
use super::users::UserRecord;

/// A registered passkey, as sign-in needs it. Holds no secret (a public key).
#[derive(Debug, Clone)]
pub struct PasskeyRecord {
    pub id: String,
    pub user_id: String,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub attachment: i16,
}

/// What a user (or an administrator) sees of a passkey.
#[derive(Debug, Clone)]
pub struct PasskeySummary {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether it may be synced between devices (the BE flag).
    pub backup_eligible: bool,
    /// The credential id, for the list of those an authenticator must not register again.
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
}

/// What the authenticator last reported: its counter and flags.
#[derive(Debug, Clone)]
pub struct Use {
    pub sign_count: i64,
    pub user_verified: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    /// 0 unknown, 1 platform, 2 cross-platform.
    pub attachment: i16,
}

/// A passkey just registered.
#[derive(Debug)]
pub struct NewPasskey {
    pub id: String,
    pub user_id: String,
    pub credential_id: Vec<u8>,
    pub user_handle: Vec<u8>,
    pub name: String,
    pub public_key: Vec<u8>,
    pub state: Use,
    pub created_at: DateTime<Utc>,
}

/// Stores a new passkey; `false`, storing nothing, when its credential id is registered.
pub async fn insert(db: &impl ConnectionTrait, new: NewPasskey) -> Result<bool, StoreError> {
    let inserted = passkey::Entity::insert(passkey::ActiveModel {
        id: Set(new.id),
        user_id: Set(new.user_id),
        credential_id: Set(new.credential_id),
        user_handle: Set(new.user_handle),
        name: Set(new.name),
        public_key: Set(new.public_key),
        sign_count: Set(new.state.sign_count),
        user_verified: Set(new.state.user_verified),
        backup_eligible: Set(new.state.backup_eligible),
        backup_state: Set(new.state.backup_state),
        attachment: Set(new.state.attachment),
        created_at: Set(new.created_at),
        last_used_at: Set(None),
    })
    .on_conflict(OnConflict::column(passkey::Column::CredentialId).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

/// The passkey of credential id `credential_id`, if one is registered, with its user (one
/// join, as a password sign-in reads its user).
pub async fn find_by_credential(
    db: &impl ConnectionTrait,
    credential_id: &[u8],
) -> Result<Option<(PasskeyRecord, Option<UserRecord>)>, StoreError> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::CredentialId.eq(credential_id.to_vec()))
        .find_also_related(user::Entity)
        .one(db)
        .await?
        .map(|(m, user)| {
            (
                PasskeyRecord {
                    id: m.id,
                    user_id: m.user_id,
                    credential_id: m.credential_id,
                    user_handle: m.user_handle,
                    public_key: m.public_key,
                    sign_count: m.sign_count,
                    user_verified: m.user_verified,
                    backup_eligible: m.backup_eligible,
                    backup_state: m.backup_state,
                    attachment: m.attachment,
                },
                user.map(UserRecord::from),
            )
        }))
}

/// The passkeys of `user_id`, oldest first.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<PasskeySummary>, StoreError> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user_id))
        .order_by_asc(passkey::Column::CreatedAt)
        .order_by_asc(passkey::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|m| PasskeySummary {
            id: m.id,
            name: m.name,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            backup_eligible: m.backup_eligible,
            credential_id: m.credential_id,
            user_handle: m.user_handle,
        })
        .collect())
}

/// Stores what a sign-in with passkey `id` reported, and when it was used.
pub async fn record_use(
    db: &impl ConnectionTrait,
    id: &str,
    used: &Use,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    passkey::Entity::update_many()
        .col_expr(passkey::Column::SignCount, Expr::value(used.sign_count))
        .col_expr(passkey::Column::UserVerified, Expr::value(used.user_verified))
        .col_expr(passkey::Column::BackupEligible, Expr::value(used.backup_eligible))
        .col_expr(passkey::Column::BackupState, Expr::value(used.backup_state))
        .col_expr(passkey::Column::Attachment, Expr::value(used.attachment))
        .col_expr(passkey::Column::LastUsedAt, Expr::value(now))
        .filter(passkey::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Renames the passkey `id` if it is one of `user_id`'s; whether it was.
pub async fn rename(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    name: &str,
) -> Result<bool, StoreError> {
    let updated = passkey::Entity::update_many()
        .col_expr(passkey::Column::Name, Expr::value(name))
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Removes the passkey `id` if it is one of `user_id`'s; whether it was. The audit event
/// goes with it: call `oauth::passkeys::remove`, which records both in one transaction.
pub async fn remove(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let deleted = passkey::Entity::delete_many()
        .filter(passkey::Column::Id.eq(id))
        .filter(passkey::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// Marks the challenge of hash `challenge_hash` answered until `expires_at`: `false` if it
/// was answered before (a replay).
pub async fn answer_challenge(
    db: &impl ConnectionTrait,
    challenge_hash: Vec<u8>,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = used_passkey_challenge::Entity::insert(used_passkey_challenge::ActiveModel {
        challenge_hash: Set(challenge_hash),
        expires_at: Set(expires_at),
    })
    .on_conflict(
        OnConflict::column(used_passkey_challenge::Column::ChallengeHash).do_nothing().to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted == 1)
}

/// Forgets up to `batch` answered challenges that have expired (an answer to one is refused
/// as expired anyway).
pub async fn purge_challenges(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<used_passkey_challenge::Entity, Vec<u8>>(
        db,
        used_passkey_challenge::Column::ExpiresAt.lt(now),
        used_passkey_challenge::Column::ChallengeHash,
        batch,
    )
    .await
}
