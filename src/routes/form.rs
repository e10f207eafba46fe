//! `application/x-www-form-urlencoded` bodies (RFC 6749 §3.1–§3.2, WHATWG URL §5): parsed
//! strictly, so that every form endpoint answers a body that is not UTF-8 (raw or once
//! percent-decoded) the same way: 400 `invalid_request`.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::OAuthError;

/// At most this many `resource` values in one request (RFC 8707 §2 lets it repeat).
pub const MAX_RESOURCES: usize = 16;

/// Parsed form parameters, in order.
pub struct OAuthForm(Vec<(String, String)>);

impl OAuthForm {
    pub fn parse(req: &HttpRequest, body: &[u8]) -> Result<Self, OAuthError> {
        if !is_form(req) {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        pairs(body)
            .map(Self)
            .ok_or(OAuthError::InvalidRequest("the body is not a valid UTF-8 form"))
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

    /// Every parameter, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Every `resource` (RFC 8707 §2), at most `MAX_RESOURCES`.
    pub fn resources(&self) -> Result<Vec<&str>, OAuthError> {
        self.repeated("resource", "too many resource parameters")
    }

    /// Every `resource` and every `audience` (RFC 8693 §2.1: both name targets), at most
    /// `MAX_RESOURCES` of each.
    pub fn targets(&self) -> Result<Vec<&str>, OAuthError> {
        let mut targets = self.resources()?;
        targets.extend(self.repeated("audience", "too many audience parameters")?);
        Ok(targets)
    }

    fn repeated(&self, name: &str, too_many: &'static str) -> Result<Vec<&str>, OAuthError> {
        let all: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
            .take(MAX_RESOURCES + 1)
            .collect();
        if all.len() > MAX_RESOURCES {
            return Err(OAuthError::InvalidRequest(too_many));
        }
        Ok(all)
    }
}

/// Whether the request says its body is a form.
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// The name/value pairs of a form body or query string; `None` unless it is UTF-8 and every
/// name and value decodes to UTF-8 (never a lossy replacement).
pub fn pairs(input: &[u8]) -> Option<Vec<(String, String)>> {
    let input = std::str::from_utf8(input).ok()?;
    input
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Some((decode(name)?, decode(value)?))
        })
        .collect()
}

fn decode(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced).decode_utf8().ok().map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_decodes_like_the_whatwg_parser() {
        let parsed = pairs(b"a=1&b=x+y%21&c&&d=%E2%82%AC").expect("valid");
        let expected = [("a", "1"), ("b", "x y!"), ("c", ""), ("d", "\u{20ac}")];
        assert_eq!(
            parsed,
            expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>()
        );
    }

    #[test]
    fn anything_that_is_not_utf8_is_refused_not_replaced() {
        assert!(pairs(b"token=\xff\xfe").is_none(), "raw bytes");
        assert!(pairs(b"token=%FF%FE").is_none(), "percent-encoded bytes");
        assert!(pairs(b"%C3=1").is_none(), "a truncated sequence in a name");
    }
}
