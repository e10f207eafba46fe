//! Clients that register themselves (RFC 7591, RFC 7592):
//! - `clients.registration`: `admin` for every existing client, `dynamic` for one that
//!   registered itself at `/register`;
//! - `clients.registration_token_hash`: the SHA-256 of a dynamic client's registration
//!   access token (RFC 7592 §3), replaced on every update;
//! - `clients.last_used_at`: when a dynamic client last got tokens (its registration time
//!   until then), so that unused ones can expire; with an index for that purge;
//! - `clients.client_uri`: the client's home page (RFC 7591 §2), shown on consent pages;
//! - `initial_access_tokens`: what an administrator hands out to open closed registration,
//!   by hash, with the uses left and the scope ceiling of the clients they register;
//! - `registration_policy`: the policy an administrator set through the admin API (one row;
//!   until it exists, the settings' policy holds).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        let columns = [
            string_len(Clients::Registration, 16).default("admin").to_owned(),
            blob_null(Clients::RegistrationTokenHash),
            timestamp_with_time_zone_null(Clients::LastUsedAt),
            text_null(Clients::ClientUri),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter().table(Clients::Table).add_column(&mut column).to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("clients_registration_last_used_at")
                    .table(Clients::Table)
                    .col(Clients::Registration)
                    .col(Clients::LastUsedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InitialAccessTokens::Table)
                    .col(string_len(InitialAccessTokens::Id, 64).primary_key())
                    .col(blob(InitialAccessTokens::TokenHash).unique_key())
                    .col(text(InitialAccessTokens::Scope))
                    .col(integer(InitialAccessTokens::UsesLeft))
                    .col(integer(InitialAccessTokens::Uses))
                    .col(text(InitialAccessTokens::CreatedBy))
                    .col(timestamp_with_time_zone(InitialAccessTokens::CreatedAt))
                    .col(timestamp_with_time_zone(InitialAccessTokens::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("initial_access_tokens_expires_at")
                    .table(InitialAccessTokens::Table)
                    .col(InitialAccessTokens::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RegistrationPolicy::Table)
                    .col(integer(RegistrationPolicy::Id).primary_key())
                    .col(text(RegistrationPolicy::Policy))
                    .col(text(RegistrationPolicy::UpdatedBy))
                    .col(timestamp_with_time_zone(RegistrationPolicy::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(RegistrationPolicy::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(InitialAccessTokens::Table).to_owned()).await?;
        manager
            .drop_index(
                Index::drop()
                    .name("clients_registration_last_used_at")
                    .table(Clients::Table)
                    .to_owned(),
            )
            .await?;
        for column in [
            Clients::Registration,
            Clients::RegistrationTokenHash,
            Clients::LastUsedAt,
            Clients::ClientUri,
        ] {
            manager
                .alter_table(Table::alter().table(Clients::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    Registration,
    RegistrationTokenHash,
    LastUsedAt,
    ClientUri,
}

#[derive(DeriveIden)]
enum InitialAccessTokens {
    Table,
    Id,
    TokenHash,
    Scope,
    UsesLeft,
    Uses,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RegistrationPolicy {
    Table,
    Id,
    Policy,
    UpdatedBy,
    UpdatedAt,
}
