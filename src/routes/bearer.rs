//! Bearer tokens on requests (RFC 6750): the one extractor every bearer-protected route
//! takes. It reads the token from the Authorization header only, passes it through the gate
//! (`oauth::gate`) and checks what the route requires; a route cannot forget a check.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::error::BearerError;
use crate::oauth::gate::{ADMIN_SCOPE, Admitted, Audiences, Refused};
use crate::startup::AppState;

/// What a route requires of a bearer token.
pub trait Requirement {
    /// Which audiences the route takes.
    const AUDIENCES: Audiences;
    /// The scope the token must carry (as it stands now).
    const SCOPE: &'static str;
    /// Whether only a user's token will do (not one a client got for itself).
    const USERS_ONLY: bool;
}

/// The admin API: `admin`, for tokens meant for it alone (docs/REFERENCE.md §6).
pub struct AdminApi;

impl Requirement for AdminApi {
    const AUDIENCES: Audiences = Audiences::SoleIssuer;
    const SCOPE: &'static str = ADMIN_SCOPE;
    const USERS_ONLY: bool = false;
}

/// UserInfo (OIDC Core §5.3): a user's token with `openid`, the issuer among its audiences.
pub struct UserInfo;

impl Requirement for UserInfo {
    const AUDIENCES: Audiences = Audiences::Issuer;
    const SCOPE: &'static str = "openid";
    const USERS_ONLY: bool = true;
}

/// A bearer token admitted for the route's requirement `R`.
pub struct Bearer<R> {
    pub token: Admitted,
    requirement: PhantomData<R>,
}

impl<R> Bearer<R> {
    /// Who acts, for the logs: the client, and the user for a user's token.
    pub fn actor(&self) -> String {
        match &self.token.claims.gid {
            Some(_) => format!("{} (user {})", self.token.claims.client_id, self.token.claims.sub),
            None => self.token.claims.client_id.clone(),
        }
    }
}

impl<R: Requirement + 'static> FromRequest for Bearer<R> {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or(BearerError::InvalidToken("the server is misconfigured"))?;
            let token = token?;
            let admitted = state.gate().admit(&token, R::AUDIENCES).await.map_err(|r| match r {
                Refused::Invalid(reason) => BearerError::InvalidToken(reason),
                Refused::Revoked => BearerError::InvalidToken("the token has been revoked"),
                Refused::Store(e) => BearerError::Store(e),
            })?;
            if (R::USERS_ONLY && !admitted.is_users()) || !admitted.scope.contains(R::SCOPE) {
                return Err(BearerError::InsufficientScope(R::SCOPE));
            }
            Ok(Bearer { token: admitted, requirement: PhantomData })
        })
    }
}

/// The token of an `Authorization: Bearer` header (RFC 6750 §2.1); anything else is treated
/// as no credentials. A token in the query (§2.3) leaks into logs and histories: refused.
fn bearer_token(req: &HttpRequest) -> Result<String, BearerError> {
    if url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(k, _)| k == "access_token")
    {
        return Err(BearerError::InvalidRequest(
            "send the access token in the Authorization header",
        ));
    }
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(BearerError::Missing)?;
    let (scheme, token) = value.split_once(' ').ok_or(BearerError::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(BearerError::InvalidToken("the token is malformed"));
    }
    Ok(token.to_owned())
}
