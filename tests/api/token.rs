//! `POST /token` with client_credentials (RFC 6749 §4.4, RFC 9068, RFC 8707).

use castellan::config::Issuer;
use oauth2::basic::BasicClient;
use oauth2::{ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};

use crate::helpers::{TestApp, spawn_app, spawn_app_with, verify_with_jwks};

async fn error_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("JSON error");
    (status, body["error"].as_str().expect("error").to_owned())
}

async fn token_error(
    app: &TestApp,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    error_of(app.token_basic(id, secret, form).await).await
}

#[tokio::test]
async fn the_oauth2_crate_gets_a_token_that_verifies_against_the_jwks_alone() {
    let app = spawn_app().await;
    let (id, secret) = app.service_client("profile email", &["https://api.example.com"]).await;
    let client = BasicClient::new(ClientId::new(id.clone()))
        .set_client_secret(ClientSecret::new(secret))
        .set_token_uri(TokenUrl::new(app.url("/token")).expect("URL"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("profile".into()))
        .request_async(&http)
        .await
        .expect("client_credentials token");

    let (header, claims) =
        verify_with_jwks(&app, token.access_token().secret(), "https://api.example.com").await;
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert!(header.kid.is_some());
    let mut names: Vec<_> = claims.as_object().expect("claims").keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["aud", "client_id", "exp", "iat", "iss", "jti", "scope", "sub"]);
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(claims["scope"], "profile");
    assert_eq!(claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat"), 600);
    assert!(token.refresh_token().is_none());
    assert_eq!(token.expires_in().map(|d| d.as_secs()), Some(600));
}

#[tokio::test]
async fn the_issuer_in_every_token_is_byte_identical_to_the_configured_issuer() {
    let configured = "https://login.example.test/tenants/a";
    let app = spawn_app_with(|s| s.issuer = Some(Issuer::parse(configured).expect("issuer"))).await;
    let (id, secret) = app.admin.clone();

    let body = app.client_token(&id, &secret, None).await;

    let token = body["access_token"].as_str().expect("token");
    let (_, claims) = verify_with_jwks(&app, token, configured).await;
    assert_eq!(claims["iss"], configured);
}

#[tokio::test]
async fn without_scope_the_client_gets_its_allowed_scopes() {
    let app = spawn_app().await;
    let (id, secret) = app.service_client("profile email", &[]).await;

    let body = app.client_token(&id, &secret, None).await;

    assert_eq!(body["scope"], "profile email");
    let (_, claims) =
        verify_with_jwks(&app, body["access_token"].as_str().expect("token"), &app.issuer).await;
    assert_eq!(claims["scope"], "profile email");
    assert_eq!(claims["aud"], app.issuer.as_str(), "without audiences the issuer is the audience");
}

#[tokio::test]
async fn a_scope_outside_the_allowance_is_invalid_scope() {
    let app = spawn_app().await;
    let (id, secret) = app.service_client("profile", &[]).await;

    for scope in ["profile email", "admin", "nonexistent", "bad\"scope"] {
        let form = [("grant_type", "client_credentials"), ("scope", scope)];
        assert_eq!(
            token_error(&app, &id, &secret, &form).await,
            (400, "invalid_scope".into()),
            "{scope}"
        );
    }
}

#[tokio::test]
async fn resources_choose_the_audience_within_the_allowed_ones() {
    let app = spawn_app().await;
    let (id, secret) =
        app.service_client("profile", &["https://a.example", "https://b.example"]).await;

    let default = app.client_token(&id, &secret, None).await;
    let chosen = app
        .token_basic(
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("resource", "https://b.example")],
        )
        .await
        .json::<serde_json::Value>()
        .await
        .expect("JSON");
    let both = app
        .token_basic(
            &id,
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("resource", "https://a.example"),
                ("resource", "https://b.example"),
            ],
        )
        .await
        .json::<serde_json::Value>()
        .await
        .expect("JSON");

    let aud = |body: &serde_json::Value| {
        let token = body["access_token"].as_str().expect("token");
        let payload = token.split('.').nth(1).expect("payload");
        let json =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .expect("b64");
        serde_json::from_slice::<serde_json::Value>(&json).expect("claims")["aud"].clone()
    };
    assert_eq!(aud(&default), "https://a.example");
    assert_eq!(aud(&chosen), "https://b.example");
    assert_eq!(aud(&both), serde_json::json!(["https://a.example", "https://b.example"]));
}

#[tokio::test]
async fn a_resource_outside_the_audiences_is_invalid_target() {
    let app = spawn_app().await;
    let (id, secret) = app.service_client("profile", &["https://a.example"]).await;

    for resource in ["https://other.example", "not a uri", "https://a.example#frag"] {
        let form = [("grant_type", "client_credentials"), ("resource", resource)];
        assert_eq!(
            token_error(&app, &id, &secret, &form).await,
            (400, "invalid_target".into()),
            "{resource}"
        );
    }
}

#[tokio::test]
async fn a_public_client_is_unauthorized_for_client_credentials() {
    let app = spawn_app().await;
    let client = app
        .create_client(serde_json::json!({
            "redirect_uris": ["https://app.example/cb"],
            "token_endpoint_auth_method": "none",
        }))
        .await;
    let id = client["client_id"].as_str().expect("id");

    let response = app
        .http
        .post(app.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", id)])
        .send()
        .await
        .expect("POST");

    assert_eq!(error_of(response).await, (400, "unauthorized_client".into()));
}

#[tokio::test]
async fn a_client_not_registered_for_the_grant_is_unauthorized() {
    let app = spawn_app().await;
    let client =
        app.create_client(serde_json::json!({"redirect_uris": ["https://app.example/cb"]})).await;
    let (id, secret) = (
        client["client_id"].as_str().expect("id"),
        client["client_secret"].as_str().expect("secret"),
    );

    let form = [("grant_type", "client_credentials")];

    assert_eq!(token_error(&app, id, secret, &form).await, (400, "unauthorized_client".into()));
}

#[tokio::test]
async fn malformed_requests_get_rfc_6749_errors() {
    let app = spawn_app().await;
    let (id, secret) = app.admin.clone();

    let missing = token_error(&app, &id, &secret, &[("scope", "admin")]).await;
    let unknown = token_error(&app, &id, &secret, &[("grant_type", "password")]).await;
    let repeated = token_error(
        &app,
        &id,
        &secret,
        &[("grant_type", "client_credentials"), ("scope", "admin"), ("scope", "admin")],
    )
    .await;
    let json_body = app
        .http
        .post(app.url("/token"))
        .basic_auth(&id, Some(&secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .expect("POST");

    assert_eq!(missing, (400, "invalid_request".into()));
    assert_eq!(unknown, (400, "unsupported_grant_type".into()));
    assert_eq!(repeated, (400, "invalid_request".into()));
    assert_eq!(error_of(json_body).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn every_token_response_is_no_store() {
    let app = spawn_app().await;
    let (id, secret) = app.admin.clone();

    let ok = app.token_basic(&id, &secret, &[("grant_type", "client_credentials")]).await;
    let bad_scope = app
        .token_basic(&id, &secret, &[("grant_type", "client_credentials"), ("scope", "nope")])
        .await;
    let bad_client = app.token_basic(&id, "wrong", &[("grant_type", "client_credentials")]).await;

    for response in [ok, bad_scope, bad_client] {
        assert_eq!(response.headers()["cache-control"], "no-store", "{}", response.status());
        assert_eq!(response.headers()["pragma"], "no-cache");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .starts_with("application/json")
        );
    }
}

#[tokio::test]
async fn an_oversized_body_is_a_clear_400() {
    let app = spawn_app().await;
    let (id, secret) = app.admin.clone();
    let huge = "a".repeat(100 * 1024);

    let response =
        app.token_basic(&id, &secret, &[("grant_type", "client_credentials"), ("x", &huge)]).await;

    assert_eq!(error_of(response).await, (400, "invalid_request".into()));
}

#[tokio::test]
async fn a_client_may_choose_es256_or_eddsa_access_tokens_that_verify_and_introspect() {
    let app = spawn_app().await;
    let (default_id, _) = app.service_client("profile", &[]).await;
    let response =
        app.admin(reqwest::Method::GET, &format!("/admin/clients/{default_id}"), None).await;
    assert_eq!(response.status(), 200);
    let default: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(default["access_token_signed_response_alg"], "RS256");

    for alg in ["ES256", "EdDSA"] {
        let client = app
            .create_client(serde_json::json!({
                "grant_types": ["client_credentials"],
                "scope": "profile",
                "access_token_signed_response_alg": alg,
            }))
            .await;
        assert_eq!(client["access_token_signed_response_alg"], alg);
        let id = client["client_id"].as_str().expect("id");
        let secret = client["client_secret"].as_str().expect("secret");

        let body = app.client_token(id, secret, None).await;

        let token = body["access_token"].as_str().expect("token");
        let (header, claims) = verify_with_jwks(&app, token, &app.issuer).await;
        assert_eq!(header.alg, alg.parse().expect("alg"), "signed with the client's choice");
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(claims["client_id"], id);
        let introspected: serde_json::Value = app
            .http
            .post(app.url("/introspect"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspect")
            .json()
            .await
            .expect("JSON");
        assert_eq!(introspected["active"], true, "{alg}: {introspected}");
        assert_eq!(introspected["client_id"], id);
    }
}

#[tokio::test]
async fn an_unknown_or_symmetric_access_token_algorithm_is_refused_at_registration() {
    let app = spawn_app().await;
    for alg in [
        serde_json::json!("none"),
        serde_json::json!("HS256"),
        serde_json::json!("rs256"),
        serde_json::json!(256),
    ] {
        let response = app
            .admin(
                reqwest::Method::POST,
                "/admin/clients",
                Some(serde_json::json!({
                    "grant_types": ["client_credentials"],
                    "access_token_signed_response_alg": alg,
                })),
            )
            .await;
        assert_eq!(response.status(), 400, "{alg}");
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_client_metadata");
        assert_eq!(body["field"], "access_token_signed_response_alg");
    }
}
