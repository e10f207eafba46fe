//! OpenID Connect Back-Channel Logout 1.0:
//! - `clients.backchannel_logout_uri` and `clients.backchannel_logout_session_required`
//!   (the client's registered receiver, §2.2);
//! - `authorization_codes.sid` and `refresh_families.sid`: the session's `sid` claim, so the
//!   ID tokens of one sign-in carry the same `sid` (NULL: issued before this column);
//! - `session_clients`: which clients each session signed into (one row per session and
//!   client, written when a code is issued), read once when the session ends;
//! - `logout_deliveries`: the queue of logout tokens still to be sent, retried with backoff
//!   by a background worker (`oauth::backchannel`); a sent or abandoned row is deleted.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        let clients = Alias::new("clients");
        manager
            .alter_table(
                Table::alter()
                    .table(clients.clone())
                    .add_column(text_null(Alias::new("backchannel_logout_uri")))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(clients)
                    .add_column(
                        boolean(Alias::new("backchannel_logout_session_required")).default(false),
                    )
                    .to_owned(),
            )
            .await?;
        for table in ["authorization_codes", "refresh_families"] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .add_column(string_len_null(Alias::new("sid"), 64))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SessionClients::Table)
                    .col(blob(SessionClients::SessionHash))
                    .col(string_len(SessionClients::ClientId, 255))
                    .col(string_len(SessionClients::UserId, 64))
                    .col(string_len(SessionClients::Sid, 64))
                    .col(timestamp_with_time_zone(SessionClients::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(SessionClients::SessionHash)
                            .col(SessionClients::ClientId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_session_clients_user")
                    .table(SessionClients::Table)
                    .col(SessionClients::UserId)
                    .col(SessionClients::ClientId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(LogoutDeliveries::Table)
                    .col(big_pk_auto(LogoutDeliveries::Id))
                    .col(string_len(LogoutDeliveries::ClientId, 255))
                    .col(string_len(LogoutDeliveries::UserId, 64))
                    .col(string_len_null(LogoutDeliveries::Sid, 64))
                    .col(integer(LogoutDeliveries::Attempts).default(0))
                    .col(timestamp_with_time_zone(LogoutDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone(LogoutDeliveries::CreatedAt))
                    .col(string_len_null(LogoutDeliveries::LastError, 200))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_logout_deliveries_due")
                    .table(LogoutDeliveries::Table)
                    .col(LogoutDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(LogoutDeliveries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(SessionClients::Table).to_owned()).await?;
        for (table, column) in [
            ("refresh_families", "sid"),
            ("authorization_codes", "sid"),
            ("clients", "backchannel_logout_session_required"),
            ("clients", "backchannel_logout_uri"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Alias::new(table))
                        .drop_column(Alias::new(column))
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum SessionClients {
    Table,
    SessionHash,
    ClientId,
    UserId,
    Sid,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LogoutDeliveries {
    Table,
    Id,
    ClientId,
    UserId,
    Sid,
    Attempts,
    NextAttemptAt,
    CreatedAt,
    LastError,
}
