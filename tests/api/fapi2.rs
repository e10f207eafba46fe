//! The FAPI 2.0 Security Profile per client (`security_profile: fapi2`), the signing
//! algorithms it allows (PS256 above all) and refresh tokens that do not rotate.

use aws_lc_rs::digest::{SHA256, SHA512, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::browser::{
    Browser, REDIRECT, authorize_with_consent, location, params, pkce, tokens_for, user,
    web_client_with,
};
use crate::client_jwt::{assertion, post_with_assertion};
use crate::dpop::{DpopKey, claims};
use crate::helpers::{TestApp, jwt_claims, spawn_app, verify_with_jwks};

/// The metadata of a FAPI 2.0 client whose keys are `es` (kid `es`) and `rsa` (kid `rsa`).
fn fapi2_metadata(es: &DpopKey, rsa: &DpopKey) -> Value {
    json!({
        "client_name": "Bank app",
        "security_profile": "fapi2",
        "redirect_uris": [REDIRECT],
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid offline_access",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [es.registered("es"), rsa.registered("rsa")]},
    })
}

fn authorization_request(client_id: &str, challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid offline_access".into()),
        ("state", "fapi-state".into()),
        ("nonce", "fapi-nonce".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

#[tokio::test]
async fn the_profile_sets_and_holds_the_clients_metadata() {
    let app = spawn_app().await;
    let (es, rsa) = (DpopKey::es256(), DpopKey::ps256());
    let registered = app.create_client(fapi2_metadata(&es, &rsa)).await;
    assert_eq!(registered["security_profile"], "fapi2");
    assert_eq!(registered["dpop_bound_access_tokens"], true);
    assert_eq!(registered["require_pushed_authorization_requests"], true);
    assert_eq!(registered["id_token_signed_response_alg"], "PS256");
    assert_eq!(registered["access_token_signed_response_alg"], "PS256");
    assert_eq!(registered["refresh_token_rotation"], false);
    assert!(registered["authorization_code_lifetime"].as_u64().expect("lifetime") <= 60);

    for (change, field) in [
        (
            json!({"token_endpoint_auth_method": "client_secret_basic"}),
            "token_endpoint_auth_method",
        ),
        (json!({"id_token_signed_response_alg": "RS256"}), "id_token_signed_response_alg"),
        (json!({"access_token_signed_response_alg": "RS256"}), "access_token_signed_response_alg"),
        (json!({"dpop_bound_access_tokens": false}), "dpop_bound_access_tokens"),
        (
            json!({"require_pushed_authorization_requests": false}),
            "require_pushed_authorization_requests",
        ),
        (json!({"authorization_code_lifetime": 120}), "authorization_code_lifetime"),
        (json!({"security_profile": "fapi1"}), "security_profile"),
        (
            json!({"grant_types": ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"]}),
            "security_profile",
        ),
    ] {
        let mut metadata = fapi2_metadata(&es, &rsa);
        metadata.as_object_mut().expect("object").extend(change.as_object().expect("o").clone());
        let response = app.admin(reqwest::Method::POST, "/admin/clients", Some(metadata)).await;
        assert_eq!(response.status(), 400, "{change}");
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["field"], field, "{change}: {error}");
    }
}

#[tokio::test]
async fn a_fapi2_client_gets_bound_ps256_tokens_and_every_shortcut_is_refused() {
    let app = spawn_app().await;
    let (es, rsa, dpop) = (DpopKey::es256(), DpopKey::ps256(), DpopKey::es256());
    let registered = app.create_client(fapi2_metadata(&es, &rsa)).await;
    let client_id = registered["client_id"].as_str().expect("id").to_owned();
    user(&app, "fern").await;
    let (verifier, challenge) = pkce();
    let request = authorization_request(&client_id, &challenge);
    let by_issuer =
        |key: &DpopKey, kid: &str, alg: &str| assertion(key, kid, alg, &client_id, &app.issuer);

    // §5.3.2.2: requests only by reference to a pushed one.
    let query =
        url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&request).finish();
    let direct = Browser::new().get(&app.url(&format!("/authorize?{query}"))).await;
    assert_eq!(params(&location(&direct).expect("error redirect"))["error"], "invalid_request");

    // §5.3.2.2: the redirect URI is sent, never implied by a single registered one.
    let without_redirect: Vec<_> =
        request.iter().filter(|(k, _)| *k != "redirect_uri").cloned().collect();
    let (status, body) =
        post_with_assertion(&app, "/par", &without_redirect, &by_issuer(&es, "es", "ES256"), None)
            .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");

    // §5.3.2.1: the issuer, only the issuer, as the assertion's audience.
    let to_endpoint = assertion(&es, "es", "ES256", &client_id, &app.url("/par"));
    let (status, _) = post_with_assertion(&app, "/par", &request, &to_endpoint, None).await;
    assert_eq!(status, 401, "an endpoint URL as audience");
    // §5.4.1: no RS256, even with a registered RSA key.
    let (status, _) =
        post_with_assertion(&app, "/par", &request, &by_issuer(&rsa, "rsa", "RS256"), None).await;
    assert_eq!(status, 401, "an RS256 assertion");

    // §5.4.1: no RS256 DPoP proof at the PAR endpoint either.
    let rs256_push_proof = rsa.sign(
        &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": rsa.jwk()}),
        &claims("POST", &app.url("/par"), None),
    );
    let (status, body) = post_with_assertion(
        &app,
        "/par",
        &request,
        &by_issuer(&es, "es", "ES256"),
        Some(rs256_push_proof),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");

    // PS256 by the same RSA key, with a DPoP proof that binds the code.
    let proof = dpop.proof("POST", &app.url("/par"), None);
    let (status, pushed) =
        post_with_assertion(&app, "/par", &request, &by_issuer(&rsa, "rsa", "PS256"), Some(proof))
            .await;
    assert_eq!(status, 201, "{pushed}");
    let reference = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client_id)
        .append_pair("request_uri", pushed["request_uri"].as_str().expect("request_uri"))
        .finish();
    let browser = Browser::new();
    let back = authorize_with_consent(
        &browser,
        &app,
        &app.url(&format!("/authorize?{reference}")),
        "fern",
    )
    .await;
    assert_eq!(back.status(), 303);
    let answer = params(&location(&back).expect("redirect"));
    assert_eq!(answer["iss"], app.issuer, "RFC 9207");
    let code = answer["code"].clone();
    let redeem = [
        ("grant_type", "authorization_code".to_owned()),
        ("code", code),
        ("redirect_uri", REDIRECT.to_owned()),
        ("code_verifier", verifier),
    ];
    let token_url = app.url("/token");

    let (status, body) =
        post_with_assertion(&app, "/token", &redeem, &by_issuer(&es, "es", "ES256"), None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "no proof");
    let rs256_proof = rsa.sign(
        &json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": rsa.jwk()}),
        &claims("POST", &token_url, None),
    );
    let (status, body) = post_with_assertion(
        &app,
        "/token",
        &redeem,
        &by_issuer(&es, "es", "ES256"),
        Some(rs256_proof),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "RS256 proof");

    let proof = dpop.proof("POST", &token_url, None);
    let (status, tokens) =
        post_with_assertion(&app, "/token", &redeem, &by_issuer(&es, "es", "ES256"), Some(proof))
            .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP");
    let access_token = tokens["access_token"].as_str().expect("access token");
    assert_eq!(jwt_claims(access_token)["cnf"]["jkt"], dpop.jkt());
    let id_token = tokens["id_token"].as_str().expect("ID token");
    let (header, id_claims) = verify_with_jwks(&app, id_token, &client_id).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256, "ID token");
    assert_eq!(id_claims["nonce"], "fapi-nonce");
    let (header, _) = verify_with_jwks(&app, access_token, &app.issuer).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::PS256, "access token");

    // Not rotated: the same refresh token serves again and again.
    let refresh_token = tokens["refresh_token"].as_str().expect("refresh token").to_owned();
    for round in 0..3 {
        let form =
            [("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.clone())];
        let proof = dpop.proof("POST", &token_url, None);
        let (status, refreshed) =
            post_with_assertion(&app, "/token", &form, &by_issuer(&es, "es", "ES256"), Some(proof))
                .await;
        assert_eq!(status, 200, "refresh {round}: {refreshed}");
        let returned = refreshed["refresh_token"].as_str().expect("refresh token");
        assert_eq!(
            jwt_claims(returned)["jti"],
            jwt_claims(&refresh_token)["jti"],
            "the same token, renewed"
        );
    }
}

#[tokio::test]
async fn refresh_tokens_rotate_unless_the_client_turns_rotation_off() {
    let app = spawn_app().await;
    user(&app, "ike").await;
    let kept =
        web_client_with(&app, "openid offline_access", json!({"refresh_token_rotation": false}))
            .await;
    let rotated = web_client_with(&app, "openid offline_access", json!({})).await;
    let refresh = |client: &(String, String), token: &str| {
        let (client, token) = (client.clone(), token.to_owned());
        let app = &app;
        async move {
            app.token_basic(
                &client.0,
                &client.1,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
            .status()
            .as_u16()
        }
    };

    // RFC 9700 §4.14.2: a public client's refresh tokens rotate unless DPoP binds them.
    let public = |extra: Value| {
        let mut metadata = json!({"redirect_uris": [REDIRECT], "scope": "openid offline_access",
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none", "refresh_token_rotation": false});
        metadata.as_object_mut().expect("o").extend(extra.as_object().expect("o").clone());
        app.admin(reqwest::Method::POST, "/admin/clients", Some(metadata))
    };
    assert_eq!(public(json!({})).await.status(), 400, "an unbound public client must rotate");
    let bound = public(json!({"dpop_bound_access_tokens": true})).await;
    assert_eq!(bound.status(), 201, "a DPoP-bound public client need not");

    let tokens = tokens_for(&app, &kept, "ike", "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().expect("refresh token");
    for _ in 0..3 {
        assert_eq!(refresh(&kept, token).await, 200, "not rotated: usable again");
    }
    let tokens = tokens_for(&app, &rotated, "ike", "openid offline_access").await;
    let token = tokens["refresh_token"].as_str().expect("refresh token");
    assert_eq!(refresh(&rotated, token).await, 200);
    assert_eq!(refresh(&rotated, token).await, 400, "rotated: the old token is used up");
}

#[tokio::test]
async fn id_tokens_follow_the_clients_algorithm() {
    let app = spawn_app().await;
    user(&app, "ida").await;
    let metadata: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    for alg in ["RS256", "PS256", "ES256", "EdDSA"] {
        assert!(
            metadata["id_token_signing_alg_values_supported"]
                .as_array()
                .expect("algs")
                .contains(&json!(alg)),
            "{alg} advertised"
        );
        let client =
            web_client_with(&app, "openid", json!({"id_token_signed_response_alg": alg})).await;
        let tokens = tokens_for(&app, &client, "ida", "openid").await;
        let id_token = tokens["id_token"].as_str().expect("ID token");
        let (header, claims) = verify_with_jwks(&app, id_token, &client.0).await;
        assert_eq!(header.alg, alg.parse().expect("alg"), "{alg}");
        // OIDC Core §3.1.3.6: the left half of the hash the signature uses (SHA-512 for Ed25519).
        let access_token = tokens["access_token"].as_str().expect("access token");
        let hash = match alg {
            "EdDSA" => digest(&SHA512, access_token.as_bytes()),
            _ => digest(&SHA256, access_token.as_bytes()),
        };
        let half = &hash.as_ref()[..hash.as_ref().len() / 2];
        assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(half), "{alg} at_hash");
    }
    let refused = app
        .admin(
            reqwest::Method::POST,
            "/admin/clients",
            Some(json!({"redirect_uris": [REDIRECT], "id_token_signed_response_alg": "HS256"})),
        )
        .await;
    assert_eq!(refused.status(), 400, "a MAC is no ID token algorithm here");
}

/// The JWKS publishes a PS256 key of its own beside the RS256 one (one key, one algorithm).
#[tokio::test]
async fn the_key_ring_publishes_a_ps256_key() {
    let app: TestApp = spawn_app().await;
    let jwks = app.jwks().await;
    let keys = jwks["keys"].as_array().expect("keys");
    let ps256: Vec<&Value> = keys.iter().filter(|k| k["alg"] == "PS256").collect();
    let rs256: Vec<&Value> = keys.iter().filter(|k| k["alg"] == "RS256").collect();
    assert!(!ps256.is_empty() && !rs256.is_empty());
    for key in &ps256 {
        assert_eq!(key["kty"], "RSA");
        assert!(rs256.iter().all(|r| r["n"] != key["n"]), "no RSA key serves two algorithms");
    }
}
