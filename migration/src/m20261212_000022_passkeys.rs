//! Passkeys (WebAuthn, docs/REFERENCE.md §3.4, §3.6): each registered credential of a user,
//! found by its credential id at sign-in, with its public key (as the WebAuthn library
//! encodes it), its signature counter and backup flags as the authenticator last reported
//! them, the user handle the authenticator keeps for the user, the name its user gave it;
//! and the challenges already answered, until they expire, so that each is answered once on
//! every replica.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .col(string_len(Passkeys::Id, 36).primary_key())
                    .col(string_len(Passkeys::UserId, 36))
                    .col(blob(Passkeys::CredentialId))
                    .col(blob(Passkeys::UserHandle))
                    .col(string_len(Passkeys::Name, 64))
                    .col(blob(Passkeys::PublicKey))
                    .col(big_integer(Passkeys::SignCount))
                    .col(boolean(Passkeys::UserVerified))
                    .col(boolean(Passkeys::BackupEligible))
                    .col(boolean(Passkeys::BackupState))
                    .col(small_integer(Passkeys::Attachment))
                    .col(timestamp_with_time_zone(Passkeys::CreatedAt))
                    .col(timestamp_with_time_zone_null(Passkeys::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Passkeys::Table, Passkeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_credential_id")
                    .table(Passkeys::Table)
                    .col(Passkeys::CredentialId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_user_id")
                    .table(Passkeys::Table)
                    .col(Passkeys::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsedPasskeyChallenges::Table)
                    .col(blob(UsedPasskeyChallenges::ChallengeHash).primary_key())
                    .col(timestamp_with_time_zone(UsedPasskeyChallenges::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_used_passkey_challenges_expires_at")
                    .table(UsedPasskeyChallenges::Table)
                    .col(UsedPasskeyChallenges::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(UsedPasskeyChallenges::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Passkeys::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialId,
    UserHandle,
    Name,
    PublicKey,
    SignCount,
    UserVerified,
    BackupEligible,
    BackupState,
    Attachment,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum UsedPasskeyChallenges {
    Table,
    ChallengeHash,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
