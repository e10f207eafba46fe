//! Pushed authorization requests (RFC 9126):
//! - `pushed_requests`: each request a client pushed, by the SHA-256 of its `request_uri`,
//!   with its parameters, until it is used (deleted) or expires;
//! - `clients.require_pushed_authorization_requests` (RFC 9126 §6).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PushedRequests::Table)
                    .col(blob(PushedRequests::UriHash).primary_key())
                    .col(string_len(PushedRequests::ClientId, 64))
                    .col(text(PushedRequests::Parameters))
                    .col(timestamp_with_time_zone(PushedRequests::CreatedAt))
                    .col(timestamp_with_time_zone(PushedRequests::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("pushed_requests_expires_at")
                    .table(PushedRequests::Table)
                    .col(PushedRequests::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(boolean(Clients::RequirePushedAuthorizationRequests).default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::RequirePushedAuthorizationRequests)
                    .to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(PushedRequests::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum PushedRequests {
    Table,
    UriHash,
    ClientId,
    Parameters,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    RequirePushedAuthorizationRequests,
}
