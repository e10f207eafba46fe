//! Protocol rules as plain functions and types: clients, scopes, keys, tokens, metadata
//! (no actix, no SeaORM).

pub mod access_token;
pub mod authorize;
pub mod client;
pub mod client_auth;
pub mod client_documents;
pub mod client_keys;
pub mod client_metadata;
pub mod csrf;
pub mod cursor;
pub mod delegation;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod gate;
pub mod grant;
pub mod id_token;
pub mod jwk;
pub mod jws;
pub mod keyring;
pub mod master_key;
pub mod pkce;
pub mod redirect_uri;
pub mod refresh_token;
pub mod registration;
pub mod registry;
pub mod revocation;
pub mod scope;
pub mod secret;
pub mod session;
pub mod throttle;
pub mod users;
pub mod verified;
