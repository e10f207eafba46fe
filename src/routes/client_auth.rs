//! Reads client credentials off a request: HTTP Basic, form fields or a JWT assertion.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::SecretString;

use super::form::OAuthForm;
use crate::error::OAuthError;
use crate::oauth::client::Client;
use crate::oauth::client_auth::{ASSERTION_TYPE, Authenticating, Presented, authenticate};
use crate::startup::AppState;

/// The form body of a token-endpoint-family request (`/token`, `/par`, `/introspect`,
/// `/revoke`) and the client it authenticates.
pub async fn authenticated_form(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<(OAuthForm, Arc<Client>), OAuthError> {
    let body = body
        .map_err(|_| OAuthError::InvalidRequest("the request body is too large or unreadable"))?;
    let form = OAuthForm::parse(req, &body)?;
    let client = client_of(state, req, &form).await?;
    Ok((form, client))
}

/// Authenticates the client a token-endpoint-family request presents (docs/REFERENCE.md §5, §9).
async fn client_of(
    state: &AppState,
    req: &HttpRequest,
    form: &OAuthForm,
) -> Result<Arc<Client>, OAuthError> {
    let presented = presented(req, form)?;
    let ctx = Authenticating {
        db: &state.db,
        registry: &state.registry,
        issuer: &state.issuer,
        throttle: &state.throttle,
        address: super::address::source(req, &state.settings.trusted_proxies),
        client_keys: &state.client_keys,
        request_id: super::actor::request_id(req),
    };
    authenticate(&ctx, presented).await
}

/// The one authentication method a request uses (two at once → `invalid_request`).
pub fn presented(req: &HttpRequest, form: &OAuthForm) -> Result<Presented, OAuthError> {
    let basic = basic_credentials(req)?;
    let secret = form.get("client_secret")?;
    let assertion = form.get("client_assertion")?;
    let assertion_type = form.get("client_assertion_type")?;
    let client_id = form.get("client_id")?;
    let methods = usize::from(basic.is_some())
        + usize::from(secret.is_some())
        + usize::from(assertion.is_some());
    // OAuth 2.1 §2.4: a client MUST NOT use more than one authentication method per request.
    if methods > 1 {
        return Err(OAuthError::InvalidRequest("use exactly one client authentication method"));
    }
    if let Some((id, secret)) = basic {
        if client_id.is_some_and(|c| c != id) {
            return Err(OAuthError::InvalidClient { basic: true });
        }
        return Ok(Presented::Basic { client_id: id, secret });
    }
    if let Some(secret) = secret {
        let client_id = client_id.ok_or(OAuthError::InvalidClient { basic: false })?;
        return Ok(Presented::Post {
            client_id: client_id.to_owned(),
            secret: SecretString::from(secret),
        });
    }
    if let Some(assertion) = assertion {
        if assertion_type != Some(ASSERTION_TYPE) {
            return Err(OAuthError::InvalidRequest("unsupported client_assertion_type"));
        }
        return Ok(Presented::Assertion {
            assertion: assertion.to_owned(),
            client_id: client_id.map(str::to_owned),
        });
    }
    match client_id {
        Some(client_id) => Ok(Presented::Public { client_id: client_id.to_owned() }),
        None => Err(OAuthError::InvalidClient { basic: false }),
    }
}

/// HTTP Basic credentials, whose parts are form-urlencoded first (RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(
    req: &HttpRequest,
) -> Result<Option<(String, SecretString)>, OAuthError> {
    let refused = OAuthError::InvalidClient { basic: true };
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return Ok(None) };
    let value = value.to_str().map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let Some((scheme, encoded)) = value.split_once(' ') else { return Ok(None) };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded =
        STANDARD.decode(encoded.trim()).map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let decoded =
        String::from_utf8(decoded).map_err(|_| OAuthError::InvalidClient { basic: true })?;
    let (id, secret) = decoded.split_once(':').ok_or(refused)?;
    let (id, secret) = (form_decode(id)?, form_decode(secret)?);
    if id.is_empty() {
        return Err(OAuthError::InvalidClient { basic: true });
    }
    Ok(Some((id, SecretString::from(secret))))
}

fn form_decode(part: &str) -> Result<String, OAuthError> {
    percent_encoding::percent_decode_str(&part.replace('+', " "))
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| OAuthError::InvalidClient { basic: true })
}
