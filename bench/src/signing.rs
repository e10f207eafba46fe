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
pub const ALGORITHMS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

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
    let mut found = vec![on_one_thread(&name, "castellan", duration, clock_ticks, || {
        signer.sign("at+jwt", &claims).map(drop)
    })?];
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

/// Runs `sign` in a loop on a thread of its own for `duration` and reads that thread's CPU
/// time before and after.
fn on_one_thread(
    algorithm: &str,
    implementation: &'static str,
    duration: Duration,
    clock_ticks: f64,
    sign: impl Fn() -> anyhow::Result<()> + Sync,
) -> anyhow::Result<Ceiling> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
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
                    per_cpu_second: if cpu_seconds > 0.0 {
                        signatures as f64 / cpu_seconds
                    } else {
                        0.0
                    },
                })
            })
            .join()
            .map_err(|_| anyhow::anyhow!("the signing thread panicked"))?
    })
}
