//! Rows of the key ring: listing, inserting, and the rotation transaction.

use chrono::{DateTime, Utc};
use entity::signing_key::{self, Entity as SigningKeys};
use sea_orm::sea_query::Expr;
use serde::Serialize;

use super::StoreError;
use super::is_unique_violation;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

/// A key's place in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Next,
    Active,
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "next" => Some(Self::Next),
            "active" => Some(Self::Active),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// A key as stored: the private part still sealed under the master key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub public_jwk: String,
    pub sealed_private_key: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

impl TryFrom<signing_key::Model> for StoredKey {
    type Error = StoreError;

    fn try_from(m: signing_key::Model) -> Result<Self, StoreError> {
        let state = KeyState::parse(&m.state)
            .ok_or_else(|| StoreError::corrupt(format!("signing key {} state", m.kid)))?;
        Ok(Self {
            kid: m.kid,
            alg: m.alg,
            state,
            public_jwk: m.public_jwk,
            sealed_private_key: m.private_key,
            created_at: m.created_at,
            activated_at: m.activated_at,
            retired_at: m.retired_at,
        })
    }
}

/// Every key, oldest first.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<StoredKey>, StoreError> {
    let rows = SigningKeys::find().order_by_asc(signing_key::Column::CreatedAt).all(db).await?;
    rows.into_iter().map(StoredKey::try_from).collect()
}

/// Inserts a key; `Ok(false)` when another writer already holds that state for the
/// algorithm (the partial unique index refused it).
pub async fn insert(db: &impl ConnectionTrait, key: StoredKey) -> Result<bool, StoreError> {
    let row = signing_key::ActiveModel {
        kid: Set(key.kid),
        alg: Set(key.alg),
        state: Set(key.state.as_str().to_owned()),
        public_jwk: Set(key.public_jwk),
        private_key: Set(key.sealed_private_key),
        created_at: Set(key.created_at),
        activated_at: Set(key.activated_at),
        retired_at: Set(key.retired_at),
    };
    match SigningKeys::insert(row).exec(db).await {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Why a rotation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("the key ring changed under this rotation (another replica rotated)")]
    Raced,
    #[error(transparent)]
    Db(#[from] StoreError),
}

impl From<sea_orm::DbErr> for RotateError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Db(e.into())
    }
}

/// One algorithm's step of a rotation: `active` retires, `next` activates, `new_next` is
/// published.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub active: String,
    pub next: String,
    pub new_next: StoredKey,
}

/// Applies every rotation in the caller's transaction `txn` (which commits it with its audit
/// events). Each step is conditional on the state it expects, so of two concurrent rotations
/// one wins and the other changes nothing: `Raced`, and the caller's transaction rolls back.
pub async fn rotate(
    txn: &impl ConnectionTrait,
    rotations: &[Rotation],
    now: DateTime<Utc>,
) -> Result<(), RotateError> {
    for rotation in rotations {
        // Retire first: the partial unique index allows one `active` key per algorithm.
        let retired = SigningKeys::update_many()
            .col_expr(signing_key::Column::State, Expr::value(KeyState::Retired.as_str()))
            .col_expr(signing_key::Column::RetiredAt, Expr::value(now))
            .filter(signing_key::Column::Kid.eq(&rotation.active))
            .filter(signing_key::Column::State.eq(KeyState::Active.as_str()))
            .exec(txn)
            .await?;
        let activated = SigningKeys::update_many()
            .col_expr(signing_key::Column::State, Expr::value(KeyState::Active.as_str()))
            .col_expr(signing_key::Column::ActivatedAt, Expr::value(now))
            .filter(signing_key::Column::Kid.eq(&rotation.next))
            .filter(signing_key::Column::State.eq(KeyState::Next.as_str()))
            .exec(txn)
            .await?;
        if retired.rows_affected != 1
            || activated.rows_affected != 1
            || !insert(txn, rotation.new_next.clone()).await?
        {
            return Err(RotateError::Raced);
        }
    }
    Ok(())
}
