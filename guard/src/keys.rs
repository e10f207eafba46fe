//! The authorization server's signing keys, held in memory: fetched once at start, kept for
//! as long as the JWKS answer's `Cache-Control` allows, refreshed in the background before
//! that runs out, and fetched again for a `kid` not yet known at most once per interval (a
//! forged `kid` cannot make the guard hammer the server). A failed fetch keeps the keys it
//! has: a server briefly unreachable breaks nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::http::{FetchError, Http};

/// The algorithms RFC 9068 tokens from Castellan are signed with; never a MAC, never `none`.
pub const ALGORITHMS: [Algorithm; 4] =
    [Algorithm::RS256, Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// A key and the one algorithm it verifies (RFC 8725 §3.1: the key's, never the header's).
pub struct VerificationKey {
    pub algorithm: Algorithm,
    pub key: DecodingKey,
}

type KeyMap = HashMap<String, Arc<VerificationKey>>;

struct FetchState {
    /// When the keys stop being fresh (and were due for a refresh a little before).
    fresh_until: Instant,
    refresh_at: Instant,
    /// The last fetch tried, successful or not.
    attempted_at: Option<Instant>,
}

pub struct KeyStore {
    source: Option<(Http, String)>,
    keys: RwLock<Arc<KeyMap>>,
    state: Mutex<FetchState>,
    fetching: tokio::sync::Mutex<()>,
    /// The least time between two fetches not asked for by expiry.
    interval: Duration,
    max_ttl: Duration,
    fetches: AtomicU64,
}

impl KeyStore {
    /// Keys that never change (no JWKS URL): for tests and offline use.
    pub fn fixed(jwks: &serde_json::Value) -> Self {
        let now = Instant::now();
        let far = now + Duration::from_secs(100 * 365 * 24 * 3600);
        Self {
            source: None,
            keys: RwLock::new(Arc::new(parse(jwks))),
            state: Mutex::new(FetchState { fresh_until: far, refresh_at: far, attempted_at: None }),
            fetching: tokio::sync::Mutex::new(()),
            interval: Duration::MAX,
            max_ttl: Duration::MAX,
            fetches: AtomicU64::new(0),
        }
    }

    /// Fetches the keys at `jwks_uri` (an error if that fails: an API should not start
    /// unable to verify anything) and starts refreshing them in the background.
    pub async fn fetch(
        http: Http,
        jwks_uri: String,
        interval: Duration,
        max_ttl: Duration,
    ) -> Result<Arc<Self>, FetchError> {
        let now = Instant::now();
        let store = Arc::new(Self {
            source: Some((http, jwks_uri)),
            keys: RwLock::new(Arc::new(HashMap::new())),
            state: Mutex::new(FetchState { fresh_until: now, refresh_at: now, attempted_at: None }),
            fetching: tokio::sync::Mutex::new(()),
            interval,
            max_ttl,
            fetches: AtomicU64::new(0),
        });
        store.refresh().await?;
        tokio::spawn(refresh_in_background(Arc::downgrade(&store)));
        Ok(store)
    }

    /// The key `kid` names, fetching the keys again if it is unknown and the last fetch is
    /// older than the interval.
    pub async fn key(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if !self.may_fetch(Instant::now()) {
            return None;
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if self.may_fetch(Instant::now()) {
            let _ = self.refresh_now().await;
        }
        self.cached(kid)
    }

    /// How many times the JWKS was fetched (successfully or not).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn cached(&self, kid: &str) -> Option<Arc<VerificationKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).get(kid).cloned()
    }

    fn may_fetch(&self, now: Instant) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.source.is_some()
            && state.attempted_at.is_none_or(|at| now.duration_since(at) >= self.interval)
    }

    async fn refresh(&self) -> Result<(), FetchError> {
        let _one_at_a_time = self.fetching.lock().await;
        self.refresh_now().await
    }

    /// Fetches the keys (the caller holds `fetching`).
    async fn refresh_now(&self) -> Result<(), FetchError> {
        let Some((http, uri)) = &self.source else { return Ok(()) };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = http.get(uri).await;
        let now = Instant::now();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.attempted_at = Some(now);
        match fetched {
            Ok(fetched) => {
                let keys = parse(&fetched.body);
                if keys.is_empty() {
                    state.refresh_at = now + self.interval;
                    return Err(FetchError::Malformed);
                }
                let ttl = fetched.max_age.unwrap_or(Duration::from_secs(300));
                let ttl = ttl.clamp(self.interval.min(self.max_ttl), self.max_ttl);
                state.fresh_until = now + ttl;
                // Refreshed ahead of expiry, so requests never wait on it.
                state.refresh_at = now + ttl.mul_f64(0.8);
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(error = %e, "castellan-guard: fetching the JWKS failed; keeping the keys held");
                state.refresh_at = now + self.interval;
                Err(e)
            }
        }
    }

    fn next_refresh(&self) -> Instant {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).refresh_at
    }
}

/// Refreshes the keys before they go stale, for as long as the guard lives.
async fn refresh_in_background(store: Weak<KeyStore>) {
    loop {
        let Some(at) = store.upgrade().map(|s| s.next_refresh()) else { return };
        tokio::time::sleep_until(at.into()).await;
        let Some(store) = store.upgrade() else { return };
        let _ = store.refresh().await;
    }
}

/// The usable signing keys of a JWK Set, by `kid`; the others are skipped.
fn parse(jwks: &serde_json::Value) -> KeyMap {
    let Ok(set) = serde_json::from_value::<JwkSet>(jwks.clone()) else { return HashMap::new() };
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let (Some(kid), Some(algorithm)) = (jwk.common.key_id.clone(), algorithm_of(jwk)) else {
            continue;
        };
        let signing = jwk
            .common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature);
        if let (true, Ok(key)) = (signing, DecodingKey::from_jwk(jwk)) {
            keys.insert(kid, Arc::new(VerificationKey { algorithm, key }));
        }
    }
    keys
}

/// The algorithm a key verifies: its `alg` when that fits its type, else its type's (an RSA
/// key without `alg`, which could be RS256 or PS256, is not used).
fn algorithm_of(jwk: &Jwk) -> Option<Algorithm> {
    let implied = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => None,
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => return None,
    };
    let named = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
    let fits = |alg: Algorithm| match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(alg, Algorithm::RS256 | Algorithm::PS256),
        _ => implied == Some(alg),
    };
    match named {
        Some(alg) if fits(alg) && ALGORITHMS.contains(&alg) => Some(alg),
        Some(_) => None,
        None => implied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn a_key_verifies_only_the_algorithm_its_type_allows() {
        let ec = |alg: Option<&str>| {
            let mut jwk = json!({"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "k"});
            if let Some(alg) = alg {
                jwk["alg"] = json!(alg);
            }
            serde_json::from_value::<Jwk>(jwk).expect("jwk")
        };
        assert_eq!(algorithm_of(&ec(None)), Some(Algorithm::ES256));
        assert_eq!(algorithm_of(&ec(Some("ES256"))), Some(Algorithm::ES256));
        assert_eq!(algorithm_of(&ec(Some("RS256"))), None, "an alg its type cannot do");
        assert_eq!(algorithm_of(&ec(Some("HS256"))), None, "never a MAC");
    }

    #[test]
    fn keys_without_kid_or_for_encryption_are_skipped() {
        let jwks = json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y},
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "enc", "use": "enc"},
            {"kty": "EC", "crv": "P-256", "x": X, "y": Y, "kid": "sig", "use": "sig"},
            {"kty": "oct", "k": "c2VjcmV0", "kid": "mac"},
        ]});
        let keys = parse(&jwks);
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["sig"]);
    }
}
