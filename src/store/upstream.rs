//! Upstream identity providers and the identities linked to users (docs/REFERENCE.md §3.14).
//! A link is found by (issuer, subject) only; one insert that fails on the primary key makes
//! two concurrent first sign-ins of one identity create one link.

use chrono::{DateTime, Utc};
use entity::{upstream_provider, user_identity};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use super::scopes::Written;
use super::users::UserRecord;
use super::{StoreError, is_unique_violation};

/// A provider as stored: the client secret still sealed.
#[derive(Clone)]
pub struct ProviderRecord {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// Sealed under the master key, bound to the provider id (`oauth::upstream`).
    pub sealed_secret: String,
    pub scope: String,
    /// JSON object: profile field → upstream claim.
    pub claim_mapping: String,
    pub create_users: bool,
    pub trust_mfa: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Never the sealed secret in a log either.
impl std::fmt::Debug for ProviderRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRecord")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl From<upstream_provider::Model> for ProviderRecord {
    fn from(m: upstream_provider::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            issuer: m.issuer,
            client_id: m.client_id,
            sealed_secret: m.client_secret,
            scope: m.scope,
            claim_mapping: m.claim_mapping,
            create_users: m.create_users,
            trust_mfa: m.trust_mfa,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

fn active_model(r: &ProviderRecord) -> upstream_provider::ActiveModel {
    upstream_provider::ActiveModel {
        id: Set(r.id.clone()),
        name: Set(r.name.clone()),
        issuer: Set(r.issuer.clone()),
        client_id: Set(r.client_id.clone()),
        client_secret: Set(r.sealed_secret.clone()),
        scope: Set(r.scope.clone()),
        claim_mapping: Set(r.claim_mapping.clone()),
        create_users: Set(r.create_users),
        trust_mfa: Set(r.trust_mfa),
        created_at: Set(r.created_at),
        updated_at: Set(r.updated_at),
    }
}

/// Every provider, by id: the login page's buttons (a handful of rows).
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<ProviderRecord>, StoreError> {
    let found = upstream_provider::Entity::find()
        .order_by_asc(upstream_provider::Column::Id)
        .limit(100)
        .all(db)
        .await?;
    Ok(found.into_iter().map(ProviderRecord::from).collect())
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<ProviderRecord>, StoreError> {
    Ok(upstream_provider::Entity::find_by_id(id).one(db).await?.map(ProviderRecord::from))
}

/// Inserts a provider; `Conflict` when the id is taken.
pub async fn insert(
    db: &impl ConnectionTrait,
    record: &ProviderRecord,
) -> Result<Written, StoreError> {
    match upstream_provider::Entity::insert(active_model(record)).exec(db).await {
        Ok(_) => Ok(Written::Done),
        Err(e) if is_unique_violation(&e) => Ok(Written::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// Replaces a provider's settings (all but its id and creation time).
pub async fn replace(
    db: &impl ConnectionTrait,
    record: &ProviderRecord,
) -> Result<Written, StoreError> {
    let mut model = active_model(record);
    model.id = sea_orm::ActiveValue::NotSet;
    model.created_at = sea_orm::ActiveValue::NotSet;
    let updated = upstream_provider::Entity::update_many()
        .set(model)
        .filter(upstream_provider::Column::Id.eq(&record.id))
        .exec(db)
        .await?;
    Ok(if updated.rows_affected == 1 { Written::Done } else { Written::NotFound })
}

/// Deletes a provider. The identities linked through it stay (keyed by issuer): adding the
/// provider again finds them again.
pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<bool, StoreError> {
    Ok(upstream_provider::Entity::delete_by_id(id).exec(db).await?.rows_affected == 1)
}

/// A user's identity at an upstream provider.
#[derive(Debug, Clone)]
pub struct IdentityRecord {
    pub issuer: String,
    pub subject: String,
    pub user_id: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
}

impl From<user_identity::Model> for IdentityRecord {
    fn from(m: user_identity::Model) -> Self {
        Self {
            issuer: m.issuer,
            subject: m.subject,
            user_id: m.user_id,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
        }
    }
}

/// The user linked to (issuer, subject), in one read with the user row.
pub async fn find_linked(
    db: &impl ConnectionTrait,
    issuer: &str,
    subject: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let found = user_identity::Entity::find_by_id((issuer.to_owned(), subject.to_owned()))
        .find_also_related(entity::user::Entity)
        .one(db)
        .await?;
    Ok(found.and_then(|(_, user)| user).map(UserRecord::from))
}

/// Links (issuer, subject) to `user_id`; `Conflict` when it is linked already (to anyone).
pub async fn link(
    db: &impl ConnectionTrait,
    issuer: &str,
    subject: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Written, StoreError> {
    let row = user_identity::ActiveModel {
        issuer: Set(issuer.to_owned()),
        subject: Set(subject.to_owned()),
        user_id: Set(user_id.to_owned()),
        created_at: Set(now),
        last_used_at: Set(now),
    };
    match user_identity::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(Written::Done),
        Err(e) if is_unique_violation(&e) => Ok(Written::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// Records a sign-in through a link.
pub async fn touch(
    db: &impl ConnectionTrait,
    issuer: &str,
    subject: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    user_identity::Entity::update_many()
        .col_expr(user_identity::Column::LastUsedAt, Expr::value(now))
        .filter(user_identity::Column::Issuer.eq(issuer))
        .filter(user_identity::Column::Subject.eq(subject))
        .exec(db)
        .await?;
    Ok(())
}

/// Removes one of `user_id`'s links; whether it was theirs.
pub async fn unlink(
    db: &impl ConnectionTrait,
    user_id: &str,
    issuer: &str,
    subject: &str,
) -> Result<bool, StoreError> {
    let deleted = user_identity::Entity::delete_many()
        .filter(user_identity::Column::Issuer.eq(issuer))
        .filter(user_identity::Column::Subject.eq(subject))
        .filter(user_identity::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected == 1)
}

/// A user's links, oldest first.
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: &str,
) -> Result<Vec<IdentityRecord>, StoreError> {
    let found = user_identity::Entity::find()
        .filter(user_identity::Column::UserId.eq(user_id))
        .order_by_asc(user_identity::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(found.into_iter().map(IdentityRecord::from).collect())
}
