//! The command line: settings as flags (each with its environment variable) and commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::config::{
    Brand, Colour, Issuer, LogFormat, RegistrationMode, Settings, SettingsError, parse_duration,
};
use crate::oauth::client_metadata;
use crate::oauth::keyring::{self, KeyError, Keys};
use crate::oauth::master_key::MasterKey;
use crate::oauth::registry::{self, Credentials, Registry};
use crate::oauth::revocation::Revocations;
use crate::startup::Application;
use crate::{store, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "castellan",
    version,
    about = "An OAuth 2.1 / OpenID Connect authorization server"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingsArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage the signing key ring.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// Manage clients.
    Clients {
        #[command(subcommand)]
        action: ClientsCommand,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Manage upstream identity providers users may sign in through.
    Upstream {
        #[command(subcommand)]
        action: UpstreamCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UpstreamCommand {
    /// Add an OpenID provider; its client secret is read from the first line of stdin (never
    /// a flag). Prints the provider as JSON, with the redirect URI to register there.
    Add {
        /// The provider's id here: 1 to 32 lowercase letters, digits or '-'.
        #[arg(long)]
        id: String,
        /// Shown on the login button: "Sign in with NAME".
        #[arg(long)]
        name: String,
        /// The provider's issuer (its discovery document is at ISSUER/.well-known/…).
        /// Not `--issuer`: that global flag is this server's own.
        #[arg(long)]
        provider_issuer: String,
        #[arg(long)]
        client_id: String,
        /// Space-separated scopes to ask for (default "openid email profile").
        #[arg(long)]
        scope: Option<String>,
        /// Which claim fills a profile field, as FIELD=CLAIM (repeatable; fields: username,
        /// email, name).
        #[arg(long = "map")]
        mappings: Vec<String>,
        /// A first sign-in that no account is linked to creates one.
        #[arg(long)]
        create_users: bool,
        /// The provider's `amr` saying `mfa` counts as a second factor here.
        #[arg(long)]
        trust_mfa: bool,
    },
    /// List the providers as JSON.
    List,
    /// Remove a provider (the identities linked through it stay linked).
    Remove {
        #[arg(long)]
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from the first line of stdin (never a flag, so it
    /// stays out of the process list). Prints the user as JSON.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        email_verified: bool,
        #[arg(long)]
        name: Option<String>,
        /// An administrator: may be granted the `admin` scope (the admin API).
        #[arg(long)]
        admin: bool,
        /// Must sign in with a second factor or a passkey.
        #[arg(long)]
        require_mfa: bool,
    },
    /// End every session of a user and cut off every token issued to them so far.
    EndSessions {
        #[arg(long)]
        id: String,
    },
    /// Print the sign-in methods a user has set up, as JSON.
    Methods {
        #[arg(long)]
        id: String,
    },
    /// Turn a user's authenticator app off (a lost phone), with its recovery codes.
    ResetTotp {
        #[arg(long)]
        id: String,
    },
    /// Remove one of a user's passkeys (a lost device); `users methods` lists their ids.
    RemovePasskey {
        #[arg(long)]
        id: String,
        #[arg(long)]
        passkey: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints {"client_id", "client_secret"} as one JSON object on stdout.
    Create(CreateClient),
}

#[derive(Debug, Args)]
pub struct CreateClient {
    /// An admin client: client_credentials with the `admin` scope.
    #[arg(long)]
    admin: bool,
    /// Display name
    #[arg(long)]
    name: Option<String>,
    /// Grant type (repeatable): authorization_code, client_credentials, refresh_token
    #[arg(long = "grant-type")]
    grant_types: Vec<String>,
    /// Space-separated scopes the client may be granted
    #[arg(long)]
    scope: Option<String>,
    /// client_secret_basic (default), client_secret_post, private_key_jwt or none
    #[arg(long)]
    auth_method: Option<String>,
    /// Redirect URI (repeatable)
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Allowed resource indicator (repeatable)
    #[arg(long)]
    audience: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Activate the next key, retire the active one, create a new next key.
    Rotate {
        /// Rotate even if the next key may not be in every JWKS cache yet.
        #[arg(long)]
        force: bool,
    },
    /// List every key with its state and timestamps.
    List,
}

/// The raw settings; [`SettingsArgs::into_settings`] types and validates them. Every default
/// is `Settings::default()`'s, defined once there (docs/REFERENCE.md §2 lists them).
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Issuer URL [default: http://<bound address>]
    #[arg(long, env = "CASTELLAN_ISSUER", global = true)]
    issuer: Option<String>,
    /// Listen address (port 0 picks a free port) [default: 127.0.0.1:8080]
    #[arg(long, env = "CASTELLAN_BIND", global = true)]
    bind: Option<String>,
    /// A second listener for /metrics and health only (metrics then leave the main port)
    #[arg(long, env = "CASTELLAN_INTERNAL_BIND", global = true)]
    internal_bind: Option<String>,
    /// SQLite or Postgres URL [default: sqlite://castellan.db?mode=rwc]
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    /// Folder of the master key file [default: keys]
    #[arg(long, env = "CASTELLAN_KEYS_DIR", global = true)]
    keys_dir: Option<PathBuf>,
    /// Master key (base64, 32 bytes); overrides the file. Prefer the variable to the flag.
    #[arg(long, env = "CASTELLAN_MASTER_KEY", hide_env_values = true, global = true)]
    master_key: Option<String>,
    /// Tracing filter [default: info]
    #[arg(long = "log", env = "CASTELLAN_LOG", global = true)]
    log: Option<String>,
    /// Log format: human or json [default: human]
    #[arg(long, env = "CASTELLAN_LOG_FORMAT", global = true)]
    log_format: Option<String>,
    /// How long a signing key signs before the next takes over [default: 30d]
    #[arg(long, env = "CASTELLAN_KEY_ROTATION_PERIOD", global = true)]
    key_rotation_period: Option<String>,
    /// Longest lifetime of any signed token; retired keys stay published this long [default: 1h]
    #[arg(long, env = "CASTELLAN_MAX_TOKEN_LIFETIME", global = true)]
    max_token_lifetime: Option<String>,
    /// Cache-Control max-age of the JWKS (at most 300s) [default: 300s]
    #[arg(long, env = "CASTELLAN_JWKS_MAX_AGE", global = true)]
    jwks_max_age: Option<String>,
    /// How often each replica re-reads shared state (at most 5s) [default: 2s]
    #[arg(long, env = "CASTELLAN_SYNC_INTERVAL", global = true)]
    sync_interval: Option<String>,
    /// How often each replica deletes expired rows, for at most half of it per round
    /// [default: 10s]
    #[arg(long, env = "CASTELLAN_PURGE_INTERVAL", global = true)]
    purge_interval: Option<String>,
    /// The first wait before a failed back-channel logout delivery is tried again, doubled
    /// at each failure up to 10 minutes [default: 1s]
    #[arg(long, env = "CASTELLAN_BACKCHANNEL_RETRY_BASE", global = true)]
    backchannel_retry_base: Option<String>,
    /// Database connection pool size [default: 16]
    #[arg(long, env = "CASTELLAN_DB_MAX_CONNECTIONS", global = true)]
    db_max_connections: Option<String>,
    /// Bound on getting a database connection and on readiness checks (Postgres statements:
    /// twice this) [default: 3s]
    #[arg(long, env = "CASTELLAN_DB_TIMEOUT", global = true)]
    db_timeout: Option<String>,
    /// How long SIGTERM waits for in-flight requests [default: 30s]
    #[arg(long, env = "CASTELLAN_SHUTDOWN_TIMEOUT", global = true)]
    shutdown_timeout: Option<String>,
    /// After SIGTERM, how long readiness says 503 while requests are still served [default: 0s]
    #[arg(long, env = "CASTELLAN_SHUTDOWN_DELAY", global = true)]
    shutdown_delay: Option<String>,
    /// A login session ends after this long unused [default: 30m]
    #[arg(long, env = "CASTELLAN_SESSION_IDLE_TIMEOUT", global = true)]
    session_idle_timeout: Option<String>,
    /// A login session ends after this long in any case [default: 12h]
    #[arg(long, env = "CASTELLAN_SESSION_LIFETIME", global = true)]
    session_lifetime: Option<String>,
    /// A rotated refresh token presented again within this window lost a race; later, it
    /// is reuse and revokes its family [default: 2s]
    #[arg(long, env = "CASTELLAN_REFRESH_REUSE_GRACE", global = true)]
    refresh_reuse_grace: Option<String>,
    /// Failed sign-ins of one account from one address (or one known device) within the
    /// failure window after which that pair is refused with 429; as many failures of the
    /// account from everywhere put it in soft lockout [default: 10]
    #[arg(long, env = "CASTELLAN_ACCOUNT_FAILURE_LIMIT", global = true)]
    account_failure_limit: Option<String>,
    /// Failed sign-ins and client authentications from one address after which it is
    /// refused with 429 [default: 100]
    #[arg(long, env = "CASTELLAN_ADDRESS_FAILURE_LIMIT", global = true)]
    address_failure_limit: Option<String>,
    /// The window failures are counted in [default: 15m]
    #[arg(long, env = "CASTELLAN_FAILURE_WINDOW", global = true)]
    failure_window: Option<String>,
    /// Comma-separated proxy addresses whose X-Forwarded-For names the source address
    #[arg(long, env = "CASTELLAN_TRUSTED_PROXIES", global = true)]
    trusted_proxies: Option<String>,
    /// Whether every DPoP proof must carry a server nonce (RFC 9449 §8): true or false
    /// [default: false]
    #[arg(long, env = "CASTELLAN_DPOP_REQUIRE_NONCE", global = true)]
    dpop_require_nonce: Option<String>,
    /// Whether every client must push its authorization requests to /par first (RFC 9126
    /// §5): true or false [default: false]
    #[arg(long, env = "CASTELLAN_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS", global = true)]
    require_pushed_authorization_requests: Option<String>,
    /// Whether administrators must sign in with a second factor or a passkey to get any
    /// token or the console: true or false [default: false]
    #[arg(long, env = "CASTELLAN_ADMIN_MFA", global = true)]
    admin_mfa: Option<String>,
    /// Whether outgoing requests (a client's jwks_uri) may reach loopback, private and
    /// link-local addresses over plain http; development only: true or false [default: false]
    #[arg(long, env = "CASTELLAN_OUTBOUND_ALLOW_PRIVATE_NETWORKS", global = true)]
    outbound_allow_private_networks: Option<String>,
    /// Least time between two fetches of one client's jwks_uri, whatever its Cache-Control
    /// or an unknown kid asks [default: 30s]
    #[arg(long, env = "CASTELLAN_CLIENT_JWKS_REFETCH_INTERVAL", global = true)]
    client_jwks_refetch_interval: Option<String>,
    /// Whether clients may register themselves at /register: off, closed (only with an
    /// initial access token from an administrator) or open (public clients within the
    /// admin API's ceiling, too) [default: closed]
    #[arg(long, env = "CASTELLAN_REGISTRATION", global = true)]
    registration: Option<String>,
    /// Registrations one address may attempt per failure window [default: 20]
    #[arg(long, env = "CASTELLAN_REGISTRATION_LIMIT", global = true)]
    registration_limit: Option<String>,
    /// A self-registered client that got no token for this long is deleted; 0s keeps them
    /// [default: 90d]
    #[arg(long, env = "CASTELLAN_DYNAMIC_CLIENT_IDLE_EXPIRY", global = true)]
    dynamic_client_idle_expiry: Option<String>,
    /// Audit events (GET /admin/events) older than this are purged; 0s keeps them forever
    /// [default: 90d]
    #[arg(long, env = "CASTELLAN_EVENT_RETENTION", global = true)]
    event_retention: Option<String>,
    /// Whether a client_id that is an https URL names the client's metadata document,
    /// fetched and used as a public client: true or false [default: false]
    #[arg(long, env = "CASTELLAN_CLIENT_ID_METADATA_DOCUMENTS", global = true)]
    client_id_metadata_documents: Option<String>,
    /// How long a device's user code stays valid at /device (RFC 8628) [default: 10m]
    #[arg(long, env = "CASTELLAN_DEVICE_CODE_LIFETIME", global = true)]
    device_code_lifetime: Option<String>,
    /// How long a passkey registration or sign-in may take: its challenge's lifetime [default: 3m]
    #[arg(long, env = "CASTELLAN_PASSKEY_TIMEOUT", global = true)]
    passkey_timeout: Option<String>,
    /// How long a device waits between polls of /token; slow_down adds 5s [default: 5s]
    #[arg(long, env = "CASTELLAN_DEVICE_POLL_INTERVAL", global = true)]
    device_poll_interval: Option<String>,
    /// The product name the pages show [default: Castellan]
    #[arg(long, env = "CASTELLAN_BRAND_NAME", global = true)]
    brand_name: Option<String>,
    /// An image file (.png, .svg, .jpg, .webp) shown on every page
    #[arg(long, env = "CASTELLAN_BRAND_LOGO", global = true)]
    brand_logo: Option<PathBuf>,
    /// The pages' accent colour, #rgb or #rrggbb (unset: the stylesheet's blue)
    #[arg(long, env = "CASTELLAN_BRAND_ACCENT", global = true)]
    brand_accent: Option<String>,
    /// The pages' background colour, #rgb or #rrggbb (unset: the browser's)
    #[arg(long, env = "CASTELLAN_BRAND_BACKGROUND", global = true)]
    brand_background: Option<String>,
    /// A folder of templates (and castellan.css) replacing the built-in ones by name
    #[arg(long, env = "CASTELLAN_THEME_DIR", global = true)]
    theme_dir: Option<PathBuf>,
}

impl SettingsArgs {
    /// Types and validates every setting given, over the defaults; an error names the
    /// variable at fault.
    pub fn into_settings(self) -> Result<Settings, SettingsError> {
        let d = Settings::default();
        let duration = |name, value: Option<String>, default| match value {
            None => Ok(default),
            Some(value) => parse_duration(&value).map_err(|e| SettingsError::new(name, e)),
        };
        let count = |name, value: Option<String>, default| match value {
            None => Ok(default),
            Some(value) => value
                .parse::<u32>()
                .map_err(|_| SettingsError::new(name, "expected a whole number")),
        };
        let colour = |name, value: Option<String>| match value.as_deref() {
            None | Some("") => Ok(None),
            Some(value) => Colour::parse(value).map(Some).map_err(|e| SettingsError::new(name, e)),
        };
        let address = |name, value: &str| {
            value
                .parse()
                .map_err(|_| SettingsError::new(name, "expected IP:PORT, e.g. 127.0.0.1:8080"))
        };
        let issuer = match self.issuer.as_deref() {
            None | Some("") => None,
            Some(value) => {
                Some(Issuer::parse(value).map_err(|e| SettingsError::new("CASTELLAN_ISSUER", e))?)
            }
        };
        let bind = match self.bind.as_deref() {
            None => d.bind,
            Some(value) => address("CASTELLAN_BIND", value)?,
        };
        let internal_bind = match self.internal_bind.as_deref() {
            None | Some("") => d.internal_bind,
            Some(value) => Some(address("CASTELLAN_INTERNAL_BIND", value)?),
        };
        let database_url = match self.database_url {
            None => d.database_url,
            Some(url) => {
                if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| url.starts_with(p)) {
                    return Err(SettingsError::new(
                        "DATABASE_URL",
                        "expected a sqlite:// or postgres:// URL",
                    ));
                }
                SecretString::from(url)
            }
        };
        let log_filter = self.log.unwrap_or(d.log_filter);
        telemetry::validate_filter(&log_filter)
            .map_err(|e| SettingsError::new("CASTELLAN_LOG", e))?;
        let log_format = match self.log_format.as_deref() {
            None => d.log_format,
            Some("human") => LogFormat::Human,
            Some("json") => LogFormat::Json,
            Some(_) => {
                return Err(SettingsError::new("CASTELLAN_LOG_FORMAT", "expected human or json"));
            }
        };
        let trusted_proxies = match self.trusted_proxies {
            None => d.trusted_proxies,
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    p.parse().map_err(|_| {
                        SettingsError::new("CASTELLAN_TRUSTED_PROXIES", "expected IP addresses")
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let flag = |name, value: Option<String>, default| match value.as_deref() {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(SettingsError::new(name, "expected true or false")),
        };
        let dpop_require_nonce =
            flag("CASTELLAN_DPOP_REQUIRE_NONCE", self.dpop_require_nonce, d.dpop_require_nonce)?;
        let require_pushed_authorization_requests = flag(
            "CASTELLAN_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS",
            self.require_pushed_authorization_requests,
            d.require_pushed_authorization_requests,
        )?;
        let admin_mfa = flag("CASTELLAN_ADMIN_MFA", self.admin_mfa, d.admin_mfa)?;
        let outbound_allow_private_networks = flag(
            "CASTELLAN_OUTBOUND_ALLOW_PRIVATE_NETWORKS",
            self.outbound_allow_private_networks,
            d.outbound_allow_private_networks,
        )?;
        let registration = match self.registration.as_deref() {
            None => d.registration,
            Some("off") => RegistrationMode::Off,
            Some("closed") => RegistrationMode::Closed,
            Some("open") => RegistrationMode::Open,
            Some(_) => {
                return Err(SettingsError::new(
                    "CASTELLAN_REGISTRATION",
                    "expected off, closed or open",
                ));
            }
        };
        let client_id_metadata_documents = flag(
            "CASTELLAN_CLIENT_ID_METADATA_DOCUMENTS",
            self.client_id_metadata_documents,
            d.client_id_metadata_documents,
        )?;
        let settings = Settings {
            issuer,
            bind,
            internal_bind,
            database_url,
            keys_dir: self.keys_dir.unwrap_or(d.keys_dir),
            master_key: self.master_key.map(SecretString::from),
            log_filter,
            log_format,
            key_rotation_period: duration(
                "CASTELLAN_KEY_ROTATION_PERIOD",
                self.key_rotation_period,
                d.key_rotation_period,
            )?,
            max_token_lifetime: duration(
                "CASTELLAN_MAX_TOKEN_LIFETIME",
                self.max_token_lifetime,
                d.max_token_lifetime,
            )?,
            jwks_max_age: duration("CASTELLAN_JWKS_MAX_AGE", self.jwks_max_age, d.jwks_max_age)?,
            sync_interval: duration(
                "CASTELLAN_SYNC_INTERVAL",
                self.sync_interval,
                d.sync_interval,
            )?,
            purge_interval: duration(
                "CASTELLAN_PURGE_INTERVAL",
                self.purge_interval,
                d.purge_interval,
            )?,
            backchannel_retry_base: duration(
                "CASTELLAN_BACKCHANNEL_RETRY_BASE",
                self.backchannel_retry_base,
                d.backchannel_retry_base,
            )?,
            db_max_connections: count(
                "CASTELLAN_DB_MAX_CONNECTIONS",
                self.db_max_connections,
                d.db_max_connections,
            )?,
            db_timeout: duration("CASTELLAN_DB_TIMEOUT", self.db_timeout, d.db_timeout)?,
            shutdown_timeout: duration(
                "CASTELLAN_SHUTDOWN_TIMEOUT",
                self.shutdown_timeout,
                d.shutdown_timeout,
            )?,
            shutdown_delay: duration(
                "CASTELLAN_SHUTDOWN_DELAY",
                self.shutdown_delay,
                d.shutdown_delay,
            )?,
            session_idle_timeout: duration(
                "CASTELLAN_SESSION_IDLE_TIMEOUT",
                self.session_idle_timeout,
                d.session_idle_timeout,
            )?,
            session_lifetime: duration(
                "CASTELLAN_SESSION_LIFETIME",
                self.session_lifetime,
                d.session_lifetime,
            )?,
            refresh_reuse_grace: duration(
                "CASTELLAN_REFRESH_REUSE_GRACE",
                self.refresh_reuse_grace,
                d.refresh_reuse_grace,
            )?,
            account_failure_limit: count(
                "CASTELLAN_ACCOUNT_FAILURE_LIMIT",
                self.account_failure_limit,
                d.account_failure_limit,
            )?,
            address_failure_limit: count(
                "CASTELLAN_ADDRESS_FAILURE_LIMIT",
                self.address_failure_limit,
                d.address_failure_limit,
            )?,
            failure_window: duration(
                "CASTELLAN_FAILURE_WINDOW",
                self.failure_window,
                d.failure_window,
            )?,
            trusted_proxies,
            dpop_require_nonce,
            require_pushed_authorization_requests,
            admin_mfa,
            outbound_allow_private_networks,
            client_jwks_refetch_interval: duration(
                "CASTELLAN_CLIENT_JWKS_REFETCH_INTERVAL",
                self.client_jwks_refetch_interval,
                d.client_jwks_refetch_interval,
            )?,
            registration,
            registration_limit: count(
                "CASTELLAN_REGISTRATION_LIMIT",
                self.registration_limit,
                d.registration_limit,
            )?,
            dynamic_client_idle_expiry: duration(
                "CASTELLAN_DYNAMIC_CLIENT_IDLE_EXPIRY",
                self.dynamic_client_idle_expiry,
                d.dynamic_client_idle_expiry,
            )?,
            event_retention: duration(
                "CASTELLAN_EVENT_RETENTION",
                self.event_retention,
                d.event_retention,
            )?,
            client_id_metadata_documents,
            device_code_lifetime: duration(
                "CASTELLAN_DEVICE_CODE_LIFETIME",
                self.device_code_lifetime,
                d.device_code_lifetime,
            )?,
            passkey_timeout: duration(
                "CASTELLAN_PASSKEY_TIMEOUT",
                self.passkey_timeout,
                d.passkey_timeout,
            )?,
            device_poll_interval: duration(
                "CASTELLAN_DEVICE_POLL_INTERVAL",
                self.device_poll_interval,
                d.device_poll_interval,
            )?,
            brand: Brand {
                name: self.brand_name.unwrap_or(d.brand.name),
                logo: self.brand_logo.filter(|p| !p.as_os_str().is_empty()),
                accent: colour("CASTELLAN_BRAND_ACCENT", self.brand_accent)?,
                background: colour("CASTELLAN_BRAND_BACKGROUND", self.brand_background)?,
                theme_dir: self.theme_dir.filter(|p| !p.as_os_str().is_empty()),
            },
        };
        settings.validate()?;
        Ok(settings)
    }
}

/// Runs one command to completion.
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = Application::build(settings).await?;
            if let Some(admin) = app.first_admin() {
                eprintln!(
                    "First start: an admin client was created. Its secret is shown only once:"
                );
                println!("{}", admin.to_json());
            }
            app.run_until_stopped().await?
        }
        Command::Clients { action: ClientsCommand::Create(create) } => {
            clients_create(create, settings).await?
        }
        Command::Users {
            action:
                UsersCommand::Create { username, email, email_verified, name, admin, require_mfa },
        } => {
            let flags = serde_json::json!({"email_verified": email_verified, "admin": admin, "require_mfa": require_mfa});
            users_create(settings, username, email, name, flags).await?
        }
        Command::Users { action: UsersCommand::EndSessions { id } } => {
            users_end_sessions(settings, id).await?
        }
        Command::Users { action: UsersCommand::Methods { id } } => {
            users_methods(settings, id).await?
        }
        Command::Users { action: UsersCommand::ResetTotp { id } } => {
            users_reset_totp(settings, id).await?
        }
        Command::Users { action: UsersCommand::RemovePasskey { id, passkey } } => {
            users_remove_passkey(settings, id, passkey).await?
        }
        Command::Upstream { action } => upstream(action, settings).await?,
        Command::Migrate => {
            store::migrate(&settings).await?;
            tracing::info!("migrations applied");
        }
        Command::Keys { action } => keys(action, settings).await?,
    }
    Ok(())
}

async fn clients_create(create: CreateClient, settings: Settings) -> anyhow::Result<()> {
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let metadata = if create.admin {
        registry::admin_metadata(create.name.as_deref().unwrap_or("Castellan admin"))
    } else {
        let mut body = serde_json::Map::new();
        let mut put = |name: &str, value: serde_json::Value| {
            body.insert(name.to_owned(), value);
        };
        if let Some(name) = create.name {
            put("client_name", name.into());
        }
        if !create.grant_types.is_empty() {
            put("grant_types", create.grant_types.into());
        }
        if let Some(scope) = create.scope {
            put("scope", scope.into());
        }
        if let Some(method) = create.auth_method {
            put("token_endpoint_auth_method", method.into());
        }
        if !create.redirect_uris.is_empty() {
            put("redirect_uris", create.redirect_uris.into());
        }
        if !create.audience.is_empty() {
            put("audience", create.audience.into());
        }
        client_metadata::parse(&body.into(), settings.max_token_lifetime)
            .map_err(|e| anyhow::anyhow!("invalid client ({}): {}", e.field, e.description))?
    };
    let actor = crate::oauth::audit::Actor::system("cli");
    let registered = Registry::new(settings.sync_interval).register(&db, metadata, actor).await?;
    let client_id = registered.client.client_id;
    match registered.secret {
        Some(client_secret) => println!("{}", Credentials { client_id, client_secret }.to_json()),
        None => println!("{}", serde_json::json!({ "client_id": client_id })),
    }
    db.close().await?;
    Ok(())
}

/// `flags`: the user's boolean members (`email_verified`, `admin`, `require_mfa`).
async fn users_create(
    settings: Settings,
    username: String,
    email: Option<String>,
    name: Option<String>,
    flags: serde_json::Value,
) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let mut body = flags;
    body["username"] = username.into();
    body["password"] = password.into();
    body["email"] = email.into();
    body["name"] = name.into();
    let input = crate::oauth::users::parse_input(&body, true)
        .map_err(|e| anyhow::anyhow!("invalid user ({}): {}", e.field, e.description))?;
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let actor = crate::oauth::audit::Actor::system("cli");
    let user = crate::oauth::users::create(&db, &Default::default(), input, actor).await?;
    println!("{}", serde_json::to_string(&user)?);
    db.close().await?;
    Ok(())
}

async fn users_end_sessions(settings: Settings, id: String) -> anyhow::Result<()> {
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let stale_after = crate::startup::key_policy(&settings).stale_after;
    let revocations = Revocations::load(&db, settings.max_token_lifetime, stale_after).await?;
    let actor = crate::oauth::audit::Actor::system("cli");
    let ended = match crate::oauth::users::end_sessions(&db, &revocations, &id, actor).await {
        Err(crate::oauth::users::UserError::NotFound) => anyhow::bail!("no user with this id"),
        ended => ended?,
    };
    println!("{}", serde_json::json!({ "user": id, "sessions_ended": ended }));
    db.close().await?;
    Ok(())
}

async fn users_methods(settings: Settings, id: String) -> anyhow::Result<()> {
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let found = crate::oauth::methods::of(&db, &id).await?;
    db.close().await?;
    let methods = found.ok_or_else(|| anyhow::anyhow!("no user with this id"))?;
    println!("{}", serde_json::to_string(&methods)?);
    Ok(())
}

async fn users_reset_totp(settings: Settings, id: String) -> anyhow::Result<()> {
    use crate::oauth::audit::{Actor, Event, EventType};
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let event = Event::new(EventType::MfaTotpRemoved, Actor::system("cli"), format!("user:{id}"))
        .with("by", "admin");
    let removed = crate::oauth::methods::turn_off_totp(&db, &id, &event).await?;
    db.close().await?;
    if !removed {
        anyhow::bail!("no authenticator app is set up for a user with this id");
    }
    println!("{}", serde_json::json!({ "user": id, "totp_removed": true }));
    Ok(())
}

async fn users_remove_passkey(
    settings: Settings,
    id: String,
    passkey: String,
) -> anyhow::Result<()> {
    use crate::oauth::audit::{Actor, Event, EventType};
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let event =
        Event::new(EventType::MfaPasskeyRemoved, Actor::system("cli"), format!("user:{id}"))
            .with("passkey", passkey.as_str())
            .with("by", "admin");
    let removed = crate::oauth::passkeys::remove(&db, &id, &passkey, &event).await?;
    db.close().await?;
    if !removed {
        anyhow::bail!("the user with this id has no such passkey");
    }
    println!("{}", serde_json::json!({ "user": id, "passkey_removed": passkey }));
    Ok(())
}

async fn upstream(action: UpstreamCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::oauth::upstream::{self as providers, Change};
    let actor = crate::oauth::audit::Actor::system("cli");
    // The issuer the server will run as (the bound address's, unless one is set).
    let issuer =
        settings.issuer.clone().unwrap_or_else(|| Issuer::from_bound_address(settings.bind));
    match action {
        UpstreamCommand::Add {
            id,
            name,
            provider_issuer,
            client_id,
            scope,
            mappings,
            create_users,
            trust_mfa,
        } => {
            let mut secret = String::new();
            std::io::stdin().read_line(&mut secret)?;
            let secret = secret.trim_end_matches(['\r', '\n']).to_owned();
            let mut mapping = serde_json::Map::new();
            for pair in mappings {
                let (field, claim) = pair
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--map takes FIELD=CLAIM, got {pair}"))?;
                mapping.insert(field.to_owned(), claim.into());
            }
            let mut body = serde_json::json!({
                "name": name, "issuer": provider_issuer, "client_id": client_id,
                "client_secret": secret, "claim_mapping": mapping,
                "create_users": create_users, "trust_mfa": trust_mfa,
            });
            if let Some(scope) = scope {
                body["scope"] = scope.into();
            }
            if !providers::valid_id(&id) {
                anyhow::bail!("invalid id: 1 to 32 lowercase letters, digits or '-'");
            }
            let input =
                providers::parse_input(&body, true, settings.outbound_allow_private_networks)
                    .map_err(|e| {
                        anyhow::anyhow!("invalid provider ({}): {}", e.field, e.description)
                    })?;
            store::migrate(&settings).await?;
            let db = store::connect(&settings).await?;
            let master =
                MasterKey::load_or_create(settings.master_key.as_ref(), &settings.keys_dir)?;
            let created = providers::create(&db, &master, &id, input, actor).await?;
            db.close().await?;
            let Change::Done(provider) = created else {
                anyhow::bail!("a provider with this id exists");
            };
            let mut json = serde_json::to_value(&provider)?;
            json["redirect_uri"] = providers::redirect_uri(&issuer, &provider.id).into();
            println!("{json}");
        }
        UpstreamCommand::List => {
            store::migrate(&settings).await?;
            let db = store::connect(&settings).await?;
            let listed = providers::list(&db).await?;
            db.close().await?;
            println!("{}", serde_json::to_string(&listed)?);
        }
        UpstreamCommand::Remove { id } => {
            store::migrate(&settings).await?;
            let db = store::connect(&settings).await?;
            let removed = providers::delete(&db, &id, actor).await?;
            db.close().await?;
            if !removed {
                anyhow::bail!("no provider with this id");
            }
            println!("{}", serde_json::json!({ "upstream_provider_removed": id }));
        }
    }
    Ok(())
}

async fn keys(action: KeysCommand, settings: Settings) -> anyhow::Result<()> {
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let policy = crate::startup::key_policy(&settings);
    match action {
        KeysCommand::Rotate { force } => {
            let master =
                MasterKey::load_or_create(settings.master_key.as_ref(), &settings.keys_dir)?;
            let keys = Keys::bootstrap(&db, master, policy).await?;
            keys.rotate(&db, force, crate::oauth::audit::Actor::system("cli")).await.map_err(
                |e| match e {
                    KeyError::NextTooNew(_) => {
                        anyhow::anyhow!("{e} (castellan keys rotate --force)")
                    }
                    other => other.into(),
                },
            )?;
            for alg in crate::oauth::jwk::Algorithm::ALL {
                println!("{} {}", alg.as_str(), keys.active_kid(alg));
            }
        }
        KeysCommand::List => {
            let listed = keyring::list_stored(&db, &policy).await?;
            println!(
                "{:<44} {:<6} {:<8} {:<26} {:<26} RETIRED",
                "KID", "ALG", "STATE", "CREATED", "ACTIVATED"
            );
            for key in listed {
                let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
                    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "-".into())
                };
                println!(
                    "{:<44} {:<6} {:<8} {:<26} {:<26} {}",
                    key.kid,
                    key.alg.as_str(),
                    key.state.as_str(),
                    time(Some(key.created_at)),
                    time(key.activated_at),
                    time(key.retired_at),
                );
            }
        }
    }
    db.close().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// The settings a command line (and no environment: every `env` is dropped) gives.
    fn settings_of(args: &[&str]) -> Settings {
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(args).expect("arguments parse");
        let cli = <Cli as clap::FromArgMatches>::from_arg_matches(&matches).expect("matches");
        cli.settings.into_settings().expect("settings")
    }

    /// Settings hold a `SecretString`, so they are compared through their (redacted) `Debug`
    /// plus the database URL itself.
    fn same(a: &Settings, b: &Settings) -> bool {
        use secrecy::ExposeSecret;
        format!("{a:?}") == format!("{b:?}")
            && a.database_url.expose_secret() == b.database_url.expose_secret()
    }

    #[test]
    fn no_flag_means_the_one_set_of_defaults() {
        assert!(same(&settings_of(&["castellan"]), &Settings::default()));
    }

    /// Every `[default: X]` the help shows, given as the flag's value, changes nothing: the
    /// help cannot drift from `Settings::default()`.
    #[test]
    fn every_default_the_help_shows_is_the_real_default() {
        let defaults = Settings::default();
        let mut checked = 0;
        for arg in Cli::command().get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let Some((_, shown)) = help.split_once("[default: ") else { continue };
            let shown = shown.trim_end_matches(']');
            let long = arg.get_long().expect("settings are long flags");
            if long == "issuer" {
                // Derived from the bound address, not a fixed value.
                assert_eq!(shown, "http://<bound address>");
                continue;
            }
            let flag = format!("--{long}");
            let given = settings_of(&["castellan", &flag, shown]);
            assert!(same(&given, &defaults), "--{long}: the help says {shown}");
            checked += 1;
        }
        assert!(checked >= 18, "only {checked} defaults found in the help");
    }
}
