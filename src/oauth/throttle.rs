//! Brute-force limits (SPEC §9, OWASP ASVS 5.0 V6.3): failed logins and client
//! authentications are counted per account and per source address, in the database every
//! replica shares, and an account or address over its limit is refused with 429 until its
//! window closes.
//!
//! Logins count the attempt before checking the password, so of any number of concurrent
//! attempts at most the limit are ever checked. Client authentications stay off the
//! database when they succeed (the token endpoint's hot path): they consult the accounts
//! and addresses this replica knows to be blocked, re-read every sync interval, and count
//! only failures, each with one atomic upsert, so concurrent failures past the limit are
//! answered 429 rather than 401.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;
use std::time::Duration;

use crate::config::Settings;
use crate::store::{self, Db, StoreError};

/// At most this many blocked keys are loaded per sync.
const MAX_BLOCKED: u64 = 10_000;

/// Who an attempt claims to be.
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    User(&'a str),
    Client(&'a str),
    /// The attempt named no account (only its address counts).
    Unnamed,
}

impl Account<'_> {
    fn key(self) -> Option<String> {
        // Bounded so that a huge username cannot make a huge key.
        let bounded = |v: &str| v.chars().take(64).collect::<String>();
        match self {
            Self::User(name) => Some(format!("user:{}", bounded(name))),
            Self::Client(id) => Some(format!("client:{}", bounded(id))),
            Self::Unnamed => None,
        }
    }
}

/// An attempt refused for being one too many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    /// When the window closes (whole seconds, at least 1).
    pub retry_after: Duration,
}

/// An attempt that may go on to be checked.
#[derive(Debug)]
pub struct Attempt {
    account: Option<String>,
    address: String,
}

pub struct Throttle {
    account_limit: i32,
    address_limit: i32,
    window_ms: i64,
    /// Keys over their limit as this replica last saw them, and when their window closes.
    blocked: RwLock<HashMap<String, i64>>,
}

impl Throttle {
    pub fn new(settings: &Settings) -> Self {
        Self {
            account_limit: i32::try_from(settings.account_failure_limit).unwrap_or(i32::MAX),
            address_limit: i32::try_from(settings.address_failure_limit).unwrap_or(i32::MAX),
            window_ms: i64::try_from(settings.failure_window.as_millis()).unwrap_or(i64::MAX),
            blocked: RwLock::new(HashMap::new()),
        }
    }

    /// Counts a login attempt before its password is checked; refused past either limit.
    pub async fn attempt(
        &self,
        db: &Db,
        account: Account<'_>,
        address: IpAddr,
    ) -> Result<Result<Attempt, Refused>, StoreError> {
        let now = now_ms();
        let address = address_key(address);
        let counted = store::attempts::count(db, &address, now, self.window_ms).await?;
        if counted.attempts > self.address_limit {
            return Ok(Err(self.block(address, counted.window_start, now)));
        }
        let account = account.key();
        if let Some(account) = &account {
            let counted = store::attempts::count(db, account, now, self.window_ms).await?;
            if counted.attempts > self.account_limit {
                return Ok(Err(self.block(account.clone(), counted.window_start, now)));
            }
        }
        Ok(Ok(Attempt { account, address }))
    }

    /// The attempt succeeded: the account starts afresh and the address gets it back.
    pub async fn succeeded(&self, db: &Db, attempt: Attempt) -> Result<(), StoreError> {
        if let Some(account) = &attempt.account {
            store::attempts::forget(db, account).await?;
            if let Ok(mut blocked) = self.blocked.write() {
                blocked.remove(account);
            }
        }
        store::attempts::redeem(db, &attempt.address).await?;
        Ok(())
    }

    /// Refuses an account or address this replica knows to be over its limit (no I/O).
    pub fn check(&self, account: Account<'_>, address: IpAddr) -> Result<(), Refused> {
        let Ok(blocked) = self.blocked.read() else { return Ok(()) };
        if blocked.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        for key in [Some(address_key(address)), account.key()].into_iter().flatten() {
            if let Some(until) = blocked.get(&key).filter(|until| **until > now) {
                return Err(refused(*until, now));
            }
        }
        Ok(())
    }

    /// Counts a failed authentication; refused when it is past either limit.
    pub async fn failed(
        &self,
        db: &Db,
        account: Account<'_>,
        address: IpAddr,
    ) -> Result<Option<Refused>, StoreError> {
        let now = now_ms();
        let mut over = None;
        let keys =
            [(Some(address_key(address)), self.address_limit), (account.key(), self.account_limit)];
        for (key, limit) in keys.into_iter().filter_map(|(k, l)| Some((k?, l))) {
            let counted = store::attempts::count(db, &key, now, self.window_ms).await?;
            if counted.attempts >= limit {
                let blocked = self.block(key, counted.window_start, now);
                if counted.attempts > limit {
                    over = Some(blocked);
                }
            }
        }
        Ok(over)
    }

    /// Re-reads which accounts and addresses are over their limits (every sync interval).
    pub async fn sync(&self, db: &Db) -> Result<(), StoreError> {
        let now = now_ms();
        let mut fresh = HashMap::new();
        for (prefix, limit) in [
            ("address:", self.address_limit),
            ("user:", self.account_limit),
            ("client:", self.account_limit),
        ] {
            let over =
                store::attempts::over(db, prefix, limit, now, self.window_ms, MAX_BLOCKED).await?;
            fresh.extend(over.into_iter().map(|(key, start)| (key, start + self.window_ms)));
        }
        if let Ok(mut blocked) = self.blocked.write() {
            *blocked = fresh;
        }
        Ok(())
    }

    /// Deletes counters whose window has closed, at most `batch`.
    pub async fn purge(&self, db: &Db, batch: u64) -> Result<u64, StoreError> {
        store::attempts::purge(db, now_ms(), self.window_ms, batch).await
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
