//! Black-box tests against a real server and a real database (SQLite, or Postgres when
//! `TEST_DATABASE_URL` is set).

mod abuse;
mod admin;
mod admin_auth;
mod admin_users;
mod attacks;
mod authorize;
mod browser;
mod client_auth;
mod code_exchange;
mod discovery;
mod dpop;
mod drills;
mod gate;
mod headless;
mod health;
mod helpers;
mod housekeeping;
mod introspection;
mod jwks;
mod oidc;
mod par;
mod propagation;
mod proxy;
mod refresh;
mod replicas;
mod rotation;
mod security;
mod sessions;
mod startup;
mod statements;
mod supply_chain;
mod telemetry;
mod token;
