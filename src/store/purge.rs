//! Deleting what can no longer matter, table by table in bounded batches: the one shape of
//! every purge, and the round that works through a backlog without holding the database.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;

use super::StoreError;

/// Rows one statement deletes at most: small enough that no statement holds a table long.
pub const BATCH: u64 = 1000;

/// A kind of row that expires, and the rule that says when it may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Client-assertion ids past their expiry (a replay of an expired assertion fails anyway).
    UsedAssertions,
    /// DPoP proof ids whose proofs are past the accepted window.
    UsedProofs,
    /// Passkey challenges answered, past their ceremony's expiry.
    UsedPasskeyChallenges,
    Sessions,
    /// Pushed authorization requests past their expiry, never used.
    PushedRequests,
    /// Codes a day past their expiry: kept that long so a late replay is still recognised.
    Codes,
    /// Revocations past the expiry of what they revoke.
    Revocations,
    /// Refresh families past their absolute expiry (their tokens go with them).
    RefreshFamilies,
    /// Refresh tokens past their own expiry: a used one matters only while its signature is
    /// unexpired, which is when a replay of it must be recognised.
    RefreshTokens,
    /// Failure counters whose window has closed.
    AttemptCounters,
    /// Initial access tokens expired or used up.
    InitialAccessTokens,
    /// Device authorizations past their expiry, decided or not.
    DeviceAuthorizations,
    /// Audit events older than the retention period (none when it is zero: kept forever).
    Events,
    /// Hourly token counts older than two days (the dashboard shows one).
    TokenHours,
    /// Which clients a session signed into, once the session is gone without its deletion
    /// having told them (a code issued while its session was being deleted).
    SessionClients,
}

/// How long the kinds kept by a setting rather than their own expiry stay.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// The failure-counting window (`CASTELLAN_FAILURE_WINDOW`).
    pub attempts: Duration,
    /// The audit trail's retention (`CASTELLAN_EVENT_RETENTION`); zero keeps events forever.
    pub events: Duration,
}

impl Expired {
    pub const ALL: [Self; 15] = [
        Self::UsedAssertions,
        Self::UsedProofs,
        Self::UsedPasskeyChallenges,
        Self::Sessions,
        Self::PushedRequests,
        Self::Codes,
        Self::Revocations,
        Self::RefreshFamilies,
        Self::RefreshTokens,
        Self::AttemptCounters,
        Self::InitialAccessTokens,
        Self::DeviceAuthorizations,
        Self::Events,
        Self::TokenHours,
        Self::SessionClients,
    ];

    pub fn table(self) -> &'static str {
        match self {
            Self::UsedAssertions => "used_assertions",
            Self::UsedProofs => "used_dpop_proofs",
            Self::UsedPasskeyChallenges => "used_passkey_challenges",
            Self::Sessions => "sessions",
            Self::PushedRequests => "pushed_requests",
            Self::Codes => "authorization_codes",
            Self::Revocations => "revocations",
            Self::RefreshFamilies => "refresh_families",
            Self::RefreshTokens => "refresh_tokens",
            Self::AttemptCounters => "attempt_counters",
            Self::InitialAccessTokens => "initial_access_tokens",
            Self::DeviceAuthorizations => "device_authorizations",
            Self::Events => "events",
            Self::TokenHours => "token_hours",
            Self::SessionClients => "session_clients",
        }
    }

    /// Deletes up to `batch` rows of this kind that expired before `now`.
    pub async fn purge(
        self,
        db: &impl ConnectionTrait,
        now: DateTime<Utc>,
        windows: Windows,
        batch: u64,
    ) -> Result<u64, StoreError> {
        match self {
            Self::UsedAssertions => super::clients::purge_assertions(db, now, batch).await,
            Self::UsedProofs => super::proofs::purge(db, now, batch).await,
            Self::UsedPasskeyChallenges => super::passkeys::purge_challenges(db, now, batch).await,
            Self::Sessions => super::sessions::purge(db, now, batch).await,
            Self::PushedRequests => super::pushed::purge(db, now, batch).await,
            Self::Codes => super::codes::purge(db, now - chrono::Duration::days(1), batch).await,
            Self::Revocations => super::revocations::purge(db, now, batch).await,
            Self::RefreshFamilies => super::refresh_tokens::purge_families(db, now, batch).await,
            Self::RefreshTokens => super::refresh_tokens::purge_tokens(db, now, batch).await,
            Self::AttemptCounters => {
                let window = i64::try_from(windows.attempts.as_millis()).unwrap_or(i64::MAX);
                super::attempts::purge(db, now.timestamp_millis(), window, batch).await
            }
            Self::InitialAccessTokens => super::registration::purge_tokens(db, now, batch).await,
            Self::DeviceAuthorizations => super::device_authorizations::purge(db, now, batch).await,
            Self::Events => match chrono::Duration::from_std(windows.events) {
                Ok(retention) if !retention.is_zero() => {
                    super::events::purge(db, now - retention, batch).await
                }
                _ => Ok(0),
            },
            Self::TokenHours => {
                let cutoff = now - chrono::Duration::hours(super::token_hours::KEPT_HOURS);
                super::token_hours::purge(db, cutoff, batch).await
            }
            Self::SessionClients => super::backchannel::purge_orphans(db, batch).await,
        }
    }
}

/// One round of housekeeping: a batch of each kind in turn, again and again, dropping a kind
/// once a batch comes back short, until every backlog is gone or `budget` is spent (the next
/// round goes on from there). Turn by turn, so a large backlog of one kind does not starve the
/// others. Returns the rows deleted per kind.
pub async fn round(
    db: &impl ConnectionTrait,
    windows: Windows,
    budget: Duration,
) -> Result<Vec<(Expired, u64)>, StoreError> {
    let deadline = Instant::now() + budget;
    let mut deleted: Vec<(Expired, u64)> = Expired::ALL.iter().map(|&kind| (kind, 0)).collect();
    let mut pending: Vec<Expired> = Expired::ALL.to_vec();
    while !pending.is_empty() {
        let mut still = Vec::with_capacity(pending.len());
        for kind in pending {
            let rows = kind.purge(db, Utc::now(), windows, BATCH).await?;
            if let Some((_, total)) = deleted.iter_mut().find(|(k, _)| *k == kind) {
                *total += rows;
            }
            if rows == BATCH {
                still.push(kind);
            }
            if Instant::now() >= deadline {
                return Ok(deleted);
            }
        }
        pending = still;
    }
    Ok(deleted)
}
