//! Client authentication (RFC 6749 §2.3, OAuth 2.1 §2.4, RFC 7523 §3): each client only with
//! its registered method; any failure is `invalid_client`.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use jsonwebtoken::{Algorithm, Validation};
use secrecy::SecretString;
use serde::Deserialize;

use super::audit::{self, Actor, Event, EventType};
use super::client::{AuthMethod, Client, is_client_id};
use super::client_keys::ClientKeys;
use super::registry::Registry;
use super::secret;
use super::throttle::Counted;
use super::throttle::Throttle;
use crate::config::Issuer;
use crate::error::OAuthError;
use crate::store::{self, Db};

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// How far a client's clock may be off: `nbf`/`iat` up to 10 s ahead, `exp` 10 s past (FAPI
/// 2.0 Security Profile §5.3.1.2 asks for 10 s; enough for every client).
const CLOCK_SKEW_SECS: u64 = 10;
/// An assertion may live at most this long: a short `exp` limits what a leak gives away.
const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

/// The credentials a request carried, by method; exactly one per request.
pub enum Presented {
    Basic { client_id: String, secret: SecretString },
    Post { client_id: String, secret: SecretString },
    Assertion { assertion: String, client_id: Option<String> },
    Public { client_id: String },
}

impl Presented {
    fn is_basic(&self) -> bool {
        matches!(self, Self::Basic { .. })
    }
}

/// Where and how a client authenticates: the issuer (an assertion may name it or its token
/// endpoint as audience), the brute-force limits, and the request's source address.
pub struct Authenticating<'a> {
    pub db: &'a Db,
    pub registry: &'a Registry,
    pub issuer: &'a Issuer,
    pub throttle: &'a Throttle,
    pub address: IpAddr,
    /// The client's keys, for `private_key_jwt`.
    pub client_keys: &'a ClientKeys,
    /// The request's id, for the audit event of a lockout.
    pub request_id: Option<String>,
}

/// Authenticates the client. An address over its failure limit is refused with 429; each
/// failure counts against the address only, never the client (docs/REFERENCE.md §9.6).
pub async fn authenticate(
    ctx: &Authenticating<'_>,
    presented: Presented,
) -> Result<Arc<Client>, OAuthError> {
    if let Err(refused) = ctx.throttle.check(ctx.address) {
        return Err(OAuthError::TooManyAttempts(refused.retry_after));
    }
    // A public client presents nothing to guess: its failures are never counted.
    let counted = !matches!(presented, Presented::Public { .. });
    match check(ctx, presented).await {
        Err(OAuthError::InvalidClient { basic }) if counted => {
            match ctx.throttle.client_failed(ctx.db, ctx.address).await? {
                Counted::Allowed => Err(OAuthError::InvalidClient { basic }),
                Counted::Locked(refused) => {
                    // The failure that locks the address out is recorded, once per window,
                    // with one more statement on the failure's path.
                    let address = ctx.address.to_string();
                    let actor =
                        Actor::anonymous().at(Some(address.clone()), ctx.request_id.clone());
                    let event = Event::new(
                        EventType::ClientAuthLocked,
                        actor,
                        format!("address:{address}"),
                    )
                    .failed()
                    .with("retry_after", refused.retry_after.as_secs());
                    audit::record(ctx.db, &event).await?;
                    event.log();
                    Err(OAuthError::InvalidClient { basic })
                }
                Counted::Refused(refused) => Err(OAuthError::TooManyAttempts(refused.retry_after)),
            }
        }
        other => other,
    }
}

async fn check(ctx: &Authenticating<'_>, presented: Presented) -> Result<Arc<Client>, OAuthError> {
    let basic = presented.is_basic();
    let refused = OAuthError::InvalidClient { basic };
    let (client_id, method) = match &presented {
        Presented::Basic { client_id, .. } => (client_id.clone(), AuthMethod::ClientSecretBasic),
        Presented::Post { client_id, .. } => (client_id.clone(), AuthMethod::ClientSecretPost),
        Presented::Public { client_id } => (client_id.clone(), AuthMethod::None),
        Presented::Assertion { assertion, client_id } => {
            (assertion_subject(assertion, client_id.as_deref())?, AuthMethod::PrivateKeyJwt)
        }
    };
    if !is_client_id(&client_id) {
        return Err(refused);
    }
    let Some(client) = ctx.registry.find(ctx.db, &client_id).await? else { return Err(refused) };
    // docs/REFERENCE.md §5: a client authenticates only with its registered method.
    if client.metadata.token_endpoint_auth_method != method {
        return Err(refused);
    }
    match presented {
        Presented::Basic { secret, .. } | Presented::Post { secret, .. } => {
            if !secret::matches_any(&secret, client.live_secret_hashes(Utc::now())) {
                return Err(refused);
            }
        }
        Presented::Assertion { assertion, .. } => {
            verify_assertion(ctx, &client, &assertion).await?;
        }
        Presented::Public { .. } => {}
    }
    Ok(client)
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    iat: Option<i64>,
    jti: Option<String>,
    #[serde(default)]
    aud: serde_json::Value,
}

/// The client an assertion claims to come from: `iss` = `sub` = client_id (RFC 7523 §3),
/// read before verification only to find which keys to verify with.
fn assertion_subject(assertion: &str, client_id: Option<&str>) -> Result<String, OAuthError> {
    let refused = OAuthError::InvalidClient { basic: false };
    let claims: AssertionClaims =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| refused)?;
    if claims.iss != claims.sub || client_id.is_some_and(|id| id != claims.sub) {
        return Err(OAuthError::InvalidClient { basic: false });
    }
    Ok(claims.sub)
}

async fn verify_assertion(
    ctx: &Authenticating<'_>,
    client: &Client,
    assertion: &str,
) -> Result<(), OAuthError> {
    let refused = || OAuthError::InvalidClient { basic: false };
    // Only an assertion names the endpoints: no string is built for the others. RFC 9126
    // §2: an assertion for the PAR endpoint may name it too.
    let issuer = ctx.issuer;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = CLOCK_SKEW_SECS;
    if client.is_fapi2() {
        // FAPI 2.0 Security Profile §5.3.2.1: the issuer, and only the issuer, as audience
        // (an endpoint URL as audience is what the audience-injection attacks abuse).
        validation.set_audience(&[issuer.as_str()]);
    } else {
        let (token, par) = (issuer.endpoint("/token"), issuer.endpoint("/par"));
        validation.set_audience(&[issuer.as_str(), &token, &par]);
    }
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let verified = ctx.client_keys.verify::<AssertionClaims>(client, assertion, validation).await;
    let claims = match verified {
        Ok(verified) => verified.claims,
        Err(e) => {
            tracing::debug!(client_id = %client.client_id, reason = %e, "client assertion refused");
            return Err(refused());
        }
    };
    // One audience only, this server: an array could make the assertion good elsewhere too.
    if !claims.aud.is_string() {
        return Err(refused());
    }
    let now = Utc::now().timestamp();
    if claims.exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(refused());
    }
    // An assertion from the future was not made by a client with a sane clock.
    if claims.iat.is_some_and(|iat| iat > now + CLOCK_SKEW_SECS as i64) {
        return Err(refused());
    }
    let jti = claims
        .jti
        .filter(|j| (1..=256).contains(&j.len()) && j.bytes().all(|b| (0x20..=0x7E).contains(&b)))
        .ok_or_else(refused)?;
    let expires = chrono::DateTime::from_timestamp(claims.exp, 0).ok_or_else(refused)?
        + chrono::Duration::seconds(CLOCK_SKEW_SECS as i64);
    // RFC 7523 §3 item 7: a replayed jti is refused, on every replica.
    if !store::clients::record_assertion(ctx.db, &client.client_id, &jti, expires).await? {
        return Err(refused());
    }
    Ok(())
}
