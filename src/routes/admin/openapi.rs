//! `GET /admin/openapi.json`: the OpenAPI 3 document of the admin API, generated from the
//! handlers' annotations.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::{Admin, clients, events, grants, keys, registration, scopes, upstream, users};
use crate::error::AdminError;
use crate::startup::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Castellan admin API", description = "Clients, scopes, users, grants, signing keys, dynamic registration, upstream identity providers and the audit trail (docs/REFERENCE.md §6)."),
    paths(
        clients::create, clients::list, clients::read, clients::replace, clients::delete,
        clients::rotate_secret, scopes::create, scopes::list, scopes::read, scopes::replace,
        scopes::delete, users::create, users::list, users::read, users::replace, users::delete, users::end_sessions,
        users::methods, users::reset_totp, users::remove_passkey,
        grants::for_user, grants::revoke, keys::list, keys::rotate, registration::issue,
        registration::list, registration::revoke, registration::policy, registration::set_policy,
        upstream::create, upstream::list, upstream::read, upstream::replace, upstream::delete,
        events::list, document
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
struct AdminApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(get, path = "/admin/openapi.json", tag = "meta", responses((status = 200)))]
pub async fn document(
    _state: web::Data<AppState>,
    _admin: Admin,
) -> Result<HttpResponse, AdminError> {
    let json = AdminApi::openapi().to_json().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok().content_type("application/json").body(json))
}
