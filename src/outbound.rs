//! The one client for outgoing HTTP (docs/REFERENCE.md §9.7): every fetch of an address a
//! client or an administrator chose (a client's `jwks_uri`, a client's metadata document,
//! back-channel logout deliveries, upstream identity providers) goes through it, and its callers share one per-URL cache shape (`PerUrl`).
//!
//! It refuses loopback, private, link-local and other non-public addresses (SSRF) unless
//! `CASTELLAN_OUTBOUND_ALLOW_PRIVATE_NETWORKS` allows them, for a literal address and for
//! every address a name resolves to, in the resolver the connection itself uses (so a name
//! cannot resolve to a public address for the check and a private one for the connection).
//! No proxy from the environment, no redirects, https only (http only where private
//! networks are allowed, for development), bounded time and a bounded body.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

/// The largest body read: a JWK Set of a few keys is a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Connecting (after resolution) may take this long...
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// ...and the whole exchange this long.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why a fetch failed. Never carries the body or a header of the answer.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the URL does not parse or is not https")]
    BadUrl,
    #[error("the address {0} is not a public address")]
    Refused(IpAddr),
    #[error("the answer was HTTP {0}")]
    Status(u16),
    #[error("the answer is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the answer is not JSON")]
    NotJson,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the request failed: {0}")]
    Network(String),
}

/// A JSON document and how long its server lets it be cached.
#[derive(Debug)]
pub struct Fetched {
    pub body: serde_json::Value,
    /// `Cache-Control: max-age`; zero for `no-store` or `no-cache`; `None` when absent.
    pub max_age: Option<Duration>,
}

/// A fetched document is kept at most this long...
pub const MAX_TTL: Duration = Duration::from_secs(3600);
/// ...and this long when its `Cache-Control` says nothing.
const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// URLs tracked at most; past it the map starts over (clients number far fewer).
const MAX_URLS: usize = 10_000;

impl Fetched {
    /// How long to keep it: as its `Cache-Control` says, at least `floor` (the refetch
    /// interval: a server cannot make us ask more often), at most [`MAX_TTL`].
    pub fn ttl(&self, floor: Duration) -> Duration {
        self.max_age.unwrap_or(DEFAULT_TTL).clamp(floor, MAX_TTL)
    }
}

/// What a caller knows of each URL it fetches, with the URL's own fetch lock: concurrent
/// requests for one URL wait for one fetch instead of each making their own.
pub struct PerUrl<S> {
    entries: Mutex<HashMap<String, Arc<UrlEntry<S>>>>,
}

pub struct UrlEntry<S> {
    pub fetch: tokio::sync::Mutex<()>,
    pub state: Mutex<S>,
}

impl<S: Default> PerUrl<S> {
    pub fn new() -> Self {
        Self { entries: Mutex::new(HashMap::new()) }
    }

    /// The entry of `url`, made empty the first time.
    pub fn entry(&self, url: &str) -> Arc<UrlEntry<S>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_URLS && !entries.contains_key(url) {
            entries.clear();
        }
        let entry = entries.entry(url.to_owned()).or_insert_with(|| {
            Arc::new(UrlEntry { fetch: tokio::sync::Mutex::new(()), state: Mutex::default() })
        });
        entry.clone()
    }
}

impl<S: Default> Default for PerUrl<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> UrlEntry<S> {
    /// The state, whoever panicked while holding it before.
    pub fn state(&self) -> std::sync::MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<GuardedResolver>>;

/// The outbound client of this process. hyper neither follows redirects nor reads proxy
/// settings from the environment: a request goes where its URL says, or nowhere.
#[derive(Clone)]
pub struct Outbound {
    client: Client<Connector, Full<Bytes>>,
    allow_private: bool,
}

impl Outbound {
    pub fn new(allow_private: bool) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(Self { client, allow_private })
    }

    /// GETs `url` as JSON.
    pub async fn get_json(&self, url: &str) -> Result<Fetched, FetchError> {
        let parsed = self.guard(url)?;
        let request = hyper::Request::get(parsed.as_str())
            .header(ACCEPT, "application/json, application/jwk-set+json")
            .header(USER_AGENT, concat!("castellan/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::new()))
            .map_err(|_| FetchError::BadUrl)?;
        tokio::time::timeout(TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| FetchError::Timeout(TIMEOUT))?
    }

    /// POSTs `form` to `url` as `application/x-www-form-urlencoded` (a back-channel logout
    /// token), under the same address guard, timeouts and no redirects; any 2xx answer is
    /// success, its body unread beyond the size bound.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<(), FetchError> {
        let parsed = self.guard(url)?;
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let request = hyper::Request::post(parsed.as_str())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(USER_AGENT, concat!("castellan/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| FetchError::BadUrl)?;
        let send = async {
            let response = self.client.request(request).await.map_err(|e| network(&e))?;
            let status = response.status();
            // Drained (bounded) so the connection can be reused; what it says does not matter.
            let _ = Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await;
            if status.is_success() { Ok(()) } else { Err(FetchError::Status(status.as_u16())) }
        };
        tokio::time::timeout(TIMEOUT, send).await.map_err(|_| FetchError::Timeout(TIMEOUT))?
    }

    /// Parses `url` and refuses a scheme or a literal address this client may not reach.
    fn guard(&self, url: &str) -> Result<url::Url, FetchError> {
        let parsed = url::Url::parse(url).map_err(|_| FetchError::BadUrl)?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            _ => return Err(FetchError::BadUrl),
        }
        // A literal address never reaches the resolver: checked here.
        let literal = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(url::Host::Domain(_)) => None,
            None => return Err(FetchError::BadUrl),
        };
        if let Some(ip) = literal.filter(|ip| !self.allow_private && !is_public(*ip)) {
            return Err(FetchError::Refused(ip));
        }
        Ok(parsed)
    }

    async fn exchange(&self, request: hyper::Request<Full<Bytes>>) -> Result<Fetched, FetchError> {
        let response = self.client.request(request).await.map_err(|e| network(&e))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let max_age =
            response.headers().get(CACHE_CONTROL).and_then(|v| v.to_str().ok()).and_then(max_age);
        let body = read_body(response.into_body()).await?;
        let body = serde_json::from_slice(&body).map_err(|_| FetchError::NotJson)?;
        Ok(Fetched { body, max_age })
    }

    /// Sends a request an OpenID relying party library built (`oauth::upstream`: discovery,
    /// JWKS, the token endpoint) with its method, headers and body, under the same address
    /// guard, timeouts, no redirects and body bound. Every status is returned: the library
    /// reads a token endpoint's error answer itself.
    pub async fn send(
        &self,
        request: hyper::http::Request<Vec<u8>>,
    ) -> Result<hyper::http::Response<Vec<u8>>, FetchError> {
        let parsed = self.guard(&request.uri().to_string())?;
        let (parts, body) = request.into_parts();
        let mut builder = hyper::Request::builder().method(parts.method).uri(parsed.as_str());
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let request = builder
            .header(USER_AGENT, concat!("castellan/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(Bytes::from(body)))
            .map_err(|_| FetchError::BadUrl)?;
        let send = async {
            let response = self.client.request(request).await.map_err(|e| network(&e))?;
            let (parts, body) = response.into_parts();
            let body = read_body(body).await?;
            Ok(hyper::http::Response::from_parts(parts, body.to_vec()))
        };
        tokio::time::timeout(TIMEOUT, send).await.map_err(|_| FetchError::Timeout(TIMEOUT))?
    }
}

/// An answer's body, at most [`MAX_BODY_BYTES`] of it.
async fn read_body(body: hyper::body::Incoming) -> Result<Bytes, FetchError> {
    let collected = Limited::new(body, MAX_BODY_BYTES).collect().await.map_err(|e| {
        if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
            FetchError::TooLarge
        } else {
            FetchError::Network(e.to_string())
        }
    })?;
    Ok(collected.to_bytes())
}

/// A refused resolution, found again in the error chain of the request that needed it.
#[derive(Debug, thiserror::Error)]
#[error("the address {0} is not a public address")]
struct RefusedAddress(IpAddr);

fn network(e: &(dyn StdError + 'static)) -> FetchError {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(current) = cause {
        // An io::Error hides the error it wraps from `source()`: look inside it too.
        let inner = current.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        for candidate in [Some(current), inner.map(|i| i as &(dyn StdError + 'static))] {
            if let Some(refused) = candidate.and_then(|c| c.downcast_ref::<RefusedAddress>()) {
                return FetchError::Refused(refused.0);
            }
        }
        cause = current.source();
    }
    // The error's text names no URL: a jwks_uri may carry a query an operator would not log.
    FetchError::Network(e.to_string())
}

/// Resolves with the system resolver and keeps only the addresses the policy allows; a name
/// with none left fails naming the first refused address. The connection uses exactly the
/// addresses this returns.
#[derive(Clone)]
struct GuardedResolver {
    allow_private: bool,
}

impl tower_service::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> =
                resolved.iter().copied().filter(|a| allow_private || is_public(a.ip())).collect();
            match (allowed.is_empty(), resolved.first()) {
                (true, Some(first)) => Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    RefusedAddress(first.ip()),
                )),
                _ => Ok(allowed.into_iter()),
            }
        })
    }
}

/// The address `url`'s host is written as (`https://10.0.0.1/`, `https://[::1]/`); `None` for
/// a name, which only the resolver can judge. Registration refuses some addresses early, and
/// lets plain http reach a loopback one, from this.
pub fn literal_address(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// Whether `ip` is a global unicast address: not loopback, private (RFC 1918, RFC 4193),
/// link-local (the cloud metadata services live there), shared (RFC 6598), unspecified,
/// broadcast, multicast, documentation or benchmarking space. IPv4 embedded in IPv6 is
/// judged as the IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x2001 && ip.segments()[1] == 0) // Teredo, may embed private IPv4
        || (first == 0x2001 && ip.segments()[1] == 2 && ip.segments()[2] == 0) // benchmarking
        || first == 0x2002 // 6to4, may embed private IPv4
        || (first == 0x64 && ip.segments()[1] == 0xff9b) // NAT64, may reach private IPv4
        || ip.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible
}

/// The `max-age` of a `Cache-Control` value; zero for `no-store` or `no-cache`.
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(seconds) = lower.strip_prefix("max-age=") {
            age = seconds.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_addresses_are_public() {
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "2001:0:a00:1::1",
        ] {
            assert!(!is_public(refused.parse().expect("ip")), "{refused} must be refused");
        }
        for allowed in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(allowed.parse().expect("ip")), "{allowed} is public");
        }
    }

    #[test]
    fn only_a_literal_host_has_an_address() {
        let address = |url: &str| literal_address(&url::Url::parse(url).expect("url"));
        assert_eq!(address("https://10.0.0.1/logout"), Some("10.0.0.1".parse().expect("ip")));
        assert_eq!(address("http://[::1]:8080/"), Some("::1".parse().expect("ip")));
        assert_eq!(
            address("https://[::ffff:a00:1]/"),
            Some("::ffff:10.0.0.1".parse().expect("ip"))
        );
        assert_eq!(address("https://localhost/"), None);
        assert_eq!(address("https://rp.example/logout"), None);
        assert_eq!(address("urn:example:no-host"), None);
    }

    #[test]
    fn cache_control_gives_the_max_age() {
        assert_eq!(max_age("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("max-age=60, no-cache"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
