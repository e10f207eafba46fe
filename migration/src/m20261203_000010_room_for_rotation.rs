//! Postgres: room in every page of `refresh_tokens` for the one update each row gets (a
//! rotation marks the presented token used). With it the new row version stays on its page
//! and no index changes (a heap-only tuple: `status` and `used_at` are in no index), instead
//! of a new version elsewhere and an entry in each of the table's three indexes, a write that
//! grows with the table. SQLite updates rows in place and has no such setting.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A tenth of each page left free: a used token's new version takes the space of the old.
const FILLFACTOR: u8 = 90;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_fillfactor(manager, FILLFACTOR).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_fillfactor(manager, 100).await
    }
}

async fn set_fillfactor(manager: &SchemaManager<'_>, fillfactor: u8) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let sql = format!("ALTER TABLE refresh_tokens SET (fillfactor = {fillfactor})");
    manager.get_connection().execute_unprepared(&sql).await.map(|_| ())
}
