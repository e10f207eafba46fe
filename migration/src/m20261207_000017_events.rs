//! The audit trail: `events`, one row per security-relevant change or sign-in outcome, written
//! in the change's own transaction, listed newest first by its time-ordered `id`, and purged
//! after the retention period.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    // Hex of the microsecond timestamp, then random bits: sorts by time.
                    .col(string_len(Events::Id, 32).primary_key())
                    .col(timestamp_with_time_zone(Events::At))
                    .col(string_len(Events::Kind, 64))
                    .col(string_len(Events::Actor, 300))
                    .col(string_len_null(Events::ActorAddress, 64))
                    .col(string_len_null(Events::RequestId, 64))
                    .col(string_len(Events::Subject, 300))
                    .col(string_len(Events::Outcome, 16))
                    .col(text(Events::Detail))
                    .to_owned(),
            )
            .await?;
        // Time ranges and the retention purge; then each filter walking ids newest first.
        for (name, column) in [
            ("events_at", Events::At),
            ("events_kind_id", Events::Kind),
            ("events_actor_id", Events::Actor),
            ("events_subject_id", Events::Subject),
        ] {
            let mut index = Index::create();
            index.name(name).table(Events::Table).col(column);
            if name != "events_at" {
                index.col(Events::Id);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Events::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Events {
    Table,
    Id,
    At,
    Kind,
    Actor,
    ActorAddress,
    RequestId,
    Subject,
    Outcome,
    Detail,
}
