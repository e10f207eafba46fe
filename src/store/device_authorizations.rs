//! Device authorizations (RFC 8628): stored by the device, decided by the user, polled and
//! redeemed by the device, each step one conditional statement.

use chrono::{DateTime, Utc};
use entity::device_authorization::{self as device, Column};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use super::StoreError;

const PENDING: &str = "pending";
const APPROVED: &str = "approved";
const DENIED: &str = "denied";

/// A new request, as `/device_authorization` stores it.
#[derive(Debug, Clone)]
pub struct NewAuthorization {
    pub device_code_hash: Vec<u8>,
    pub user_code_hash: Vec<u8>,
    pub client_id: String,
    pub scope: String,
    pub interval_secs: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new request; `StoreError::Conflict` if its user code is taken (the caller draws
/// another).
pub async fn insert(db: &impl ConnectionTrait, r: &NewAuthorization) -> Result<(), StoreError> {
    device::Entity::insert(device::ActiveModel {
        device_code_hash: Set(r.device_code_hash.clone()),
        user_code_hash: Set(r.user_code_hash.clone()),
        client_id: Set(r.client_id.clone()),
        scope: Set(r.scope.clone()),
        status: Set(PENDING.to_owned()),
        user_id: Set(None),
        grant_id: Set(None),
        auth_time: Set(None),
        amr: Set(None),
        sid: Set(None),
        decided_at: Set(None),
        interval_secs: Set(r.interval_secs),
        polled_at: Set(None),
        too_fast: Set(false),
        redeemed_by: Set(None),
        created_at: Set(r.created_at),
        expires_at: Set(r.expires_at),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// A request still waiting for its user's decision.
#[derive(Debug, Clone)]
pub struct Pending {
    pub client_id: String,
    pub scope: String,
    pub expires_at: DateTime<Utc>,
}

/// The request a user code stands for, if it is pending and unexpired.
pub async fn find_pending(
    db: &impl ConnectionTrait,
    user_code_hash: &[u8],
    now: DateTime<Utc>,
) -> Result<Option<Pending>, StoreError> {
    let found = device::Entity::find()
        .filter(Column::UserCodeHash.eq(user_code_hash.to_vec()))
        .filter(Column::Status.eq(PENDING))
        .filter(Column::ExpiresAt.gt(now))
        .one(db)
        .await?;
    Ok(found.map(|m| Pending { client_id: m.client_id, scope: m.scope, expires_at: m.expires_at }))
}

/// The user's answer.
pub enum Decision<'a> {
    /// `amr`: how the approving user signed in (`session::Amr::as_stored`); `sid`: the
    /// approving session's.
    Approve {
        user_id: &'a str,
        grant_id: &'a str,
        auth_time: DateTime<Utc>,
        amr: &'a str,
        sid: &'a str,
    },
    Deny,
}

/// Records the user's decision on a pending, unexpired request of `client_id`; `false` when
/// there is none (decided meanwhile, expired): a request is decided once.
pub async fn decide(
    db: &impl ConnectionTrait,
    user_code_hash: &[u8],
    client_id: &str,
    decision: Decision<'_>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut update = device::Entity::update_many().col_expr(Column::DecidedAt, Expr::value(now));
    update = match decision {
        Decision::Approve { user_id, grant_id, auth_time, amr, sid } => update
            .col_expr(Column::Status, Expr::value(APPROVED))
            .col_expr(Column::UserId, Expr::value(user_id))
            .col_expr(Column::GrantId, Expr::value(grant_id))
            .col_expr(Column::AuthTime, Expr::value(auth_time))
            .col_expr(Column::Amr, Expr::value(amr))
            .col_expr(Column::Sid, Expr::value(sid)),
        Decision::Deny => update.col_expr(Column::Status, Expr::value(DENIED)),
    };
    let decided = update
        .filter(Column::UserCodeHash.eq(user_code_hash.to_vec()))
        .filter(Column::ClientId.eq(client_id))
        .filter(Column::Status.eq(PENDING))
        .filter(Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok(decided.rows_affected == 1)
}

/// What a poll found (RFC 8628 §3.5).
#[derive(Debug, Clone)]
pub enum Polled {
    /// No request of this client has this device code.
    Unknown,
    Expired,
    Denied,
    /// Approved, and redeemed by an earlier poll.
    Redeemed,
    /// Still waiting; `too_fast` when the device did not wait its interval.
    Pending {
        too_fast: bool,
    },
    /// Approved, and this poll redeemed it: the tokens are this poll's to issue.
    Approved(Approval),
}

/// What the user approved.
#[derive(Debug, Clone)]
pub struct Approval {
    pub user_id: String,
    pub grant_id: String,
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    /// How the user signed in; `None` for an approval from before this was recorded.
    pub amr: Option<String>,
    /// The approving session's `sid`; `None` for an approval from before it was recorded.
    pub sid: Option<String>,
    pub decided_at: DateTime<Utc>,
}

/// One poll by `client_id`, in one statement: records when it came (a poll sooner than the
/// interval after the last one marks it `too_fast` and adds 5 s to the interval, RFC 8628
/// §3.5), and if the request is approved and unredeemed, unexpired, redeems it for this poll
/// (`poll_id`), so of any number of concurrent polls at any replicas exactly one gets the
/// tokens.
pub async fn poll(
    db: &impl ConnectionTrait,
    device_code_hash: &[u8],
    client_id: &str,
    poll_id: &str,
    now: DateTime<Utc>,
) -> Result<Polled, StoreError> {
    let now_ms = now.timestamp_millis();
    let too_fast = Expr::col(Column::PolledAt).is_not_null().and(
        Expr::col(Column::PolledAt)
            .gt(Expr::val(now_ms).sub(Expr::col(Column::IntervalSecs).mul(1000))),
    );
    let redeemable = Expr::col(Column::Status)
        .eq(APPROVED)
        .and(Expr::col(Column::RedeemedBy).is_null())
        .and(Expr::col(Column::ExpiresAt).gt(now));
    let mut updated = device::Entity::update_many()
        .col_expr(Column::PolledAt, Expr::value(now_ms))
        .col_expr(Column::TooFast, Expr::case(too_fast.clone(), true).finally(false).into())
        .col_expr(
            Column::IntervalSecs,
            Expr::case(too_fast, Expr::col(Column::IntervalSecs).add(5))
                .finally(Expr::col(Column::IntervalSecs))
                .into(),
        )
        .col_expr(
            Column::RedeemedBy,
            Expr::case(redeemable, poll_id).finally(Expr::col(Column::RedeemedBy)).into(),
        )
        .filter(Column::DeviceCodeHash.eq(device_code_hash.to_vec()))
        .filter(Column::ClientId.eq(client_id))
        .exec_with_returning(db)
        .await?;
    let Some(m) = updated.pop() else { return Ok(Polled::Unknown) };
    if m.redeemed_by.as_deref() == Some(poll_id) {
        let (Some(user_id), Some(grant_id), Some(auth_time), Some(decided_at)) =
            (m.user_id, m.grant_id, m.auth_time, m.decided_at)
        else {
            return Err(StoreError::corrupt("an approved device authorization without its user"));
        };
        return Ok(Polled::Approved(Approval {
            user_id,
            grant_id,
            scope: m.scope,
            auth_time,
            amr: m.amr,
            sid: m.sid,
            decided_at,
        }));
    }
    Ok(match m.status.as_str() {
        _ if m.redeemed_by.is_some() => Polled::Redeemed,
        _ if m.expires_at <= now => Polled::Expired,
        DENIED => Polled::Denied,
        PENDING => Polled::Pending { too_fast: m.too_fast },
        APPROVED => Polled::Redeemed,
        other => return Err(StoreError::corrupt(format_args!("device status {other}"))),
    })
}

/// Forgets up to `batch` requests that expired before `before`.
pub async fn purge(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StoreError> {
    super::purge_where::<device::Entity, Vec<u8>>(
        db,
        Column::ExpiresAt.lt(before),
        Column::DeviceCodeHash,
        batch,
    )
    .await
}
