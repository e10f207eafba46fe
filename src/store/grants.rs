//! Consent grants: one per (user, client), its scopes extended as the user consents more.

use chrono::{DateTime, Utc};
use entity::grant;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use super::is_unique_violation;

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

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<GrantRecord>, DbErr> {
    Ok(grant::Entity::find_by_id(id).one(db).await?.map(GrantRecord::from))
}

pub async fn find_for(
    db: &impl ConnectionTrait,
    user_id: &str,
    client_id: &str,
) -> Result<Option<GrantRecord>, DbErr> {
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
) -> Result<Vec<GrantRecord>, DbErr> {
    let rows = grant::Entity::find()
        .filter(grant::Column::UserId.eq(user_id))
        .order_by_asc(grant::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows.into_iter().map(GrantRecord::from).collect())
}

/// Records a grant, or replaces the scope of the user's grant to that client. A concurrent
/// first consent loses the insert race and updates instead.
pub async fn upsert(db: &impl ConnectionTrait, record: &GrantRecord) -> Result<GrantRecord, DbErr> {
    if let Some(existing) = find_for(db, &record.user_id, &record.client_id).await? {
        return update_scope(db, existing, &record.scope, record.updated_at).await;
    }
    let row = grant::ActiveModel {
        id: Set(record.id.clone()),
        user_id: Set(record.user_id.clone()),
        client_id: Set(record.client_id.clone()),
        scope: Set(record.scope.clone()),
        created_at: Set(record.created_at),
        updated_at: Set(record.updated_at),
    };
    match grant::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(record.clone()),
        Err(e) if is_unique_violation(&e) => {
            let existing = find_for(db, &record.user_id, &record.client_id)
                .await?
                .ok_or_else(|| DbErr::RecordNotFound("grant".into()))?;
            update_scope(db, existing, &record.scope, record.updated_at).await
        }
        Err(e) => Err(e),
    }
}

async fn update_scope(
    db: &impl ConnectionTrait,
    mut existing: GrantRecord,
    scope: &str,
    now: DateTime<Utc>,
) -> Result<GrantRecord, DbErr> {
    grant::Entity::update_many()
        .col_expr(grant::Column::Scope, Expr::value(scope))
        .col_expr(grant::Column::UpdatedAt, Expr::value(now))
        .filter(grant::Column::Id.eq(&existing.id))
        .exec(db)
        .await?;
    existing.scope = scope.to_owned();
    existing.updated_at = now;
    Ok(existing)
}

/// Deletes a grant; `false` if it did not exist (or, with `user_id`, is not that user's).
pub async fn delete(
    db: &impl ConnectionTrait,
    id: &str,
    user_id: Option<&str>,
) -> Result<bool, DbErr> {
    let mut query = grant::Entity::delete_many().filter(grant::Column::Id.eq(id));
    if let Some(user_id) = user_id {
        query = query.filter(grant::Column::UserId.eq(user_id));
    }
    Ok(query.exec(db).await?.rows_affected == 1)
}
