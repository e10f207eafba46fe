//! The guard's few requests to the authorization server: discovery, the JWKS, introspection.
//! The issuer is the operator's choice, so no address is refused; every request is bounded
//! in time and size, and follows no redirect.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, USER_AGENT};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The largest answer read (a JWK Set, a metadata document, an introspection answer).
const MAX_BODY_BYTES: usize = 512 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const TIMEOUT: Duration = Duration::from_secs(5);
const AGENT: &str = concat!("castellan-guard/", env!("CARGO_PKG_VERSION"));

/// Why a request to the authorization server failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {0}")]
    Status(u16),
    #[error("the answer is not the JSON expected")]
    Malformed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Network(String),
}

/// A JSON answer and how long it may be cached.
pub struct Fetched {
    pub body: serde_json::Value,
    /// `Cache-Control: max-age`; zero for `no-store`/`no-cache`.
    pub max_age: Option<Duration>,
}

#[derive(Clone)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Result<Self, FetchError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| FetchError::Network(e.to_string()))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self { client: Client::builder(TokioExecutor::new()).build(https) })
    }

    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let request = hyper::Request::get(url)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, AGENT)
            .body(Full::default())
            .map_err(|_| FetchError::Malformed)?;
        self.send(request).await
    }

    /// POSTs `form` (already encoded) with HTTP Basic credentials.
    pub async fn post_form(
        &self,
        url: &str,
        authorization: &str,
        form: String,
    ) -> Result<Fetched, FetchError> {
        let request = hyper::Request::post(url)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, AGENT)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(AUTHORIZATION, authorization)
            .body(Full::new(Bytes::from(form)))
            .map_err(|_| FetchError::Malformed)?;
        self.send(request).await
    }

    async fn send(&self, request: hyper::Request<Full<Bytes>>) -> Result<Fetched, FetchError> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| FetchError::Network(e.to_string()))?;
            if !response.status().is_success() {
                return Err(FetchError::Status(response.status().as_u16()));
            }
            let max_age = response
                .headers()
                .get(CACHE_CONTROL)
                .and_then(|v| v.to_str().ok())
                .and_then(max_age);
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|_| FetchError::Malformed)?
                .to_bytes();
            let body = serde_json::from_slice(&body).map_err(|_| FetchError::Malformed)?;
            Ok(Fetched { body, max_age })
        };
        tokio::time::timeout(TIMEOUT, exchange).await.map_err(|_| FetchError::Timeout(TIMEOUT))?
    }
}

/// The `max-age` of a `Cache-Control` value; zero for `no-store` or `no-cache`.
pub fn max_age(value: &str) -> Option<Duration> {
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
    fn cache_control_gives_the_max_age() {
        assert_eq!(max_age("public, max-age=300"), Some(Duration::from_secs(300)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }
}
