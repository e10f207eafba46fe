//! TOTP secrets and recovery codes (docs/REFERENCE.md §3.4, §3.6). A code's time step is
//! accepted by one conditional update, a recovery code used by one delete: of two replicas
//! given the same code at once, exactly one accepts it.

use chrono::{DateTime, Utc};
use entity::{recovery_code, user_totp};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StoreError;

/// A user's confirmed TOTP: the sealed secret and the last step accepted.
#[derive(Debug, Clone)]
pub struct TotpRecord {
    pub sealed_secret: Vec<u8>,
    pub last_step: i64,
    pub created_at: DateTime<Utc>,
}

pub async fn find(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Option<TotpRecord>, StoreError> {
    Ok(user_totp::Entity::find_by_id(user_id.to_owned()).one(db).await?.map(|m| TotpRecord {
        sealed_secret: m.sealed_secret,
        last_step: m.last_step,
        created_at: m.created_at,
    }))
}

/// Turns TOTP on for `user_id` with its sealed secret, `last_step` already used (the
/// confirming code's), and the hashes of new recovery codes. `false`, changing nothing, when
/// it is on already (another enrolment got there first).
pub async fn enable(
    db: &impl ConnectionTrait,
    user_id: &str,
    sealed_secret: Vec<u8>,
    last_step: i64,
    recovery_hashes: Vec<Vec<u8>>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = user_totp::Entity::insert(user_totp::ActiveModel {
        user_id: Set(user_id.to_owned()),
        sealed_secret: Set(sealed_secret),
        last_step: Set(last_step),
        created_at: Set(now),
    })
    .on_conflict(OnConflict::column(user_totp::Column::UserId).do_nothing().to_owned())
    .exec_without_returning(db)
    .await?;
    if inserted != 1 {
        return Ok(false);
    }
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    recovery_code::Entity::insert_many(recovery_hashes.into_iter().map(|hash| {
        recovery_code::ActiveModel { code_hash: Set(hash), user_id: Set(user_id.to_owned()) }
    }))
    .exec_without_returning(db)
    .await?;
    Ok(true)
}

/// Turns TOTP off for `user_id` and drops its recovery codes; `false` if it was off.
pub async fn remove(db: &impl ConnectionTrait, user_id: &str) -> Result<bool, StoreError> {
    let removed = user_totp::Entity::delete_by_id(user_id.to_owned()).exec(db).await?;
    recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(removed.rows_affected == 1)
}

/// Accepts a code of time step `step` for `user_id` if no code of that step or a later one
/// was accepted before: one conditional update, so a code is accepted once on any replica.
pub async fn accept_step(
    db: &impl ConnectionTrait,
    user_id: &str,
    step: i64,
) -> Result<bool, StoreError> {
    let updated = user_totp::Entity::update_many()
        .col_expr(user_totp::Column::LastStep, Expr::value(step))
        .filter(user_totp::Column::UserId.eq(user_id))
        .filter(user_totp::Column::LastStep.lt(step))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Uses up the recovery code of hash `code_hash` of `user_id`: `true` if it was unused.
pub async fn use_recovery_code(
    db: &impl ConnectionTrait,
    user_id: &str,
    code_hash: &[u8],
) -> Result<bool, StoreError> {
    let deleted = recovery_code::Entity::delete_many()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(code_hash.to_vec()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// How many unused recovery codes `user_id` has.
pub async fn recovery_codes_left(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(recovery_code::Entity::find()
        .filter(recovery_code::Column::UserId.eq(user_id))
        .count(db)
        .await?)
}
