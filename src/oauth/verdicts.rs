//! Recent "this access token is live" verdicts. A resource server introspects the same token
//! on every call it serves; the first check verifies the signature and reads the database,
//! the next ones within the sync interval cost a lookup.
//!
//! Bounded in time (SPEC §8): a verdict lives one sync interval, so a revocation made at
//! another replica takes effect here within it, as client and key changes do. A revocation
//! made at this replica forgets every verdict at once. Only live verdicts are kept, keyed
//! by the token's SHA-256, so a flood of bad tokens never fills it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::digest::{SHA256, digest};

use super::access_token::AccessClaims;
use super::keyring::LEEWAY;

/// At most this many verdicts are kept (a few MB).
const CAPACITY: usize = 16_384;

type Key = [u8; 32];

struct Verdict {
    claims: Arc<AccessClaims>,
    checked_at: Instant,
    generation: u64,
}

pub struct Verdicts {
    ttl: Duration,
    /// Bumped by every local revocation: verdicts of an older generation are void.
    generation: AtomicU64,
    entries: RwLock<HashMap<Key, Verdict>>,
}

impl Verdicts {
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, generation: AtomicU64::new(0), entries: RwLock::new(HashMap::new()) }
    }

    /// The claims of `token` if it was found live within the last interval and has not
    /// expired since.
    pub fn get(&self, token: &str) -> Option<Arc<AccessClaims>> {
        let key = key(token);
        let entries = self.entries.read().ok()?;
        let verdict = entries.get(&key)?;
        let fresh = verdict.checked_at.elapsed() < self.ttl
            && verdict.generation == self.generation.load(Ordering::Acquire);
        let unexpired =
            verdict.claims.exp + LEEWAY.as_secs() as i64 > chrono::Utc::now().timestamp();
        (fresh && unexpired).then(|| verdict.claims.clone())
    }

    /// Records that `token` was found live, as of `generation` (read before the check, so
    /// a revocation racing the check voids the verdict).
    pub fn put(&self, token: &str, claims: Arc<AccessClaims>, generation: u64) {
        let Ok(mut entries) = self.entries.write() else { return };
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, v| v.checked_at.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key(token), Verdict { claims, checked_at: Instant::now(), generation });
    }

    /// The current generation, to pass to `put` after a check.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Voids every verdict: something was revoked, disabled or deleted here.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

fn key(token: &str) -> Key {
    let mut key = [0u8; 32];
    key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::access_token::Audience;

    fn claims(exp: i64) -> Arc<AccessClaims> {
        Arc::new(AccessClaims {
            iss: "https://issuer.test".into(),
            sub: "s".into(),
            aud: Audience::One("a".into()),
            exp,
            iat: 0,
            jti: "j".into(),
            client_id: "c".into(),
            scope: String::new(),
            auth_time: None,
            gid: None,
            fid: None,
        })
    }

    fn later() -> i64 {
        chrono::Utc::now().timestamp() + 600
    }

    #[test]
    fn a_verdict_answers_only_for_its_own_token() {
        let verdicts = Verdicts::new(Duration::from_secs(60));
        verdicts.put("a.b.c", claims(later()), verdicts.generation());

        assert!(verdicts.get("a.b.c").is_some());
        assert!(verdicts.get("a.b.d").is_none());
    }

    #[test]
    fn a_local_revocation_voids_every_verdict_even_one_racing_it() {
        let verdicts = Verdicts::new(Duration::from_secs(60));
        let before = verdicts.generation();
        verdicts.put("t1", claims(later()), before);

        verdicts.forget_all();
        verdicts.put("t2", claims(later()), before);

        assert!(verdicts.get("t1").is_none());
        assert!(verdicts.get("t2").is_none(), "checked before the revocation, so void");
    }

    #[test]
    fn verdicts_expire_with_the_interval_and_with_the_token() {
        let verdicts = Verdicts::new(Duration::from_millis(20));
        verdicts.put("t", claims(later()), verdicts.generation());
        verdicts.put("expired", claims(chrono::Utc::now().timestamp() - 60), 0);

        assert!(verdicts.get("expired").is_none());
        std::thread::sleep(Duration::from_millis(30));
        assert!(verdicts.get("t").is_none());
    }
}
