//! Login sessions, consent grants, authorization codes, refresh tokens and revocations
//! (docs/REFERENCE.md §3–§5).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(blob(Sessions::IdHash).primary_key())
                    .col(string_len(Sessions::UserId, 36))
                    .col(timestamp_with_time_zone(Sessions::AuthTime))
                    .col(timestamp_with_time_zone(Sessions::LastSeenAt))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Grants::Table)
                    .col(string_len(Grants::Id, 36).primary_key())
                    .col(string_len(Grants::UserId, 36))
                    .col(string_len(Grants::ClientId, 64))
                    .col(text(Grants::Scope))
                    .col(timestamp_with_time_zone(Grants::CreatedAt))
                    .col(timestamp_with_time_zone(Grants::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Grants::Table, Grants::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Grants::Table, Grants::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("grants_one_per_user_and_client")
                    .table(Grants::Table)
                    .col(Grants::UserId)
                    .col(Grants::ClientId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthorizationCodes::Table)
                    .col(blob(AuthorizationCodes::CodeHash).primary_key())
                    .col(string_len(AuthorizationCodes::ClientId, 64))
                    .col(string_len(AuthorizationCodes::UserId, 36))
                    .col(string_len(AuthorizationCodes::GrantId, 36))
                    .col(text(AuthorizationCodes::RedirectUri))
                    .col(boolean(AuthorizationCodes::RedirectUriSent))
                    .col(string_len(AuthorizationCodes::CodeChallenge, 128))
                    .col(text(AuthorizationCodes::Scope))
                    .col(text_null(AuthorizationCodes::Nonce))
                    .col(timestamp_with_time_zone(AuthorizationCodes::AuthTime))
                    .col(timestamp_with_time_zone(AuthorizationCodes::CreatedAt))
                    .col(timestamp_with_time_zone(AuthorizationCodes::ExpiresAt))
                    .col(timestamp_with_time_zone_null(AuthorizationCodes::RedeemedAt))
                    .col(string_len_null(AuthorizationCodes::FamilyId, 36))
                    .col(string_len_null(AuthorizationCodes::AccessJti, 36))
                    .col(timestamp_with_time_zone_null(AuthorizationCodes::AccessExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(string_len(RefreshTokens::Jti, 36).primary_key())
                    .col(string_len(RefreshTokens::FamilyId, 36))
                    .col(string_len(RefreshTokens::GrantId, 36))
                    .col(string_len(RefreshTokens::ClientId, 64))
                    .col(string_len(RefreshTokens::UserId, 36))
                    .col(text(RefreshTokens::Scope))
                    .col(string_len(RefreshTokens::Status, 16))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::AuthTime))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone(RefreshTokens::AbsoluteExpiresAt))
                    .to_owned(),
            )
            .await?;
        // Revoked access-token ids and token families, kept until what they revoke expires.
        manager
            .create_table(
                Table::create()
                    .table(Revocations::Table)
                    .col(string_len(Revocations::Kind, 16))
                    .col(string_len(Revocations::Value, 64))
                    .col(timestamp_with_time_zone(Revocations::ExpiresAt))
                    .primary_key(Index::create().col(Revocations::Kind).col(Revocations::Value))
                    .to_owned(),
            )
            .await?;
        for (name, table, column) in [
            ("refresh_tokens_by_family", RefreshTokens::Table, RefreshTokens::FamilyId),
            ("refresh_tokens_by_grant", RefreshTokens::Table, RefreshTokens::GrantId),
        ] {
            manager
                .create_index(Index::create().name(name).table(table).col(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Revocations::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            AuthorizationCodes::Table.into_iden(),
            Grants::Table.into_iden(),
            Sessions::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    IdHash,
    UserId,
    AuthTime,
    LastSeenAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Grants {
    Table,
    Id,
    UserId,
    ClientId,
    Scope,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    CodeHash,
    ClientId,
    UserId,
    GrantId,
    RedirectUri,
    RedirectUriSent,
    CodeChallenge,
    Scope,
    Nonce,
    AuthTime,
    CreatedAt,
    ExpiresAt,
    RedeemedAt,
    FamilyId,
    AccessJti,
    AccessExpiresAt,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Kind,
    Value,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Jti,
    FamilyId,
    GrantId,
    ClientId,
    UserId,
    Scope,
    Status,
    UsedAt,
    AuthTime,
    CreatedAt,
    ExpiresAt,
    AbsoluteExpiresAt,
}
