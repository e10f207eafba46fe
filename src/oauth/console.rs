//! The admin console as a relying party of this server (docs/REFERENCE.md §3.12): its
//! reserved public client, the authorization request it makes (state, PKCE S256, nonce) and
//! the check of what comes back, through the same grant and gate as any other client.

use aws_lc_rs::hmac;
use url::form_urlencoded;

use super::access_token::Audience;
use super::client::{AuthMethod, Client, ClientMetadata, GrantType, Lifetimes};
use super::gate::{ADMIN_SCOPE, Gate};
use super::grant::{Issuing, authorization_code};
use super::keyring::Keys;
use super::{csrf, pkce};
use crate::error::OAuthError;

/// The console's client id: reserved, ensured at every start (`Registry::ensure_console`).
pub const CLIENT_ID: &str = "castellan-console";
/// What the console asks for: who signed in, and the administrator's scope.
pub const SCOPE: &str = "openid admin";
/// Where the code comes back, under the issuer.
pub const CALLBACK_PATH: &str = "/console/callback";

/// The console client's metadata for `issuer`: a public client with PKCE (no secret to keep),
/// one redirect URI, the code grant only, and no refresh tokens.
pub fn metadata(issuer: &str) -> ClientMetadata {
    let mut m = super::registry::admin_metadata("Castellan admin console");
    m.redirect_uris = vec![format!("{issuer}{CALLBACK_PATH}")];
    m.grant_types = vec![GrantType::AuthorizationCode];
    m.response_types = vec!["code".to_owned()];
    m.scope = super::scope::Scopes::from_names(["openid".to_owned(), ADMIN_SCOPE.to_owned()]);
    m.token_endpoint_auth_method = AuthMethod::None;
    m.lifetimes = Lifetimes::default();
    m
}

/// One sign-in attempt's values, derived from the random binding in the browser's flow
/// cookie with the server's key: nothing secret is stored in the browser, and a state that
/// was not derived from this browser's binding is refused.
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
}

impl Flow {
    pub fn derive(key: &hmac::Key, binding: &str) -> Self {
        // The prefixes keep these apart from each other and from form CSRF tokens, whose
        // bindings (session ids, pre-session cookies) never contain a colon.
        Self {
            state: csrf::token(key, &format!("console-state:{binding}")),
            nonce: csrf::token(key, &format!("console-nonce:{binding}")),
            verifier: csrf::token(key, &format!("console-verifier:{binding}")),
        }
    }

    /// Whether `state` came back unchanged (constant-time).
    pub fn state_matches(key: &hmac::Key, binding: &str, state: &str) -> bool {
        csrf::verify(key, &format!("console-state:{binding}"), state)
    }

    /// The `/authorize` URL of this attempt.
    pub fn authorize_url(&self, issuer: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", &format!("{issuer}{CALLBACK_PATH}"))
            .append_pair("scope", SCOPE)
            .append_pair("state", &self.state)
            .append_pair("nonce", &self.nonce)
            .append_pair("code_challenge", &pkce::challenge_s256(&self.verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        format!("{issuer}/authorize?{query}")
    }
}

/// Why a sign-in ends without a console session.
#[derive(Debug)]
pub enum Refused {
    /// The grant or the gate said no (a bad code, a revoked grant, a store failure).
    Token(OAuthError),
    /// The ID token is not this attempt's (a missing or different nonce).
    Nonce,
    /// Signed in, but not an administrator holding `admin` now (docs/REFERENCE.md §5.8).
    NotAdministrator,
}

/// Redeems `code` exactly as `/token` would for the console client, then admits the access
/// token through the bearer gate: the user id of an administrator, or why not.
pub async fn redeem(
    issuing: &Issuing<'_>,
    gate: &Gate<'_>,
    client: &Client,
    flow: &Flow,
    code: &str,
) -> Result<String, Refused> {
    let redirect_uri = format!("{}{CALLBACK_PATH}", issuing.issuer.as_str());
    let request = authorization_code::Request {
        code: Some(code),
        redirect_uri: Some(&redirect_uri),
        code_verifier: Some(&flow.verifier),
        resources: Vec::new(),
        proof: None,
    };
    let issued =
        authorization_code::exchange(issuing, client, request).await.map_err(Refused::Token)?;
    let id_token = issued.id_token.as_deref().ok_or(Refused::Nonce)?;
    if nonce_of(issuing.keys, issuing.issuer.as_str(), id_token).as_deref()
        != Some(flow.nonce.as_str())
    {
        return Err(Refused::Nonce);
    }
    // The gate, not the response: it asks whether the user holds the flag *now*.
    let admitted =
        gate.subject(&issued.access_token).await.map_err(|_| Refused::NotAdministrator)?;
    if !admitted.is_users()
        || admitted.claims.client_id != CLIENT_ID
        || !admitted.scope.contains(ADMIN_SCOPE)
    {
        return Err(Refused::NotAdministrator);
    }
    Ok(admitted.claims.sub.clone())
}

/// The `nonce` of an ID token this server signed for the console (OIDC Core §3.1.3.7).
fn nonce_of(keys: &Keys, issuer: &str, id_token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Claims {
        aud: Audience,
        nonce: Option<String>,
    }
    let header = jsonwebtoken::decode_header(id_token).ok()?;
    let verifier = keys.verifier(header.kid.as_deref()?)?;
    let mut validation = jsonwebtoken::Validation::new(verifier.alg);
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    let claims = jsonwebtoken::decode::<Claims>(id_token, &verifier.key, &validation).ok()?.claims;
    let for_console = match claims.aud {
        Audience::One(a) => a == CLIENT_ID,
        Audience::Many(a) => a.iter().any(|a| a == CLIENT_ID),
    };
    for_console.then_some(claims.nonce).flatten()
}
