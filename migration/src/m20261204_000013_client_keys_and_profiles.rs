//! Client keys by reference and per-client security choices:
//! - `clients.jwks_uri`: where the client publishes its keys (RFC 7591 §2);
//! - `clients.id_token_signed_response_alg` (OIDC Registration §2), RS256 for every existing
//!   client, as before;
//! - `clients.security_profile`: `fapi2` for a client held to the FAPI 2.0 Security Profile;
//! - `clients.refresh_token_rotation`: whether each refresh replaces the refresh token
//!   (every existing client keeps rotating).
//!
//! One column per statement: SQLite alters one column at a time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            text_null(Clients::JwksUri),
            string_len(Clients::IdTokenSignedResponseAlg, 16).default("RS256").to_owned(),
            string_len_null(Clients::SecurityProfile, 16),
            boolean(Clients::RefreshTokenRotation).default(true).to_owned(),
        ];
        for mut column in columns {
            manager
                .alter_table(
                    Table::alter().table(Clients::Table).add_column(&mut column).to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Clients::JwksUri,
            Clients::IdTokenSignedResponseAlg,
            Clients::SecurityProfile,
            Clients::RefreshTokenRotation,
        ] {
            manager
                .alter_table(Table::alter().table(Clients::Table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    JwksUri,
    IdTokenSignedResponseAlg,
    SecurityProfile,
    RefreshTokenRotation,
}
