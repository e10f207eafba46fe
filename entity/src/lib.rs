//! SeaORM entities, one module per table; only `castellan::store` uses them.

pub mod attempt_counter;
pub mod authorization_code;
pub mod bootstrap_marker;
pub mod client;
pub mod client_scope;
pub mod client_secret;
pub mod device_authorization;
pub mod event;
pub mod grant;
pub mod initial_access_token;
pub mod passkey;
pub mod pushed_request;
pub mod recovery_code;
pub mod refresh_family;
pub mod refresh_token;
pub mod registration_policy;
pub mod revocation;
pub mod scope;
pub mod session;
pub mod signing_key;
pub mod token_hour;
pub mod used_assertion;
pub mod used_dpop_proof;
pub mod used_passkey_challenge;
pub mod user;
pub mod user_totp;
