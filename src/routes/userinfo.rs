//! `GET`/`POST /userinfo` (OpenID Connect Core §5.3): the signed-in user's claims, for a bearer
//! access token in the Authorization header only (RFC 6750 §2.1).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::bearer::bearer_token;
use crate::error::BearerError;
use crate::oauth::id_token::UserClaims;
use crate::oauth::scope::Scopes;
use crate::oauth::{access_token, revocation};
use crate::startup::AppState;
use crate::store;

pub async fn claims(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, BearerError> {
    // A token in the URL leaks into logs and histories: refused outright.
    if url::form_urlencoded::parse(req.query_string().as_bytes()).any(|(k, _)| k == "access_token")
    {
        return Err(BearerError::InvalidRequest(
            "send the access token in the Authorization header",
        ));
    }
    let token = bearer_token(&req)?;
    let issuer = state.issuer.as_str();
    // UserInfo is one of Castellan's own APIs: the issuer is its audience (SPEC §4). Only an
    // access token passes (typ at+jwt, our key's algorithm): never an ID or refresh token.
    let claims = access_token::verify(&state.keys, issuer, Some(issuer), &token)
        .map_err(|rejected| BearerError::InvalidToken(rejected.description()))?;
    if !revocation::access_is_live(&super::introspect::context(&state), &claims).await? {
        return Err(BearerError::InvalidToken("the token has been revoked"));
    }
    let scope = Scopes::parse(&claims.scope)
        .map_err(|_| BearerError::InvalidToken("the token is malformed"))?;
    if !scope.contains("openid") || claims.gid.is_none() {
        return Err(BearerError::InsufficientScope("openid"));
    }
    let user = store::users::find(&state.db, &claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(BearerError::InvalidToken("the user is no longer active"))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserClaims::new(&user, &scope)))
}
