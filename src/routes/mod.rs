//! The route table: every path the server answers, and the extractor error handlers.

mod account;
pub(crate) mod actor;
mod address;
mod admin;
mod assets;
mod authorize;
mod bearer;
pub(crate) mod client_auth;
mod console;
mod device;
mod discovery;
pub(crate) mod form;
mod health;
mod introspect;
mod jwks;
mod login;
mod logout;
mod metrics;
mod pages;
mod par;
mod passkeys;
mod register;
pub(crate) mod theme;
mod token;
mod upstream;
mod userinfo;

use actix_web::{HttpResponse, Route, web};

use crate::error::ApiError;

/// Registers every route of the main listener; `/metrics` only when no internal listener
/// serves it (docs/REFERENCE.md §2), `/register` only when registration is on (§5.10).
pub fn configure(cfg: &mut web::ServiceConfig, public_metrics: bool, registration: bool) {
    if public_metrics {
        cfg.service(resource("/metrics", web::get().to(metrics::render)));
    }
    if registration {
        cfg.service(resource("/register", web::post().to(register::register))).service(
            resource("/register/{client_id}", web::get().to(register::read))
                .route(web::put().to(register::update))
                .route(web::delete().to(register::delete)),
        );
    }
    // Every body is small here: 64 KiB is ample for any form or JSON this server takes.
    cfg.app_data(web::PayloadConfig::new(64 * 1024))
        .app_data(web::JsonConfig::default().limit(64 * 1024).error_handler(|_, _| {
            ApiError::InvalidRequest("the request body is not valid JSON for this endpoint").into()
        }))
        .app_data(web::FormConfig::default().error_handler(|_, _| {
            ApiError::InvalidRequest("the request body is not a valid form for this endpoint")
                .into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|_, _| {
            ApiError::InvalidRequest("the query string is not valid for this endpoint").into()
        }))
        .service(resource("/.well-known/openid-configuration", web::get().to(discovery::publish)))
        .service(resource(
            "/.well-known/oauth-authorization-server",
            web::get().to(discovery::publish),
        ))
        .service(resource("/jwks", web::get().to(jwks::publish)))
        .service(resource("/health/live", web::get().to(health::live)))
        .service(resource("/health/ready", web::get().to(health::ready)))
        .service(resource("/token", web::post().to(token::exchange)))
        .service(resource("/par", web::post().to(par::push)))
        .service(resource("/device_authorization", web::post().to(device::start)))
        .service(
            resource("/device", web::get().to(device::page)).route(web::post().to(device::submit)),
        )
        .service(
            resource("/userinfo", web::get().to(userinfo::claims))
                .route(web::post().to(userinfo::claims)),
        )
        .service(resource("/introspect", web::post().to(introspect::inspect)))
        .service(resource("/revoke", web::post().to(introspect::revoke)))
        .service(
            resource("/authorize", web::get().to(authorize::by_query))
                .route(web::post().to(authorize::by_form)),
        )
        .service(
            resource("/consent", web::get().to(authorize::page))
                .route(web::post().to(authorize::decide)),
        )
        .service(
            resource("/login", web::get().to(login::page)).route(web::post().to(login::submit)),
        )
        .service(
            resource("/logout", web::get().to(logout::page)).route(web::post().to(logout::submit)),
        )
        .service(resource("/login/totp", web::post().to(login::submit_code)))
        .service(resource("/login/upstream/{id}", web::post().to(upstream::start)))
        .service(resource("/login/upstream/{id}/callback", web::get().to(upstream::callback)))
        .service(resource("/account/identities/link", web::post().to(upstream::link)))
        .service(resource("/account/identities/unlink", web::post().to(upstream::unlink)))
        .service(resource("/login/passkey/options", web::post().to(passkeys::login_options)))
        .service(resource("/login/passkey", web::post().to(passkeys::login)))
        .service(resource("/account/passkeys/options", web::post().to(passkeys::register_options)))
        .service(resource("/account/passkeys", web::post().to(passkeys::register)))
        .service(resource("/account/passkeys/{id}/rename", web::post().to(passkeys::rename)))
        .service(resource("/account/passkeys/{id}/remove", web::post().to(passkeys::remove)))
        .service(resource("/account", web::get().to(account::page)))
        .service(
            resource("/account/totp", web::get().to(account::totp_page))
                .route(web::post().to(account::totp_confirm)),
        )
        .service(resource("/account/totp/remove", web::post().to(account::totp_remove)))
        .service(resource("/account/grants/{id}/revoke", web::post().to(account::revoke)))
        .service(resource("/account/password", web::post().to(account::change_password)))
        .service(resource("/account/sessions/end", web::post().to(account::end_session)))
        .service(resource("/console", web::get().to(console::dashboard)))
        .service(resource("/console/callback", web::get().to(console::callback)))
        .service(resource("/console/logout", web::post().to(console::logout)))
        .service(
            resource("/console/clients", web::get().to(console::clients::list))
                .route(web::post().to(console::clients::create)),
        )
        .service(resource("/console/events", web::get().to(console::events::list)))
        .service(resource("/console/clients/new", web::get().to(console::clients::new)))
        .service(
            resource("/console/clients/{id}", web::get().to(console::clients::read))
                .route(web::post().to(console::clients::update)),
        )
        .service(resource("/console/clients/{id}/edit", web::get().to(console::clients::edit)))
        .service(resource("/console/clients/{id}/secret", web::post().to(console::clients::rotate)))
        .service(
            resource(
                "/console/clients/{id}/delete",
                web::get().to(console::clients::confirm_delete),
            )
            .route(web::post().to(console::clients::delete)),
        )
        .service(
            resource("/console/users", web::get().to(console::users::list))
                .route(web::post().to(console::users::create)),
        )
        .service(resource("/console/users/new", web::get().to(console::users::new)))
        .service(resource("/console/users/{id}", web::get().to(console::users::read)))
        .service(resource(
            "/console/users/{id}/disabled",
            web::post().to(console::users::set_disabled),
        ))
        .service(resource(
            "/console/users/{id}/admin-flag",
            web::post().to(console::users::set_admin),
        ))
        .service(resource(
            "/console/users/{id}/require-mfa",
            web::post().to(console::users::set_require_mfa),
        ))
        .service(resource(
            "/console/users/{id}/totp/remove",
            web::post().to(console::users::reset_totp),
        ))
        .service(resource(
            "/console/users/{id}/passkeys/{passkey_id}/remove",
            web::post().to(console::users::remove_passkey),
        ))
        .service(resource(
            "/console/users/{id}/password",
            web::post().to(console::users::reset_password),
        ))
        .service(resource(
            "/console/users/{id}/sessions/end",
            web::post().to(console::users::end_sessions),
        ))
        .service(resource(
            "/console/grants/{id}/revoke",
            web::post().to(console::users::revoke_grant),
        ))
        .service(
            resource("/console/scopes", web::get().to(console::scopes::list))
                .route(web::post().to(console::scopes::create)),
        )
        .service(
            resource("/console/scopes/{name}", web::get().to(console::scopes::read))
                .route(web::post().to(console::scopes::update)),
        )
        .service(
            resource(
                "/console/scopes/{name}/delete",
                web::get().to(console::scopes::confirm_delete),
            )
            .route(web::post().to(console::scopes::delete)),
        )
        .service(resource("/console/keys", web::get().to(console::keys::list)))
        .service(resource("/console/keys/rotate", web::post().to(console::keys::rotate)))
        .service(resource("/static/castellan.css", web::get().to(assets::stylesheet)))
        .service(resource("/static/logo", web::get().to(assets::logo)))
        .service(resource("/static/passkeys.js", web::get().to(assets::passkeys_script)))
        .service(resource("/static/console.js", web::get().to(assets::console_script)))
        .configure(admin::configure)
        .default_service(web::to(not_found));
}

/// The internal listener: metrics and health, nothing else.
pub fn configure_internal(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics", web::get().to(metrics::render)))
        .service(resource("/health/live", web::get().to(health::live)))
        .service(resource("/health/ready", web::get().to(health::ready)))
        .default_service(web::to(not_found));
}

/// A resource with one route; any other method gets 405 in our JSON shape.
pub(crate) fn resource(path: &str, route: Route) -> actix_web::Resource {
    web::resource(path).route(route).default_service(web::to(method_not_allowed))
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}
