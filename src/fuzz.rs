//! Property-based fuzzing of every parser that takes attacker input: redirect URIs, the
//! `/authorize` parameters, `/token` forms, HTTP Basic credentials, JWTs and admin cursors.
//! (cargo-fuzz needs a nightly toolchain, which this project's machines do not have.)
//!
//! Each target first replays its committed corpus (`fuzz/corpus/<target>.txt`, one JSON
//! string per line), then generates inputs for `CASTELLAN_FUZZ_SECONDS` (default 1; CI runs
//! longer) and prints how many it executed. A failure is shrunk, written to
//! `fuzz/regressions/<target>.txt` and fails the test.

use std::future::Future;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::config::Settings;
use crate::oauth::client::is_client_id;
use crate::oauth::cursor::Cursors;
use crate::oauth::keyring::Keys;
use crate::oauth::registry::Registry;
use crate::oauth::{access_token, authorize, client_metadata, redirect_uri};
use crate::routes::client_auth::basic_credentials;
use crate::routes::form::OAuthForm;
use crate::store::{self, Db};

const REGISTERED: &str = "https://app.example/cb";

fn budget() -> Duration {
    let seconds = std::env::var("CASTELLAN_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok());
    Duration::from_secs_f64(seconds.unwrap_or(1.0))
}

fn corpus(target: &str) -> Vec<String> {
    let path = format!("{}/fuzz/corpus/{target}.txt", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {l}: {e}")))
        .collect()
}

/// Runs `check` on the corpus, then on generated inputs until the time budget is spent.
fn fuzz<S: Strategy>(
    target: &str,
    seeds: impl IntoIterator<Item = S::Value>,
    strategy: S,
    check: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let mut executions = 0u64;
    for seed in seeds {
        if let Err(e) = check(seed) {
            panic!("fuzz {target}: a corpus input fails: {e}");
        }
        executions += 1;
    }
    let started = Instant::now();
    let budget = budget();
    while started.elapsed() < budget {
        let config = Config { cases: 256, failure_persistence: None, ..Config::default() };
        let mut runner = TestRunner::new(config);
        match runner.run(&strategy, &check) {
            Ok(()) => executions += 256,
            Err(TestError::Fail(reason, value)) => {
                let path = format!("{}/fuzz/regressions/{target}.txt", env!("CARGO_MANIFEST_DIR"));
                if let Ok(mut file) =
                    std::fs::OpenOptions::new().create(true).append(true).open(&path)
                {
                    let _ = writeln!(file, "{value:?}");
                }
                panic!("fuzz {target}: {reason} for {value:?} (saved to {path})");
            }
            Err(TestError::Abort(reason)) => panic!("fuzz {target}: aborted: {reason}"),
        }
    }
    println!("fuzz {target}: {executions} executions in {:.1} s", started.elapsed().as_secs_f64());
}

/// Strings an attacker would send: anything, and near-misses of well-formed values.
fn hostile(near: &'static [&'static str]) -> impl Strategy<Value = String> {
    let near = proptest::sample::select(near);
    prop_oneof![
        any::<String>(),
        "[ -~]{0,80}",
        (near.clone(), "[ -~\\r\\n\\t%#?@:/\\\\.]{0,12}")
            .prop_map(|(s, tail)| format!("{s}{tail}")),
        (near, 0usize..40, any::<char>()).prop_map(|(s, at, c)| {
            let mut chars: Vec<char> = s.chars().collect();
            let at = at.min(chars.len());
            chars.insert(at, c);
            chars.into_iter().collect()
        }),
    ]
}

#[test]
fn fuzz_redirect_uri_validation_and_matching() {
    const NEAR: &[&str] = &[
        REGISTERED,
        "http://127.0.0.1:8080/cb",
        "http://[::1]/cb",
        "https://app.example@evil.example/cb",
        "https://app.example/cb/../cb",
        "javascript:alert(1)",
    ];
    fuzz("redirect_uri", corpus("redirect_uri"), hostile(NEAR), |uri| {
        if redirect_uri::validate(&uri).is_ok() {
            let parsed = url::Url::parse(&uri).map_err(|_| TestCaseError::fail("not a URL"))?;
            prop_assert!(!uri.contains('#'), "a fragment passed");
            prop_assert!(uri.len() <= 2000);
            let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "[::1]"));
            // A native app's private-use scheme is a reverse domain name (RFC 8252 §7.1):
            // never a scheme a browser runs or reads files with.
            let private_use = parsed.scheme().contains('.')
                && !["javascript", "data", "file", "vbscript", "blob"]
                    .iter()
                    .any(|s| parsed.scheme().eq_ignore_ascii_case(s));
            prop_assert!(
                parsed.scheme() == "https"
                    || (parsed.scheme() == "http" && loopback)
                    || private_use
            );
            prop_assert!(
                redirect_uri::kind(&uri).is_some(),
                "every accepted URI has a kind a policy can name"
            );
        }
        // Exact matching: nothing but the registered string matches a registered https URI.
        prop_assert_eq!(redirect_uri::matches(REGISTERED, &uri), uri == REGISTERED);
        Ok(())
    });
}

#[test]
fn fuzz_token_forms() {
    let pairs = proptest::collection::vec(
        (
            prop_oneof![Just("grant_type".to_owned()), Just("scope".to_owned()), any::<String>()],
            any::<String>(),
        ),
        0..6,
    );
    let bodies = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200).prop_map(|b| (b, None)),
        pairs.prop_map(|pairs| {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs.iter())
                .finish();
            (body.into_bytes(), Some(pairs))
        }),
    ];
    let seeds = corpus("token_form").into_iter().map(|s| (s.into_bytes(), None));
    fuzz("token_form", seeds, bodies, |(body, pairs)| {
        let req = TestRequest::post()
            .insert_header(("content-type", "application/x-www-form-urlencoded"))
            .to_http_request();
        // A body is refused only when it (or a name or value in it) is not UTF-8; a form
        // built from strings never is.
        let form = match OAuthForm::parse(&req, &body) {
            Ok(form) => form,
            Err(_) => {
                prop_assert!(pairs.is_none(), "a well-formed form was refused");
                let decoded = url::form_urlencoded::parse(&body).into_owned().collect::<Vec<_>>();
                let lossless = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(decoded.iter())
                    .finish();
                prop_assert!(
                    std::str::from_utf8(&body).is_err()
                        || decoded
                            .iter()
                            .any(|(k, v)| k.contains('\u{fffd}') || v.contains('\u{fffd}'))
                        || lossless.is_empty() && !body.is_empty(),
                    "refused although it decodes to UTF-8"
                );
                return Ok(());
            }
        };
        for name in ["grant_type", "scope", "code", "refresh_token", "client_id"] {
            let _ = form.get(name);
        }
        let _ = form.resources();
        if let Some(pairs) = pairs {
            // What was sent is what is read: single values come back, repeats are refused.
            for (name, _) in &pairs {
                let sent: Vec<&str> = pairs
                    .iter()
                    .filter(|(k, v)| k == name && !v.is_empty())
                    .map(|(_, v)| v.as_str())
                    .collect();
                match form.get(name) {
                    Ok(value) => prop_assert_eq!(value, sent.first().copied()),
                    Err(_) => prop_assert!(sent.len() > 1),
                }
            }
        }
        Ok(())
    });
}

#[test]
fn fuzz_basic_credentials() {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let headers = prop_oneof![
        "[ -~]{0,100}".prop_map(|h| (h, None)),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|raw| {
            (
                format!(
                    "Basic {}",
                    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)
                ),
                None,
            )
        }),
        (any::<String>(), any::<String>()).prop_map(move |(id, secret)| {
            let raw = format!("{}:{}", encode(&id), encode(&secret));
            let header = format!(
                "Basic {}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)
            );
            (header, Some((id, secret)))
        }),
    ];
    let seeds = corpus("basic_auth").into_iter().map(|h| (h, None));
    fuzz("basic_auth", seeds, headers, |(header, sent)| {
        let Ok(value) = actix_web::http::header::HeaderValue::from_str(&header) else {
            return Ok(());
        };
        let req = TestRequest::post().insert_header(("authorization", value)).to_http_request();
        let read = basic_credentials(&req);
        if let Some((id, secret)) = sent {
            match read {
                Ok(Some((read_id, read_secret))) => {
                    prop_assert_eq!(read_id, id);
                    prop_assert_eq!(
                        secrecy::ExposeSecret::expose_secret(&read_secret),
                        secret.as_str()
                    );
                }
                Ok(None) => prop_assert!(false, "Basic credentials were not read"),
                Err(_) => prop_assert!(id.is_empty(), "well-formed credentials were refused"),
            }
        }
        Ok(())
    });
}

/// A migrated SQLite database with its key ring and one registered web client.
struct World {
    runtime: tokio::runtime::Runtime,
    db: Db,
    keys: Keys,
    registry: Registry,
    client_keys: crate::oauth::client_keys::ClientKeys,
    client_documents: crate::oauth::client_documents::ClientDocuments,
    revocations: crate::oauth::revocation::Revocations,
    client_id: String,
    issuer: String,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = Settings {
            database_url: format!("sqlite://{}/fuzz.db?mode=rwc", dir.path().display()).into(),
            keys_dir: dir.path().join("keys"),
            ..Settings::default()
        };
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let (db, keys, registry, client_id, revocations) = runtime.block_on(async {
            store::migrate(&settings).await.expect("migrate");
            let db = store::connect(&settings).await.expect("connect");
            let master =
                crate::oauth::master_key::MasterKey::load_or_create(None, &settings.keys_dir)
                    .expect("master key");
            let keys = Keys::bootstrap(&db, master, crate::startup::key_policy(&settings))
                .await
                .expect("keys");
            let registry = Registry::new(Duration::from_secs(3600));
            let metadata = client_metadata::parse(
                &serde_json::json!({"redirect_uris": [REGISTERED], "scope": "openid profile"}),
                settings.max_token_lifetime,
            )
            .expect("metadata");
            let registered = registry
                .register(&db, metadata, crate::oauth::audit::Actor::system("fuzz"))
                .await
                .expect("register");
            let revocations = crate::oauth::revocation::Revocations::load(
                &db,
                settings.max_token_lifetime,
                Duration::from_secs(3600),
            )
            .await
            .expect("revocations");
            (db, keys, registry, registered.client.client_id.clone(), revocations)
        });
        World {
            runtime,
            db,
            keys,
            registry,
            client_keys: crate::oauth::client_keys::ClientKeys::new(
                crate::outbound::Outbound::new(false).expect("outbound client"),
                std::time::Duration::from_secs(30),
            ),
            // Documents stay off (the default): a URL client_id is an unknown client here.
            client_documents: crate::oauth::client_documents::ClientDocuments::new(
                crate::outbound::Outbound::new(false).expect("outbound client"),
                &settings,
            ),
            revocations,
            client_id,
            issuer: "https://issuer.example".into(),
            _dir: dir,
        }
    })
}

fn block_on<F: Future>(future: F) -> F::Output {
    world().runtime.block_on(future)
}

#[test]
fn fuzz_authorization_requests() {
    let w = world();
    let names = proptest::sample::select(
        &[
            "response_type",
            "client_id",
            "redirect_uri",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
            "nonce",
            "prompt",
            "max_age",
            "id_token_hint",
            "login_hint",
            "request",
            "request_uri",
            "response_mode",
        ][..],
    );
    let values = prop_oneof![
        any::<String>(),
        Just(w.client_id.clone()),
        Just(REGISTERED.to_owned()),
        Just("code".to_owned()),
        Just("S256".to_owned()),
        Just("openid".to_owned()),
        Just("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned()),
        hostile(&[REGISTERED, "openid profile", "none login"]),
    ];
    let params = proptest::collection::vec((names.prop_map(str::to_owned), values), 0..12);
    let seeds = corpus("authorize").into_iter().map(|query| {
        url::form_urlencoded::parse(query.replace("{client_id}", &w.client_id).as_bytes())
            .into_owned()
            .collect::<Vec<(String, String)>>()
    });
    fuzz("authorize", seeds, params, |params| {
        let ctx = authorize::Authorizing {
            db: &w.db,
            registry: &w.registry,
            keys: &w.keys,
            issuer: &w.issuer,
            require_pushed_requests: false,
            client_keys: &w.client_keys,
            client_documents: &w.client_documents,
            revocations: &w.revocations,
        };
        let result = block_on(authorize::validate(&ctx, &params, authorize::Origin::Browser));
        match result {
            Ok(request) => {
                // Only a request for our client, to its registered URI, with PKCE S256.
                prop_assert_eq!(&request.client.client_id, &w.client_id);
                prop_assert_eq!(request.redirect_uri.as_str(), REGISTERED);
                prop_assert!(crate::oauth::pkce::is_well_formed(&request.code_challenge));
                prop_assert!(request.scope.is_subset_of(&request.client.metadata.scope));
            }
            // An error goes back to the client only at its registered URI.
            Err(authorize::Refusal::Redirect(back)) => {
                prop_assert_eq!(back.redirect_uri.as_str(), REGISTERED)
            }
            Err(authorize::Refusal::Page(_) | authorize::Refusal::RequestObject(_)) => {}
            Err(authorize::Refusal::Store(e)) => prop_assert!(false, "storage error {e}"),
        }
        Ok(())
    });
}

#[test]
fn fuzz_jwt_verification() {
    let w = world();
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": w.issuer, "sub": "s", "aud": w.issuer, "exp": now + 600, "iat": now,
        "jti": "j", "client_id": "c", "scope": "openid",
    });
    // The ring refuses to sign once it has not been re-read for a while (other targets may
    // have run for minutes since the world was made).
    block_on(w.keys.refresh(&w.db)).expect("refresh the key ring");
    let genuine =
        w.keys.sign(crate::oauth::jwk::Algorithm::RS256, access_token::TYP, &claims).expect("sign");
    let b64 = |v: &serde_json::Value| {
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string())
    };
    let json_values = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
        Just(serde_json::json!("none")),
        Just(serde_json::json!("HS256")),
        Just(serde_json::json!(w.keys.active_kid(crate::oauth::jwk::Algorithm::RS256))),
    ];
    let header_names =
        proptest::sample::select(&["alg", "typ", "kid", "jku", "jwk", "crit", "x5u"][..]);
    let structured = (
        proptest::collection::btree_map(header_names.prop_map(str::to_owned), json_values, 0..5),
        any::<String>(),
        "[A-Za-z0-9_-]{0,400}",
    )
        .prop_map(move |(header, payload, signature)| {
            let header = serde_json::Value::Object(header.into_iter().collect());
            let payload =
                base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload);
            format!("{}.{payload}.{signature}", b64(&header))
        });
    let genuine_for_mutation = genuine.clone();
    let mutated = (0usize..genuine.len(), any::<u8>()).prop_map(move |(at, byte)| {
        let mut bytes = genuine_for_mutation.clone().into_bytes();
        bytes[at] = byte;
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let tokens = prop_oneof![any::<String>(), structured, mutated];
    let mut seeds = corpus("jwt");
    seeds.push(genuine.clone());
    fuzz("jwt", seeds, tokens, |token| {
        let verified = access_token::verify(&w.keys, &w.issuer, None, &token);
        // Only the one genuine token passes; every other input is refused, never a panic.
        prop_assert_eq!(verified.is_ok(), token == genuine, "{:?}", verified.err());
        let _ = crate::oauth::id_token::verify_hint(&w.keys, &w.issuer, &token);
        Ok(())
    });
}

#[test]
fn fuzz_admin_cursors() {
    let cursors = Cursors::new(aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"fuzz"));
    let genuine = cursors.make("clients", "client-0042");
    let genuine_for_mutation = genuine.clone();
    let inputs = prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_.-]{0,120}",
        (0usize..genuine.len(), any::<char>()).prop_map(move |(at, c)| {
            let mut chars: Vec<char> = genuine_for_mutation.chars().collect();
            chars[at] = c;
            chars.into_iter().collect()
        }),
        any::<String>().prop_map(|last| format!("{last}\u{0}round-trip")),
    ];
    let mut seeds = corpus("cursor");
    seeds.push(genuine.clone());
    fuzz("cursor", seeds, inputs, |input| {
        if let Some(last) = input.strip_suffix("\u{0}round-trip") {
            let made = cursors.make("users", last);
            let opened = cursors.open("users", &made).ok();
            prop_assert_eq!(opened.as_deref(), Some(last));
            prop_assert!(cursors.open("clients", &made).is_err(), "a cursor of another list");
            return Ok(());
        }
        let opened = cursors.open("clients", &input);
        prop_assert_eq!(opened.is_ok(), input == genuine, "a forged cursor opened");
        Ok(())
    });
}

#[test]
fn fuzz_client_ids() {
    fuzz("client_id", corpus("client_id"), any::<String>(), |id| {
        if is_client_id(&id) {
            prop_assert!(id.len() <= 255 && id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            if id.len() > 64 {
                let url = url::Url::parse(&id).map_err(|_| TestCaseError::fail("not a URL"))?;
                prop_assert_eq!(url.as_str(), id.as_str(), "a long id is a URL, as it serializes");
                prop_assert!(url.fragment().is_none() && url.query().is_none());
            }
        }
        Ok(())
    });
}
