//! Client-facing errors, one enum per surface, in the RFC's words. Descriptions are fixed
//! strings (input is never echoed); causes stay in the log; an unreachable database is 503.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::oauth::gate::Scheme;
use crate::store::StoreError;

/// The header a server nonce travels in (RFC 9449 §8.1).
pub const DPOP_NONCE: header::HeaderName = header::HeaderName::from_static("dpop-nonce");

/// The JSON error body (RFC 6749 §5.2 shape; docs/REFERENCE.md §6 adds `field`).
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
    pub error_description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

pub(crate) fn json_error(
    status: StatusCode,
    error: &str,
    description: &str,
    field: Option<&str>,
) -> HttpResponse {
    HttpResponse::build(status).insert_header((header::CACHE_CONTROL, "no-store")).json(ErrorBody {
        error,
        error_description: description,
        field,
    })
}

/// The answer to a failure of our own: 503 `temporarily_unavailable` when the database is
/// out of reach, else 500 `server_error` (the cause is in the log, never in the answer).
fn failure(status: StatusCode) -> HttpResponse {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        json_error(
            status,
            "temporarily_unavailable",
            "the service is temporarily unavailable",
            None,
        )
    } else {
        json_error(status, "server_error", "the server could not complete the request", None)
    }
}

/// Logs the cause of a storage failure and says which status it deserves.
fn storage_status(error: &StoreError) -> StatusCode {
    match error {
        StoreError::Unavailable(_) => {
            tracing::warn!(error = %error, "database unavailable");
            StatusCode::SERVICE_UNAVAILABLE
        }
        _ => {
            tracing::error!(error = %error, "database error");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Errors of the plain JSON endpoints (metadata, health, unknown routes).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not_found")]
    NotFound,
    #[error("method_not_allowed")]
    MethodNotAllowed,
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (error, description) = match self {
            Self::NotFound => ("not_found", "no such endpoint"),
            Self::MethodNotAllowed => {
                ("method_not_allowed", "this endpoint does not answer that method")
            }
            Self::InvalidRequest(d) => ("invalid_request", *d),
        };
        json_error(self.status_code(), error, description, None)
    }
}

/// Errors of the token endpoint family (RFC 6749 §5.2, RFC 8707 §2).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// `basic`: HTTP Basic was tried, so the answer carries `WWW-Authenticate` (§5.2).
    #[error("invalid_client")]
    InvalidClient { basic: bool },
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// A pushed authorization request refused as `/authorize` would have refused it
    /// (RFC 9126 §2.3): the same error code and description.
    #[error("{error}: {description}")]
    AuthorizationRequest { error: &'static str, description: &'static str },
    /// RFC 8628 §3.5: where a device's authorization stands (`authorization_pending`,
    /// `slow_down`, `access_denied`, `expired_token`).
    #[error("{error}: {description}")]
    DeviceFlow { error: &'static str, description: &'static str },
    /// RFC 9449 §5: the DPoP proof is missing, malformed or does not fit the request.
    #[error("invalid_dpop_proof: {0}")]
    InvalidDpopProof(&'static str),
    /// RFC 9449 §8: the proof must carry this server nonce (sent in `DPoP-Nonce`).
    #[error("use_dpop_nonce")]
    UseDpopNonce(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// Too many failed authentications of this client or from this address (docs/REFERENCE.md §9).
    #[error("too many failed attempts")]
    TooManyAttempts(std::time::Duration),
    #[error("internal: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<crate::oauth::keyring::KeyError> for OAuthError {
    fn from(e: crate::oauth::keyring::KeyError) -> Self {
        use crate::oauth::keyring::KeyError;
        match e {
            KeyError::Stale => Self::Unavailable("the key ring is stale"),
            KeyError::Store(s) => Self::Store(s),
            other => Self::Internal(other.into()),
        }
    }
}

impl From<crate::oauth::dpop::ProofError> for OAuthError {
    fn from(e: crate::oauth::dpop::ProofError) -> Self {
        use crate::oauth::dpop::ProofError;
        match e {
            ProofError::Invalid(d) => Self::InvalidDpopProof(d),
            ProofError::UseNonce(nonce) => Self::UseDpopNonce(nonce),
            ProofError::Store(e) => Self::Store(e),
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidClient { .. } => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(e) => storage_status(e),
            Self::Unavailable(reason) => {
                tracing::warn!(reason, "unavailable");
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let (error, description) = match self {
            Self::InvalidRequest(d) => ("invalid_request", *d),
            Self::InvalidClient { .. } => ("invalid_client", "client authentication failed"),
            Self::InvalidGrant(d) => ("invalid_grant", *d),
            Self::UnauthorizedClient(d) => ("unauthorized_client", *d),
            Self::UnsupportedGrantType => {
                ("unsupported_grant_type", "this grant type is not supported")
            }
            Self::InvalidScope(d) => ("invalid_scope", *d),
            Self::InvalidTarget(d) => ("invalid_target", *d),
            Self::InvalidDpopProof(d) => ("invalid_dpop_proof", *d),
            Self::AuthorizationRequest { error, description } => (*error, *description),
            Self::DeviceFlow { error, description } => (*error, *description),
            Self::UseDpopNonce(_) => {
                ("use_dpop_nonce", "the DPoP proof must carry the nonce in DPoP-Nonce")
            }
            Self::TooManyAttempts(_) => (
                "temporarily_unavailable",
                "too many failed authentications; retry after the time in Retry-After",
            ),
            Self::Store(_) | Self::Internal(_) | Self::Unavailable(_)
                if status == StatusCode::SERVICE_UNAVAILABLE =>
            {
                ("temporarily_unavailable", "the service is temporarily unavailable")
            }
            Self::Store(_) | Self::Internal(_) | Self::Unavailable(_) => {
                ("server_error", "the server could not complete the request")
            }
        };
        let mut response = json_error(status, error, description, None);
        response.headers_mut().insert(header::PRAGMA, header::HeaderValue::from_static("no-cache"));
        // RFC 6585 §4: a 429 may say when to come back; docs/REFERENCE.md §9 says it must.
        if let Self::TooManyAttempts(after) = self {
            response.headers_mut().insert(header::RETRY_AFTER, after.as_secs().into());
        }
        if let Self::UseDpopNonce(nonce) = self
            && let Ok(value) = header::HeaderValue::from_str(nonce)
        {
            response.headers_mut().insert(DPOP_NONCE, value);
        }
        // RFC 7235 §3.1: every 401 carries a challenge; RFC 6749 §5.2 requires it after Basic.
        if let Self::InvalidClient { .. } = self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static(r#"Basic realm="castellan""#),
            );
        }
        response
    }
}

/// Errors of protected resources (RFC 6750 §3, RFC 9449 §7.1), each with the challenge of the
/// scheme the token came with.
#[derive(Debug, thiserror::Error)]
pub enum BearerError {
    /// No credentials at all: a bare challenge for each scheme (§3.1).
    #[error("no access token")]
    Missing,
    #[error("invalid_token: {1}")]
    InvalidToken(Scheme, &'static str),
    #[error("insufficient_scope")]
    InsufficientScope(Scheme, &'static str),
    /// A malformed request, e.g. the token outside the Authorization header (§3.1).
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    /// The DPoP proof of a bound token failed (RFC 9449 §7.1).
    #[error("invalid_dpop_proof: {0}")]
    InvalidProof(&'static str),
    /// The proof must carry this nonce (RFC 9449 §9).
    #[error("use_dpop_nonce")]
    UseNonce(String),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

/// The first words of a challenge (RFC 7235 §2.1): the scheme, its realm, and for DPoP the
/// algorithms a proof may use (RFC 9449 §7.1).
fn challenge(scheme: Scheme) -> String {
    match scheme {
        Scheme::Bearer => r#"Bearer realm="castellan""#.to_owned(),
        Scheme::Dpop => format!(
            r#"DPoP realm="castellan", algs="{}""#,
            crate::oauth::dpop::SIGNING_ALGS.join(" ")
        ),
    }
}

impl ResponseError for BearerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken(..) | Self::InvalidProof(_) | Self::UseNonce(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::InsufficientScope(..) => StatusCode::FORBIDDEN,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Store(e) => storage_status(e),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let with = |scheme, error: &str, description: &str| {
            format!(r#"{}, error="{error}", error_description="{description}""#, challenge(scheme))
        };
        let (error, description, challenges) = match self {
            Self::Missing => (
                "invalid_request",
                "an access token is required",
                vec![challenge(Scheme::Bearer), challenge(Scheme::Dpop)],
            ),
            Self::InvalidToken(scheme, d) => {
                ("invalid_token", *d, vec![with(*scheme, "invalid_token", d)])
            }
            Self::InvalidRequest(d) => {
                ("invalid_request", *d, vec![with(Scheme::Bearer, "invalid_request", d)])
            }
            Self::InsufficientScope(scheme, scope) => (
                "insufficient_scope",
                "the access token lacks the required scope",
                vec![format!(
                    r#"{}, error="insufficient_scope", scope="{scope}""#,
                    challenge(*scheme)
                )],
            ),
            Self::InvalidProof(d) => {
                ("invalid_dpop_proof", *d, vec![with(Scheme::Dpop, "invalid_dpop_proof", d)])
            }
            Self::UseNonce(_) => {
                let d = "the DPoP proof must carry the nonce in DPoP-Nonce";
                ("use_dpop_nonce", d, vec![with(Scheme::Dpop, "use_dpop_nonce", d)])
            }
            Self::Store(_) => return failure(status),
        };
        let mut response = json_error(status, error, description, None);
        for challenge in challenges {
            if let Ok(value) = header::HeaderValue::from_str(&challenge) {
                response.headers_mut().append(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Self::UseNonce(nonce) = self
            && let Ok(value) = header::HeaderValue::from_str(nonce)
        {
            response.headers_mut().insert(DPOP_NONCE, value);
        }
        response
    }
}

/// Errors of client registration and its management (RFC 7591 §3.2.2, RFC 7592 §2):
/// `{"error", "error_description", "field"}`; a missing or wrong token is RFC 6750's 401.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("{error} ({field}): {description}")]
    Invalid { error: &'static str, description: &'static str, field: String },
    /// No initial access token (closed registration) or registration access token.
    #[error("no token")]
    MissingToken(&'static str),
    /// A token that is not (or no longer) good here: RFC 7592 §2 answers an unknown client
    /// this way too, so that nobody learns which client ids exist.
    #[error("invalid_token: {0}")]
    InvalidToken(&'static str),
    #[error("too many registrations")]
    TooMany(std::time::Duration),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl RegistrationError {
    pub fn invalid(description: &'static str, field: &str) -> Self {
        Self::Invalid { error: "invalid_client_metadata", description, field: field.to_owned() }
    }
}

impl From<crate::oauth::client_metadata::FieldError> for RegistrationError {
    fn from(e: crate::oauth::client_metadata::FieldError) -> Self {
        Self::Invalid { error: e.error, description: e.description, field: e.field }
    }
}

impl From<crate::oauth::registry::RegistryError> for RegistrationError {
    fn from(e: crate::oauth::registry::RegistryError) -> Self {
        use crate::oauth::registry::RegistryError;
        match e {
            RegistryError::Metadata(m) => m.into(),
            RegistryError::Store(s) => s.into(),
            RegistryError::Internal(i) => i.into(),
        }
    }
}

impl ResponseError for RegistrationError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::MissingToken(_) | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Store(e) => storage_status(e),
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let mut response = match self {
            Self::Invalid { error, description, field } => {
                json_error(status, error, description, Some(field))
            }
            Self::MissingToken(d) | Self::InvalidToken(d) => {
                json_error(status, "invalid_token", d, None)
            }
            Self::TooMany(_) => json_error(
                status,
                "temporarily_unavailable",
                "too many registrations from this address; retry after the time in Retry-After",
                None,
            ),
            _ => failure(status),
        };
        // RFC 6750 §3: a missing token gets a bare challenge, a bad one says why.
        let challenge = match self {
            Self::MissingToken(_) => Some(r#"Bearer realm="castellan""#.to_owned()),
            Self::InvalidToken(d) => Some(format!(
                r#"Bearer realm="castellan", error="invalid_token", error_description="{d}""#
            )),
            _ => None,
        };
        if let Some(value) = challenge.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        if let Self::TooMany(after) = self {
            response.headers_mut().insert(header::RETRY_AFTER, after.as_secs().into());
        }
        response
    }
}

/// Errors of the admin API (docs/REFERENCE.md §6): `{"error", "error_description", "field"}`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("{error} ({field}): {description}")]
    Invalid { error: &'static str, description: &'static str, field: String },
    #[error("not_found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("internal: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AdminError {
    pub fn invalid_request(description: &'static str, field: &str) -> Self {
        Self::Invalid { error: "invalid_request", description, field: field.to_owned() }
    }
}

impl From<crate::oauth::client_metadata::FieldError> for AdminError {
    fn from(e: crate::oauth::client_metadata::FieldError) -> Self {
        Self::Invalid { error: e.error, description: e.description, field: e.field }
    }
}

/// A rotation refused for a reason an administrator can act on is a conflict (409); any other
/// key ring failure is ours.
impl From<crate::oauth::keyring::KeyError> for AdminError {
    fn from(e: crate::oauth::keyring::KeyError) -> Self {
        use crate::oauth::keyring::KeyError;
        match e {
            KeyError::NextTooNew(_) => Self::Conflict(
                "the next key is not yet past every JWKS cache; retry later or force",
            ),
            KeyError::Raced => Self::Conflict("another rotation happened at the same time"),
            KeyError::Store(s) => s.into(),
            other => anyhow::Error::from(other).into(),
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid { .. } => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Store(e) => storage_status(e),
            Self::Internal(e) => {
                tracing::error!(error = %format!("{e:#}"), "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        match self {
            Self::Invalid { error, description, field } => {
                json_error(status, error, description, Some(field))
            }
            Self::NotFound => json_error(status, "not_found", "no such resource", None),
            Self::Conflict(d) => json_error(status, "conflict", d, None),
            _ => failure(status),
        }
    }
}
