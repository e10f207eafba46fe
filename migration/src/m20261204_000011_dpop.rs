//! Sender-constrained tokens (RFC 9449):
//! - `clients.dpop_bound_access_tokens` (§5.2: the client always sends a proof);
//! - `authorization_codes.dpop_jkt` (§10: the key the code's tokens must be bound to);
//! - `used_dpop_proofs`: the `jti` of each accepted proof, by key, while the proof could
//!   still be accepted. On Postgres the table is unlogged: it is written once per proof and
//!   only ever needed for a minute, so it skips the write-ahead log (after a crash it starts
//!   empty, which only reopens the window of proofs made in the minute before the crash).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(boolean(Clients::DpopBoundAccessTokens).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationCodes::Table)
                    .add_column(string_len_null(AuthorizationCodes::DpopJkt, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsedDpopProofs::Table)
                    .col(string_len(UsedDpopProofs::Jkt, 64))
                    .col(string_len(UsedDpopProofs::Jti, 256))
                    .col(timestamp_with_time_zone(UsedDpopProofs::ExpiresAt))
                    .primary_key(Index::create().col(UsedDpopProofs::Jkt).col(UsedDpopProofs::Jti))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("used_dpop_proofs_expires_at")
                    .table(UsedDpopProofs::Table)
                    .col(UsedDpopProofs::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm::DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE used_dpop_proofs SET UNLOGGED")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UsedDpopProofs::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationCodes::Table)
                    .drop_column(AuthorizationCodes::DpopJkt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .drop_column(Clients::DpopBoundAccessTokens)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    DpopBoundAccessTokens,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    DpopJkt,
}

#[derive(DeriveIden)]
enum UsedDpopProofs {
    Table,
    Jkt,
    Jti,
    ExpiresAt,
}
