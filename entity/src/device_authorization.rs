//! `device_authorizations`: requests of devices without a browser (RFC 8628), by the hashes
//! of their device and user codes, with the user's decision and the device's polling.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device_authorizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false, column_type = "Blob")]
    pub device_code_hash: Vec<u8>,
    #[sea_orm(column_type = "Blob", unique)]
    pub user_code_hash: Vec<u8>,
    pub client_id: String,
    #[sea_orm(column_type = "Text")]
    pub scope: String,
    /// `pending`, `approved` or `denied`.
    pub status: String,
    pub user_id: Option<String>,
    pub grant_id: Option<String>,
    pub auth_time: Option<DateTimeUtc>,
    /// How the approving user signed in (space-separated `amr` values).
    pub amr: Option<String>,
    /// The `sid` of the browser session that approved it (back-channel logout).
    pub sid: Option<String>,
    pub decided_at: Option<DateTimeUtc>,
    /// How long the device must wait between polls (RFC 8628 §3.5: grows on `slow_down`).
    pub interval_secs: i32,
    /// The last poll, in unix milliseconds.
    pub polled_at: Option<i64>,
    /// Whether the last poll came sooner than the interval allowed.
    pub too_fast: bool,
    /// The id of the poll that redeemed the approval (exactly one does).
    pub redeemed_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
