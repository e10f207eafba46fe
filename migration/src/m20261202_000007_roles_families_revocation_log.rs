//! Administrators, refresh-token families and the revocation log:
//! - `users.admin` (who may hold the `admin` scope) and `users.tokens_not_before` (a cut-off:
//!   the user's tokens issued before it stay dead, even after re-enabling);
//! - `clients.served_resources` (the APIs a client runs, for introspection);
//! - `authorization_codes.replayed_at` (a replay seen, so a late first redemption issues no
//!   refresh family);
//! - `refresh_families`: what every refresh token of one authorization shares, and its
//!   revocation; rotation and revocation serialize on this row. `refresh_tokens` keeps only
//!   the per-token state and moves to it (existing tokens are carried over);
//! - `revocations` becomes an append-only log with a sequence number, which every replica
//!   follows to keep the revoked ids in memory (existing rows are carried over).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(boolean(Users::Admin).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(timestamp_with_time_zone_null(Users::TokensNotBefore))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Clients::Table)
                    .add_column(text(Clients::ServedResources).default("[]"))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuthorizationCodes::Table)
                    .add_column(timestamp_with_time_zone_null(AuthorizationCodes::ReplayedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshFamilies::Table)
                    .col(string_len(RefreshFamilies::Id, 36).primary_key())
                    .col(string_len(RefreshFamilies::GrantId, 36))
                    .col(string_len(RefreshFamilies::ClientId, 64))
                    .col(string_len(RefreshFamilies::UserId, 36))
                    .col(text(RefreshFamilies::Scope))
                    .col(timestamp_with_time_zone(RefreshFamilies::AuthTime))
                    .col(timestamp_with_time_zone(RefreshFamilies::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshFamilies::AbsoluteExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshFamilies::RevokedAt))
                    .to_owned(),
            )
            .await?;
        // Every token of a family shares these; a family with a revoked token was revoked.
        db.execute_unprepared(
            "INSERT INTO refresh_families (id, grant_id, client_id, user_id, scope, auth_time, \
             created_at, absolute_expires_at, revoked_at) \
             SELECT family_id, MIN(grant_id), MIN(client_id), MIN(user_id), MIN(scope), \
             MIN(auth_time), MIN(created_at), MIN(absolute_expires_at), \
             CASE WHEN SUM(CASE WHEN status = 'revoked' THEN 1 ELSE 0 END) > 0 \
             THEN MIN(created_at) END \
             FROM refresh_tokens GROUP BY family_id",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE refresh_families SET revoked_at = created_at WHERE revoked_at IS NULL \
             AND id IN (SELECT value FROM revocations WHERE kind = 'family')",
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokensNext::Table)
                    .col(string_len(RefreshTokens::Jti, 36).primary_key())
                    .col(string_len(RefreshTokens::FamilyId, 36))
                    .col(string_len(RefreshTokens::Status, 16))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("refresh_tokens_family")
                            .from(RefreshTokensNext::Table, RefreshTokens::FamilyId)
                            .to(RefreshFamilies::Table, RefreshFamilies::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO refresh_tokens_next (jti, family_id, status, used_at, created_at, \
             expires_at) SELECT jti, family_id, status, used_at, created_at, expires_at \
             FROM refresh_tokens",
        )
        .await?;
        manager.drop_table(Table::drop().table(RefreshTokens::Table).to_owned()).await?;
        manager
            .rename_table(
                Table::rename().table(RefreshTokensNext::Table, RefreshTokens::Table).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RevocationsNext::Table)
                    .col(big_integer(Revocations::Seq).auto_increment().primary_key())
                    .col(string_len(Revocations::Kind, 16))
                    .col(string_len(Revocations::Value, 64))
                    .col(timestamp_with_time_zone_null(Revocations::NotBefore))
                    .col(timestamp_with_time_zone(Revocations::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO revocations_next (kind, value, expires_at) \
             SELECT kind, value, expires_at FROM revocations",
        )
        .await?;
        manager.drop_table(Table::drop().table(Revocations::Table).to_owned()).await?;
        manager
            .rename_table(
                Table::rename().table(RevocationsNext::Table, Revocations::Table).to_owned(),
            )
            .await?;

        for (name, table, column) in [
            (
                "refresh_tokens_by_family",
                RefreshTokens::Table.into_iden(),
                RefreshTokens::FamilyId.into_iden(),
            ),
            (
                "refresh_families_by_expiry",
                RefreshFamilies::Table.into_iden(),
                RefreshFamilies::AbsoluteExpiresAt.into_iden(),
            ),
            (
                "refresh_families_by_user",
                RefreshFamilies::Table.into_iden(),
                RefreshFamilies::UserId.into_iden(),
            ),
            (
                "revocations_by_expiry",
                Revocations::Table.into_iden(),
                Revocations::ExpiresAt.into_iden(),
            ),
        ] {
            manager
                .create_index(Index::create().name(name).table(table).col(column).to_owned())
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        manager
            .create_table(
                Table::create()
                    .table(RevocationsNext::Table)
                    .col(string_len(Revocations::Kind, 16))
                    .col(string_len(Revocations::Value, 64))
                    .col(timestamp_with_time_zone(Revocations::ExpiresAt))
                    .primary_key(Index::create().col(Revocations::Kind).col(Revocations::Value))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO revocations_next (kind, value, expires_at) SELECT kind, value, \
             MAX(expires_at) FROM revocations WHERE kind IN ('jti', 'family') \
             GROUP BY kind, value",
        )
        .await?;
        manager.drop_table(Table::drop().table(Revocations::Table).to_owned()).await?;
        manager
            .rename_table(
                Table::rename().table(RevocationsNext::Table, Revocations::Table).to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RefreshTokensNext::Table)
                    .col(string_len(RefreshTokens::Jti, 36).primary_key())
                    .col(string_len(RefreshTokens::FamilyId, 36))
                    .col(string_len(RefreshFamilies::GrantId, 36))
                    .col(string_len(RefreshFamilies::ClientId, 64))
                    .col(string_len(RefreshFamilies::UserId, 36))
                    .col(text(RefreshFamilies::Scope))
                    .col(string_len(RefreshTokens::Status, 16))
                    .col(timestamp_with_time_zone_null(RefreshTokens::UsedAt))
                    .col(timestamp_with_time_zone(RefreshFamilies::AuthTime))
                    .col(timestamp_with_time_zone(RefreshTokens::CreatedAt))
                    .col(timestamp_with_time_zone(RefreshTokens::ExpiresAt))
                    .col(timestamp_with_time_zone(RefreshFamilies::AbsoluteExpiresAt))
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "INSERT INTO refresh_tokens_next (jti, family_id, grant_id, client_id, user_id, \
             scope, status, used_at, auth_time, created_at, expires_at, absolute_expires_at) \
             SELECT t.jti, t.family_id, f.grant_id, f.client_id, f.user_id, f.scope, \
             CASE WHEN f.revoked_at IS NULL THEN t.status ELSE 'revoked' END, t.used_at, \
             f.auth_time, t.created_at, t.expires_at, f.absolute_expires_at \
             FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id",
        )
        .await?;
        manager.drop_table(Table::drop().table(RefreshTokens::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RefreshFamilies::Table).to_owned()).await?;
        manager
            .rename_table(
                Table::rename().table(RefreshTokensNext::Table, RefreshTokens::Table).to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("refresh_tokens_by_family")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::FamilyId)
                    .to_owned(),
            )
            .await?;
        for (table, column) in [
            (AuthorizationCodes::Table.into_iden(), AuthorizationCodes::ReplayedAt.into_iden()),
            (Clients::Table.into_iden(), Clients::ServedResources.into_iden()),
            (Users::Table.into_iden(), Users::TokensNotBefore.into_iden()),
            (Users::Table.into_iden(), Users::Admin.into_iden()),
        ] {
            manager.alter_table(Table::alter().table(table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Admin,
    TokensNotBefore,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ServedResources,
}

#[derive(DeriveIden)]
enum AuthorizationCodes {
    Table,
    ReplayedAt,
}

#[derive(DeriveIden)]
enum RefreshFamilies {
    Table,
    Id,
    GrantId,
    ClientId,
    UserId,
    Scope,
    AuthTime,
    CreatedAt,
    AbsoluteExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    Jti,
    FamilyId,
    Status,
    UsedAt,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RefreshTokensNext {
    Table,
}

#[derive(DeriveIden)]
enum Revocations {
    Table,
    Seq,
    Kind,
    Value,
    NotBefore,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum RevocationsNext {
    Table,
}
