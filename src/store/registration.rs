//! Initial access tokens (RFC 7591 §3) and the registration policy an administrator set.

use chrono::{DateTime, Utc};
use entity::{initial_access_token as iat, registration_policy as policy};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::StoreError;

/// An initial access token as stored (its hash, never the token).
#[derive(Debug, Clone)]
pub struct InitialAccessToken {
    pub id: String,
    pub hash: Vec<u8>,
    pub scope: String,
    pub uses: i32,
    pub uses_left: i32,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<iat::Model> for InitialAccessToken {
    fn from(m: iat::Model) -> Self {
        Self {
            id: m.id,
            hash: m.token_hash,
            scope: m.scope,
            uses: m.uses,
            uses_left: m.uses_left,
            created_by: m.created_by,
            created_at: m.created_at,
            expires_at: m.expires_at,
        }
    }
}

pub async fn insert_token(
    db: &impl ConnectionTrait,
    token: &InitialAccessToken,
) -> Result<(), StoreError> {
    iat::Entity::insert(iat::ActiveModel {
        id: Set(token.id.clone()),
        token_hash: Set(token.hash.clone()),
        scope: Set(token.scope.clone()),
        uses_left: Set(token.uses_left),
        uses: Set(token.uses),
        created_by: Set(token.created_by.clone()),
        created_at: Set(token.created_at),
        expires_at: Set(token.expires_at),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// The token with this hash, whatever its state.
pub async fn find_token(
    db: &impl ConnectionTrait,
    hash: &[u8],
) -> Result<Option<InitialAccessToken>, StoreError> {
    Ok(iat::Entity::find()
        .filter(iat::Column::TokenHash.eq(hash.to_vec()))
        .one(db)
        .await?
        .map(Into::into))
}

/// Takes one use of the token `id` if it has one left and has not expired at `now`: one
/// conditional update, so two replicas can never both take the last use.
pub async fn take_use(
    db: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = iat::Entity::update_many()
        .col_expr(iat::Column::UsesLeft, Expr::col(iat::Column::UsesLeft).sub(1))
        .filter(iat::Column::Id.eq(id))
        .filter(iat::Column::UsesLeft.gt(0))
        .filter(iat::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Tokens ordered by id, after `after` (keyset pagination).
pub async fn list_tokens(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<InitialAccessToken>, StoreError> {
    let mut query = iat::Entity::find().order_by_asc(iat::Column::Id).limit(limit);
    if let Some(after) = after {
        query = query.filter(iat::Column::Id.gt(after));
    }
    Ok(query.all(db).await?.into_iter().map(Into::into).collect())
}

pub async fn delete_token(db: &impl ConnectionTrait, id: &str) -> Result<bool, StoreError> {
    Ok(iat::Entity::delete_by_id(id).exec(db).await?.rows_affected == 1)
}

/// Forgets up to `batch` tokens that expired or are used up.
pub async fn purge_tokens(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<iat::Entity, String>(
        db,
        iat::Column::ExpiresAt.lt(now).or(iat::Column::UsesLeft.lte(0)),
        iat::Column::Id,
        batch,
    )
    .await
}

/// The policy an administrator stored (JSON), if any.
pub async fn policy(db: &impl ConnectionTrait) -> Result<Option<String>, StoreError> {
    Ok(policy::Entity::find_by_id(1).one(db).await?.map(|row| row.policy))
}

/// Stores the policy (JSON), replacing the one before.
pub async fn set_policy(
    db: &impl ConnectionTrait,
    json: &str,
    updated_by: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    policy::Entity::insert(policy::ActiveModel {
        id: Set(1),
        policy: Set(json.to_owned()),
        updated_by: Set(updated_by.to_owned()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(policy::Column::Id)
            .update_columns([
                policy::Column::Policy,
                policy::Column::UpdatedBy,
                policy::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec(db)
    .await?;
    Ok(())
}
