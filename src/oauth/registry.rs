//! The client registry: registering, replacing, deleting clients and rotating secrets, and
//! a per-replica lookup cache. A cached client stays until the revocation log says it changed
//! (every change writes an entry there, in the change's own transaction); an id found to be
//! unknown is remembered for at most one sync interval (docs/REFERENCE.md §8).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use secrecy::SecretString;

use super::audit::{self, Actor, Event, EventType};
use super::client::{
    AuthMethod, Client, ClientMetadata, GrantType, Lifetimes, Profile, Registration, SecretHash,
};
use super::client_metadata::FieldError;
use super::jwk::Algorithm;
use super::revocation::Revocations;
use super::scope::Scopes;
use super::secret;
use crate::store::clients::{ClientRecord, SecretRecord, StoredLifetimes};
use crate::store::{self, Db, StoreError};
use sea_orm::TransactionTrait;

/// Entries kept before the cache starts over (it is a cache, not a copy of the table).
const CACHE_CAPACITY: usize = 10_000;

/// A cached lookup: when it was made, and the client (or that there was none).
type Cached = (Instant, Option<Arc<Client>>);

/// Client lookups for this replica.
pub struct Registry {
    cache: RwLock<HashMap<String, Cached>>,
    /// How long "no such client" is remembered (a client registered meanwhile writes nothing
    /// to the log).
    unknown_ttl: Duration,
    /// Bumped by every `forget`: a lookup that raced a change is not cached.
    epoch: AtomicU64,
    /// When this replica last recorded that a dynamic client got tokens.
    touched: RwLock<HashMap<String, Instant>>,
    /// Whether clients that came by their metadata document are served (§5.11): with the
    /// setting off, stored ones are unknown too.
    documents: bool,
}

/// Longest a rotated secret may keep working beside the new one (a week), for every surface
/// that rotates secrets.
pub const MAX_SECRET_OVERLAP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The overlap of `seconds`, if it is within `MAX_SECRET_OVERLAP`.
pub fn secret_overlap(seconds: u64) -> Option<Duration> {
    let overlap = Duration::from_secs(seconds);
    (overlap <= MAX_SECRET_OVERLAP).then_some(overlap)
}

/// A dynamic client's last use is recorded at most this often per replica.
const TOUCH_INTERVAL: Duration = Duration::from_secs(3600);

/// Why a registry change failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Metadata(#[from] FieldError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// A client just registered, with its secret (shown this once) when it has one.
pub struct Registered {
    pub client: Client,
    pub secret: Option<SecretString>,
}

/// A confidential client's credentials, as printed once by the CLI and on first start.
pub struct Credentials {
    pub client_id: String,
    pub client_secret: SecretString,
}

impl Credentials {
    /// `{"client_id": …, "client_secret": …}`: the one place a secret is exposed, on purpose.
    pub fn to_json(&self) -> String {
        use secrecy::ExposeSecret;
        serde_json::json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret.expose_secret(),
        })
        .to_string()
    }
}

/// The metadata of an admin client: client_credentials with the `admin` scope.
pub fn admin_metadata(name: &str) -> ClientMetadata {
    ClientMetadata {
        client_name: name.to_owned(),
        client_uri: None,
        redirect_uris: Vec::new(),
        grant_types: vec![GrantType::ClientCredentials],
        response_types: Vec::new(),
        scope: Scopes::from_names(["admin".to_owned()]),
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        jwks: None,
        jwks_uri: None,
        post_logout_redirect_uris: Vec::new(),
        audience: Vec::new(),
        served_resources: Vec::new(),
        lifetimes: Lifetimes::default(),
        access_token_alg: Algorithm::RS256,
        dpop_bound_access_tokens: false,
        require_pushed_authorization_requests: false,
        require_mfa: false,
        backchannel_logout_uri: None,
        backchannel_logout_session_required: false,
        id_token_alg: Algorithm::RS256,
        profile: None,
        refresh_token_rotation: true,
    }
}

impl Registry {
    pub fn new(unknown_ttl: Duration) -> Self {
        Self::with_documents(unknown_ttl, false)
    }

    /// A registry that also serves clients that came by their metadata document.
    pub fn with_documents(unknown_ttl: Duration, documents: bool) -> Self {
        Self {
            documents,
            cache: RwLock::new(HashMap::new()),
            unknown_ttl,
            epoch: AtomicU64::new(0),
            touched: RwLock::new(HashMap::new()),
        }
    }

    /// The client `client_id`, from the cache while no change to it was seen. Unknown ids are
    /// cached for `unknown_ttl`, so a flood of bad ids costs one query per id per interval.
    pub async fn find(&self, db: &Db, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        let found = self.lookup(db, client_id).await?;
        Ok(found.filter(|c| self.documents || c.registration != Registration::Document))
    }

    async fn lookup(&self, db: &Db, client_id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        if let Ok(cache) = self.cache.read()
            && let Some((at, client)) = cache.get(client_id)
            && (client.is_some() || at.elapsed() < self.unknown_ttl)
        {
            return Ok(client.clone());
        }
        let epoch = self.epoch.load(Ordering::Acquire);
        let client = match store::clients::find(db, client_id).await? {
            Some(record) => Some(Arc::new(
                from_record(record)
                    .map_err(|e| StoreError::corrupt(format_args!("client {client_id}: {e}")))?,
            )),
            None => None,
        };
        if let Ok(mut cache) = self.cache.write()
            && self.epoch.load(Ordering::Acquire) == epoch
        {
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(client_id.to_owned(), (Instant::now(), client.clone()));
        }
        Ok(client)
    }

    /// The client as stored now, bypassing the cache (for admins).
    pub async fn load(&self, db: &Db, client_id: &str) -> Result<Option<Client>, RegistryError> {
        Ok(store::clients::find(db, client_id).await?.map(from_record).transpose()?)
    }

    /// Drops a client from this replica's cache: after a change made here, or one read from
    /// the log.
    pub fn forget(&self, client_id: &str) {
        if let Ok(mut cache) = self.cache.write() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            cache.remove(client_id);
        }
    }

    /// Registers a client for an administrator, recording `client.created` by `actor` with it.
    pub async fn register(
        &self,
        db: &Db,
        metadata: ClientMetadata,
        actor: Actor,
    ) -> Result<Registered, RegistryError> {
        check_scopes_exist(db, &metadata.scope).await?;
        let registered = new_client(metadata, Registration::Admin)?;
        let client_id = &registered.client.client_id;
        let event = Event::new(EventType::ClientCreated, actor, format!("client:{client_id}"));
        let txn = db.begin().await.map_err(StoreError::from)?;
        store::clients::insert_in(&txn, &to_record(&registered.client)?).await?;
        audit::record(&txn, &event).await?;
        txn.commit().await.map_err(StoreError::from)?;
        event.log();
        Ok(registered)
    }

    /// Registers a client that registered itself (RFC 7591), holding `token_hash` as its
    /// registration access token; with `initial_access_token`, one use of that token is
    /// taken in the same transaction, and `client.registered` by `actor` recorded. `None`
    /// when that token has no use left.
    pub async fn register_dynamic(
        &self,
        db: &Db,
        metadata: ClientMetadata,
        token_hash: Vec<u8>,
        initial_access_token: Option<&str>,
        actor: Actor,
    ) -> Result<Option<Registered>, RegistryError> {
        check_scopes_exist(db, &metadata.scope).await?;
        let registration =
            if initial_access_token.is_some() { Registration::Token } else { Registration::Open };
        let mut registered = new_client(metadata, registration)?;
        registered.client.registration_token_hash = Some(token_hash);
        let record = to_record(&registered.client)?;
        let txn = db.begin().await.map_err(StoreError::from)?;
        if let Some(id) = initial_access_token
            && !store::registration::take_use(&txn, id, Utc::now()).await?
        {
            txn.rollback().await.map_err(StoreError::from)?;
            return Ok(None);
        }
        store::clients::insert_in(&txn, &record).await?;
        let client_id = &registered.client.client_id;
        let event = Event::new(EventType::ClientRegistered, actor, format!("client:{client_id}"))
            .with("registration", registered.client.registration.as_str())
            .with("initial_access_token", initial_access_token);
        audit::record(&txn, &event).await?;
        txn.commit().await.map_err(StoreError::from)?;
        event.log();
        Ok(Some(registered))
    }

    /// Stores a client that came by its metadata document: its id is the document's URL.
    pub async fn register_document(
        &self,
        db: &Db,
        url: &str,
        metadata: ClientMetadata,
    ) -> Result<(), RegistryError> {
        check_scopes_exist(db, &metadata.scope).await?;
        let mut registered = new_client(metadata, Registration::Document)?;
        registered.client.client_id = url.to_owned();
        store::clients::insert(db, &to_record(&registered.client)?).await?;
        self.forget(url);
        Ok(())
    }

    /// Records that a dynamic client got tokens, at most once per `TOUCH_INTERVAL` per
    /// replica (an admin's client is never written: its tokens stay off the database).
    pub async fn touch(&self, db: &Db, client: &Client) -> Result<(), StoreError> {
        if !client.registration.is_dynamic() {
            return Ok(());
        }
        let fresh = self.touched.read().ok().and_then(|t| t.get(&client.client_id).copied());
        if fresh.is_some_and(|at| at.elapsed() < TOUCH_INTERVAL) {
            return Ok(());
        }
        store::clients::touch(db, &client.client_id, Utc::now()).await?;
        if let Ok(mut touched) = self.touched.write() {
            if touched.len() >= CACHE_CAPACITY {
                touched.clear();
            }
            touched.insert(client.client_id.clone(), Instant::now());
        }
        Ok(())
    }

    /// Deletes up to `limit` dynamic clients that got no token since `cutoff`, each through
    /// the revocation hook; returns how many went.
    pub async fn expire_idle(
        &self,
        db: &Db,
        revocations: &Revocations,
        cutoff: chrono::DateTime<Utc>,
        limit: u64,
    ) -> Result<u64, StoreError> {
        let mut deleted = 0;
        for client_id in store::clients::idle_dynamic(db, cutoff, limit).await? {
            if self.delete(db, revocations, &client_id, Actor::system("housekeeping")).await? {
                tracing::info!(client_id = %client_id, "deleted a dynamic client unused too long");
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// On the first start of an empty database, exactly one replica creates an admin
    /// client and returns its credentials; every other start returns `None`.
    pub async fn register_first_admin(
        &self,
        db: &Db,
    ) -> Result<Option<Credentials>, RegistryError> {
        let registered =
            new_client(admin_metadata("Castellan admin (first start)"), Registration::Admin)?;
        if !store::clients::insert_once(db, "first_admin_client", &to_record(&registered.client)?)
            .await?
        {
            return Ok(None);
        }
        let client_secret =
            registered.secret.ok_or_else(|| anyhow::anyhow!("admin client without secret"))?;
        Ok(Some(Credentials { client_id: registered.client.client_id, client_secret }))
    }

    /// Ensures the console's reserved client exists with the redirect URI of `issuer`
    /// (docs/REFERENCE.md §3.12): created (unrecorded), or its metadata restored by
    /// `system:startup` (recorded as `client.updated`).
    /// Replicas starting together race on the insert; the loser finds the winner's client.
    pub async fn ensure_console(
        &self,
        db: &Db,
        revocations: &Revocations,
        issuer: &str,
    ) -> Result<(), RegistryError> {
        let metadata = super::console::metadata(issuer);
        let client_id = super::console::CLIENT_ID;
        if let Some(current) = store::clients::find(db, client_id).await? {
            if from_record(current)?.metadata.redirect_uris != metadata.redirect_uris {
                let actor = Actor::system("startup");
                self.replace(db, revocations, client_id, metadata, None, actor).await?;
            }
            return Ok(());
        }
        // Like the first admin client, made by the server and not recorded as an admin change.
        let mut registered = new_client(metadata, Registration::Admin)?;
        registered.client.client_id = client_id.to_owned();
        let txn = db.begin().await.map_err(StoreError::from)?;
        match store::clients::insert_in(&txn, &to_record(&registered.client)?).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Replaces a client's metadata; its id and secrets stay. A client that newly needs a
    /// secret gets one, returned once. `registration_token` replaces a dynamic client's
    /// registration access token hash in the same transaction (RFC 7592 §2.2). Records
    /// `client.updated` by `actor` with the change.
    pub async fn replace(
        &self,
        db: &Db,
        revocations: &Revocations,
        client_id: &str,
        metadata: ClientMetadata,
        registration_token: Option<Vec<u8>>,
        actor: Actor,
    ) -> Result<Option<Registered>, RegistryError> {
        check_scopes_exist(db, &metadata.scope).await?;
        let Some(current) = store::clients::find(db, client_id).await? else { return Ok(None) };
        let mut client = from_record(current)?;
        client.metadata = metadata;
        if registration_token.is_some() {
            client.registration_token_hash = registration_token;
        }
        let now = Utc::now();
        client.updated_at = now;
        let uses_secret = client.metadata.token_endpoint_auth_method.uses_secret();
        let end_secrets = (!uses_secret).then_some(now);
        let txn = db.begin().await.map_err(StoreError::from)?;
        if !store::clients::replace(&txn, &to_record(&client)?, end_secrets).await? {
            txn.rollback().await.map_err(StoreError::from)?;
            return Ok(None);
        }
        revocations.client_changed(&txn, client_id).await?;
        let event =
            Event::new(EventType::ClientUpdated, actor.clone(), format!("client:{client_id}"));
        audit::record(&txn, &event).await?;
        txn.commit().await.map_err(StoreError::from)?;
        event.log();
        self.forget(client_id);
        let mut secret = None;
        if uses_secret && client.live_secret_hashes(now).next().is_none() {
            let (rotated, new_secret) = self
                .rotate_secret(db, revocations, client_id, Duration::ZERO, actor)
                .await?
                .ok_or_else(|| {
                    anyhow::anyhow!("client {client_id} vanished while being replaced")
                })?;
            client = rotated;
            secret = Some(new_secret);
        }
        Ok(Some(Registered { client, secret }))
    }

    /// Deletes a client through the revocation hook: every token issued to it ends too.
    /// Records `client.deleted` by `actor` with it.
    pub async fn delete(
        &self,
        db: &Db,
        revocations: &Revocations,
        client_id: &str,
        actor: Actor,
    ) -> Result<bool, StoreError> {
        let event = Event::new(EventType::ClientDeleted, actor, format!("client:{client_id}"));
        let deleted = revocations.revoke_client(db, client_id, &event).await?;
        self.forget(client_id);
        Ok(deleted)
    }

    /// Issues a new secret; older ones keep working for `overlap`, then stop. Records
    /// `client.secret_rotated` by `actor` (the overlap, never the secret).
    pub async fn rotate_secret(
        &self,
        db: &Db,
        revocations: &Revocations,
        client_id: &str,
        overlap: Duration,
        actor: Actor,
    ) -> Result<Option<(Client, SecretString)>, RegistryError> {
        let event =
            Event::new(EventType::ClientSecretRotated, actor, format!("client:{client_id}"))
                .with("overlap_seconds", overlap.as_secs());
        let new_secret = secret::generate()?;
        let now = Utc::now();
        let record =
            SecretRecord { hash: secret::hash(&new_secret), created_at: now, expires_at: None };
        let overlap = chrono::Duration::from_std(overlap).map_err(anyhow::Error::from)?;
        let txn = db.begin().await.map_err(StoreError::from)?;
        if !store::clients::rotate_secret(&txn, client_id, &record, now + overlap).await? {
            txn.rollback().await.map_err(StoreError::from)?;
            return Ok(None);
        }
        revocations.client_changed(&txn, client_id).await?;
        audit::record(&txn, &event).await?;
        txn.commit().await.map_err(StoreError::from)?;
        event.log();
        self.forget(client_id);
        let Some(stored) = store::clients::find(db, client_id).await? else { return Ok(None) };
        Ok(Some((from_record(stored)?, new_secret)))
    }

    /// A page of clients after `after`.
    pub async fn list(
        &self,
        db: &Db,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Client>, RegistryError> {
        let records = store::clients::list(db, after, limit).await?;
        Ok(records.into_iter().map(from_record).collect::<anyhow::Result<_>>()?)
    }

    /// A page of the clients whose id or name contains `term` (ASCII case ignored).
    pub async fn search(
        &self,
        db: &Db,
        term: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Client>, RegistryError> {
        let records = store::clients::list_matching(db, term, after, limit).await?;
        Ok(records.into_iter().map(from_record).collect::<anyhow::Result<_>>()?)
    }
}

fn new_client(metadata: ClientMetadata, registration: Registration) -> anyhow::Result<Registered> {
    let now = Utc::now();
    let secret =
        metadata.token_endpoint_auth_method.uses_secret().then(secret::generate).transpose()?;
    let client = Client {
        client_id: secret::random_token(16)?,
        secrets: secret
            .iter()
            .map(|s| SecretHash { hash: secret::hash(s), expires_at: None })
            .collect(),
        metadata,
        registration,
        registration_token_hash: None,
        created_at: now,
        updated_at: now,
    };
    Ok(Registered { client, secret })
}

/// Whether every one of `scopes` is a registered scope.
pub async fn all_registered(db: &Db, scopes: &Scopes) -> Result<bool, StoreError> {
    let names: Vec<String> = scopes.iter().map(str::to_owned).collect();
    Ok(store::scopes::existing(db, &names).await?.len() == names.len())
}

async fn check_scopes_exist(db: &Db, scopes: &Scopes) -> Result<(), RegistryError> {
    if !all_registered(db, scopes).await? {
        return Err(FieldError {
            error: "invalid_client_metadata",
            description: "scope names a scope that is not registered",
            field: "scope".into(),
        }
        .into());
    }
    Ok(())
}

fn to_record(client: &Client) -> anyhow::Result<ClientRecord> {
    let m = &client.metadata;
    let l = &m.lifetimes;
    // Validated metadata never exceeds i32 (docs/REFERENCE.md §5); anything else is a bug.
    let lifetime = |v: Option<u32>| v.map(i32::try_from).transpose();
    Ok(ClientRecord {
        client_id: client.client_id.clone(),
        client_name: m.client_name.clone(),
        redirect_uris: serde_json::to_string(&m.redirect_uris)?,
        grant_types: serde_json::to_string(&m.grant_types)?,
        response_types: serde_json::to_string(&m.response_types)?,
        token_endpoint_auth_method: m.token_endpoint_auth_method.as_str().to_owned(),
        jwks: m.jwks.as_ref().map(serde_json::to_string).transpose()?,
        post_logout_redirect_uris: serde_json::to_string(&m.post_logout_redirect_uris)?,
        audience: serde_json::to_string(&m.audience)?,
        served_resources: serde_json::to_string(&m.served_resources)?,
        access_token_alg: m.access_token_alg.as_str().to_owned(),
        dpop_bound_access_tokens: m.dpop_bound_access_tokens,
        require_pushed_authorization_requests: m.require_pushed_authorization_requests,
        require_mfa: m.require_mfa,
        backchannel_logout_uri: m.backchannel_logout_uri.clone(),
        backchannel_logout_session_required: m.backchannel_logout_session_required,
        jwks_uri: m.jwks_uri.clone(),
        id_token_alg: m.id_token_alg.as_str().to_owned(),
        security_profile: m.profile.map(|p| p.as_str().to_owned()),
        refresh_token_rotation: m.refresh_token_rotation,
        registration: client.registration.as_str().to_owned(),
        registration_token_hash: client.registration_token_hash.clone(),
        // A dynamic client counts as used when it registers (only inserts write this).
        last_used_at: client.registration.is_dynamic().then_some(client.created_at),
        client_uri: m.client_uri.clone(),
        lifetimes: StoredLifetimes {
            access_token: lifetime(l.access_token)?,
            id_token: lifetime(l.id_token)?,
            refresh_token: lifetime(l.refresh_token)?,
            refresh_token_absolute: lifetime(l.refresh_token_absolute)?,
            authorization_code: lifetime(l.authorization_code)?,
        },
        scopes: m.scope.iter().map(str::to_owned).collect(),
        secrets: client
            .secrets
            .iter()
            .map(|s| SecretRecord {
                hash: s.hash.clone(),
                created_at: client.created_at,
                expires_at: s.expires_at,
            })
            .collect(),
        created_at: client.created_at,
        updated_at: client.updated_at,
    })
}

fn from_record(r: ClientRecord) -> anyhow::Result<Client> {
    let grant_names: Vec<String> = serde_json::from_str(&r.grant_types)?;
    let grant_types = grant_names
        .iter()
        .map(|g| GrantType::parse(g).ok_or_else(|| anyhow::anyhow!("unknown grant type")))
        .collect::<anyhow::Result<_>>()?;
    let method = AuthMethod::parse(&r.token_endpoint_auth_method)
        .ok_or_else(|| anyhow::anyhow!("unknown token_endpoint_auth_method"))?;
    let stored = r.lifetimes;
    let lifetime = |v: Option<i32>| v.and_then(|v| u32::try_from(v).ok());
    Ok(Client {
        metadata: ClientMetadata {
            client_name: r.client_name,
            client_uri: r.client_uri,
            redirect_uris: serde_json::from_str(&r.redirect_uris)?,
            grant_types,
            response_types: serde_json::from_str(&r.response_types)?,
            scope: Scopes::from_names(r.scopes),
            token_endpoint_auth_method: method,
            jwks: r.jwks.as_deref().map(serde_json::from_str).transpose()?,
            jwks_uri: r.jwks_uri,
            post_logout_redirect_uris: serde_json::from_str(&r.post_logout_redirect_uris)?,
            audience: serde_json::from_str(&r.audience)?,
            served_resources: serde_json::from_str(&r.served_resources)?,
            lifetimes: Lifetimes {
                access_token: lifetime(stored.access_token),
                id_token: lifetime(stored.id_token),
                refresh_token: lifetime(stored.refresh_token),
                refresh_token_absolute: lifetime(stored.refresh_token_absolute),
                authorization_code: lifetime(stored.authorization_code),
            },
            access_token_alg: Algorithm::parse(&r.access_token_alg)
                .ok_or_else(|| anyhow::anyhow!("unknown access_token_signed_response_alg"))?,
            dpop_bound_access_tokens: r.dpop_bound_access_tokens,
            require_pushed_authorization_requests: r.require_pushed_authorization_requests,
            require_mfa: r.require_mfa,
            backchannel_logout_uri: r.backchannel_logout_uri,
            backchannel_logout_session_required: r.backchannel_logout_session_required,
            id_token_alg: Algorithm::parse(&r.id_token_alg)
                .ok_or_else(|| anyhow::anyhow!("unknown id_token_signed_response_alg"))?,
            profile: match r.security_profile.as_deref() {
                None => None,
                Some(p) => Some(
                    Profile::parse(p).ok_or_else(|| anyhow::anyhow!("unknown security_profile"))?,
                ),
            },
            refresh_token_rotation: r.refresh_token_rotation,
        },
        secrets: r
            .secrets
            .into_iter()
            .map(|s| SecretHash { hash: s.hash, expires_at: s.expires_at })
            .collect(),
        registration: Registration::parse(&r.registration)
            .ok_or_else(|| anyhow::anyhow!("unknown registration"))?,
        registration_token_hash: r.registration_token_hash,
        client_id: r.client_id,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}
