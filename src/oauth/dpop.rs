//! DPoP proofs (RFC 9449): checked at the token endpoint, which binds what it issues to the
//! proof's key (`cnf.jkt`), and at every bearer-protected route, where a bound token only
//! passes with a proof by that key. Server nonces (§8) are stateless MACs of a time slot, so
//! every replica that shares the master key accepts the others'.

use std::collections::HashSet;
use std::sync::Arc;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::jwk::PublicJwk;
use crate::store::{self, Db, StoreError};

/// The `typ` of a proof (RFC 9449 §4.2).
pub const TYP: &str = "dpop+jwt";
/// The algorithms a proof may be signed with, as discovery lists them: asymmetric only
/// (RFC 9449 §4.3 item 5). `Ed25519` is the fully specified name of `EdDSA` with Ed25519.
pub const SIGNING_ALGS: [&str; 5] = ["ES256", "EdDSA", "Ed25519", "PS256", "RS256"];
/// A proof is accepted this long after its `iat`...
pub const MAX_AGE_SECS: i64 = 60;
/// ...and this far ahead of the server's clock (FAPI 2.0 §5.3.2.1: at most 10 s ahead).
pub const MAX_FUTURE_SECS: i64 = 10;
/// A proof larger than this is refused unread: an RSA key of 8192 bits still fits.
const MAX_PROOF_LEN: usize = 8 * 1024;
/// A server nonce names a slot of this many seconds; the current and the previous slot's
/// nonces are accepted, so each lives 30 to 60 s.
const NONCE_SLOT_SECS: i64 = 30;

/// Why a proof is refused. The descriptions are fixed strings, safe to send.
#[derive(Debug)]
pub enum ProofError {
    /// `invalid_dpop_proof` (RFC 9449 §5, §7.1).
    Invalid(&'static str),
    /// `use_dpop_nonce` (§8, §9): retry with this nonce.
    UseNonce(String),
    /// The replay record could not be written: never a pass.
    Store(StoreError),
}

impl From<StoreError> for ProofError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What the request a proof arrived with looked like.
pub struct Expected<'a> {
    /// `htm`: the request's method.
    pub method: &'a str,
    /// `htu`: the URL the request was sent to, without query and fragment.
    pub url: &'a str,
    /// At a resource, the access token presented with the proof (`ath`, §4.3 item 11).
    pub access_token: Option<&'a str>,
}

/// A proof that passed every check: the thumbprint of its key (RFC 7638) is what tokens are
/// bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub jkt: String,
    /// RSASSA-PKCS1-v1_5 (RS256), which FAPI 2.0 clients may not use (§5.4.1).
    pub pkcs1: bool,
}

/// Checks proofs and makes nonces; one per server, built from the master key.
pub struct Proofs {
    nonce_key: hmac::Key,
    require_nonce: bool,
}

impl Proofs {
    pub fn new(nonce_key: hmac::Key, require_nonce: bool) -> Self {
        Self { nonce_key, require_nonce }
    }

    /// Whether every proof must carry a nonce of ours.
    pub fn requires_nonce(&self) -> bool {
        self.require_nonce
    }

    /// Checks `proof` against the request (RFC 9449 §4.3) and records its `jti`, so that it
    /// is accepted once across every replica while its `iat` is in the window.
    pub async fn accept(
        &self,
        replays: &Replays,
        proof: &str,
        expected: &Expected<'_>,
    ) -> Result<Proof, ProofError> {
        let now = Utc::now();
        let checked = self.check(proof, expected, now)?;
        // §11.1: a proof is single use; its jti is kept as long as its iat is accepted.
        let forget_at = DateTime::from_timestamp(checked.iat + MAX_AGE_SECS + 1, 0)
            .ok_or(ProofError::Invalid("iat is out of range"))?;
        if !replays.record(checked.proof.jkt.clone(), checked.jti, forget_at).await? {
            return Err(ProofError::Invalid("the proof was already used"));
        }
        Ok(checked.proof)
    }

    /// Every check of §4.3 that needs no storage (`accept` adds the replay guard); public for
    /// the benchmark, which measures it alone.
    pub fn check(
        &self,
        proof: &str,
        expected: &Expected<'_>,
        now: DateTime<Utc>,
    ) -> Result<Checked, ProofError> {
        let invalid = ProofError::Invalid;
        if proof.len() > MAX_PROOF_LEN {
            return Err(invalid("the proof is too large"));
        }
        // §4.3 items 2–3: a well-formed JWS with these members.
        let mut parts = proof.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("the proof is not a compact JWS"));
        };
        let header: ProofHeader =
            decode_json(header_b64).ok_or(invalid("the proof header is malformed"))?;
        // §4.3 item 4.
        if header.typ != TYP {
            return Err(invalid("the proof typ must be dpop+jwt"));
        }
        // RFC 7515 §4.1.11: no extension this server would have to understand.
        if header.crit.is_some() {
            return Err(invalid("the proof header has crit"));
        }
        let key = ProofKey::from_jwk(&header.alg, &header.jwk)?;
        let signature =
            URL_SAFE_NO_PAD.decode(signature_b64).map_err(|_| invalid("the proof is malformed"))?;
        let signing_input = &proof[..header_b64.len() + 1 + claims_b64.len()];
        // §4.3 item 7: the signature verifies with the key in the header.
        if !key.verifies(signing_input.as_bytes(), &signature) {
            return Err(invalid("the proof signature is invalid"));
        }
        let claims: ProofClaims =
            decode_json(claims_b64).ok_or(invalid("the proof claims are malformed"))?;
        if claims.jti.is_empty()
            || claims.jti.len() > 256
            || !claims.jti.bytes().all(|b| (0x21..=0x7E).contains(&b))
        {
            return Err(invalid("the proof jti is malformed"));
        }
        // §4.3 items 8–9.
        if claims.htm != expected.method {
            return Err(invalid("the proof htm does not match the request method"));
        }
        if !same_target(&claims.htu, expected.url) {
            return Err(invalid("the proof htu does not match the request URL"));
        }
        // §4.3 item 10: a nonce when one is required, and only ours.
        let nonce_ok = match &claims.nonce {
            Some(nonce) => self.is_current(nonce, now),
            None => !self.require_nonce,
        };
        if !nonce_ok {
            return Err(ProofError::UseNonce(self.nonce(now)));
        }
        // §4.3 item 11: made just now.
        let age = now.timestamp() - claims.iat;
        if !(-MAX_FUTURE_SECS..=MAX_AGE_SECS).contains(&age) {
            return Err(invalid("the proof iat is outside the accepted window"));
        }
        // §4.3 item 12, §7: at a resource, the hash of the token it came with.
        if let Some(token) = expected.access_token {
            let hash = URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes()));
            if claims.ath.as_deref() != Some(hash.as_str()) {
                return Err(invalid("the proof ath does not match the access token"));
            }
        }
        let proof = Proof { jkt: key.thumbprint(), pkcs1: header.alg == "RS256" };
        Ok(Checked { proof, jti: claims.jti, iat: claims.iat })
    }

    /// A nonce for the current time slot (§8.1): the slot and a MAC of it.
    pub fn nonce(&self, now: DateTime<Utc>) -> String {
        let slot = now.timestamp().div_euclid(NONCE_SLOT_SECS);
        let mut bytes = slot.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.tag(slot));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Whether `nonce` was made by a server sharing this master key in this slot or the last.
    fn is_current(&self, nonce: &str, now: DateTime<Utc>) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(nonce) else { return false };
        let Some((slot, tag)) = bytes.split_first_chunk::<8>() else { return false };
        let slot = i64::from_be_bytes(*slot);
        let current = now.timestamp().div_euclid(NONCE_SLOT_SECS);
        (slot == current || slot == current - 1)
            && verify_slices_are_equal(tag, &self.tag(slot)).is_ok()
    }

    fn tag(&self, slot: i64) -> [u8; 16] {
        let mac = hmac::sign(&self.nonce_key, &slot.to_be_bytes());
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&mac.as_ref()[..16]);
        tag
    }
}

/// The replay guard: records proof ids in the shared database. Concurrent requests' ids go
/// in together, one multi-row statement per batch (a batch is whatever queued while the
/// previous one was written, so an idle server writes each at once), and each request waits
/// for its own row's verdict: exactly-once across replicas at a fraction of a statement each.
pub struct Replays {
    queue: mpsc::Sender<Pending>,
}

struct Pending {
    jkt: String,
    jti: String,
    forget_at: DateTime<Utc>,
    verdict: oneshot::Sender<Result<bool, StoreError>>,
}

/// What the writers' statements are counted as (`castellan_db_statements_total{route}`).
pub const STATEMENTS_LABEL: &str = "dpop_proofs";
/// Ids written by one statement at most.
const BATCH: usize = 256;
/// Batches being written at once: while one waits on the database the next fills.
const WRITERS: usize = 2;

impl Replays {
    /// The guard, and the writers that serve it (the caller spawns them).
    pub fn new(db: &Db) -> (Self, Vec<impl Future<Output = ()> + Send + 'static>) {
        let (queue, pending) = mpsc::channel(BATCH * WRITERS * 4);
        let pending = Arc::new(tokio::sync::Mutex::new(pending));
        let writers = (0..WRITERS).map(|_| write_batches(db.clone(), pending.clone())).collect();
        (Self { queue }, writers)
    }

    /// Records a proof id; `false` if it was recorded before (a replay).
    async fn record(
        &self,
        jkt: String,
        jti: String,
        forget_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (verdict, answer) = oneshot::channel();
        let gone = || StoreError::stale("the DPoP replay guard");
        self.queue.send(Pending { jkt, jti, forget_at, verdict }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

async fn write_batches(db: Db, pending: Arc<tokio::sync::Mutex<mpsc::Receiver<Pending>>>) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if pending.lock().await.recv_many(&mut batch, BATCH).await == 0 {
            return;
        }
        // An id twice in one batch: the first is the one that counts, the others are replays.
        let mut seen = HashSet::new();
        let (first, again): (Vec<Pending>, Vec<Pending>) =
            batch.drain(..).partition(|p| seen.insert((p.jkt.clone(), p.jti.clone())));
        for replay in again {
            let _ = replay.verdict.send(Ok(false));
        }
        let rows: Vec<(&str, &str, DateTime<Utc>)> =
            first.iter().map(|p| (p.jkt.as_str(), p.jti.as_str(), p.forget_at)).collect();
        match store::proofs::record(&db, &rows).await {
            Ok(inserted) => {
                for p in first {
                    let new = inserted.contains(&(p.jkt.clone(), p.jti.clone()));
                    let _ = p.verdict.send(Ok(new));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot record DPoP proof ids");
                for p in first {
                    let _ = p.verdict.send(Err(shared(&e)));
                }
            }
        }
    }
}

/// The same failure for every waiter of a batch.
fn shared(e: &StoreError) -> StoreError {
    match e {
        StoreError::Unavailable(_) => StoreError::stale("the DPoP replay guard"),
        other => StoreError::Other(anyhow::anyhow!("recording DPoP proof ids: {other}")),
    }
}

/// A proof that passed `check`, with what the replay guard records.
pub struct Checked {
    pub proof: Proof,
    jti: String,
    iat: i64,
}

#[derive(Deserialize)]
struct ProofHeader {
    typ: String,
    alg: String,
    jwk: Map<String, Value>,
    crit: Option<Value>,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: i64,
    ath: Option<String>,
    nonce: Option<String>,
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// Whether `htu` names `expected`, ignoring query and fragment (§4.3 item 9) and comparing
/// the URL as normalised (RFC 3986 §6.2.2–6.2.3: case of scheme and host, default port).
fn same_target(htu: &str, expected: &str) -> bool {
    use url::Position;
    match (url::Url::parse(htu), url::Url::parse(expected)) {
        (Ok(htu), Ok(expected)) => {
            htu[..Position::AfterPath] == expected[..Position::AfterPath]
                && htu.username().is_empty()
                && htu.password().is_none()
        }
        _ => false,
    }
}

/// The public key of a proof, checked against its `alg` (§4.3 items 5–6).
enum ProofKey {
    Ec { jwk: PublicJwk, point: Vec<u8> },
    Rsa { jwk: PublicJwk, n: Vec<u8>, e: Vec<u8>, pss: bool },
    Ed25519 { jwk: PublicJwk, x: Vec<u8> },
}

/// Members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl ProofKey {
    fn from_jwk(alg: &str, jwk: &Map<String, Value>) -> Result<Self, ProofError> {
        let invalid = ProofError::Invalid;
        // §4.3 item 6: the header carries a public key, never a private one.
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(invalid("the proof jwk must be a public key"));
        }
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let bytes = |name: &str| text(name).and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
        let owned = |name: &str| text(name).unwrap_or_default().to_owned();
        let kty = text("kty").ok_or(invalid("the proof jwk has no kty"))?;
        let wrong_key = invalid("the proof jwk does not fit its alg");
        // §4.3 item 5: asymmetric algorithms only; `none` and the MACs never pass.
        match alg {
            "ES256" => {
                let (Some(x), Some(y)) = (bytes("x"), bytes("y")) else { return Err(wrong_key) };
                if kty != "EC" || text("crv") != Some("P-256") || x.len() != 32 || y.len() != 32 {
                    return Err(wrong_key);
                }
                let mut point = vec![4u8];
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let jwk = PublicJwk::Ec { crv: "P-256".into(), x: owned("x"), y: owned("y") };
                Ok(Self::Ec { jwk, point })
            }
            "PS256" | "RS256" => {
                let (Some(n), Some(e)) = (bytes("n"), bytes("e")) else { return Err(wrong_key) };
                if kty != "RSA" {
                    return Err(wrong_key);
                }
                let jwk = PublicJwk::Rsa { n: owned("n"), e: owned("e") };
                Ok(Self::Rsa { jwk, n, e, pss: alg == "PS256" })
            }
            "EdDSA" | "Ed25519" => {
                let Some(x) = bytes("x") else { return Err(wrong_key) };
                if kty != "OKP" || text("crv") != Some("Ed25519") || x.len() != 32 {
                    return Err(wrong_key);
                }
                let jwk = PublicJwk::Okp { crv: "Ed25519".into(), x: owned("x") };
                Ok(Self::Ed25519 { jwk, x })
            }
            _ => Err(invalid("the proof alg is not supported")),
        }
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Self::Ec { point, .. } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            // RSA keys of 2048 to 8192 bits (RFC 7518 §3.3, §3.5: at least 2048).
            Self::Rsa { n, e, pss, .. } => {
                let params = if *pss {
                    &signature::RSA_PSS_2048_8192_SHA256
                } else {
                    &signature::RSA_PKCS1_2048_8192_SHA256
                };
                RsaPublicKeyComponents { n, e }.verify(params, message, signature).is_ok()
            }
            Self::Ed25519 { x, .. } => {
                UnparsedPublicKey::new(&signature::ED25519, x).verify(message, signature).is_ok()
            }
        }
    }

    fn thumbprint(&self) -> String {
        match self {
            Self::Ec { jwk, .. } | Self::Rsa { jwk, .. } | Self::Ed25519 { jwk, .. } => {
                jwk.thumbprint()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    const URL: &str = "https://as.example/token";

    fn proofs(require_nonce: bool) -> Proofs {
        Proofs::new(hmac::Key::new(hmac::HMAC_SHA256, b"test nonce key"), require_nonce)
    }

    struct Holder {
        pair: EcdsaKeyPair,
        jwk: Value,
    }

    impl Holder {
        fn new() -> Self {
            let rng = SystemRandom::new();
            let doc =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .expect("pair");
            let point = pair.public_key().as_ref().to_vec();
            let jwk = json!({"kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])});
            Self { pair, jwk }
        }

        fn sign(&self, header: Value, claims: Value) -> String {
            let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
            input.push('.');
            input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
            let sig = self.pair.sign(&SystemRandom::new(), input.as_bytes()).expect("sign");
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn proof(&self, claims: Value) -> String {
            self.sign(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": self.jwk}), claims)
        }
    }

    fn claims() -> Value {
        json!({"jti": "j1", "htm": "POST", "htu": URL, "iat": Utc::now().timestamp()})
    }

    fn expected() -> Expected<'static> {
        Expected { method: "POST", url: URL, access_token: None }
    }

    fn refused(proofs: &Proofs, proof: &str, expected: &Expected<'_>) -> &'static str {
        match proofs.check(proof, expected, Utc::now()) {
            Err(ProofError::Invalid(reason)) => reason,
            Err(ProofError::UseNonce(_)) => "use_dpop_nonce",
            Err(ProofError::Store(_)) => "store",
            Ok(_) => "accepted",
        }
    }

    #[test]
    fn a_good_proof_yields_the_thumbprint_of_its_key() {
        let holder = Holder::new();
        let checked = proofs(false).check(&holder.proof(claims()), &expected(), Utc::now());
        let jwk: PublicJwk = serde_json::from_value(json!({
            "crv": "P-256", "x": holder.jwk["x"], "y": holder.jwk["y"]}))
        .expect("jwk");
        assert_eq!(checked.expect("accepted").proof.jkt, jwk.thumbprint());
    }

    #[test]
    fn the_request_must_match_htm_and_htu_ignoring_query_and_case() {
        let holder = Holder::new();
        let p = proofs(false);
        let mut c = claims();
        c["htu"] = json!("HTTPS://AS.example:443/token?x=1#f");
        assert_eq!(refused(&p, &holder.proof(c), &expected()), "accepted");
        let mut c = claims();
        c["htm"] = json!("GET");
        assert!(refused(&p, &holder.proof(c), &expected()).contains("htm"));
        let mut c = claims();
        c["htu"] = json!("https://as.example/userinfo");
        assert!(refused(&p, &holder.proof(c), &expected()).contains("htu"));
    }

    #[test]
    fn stale_and_future_proofs_are_refused() {
        let holder = Holder::new();
        let p = proofs(false);
        let now = Utc::now().timestamp();
        for (iat, verdict) in
            [(now - 61, false), (now - 50, true), (now + 9, true), (now + 12, false)]
        {
            let mut c = claims();
            c["iat"] = json!(iat);
            let outcome = refused(&p, &holder.proof(c), &expected());
            assert_eq!(outcome == "accepted", verdict, "iat {}: {outcome}", iat - now);
        }
    }

    #[test]
    fn private_symmetric_and_mismatched_keys_are_refused() {
        let holder = Holder::new();
        let p = proofs(false);
        let mut private = holder.jwk.clone();
        private["d"] = json!("AAAA");
        let proof =
            holder.sign(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}), claims());
        assert!(refused(&p, &proof, &expected()).contains("public"));
        let proof =
            holder.sign(json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": holder.jwk}), claims());
        assert!(refused(&p, &proof, &expected()).contains("alg"));
        let proof =
            holder.sign(json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": holder.jwk}), claims());
        assert!(refused(&p, &proof, &expected()).contains("alg"));
        let proof = holder.sign(json!({"typ": "jwt", "alg": "ES256", "jwk": holder.jwk}), claims());
        assert!(refused(&p, &proof, &expected()).contains("typ"));
        // Signed by one key, naming another.
        let other = Holder::new();
        let proof =
            holder.sign(json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": other.jwk}), claims());
        assert!(refused(&p, &proof, &expected()).contains("signature"));
    }

    #[test]
    fn ath_must_be_the_hash_of_the_presented_token() {
        let holder = Holder::new();
        let p = proofs(false);
        let at = Expected { method: "GET", url: URL, access_token: Some("the-token") };
        let mut c = claims();
        c["htm"] = json!("GET");
        assert!(refused(&p, &holder.proof(c.clone()), &at).contains("ath"));
        c["ath"] = json!(URL_SAFE_NO_PAD.encode(digest(&SHA256, b"the-token")));
        assert_eq!(refused(&p, &holder.proof(c.clone()), &at), "accepted");
        c["ath"] = json!(URL_SAFE_NO_PAD.encode(digest(&SHA256, b"another-token")));
        assert!(refused(&p, &holder.proof(c), &at).contains("ath"));
    }

    #[test]
    fn nonces_are_demanded_and_only_ours_pass() {
        let holder = Holder::new();
        let p = proofs(true);
        assert_eq!(refused(&p, &holder.proof(claims()), &expected()), "use_dpop_nonce");
        let mut c = claims();
        c["nonce"] = json!(p.nonce(Utc::now()));
        assert_eq!(refused(&p, &holder.proof(c.clone()), &expected()), "accepted");
        c["nonce"] = json!(proofs(false).nonce(Utc::now() - chrono::Duration::seconds(90)));
        assert_eq!(refused(&p, &holder.proof(c.clone()), &expected()), "use_dpop_nonce");
        let foreign = Proofs::new(hmac::Key::new(hmac::HMAC_SHA256, b"another key"), true);
        c["nonce"] = json!(foreign.nonce(Utc::now()));
        assert_eq!(refused(&p, &holder.proof(c), &expected()), "use_dpop_nonce");
    }
}
