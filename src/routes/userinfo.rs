//! `GET`/`POST /userinfo` (OpenID Connect Core §5.3): the signed-in user's claims, for a user's
//! access token carrying `openid`, in the Authorization header only (RFC 6750 §2.1).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::bearer::{Bearer, UserInfo};
use crate::error::BearerError;
use crate::oauth::id_token::UserClaims;
use crate::startup::AppState;
use crate::store;

pub async fn claims(
    state: web::Data<AppState>,
    bearer: Bearer<UserInfo>,
) -> Result<HttpResponse, BearerError> {
    let user = store::users::find(&state.db, &bearer.token.claims.sub)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(BearerError::InvalidToken(bearer.scheme, "the user is no longer active"))?;
    // The claims released are those of the scope the token holds now.
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(UserClaims::new(&user, &bearer.token.scope)))
}
