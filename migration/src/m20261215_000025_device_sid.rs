//! Back-channel logout for the device grant (docs/REFERENCE.md §3.6, §3.11): the `sid` of the
//! browser session that approved a device request, carried into the device's ID tokens and
//! refresh family, so that the device is told when that session ends.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("device_authorizations"))
                    .add_column(string_len_null(Alias::new("sid"), 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Alias::new("device_authorizations"))
                    .drop_column(Alias::new("sid"))
                    .to_owned(),
            )
            .await
    }
}
