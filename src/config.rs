//! Typed, validated settings read from environment variables and CLI flags (docs/REFERENCE.md §2).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

/// Longest `Cache-Control: max-age` the JWKS may carry (docs/REFERENCE.md §7).
pub const JWKS_MAX_AGE_LIMIT: Duration = Duration::from_secs(300);
/// Longest time any replica may serve stale shared state (docs/REFERENCE.md §8).
pub const SYNC_INTERVAL_LIMIT: Duration = Duration::from_secs(5);

/// Everything the server and the CLI need to run, already validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The issuer URL; `None` derives `http://{bound address}` once bound.
    pub issuer: Option<Issuer>,
    pub bind: SocketAddr,
    /// A second listener for `/metrics` and health only; when set, `/metrics` leaves the
    /// main listener (keep this one off the public network).
    pub internal_bind: Option<SocketAddr>,
    pub database_url: SecretString,
    pub keys_dir: PathBuf,
    pub master_key: Option<SecretString>,
    pub log_filter: String,
    pub log_format: LogFormat,
    /// How long a key signs before the next one takes over.
    pub key_rotation_period: Duration,
    /// Upper bound of every JWT lifetime; a retired key stays published this long.
    pub max_token_lifetime: Duration,
    /// `Cache-Control: max-age` of the JWKS.
    pub jwks_max_age: Duration,
    /// How often a replica re-reads shared state from the database: the key ring, the
    /// revocation log, blocked addresses.
    pub sync_interval: Duration,
    /// How often a replica deletes expired sessions, codes, refresh tokens and revocations
    /// (each round for at most half of this).
    pub purge_interval: Duration,
    /// The first wait before a failed back-channel logout delivery is tried again; each
    /// further failure doubles it, up to 10 minutes.
    pub backchannel_retry_base: Duration,
    pub db_max_connections: u32,
    /// Bound on connecting, on acquiring a pooled connection, on SQLite's lock wait and on
    /// readiness checks; Postgres statements get twice this.
    pub db_timeout: Duration,
    /// How long SIGTERM waits for in-flight requests.
    pub shutdown_timeout: Duration,
    /// After SIGTERM, how long readiness reports 503 while requests are still accepted,
    /// so load balancers stop sending traffic before the listener closes.
    pub shutdown_delay: Duration,
    /// A login session ends after this long without use...
    pub session_idle_timeout: Duration,
    /// ...and after this long in any case.
    pub session_lifetime: Duration,
    /// A rotated refresh token presented again within this window lost a race (no family
    /// revocation); after it, the presentation is reuse and revokes the family.
    pub refresh_reuse_grace: Duration,
    /// Failed authentications of one account (user or client) within `failure_window`
    /// after which it is refused with 429 (docs/REFERENCE.md §9).
    pub account_failure_limit: u32,
    /// The same for one source address.
    pub address_failure_limit: u32,
    pub failure_window: Duration,
    /// Peers whose `X-Forwarded-For` names the real source address (load balancers).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Whether every DPoP proof must carry a nonce this server made (RFC 9449 §8), which
    /// bounds a proof's use to the nonce's minute whatever the client's clock says.
    pub dpop_require_nonce: bool,
    /// Every client must push its authorization requests first (RFC 9126 §5).
    pub require_pushed_authorization_requests: bool,
    /// Administrators (the admin flag) must sign in with a second factor or a passkey to
    /// get any token or the console (docs/REFERENCE.md §3.4).
    pub admin_mfa: bool,
    /// Whether outgoing requests (a client's `jwks_uri`) may reach loopback, private and
    /// link-local addresses, and use plain http: for development and tests only.
    pub outbound_allow_private_networks: bool,
    /// The least time between two fetches of one client's `jwks_uri` (a `Cache-Control`
    /// shorter than this, or a `kid` the keys lack, waits this long).
    pub client_jwks_refetch_interval: Duration,
    /// Whether clients may register themselves at `/register` (RFC 7591), and how.
    pub registration: RegistrationMode,
    /// Registrations one source address may attempt per `failure_window`.
    pub registration_limit: u32,
    /// A client that registered itself and got no token for this long is deleted; zero
    /// keeps them.
    pub dynamic_client_idle_expiry: Duration,
    /// Audit events older than this are purged by housekeeping; zero keeps them forever.
    pub event_retention: Duration,
    /// Whether a `client_id` that is an https URL names the client's metadata document
    /// (fetched, checked and used as a public client).
    pub client_id_metadata_documents: bool,
    /// How long a device authorization (RFC 8628) waits for its user.
    pub device_code_lifetime: Duration,
    /// How long a device waits between two polls, before any `slow_down`.
    pub device_poll_interval: Duration,
    /// How long a passkey ceremony (registration or sign-in) may take, from the options to
    /// the answer: the challenge's lifetime.
    pub passkey_timeout: Duration,
    /// How the pages look: name, logo, colours, templates (docs/REFERENCE.md §3.13).
    pub brand: Brand,
}

/// A deployment's look, applied when the server starts: no rebuild.
#[derive(Debug, Clone)]
pub struct Brand {
    /// The product name the pages show instead of "Castellan".
    pub name: String,
    /// An image file (PNG, SVG, JPEG, WebP) shown above every page's content.
    pub logo: Option<PathBuf>,
    /// The colour of buttons, links in focus and the chart.
    pub accent: Option<Colour>,
    /// The pages' background.
    pub background: Option<Colour>,
    /// A folder whose `*.html` files replace the built-in templates of the same name, and
    /// whose `castellan.css`, if any, replaces the stylesheet.
    pub theme_dir: Option<PathBuf>,
}

impl Default for Brand {
    fn default() -> Self {
        Self {
            name: "Castellan".into(),
            logo: None,
            accent: None,
            background: None,
            theme_dir: None,
        }
    }
}

/// A CSS colour as `#rgb` or `#rrggbb`: nothing else reaches the stylesheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colour(String);

impl Colour {
    pub fn parse(value: &str) -> Result<Self, String> {
        let digits = value.strip_prefix('#').unwrap_or_default();
        if matches!(digits.len(), 3 | 6) && digits.chars().all(|c| c.is_ascii_hexdigit()) {
            Ok(Self(value.to_ascii_lowercase()))
        } else {
            Err(format!("expected a colour as #rgb or #rrggbb, got {value:?}"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The registration policy's mode as the operator set it (docs/REFERENCE.md §5.10). `Off`
/// removes `/register`; `Closed` and `Open` are where the admin API's policy starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationMode {
    Off,
    /// Only with an initial access token an administrator issued.
    Closed,
    /// Also without one, for public clients within the open ceiling.
    Open,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: None,
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            internal_bind: None,
            database_url: SecretString::from("sqlite://castellan.db?mode=rwc"),
            keys_dir: PathBuf::from("keys"),
            master_key: None,
            log_filter: "info".into(),
            log_format: LogFormat::Human,
            key_rotation_period: Duration::from_secs(30 * 24 * 3600),
            max_token_lifetime: Duration::from_secs(3600),
            jwks_max_age: JWKS_MAX_AGE_LIMIT,
            sync_interval: Duration::from_secs(2),
            purge_interval: Duration::from_secs(10),
            backchannel_retry_base: Duration::from_secs(1),
            db_max_connections: 16,
            db_timeout: Duration::from_secs(3),
            shutdown_timeout: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_lifetime: Duration::from_secs(12 * 3600),
            refresh_reuse_grace: Duration::from_secs(2),
            account_failure_limit: 10,
            address_failure_limit: 100,
            failure_window: Duration::from_secs(15 * 60),
            trusted_proxies: Vec::new(),
            dpop_require_nonce: false,
            require_pushed_authorization_requests: false,
            admin_mfa: false,
            outbound_allow_private_networks: false,
            client_jwks_refetch_interval: Duration::from_secs(30),
            registration: RegistrationMode::Closed,
            registration_limit: 20,
            dynamic_client_idle_expiry: Duration::from_secs(90 * 24 * 3600),
            event_retention: Duration::from_secs(90 * 24 * 3600),
            client_id_metadata_documents: false,
            device_code_lifetime: Duration::from_secs(600),
            device_poll_interval: Duration::from_secs(5),
            passkey_timeout: Duration::from_secs(180),
            brand: Brand::default(),
        }
    }
}

impl Settings {
    /// Checks the relations between settings that no single parser can see.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.jwks_max_age > JWKS_MAX_AGE_LIMIT {
            return Err(SettingsError::new("CASTELLAN_JWKS_MAX_AGE", "must be at most 300s"));
        }
        if self.sync_interval.is_zero() || self.sync_interval > SYNC_INTERVAL_LIMIT {
            return Err(SettingsError::new(
                "CASTELLAN_SYNC_INTERVAL",
                "must be more than 0s and at most 5s",
            ));
        }
        if self.purge_interval.is_zero() {
            return Err(SettingsError::new("CASTELLAN_PURGE_INTERVAL", "must be more than 0s"));
        }
        if self.backchannel_retry_base.is_zero() {
            return Err(SettingsError::new(
                "CASTELLAN_BACKCHANNEL_RETRY_BASE",
                "must be more than 0s",
            ));
        }
        // A next key must be visible through every cache before it signs.
        if self.key_rotation_period <= self.jwks_max_age + self.sync_interval {
            return Err(SettingsError::new(
                "CASTELLAN_KEY_ROTATION_PERIOD",
                "must be longer than CASTELLAN_JWKS_MAX_AGE plus CASTELLAN_SYNC_INTERVAL",
            ));
        }
        for (name, limit) in [
            ("CASTELLAN_ACCOUNT_FAILURE_LIMIT", self.account_failure_limit),
            ("CASTELLAN_ADDRESS_FAILURE_LIMIT", self.address_failure_limit),
            ("CASTELLAN_REGISTRATION_LIMIT", self.registration_limit),
        ] {
            if limit == 0 {
                return Err(SettingsError::new(name, "must be at least 1"));
            }
        }
        if self.failure_window.is_zero() {
            return Err(SettingsError::new("CASTELLAN_FAILURE_WINDOW", "must be positive"));
        }
        if self.max_token_lifetime.is_zero() {
            return Err(SettingsError::new("CASTELLAN_MAX_TOKEN_LIFETIME", "must be positive"));
        }
        if self.db_max_connections == 0 {
            return Err(SettingsError::new("CASTELLAN_DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        // A derived issuer must be an address clients can reach and every replica shares.
        if self.issuer.is_none() && self.bind.ip().is_unspecified() {
            return Err(SettingsError::new(
                "CASTELLAN_ISSUER",
                "must be set when CASTELLAN_BIND listens on every interface",
            ));
        }
        if self.session_idle_timeout.is_zero() || self.session_idle_timeout > self.session_lifetime
        {
            return Err(SettingsError::new(
                "CASTELLAN_SESSION_IDLE_TIMEOUT",
                "must be positive and at most CASTELLAN_SESSION_LIFETIME",
            ));
        }
        if self.client_jwks_refetch_interval < Duration::from_secs(1)
            || self.client_jwks_refetch_interval > Duration::from_secs(3600)
        {
            return Err(SettingsError::new(
                "CASTELLAN_CLIENT_JWKS_REFETCH_INTERVAL",
                "must be between 1s and 1h",
            ));
        }
        if self.device_code_lifetime < Duration::from_secs(1)
            || self.device_code_lifetime > Duration::from_secs(3600)
        {
            return Err(SettingsError::new(
                "CASTELLAN_DEVICE_CODE_LIFETIME",
                "must be between 1s and 1h",
            ));
        }
        if self.passkey_timeout < Duration::from_secs(1)
            || self.passkey_timeout > Duration::from_secs(600)
        {
            return Err(SettingsError::new(
                "CASTELLAN_PASSKEY_TIMEOUT",
                "must be between 1s and 10m",
            ));
        }
        if self.device_poll_interval < Duration::from_secs(1)
            || self.device_poll_interval > Duration::from_secs(60)
        {
            return Err(SettingsError::new(
                "CASTELLAN_DEVICE_POLL_INTERVAL",
                "must be between 1s and 60s",
            ));
        }
        let name = self.brand.name.trim();
        if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
            return Err(SettingsError::new(
                "CASTELLAN_BRAND_NAME",
                "must be 1 to 64 printable characters",
            ));
        }
        if self.db_timeout.is_zero() {
            return Err(SettingsError::new("CASTELLAN_DB_TIMEOUT", "must be positive"));
        }
        Ok(())
    }

    /// Whether `database_url` names a Postgres database (else SQLite).
    pub fn is_postgres(&self) -> bool {
        use secrecy::ExposeSecret;
        let url = self.database_url.expose_secret();
        url.starts_with("postgres://") || url.starts_with("postgresql://")
    }
}

/// A setting that failed validation, named by its environment variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {name}: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub reason: String,
}

impl SettingsError {
    pub fn new(name: &'static str, reason: impl Into<String>) -> Self {
        Self { name, reason: reason.into() }
    }
}

/// Log output: human-readable lines or JSON lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// An issuer identifier: an absolute http(s) URL with no query or fragment
/// (RFC 8414 §2), kept byte for byte as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer(String);

impl Issuer {
    pub fn parse(value: &str) -> Result<Self, String> {
        let url = url::Url::parse(value).map_err(|e| e.to_string())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err("the scheme must be https (or http)".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("an issuer has no query or fragment".into());
        }
        if url.host_str().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err("an issuer needs a host and no user information".into());
        }
        if value.ends_with('/') {
            return Err("an issuer has no trailing slash".into());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn from_bound_address(address: SocketAddr) -> Self {
        Self(format!("http://{address}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of an endpoint under this issuer, e.g. `endpoint("/jwks")`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    pub fn is_https(&self) -> bool {
        self.0.starts_with("https://")
    }
}

impl std::fmt::Display for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a duration such as `30d`, `10m` or `300s`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuer_keeps_its_exact_bytes() {
        let issuer = Issuer::parse("https://id.example.com/tenant-a").expect("valid issuer");
        assert_eq!(issuer.as_str(), "https://id.example.com/tenant-a");
        assert_eq!(issuer.endpoint("/jwks"), "https://id.example.com/tenant-a/jwks");
    }

    #[test]
    fn issuer_rejects_query_fragment_and_other_schemes() {
        for bad in [
            "https://id.example.com?x=1",
            "https://id.example.com#f",
            "ftp://id.example.com",
            "id.example.com",
            "https://id.example.com/",
        ] {
            assert!(Issuer::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().expect("defaults validate");
    }

    #[test]
    fn rotation_must_outlast_the_jwks_cache() {
        let settings =
            Settings { key_rotation_period: Duration::from_secs(60), ..Settings::default() };
        let error = settings.validate().expect_err("refused");
        assert_eq!(error.name, "CASTELLAN_KEY_ROTATION_PERIOD");
    }
}
