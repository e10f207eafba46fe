//! Signed request objects (RFC 9101) at `/authorize` and `/par`: verified with the client's
//! registered keys, and then the only parameters that count.

use serde_json::{Value, json};

use crate::browser::{
    Browser, REDIRECT, authorize_with_consent, location, params, pkce, redeem, user,
    web_client_with,
};
use crate::client_jwt::request_object;
use crate::dpop::{DpopKey, redeem_with_proof};
use crate::helpers::{TestApp, jwt_claims, spawn_app};

/// The authorization request a request object carries.
fn inside(client_id: &str, challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid".into()),
        ("state", "inside".into()),
        ("nonce", "nonce-inside".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

fn authorize_with_object(app: &TestApp, client_id: &str, object: &str, outside: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request", object)
        .finish();
    app.url(&format!("/authorize?{query}{outside}"))
}

/// A client (with a secret) that signs its request objects with `key` under kid `k1`.
async fn signing_client(app: &TestApp, key: &DpopKey) -> (String, String) {
    web_client_with(app, "openid profile", json!({"jwks": {"keys": [key.registered("k1")]}})).await
}

#[tokio::test]
async fn a_signed_request_object_is_the_request_and_the_query_changes_nothing() {
    let app = spawn_app().await;
    let key = DpopKey::es256();
    let client = signing_client(&app, &key).await;
    user(&app, "rosa").await;
    let (verifier, challenge) = pkce();
    // prompt=login inside: answered by the login that follows, not asked again forever.
    let mut request = inside(&client.0, &challenge);
    request.push(("prompt", "login".into()));
    let object = request_object(&app, &key, "k1", &client.0, &request, json!({}));

    // RFC 9101 §6.3: parameters outside the object are ignored, whatever they say.
    let outside = "&scope=openid+profile&state=outside&response_type=code&prompt=none";
    let browser = Browser::new();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_with_object(&app, &client.0, &object, outside),
        "rosa",
    )
    .await;
    let answer = params(&location(&back).expect("a redirect to the client"));
    assert_eq!(answer["state"], "inside", "{answer:?}");
    let tokens: Value =
        redeem(&app, &client, &answer["code"], &verifier).await.json().await.expect("JSON");
    assert_eq!(tokens["scope"], "openid", "the object's scope, not the query's: {tokens}");
    let id_token = tokens["id_token"].as_str().expect("ID token");
    assert_eq!(jwt_claims(id_token)["nonce"], "nonce-inside");
}

#[tokio::test]
async fn a_request_object_can_be_pushed_and_is_verified_there() {
    let app = spawn_app().await;
    let key = DpopKey::ed25519();
    let client = signing_client(&app, &key).await;
    user(&app, "rafa").await;
    let (verifier, challenge) = pkce();
    let object =
        request_object(&app, &key, "k1", &client.0, &inside(&client.0, &challenge), json!({}));

    // A DPoP proof with the push binds the code to its key, request object or not.
    let bound = DpopKey::es256();
    let pushed = app
        .http
        .post(app.url("/par"))
        .basic_auth(&client.0, Some(&client.1))
        .header("DPoP", bound.proof("POST", &app.url("/par"), None))
        .form(&[("request", object.as_str())])
        .send()
        .await
        .expect("POST /par");
    assert_eq!(pushed.status(), 201);
    let request_uri = pushed.json::<Value>().await.expect("JSON")["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &client.0)
        .append_pair("request_uri", &request_uri)
        .finish();
    let browser = Browser::new();
    let back =
        authorize_with_consent(&browser, &app, &app.url(&format!("/authorize?{query}")), "rafa")
            .await;
    let answer = params(&location(&back).expect("a redirect to the client"));
    assert_eq!(answer["state"], "inside");
    let other_key = DpopKey::es256();
    let tokens = redeem_with_proof(&app, &client, &answer["code"], &verifier, &other_key).await;
    assert_eq!(tokens.status(), 400, "the code is bound to the push's DPoP key");
}

#[tokio::test]
async fn request_objects_that_do_not_verify_are_refused_at_authorize_and_par() {
    let app = spawn_app().await;
    let key = DpopKey::es256();
    let client = signing_client(&app, &key).await;
    let other = web_client_with(&app, "openid", json!({})).await;
    let (_, challenge) = pkce();
    let request = inside(&client.0, &challenge);
    let now = chrono::Utc::now().timestamp();
    let signed = |extra: Value| request_object(&app, &key, "k1", &client.0, &request, extra);
    let stranger = DpopKey::es256();

    let unsigned = {
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            b64(json!({"alg": "none"})),
            b64(json!({"iss": client.0, "aud": app.issuer, "exp": now + 60,
                "response_type": "code", "client_id": client.0, "redirect_uri": REDIRECT,
                "code_challenge": challenge, "code_challenge_method": "S256"}))
        )
    };
    let cases = [
        ("unsigned (alg none)", unsigned),
        (
            "signed by a key the client never registered",
            request_object(&app, &stranger, "k1", &client.0, &request, json!({})),
        ),
        ("for another audience", signed(json!({"aud": "https://elsewhere.example"}))),
        ("issued by another client", signed(json!({"iss": other.0}))),
        ("naming another client_id", signed(json!({"client_id": other.0}))),
        ("expired", signed(json!({"exp": now - 60, "nbf": now - 120}))),
        ("without exp", signed(json!({"exp": null}))),
        ("valid for two hours", signed(json!({"exp": now + 7200}))),
        ("not valid yet", signed(json!({"nbf": now + 120}))),
        ("typed as an access token", signed(json!({"header.typ": "at+jwt"}))),
        ("with a crit header", signed(json!({"header.crit": ["exp"]}))),
        ("nesting a request_uri", signed(json!({"request_uri": "https://attacker.example/r"}))),
        ("malformed", "eyJ.e30.".to_owned()),
    ];
    for (case, object) in cases {
        let page = Browser::new().get(&authorize_with_object(&app, &client.0, &object, "")).await;
        assert_eq!(page.status(), 400, "/authorize, {case}");
        assert!(location(&page).is_none(), "/authorize never redirects, {case}");

        let pushed = app
            .http
            .post(app.url("/par"))
            .basic_auth(&client.0, Some(&client.1))
            .form(&[("request", object.as_str())])
            .send()
            .await
            .expect("POST /par");
        assert_eq!(pushed.status(), 400, "/par, {case}");
        let body: Value = pushed.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_request_object", "/par, {case}: {body}");
    }
    // The outer client_id names whose keys verify: another client's object for this one
    // is refused even when signed correctly by that other client's key.
    let page =
        Browser::new().get(&authorize_with_object(&app, &other.0, &signed(json!({})), "")).await;
    assert_eq!(page.status(), 400, "an object presented under another client_id");
}

#[tokio::test]
async fn discovery_advertises_request_objects_by_value_only() {
    let app = spawn_app().await;
    let metadata: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    assert_eq!(metadata["request_parameter_supported"], true);
    assert_eq!(metadata["request_uri_parameter_supported"], false, "only PAR's request_uri");
    let algs = metadata["request_object_signing_alg_values_supported"].as_array().expect("algs");
    for alg in ["PS256", "ES256", "EdDSA", "RS256"] {
        assert!(algs.contains(&json!(alg)), "{alg}");
    }
    assert!(!algs.contains(&json!("none")) && !algs.contains(&json!("HS256")));
}
