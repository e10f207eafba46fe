//! TOTP as a second factor (RFC 6238, docs/REFERENCE.md §3.4, §3.6): a user's confirmed
//! secret, sealed under the master key and bound to the user's id, with the last time step
//! accepted (so each code is accepted once, by one conditional update); the user's recovery
//! codes, stored as SHA-256 hashes and deleted when used; and how each session and each
//! authorization code's sign-in was made (`amr`, RFC 8176; NULL is a password alone).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserTotp::Table)
                    .col(string_len(UserTotp::UserId, 36).primary_key())
                    .col(blob(UserTotp::SealedSecret))
                    .col(big_integer(UserTotp::LastStep))
                    .col(timestamp_with_time_zone(UserTotp::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(UserTotp::Table, UserTotp::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(blob(RecoveryCodes::CodeHash).primary_key())
                    .col(string_len(RecoveryCodes::UserId, 36))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RecoveryCodes::Table, RecoveryCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user_id")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(string_len_null(Sessions::Amr, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationCodes::Table)
                    .add_column(string_len_null(AuthorizationCodes::Amr, 64))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationCodes::Table)
                    .drop_column(AuthorizationCodes::Amr)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table(Sessions::Table).drop_column(Sessions::Amr).to_owned(),
            )
            .await?;
        manager.drop_table(Table::drop().table(RecoveryCodes::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(UserTotp::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum UserTotp {
    Table,
    UserId,
    SealedSecret,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    CodeHash,
    UserId,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Amr,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    Amr,
}
