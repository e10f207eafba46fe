//! OpenID Connect Back-Channel Logout 1.0 (docs/REFERENCE.md §3.6): how the logout tokens
//! `store::backchannel` queued when sessions ended are claimed and sent. The loop that runs
//! it is in `startup`, beside the other background loops; this module is given what it needs
//! ([`Deliverer`]), so it depends neither on actix nor on the server's state.
//!
//! Each replica runs one worker: it claims due deliveries with a lease (so no two replicas
//! send one at the same time, and a replica that dies mid-send leaves the row to be sent
//! again when the lease passes: at least once), sends at most [`CONCURRENCY`] at a time
//! through the one outbound client, and on failure tries again after a doubling wait, up to
//! [`MAX_ATTEMPTS`] attempts, then records `logout.delivery_failed` and forgets the row.
//! Nothing of it runs in a user's request: ending a session only inserts rows.

use std::time::Duration;

use chrono::Utc;
use sea_orm::TransactionTrait;
use serde::Serialize;
use serde_json::json;

use super::audit::{self, Actor, Event, EventType};
use super::keyring::Keys;
use super::registry::Registry;
use crate::outbound::Outbound;
use crate::store::{self, Db, StoreError, backchannel::Delivery};

/// Deliveries sent at the same time by one replica.
pub const CONCURRENCY: u64 = 8;
/// Attempts before a delivery is given up (with a 1s base: about an hour and a half).
pub const MAX_ATTEMPTS: i32 = 12;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long a claimed delivery is this replica's: longer than a send can take.
const LEASE: Duration = Duration::from_secs(60);
/// How long a logout token is valid (§2.4 leaves it to the OP; a short time is advised).
const TOKEN_LIFETIME: i64 = 120;
/// Back-Channel Logout §2.4: the one event member a logout token carries.
pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// What claiming and sending deliveries needs, borrowed from the server's state.
pub struct Deliverer<'a> {
    pub db: &'a Db,
    /// Signs the logout tokens, like the clients' ID tokens.
    pub keys: &'a Keys,
    /// Where each delivery's client (and its `backchannel_logout_uri`) is read.
    pub registry: &'a Registry,
    /// The one outgoing HTTP client, which judges the receiver's address at each send.
    pub outbound: &'a Outbound,
    pub issuer: &'a str,
    /// The wait after a first failure (`CASTELLAN_BACKCHANNEL_RETRY_BASE`).
    pub retry_base: Duration,
}

#[derive(Serialize)]
struct LogoutClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
    jti: String,
    events: serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
}

impl Deliverer<'_> {
    /// Claims up to [`CONCURRENCY`] due deliveries, each this replica's for [`LEASE`].
    pub async fn claim(&self) -> Result<Vec<Delivery>, StoreError> {
        let now = Utc::now();
        let lease = chrono::Duration::from_std(LEASE).unwrap_or(chrono::Duration::minutes(1));
        store::backchannel::claim(self.db, now, now + lease, CONCURRENCY).await
    }

    /// One attempt at one delivery, and what follows from its answer.
    pub async fn send(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let client = self.registry.find(self.db, &delivery.client_id).await?;
        // A client deleted, or no longer registering a receiver, is told nothing.
        let Some((client, uri)) =
            client.and_then(|c| c.metadata.backchannel_logout_uri.clone().map(|uri| (c, uri)))
        else {
            return store::backchannel::delete(self.db, delivery.id).await;
        };
        let iat = Utc::now().timestamp();
        // §2.4: iss, aud, iat, exp, jti, events, and sub and/or sid; a nonce MUST NOT be
        // present. `sub` is always there; `sid` whenever the session is known.
        let claims = LogoutClaims {
            iss: self.issuer,
            sub: &delivery.user_id,
            aud: &client.client_id,
            iat,
            exp: iat + TOKEN_LIFETIME,
            jti: uuid::Uuid::new_v4().to_string(),
            events: json!({ EVENT: {} }),
            sid: delivery.sid.as_deref(),
        };
        // §2.4: explicitly typed `logout+jwt` (RFC 8725 §3.11), signed like the client's ID tokens.
        let token = self
            .keys
            .sign(client.metadata.id_token_alg, "logout+jwt", &claims)
            .map_err(|e| StoreError::Other(anyhow::anyhow!("cannot sign a logout token: {e}")))?;
        // §2.5: POSTed as a form with the one parameter `logout_token`; §2.8: the RP answers
        // 200 (or 204) when it logged the session out, anything else is a failure.
        let error = match self.outbound.post_form(&uri, &[("logout_token", &token)]).await {
            Ok(()) => return store::backchannel::delete(self.db, delivery.id).await,
            Err(e) => e.to_string(),
        };
        if delivery.attempts >= MAX_ATTEMPTS {
            let event = Event::new(
                EventType::LogoutDeliveryFailed,
                Actor::system("backchannel_logout"),
                format!("client:{}", client.client_id),
            )
            .failed()
            .with("user", delivery.user_id.clone())
            .with("attempts", delivery.attempts)
            .with("error", error);
            let txn = self.db.begin().await?;
            store::backchannel::delete(&txn, delivery.id).await?;
            audit::record(&txn, &event).await?;
            txn.commit().await?;
            event.log();
            return Ok(());
        }
        let wait = backoff(self.retry_base, delivery.attempts);
        let next =
            Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::minutes(10));
        store::backchannel::retry_at(self.db, delivery.id, next, &error).await
    }
}

/// The wait after the `attempts`-th failure: `base`, doubled at each further failure, at
/// most [`MAX_BACKOFF`].
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(20);
    base.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_the_base_up_to_ten_minutes() {
        let base = Duration::from_secs(1);
        assert_eq!(backoff(base, 1), Duration::from_secs(1));
        assert_eq!(backoff(base, 2), Duration::from_secs(2));
        assert_eq!(backoff(base, 4), Duration::from_secs(8));
        assert_eq!(backoff(base, 11), MAX_BACKOFF);
        assert_eq!(backoff(base, 1000), MAX_BACKOFF);
    }
}
