//! `POST /token`: the token endpoint (RFC 6749 §3.2).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth;
use super::form::OAuthForm;
use crate::error::OAuthError;
use crate::oauth::grant::{Issuing, authorization_code};
use crate::oauth::grant::{client_credentials, refresh_token};
use crate::startup::AppState;

pub async fn exchange(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let body = body
        .map_err(|_| OAuthError::InvalidRequest("the request body is too large or unreadable"))?;
    let form = OAuthForm::parse(&req, &body)?;
    let client = client_auth::client_of(&state, &req, &form).await?;
    let issued = match form.get("grant_type")? {
        None => return Err(OAuthError::InvalidRequest("grant_type is required")),
        Some("client_credentials") => client_credentials::exchange(
            &state.keys,
            &state.issuer,
            state.settings.max_token_lifetime,
            &client,
            client_credentials::Request { scope: form.get("scope")?, resources: form.resources()? },
        )?,
        Some("authorization_code") => {
            let request = authorization_code::Request {
                code: form.get("code")?,
                redirect_uri: form.get("redirect_uri")?,
                code_verifier: form.get("code_verifier")?,
                resources: form.resources()?,
            };
            authorization_code::exchange(&issuing(&state), &client, request).await?
        }
        Some("refresh_token") => {
            let request = refresh_token::Request {
                refresh_token: form.get("refresh_token")?,
                scope: form.get("scope")?,
                resources: form.resources()?,
                reuse_grace: state.settings.refresh_reuse_grace,
            };
            refresh_token::exchange(&issuing(&state), &client, request).await?
        }
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    };
    // RFC 6749 §5.1: token responses are never cached.
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(issued))
}

fn issuing(state: &AppState) -> Issuing<'_> {
    Issuing {
        db: &state.db,
        keys: &state.keys,
        refresh_keys: &state.refresh_keys,
        issuer: &state.issuer,
        max_lifetime: state.settings.max_token_lifetime,
        revocations: &state.revocations,
    }
}
