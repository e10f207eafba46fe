//! The key ring (docs/REFERENCE.md §7): keys move next → active → retired; every replica reads the same
//! rows, signs with the one active key of each algorithm and publishes the same JWKS. Every
//! algorithm has its own active and next key, and they rotate together.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;
use serde::Serialize;

use super::audit::{self, Actor, Event, EventType};
use super::jwk::{self, Algorithm, PublicJwk};
use super::jws::Signer;
use super::master_key::MasterKey;
use crate::store::{self, Db, StoreError, keys::RotateError, keys::StoredKey};

/// Clock leeway any verifier may allow past `exp` (docs/REFERENCE.md §4: at most 5 s).
pub const LEEWAY: Duration = Duration::from_secs(5);

/// When keys rotate and how long they stay published.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// How long a key signs before the next one takes over.
    pub rotation_period: Duration,
    /// How long a retired key stays published: the longest token lifetime, plus the time
    /// other replicas may still sign with it before they see the rotation, plus leeway.
    pub retention: Duration,
    /// How long a next key must have been published before it may sign: every replica
    /// has loaded it and every JWKS cache has expired.
    pub publish_lead: Duration,
    /// A replica that could not re-read the ring for this long stops signing: it might
    /// sign with a key the others retired long ago (docs/REFERENCE.md §8).
    pub stale_after: Duration,
}

pub use crate::store::keys::KeyState;

/// What an admin sees of a key: never its private part.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub kid: String,
    pub alg: Algorithm,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
    /// When it leaves the JWKS (retired keys only).
    pub published_until: Option<DateTime<Utc>>,
    #[serde(skip)]
    #[schema(ignore)]
    public: PublicJwk,
}

/// Everything that can go wrong with the key ring.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the master key does not open signing key {kid}: CASTELLAN_MASTER_KEY or the master.key \
         file is not the one this database was created with"
    )]
    WrongMasterKey { kid: String },
    #[error("the key ring has no {0} key for {1}")]
    Missing(&'static str, &'static str),
    #[error(
        "the next key has been published for less than the JWKS cache lifetime; \
         rotate again in {0}s (or force it, breaking clients with a cached JWKS)"
    )]
    NextTooNew(u64),
    #[error("another rotation happened at the same time; the key ring is unchanged by this one")]
    Raced,
    #[error("the key ring has not been re-read from the database for too long")]
    Stale,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<RotateError> for KeyError {
    fn from(e: RotateError) -> Self {
        match e {
            RotateError::Raced => Self::Raced,
            RotateError::Db(e) => Self::Store(e),
        }
    }
}

/// One consistent view of the ring, swapped whole when the database changes.
struct Snapshot {
    keys: Vec<KeyInfo>,
    /// The signing key of each algorithm, in `Algorithm::ALL` order.
    active: [Arc<Signer>; 4],
    /// Parsed private keys of the active and next keys, by kid.
    signers: HashMap<String, Arc<Signer>>,
    /// Verification keys of every published key, by kid.
    verifiers: HashMap<String, Arc<Verifier>>,
    jwks: Arc<[u8]>,
    loaded_at: std::time::Instant,
}

/// A published key as a verifier: the algorithm is the key's own, never a token header's.
pub struct Verifier {
    pub alg: jsonwebtoken::Algorithm,
    pub key: jsonwebtoken::DecodingKey,
}

/// The key ring of this replica.
pub struct Keys {
    snapshot: ArcSwap<Snapshot>,
    master: MasterKey,
    policy: KeyPolicy,
}

impl Keys {
    /// The master key the ring's private keys are sealed under; also seals other secrets at
    /// rest (TOTP secrets, `oauth::totp`), each bound to its own context.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// Makes sure an active and a next key exist (creating them on an empty database,
    /// whichever replica wins), then loads the ring. Fails if the master key is wrong.
    pub async fn bootstrap(
        db: &Db,
        master: MasterKey,
        policy: KeyPolicy,
    ) -> Result<Self, KeyError> {
        let existing = store::keys::list(db).await?;
        let has = |alg: Algorithm, state: KeyState| {
            existing.iter().any(|k| k.alg == alg.as_str() && k.state == state)
        };
        // Check the master key before adding keys sealed under it.
        if let Some(key) = existing.iter().find(|k| k.state != KeyState::Retired) {
            master
                .open(key.kid.as_bytes(), &key.sealed_private_key)
                .map_err(|_| KeyError::WrongMasterKey { kid: key.kid.clone() })?;
        }
        let now = Utc::now();
        for alg in Algorithm::ALL {
            // A replica that loses the race to another's insert finds the key on loading.
            if !has(alg, KeyState::Active) {
                let key = generate_sealed(&master, alg, KeyState::Active, now).await?;
                store::keys::insert(db, key).await?;
            }
            if !has(alg, KeyState::Next) {
                let key = generate_sealed(&master, alg, KeyState::Next, now).await?;
                store::keys::insert(db, key).await?;
            }
        }
        let snapshot = load(db, &master, &policy, None).await?;
        Ok(Self { snapshot: ArcSwap::from_pointee(snapshot), master, policy })
    }

    /// Re-reads the ring from the database; only keys new to this replica are decrypted.
    pub async fn refresh(&self, db: &Db) -> Result<(), KeyError> {
        let current = self.snapshot.load_full();
        let snapshot = load(db, &self.master, &self.policy, Some(&current)).await?;
        self.snapshot.store(Arc::new(snapshot));
        Ok(())
    }

    /// For every algorithm at once: activates the published next key, retires the active one
    /// and creates a new next key. Unless forced, refuses while a next key may still be
    /// missing from JWKS caches.
    /// Records `key.rotated` by `actor` per algorithm (subject the newly active key) in the
    /// rotation's transaction.
    pub async fn rotate(&self, db: &Db, force: bool, actor: Actor) -> Result<(), KeyError> {
        self.refresh(db).await?;
        let live = self.live_keys()?;
        let now = Utc::now();
        let remaining = live
            .iter()
            .map(|(_, next)| {
                let published_for = (now - next.created_at).to_std().unwrap_or_default();
                self.policy.publish_lead.saturating_sub(published_for)
            })
            .max()
            .unwrap_or_default();
        if !force && !remaining.is_zero() {
            return Err(KeyError::NextTooNew(remaining.as_secs() + 1));
        }
        let mut rotations = Vec::with_capacity(live.len());
        for (active, next) in live {
            let new_next = generate_sealed(&self.master, active.alg, KeyState::Next, now).await?;
            rotations.push(store::keys::Rotation { active: active.kid, next: next.kid, new_next });
        }
        // Timestamped after the slow key generation, right before the switch.
        let now = Utc::now();
        for rotation in &mut rotations {
            rotation.new_next.created_at = now;
        }
        let events: Vec<Event> = rotations
            .iter()
            .map(|r| {
                Event::new(EventType::KeyRotated, actor.clone(), format!("key:{}", r.next))
                    .with("retired", r.active.as_str())
                    .with("next", r.new_next.kid.as_str())
                    .with("forced", force)
            })
            .collect();
        // Dropped on any error: the transaction rolls back, events and all.
        let txn = db.begin().await.map_err(StoreError::from)?;
        store::keys::rotate(&txn, &rotations, now).await?;
        for event in &events {
            audit::record(&txn, event).await?;
        }
        txn.commit().await.map_err(StoreError::from)?;
        for (r, event) in rotations.iter().zip(&events) {
            tracing::info!(retired = %r.active, activated = %r.next, "rotated a signing key");
            event.log();
        }
        self.refresh(db).await
    }

    /// Rotates when the active key has signed for a whole rotation period. A rotation
    /// another replica made first counts as done.
    pub async fn rotate_if_due(&self, db: &Db) -> Result<(), KeyError> {
        let live = self.live_keys()?;
        let now = Utc::now();
        let age = |t: DateTime<Utc>| (now - t).to_std().unwrap_or_default();
        let due = live.iter().any(|(active, _)| {
            age(active.activated_at.unwrap_or(active.created_at)) >= self.policy.rotation_period
        });
        let ready = live.iter().all(|(_, next)| age(next.created_at) >= self.policy.publish_lead);
        if !(due && ready) {
            return Ok(());
        }
        match self.rotate(db, false, Actor::system("scheduler")).await {
            Err(KeyError::Raced) => self.refresh(db).await,
            other => other,
        }
    }

    /// Signs `claims` with the active key of `alg`, unless this replica's view of the ring
    /// is stale.
    pub fn sign<C: Serialize>(
        &self,
        alg: Algorithm,
        typ: &str,
        claims: &C,
    ) -> Result<String, KeyError> {
        let snapshot = self.snapshot.load();
        if snapshot.loaded_at.elapsed() > self.policy.stale_after {
            return Err(KeyError::Stale);
        }
        Ok(snapshot.active[position(alg)].sign(typ, claims)?)
    }

    /// Whether the ring has not been re-read for too long (readiness reports it).
    pub fn is_stale(&self) -> bool {
        self.snapshot.load().loaded_at.elapsed() > self.policy.stale_after
    }

    /// The verification key of a published `kid`, if any.
    pub fn verifier(&self, kid: &str) -> Option<Arc<Verifier>> {
        self.snapshot.load().verifiers.get(kid).cloned()
    }

    /// The kid of the key that signs `alg` tokens now.
    pub fn active_kid(&self, alg: Algorithm) -> String {
        self.snapshot.load().active[position(alg)].kid().to_owned()
    }

    /// The JWK Set as JSON: the published keys' public members only.
    pub fn jwks(&self) -> Arc<[u8]> {
        self.snapshot.load().jwks.clone()
    }

    /// Every key this replica knows of, published or not.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.snapshot.load().keys.clone()
    }

    /// The (active, next) pair of every algorithm.
    fn live_keys(&self) -> Result<Vec<(KeyInfo, KeyInfo)>, KeyError> {
        let snapshot = self.snapshot.load();
        Algorithm::ALL
            .into_iter()
            .map(|alg| {
                let find = |state| {
                    snapshot.keys.iter().find(|k| k.alg == alg && k.state == state).cloned()
                };
                let active = find(KeyState::Active)
                    .ok_or(KeyError::Missing(KeyState::Active.as_str(), alg.as_str()))?;
                let next = find(KeyState::Next)
                    .ok_or(KeyError::Missing(KeyState::Next.as_str(), alg.as_str()))?;
                Ok((active, next))
            })
            .collect()
    }
}

/// Where `alg` sits in `Algorithm::ALL` (and in a snapshot's active keys).
fn position(alg: Algorithm) -> usize {
    match alg {
        Algorithm::RS256 => 0,
        Algorithm::ES256 => 1,
        Algorithm::EdDSA => 2,
        Algorithm::PS256 => 3,
    }
}

/// Key metadata as listed from storage, for `castellan keys list` (no master key needed).
pub async fn list_stored(db: &Db, policy: &KeyPolicy) -> Result<Vec<KeyInfo>, KeyError> {
    let rows = store::keys::list(db).await?;
    rows.iter()
        .filter(|row| Algorithm::parse(&row.alg).is_some())
        .map(|row| key_info(row, policy))
        .collect()
}

/// When the keys in `keys` are next due to rotate on schedule: the earliest active key's
/// activation plus the rotation period (the rule `rotate_if_due` follows). `None` without an
/// active key.
pub fn next_rotation(keys: &[KeyInfo], policy: &KeyPolicy) -> Option<DateTime<Utc>> {
    let period = chrono::Duration::from_std(policy.rotation_period).ok()?;
    keys.iter()
        .filter(|k| k.state == KeyState::Active)
        .map(|k| k.activated_at.unwrap_or(k.created_at))
        .min()
        .map(|at| at + period)
}

async fn generate_sealed(
    master: &MasterKey,
    alg: Algorithm,
    state: KeyState,
    now: DateTime<Utc>,
) -> Result<StoredKey, KeyError> {
    let key = tokio::task::spawn_blocking(move || jwk::generate(alg))
        .await
        .map_err(anyhow::Error::from)??;
    let sealed = master.seal(key.kid.as_bytes(), &key.pkcs8)?;
    Ok(StoredKey {
        kid: key.kid,
        alg: key.alg.as_str().to_owned(),
        state,
        public_jwk: serde_json::to_string(&key.public).map_err(anyhow::Error::from)?,
        sealed_private_key: sealed,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        retired_at: None,
    })
}

fn key_info(row: &StoredKey, policy: &KeyPolicy) -> Result<KeyInfo, KeyError> {
    let corrupt = |what| anyhow::anyhow!("signing key {} has an invalid {what}", row.kid);
    let retention = chrono::Duration::from_std(policy.retention).map_err(anyhow::Error::from)?;
    Ok(KeyInfo {
        kid: row.kid.clone(),
        alg: Algorithm::parse(&row.alg).ok_or_else(|| corrupt("alg"))?,
        state: row.state,
        created_at: row.created_at,
        activated_at: row.activated_at,
        retired_at: row.retired_at,
        published_until: row.retired_at.map(|t| t + retention),
        public: serde_json::from_str(&row.public_jwk).map_err(|_| corrupt("public key"))?,
    })
}

async fn load(
    db: &Db,
    master: &MasterKey,
    policy: &KeyPolicy,
    previous: Option<&Snapshot>,
) -> Result<Snapshot, KeyError> {
    let rows = store::keys::list(db).await?;
    let now = Utc::now();
    let mut keys = Vec::with_capacity(rows.len());
    let mut signers = HashMap::new();
    let mut verifiers = HashMap::new();
    for row in &rows {
        // A key of an algorithm a newer version added: not ours to sign or verify with, and
        // no reason to stop (a rolling upgrade runs both versions on one ring).
        if Algorithm::parse(&row.alg).is_none() {
            tracing::warn!(kid = %row.kid, alg = %row.alg, "skipping a key of an unknown algorithm");
            continue;
        }
        let info = key_info(row, policy)?;
        if info.published_until.is_some_and(|until| until <= now) {
            continue;
        }
        if info.state != KeyState::Retired {
            let cached = previous.and_then(|p| p.signers.get(&row.kid).cloned());
            let signer = match cached {
                Some(signer) => signer,
                None => Arc::new(open_signer(master, row, info.alg)?),
            };
            signers.insert(row.kid.clone(), signer);
        }
        let verifier = match previous.and_then(|p| p.verifiers.get(&row.kid)) {
            Some(cached) => cached.clone(),
            None => Arc::new(verifier(&info)?),
        };
        verifiers.insert(row.kid.clone(), verifier);
        keys.push(info);
    }
    // Newest first within each state: active, then next, then retired.
    keys.sort_by_key(|k| {
        let rank = match k.state {
            KeyState::Active => 0,
            KeyState::Next => 1,
            KeyState::Retired => 2,
        };
        (rank, std::cmp::Reverse(k.created_at))
    });
    let active = Algorithm::ALL.map(|alg| {
        keys.iter()
            .find(|k| k.alg == alg && k.state == KeyState::Active)
            .and_then(|k| signers.get(&k.kid).cloned())
            .ok_or(KeyError::Missing(KeyState::Active.as_str(), alg.as_str()))
    });
    let [rs256, es256, eddsa, ps256] = active;
    let active = [rs256?, es256?, eddsa?, ps256?];
    let jwks = jwks_json(&keys)?;
    Ok(Snapshot { keys, active, signers, verifiers, jwks, loaded_at: std::time::Instant::now() })
}

fn verifier(info: &KeyInfo) -> Result<Verifier, KeyError> {
    let key = info
        .public
        .decoding_key()
        .map_err(|e| anyhow::anyhow!("the public key of {} does not parse: {e}", info.kid))?;
    Ok(Verifier { alg: info.alg.verification(), key })
}

fn open_signer(master: &MasterKey, row: &StoredKey, alg: Algorithm) -> Result<Signer, KeyError> {
    let pkcs8 = master
        .open(row.kid.as_bytes(), &row.sealed_private_key)
        .map_err(|_| KeyError::WrongMasterKey { kid: row.kid.clone() })?;
    Ok(Signer::from_pkcs8(row.kid.clone(), alg, &pkcs8)?)
}

fn jwks_json(keys: &[KeyInfo]) -> anyhow::Result<Arc<[u8]>> {
    // RFC 7517 §4: public members only.
    let published: Vec<_> = keys.iter().map(|k| k.public.published(&k.kid, k.alg)).collect();
    Ok(serde_json::to_vec(&serde_json::json!({ "keys": published }))?.into())
}
