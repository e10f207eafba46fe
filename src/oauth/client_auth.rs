//! Client authentication (RFC 6749 §2.3, OAuth 2.1 §2.4, RFC 7523 §3): each client only with
//! its registered method; any failure is `invalid_client`.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::Utc;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, Validation};
use secrecy::SecretString;
use serde::Deserialize;

use super::client::{AuthMethod, Client, is_client_id};
use super::keyring::LEEWAY;
use super::registry::Registry;
use super::secret;
use super::throttle::Throttle;
use crate::config::Issuer;
use crate::error::OAuthError;
use crate::store::{self, Db};

/// The `client_assertion_type` of a JWT assertion (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
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
    match check(ctx.db, ctx.registry, ctx.issuer, presented).await {
        Err(OAuthError::InvalidClient { basic }) if counted => {
            match ctx.throttle.client_failed(ctx.db, ctx.address).await? {
                Some(refused) => Err(OAuthError::TooManyAttempts(refused.retry_after)),
                None => Err(OAuthError::InvalidClient { basic }),
            }
        }
        other => other,
    }
}

async fn check(
    db: &Db,
    registry: &Registry,
    issuer: &Issuer,
    presented: Presented,
) -> Result<Arc<Client>, OAuthError> {
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
    let Some(client) = registry.find(db, &client_id).await? else { return Err(refused) };
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
            // Only an assertion names the endpoints: no string is built for the others. RFC 9126
            // §2: an assertion for the PAR endpoint may name it too.
            let audiences = [issuer.endpoint("/token"), issuer.endpoint("/par")];
            verify_assertion(db, &client, &assertion, issuer.as_str(), &audiences).await?;
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
    db: &Db,
    client: &Client,
    assertion: &str,
    issuer: &str,
    endpoints: &[String; 2],
) -> Result<(), OAuthError> {
    let refused = || OAuthError::InvalidClient { basic: false };
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| refused())?;
    // RFC 7515 §4.1.11: a `crit` header names extensions that must be understood; this
    // server understands none, so any is refused.
    if has_crit_header(assertion) {
        return Err(refused());
    }
    let jwks: JwkSet = client
        .metadata
        .jwks
        .clone()
        .and_then(|j| serde_json::from_value(j).ok())
        .ok_or_else(refused)?;
    let jwk = match header.kid.as_deref() {
        Some(kid) => jwks.find(kid),
        None if jwks.keys.len() == 1 => jwks.keys.first(),
        None => None,
    }
    .ok_or_else(refused)?;
    // The algorithm is the key's, never the header's alone (RFC 8725 §3.1).
    let alg = key_algorithm(jwk).ok_or_else(refused)?;
    if header.alg != alg {
        return Err(refused());
    }
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).map_err(|_| refused())?;
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY.as_secs();
    validation.set_audience(&[issuer, &endpoints[0], &endpoints[1]]);
    validation.set_issuer(&[&client.client_id]);
    validation.sub = Some(client.client_id.clone());
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation)
        .map_err(|_| refused())?
        .claims;
    // One audience only, this server: an array could make the assertion good elsewhere too.
    if !claims.aud.is_string() {
        return Err(refused());
    }
    let now = Utc::now().timestamp();
    if claims.exp > now + MAX_ASSERTION_LIFETIME_SECS {
        return Err(refused());
    }
    // An assertion from the future was not made by a client with a sane clock.
    if claims.iat.is_some_and(|iat| iat > now + LEEWAY.as_secs() as i64) {
        return Err(refused());
    }
    let jti = claims
        .jti
        .filter(|j| (1..=256).contains(&j.len()) && j.bytes().all(|b| (0x20..=0x7E).contains(&b)))
        .ok_or_else(refused)?;
    let expires = chrono::DateTime::from_timestamp(claims.exp, 0).ok_or_else(refused)?
        + chrono::Duration::from_std(LEEWAY).map_err(anyhow::Error::from)?;
    // RFC 7523 §3 item 7: a replayed jti is refused, on every replica.
    if !store::clients::record_assertion(db, &client.client_id, &jti, expires).await? {
        return Err(refused());
    }
    Ok(())
}

/// Whether the JOSE header of `jwt` has a `crit` member.
fn has_crit_header(jwt: &str) -> bool {
    use base64::Engine;
    let Some(encoded) = jwt.split('.').next() else { return true };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded) else {
        return true;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        .map_or(true, |header| header.contains_key("crit"))
}

/// The signing algorithm a client key is for: its `alg`, else the one its type implies.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(alg) = jwk.common.key_algorithm {
        return alg.to_string().parse().ok();
    }
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => Some(Algorithm::ES256),
            EllipticCurve::P384 => Some(Algorithm::ES384),
            _ => None,
        },
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}
