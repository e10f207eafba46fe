//! Bearer tokens on requests (RFC 6750 §2.1): from the Authorization header, and only there.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::BearerError;

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1); anything else is
/// treated as no credentials.
pub fn bearer_token(req: &HttpRequest) -> Result<String, BearerError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(BearerError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(BearerError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(BearerError::InvalidToken("the token is malformed"));
    }
    Ok(token.to_owned())
}
