//! Client rows with their allowed scopes and secret hashes; the assertion replay guard.

use chrono::{DateTime, Utc};
use entity::{client, client_scope, client_secret, used_assertion};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, TransactionSession, TransactionTrait,
};

use super::StoreError;
use super::is_unique_violation;

/// A client as stored. List members are JSON text.
#[derive(Debug, Clone)]
pub struct ClientRecord {
    pub client_id: String,
    pub client_name: String,
    pub redirect_uris: String,
    pub grant_types: String,
    pub response_types: String,
    pub token_endpoint_auth_method: String,
    pub jwks: Option<String>,
    pub post_logout_redirect_uris: String,
    pub audience: String,
    /// JSON list of the resource identifiers of the APIs the client runs.
    pub served_resources: String,
    /// `access_token_signed_response_alg`.
    pub access_token_alg: String,
    pub dpop_bound_access_tokens: bool,
    pub require_pushed_authorization_requests: bool,
    pub require_mfa: bool,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    pub jwks_uri: Option<String>,
    pub id_token_alg: String,
    pub security_profile: Option<String>,
    pub refresh_token_rotation: bool,
    /// `admin` or `dynamic`.
    pub registration: String,
    pub registration_token_hash: Option<Vec<u8>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub client_uri: Option<String>,
    pub lifetimes: StoredLifetimes,
    pub scopes: Vec<String>,
    pub secrets: Vec<SecretRecord>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Per-client lifetimes in seconds; `None` takes the server default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredLifetimes {
    pub access_token: Option<i32>,
    pub id_token: Option<i32>,
    pub refresh_token: Option<i32>,
    pub refresh_token_absolute: Option<i32>,
    pub authorization_code: Option<i32>,
}

#[derive(Debug, Clone)]
pub struct SecretRecord {
    pub hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn find(
    db: &impl ConnectionTrait,
    client_id: &str,
) -> Result<Option<ClientRecord>, StoreError> {
    let Some(row) = client::Entity::find_by_id(client_id).one(db).await? else {
        return Ok(None);
    };
    Ok(attach(db, vec![row]).await?.pop())
}

/// Clients ordered by id, after `after` (keyset pagination).
pub async fn list(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<ClientRecord>, StoreError> {
    let mut query = client::Entity::find().order_by_asc(client::Column::ClientId).limit(limit);
    if let Some(after) = after {
        query = query.filter(client::Column::ClientId.gt(after));
    }
    attach(db, query.all(db).await?).await
}

/// Up to `limit` clients after `after` whose id or name contains `term`, ignoring ASCII case
/// on both databases (the console's search).
pub async fn list_matching(
    db: &impl ConnectionTrait,
    term: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<ClientRecord>, StoreError> {
    let matches = Condition::any()
        .add(super::contains_ignoring_case(client::Column::ClientId, term))
        .add(super::contains_ignoring_case(client::Column::ClientName, term));
    let mut query =
        client::Entity::find().filter(matches).order_by_asc(client::Column::ClientId).limit(limit);
    if let Some(after) = after {
        query = query.filter(client::Column::ClientId.gt(after));
    }
    attach(db, query.all(db).await?).await
}

/// Loads the scopes and secrets of `rows` in two queries.
async fn attach(
    db: &impl ConnectionTrait,
    rows: Vec<client::Model>,
) -> Result<Vec<ClientRecord>, StoreError> {
    let ids: Vec<String> = rows.iter().map(|r| r.client_id.clone()).collect();
    let scopes = client_scope::Entity::find()
        .filter(client_scope::Column::ClientId.is_in(ids.clone()))
        .order_by_asc(client_scope::Column::Position)
        .all(db)
        .await?;
    let secrets = client_secret::Entity::find()
        .filter(client_secret::Column::ClientId.is_in(ids))
        .order_by_asc(client_secret::Column::CreatedAt)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| ClientRecord {
            scopes: scopes
                .iter()
                .filter(|s| s.client_id == r.client_id)
                .map(|s| s.scope.clone())
                .collect(),
            secrets: secrets
                .iter()
                .filter(|s| s.client_id == r.client_id)
                .map(|s| SecretRecord {
                    hash: s.secret_hash.clone(),
                    created_at: s.created_at,
                    expires_at: s.expires_at,
                })
                .collect(),
            lifetimes: StoredLifetimes {
                access_token: r.access_token_lifetime,
                id_token: r.id_token_lifetime,
                refresh_token: r.refresh_token_lifetime,
                refresh_token_absolute: r.refresh_token_absolute_lifetime,
                authorization_code: r.authorization_code_lifetime,
            },
            client_id: r.client_id,
            client_name: r.client_name,
            redirect_uris: r.redirect_uris,
            grant_types: r.grant_types,
            response_types: r.response_types,
            token_endpoint_auth_method: r.token_endpoint_auth_method,
            jwks: r.jwks,
            post_logout_redirect_uris: r.post_logout_redirect_uris,
            audience: r.audience,
            served_resources: r.served_resources,
            access_token_alg: r.access_token_signed_response_alg,
            dpop_bound_access_tokens: r.dpop_bound_access_tokens,
            require_pushed_authorization_requests: r.require_pushed_authorization_requests,
            require_mfa: r.require_mfa,
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required,
            jwks_uri: r.jwks_uri,
            id_token_alg: r.id_token_signed_response_alg,
            security_profile: r.security_profile,
            refresh_token_rotation: r.refresh_token_rotation,
            registration: r.registration,
            registration_token_hash: r.registration_token_hash,
            last_used_at: r.last_used_at,
            client_uri: r.client_uri,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect())
}

fn active_model(record: &ClientRecord) -> client::ActiveModel {
    let lifetimes = record.lifetimes;
    client::ActiveModel {
        client_id: Set(record.client_id.clone()),
        client_name: Set(record.client_name.clone()),
        redirect_uris: Set(record.redirect_uris.clone()),
        grant_types: Set(record.grant_types.clone()),
        response_types: Set(record.response_types.clone()),
        token_endpoint_auth_method: Set(record.token_endpoint_auth_method.clone()),
        jwks: Set(record.jwks.clone()),
        post_logout_redirect_uris: Set(record.post_logout_redirect_uris.clone()),
        audience: Set(record.audience.clone()),
        served_resources: Set(record.served_resources.clone()),
        access_token_signed_response_alg: Set(record.access_token_alg.clone()),
        dpop_bound_access_tokens: Set(record.dpop_bound_access_tokens),
        require_pushed_authorization_requests: Set(record.require_pushed_authorization_requests),
        require_mfa: Set(record.require_mfa),
        backchannel_logout_uri: Set(record.backchannel_logout_uri.clone()),
        backchannel_logout_session_required: Set(record.backchannel_logout_session_required),
        jwks_uri: Set(record.jwks_uri.clone()),
        id_token_signed_response_alg: Set(record.id_token_alg.clone()),
        security_profile: Set(record.security_profile.clone()),
        refresh_token_rotation: Set(record.refresh_token_rotation),
        registration: Set(record.registration.clone()),
        registration_token_hash: Set(record.registration_token_hash.clone()),
        last_used_at: Set(record.last_used_at),
        client_uri: Set(record.client_uri.clone()),
        access_token_lifetime: Set(lifetimes.access_token),
        id_token_lifetime: Set(lifetimes.id_token),
        refresh_token_lifetime: Set(lifetimes.refresh_token),
        refresh_token_absolute_lifetime: Set(lifetimes.refresh_token_absolute),
        authorization_code_lifetime: Set(lifetimes.authorization_code),
        created_at: Set(record.created_at),
        updated_at: Set(record.updated_at),
    }
}

async fn insert_scopes(
    db: &impl ConnectionTrait,
    client_id: &str,
    scopes: &[String],
) -> Result<(), StoreError> {
    if scopes.is_empty() {
        return Ok(());
    }
    let rows = scopes.iter().enumerate().map(|(i, scope)| client_scope::ActiveModel {
        client_id: Set(client_id.to_owned()),
        scope: Set(scope.clone()),
        position: Set(i32::try_from(i).unwrap_or(i32::MAX)),
    });
    client_scope::Entity::insert_many(rows).exec(db).await?;
    Ok(())
}

async fn insert_secret(
    db: &impl ConnectionTrait,
    client_id: &str,
    secret: &SecretRecord,
) -> Result<(), StoreError> {
    client_secret::Entity::insert(client_secret::ActiveModel {
        id: Set(uuid::Uuid::new_v4().to_string()),
        client_id: Set(client_id.to_owned()),
        secret_hash: Set(secret.hash.clone()),
        created_at: Set(secret.created_at),
        expires_at: Set(secret.expires_at),
    })
    .exec(db)
    .await?;
    Ok(())
}

/// Inserts a client with its scopes and secrets in one transaction.
pub async fn insert(db: &impl TransactionTrait, record: &ClientRecord) -> Result<(), StoreError> {
    let txn = db.begin().await?;
    insert_in(&txn, record).await?;
    Ok(txn.commit().await?)
}

/// Inserts a client only if the one-time action `marker` was never taken, in one
/// transaction; `false` when another replica (or an earlier start) already took it.
pub async fn insert_once(
    db: &impl TransactionTrait,
    marker: &str,
    record: &ClientRecord,
) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    if !super::bootstrap::claim(&txn, marker).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    insert_in(&txn, record).await?;
    txn.commit().await?;
    Ok(true)
}

/// Inserts a client with its scopes and secrets inside the caller's transaction.
pub async fn insert_in(
    txn: &impl ConnectionTrait,
    record: &ClientRecord,
) -> Result<(), StoreError> {
    client::Entity::insert(active_model(record)).exec(txn).await?;
    insert_scopes(txn, &record.client_id, &record.scopes).await?;
    for secret in &record.secrets {
        insert_secret(txn, &record.client_id, secret).await?;
    }
    Ok(())
}

/// Replaces a client's metadata and scopes; `false` if it does not exist. With
/// `end_secrets_at`, every secret still valid then stops at that time (the client no longer
/// authenticates with a secret, so none may come back to life later).
pub async fn replace(
    db: &impl TransactionTrait,
    record: &ClientRecord,
    end_secrets_at: Option<DateTime<Utc>>,
) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    let mut model = active_model(record);
    // What a replacement cannot change: when and how the client came, and when it was used.
    model.created_at = sea_orm::ActiveValue::NotSet;
    model.registration = sea_orm::ActiveValue::NotSet;
    model.last_used_at = sea_orm::ActiveValue::NotSet;
    let updated = client::Entity::update_many()
        .set(model)
        .filter(client::Column::ClientId.eq(&record.client_id))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    client_scope::Entity::delete_many()
        .filter(client_scope::Column::ClientId.eq(&record.client_id))
        .exec(&txn)
        .await?;
    insert_scopes(&txn, &record.client_id, &record.scopes).await?;
    if let Some(at) = end_secrets_at {
        end_secrets(&txn, &record.client_id, at).await?;
    }
    txn.commit().await?;
    Ok(true)
}

/// Makes every secret of the client that is valid past `at` expire at `at`.
async fn end_secrets(
    txn: &impl ConnectionTrait,
    client_id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    client_secret::Entity::update_many()
        .col_expr(client_secret::Column::ExpiresAt, Expr::value(at))
        .filter(client_secret::Column::ClientId.eq(client_id))
        .filter(
            Condition::any()
                .add(client_secret::Column::ExpiresAt.is_null())
                .add(client_secret::Column::ExpiresAt.gt(at)),
        )
        .exec(txn)
        .await?;
    Ok(())
}

/// Deletes a client (its scopes and secrets go with it); `false` if it did not exist.
/// Deletes a client with its scopes and secrets (its grants go by cascade). Run it in a
/// transaction: the revocation hook does, with the log entry that ends its tokens.
pub async fn delete(db: &impl ConnectionTrait, client_id: &str) -> Result<bool, StoreError> {
    // Children first: SQLite enforces cascades only with foreign keys on, so be explicit.
    client_scope::Entity::delete_many()
        .filter(client_scope::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    client_secret::Entity::delete_many()
        .filter(client_secret::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    let deleted = client::Entity::delete_by_id(client_id).exec(db).await?;
    Ok(deleted.rows_affected == 1)
}

/// Adds a new secret and makes every older one expire by `old_expire_at` (now, or after
/// the overlap); `false` if the client does not exist.
pub async fn rotate_secret(
    db: &impl TransactionTrait,
    client_id: &str,
    secret: &SecretRecord,
    old_expire_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    // Write first: this locks the client row (Postgres) or the database (SQLite), so two
    // rotations take turns and each sees the other's secret.
    let touched = client::Entity::update_many()
        .col_expr(client::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(client::Column::ClientId.eq(client_id))
        .exec(&txn)
        .await?;
    if touched.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    end_secrets(&txn, client_id, old_expire_at).await?;
    insert_secret(&txn, client_id, secret).await?;
    txn.commit().await?;
    Ok(true)
}

/// Replaces a dynamic client's registration access token hash (RFC 7592 §2.2: a new token
/// on every update), in the update's transaction.
pub async fn set_registration_token(
    db: &impl ConnectionTrait,
    client_id: &str,
    hash: &[u8],
) -> Result<bool, StoreError> {
    let updated = client::Entity::update_many()
        .col_expr(client::Column::RegistrationTokenHash, Expr::value(hash.to_vec()))
        .filter(client::Column::ClientId.eq(client_id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Records that a dynamic client got tokens at `now` (one statement; callers keep it rare).
pub async fn touch(
    db: &impl ConnectionTrait,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    client::Entity::update_many()
        .col_expr(client::Column::LastUsedAt, Expr::value(now))
        .filter(client::Column::ClientId.eq(client_id))
        .filter(client::Column::Registration.is_in(DYNAMIC))
        .exec(db)
        .await?;
    Ok(())
}

/// The stored `registration` of clients no administrator registered.
pub const DYNAMIC: [&str; 3] = ["open", "token", "document"];

/// Up to `limit` dynamic clients that got no token since `cutoff`.
pub async fn idle_dynamic(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<String>, StoreError> {
    Ok(client::Entity::find()
        .select_only()
        .column(client::Column::ClientId)
        .filter(client::Column::Registration.is_in(DYNAMIC))
        .filter(client::Column::LastUsedAt.lt(cutoff))
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await?)
}

/// Records an assertion's `jti`; `false` if it was already used (a replay).
pub async fn record_assertion(
    db: &impl ConnectionTrait,
    client_id: &str,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = used_assertion::ActiveModel {
        client_id: Set(client_id.to_owned()),
        jti: Set(jti.to_owned()),
        expires_at: Set(expires_at),
    };
    match used_assertion::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Forgets up to `batch` assertion ids whose assertions have expired (they can no longer be
/// replayed).
pub async fn purge_assertions(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<used_assertion::Entity, String>(
        db,
        used_assertion::Column::ExpiresAt.lt(now),
        used_assertion::Column::Jti,
        batch,
    )
    .await
}
