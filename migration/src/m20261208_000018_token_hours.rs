//! `token_hours`: tokens issued per UTC hour, summed over every replica. Each replica counts
//! in memory and adds its counts here once per sync interval (one upsert per hour); the
//! dashboard reads the last 24 hours, and the purge drops rows older than 48.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TokenHours::Table)
                    // The hour's start, UTC: the key every replica's upsert adds to.
                    .col(timestamp_with_time_zone(TokenHours::Hour).primary_key())
                    .col(big_integer(TokenHours::Count))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(TokenHours::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum TokenHours {
    Table,
    Hour,
    Count,
}
