//! Passkeys (WebAuthn Level 3, docs/REFERENCE.md §3.4, §3.6): registration from /account
//! and sign-in with a discoverable credential, verified by the `webauthn_rp` crate (pure
//! Rust, MIT or Apache-2.0). The relying party id is the issuer's host and the one origin
//! accepted is the issuer's origin. User verification is required both times.
//!
//! A ceremony's server state travels with the browser, sealed under the master key and bound
//! to the browser (its pre-session binding for a sign-in, its session for a registration),
//! and expires with the ceremony; its challenge is recorded when answered (`store::passkeys`)
//! so that an answer is accepted once.

use std::time::{Duration, SystemTime};

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::AuthenticationVerificationOptions;
use webauthn_rp::request::register::{
    CredProtect, PublicKeyCredentialUserEntity, RegistrationVerificationOptions, UserHandle16,
    Username,
};
use webauthn_rp::request::{
    AsciiDomain, ExtensionInfo, PublicKeyCredentialDescriptor, RpId, TimedCeremony,
};
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, AuthenticatorAttachment, Backup, CredentialId};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication16, DiscoverableAuthenticationServerState,
    DiscoverableCredentialRequestOptions, PublicKeyCredentialCreationOptions, Registration,
    RegistrationServerState,
};

use super::audit::{self, Event};
use super::master_key::MasterKey;
use crate::store::passkeys::{NewPasskey, PasskeyRecord, Use};
use crate::store::users::UserRecord;
use crate::store::{self, Db, StoreError};

/// The longest name a passkey may be given, in characters.
pub const NAME_CHARS: usize = 64;
/// The largest response (JSON) accepted from a browser: an attestation carries a public key
/// and some extensions; RSA keys are the largest.
pub const RESPONSE_LIMIT: usize = 16 * 1024;

/// Why a passkey ceremony was refused. Never the credential or its signature.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The sealed state is not this browser's, or is damaged, or has expired.
    #[error("the passkey request has expired or is not this browser's")]
    Expired,
    /// The challenge was answered before.
    #[error("the passkey request was already answered")]
    Replayed,
    /// The response is malformed or does not verify (wrong origin, signature, flags...).
    #[error("the passkey response is invalid: {0}")]
    Invalid(String),
    /// No registered passkey (or user) matches the response.
    #[error("the passkey is not registered")]
    Unknown,
    /// The passkey is right, but its user (this id) is disabled.
    #[error("the passkey's user is disabled")]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This server as a WebAuthn relying party: its id (the issuer's host) and its origin.
pub struct RelyingParty {
    id: RpId,
    origin: String,
}

impl RelyingParty {
    /// The relying party of the issuer `issuer`; none if its host is no domain name.
    pub fn from_issuer(issuer: &str) -> Option<Self> {
        let url = url::Url::parse(issuer).ok()?;
        let host = url.domain()?.to_ascii_lowercase();
        let id = RpId::Domain(AsciiDomain::try_from(host).ok()?);
        Some(Self { id, origin: url.origin().ascii_serialization() })
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// A ceremony begun: the options for `navigator.credentials` (JSON) and the sealed state to
/// send back with the answer.
pub struct Begun {
    pub options: serde_json::Value,
    pub state: String,
}

#[derive(Serialize, Deserialize)]
struct SealedState {
    /// The library's encoded server state.
    state: String,
    /// Whom a registration is for (empty for a sign-in).
    user_id: String,
}

fn registration_context(session_id: &str) -> String {
    format!("passkey registration v1\n{session_id}")
}

fn login_context(binding: &str) -> String {
    format!("passkey sign-in v1\n{binding}")
}

fn seal(master: &MasterKey, context: &str, state: Vec<u8>, user_id: &str) -> Option<String> {
    let sealed = SealedState { state: URL_SAFE_NO_PAD.encode(state), user_id: user_id.to_owned() };
    master.seal_field(context, &sealed)
}

fn open(master: &MasterKey, context: &str, field: &str) -> Result<SealedState, Refused> {
    master.open_field::<SealedState>(context, field, 2048).ok_or(Refused::Expired)
}

fn timeout_ms(timeout: Duration) -> std::num::NonZeroU32 {
    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX).max(1000);
    std::num::NonZeroU32::new(ms).unwrap_or(std::num::NonZeroU32::MIN)
}

fn invalid(error: impl std::fmt::Display) -> Refused {
    Refused::Invalid(error.to_string())
}

/// The stored form of a challenge answered (its SHA-256) and until when it matters.
fn challenge_key(ceremony: &impl TimedCeremony) -> (Vec<u8>, DateTime<Utc>) {
    let challenge = ceremony.sent_challenge().encode().unwrap_or_default();
    let hash = digest(&SHA256, &challenge.to_le_bytes()).as_ref().to_vec();
    let expires: DateTime<Utc> = ceremony.expiration().into();
    (hash, expires)
}

fn expired(ceremony: &impl TimedCeremony) -> bool {
    ceremony.expiration() <= SystemTime::now()
}

/// Begins registering a new passkey of `user_id` from the session `session_id`: `handle` is
/// the user handle of the user's other passkeys (a new random one for the first), `exclude`
/// their credential ids (an authenticator holding one of them refuses to make another).
#[allow(clippy::too_many_arguments)]
pub fn begin_registration(
    rp: &RelyingParty,
    master: &MasterKey,
    session_id: &str,
    user_id: &str,
    username: &str,
    handle: Option<&[u8]>,
    exclude: &[Vec<u8>],
    timeout: Duration,
) -> Result<Begun, Refused> {
    let handle = match handle.and_then(|h| <[u8; 16]>::try_from(h).ok()) {
        Some(bytes) => UserHandle16::decode(bytes).map_err(invalid)?,
        None => UserHandle16::new(),
    };
    // The name the authenticator shows; a username the profile refuses shows as the user id.
    let name =
        Username::try_from(username).or_else(|_| Username::try_from(user_id)).map_err(invalid)?;
    let user = PublicKeyCredentialUserEntity { name, id: &handle, display_name: None };
    let exclude = exclude
        .iter()
        .filter_map(|id| CredentialId::<Vec<u8>>::decode(id.clone()).ok())
        .filter_map(|id| {
            // No transports known: any.
            let transports = AuthTransports::decode(0).ok()?;
            Some(PublicKeyCredentialDescriptor { id, transports })
        })
        .collect();
    let mut options = PublicKeyCredentialCreationOptions::passkey(&rp.id, user, exclude);
    options.timeout = timeout_ms(timeout);
    // Asked for, not insisted on: user verification is required anyway.
    options.extensions.cred_protect =
        CredProtect::UserVerificationRequired(ExtensionInfo::AllowDontEnforceValue);
    let (server, client) = options.start_ceremony().map_err(invalid)?;
    let options = serde_json::to_value(&client).map_err(invalid)?;
    let encoded = server.encode().map_err(invalid)?;
    let state = seal(master, &registration_context(session_id), encoded, user_id)
        .ok_or_else(|| invalid("cannot seal the state"))?;
    Ok(Begun { options, state })
}

/// Verifies the answer `response` (JSON) to the registration `state` sealed for this
/// session and user, and stores the new passkey named `name` with `event`, in one
/// transaction with the challenge marked answered.
#[allow(clippy::too_many_arguments)]
pub async fn finish_registration(
    db: &Db,
    rp: &RelyingParty,
    master: &MasterKey,
    session_id: &str,
    user_id: &str,
    state: &str,
    response: &[u8],
    name: &str,
    event: &Event,
) -> Result<String, Refused> {
    let sealed = open(master, &registration_context(session_id), state)?;
    if sealed.user_id != user_id {
        return Err(Refused::Expired);
    }
    let encoded = URL_SAFE_NO_PAD.decode(sealed.state).map_err(|_| Refused::Expired)?;
    let server =
        RegistrationServerState::<16>::decode(encoded.as_slice()).map_err(|_| Refused::Expired)?;
    if expired(&server) {
        return Err(Refused::Expired);
    }
    if response.len() > RESPONSE_LIMIT {
        return Err(invalid("the response is too large"));
    }
    let (challenge, until) = challenge_key(&server);
    let registration = Registration::from_json_custom(response).map_err(invalid)?;
    let origins = [rp.origin.as_str()];
    let options = RegistrationVerificationOptions::<&str, &str> {
        allowed_origins: &origins,
        ..RegistrationVerificationOptions::default()
    };
    let credential = server.verify(&rp.id, &registration, &options).map_err(invalid)?;
    let dynamic = credential.dynamic_state();
    let public_key = credential.static_state().encode().map_err(invalid)?;
    let id = uuid::Uuid::new_v4().to_string();
    let record = NewPasskey {
        id: id.clone(),
        user_id: user_id.to_owned(),
        credential_id: credential.id().as_ref().to_vec(),
        user_handle: credential.user_id().as_ref().to_vec(),
        name: clean_name(name),
        public_key,
        state: to_use(dynamic),
        created_at: Utc::now(),
    };
    let txn = db.begin().await.map_err(StoreError::from)?;
    if !store::passkeys::answer_challenge(&txn, challenge, until).await? {
        txn.rollback().await.map_err(StoreError::from)?;
        return Err(Refused::Replayed);
    }
    if !store::passkeys::insert(&txn, record).await? {
        // The same credential registered already (to this user or another).
        txn.rollback().await.map_err(StoreError::from)?;
        return Err(invalid("this passkey is registered already"));
    }
    audit::record(&txn, event).await?;
    txn.commit().await.map_err(StoreError::from)?;
    event.log();
    Ok(id)
}

/// A name as given, cut to [`NAME_CHARS`] with control characters dropped; "Passkey" if
/// nothing is left.
pub fn clean_name(name: &str) -> String {
    let name: String =
        name.chars().filter(|c| !c.is_control()).take(NAME_CHARS).collect::<String>();
    let name = name.trim();
    if name.is_empty() { "Passkey".to_owned() } else { name.to_owned() }
}

/// Begins a sign-in with a discoverable passkey for the browser of `binding`.
pub fn begin_login(
    rp: &RelyingParty,
    master: &MasterKey,
    binding: &str,
    timeout: Duration,
) -> Result<Begun, Refused> {
    let mut options = DiscoverableCredentialRequestOptions::passkey(&rp.id);
    options.0.timeout = timeout_ms(timeout);
    let (server, client) = options.start_ceremony().map_err(invalid)?;
    let options = serde_json::to_value(&client).map_err(invalid)?;
    let encoded = server.encode().map_err(invalid)?;
    let state = seal(master, &login_context(binding), encoded, "")
        .ok_or_else(|| invalid("cannot seal the state"))?;
    Ok(Begun { options, state })
}

/// A passkey sign-in verified: whose (the user as stored, disabled or not), and whether the
/// passkey is backup eligible (synced).
#[derive(Debug)]
pub struct SignedIn {
    pub user: UserRecord,
    pub passkey_id: String,
    pub backup_eligible: bool,
}

/// Verifies the answer `response` (JSON) to the sign-in `state` sealed for this browser:
/// the passkey it names must be registered, its user handle the one stored, its signature
/// right for this origin with the user verified. The challenge is marked answered and the
/// passkey's counter and flags stored, in one transaction.
pub async fn finish_login(
    db: &Db,
    rp: &RelyingParty,
    master: &MasterKey,
    binding: &str,
    state: &str,
    response: &[u8],
) -> Result<SignedIn, Refused> {
    let sealed = open(master, &login_context(binding), state)?;
    let encoded = URL_SAFE_NO_PAD.decode(sealed.state).map_err(|_| Refused::Expired)?;
    let server = DiscoverableAuthenticationServerState::decode(encoded.as_slice())
        .map_err(|_| Refused::Expired)?;
    if expired(&server) {
        return Err(Refused::Expired);
    }
    if response.len() > RESPONSE_LIMIT {
        return Err(invalid("the response is too large"));
    }
    let (challenge, until) = challenge_key(&server);
    let answer = DiscoverableAuthentication16::from_json_custom(response).map_err(invalid)?;
    let found = store::passkeys::find_by_credential(db, answer.raw_id().as_ref()).await?;
    let Some((stored, Some(user))) = found else {
        return Err(Refused::Unknown);
    };
    if stored.user_handle.as_slice() != answer.response().user_handle().as_ref() {
        return Err(Refused::Unknown);
    }
    let mut credential = authenticated(&stored, answer.response().user_handle())?;
    let origins = [rp.origin.as_str()];
    let options = AuthenticationVerificationOptions::<&str, &str> {
        allowed_origins: &origins,
        update_uv: true,
        ..AuthenticationVerificationOptions::default()
    };
    server.verify(&rp.id, &answer, &mut credential, &options).map_err(invalid)?;
    if user.disabled {
        return Err(Refused::Disabled(user.id));
    }
    let used = to_use(credential.dynamic_state());
    let txn = db.begin().await.map_err(StoreError::from)?;
    if !store::passkeys::answer_challenge(&txn, challenge, until).await? {
        txn.rollback().await.map_err(StoreError::from)?;
        return Err(Refused::Replayed);
    }
    store::passkeys::record_use(&txn, &stored.id, &used, Utc::now()).await?;
    txn.commit().await.map_err(StoreError::from)?;
    Ok(SignedIn { user, passkey_id: stored.id, backup_eligible: used.backup_eligible })
}

type StoredKey = CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>;

fn authenticated<'a>(
    stored: &'a PasskeyRecord,
    handle: &'a UserHandle16,
) -> Result<AuthenticatedCredential<'a, 'a, 16, StoredKey>, Refused> {
    let id = CredentialId::<&[u8]>::decode(stored.credential_id.as_slice()).map_err(invalid)?;
    let static_state =
        StaticState::<StoredKey>::decode(stored.public_key.as_slice()).map_err(invalid)?;
    let dynamic_state = DynamicState {
        user_verified: stored.user_verified,
        backup: match (stored.backup_eligible, stored.backup_state) {
            (false, _) => Backup::NotEligible,
            (true, false) => Backup::Eligible,
            (true, true) => Backup::Exists,
        },
        sign_count: u32::try_from(stored.sign_count).unwrap_or(u32::MAX),
        authenticator_attachment: match stored.attachment {
            1 => AuthenticatorAttachment::Platform,
            2 => AuthenticatorAttachment::CrossPlatform,
            _ => AuthenticatorAttachment::None,
        },
    };
    AuthenticatedCredential::new(id, handle, static_state, dynamic_state).map_err(invalid)
}

fn to_use(state: DynamicState) -> Use {
    Use {
        sign_count: i64::from(state.sign_count),
        user_verified: state.user_verified,
        backup_eligible: !matches!(state.backup, Backup::NotEligible),
        backup_state: matches!(state.backup, Backup::Exists),
        attachment: match state.authenticator_attachment {
            AuthenticatorAttachment::None => 0,
            AuthenticatorAttachment::Platform => 1,
            AuthenticatorAttachment::CrossPlatform => 2,
        },
    }
}

/// Renames the passkey `id` of `user_id`, recording `event` with it; whether it was theirs.
pub async fn rename(
    db: &Db,
    user_id: &str,
    id: &str,
    name: &str,
    event: &Event,
) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    if !store::passkeys::rename(&txn, user_id, id, &clean_name(name)).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    audit::record(&txn, event).await?;
    txn.commit().await?;
    event.log();
    Ok(true)
}

/// Removes the passkey `id` of `user_id`, recording `event` with it; whether it was theirs
/// (for /account, the admin API and the CLI alike).
pub async fn remove(db: &Db, user_id: &str, id: &str, event: &Event) -> Result<bool, StoreError> {
    let txn = db.begin().await?;
    if !store::passkeys::remove(&txn, user_id, id).await? {
        txn.rollback().await?;
        return Ok(false);
    }
    audit::record(&txn, event).await?;
    txn.commit().await?;
    event.log();
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_is_the_issuer_host_and_origin() {
        let rp = RelyingParty::from_issuer("https://ID.example.com/auth").expect("a domain");
        assert_eq!(rp.id.as_ref(), "id.example.com");
        assert_eq!(rp.origin(), "https://id.example.com");
        let rp = RelyingParty::from_issuer("http://localhost:8080").expect("localhost");
        assert_eq!(rp.id.as_ref(), "localhost");
        assert_eq!(rp.origin(), "http://localhost:8080");
        let rp = RelyingParty::from_issuer("https://example.com:443").expect("default port");
        assert_eq!(rp.origin(), "https://example.com");
        // WebAuthn refuses IP addresses as relying party ids.
        assert!(RelyingParty::from_issuer("http://127.0.0.1:8080").is_none());
        assert!(RelyingParty::from_issuer("http://[::1]:8080").is_none());
    }

    #[test]
    fn names_are_cut_cleaned_and_never_empty() {
        assert_eq!(clean_name("  Work laptop  "), "Work laptop");
        assert_eq!(clean_name("a\u{0}b\nc"), "abc");
        assert_eq!(clean_name(" \t "), "Passkey");
        assert_eq!(clean_name(&"é".repeat(100)).chars().count(), NAME_CHARS);
    }

    #[test]
    fn a_sealed_state_opens_only_for_its_browser() {
        let encoded = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        let configured = secrecy::SecretString::from(encoded);
        let master = MasterKey::load_or_create(Some(&configured), std::path::Path::new("/none"))
            .expect("a master key");
        let sealed = seal(&master, &login_context("binding-a"), vec![1, 2, 3], "").expect("seal");
        assert!(open(&master, &login_context("binding-a"), &sealed).is_ok());
        assert!(open(&master, &login_context("binding-b"), &sealed).is_err());
        assert!(open(&master, &registration_context("binding-a"), &sealed).is_err());
        assert!(open(&master, &login_context("binding-a"), "garbage").is_err());
    }
}
