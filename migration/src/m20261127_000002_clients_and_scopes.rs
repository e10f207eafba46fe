//! Scopes, clients (RFC 7591 metadata), their secrets and allowed scopes, and the replay
//! guard for client assertions (docs/REFERENCE.md §5).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The scopes that exist from the start (docs/REFERENCE.md §5).
const SEEDED_SCOPES: [(&str, &str); 5] = [
    ("openid", "Sign you in and share your user identifier"),
    ("profile", "Your name and basic profile information"),
    ("email", "Your email address"),
    ("offline_access", "Stay connected when you are not using the application"),
    ("admin", "Administer Castellan: clients, scopes, users and keys"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Scopes::Table)
                    .col(string_len(Scopes::Name, 128).primary_key())
                    .col(text(Scopes::Description))
                    .col(timestamp_with_time_zone(Scopes::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Clients::Table)
                    .col(string_len(Clients::ClientId, 64).primary_key())
                    .col(text(Clients::ClientName))
                    .col(text(Clients::RedirectUris))
                    .col(text(Clients::GrantTypes))
                    .col(text(Clients::ResponseTypes))
                    .col(string_len(Clients::TokenEndpointAuthMethod, 32))
                    .col(text_null(Clients::Jwks))
                    .col(text(Clients::PostLogoutRedirectUris))
                    .col(text(Clients::Audience))
                    .col(integer_null(Clients::AccessTokenLifetime))
                    .col(integer_null(Clients::IdTokenLifetime))
                    .col(integer_null(Clients::RefreshTokenLifetime))
                    .col(integer_null(Clients::RefreshTokenAbsoluteLifetime))
                    .col(integer_null(Clients::AuthorizationCodeLifetime))
                    .col(timestamp_with_time_zone(Clients::CreatedAt))
                    .col(timestamp_with_time_zone(Clients::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClientScopes::Table)
                    .col(string_len(ClientScopes::ClientId, 64))
                    .col(string_len(ClientScopes::Scope, 128))
                    .col(integer(ClientScopes::Position))
                    .primary_key(
                        Index::create().col(ClientScopes::ClientId).col(ClientScopes::Scope),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ClientScopes::Table, ClientScopes::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    // A scope in use cannot be deleted from under its clients.
                    .foreign_key(
                        ForeignKey::create()
                            .from(ClientScopes::Table, ClientScopes::Scope)
                            .to(Scopes::Table, Scopes::Name)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClientSecrets::Table)
                    .col(string_len(ClientSecrets::Id, 36).primary_key())
                    .col(string_len(ClientSecrets::ClientId, 64))
                    .col(blob(ClientSecrets::SecretHash))
                    .col(timestamp_with_time_zone(ClientSecrets::CreatedAt))
                    .col(timestamp_with_time_zone_null(ClientSecrets::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(ClientSecrets::Table, ClientSecrets::ClientId)
                            .to(Clients::Table, Clients::ClientId)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("client_secrets_by_client")
                    .table(ClientSecrets::Table)
                    .col(ClientSecrets::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsedAssertions::Table)
                    .col(string_len(UsedAssertions::ClientId, 64))
                    .col(string_len(UsedAssertions::Jti, 256))
                    .col(timestamp_with_time_zone(UsedAssertions::ExpiresAt))
                    .primary_key(
                        Index::create().col(UsedAssertions::ClientId).col(UsedAssertions::Jti),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BootstrapMarkers::Table)
                    .col(string_len(BootstrapMarkers::Name, 64).primary_key())
                    .col(timestamp_with_time_zone(BootstrapMarkers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        let now = chrono::Utc::now();
        let mut seed = Query::insert();
        seed.into_table(Scopes::Table).columns([
            Scopes::Name,
            Scopes::Description,
            Scopes::CreatedAt,
        ]);
        for (name, description) in SEEDED_SCOPES {
            seed.values([name.into(), description.into(), now.into()])
                .map_err(|e| DbErr::Custom(e.to_string()))?;
        }
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            BootstrapMarkers::Table.into_iden(),
            UsedAssertions::Table.into_iden(),
            ClientSecrets::Table.into_iden(),
            ClientScopes::Table.into_iden(),
            Clients::Table.into_iden(),
            Scopes::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Scopes {
    Table,
    Name,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Clients {
    Table,
    ClientId,
    ClientName,
    RedirectUris,
    GrantTypes,
    ResponseTypes,
    TokenEndpointAuthMethod,
    Jwks,
    PostLogoutRedirectUris,
    Audience,
    AccessTokenLifetime,
    IdTokenLifetime,
    RefreshTokenLifetime,
    RefreshTokenAbsoluteLifetime,
    AuthorizationCodeLifetime,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ClientScopes {
    Table,
    ClientId,
    Scope,
    Position,
}

#[derive(DeriveIden)]
enum ClientSecrets {
    Table,
    Id,
    ClientId,
    SecretHash,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum UsedAssertions {
    Table,
    ClientId,
    Jti,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum BootstrapMarkers {
    Table,
    Name,
    CreatedAt,
}
