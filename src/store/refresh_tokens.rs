//! Issued refresh tokens by `jti`, with their family, grant and state; rotation is one
//! conditional update that stores the successor atomically (one statement on Postgres).

use chrono::{DateTime, Utc};
use entity::refresh_token;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, QuerySelect, Statement, TransactionTrait,
};

#[derive(Debug, Clone)]
pub struct RefreshRecord {
    pub jti: String,
    pub family_id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
}

/// A stored token with its state.
#[derive(Debug, Clone)]
pub struct StoredRefresh {
    pub record: RefreshRecord,
    /// `active`, `used` or `revoked`.
    pub status: String,
    pub used_at: Option<DateTime<Utc>>,
}

pub async fn insert(db: &impl ConnectionTrait, r: &RefreshRecord) -> Result<(), DbErr> {
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        jti: Set(r.jti.clone()),
        family_id: Set(r.family_id.clone()),
        grant_id: Set(r.grant_id.clone()),
        client_id: Set(r.client_id.clone()),
        user_id: Set(r.user_id.clone()),
        scope: Set(r.scope.clone()),
        status: Set("active".into()),
        used_at: Set(None),
        auth_time: Set(r.auth_time),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
        absolute_expires_at: Set(r.absolute_expires_at),
    })
    .exec(db)
    .await?;
    Ok(())
}

pub async fn find(db: &impl ConnectionTrait, jti: &str) -> Result<Option<StoredRefresh>, DbErr> {
    Ok(refresh_token::Entity::find_by_id(jti).one(db).await?.map(|m| StoredRefresh {
        status: m.status.clone(),
        used_at: m.used_at,
        record: record(m),
    }))
}

/// Marks `jti` used and stores its successor `successor_jti` (created `now`, expiring at
/// `sliding_expiry` or the family's absolute expiry, whichever is first), atomically, if
/// the token is still active and unexpired, its grant stands and its user is enabled.
/// `None` (and nothing changed) otherwise: another use got there first, or the token
/// expired, or its grant or user went away.
pub async fn rotate(
    db: &DatabaseConnection,
    jti: &str,
    successor_jti: &str,
    now: DateTime<Utc>,
    sliding_expiry: DateTime<Utc>,
) -> Result<Option<RefreshRecord>, DbErr> {
    let successor = match db.get_database_backend() {
        // One statement, so one round trip: the refresh grant's only database cost.
        DbBackend::Postgres => {
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                ROTATE_POSTGRES,
                [now.into(), jti.into(), successor_jti.into(), sliding_expiry.into()],
            );
            refresh_token::Entity::find().from_raw_sql(statement).one(db).await?
        }
        // SQLite has no data-modifying CTE: the same steps in one (local) transaction.
        _ => {
            let txn = db.begin().await?;
            let mut used = refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::Status, Expr::value("used"))
                .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
                .filter(refresh_token::Column::Jti.eq(jti))
                .filter(refresh_token::Column::Status.eq("active"))
                .filter(refresh_token::Column::ExpiresAt.gt(now))
                .filter(refresh_token::Column::AbsoluteExpiresAt.gt(now))
                .filter(Expr::cust(GRANT_AND_USER_STAND))
                .exec_with_returning(&txn)
                .await?;
            let Some(old) = used.pop() else {
                txn.rollback().await?;
                return Ok(None);
            };
            let successor = RefreshRecord {
                jti: successor_jti.to_owned(),
                expires_at: sliding_expiry.min(old.absolute_expires_at),
                created_at: now,
                ..record(old)
            };
            insert(&txn, &successor).await?;
            txn.commit().await?;
            return Ok(Some(successor));
        }
    };
    Ok(successor.map(record))
}

/// The rotation's conditions on the grant and the user, for both backends.
const GRANT_AND_USER_STAND: &str = "EXISTS (SELECT 1 FROM grants WHERE grants.id = \
     refresh_tokens.grant_id) AND EXISTS (SELECT 1 FROM users WHERE users.id = \
     refresh_tokens.user_id AND NOT users.disabled)";

/// $1 now, $2 the presented jti, $3 the successor's jti, $4 its sliding expiry.
const ROTATE_POSTGRES: &str = "WITH used AS ( \
     UPDATE refresh_tokens SET status = 'used', used_at = $1 \
     WHERE jti = $2 AND status = 'active' AND expires_at > $1 AND absolute_expires_at > $1 \
     AND EXISTS (SELECT 1 FROM grants WHERE grants.id = refresh_tokens.grant_id) \
     AND EXISTS (SELECT 1 FROM users WHERE users.id = refresh_tokens.user_id \
     AND NOT users.disabled) \
     RETURNING family_id, grant_id, client_id, user_id, scope, auth_time, absolute_expires_at) \
     INSERT INTO refresh_tokens (jti, family_id, grant_id, client_id, user_id, scope, status, \
     used_at, auth_time, created_at, expires_at, absolute_expires_at) \
     SELECT $3, family_id, grant_id, client_id, user_id, scope, 'active', NULL, auth_time, $1, \
     LEAST($4, absolute_expires_at), absolute_expires_at FROM used \
     RETURNING *";

fn record(m: refresh_token::Model) -> RefreshRecord {
    RefreshRecord {
        jti: m.jti,
        family_id: m.family_id,
        grant_id: m.grant_id,
        client_id: m.client_id,
        user_id: m.user_id,
        scope: m.scope,
        auth_time: m.auth_time,
        created_at: m.created_at,
        expires_at: m.expires_at,
        absolute_expires_at: m.absolute_expires_at,
    }
}

/// Revokes every token of a family (RFC 9700 §4.14.2: reuse of a rotated token).
pub async fn revoke_family(db: &impl ConnectionTrait, family_id: &str) -> Result<u64, DbErr> {
    let revoked = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::Status, Expr::value("revoked"))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::Status.ne("revoked"))
        .exec(db)
        .await?;
    Ok(revoked.rows_affected)
}

/// Forgets up to `batch` refresh tokens whose family ended (absolute expiry) before `before`.
pub async fn purge(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, DbErr> {
    let expired: Vec<String> = refresh_token::Entity::find()
        .select_only()
        .column(refresh_token::Column::Jti)
        .filter(refresh_token::Column::AbsoluteExpiresAt.lt(before))
        .limit(batch)
        .into_tuple()
        .all(db)
        .await?;
    if expired.is_empty() {
        return Ok(0);
    }
    let purged = refresh_token::Entity::delete_many()
        .filter(refresh_token::Column::Jti.is_in(expired))
        .exec(db)
        .await?;
    Ok(purged.rows_affected)
}
