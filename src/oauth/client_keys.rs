//! A client's public keys, registered inline (`jwks`) or by reference (`jwks_uri`), and the one
//! check of a JWS a client signed: its assertions (RFC 7523) and request objects (RFC 9101).
//!
//! Keys by reference are fetched through the outbound client (SSRF-guarded, bounded) and
//! cached per URL for as long as the answer's `Cache-Control` allows, at least the refetch
//! interval (`CASTELLAN_CLIENT_JWKS_REFETCH_INTERVAL`) and at most an hour
//! (`outbound::Fetched::ttl`). A `kid` the
//! cached set does not hold refetches at most once per interval, so a forged `kid` cannot
//! make this server hammer the client's. A failed refetch keeps serving the keys it has.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, TokenData, Validation};
use serde::de::DeserializeOwned;

use super::client::Client;
use crate::outbound::{FetchError, Outbound, PerUrl, UrlEntry};

/// The algorithms a FAPI 2.0 client may sign with.
pub const FAPI2_ALGORITHMS: [Algorithm; 3] = [Algorithm::PS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why a client's JWS was refused. Each surface maps it onto its own error
/// (`invalid_client`, `invalid_request_object`).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the JWS is malformed or has a crit header")]
    Malformed,
    #[error("no registered key of the client matches")]
    NoKey,
    #[error("the algorithm is not the key's")]
    Algorithm,
    #[error("the signature or a claim is invalid: {0:?}")]
    Invalid(jsonwebtoken::errors::ErrorKind),
    #[error("the client's jwks_uri could not be fetched: {0}")]
    Fetch(#[from] FetchError),
    #[error("the client's jwks_uri holds no usable key set: {0}")]
    KeySet(&'static str),
}

struct Cached {
    keys: Arc<JwkSet>,
    fresh_until: Instant,
}

/// What is known of one URL: the keys last fetched, and when it was last tried (a failed
/// try counts: a client's server that is down is not asked again before the interval).
#[derive(Default)]
struct State {
    cached: Option<Cached>,
    attempted_at: Option<Instant>,
}

pub struct ClientKeys {
    outbound: Outbound,
    /// The least time between two fetches of one URL.
    interval: Duration,
    entries: PerUrl<State>,
}

impl ClientKeys {
    pub fn new(outbound: Outbound, interval: Duration) -> Self {
        Self { outbound, interval, entries: PerUrl::new() }
    }

    /// Verifies `jwt`, signed by `client`, with `validation` (whose algorithms are replaced by
    /// the key's own, RFC 8725 §3.1). The JOSE header must not carry `crit` (RFC 7515
    /// §4.1.11: this server understands no extension).
    pub async fn verify<C: DeserializeOwned>(
        &self,
        client: &Client,
        jwt: &str,
        mut validation: Validation,
    ) -> Result<TokenData<C>, Refused> {
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| Refused::Malformed)?;
        if has_crit_header(jwt) {
            return Err(Refused::Malformed);
        }
        let jwk = self.key(client, header.kid.as_deref()).await?;
        if !key_algorithms(&jwk).contains(&header.alg) {
            return Err(Refused::Algorithm);
        }
        // FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA; never RS256.
        if client.is_fapi2() && !FAPI2_ALGORITHMS.contains(&header.alg) {
            return Err(Refused::Algorithm);
        }
        let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| Refused::NoKey)?;
        validation.algorithms = vec![header.alg];
        jsonwebtoken::decode::<C>(jwt, &key, &validation)
            .map_err(|e| Refused::Invalid(e.into_kind()))
    }

    /// The key `kid` names (or the only one, without `kid`), a signing key.
    async fn key(&self, client: &Client, kid: Option<&str>) -> Result<Jwk, Refused> {
        if let Some(jwks) = &client.metadata.jwks {
            let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|_| Refused::NoKey)?;
            return pick(&set, kid).ok_or(Refused::NoKey);
        }
        let Some(uri) = client.metadata.jwks_uri.as_deref() else { return Err(Refused::NoKey) };
        let entry = self.entries.entry(uri);
        let now = Instant::now();
        let (found, refetch) = lookup(&entry, kid, now, self.interval);
        if let (Some(key), false) = (&found, refetch) {
            return Ok(key.clone());
        }
        if !refetch {
            return found.ok_or(Refused::NoKey);
        }
        let _fetching = entry.fetch.lock().await;
        // Another request may have fetched while this one waited.
        let (found, refetch) = lookup(&entry, kid, Instant::now(), self.interval);
        if !refetch {
            return found.ok_or(Refused::NoKey);
        }
        let fetched = self.fetch(uri).await;
        let mut state = entry.state();
        state.attempted_at = Some(Instant::now());
        match fetched {
            Ok(cached) => {
                let key = pick(&cached.keys, kid);
                state.cached = Some(cached);
                key.ok_or(Refused::NoKey)
            }
            // The keys already fetched stay good while the client's server is unreachable.
            Err(e) => {
                tracing::warn!(client_id = %client.client_id, error = %e, "jwks_uri fetch failed");
                found.ok_or(e)
            }
        }
    }

    async fn fetch(&self, uri: &str) -> Result<Cached, Refused> {
        let fetched = self.outbound.get_json(uri).await?;
        // The same rules as keys registered inline: public signing keys, RSA of 2048 bits.
        super::client_metadata::check_jwks(&fetched.body)
            .map_err(|e| Refused::KeySet(e.description))?;
        let fresh_until = Instant::now() + fetched.ttl(self.interval);
        let keys: JwkSet =
            serde_json::from_value(fetched.body).map_err(|_| Refused::KeySet("not a JWK Set"))?;
        Ok(Cached { keys: Arc::new(keys), fresh_until })
    }
}

/// The cached key for `kid`, and whether to fetch: when nothing is cached, the keys are
/// stale or `kid` is unknown, and the last try is older than the interval.
fn lookup(
    entry: &UrlEntry<State>,
    kid: Option<&str>,
    now: Instant,
    interval: Duration,
) -> (Option<Jwk>, bool) {
    let state = entry.state();
    let found = state.cached.as_ref().and_then(|c| pick(&c.keys, kid));
    let due = state.cached.as_ref().is_none_or(|c| now >= c.fresh_until || found.is_none());
    let allowed = state.attempted_at.is_none_or(|at| now.duration_since(at) >= interval);
    (found, due && allowed)
}

/// The signing key `kid` names; without `kid`, the only signing key.
fn pick(set: &JwkSet, kid: Option<&str>) -> Option<Jwk> {
    let signing = |k: &&Jwk| {
        k.common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == jsonwebtoken::jwk::PublicKeyUse::Signature)
    };
    match kid {
        Some(kid) => {
            set.keys.iter().filter(signing).find(|k| k.common.key_id.as_deref() == Some(kid))
        }
        None => {
            let mut keys = set.keys.iter().filter(signing);
            match (keys.next(), keys.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
    .cloned()
}

/// The algorithms a client key may sign with: its `alg` when it names one of its type's,
/// else the usual ones of its type (an RSA key: RS256 or PS256); never a MAC, never `none`.
fn key_algorithms(jwk: &Jwk) -> Vec<Algorithm> {
    use Algorithm::*;
    let (of_type, usual): (&[Algorithm], &[Algorithm]) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => {
            (&[RS256, RS384, RS512, PS256, PS384, PS512], &[RS256, PS256])
        }
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => (&[ES256], &[ES256]),
            EllipticCurve::P384 => (&[ES384], &[ES384]),
            _ => (&[], &[]),
        },
        AlgorithmParameters::OctetKeyPair(_) => (&[EdDSA], &[EdDSA]),
        _ => (&[], &[]),
    };
    match jwk.common.key_algorithm {
        None => usual.to_vec(),
        Some(named) => match named.to_string().parse::<Algorithm>() {
            Ok(alg) if of_type.contains(&alg) => vec![alg],
            _ => vec![],
        },
    }
}

/// Whether the JOSE header of `jwt` has a `crit` member.
fn has_crit_header(jwt: &str) -> bool {
    use base64::Engine;
    let Some(encoded) = jwt.split('.').next() else { return true };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded) else {
        return true;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .map_or(true, |header| header.contains_key("crit"))
}
