//! Counters of failed authentication attempts, shared by every replica (docs/REFERENCE.md §9).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AttemptCounters::Table)
                    .col(string_len(AttemptCounters::Key, 200).primary_key())
                    .col(big_integer(AttemptCounters::WindowStart))
                    .col(integer(AttemptCounters::Attempts))
                    .to_owned(),
            )
            .await?;
        // Housekeeping and the lock sync scan by window.
        manager
            .create_index(
                Index::create()
                    .name("attempt_counters_window_start")
                    .table(AttemptCounters::Table)
                    .col(AttemptCounters::WindowStart)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(AttemptCounters::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AttemptCounters {
    Table,
    Key,
    WindowStart,
    Attempts,
}
