//! `/register` (RFC 7591) and `/register/{client_id}` (RFC 7592): clients that register
//! themselves and then read, update or delete their registration with the registration
//! access token they got (docs/REFERENCE.md §5.10).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;

use crate::error::RegistrationError;
use crate::oauth::client::{Client, ClientView, Registration, is_client_id};
use crate::oauth::client_metadata;
use crate::oauth::registration::{self, Admission, Mode, Policy};
use crate::oauth::scope::Scopes;
use crate::oauth::secret;
use crate::startup::AppState;
use crate::store;

/// A client information response (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(Serialize)]
struct Information {
    #[serde(flatten)]
    client: ClientView,
    /// Only in the answers that issue one: registration and update.
    #[serde(skip_serializing_if = "Option::is_none")]
    registration_access_token: Option<String>,
    registration_client_uri: String,
}

/// Never the tokens or the secret in a log.
impl std::fmt::Debug for Information {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Information")
            .field("client", &self.client)
            .field(
                "registration_access_token",
                &self.registration_access_token.as_ref().map(|_| "[redacted]"),
            )
            .field("registration_client_uri", &self.registration_client_uri)
            .finish()
    }
}

fn information(
    state: &AppState,
    client: &Client,
    client_secret: Option<&SecretString>,
    token: Option<&SecretString>,
) -> Information {
    Information {
        client: client.view(client_secret.map(|s| s.expose_secret().to_owned())),
        registration_access_token: token.map(|t| t.expose_secret().to_owned()),
        registration_client_uri: state.issuer.endpoint(&format!("/register/{}", client.client_id)),
    }
}

fn answer(mut builder: actix_web::HttpResponseBuilder, body: &Information) -> HttpResponse {
    // RFC 7591 §3.2.1: the answer carries credentials, so no cache keeps it.
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// `POST /register`: a client registers itself, with an initial access token or under the
/// open policy.
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, RegistrationError> {
    let address = super::address::source(&req, &state.settings.trusted_proxies);
    if let Err(refused) = state.throttle.registration(&state.db, address).await? {
        return Err(RegistrationError::TooMany(refused.retry_after));
    }
    let policy = policy(&state).await?;
    let now = Utc::now();
    let initial = match bearer(&req)? {
        Some(token) => Some(
            store::registration::find_token(&state.db, &secret::hash(&token))
                .await?
                .filter(|t| t.uses_left > 0 && t.expires_at > now)
                .ok_or(RegistrationError::InvalidToken("the initial access token is not valid"))?,
        ),
        None if policy.mode == Mode::Open => None,
        None => {
            return Err(RegistrationError::MissingToken(
                "registration needs an initial access token from an administrator",
            ));
        }
    };
    let body = body_of(&req, &body)?;
    let mut metadata = client_metadata::parse(
        &client_metadata::known_members_only(&body),
        state.settings.max_token_lifetime,
    )?;
    let token_scope;
    let admission = match &initial {
        Some(token) => {
            token_scope = Scopes::parse(&token.scope).unwrap_or_default();
            Admission::Token { scope: &token_scope }
        }
        None => Admission::Open(&policy),
    };
    registration::admit(&mut metadata, &admission)?;
    let access = secret::generate()?;
    let registered = state
        .registry
        .register_dynamic(
            &state.db,
            metadata,
            secret::hash(&access),
            initial.as_ref().map(|t| t.id.as_str()),
            super::actor::anonymous(&state, &req),
        )
        .await?
        .ok_or(RegistrationError::InvalidToken("the initial access token is used up"))?;
    let client = &registered.client;
    tracing::info!(
        client_id = %client.client_id,
        registration = client.registration.as_str(),
        initial_access_token = initial.as_ref().map(|t| t.id.as_str()),
        %address,
        "a client registered itself"
    );
    let body = information(&state, client, registered.secret.as_ref(), Some(&access));
    Ok(answer(HttpResponse::Created(), &body))
}

/// `GET /register/{client_id}` (RFC 7592 §2.1).
pub async fn read(
    state: web::Data<AppState>,
    req: HttpRequest,
    client_id: web::Path<String>,
) -> Result<HttpResponse, RegistrationError> {
    let client = authorized(&state, &req, &client_id).await?;
    Ok(answer(HttpResponse::Ok(), &information(&state, &client, None, None)))
}

/// Members of a client information response that an update may carry back but that the
/// client cannot set (RFC 7592 §2.2): ignored.
const ANSWER_ONLY: [&str; 4] = [
    "registration_access_token",
    "registration_client_uri",
    "client_secret_expires_at",
    "client_id_issued_at",
];

/// `PUT /register/{client_id}` (RFC 7592 §2.2): the whole metadata again, held to what the
/// client was admitted with; a new registration access token every time.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    client_id: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HttpResponse, RegistrationError> {
    let current = authorized(&state, &req, &client_id).await?;
    let mut body = body_of(&req, &body)?;
    let map = body
        .as_object_mut()
        .ok_or_else(|| RegistrationError::invalid("the body must be a JSON object", "body"))?;
    // §2.2: the request MUST carry the client's id, and a secret only as it is now.
    if map.remove("client_id") != Some(Value::String(current.client_id.clone())) {
        return Err(RegistrationError::invalid("client_id must be this client's id", "client_id"));
    }
    if let Some(presented) = map.remove("client_secret") {
        let presented = SecretString::from(presented.as_str().unwrap_or_default().to_owned());
        if !secret::matches_any(&presented, current.live_secret_hashes(Utc::now())) {
            return Err(RegistrationError::invalid(
                "client_secret must be the client's current secret (it cannot be chosen)",
                "client_secret",
            ));
        }
    }
    for name in ANSWER_ONLY {
        map.remove(name);
    }
    let mut metadata = client_metadata::parse(
        &client_metadata::known_members_only(&body),
        state.settings.max_token_lifetime,
    )?;
    match current.registration {
        Registration::Open => {
            registration::admit(&mut metadata, &Admission::Open(&policy(&state).await?))?;
        }
        _ => {
            registration::within_current(&mut metadata, &current.metadata)?;
            registration::admit(
                &mut metadata,
                &Admission::Token { scope: &current.metadata.scope },
            )?;
        }
    }
    let access = secret::generate()?;
    let registered = state
        .registry
        .replace(
            &state.db,
            &state.revocations,
            &current.client_id,
            metadata,
            Some(secret::hash(&access)),
            super::actor::seen_client(&current.client_id, &state, &req),
        )
        .await?
        .ok_or(RegistrationError::InvalidToken("the client no longer exists"))?;
    tracing::info!(client_id = %current.client_id, "a client updated its registration");
    let body = information(&state, &registered.client, registered.secret.as_ref(), Some(&access));
    Ok(answer(HttpResponse::Ok(), &body))
}

/// `DELETE /register/{client_id}` (RFC 7592 §2.3): the client and every token issued to it
/// end.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    client_id: web::Path<String>,
) -> Result<HttpResponse, RegistrationError> {
    let client = authorized(&state, &req, &client_id).await?;
    let actor = super::actor::seen_client(&client.client_id, &state, &req);
    if !state.registry.delete(&state.db, &state.revocations, &client.client_id, actor).await? {
        return Err(RegistrationError::InvalidToken("the client no longer exists"));
    }
    tracing::info!(client_id = %client.client_id, "a client deleted its registration");
    Ok(HttpResponse::NoContent().finish())
}

/// The policy in force; `/register` is routed only while registration is on.
async fn policy(state: &AppState) -> Result<Policy, RegistrationError> {
    Ok(Policy::load(&state.db, &state.settings)
        .await?
        .ok_or_else(|| anyhow::anyhow!("registration is off but /register was routed"))?)
}

/// The client `client_id` if the request carries its registration access token. An unknown
/// client, one an administrator registered and a wrong token all get the same 401 (RFC 7592
/// §2: nobody learns which ids exist).
async fn authorized(
    state: &AppState,
    req: &HttpRequest,
    client_id: &str,
) -> Result<Client, RegistrationError> {
    let token = bearer(req)?
        .ok_or(RegistrationError::MissingToken("a registration access token is required"))?;
    let client = if is_client_id(client_id) {
        state.registry.load(&state.db, client_id).await?
    } else {
        None
    };
    client
        .filter(|c| c.registration.is_dynamic())
        .filter(|c| secret::matches_any(&token, c.registration_token_hash.as_deref()))
        .ok_or(RegistrationError::InvalidToken("the registration access token is not valid"))
}

/// The token of an `Authorization: Bearer` header, if the request has one (RFC 6750 §2.1),
/// read as every bearer route reads it (`bearer::authorization`).
fn bearer(req: &HttpRequest) -> Result<Option<SecretString>, RegistrationError> {
    if !req.headers().contains_key(header::AUTHORIZATION) {
        return Ok(None);
    }
    let token = super::bearer::authorization(req)
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .filter(|token| {
            (1..=128).contains(&token.len())
                && token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
        })
        .ok_or(RegistrationError::InvalidToken(
            "the Authorization header must be Bearer and a token",
        ))?;
    Ok(Some(SecretString::from(token.to_owned())))
}

/// The request's JSON object; a software statement is refused by name (RFC 7591 §3.2.2:
/// this server approves none).
fn body_of(
    req: &HttpRequest,
    body: &Result<web::Bytes, actix_web::Error>,
) -> Result<Value, RegistrationError> {
    let body = super::admin::json_object(req, body).map_err(|description| {
        RegistrationError::Invalid { error: "invalid_request", description, field: "body".into() }
    })?;
    if body.get("software_statement").is_some() {
        return Err(RegistrationError::Invalid {
            error: "unapproved_software_statement",
            description: "this server approves no software statements",
            field: "software_statement".into(),
        });
    }
    Ok(body)
}
