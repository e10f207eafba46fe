//! The key ring table: signing keys with their life-cycle state (docs/REFERENCE.md §7).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .col(string_len(SigningKeys::Kid, 64).primary_key())
                    .col(string_len(SigningKeys::Alg, 16))
                    .col(string_len(SigningKeys::State, 16))
                    .col(text(SigningKeys::PublicJwk))
                    .col(blob(SigningKeys::PrivateKey))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::ActivatedAt))
                    .col(timestamp_with_time_zone_null(SigningKeys::RetiredAt))
                    .to_owned(),
            )
            .await?;
        // At most one `next` and one `active` key per algorithm, whichever replica
        // writes: a partial unique index, which both SQLite and Postgres enforce.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX signing_keys_one_live_per_state \
                 ON signing_keys (alg, state) WHERE state <> 'retired'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SigningKeys::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Alg,
    State,
    PublicJwk,
    PrivateKey,
    CreatedAt,
    ActivatedAt,
    RetiredAt,
}
