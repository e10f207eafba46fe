//! Users: Argon2id password hashing off the async executor, registration and replacement.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::{Map, Value};

use super::client_metadata::FieldError;

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

/// Hashes a password with Argon2id (OWASP parameters: 19 MiB, 2 passes) on a blocking thread.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))
    })
    .await?
}

/// Whether `password` matches `hash`. Without a hash (unknown user) a dummy hash is checked
/// instead, so both cases cost the same time.
pub async fn verify_password(password: SecretString, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || {
        let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let Ok(parsed) = PasswordHash::new(&hash) else { return false };
        Argon2::default().verify_password(password.expose_secret().as_bytes(), &parsed).is_ok()
    })
    .await
    .unwrap_or(false)
}

/// An Argon2id hash of a random password nobody knows, with the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yhu2TMSW1oq0wqzGYY1NKqSPQuUpRw8SR+6R0pkcRyc";

pub async fn create(db: &Db, input: UserInput) -> Result<User, UserError> {
    let password = input.password.ok_or_else(|| anyhow::anyhow!("a new user needs a password"))?;
    let now = Utc::now();
    let record = UserRecord {
        id: uuid::Uuid::new_v4().to_string(),
        username: input.username,
        password_hash: hash_password(password).await?,
        email: input.email,
        email_verified: input.email_verified,
        name: input.name,
        disabled: input.disabled,
        created_at: now,
        updated_at: now,
    };
    match store::users::insert(db, &record).await? {
        Written::Done => Ok(record.into()),
        _ => Err(UserError::UsernameTaken),
    }
}

/// Replaces a user's fields; the password changes only when one is given.
pub async fn replace(db: &Db, id: &str, input: UserInput) -> Result<User, UserError> {
    let current = store::users::find(db, id).await?.ok_or(UserError::NotFound)?;
    let password_hash = match input.password {
        Some(password) => hash_password(password).await?,
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
        created_at: current.created_at,
        updated_at: Utc::now(),
    };
    match store::users::replace(db, &record).await? {
        Written::Done => Ok(record.into()),
        Written::NotFound => Err(UserError::NotFound),
        Written::Conflict => Err(UserError::UsernameTaken),
    }
}

const MEMBERS: [&str; 6] = ["username", "password", "email", "email_verified", "name", "disabled"];

fn invalid(field: &str, description: &'static str) -> FieldError {
    FieldError { error: "invalid_request", description, field: field.to_owned() }
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
    let valid_username = (1..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'));
    if !valid_username {
        return Err(invalid(
            "username",
            "a username is 1 to 64 letters, digits, '.', '_', '-' or '@'",
        ));
    }
    let password = optional_string(map, "password")?;
    if creating && password.is_none() {
        return Err(invalid("password", "password is required"));
    }
    if password.as_ref().is_some_and(|p| !(8..=1024).contains(&p.chars().count())) {
        return Err(invalid("password", "a password is 8 to 1024 characters"));
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
        let hash = hash_password(SecretString::from("correct horse")).await.expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(SecretString::from("correct horse"), Some(hash.clone())).await);
        assert!(!verify_password(SecretString::from("wrong horse"), Some(hash)).await);
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_a_dummy_hash() {
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash parses, so it costs a full check"
        );
        assert!(!verify_password(SecretString::from("anything"), None).await);
    }
}
