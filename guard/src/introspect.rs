//! Introspection (RFC 7662) for routes that must see a revocation at once: after the local
//! checks, the authorization server says whether the token is still active. Verdicts are
//! cached briefly: an inactive one until the token would expire anyway, an active one for the
//! configured time (none by default, so a revocation is seen by the next request).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;

use crate::http::{FetchError, Http};

/// Verdicts remembered at most; past it the expired ones are dropped first.
const MAX_VERDICTS: usize = 100_000;

pub struct Introspection {
    http: Http,
    endpoint: String,
    /// `Basic base64(client_id:secret)` of the API's own client.
    authorization: String,
    active_ttl: Duration,
    verdicts: Mutex<HashMap<Vec<u8>, (bool, Instant)>>,
    calls: std::sync::atomic::AtomicU64,
}

impl Introspection {
    pub fn new(
        http: Http,
        endpoint: String,
        client_id: &str,
        secret: &str,
        active_ttl: Duration,
    ) -> Self {
        // RFC 6749 §2.3.1: each part form-encoded before joining.
        let encode =
            |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let credentials = format!("{}:{}", encode(client_id), encode(secret));
        let authorization =
            format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(credentials));
        Self {
            http,
            endpoint,
            authorization,
            active_ttl,
            verdicts: Mutex::new(HashMap::new()),
            calls: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether the server says `token` (which expires at `exp`) is active.
    pub async fn is_active(&self, token: &str, exp: i64) -> Result<bool, FetchError> {
        let key = digest(&SHA256, token.as_bytes()).as_ref().to_vec();
        let now = Instant::now();
        if let Some((verdict, until)) =
            self.verdicts.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && *until > now
        {
            return Ok(*verdict);
        }
        self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let answer = self.http.post_form(&self.endpoint, &self.authorization, form).await?;
        let active = answer.body.get("active").and_then(serde_json::Value::as_bool);
        let active = active.ok_or(FetchError::Malformed)?;
        let keep = if active {
            self.active_ttl
        } else {
            let left = exp.saturating_sub(unix_now()).clamp(0, 3600);
            Duration::from_secs(left as u64)
        };
        if !keep.is_zero() {
            let mut verdicts = self.verdicts.lock().unwrap_or_else(|e| e.into_inner());
            if verdicts.len() >= MAX_VERDICTS {
                verdicts.retain(|_, (_, until)| *until > now);
            }
            verdicts.insert(key, (active, now + keep));
        }
        Ok(active)
    }

    /// How many introspection requests were sent.
    pub fn calls(&self) -> u64 {
        self.calls.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
