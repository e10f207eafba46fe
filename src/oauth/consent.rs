//! A user's consent, recorded with its audit event in one transaction: at `/consent` (the
//! grant gains the scopes) and at `/device` (the grant, then the device request's decision).

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;

use super::audit::{self, Event, EventType};
use super::grant::authorization_code::SignedIn;
use super::scope::Scopes;
use super::session::Amr;
use crate::store::device_authorizations::{self, Decision};
use crate::store::grants::{self, GrantRecord};
use crate::store::{self, Db, StoreError};

/// The grant of `user_id` to `client_id` gains `asked`; records `consent.given` by `event`'s
/// actor (its type and subject are set here).
pub async fn give(
    db: &Db,
    user_id: &str,
    client_id: &str,
    asked: &Scopes,
    event: Event,
) -> Result<GrantRecord, StoreError> {
    let txn = db.begin().await?;
    let grant = merge(&txn, user_id, client_id, asked, Utc::now()).await?;
    let event = given(event, &grant, asked);
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(grant)
}

/// A device request decided by the signed-in `user_id` at `/device`: approved (the grant gains `asked`, the
/// request is marked approved) or denied, with `device.approved` / `device.denied`. `false`
/// when the request was no longer pending: nothing changed, nothing recorded.
pub async fn decide_device(
    db: &Db,
    user_code_hash: &[u8],
    client_id: &str,
    user_id: &str,
    // What was asked, when and how the user signed in, and in which session (the device is
    // told when it ends: back-channel logout).
    approve: Option<(&Scopes, DateTime<Utc>, Amr, SignedIn<'_>)>,
    event: Event,
) -> Result<bool, StoreError> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let (decided, event) = match approve {
        Some((asked, auth_time, amr, signed_in)) => {
            let grant = merge(&txn, user_id, client_id, asked, now).await?;
            let stored = amr.as_stored();
            let amr = stored.as_str();
            let sid = signed_in.sid;
            let decision = Decision::Approve { user_id, grant_id: &grant.id, auth_time, amr, sid };
            store::backchannel::record_client(
                &txn,
                signed_in.session_hash,
                client_id,
                user_id,
                sid,
                now,
            )
            .await?;
            let decided =
                device_authorizations::decide(&txn, user_code_hash, client_id, decision, now)
                    .await?;
            let event = Event { kind: EventType::DeviceApproved, ..given(event, &grant, asked) };
            (decided, event)
        }
        None => {
            let decided =
                device_authorizations::decide(&txn, user_code_hash, client_id, Decision::Deny, now)
                    .await?;
            let event =
                Event { kind: EventType::DeviceDenied, ..event }.with("client_id", client_id);
            (decided, event)
        }
    };
    if !decided {
        txn.rollback().await?;
        return Ok(false);
    }
    audit::record(&txn, &event).await?;
    txn.commit().await?;
    event.log();
    Ok(true)
}

/// The scopes held plus `asked`, atomically (concurrent consents lose nothing).
async fn merge(
    txn: &impl sea_orm::ConnectionTrait,
    user_id: &str,
    client_id: &str,
    asked: &Scopes,
    now: DateTime<Utc>,
) -> Result<GrantRecord, StoreError> {
    grants::consent(txn, user_id, client_id, now, |current| {
        let held = Scopes::parse(current.unwrap_or_default()).unwrap_or_default();
        held.union(asked).to_string()
    })
    .await
}

fn given(event: Event, grant: &GrantRecord, asked: &Scopes) -> Event {
    Event { kind: EventType::ConsentGiven, subject: format!("grant:{}", grant.id), ..event }
        .with("client_id", grant.client_id.as_str())
        .with("scope", asked.to_string())
}
