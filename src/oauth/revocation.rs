//! Revocation: the one hook every revoking path goes through, and the revoked state every
//! replica keeps in memory so that deciding whether a signed token is live reads nothing.
//!
//! Each revocation is written to the database (the change it belongs to and its log entry in
//! one transaction), then applied here at once: it holds at this replica the moment the
//! call returns. Other replicas follow the log by sequence number every sync interval. A
//! sequence number skipped by the log may belong to a transaction that commits later, so
//! skipped numbers are asked for again for a while (`GAP_PATIENCE`).
//!
//! Memory is bounded by time: an entry lives until nothing it revokes can still be alive (a
//! `jti` until its token expires; a family, grant, client or user cut-off for the longest
//! token lifetime), then it is dropped here and purged from the log.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::TransactionTrait;

use super::access_token::AccessClaims;
use super::audit::{self, Event};
use super::keyring::LEEWAY;
use crate::store::refresh_tokens::FamilyOwner;
use crate::store::revocations::{Entry, Kind};
use crate::store::{self, Db, StoreError};

/// How long a skipped sequence number is asked for again before it is taken as rolled back.
const GAP_PATIENCE: Duration = Duration::from_secs(60);
/// Log entries read per round trip while following.
const PAGE: u64 = 5_000;
/// At most this many numbers skipped by one jump are remembered, and this many in all.
const MAX_GAP_RUN: i64 = 1_000;
const MAX_GAPS: usize = 10_000;
/// On the first read, numbers skipped this close to the end may still be in flight.
const RECENT: i64 = 256;

/// What a revocation ends.
#[derive(Debug, Clone, Copy)]
pub enum Revocation<'a> {
    /// One access token (RFC 7009), until it expires.
    AccessToken { jti: &'a str, expires_at: DateTime<Utc> },
    /// A refresh-token family for good, and every access token issued from it.
    Family(&'a str),
}

/// The revoked ids this replica knows, each with the unix second it may be forgotten.
#[derive(Default)]
struct Revoked {
    jtis: HashMap<Box<str>, i64>,
    families: HashMap<Box<str>, i64>,
    grants: HashMap<Box<str>, i64>,
    clients: HashMap<Box<str>, i64>,
    /// A user's cut-off (unix second: tokens issued at or before it are dead) and expiry.
    users: HashMap<Box<str>, (i64, i64)>,
}

impl Revoked {
    fn apply(&mut self, entry: &Entry) {
        let until = entry.expires_at.timestamp();
        let value: Box<str> = entry.value.as_str().into();
        let set = match entry.kind {
            Kind::AccessToken => &mut self.jtis,
            Kind::Family => &mut self.families,
            Kind::Grant => &mut self.grants,
            Kind::Client => &mut self.clients,
            Kind::User => {
                let cut = entry.not_before.map_or(i64::MAX, |t| t.timestamp());
                let slot = self.users.entry(value).or_insert((cut, until));
                *slot = (slot.0.max(cut), slot.1.max(until));
                return;
            }
            Kind::ClientChanged => return,
        };
        let slot = set.entry(value).or_insert(until);
        *slot = (*slot).max(until);
    }

    fn is_live(&self, claims: &AccessClaims) -> bool {
        let revoked = |set: &HashMap<Box<str>, i64>, id: Option<&str>| {
            id.is_some_and(|id| set.contains_key(id))
        };
        if revoked(&self.jtis, Some(&claims.jti))
            || revoked(&self.families, claims.fid.as_deref())
            || revoked(&self.grants, claims.gid.as_deref())
            || revoked(&self.clients, Some(&claims.client_id))
        {
            return false;
        }
        // Only a user's token (it carries its grant) is subject to the user's cut-off.
        match (&claims.gid, self.users.get(claims.sub.as_str())) {
            (Some(_), Some((cut, _))) => claims.iat > *cut,
            _ => true,
        }
    }

    fn prune(&mut self, now: i64) {
        self.jtis.retain(|_, until| *until >= now);
        self.families.retain(|_, until| *until >= now);
        self.grants.retain(|_, until| *until >= now);
        self.clients.retain(|_, until| *until >= now);
        self.users.retain(|_, (_, until)| *until >= now);
    }

    fn len(&self) -> usize {
        self.jtis.len()
            + self.families.len()
            + self.grants.len()
            + self.clients.len()
            + self.users.len()
    }
}

/// Where this replica stands in the log.
#[derive(Default)]
struct Follow {
    /// The highest sequence number applied.
    high: i64,
    /// Numbers below `high` not seen yet, with when they were first missed.
    gaps: BTreeMap<i64, Instant>,
}

impl Follow {
    /// Notes the entries just read, in order, remembering any number they skipped at or
    /// above `track_from` (below it lies history: purged or expired entries, not
    /// transactions still in flight).
    fn advance(&mut self, seqs: impl Iterator<Item = i64>, track_from: i64) {
        let now = Instant::now();
        for seq in seqs {
            if seq > self.high {
                let from = (self.high + 1).max(track_from).max(seq - MAX_GAP_RUN);
                for missing in from..seq {
                    self.gaps.insert(missing, now);
                }
                self.high = seq;
            } else {
                self.gaps.remove(&seq);
            }
        }
        self.gaps.retain(|_, first| first.elapsed() < GAP_PATIENCE);
        while self.gaps.len() > MAX_GAPS {
            self.gaps.pop_first();
        }
    }
}

/// The revoked state of this replica and the operations that revoke.
pub struct Revocations {
    revoked: RwLock<Revoked>,
    follow: Mutex<Follow>,
    /// One reader of the log at a time (the sync tick and change notifications both read).
    following: tokio::sync::Mutex<()>,
    /// When the log was last read through, and how old that may get before this replica's
    /// view counts as stale (then the gate answers 503, never a verdict from old state).
    followed_at: Mutex<Instant>,
    stale_after: Duration,
    /// How long a family, grant, client or user revocation must be remembered: the longest
    /// an access token can live, plus the clock leeway.
    memory: chrono::Duration,
}

impl Revocations {
    /// Loads every unexpired revocation from the log. `stale_after` is the key ring's bound:
    /// one notion of a replica too long out of touch with the database.
    pub async fn load(
        db: &Db,
        max_token_lifetime: Duration,
        stale_after: Duration,
    ) -> Result<Self, StoreError> {
        let memory = chrono::Duration::from_std(max_token_lifetime + LEEWAY)
            .map_err(|e| StoreError::Other(e.into()))?;
        let revocations = Self {
            revoked: RwLock::new(Revoked::default()),
            follow: Mutex::new(Follow::default()),
            following: tokio::sync::Mutex::new(()),
            followed_at: Mutex::new(Instant::now()),
            stale_after,
            memory,
        };
        revocations.follow(db).await?;
        Ok(revocations)
    }

    /// Whether a verified access token is still live: neither it, its family, its grant nor
    /// its client revoked, and (for a user's token) issued after its user's cut-off.
    pub fn is_live(&self, claims: &AccessClaims) -> bool {
        self.revoked.read().is_ok_and(|revoked| revoked.is_live(claims))
    }

    /// Whether tokens of `user_id` issued at `iat` were cut off (within the memory window;
    /// older cut-offs are read from the user's row by whoever needs them).
    pub fn user_cut_off(&self, user_id: &str, iat: i64) -> bool {
        self.revoked.read().is_ok_and(|r| r.users.get(user_id).is_some_and(|(cut, _)| iat <= *cut))
    }

    /// Whether the log has not been read through for longer than the staleness bound.
    pub fn is_stale(&self) -> bool {
        self.followed_at.lock().map_or(true, |at| at.elapsed() > self.stale_after)
    }

    /// How many revoked ids this replica holds (`castellan_revocations_held` in the metrics).
    pub fn len(&self) -> usize {
        self.revoked.read().map_or(0, |r| r.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads what the log gained since the last call, and what it skipped then. Returns the
    /// clients changed or deleted meanwhile, whose cached copies must go.
    pub async fn follow(&self, db: &Db) -> Result<Vec<String>, StoreError> {
        let _turn = self.following.lock().await;
        let now = Utc::now();
        let (high, gaps): (i64, Vec<i64>) = {
            let follow = self.follow.lock().map_err(poisoned)?;
            (follow.high, follow.gaps.keys().copied().collect())
        };
        let mut entries = store::revocations::among(db, &gaps).await?;
        let mut after = high;
        loop {
            let page = store::revocations::after(db, after, now, PAGE).await?;
            let full = page.len() as u64 == PAGE;
            after = page.last().map_or(after, |e| e.seq);
            entries.extend(page);
            if !full {
                break;
            }
        }
        // An empty or purged log says nothing about where it stands: ask for the end.
        if entries.is_empty() && high == 0 {
            let last = store::revocations::last_seq(db).await?;
            self.follow.lock().map_err(poisoned)?.high = last;
            *self.followed_at.lock().map_err(poisoned)? = Instant::now();
            return Ok(Vec::new());
        }
        let clients = entries
            .iter()
            .filter(|e| matches!(e.kind, Kind::Client | Kind::ClientChanged))
            .map(|e| e.value.clone())
            .collect();
        {
            let mut revoked = self.revoked.write().map_err(poisoned)?;
            for entry in &entries {
                revoked.apply(entry);
            }
            revoked.prune(now.timestamp());
        }
        let mut seqs: Vec<i64> = entries.iter().map(|e| e.seq).collect();
        seqs.sort_unstable();
        let track_from = if high == 0 { seqs.last().map_or(0, |last| last - RECENT) } else { 0 };
        self.follow.lock().map_err(poisoned)?.advance(seqs.into_iter(), track_from);
        *self.followed_at.lock().map_err(poisoned)? = Instant::now();
        Ok(clients)
    }

    /// Records in `txn`, with the change itself, that a client's metadata or secrets changed:
    /// every replica drops its cached copy when it reads the entry.
    pub async fn client_changed(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        client_id: &str,
    ) -> Result<(), StoreError> {
        let until = Utc::now() + self.memory;
        self.append(txn, Kind::ClientChanged, client_id, None, until).await.map(|_| ())
    }

    /// Revokes an access token or a refresh family (the token endpoint's paths: `/revoke`,
    /// refresh-token reuse, code replay).
    /// `event`, when given, is recorded with the revocation (reuse, replay).
    pub async fn revoke(
        &self,
        db: &Db,
        what: Revocation<'_>,
        event: Option<&Event>,
    ) -> Result<(), StoreError> {
        let now = Utc::now();
        let entry = match what {
            Revocation::AccessToken { jti, expires_at } => {
                let until = expires_at + chrono::Duration::from_std(LEEWAY).unwrap_or_default();
                match event {
                    None => self.append(db, Kind::AccessToken, jti, None, until).await?,
                    Some(event) => {
                        let txn = db.begin().await?;
                        let entry = self.append(&txn, Kind::AccessToken, jti, None, until).await?;
                        audit::record(&txn, event).await?;
                        txn.commit().await?;
                        entry
                    }
                }
            }
            Revocation::Family(family_id) => {
                let txn = db.begin().await?;
                store::refresh_tokens::revoke_families_of(
                    &txn,
                    FamilyOwner::Family(family_id),
                    now,
                )
                .await?;
                let entry =
                    self.append(&txn, Kind::Family, family_id, None, now + self.memory).await?;
                if let Some(event) = event {
                    audit::record(&txn, event).await?;
                }
                txn.commit().await?;
                entry
            }
        };
        self.apply(&entry);
        if let Some(event) = event {
            event.log();
        }
        Ok(())
    }

    /// Deletes a grant (only `owner`'s, when given) and ends every token issued under it.
    /// `false` if there was no such grant.
    pub async fn revoke_grant(
        &self,
        db: &Db,
        grant_id: &str,
        owner: Option<&str>,
        event: &Event,
    ) -> Result<bool, StoreError> {
        // Read before the transaction (a grant's user and client never change): on SQLite a
        // transaction that reads first cannot take the write lock while another writer holds
        // it, and fails at once (busy) instead of waiting; the delete comes first inside.
        let found = store::grants::find(db, grant_id).await?;
        let txn = db.begin().await?;
        if !store::grants::delete(&txn, grant_id, owner).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        // Back-Channel Logout: the client of the grant is told its user's sessions ended.
        if let Some(grant) = found {
            store::backchannel::grant_ended(&txn, &grant.user_id, &grant.client_id, Utc::now())
                .await?;
        }
        store::refresh_tokens::revoke_families_of(&txn, FamilyOwner::Grant(grant_id), Utc::now())
            .await?;
        let entry =
            self.append(&txn, Kind::Grant, grant_id, None, Utc::now() + self.memory).await?;
        audit::record(&txn, event).await?;
        txn.commit().await?;
        self.apply(&entry);
        event.log();
        Ok(true)
    }

    /// Deletes a client and ends every token issued to it. `false` if there was none.
    pub async fn revoke_client(
        &self,
        db: &Db,
        client_id: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let txn = db.begin().await?;
        if !store::clients::delete(&txn, client_id).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        store::refresh_tokens::revoke_families_of(&txn, FamilyOwner::Client(client_id), Utc::now())
            .await?;
        let entry =
            self.append(&txn, Kind::Client, client_id, None, Utc::now() + self.memory).await?;
        audit::record(&txn, event).await?;
        txn.commit().await?;
        self.apply(&entry);
        event.log();
        Ok(true)
    }

    /// Cuts off a user: every token issued to them so far stays dead (refresh families too,
    /// whatever happens to the user later), and every session but `keep_session` (a hash)
    /// ends. Used when a user is disabled or deleted, changes password, or an admin ends
    /// their sessions. Returns how many sessions ended. `event`, when given, is recorded with
    /// it (a cut-off that follows a recorded user update carries none of its own).
    pub async fn cut_off_user(
        &self,
        db: &Db,
        user_id: &str,
        keep_session: Option<&[u8]>,
        event: Option<&Event>,
    ) -> Result<u64, StoreError> {
        let txn = db.begin().await?;
        let (ended, entry) = self.cut_off_in(&txn, user_id, keep_session).await?;
        if let Some(event) = event {
            audit::record(&txn, event).await?;
        }
        txn.commit().await?;
        self.apply(&entry);
        if let Some(event) = event {
            event.log();
        }
        Ok(ended)
    }

    /// A user's own password change (`/account`): the new hash is written and the user cut
    /// off as in [`Self::cut_off_user`], every session but `keep_session` (the browser that
    /// changed it) ending, with `event` in the same transaction. `None` if there was no such
    /// user; else how many sessions ended.
    pub async fn change_password(
        &self,
        db: &Db,
        user_id: &str,
        password_hash: &str,
        keep_session: &[u8],
        event: &Event,
    ) -> Result<Option<u64>, StoreError> {
        let txn = db.begin().await?;
        if !store::users::set_password_hash(&txn, user_id, password_hash, Utc::now()).await? {
            txn.rollback().await?;
            return Ok(None);
        }
        let (ended, entry) = self.cut_off_in(&txn, user_id, Some(keep_session)).await?;
        audit::record(&txn, event).await?;
        txn.commit().await?;
        self.apply(&entry);
        event.log();
        Ok(Some(ended))
    }

    /// The cut-off's writes, in the caller's transaction; the entry is applied once it commits.
    async fn cut_off_in(
        &self,
        txn: &impl sea_orm::ConnectionTrait,
        user_id: &str,
        keep_session: Option<&[u8]>,
    ) -> Result<(u64, Entry), StoreError> {
        let now = Utc::now();
        store::users::cut_off(txn, user_id, now).await?;
        store::refresh_tokens::revoke_families_of(txn, FamilyOwner::User(user_id), now).await?;
        let ended = store::sessions::delete_for_user(txn, user_id, keep_session).await?;
        let entry = self.append(txn, Kind::User, user_id, Some(now), now + self.memory).await?;
        Ok((ended, entry))
    }

    /// Deletes a user (their sessions and grants go with the row) and cuts off every token
    /// issued to them. `false` if there was no such user.
    pub async fn delete_user(
        &self,
        db: &Db,
        user_id: &str,
        event: &Event,
    ) -> Result<bool, StoreError> {
        let now = Utc::now();
        let txn = db.begin().await?;
        // Their sessions go with the row: their clients are told first.
        let ending = store::backchannel::Ending::AllOf { user_id, keep: None };
        store::backchannel::sessions_ending(&txn, ending, now).await?;
        if !store::users::delete(&txn, user_id).await? {
            txn.rollback().await?;
            return Ok(false);
        }
        store::refresh_tokens::revoke_families_of(&txn, FamilyOwner::User(user_id), now).await?;
        let entry = self.append(&txn, Kind::User, user_id, Some(now), now + self.memory).await?;
        audit::record(&txn, event).await?;
        txn.commit().await?;
        self.apply(&entry);
        event.log();
        Ok(true)
    }

    async fn append(
        &self,
        db: &impl sea_orm::ConnectionTrait,
        kind: Kind,
        value: &str,
        not_before: Option<DateTime<Utc>>,
        expires_at: DateTime<Utc>,
    ) -> Result<Entry, StoreError> {
        let seq = store::revocations::append(db, kind, value, not_before, expires_at).await?;
        Ok(Entry { seq, kind, value: value.to_owned(), not_before, expires_at })
    }

    /// Applies an entry this replica wrote (its log position is read again with the others).
    fn apply(&self, entry: &Entry) {
        if let Ok(mut revoked) = self.revoked.write() {
            revoked.apply(entry);
        }
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Other(anyhow::anyhow!("the revocation state lock is poisoned"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::access_token::Audience;

    fn claims(jti: &str, gid: Option<&str>, iat: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://issuer.test".into(),
            sub: "user-1".into(),
            aud: Audience::One("a".into()),
            exp: iat + 600,
            iat,
            jti: jti.into(),
            client_id: "client-1".into(),
            scope: String::new(),
            auth_time: None,
            acr: None,
            amr: None,
            gid: gid.map(str::to_owned),
            fid: Some("family-1".into()),
            cnf: None,
            act: None,
            may_act: None,
        }
    }

    fn entry(seq: i64, kind: Kind, value: &str, not_before: Option<i64>) -> Entry {
        Entry {
            seq,
            kind,
            value: value.into(),
            not_before: not_before.and_then(|t| DateTime::from_timestamp(t, 0)),
            expires_at: Utc::now() + chrono::Duration::hours(1),
        }
    }

    #[test]
    fn each_kind_of_revocation_ends_the_tokens_it_names() {
        let token = claims("jti-1", Some("grant-1"), 1_000);
        for (kind, value) in [
            (Kind::AccessToken, "jti-1"),
            (Kind::Family, "family-1"),
            (Kind::Grant, "grant-1"),
            (Kind::Client, "client-1"),
        ] {
            let mut revoked = Revoked::default();
            assert!(revoked.is_live(&token));
            revoked.apply(&entry(1, kind, value, None));
            assert!(!revoked.is_live(&token), "{kind:?}");
            revoked.apply(&entry(2, kind, "another", None));
        }
    }

    #[test]
    fn a_user_cut_off_ends_tokens_issued_up_to_it_and_never_moves_back() {
        let mut revoked = Revoked::default();
        revoked.apply(&entry(1, Kind::User, "user-1", Some(1_000)));
        revoked.apply(&entry(2, Kind::User, "user-1", Some(900)));
        assert!(!revoked.is_live(&claims("a", Some("g"), 1_000)));
        assert!(revoked.is_live(&claims("b", Some("g"), 1_001)));
        // A client's own token (no grant) is not a user's.
        assert!(revoked.is_live(&claims("c", None, 10)));
    }

    #[test]
    fn skipped_sequence_numbers_are_remembered_until_seen() {
        let mut follow = Follow::default();
        follow.advance([1, 2, 5].into_iter(), 0);
        assert_eq!(follow.gaps.keys().copied().collect::<Vec<_>>(), vec![3, 4]);
        follow.advance([4].into_iter(), 0);
        assert_eq!(follow.gaps.keys().copied().collect::<Vec<_>>(), vec![3]);
        assert_eq!(follow.high, 5);
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let mut revoked = Revoked::default();
        let mut old = entry(1, Kind::AccessToken, "jti-1", None);
        old.expires_at = Utc::now() - chrono::Duration::seconds(10);
        revoked.apply(&old);
        revoked.prune(Utc::now().timestamp());
        assert_eq!(revoked.len(), 0);
    }
}
