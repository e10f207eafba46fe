//! The in-process signing ceiling: how many access tokens one thread signs per CPU-second
//! with the server's own key generation and signer, for each algorithm it has, and with
//! `jsonwebtoken::encode` on the same RSA key for comparison.

use std::time::{Duration, Instant};

use anyhow::Context;
use castellan::oauth::jwk::{self, Algorithm};
use castellan::oauth::jws::Signer;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use serde::Serialize;

use crate::procfs;

/// The algorithms to try, by JWS name; those `Algorithm::parse` does not know are skipped,
/// so new variants are measured as soon as the server has them.
pub const ALGORITHMS: [&str; 4] = ["RS256", "ES256", "EdDSA", "PS256"];

/// Signatures per thread CPU-second of one implementation of one algorithm.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub algorithm: String,
    /// `castellan` (its `Signer`) or `jsonwebtoken`.
    pub implementation: &'static str,
    pub signatures: u64,
    pub cpu_seconds: f64,
    pub wall_seconds: f64,
    pub per_cpu_second: f64,
}

/// An algorithm that could not be measured, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unmeasured {
    pub algorithm: String,
    pub reason: String,
}

/// A realistic RFC 9068 access token's claims (the shape the server signs).
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    client_id: &'a str,
    scope: &'a str,
}

/// Two measurements of the same ceilings as one: signatures and CPU time summed.
pub fn combine(first: Vec<Ceiling>, second: Vec<Ceiling>) -> Vec<Ceiling> {
    first
        .into_iter()
        .map(|mut c| {
            let same =
                |o: &&Ceiling| o.algorithm == c.algorithm && o.implementation == c.implementation;
            if let Some(o) = second.iter().find(same) {
                c.signatures += o.signatures;
                c.cpu_seconds += o.cpu_seconds;
                c.wall_seconds += o.wall_seconds;
                if c.cpu_seconds > 0.0 {
                    c.per_cpu_second = c.signatures as f64 / c.cpu_seconds;
                }
            }
            c
        })
        .collect()
}

/// Measures every algorithm for about `duration` each.
pub fn measure_all(duration: Duration, clock_ticks: f64) -> (Vec<Ceiling>, Vec<Unmeasured>) {
    let mut ceilings = Vec::new();
    let mut unmeasured = Vec::new();
    for name in ALGORITHMS {
        let Some(alg) = Algorithm::parse(name) else {
            unmeasured.push(Unmeasured {
                algorithm: name.to_owned(),
                reason: "castellan::oauth::jwk::Algorithm has no such variant yet".to_owned(),
            });
            continue;
        };
        match measure(alg, duration, clock_ticks) {
            Ok(found) => ceilings.extend(found),
            Err(e) => {
                unmeasured.push(Unmeasured { algorithm: name.to_owned(), reason: format!("{e:#}") })
            }
        }
    }
    (ceilings, unmeasured)
}

fn measure(alg: Algorithm, duration: Duration, clock_ticks: f64) -> anyhow::Result<Vec<Ceiling>> {
    let key = jwk::generate(alg)?;
    let signer = Signer::from_pkcs8(key.kid.clone(), key.alg, &key.pkcs8)?;
    let now = chrono::Utc::now().timestamp();
    let jti = uuid::Uuid::new_v4().to_string();
    let claims = AccessClaims {
        iss: "http://127.0.0.1:8080",
        sub: "bWVhc3VyZWQtY2xpZW50MQ",
        aud: "http://127.0.0.1:8080",
        exp: now + 600,
        iat: now,
        jti: &jti,
        client_id: "bWVhc3VyZWQtY2xpZW50MQ",
        scope: "bench",
    };
    let name = alg.as_str().to_owned();
    let sign = || signer.sign("at+jwt", &claims).map(drop);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut found = vec![
        on_one_thread(&name, "castellan", duration, clock_ticks, sign)?,
        // Every core signing at once, as a saturated server does: shared caches and
        // all-core clock speeds make each signature dearer than on one busy core alone.
        on_threads(cores, &name, ALL_CORES, duration, clock_ticks, sign)?,
    ];
    // The resource server's side: castellan-guard verifying the same token, alone and as
    // the extractor of an actix route (header parsing, verification, the claims).
    let token = signer.sign("at+jwt", &claims)?;
    let jwks = serde_json::json!({"keys": [key.public.published(&key.kid, key.alg)]});
    let check = guard_check(&jwks, claims.iss, claims.aud, token)?;
    // On this thread: the request (an actix HttpRequest) never leaves it.
    found.push(one_thread(&name, GUARD_VERIFY, duration, clock_ticks, &|| check.verify())?);
    found.push(one_thread(&name, GUARD_EXTRACT, duration, clock_ticks, &|| check.extract())?);
    if alg.as_str() == "ES256" {
        found.push(on_one_thread(&name, PROOF_CHECK, duration, clock_ticks, proof_check()?)?);
    }
    if alg.as_str() == "RS256" {
        // jsonwebtoken's RSA signing takes a PKCS#1 key and parses it again for each token.
        let pkcs1 = rsa::RsaPrivateKey::from_pkcs8_der(&key.pkcs8)?.to_pkcs1_der()?;
        let encoding = jsonwebtoken::EncodingKey::from_rsa_der(pkcs1.as_bytes());
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(key.kid.clone());
        found.push(on_one_thread(&name, "jsonwebtoken", duration, clock_ticks, || {
            jsonwebtoken::encode(&header, &claims, &encoding).map(drop).map_err(Into::into)
        })?);
    }
    Ok(found)
}

/// The label of castellan-guard's verification of one access token (in process, keys held).
pub const GUARD_VERIFY: &str = "castellan-guard verification";
/// The label of castellan-guard's extractor on an actix request carrying the token.
pub const GUARD_EXTRACT: &str = "castellan-guard extractor (request to claims)";

/// A guard holding `jwks`, the token it checks, and a request carrying it.
struct GuardCheck {
    runtime: tokio::runtime::Runtime,
    guard: castellan_guard::Guard,
    token: String,
    request: actix_web::HttpRequest,
}

impl GuardCheck {
    fn verify(&self) -> anyhow::Result<()> {
        self.runtime.block_on(self.guard.verify(&self.token)).map(drop).map_err(anyhow::Error::from)
    }

    fn extract(&self) -> anyhow::Result<()> {
        let outcome = self.runtime.block_on(self.guard.authenticate(&self.request, false));
        outcome.map(drop).map_err(anyhow::Error::from)
    }
}

fn guard_check(
    jwks: &serde_json::Value,
    issuer: &str,
    audience: &str,
    token: String,
) -> anyhow::Result<GuardCheck> {
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let guard = runtime
        .block_on(castellan_guard::Guard::builder(issuer, audience).jwks(jwks.clone()).build())?;
    let request = actix_web::test::TestRequest::get()
        .uri("/orders")
        .insert_header(("Authorization", format!("Bearer {token}")))
        .to_http_request();
    Ok(GuardCheck { runtime, guard, token, request })
}

/// The label of the in-process DPoP proof check (signature, claims, no storage).
pub const PROOF_CHECK: &str = "castellan DPoP proof check (verification, no storage)";

/// One ES256 proof checked over and over, as the token endpoint checks each new one.
fn proof_check() -> anyhow::Result<impl Fn() -> anyhow::Result<()> + Sync> {
    use castellan::oauth::dpop::{Expected, Proofs};
    let target = crate::http::Target::new("127.0.0.1:8080".parse()?);
    let key = crate::dpop::ProofKey::generate()?;
    let proof = key.proof(&target);
    let nonce_key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"bench");
    let proofs = Proofs::new(nonce_key, false);
    Ok(move || {
        let expected =
            Expected { method: "POST", url: "http://127.0.0.1:8080/token", access_token: None };
        match proofs.check(&proof, &expected, chrono::Utc::now()) {
            Ok(_) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("the proof was refused: {e:?}")),
        }
    })
}

/// The implementation label of the all-core measurement of the server's own signer; the
/// ratios of the report divide by it.
pub const ALL_CORES: &str = "castellan, all cores at once";

fn on_one_thread(
    algorithm: &str,
    implementation: &'static str,
    duration: Duration,
    clock_ticks: f64,
    sign: impl Fn() -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Ceiling> {
    on_threads(1, algorithm, implementation, duration, clock_ticks, sign)
}

/// Runs `sign` in a loop on `threads` threads at once for `duration`, reading each thread's
/// CPU time before and after; the figures are the sums over the threads.
fn on_threads(
    threads: usize,
    algorithm: &str,
    implementation: &'static str,
    duration: Duration,
    clock_ticks: f64,
    sign: impl Fn() -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Ceiling> {
    let sign = &sign;
    let runs: Vec<anyhow::Result<Ceiling>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(move || {
                    one_thread(algorithm, implementation, duration, clock_ticks, sign)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a signing thread panicked"))?)
            .collect()
    });
    let runs = runs.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(combine_all(runs))
}

/// The sum of several threads' runs of one ceiling.
fn combine_all(runs: Vec<Ceiling>) -> Ceiling {
    let mut runs = runs.into_iter();
    let mut total = runs.next().expect("at least one thread");
    for run in runs {
        total.signatures += run.signatures;
        total.cpu_seconds += run.cpu_seconds;
        total.wall_seconds = total.wall_seconds.max(run.wall_seconds);
    }
    if total.cpu_seconds > 0.0 {
        total.per_cpu_second = total.signatures as f64 / total.cpu_seconds;
    }
    total
}

/// Runs `sign` in a loop on the current thread for `duration` and reads that thread's CPU
/// time before and after.
fn one_thread(
    algorithm: &str,
    implementation: &'static str,
    duration: Duration,
    clock_ticks: f64,
    sign: &impl Fn() -> anyhow::Result<()>,
) -> anyhow::Result<Ceiling> {
    sign().context("a first signature")?;
    let cpu_before = procfs::thread_cpu_ticks()?;
    let started = Instant::now();
    let mut signatures = 0u64;
    while started.elapsed() < duration {
        sign()?;
        signatures += 1;
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    let cpu_ticks = procfs::thread_cpu_ticks()?.saturating_sub(cpu_before);
    let cpu_seconds = cpu_ticks as f64 / clock_ticks;
    Ok(Ceiling {
        algorithm: algorithm.to_owned(),
        implementation,
        signatures,
        cpu_seconds,
        wall_seconds,
        per_cpu_second: if cpu_seconds > 0.0 { signatures as f64 / cpu_seconds } else { 0.0 },
    })
}
