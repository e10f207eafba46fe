//! Indexes for what runs against large tables: every purge finds its expired rows by an
//! index instead of scanning the table, and ending a user's sessions or revoking the
//! refresh families of a grant, user or client finds them by an index too.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index, table, column)
const INDEXES: [(&str, &str, &str); 7] = [
    ("sessions_by_expiry", "sessions", "expires_at"),
    ("sessions_by_user", "sessions", "user_id"),
    ("authorization_codes_by_expiry", "authorization_codes", "expires_at"),
    ("used_assertions_by_expiry", "used_assertions", "expires_at"),
    ("refresh_tokens_by_expiry", "refresh_tokens", "expires_at"),
    ("refresh_families_by_grant", "refresh_families", "grant_id"),
    ("refresh_families_by_client", "refresh_families", "client_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Alias::new(table))
                        .col(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
