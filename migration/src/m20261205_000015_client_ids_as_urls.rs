//! Client ids up to 255 characters, for clients identified by the URL of their metadata
//! document (draft-ietf-oauth-client-id-metadata-document): every column that holds a client
//! id (and the revocation log's value, which names clients too) grows from 64 to 255. On
//! Postgres widening a `varchar` changes only the catalogue, whatever the table's size;
//! SQLite never enforced the length.

use sea_orm::DbBackend;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const COLUMNS: [(&str, &str); 9] = [
    ("clients", "client_id"),
    ("client_scopes", "client_id"),
    ("client_secrets", "client_id"),
    ("used_assertions", "client_id"),
    ("grants", "client_id"),
    ("authorization_codes", "client_id"),
    ("refresh_families", "client_id"),
    ("pushed_requests", "client_id"),
    ("revocations", "value"),
];

async fn set_length(manager: &SchemaManager<'_>, length: u32) -> Result<(), DbErr> {
    if manager.get_database_backend() != DbBackend::Postgres {
        return Ok(());
    }
    let db = manager.get_connection();
    for (table, column) in COLUMNS {
        db.execute_unprepared(&format!(
            "ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar({length})"
        ))
        .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 255).await
    }

    /// Fails while a longer id is stored: delete those clients first.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 64).await
    }
}
