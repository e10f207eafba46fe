//! Pushed authorization requests (RFC 9126): `POST /par`, then `/authorize` with only
//! `client_id` and the one-time `request_uri`.

use serde_json::{Value, json};

use crate::browser::{
    Browser, REDIRECT, authorize_with_consent, location, params, pkce, redeem, user,
    web_client_with,
};
use crate::dpop::{DpopKey, redeem_with_proof, thumbprint};
use crate::helpers::{TestApp, jwt_claims, spawn_app, spawn_app_with};

/// The parameters `/authorize` would get, for `client_id`, with `challenge`.
fn request(client_id: &str, challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid".into()),
        ("state", "pushed-state".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        // FAPI 2.0 §5.3.2.1: nonces of up to 64 characters.
        ("nonce", NONCE.into()),
    ]
}

const NONCE: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// `POST /par` by `client` (HTTP Basic) with `form` and optional `DPoP` proof.
async fn push(
    app: &TestApp,
    client: &(String, String),
    form: &[(&str, String)],
    proof: Option<String>,
) -> (u16, Value) {
    let mut request =
        app.http.post(app.url("/par")).basic_auth(&client.0, Some(&client.1)).form(form);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.expect("POST /par");
    let status = response.status().as_u16();
    if status == 201 {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    (status, response.json().await.expect("JSON"))
}

fn authorize_by_reference(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .finish();
    app.url(&format!("/authorize?{query}"))
}

#[tokio::test]
async fn a_pushed_request_yields_one_code_and_the_query_can_change_nothing() {
    let app = spawn_app().await;
    let client = web_client_with(&app, "openid profile", json!({})).await;
    user(&app, "pia").await;
    let (verifier, challenge) = pkce();

    let (status, pushed) = push(&app, &client, &request(&client.0, &challenge), None).await;
    assert_eq!(status, 201, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().expect("request_uri");
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert!(request_uri.len() >= 34 + 43, "at least 256 random bits");
    let expires_in = pushed["expires_in"].as_i64().expect("expires_in");
    assert!((1..600).contains(&expires_in), "RFC 9126 §2.2: short-lived");

    // Parameters beside the request_uri are ignored: this scope and state do not count.
    let browser = Browser::new();
    let url = format!(
        "{}&scope=openid+profile&state=tampered",
        authorize_by_reference(&app, &client.0, request_uri)
    );
    let back = authorize_with_consent(&browser, &app, &url, "pia").await;
    assert_eq!(back.status(), 303, "FAPI 2.0: 303 from the authorization endpoint");
    let answer = params(&location(&back).expect("a redirect to the client"));
    assert_eq!(answer["state"], "pushed-state");
    assert_eq!(answer["iss"], app.issuer, "RFC 9207");
    let tokens: Value =
        redeem(&app, &client, &answer["code"], &verifier).await.json().await.expect("JSON");
    assert_eq!(tokens["scope"], "openid", "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    assert_eq!(jwt_claims(id_token)["nonce"], NONCE, "the 64-character nonce comes back");

    // Used up by the code it gave.
    let again = browser.get(&authorize_by_reference(&app, &client.0, request_uri)).await;
    assert_eq!(again.status(), 400, "a used request_uri is refused on our page");
    assert!(location(&again).is_none(), "never redirected");
}

#[tokio::test]
async fn a_request_uri_is_bound_to_its_client_and_expires() {
    let app = spawn_app().await;
    let client = web_client_with(&app, "openid", json!({})).await;
    let other = web_client_with(&app, "openid", json!({})).await;
    let (_, challenge) = pkce();
    let (_, pushed) = push(&app, &client, &request(&client.0, &challenge), None).await;
    let request_uri = pushed["request_uri"].as_str().expect("request_uri").to_owned();
    let browser = Browser::new();

    let foreign = browser.get(&authorize_by_reference(&app, &other.0, &request_uri)).await;
    assert_eq!(foreign.status(), 400, "another client's request_uri");
    let made_up = format!("urn:ietf:params:oauth:request_uri:{}", "A".repeat(43));
    let unknown = browser.get(&authorize_by_reference(&app, &client.0, &made_up)).await;
    assert_eq!(unknown.status(), 400, "a request_uri never issued");
    let remote = browser
        .get(&authorize_by_reference(&app, &client.0, "https://attacker.example/request.jwt"))
        .await;
    assert_eq!(remote.status(), 400, "request_uri other than PAR's stays refused (no fetch)");

    // Expired: the stored request is past its time.
    let db = app.store().await;
    use sea_orm::ConnectionTrait;
    db.execute_unprepared("UPDATE pushed_requests SET expires_at = created_at")
        .await
        .expect("expire it");
    let expired = browser.get(&authorize_by_reference(&app, &client.0, &request_uri)).await;
    assert_eq!(expired.status(), 400, "an expired request_uri");
    assert!(location(&expired).is_none());
}

#[tokio::test]
async fn the_push_is_validated_as_authorize_would_be() {
    let app = spawn_app().await;
    let client = web_client_with(&app, "openid", json!({})).await;
    let (_, challenge) = pkce();
    let with = |name: &'static str, value: &str| {
        let mut form = request(&client.0, &challenge);
        form.retain(|(k, _)| *k != name);
        if !value.is_empty() {
            form.push((name, value.to_owned()));
        }
        form
    };

    let cases = [
        (with("scope", "openid admin-only-thing"), "invalid_scope"),
        (with("code_challenge", ""), "invalid_request"),
        (with("redirect_uri", "https://elsewhere.example/cb"), "invalid_request"),
        (with("response_type", "token"), "unsupported_response_type"),
        (with("request_uri", "urn:ietf:params:oauth:request_uri:x"), "invalid_request"),
    ];
    for (form, error) in cases {
        let (status, body) = push(&app, &client, &form, None).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(error)), "{form:?}");
    }
    let wrong_secret = (client.0.clone(), "not the secret".to_owned());
    let (status, body) = push(&app, &wrong_secret, &request(&client.0, &challenge), None).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")));
    let db = app.store().await;
    use sea_orm::{ConnectionTrait, Statement};
    let stored = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n FROM pushed_requests",
        ))
        .await
        .expect("count")
        .expect("row")
        .try_get::<i64>("", "n")
        .expect("n");
    assert_eq!(stored, 0, "nothing refused was stored");
}

#[tokio::test]
async fn a_client_that_requires_par_cannot_skip_it() {
    let app = spawn_app().await;
    let client =
        web_client_with(&app, "openid", json!({"require_pushed_authorization_requests": true}))
            .await;
    let (_, challenge) = pkce();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(request(&client.0, &challenge))
        .finish();
    let response = Browser::new().get(&app.url(&format!("/authorize?{query}"))).await;
    let to = location(&response).expect("an error back to the client");
    assert_eq!(params(&to)["error"], "invalid_request");
    let (status, _) = push(&app, &client, &request(&client.0, &challenge), None).await;
    assert_eq!(status, 201, "pushed, the same request is fine");
}

#[tokio::test]
async fn the_server_can_require_par_of_every_client() {
    let app = spawn_app_with(|s| s.require_pushed_authorization_requests = true).await;
    let metadata: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert_eq!(metadata["require_pushed_authorization_requests"], true);
    assert_eq!(metadata["pushed_authorization_request_endpoint"], app.url("/par"));
    let client = web_client_with(&app, "openid", json!({})).await;
    let (_, challenge) = pkce();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(request(&client.0, &challenge))
        .finish();
    let response = Browser::new().get(&app.url(&format!("/authorize?{query}"))).await;
    assert_eq!(params(&location(&response).expect("redirect"))["error"], "invalid_request");
}

#[tokio::test]
async fn a_proof_at_the_push_binds_the_code_to_its_key() {
    let app = spawn_app().await;
    let client = web_client_with(&app, "openid", json!({})).await;
    user(&app, "pia").await;
    let key = DpopKey::es256();
    let (verifier, challenge) = pkce();
    let proof = key.proof("POST", &app.url("/par"), None);
    let (status, pushed) = push(&app, &client, &request(&client.0, &challenge), Some(proof)).await;
    assert_eq!(status, 201, "{pushed}");
    let request_uri = pushed["request_uri"].as_str().expect("request_uri");
    let browser = Browser::new();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_by_reference(&app, &client.0, request_uri),
        "pia",
    )
    .await;
    let code = params(&location(&back).expect("redirect"))["code"].clone();

    let unproven = redeem(&app, &client, &code, &verifier).await;
    assert_eq!(unproven.status(), 400, "the code needs the key's proof");
    // A fresh code, redeemed with the key.
    let (verifier, challenge) = pkce();
    let proof = key.proof("POST", &app.url("/par"), None);
    let (_, pushed) = push(&app, &client, &request(&client.0, &challenge), Some(proof)).await;
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_by_reference(&app, &client.0, pushed["request_uri"].as_str().expect("uri")),
        "pia",
    )
    .await;
    let code = params(&location(&back).expect("redirect"))["code"].clone();
    let response = redeem_with_proof(&app, &client, &code, &verifier, &key).await;
    let tokens: Value = response.json().await.expect("JSON");
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let token = tokens["access_token"].as_str().expect("token");
    assert_eq!(jwt_claims(token)["cnf"]["jkt"], key.jkt());
}

#[tokio::test]
async fn the_authorization_endpoint_answers_no_cross_origin_request() {
    let app = spawn_app().await;
    let client = web_client_with(&app, "openid", json!({})).await;
    let (_, challenge) = pkce();
    let (_, pushed) = push(&app, &client, &request(&client.0, &challenge), None).await;
    let url = authorize_by_reference(&app, &client.0, pushed["request_uri"].as_str().expect("uri"));
    let response = app
        .http
        .get(&url)
        .header("Origin", "https://app.example")
        .send()
        .await
        .expect("GET /authorize");
    assert!(
        !response.headers().keys().any(|name| name.as_str().starts_with("access-control-")),
        "FAPI 2.0 §5.3.2.2: no CORS at the authorization endpoint"
    );
}

#[tokio::test]
async fn node_openid_client_completes_par_dpop_and_private_key_jwt() {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    if !crate::oidc::openid_client_installed() {
        return;
    }
    let app = spawn_app().await;
    // The client's own key for private_key_jwt: its public half registered, its private
    // half handed to the client.
    let (client_key, pkcs8) = DpopKey::es256_with_pkcs8();
    let mut jwk = client_key.jwk();
    jwk["kid"] = json!("fapi-client-1");
    jwk["use"] = json!("sig");
    jwk["alg"] = json!("ES256");
    // The whole FAPI 2.0 profile: PAR and DPoP required, PS256 tokens, the issuer alone
    // as assertion audience, the redirect URI always sent.
    let registered = app
        .create_client(json!({
            "client_name": "FAPI client",
            "security_profile": "fapi2",
            "redirect_uris": [REDIRECT],
            "scope": "openid profile",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [jwk]},
        }))
        .await;
    assert_eq!(registered["id_token_signed_response_alg"], "PS256");
    let client_id = registered["client_id"].as_str().expect("id").to_owned();
    let user_id = user(&app, "fay").await;
    let args = vec![
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/openid_client_fapi.mjs").to_owned(),
        app.issuer.clone(),
        client_id.clone(),
        "fapi-client-1".to_owned(),
        STANDARD.encode(&pkcs8),
        REDIRECT.to_owned(),
        "fay".to_owned(),
        crate::browser::PASSWORD.to_owned(),
    ];
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node").args(&args).output().expect("node")
    })
    .await
    .expect("join");
    assert!(output.status.success(), "node: {}", String::from_utf8_lossy(&output.stderr));
    let verified: Value = serde_json::from_slice(&output.stdout).expect("one JSON line");

    assert_eq!(verified["sub"], user_id.as_str());
    assert_eq!(verified["userinfo"]["preferred_username"], "fay", "UserInfo took the DPoP token");
    let token = verified["access_token"].as_str().expect("the access token");
    let dpop_jwk = &verified["dpop_jwk"];
    let jkt = thumbprint(dpop_jwk);
    assert_eq!(jwt_claims(token)["cnf"]["jkt"], jkt, "bound to the client's DPoP key");
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256, "a FAPI 2.0 access token");
    // The token leaks: without the key it opens nothing, yet it is still active.
    assert_eq!(app.userinfo(token).await.status(), 401, "replayed as a bearer token");
    let stolen = app
        .http
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {token}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(stolen.status(), 401, "replayed without a proof");
    let rs = app.resource_server().await;
    let answer = app.introspect(&rs, token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["cnf"]["jkt"], jkt);
}
