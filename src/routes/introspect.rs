//! `POST /introspect` (RFC 7662) and `POST /revoke` (RFC 7009).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth;
use crate::error::OAuthError;
use crate::oauth::client::Client;
use crate::startup::AppState;

/// Authenticates the caller and reads the `token` parameter.
async fn caller_and_token(
    state: &AppState,
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<(std::sync::Arc<Client>, String), OAuthError> {
    let (form, client) = client_auth::authenticated_form(state, req, body).await?;
    let token = form.get("token")?.ok_or(OAuthError::InvalidRequest("token is required"))?;
    Ok((client, token.to_owned()))
}

/// RFC 7662 §2: introspection, for confidential clients only.
pub async fn inspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (client, token) = caller_and_token(&state, &req, body).await?;
    // docs/REFERENCE.md §9: public clients may not introspect.
    if client.is_public() {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    let answer = state.gate().introspect(&client, &token).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(answer))
}

/// RFC 7009 §2: revocation; 200 whether or not there was anything to revoke.
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (client, token) = caller_and_token(&state, &req, body).await?;
    state.gate().revoke(&client.client_id, &token).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).finish())
}
