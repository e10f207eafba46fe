//! The device authorization grant (RFC 8628): a device without a browser asks at
//! `/device_authorization`, its user approves at `/device` on another screen, and the device
//! polls `/token` until the answer comes.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use chrono::Utc;
use serde::Serialize;

use super::{Approved, Issuing, ProofKey, TokenResponse};
use crate::config::Issuer;
use crate::error::OAuthError;
use crate::oauth::client::{Client, GrantType};
use crate::oauth::scope::Scopes;
use crate::oauth::secret;
use crate::oauth::session::Amr;
use crate::store::device_authorizations::{self as stored, NewAuthorization, Polled};
use crate::store::refresh_tokens::Origin;
use crate::store::{Db, StoreError};

/// Crockford's base32: digits and capitals without I, L, O and U, so nothing looks like
/// anything else. Eight of them make 2^40 codes (RFC 8628 §6.1 asks for enough entropy to
/// make guessing within the lifetime hopeless, with the rate limits of `/device`).
const USER_CODE_ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const USER_CODE_LENGTH: usize = 8;

/// A new user code, shown as `XXXX-XXXX`.
pub fn new_user_code() -> anyhow::Result<String> {
    let mut bytes = [0u8; USER_CODE_LENGTH];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("the OS random source failed"))?;
    // 256 is a multiple of 32: every character is equally likely.
    let chars: String =
        bytes.iter().map(|b| char::from(USER_CODE_ALPHABET[usize::from(b % 32)])).collect();
    Ok(format!("{}-{}", &chars[..4], &chars[4..]))
}

/// The code a user typed, as it was issued: case, dashes and spaces ignored, and the
/// characters the alphabet leaves out read as the ones they look like (O as 0, I and L as
/// 1); `None` unless that makes eight characters of the alphabet.
pub fn canonical_user_code(typed: &str) -> Option<String> {
    let mut canonical = String::with_capacity(USER_CODE_LENGTH);
    for c in typed.chars().filter(|c| *c != '-' && !c.is_whitespace()) {
        let c = match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        };
        if !c.is_ascii() || !USER_CODE_ALPHABET.contains(&(c as u8)) {
            return None;
        }
        canonical.push(c);
        if canonical.len() > USER_CODE_LENGTH {
            return None;
        }
    }
    (canonical.len() == USER_CODE_LENGTH).then_some(canonical)
}

/// `XXXXXXXX` as `XXXX-XXXX`.
pub fn display_user_code(canonical: &str) -> String {
    match canonical.split_at_checked(4) {
        Some((head, tail)) => format!("{head}-{tail}"),
        None => canonical.to_owned(),
    }
}

/// The hash a user code is stored under (of its canonical form).
pub fn user_code_hash(canonical: &str) -> Vec<u8> {
    digest(&SHA256, format!("user_code\n{canonical}").as_bytes()).as_ref().to_vec()
}

fn device_code_hash(device_code: &str) -> Vec<u8> {
    digest(&SHA256, device_code.as_bytes()).as_ref().to_vec()
}

/// The device authorization response (RFC 8628 §3.2).
#[derive(Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

/// Never the device code (it redeems the tokens) in a log.
impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"[redacted]")
            .field("user_code", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish()
    }
}

/// What starting a device authorization needs from the server.
pub struct Starting<'a> {
    pub db: &'a Db,
    pub issuer: &'a Issuer,
    pub lifetime: std::time::Duration,
    pub interval: std::time::Duration,
}

/// A device authorization request (RFC 8628 §3.1) of an authenticated `client`: stores it
/// and answers with the codes.
pub async fn start(
    ctx: &Starting<'_>,
    client: &Client,
    scope: Option<&str>,
) -> Result<DeviceAuthorization, OAuthError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient(
            "the client is not registered for the device authorization grant",
        ));
    }
    let scope = match scope {
        None => client.metadata.scope.clone(),
        Some(value) => {
            Scopes::parse(value).map_err(|_| OAuthError::InvalidScope("the scope is malformed"))?
        }
    };
    if !scope.is_subset_of(&client.metadata.scope) {
        return Err(OAuthError::InvalidScope("a requested scope is not allowed for this client"));
    }
    let device_code = secret::random_token(32)?;
    let now = Utc::now();
    let lifetime = i64::try_from(ctx.lifetime.as_secs()).unwrap_or(600);
    let interval = i32::try_from(ctx.interval.as_secs()).unwrap_or(5);
    // A user code is unique among stored ones; a draw that collides draws again.
    for _ in 0..8 {
        let user_code = new_user_code()?;
        let canonical = canonical_user_code(&user_code)
            .ok_or_else(|| anyhow::anyhow!("a new user code is not canonical"))?;
        let record = NewAuthorization {
            device_code_hash: device_code_hash(&device_code),
            user_code_hash: user_code_hash(&canonical),
            client_id: client.client_id.clone(),
            scope: scope.to_string(),
            interval_secs: interval,
            created_at: now,
            expires_at: now + chrono::Duration::seconds(lifetime),
        };
        match stored::insert(ctx.db, &record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        let verification_uri = ctx.issuer.endpoint("/device");
        let complete = url::form_urlencoded::Serializer::new(format!("{verification_uri}?"))
            .append_pair("user_code", &user_code)
            .finish();
        return Ok(DeviceAuthorization {
            device_code,
            user_code,
            verification_uri_complete: complete,
            verification_uri,
            expires_in: ctx.lifetime.as_secs(),
            interval: ctx.interval.as_secs(),
        });
    }
    Err(anyhow::anyhow!("no free user code in eight draws").into())
}

/// The parameters of a device_code token request (RFC 8628 §3.4).
pub struct Request<'a> {
    pub device_code: Option<&'a str>,
    pub resources: Vec<&'a str>,
    pub proof: ProofKey<'a>,
}

/// A device's poll (RFC 8628 §3.4, §3.5): the tokens once its user approved, exactly once,
/// else where the authorization stands.
pub async fn exchange(
    ctx: &Issuing<'_>,
    client: &Client,
    request: Request<'_>,
) -> Result<TokenResponse, OAuthError> {
    if !client.allows_grant(GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient(
            "the client is not registered for this grant type",
        ));
    }
    let device_code =
        request.device_code.ok_or(OAuthError::InvalidRequest("device_code is required"))?;
    let unknown = OAuthError::InvalidGrant("the device_code is invalid or already used");
    if device_code.len() > 256 {
        return Err(unknown);
    }
    let hash = device_code_hash(device_code);
    let poll_id = uuid::Uuid::new_v4().to_string();
    let flow = |error, description| Err(OAuthError::DeviceFlow { error, description });
    let approval =
        match stored::poll(ctx.db, &hash, &client.client_id, &poll_id, Utc::now()).await? {
            Polled::Approved(approval) => approval,
            Polled::Unknown | Polled::Redeemed => return Err(unknown),
            Polled::Expired => return flow("expired_token", "the device_code has expired"),
            Polled::Denied => return flow("access_denied", "the user denied the request"),
            // §3.5: a device polling sooner than its interval waits 5 s longer from now on.
            Polled::Pending { too_fast: true } => {
                return flow("slow_down", "poll less often: the interval grew by 5 seconds");
            }
            Polled::Pending { too_fast: false } => {
                return flow("authorization_pending", "the user has not answered yet");
            }
        };
    let approved = Approved {
        user_id: &approval.user_id,
        grant_id: &approval.grant_id,
        scope: &approval.scope,
        auth_time: approval.auth_time,
        // None only for an approval stored before how the user signed in was recorded.
        amr: Amr::recorded(approval.amr.as_deref()),
        // The approving browser session's: the device is told when it ends.
        sid: approval.sid.as_deref(),
        approved_at: approval.decided_at,
        nonce: None,
        access_jti: uuid::Uuid::new_v4().to_string(),
        family_id: uuid::Uuid::new_v4().to_string(),
        origin: Origin::Device(&hash),
    };
    ctx.user_tokens(client, approved, &request.resources, request.proof).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_user_code_is_two_groups_of_four_from_the_alphabet() {
        for _ in 0..200 {
            let code = new_user_code().expect("random");
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            let canonical = canonical_user_code(&code).expect("canonical");
            assert_eq!(display_user_code(&canonical), code);
        }
    }

    #[test]
    fn typed_codes_ignore_case_dashes_and_look_alikes() {
        assert_eq!(canonical_user_code("bdwp-hqpk").as_deref(), Some("BDWPHQPK"));
        assert_eq!(canonical_user_code(" BDWP HQPK ").as_deref(), Some("BDWPHQPK"));
        assert_eq!(
            canonical_user_code("o1il-2345").as_deref(),
            Some("0111-2345".replace('-', "").as_str())
        );
        assert_eq!(canonical_user_code("BDWP-HQP"), None);
        assert_eq!(canonical_user_code("BDWP-HQPKX"), None);
        assert_eq!(canonical_user_code("BDWU-HQPK"), None, "U is not in the alphabet");
        assert_eq!(canonical_user_code("BDWP-HQPÄ"), None);
        assert_eq!(canonical_user_code(""), None);
    }

    #[test]
    fn the_alphabet_has_32_distinct_characters_so_8_of_them_make_2_to_the_40() {
        let mut seen = USER_CODE_ALPHABET.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 32);
        assert!(!seen.iter().any(|c| b"ILOU".contains(c)));
    }
}
