//! The command line: settings as flags (each with its environment variable) and commands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::config::{Issuer, LogFormat, Settings, SettingsError, parse_duration};
use crate::oauth::client_metadata;
use crate::oauth::keyring::{self, KeyError, Keys};
use crate::oauth::master_key::MasterKey;
use crate::oauth::registry::{self, Credentials, Registry};
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

/// The raw settings; [`SettingsArgs::into_settings`] types and validates them.
#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Issuer URL [default: http://<bound address>]
    #[arg(long, env = "CASTELLAN_ISSUER", global = true)]
    issuer: Option<String>,
    /// Listen address (port 0 picks a free port)
    #[arg(long, env = "CASTELLAN_BIND", default_value = "127.0.0.1:8080", global = true)]
    bind: String,
    /// SQLite or Postgres URL
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://castellan.db?mode=rwc",
        hide_env_values = true,
        global = true
    )]
    database_url: String,
    /// Folder of the master key file
    #[arg(long, env = "CASTELLAN_KEYS_DIR", default_value = "keys", global = true)]
    keys_dir: PathBuf,
    /// Master key (base64, 32 bytes); overrides the file. Prefer the variable to the flag.
    #[arg(long, env = "CASTELLAN_MASTER_KEY", hide_env_values = true, global = true)]
    master_key: Option<String>,
    /// Tracing filter
    #[arg(long = "log", env = "CASTELLAN_LOG", default_value = "info", global = true)]
    log: String,
    /// Log format: human or json
    #[arg(long, env = "CASTELLAN_LOG_FORMAT", default_value = "human", global = true)]
    log_format: String,
    /// How long a signing key signs before the next takes over
    #[arg(long, env = "CASTELLAN_KEY_ROTATION_PERIOD", default_value = "30d", global = true)]
    key_rotation_period: String,
    /// Longest lifetime of any signed token; retired keys stay published this long
    #[arg(long, env = "CASTELLAN_MAX_TOKEN_LIFETIME", default_value = "1h", global = true)]
    max_token_lifetime: String,
    /// Cache-Control max-age of the JWKS (at most 300s)
    #[arg(long, env = "CASTELLAN_JWKS_MAX_AGE", default_value = "300s", global = true)]
    jwks_max_age: String,
    /// How often each replica re-reads shared state (at most 5s)
    #[arg(long, env = "CASTELLAN_SYNC_INTERVAL", default_value = "2s", global = true)]
    sync_interval: String,
    /// Database connection pool size
    #[arg(long, env = "CASTELLAN_DB_MAX_CONNECTIONS", default_value = "16", global = true)]
    db_max_connections: String,
    /// Bound on waiting for a database connection or statement
    #[arg(long, env = "CASTELLAN_DB_TIMEOUT", default_value = "3s", global = true)]
    db_timeout: String,
    /// How long SIGTERM waits for in-flight requests
    #[arg(long, env = "CASTELLAN_SHUTDOWN_TIMEOUT", default_value = "30s", global = true)]
    shutdown_timeout: String,
    /// After SIGTERM, how long readiness says 503 while requests are still served
    #[arg(long, env = "CASTELLAN_SHUTDOWN_DELAY", default_value = "0s", global = true)]
    shutdown_delay: String,
    /// A login session ends after this long unused
    #[arg(long, env = "CASTELLAN_SESSION_IDLE_TIMEOUT", default_value = "30m", global = true)]
    session_idle_timeout: String,
    /// A login session ends after this long in any case
    #[arg(long, env = "CASTELLAN_SESSION_LIFETIME", default_value = "12h", global = true)]
    session_lifetime: String,
    /// A rotated refresh token presented again within this window lost a race; later, it
    /// is reuse and revokes its family
    #[arg(long, env = "CASTELLAN_REFRESH_REUSE_GRACE", default_value = "2s", global = true)]
    refresh_reuse_grace: String,
    /// Failed logins or client authentications of one account, within the failure window,
    /// after which it is refused with 429
    #[arg(long, env = "CASTELLAN_ACCOUNT_FAILURE_LIMIT", default_value = "10", global = true)]
    account_failure_limit: String,
    /// The same for one source address
    #[arg(long, env = "CASTELLAN_ADDRESS_FAILURE_LIMIT", default_value = "100", global = true)]
    address_failure_limit: String,
    /// The window failures are counted in
    #[arg(long, env = "CASTELLAN_FAILURE_WINDOW", default_value = "15m", global = true)]
    failure_window: String,
    /// Comma-separated proxy addresses whose X-Forwarded-For names the source address
    #[arg(long, env = "CASTELLAN_TRUSTED_PROXIES", default_value = "", global = true)]
    trusted_proxies: String,
}

impl SettingsArgs {
    /// Types and validates every setting; an error names the variable at fault.
    pub fn into_settings(self) -> Result<Settings, SettingsError> {
        let duration =
            |name, value: &str| parse_duration(value).map_err(|e| SettingsError::new(name, e));
        let count = |name, value: &str| {
            value.parse::<u32>().map_err(|_| SettingsError::new(name, "expected a whole number"))
        };
        let issuer = match self.issuer.as_deref() {
            None | Some("") => None,
            Some(value) => {
                Some(Issuer::parse(value).map_err(|e| SettingsError::new("CASTELLAN_ISSUER", e))?)
            }
        };
        let bind = self.bind.parse().map_err(|_| {
            SettingsError::new("CASTELLAN_BIND", "expected IP:PORT, e.g. 127.0.0.1:8080")
        })?;
        let database_url = self.database_url;
        if !["sqlite:", "postgres://", "postgresql://"].iter().any(|p| database_url.starts_with(p))
        {
            return Err(SettingsError::new(
                "DATABASE_URL",
                "expected a sqlite:// or postgres:// URL",
            ));
        }
        telemetry::validate_filter(&self.log)
            .map_err(|e| SettingsError::new("CASTELLAN_LOG", e))?;
        let log_format = match self.log_format.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            _ => {
                return Err(SettingsError::new("CASTELLAN_LOG_FORMAT", "expected human or json"));
            }
        };
        let settings = Settings {
            issuer,
            bind,
            database_url: SecretString::from(database_url),
            keys_dir: self.keys_dir,
            master_key: self.master_key.map(SecretString::from),
            log_filter: self.log,
            log_format,
            key_rotation_period: duration(
                "CASTELLAN_KEY_ROTATION_PERIOD",
                &self.key_rotation_period,
            )?,
            max_token_lifetime: duration("CASTELLAN_MAX_TOKEN_LIFETIME", &self.max_token_lifetime)?,
            jwks_max_age: duration("CASTELLAN_JWKS_MAX_AGE", &self.jwks_max_age)?,
            sync_interval: duration("CASTELLAN_SYNC_INTERVAL", &self.sync_interval)?,
            db_max_connections: self.db_max_connections.parse().map_err(|_| {
                SettingsError::new("CASTELLAN_DB_MAX_CONNECTIONS", "expected a whole number")
            })?,
            db_timeout: duration("CASTELLAN_DB_TIMEOUT", &self.db_timeout)?,
            shutdown_timeout: duration("CASTELLAN_SHUTDOWN_TIMEOUT", &self.shutdown_timeout)?,
            shutdown_delay: duration("CASTELLAN_SHUTDOWN_DELAY", &self.shutdown_delay)?,
            session_idle_timeout: duration(
                "CASTELLAN_SESSION_IDLE_TIMEOUT",
                &self.session_idle_timeout,
            )?,
            session_lifetime: duration("CASTELLAN_SESSION_LIFETIME", &self.session_lifetime)?,
            refresh_reuse_grace: duration(
                "CASTELLAN_REFRESH_REUSE_GRACE",
                &self.refresh_reuse_grace,
            )?,
            account_failure_limit: count(
                "CASTELLAN_ACCOUNT_FAILURE_LIMIT",
                &self.account_failure_limit,
            )?,
            address_failure_limit: count(
                "CASTELLAN_ADDRESS_FAILURE_LIMIT",
                &self.address_failure_limit,
            )?,
            failure_window: duration("CASTELLAN_FAILURE_WINDOW", &self.failure_window)?,
            trusted_proxies: self
                .trusted_proxies
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
            action: UsersCommand::Create { username, email, email_verified, name },
        } => users_create(settings, username, email, email_verified, name).await?,
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
    let registered = Registry::new(settings.sync_interval).register(&db, metadata).await?;
    let client_id = registered.client.client_id;
    match registered.secret {
        Some(client_secret) => println!("{}", Credentials { client_id, client_secret }.to_json()),
        None => println!("{}", serde_json::json!({ "client_id": client_id })),
    }
    db.close().await?;
    Ok(())
}

async fn users_create(
    settings: Settings,
    username: String,
    email: Option<String>,
    email_verified: bool,
    name: Option<String>,
) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin().read_line(&mut password)?;
    let password = password.trim_end_matches(['\r', '\n']).to_owned();
    let body = serde_json::json!({
        "username": username, "password": password, "email": email,
        "email_verified": email_verified, "name": name,
    });
    let input = crate::oauth::users::parse_input(&body, true)
        .map_err(|e| anyhow::anyhow!("invalid user ({}): {}", e.field, e.description))?;
    store::migrate(&settings).await?;
    let db = store::connect(&settings).await?;
    let user = crate::oauth::users::create(&db, &Default::default(), input).await?;
    println!("{}", serde_json::to_string(&user)?);
    db.close().await?;
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
            keys.rotate(&db, force).await.map_err(|e| match e {
                KeyError::NextTooNew(_) => anyhow::anyhow!("{e} (castellan keys rotate --force)"),
                other => other.into(),
            })?;
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
