//! The `application/x-www-form-urlencoded` body of the OAuth endpoints (RFC 6749 §3.1–§3.2).

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::OAuthError;

/// Parsed form parameters, in order.
pub struct OAuthForm(Vec<(String, String)>);

impl OAuthForm {
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Ok(Self(url::form_urlencoded::parse(body).into_owned().collect()))
    }

    /// A single-valued parameter. RFC 6749 §3.1: a parameter without a value counts as
    /// omitted, and none may be sent more than once.
    pub fn get(&self, name: &str) -> Result<Option<&str>, OAuthError> {
        let mut values = self.0.iter().filter(|(k, v)| k == name && !v.is_empty());
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(OAuthError::InvalidRequest("a parameter was sent more than once"));
        }
        Ok(first)
    }

    /// Every value of a parameter that may repeat (`resource`, RFC 8707 §2).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str()).collect()
    }
}
