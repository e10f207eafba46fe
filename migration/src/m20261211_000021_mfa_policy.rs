//! How strong a sign-in must be, and how strong it was, where tokens outlive the sign-in:
//! - `users.require_mfa`: this user must sign in with a second factor or a passkey;
//! - `clients.require_mfa`: every sign-in for this client must be that strong;
//! - `refresh_families.amr` and `device_authorizations.amr`: how the user signed in, so an
//!   ID token refreshed later, or issued to a device, says the same as the first one
//!   (NULL: a password alone, as before this column).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for (table, column) in flags() {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(boolean(column).default(false))
                        .to_owned(),
                )
                .await?;
        }
        for (table, column) in amrs() {
            manager
                .alter_table(
                    Table::alter().table(table).add_column(string_len_null(column, 32)).to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in flags().into_iter().chain(amrs()) {
            manager.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

fn flags() -> [(Alias, Alias); 2] {
    [
        (Alias::new("users"), Alias::new("require_mfa")),
        (Alias::new("clients"), Alias::new("require_mfa")),
    ]
}

fn amrs() -> [(Alias, Alias); 2] {
    [
        (Alias::new("refresh_families"), Alias::new("amr")),
        (Alias::new("device_authorizations"), Alias::new("amr")),
    ]
}
