//! Clients named by their metadata document (draft-ietf-oauth-client-id-metadata-document):
//! a `client_id` that is a URL is fetched through the SSRF-guarded outbound client, checked
//! and used as a public client — only when the setting allows it, and never from a private
//! address unless that is allowed too.

use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::{Browser, PASSWORD, location, log_in, params, pkce, user};
use crate::client_jwt::JwksServer;
use crate::helpers::{TestApp, jwt_claims, spawn_app_with};

const CALLBACK: &str = "http://127.0.0.1/callback";

/// A document server on loopback publishing the document of the client it names; the URL is
/// longer than any plain client id (64), as real ones are, so every table holding a client
/// id must take it.
async fn document_server(cache_control: &str, extra: Value) -> (JwksServer, String) {
    let server = JwksServer::start(json!({}), cache_control).await;
    let url = format!(
        "http://127.0.0.1:{}/agents/{}/client-metadata.json",
        server.port(),
        "document-agent-".repeat(5)
    );
    assert!(url.len() > 100);
    let mut document = json!({
        "client_id": url,
        "client_name": "Document Agent",
        "client_uri": "https://agent.example/about",
        "redirect_uris": [CALLBACK],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    document.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    server.publish(document);
    (server, url)
}

async fn app_with_documents() -> TestApp {
    spawn_app_with(|s| {
        s.client_id_metadata_documents = true;
        s.outbound_allow_private_networks = true;
        s.client_jwks_refetch_interval = Duration::from_secs(1);
    })
    .await
}

fn authorize_url(app: &TestApp, client_id: &str, redirect: &str, challenge: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid offline_access")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    app.url(&format!("/authorize?{query}"))
}

/// The page an authorization request ends on (status and text), without signing in.
async fn first_page(app: &TestApp, client_id: &str, redirect: &str) -> (u16, String) {
    let browser = Browser::new();
    let response = browser
        .follow(
            app,
            browser.get(&authorize_url(app, client_id, redirect, "x".repeat(43).as_str())).await,
        )
        .await;
    (response.status().as_u16(), response.text().await.expect("page"))
}

#[tokio::test]
async fn a_client_named_by_its_metadata_document_signs_a_user_in() {
    let app = app_with_documents().await;
    let discovery: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert_eq!(discovery["client_id_metadata_document_supported"], true);
    user(&app, "noa").await;
    let (server, client_id) = document_server("max-age=60", json!({})).await;

    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let redirect = "http://127.0.0.1:50123/callback";
    let login = browser
        .follow(&app, browser.get(&authorize_url(&app, &client_id, redirect, &challenge)).await)
        .await;
    assert_eq!(login.status(), 200);
    let page = login.text().await.expect("login page");
    let consent = browser.follow(&app, log_in(&browser, &app, &page, "noa", PASSWORD).await).await;
    let page = consent.text().await.expect("consent page");
    assert!(page.contains("This application registered itself"), "{page}");
    assert!(page.contains("described by a document at"), "its document's host is shown");
    assert!(page.contains("Document Agent") && page.contains("agent.example"));
    let back = crate::browser::consent(&browser, &app, &page).await;
    let code = params(&location(&back).expect("redirect to the client"))["code"].clone();
    let token = |grant: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let response =
                app.http.post(app.url("/token")).form(&grant).send().await.expect("token");
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("JSON")
        }
    };
    let tokens = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", client_id.clone()),
        ("code", code),
        ("redirect_uri", redirect.into()),
        ("code_verifier", verifier),
    ])
    .await;
    let claims = jwt_claims(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(
        jwt_claims(tokens["id_token"].as_str().expect("id token"))["aud"],
        client_id.as_str()
    );
    let refreshed = token(vec![
        ("grant_type", "refresh_token".into()),
        ("client_id", client_id.clone()),
        ("refresh_token", tokens["refresh_token"].as_str().expect("refresh").into()),
    ])
    .await;
    assert!(refreshed["access_token"].is_string());
    assert_eq!(server.connections(), 1, "fetched once: max-age=60 covers the whole flow");

    // A replica with documents turned off knows no document client, stored or not.
    let mut app = app;
    app.settings.client_id_metadata_documents = false;
    let off = app.replica().await;
    let response = off
        .http
        .post(off.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", client_id.as_str()),
            ("refresh_token", refreshed["refresh_token"].as_str().expect("refresh")),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), 401, "invalid_client once documents are off");

    let listed: Value = app
        .admin(reqwest::Method::GET, "/admin/clients?limit=100", None)
        .await
        .json()
        .await
        .expect("JSON");
    let stored = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["client_id"] == client_id.as_str())
        .cloned()
        .expect("stored");
    assert_eq!(stored["registration"], "document");
    assert_eq!(stored["token_endpoint_auth_method"], "none");
}

#[tokio::test]
async fn documents_that_do_not_describe_a_public_client_at_their_own_url_are_refused() {
    let app = app_with_documents().await;
    let refused = "the client&#x27;s metadata document is not acceptable";
    for extra in [
        json!({"client_id": "https://someone-else.example/client.json"}),
        json!({"client_secret": "chosen"}),
        json!({"token_endpoint_auth_method": "client_secret_basic"}),
        json!({"scope": "openid admin"}),
        json!({"redirect_uris": ["http://agent.example/cb"]}),
    ] {
        let (_server, client_id) = document_server("max-age=60", extra.clone()).await;
        let (status, page) = first_page(&app, &client_id, CALLBACK).await;
        assert_eq!(status, 400, "{extra}");
        assert!(page.contains(refused) || page.contains("not acceptable"), "{extra}: {page}");
    }
    let (server, client_id) = document_server("max-age=60", json!({})).await;
    server.publish_raw("not json".into());
    let (status, page) = first_page(&app, &client_id, CALLBACK).await;
    assert_eq!(status, 400);
    assert!(page.contains("could not be fetched"), "{page}");
    // A redirect URI the document does not list is refused as for any client.
    let (_server, client_id) = document_server("max-age=60", json!({})).await;
    let (status, page) = first_page(&app, &client_id, "http://127.0.0.1/elsewhere").await;
    assert_eq!(status, 400);
    assert!(page.contains("redirect_uri is not registered"), "{page}");
}

#[tokio::test]
async fn documents_are_off_by_default_and_never_fetched_from_private_addresses() {
    let (server, client_id) = document_server("max-age=60", json!({})).await;
    let off = spawn_app_with(|s| s.outbound_allow_private_networks = true).await;
    let discovery: Value =
        off.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert!(discovery.get("client_id_metadata_document_supported").is_none());
    let (status, page) = first_page(&off, &client_id, CALLBACK).await;
    assert_eq!(status, 400);
    assert!(page.contains("the client is unknown"), "{page}");

    let guarded = spawn_app_with(|s| s.client_id_metadata_documents = true).await;
    let (status, page) = first_page(&guarded, &client_id, CALLBACK).await;
    assert_eq!(status, 400);
    assert!(page.contains("could not be fetched"), "{page}");
    assert_eq!(server.connections(), 0, "no connection to a loopback address, ever");
}

#[tokio::test]
async fn a_changed_document_takes_effect_once_its_cache_time_passes() {
    let app = app_with_documents().await;
    let (server, client_id) = document_server("max-age=1", json!({})).await;
    let (status, _) = first_page(&app, &client_id, CALLBACK).await;
    assert_eq!(status, 200, "the login page");
    let mut changed: Value = json!({
        "client_id": client_id, "client_name": "Document Agent",
        "redirect_uris": ["http://127.0.0.1/new-callback"],
        "token_endpoint_auth_method": "none",
    });
    changed["grant_types"] = json!(["authorization_code"]);
    server.publish(changed);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, page) = first_page(&app, &client_id, CALLBACK).await;
    assert_eq!(status, 400, "the old redirect URI is gone: {page}");
    let (status, _) = first_page(&app, &client_id, "http://127.0.0.1/new-callback").await;
    assert_eq!(status, 200);
    assert!(server.connections() >= 2, "fetched again after max-age");
}
