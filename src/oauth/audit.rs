//! The audit trail's one shape (docs/REFERENCE.md §6.5): an event names its type, who acted
//! (with their address and request id), what it touched, the outcome and a small detail that
//! never holds a secret, token, password or code. Whoever owns a change's transaction writes
//! its event there ([`record`]) and logs it after the commit ([`Event::log`]).

use chrono::Utc;
use serde_json::{Map, Value};

use crate::store::events::EventRecord;
use crate::store::{self, StoreError};

/// Defines [`EventType`] with each type's name, once.
macro_rules! event_types {
    ($($variant:ident => $name:literal,)*) => {
        /// What happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum EventType { $($variant,)* }

        impl EventType {
            /// Every type, in the order docs/REFERENCE.md §6.5 lists them.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The type's name, as stored, listed and logged.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }
        }
    };
}

event_types! {
    ClientCreated => "client.created",
    ClientRegistered => "client.registered",
    ClientUpdated => "client.updated",
    ClientDeleted => "client.deleted",
    ClientSecretRotated => "client.secret_rotated",
    ScopeCreated => "scope.created",
    ScopeUpdated => "scope.updated",
    ScopeDeleted => "scope.deleted",
    UserCreated => "user.created",
    UserUpdated => "user.updated",
    UserDisabled => "user.disabled",
    UserPasswordReset => "user.password_reset",
    UserPasswordChanged => "user.password_changed",
    UserDeleted => "user.deleted",
    UserSessionsEnded => "user.sessions_ended",
    KeyRotated => "key.rotated",
    InitialAccessTokenIssued => "initial_access_token.issued",
    InitialAccessTokenRevoked => "initial_access_token.revoked",
    RegistrationPolicySet => "registration_policy.set",
    GrantRevoked => "grant.revoked",
    SignIn => "sign_in",
    SignInLocked => "sign_in.locked",
    MfaTotpEnrolled => "mfa.totp_enrolled",
    MfaTotpRemoved => "mfa.totp_removed",
    MfaRecoveryCodeUsed => "mfa.recovery_code_used",
    MfaPasskeyRegistered => "mfa.passkey_registered",
    MfaPasskeyRenamed => "mfa.passkey_renamed",
    MfaPasskeyRemoved => "mfa.passkey_removed",
    IdentityLinked => "identity.linked",
    IdentityUnlinked => "identity.unlinked",
    UpstreamProviderCreated => "upstream_provider.created",
    UpstreamProviderUpdated => "upstream_provider.updated",
    UpstreamProviderDeleted => "upstream_provider.deleted",
    DeviceLookupLocked => "device_lookup.locked",
    ClientAuthLocked => "client_auth.locked",
    Logout => "logout",
    LogoutDeliveryFailed => "logout.delivery_failed",
    ConsoleSignIn => "console.sign_in",
    ConsentGiven => "consent.given",
    DeviceApproved => "device.approved",
    DeviceDenied => "device.denied",
    RefreshTokenReused => "refresh_token.reused",
    AuthorizationCodeReplayed => "authorization_code.replayed",
}

impl EventType {
    /// The type named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// Who acted: `client:<id>`, `user:<id>`, `system:<what>` or `anonymous`, from where, in which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    pub address: Option<String>,
    pub request_id: Option<String>,
}

impl Actor {
    /// A client acting with its own token.
    pub fn client(client_id: &str) -> Self {
        Self::named(format!("client:{client_id}"))
    }

    /// A user: signed in at a page, or with a token a client got for them.
    pub fn user(user_id: &str) -> Self {
        Self::named(format!("user:{user_id}"))
    }

    /// The server itself: housekeeping, the CLI (`system:<what>`).
    pub fn system(what: &str) -> Self {
        Self::named(format!("system:{what}"))
    }

    /// Someone not (yet) known: a failed sign-in, a replayed credential.
    pub fn anonymous() -> Self {
        Self::named("anonymous".to_owned())
    }

    fn named(id: String) -> Self {
        Self { id, address: None, request_id: None }
    }

    /// The same actor, seen at `address` in request `request_id`.
    pub fn at(mut self, address: Option<String>, request_id: Option<String>) -> Self {
        self.address = address;
        self.request_id = request_id;
        self
    }
}

/// One event, before it is recorded.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventType,
    pub actor: Actor,
    pub subject: String,
    pub outcome: Outcome,
    /// A JSON object of identifiers and flags only.
    pub detail: Map<String, Value>,
}

impl Event {
    /// A successful `kind` by `actor` on `subject` (e.g. `client:<id>`).
    pub fn new(kind: EventType, actor: Actor, subject: impl Into<String>) -> Self {
        Self { kind, actor, subject: subject.into(), outcome: Outcome::Success, detail: Map::new() }
    }

    /// The same event, failed.
    pub fn failed(mut self) -> Self {
        self.outcome = Outcome::Failure;
        self
    }

    /// The same event with `name` in its detail: an identifier or a flag, never a secret.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(name.to_owned(), value.into());
        self
    }

    /// The detail as the JSON text stored and logged.
    pub fn detail_json(&self) -> String {
        Value::Object(self.detail.clone()).to_string()
    }

    /// The log line a SIEM takes: emitted after the commit, one per recorded event.
    pub fn log(&self) {
        tracing::info!(
            event = %self.kind,
            actor = %self.actor.id,
            actor_address = self.actor.address.as_deref().unwrap_or(""),
            subject = %self.subject,
            outcome = self.outcome.as_str(),
            detail = %self.detail_json(),
            "audit"
        );
    }
}

/// Writes `event` with the change it records: `db` is that change's transaction (or, for a
/// failure that changes nothing else, the connection its counter used).
pub async fn record(db: &impl sea_orm::ConnectionTrait, event: &Event) -> Result<(), StoreError> {
    let at = Utc::now();
    let record = EventRecord {
        id: store::events::new_id(at),
        at,
        kind: event.kind.as_str().to_owned(),
        actor: event.actor.id.clone(),
        actor_address: event.actor.address.clone(),
        request_id: event.actor.request_id.clone(),
        subject: event.subject.clone(),
        outcome: event.outcome.as_str().to_owned(),
        detail: event.detail_json(),
    };
    store::events::insert(db, &record).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_parses_back_from_its_name_and_names_are_unique() {
        let mut names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(*t));
        }
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EventType::ALL.len());
        assert_eq!(EventType::parse("nonsense"), None);
    }
}
