//! Login sessions (docs/REFERENCE.md §3): an opaque random id in a cookie, a row keyed by its SHA-256,
//! idle and absolute lifetimes, a new id at every login.

use std::time::Duration;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;

use super::audit::{self, Event};
use super::secret;
use crate::store::sessions::SessionRecord;
use crate::store::users::UserRecord;
use crate::store::{self, Db, StoreError};

/// Session use is written back at most once a minute (or a quarter of the idle timeout, if
/// shorter), not on every request.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// How a user signed in, as RFC 8176 Authentication Method Reference values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amr {
    /// A password alone: `["pwd"]`.
    Password,
    /// A password, then a TOTP code or a recovery code: `["pwd", "otp", "mfa"]`.
    PasswordOtp,
    /// A passkey that may be synced between devices (backup eligible), verified by its
    /// user: `["swk", "user", "mfa"]`.
    PasskeySynced,
    /// A passkey bound to one authenticator (not backup eligible), verified by its user:
    /// `["hwk", "user", "mfa"]`.
    PasskeyBound,
    /// Through an upstream identity provider (RFC 8176 `fed`), then the methods the provider
    /// said it used: `["fed", …]`. Never `mfa`: see [`Self::FederatedMfa`].
    Federated(Stated),
    /// Through an upstream provider with a second factor: the provider's, when it is trusted
    /// to say so and said `mfa`, or this server's authenticator app asked after it:
    /// `["fed", …, "mfa"]`.
    FederatedMfa(Stated),
}

/// The RFC 8176 values an upstream provider stated (`mfa` aside, which only a trusted
/// provider's word makes ours, and `fed`, which is ours): a set, so `Amr` stays `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stated(u32);

/// The registered values (RFC 8176 §2), in the order a claim lists them.
const STATED: [&str; 19] = [
    "face", "fpt", "geo", "hwk", "iris", "kba", "mca", "otp", "pin", "pop", "pwd", "rba", "retina",
    "sc", "sms", "swk", "tel", "user", "vbm",
];

impl Stated {
    /// The registered values among `values`; anything else is dropped.
    pub fn of<'a>(values: impl IntoIterator<Item = &'a str>) -> Self {
        let mut bits = 0;
        for value in values {
            if let Some(i) = STATED.iter().position(|known| *known == value) {
                bits |= 1 << i;
            }
        }
        Self(bits)
    }

    /// These and `value` (a registered one).
    fn with(self, value: &str) -> Self {
        Self(self.0 | Self::of([value]).0)
    }

    fn values(self) -> impl Iterator<Item = &'static str> {
        STATED.iter().enumerate().filter(move |(i, _)| self.0 & (1 << i) != 0).map(|(_, v)| *v)
    }
}

impl Amr {
    const OWN: [Self; 4] =
        [Self::Password, Self::PasswordOtp, Self::PasskeySynced, Self::PasskeyBound];

    /// The values, in the order the claim lists them.
    pub fn values(self) -> Vec<&'static str> {
        match self {
            Self::Password => vec!["pwd"],
            Self::PasswordOtp => vec!["pwd", "otp", "mfa"],
            Self::PasskeySynced => vec!["swk", "user", "mfa"],
            Self::PasskeyBound => vec!["hwk", "user", "mfa"],
            Self::Federated(stated) => std::iter::once("fed").chain(stated.values()).collect(),
            Self::FederatedMfa(stated) => {
                std::iter::once("fed").chain(stated.values()).chain(["mfa"]).collect()
            }
        }
    }

    /// As stored (space-separated values).
    pub fn as_stored(self) -> String {
        self.values().join(" ")
    }

    /// From a stored value; NULL (rows from before TOTP) or anything unknown is a password.
    /// Read with every session: parsed from the stored text, no value copied.
    pub fn from_stored(stored: Option<&str>) -> Self {
        Self::parse(stored.unwrap_or_default().split(' ')).unwrap_or(Self::Password)
    }

    /// From a column recorded with the sign-in (a refresh family, a device approval), where
    /// NULL means a row from before it was recorded: unknown, so no `amr` claim, rather than
    /// the password that [`Self::from_stored`] assumes.
    pub fn recorded(stored: Option<&str>) -> Option<Self> {
        stored.map(|stored| Self::from_stored(Some(stored)))
    }

    /// From a token's `amr` claim; `None` for a list this server does not issue.
    pub fn from_values(values: &[String]) -> Option<Self> {
        Self::parse(values.iter().map(String::as_str))
    }

    /// The sign-in whose values are exactly `values`, if this server issues such a list.
    fn parse<'a>(values: impl Iterator<Item = &'a str> + Clone) -> Option<Self> {
        if let Some(own) =
            Self::OWN.into_iter().find(|amr| amr.values().into_iter().eq(values.clone()))
        {
            return Some(own);
        }
        let mut rest = values.clone();
        if rest.next() != Some("fed") {
            return None;
        }
        let mfa = rest.clone().last() == Some("mfa");
        let stated = Stated::of(rest.filter(|v| *v != "mfa"));
        // Exactly what `values` makes of it (order, no repeats, nothing unknown), or not ours.
        let amr = if mfa { Self::FederatedMfa(stated) } else { Self::Federated(stated) };
        amr.values().into_iter().eq(values).then_some(amr)
    }

    /// This sign-in completed with an authenticator app's code (or a recovery code): a
    /// password's becomes `["pwd","otp","mfa"]`, an upstream provider's `["fed", …, "otp", …,
    /// "mfa"]`.
    pub fn with_code(self) -> Self {
        match self {
            Self::Federated(stated) | Self::FederatedMfa(stated) => {
                Self::FederatedMfa(stated.with("otp"))
            }
            _ => Self::PasswordOtp,
        }
    }

    /// The assurance this sign-in reached.
    pub fn level(self) -> Level {
        match self {
            Self::Password | Self::Federated(_) => Level::Password,
            Self::PasswordOtp | Self::FederatedMfa(_) => Level::MultiFactor,
            Self::PasskeySynced => Level::PhishingResistant,
            Self::PasskeyBound => Level::PhishingResistantHardware,
        }
    }
}

/// Authentication assurance, weakest first: what a client may ask for with `acr_values` or
/// `require_mfa`, and what the `acr` claim reports (docs/REFERENCE.md §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A password alone.
    Password,
    /// Two factors: a password and a one-time code, or a passkey.
    MultiFactor,
    /// A passkey: bound to this server's origin, so it cannot be phished (OpenID Connect
    /// EAP ACR Values §2, `phr`).
    PhishingResistant,
    /// A passkey that never leaves its authenticator (EAP ACR Values §2, `phrh`).
    PhishingResistantHardware,
}

impl Level {
    /// Every level, weakest first, as `acr_values_supported` lists them.
    pub const ALL: [Self; 4] = [
        Self::Password,
        Self::MultiFactor,
        Self::PhishingResistant,
        Self::PhishingResistantHardware,
    ];

    /// The `acr` value.
    pub fn acr(self) -> &'static str {
        match self {
            Self::Password => "urn:castellan:acr:pwd",
            Self::MultiFactor => "urn:castellan:acr:mfa",
            Self::PhishingResistant => "phr",
            Self::PhishingResistantHardware => "phrh",
        }
    }

    /// The level an `acr` value names, if this server knows it.
    pub fn from_acr(acr: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|level| level.acr() == acr)
    }

    /// What a request's `acr_values` asks for: the weakest level it names that this server
    /// knows (any of them satisfies it; OIDC Core §3.1.2.1), none if it names none.
    pub fn requested(acr_values: &str) -> Option<Self> {
        acr_values.split(' ').filter_map(Self::from_acr).min()
    }
}

/// A logged-in browser: who, since when, how, and the session's id (to bind CSRF tokens).
#[derive(Clone)]
pub struct Session {
    pub id: String,
    pub user: UserRecord,
    pub auth_time: DateTime<Utc>,
    pub amr: Amr,
}

/// Never the raw session id (it is the cookie) in a log.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &"[redacted]")
            .field("user", &self.user)
            .field("auth_time", &self.auth_time)
            .field("amr", &self.amr)
            .finish()
    }
}

impl Session {
    /// The stored key of this session (the hash of its id, never the id).
    pub fn id_hash(&self) -> Vec<u8> {
        hash(&self.id)
    }
}

fn hash(id: &str) -> Vec<u8> {
    digest(&SHA256, id.as_bytes()).as_ref().to_vec()
}

/// The longest User-Agent a session keeps, in characters.
pub const USER_AGENT_CHARS: usize = 120;

/// The browser a session was started from, shown to its user on /account: the User-Agent
/// (cut to [`USER_AGENT_CHARS`], control characters dropped) and the source address.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub user_agent: Option<String>,
    pub address: Option<String>,
}

impl Origin {
    pub fn new(user_agent: Option<&str>, address: Option<String>) -> Self {
        let user_agent = user_agent
            .map(|ua| {
                ua.chars().filter(|c| !c.is_control()).take(USER_AGENT_CHARS).collect::<String>()
            })
            .filter(|ua| !ua.trim().is_empty());
        Self { user_agent, address }
    }
}

/// An opaque name for the session stored under `id_hash`, for a form that ends it: a MAC of
/// the hash, so neither the cookie nor the stored hash leaves the server, and a handle
/// cannot be made up. Only ever matched against the sessions of the user asking.
pub fn handle(key: &hmac::Key, id_hash: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(hmac::sign(key, &handle_input(id_hash)))
}

fn handle_matches(key: &hmac::Key, id_hash: &[u8], presented: &str) -> bool {
    let Ok(tag) = URL_SAFE_NO_PAD.decode(presented) else { return false };
    hmac::verify(key, &handle_input(id_hash), &tag).is_ok()
}

/// The `sid` claim of the session stored under `id_hash` (Back-Channel Logout §2.1): a MAC
/// of the hash, so the same session always has the same `sid`, and neither the cookie nor
/// the stored hash can be learnt from it.
pub fn sid(key: &hmac::Key, id_hash: &[u8]) -> String {
    let mut input = b"session sid\n".to_vec();
    input.extend_from_slice(id_hash);
    URL_SAFE_NO_PAD.encode(hmac::sign(key, &input))
}

/// Domain-separated from the CSRF tokens made with the same key (`csrf\n…`).
fn handle_input(id_hash: &[u8]) -> Vec<u8> {
    let mut input = b"session handle\n".to_vec();
    input.extend_from_slice(id_hash);
    input
}

/// Starts a session for `user_id` (128+ random bits), signed in by `amr`, and returns its id
/// for the cookie; `event` (the sign-in) is recorded in the same transaction.
pub async fn start(
    db: &Db,
    user_id: &str,
    amr: Amr,
    lifetime: Duration,
    origin: Origin,
    event: &Event,
) -> Result<String, StoreError> {
    let id = secret::random_token(32)?;
    let now = Utc::now();
    let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::hours(12));
    let record = SessionRecord {
        id_hash: hash(&id),
        user_id: user_id.to_owned(),
        auth_time: now,
        last_seen_at: now,
        expires_at: now + lifetime,
        user_agent: origin.user_agent,
        address: origin.address,
        amr: Some(amr.as_stored().to_owned()),
    };
    let txn = db.begin().await?;
    store::sessions::insert(&txn, &record).await?;
    audit::record(&txn, event).await?;
    txn.commit().await?;
    event.log();
    Ok(id)
}

/// The session a cookie value names, if it is live and its user enabled. Anything else in
/// the cookie (a token, garbage) simply finds no session.
pub async fn find(
    db: &Db,
    cookie: &str,
    idle_timeout: Duration,
) -> Result<Option<Session>, StoreError> {
    if cookie.len() != 43
        || !cookie.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Ok(None);
    }
    let id_hash = hash(cookie);
    let Some((record, user)) = store::sessions::find_with_user(db, &id_hash).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    let idle = chrono::Duration::from_std(idle_timeout).unwrap_or(chrono::Duration::minutes(30));
    if record.expires_at <= now || record.last_seen_at + idle <= now {
        store::sessions::delete(db, &id_hash).await?;
        return Ok(None);
    }
    let Some(user) = user else { return Ok(None) };
    if user.disabled {
        store::sessions::delete(db, &id_hash).await?;
        return Ok(None);
    }
    let touch_every = chrono::Duration::from_std(TOUCH_EVERY.min(idle_timeout / 4)).unwrap_or(idle);
    if now - record.last_seen_at >= touch_every {
        store::sessions::touch(db, &id_hash, now).await?;
    }
    let amr = Amr::from_stored(record.amr.as_deref());
    Ok(Some(Session { id: cookie.to_owned(), user, auth_time: record.auth_time, amr }))
}

/// Ends the session a cookie names (logout, or a new login replacing it); `event`, when
/// given (a logout), is recorded in the same transaction.
pub async fn end(db: &Db, cookie: &str, event: Option<&Event>) -> Result<(), StoreError> {
    let Some(event) = event else { return store::sessions::delete(db, &hash(cookie)).await };
    let txn = db.begin().await?;
    store::sessions::delete(&txn, &hash(cookie)).await?;
    audit::record(&txn, event).await?;
    txn.commit().await?;
    event.log();
    Ok(())
}

/// Ends the session of `user_id` that `handle` names, if it is one of their live sessions
/// other than `current` (the browser asking); `event` is recorded with it. Whether one ended:
/// a handle of another user's session, of the current one, or made up ends nothing.
pub async fn end_other(
    db: &Db,
    key: &hmac::Key,
    current: &Session,
    handle: &str,
    idle_timeout: Duration,
    event: &Event,
) -> Result<bool, StoreError> {
    let own = current.id_hash();
    let user_id = &current.user.id;
    let live = list_live(db, user_id, idle_timeout).await?;
    let Some(target) =
        live.into_iter().find(|s| s.id_hash != own && handle_matches(key, &s.id_hash, handle))
    else {
        return Ok(false);
    };
    let txn = db.begin().await?;
    if !store::sessions::delete_of_user(&txn, user_id, &target.id_hash).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    audit::record(&txn, event).await?;
    txn.commit().await?;
    event.log();
    Ok(true)
}

/// At most this many of a user's sessions are listed to them (and so may be ended by handle).
pub const LISTED: u64 = 50;

/// Up to [`LISTED`] live sessions of `user_id`, the most recently used first.
pub async fn list_live(
    db: &Db,
    user_id: &str,
    idle_timeout: Duration,
) -> Result<Vec<SessionRecord>, StoreError> {
    let now = Utc::now();
    let idle = chrono::Duration::from_std(idle_timeout).unwrap_or(chrono::Duration::minutes(30));
    store::sessions::list_for_user(db, user_id, now, now - idle, LISTED).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_amr_round_trips_through_its_stored_form_and_unknown_is_a_password() {
        let stated = Stated::of(["pwd", "otp", "unknown", "hwk"]);
        let federated =
            [Amr::Federated(Stated::default()), Amr::Federated(stated), Amr::FederatedMfa(stated)];
        for amr in Amr::OWN.into_iter().chain(federated) {
            assert_eq!(Amr::from_stored(Some(&amr.as_stored())), amr);
            assert_eq!(amr.as_stored(), amr.values().join(" "));
        }
        assert_eq!(Amr::from_stored(None), Amr::Password);
        assert_eq!(Amr::from_stored(Some("pwd otp")), Amr::Password);
    }

    #[test]
    fn a_recorded_amr_is_unknown_only_when_nothing_was_recorded() {
        assert_eq!(Amr::recorded(None), None);
        assert_eq!(Amr::recorded(Some("hwk user mfa")), Some(Amr::PasskeyBound));
        assert_eq!(Amr::recorded(Some("pwd otp")), Some(Amr::Password));
    }

    #[test]
    fn the_weakest_known_acr_value_is_what_a_request_asks_for() {
        assert_eq!(Level::requested("phrh urn:castellan:acr:mfa"), Some(Level::MultiFactor));
        assert_eq!(Level::requested("phr unknown"), Some(Level::PhishingResistant));
        assert_eq!(Level::requested("urn:other:acr"), None);
        assert_eq!(Level::requested(""), None);
        assert!(Amr::Password.level() < Amr::PasswordOtp.level());
        assert!(Amr::PasswordOtp.level() < Amr::PasskeySynced.level());
        assert!(Amr::PasskeySynced.level() < Amr::PasskeyBound.level());
    }
}
