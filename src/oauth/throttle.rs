//! Brute-force limits (docs/REFERENCE.md §9.6, OWASP ASVS 5.0 V6.3): guessing stays bounded,
//! and nobody can lock out a client or a user who presents the right credential.
//!
//! - Per source address: failed sign-ins and failed client authentications together; past
//!   `address_failure_limit` in the window the address gets 429. This stops guessing from
//!   one place, whatever it guesses at.
//! - Clients are never counted per client: a 256-bit server-made secret cannot be guessed,
//!   so locking a client would only hand its attackers a denial of service. Public clients
//!   (who present no secret) are never counted at all.
//! - Sign-ins count per (account, address), or per (account, known device) for a browser
//!   holding a device cookie of that account (`oauth::device`): past
//!   `account_failure_limit` that pair gets 429. Across every address the account's
//!   failures are counted too; past the same limit the account is in soft lockout: an
//!   address that has already failed for it is refused, while an address that has not
//!   guessed, and any known device, still signs in with the right password.
//!
//! Sign-in attempts are counted before the password is checked, so concurrency cannot beat
//! a limit. Client authentications stay off the database when they succeed (the token
//! endpoint's hot path): they consult the addresses this replica knows to be blocked,
//! re-read every sync interval, and count only failures, each with one atomic upsert.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::Duration;

use crate::config::Settings;
use crate::store::{self, Db, StoreError};

/// At most this many blocked addresses are loaded per sync.
const MAX_BLOCKED: u64 = 10_000;

/// An attempt refused for being one too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When the window closes (whole seconds, at least 1).
    pub retry_after: Duration,
}

/// What counting a failed client authentication decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Under the limit: the failure is answered as such.
    Allowed,
    /// This failure reached the limit: answered as a failure, and the address is refused
    /// from now on (exactly one failure per window gets this, whichever replica counts it).
    Locked(Refused),
    /// Past the limit: refused.
    Refused(Refused),
}

/// A sign-in attempt that may go on to have its password checked.
#[derive(Debug)]
pub struct Attempt {
    account: String,
    pair: String,
    address: String,
}

pub struct Throttle {
    account_limit: i32,
    address_limit: i32,
    registration_limit: i32,
    window_ms: i64,
    /// Addresses over their limit as this replica last saw them, and when their window ends.
    blocked: RwLock<HashMap<String, i64>>,
}

impl Throttle {
    pub fn new(settings: &Settings) -> Self {
        Self {
            account_limit: i32::try_from(settings.account_failure_limit).unwrap_or(i32::MAX),
            address_limit: i32::try_from(settings.address_failure_limit).unwrap_or(i32::MAX),
            registration_limit: i32::try_from(settings.registration_limit).unwrap_or(i32::MAX),
            window_ms: i64::try_from(settings.failure_window.as_millis()).unwrap_or(i64::MAX),
            blocked: RwLock::new(HashMap::new()),
        }
    }

    /// Counts a sign-in attempt for `username` before its password is checked; `device` is
    /// the id of a known-device cookie of that account, if the browser holds one.
    pub async fn attempt(
        &self,
        db: &Db,
        username: &str,
        device: Option<&str>,
        address: IpAddr,
    ) -> Result<Result<Attempt, Refused>, StoreError> {
        let now = now_ms();
        let address_key = address_key(address);
        let counted = store::attempts::count(db, &address_key, now, self.window_ms).await?;
        if counted.attempts > self.address_limit {
            return Ok(Err(self.block(address_key, counted.window_start, now)));
        }
        // Bounded, so that a huge username cannot make a huge key.
        let user: String = username.chars().take(64).collect();
        let pair = match device {
            Some(device) => format!("device:{device}:{user}"),
            None => format!("pair:{address_key}:{user}"),
        };
        let counted = store::attempts::count(db, &pair, now, self.window_ms).await?;
        if counted.attempts > self.account_limit {
            return Ok(Err(refused(counted.window_start + self.window_ms, now)));
        }
        let account = format!("user:{user}");
        // Soft lockout: an account guessed at from everywhere refuses whoever has guessed
        // wrong at it already (this attempt aside), but not a fresh address or a known device.
        if device.is_none() && counted.attempts > 1 {
            let failures = store::attempts::current(db, &account, now, self.window_ms).await?;
            if let Some(account_count) = failures
                && account_count.attempts >= self.account_limit
            {
                return Ok(Err(refused(account_count.window_start + self.window_ms, now)));
            }
        }
        Ok(Ok(Attempt { account, pair, address: address_key }))
    }

    /// The password was wrong: the account's failures grow (the attempt stays counted).
    pub async fn failed(&self, db: &Db, attempt: Attempt) -> Result<(), StoreError> {
        store::attempts::count(db, &attempt.account, now_ms(), self.window_ms).await?;
        Ok(())
    }

    /// The attempt succeeded: the pair starts afresh and the address gets its attempt back.
    /// The account's failures stay: they are other people's guesses.
    pub async fn succeeded(&self, db: &Db, attempt: Attempt) -> Result<(), StoreError> {
        store::attempts::forget(db, &attempt.pair).await?;
        store::attempts::redeem(db, &attempt.address).await?;
        Ok(())
    }

    /// The password was right but a second factor is still to come: the pair starts afresh
    /// (its guesses at the code count from here, against the same limit), while the address
    /// keeps this attempt until the sign-in completes.
    pub async fn first_factor_passed(&self, db: &Db, attempt: Attempt) -> Result<(), StoreError> {
        store::attempts::forget(db, &attempt.pair).await?;
        Ok(())
    }

    /// Refuses an address this replica knows to be over its limit (no I/O): the client
    /// authentication path.
    pub fn check(&self, address: IpAddr) -> Result<(), Refused> {
        let Ok(blocked) = self.blocked.read() else { return Ok(()) };
        if blocked.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        match blocked.get(&address_key(address)).filter(|until| **until > now) {
            Some(until) => Err(refused(*until, now)),
            None => Ok(()),
        }
    }

    /// Counts a failed client authentication against its source address only; refused when
    /// the address is past its limit.
    pub async fn client_failed(&self, db: &Db, address: IpAddr) -> Result<Counted, StoreError> {
        let now = now_ms();
        let key = address_key(address);
        let counted = store::attempts::count(db, &key, now, self.window_ms).await?;
        if counted.attempts < self.address_limit {
            return Ok(Counted::Allowed);
        }
        let blocked = self.block(key, counted.window_start, now);
        Ok(if counted.attempts == self.address_limit {
            Counted::Locked(blocked)
        } else {
            Counted::Refused(blocked)
        })
    }

    /// Counts a client registration attempt (RFC 7591) from `address`, in the shared
    /// counters (so the limit holds across replicas); refused past `registration_limit` in
    /// the window. Every attempt counts, accepted or not: each one writes a row or costs a
    /// validation, and a flood of either is what the limit is for.
    pub async fn registration(
        &self,
        db: &Db,
        address: IpAddr,
    ) -> Result<Result<(), Refused>, StoreError> {
        let now = now_ms();
        let key = format!("register:{}", address_key(address));
        let counted = store::attempts::count(db, &key, now, self.window_ms).await?;
        if counted.attempts > self.registration_limit {
            return Ok(Err(refused(counted.window_start + self.window_ms, now)));
        }
        Ok(Ok(()))
    }

    /// Counts a user code typed at `/device` (RFC 8628 §5.1: codes are short, so guessing is
    /// bounded) by the browser session `session_key` from `address`, before it is looked up:
    /// past `account_failure_limit` per session, or `address_failure_limit` per address (the
    /// address's count shared with sign-ins), refused. Every lookup counts, found or not, so
    /// looking up codes of one's own cannot buy more guesses.
    pub async fn user_code(
        &self,
        db: &Db,
        session_key: &str,
        address: IpAddr,
    ) -> Result<Result<(), Refused>, StoreError> {
        let now = now_ms();
        let address_key = address_key(address);
        let counted = store::attempts::count(db, &address_key, now, self.window_ms).await?;
        if counted.attempts > self.address_limit {
            return Ok(Err(self.block(address_key, counted.window_start, now)));
        }
        let key = format!("user_code:{session_key}");
        let counted = store::attempts::count(db, &key, now, self.window_ms).await?;
        if counted.attempts > self.account_limit {
            return Ok(Err(refused(counted.window_start + self.window_ms, now)));
        }
        Ok(Ok(()))
    }

    /// Re-reads which addresses are over their limit (every sync interval).
    pub async fn sync(&self, db: &Db) -> Result<(), StoreError> {
        let now = now_ms();
        let over = store::attempts::over(
            db,
            "address:",
            self.address_limit,
            now,
            self.window_ms,
            MAX_BLOCKED,
        )
        .await?;
        let fresh = over.into_iter().map(|(key, start)| (key, start + self.window_ms)).collect();
        if let Ok(mut blocked) = self.blocked.write() {
            *blocked = fresh;
        }
        Ok(())
    }

    fn block(&self, key: String, window_start: i64, now: i64) -> Refused {
        let until = window_start.saturating_add(self.window_ms);
        if let Ok(mut blocked) = self.blocked.write() {
            blocked.insert(key, until);
        }
        refused(until, now)
    }
}

fn refused(until: i64, now: i64) -> Refused {
    let seconds = (until - now).max(0) as u64 / 1000 + 1;
    Refused { retry_after: Duration::from_secs(seconds) }
}

/// An IPv4 address counts alone (also when seen over IPv6); an IPv6 address counts with its
/// /64, which one subscriber usually holds whole.
fn address_key(address: IpAddr) -> String {
    match address {
        IpAddr::V4(v4) => format!("address:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("address:{v4}"),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("address:{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
