//! Registered scopes.

use chrono::{DateTime, Utc};
use entity::scope;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::StoreError;
use super::{is_foreign_key_violation, is_unique_violation};

#[derive(Debug, Clone)]
pub struct ScopeRecord {
    pub name: String,
    pub description: String,
    pub created_at: DateTime<Utc>,
}

impl From<scope::Model> for ScopeRecord {
    fn from(m: scope::Model) -> Self {
        Self { name: m.name, description: m.description, created_at: m.created_at }
    }
}

/// What a write did.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    Done,
    NotFound,
    /// A name already taken, or a scope still allowed to some client.
    Conflict,
}

pub async fn find(
    db: &impl ConnectionTrait,
    name: &str,
) -> Result<Option<ScopeRecord>, StoreError> {
    Ok(scope::Entity::find_by_id(name).one(db).await?.map(ScopeRecord::from))
}

pub async fn list(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<ScopeRecord>, StoreError> {
    let mut query = scope::Entity::find().order_by_asc(scope::Column::Name).limit(limit);
    if let Some(after) = after {
        query = query.filter(scope::Column::Name.gt(after));
    }
    Ok(query.all(db).await?.into_iter().map(ScopeRecord::from).collect())
}

/// Which of `names` are registered.
pub async fn existing(
    db: &impl ConnectionTrait,
    names: &[String],
) -> Result<Vec<String>, StoreError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let rows =
        scope::Entity::find().filter(scope::Column::Name.is_in(names.to_vec())).all(db).await?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

pub async fn insert(
    db: &impl ConnectionTrait,
    record: &ScopeRecord,
) -> Result<Written, StoreError> {
    let row = scope::ActiveModel {
        name: Set(record.name.clone()),
        description: Set(record.description.clone()),
        created_at: Set(record.created_at),
    };
    match scope::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(Written::Done),
        Err(e) if is_unique_violation(&e) => Ok(Written::Conflict),
        Err(e) => Err(e.into()),
    }
}

pub async fn update(
    db: &impl ConnectionTrait,
    name: &str,
    description: &str,
) -> Result<Written, StoreError> {
    let updated = scope::Entity::update_many()
        .col_expr(scope::Column::Description, Expr::value(description))
        .filter(scope::Column::Name.eq(name))
        .exec(db)
        .await?;
    Ok(if updated.rows_affected == 1 { Written::Done } else { Written::NotFound })
}

pub async fn delete(db: &impl ConnectionTrait, name: &str) -> Result<Written, StoreError> {
    match scope::Entity::delete_by_id(name).exec(db).await {
        Ok(r) if r.rows_affected == 1 => Ok(Written::Done),
        Ok(_) => Ok(Written::NotFound),
        Err(e) if is_foreign_key_violation(&e) => Ok(Written::Conflict),
        Err(e) => Err(e.into()),
    }
}
