//! `/console/keys`: the signing keys as `castellan keys list` and `GET /admin/keys` see them,
//! the next scheduled rotation, and rotating now through the same `Keys::rotate` as
//! `POST /admin/keys/rotate` — with the refusal while the next key is too new explained, and
//! a second, forced, try offered.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use super::{Frame, console_session, key_ring, signed_form};
use crate::oauth::jwk::Algorithm;
use crate::oauth::keyring::{KeyError, KeyInfo};
use crate::oauth::session::Session;
use crate::routes::pages::when;
use crate::routes::pages::{self, PageError};
use crate::routes::theme::Page;
use crate::startup::AppState;

const RACED: &str =
    "Another rotation happened at the same time; the keys are as that one left them.";

/// A key as the page shows it: every field a string.
#[derive(Serialize)]
struct KeyRow {
    kid: String,
    alg: &'static str,
    state: &'static str,
    created: String,
    activated: String,
    retired: String,
}

impl From<&KeyInfo> for KeyRow {
    fn from(k: &KeyInfo) -> Self {
        let at = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or_else(|| "—".to_owned(), when);
        Self {
            kid: k.kid.clone(),
            alg: k.alg.as_str(),
            state: k.state.as_str(),
            created: when(k.created_at),
            activated: at(k.activated_at),
            retired: at(k.retired_at),
        }
    }
}

#[derive(Serialize)]
struct KeysPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    keys: Vec<KeyRow>,
    next_rotation: String,
    /// The RS256 key that signs now (the one most tokens carry).
    signing_kid: String,
}

impl Page for KeysPage<'_> {
    const TEMPLATE: &'static str = "console/keys.html";
}

#[derive(Serialize)]
struct TooNewPage<'a> {
    #[serde(flatten)]
    frame: Frame<'a>,
    /// How long until the next key has outlived every JWKS cache, in seconds.
    wait: String,
    /// How long a JWKS may be cached, plus the time every replica takes to see a new key.
    lead: String,
}

impl Page for TooNewPage<'_> {
    const TEMPLATE: &'static str = "console/keys_rotate.html";
}

/// `GET /console/keys`.
pub async fn list(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let outcome = async {
        let Some(session) = console_session(&state, &req).await? else {
            return super::sign_in(&state, &req);
        };
        keys_page(&state, &session).await
    };
    pages::answer(&state, outcome.await)
}

async fn keys_page(state: &AppState, session: &Session) -> Result<HttpResponse, PageError> {
    let (keys, next_rotation) = key_ring(state).await?;
    let page = KeysPage {
        frame: Frame::of(state, session),
        keys: keys.iter().map(KeyRow::from).collect(),
        next_rotation: next_rotation.map_or_else(|| "none scheduled".to_owned(), when),
        signing_kid: state.keys.active_kid(Algorithm::RS256),
    };
    Ok(pages::render(state, StatusCode::OK, &page))
}

/// `POST /console/keys/rotate` (`force=true` to rotate even while the next key is too new):
/// every algorithm's next key becomes active, as at `POST /admin/keys/rotate`.
pub async fn rotate(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let (session, fields) = signed_form(&state, &req, body).await?;
        let force = pages::field(&fields, "force") == Some("true");
        let actor = super::super::actor::user(&session.user.id, &state, &req);
        match state.keys.rotate(&state.db, force, actor).await {
            Ok(()) => {}
            Err(KeyError::NextTooNew(wait)) => {
                let lead = crate::startup::key_policy(&state.settings).publish_lead;
                let page = TooNewPage {
                    frame: Frame::of(&state, &session),
                    wait: wait.to_string(),
                    lead: humantime::format_duration(lead).to_string(),
                };
                return Ok(pages::render(&state, StatusCode::CONFLICT, &page));
            }
            Err(KeyError::Raced) => return Err(PageError::Shown(StatusCode::CONFLICT, RACED)),
            Err(other) => return Err(other.into()),
        }
        let kid = state.keys.active_kid(Algorithm::RS256);
        tracing::info!(user = %session.user.id, rs256_kid = %kid, force, "rotated the signing keys");
        Ok(pages::see_other(&format!("{}/console/keys", pages::base(&state))))
    };
    pages::answer(&state, outcome.await)
}
