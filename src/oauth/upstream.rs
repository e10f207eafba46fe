//! Upstream identity providers (docs/REFERENCE.md §3.14): signing users in through another
//! OpenID provider, with the `openidconnect` crate as the relying party over the one outbound
//! client (so discovery, the provider's JWKS and its token endpoint pass the SSRF guard).
//!
//! A sign-in is the authorization code flow with PKCE (S256), a `nonce` and a `state`, kept
//! sealed under the master key in a short-lived cookie bound to the browser; the answer's
//! `iss` (RFC 9207), the ID token's signature, `iss`, `aud`, `exp` and `nonce` are checked.
//! The user is then found by the (issuer, subject) link alone — never by email — created
//! just in time where the provider allows it, or linked to an account only from that
//! account's own session.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdToken, CoreIdTokenVerifier, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreTokenResponse,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use sea_orm::TransactionTrait;
use secrecy::zeroize::Zeroizing;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::audit::{self, Actor, Event, EventType};
use super::client_metadata::FieldError;
use super::master_key::MasterKey;
use super::session::{Amr, Stated};
use crate::config::Issuer;
use crate::outbound::{FetchError, Outbound};
use crate::store::scopes::Written;
use crate::store::upstream::{self, ProviderRecord};
use crate::store::users::UserRecord;
use crate::store::{self, Db, StoreError};

/// A provider's discovery document (with its JWKS) is used this long before it is fetched
/// again: a provider's new signing key is picked up within it.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// A sign-in started at a provider must come back within this long.
pub const FLOW_SECS: i64 = 10 * 60;
/// What the admin API and the login page accept as a provider id: it is a path segment.
const MAX_ID_LEN: usize = 32;

/// The profile fields an upstream claim may fill, and the claims that fill them by default.
pub const MAPPED_FIELDS: [(&str, &str); 3] =
    [("username", "preferred_username"), ("email", "email"), ("name", "name")];

/// A provider as an administrator sets it; the secret is write-only.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Provider {
    pub id: String,
    /// Shown on the login button: "Sign in with {name}".
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// Asked of the provider; always includes `openid`.
    pub scope: String,
    /// Profile field (`username`, `email`, `name`) → the upstream claim that fills it.
    #[schema(value_type = Object)]
    pub claim_mapping: Map<String, Value>,
    /// Whether a first sign-in that no account is linked to creates one.
    pub create_users: bool,
    /// Whether the provider's `amr` saying `mfa` counts as a second factor here.
    pub trust_mfa: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Provider {
    fn from_record(r: &ProviderRecord) -> Self {
        Self {
            id: r.id.clone(),
            name: r.name.clone(),
            issuer: r.issuer.clone(),
            client_id: r.client_id.clone(),
            scope: r.scope.clone(),
            claim_mapping: mapping_of(r),
            create_users: r.create_users,
            trust_mfa: r.trust_mfa,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// The stored mapping; a malformed one (never written by this server) maps the defaults.
fn mapping_of(r: &ProviderRecord) -> Map<String, Value> {
    serde_json::from_str(&r.claim_mapping).unwrap_or_else(|_| default_mapping())
}

fn default_mapping() -> Map<String, Value> {
    MAPPED_FIELDS.iter().map(|(f, c)| ((*f).to_owned(), Value::from(*c))).collect()
}

/// The redirect URI this server registers at provider `id`: its callback.
pub fn redirect_uri(issuer: &Issuer, id: &str) -> String {
    issuer.endpoint(&format!("/login/upstream/{id}/callback"))
}

/// What an administrator sends: a new provider, or the replacement of one.
pub struct ProviderInput {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// `None` on a replacement keeps the stored secret.
    pub client_secret: Option<Zeroizing<String>>,
    pub scope: String,
    pub claim_mapping: Map<String, Value>,
    pub create_users: bool,
    pub trust_mfa: bool,
}

const MEMBERS: [&str; 9] = [
    "id",
    "name",
    "issuer",
    "client_id",
    "client_secret",
    "scope",
    "claim_mapping",
    "create_users",
    "trust_mfa",
];

fn invalid(field: &str, description: &'static str) -> FieldError {
    FieldError { error: "invalid_request", description, field: field.to_owned() }
}

/// Whether `id` can name a provider: 1 to 32 lowercase letters, digits or '-'.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Validates a provider body member by member; errors name the member, never echo it.
/// `creating`: the secret is required. `allow_http`: an `http` issuer is accepted (where the
/// outbound client may reach private networks, for development).
pub fn parse_input(
    body: &Value,
    creating: bool,
    allow_http: bool,
) -> Result<ProviderInput, FieldError> {
    let map = body.as_object().ok_or_else(|| invalid("body", "the body must be a JSON object"))?;
    if map.keys().any(|k| !MEMBERS.contains(&k.as_str())) {
        return Err(invalid("body", "unknown member"));
    }
    let string = |name: &'static str| -> Result<Option<String>, FieldError> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(name, "must be a string")),
        }
    };
    let flag = |name: &'static str| -> Result<bool, FieldError> {
        match map.get(name) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(invalid(name, "must be a boolean")),
        }
    };
    let name = string("name")?.ok_or_else(|| invalid("name", "name is required"))?;
    if !(1..=64).contains(&name.chars().count()) || name.chars().any(char::is_control) {
        return Err(invalid("name", "name is 1 to 64 printable characters"));
    }
    let issuer = string("issuer")?.ok_or_else(|| invalid("issuer", "issuer is required"))?;
    let parsed = url::Url::parse(&issuer).map_err(|_| invalid("issuer", "issuer must be a URL"))?;
    // OpenID Connect Discovery §2: an https URL with no query or fragment.
    if !(parsed.scheme() == "https" || allow_http && parsed.scheme() == "http")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || parsed.host().is_none()
    {
        return Err(invalid("issuer", "issuer must be an https URL without query or fragment"));
    }
    let client_id =
        string("client_id")?.ok_or_else(|| invalid("client_id", "client_id is required"))?;
    if !(1..=255).contains(&client_id.len()) || client_id.chars().any(char::is_control) {
        return Err(invalid("client_id", "client_id is 1 to 255 printable characters"));
    }
    let client_secret = string("client_secret")?.map(Zeroizing::new);
    match client_secret.as_deref() {
        None if creating => return Err(invalid("client_secret", "client_secret is required")),
        Some(s) if !(1..=1024).contains(&s.len()) => {
            return Err(invalid("client_secret", "client_secret is 1 to 1024 characters"));
        }
        _ => {}
    }
    let scope = string("scope")?.unwrap_or_else(|| "openid email profile".to_owned());
    let scopes: Vec<&str> = scope.split(' ').collect();
    if !scopes.contains(&"openid")
        || scope.len() > 1024
        || scopes.iter().any(|s| s.is_empty() || s.bytes().any(|b| !(0x21..=0x7e).contains(&b)))
    {
        return Err(invalid("scope", "scope is space-separated scopes including openid"));
    }
    let mut claim_mapping = default_mapping();
    match map.get("claim_mapping") {
        None | Some(Value::Null) => {}
        Some(Value::Object(given)) => {
            for (field, claim) in given {
                if !MAPPED_FIELDS.iter().any(|(f, _)| f == field) {
                    return Err(invalid(
                        "claim_mapping",
                        "claim_mapping maps only username, email and name",
                    ));
                }
                match claim {
                    Value::String(c) if (1..=64).contains(&c.len()) => {
                        claim_mapping.insert(field.clone(), claim.clone());
                    }
                    // null: the field is never filled from the provider.
                    Value::Null => {
                        claim_mapping.insert(field.clone(), Value::Null);
                    }
                    _ => {
                        return Err(invalid(
                            "claim_mapping",
                            "each mapping names a claim (1 to 64 characters) or is null",
                        ));
                    }
                }
            }
        }
        Some(_) => return Err(invalid("claim_mapping", "claim_mapping must be an object")),
    }
    Ok(ProviderInput {
        name,
        issuer,
        client_id,
        client_secret,
        scope,
        claim_mapping,
        create_users: flag("create_users")?,
        trust_mfa: flag("trust_mfa")?,
    })
}

/// What a sealed secret is bound to: the provider, and where it may be sent. A secret moved
/// to another issuer or client id (by the admin API, or in the database) no longer opens.
fn secret_context(id: &str, issuer: &str, client_id: &str) -> Vec<u8> {
    format!("upstream client secret v2\n{id}\n{issuer}\n{client_id}").into_bytes()
}

/// The client secret sealed under the master key, bound to the provider id, its issuer and
/// its client id.
fn seal_secret(
    master: &MasterKey,
    record: &ProviderRecord,
    secret: &str,
) -> Result<String, StoreError> {
    let context = secret_context(&record.id, &record.issuer, &record.client_id);
    Ok(URL_SAFE_NO_PAD.encode(master.seal(&context, secret.as_bytes())?))
}

fn open_secret(master: &MasterKey, record: &ProviderRecord) -> Result<ClientSecret, StoreError> {
    let sealed = URL_SAFE_NO_PAD
        .decode(&record.sealed_secret)
        .map_err(|_| StoreError::corrupt("an upstream client secret"))?;
    let plain = master
        .open(&secret_context(&record.id, &record.issuer, &record.client_id), &sealed)
        .map_err(|_| StoreError::corrupt("an upstream client secret (another master key?)"))?;
    let text = String::from_utf8(plain.to_vec())
        .map_err(|_| StoreError::corrupt("an upstream client secret"))?;
    Ok(ClientSecret::new(text))
}

/// What a provider change did.
pub enum Change {
    Done(Provider),
    NotFound,
    Conflict,
    /// A new issuer or client id without a new secret: the stored one is never sent anywhere
    /// but where it was set for.
    SecretNeeded,
}

/// Registers a provider, recording `upstream_provider.created` in the same transaction.
pub async fn create(
    db: &Db,
    master: &MasterKey,
    id: &str,
    input: ProviderInput,
    actor: Actor,
) -> Result<Change, StoreError> {
    let Some(secret) = input.client_secret.as_deref() else {
        return Err(anyhow::anyhow!("a new provider needs a client secret").into());
    };
    let now = Utc::now();
    let mut record = ProviderRecord {
        id: id.to_owned(),
        name: input.name,
        issuer: input.issuer,
        client_id: input.client_id,
        sealed_secret: String::new(),
        scope: input.scope,
        claim_mapping: Value::Object(input.claim_mapping).to_string(),
        create_users: input.create_users,
        trust_mfa: input.trust_mfa,
        created_at: now,
        updated_at: now,
    };
    record.sealed_secret = seal_secret(master, &record, secret)?;
    let event = Event::new(EventType::UpstreamProviderCreated, actor, format!("upstream:{id}"))
        .with("issuer", record.issuer.clone());
    let txn = db.begin().await?;
    if upstream::insert(&txn, &record).await? != Written::Done {
        return Ok(Change::Conflict);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(Change::Done(Provider::from_record(&record)))
}

/// Replaces a provider's settings; a replacement without a secret keeps the stored one.
pub async fn replace(
    db: &Db,
    master: &MasterKey,
    id: &str,
    input: ProviderInput,
    actor: Actor,
) -> Result<Change, StoreError> {
    let Some(current) = upstream::find(db, id).await? else { return Ok(Change::NotFound) };
    let moved = input.issuer != current.issuer || input.client_id != current.client_id;
    if moved && input.client_secret.is_none() {
        return Ok(Change::SecretNeeded);
    }
    let mut record = ProviderRecord {
        id: id.to_owned(),
        name: input.name,
        issuer: input.issuer,
        client_id: input.client_id,
        sealed_secret: current.sealed_secret,
        scope: input.scope,
        claim_mapping: Value::Object(input.claim_mapping).to_string(),
        create_users: input.create_users,
        trust_mfa: input.trust_mfa,
        created_at: current.created_at,
        updated_at: Utc::now(),
    };
    if let Some(secret) = input.client_secret.as_deref() {
        record.sealed_secret = seal_secret(master, &record, secret)?;
    }
    let event = Event::new(EventType::UpstreamProviderUpdated, actor, format!("upstream:{id}"))
        .with("issuer", record.issuer.clone())
        .with("secret_changed", input.client_secret.is_some());
    let txn = db.begin().await?;
    if upstream::replace(&txn, &record).await? != Written::Done {
        return Ok(Change::NotFound);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(Change::Done(Provider::from_record(&record)))
}

/// Deletes a provider; the links made through it stay, keyed by its issuer.
pub async fn delete(db: &Db, id: &str, actor: Actor) -> Result<bool, StoreError> {
    let event = Event::new(EventType::UpstreamProviderDeleted, actor, format!("upstream:{id}"));
    let txn = db.begin().await?;
    if !upstream::delete(&txn, id).await? {
        return Ok(false);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(true)
}

pub async fn list(db: &Db) -> Result<Vec<Provider>, StoreError> {
    Ok(upstream::list(db).await?.iter().map(Provider::from_record).collect())
}

pub async fn find(db: &Db, id: &str) -> Result<Option<Provider>, StoreError> {
    Ok(upstream::find(db, id).await?.as_ref().map(Provider::from_record))
}

/// Why a sign-in through a provider failed before anyone was found.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Discovery, the JWKS or the token endpoint could not be reached or answered wrongly.
    #[error("the provider cannot be reached: {0}")]
    Unreachable(String),
    /// The provider answered, but what it answered does not prove who the user is.
    #[error("the provider's answer was refused: {0}")]
    Refused(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One sign-in in flight: what the browser's flow cookie holds, sealed.
#[derive(Serialize, Deserialize)]
pub struct Flow {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Where the browser goes after (a path `login::safe_return` accepted).
    pub return_to: String,
    /// Linking from /account: the signed-in user the identity is linked to.
    pub link_user: Option<String>,
    pub expires_at: i64,
}

/// Never the PKCE verifier or the nonce in a log.
impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow").field("provider", &self.provider).finish_non_exhaustive()
    }
}

fn flow_context(binding: &str) -> String {
    format!("upstream flow v1\n{binding}")
}

/// The longest flow cookie value: with its name and attributes, under the 4096 bytes every
/// browser keeps of a cookie.
pub const MAX_FLOW_COOKIE: usize = 3800;

impl Flow {
    /// The cookie value, sealed and bound to the browser's pre-session binding; `None` when
    /// it would be longer than [`MAX_FLOW_COOKIE`] (a very long `return_to`).
    pub fn seal(&self, master: &MasterKey, binding: &str) -> Option<String> {
        master
            .seal_field(&flow_context(binding), self)
            .filter(|sealed| sealed.len() <= MAX_FLOW_COOKIE)
    }

    /// The flow a cookie holds, if it was sealed for this browser and is still live.
    pub fn open(master: &MasterKey, binding: &str, cookie: &str, now: i64) -> Option<Self> {
        let context = flow_context(binding);
        master.open_field::<Self>(&context, cookie, MAX_FLOW_COOKIE).filter(|f| f.expires_at > now)
    }
}

/// What a provider proved: who the user is there, the claims the mapping reads, and how
/// they signed in as far as this server trusts it.
#[derive(Debug)]
pub struct Asserted {
    pub issuer: String,
    pub subject: String,
    pub claims: Map<String, Value>,
    pub amr: Amr,
    /// The provider's own `amr` values, as it stated them.
    pub upstream_amr: Vec<String>,
}

/// The relying party of every provider: discovered metadata per issuer, and the outbound
/// client every request to a provider goes through.
pub struct RelyingParty {
    outbound: Outbound,
    /// An ID token that no cached key verifies fetches the provider's keys again, unless they
    /// were fetched this recently (`CASTELLAN_CLIENT_JWKS_REFETCH_INTERVAL`): a forged `kid`
    /// cannot make us hammer the provider.
    refetch_after: Duration,
    discovered: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
    /// The login page's buttons, read at most every [`BUTTONS_TTL`] (emptied by a change
    /// made at this replica).
    buttons: Mutex<Option<(Instant, Vec<Button>)>>,
}

/// How long the login page's buttons are kept: another replica's change shows within it.
const BUTTONS_TTL: Duration = Duration::from_secs(10);

/// A login page button: "Sign in with {name}", starting at `/login/upstream/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct Button {
    pub id: String,
    pub name: String,
}

impl RelyingParty {
    pub fn new(outbound: Outbound, refetch_after: Duration) -> Self {
        Self {
            outbound,
            refetch_after,
            discovered: Mutex::new(HashMap::new()),
            buttons: Mutex::new(None),
        }
    }

    /// The login page's buttons: one read of the providers at most every [`BUTTONS_TTL`].
    pub async fn buttons(&self, db: &Db) -> Result<Vec<Button>, StoreError> {
        {
            let cached = self.buttons.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, buttons)) = cached.as_ref()
                && at.elapsed() < BUTTONS_TTL
            {
                return Ok(buttons.clone());
            }
        }
        let buttons: Vec<Button> = upstream::list(db)
            .await?
            .into_iter()
            .map(|p| Button { id: p.id, name: p.name })
            .collect();
        *self.buttons.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), buttons.clone()));
        Ok(buttons)
    }

    /// The buttons last read, without a read (a login form shown again after a refusal).
    pub fn last_buttons(&self) -> Vec<Button> {
        let cached = self.buttons.lock().unwrap_or_else(|e| e.into_inner());
        cached.as_ref().map(|(_, b)| b.clone()).unwrap_or_default()
    }

    /// Forgets what this replica knows of the providers after it changed one.
    pub fn forget(&self) {
        *self.buttons.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.discovered.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    async fn http(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, FetchError> {
        self.outbound.send(request).await
    }

    /// The provider's discovery document and JWKS, fetched at most every [`METADATA_TTL`];
    /// `fresh`: again unless fetched within `refetch_after` (a key the cached JWKS lacks).
    async fn metadata(
        &self,
        issuer: &str,
        fresh: bool,
    ) -> Result<CoreProviderMetadata, UpstreamError> {
        {
            let cached = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
            let keep = if fresh { self.refetch_after } else { METADATA_TTL };
            if let Some((at, metadata)) = cached.get(issuer)
                && at.elapsed() < keep
            {
                return Ok(metadata.clone());
            }
        }
        let issuer_url = IssuerUrl::new(issuer.to_owned())
            .map_err(|_| UpstreamError::Refused("the issuer is not a URL"))?;
        let http = |request| self.http(request);
        // Discovery checks that the document's `issuer` is exactly this issuer (Discovery
        // §4.3), then fetches its `jwks_uri`.
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .map_err(|e| UpstreamError::Unreachable(error_chain(&e)))?;
        let mut cached = self.discovered.lock().unwrap_or_else(|e| e.into_inner());
        if cached.len() > 100 {
            cached.clear();
        }
        cached.insert(issuer.to_owned(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    /// Starts a sign-in at `provider`: the URL to send the browser to, and the flow to keep.
    pub async fn start(
        &self,
        provider: &ProviderRecord,
        redirect_uri: &str,
        return_to: String,
        link_user: Option<String>,
    ) -> Result<(String, Flow), UpstreamError> {
        let metadata = self.metadata(&provider.issuer, false).await?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            None,
        )
        .set_redirect_uri(redirect_url(redirect_uri)?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in provider.scope.split(' ').filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.to_owned()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let flow = Flow {
            provider: provider.id.clone(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to,
            link_user,
            expires_at: Utc::now().timestamp() + FLOW_SECS,
        };
        Ok((url.to_string(), flow))
    }

    /// Redeems the code the provider sent back and checks its ID token: who signed in.
    /// `iss` is the answer's `iss` parameter, if it had one (RFC 9207).
    pub async fn finish(
        &self,
        master: &MasterKey,
        provider: &ProviderRecord,
        redirect_uri: &str,
        flow: &Flow,
        code: &str,
        iss: Option<&str>,
    ) -> Result<Asserted, UpstreamError> {
        // RFC 9207 §2.4: an `iss` that is not the provider's is a mix-up; refuse it.
        if iss.is_some_and(|iss| iss != provider.issuer) {
            return Err(UpstreamError::Refused("the answer names another issuer"));
        }
        let metadata = self.metadata(&provider.issuer, false).await?;
        let client = CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(provider.client_id.clone()),
            Some(open_secret(master, provider)?),
        )
        .set_redirect_uri(redirect_url(redirect_uri)?);
        let http = |request| self.http(request);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|_| UpstreamError::Unreachable("the provider has no token endpoint".into()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(&http)
            .await
            .map_err(|e| match e {
                openidconnect::RequestTokenError::ServerResponse(_) => {
                    UpstreamError::Refused("the provider refused the code")
                }
                other => UpstreamError::Unreachable(error_chain(&other)),
            })?;
        let id_token =
            response.id_token().ok_or(UpstreamError::Refused("the provider sent no ID token"))?;
        let nonce = Nonce::new(flow.nonce.clone());
        let secret = open_secret(master, provider)?;
        let checked = match checked(&metadata, provider, &secret, &response, id_token, &nonce) {
            // A key the cached JWKS lacks: the provider may have rotated; its keys are fetched
            // again (at most every `refetch_after`) and the token checked once more.
            Err(Unverified::Signature) => {
                let fresh = self.metadata(&provider.issuer, true).await?;
                checked(&fresh, provider, &secret, &response, id_token, &nonce)
            }
            other => other,
        }
        .map_err(|e| {
            let why = match &e {
                Unverified::Claims(why) => why.as_str(),
                Unverified::Signature => "no known key verifies its signature",
                Unverified::AccessToken => "at_hash does not match",
                Unverified::Subject => "sub too long",
            };
            tracing::info!(why, provider = %provider.id, "upstream ID token refused");
            UpstreamError::Refused(match e {
                Unverified::AccessToken => "the access token does not match",
                Unverified::Subject => "the subject is longer than 255 characters",
                _ => "the ID token is not valid for this sign-in",
            })
        })?;
        let (subject, upstream_amr) = checked;
        // The signature was checked above: the payload's other claims can be read as sent.
        let raw = id_token.to_string();
        let payload = raw
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|p| serde_json::from_slice::<Map<String, Value>>(&p).ok())
            .unwrap_or_default();
        // `fed`, then what the provider said it used; `mfa` only from a trusted provider.
        let stated = Stated::of(upstream_amr.iter().map(String::as_str));
        let amr = if provider.trust_mfa && upstream_amr.iter().any(|v| v == "mfa") {
            Amr::FederatedMfa(stated)
        } else {
            Amr::Federated(stated)
        };
        Ok(Asserted {
            issuer: provider.issuer.clone(),
            subject,
            claims: payload,
            amr,
            upstream_amr,
        })
    }
}

/// Why an ID token was refused.
#[derive(Debug)]
enum Unverified {
    /// Its signature did not verify with the keys known (perhaps a key rotated in since).
    Signature,
    /// `at_hash` does not match the access token.
    AccessToken,
    /// A `sub` longer than OpenID Connect Core §2 allows.
    Subject,
    /// Anything else: `iss`, `aud`, `azp`, `exp`, `nonce`, the algorithm.
    Claims(String),
}

/// Checks an ID token against the provider's `metadata` (its issuer and keys): OpenID Connect
/// Core §3.1.3.7 (signature, `iss`, `aud`, `azp`, `exp`, the flow's `nonce`) and §3.1.3.8
/// (`at_hash`, where present). Its subject and `amr` values.
fn checked(
    metadata: &CoreProviderMetadata,
    provider: &ProviderRecord,
    secret: &ClientSecret,
    response: &CoreTokenResponse,
    id_token: &CoreIdToken,
    nonce: &Nonce,
) -> Result<(String, Vec<String>), Unverified> {
    // Asymmetric signatures only: a provider's HS256 would be keyed with our secret.
    let verifier = CoreIdTokenVerifier::new_confidential_client(
        ClientId::new(provider.client_id.clone()),
        secret.clone(),
        metadata.issuer().clone(),
        metadata.jwks().clone(),
    )
    .set_allowed_algs([
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
        CoreJwsSigningAlgorithm::RsaSsaPssSha256,
        CoreJwsSigningAlgorithm::RsaSsaPssSha384,
        CoreJwsSigningAlgorithm::RsaSsaPssSha512,
        CoreJwsSigningAlgorithm::EcdsaP256Sha256,
        CoreJwsSigningAlgorithm::EcdsaP384Sha384,
        CoreJwsSigningAlgorithm::EdDsa,
    ]);
    let claims = id_token.claims(&verifier, nonce).map_err(|e| match e {
        ClaimsVerificationError::SignatureVerification(_) => Unverified::Signature,
        other => Unverified::Claims(other.to_string()),
    })?;
    if let Some(expected) = claims.access_token_hash() {
        let alg = id_token.signing_alg().map_err(|_| Unverified::Signature)?;
        let key = id_token.signing_key(&verifier).map_err(|_| Unverified::Signature)?;
        let actual = AccessTokenHash::from_token(response.access_token(), alg, key)
            .map_err(|_| Unverified::AccessToken)?;
        if actual != *expected {
            return Err(Unverified::AccessToken);
        }
    }
    let subject = claims.subject().as_str();
    // It is stored as the link's key; OpenID Connect Core §2 bounds it.
    if subject.len() > 255 {
        return Err(Unverified::Subject);
    }
    let amr = claims
        .auth_method_refs()
        .map(|values| values.iter().map(|v| v.as_str().to_owned()).collect())
        .unwrap_or_default();
    Ok((subject.to_owned(), amr))
}

fn redirect_url(uri: &str) -> Result<RedirectUrl, UpstreamError> {
    RedirectUrl::new(uri.to_owned())
        .map_err(|_| UpstreamError::Unreachable("the callback URL does not parse".into()))
}

/// An error and its causes on one line (for the log; never shown to the browser).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The profile a provider's claims give, per the provider's mapping.
pub struct Profile {
    pub username: Option<String>,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

/// Reads the mapped claims; a claim that is missing, not a string, or not fit for its field
/// (a username's characters, an email's shape) is left out.
pub fn profile(provider: &ProviderRecord, claims: &Map<String, Value>) -> Profile {
    let mapping = mapping_of(provider);
    let claim = |field: &str| -> Option<String> {
        let name = mapping.get(field)?.as_str()?;
        let value = claims.get(name)?.as_str()?;
        (!value.is_empty() && !value.chars().any(char::is_control)).then(|| value.to_owned())
    };
    let username = claim("username").filter(|u| super::users::valid_username(u));
    let email = claim("email").filter(|e| e.len() <= 254 && e.contains('@') && !e.contains(' '));
    // An email is only as verified as the provider says, and only the `email` claim's.
    let email_verified = email.is_some()
        && mapping.get("email").and_then(Value::as_str) == Some("email")
        && claims.get("email_verified").and_then(Value::as_bool) == Some(true);
    let name = claim("name").filter(|n| n.chars().count() <= 200);
    Profile { username, email, email_verified, name }
}

/// Who a provider's answer signs in.
pub enum Resolved {
    /// A linked user (or one just linked, or just created).
    User(UserRecord, Linking),
    /// Linked to a disabled user.
    Disabled,
    /// No account is linked, and none may be created from this provider.
    NotLinked,
    /// No account is linked, and creating one would take an email address an account here
    /// already has (or no username is left): that account must sign in and link the
    /// identity itself.
    Taken,
    /// Linking from /account, but the identity is linked to another account.
    LinkedElsewhere,
}

/// How the user was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linking {
    Existing,
    JustLinked,
    Created,
}

/// Finds (or links, or creates) the user `asserted` names, by (issuer, subject) only.
pub async fn resolve(
    db: &Db,
    provider: &ProviderRecord,
    asserted: &Asserted,
    link_user: Option<&str>,
    actor: Actor,
) -> Result<Resolved, StoreError> {
    let now = Utc::now();
    let profile = profile(provider, &asserted.claims);
    if let Some(user) = upstream::find_linked(db, &asserted.issuer, &asserted.subject).await? {
        if link_user.is_some_and(|id| id != user.id) {
            return Ok(Resolved::LinkedElsewhere);
        }
        if user.disabled {
            return Ok(Resolved::Disabled);
        }
        let user = refresh_profile(db, user, &profile, now).await?;
        upstream::touch(db, &asserted.issuer, &asserted.subject, now).await?;
        return Ok(Resolved::User(user, Linking::Existing));
    }
    if let Some(user_id) = link_user {
        let Some(user) = store::users::find(db, user_id).await? else {
            return Ok(Resolved::NotLinked);
        };
        let event = Event::new(EventType::IdentityLinked, actor, format!("user:{}", user.id))
            .with("provider", provider.id.clone())
            .with("issuer", asserted.issuer.clone());
        let txn = db.begin().await?;
        if upstream::link(&txn, &asserted.issuer, &asserted.subject, &user.id, now).await?
            != Written::Done
        {
            return Ok(Resolved::LinkedElsewhere);
        }
        audit::record(&txn, &event).await?;
        txn.commit().await?;
        event.log();
        return Ok(Resolved::User(user, Linking::JustLinked));
    }
    if !provider.create_users {
        return Ok(Resolved::NotLinked);
    }
    // Never linked by email alone: an address an account here has is refused, not joined.
    if let Some(email) = profile.email.as_deref()
        && store::users::email_taken(db, email, None).await?
    {
        return Ok(Resolved::Taken);
    }
    // The mapped username, or (missing, unfit, or an account's here already) one made from
    // the provider and the subject.
    let generated = generated_username(&provider.id, &asserted.subject);
    let mut usernames = vec![profile.username.clone().unwrap_or_else(|| generated.clone())];
    if usernames[0] != generated {
        usernames.push(generated);
    }
    for username in usernames {
        let user = UserRecord {
            id: uuid::Uuid::new_v4().to_string(),
            username,
            // No password: only the provider signs this user in, until an administrator sets one.
            password_hash: String::new(),
            email: profile.email.clone(),
            email_verified: profile.email_verified,
            name: profile.name.clone(),
            disabled: false,
            admin: false,
            require_mfa: false,
            tokens_not_before: None,
            created_at: now,
            updated_at: now,
        };
        match create_linked(db, provider, asserted, &user, actor.clone(), now).await? {
            Written::Done => return Ok(Resolved::User(user, Linking::Created)),
            // A concurrent first sign-in of the same identity made the link.
            Written::NotFound => return Ok(Resolved::NotLinked),
            Written::Conflict => continue,
        }
    }
    Ok(Resolved::Taken)
}

/// Creates `user` linked to the asserted identity, in one transaction with `user.created` and
/// `identity.linked`: `Conflict` when the username is taken, `NotFound` when the identity was
/// linked meanwhile (nothing is written either way).
async fn create_linked(
    db: &Db,
    provider: &ProviderRecord,
    asserted: &Asserted,
    user: &UserRecord,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Written, StoreError> {
    let created = Event::new(EventType::UserCreated, actor.clone(), format!("user:{}", user.id))
        .with("provider", provider.id.clone());
    let linked = Event::new(EventType::IdentityLinked, actor, format!("user:{}", user.id))
        .with("provider", provider.id.clone())
        .with("issuer", asserted.issuer.clone());
    let txn = db.begin().await?;
    if store::users::insert(&txn, user).await? != Written::Done {
        return Ok(Written::Conflict);
    }
    if upstream::link(&txn, &asserted.issuer, &asserted.subject, &user.id, now).await?
        != Written::Done
    {
        return Ok(Written::NotFound);
    }
    audit::record(&txn, &created).await?;
    audit::record(&txn, &linked).await?;
    txn.commit().await?;
    created.log();
    linked.log();
    Ok(Written::Done)
}

/// `{provider}-{12 hex digits of the subject's SHA-256}`: a username for a provider that
/// sends none fit to be one, the same at every sign-in.
fn generated_username(provider: &str, subject: &str) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, subject.as_bytes());
    let hex: String = hash.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{provider}-{hex}")
}

/// The user with their email and name as the provider now says (the username stays: it
/// names the account here). An email another account has is not taken: it stays theirs.
async fn refresh_profile(
    db: &Db,
    mut user: UserRecord,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<UserRecord, StoreError> {
    let mut changed = false;
    if let Some(email) = profile.email.as_deref()
        && (Some(email) != user.email.as_deref() || profile.email_verified != user.email_verified)
    {
        if store::users::email_taken(db, email, Some(&user.id)).await? {
            tracing::info!(user = %user.id, "an upstream email another account has is not copied");
        } else {
            user.email = Some(email.to_owned());
            user.email_verified = profile.email_verified;
            changed = true;
        }
    }
    if profile.name.is_some() && profile.name != user.name {
        user.name = profile.name.clone();
        changed = true;
    }
    if changed {
        user.updated_at = now;
        store::users::replace(db, &user).await?;
    }
    Ok(user)
}

/// Unlinks one of `user`'s identities, unless it is how they sign in: a user with no
/// password keeps their last link. `Ok(None)` when it was not theirs. Concurrent unlinks of
/// one user take turns, so two cannot remove the last two links together.
pub async fn unlink(
    db: &Db,
    user: &UserRecord,
    issuer: &str,
    subject: &str,
    actor: Actor,
) -> Result<Option<bool>, StoreError> {
    let event = Event::new(EventType::IdentityUnlinked, actor, format!("user:{}", user.id))
        .with("issuer", issuer.to_owned());
    let txn = db.begin().await?;
    if !store::users::lock(&txn, &user.id).await? {
        return Ok(None);
    }
    let links = upstream::list_for_user(&txn, &user.id).await?;
    if !links.iter().any(|l| l.issuer == issuer && l.subject == subject) {
        return Ok(None);
    }
    if !user.has_password() && links.len() == 1 {
        return Ok(Some(false));
    }
    upstream::unlink(&txn, &user.id, issuer, subject).await?;
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(mapping: Value) -> ProviderRecord {
        ProviderRecord {
            id: "corp".into(),
            name: "Corp".into(),
            issuer: "https://id.corp.example".into(),
            client_id: "castellan".into(),
            sealed_secret: String::new(),
            scope: "openid email".into(),
            claim_mapping: mapping.to_string(),
            create_users: true,
            trust_mfa: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_provider_body_is_checked_member_by_member() {
        let good = json!({"name": "Corp", "issuer": "https://id.corp.example", "client_id": "c", "client_secret": "s"});
        let input = parse_input(&good, true, false).expect("valid");
        assert_eq!(input.scope, "openid email profile");
        assert_eq!(input.claim_mapping["username"], "preferred_username");
        assert!(!input.create_users && !input.trust_mfa);
        let refused = |body: Value, creating: bool| {
            parse_input(&body, creating, false).err().map(|e| e.field).expect("refused")
        };
        let mut no_secret = good.clone();
        no_secret.as_object_mut().expect("object").remove("client_secret");
        assert_eq!(refused(no_secret.clone(), true), "client_secret");
        assert!(parse_input(&no_secret, false, false).is_ok(), "a replacement may keep the secret");
        let with = |member: &str, value: Value| {
            let mut body = good.clone();
            body[member] = value;
            body
        };
        assert_eq!(refused(with("issuer", json!("ftp://x")), true), "issuer");
        assert_eq!(refused(with("issuer", json!("https://x/?q")), true), "issuer");
        assert_eq!(refused(with("issuer", json!("http://x")), true), "issuer");
        assert!(parse_input(&with("issuer", json!("http://x")), true, true).is_ok());
        assert_eq!(refused(with("scope", json!("email")), true), "scope");
        assert_eq!(
            refused(with("claim_mapping", json!({"admin": "groups"})), true),
            "claim_mapping"
        );
        assert_eq!(refused(with("create_users", json!("yes")), true), "create_users");
        assert_eq!(refused(with("extra", json!(1)), true), "body");
        assert!(valid_id("corp-1") && !valid_id("Corp") && !valid_id("") && !valid_id("a/b"));
    }

    #[test]
    fn the_mapping_reads_only_fit_claims() {
        let provider = record(json!({"username": "nickname", "email": "email", "name": null}));
        let claims = json!({"nickname": "ada.l", "email": "ada@corp.example", "email_verified": true, "name": "Ada"});
        let profile = profile(&provider, claims.as_object().expect("object"));
        assert_eq!(profile.username.as_deref(), Some("ada.l"));
        assert_eq!(profile.email.as_deref(), Some("ada@corp.example"));
        assert!(profile.email_verified);
        assert_eq!(profile.name, None, "an unmapped field is never filled");
        let odd = json!({"nickname": "ada lovelace", "email": "not-an-address"});
        let profile = super::profile(&provider, odd.as_object().expect("object"));
        assert_eq!((profile.username, profile.email), (None, None));
        assert_eq!(generated_username("corp", "s1"), generated_username("corp", "s1"));
        assert!(generated_username("corp", "s1").starts_with("corp-"));
    }
}
