//! The resource-server side: `castellan-guard` in the `orders-api` example, against a real
//! Castellan. Every algorithm verifies, every forgery is refused, a forged `kid` cannot make
//! the guard hammer the JWKS, rotation breaks nothing, cached keys outlive an outage, scopes
//! and DPoP are enforced with RFC 6750/9449 challenges, introspection sees a revocation.

use castellan::oauth::audit::Actor;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use castellan::oauth::jwk::Algorithm;
use castellan_guard::{Guard, GuardBuilder};
use serde_json::{Value, json};

use crate::dpop::DpopKey;
use crate::helpers::{
    ServerProcess, TestApp, TestDatabase, as_refs, cli_admin, process_env, spawn_app, token_from,
};

/// The API's resource identifier: the audience its tokens carry.
const AUDIENCE: &str = "https://orders.example";

/// Runs the example API with `guard` on a free port; its base URL.
async fn orders_api(guard: Guard) -> String {
    let orders = web::Data::new(orders_api::Orders::default());
    let server = HttpServer::new(move || {
        App::new().configure(orders_api::routes(guard.clone(), orders.clone()))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let address = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{address}")
}

/// The orders scopes at `base` (registered through the admin API with `admin_token`).
async fn register_scopes(http: &reqwest::Client, base: &str, admin_token: &str) {
    for name in ["orders:read", "orders:write"] {
        let response = http
            .post(format!("{base}/admin/scopes"))
            .bearer_auth(admin_token)
            .json(&json!({"name": name, "description": name}))
            .send()
            .await
            .expect("POST /admin/scopes");
        assert_eq!(response.status(), 201);
    }
}

/// A service client allowed `scope` for the orders API, its tokens signed with `alg`.
async fn orders_client(app: &TestApp, scope: &str, extra: Value) -> (String, String) {
    let mut metadata = json!({"grant_types": ["client_credentials"], "scope": scope,
        "audience": [AUDIENCE]});
    metadata.as_object_mut().expect("o").extend(extra.as_object().expect("o").clone());
    let client = app.create_client(metadata).await;
    (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    )
}

async fn token(app: &TestApp, client: &(String, String)) -> String {
    let body = app.client_token(&client.0, &client.1, None).await;
    body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_owned()
}

async fn setup(configure: impl FnOnce(GuardBuilder) -> GuardBuilder) -> (TestApp, Guard, String) {
    let app = spawn_app().await;
    register_scopes(&app.http, &app.address, &app.admin_token().await).await;
    let builder = Guard::builder(&app.issuer, AUDIENCE).scopes(["orders:read", "orders:write"]);
    let guard = configure(builder).build().await.expect("guard");
    let base = orders_api(guard.clone()).await;
    (app, guard, base)
}

async fn call(method: reqwest::Method, url: &str, auth: Option<String>) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method.clone(), url);
    if let Some(auth) = auth {
        request = request.header("Authorization", auth);
    }
    if method == reqwest::Method::POST {
        request = request.json(&json!({"item": "tea"}));
    }
    request.send().await.expect("request")
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn tokens_of_every_algorithm_open_the_api_within_their_scopes() {
    let (app, _, base) = setup(|b| b).await;
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        let client = orders_client(
            &app,
            "orders:read orders:write",
            json!({"access_token_signed_response_alg": alg}),
        )
        .await;
        let bearer = Some(format!("Bearer {}", token(&app, &client).await));
        let created = call(reqwest::Method::POST, &format!("{base}/orders"), bearer.clone()).await;
        assert_eq!(created.status(), 201, "{alg}");
        let listed = call(reqwest::Method::GET, &format!("{base}/orders"), bearer.clone()).await;
        assert_eq!(listed.status(), 200, "{alg}");
        let orders: Value = listed.json().await.expect("JSON");
        assert_eq!(orders[0]["owner"], client.0.as_str(), "{alg}: the caller's own orders");
    }

    // RFC 6750 §3.1: no token, a challenge without an error code, and RFC 9728 §5.1's pointer.
    let anonymous = call(reqwest::Method::GET, &format!("{base}/orders"), None).await;
    assert_eq!(anonymous.status(), 401);
    let header = challenge(&anonymous);
    assert!(header.starts_with("Bearer realm="), "{header}");
    assert!(!header.contains("error="), "{header}");
    assert!(
        header.contains(
            r#"resource_metadata="https://orders.example/.well-known/oauth-protected-resource""#
        ),
        "{header}"
    );
    // A token without the scope: 403 naming the scope it lacks.
    let reader = orders_client(&app, "orders:read", json!({})).await;
    let bearer = Some(format!("Bearer {}", token(&app, &reader).await));
    let forbidden = call(reqwest::Method::POST, &format!("{base}/orders"), bearer.clone()).await;
    assert_eq!(forbidden.status(), 403);
    assert_eq!(
        challenge(&forbidden),
        r#"Bearer error="insufficient_scope", scope="orders:write", resource_metadata="https://orders.example/.well-known/oauth-protected-resource""#
    );
    assert_eq!(call(reqwest::Method::GET, &format!("{base}/orders"), bearer).await.status(), 200);

    // RFC 9728: the metadata an MCP client reads to find Castellan.
    let metadata: Value =
        call(reqwest::Method::GET, &format!("{base}/.well-known/oauth-protected-resource"), None)
            .await
            .json()
            .await
            .expect("JSON");
    assert_eq!(metadata["resource"], AUDIENCE);
    assert_eq!(metadata["authorization_servers"], json!([app.issuer]));
    assert_eq!(metadata["scopes_supported"], json!(["orders:read", "orders:write"]));
}

#[tokio::test]
async fn forged_tokens_are_refused_and_a_forged_kid_cannot_hammer_the_jwks() {
    let (app, guard, base) = setup(|b| b).await;
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: Value| {
        let mut claims = json!({"iss": app.issuer, "sub": "svc", "client_id": "svc",
            "aud": AUDIENCE, "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
            "scope": "orders:read"});
        for (k, v) in changes.as_object().expect("o") {
            claims[k] = v.clone();
        }
        claims
    };
    let signed =
        |typ: &str, claims: Value| app.keys.sign(Algorithm::RS256, typ, &claims).expect("sign");
    let get = |token: String| {
        let url = format!("{base}/orders");
        async move { call(reqwest::Method::GET, &url, Some(format!("Bearer {token}"))).await }
    };
    assert_eq!(get(signed("at+jwt", claims(json!({})))).await.status(), 200, "the genuine one");

    let kid = app.keys.active_kid(Algorithm::RS256);
    let b64 = |v: &Value| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&claims(json!({})))
    );
    // The classic confusion: the RSA public key (as published) used as an HMAC secret.
    let jwks = app.jwks().await;
    let public = jwks["keys"].as_array().expect("keys").iter().find(|k| k["kid"] == kid.as_str());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &header,
        &claims(json!({})),
        &jsonwebtoken::EncodingKey::from_secret(public.expect("key").to_string().as_bytes()),
    )
    .expect("HS256");
    let forgeries = [
        ("alg none", none),
        ("HS256 keyed with the public key", hs256),
        ("typ JWT (an ID token's)", signed("JWT", claims(json!({})))),
        ("a foreign iss", signed("at+jwt", claims(json!({"iss": "https://evil.example"})))),
        ("a foreign aud", signed("at+jwt", claims(json!({"aud": "https://other.example"})))),
        ("expired", signed("at+jwt", claims(json!({"exp": now - 60, "iat": now - 120})))),
        ("nbf ahead", signed("at+jwt", claims(json!({"nbf": now + 120})))),
        ("without jti", signed("at+jwt", claims(json!({"jti": null})))),
    ];
    for (case, forged) in forgeries {
        let response = get(forged).await;
        assert_eq!(response.status(), 401, "{case}");
        assert!(challenge(&response).contains(r#"error="invalid_token""#), "{case}");
    }

    // A thousand tokens naming keys that do not exist: at most one fetch per interval.
    let fetches = guard.jwks_fetches();
    let stranger = DpopKey::es256();
    for n in 0..1000 {
        let forged = stranger.sign(
            &json!({"alg": "ES256", "typ": "at+jwt", "kid": format!("forged-{n}")}),
            &claims(json!({})),
        );
        assert_eq!(get(forged).await.status(), 401);
    }
    assert!(
        guard.jwks_fetches() - fetches <= 1,
        "1,000 unknown kids caused {} JWKS fetches",
        guard.jwks_fetches() - fetches
    );
}

#[tokio::test]
async fn a_key_rotation_fails_no_request() {
    let (app, guard, base) = setup(|b| b.refetch_interval(Duration::from_secs(1))).await;
    let clients: Vec<(String, String)> = {
        let mut clients = Vec::new();
        for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
            let extra = json!({"access_token_signed_response_alg": alg});
            clients.push(orders_client(&app, "orders:read", extra).await);
        }
        clients
    };
    let before: Vec<String> = {
        let mut tokens = Vec::new();
        for client in &clients {
            tokens.push(token(&app, client).await);
        }
        tokens
    };
    let db = app.store().await;
    let mut requests = 0;
    for _ in 0..3 {
        // Rotations months apart in real life; here more than the refetch interval apart.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        app.keys.rotate(&db, true, Actor::system("test")).await.expect("rotation");
        for client in &clients {
            let fresh = token(&app, client).await;
            for bearer in [&fresh, &before[requests % before.len()]] {
                let url = format!("{base}/orders");
                let response = call(reqwest::Method::GET, &url, Some(format!("Bearer {bearer}")));
                assert_eq!(response.await.status(), 200, "request {requests} during rotation");
                requests += 1;
            }
        }
    }
    println!("rotation: {requests} requests, none failed, {} JWKS fetches", guard.jwks_fetches());
}

#[tokio::test]
async fn cached_keys_keep_verifying_while_castellan_is_stopped_for_a_minute() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let admin = cli_admin(&db);
    let server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let issuer = server.address.clone();
    let http = reqwest::Client::new();
    register_scopes(&http, &issuer, &token_from(&issuer, &admin).await).await;
    let client: Value = http
        .post(format!("{issuer}/admin/clients"))
        .bearer_auth(token_from(&issuer, &admin).await)
        .json(&json!({"grant_types": ["client_credentials"], "scope": "orders:read",
            "audience": [AUDIENCE], "access_token_lifetime": 600}))
        .send()
        .await
        .expect("POST /admin/clients")
        .json()
        .await
        .expect("JSON");
    let client = (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    );
    // Keys held at most 2 s without a refresh, refetched at most every second: the guard
    // tries again and again while the server is down.
    let guard = Guard::builder(&issuer, AUDIENCE)
        .max_key_age(Duration::from_secs(2))
        .refetch_interval(Duration::from_secs(1))
        .build()
        .await
        .expect("guard");
    let base = orders_api(guard.clone()).await;
    let bearer = format!("Bearer {}", token_from(&issuer, &client).await);
    assert_eq!(
        call(reqwest::Method::GET, &format!("{base}/orders"), Some(bearer.clone())).await.status(),
        200
    );

    drop(server);
    let fetches = guard.jwks_fetches();
    let stopped = std::time::Instant::now();
    while stopped.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let url = format!("{base}/orders");
        let response = call(reqwest::Method::GET, &url, Some(bearer.clone())).await;
        assert_eq!(response.status(), 200, "{:?} into the outage", stopped.elapsed());
    }
    assert!(guard.jwks_fetches() > fetches + 5, "the guard kept trying to refresh");
}

#[tokio::test]
async fn introspected_routes_see_a_revocation_at_once() {
    let app = spawn_app().await;
    register_scopes(&app.http, &app.address, &app.admin_token().await).await;
    // The API's own client: it runs the orders API, so it may introspect its tokens.
    let api = app
        .create_client(json!({"grant_types": ["client_credentials"], "scope": "orders:read",
            "served_resources": [AUDIENCE]}))
        .await;
    let (api_id, api_secret) =
        (api["client_id"].as_str().expect("id"), api["client_secret"].as_str().expect("secret"));
    let guard = Guard::builder(&app.issuer, AUDIENCE)
        .introspection(api_id, api_secret)
        .build()
        .await
        .expect("guard");
    let base = orders_api(guard.clone()).await;
    let client = orders_client(&app, "orders:read", json!({})).await;
    let first = token(&app, &client).await;
    let bearer = Some(format!("Bearer {first}"));
    let confirmed = format!("{base}/orders/confirmed");

    assert_eq!(call(reqwest::Method::GET, &confirmed, bearer.clone()).await.status(), 200);
    assert_eq!(app.revoke(&client, &first, None).await, 200);
    let after = call(reqwest::Method::GET, &confirmed, bearer.clone()).await;
    assert_eq!(after.status(), 401, "the very next request after the revocation");
    assert!(challenge(&after).contains("no longer active"));
    assert_eq!(guard.introspection_calls(), 2, "no active verdict reused by default");

    // With a verdict cache, an active token is asked about once per period.
    let cached = Guard::builder(&app.issuer, AUDIENCE)
        .introspection(api_id, api_secret)
        .introspection_cache(Duration::from_secs(60))
        .build()
        .await
        .expect("guard");
    let cached_base = orders_api(cached.clone()).await;
    let other = token(&app, &client).await;
    for _ in 0..5 {
        let url = format!("{cached_base}/orders/confirmed");
        let response = call(reqwest::Method::GET, &url, Some(format!("Bearer {other}"))).await;
        assert_eq!(response.status(), 200);
    }
    assert_eq!(cached.introspection_calls(), 1);
}

#[tokio::test]
async fn dpop_bound_tokens_need_a_fresh_proof_by_their_key() {
    let (app, _, base) = setup(|b| b).await;
    let client =
        orders_client(&app, "orders:read", json!({"dpop_bound_access_tokens": true})).await;
    let key = DpopKey::es256();
    let issued: Value = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&client.1))
        .header("DPoP", key.proof("POST", &app.url("/token"), None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST /token")
        .json()
        .await
        .expect("JSON");
    assert_eq!(issued["token_type"], "DPoP");
    let token = issued["access_token"].as_str().expect("token");
    let me = format!("{base}/me");
    let with_proof = |scheme: &str, proof: Option<String>| {
        let mut request =
            reqwest::Client::new().get(&me).header("Authorization", format!("{scheme} {token}"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        async move { request.send().await.expect("GET /me") }
    };

    let proof = key.proof("GET", &me, Some(token));
    let accepted = with_proof("DPoP", Some(proof.clone())).await;
    assert_eq!(accepted.status(), 200);
    assert_eq!(accepted.json::<Value>().await.expect("JSON")["bound"], true);

    let replayed = with_proof("DPoP", Some(proof)).await;
    assert_eq!(replayed.status(), 401, "a proof is used once");
    assert!(challenge(&replayed).starts_with(r#"DPoP error="invalid_dpop_proof""#));
    let bearer = with_proof("Bearer", None).await;
    assert_eq!(bearer.status(), 401, "RFC 9449 §7.2: never as a bearer token");
    assert!(challenge(&bearer).contains(r#"error="invalid_token""#));
    let thief = DpopKey::es256();
    let stolen = with_proof("DPoP", Some(thief.proof("GET", &me, Some(token)))).await;
    assert_eq!(stolen.status(), 401, "a proof by another key");
    let elsewhere =
        with_proof("DPoP", Some(key.proof("GET", &format!("{base}/orders"), Some(token))));
    assert_eq!(elsewhere.await.status(), 401, "a proof for another URL");
    let no_ath = with_proof("DPoP", Some(key.proof("GET", &me, None))).await;
    assert_eq!(no_ath.status(), 401, "a proof without the token's hash");
}
