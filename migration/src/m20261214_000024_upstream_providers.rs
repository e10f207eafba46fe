//! Upstream identity providers (docs/REFERENCE.md §3.14): the OpenID providers users may sign
//! in through, with their client secret sealed under the master key; and the links between a
//! user and an identity at such a provider, keyed by (issuer, subject) — the pair OpenID
//! Connect Core §5.7 says is the only stable identifier of an end-user (never the email).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UpstreamProviders::Table)
                    .col(string_len(UpstreamProviders::Id, 32).primary_key())
                    .col(string_len(UpstreamProviders::Name, 64))
                    .col(text(UpstreamProviders::Issuer))
                    .col(text(UpstreamProviders::ClientId))
                    .col(text(UpstreamProviders::ClientSecret))
                    .col(text(UpstreamProviders::Scope))
                    .col(text(UpstreamProviders::ClaimMapping))
                    .col(boolean(UpstreamProviders::CreateUsers))
                    .col(boolean(UpstreamProviders::TrustMfa))
                    .col(timestamp_with_time_zone(UpstreamProviders::CreatedAt))
                    .col(timestamp_with_time_zone(UpstreamProviders::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserIdentities::Table)
                    .col(text(UserIdentities::Issuer))
                    .col(text(UserIdentities::Subject))
                    .col(string_len(UserIdentities::UserId, 36))
                    .col(timestamp_with_time_zone(UserIdentities::CreatedAt))
                    .col(timestamp_with_time_zone(UserIdentities::LastUsedAt))
                    .primary_key(
                        Index::create().col(UserIdentities::Issuer).col(UserIdentities::Subject),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(UserIdentities::Table, UserIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_user_identities_user_id")
                    .table(UserIdentities::Table)
                    .col(UserIdentities::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UserIdentities::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(UpstreamProviders::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum UpstreamProviders {
    Table,
    Id,
    Name,
    Issuer,
    ClientId,
    ClientSecret,
    Scope,
    ClaimMapping,
    CreateUsers,
    TrustMfa,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum UserIdentities {
    Table,
    Issuer,
    Subject,
    UserId,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
