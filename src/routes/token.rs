//! `POST /token`: the token endpoint (RFC 6749 §3.2).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::client_auth;
use crate::error::{DPOP_NONCE, OAuthError};
use crate::oauth::client::{DEVICE_CODE_GRANT, TOKEN_EXCHANGE_GRANT};
use crate::oauth::dpop::{Expected, Proof};
use crate::oauth::grant::{Issuing, authorization_code, device_code};
use crate::oauth::grant::{client_credentials, refresh_token, token_exchange};
use crate::startup::AppState;

pub async fn exchange(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, OAuthError> {
    let (form, client) = client_auth::authenticated_form(&state, &req, body).await?;
    // Checked once the client is known: an anonymous caller records no proof.
    let proof = proof_of(&state, &req, "/token").await?;
    // RFC 9449 §5.2: a client registered with dpop_bound_access_tokens always sends a proof.
    if client.metadata.dpop_bound_access_tokens && proof.is_none() {
        return Err(OAuthError::InvalidDpopProof("this client must send a DPoP proof"));
    }
    // FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA only.
    if client.is_fapi2() && proof.as_ref().is_some_and(|p| p.pkcs1) {
        return Err(OAuthError::InvalidDpopProof("RS256 proofs are not accepted for this client"));
    }
    let proof = proof.as_ref();
    let issued = match form.get("grant_type")? {
        None => return Err(OAuthError::InvalidRequest("grant_type is required")),
        Some("client_credentials") => client_credentials::exchange(
            &state.keys,
            &state.issuer,
            state.settings.max_token_lifetime,
            &client,
            client_credentials::Request {
                scope: form.get("scope")?,
                resources: form.resources()?,
                proof,
            },
        )?,
        Some("authorization_code") => {
            let request = authorization_code::Request {
                code: form.get("code")?,
                redirect_uri: form.get("redirect_uri")?,
                code_verifier: form.get("code_verifier")?,
                resources: form.resources()?,
                proof,
            };
            authorization_code::exchange(&issuing(&state), &client, request).await?
        }
        Some("refresh_token") => {
            let request = refresh_token::Request {
                refresh_token: form.get("refresh_token")?,
                scope: form.get("scope")?,
                resources: form.resources()?,
                reuse_grace: state.settings.refresh_reuse_grace,
                proof,
            };
            refresh_token::exchange(&issuing(&state), &client, request).await?
        }
        Some(DEVICE_CODE_GRANT) => {
            let request = device_code::Request {
                device_code: form.get("device_code")?,
                resources: form.resources()?,
                proof,
            };
            device_code::exchange(&issuing(&state), &client, request).await?
        }
        Some(TOKEN_EXCHANGE_GRANT) => {
            let request = token_exchange::Request {
                subject_token: form.get("subject_token")?,
                subject_token_type: form.get("subject_token_type")?,
                actor_token: form.get("actor_token")?,
                actor_token_type: form.get("actor_token_type")?,
                requested_token_type: form.get("requested_token_type")?,
                scope: form.get("scope")?,
                targets: form.targets()?,
                proof,
            };
            let max_lifetime = state.settings.max_token_lifetime;
            token_exchange::exchange(&state.gate(), &state.issuer, max_lifetime, &client, request)
                .await?
        }
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    };
    // Every grant's successful response passes here, once: counted in memory, flushed by the
    // sync loop (no statement on this path).
    state.tally.count(chrono::Utc::now());
    // A client that registered itself stays while it is used (docs/REFERENCE.md §5.10). The
    // tokens are issued (a refresh already rotated): a failure here must not lose them.
    if let Err(e) = state.registry.touch(&state.db, &client).await {
        tracing::warn!(error = %e, client_id = %client.client_id, "could not record a client's use");
    }
    // RFC 6749 §5.1: token responses are never cached.
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    // RFC 9449 §8.2: the next proof's nonce, handed out with every answer.
    if state.proofs.requires_nonce() {
        response.insert_header((DPOP_NONCE, state.proofs.nonce(chrono::Utc::now())));
    }
    Ok(response.json(issued))
}

/// The request's DPoP proof, checked (RFC 9449 §4.3) and recorded, if it carries one; `path`
/// is the endpoint's, under the issuer (`htu`).
pub(crate) async fn proof_of(
    state: &AppState,
    req: &HttpRequest,
    path: &str,
) -> Result<Option<Proof>, OAuthError> {
    let mut headers = req.headers().get_all("dpop");
    let Some(value) = headers.next() else { return Ok(None) };
    // §4.3 item 1: exactly one proof.
    if headers.next().is_some() {
        return Err(OAuthError::InvalidDpopProof("send exactly one DPoP header"));
    }
    let proof =
        value.to_str().map_err(|_| OAuthError::InvalidDpopProof("the proof is malformed"))?;
    let url = state.issuer.endpoint(path);
    let expected = Expected { method: req.method().as_str(), url: &url, access_token: None };
    Ok(Some(state.proofs.accept(&state.replays, proof, &expected).await?))
}

pub(crate) fn issuing(state: &AppState) -> Issuing<'_> {
    Issuing {
        db: &state.db,
        keys: &state.keys,
        refresh_keys: &state.refresh_keys,
        issuer: &state.issuer,
        max_lifetime: state.settings.max_token_lifetime,
        revocations: &state.revocations,
    }
}
