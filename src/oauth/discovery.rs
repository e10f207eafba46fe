//! Authorization server metadata (RFC 8414 §2, OpenID Connect Discovery 1.0 §3): only the
//! endpoints and values this server actually implements.

use serde::Serialize;

use crate::config::Issuer;

/// The metadata document served at both well-known URLs.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub issuer: String,
    pub jwks_uri: String,
}

impl Metadata {
    pub fn new(issuer: &Issuer) -> Self {
        Self {
            issuer: issuer.as_str().to_owned(),
            jwks_uri: issuer.endpoint("/jwks"),
        }
    }
}
