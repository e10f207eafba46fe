//! SeaORM entities, one module per table; only `castellan::store` uses them.

pub mod signing_key;
