//! Access tokens whose signature was checked recently. A resource server introspects the
//! same token on every call it serves: the first look verifies the signature, the next ones
//! cost a lookup. Only the signature and the claims are remembered, never whether the token
//! is live: that is decided at every look, from the revoked state in memory.
//!
//! Keyed by the token's SHA-256; only tokens that verified are kept, so a flood of bad tokens
//! never fills it; an entry lives until its token expires.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest::{SHA256, digest};

use super::access_token::AccessClaims;
use super::keyring::LEEWAY;

/// At most this many tokens are kept (a few MB).
const CAPACITY: usize = 16_384;

type Key = [u8; 32];

#[derive(Default)]
pub struct Verified {
    entries: RwLock<HashMap<Key, Arc<AccessClaims>>>,
}

impl Verified {
    /// The claims of `token` if its signature was verified and it has not expired since.
    pub fn get(&self, token: &str) -> Option<Arc<AccessClaims>> {
        let entries = self.entries.read().ok()?;
        let claims = entries.get(&key(token))?;
        let unexpired = claims.exp + LEEWAY.as_secs() as i64 > chrono::Utc::now().timestamp();
        unexpired.then(|| claims.clone())
    }

    /// Remembers that `token` verified, with its claims.
    pub fn put(&self, token: &str, claims: Arc<AccessClaims>) {
        let Ok(mut entries) = self.entries.write() else { return };
        if entries.len() >= CAPACITY {
            let now = chrono::Utc::now().timestamp();
            entries.retain(|_, c| c.exp + LEEWAY.as_secs() as i64 > now);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key(token), claims);
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
            acr: None,
            amr: None,
            gid: None,
            fid: None,
            cnf: None,
            act: None,
            may_act: None,
        })
    }

    #[test]
    fn an_entry_answers_only_for_its_own_token_and_until_it_expires() {
        let verified = Verified::default();
        let later = chrono::Utc::now().timestamp() + 600;
        verified.put("a.b.c", claims(later));
        verified.put("expired", claims(chrono::Utc::now().timestamp() - 60));

        assert!(verified.get("a.b.c").is_some());
        assert!(verified.get("a.b.d").is_none());
        assert!(verified.get("expired").is_none());
    }
}
