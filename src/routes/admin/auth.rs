//! The admin API's guard: a bearer access token from this server with the `admin` scope
//! (SPEC §6), checked as a careful resource server does (RFC 6750, RFC 9068 §4).

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};

use crate::error::BearerError;
use crate::oauth::access_token;
use crate::startup::AppState;

const ADMIN_SCOPE: &str = "admin";

/// An authenticated admin: the client whose token carried the `admin` scope.
pub struct Admin {
    pub client_id: String,
}

impl FromRequest for Admin {
    type Error = BearerError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = super::super::bearer::bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or(BearerError::InvalidToken("the server is misconfigured"))?;
            let token = token?;
            let issuer = state.issuer.as_str();
            // The issuer is the audience of Castellan's own APIs (SPEC §4).
            let claims = access_token::verify(&state.keys, issuer, Some(issuer), &token)
                .map_err(|rejected| BearerError::InvalidToken(rejected.description()))?;
            if !claims.scope.split(' ').any(|s| s == ADMIN_SCOPE) {
                return Err(BearerError::InsufficientScope(ADMIN_SCOPE));
            }
            // The client must still exist and still be allowed the scope.
            let client =
                state.registry.find(&state.db, &claims.client_id).await?.ok_or(
                    BearerError::InvalidToken("the client of this token no longer exists"),
                )?;
            if !client.metadata.scope.contains(ADMIN_SCOPE) {
                return Err(BearerError::InsufficientScope(ADMIN_SCOPE));
            }
            Ok(Admin { client_id: claims.client_id })
        })
    }
}
