//! Protocol rules as plain functions and types: keys, tokens, metadata (no actix, no SeaORM).

pub mod discovery;
pub mod jwk;
pub mod jws;
pub mod keyring;
pub mod master_key;
