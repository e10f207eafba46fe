//! `POST /par`: pushed authorization requests (RFC 9126). The client authenticates as at the
//! token endpoint and sends what it would send to `/authorize`; it gets a one-time
//! `request_uri` to send the browser with instead.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::authorize::authorizing;
use super::client_auth;
use super::token::proof_of;
use crate::error::OAuthError;
use crate::oauth::authorize::{self, Origin, PUSHED_REQUEST_LIFETIME_SECS, Refusal};
use crate::startup::AppState;

/// The client-authentication parameters: they authenticate the push, not the request.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// RFC 9126 §2.2.
#[derive(Serialize)]
struct Pushed {
    request_uri: String,
    expires_in: i64,
}

pub async fn push(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (form, client) = client_auth::authenticated_form(&state, &req, body).await?;
    // RFC 9126 §2.1: a pushed request cannot itself refer to another.
    if form.get("request_uri")?.is_some() {
        return Err(OAuthError::InvalidRequest("request_uri cannot be pushed"));
    }
    let mut params: Vec<(String, String)> =
        form.pairs().iter().filter(|(k, _)| !CREDENTIALS.contains(&k.as_str())).cloned().collect();
    // The request is the authenticated client's (a differing client_id failed authentication).
    if form.get("client_id")?.is_none() {
        params.push(("client_id".into(), client.client_id.clone()));
    }
    // RFC 9126 §3: a request object's parameters are what is pushed (and stored), verified
    // once, here; the proof below binds them as it would bind plain ones.
    let ctx = authorizing(&state);
    let mut params = authorize::unpack(&ctx, &params).await.map_err(refused)?;
    // RFC 9449 §10.1: a proof sent with the push binds the code as dpop_jkt would.
    if let Some(proof) = proof_of(&state, &req, "/par").await? {
        // FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA only.
        if client.is_fapi2() && proof.pkcs1 {
            return Err(OAuthError::InvalidDpopProof(
                "RS256 proofs are not accepted for this client",
            ));
        }
        match params.iter().find(|(k, v)| k == "dpop_jkt" && !v.is_empty()) {
            Some((_, jkt)) if *jkt != proof.jkt => {
                return Err(OAuthError::InvalidDpopProof("dpop_jkt is not the proof's key"));
            }
            Some(_) => {}
            None => params.push(("dpop_jkt".into(), proof.jkt)),
        }
    }
    // RFC 9126 §2.1: validated as /authorize would, with the errors it would give.
    authorize::validate(&ctx, &params, Origin::Pushed).await.map_err(refused)?;
    let request_uri = authorize::push(&state.db, &client.client_id, params).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Pushed { request_uri, expires_in: PUSHED_REQUEST_LIFETIME_SECS }))
}

/// A refused request as `/par` answers it (RFC 9126 §2.3): the error `/authorize` would give.
fn refused(refusal: Refusal) -> OAuthError {
    match refusal {
        Refusal::Page(description) => OAuthError::InvalidRequest(description),
        Refusal::RequestObject(description) => {
            OAuthError::AuthorizationRequest { error: "invalid_request_object", description }
        }
        Refusal::Redirect(r) => {
            OAuthError::AuthorizationRequest { error: r.error, description: r.description }
        }
        Refusal::Store(e) => OAuthError::Store(e),
    }
}
