//! The device authorization grant (RFC 8628): `device_authorizations`, one row per request a
//! device made at `/device_authorization`, by the SHA-256 of its `device_code` and of its
//! `user_code`, until it expires; the user's decision and the device's polling are recorded
//! on it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DeviceAuthorizations::Table)
                    .col(blob(DeviceAuthorizations::DeviceCodeHash).primary_key())
                    .col(blob(DeviceAuthorizations::UserCodeHash).unique_key())
                    .col(string_len(DeviceAuthorizations::ClientId, 255))
                    .col(text(DeviceAuthorizations::Scope))
                    .col(string_len(DeviceAuthorizations::Status, 16))
                    .col(string_len_null(DeviceAuthorizations::UserId, 64))
                    .col(string_len_null(DeviceAuthorizations::GrantId, 64))
                    .col(timestamp_with_time_zone_null(DeviceAuthorizations::AuthTime))
                    .col(timestamp_with_time_zone_null(DeviceAuthorizations::DecidedAt))
                    .col(integer(DeviceAuthorizations::IntervalSecs))
                    .col(big_integer_null(DeviceAuthorizations::PolledAt))
                    .col(boolean(DeviceAuthorizations::TooFast).default(false))
                    .col(string_len_null(DeviceAuthorizations::RedeemedBy, 64))
                    .col(timestamp_with_time_zone(DeviceAuthorizations::CreatedAt))
                    .col(timestamp_with_time_zone(DeviceAuthorizations::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("device_authorizations_expires_at")
                    .table(DeviceAuthorizations::Table)
                    .col(DeviceAuthorizations::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(DeviceAuthorizations::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum DeviceAuthorizations {
    Table,
    DeviceCodeHash,
    UserCodeHash,
    ClientId,
    Scope,
    Status,
    UserId,
    GrantId,
    AuthTime,
    DecidedAt,
    IntervalSecs,
    PolledAt,
    TooFast,
    RedeemedBy,
    CreatedAt,
    ExpiresAt,
}
