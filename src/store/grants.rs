//! Consent grants: one per (user, client), its scopes extended as the user consents more.

use chrono::{DateTime, Utc};
use entity::grant;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use super::StoreError;

#[derive(Debug, Clone)]
pub struct GrantRecord {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<grant::Model> for GrantRecord {
    fn from(m: grant::Model) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            client_id: m.client_id,
            scope: m.scope,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<GrantRecord>, StoreError> {
    Ok(grant::Entity::find_by_id(id).one(db).await?.map(GrantRecord::from))
}

pub async fn find_for(
    db: &impl ConnectionTrait,
    user_id: &str,
    client_id: &str,
) -> Result<Option<GrantRecord>, StoreError> {
    let found = grant::Entity::find()
        .filter(grant::Column::UserId.eq(user_id))
        .filter(grant::Column::ClientId.eq(client_id))
        .one(db)
        .await?;
    Ok(found.map(GrantRecord::from))
}

pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<GrantRecord>, StoreError> {
    let rows = grant::Entity::find()
        .filter(grant::Column::UserId.eq(user_id))
        .order_by_asc(grant::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(GrantRecord::from).collect())
}

/// Records a user's consent to a client: creates the grant, or extends its scope with
/// `merge(current scope)`. Atomic: the scope is replaced only if it is still what was read
/// (compare-and-set), retried otherwise, so concurrent consents never lose a scope; a
/// concurrent first consent loses the insert race and extends the winner's grant.
///
/// Written first, read after: run in a transaction on SQLite, the insert takes the write lock
/// before anything is read (a read-then-write transaction would fail on a concurrent write
/// instead of waiting for it). The insert does nothing when the grant exists (no violation,
/// which would abort a Postgres transaction).
pub async fn consent(
    db: &impl ConnectionTrait,
    user_id: &str,
    client_id: &str,
    now: DateTime<Utc>,
    merge: impl Fn(Option<&str>) -> String,
) -> Result<GrantRecord, StoreError> {
    const ATTEMPTS: usize = 16;
    for _ in 0..ATTEMPTS {
        let record = GrantRecord {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.to_owned(),
            client_id: client_id.to_owned(),
            scope: merge(None),
            created_at: now,
            updated_at: now,
        };
        let row = grant::ActiveModel {
            id: Set(record.id.clone()),
            user_id: Set(record.user_id.clone()),
            client_id: Set(record.client_id.clone()),
            scope: Set(record.scope.clone()),
            created_at: Set(record.created_at),
            updated_at: Set(record.updated_at),
        };
        let inserted = grant::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([grant::Column::UserId, grant::Column::ClientId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
        if inserted == 1 {
            return Ok(record);
        }
        // Revoked between the insert and this read: the next turn inserts it again.
        let Some(mut existing) = find_for(db, user_id, client_id).await? else { continue };
        let scope = merge(Some(&existing.scope));
        let swapped = grant::Entity::update_many()
            .col_expr(grant::Column::Scope, Expr::value(scope.as_str()))
            .col_expr(grant::Column::UpdatedAt, Expr::value(now))
            .filter(grant::Column::Id.eq(&existing.id))
            .filter(grant::Column::Scope.eq(existing.scope.as_str()))
            .exec(db)
            .await?;
        if swapped.rows_affected == 1 {
            existing.scope = scope;
            existing.updated_at = now;
            return Ok(existing);
        }
    }
    Err(StoreError::Other(anyhow::anyhow!("the grant kept changing under {ATTEMPTS} consents")))
}

/// Deletes a grant; `false` if it did not exist (or, with `user_id`, is not that user's).
pub async fn delete(
    db: &impl ConnectionTrait,
    id: &str,
    user_id: Option<&str>,
) -> Result<bool, StoreError> {
    let mut query = grant::Entity::delete_many().filter(grant::Column::Id.eq(id));
    if let Some(user_id) = user_id {
        query = query.filter(grant::Column::UserId.eq(user_id));
    }
    Ok(query.exec(db).await?.rows_affected == 1)
}
