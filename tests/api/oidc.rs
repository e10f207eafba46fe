//! OpenID Connect with a real relying party: the `openidconnect` crate discovers, logs in with
//! PKCE and nonce, verifies the ID token with its default strict checks, and calls UserInfo.

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::browser::{Browser, REDIRECT, authorize_with_consent, location, params, user};
use crate::helpers::spawn_app;

#[tokio::test]
async fn the_openidconnect_crate_logs_in_verifies_the_id_token_and_reads_userinfo() {
    let app = spawn_app().await;
    let registered = app
        .create_client(json!({"client_name": "RP", "redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile email offline_access"}))
        .await;
    let user_id = user(&app, "oscar").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(app.issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered["client_id"].as_str().expect("id").to_owned()),
        Some(ClientSecret::new(registered["client_secret"].as_str().expect("secret").to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = authorize_with_consent(&Browser::new(), &app, url.as_str(), "oscar").await;
    let query = params(&location(&back).expect("redirect"));
    assert_eq!(&query["state"], state.secret());

    let tokens = client
        .exchange_code(AuthorizationCode::new(query["code"].clone()))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");

    let id_token = tokens.id_token().expect("an ID token for openid");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("the ID token verifies with default strict checks");
    assert_eq!(claims.subject().as_str(), user_id);
    assert!(claims.auth_time().is_some());
    let expected_hash = claims.access_token_hash().expect("at_hash");
    let actual_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().expect("alg"),
        id_token.signing_key(&id_verifier).expect("key"),
    )
    .expect("hash");
    assert_eq!(&actual_hash, expected_hash);
    assert_eq!(claims.email().map(|e| e.as_str()), Some("oscar@example.com"));

    let info: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
        .expect("userinfo endpoint")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), user_id);
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("oscar"));

    // OIDC Core §12.2: a refresh brings a new ID token with the same iss, sub and aud.
    let refreshed: Value = app
        .token_basic(
            registered["client_id"].as_str().expect("id"),
            registered["client_secret"].as_str().expect("secret"),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens.refresh_token().expect("refresh").secret()),
            ],
        )
        .await
        .json()
        .await
        .expect("JSON");
    let new_id = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(
        refreshed["id_token"].as_str().expect("id token"),
    )
    .expect("claims");
    let old_id = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(&id_token.to_string())
        .expect("claims");
    for claim in ["iss", "sub", "aud", "auth_time"] {
        assert_eq!(new_id[claim], old_id[claim], "{claim}");
    }
}

#[tokio::test]
async fn userinfo_takes_only_an_access_token_in_the_header() {
    let app = spawn_app().await;
    let registered = app
        .create_client(json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"], "scope": "openid profile offline_access"}))
        .await;
    let client = (
        registered["client_id"].as_str().expect("id").to_owned(),
        registered["client_secret"].as_str().expect("secret").to_owned(),
    );
    user(&app, "uma").await;
    let (verifier, challenge) = crate::browser::pkce();
    let url = crate::browser::authorize_url(
        &app,
        &client.0,
        &challenge,
        "openid profile offline_access",
        "s",
    );
    let back = authorize_with_consent(&Browser::new(), &app, &url, "uma").await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value =
        crate::browser::redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    let access = tokens["access_token"].as_str().expect("access");
    let userinfo = app.url("/userinfo");

    let ok = app.http.get(&userinfo).bearer_auth(access).send().await.expect("GET");
    let by_post = app.http.post(&userinfo).bearer_auth(access).send().await.expect("POST");
    let in_query =
        app.http.get(format!("{userinfo}?access_token={access}")).send().await.expect("GET");
    let none = app.http.get(&userinfo).send().await.expect("GET");
    let id_token = app
        .http
        .get(&userinfo)
        .bearer_auth(tokens["id_token"].as_str().expect("id"))
        .send()
        .await
        .expect("GET");
    let refresh = app
        .http
        .get(&userinfo)
        .bearer_auth(tokens["refresh_token"].as_str().expect("rt"))
        .send()
        .await
        .expect("GET");
    let (service_id, service_secret) = app.admin.clone();
    let service = app.client_token(&service_id, &service_secret, None).await["access_token"]
        .as_str()
        .expect("t")
        .to_owned();
    let not_openid = app.http.get(&userinfo).bearer_auth(service).send().await.expect("GET");

    assert_eq!(ok.status(), 200);
    assert_eq!(by_post.status(), 200);
    let challenge_of = |r: &reqwest::Response| {
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default()
    };
    assert_eq!(in_query.status(), 400);
    assert!(challenge_of(&in_query).contains("invalid_request"));
    assert_eq!(none.status(), 401);
    assert!(challenge_of(&none).starts_with("Bearer"));
    for refused in [&id_token, &refresh] {
        assert_eq!(refused.status(), 401);
        assert!(challenge_of(refused).contains("invalid_token"));
    }
    assert_eq!(not_openid.status(), 403);
    let body: Value = ok.json().await.expect("JSON");
    assert_eq!(body["preferred_username"], "uma");
    assert!(body.get("email").is_none(), "no email scope, no email claim");

    app.http
        .post(app.url("/revoke"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", access)])
        .send()
        .await
        .expect("revoke");
    let revoked = app.http.get(&userinfo).bearer_auth(access).send().await.expect("GET");
    assert_eq!(revoked.status(), 401);
}

/// A logged-in browser with a grant for `scope`, its client, and the first ID token.
async fn signed_in(
    app: &crate::helpers::TestApp,
    username: &str,
) -> (Browser, (String, String), Value) {
    let registered =
        app.create_client(json!({"redirect_uris": [REDIRECT], "scope": "openid profile"})).await;
    let client = (
        registered["client_id"].as_str().expect("id").to_owned(),
        registered["client_secret"].as_str().expect("secret").to_owned(),
    );
    user(app, username).await;
    let browser = Browser::new();
    let (verifier, challenge) = crate::browser::pkce();
    let url = crate::browser::authorize_url(app, &client.0, &challenge, "openid profile", "s");
    let back = authorize_with_consent(&browser, app, &url, username).await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value =
        crate::browser::redeem(app, &client, &code, &verifier).await.json().await.expect("JSON");
    (browser, client, tokens)
}

fn with(url: &str, extra: &str) -> String {
    format!("{url}&{extra}")
}

async fn auth_time_after_login(
    app: &crate::helpers::TestApp,
    browser: &Browser,
    client: &(String, String),
    url_extra: &str,
    username: &str,
) -> i64 {
    let (verifier, challenge) = crate::browser::pkce();
    let url = with(
        &crate::browser::authorize_url(app, &client.0, &challenge, "openid profile", "s"),
        url_extra,
    );
    let login = browser.follow(app, browser.get(&url).await).await;
    let page = login.text().await.expect("page");
    assert!(page.contains(r#"name="password""#), "a login page: {page}");
    let back = browser
        .follow(
            app,
            crate::browser::log_in(browser, app, &page, username, crate::browser::PASSWORD).await,
        )
        .await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value =
        crate::browser::redeem(app, client, &code, &verifier).await.json().await.expect("JSON");
    let claims = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(
        tokens["id_token"].as_str().expect("id"),
    )
    .expect("claims");
    claims["auth_time"].as_i64().expect("auth_time")
}

#[tokio::test]
async fn prompt_none_fails_without_a_session_and_succeeds_silently_with_one() {
    let app = spawn_app().await;
    let (browser, client, tokens) = signed_in(&app, "pia").await;
    let (_, challenge) = crate::browser::pkce();
    let url = with(
        &crate::browser::authorize_url(&app, &client.0, &challenge, "openid profile", "s"),
        "prompt=none",
    );

    let anonymous = Browser::new().get(&url).await;
    let silent = browser.get(&url).await;
    let hint = with(&url, &format!("id_token_hint={}", tokens["id_token"].as_str().expect("id")));
    let hinted = browser.get(&hint).await;
    let forged = with(&url, "id_token_hint=eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
    let refused_hint = browser.get(&forged).await;

    let anon = params(&location(&anonymous).expect("redirect"));
    assert_eq!(anon["error"], "login_required");
    assert_eq!(anon["state"], "s");
    assert!(
        params(&location(&silent).expect("redirect")).contains_key("code"),
        "no UI with a session"
    );
    assert!(
        params(&location(&hinted).expect("redirect")).contains_key("code"),
        "the hint names the signed-in user"
    );
    assert_eq!(
        params(&location(&refused_hint).expect("redirect"))["error"],
        "invalid_request",
        "alg none is no hint"
    );
    let unconsented =
        app.create_client(json!({"redirect_uris": [REDIRECT], "scope": "openid"})).await;
    let other = with(
        &crate::browser::authorize_url(
            &app,
            unconsented["client_id"].as_str().expect("id"),
            &challenge,
            "openid",
            "t",
        ),
        "prompt=none",
    );
    assert_eq!(
        params(&location(&browser.get(&other).await).expect("redirect"))["error"],
        "consent_required"
    );
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_new_login_with_a_later_auth_time() {
    let app = spawn_app().await;
    let (browser, client, tokens) = signed_in(&app, "quin").await;
    let first = jsonwebtoken::dangerous::insecure_decode_claims::<Value>(
        tokens["id_token"].as_str().expect("id"),
    )
    .expect("claims")["auth_time"]
        .as_i64()
        .expect("auth_time");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let after_prompt = auth_time_after_login(&app, &browser, &client, "prompt=login", "quin").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let after_max_age = auth_time_after_login(&app, &browser, &client, "max_age=1", "quin").await;

    assert!(after_prompt > first, "prompt=login: {after_prompt} > {first}");
    assert!(after_max_age > after_prompt, "max_age=1 after 2 s: {after_max_age} > {after_prompt}");
    let (_, challenge) = crate::browser::pkce();
    let long = with(
        &crate::browser::authorize_url(&app, &client.0, &challenge, "openid profile", "s"),
        "max_age=10000",
    );
    assert!(
        params(&location(&browser.get(&long).await).expect("redirect")).contains_key("code"),
        "a large max_age needs no login"
    );
}

#[tokio::test]
async fn prompt_consent_asks_again_and_other_oidc_parameters_are_accepted() {
    let app = spawn_app().await;
    let (browser, client, _) = signed_in(&app, "ruth").await;
    let (_, challenge) = crate::browser::pkce();
    let base = crate::browser::authorize_url(&app, &client.0, &challenge, "openid profile", "s");

    let consent = browser.get(&with(&base, "prompt=consent")).await;
    let extras = browser
        .get(&with(
            &base,
            "display=page&ui_locales=fr&claims_locales=fr&acr_values=urn%3Ax&nonce=n1&unknown=1",
        ))
        .await;
    let request_object = browser.get(&with(&base, "request=eyJ.e30.")).await;

    assert!(location(&consent).expect("redirect").contains("/consent"), "asked again");
    assert!(params(&location(&extras).expect("redirect")).contains_key("code"));
    // RFC 9101 §6.3: a request object that does not verify proves no redirect URI: our page.
    assert_eq!(request_object.status(), 400, "an unverifiable request object is refused");
    assert!(location(&request_object).is_none(), "and never redirected");
    let hinted =
        Browser::new().get(&app.url("/login?login_hint=ruth")).await.text().await.expect("page");
    assert!(hinted.contains(r#"value="ruth""#), "login_hint prefills the username");
}

#[tokio::test]
async fn rp_initiated_logout_redirects_only_to_registered_uris_and_ends_the_session() {
    let app = spawn_app().await;
    let registered = app
        .create_client(json!({"redirect_uris": [REDIRECT], "scope": "openid", "post_logout_redirect_uris": ["https://app.example/bye"]}))
        .await;
    let client = (
        registered["client_id"].as_str().expect("id").to_owned(),
        registered["client_secret"].as_str().expect("secret").to_owned(),
    );
    user(&app, "sam").await;
    let signed_in = |browser: &Browser| {
        let url = app.url("/account");
        let get = browser.http.get(url).send();
        async move { get.await.expect("GET").status() == 200 }
    };
    let logout = |hint: &str, uri: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", hint)
            .append_pair("post_logout_redirect_uri", uri)
            .append_pair("state", "bye-state")
            .finish();
        app.url(&format!("/logout?{query}"))
    };

    let browser = Browser::new();
    let hint = id_token_after_login(&app, &client, &browser).await;
    let registered_logout = browser.get(&logout(&hint, "https://app.example/bye")).await;
    assert_eq!(registered_logout.status(), 303);
    let to = location(&registered_logout).expect("redirect");
    assert!(to.starts_with("https://app.example/bye"));
    assert_eq!(params(&to)["state"], "bye-state");
    assert!(!signed_in(&browser).await, "the session is deleted");

    let browser = Browser::new();
    let hint = id_token_after_login(&app, &client, &browser).await;
    let unregistered = browser.get(&logout(&hint, "https://evil.example/bye")).await;
    assert_eq!(unregistered.status(), 200, "no redirect to an unregistered URI");
    assert!(location(&unregistered).is_none());
    assert!(!signed_in(&browser).await);

    let browser = Browser::new();
    id_token_after_login(&app, &client, &browser).await;
    let forged = browser
        .get(&logout("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "https://app.example/bye"))
        .await;
    assert_eq!(forged.status(), 400);
    assert!(location(&forged).is_none());
    assert!(signed_in(&browser).await, "a forged hint signs nobody out");
    let asked = browser.get(&app.url("/logout")).await.text().await.expect("page");
    assert!(asked.contains("Sign out?"), "without a hint a page asks first");
}

async fn id_token_after_login(
    app: &crate::helpers::TestApp,
    client: &(String, String),
    browser: &Browser,
) -> String {
    let (verifier, challenge) = crate::browser::pkce();
    let url = crate::browser::authorize_url(app, &client.0, &challenge, "openid", "s");
    let back = authorize_with_consent(browser, app, &url, "sam").await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value =
        crate::browser::redeem(app, client, &code, &verifier).await.json().await.expect("JSON");
    tokens["id_token"].as_str().expect("id token").to_owned()
}

/// The API a web client also calls: registered as its `audience`, so its user's access tokens
/// name it, and the issuer too when they carry `openid` (UserInfo still takes them).
const API: &str = "https://api.example.com";

/// Whether an independent relying party can run here; CI installs them (`.ci/run`: pip from
/// tests/interop/requirements.lock, `npm ci --prefix tests/interop`) and so must run them.
fn relying_party_installed(installed: bool, what: &str) -> bool {
    if !installed {
        assert!(std::env::var("CI").is_err(), "CI must install {what}");
        eprintln!("skipped: {what} is not installed here");
    }
    installed
}

/// Whether node and openid-client (`npm ci --prefix tests/interop`) are here; CI must have them.
pub(crate) fn openid_client_installed() -> bool {
    let interop = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop");
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let installed =
        node && std::path::Path::new(interop).join("node_modules/openid-client").is_dir();
    relying_party_installed(installed, "node with tests/interop/node_modules (npm ci)")
}

/// Runs a relying party script of tests/interop (`program script ISSUER CLIENT_ID
/// CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD [SCOPE]`) for `registered`, as `username`;
/// asserts it succeeded and returns the one JSON line it printed.
async fn run_relying_party(
    app: &crate::helpers::TestApp,
    registered: &Value,
    program: &'static str,
    script: &'static str,
    username: &str,
    scope: Option<&str>,
) -> Value {
    let mut args = vec![
        script.to_owned(),
        app.issuer.clone(),
        registered["client_id"].as_str().expect("id").to_owned(),
        registered["client_secret"].as_str().expect("secret").to_owned(),
        REDIRECT.to_owned(),
        username.to_owned(),
        crate::browser::PASSWORD.to_owned(),
    ];
    args.extend(scope.map(str::to_owned));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(program).args(&args).output().expect(program)
    })
    .await
    .expect("join");
    assert!(output.status.success(), "{program}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("one JSON line")
}

/// The access token the relying party used at UserInfo is for the API and for the issuer.
async fn assert_names_the_api_and_the_issuer(app: &crate::helpers::TestApp, verified: &Value) {
    let access = verified["access_token"].as_str().expect("the access token it used");
    let (_, claims) = crate::helpers::verify_with_jwks(app, access, API).await;
    let audiences = claims["aud"].as_array().expect("several audiences");
    assert!(audiences.contains(&json!(API)), "{audiences:?}");
    assert!(audiences.contains(&json!(app.issuer)), "{audiences:?}");
    assert_eq!(audiences.len(), 2, "{audiences:?}");
}

fn authlib_installed() -> bool {
    let importable = std::process::Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .output()
        .is_ok_and(|o| o.status.success());
    relying_party_installed(importable, "python3 with authlib and requests (pip)")
}

const AUTHLIB_RP: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/authlib_rp.py");

#[tokio::test]
async fn python_authlib_as_an_independent_relying_party_completes_the_flow() {
    if !authlib_installed() {
        return;
    }
    let app = spawn_app().await;
    let registered = app.create_client(json!({"client_name": "Python RP", "redirect_uris": [REDIRECT], "scope": "openid profile email"})).await;
    let user_id = user(&app, "pyla").await;

    let verified = run_relying_party(&app, &registered, "python3", AUTHLIB_RP, "pyla", None).await;

    assert_eq!(verified["sub"], user_id.as_str());
    assert_eq!(verified["email"], "pyla@example.com");
    assert!(verified["at_hash"].is_string());
}

#[tokio::test]
async fn python_authlib_as_an_independent_relying_party_with_an_api_audience() {
    if !authlib_installed() {
        return;
    }
    let app = spawn_app().await;
    let registered = app.create_client(json!({"client_name": "Python RP", "redirect_uris": [REDIRECT], "scope": "openid profile email", "audience": [API]})).await;
    let user_id = user(&app, "pyaud").await;

    let verified = run_relying_party(
        &app,
        &registered,
        "python3",
        AUTHLIB_RP,
        "pyaud",
        Some("openid profile"),
    )
    .await;

    assert_eq!(verified["sub"], user_id.as_str());
    assert_eq!(verified["claims"]["aud"], registered["client_id"], "the ID token is the client's");
    assert_eq!(verified["userinfo"]["preferred_username"], "pyaud", "UserInfo took the token");
    assert_eq!(verified["email"], Value::Null, "no `email` scope, no email");
    assert!(verified["at_hash"].is_string());
    assert_names_the_api_and_the_issuer(&app, &verified).await;
}

#[tokio::test]
async fn node_openid_client_as_an_independent_relying_party_with_an_api_audience() {
    if !openid_client_installed() {
        return;
    }
    let app = spawn_app().await;
    let registered = app.create_client(json!({"client_name": "Node RP", "redirect_uris": [REDIRECT], "scope": "openid profile email", "audience": [API]})).await;
    let user_id = user(&app, "noda").await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/openid_client_rp.mjs");

    let verified =
        run_relying_party(&app, &registered, "node", script, "noda", Some("openid profile")).await;

    assert_eq!(verified["sub"], user_id.as_str());
    assert_eq!(verified["claims"]["iss"], app.issuer.as_str());
    assert_eq!(verified["claims"]["aud"], registered["client_id"], "the ID token is the client's");
    assert_eq!(verified["userinfo"]["sub"], user_id.as_str());
    assert_eq!(verified["userinfo"]["preferred_username"], "noda", "UserInfo took the token");
    assert_eq!(verified["email"], Value::Null, "no `email` scope, no email");
    assert!(verified["at_hash"].is_string());
    assert_names_the_api_and_the_issuer(&app, &verified).await;
}

#[tokio::test]
async fn an_eddsa_client_gets_eddsa_access_tokens_but_rs256_id_tokens() {
    let app = spawn_app().await;
    let registered = app
        .create_client(json!({
            "redirect_uris": [REDIRECT],
            "scope": "openid profile",
            "access_token_signed_response_alg": "EdDSA",
        }))
        .await;
    let client = (
        registered["client_id"].as_str().expect("id").to_owned(),
        registered["client_secret"].as_str().expect("secret").to_owned(),
    );
    user(&app, "edna").await;
    let browser = Browser::new();
    let (verifier, challenge) = crate::browser::pkce();
    let url = crate::browser::authorize_url(&app, &client.0, &challenge, "openid profile", "s");
    let back = authorize_with_consent(&browser, &app, &url, "edna").await;
    let code = params(&location(&back).expect("code"))["code"].clone();

    let tokens: Value =
        crate::browser::redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");

    let access = tokens["access_token"].as_str().expect("access token");
    let (header, _) = crate::helpers::verify_with_jwks(&app, access, &app.issuer).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);
    let id_token = tokens["id_token"].as_str().expect("id token");
    let (header, claims) = crate::helpers::verify_with_jwks(&app, id_token, &client.0).await;
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256, "ID tokens stay RS256");
    assert_eq!(claims["at_hash"].as_str().map(str::len), Some(22));
    let userinfo = app.http.get(app.url("/userinfo")).bearer_auth(access).send().await;
    assert_eq!(userinfo.expect("GET").status(), 200, "UserInfo accepts the EdDSA token");
}
