//! Authorization server metadata (RFC 8414 §2, OpenID Connect Discovery 1.0 §3): only the
//! endpoints and values this server actually implements.

use serde::Serialize;

use super::client::{AuthMethod, GrantType};
use super::session::Level;
use crate::config::Issuer;

/// Algorithms a client may sign a `private_key_jwt` assertion with.
pub const ASSERTION_SIGNING_ALGS: [&str; 9] =
    ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The metadata document served at both well-known URLs.
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// RFC 8628 §4.
    pub device_authorization_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_signing_alg_values_supported: Vec<&'static str>,
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<String>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    /// OIDC Discovery §3: the assurance levels a client may ask for with `acr_values`,
    /// weakest first (docs/REFERENCE.md §3.4).
    pub acr_values_supported: Vec<&'static str>,
    /// Back-Channel Logout §2.1: logout tokens are sent to a client's
    /// `backchannel_logout_uri`, with `sid` (and ID tokens carry `sid`).
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    /// RFC 9101 §10.1 (via RFC 8414 §2): what request objects may be signed with.
    pub request_object_signing_alg_values_supported: Vec<&'static str>,
    pub request_uri_parameter_supported: bool,
    /// RFC 9449 §5.1: the algorithms a DPoP proof may be signed with.
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9126 §5.
    pub pushed_authorization_request_endpoint: String,
    /// Whether every client must push its requests (a client may also be required alone).
    pub require_pushed_authorization_requests: bool,
    /// RFC 7591 §3, when clients may register themselves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// Whether a `client_id` may be the URL of the client's metadata document.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub client_id_metadata_document_supported: bool,
}

impl Metadata {
    pub fn new(issuer: &Issuer, scopes: Vec<String>) -> Self {
        Self {
            issuer: issuer.as_str().to_owned(),
            authorization_endpoint: issuer.endpoint("/authorize"),
            token_endpoint: issuer.endpoint("/token"),
            device_authorization_endpoint: issuer.endpoint("/device_authorization"),
            jwks_uri: issuer.endpoint("/jwks"),
            userinfo_endpoint: issuer.endpoint("/userinfo"),
            end_session_endpoint: issuer.endpoint("/logout"),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
            code_challenge_methods_supported: vec!["S256"],
            authorization_response_iss_parameter_supported: true,
            token_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect(),
            token_endpoint_auth_signing_alg_values_supported: ASSERTION_SIGNING_ALGS.to_vec(),
            revocation_endpoint: issuer.endpoint("/revoke"),
            revocation_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .map(|m| m.as_str())
                .collect(),
            introspection_endpoint: issuer.endpoint("/introspect"),
            // Public clients may not introspect (docs/REFERENCE.md §9).
            introspection_endpoint_auth_methods_supported: AuthMethod::ALL
                .iter()
                .filter(|m| **m != AuthMethod::None)
                .map(|m| m.as_str())
                .collect(),
            scopes_supported: scopes,
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: super::jwk::Algorithm::ALL
                .iter()
                .map(|a| a.as_str())
                .collect(),
            claims_supported: vec![
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "amr",
                "acr",
                "nonce",
                "at_hash",
                "sid",
                "name",
                "preferred_username",
                "updated_at",
                "email",
                "email_verified",
            ],
            acr_values_supported: Level::ALL.iter().map(|level| level.acr()).collect(),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            claims_parameter_supported: false,
            // RFC 9101: signed request objects by value; by reference only from /par.
            request_parameter_supported: true,
            request_object_signing_alg_values_supported: ASSERTION_SIGNING_ALGS.to_vec(),
            request_uri_parameter_supported: false,
            dpop_signing_alg_values_supported: super::dpop::SIGNING_ALGS.to_vec(),
            pushed_authorization_request_endpoint: issuer.endpoint("/par"),
            require_pushed_authorization_requests: false,
            registration_endpoint: None,
            client_id_metadata_document_supported: false,
        }
    }
}
