//! Turns an admin's JSON body into validated `ClientMetadata` (RFC 7591 §2, docs/REFERENCE.md §5–§6):
//! member by member, so each error names its member and never echoes the input.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::client::{
    AuthMethod, ClientMetadata, DEFAULT_AUTHORIZATION_CODE_LIFETIME,
    DEFAULT_REFRESH_TOKEN_ABSOLUTE_LIFETIME, DEFAULT_REFRESH_TOKEN_LIFETIME,
    FAPI2_MAX_CODE_LIFETIME, GrantType, Lifetimes, Profile,
};
use super::jwk::Algorithm;
use super::redirect_uri;
use super::scope::Scopes;
use crate::outbound::{is_public, literal_address};

/// A rejected body: an error code of docs/REFERENCE.md §6, a fixed description, the member at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error} ({field}): {description}")]
pub struct FieldError {
    pub error: &'static str,
    pub description: &'static str,
    pub field: String,
}

fn invalid(field: &str, description: &'static str) -> FieldError {
    FieldError { error: "invalid_client_metadata", description, field: field.to_owned() }
}

fn invalid_redirect(field: &str, description: &'static str) -> FieldError {
    FieldError { error: "invalid_redirect_uri", description, field: field.to_owned() }
}

const MEMBERS: [&str; 26] = [
    "client_name",
    "client_uri",
    "redirect_uris",
    "grant_types",
    "response_types",
    "scope",
    "token_endpoint_auth_method",
    "jwks",
    "post_logout_redirect_uris",
    "audience",
    "access_token_lifetime",
    "id_token_lifetime",
    "refresh_token_lifetime",
    "refresh_token_absolute_lifetime",
    "authorization_code_lifetime",
    "jwks_uri",
    "access_token_signed_response_alg",
    "served_resources",
    "dpop_bound_access_tokens",
    "require_pushed_authorization_requests",
    "require_mfa",
    "backchannel_logout_uri",
    "backchannel_logout_session_required",
    "id_token_signed_response_alg",
    "security_profile",
    "refresh_token_rotation",
];

/// Members the server assigns: a body carrying one is refused, not silently ignored.
const SERVER_ASSIGNED: [&str; 5] = [
    "client_id",
    "client_secret",
    "client_id_issued_at",
    "client_secret_expires_at",
    "registration_access_token",
];

/// A client's own registration body with the members this server does not know dropped:
/// RFC 7591 §2 has the server ignore client metadata it does not understand (the admin API,
/// where a typo is an administrator's mistake, refuses them instead).
pub fn known_members_only(body: &Value) -> Value {
    match body.as_object() {
        Some(map) => Value::Object(
            map.iter()
                .filter(|(name, _)| {
                    MEMBERS.contains(&name.as_str()) || SERVER_ASSIGNED.contains(&name.as_str())
                })
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        ),
        None => body.clone(),
    }
}

/// Validates a client body. `max_token_lifetime` bounds access and ID token lifetimes.
pub fn parse(body: &Value, max_token_lifetime: Duration) -> Result<ClientMetadata, FieldError> {
    let Some(map) = body.as_object() else {
        return Err(FieldError {
            error: "invalid_request",
            description: "the body must be a JSON object",
            field: "body".into(),
        });
    };
    for name in map.keys() {
        if SERVER_ASSIGNED.contains(&name.as_str()) {
            return Err(invalid(name, "this member is assigned by the server"));
        }
        if !MEMBERS.contains(&name.as_str()) {
            return Err(invalid(&safe_name(name), "unknown client metadata member"));
        }
    }

    let client_name: String = member(map, "client_name")?.unwrap_or_default();
    if client_name.chars().count() > 200 || client_name.chars().any(char::is_control) {
        return Err(invalid("client_name", "client_name must be at most 200 printable characters"));
    }
    let client_uri = member::<String>(map, "client_uri")?;
    if client_uri.as_deref().is_some_and(|uri| !is_web_uri(uri)) {
        return Err(invalid("client_uri", "client_uri must be an https URL without fragment"));
    }
    let grant_types = grant_types(map)?;
    let has_code = grant_types.contains(&GrantType::AuthorizationCode);
    let response_types: Vec<String> = member(map, "response_types")?
        .unwrap_or_else(|| if has_code { vec!["code".into()] } else { vec![] });
    if response_types != if has_code { vec!["code".to_owned()] } else { vec![] } {
        return Err(invalid(
            "response_types",
            "response_types must be [\"code\"] with authorization_code and [] without it",
        ));
    }
    let redirect_uris = uris(map, "redirect_uris")?;
    if has_code && redirect_uris.is_empty() {
        return Err(invalid_redirect("redirect_uris", "authorization_code needs a redirect URI"));
    }
    if !has_code && !redirect_uris.is_empty() {
        return Err(invalid_redirect("redirect_uris", "redirect URIs need authorization_code"));
    }
    let post_logout_redirect_uris = uris(map, "post_logout_redirect_uris")?;

    let method = match member::<String>(map, "token_endpoint_auth_method")? {
        None => AuthMethod::ClientSecretBasic,
        Some(m) => AuthMethod::parse(&m).ok_or_else(|| {
            invalid("token_endpoint_auth_method", "unsupported token_endpoint_auth_method")
        })?,
    };
    if method == AuthMethod::None && grant_types.iter().any(|g| g.needs_confidential_client()) {
        return Err(invalid(
            "token_endpoint_auth_method",
            "client_credentials and token exchange need a confidential client",
        ));
    }
    let jwks = match map.get("jwks") {
        None | Some(Value::Null) => None,
        Some(value) => Some(jwks(value)?),
    };
    let jwks_uri = member::<String>(map, "jwks_uri")?;
    if let Some(uri) = &jwks_uri {
        validate_jwks_uri(uri)?;
    }
    // RFC 7591 §2: jwks and jwks_uri MUST NOT both be present.
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(invalid("jwks_uri", "send jwks or jwks_uri, not both"));
    }
    if method == AuthMethod::PrivateKeyJwt && jwks.is_none() && jwks_uri.is_none() {
        return Err(invalid("jwks", "private_key_jwt needs the client's keys in jwks or jwks_uri"));
    }
    let profile = match member::<String>(map, "security_profile")? {
        None => None,
        Some(p) => Some(
            Profile::parse(&p)
                .ok_or_else(|| invalid("security_profile", "security_profile must be fapi2"))?,
        ),
    };
    let fapi2 = profile == Some(Profile::Fapi2);

    let scope_text: String = member(map, "scope")?.unwrap_or_default();
    let scope = Scopes::parse(&scope_text).map_err(|_| invalid("scope", "malformed scope"))?;
    let audience: Vec<String> = member(map, "audience")?.unwrap_or_default();
    if audience.len() > 20 || !audience.iter().all(|a| is_absolute_uri(a)) {
        return Err(invalid("audience", "audience entries must be absolute URIs without fragment"));
    }
    let served_resources: Vec<String> = member(map, "served_resources")?.unwrap_or_default();
    if served_resources.len() > 20 || !served_resources.iter().all(|a| is_absolute_uri(a)) {
        return Err(invalid(
            "served_resources",
            "served_resources entries must be absolute URIs without fragment",
        ));
    }
    let lifetimes = lifetimes(map, max_token_lifetime)?;
    // The JWS algorithms of its tokens: RS256 unless it asks otherwise, PS256 under FAPI 2.0.
    let default_alg = if fapi2 { Algorithm::PS256 } else { Algorithm::RS256 };
    let access_token_alg = algorithm(map, "access_token_signed_response_alg", default_alg)?;
    let id_token_alg = algorithm(map, "id_token_signed_response_alg", default_alg)?;
    let dpop_bound_access_tokens = member(map, "dpop_bound_access_tokens")?.unwrap_or(fapi2);
    let require_pushed_authorization_requests =
        member(map, "require_pushed_authorization_requests")?.unwrap_or(fapi2);
    let require_mfa = member(map, "require_mfa")?.unwrap_or(false);
    let backchannel_logout_uri = member::<String>(map, "backchannel_logout_uri")?;
    // Back-Channel Logout §2.2: an absolute URL, https (http only for a loopback host, for
    // development), which MUST NOT include a fragment. Its address is checked again at every
    // delivery by the outbound client (no private address unless allowed).
    if backchannel_logout_uri.as_deref().is_some_and(|uri| !is_web_uri(uri)) {
        return Err(invalid(
            "backchannel_logout_uri",
            "backchannel_logout_uri must be an https URL without fragment",
        ));
    }
    // A literal private or link-local address (other than loopback, for development) is
    // refused here; a name is judged at each delivery, in the outbound client's resolver.
    if backchannel_logout_uri.as_deref().is_some_and(is_private_literal) {
        return Err(invalid(
            "backchannel_logout_uri",
            "backchannel_logout_uri must not name a private address",
        ));
    }
    let backchannel_logout_session_required =
        member(map, "backchannel_logout_session_required")?.unwrap_or(false);
    // Rotation is the reuse defence of a public client; a sender-constrained confidential
    // client needs none (FAPI 2.0 Security Profile §5.3.2.1).
    let refresh_token_rotation = member(map, "refresh_token_rotation")?.unwrap_or(!fapi2);
    // RFC 9700 §4.14.2: a public client's refresh tokens are sender-constrained or rotated.
    if method == AuthMethod::None && !refresh_token_rotation && !dpop_bound_access_tokens {
        return Err(invalid(
            "refresh_token_rotation",
            "a public client's refresh tokens rotate unless dpop_bound_access_tokens binds them",
        ));
    }
    if fapi2 {
        fapi2_metadata(&Fapi2Metadata {
            method,
            grant_types: &grant_types,
            access_token_alg,
            id_token_alg,
            dpop_bound_access_tokens,
            require_pushed_authorization_requests,
            code_lifetime: lifetimes
                .authorization_code
                .unwrap_or(DEFAULT_AUTHORIZATION_CODE_LIFETIME),
        })?;
    }
    Ok(ClientMetadata {
        client_name,
        client_uri,
        redirect_uris,
        grant_types,
        response_types,
        scope,
        token_endpoint_auth_method: method,
        jwks,
        jwks_uri,
        post_logout_redirect_uris,
        audience,
        served_resources,
        lifetimes,
        access_token_alg,
        dpop_bound_access_tokens,
        require_pushed_authorization_requests,
        require_mfa,
        backchannel_logout_uri,
        backchannel_logout_session_required,
        id_token_alg,
        profile,
        refresh_token_rotation,
    })
}

/// The JSON body `parse` turns back into `metadata`: every member the client has, lifetimes
/// and optional members only when set. Start from it to change some members of a client and
/// keep the others (`PUT /admin/clients/{id}` replaces the whole metadata).
pub fn to_json(metadata: &ClientMetadata) -> Value {
    let m = metadata;
    let mut map = Map::new();
    let mut put = |name: &str, value: Value| {
        map.insert(name.to_owned(), value);
    };
    put("client_name", m.client_name.clone().into());
    put("redirect_uris", m.redirect_uris.clone().into());
    put("grant_types", m.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().into());
    put("response_types", m.response_types.clone().into());
    put("scope", m.scope.to_string().into());
    put("token_endpoint_auth_method", m.token_endpoint_auth_method.as_str().into());
    put("post_logout_redirect_uris", m.post_logout_redirect_uris.clone().into());
    put("audience", m.audience.clone().into());
    put("served_resources", m.served_resources.clone().into());
    put("access_token_signed_response_alg", m.access_token_alg.as_str().into());
    put("id_token_signed_response_alg", m.id_token_alg.as_str().into());
    put("dpop_bound_access_tokens", m.dpop_bound_access_tokens.into());
    put("require_pushed_authorization_requests", m.require_pushed_authorization_requests.into());
    put("require_mfa", m.require_mfa.into());
    put("backchannel_logout_session_required", m.backchannel_logout_session_required.into());
    put("refresh_token_rotation", m.refresh_token_rotation.into());
    let optional = [
        ("client_uri", m.client_uri.clone().map(Value::from)),
        ("jwks", m.jwks.clone()),
        ("jwks_uri", m.jwks_uri.clone().map(Value::from)),
        ("backchannel_logout_uri", m.backchannel_logout_uri.clone().map(Value::from)),
        ("security_profile", m.profile.map(|p| p.as_str().into())),
        ("access_token_lifetime", m.lifetimes.access_token.map(Value::from)),
        ("id_token_lifetime", m.lifetimes.id_token.map(Value::from)),
        ("refresh_token_lifetime", m.lifetimes.refresh_token.map(Value::from)),
        ("refresh_token_absolute_lifetime", m.lifetimes.refresh_token_absolute.map(Value::from)),
        ("authorization_code_lifetime", m.lifetimes.authorization_code.map(Value::from)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            put(name, value);
        }
    }
    Value::Object(map)
}

/// A JWS algorithm member: one the key ring signs with, `default` when absent.
fn algorithm(
    map: &Map<String, Value>,
    name: &'static str,
    default: Algorithm,
) -> Result<Algorithm, FieldError> {
    match member::<String>(map, name)? {
        None => Ok(default),
        Some(alg) => Algorithm::parse(&alg)
            .ok_or_else(|| invalid(name, "the algorithm must be RS256, PS256, ES256 or EdDSA")),
    }
}

/// What the FAPI 2.0 Security Profile asks of a client's registration.
struct Fapi2Metadata<'a> {
    method: AuthMethod,
    grant_types: &'a [GrantType],
    access_token_alg: Algorithm,
    id_token_alg: Algorithm,
    dpop_bound_access_tokens: bool,
    require_pushed_authorization_requests: bool,
    code_lifetime: u32,
}

/// FAPI 2.0 Security Profile §5.3: a confidential client authenticating with
/// `private_key_jwt` (§5.3.2.1: no shared secrets), pushing every request (§5.3.2.2),
/// sender-constrained tokens (§5.3.2.1; DPoP here), codes of at most 60 s, and PS256, ES256
/// or EdDSA only (§5.4.1: RS256 is not allowed).
fn fapi2_metadata(m: &Fapi2Metadata<'_>) -> Result<(), FieldError> {
    const PROFILE: &str = "security_profile";
    if m.method != AuthMethod::PrivateKeyJwt {
        return Err(invalid("token_endpoint_auth_method", "fapi2 clients use private_key_jwt"));
    }
    if m.grant_types.contains(&GrantType::ClientCredentials)
        && !m.grant_types.contains(&GrantType::AuthorizationCode)
    {
        return Err(invalid(PROFILE, "fapi2 is a profile of the authorization code flow"));
    }
    // The device grant has no pushed request and no redirect: nothing of §5.3.2.2 holds.
    if m.grant_types.contains(&GrantType::DeviceCode) {
        return Err(invalid(PROFILE, "fapi2 clients cannot use the device grant"));
    }
    if m.access_token_alg == Algorithm::RS256 {
        return Err(invalid("access_token_signed_response_alg", "fapi2 forbids RS256"));
    }
    if m.id_token_alg == Algorithm::RS256 {
        return Err(invalid("id_token_signed_response_alg", "fapi2 forbids RS256"));
    }
    if !m.dpop_bound_access_tokens {
        return Err(invalid("dpop_bound_access_tokens", "fapi2 needs sender-constrained tokens"));
    }
    if !m.require_pushed_authorization_requests {
        return Err(invalid(
            "require_pushed_authorization_requests",
            "fapi2 clients push every authorization request",
        ));
    }
    if m.code_lifetime > FAPI2_MAX_CODE_LIFETIME {
        return Err(invalid("authorization_code_lifetime", "fapi2 codes live at most 60 s"));
    }
    Ok(())
}

/// `jwks_uri`: an https URL without fragment or credentials (plain http only for a loopback
/// host, for development; the outbound client still refuses loopback unless allowed).
fn validate_jwks_uri(uri: &str) -> Result<(), FieldError> {
    if is_web_uri(uri) {
        Ok(())
    } else {
        Err(invalid("jwks_uri", "jwks_uri must be an https URL without fragment"))
    }
}

/// Whether `uri` is an https URL without fragment or user information (plain http only for
/// a loopback host, for development).
fn is_web_uri(uri: &str) -> bool {
    let Some(url) = is_absolute_uri(uri).then(|| url::Url::parse(uri).ok()).flatten() else {
        return false;
    };
    let loopback = url.host() == Some(url::Host::Domain("localhost"))
        || literal_address(&url).is_some_and(|ip| ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    scheme_ok && url.host().is_some() && url.username().is_empty() && url.password().is_none()
}

/// Whether `uri`'s host is a literal IP address that is neither public nor loopback.
fn is_private_literal(uri: &str) -> bool {
    url::Url::parse(uri)
        .ok()
        .and_then(|url| literal_address(&url))
        .is_some_and(|ip| !ip.is_loopback() && !is_public(ip))
}

/// A member's value of type `T`, `None` when absent or null.
fn member<T: DeserializeOwned>(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<T>, FieldError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value)
            .map(Some)
            .map_err(|_| invalid(name, "this member has the wrong type")),
    }
}

fn grant_types(map: &Map<String, Value>) -> Result<Vec<GrantType>, FieldError> {
    let names: Vec<String> =
        member(map, "grant_types")?.unwrap_or_else(|| vec!["authorization_code".into()]);
    let mut grants = Vec::new();
    for name in &names {
        let grant = GrantType::parse(name)
            .ok_or_else(|| invalid("grant_types", "unsupported grant type"))?;
        if !grants.contains(&grant) {
            grants.push(grant);
        }
    }
    if grants.is_empty() {
        return Err(invalid("grant_types", "grant_types must not be empty"));
    }
    // OAuth 2.1 §4.2: client_credentials never yields a refresh token; a user's grant does.
    if grants.contains(&GrantType::RefreshToken) && !GrantType::yields_refresh(&grants) {
        return Err(invalid(
            "grant_types",
            "refresh_token needs authorization_code or the device grant",
        ));
    }
    Ok(grants)
}

fn uris(map: &Map<String, Value>, name: &'static str) -> Result<Vec<String>, FieldError> {
    let uris: Vec<String> = member(map, name)?.unwrap_or_default();
    if uris.len() > 20 {
        return Err(invalid_redirect(name, "at most 20 URIs"));
    }
    for uri in &uris {
        redirect_uri::validate(uri).map_err(|reason| invalid_redirect(name, reason))?;
    }
    Ok(uris)
}

/// Whether `value` is a JWK Set of 1 to 10 public signing keys (RSA of at least 2048 bits):
/// for keys registered inline and keys fetched from a `jwks_uri` alike.
pub fn check_jwks(value: &Value) -> Result<(), FieldError> {
    jwks(value).map(|_| ())
}

fn jwks(value: &Value) -> Result<Value, FieldError> {
    let keys =
        value.get("keys").and_then(Value::as_array).filter(|k| !k.is_empty() && k.len() <= 10);
    let keys = keys.ok_or_else(|| invalid("jwks", "jwks must be {\"keys\": [1 to 10 JWKs]}"))?;
    for key in keys {
        let private = ["d", "p", "q", "dp", "dq", "qi", "k"].iter().any(|m| key.get(m).is_some());
        if private {
            return Err(invalid("jwks", "jwks must hold public keys only"));
        }
        if key.get("use").is_some_and(|u| u != "sig") {
            return Err(invalid("jwks", "jwks keys must be signing keys (use: sig)"));
        }
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.clone())
            .map_err(|_| invalid("jwks", "a JWK does not parse"))?;
        // RFC 7518 §3.3: RSA keys of at least 2048 bits.
        if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            use base64::Engine;
            let modulus =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&rsa.n).unwrap_or_default();
            let bits = modulus.iter().skip_while(|b| **b == 0).count() * 8;
            if bits < 2048 {
                return Err(invalid("jwks", "RSA keys must have at least 2048 bits"));
            }
        }
        jsonwebtoken::DecodingKey::from_jwk(&jwk)
            .map_err(|_| invalid("jwks", "a JWK is not a usable key"))?;
    }
    Ok(value.clone())
}

/// The longest refresh-token lifetime a client may have: ten years.
const MAX_REFRESH_LIFETIME: u32 = 10 * 366 * 24 * 3600;

fn lifetimes(map: &Map<String, Value>, max_token: Duration) -> Result<Lifetimes, FieldError> {
    let max_token = u32::try_from(max_token.as_secs()).unwrap_or(u32::MAX);
    let bounded = |name: &'static str, max: u32| -> Result<Option<u32>, FieldError> {
        let value: Option<u32> = member(map, name)?;
        match value {
            Some(v) if v == 0 || v > max => Err(invalid(name, "lifetime out of range")),
            other => Ok(other),
        }
    };
    let lifetimes = Lifetimes {
        access_token: bounded("access_token_lifetime", max_token)?,
        id_token: bounded("id_token_lifetime", max_token)?,
        refresh_token: bounded("refresh_token_lifetime", MAX_REFRESH_LIFETIME)?,
        refresh_token_absolute: bounded("refresh_token_absolute_lifetime", MAX_REFRESH_LIFETIME)?,
        authorization_code: bounded("authorization_code_lifetime", 600)?,
    };
    let sliding = lifetimes.refresh_token.unwrap_or(DEFAULT_REFRESH_TOKEN_LIFETIME);
    let absolute =
        lifetimes.refresh_token_absolute.unwrap_or(DEFAULT_REFRESH_TOKEN_ABSOLUTE_LIFETIME);
    if sliding > absolute {
        return Err(invalid(
            "refresh_token_lifetime",
            "refresh_token_lifetime must not exceed refresh_token_absolute_lifetime",
        ));
    }
    Ok(lifetimes)
}

/// Whether `value` is an absolute URI without fragment (RFC 8707 §2).
pub fn is_absolute_uri(value: &str) -> bool {
    value.len() <= 2000
        && !value.contains('#')
        && !value.chars().any(|c| c.is_control() || c.is_whitespace())
        && url::Url::parse(value).is_ok()
}

/// A member name fit to name in an error: short and plain, else just "body".
fn safe_name(name: &str) -> String {
    let plain =
        (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if plain { name.to_owned() } else { "body".to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAX: Duration = Duration::from_secs(3600);

    fn field_of(body: Value) -> (String, &'static str) {
        let e = parse(&body, MAX).expect_err("refused");
        (e.field, e.error)
    }

    #[test]
    fn a_web_client_gets_rfc_7591_defaults() {
        let m = parse(&json!({"redirect_uris": ["https://a.example/cb"]}), MAX).expect("valid");
        assert_eq!(m.grant_types, vec![GrantType::AuthorizationCode]);
        assert_eq!(m.response_types, vec!["code".to_owned()]);
        assert_eq!(m.token_endpoint_auth_method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn server_assigned_and_unknown_members_are_refused() {
        assert_eq!(field_of(json!({"client_id": "x"})).0, "client_id");
        assert_eq!(field_of(json!({"client_secret": "x"})).0, "client_secret");
        assert_eq!(field_of(json!({"colour": "red"})).0, "colour");
        assert_eq!(field_of(json!({"<script>": 1})).0, "body");
    }

    #[test]
    fn incoherent_grants_are_refused() {
        let cc_public =
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"});
        assert_eq!(field_of(cc_public).0, "token_endpoint_auth_method");
        let exchange_public = json!({"grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
                                     "token_endpoint_auth_method": "none"});
        assert_eq!(field_of(exchange_public).0, "token_endpoint_auth_method");
        assert_eq!(
            field_of(json!({"grant_types": ["client_credentials", "refresh_token"]})).0,
            "grant_types"
        );
        assert_eq!(
            field_of(json!({"grant_types": ["authorization_code"]})),
            ("redirect_uris".into(), "invalid_redirect_uri")
        );
        assert_eq!(field_of(json!({"grant_types": ["implicit"]})).0, "grant_types");
    }

    #[test]
    fn bad_redirect_uris_use_their_own_error() {
        let body = json!({"redirect_uris": ["http://evil.example/cb"]});
        assert_eq!(field_of(body), ("redirect_uris".into(), "invalid_redirect_uri"));
    }

    #[test]
    fn client_keys_must_be_strong_signing_keys() {
        use base64::Engine;
        use rsa::traits::PublicKeyParts;
        let weak = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024).expect("1024-bit key");
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(weak.n().to_bytes_be());
        let small = json!({"kty": "RSA", "n": n, "e": "AQAB"});
        let body = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [small]}});
        assert_eq!(field_of(body).0, "jwks", "a 1024-bit RSA key is refused");
        let enc = json!({"kty": "EC", "crv": "P-256", "use": "enc",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let body = json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [enc]}});
        assert_eq!(field_of(body).0, "jwks", "an encryption key is refused");
    }

    #[test]
    fn to_json_is_what_parse_reads_back() {
        let bodies = [
            json!({"redirect_uris": ["https://a.example/cb"]}),
            json!({"client_name": "Reports", "client_uri": "https://a.example",
                   "grant_types": ["authorization_code", "refresh_token"],
                   "redirect_uris": ["https://a.example/cb"], "scope": "openid email",
                   "audience": ["https://api.example"], "served_resources": ["https://b.example"],
                   "post_logout_redirect_uris": ["https://a.example/bye"],
                   "access_token_lifetime": 300, "refresh_token_lifetime": 3600,
                   "id_token_signed_response_alg": "ES256", "dpop_bound_access_tokens": true,
                   "refresh_token_rotation": false}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method":
                   "private_key_jwt", "jwks_uri": "https://a.example/jwks"}),
            json!({"security_profile": "fapi2", "token_endpoint_auth_method": "private_key_jwt",
                   "jwks_uri": "https://a.example/jwks", "redirect_uris": ["https://a.example/cb"]}),
        ];
        for body in bodies {
            let parsed = parse(&body, MAX).expect("valid");
            assert_eq!(parse(&to_json(&parsed), MAX), Ok(parsed), "{body}");
        }
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(
            field_of(json!({"grant_types": ["client_credentials"], "access_token_lifetime": 7200}))
                .0,
            "access_token_lifetime"
        );
        assert_eq!(
            field_of(json!({"grant_types": ["client_credentials"], "access_token_lifetime": 0})).0,
            "access_token_lifetime"
        );
    }
}
