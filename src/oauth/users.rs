//! Users: Argon2id password hashing off the async executor, registration and replacement.

use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};

use super::audit::{self, Actor, Event, EventType};
use super::client_metadata::FieldError;
use super::revocation::Revocations;

use crate::store::scopes::Written;
use crate::store::users::UserRecord;
use crate::store::{self, Db, StoreError};

/// A user as admins see them: never the password or its hash. `id` is the OIDC `sub`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub disabled: bool,
    /// An administrator: may hold the `admin` scope.
    pub admin: bool,
    /// Must sign in with a second factor or a passkey (docs/REFERENCE.md §3.4).
    pub require_mfa: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<UserRecord> for User {
    fn from(r: UserRecord) -> Self {
        Self {
            id: r.id,
            username: r.username,
            email: r.email,
            email_verified: r.email_verified,
            name: r.name,
            disabled: r.disabled,
            admin: r.admin,
            require_mfa: r.require_mfa,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// What an admin sets on a user; `password` is write-only.
pub struct UserInput {
    pub username: String,
    pub password: Option<SecretString>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    pub disabled: bool,
    pub admin: bool,
    pub require_mfa: bool,
}

/// A user just replaced, and whether the change must end what they hold: a new password or
/// a disabling ends their sessions and tokens (docs/REFERENCE.md §5).
pub struct Replaced {
    pub user: User,
    pub must_cut_off: bool,
}

/// Why a user change failed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("the username is taken")]
    UsernameTaken,
    #[error("no such user")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Argon2id hashing and checking (OWASP parameters: 19 MiB, 2 passes, 1 lane) on blocking
/// threads, at most one per CPU at a time, each reusing a 19 MiB work area kept here: a burst
/// of logins queues instead of exhausting memory, and memory stays at one area per CPU.
pub struct Passwords {
    permits: tokio::sync::Semaphore,
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self { permits: tokio::sync::Semaphore::new(cpus), areas: Arc::default() }
    }
}

impl Passwords {
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let _permit = self.permits.acquire().await?;
        let areas = self.areas.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            let mut salt_bytes = [0u8; 64];
            let salt_bytes =
                salt.decode_b64(&mut salt_bytes).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
            let params = Params::default();
            let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
            compute(&areas, password.expose_secret().as_bytes(), salt_bytes, &params, &mut out)?;
            let hash = PasswordHash {
                algorithm: Algorithm::Argon2id.ident(),
                version: Some(Version::V0x13.into()),
                params: ParamsString::try_from(&params)
                    .map_err(|e| anyhow::anyhow!("params: {e}"))?,
                salt: Some(salt.as_salt()),
                hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
            };
            Ok(hash.to_string())
        })
        .await?
    }

    /// Whether `password` matches `hash`. Without a hash (unknown user) a dummy hash is
    /// checked instead, so both cases cost the same time.
    pub async fn verify(&self, password: SecretString, hash: Option<String>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else { return false };
        let areas = self.areas.clone();
        // A user with no password (made by an upstream provider) is checked against the
        // dummy hash too, and never matches.
        let usable = hash.as_deref().is_some_and(|h| !h.is_empty());
        tokio::task::spawn_blocking(move || {
            let hash = hash.filter(|_| usable).unwrap_or_else(|| DUMMY_HASH.to_owned());
            let Ok(parsed) = PasswordHash::new(&hash) else { return false };
            let (Ok(params), Some(salt), Some(expected)) =
                (Params::try_from(&parsed), parsed.salt, parsed.hash)
            else {
                return false;
            };
            let mut salt_bytes = [0u8; 64];
            let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else { return false };
            let mut out = vec![0u8; expected.len()];
            if parsed.algorithm != Algorithm::Argon2id.ident()
                || compute(
                    &areas,
                    password.expose_secret().as_bytes(),
                    salt_bytes,
                    &params,
                    &mut out,
                )
                .is_err()
            {
                return false;
            }
            // Output's equality is constant-time.
            Output::new(&out).is_ok_and(|computed| computed == expected) && usable
        })
        .await
        .unwrap_or(false)
    }
}

/// Runs Argon2id in a reused work area of the right size.
fn compute(
    areas: &Mutex<Vec<Vec<Block>>>,
    password: &[u8],
    salt: &[u8],
    params: &Params,
    out: &mut [u8],
) -> anyhow::Result<()> {
    let blocks = params.block_count();
    let reused = areas.lock().ok().and_then(|mut a| a.pop()).filter(|area| area.len() == blocks);
    let mut area = reused.unwrap_or_else(|| vec![Block::default(); blocks]);
    let result = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, out, &mut area);
    if let Ok(mut areas) = areas.lock() {
        areas.push(area);
    }
    result.map_err(|e| anyhow::anyhow!("argon2: {e}"))
}

/// An Argon2id hash of a random password nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yhu2TMSW1oq0wqzGYY1NKqSPQuUpRw8SR+6R0pkcRyc";

/// Creates a user, recording `user.created` by `actor` in the same transaction.
pub async fn create(
    db: &Db,
    passwords: &Passwords,
    input: UserInput,
    actor: Actor,
) -> Result<User, UserError> {
    let password = input.password.ok_or_else(|| anyhow::anyhow!("a new user needs a password"))?;
    let now = Utc::now();
    let record = UserRecord {
        id: uuid::Uuid::new_v4().to_string(),
        username: input.username,
        password_hash: passwords.hash(password).await?,
        email: input.email,
        email_verified: input.email_verified,
        name: input.name,
        disabled: input.disabled,
        admin: input.admin,
        require_mfa: input.require_mfa,
        tokens_not_before: None,
        created_at: now,
        updated_at: now,
    };
    let event = Event::new(EventType::UserCreated, actor, format!("user:{}", record.id))
        .with("admin", record.admin)
        .with("disabled", record.disabled);
    let txn = db.begin().await.map_err(StoreError::from)?;
    if store::users::insert(&txn, &record).await? != Written::Done {
        txn.rollback().await.map_err(StoreError::from)?;
        return Err(UserError::UsernameTaken);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await.map_err(StoreError::from)?;
    event.log();
    Ok(record.into())
}

/// Replaces a user's fields (see [`write_replacement`]) and, when the change must end what
/// they hold (a new password, a disabling), cuts them off: every session ends and every token
/// issued to them so far stays dead; re-enabling later does not bring them back. The one
/// way a user is changed (`PUT /admin/users/{id}`, the console's user page): the cut-off
/// cannot be forgotten by a caller.
pub async fn replace(
    db: &Db,
    passwords: &Passwords,
    revocations: &Revocations,
    id: &str,
    input: UserInput,
    actor: Actor,
) -> Result<Replaced, UserError> {
    let by = actor.id.clone();
    let replaced = write_replacement(db, passwords, id, input, actor).await?;
    if replaced.must_cut_off {
        // Recorded with the update that caused it.
        revocations.cut_off_user(db, id, None, None).await?;
        tracing::info!(actor = %by, user = %id, "user cut off: sessions and tokens ended");
    }
    Ok(replaced)
}

/// Ends every session of a user and cuts off every token issued to them so far, recording
/// `user.sessions_ended` by `actor` with it. Returns how many sessions ended.
pub async fn end_sessions(
    db: &Db,
    revocations: &Revocations,
    id: &str,
    actor: Actor,
) -> Result<u64, UserError> {
    if store::users::find(db, id).await?.is_none() {
        return Err(UserError::NotFound);
    }
    let event = Event::new(EventType::UserSessionsEnded, actor, format!("user:{id}"));
    let ended = revocations.cut_off_user(db, id, None, Some(&event)).await?;
    tracing::info!(actor = %event.actor.id, user = %id, sessions = ended, "ended a user's sessions");
    Ok(ended)
}

/// A user changes their own password (the current one already verified by the caller): the
/// new one is hashed and written, every token issued to them so far cut off and every
/// session but `keep_session` (the browser that asked) ended, recording
/// `user.password_changed` by `actor` with it (never the password). Returns how many
/// sessions ended.
pub async fn change_own_password(
    db: &Db,
    passwords: &Passwords,
    revocations: &Revocations,
    id: &str,
    password: SecretString,
    keep_session: &[u8],
    actor: Actor,
) -> Result<u64, UserError> {
    check_password(password.expose_secret()).map_err(|rule| anyhow::anyhow!(rule))?;
    let hash = passwords.hash(password).await?;
    let event = Event::new(EventType::UserPasswordChanged, actor, format!("user:{id}"));
    let ended = revocations
        .change_password(db, id, &hash, keep_session, &event)
        .await?
        .ok_or(UserError::NotFound)?;
    tracing::info!(user = %id, sessions = ended, "a user changed their password: other sessions and tokens ended");
    Ok(ended)
}

/// Writes a user's new fields; the password changes only when one is given. Records, in the
/// same transaction, `user.password_reset` when a password was set, else `user.disabled` when
/// the user was just disabled, else `user.updated` (the detail says which flags changed).
async fn write_replacement(
    db: &Db,
    passwords: &Passwords,
    id: &str,
    input: UserInput,
    actor: Actor,
) -> Result<Replaced, UserError> {
    let current = store::users::find(db, id).await?.ok_or(UserError::NotFound)?;
    let password_reset = input.password.is_some();
    let disabled_now = input.disabled && !current.disabled;
    let must_cut_off = password_reset || disabled_now;
    let kind = if password_reset {
        EventType::UserPasswordReset
    } else if disabled_now {
        EventType::UserDisabled
    } else {
        EventType::UserUpdated
    };
    let event = Event::new(kind, actor, format!("user:{id}"))
        .with("password_reset", password_reset)
        .with("disabled", input.disabled)
        .with("admin", input.admin)
        .with("admin_changed", input.admin != current.admin)
        .with("require_mfa", input.require_mfa)
        .with("disabled_changed", input.disabled != current.disabled);
    let password_hash = match input.password {
        Some(password) => passwords.hash(password).await?,
        None => current.password_hash,
    };
    let record = UserRecord {
        id: current.id,
        username: input.username,
        password_hash,
        email: input.email,
        email_verified: input.email_verified,
        name: input.name,
        disabled: input.disabled,
        admin: input.admin,
        require_mfa: input.require_mfa,
        tokens_not_before: current.tokens_not_before,
        created_at: current.created_at,
        updated_at: Utc::now(),
    };
    let txn = db.begin().await.map_err(StoreError::from)?;
    let refused = match store::users::replace(&txn, &record).await? {
        Written::Done => None,
        Written::NotFound => Some(UserError::NotFound),
        Written::Conflict => Some(UserError::UsernameTaken),
    };
    if let Some(refused) = refused {
        txn.rollback().await.map_err(StoreError::from)?;
        return Err(refused);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await.map_err(StoreError::from)?;
    event.log();
    Ok(Replaced { user: record.into(), must_cut_off })
}

const MEMBERS: [&str; 8] =
    ["username", "password", "email", "email_verified", "name", "disabled", "admin", "require_mfa"];

fn invalid(field: &str, description: &'static str) -> FieldError {
    FieldError { error: "invalid_request", description, field: field.to_owned() }
}

/// The rule every new password meets, whoever sets it (the admin API, the console, the user
/// on /account): the rule it breaks, if any, fit to show.
pub fn check_password(password: &str) -> Result<(), &'static str> {
    if (8..=1024).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err("a password is 8 to 1024 characters")
    }
}

/// The username rule, wherever a username comes from (the admin API, an upstream provider).
pub fn valid_username(username: &str) -> bool {
    (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// Validates a user body member by member; errors name the member, never echo it.
pub fn parse_input(body: &Value, creating: bool) -> Result<UserInput, FieldError> {
    let map = body.as_object().ok_or_else(|| invalid("body", "the body must be a JSON object"))?;
    if let Some(unknown) = map.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
        let field = if unknown == "id" { "id" } else { "body" };
        return Err(invalid(field, "unknown or server-assigned member"));
    }
    let username = optional_string(map, "username")?
        .ok_or_else(|| invalid("username", "username is required"))?;
    if !valid_username(&username) {
        return Err(invalid(
            "username",
            "a username is 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    let password = optional_string(map, "password")?;
    if creating && password.is_none() {
        return Err(invalid("password", "password is required"));
    }
    if let Some(Err(rule)) = password.as_deref().map(check_password) {
        return Err(invalid("password", rule));
    }
    let email = optional_string(map, "email")?;
    if email.as_ref().is_some_and(|e| {
        e.len() > 254 || !e.contains('@') || e.chars().any(|c| c.is_whitespace() || c.is_control())
    }) {
        return Err(invalid("email", "email must be an email address"));
    }
    let name = optional_string(map, "name")?;
    if name.as_ref().is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control)) {
        return Err(invalid("name", "name must be at most 200 printable characters"));
    }
    Ok(UserInput {
        username,
        password: password.map(SecretString::from),
        email,
        email_verified: optional_bool(map, "email_verified")?,
        name,
        disabled: optional_bool(map, "disabled")?,
        admin: optional_bool(map, "admin")?,
        require_mfa: optional_bool(map, "require_mfa")?,
    })
}

fn optional_string(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, FieldError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(name, "this member must be a string")),
    }
}

fn optional_bool(map: &Map<String, Value>, name: &'static str) -> Result<bool, FieldError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(name, "this member must be true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let passwords = Passwords::default();
        let hash = passwords.hash(SecretString::from("correct horse")).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(passwords.verify(SecretString::from("correct horse"), Some(hash.clone())).await);
        assert!(!passwords.verify(SecretString::from("wrong horse"), Some(hash)).await);
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_a_dummy_hash() {
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash parses, so it costs a full check"
        );
        assert!(!Passwords::default().verify(SecretString::from("anything"), None).await);
    }
}
