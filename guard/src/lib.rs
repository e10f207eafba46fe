//! # castellan-guard
//!
//! Accept [Castellan](https://github.com/) access tokens in an actix-web API, correctly by
//! default. Three lines:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use castellan_guard::{Authenticated, Guard, RequireScope};
//!
//! async fn orders(token: Authenticated) -> String {
//!     format!("orders of {}", token.sub)
//! }
//!
//! #[actix_web::main]
//! async fn main() -> std::io::Result<()> {
//!     // 1. The issuer and this API's audience: discovery, JWKS, caching, refresh.
//!     let guard = Guard::discover("https://auth.example.com", "https://api.example.com")
//!         .await
//!         .expect("the authorization server answers");
//!     HttpServer::new(move || {
//!         App::new()
//!             // 2. Every route can now take `Authenticated`; RFC 9728 metadata is served.
//!             .app_data(guard.clone())
//!             .service(guard.protected_resource_metadata())
//!             // 3. A scope per route: 401/403 with RFC 6750 challenges otherwise.
//!             .service(web::resource("/orders").wrap(RequireScope::new("orders:read")).get(orders))
//!     })
//!     .bind("127.0.0.1:8000")?
//!     .run()
//!     .await
//! }
//! ```
//!
//! What it checks is what RFC 9068 asks: `typ` `at+jwt`; the signature by a key of the issuer,
//! with that key's algorithm (RS256, PS256, ES256 or EdDSA; never the header's choice, never a
//! MAC or `none`); `iss`; `aud`; `exp` and `nbf` with a 5 s leeway; the required claims. A
//! token bound to a DPoP key (`cnf.jkt`, RFC 9449) passes only with a fresh proof by that key.
//! [`Introspected`] and [`RequireScope::introspected`] also ask the server (RFC 7662) whether
//! the token is still active, for routes that must see a revocation at once.

mod dpop;
mod http;
mod introspect;
mod keys;
mod verify;

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError, web};

pub use http::FetchError;
pub use verify::{Claims, Confirmation, InvalidToken};

use keys::KeyStore;
use verify::Verifier;

/// Verifies access tokens of one issuer for one API. Cheap to clone; put one in `app_data`.
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    verifier: Verifier,
    introspection: Option<introspect::Introspection>,
    replays: dpop::Replays,
    public_url: Option<String>,
    metadata: serde_json::Value,
    metadata_path: String,
    /// The metadata URL for `WWW-Authenticate` (RFC 9728 §5.1), when the audience is a URL.
    metadata_url: Option<String>,
}

/// How a [`Guard`] is set up; see [`Guard::builder`].
pub struct GuardBuilder {
    issuer: String,
    audience: String,
    leeway: Duration,
    refetch_interval: Duration,
    max_key_age: Duration,
    introspection: Option<(String, String)>,
    introspection_cache: Duration,
    public_url: Option<String>,
    scopes: Vec<String>,
    resource_name: Option<String>,
    jwks: Option<serde_json::Value>,
}

/// Why a guard could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("the authorization server's metadata could not be read: {0}")]
    Discovery(FetchError),
    #[error("the metadata names issuer {found:?}, not {expected:?} (RFC 8414 §3.3)")]
    IssuerMismatch { expected: String, found: String },
    #[error("the metadata has no {0}")]
    Missing(&'static str),
    #[error("the JWKS could not be read: {0}")]
    Jwks(FetchError),
    #[error("the HTTP client could not be set up: {0}")]
    Client(FetchError),
}

impl Guard {
    /// A guard for tokens `issuer` issues for `audience`, with every default.
    pub async fn discover(issuer: &str, audience: &str) -> Result<Self, BuildError> {
        Self::builder(issuer, audience).build().await
    }

    pub fn builder(issuer: &str, audience: &str) -> GuardBuilder {
        GuardBuilder {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway: Duration::from_secs(5),
            refetch_interval: Duration::from_secs(30),
            max_key_age: Duration::from_secs(3600),
            introspection: None,
            introspection_cache: Duration::ZERO,
            public_url: None,
            scopes: Vec::new(),
            resource_name: None,
            jwks: None,
        }
    }

    /// Verifies a token's signature and claims, locally (no DPoP proof, no introspection).
    pub async fn verify(&self, token: &str) -> Result<Claims, InvalidToken> {
        self.inner.verifier.verify(token).await
    }

    /// Everything a request's credentials must pass: the token, its DPoP binding, and with
    /// `introspect` the server's word that it is still active.
    pub async fn authenticate(
        &self,
        req: &HttpRequest,
        introspect: bool,
    ) -> Result<Claims, Refusal> {
        let (scheme, token) = credentials(req)?;
        let claims = self
            .inner
            .verifier
            .verify(token)
            .await
            .map_err(|e| Refusal::InvalidToken { description: e.0, scheme })?;
        match (&claims.cnf, scheme) {
            (Some(cnf), Scheme::Dpop) => {
                let proofs: Vec<_> = req.headers().get_all("dpop").collect();
                let [proof] = proofs.as_slice() else {
                    return Err(Refusal::InvalidProof("exactly one DPoP proof is required"));
                };
                let proof = proof.to_str().map_err(|_| Refusal::InvalidProof("malformed"))?;
                let url = self.request_url(req);
                let expected = dpop::Expected {
                    method: req.method().as_str(),
                    url: &url,
                    access_token: token,
                    jkt: &cnf.jkt,
                };
                dpop::check(proof, &expected, &self.inner.replays)
                    .map_err(|e| Refusal::InvalidProof(e.0))?;
            }
            // RFC 9449 §7.2: a bound token is never accepted as a bearer token.
            (Some(_), Scheme::Bearer) => {
                return Err(Refusal::InvalidToken {
                    description: "the token is DPoP-bound: present it with the DPoP scheme",
                    scheme,
                });
            }
            (None, Scheme::Dpop) => {
                return Err(Refusal::InvalidToken {
                    description: "the token is not DPoP-bound",
                    scheme,
                });
            }
            (None, Scheme::Bearer) => {}
        }
        if introspect {
            let introspection =
                self.inner.introspection.as_ref().ok_or(Refusal::Misconfigured(
                    "introspection needs GuardBuilder::introspection",
                ))?;
            match introspection.is_active(token, claims.exp).await {
                Ok(true) => {}
                Ok(false) => {
                    return Err(Refusal::InvalidToken {
                        description: "the token is no longer active",
                        scheme,
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "castellan-guard: introspection failed");
                    return Err(Refusal::Unavailable);
                }
            }
        }
        Ok(claims)
    }

    /// The RFC 9728 metadata document at `/.well-known/oauth-protected-resource` (followed
    /// by the audience's path, if it has one), as a service for `App::service`.
    pub fn protected_resource_metadata(&self) -> actix_web::Resource {
        let document = web::Bytes::from(self.inner.metadata.to_string());
        web::resource(self.inner.metadata_path.clone()).route(web::get().to(move || {
            let document = document.clone();
            async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header((header::CACHE_CONTROL, "max-age=3600"))
                    .body(document)
            }
        }))
    }

    /// How many times the JWKS was fetched (at start, on expiry, for unknown keys).
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.verifier.keys.fetches()
    }

    /// How many introspection requests were sent.
    pub fn introspection_calls(&self) -> u64 {
        self.inner.introspection.as_ref().map_or(0, introspect::Introspection::calls)
    }

    /// The request's URL as the client addressed it (for DPoP's `htu`).
    fn request_url(&self, req: &HttpRequest) -> String {
        match &self.inner.public_url {
            Some(base) => format!("{}{}", base.trim_end_matches('/'), req.path()),
            None => {
                let info = req.connection_info();
                format!("{}://{}{}", info.scheme(), info.host(), req.path())
            }
        }
    }

    fn challenge(&self, refusal: &Refusal) -> String {
        let metadata = self
            .inner
            .metadata_url
            .as_ref()
            .map(|url| format!(", resource_metadata=\"{url}\""))
            .unwrap_or_default();
        let algs = dpop::ALGORITHMS.join(" ");
        match refusal {
            // RFC 6750 §3.1: no error code when no credentials came; both schemes offered.
            Refusal::Missing => {
                format!("Bearer realm=\"api\"{metadata}, DPoP algs=\"{algs}\"")
            }
            Refusal::Malformed(description) => format!(
                "Bearer error=\"invalid_request\", error_description=\"{description}\"{metadata}"
            ),
            Refusal::InvalidToken { description, scheme } => format!(
                "{} error=\"invalid_token\", error_description=\"{description}\"{metadata}",
                scheme.name()
            ),
            Refusal::InvalidProof(description) => format!(
                "DPoP error=\"invalid_dpop_proof\", error_description=\"{description}\", algs=\"{algs}\""
            ),
            Refusal::InsufficientScope(scope) => {
                format!("Bearer error=\"insufficient_scope\", scope=\"{scope}\"{metadata}")
            }
            Refusal::Unavailable | Refusal::Misconfigured(_) => String::new(),
        }
    }
}

impl GuardBuilder {
    /// Clock leeway on `exp` and `nbf` (default 5 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The least time between two JWKS fetches not asked for by expiry: for a `kid` not yet
    /// known, or after a failure (default 30 s).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// The longest the keys are kept without a refresh, whatever `Cache-Control` says.
    pub fn max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// The API's own client (allowed to introspect its tokens), for [`Introspected`].
    pub fn introspection(mut self, client_id: &str, client_secret: &str) -> Self {
        self.introspection = Some((client_id.to_owned(), client_secret.to_owned()));
        self
    }

    /// How long an "active" verdict is reused (default zero: every request asks).
    pub fn introspection_cache(mut self, ttl: Duration) -> Self {
        self.introspection_cache = ttl;
        self
    }

    /// The API's base URL as clients address it (for DPoP's `htu`); by default the request's
    /// scheme and host.
    pub fn public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.to_owned());
        self
    }

    /// The scopes listed in the protected-resource metadata.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    pub fn resource_name(mut self, name: &str) -> Self {
        self.resource_name = Some(name.to_owned());
        self
    }

    /// Fixed keys instead of discovery and a fetched JWKS (tests, offline use).
    pub fn jwks(mut self, jwks: serde_json::Value) -> Self {
        self.jwks = Some(jwks);
        self
    }

    pub async fn build(self) -> Result<Guard, BuildError> {
        let (keys, introspection) = match &self.jwks {
            Some(jwks) => (Arc::new(KeyStore::fixed(jwks)), None),
            None => self.discover().await?,
        };
        let mut metadata = serde_json::json!({
            "resource": self.audience,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "dpop_signing_alg_values_supported": dpop::ALGORITHMS,
        });
        if !self.scopes.is_empty() {
            metadata["scopes_supported"] = serde_json::json!(self.scopes);
        }
        if let Some(name) = &self.resource_name {
            metadata["resource_name"] = serde_json::json!(name);
        }
        // RFC 9728 §3.1: the well-known segment goes between the host and the path.
        let resource = url::Url::parse(&self.audience).ok().filter(|u| u.has_host());
        let suffix = resource.as_ref().map(|u| u.path().trim_end_matches('/').to_owned());
        let metadata_path =
            format!("/.well-known/oauth-protected-resource{}", suffix.unwrap_or_default());
        let metadata_url =
            resource.map(|u| format!("{}{metadata_path}", u.origin().ascii_serialization()));
        Ok(Guard {
            inner: Arc::new(Inner {
                verifier: Verifier {
                    issuer: self.issuer,
                    audience: self.audience,
                    leeway: self.leeway,
                    keys,
                },
                introspection,
                replays: dpop::Replays::default(),
                public_url: self.public_url,
                metadata,
                metadata_path,
                metadata_url,
            }),
        })
    }

    async fn discover(
        &self,
    ) -> Result<(Arc<KeyStore>, Option<introspect::Introspection>), BuildError> {
        let http = http::Http::new().map_err(BuildError::Client)?;
        let issuer = self.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/oauth-authorization-server");
        let metadata = http.get(&url).await.map_err(BuildError::Discovery)?.body;
        let text = |name: &'static str| {
            metadata.get(name).and_then(serde_json::Value::as_str).map(str::to_owned)
        };
        let found = text("issuer").ok_or(BuildError::Missing("issuer"))?;
        if found != self.issuer {
            return Err(BuildError::IssuerMismatch { expected: self.issuer.clone(), found });
        }
        let jwks_uri = text("jwks_uri").ok_or(BuildError::Missing("jwks_uri"))?;
        let keys = KeyStore::fetch(http.clone(), jwks_uri, self.refetch_interval, self.max_key_age)
            .await
            .map_err(BuildError::Jwks)?;
        let introspection = match &self.introspection {
            None => None,
            Some((id, secret)) => {
                let endpoint = text("introspection_endpoint")
                    .ok_or(BuildError::Missing("introspection_endpoint"))?;
                Some(introspect::Introspection::new(
                    http,
                    endpoint,
                    id,
                    secret,
                    self.introspection_cache,
                ))
            }
        };
        Ok((keys, introspection))
    }
}

/// The authorization scheme a token came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Bearer,
    Dpop,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Self::Bearer => "Bearer",
            Self::Dpop => "DPoP",
        }
    }
}

/// Why a request was refused, as RFC 6750 §3 (and RFC 9449 §7.1) answer it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Refusal {
    #[error("no access token")]
    Missing,
    #[error("malformed credentials: {0}")]
    Malformed(&'static str),
    #[error("invalid token: {description}")]
    InvalidToken { description: &'static str, scheme: Scheme },
    #[error("invalid DPoP proof: {0}")]
    InvalidProof(&'static str),
    #[error("the token lacks scope {0}")]
    InsufficientScope(String),
    #[error("the authorization server cannot be asked now")]
    Unavailable,
    /// The application is set up wrongly: no `Guard` in `app_data`, or introspection asked
    /// of a guard built without the API's client.
    #[error("castellan-guard is misconfigured: {0}")]
    Misconfigured(&'static str),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken { .. } | Self::InvalidProof(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Misconfigured(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing => None,
            Self::Malformed(_) => Some("invalid_request"),
            Self::InvalidToken { .. } => Some("invalid_token"),
            Self::InvalidProof(_) => Some("invalid_dpop_proof"),
            Self::InsufficientScope(_) => Some("insufficient_scope"),
            Self::Unavailable => Some("temporarily_unavailable"),
            Self::Misconfigured(_) => Some("server_error"),
        }
    }

    /// The response: the status, the challenge, and a small JSON body.
    pub fn response(&self, guard: Option<&Guard>) -> HttpResponse {
        let mut response = HttpResponse::build(self.status());
        let challenge = guard.map(|g| g.challenge(self)).unwrap_or_default();
        if let Ok(value) = HeaderValue::from_str(&challenge)
            && !challenge.is_empty()
        {
            response.insert_header((header::WWW_AUTHENTICATE, value));
        }
        if matches!(self, Self::Unavailable) {
            response.insert_header((header::RETRY_AFTER, "5"));
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        match self.code() {
            None => response.finish(),
            Some(code) => response.json(serde_json::json!({
                "error": code,
                "error_description": self.to_string(),
            })),
        }
    }
}

/// The scheme and token of the one `Authorization` header.
fn credentials(req: &HttpRequest) -> Result<(Scheme, &str), Refusal> {
    let mut headers = req.headers().get_all(header::AUTHORIZATION);
    let Some(value) = headers.next() else { return Err(Refusal::Missing) };
    if headers.next().is_some() {
        return Err(Refusal::Malformed("more than one Authorization header"));
    }
    let value = value.to_str().map_err(|_| Refusal::Malformed("unreadable Authorization"))?;
    let (scheme, token) = value.split_once(' ').ok_or(Refusal::Missing)?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return Err(Refusal::Missing);
    };
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(Refusal::Malformed("the token is malformed"));
    }
    Ok((scheme, token))
}

/// A refusal with the guard it came from, as an actix error.
#[derive(Debug)]
pub struct GuardError {
    refusal: Refusal,
    challenge: String,
}

impl std::fmt::Display for GuardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.refusal.fmt(f)
    }
}

impl ResponseError for GuardError {
    fn status_code(&self) -> StatusCode {
        self.refusal.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = self.refusal.response(None);
        if let Ok(value) = HeaderValue::from_str(&self.challenge)
            && !self.challenge.is_empty()
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

fn error(guard: Option<&Guard>, refusal: Refusal) -> GuardError {
    let challenge = guard.map(|g| g.challenge(&refusal)).unwrap_or_default();
    GuardError { refusal, challenge }
}

/// Claims already verified for this request (by [`RequireScope`]), and whether the server
/// was asked.
#[derive(Clone)]
struct Verified {
    claims: Claims,
    introspected: bool,
}

/// The verified claims of the request's access token (checked locally).
#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

/// The verified claims of a token the authorization server also said is still active.
#[derive(Debug, Clone)]
pub struct Introspected(pub Claims);

impl std::ops::Deref for Authenticated {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

impl std::ops::Deref for Introspected {
    type Target = Claims;
    fn deref(&self) -> &Claims {
        &self.0
    }
}

type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

async fn extract(req: HttpRequest, introspect: bool) -> Result<Claims, GuardError> {
    if let Some(verified) = req.extensions().get::<Verified>()
        && (verified.introspected || !introspect)
    {
        return Ok(verified.claims.clone());
    }
    let Some(guard) = req.app_data::<Guard>().cloned() else {
        tracing::error!("castellan-guard: no Guard in app_data");
        return Err(error(None, Refusal::Misconfigured("no Guard in app_data")));
    };
    guard.authenticate(&req, introspect).await.map_err(|refusal| error(Some(&guard), refusal))
}

impl FromRequest for Authenticated {
    type Error = GuardError;
    type Future = LocalFuture<Result<Self, GuardError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { extract(req, false).await.map(Authenticated) })
    }
}

impl FromRequest for Introspected {
    type Error = GuardError;
    type Future = LocalFuture<Result<Self, GuardError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { extract(req, true).await.map(Introspected) })
    }
}

/// Middleware for a route or scope: a valid token carrying `scope`, or the RFC 6750 answer
/// (401 `invalid_token`, 403 `insufficient_scope` naming the scope).
#[derive(Clone)]
pub struct RequireScope {
    scope: Rc<str>,
    introspect: bool,
}

impl RequireScope {
    pub fn new(scope: &str) -> Self {
        Self { scope: scope.into(), introspect: false }
    }

    /// Also asks the authorization server whether the token is still active (RFC 7662).
    pub fn introspected(mut self) -> Self {
        self.introspect = true;
        self
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequireScope
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = RequireScopeService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequireScopeService { service: Rc::new(service), rule: self.clone() }))
    }
}

pub struct RequireScopeService<S> {
    service: Rc<S>,
    rule: RequireScope,
}

impl<S, B> Service<ServiceRequest> for RequireScopeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalFuture<Result<Self::Response, Self::Error>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = self.service.clone();
        let rule = self.rule.clone();
        Box::pin(async move {
            let guard = req.app_data::<Guard>().cloned();
            let outcome = match &guard {
                None => Err(Refusal::Misconfigured("no Guard in app_data")),
                Some(guard) => guard.authenticate(req.request(), rule.introspect).await,
            };
            let refused = match outcome {
                Ok(claims) if claims.has_scope(&rule.scope) => {
                    req.extensions_mut().insert(Verified { claims, introspected: rule.introspect });
                    return service.call(req).await.map(ServiceResponse::map_into_left_body);
                }
                Ok(_) => Refusal::InsufficientScope(rule.scope.to_string()),
                Err(refusal) => refusal,
            };
            let response = refused.response(guard.as_ref());
            Ok(req.into_response(response).map_into_right_body())
        })
    }
}
