//! Discovery metadata (RFC 8414, OIDC Discovery 1.0).

use castellan::config::Issuer;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn discovery_issuer_is_byte_identical_to_the_configured_issuer() {
    let configured = "https://login.example.test/tenants/a-b_c";
    let app = spawn_app_with(|s| s.issuer = Some(Issuer::parse(configured).expect("issuer"))).await;

    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let body = app.get(path).await.text().await.expect("body");
        let metadata: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        assert_eq!(metadata["issuer"].as_str(), Some(configured), "{path}");
        assert!(body.contains(r#""issuer":"https://login.example.test/tenants/a-b_c""#));
        assert_eq!(metadata["jwks_uri"].as_str(), Some(format!("{configured}/jwks").as_str()));
    }
}

#[tokio::test]
async fn jwks_uri_from_discovery_resolves_to_the_key_set() {
    let app = spawn_app().await;

    let metadata: serde_json::Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    let jwks_uri = metadata["jwks_uri"].as_str().expect("jwks_uri");
    let response = app.http.get(jwks_uri).send().await.expect("GET jwks_uri");

    assert_eq!(metadata["issuer"].as_str(), Some(app.issuer.as_str()));
    assert_eq!(response.status(), 200);
    let jwks: serde_json::Value = response.json().await.expect("JSON");
    assert!(!jwks["keys"].as_array().expect("keys").is_empty());
}

#[tokio::test]
async fn both_metadata_documents_have_the_same_content() {
    let app = spawn_app().await;

    let openid = app.get("/.well-known/openid-configuration").await.text().await.expect("body");
    let oauth =
        app.get("/.well-known/oauth-authorization-server").await.text().await.expect("body");

    assert_eq!(openid, oauth);
}

#[tokio::test]
async fn metadata_lists_only_endpoints_that_answer() {
    let app = spawn_app().await;

    let metadata: serde_json::Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");

    for (name, value) in metadata.as_object().expect("object") {
        if name.ends_with("_endpoint") || name.ends_with("_uri") {
            let url = value.as_str().expect("URL string");
            let path = url.strip_prefix(&app.issuer).expect("under the issuer");
            let status = app.get(path).await.status();
            assert_ne!(status, 404, "{name} points at a missing endpoint");
        }
    }
}
