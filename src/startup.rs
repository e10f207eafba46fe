//! `Application::build`: connects, migrates, loads the key ring, binds and serves. Used by
//! `main` and by the tests alike.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::{App, HttpServer, middleware, web};
use anyhow::Context;
use arc_swap::ArcSwap;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::{Issuer, Settings};
use crate::oauth::backchannel::{self, Deliverer};
use crate::oauth::client_documents::ClientDocuments;
use crate::oauth::client_keys::ClientKeys;
use crate::oauth::cursor::Cursors;
use crate::oauth::discovery::Metadata;
use crate::oauth::dpop::{Proofs, Replays};
use crate::oauth::gate::Gate;
use crate::oauth::keyring::{KeyPolicy, Keys, LEEWAY};
use crate::oauth::master_key::MasterKey;
use crate::oauth::refresh_token::RefreshKeys;
use crate::oauth::registry::{Credentials, Registry};
use crate::oauth::revocation::Revocations;
use crate::oauth::tally::Tally;
use crate::oauth::throttle::Throttle;
use crate::oauth::users::Passwords;
use crate::oauth::verified::Verified;
use crate::outbound::Outbound;
use crate::routes;
use crate::routes::theme::Theme;
use crate::store::{self, Db};
use crate::telemetry::{self, Metrics};

/// What every handler shares, built once.
pub struct AppState {
    pub settings: Settings,
    pub issuer: Issuer,
    pub db: Db,
    pub keys: Arc<Keys>,
    pub registry: Registry,
    pub cursors: Cursors,
    /// Binds the HTML forms' CSRF tokens.
    pub csrf_key: aws_lc_rs::hmac::Key,
    /// MACs the known-device cookies (`oauth::device`).
    pub device_key: aws_lc_rs::hmac::Key,
    /// Signs and checks refresh tokens (HS256: only this server reads them).
    pub refresh_keys: RefreshKeys,
    /// Argon2id, bounded to one hash per CPU at a time.
    pub passwords: Passwords,
    /// The metadata document, serialized; refreshed with the registered scopes.
    pub discovery: ArcSwap<Vec<u8>>,
    /// Failed-authentication limits (docs/REFERENCE.md §9).
    pub throttle: Throttle,
    /// The revoked state of this replica, and the one hook every revocation goes through.
    pub revocations: Revocations,
    /// Checks DPoP proofs and makes their nonces (RFC 9449).
    pub proofs: Proofs,
    /// Records the ids of accepted DPoP proofs, so each is accepted once on any replica.
    pub replays: Replays,
    /// Clients' public keys, inline or fetched from their `jwks_uri`.
    pub client_keys: ClientKeys,
    /// Clients whose id is the URL of their metadata document.
    pub client_documents: ClientDocuments,
    /// Access tokens whose signature was verified recently.
    pub verified: Verified,
    /// Set on SIGTERM: readiness answers 503 while in-flight requests drain.
    pub draining: Arc<AtomicBool>,
    /// The pages' templates, stylesheet and logo (docs/REFERENCE.md §3.13).
    pub theme: Theme,
    /// Tokens issued per hour at this replica, not yet added to `token_hours`.
    pub tally: Tally,
    /// The one outgoing HTTP client (back-channel logout deliveries use it directly).
    pub outbound: Outbound,
    /// The relying party of upstream identity providers, over `outbound`.
    pub upstream: crate::oauth::upstream::RelyingParty,
}

impl AppState {
    /// The one gate presented tokens pass (docs/REFERENCE.md §4).
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            db: &self.db,
            keys: &self.keys,
            refresh_keys: &self.refresh_keys,
            issuer: self.issuer.as_str(),
            registry: &self.registry,
            revocations: &self.revocations,
            verified: &self.verified,
            proofs: &self.proofs,
            replays: &self.replays,
        }
    }

    /// What the back-channel logout worker claims and sends with (docs/REFERENCE.md §3.6).
    pub fn deliverer(&self) -> Deliverer<'_> {
        Deliverer {
            db: &self.db,
            keys: &self.keys,
            registry: &self.registry,
            outbound: &self.outbound,
            issuer: self.issuer.as_str(),
            retry_base: self.settings.backchannel_retry_base,
        }
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    server: Server,
    /// The listener for metrics and health only, when `internal_bind` is set.
    internal: Option<(Server, SocketAddr)>,
    address: SocketAddr,
    state: web::Data<AppState>,
    background: JoinHandle<()>,
    first_admin: Option<Credentials>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        settings.validate()?;
        // Before anything is touched: a broken theme stops the start here.
        let theme = Theme::load(&settings.brand).context("cannot load the theme")?;
        let master = MasterKey::load_or_create(settings.master_key.as_ref(), &settings.keys_dir)?;
        let cursors = Cursors::new(master.mac_key("cursor v1"));
        let csrf_key = master.mac_key("csrf v1");
        let device_key = master.mac_key("device v1");
        let refresh_keys = RefreshKeys::new(master.secret("refresh token v1").as_ref());
        let proofs = Proofs::new(master.mac_key("dpop nonce v1"), settings.dpop_require_nonce);
        store::migrate(&settings).await.context("cannot migrate the database")?;
        let metrics = web::Data::new(Metrics::new()?);
        let mut db = store::connect(&settings).await.context("cannot connect to the database")?;
        metrics.count_statements(&mut db);
        let keys = Arc::new(Keys::bootstrap(&db, master, key_policy(&settings)).await?);
        let registry =
            Registry::with_documents(settings.sync_interval, settings.client_id_metadata_documents);
        let revocations =
            Revocations::load(&db, settings.max_token_lifetime, key_policy(&settings).stale_after)
                .await
                .context("cannot read the revocation log")?;
        let first_admin = registry.register_first_admin(&db).await?;

        let listener = TcpListener::bind(settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let address = listener.local_addr()?;
        let issuer = settings.issuer.clone().unwrap_or_else(|| Issuer::from_bound_address(address));
        registry
            .ensure_console(&db, &revocations, issuer.as_str())
            .await
            .context("cannot register the admin console's client")?;
        let discovery = ArcSwap::from_pointee(metadata(&db, &issuer, &settings).await?);
        let (replays, writers) = Replays::new(&db);
        for writer in writers {
            tokio::spawn(telemetry::statements_as(crate::oauth::dpop::STATEMENTS_LABEL, writer));
        }

        // The one outgoing HTTP client (docs/REFERENCE.md §9.7), shared by every user of it.
        let outbound = Outbound::new(settings.outbound_allow_private_networks)?;
        let state = web::Data::new(AppState {
            issuer,
            db,
            keys,
            registry,
            cursors,
            csrf_key,
            device_key,
            refresh_keys,
            passwords: Passwords::default(),
            discovery,
            revocations,
            proofs,
            replays,
            client_keys: ClientKeys::new(outbound.clone(), settings.client_jwks_refetch_interval),
            client_documents: ClientDocuments::new(outbound.clone(), &settings),
            verified: Verified::default(),
            throttle: Throttle::new(&settings),
            draining: Arc::new(AtomicBool::new(false)),
            theme,
            tally: Tally::default(),
            upstream: crate::oauth::upstream::RelyingParty::new(
                outbound.clone(),
                settings.client_jwks_refetch_interval,
            ),
            outbound,
            settings,
        });
        let shutdown_timeout = state.settings.shutdown_timeout.as_secs();
        let https = state.issuer.is_https();
        let internal = match state.settings.internal_bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .with_context(|| format!("cannot listen on {bind} (internal)"))?,
            ),
            None => None,
        };
        let public_metrics = internal.is_none();
        let registration = state.settings.registration != crate::config::RegistrationMode::Off;
        let server = {
            let (state, metrics) = (state.clone(), metrics.clone());
            HttpServer::new(move || {
                App::new()
                    // RFC 6797: behind an https issuer, browsers are told to use nothing else.
                    .wrap(middleware::Condition::new(
                        https,
                        middleware::DefaultHeaders::new().add((
                            header::STRICT_TRANSPORT_SECURITY,
                            "max-age=31536000; includeSubDomains",
                        )),
                    ))
                    .wrap(middleware::from_fn(telemetry::observe))
                    .app_data(state.clone())
                    .app_data(metrics.clone())
                    .configure(|cfg| routes::configure(cfg, public_metrics, registration))
            })
            .disable_signals()
            .shutdown_timeout(shutdown_timeout)
            .listen(listener)?
            .run()
        };
        let internal = match internal {
            Some(listener) => {
                let internal_address = listener.local_addr()?;
                let (state, metrics) = (state.clone(), metrics.clone());
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(state.clone())
                        .app_data(metrics.clone())
                        .configure(routes::configure_internal)
                })
                .workers(1)
                .disable_signals()
                .shutdown_timeout(shutdown_timeout)
                .listen(listener)?
                .run();
                Some((server, internal_address))
            }
            None => None,
        };
        let background = {
            let (state, metrics) = (state.clone(), metrics.clone());
            // Signalled by the listener when a logout delivery was queued anywhere (Postgres).
            let queued = Arc::new(Notify::new());
            tokio::spawn(async move {
                tokio::join!(
                    sync_shared_state(state.clone()),
                    listen_for_changes(state.clone(), queued.clone()),
                    deliver_logouts(state.clone(), queued),
                    purge_expired(state, metrics),
                );
            })
        };
        Ok(Self { server, internal, address, state, background, first_admin })
    }

    /// The internal listener's address (metrics and health), when one was asked for.
    pub fn internal_address(&self) -> Option<SocketAddr> {
        self.internal.as_ref().map(|(_, address)| *address)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn issuer(&self) -> &Issuer {
        &self.state.issuer
    }

    /// The key ring this server signs with.
    pub fn keys(&self) -> Arc<Keys> {
        self.state.keys.clone()
    }

    /// The admin client made on the first start of an empty database, with its secret:
    /// shown once, then never again.
    pub fn first_admin(&self) -> Option<&Credentials> {
        self.first_admin.as_ref()
    }

    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM or SIGINT, then stops accepting, lets in-flight requests
    /// finish (readiness reports 503 meanwhile) and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.address, issuer = %self.state.issuer, "listening");
        let handle = self.server.handle();
        let internal_handle = self.internal.as_ref().map(|(server, _)| server.handle());
        let draining = self.state.draining.clone();
        let delay = self.state.settings.shutdown_delay;
        let signals = tokio::spawn(async move {
            wait_for_termination().await;
            // Readiness turns 503 first; the listener stays open for the delay, so load
            // balancers see it and stop sending before connections are refused.
            draining.store(true, Ordering::Relaxed);
            tracing::info!(delay = ?delay, "shutting down: readiness is 503");
            tokio::time::sleep(delay).await;
            tracing::info!("shutting down: draining in-flight requests");
            handle.stop(true).await;
            if let Some(internal) = internal_handle {
                internal.stop(true).await;
            }
        });
        if let Some((internal, _)) = self.internal {
            tokio::spawn(internal);
        }
        let served = self.server.await;
        signals.abort();
        self.background.abort();
        // What was counted since the last sync, before the connection goes.
        flush_tally(&self.state).await;
        self.state.db.clone().close().await.ok();
        tracing::info!("stopped");
        served
    }
}

pub(crate) fn key_policy(settings: &Settings) -> KeyPolicy {
    KeyPolicy {
        rotation_period: settings.key_rotation_period,
        retention: settings.max_token_lifetime + settings.sync_interval + LEEWAY,
        publish_lead: settings.jwks_max_age + settings.sync_interval,
        stale_after: crate::config::SYNC_INTERVAL_LIMIT + settings.sync_interval,
    }
}

/// Re-reads the key ring every sync interval (so a rotation made anywhere reaches this
/// replica in time) and rotates when a key has signed for a whole period; follows the
/// revocation log, so a revocation made anywhere holds here within the interval.
async fn sync_shared_state(state: web::Data<AppState>) {
    let mut tick = tokio::time::interval(state.settings.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        flush_tally(&state).await;
        if let Err(e) = state.keys.refresh(&state.db).await {
            tracing::warn!(error = %e, "cannot refresh the key ring");
            continue;
        }
        if let Err(e) = state.keys.rotate_if_due(&state.db).await {
            tracing::warn!(error = %e, "scheduled key rotation failed");
        }
        if let Err(e) = follow_changes(&state).await {
            tracing::warn!(error = %e, "cannot follow the revocation log");
        }
        if let Err(e) = state.throttle.sync(&state.db).await {
            tracing::warn!(error = %e, "cannot refresh the blocked accounts and addresses");
        }
        match metadata(&state.db, &state.issuer, &state.settings).await {
            Ok(document) => state.discovery.store(Arc::new(document)),
            Err(e) => tracing::warn!(error = %e, "cannot refresh the metadata document"),
        }
    }
}

/// Adds the tokens counted since the last flush to `token_hours`, one upsert per hour, its
/// statements counted as `token_hours` (never as a route's); kept for the next one if it fails.
async fn flush_tally(state: &AppState) {
    let flushed = telemetry::statements_as(TALLY_STATEMENTS, state.tally.flush(&state.db));
    if let Err(e) = flushed.await {
        tracing::warn!(error = %e, "cannot add the tokens issued to token_hours; kept for the next sync");
    }
}

/// The label the token tally's flushes are counted under in `castellan_db_statements_total`.
pub const TALLY_STATEMENTS: &str = "token_hours";

/// Postgres: applies each change another replica or the CLI commits as soon as its
/// notification arrives (a trigger sends `castellan_changes`, see the migrations), so a
/// revocation holds everywhere within milliseconds. The periodic sync stays the fallback;
/// after a lost connection the log is read again before listening on. A queued logout
/// delivery (`store::backchannel`) wakes the back-channel worker through `queued`.
async fn listen_for_changes(state: web::Data<AppState>, queued: Arc<Notify>) {
    if state.db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return;
    }
    loop {
        if let Err(e) = listen(&state, &queued).await {
            tracing::warn!(error = %e, "change notifications interrupted; the sync interval covers");
        }
        tokio::time::sleep(state.settings.sync_interval).await;
    }
}

async fn listen(state: &AppState, queued: &Notify) -> anyhow::Result<()> {
    let pool = state.db.get_postgres_connection_pool();
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen("castellan_changes").await?;
    follow_changes(state).await?;
    // Deliveries queued while nobody listened are looked for once.
    queued.notify_one();
    loop {
        let note = listener.try_recv().await?;
        // A queued logout delivery only wakes the worker; after a lost connection the worker
        // looks too, for what was queued meanwhile.
        match &note {
            Some(note) if note.payload() == store::backchannel::QUEUED => {
                queued.notify_one();
                continue;
            }
            None => queued.notify_one(),
            Some(_) => {}
        }
        // Counted apart, so an operator (and the replica drills) can see notifications arrive.
        telemetry::statements_as(NOTIFIED_STATEMENTS, async {
            match note {
                Some(note) if note.payload() == "signing_keys" => {
                    state.keys.refresh(&state.db).await.map_err(anyhow::Error::from)
                }
                // A change to the log; or `None`: the connection was lost and is being
                // re-made, so whatever was committed meanwhile is read first.
                _ => follow_changes(state).await.map_err(anyhow::Error::from),
            }
        })
        .await?;
    }
}

/// The label the reads a change notification caused are counted under in
/// `castellan_db_statements_total`.
pub const NOTIFIED_STATEMENTS: &str = "change_notification";

/// Applies what the revocation log gained: revocations, and clients whose cached copies go.
async fn follow_changes(state: &AppState) -> Result<(), store::StoreError> {
    for client_id in state.revocations.follow(&state.db).await? {
        state.registry.forget(&client_id);
    }
    Ok(())
}

/// Every `purge_interval`, deletes what can no longer matter (`store::purge`) in bounded
/// batches for up to half the interval: a backlog (a first start on a large database, a
/// replica that was down) is worked through over a few rounds, never in one long statement,
/// and the purge keeps up with far more than any replica issues (docs/SCALING.md). Replicas
/// purge independently; two racing for the same rows delete them once.
async fn purge_expired(state: web::Data<AppState>, metrics: web::Data<Metrics>) {
    let every = state.settings.purge_interval;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let windows = store::purge::Windows {
            attempts: state.settings.failure_window,
            events: state.settings.event_retention,
        };
        match store::purge::round(&state.db, windows, every / 2).await {
            Ok(deleted) => metrics.count_purged(&deleted),
            Err(e) => tracing::warn!(error = %e, "housekeeping failed"),
        }
        // Clients that registered themselves and went unused: through the revocation hook,
        // a bounded number per round.
        let idle = state.settings.dynamic_client_idle_expiry;
        if !idle.is_zero()
            && let Ok(idle) = chrono::Duration::from_std(idle)
            && let Err(e) = state
                .registry
                .expire_idle(&state.db, &state.revocations, chrono::Utc::now() - idle, 100)
                .await
        {
            tracing::warn!(error = %e, "expiring unused dynamic clients failed");
        }
    }
}

/// Sends the logout tokens queued for back-channel logout (`oauth::backchannel`) until the
/// process stops. A full batch is followed at once by the next. Otherwise, on Postgres, the
/// worker sleeps until a delivery is queued anywhere (the enqueue notifies, and the listener
/// wakes it through `queued`) or the earliest pending attempt is due, and at most
/// [`LOGOUT_POLL`]: an idle replica claims twice a minute, and reads when the next attempt is
/// due only while something is pending. SQLite has no notifications: the queue is looked at
/// again after a second (or the retry base, if shorter).
async fn deliver_logouts(state: web::Data<AppState>, queued: Arc<Notify>) {
    let notified = state.db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let idle = state.settings.backchannel_retry_base.min(Duration::from_secs(1));
    // Whether deliveries may be waiting for a later attempt; at start (a restart) they may.
    let mut pending = true;
    loop {
        let claimed = match logout_round(&state).await {
            Ok(claimed) if claimed == backchannel::CONCURRENCY => continue,
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "back-channel logout deliveries not claimed");
                tokio::time::sleep(idle).await;
                continue;
            }
        };
        let wait = if !notified {
            idle
        } else if claimed == 0 && !pending {
            LOGOUT_POLL
        } else {
            match store::backchannel::next_due(&state.db).await {
                Ok(due) => {
                    pending = due.is_some();
                    due.map_or(LOGOUT_POLL, |due| {
                        (due - chrono::Utc::now()).to_std().unwrap_or_default().min(LOGOUT_POLL)
                    })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "back-channel logout deliveries not read");
                    idle
                }
            }
        };
        tokio::select! {
            () = queued.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// The longest the Postgres worker sleeps without a notification: the bound on a delivery
/// queued while the listener was reconnecting, or whose due time another replica set.
const LOGOUT_POLL: Duration = Duration::from_secs(30);

/// Claims up to [`backchannel::CONCURRENCY`] due deliveries and sends them, each in a task of
/// its own; how many were claimed.
async fn logout_round(state: &web::Data<AppState>) -> Result<u64, store::StoreError> {
    let claimed = state.deliverer().claim().await?;
    let count = claimed.len() as u64;
    let mut sends = tokio::task::JoinSet::new();
    for delivery in claimed {
        let state = state.clone();
        sends.spawn(async move {
            if let Err(e) = state.deliverer().send(&delivery).await {
                tracing::warn!(error = %e, client_id = %delivery.client_id, "back-channel logout delivery not recorded");
            }
        });
    }
    while sends.join_next().await.is_some() {}
    Ok(count)
}

/// The metadata document with the scopes registered now.
async fn metadata(db: &Db, issuer: &Issuer, settings: &Settings) -> anyhow::Result<Vec<u8>> {
    let scopes = store::scopes::list(db, None, 1000).await?.into_iter().map(|s| s.name).collect();
    let mut document = Metadata::new(issuer, scopes);
    document.require_pushed_authorization_requests = settings.require_pushed_authorization_requests;
    if settings.registration != crate::config::RegistrationMode::Off {
        document.registration_endpoint = Some(issuer.endpoint("/register"));
    }
    document.client_id_metadata_document_supported = settings.client_id_metadata_documents;
    Ok(serde_json::to_vec(&document)?)
}

async fn wait_for_termination() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
