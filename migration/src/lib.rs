//! Schema migrations, one module per change, applied in order at start-up and by `castellan migrate`.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_signing_keys;
mod m20261127_000002_clients_and_scopes;
mod m20261127_000003_users;
mod m20261127_000004_sessions_grants_codes;
mod m20261128_000005_access_token_alg;
mod m20261128_000006_attempt_counters;
mod m20261202_000007_roles_families_revocation_log;
mod m20261203_000008_change_notifications;
mod m20261203_000009_indexes_for_scale;
mod m20261203_000010_room_for_rotation;
mod m20261204_000011_dpop;
mod m20261204_000012_pushed_requests;
mod m20261204_000013_client_keys_and_profiles;
mod m20261205_000014_dynamic_registration;
mod m20261205_000015_client_ids_as_urls;
mod m20261206_000016_device_authorizations;
mod m20261207_000017_events;
mod m20261208_000018_token_hours;
mod m20261209_000019_session_devices;
mod m20261210_000020_totp;
mod m20261211_000021_mfa_policy;
mod m20261212_000022_passkeys;
mod m20261213_000023_backchannel_logout;
mod m20261214_000024_upstream_providers;
mod m20261215_000025_device_sid;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_signing_keys::Migration),
            Box::new(m20261127_000002_clients_and_scopes::Migration),
            Box::new(m20261127_000003_users::Migration),
            Box::new(m20261127_000004_sessions_grants_codes::Migration),
            Box::new(m20261128_000005_access_token_alg::Migration),
            Box::new(m20261128_000006_attempt_counters::Migration),
            Box::new(m20261202_000007_roles_families_revocation_log::Migration),
            Box::new(m20261203_000008_change_notifications::Migration),
            Box::new(m20261203_000009_indexes_for_scale::Migration),
            Box::new(m20261203_000010_room_for_rotation::Migration),
            Box::new(m20261204_000011_dpop::Migration),
            Box::new(m20261204_000012_pushed_requests::Migration),
            Box::new(m20261204_000013_client_keys_and_profiles::Migration),
            Box::new(m20261205_000014_dynamic_registration::Migration),
            Box::new(m20261205_000015_client_ids_as_urls::Migration),
            Box::new(m20261206_000016_device_authorizations::Migration),
            Box::new(m20261207_000017_events::Migration),
            Box::new(m20261208_000018_token_hours::Migration),
            Box::new(m20261209_000019_session_devices::Migration),
            Box::new(m20261210_000020_totp::Migration),
            Box::new(m20261211_000021_mfa_policy::Migration),
            Box::new(m20261212_000022_passkeys::Migration),
            Box::new(m20261213_000023_backchannel_logout::Migration),
            Box::new(m20261214_000024_upstream_providers::Migration),
            Box::new(m20261215_000025_device_sid::Migration),
        ]
    }
}
