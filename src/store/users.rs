//! User rows.

use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};

use super::StoreError;
use super::is_unique_violation;
use super::scopes::Written;

#[derive(Clone)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub disabled: bool,
    /// May hold the `admin` scope.
    pub admin: bool,
    /// Must sign in with a second factor or a passkey (`oauth::assurance`).
    pub require_mfa: bool,
    /// The user's tokens issued at or before this instant are dead (see `cut_off`).
    pub tokens_not_before: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl UserRecord {
    /// Whether the user has a password: one created by an upstream provider has none (an
    /// empty hash, which never verifies) until an administrator sets one.
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
}

/// Never the password hash (an offline guessing target) in a log.
impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("disabled", &self.disabled)
            .field("admin", &self.admin)
            .finish_non_exhaustive()
    }
}

impl From<user::Model> for UserRecord {
    fn from(m: user::Model) -> Self {
        Self {
            id: m.id,
            username: m.username,
            password_hash: m.password_hash,
            email: m.email,
            email_verified: m.email_verified,
            name: m.name,
            disabled: m.disabled,
            admin: m.admin,
            require_mfa: m.require_mfa,
            tokens_not_before: m.tokens_not_before,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

fn active_model(r: &UserRecord) -> user::ActiveModel {
    user::ActiveModel {
        id: Set(r.id.clone()),
        username: Set(r.username.clone()),
        password_hash: Set(r.password_hash.clone()),
        email: Set(r.email.clone()),
        email_verified: Set(r.email_verified),
        name: Set(r.name.clone()),
        disabled: Set(r.disabled),
        admin: Set(r.admin),
        require_mfa: Set(r.require_mfa),
        tokens_not_before: Set(r.tokens_not_before),
        created_at: Set(r.created_at),
        updated_at: Set(r.updated_at),
    }
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> Result<Option<UserRecord>, StoreError> {
    Ok(user::Entity::find_by_id(id).one(db).await?.map(UserRecord::from))
}

/// A user, and whether the grant `grant_id` still stands, in one read: what a code exchange
/// checks before it issues anything.
pub async fn find_with_grant(
    db: &impl ConnectionTrait,
    id: &str,
    grant_id: &str,
) -> Result<Option<(UserRecord, bool)>, StoreError> {
    let statement = Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT u.*, g.id AS grant_found FROM users u LEFT JOIN grants g ON g.id = $2 \
         WHERE u.id = $1",
        [id.into(), grant_id.into()],
    );
    let Some(row) = db.query_one_raw(statement).await? else { return Ok(None) };
    let user = user::Model::from_query_result(&row, "")?;
    let grant_found: Option<String> = row.try_get("", "grant_found")?;
    Ok(Some((UserRecord::from(user), grant_found.is_some())))
}

pub async fn find_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<UserRecord>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?
        .map(UserRecord::from))
}

/// Whether an account other than `except` has `email` (ASCII case ignored): an upstream
/// provider never gives one account another's address (`oauth::upstream`).
pub async fn email_taken(
    db: &impl ConnectionTrait,
    email: &str,
    except: Option<&str>,
) -> Result<bool, StoreError> {
    use sea_orm::sea_query::{Expr, ExprTrait, Func};
    let lowered = Func::lower(Expr::col(user::Column::Email));
    let mut query = user::Entity::find().filter(Expr::expr(lowered).eq(email.to_ascii_lowercase()));
    if let Some(except) = except {
        query = query.filter(user::Column::Id.ne(except));
    }
    Ok(query.one(db).await?.is_some())
}

/// The user signing in as `username`, and whether sign-in then asks them for an
/// authenticator app's code: one statement (a left join), so a login costs no more for it.
pub async fn find_for_login(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<(UserRecord, bool)>, StoreError> {
    let found = user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .find_also_related(entity::user_totp::Entity)
        .one(db)
        .await?;
    Ok(found.map(|(user, totp)| (UserRecord::from(user), totp.is_some())))
}

/// Users ordered by id, after `after`.
pub async fn list(
    db: &impl ConnectionTrait,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<UserRecord>, StoreError> {
    let mut query = user::Entity::find().order_by_asc(user::Column::Id).limit(limit);
    if let Some(after) = after {
        query = query.filter(user::Column::Id.gt(after));
    }
    Ok(query.all(db).await?.into_iter().map(UserRecord::from).collect())
}

/// Users ordered by username, after the username `after`; with `term`, only those whose
/// username contains it (ASCII case ignored, taken literally): the console's list.
pub async fn list_by_username(
    db: &impl ConnectionTrait,
    term: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<UserRecord>, StoreError> {
    let mut query = user::Entity::find().order_by_asc(user::Column::Username).limit(limit);
    if let Some(term) = term {
        query = query.filter(super::contains_ignoring_case(user::Column::Username, term));
    }
    if let Some(after) = after {
        query = query.filter(user::Column::Username.gt(after));
    }
    Ok(query.all(db).await?.into_iter().map(UserRecord::from).collect())
}

/// Inserts a user; `Conflict` when the username is taken.
pub async fn insert(db: &impl ConnectionTrait, record: &UserRecord) -> Result<Written, StoreError> {
    match user::Entity::insert(active_model(record)).exec(db).await {
        Ok(_) => Ok(Written::Done),
        Err(e) if is_unique_violation(&e) => Ok(Written::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// Replaces a user's fields (all but `id`, `created_at` and the cut-off, which only `cut_off`
/// moves).
pub async fn replace(
    db: &impl ConnectionTrait,
    record: &UserRecord,
) -> Result<Written, StoreError> {
    let mut model = active_model(record);
    model.created_at = sea_orm::ActiveValue::NotSet;
    model.tokens_not_before = sea_orm::ActiveValue::NotSet;
    match user::Entity::update_many()
        .set(model)
        .filter(user::Column::Id.eq(&record.id))
        .exec(db)
        .await
    {
        Ok(r) if r.rows_affected == 1 => Ok(Written::Done),
        Ok(_) => Ok(Written::NotFound),
        Err(e) if is_unique_violation(&e) => Ok(Written::Conflict),
        Err(e) => Err(e.into()),
    }
}

/// Replaces a user's password hash (their own change); whether the user exists.
pub async fn set_password_hash(
    db: &impl ConnectionTrait,
    id: &str,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, sea_orm::sea_query::Expr::value(password_hash))
        .col_expr(user::Column::UpdatedAt, sea_orm::sea_query::Expr::value(now))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Writes the user's row as it is, first in a transaction: another transaction doing the same
/// waits for this one (on SQLite, the transaction holds the write lock before it reads).
pub async fn lock(db: &impl ConnectionTrait, id: &str) -> Result<bool, StoreError> {
    let updated = user::Entity::update_many()
        .col_expr(user::Column::UpdatedAt, sea_orm::sea_query::Expr::col(user::Column::UpdatedAt))
        .filter(user::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<bool, StoreError> {
    Ok(user::Entity::delete_by_id(id).exec(db).await?.rows_affected == 1)
}

/// Cuts off the user's tokens: those issued at or before `at` stay dead for good. Never
/// moves the cut-off back.
pub async fn cut_off(
    db: &impl ConnectionTrait,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    user::Entity::update_many()
        .col_expr(user::Column::TokensNotBefore, sea_orm::sea_query::Expr::value(at))
        .filter(user::Column::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(user::Column::TokensNotBefore.is_null())
                .add(user::Column::TokensNotBefore.lt(at)),
        )
        .exec(db)
        .await?;
    Ok(())
}
