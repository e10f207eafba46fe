//! On Postgres, every write to the revocation log (revocations and client changes) and to the
//! key ring sends a `NOTIFY castellan_changes` with the table's name as payload, delivered at
//! commit. Replicas `LISTEN` and apply the change within milliseconds instead of at their
//! next sync; the periodic re-read stays as the fallback (and is all SQLite has). A trigger,
//! not application code, so that every writer (the CLI too) notifies.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE OR REPLACE FUNCTION castellan_notify_change() RETURNS trigger AS $$ \
             BEGIN PERFORM pg_notify('castellan_changes', TG_TABLE_NAME); RETURN NULL; END; \
             $$ LANGUAGE plpgsql",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER revocations_notify AFTER INSERT ON revocations \
             FOR EACH STATEMENT EXECUTE FUNCTION castellan_notify_change()",
        )
        .await?;
        db.execute_unprepared(
            "CREATE TRIGGER signing_keys_notify AFTER INSERT OR UPDATE ON signing_keys \
             FOR EACH STATEMENT EXECUTE FUNCTION castellan_notify_change()",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("DROP TRIGGER IF EXISTS signing_keys_notify ON signing_keys").await?;
        db.execute_unprepared("DROP TRIGGER IF EXISTS revocations_notify ON revocations").await?;
        db.execute_unprepared("DROP FUNCTION IF EXISTS castellan_notify_change()").await?;
        Ok(())
    }
}
