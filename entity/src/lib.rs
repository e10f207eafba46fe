//! SeaORM entities, one module per table; only `castellan::store` uses them.

pub mod bootstrap_marker;
pub mod client;
pub mod client_scope;
pub mod client_secret;
pub mod scope;
pub mod signing_key;
pub mod used_assertion;
pub mod user;
