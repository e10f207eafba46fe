//! Clients that register themselves (RFC 7591, RFC 7592; docs/REFERENCE.md §5.10): the
//! policy that says who may, and the ceiling a self-registered client stays under.
//!
//! - Closed: only with an initial access token an administrator issued; the client may be
//!   anything the admin API accepts, within the token's scope, never `admin`.
//! - Open: also without a token, for public clients only (native apps and agents, which
//!   hold no secret), within the open ceiling: its scopes, grant types, redirect URI kinds
//!   and the resources its tokens may be for.
//!
//! Whichever way it came, a client that registered itself never gets `admin`, and an update
//! through RFC 7592 can never take it past what it was admitted with.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{
    AuthMethod, ClientMetadata, DEFAULT_ACCESS_TOKEN_LIFETIME, DEFAULT_AUTHORIZATION_CODE_LIFETIME,
    DEFAULT_ID_TOKEN_LIFETIME, DEFAULT_REFRESH_TOKEN_ABSOLUTE_LIFETIME,
    DEFAULT_REFRESH_TOKEN_LIFETIME, GrantType, Lifetimes,
};
use super::client_metadata::{FieldError, is_absolute_uri};
use super::gate::ADMIN_SCOPE;
use super::redirect_uri::{self, Kind};
use super::scope::Scopes;
use crate::config::{RegistrationMode, Settings};
use crate::store::{self, Db, StoreError};

/// The policy in force: the operator's mode from the settings, until an administrator
/// stores one through the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// `open` or `closed`.
    pub mode: Mode,
    /// The ceiling of open registrations: the scopes a client may be allowed (all of them
    /// when it asks for none)...
    pub scope: String,
    /// ...the grant types...
    pub grant_types: Vec<GrantType>,
    /// ...the kinds of redirect URI...
    pub redirect_uri_kinds: Vec<Kind>,
    /// ...and the resources (RFC 8707) its tokens may be for: an MCP server's URL, say.
    pub resources: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Open,
    Closed,
}

impl Policy {
    /// The policy the settings give (with the default ceiling); `None` when registration is
    /// off.
    pub fn from_settings(settings: &Settings) -> Option<Self> {
        let mode = match settings.registration {
            RegistrationMode::Off => return None,
            RegistrationMode::Closed => Mode::Closed,
            RegistrationMode::Open => Mode::Open,
        };
        Some(Self { mode, ..Self::ceiling() })
    }

    /// The settings' ceiling with registration closed: what metadata documents are held to
    /// when registration itself is off.
    pub fn ceiling() -> Self {
        Self {
            mode: Mode::Closed,
            scope: "openid profile email offline_access".into(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            redirect_uri_kinds: vec![Kind::Loopback, Kind::PrivateUse, Kind::Https],
            resources: Vec::new(),
        }
    }

    /// The policy in force: the stored one, else the settings'. `None` when the settings
    /// turn registration off (a stored policy cannot turn it on).
    pub async fn load(db: &Db, settings: &Settings) -> Result<Option<Self>, StoreError> {
        let Some(default) = Self::from_settings(settings) else { return Ok(None) };
        match store::registration::policy(db).await? {
            None => Ok(Some(default)),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| StoreError::corrupt(format_args!("registration policy: {e}"))),
        }
    }

    /// Validates a policy an administrator sent: every member present, scopes well formed
    /// and never `admin`, grant types a public client can use, resources absolute URIs.
    /// (That the scopes exist is checked against the database by the caller.)
    pub fn parse(body: &Value) -> Result<Self, FieldError> {
        let invalid = |field: &str, description| FieldError {
            error: "invalid_request",
            description,
            field: field.to_owned(),
        };
        let map =
            body.as_object().ok_or_else(|| invalid("body", "the body must be a JSON object"))?;
        for name in map.keys() {
            if !["mode", "scope", "grant_types", "redirect_uri_kinds", "resources"]
                .contains(&name.as_str())
            {
                return Err(invalid(
                    "body",
                    "only mode, scope, grant_types, redirect_uri_kinds and resources may be sent",
                ));
            }
        }
        let policy: Policy = serde_json::from_value(body.clone()).map_err(|_| {
            invalid("body", "mode, scope, grant_types, redirect_uri_kinds and resources are all required, with their documented types")
        })?;
        let scopes =
            Scopes::parse(&policy.scope).map_err(|_| invalid("scope", "malformed scope"))?;
        if scopes.contains(ADMIN_SCOPE) {
            return Err(invalid(
                "scope",
                "admin is never open to clients that register themselves",
            ));
        }
        if policy.grant_types.iter().any(|g| g.needs_confidential_client()) {
            return Err(invalid(
                "grant_types",
                "open registration is for public clients, which cannot use client_credentials or token exchange",
            ));
        }
        if policy.grant_types.contains(&GrantType::RefreshToken)
            && !GrantType::yields_refresh(&policy.grant_types)
        {
            return Err(invalid(
                "grant_types",
                "refresh_token needs authorization_code or the device grant",
            ));
        }
        if policy.resources.len() > 20 || !policy.resources.iter().all(|r| is_absolute_uri(r)) {
            return Err(invalid(
                "resources",
                "resources must be at most 20 absolute URIs without fragment",
            ));
        }
        Ok(policy)
    }

    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }
}

/// How a registration was let in.
pub enum Admission<'a> {
    /// Without a token, under the open ceiling.
    Open(&'a Policy),
    /// With an initial access token whose scope bounds the client's (empty: any but admin).
    Token { scope: &'a Scopes },
}

fn refuse(field: &str, description: &'static str) -> FieldError {
    FieldError { error: "invalid_client_metadata", description, field: field.to_owned() }
}

/// Holds a self-registering client's metadata to its admission, filling in what it left to
/// the server (RFC 7591 §3.2.1: the server may replace values with suitable ones and says
/// so in its answer): the ceiling's scopes when it asked for none, the ceiling's resources
/// as its audiences.
pub fn admit(metadata: &mut ClientMetadata, admission: &Admission<'_>) -> Result<(), FieldError> {
    if metadata.scope.contains(ADMIN_SCOPE) {
        return Err(refuse("scope", "admin cannot be registered by a client"));
    }
    match admission {
        Admission::Token { scope } => {
            if !scope.is_empty() {
                if metadata.scope.is_empty() {
                    metadata.scope = (*scope).clone();
                } else if !metadata.scope.is_subset_of(scope) {
                    return Err(refuse("scope", "scope goes beyond the initial access token's"));
                }
            }
            Ok(())
        }
        Admission::Open(policy) => admit_open(metadata, policy),
    }
}

fn admit_open(metadata: &mut ClientMetadata, policy: &Policy) -> Result<(), FieldError> {
    if metadata.token_endpoint_auth_method != AuthMethod::None {
        return Err(refuse(
            "token_endpoint_auth_method",
            "open registration is for public clients (none); others need an initial access token",
        ));
    }
    if !metadata.grant_types.iter().all(|g| policy.grant_types.contains(g)) {
        return Err(refuse("grant_types", "a grant type is not open to registration"));
    }
    let ceiling = policy.scopes();
    if metadata.scope.is_empty() {
        metadata.scope = ceiling;
    } else if !metadata.scope.is_subset_of(&ceiling) {
        return Err(FieldError {
            error: "invalid_client_metadata",
            description: "a scope is not open to registration",
            field: "scope".into(),
        });
    }
    for (field, uris) in [
        ("redirect_uris", &metadata.redirect_uris),
        ("post_logout_redirect_uris", &metadata.post_logout_redirect_uris),
    ] {
        let allowed = |uri: &String| {
            redirect_uri::kind(uri).is_some_and(|k| policy.redirect_uri_kinds.contains(&k))
        };
        if !uris.iter().all(allowed) {
            return Err(FieldError {
                error: "invalid_redirect_uri",
                description: "this kind of redirect URI is not open to registration",
                field: field.into(),
            });
        }
    }
    if !metadata.served_resources.is_empty() {
        return Err(refuse("served_resources", "only administrators register resource servers"));
    }
    if metadata.audience.is_empty() {
        metadata.audience = policy.resources.clone();
    } else if !metadata.audience.iter().all(|a| policy.resources.contains(a)) {
        return Err(refuse("audience", "an audience is not open to registration"));
    }
    // An update sends back the effective lifetimes it was told, which are the defaults.
    let l = &metadata.lifetimes;
    for (field, value, default) in [
        ("access_token_lifetime", l.access_token, DEFAULT_ACCESS_TOKEN_LIFETIME),
        ("id_token_lifetime", l.id_token, DEFAULT_ID_TOKEN_LIFETIME),
        ("refresh_token_lifetime", l.refresh_token, DEFAULT_REFRESH_TOKEN_LIFETIME),
        (
            "refresh_token_absolute_lifetime",
            l.refresh_token_absolute,
            DEFAULT_REFRESH_TOKEN_ABSOLUTE_LIFETIME,
        ),
        ("authorization_code_lifetime", l.authorization_code, DEFAULT_AUTHORIZATION_CODE_LIFETIME),
    ] {
        if value.is_some_and(|v| v != default) {
            return Err(refuse(field, "openly registered clients have the default lifetimes"));
        }
    }
    metadata.lifetimes = Lifetimes::default();
    Ok(())
}

/// RFC 7592 §2.2: an update through the registration access token may change a client that
/// came with an initial access token, but never past what it holds now (scopes, grant types,
/// audiences, served resources).
pub fn within_current(
    new: &mut ClientMetadata,
    current: &ClientMetadata,
) -> Result<(), FieldError> {
    if new.scope.is_empty() {
        new.scope = current.scope.clone();
    }
    if !new.scope.is_subset_of(&current.scope) {
        return Err(refuse("scope", "an update cannot add scopes"));
    }
    if !new.grant_types.iter().all(|g| current.grant_types.contains(g)) {
        return Err(refuse("grant_types", "an update cannot add grant types"));
    }
    if !new.audience.iter().all(|a| current.audience.contains(a)) {
        return Err(refuse("audience", "an update cannot add audiences"));
    }
    if !new.served_resources.iter().all(|r| current.served_resources.contains(r)) {
        return Err(refuse("served_resources", "an update cannot add served resources"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn metadata(body: Value) -> ClientMetadata {
        super::super::client_metadata::parse(&body, Duration::from_secs(3600)).expect("valid")
    }

    fn open_policy() -> Policy {
        let settings = Settings { registration: RegistrationMode::Open, ..Settings::default() };
        let mut policy = Policy::from_settings(&settings).expect("on");
        policy.resources = vec!["https://mcp.example/mcp".into()];
        policy
    }

    fn native() -> Value {
        json!({"redirect_uris": ["http://127.0.0.1/cb"], "token_endpoint_auth_method": "none",
               "grant_types": ["authorization_code", "refresh_token"]})
    }

    #[test]
    fn an_open_client_gets_the_ceiling_it_left_to_the_server() {
        let policy = open_policy();
        let mut m = metadata(native());
        admit(&mut m, &Admission::Open(&policy)).expect("admitted");
        assert_eq!(m.scope.to_string(), "openid profile email offline_access");
        assert_eq!(m.audience, vec!["https://mcp.example/mcp".to_owned()]);
    }

    #[test]
    fn the_open_ceiling_holds() {
        let policy = open_policy();
        let field = |body: Value| {
            admit(&mut metadata(body), &Admission::Open(&policy)).expect_err("refused").field
        };
        let mut confidential = native();
        confidential["token_endpoint_auth_method"] = json!("client_secret_basic");
        assert_eq!(field(confidential), "token_endpoint_auth_method");
        let mut admin = native();
        admin["scope"] = json!("openid admin");
        assert_eq!(field(admin), "scope");
        let mut foreign = native();
        foreign["audience"] = json!(["https://bank.example/api"]);
        assert_eq!(field(foreign), "audience");
        let mut long = native();
        long["refresh_token_lifetime"] = json!(3600);
        assert_eq!(field(long), "refresh_token_lifetime");
        let mut defaults = native();
        defaults["access_token_lifetime"] = json!(600);
        admit(&mut metadata(defaults), &Admission::Open(&policy)).expect("the defaults, sent back");
        let mut narrow = policy.clone();
        narrow.redirect_uri_kinds = vec![Kind::PrivateUse];
        let refused = admit(&mut metadata(native()), &Admission::Open(&narrow)).expect_err("kind");
        assert_eq!(refused.error, "invalid_redirect_uri");
    }

    #[test]
    fn an_initial_access_token_bounds_the_scope() {
        let scope = Scopes::parse("openid orders").expect("scope");
        let mut m = metadata(json!({"grant_types": ["client_credentials"], "scope": "orders"}));
        admit(&mut m, &Admission::Token { scope: &scope }).expect("within");
        let mut wide = metadata(json!({"grant_types": ["client_credentials"], "scope": "billing"}));
        assert!(admit(&mut wide, &Admission::Token { scope: &scope }).is_err());
    }

    #[test]
    fn a_policy_never_opens_admin_or_client_credentials() {
        let good = json!({"mode": "open", "scope": "openid", "grant_types": ["authorization_code"],
                          "redirect_uri_kinds": ["loopback"], "resources": []});
        assert!(Policy::parse(&good).is_ok());
        let mut admin = good.clone();
        admin["scope"] = json!("openid admin");
        assert_eq!(Policy::parse(&admin).expect_err("admin").field, "scope");
        let mut cc = good.clone();
        cc["grant_types"] = json!(["client_credentials"]);
        assert_eq!(Policy::parse(&cc).expect_err("cc").field, "grant_types");
        let mut exchange = good.clone();
        exchange["grant_types"] =
            json!(["authorization_code", "urn:ietf:params:oauth:grant-type:token-exchange"]);
        assert_eq!(Policy::parse(&exchange).expect_err("token exchange").field, "grant_types");
        let mut partial = good;
        partial.as_object_mut().expect("object").remove("resources");
        assert_eq!(Policy::parse(&partial).expect_err("partial").field, "body");
    }
}
