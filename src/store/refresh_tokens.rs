//! Refresh-token families and their tokens. A family row holds what every token of one
//! authorization shares and whether it was revoked; rotation and revocation serialize on it,
//! so after a revocation no token of the family rotates again, whatever raced it.

use chrono::{DateTime, Utc};
use entity::{refresh_family as family, refresh_token as token};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, Statement, TransactionTrait,
};

use super::StoreError;
use super::users::UserRecord;

/// The user's columns a rotation returns, so that the ID token needs no other read.
macro_rules! user_columns {
    () => {
        "u.username AS u_username, u.password_hash AS u_password_hash, u.email AS u_email, \
         u.email_verified AS u_email_verified, u.name AS u_name, u.disabled AS u_disabled, \
         u.admin AS u_admin, u.require_mfa AS u_require_mfa, u.tokens_not_before AS u_tokens_not_before, \
         u.created_at AS u_created_at, u.updated_at AS u_updated_at"
    };
}

/// What every token of a family shares.
#[derive(Debug, Clone)]
pub struct FamilyRecord {
    pub id: String,
    pub grant_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The scope granted when the family started.
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    /// How the user signed in (`session::Amr::as_stored`); `None`: a password alone.
    pub amr: Option<String>,
    /// The `sid` of the session that signed in (Back-Channel Logout §2.1), if known.
    pub sid: Option<String>,
    pub created_at: DateTime<Utc>,
    pub absolute_expires_at: DateTime<Utc>,
}

/// Where a refresh token stands (RFC 9700 §4.14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The family's newest token: the one that may be used.
    Active,
    /// Rotated: presenting it again is reuse.
    Used,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Used => "used",
        }
    }

    fn parse(value: &str) -> Result<Self, StoreError> {
        match value {
            "active" => Ok(Self::Active),
            "used" => Ok(Self::Used),
            other => Err(StoreError::corrupt(format_args!("refresh token status {other:?}"))),
        }
    }
}

/// A stored token with its family, and the state of what the family stands on.
#[derive(Debug, Clone)]
pub struct StoredRefresh {
    pub jti: String,
    pub family: FamilyRecord,
    pub status: Status,
    pub used_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
    pub family_revoked: bool,
    /// The scope its grant holds now; `None` when the grant was revoked.
    pub grant_scope: Option<String>,
    /// Whether its user exists, is enabled and was not cut off since the family began.
    pub user_stands: bool,
}

impl StoredRefresh {
    /// Whether this token may still be used at `now` (what rotation checks, read-only).
    pub fn stands(&self, now: DateTime<Utc>) -> bool {
        self.status == Status::Active
            && !self.family_revoked
            && self.expires_at > now
            && self.family.absolute_expires_at > now
            && self.grant_scope.is_some()
            && self.user_stands
    }
}

/// A rotation that won: the family, the scope its grant holds now, and the successor.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub family: FamilyRecord,
    /// The family's user as the rotation found it (enabled, not cut off).
    pub user: UserRecord,
    pub grant_scope: String,
    pub successor_jti: String,
    pub successor_expires_at: DateTime<Utc>,
}

/// What a family is started from, whose row must still stand for it.
#[derive(Debug, Clone, Copy)]
pub enum Origin<'a> {
    /// An authorization code (by hash), not replayed since its redemption.
    Code(&'a [u8]),
    /// A device authorization (RFC 8628, by the hash of its device code), which one poll
    /// redeemed; nothing can replay it, so it only has to exist.
    Device(&'a [u8]),
}

/// Starts a family with its first token, unless the code it comes from was replayed
/// meanwhile (then nothing is stored and `false` comes back). The code row is locked while
/// it is checked, so a replay marks it either before (no family) or after (and then finds the
/// family to revoke). One statement on Postgres (a data-modifying CTE); SQLite has none, so
/// two in one transaction.
pub async fn start_family(
    db: &DatabaseConnection,
    origin: Origin<'_>,
    family: &FamilyRecord,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let backend = db.get_database_backend();
    let lock = if backend == DbBackend::Postgres { " FOR UPDATE" } else { "" };
    let (source, hash) = match origin {
        Origin::Code(hash) => {
            ("authorization_codes WHERE code_hash = $9 AND replayed_at IS NULL", hash)
        }
        Origin::Device(hash) => ("device_authorizations WHERE device_code_hash = $9", hash),
    };
    let insert_family = format!(
        "INSERT INTO refresh_families (id, grant_id, client_id, user_id, scope, auth_time, \
         created_at, absolute_expires_at, revoked_at, amr, sid) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, NULL, $10, $11 FROM {source}{lock}"
    );
    let values = [
        family.id.clone().into(),
        family.grant_id.clone().into(),
        family.client_id.clone().into(),
        family.user_id.clone().into(),
        family.scope.clone().into(),
        family.auth_time.into(),
        family.created_at.into(),
        family.absolute_expires_at.into(),
        hash.to_vec().into(),
        family.amr.clone().into(),
        family.sid.clone().into(),
    ];
    if backend == DbBackend::Postgres {
        let both = format!(
            "WITH family AS ({insert_family} RETURNING id) \
             INSERT INTO refresh_tokens (jti, family_id, status, used_at, created_at, expires_at) \
             SELECT $12, id, $13, NULL, $7, $14 FROM family"
        );
        let mut values = values.to_vec();
        values.extend([jti.into(), Status::Active.as_str().into(), expires_at.into()]);
        let inserted = db
            .execute_raw(Statement::from_sql_and_values(backend, both, values))
            .await?
            .rows_affected();
        return Ok(inserted == 1);
    }
    let txn = db.begin().await?;
    let inserted = txn
        .execute_raw(Statement::from_sql_and_values(backend, insert_family, values))
        .await?
        .rows_affected();
    if inserted != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    insert_token(&txn, jti, &family.id, family.created_at, expires_at).await?;
    txn.commit().await?;
    Ok(true)
}

async fn insert_token(
    db: &impl ConnectionTrait,
    jti: &str,
    family_id: &str,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    token::Entity::insert(token::ActiveModel {
        jti: Set(jti.to_owned()),
        family_id: Set(family_id.to_owned()),
        status: Set(Status::Active.as_str().to_owned()),
        used_at: Set(None),
        created_at: Set(created_at),
        expires_at: Set(expires_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A token and its family, whatever their state, in one statement.
pub async fn find(
    db: &impl ConnectionTrait,
    jti: &str,
) -> Result<Option<StoredRefresh>, StoreError> {
    let statement = Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT t.jti, t.status, t.used_at, t.expires_at, f.id, f.grant_id, f.client_id, \
         f.user_id, f.scope, f.auth_time, f.amr, f.sid, f.created_at, f.absolute_expires_at, f.revoked_at, \
         g.scope AS grant_scope, u.disabled AS user_disabled, \
         u.tokens_not_before AS user_tokens_not_before \
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
         LEFT JOIN grants g ON g.id = f.grant_id LEFT JOIN users u ON u.id = f.user_id \
         WHERE t.jti = $1",
        [jti.into()],
    );
    let Some(row) = FoundRow::find_by_statement(statement).one(db).await? else {
        return Ok(None);
    };
    let user_stands = row.user_disabled == Some(false)
        && row.user_tokens_not_before.is_none_or(|cut| cut < row.created_at);
    Ok(Some(StoredRefresh {
        status: Status::parse(&row.status)?,
        jti: row.jti,
        used_at: row.used_at,
        expires_at: row.expires_at,
        family_revoked: row.revoked_at.is_some(),
        grant_scope: row.grant_scope,
        user_stands,
        family: FamilyRecord {
            id: row.id,
            grant_id: row.grant_id,
            client_id: row.client_id,
            user_id: row.user_id,
            scope: row.scope,
            auth_time: row.auth_time,
            amr: row.amr,
            sid: row.sid,
            created_at: row.created_at,
            absolute_expires_at: row.absolute_expires_at,
        },
    }))
}

#[derive(FromQueryResult)]
struct FoundRow {
    jti: String,
    status: String,
    used_at: Option<DateTime<Utc>>,
    expires_at: DateTime<Utc>,
    id: String,
    grant_id: String,
    client_id: String,
    user_id: String,
    scope: String,
    auth_time: DateTime<Utc>,
    amr: Option<String>,
    sid: Option<String>,
    created_at: DateTime<Utc>,
    absolute_expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    grant_scope: Option<String>,
    user_disabled: Option<bool>,
    user_tokens_not_before: Option<DateTime<Utc>>,
}

/// Marks `jti` used and stores its successor, atomically, if the token is active and
/// unexpired and its family still stands: not revoked, not past its absolute expiry, its
/// grant there, its user enabled and not cut off since the family began. `None` (nothing
/// changed) otherwise. On Postgres this is one statement holding a share lock on the
/// family, grant and user rows, so a concurrent revocation of any of them either happens
/// first (and this finds nothing) or waits for this to commit (and then sees the successor).
pub async fn rotate(
    db: &DatabaseConnection,
    jti: &str,
    successor_jti: &str,
    now: DateTime<Utc>,
    sliding_expiry: DateTime<Utc>,
) -> Result<Option<Rotated>, StoreError> {
    if db.get_database_backend() == DbBackend::Postgres {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            ROTATE_POSTGRES,
            [now.into(), jti.into(), successor_jti.into(), sliding_expiry.into()],
        );
        let row = RotatedRow::find_by_statement(statement).one(db).await?;
        return Ok(row.map(RotatedRow::into_rotated));
    }
    // SQLite has one writer at a time: the same steps in one transaction, the write first so
    // the transaction holds the write lock before it reads.
    let txn = db.begin().await?;
    let used = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            USE_SQLITE,
            [now.into(), jti.into()],
        ))
        .await?;
    if used.rows_affected() != 1 {
        txn.rollback().await?;
        return Ok(None);
    }
    let statement = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        concat!(
            "SELECT f.*, g.scope AS grant_scope, ",
            user_columns!(),
            " FROM refresh_families f JOIN grants g ON g.id = f.grant_id \
             JOIN users u ON u.id = f.user_id \
             WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE jti = $1)"
        ),
        [jti.into()],
    );
    let Some(found) = FamilyRow::find_by_statement(statement).one(&txn).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    let expires_at = sliding_expiry.min(found.absolute_expires_at);
    insert_token(&txn, successor_jti, &found.id, now, expires_at).await?;
    txn.commit().await?;
    Ok(Some(found.into_rotated(successor_jti.to_owned(), expires_at)))
}

/// For a client that does not rotate: extends `jti`'s sliding expiry (never past its family's
/// absolute one) if the token is active and unexpired and its family stands, as `rotate`
/// checks; the token itself stays. `None` (nothing changed) otherwise. One statement on
/// Postgres, with the same share lock on the family as `rotate`.
pub async fn keep(
    db: &DatabaseConnection,
    jti: &str,
    now: DateTime<Utc>,
    sliding_expiry: DateTime<Utc>,
) -> Result<Option<Rotated>, StoreError> {
    if db.get_database_backend() == DbBackend::Postgres {
        let statement = Statement::from_sql_and_values(
            DbBackend::Postgres,
            KEEP_POSTGRES,
            [now.into(), jti.into(), sliding_expiry.into()],
        );
        let row = RotatedRow::find_by_statement(statement).one(db).await?;
        return Ok(row.map(RotatedRow::into_rotated));
    }
    let txn = db.begin().await?;
    let statement = Statement::from_sql_and_values(
        DbBackend::Sqlite,
        concat!(
            "SELECT f.*, g.scope AS grant_scope, ",
            user_columns!(),
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id \
             JOIN grants g ON g.id = f.grant_id JOIN users u ON u.id = f.user_id \
             WHERE t.jti = $1 AND t.status = 'active' AND t.expires_at > $2 \
             AND f.revoked_at IS NULL AND f.absolute_expires_at > $2 AND NOT u.disabled \
             AND (u.tokens_not_before IS NULL OR u.tokens_not_before < f.created_at)"
        ),
        [jti.into(), now.into()],
    );
    let Some(found) = FamilyRow::find_by_statement(statement).one(&txn).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    let expires_at = sliding_expiry.min(found.absolute_expires_at);
    token::Entity::update_many()
        .col_expr(token::Column::ExpiresAt, Expr::value(expires_at))
        .filter(token::Column::Jti.eq(jti))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some(found.into_rotated(jti.to_owned(), expires_at)))
}

/// $1 now, $2 the presented jti, $3 its new sliding expiry.
const KEEP_POSTGRES: &str = concat!(
    "WITH fam AS ( \
     SELECT f.id, f.grant_id, f.client_id, f.user_id, f.scope, f.auth_time, f.amr, f.sid, f.created_at, \
     f.absolute_expires_at, g.scope AS grant_scope, ",
    user_columns!(),
    " FROM refresh_families f JOIN users u ON u.id = f.user_id JOIN grants g ON g.id = f.grant_id \
     WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE jti = $2) \
     AND f.revoked_at IS NULL AND f.absolute_expires_at > $1 AND NOT u.disabled \
     AND (u.tokens_not_before IS NULL OR u.tokens_not_before < f.created_at) \
     FOR SHARE OF f), \
     kept AS ( \
     UPDATE refresh_tokens SET expires_at = LEAST($3, fam.absolute_expires_at) FROM fam \
     WHERE jti = $2 AND status = 'active' AND expires_at > $1 AND family_id = fam.id \
     RETURNING jti, expires_at) \
     SELECT fam.*, kept.jti AS successor_jti, kept.expires_at AS successor_expires_at \
     FROM fam, kept"
);

/// SQLite: marks the presented token used if it and its family stand ($1 now, $2 the jti).
const USE_SQLITE: &str = "UPDATE refresh_tokens SET status = 'used', used_at = $1 \
     WHERE jti = $2 AND status = 'active' AND expires_at > $1 \
     AND EXISTS (SELECT 1 FROM refresh_families f \
     JOIN users u ON u.id = f.user_id JOIN grants g ON g.id = f.grant_id \
     WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL \
     AND f.absolute_expires_at > $1 AND NOT u.disabled \
     AND (u.tokens_not_before IS NULL OR u.tokens_not_before < f.created_at))";

/// $1 now, $2 the presented jti, $3 the successor's jti, $4 its sliding expiry.
const ROTATE_POSTGRES: &str = concat!(
    "WITH fam AS ( \
     SELECT f.id, f.grant_id, f.client_id, f.user_id, f.scope, f.auth_time, f.amr, f.sid, f.created_at, \
     f.absolute_expires_at, g.scope AS grant_scope, ",
    user_columns!(),
    " FROM refresh_families f JOIN users u ON u.id = f.user_id JOIN grants g ON g.id = f.grant_id \
     WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE jti = $2) \
     AND f.revoked_at IS NULL AND f.absolute_expires_at > $1 AND NOT u.disabled \
     AND (u.tokens_not_before IS NULL OR u.tokens_not_before < f.created_at) \
     FOR SHARE OF f), \
     used AS ( \
     UPDATE refresh_tokens SET status = 'used', used_at = $1 \
     WHERE jti = $2 AND status = 'active' AND expires_at > $1 \
     AND family_id IN (SELECT id FROM fam) RETURNING family_id), \
     next AS ( \
     INSERT INTO refresh_tokens (jti, family_id, status, used_at, created_at, expires_at) \
     SELECT $3, fam.id, 'active', NULL, $1, LEAST($4, fam.absolute_expires_at) \
     FROM used JOIN fam ON fam.id = used.family_id RETURNING jti, expires_at) \
     SELECT fam.*, next.jti AS successor_jti, next.expires_at AS successor_expires_at \
     FROM fam, next"
);

#[derive(FromQueryResult)]
struct FamilyRow {
    id: String,
    grant_id: String,
    client_id: String,
    user_id: String,
    scope: String,
    auth_time: DateTime<Utc>,
    amr: Option<String>,
    sid: Option<String>,
    created_at: DateTime<Utc>,
    absolute_expires_at: DateTime<Utc>,
    grant_scope: String,
    u_username: String,
    u_password_hash: String,
    u_email: Option<String>,
    u_email_verified: bool,
    u_name: Option<String>,
    u_disabled: bool,
    u_admin: bool,
    u_require_mfa: bool,
    u_tokens_not_before: Option<DateTime<Utc>>,
    u_created_at: DateTime<Utc>,
    u_updated_at: DateTime<Utc>,
}

impl FamilyRow {
    fn into_rotated(self, successor_jti: String, successor_expires_at: DateTime<Utc>) -> Rotated {
        Rotated {
            user: UserRecord {
                id: self.user_id.clone(),
                username: self.u_username,
                password_hash: self.u_password_hash,
                email: self.u_email,
                email_verified: self.u_email_verified,
                name: self.u_name,
                disabled: self.u_disabled,
                admin: self.u_admin,
                require_mfa: self.u_require_mfa,
                tokens_not_before: self.u_tokens_not_before,
                created_at: self.u_created_at,
                updated_at: self.u_updated_at,
            },
            family: FamilyRecord {
                id: self.id,
                grant_id: self.grant_id,
                client_id: self.client_id,
                user_id: self.user_id,
                scope: self.scope,
                auth_time: self.auth_time,
                amr: self.amr,
                sid: self.sid,
                created_at: self.created_at,
                absolute_expires_at: self.absolute_expires_at,
            },
            grant_scope: self.grant_scope,
            successor_jti,
            successor_expires_at,
        }
    }
}

/// What the Postgres rotation statement returns: the family (with its grant's scope and its
/// user) and the successor.
#[derive(FromQueryResult)]
struct RotatedRow {
    #[sea_orm(nested)]
    family: FamilyRow,
    successor_jti: String,
    successor_expires_at: DateTime<Utc>,
}

impl RotatedRow {
    fn into_rotated(self) -> Rotated {
        self.family.into_rotated(self.successor_jti, self.successor_expires_at)
    }
}

/// Which families `revoke_families_of` revokes.
#[derive(Debug, Clone, Copy)]
pub enum FamilyOwner<'a> {
    /// The one family with this id (refresh-token reuse, code replay).
    Family(&'a str),
    Grant(&'a str),
    User(&'a str),
    Client(&'a str),
}

/// Revokes a family for good, or every live family of a grant, user or client: one statement
/// on the rows that rotation holds (`FOR SHARE`), so this waits for a rotation in flight and
/// then takes its successor too, or goes first and the rotation finds the family revoked:
/// either way nothing of those families rotates after this commits.
pub async fn revoke_families_of(
    db: &impl ConnectionTrait,
    owner: FamilyOwner<'_>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let owned = match owner {
        FamilyOwner::Family(id) => family::Column::Id.eq(id),
        FamilyOwner::Grant(id) => family::Column::GrantId.eq(id),
        FamilyOwner::User(id) => family::Column::UserId.eq(id),
        FamilyOwner::Client(id) => family::Column::ClientId.eq(id),
    };
    let revoked = family::Entity::update_many()
        .col_expr(family::Column::RevokedAt, Expr::value(now))
        .filter(owned)
        .filter(family::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(revoked.rows_affected)
}

/// Forgets up to `batch` families past their absolute expiry; their tokens go with them
/// (`ON DELETE CASCADE`).
pub async fn purge_families(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<family::Entity, String>(
        db,
        family::Column::AbsoluteExpiresAt.lt(now),
        family::Column::Id,
        batch,
    )
    .await
}

/// Forgets up to `batch` tokens past their own expiry (a used token matters only while its
/// signature is still unexpired: that is when a replay of it must be recognised).
pub async fn purge_tokens(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<token::Entity, String>(
        db,
        token::Column::ExpiresAt.lt(now),
        token::Column::Jti,
        batch,
    )
    .await
}
