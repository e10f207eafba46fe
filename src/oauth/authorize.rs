//! The authorization request (RFC 6749 §4.1.1, OAuth 2.1 §4.1.1, RFC 7636 §4.3): validated
//! client and redirect URI first (errors stay on our page), everything else after (errors go
//! back to the client with `state` and `iss`, RFC 9207).

use std::collections::HashSet;
use std::sync::Arc;

use aws_lc_rs::digest::{SHA256, digest};
use chrono::{DateTime, Utc};

use super::client::{Client, GrantType, is_client_id};
use super::client_documents::{self, ClientDocuments, DocumentError};
use super::client_keys::ClientKeys;
use super::keyring::Keys;
use super::pkce;
use super::redirect_uri;
use super::registry::Registry;
use super::revocation::Revocations;
use super::scope::Scopes;
use super::session::Level;
use crate::store::{self, Db, StoreError};

/// The prefix of every `request_uri` this server hands out (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request may wait for its authorization (RFC 9126 §2.2: short-lived).
pub const PUSHED_REQUEST_LIFETIME_SECS: i64 = 60;

/// What validating an authorization request needs from the server.
pub struct Authorizing<'a> {
    pub db: &'a Db,
    pub registry: &'a Registry,
    pub keys: &'a Keys,
    pub issuer: &'a str,
    /// Every client must push its requests (RFC 9126 §5, server-wide).
    pub require_pushed_requests: bool,
    /// Verifies request objects with the client's keys.
    pub client_keys: &'a ClientKeys,
    /// Fetches the metadata documents of clients whose id is a URL.
    pub client_documents: &'a ClientDocuments,
    pub revocations: &'a Revocations,
}

/// The client a request names: a registered one, or one whose id is its metadata
/// document's URL, fetched and stored first when it is not current (§5.11).
async fn client_named(ctx: &Authorizing<'_>, client_id: &str) -> Result<Arc<Client>, Refusal> {
    if !is_client_id(client_id) {
        return Err(Refusal::Page("the client is unknown"));
    }
    let fetched = match client_documents::is_document_url(client_id) {
        true => ctx.client_documents.ensure(ctx.db, ctx.registry, ctx.revocations, client_id).await,
        false => Ok(()),
    };
    match fetched {
        Ok(()) | Err(DocumentError::Disabled) => {}
        Err(DocumentError::Store(e)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(client_id = %client_id, error = %e, "a client's metadata document was not usable");
            return Err(Refusal::Page(match e {
                DocumentError::Invalid(_) | DocumentError::Taken => {
                    "the client's metadata document is not acceptable"
                }
                _ => "the client's metadata document could not be fetched",
            }));
        }
    }
    ctx.registry.find(ctx.db, client_id).await?.ok_or(Refusal::Page("the client is unknown"))
}

/// Where a request's parameters come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `/authorize`, `/consent`: the browser's query or form, or a `request_uri` naming a
    /// request pushed before.
    Browser,
    /// `POST /par`, from the authenticated client itself.
    Pushed,
}

/// Stores a validated request of `client_id` for [`PUSHED_REQUEST_LIFETIME_SECS`] under a new
/// `request_uri` (RFC 9126 §2.2, §7.1: 256 random bits; stored only as a hash) and returns it.
pub async fn push(
    db: &Db,
    client_id: &str,
    parameters: Vec<(String, String)>,
) -> Result<String, StoreError> {
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", super::secret::random_token(32)?);
    let hash = digest(&SHA256, request_uri.as_bytes()).as_ref().to_vec();
    let now = Utc::now();
    let record = store::pushed::PushedRecord {
        client_id: client_id.to_owned(),
        parameters,
        created_at: now,
    };
    let expires_at = now + chrono::Duration::seconds(PUSHED_REQUEST_LIFETIME_SECS);
    store::pushed::insert(db, &hash, &record, expires_at).await?;
    Ok(request_uri)
}

/// The hash a `request_uri` is stored under; `None` for one this server never makes.
pub fn request_uri_hash(request_uri: &str) -> Option<Vec<u8>> {
    let random = request_uri.strip_prefix(REQUEST_URI_PREFIX)?;
    is_base64url_of_32_bytes(random)
        .then(|| digest(&SHA256, request_uri.as_bytes()).as_ref().to_vec())
}

/// Whether `value` is 32 bytes in unpadded base64url (43 characters): a SHA-256 thumbprint
/// (RFC 7638) or the random part of a `request_uri`.
fn is_base64url_of_32_bytes(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: Arc<Client>,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (the token request must then repeat it).
    pub redirect_uri_sent: bool,
    pub scope: Scopes,
    pub state: Option<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
    /// OIDC Core §3.1.2.1 `prompt`.
    pub prompt: Prompt,
    /// OIDC Core §3.1.2.1 `max_age`, in seconds.
    pub max_age: Option<i64>,
    /// The `sub` of a verified `id_token_hint`, if one was sent.
    pub hinted_subject: Option<String>,
    pub login_hint: Option<String>,
    /// OIDC Core §3.1.2.1 `acr_values`: the weakest level it names that this server knows
    /// (values it does not know are ignored, as the parameter is voluntary).
    pub acr: Option<Level>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code's tokens must be bound to.
    pub dpop_jkt: Option<String>,
    /// For a pushed request (RFC 9126): the hash of its `request_uri`, used up by the code
    /// it yields, and when it was pushed.
    pub pushed: Option<(Vec<u8>, DateTime<Utc>)>,
}

/// What `prompt` asks for (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No UI at all: fail back to the client rather than show a page.
    pub none: bool,
    /// Authenticate again even with a session.
    pub login: bool,
    /// Ask for consent even when a grant covers the request.
    pub consent: bool,
}

/// Why a request is refused, and how the browser learns of it.
#[derive(Debug)]
pub enum Refusal {
    /// About the client or the redirect URI: shown on our error page, never redirected
    /// (RFC 6749 §4.1.2.1), since the redirect target cannot be trusted.
    Page(&'static str),
    /// Anything else: sent back to the client's redirect URI.
    Redirect(ErrorRedirect),
    /// A request object that does not verify (RFC 9101 §6.3 `invalid_request_object`): its
    /// redirect URI is unproven, so the browser sees our page; `/par` answers 400.
    RequestObject(&'static str),
    Store(StoreError),
}

/// An error to send to the client (RFC 6749 §4.1.2.1).
#[derive(Debug)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub error: &'static str,
    pub description: &'static str,
    pub state: Option<String>,
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// Validates an authorization request: its parameters, those of the request object it
/// carries, or those of the pushed request its `request_uri` names (RFC 9126 §4: then every
/// other parameter but `client_id` is ignored).
pub async fn validate(
    ctx: &Authorizing<'_>,
    params: &[(String, String)],
    origin: Origin,
) -> Result<AuthorizationRequest, Refusal> {
    let request_uri = params.iter().find(|(k, v)| k == "request_uri" && !v.is_empty());
    let (Origin::Browser, Some((_, request_uri))) = (origin, request_uri) else {
        let params = unpack(ctx, params).await?;
        return check(ctx, &params, origin).await;
    };
    // The client and redirect URI are unknown until the pushed request is found: any
    // failure stays on our page (RFC 9126 §4, RFC 6749 §4.1.2.1).
    let unusable = Refusal::Page("the request_uri is unknown, expired or already used");
    let client_id = params.iter().find(|(k, _)| k == "client_id").map(|(_, v)| v.as_str());
    let hash = request_uri_hash(request_uri).ok_or(unusable)?;
    let pushed = store::pushed::find(ctx.db, &hash, Utc::now())
        .await?
        .filter(|p| Some(p.client_id.as_str()) == client_id)
        .ok_or(Refusal::Page("the request_uri is unknown, expired or already used"))?;
    let mut request = check(ctx, &pushed.parameters, Origin::Pushed).await?;
    request.pushed = Some((hash, pushed.created_at));
    Ok(request)
}

/// The longest a request object may be valid for (FAPI 2.0 Message Signing §5.3.1: `exp`
/// at most 60 minutes after `nbf`).
const MAX_REQUEST_OBJECT_LIFETIME_SECS: i64 = 3600;
/// FAPI 2.0 Security Profile §5.3.1.2 asks servers to accept `iat`/`nbf` up to 10 s ahead.
const REQUEST_OBJECT_LEEWAY_SECS: u64 = 10;

/// The parameters of a request: those of its request object (RFC 9101) when it carries one,
/// else its own. A request object is a JWS the client signed with a key it registered: `iss`
/// is the client, `aud` this issuer, `exp` within the hour; RFC 9101 §6.3: only its
/// parameters count, and the `client_id` outside must be the one inside.
pub async fn unpack(
    ctx: &Authorizing<'_>,
    params: &[(String, String)],
) -> Result<Vec<(String, String)>, Refusal> {
    let get = |name: &str| params.iter().find(|(k, v)| k == name && !v.is_empty());
    let Some((_, jwt)) = get("request") else { return Ok(params.to_vec()) };
    if params.iter().filter(|(k, _)| k == "request" || k == "client_id").count() > 2 {
        return Err(Refusal::Page("the request repeats client_id or request"));
    }
    // RFC 9101 §5: the client_id is sent outside the object too, so the keys can be found.
    let (_, client_id) = get("client_id").ok_or(Refusal::Page("the request has no client_id"))?;
    let client = client_named(ctx, client_id).await?;
    let invalid = Refusal::RequestObject;
    // RFC 9101 §10.8: explicit typing; a JWT of another kind (an access token, a DPoP proof)
    // is not a request object.
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| invalid("malformed"))?;
    if header
        .typ
        .as_deref()
        .is_some_and(|t| !["oauth-authz-req+jwt", "jwt"].contains(&t.to_ascii_lowercase().as_str()))
    {
        return Err(invalid("the request object's typ is not oauth-authz-req+jwt"));
    }
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.leeway = REQUEST_OBJECT_LEEWAY_SECS;
    validation.set_audience(&[ctx.issuer]);
    validation.set_issuer(&[&client.client_id]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let verified = ctx
        .client_keys
        .verify::<serde_json::Map<String, serde_json::Value>>(&client, jwt, validation)
        .await;
    let claims = match verified {
        Ok(verified) => verified.claims,
        Err(e) => {
            tracing::debug!(client_id = %client.client_id, reason = %e, "request object refused");
            return Err(invalid(
                "the request object is not signed by the client's keys or is not valid now",
            ));
        }
    };
    let now = Utc::now().timestamp();
    let exp = claims.get("exp").and_then(serde_json::Value::as_i64).unwrap_or(i64::MAX);
    if exp > now + MAX_REQUEST_OBJECT_LIFETIME_SECS {
        return Err(invalid("the request object is valid for more than an hour"));
    }
    if claims.get("client_id").is_some_and(|c| c.as_str() != Some(client_id.as_str())) {
        return Err(invalid("the request object names another client_id"));
    }
    if claims.contains_key("request") || claims.contains_key("request_uri") {
        return Err(invalid("a request object cannot contain request or request_uri"));
    }
    const REGISTERED: [&str; 6] = ["iss", "aud", "exp", "nbf", "iat", "jti"];
    let mut unpacked = vec![("client_id".to_owned(), client_id.clone())];
    for (name, value) in claims {
        if REGISTERED.contains(&name.as_str()) || name == "client_id" {
            continue;
        }
        let value = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(text) => text,
            serde_json::Value::Number(_) | serde_json::Value::Bool(_) => value.to_string(),
            // `claims`, `authorization_details`: JSON, as they travel in a query.
            other => other.to_string(),
        };
        unpacked.push((name, value));
    }
    Ok(unpacked)
}

async fn check(
    ctx: &Authorizing<'_>,
    params: &[(String, String)],
    origin: Origin,
) -> Result<AuthorizationRequest, Refusal> {
    let (keys, issuer) = (ctx.keys, ctx.issuer);
    let mut seen = HashSet::new();
    let duplicated: HashSet<&str> =
        params.iter().filter(|(k, _)| !seen.insert(k.as_str())).map(|(k, _)| k.as_str()).collect();
    // RFC 6749 §3.1: empty parameters count as omitted.
    let get = |name: &str| {
        params.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    };

    if duplicated.contains("client_id") || duplicated.contains("redirect_uri") {
        return Err(Refusal::Page("the request repeats client_id or redirect_uri"));
    }
    let client_id = get("client_id").ok_or(Refusal::Page("the request has no client_id"))?;
    let client = client_named(ctx, client_id).await?;
    let registered = &client.metadata.redirect_uris;
    let (redirect_uri, redirect_uri_sent) = match get("redirect_uri") {
        Some(presented) => match registered.iter().find(|r| redirect_uri::matches(r, presented)) {
            // Loopback matches on any port: redirect to the port the client asked for.
            Some(_) => (presented.to_owned(), true),
            None => {
                return Err(Refusal::Page("the redirect_uri is not registered for this client"));
            }
        },
        None if registered.len() == 1 => (registered[0].clone(), false),
        None => return Err(Refusal::Page("the request has no redirect_uri")),
    };

    let state = get("state").filter(|_| !duplicated.contains("state")).map(str::to_owned);
    let refuse = |error: &'static str, description: &'static str| {
        Refusal::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description,
            state: state.clone(),
        })
    };
    if !duplicated.is_empty() {
        return Err(refuse("invalid_request", "a parameter was sent more than once"));
    }
    match get("response_type") {
        Some("code") => {}
        None => return Err(refuse("invalid_request", "response_type is required")),
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(refuse(
            "unauthorized_client",
            "the client is not registered for the authorization code grant",
        ));
    }
    // RFC 9126 §5–§6: a client (or server) that requires it sends requests only by reference.
    let must_push =
        ctx.require_pushed_requests || client.metadata.require_pushed_authorization_requests;
    if origin == Origin::Browser && must_push {
        return Err(refuse(
            "invalid_request",
            "this client must push its authorization requests to the PAR endpoint",
        ));
    }
    // FAPI 2.0 Security Profile §5.3.2.2: the redirect URI is sent, never implied.
    if client.is_fapi2() && !redirect_uri_sent {
        return Err(refuse("invalid_request", "this client must send redirect_uri"));
    }
    // OAuth 2.1 §4.1.1: PKCE for every client, and only S256 here.
    let code_challenge = get("code_challenge")
        .ok_or_else(|| refuse("invalid_request", "code_challenge is required"))?;
    if get("code_challenge_method") != Some("S256") {
        return Err(refuse("invalid_request", "code_challenge_method must be S256"));
    }
    if !pkce::is_well_formed(code_challenge) {
        return Err(refuse("invalid_request", "code_challenge is malformed"));
    }
    let scope = match get("scope") {
        None => client.metadata.scope.clone(),
        Some(value) => {
            Scopes::parse(value).map_err(|_| refuse("invalid_scope", "the scope is malformed"))?
        }
    };
    if !scope.is_subset_of(&client.metadata.scope) {
        return Err(refuse("invalid_scope", "a requested scope is not allowed for this client"));
    }
    let nonce = get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > 512) {
        return Err(refuse("invalid_request", "nonce is too long"));
    }
    // Unpacked before this check; one left here was nested in another.
    if get("request").is_some() {
        return Err(refuse("invalid_request_object", "a request object cannot be nested"));
    }
    // A request_uri other than one of ours (resolved above), or inside a pushed request.
    if get("request_uri").is_some() {
        return Err(refuse(
            "invalid_request_uri",
            "only a request_uri from this server's PAR endpoint is accepted",
        ));
    }
    let mut prompt = Prompt::default();
    for value in get("prompt").unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => {}
            _ => return Err(refuse("invalid_request", "prompt has an unknown value")),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(refuse("invalid_request", "prompt=none cannot be combined with other values"));
    }
    let max_age =
        match get("max_age") {
            None => None,
            Some(v) => Some(v.parse::<i64>().ok().filter(|a| *a >= 0).ok_or_else(|| {
                refuse("invalid_request", "max_age must be a non-negative integer")
            })?),
        };
    let hinted_subject = match get("id_token_hint") {
        None => None,
        Some(hint) => {
            Some(super::id_token::verify_hint(keys, issuer, hint).map(|h| h.sub).ok_or_else(
                || refuse("invalid_request", "the id_token_hint is not an ID token issued here"),
            )?)
        }
    };
    let login_hint = get("login_hint").map(|h| h.chars().take(64).collect());
    let acr = get("acr_values").and_then(Level::requested);
    // An RFC 7638 SHA-256 thumbprint: 43 base64url characters.
    let dpop_jkt = get("dpop_jkt").map(str::to_owned);
    if dpop_jkt.as_deref().is_some_and(|jkt| !is_base64url_of_32_bytes(jkt)) {
        return Err(refuse("invalid_request", "dpop_jkt is not a JWK SHA-256 thumbprint"));
    }
    Ok(AuthorizationRequest {
        client,
        redirect_uri,
        redirect_uri_sent,
        scope,
        state,
        code_challenge: code_challenge.to_owned(),
        nonce,
        prompt,
        max_age,
        hinted_subject,
        login_hint,
        acr,
        dpop_jkt,
        pushed: None,
    })
}

impl AuthorizationRequest {
    /// The request as `user` may be granted it: `admin` only for an administrator; for anyone
    /// else it is left out of what is asked, shown and granted (RFC 6749 §3.3 lets the server
    /// grant less; the token response's `scope` says what was granted).
    pub fn for_user(mut self, user: &crate::store::users::UserRecord) -> Self {
        self.scope = super::gate::as_held_by(self.scope, user);
        self
    }
}

/// `base` with `params` added to its query (RFC 6749 §4.1.2: keep the existing query).
pub fn redirect_url(base: &str, params: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => base.to_owned(),
    }
}
