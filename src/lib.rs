//! Castellan: an OAuth 2.1 / OpenID Connect authorization server.

pub mod cli;
pub mod config;
pub mod error;
pub mod oauth;
pub mod outbound;
pub mod routes;
pub mod startup;
pub mod store;
pub mod telemetry;

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod redaction;
