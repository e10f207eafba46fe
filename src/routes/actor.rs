//! Who acts in a request, for the audit trail: the admin token's client or user, a signed-in
//! user, or nobody yet, with the source address and the request's id.

use actix_web::{HttpMessage, HttpRequest};

use super::bearer::Bearer;
use crate::oauth::audit::Actor;
use crate::oauth::session::Origin;
use crate::startup::AppState;
use crate::telemetry::RequestId;

/// The holder of an admin token: its user for a user's token, else its client.
pub fn admin<R>(bearer: &Bearer<R>, state: &AppState, req: &HttpRequest) -> Actor {
    let claims = &bearer.token.claims;
    let actor = match &claims.gid {
        Some(_) => Actor::user(&claims.sub),
        None => Actor::client(&claims.client_id),
    };
    seen(actor, state, req)
}

/// A client acting on itself (RFC 7592 with its registration access token).
pub fn seen_client(client_id: &str, state: &AppState, req: &HttpRequest) -> Actor {
    seen(Actor::client(client_id), state, req)
}

/// A user signed in at a page.
pub fn user(user_id: &str, state: &AppState, req: &HttpRequest) -> Actor {
    seen(Actor::user(user_id), state, req)
}

/// Someone not known (yet).
pub fn anonymous(state: &AppState, req: &HttpRequest) -> Actor {
    seen(Actor::anonymous(), state, req)
}

fn seen(actor: Actor, state: &AppState, req: &HttpRequest) -> Actor {
    let address = super::address::source(req, &state.settings.trusted_proxies).to_string();
    actor.at(Some(address), request_id(req))
}

/// The browser a session starts from: its User-Agent and the same source address the
/// audit trail records (trusted proxies honoured).
pub fn origin(state: &AppState, req: &HttpRequest) -> Origin {
    let user_agent =
        req.headers().get(actix_web::http::header::USER_AGENT).and_then(|v| v.to_str().ok());
    let address = super::address::source(req, &state.settings.trusted_proxies).to_string();
    Origin::new(user_agent, Some(address))
}

/// The id the telemetry middleware gave this request.
pub fn request_id(req: &HttpRequest) -> Option<String> {
    req.extensions().get::<RequestId>().map(|id| id.0.clone())
}
