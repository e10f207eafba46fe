//! Secrets never reach a log through `{:?}`: each type that carries one is formatted here with
//! a known secret in it, and the output must not contain it.

use chrono::Utc;

use crate::oauth::client::ClientView;
use crate::oauth::grant::TokenResponse;
use crate::oauth::session::Session;
use crate::store::users::UserRecord;

const SECRET: &str = "s3cr3t-value-that-must-never-be-logged";

fn user() -> UserRecord {
    let now = Utc::now();
    UserRecord {
        id: "user-1".into(),
        username: "alice".into(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${SECRET}"),
        email: None,
        email_verified: false,
        name: None,
        disabled: false,
        admin: false,
        require_mfa: false,
        tokens_not_before: None,
        created_at: now,
        updated_at: now,
    }
}

fn assert_redacted(what: &str, formatted: String) {
    assert!(!formatted.contains(SECRET), "{what} leaks its secret: {formatted}");
    assert!(formatted.contains("[redacted]"), "{what} says what it left out: {formatted}");
}

#[test]
fn a_user_record_never_shows_its_password_hash() {
    assert_redacted("UserRecord", format!("{:?}", user()));
}

#[test]
fn a_session_never_shows_its_raw_id() {
    let session = Session {
        id: SECRET.into(),
        user: user(),
        auth_time: Utc::now(),
        amr: crate::oauth::session::Amr::Password,
    };
    assert_redacted("Session", format!("{session:?}"));
    assert_redacted("Session (alternate)", format!("{session:#?}"));
}

#[test]
fn a_token_response_never_shows_a_token() {
    let response = TokenResponse {
        access_token: SECRET.into(),
        token_type: "Bearer",
        expires_in: 600,
        scope: "openid".into(),
        refresh_token: Some(SECRET.into()),
        id_token: Some(SECRET.into()),
        issued_token_type: None,
    };
    assert_redacted("TokenResponse", format!("{response:?}"));
}

#[test]
fn a_client_view_never_shows_its_secret() {
    let client = crate::oauth::client::Client {
        client_id: "client-1".into(),
        metadata: crate::oauth::registry::admin_metadata("admin"),
        secrets: Vec::new(),
        registration: crate::oauth::client::Registration::Admin,
        registration_token_hash: None,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    let view: ClientView = client.view(Some(SECRET.into()));
    assert_redacted("ClientView", format!("{view:?}"));
}
