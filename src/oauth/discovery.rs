//! Authorization server metadata (RFC 8414 §2, OpenID Connect Discovery 1.0 §3): only the
//! endpoints and values this server actually implements.

use serde::Serialize;

use super::client::AuthMethod;
use crate::config::Issuer;

/// Algorithms a client may sign a `private_key_jwt` assertion with.
pub const ASSERTION_SIGNING_ALGS: [&str; 9] =
    ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The metadata document served at both well-known URLs.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub issuer: String,
    pub jwks_uri: String,
    pub token_endpoint: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub scopes_supported: Vec<String>,
}

impl Metadata {
    pub fn new(issuer: &Issuer, scopes: Vec<String>) -> Self {
        Self {
            issuer: issuer.as_str().to_owned(),
            jwks_uri: issuer.endpoint("/jwks"),
            token_endpoint: issuer.endpoint("/token"),
            grant_types_supported: vec!["client_credentials"],
            token_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect(),
            token_endpoint_auth_signing_alg_values_supported: ASSERTION_SIGNING_ALGS.to_vec(),
            scopes_supported: scopes,
        }
    }
}
