//! The security regression suite: attacks on every surface, each a table of cases that must
//! all be refused, next to a control case that must pass (so a refusal means something).
//! RFC 9700 (OAuth security BCP), RFC 8725 (JWT BCP), OWASP ASVS 5.0 V6, V7, V9 and V10.
//!
//! Brute force and identical answers for unknown users live in `abuse.rs`; client assertion
//! attacks (foreign key, audience, lifetime, replay) in `client_auth.rs`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use castellan::oauth::jwk::Algorithm;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::Response;
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, REDIRECT, authorize_url, authorize_with_consent, input, location, params,
    pkce, redeem, user, web_client,
};
use crate::helpers::{ServerProcess, TestApp, as_refs, process_env, spawn_app};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    let mut next = || it.next().unwrap_or_default().to_owned();
    (next(), next(), next())
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

/// Our active RS256 public key, in the encodings an attacker might use as an HMAC secret.
async fn public_key_encodings(app: &TestApp) -> Vec<(&'static str, Vec<u8>)> {
    let jwks = app.jwks().await;
    let kid = app.keys.active_kid(Algorithm::RS256);
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("active key")
        .clone();
    let int = |m: &str| {
        rsa::BigUint::from_bytes_be(
            &URL_SAFE_NO_PAD.decode(jwk[m].as_str().expect("member")).expect("b64"),
        )
    };
    let key = rsa::RsaPublicKey::new(int("n"), int("e")).expect("key");
    vec![
        ("PKCS#1 DER", key.to_pkcs1_der().expect("der").as_bytes().to_vec()),
        ("SPKI DER", key.to_public_key_der().expect("der").as_bytes().to_vec()),
        ("PKCS#1 PEM", key.to_pkcs1_pem(LineEnding::LF).expect("pem").into_bytes()),
        ("SPKI PEM", key.to_public_key_pem(LineEnding::LF).expect("pem").into_bytes()),
        ("JWK JSON", jwk.to_string().into_bytes()),
        ("modulus bytes", URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("n")),
    ]
}

/// Forgeries of a token with these `claims` and `typ`, none of which may pass anywhere we
/// accept a JWT (RFC 8725 §2, §3.1–3.11). `with_audience` adds cases on `aud`.
async fn forgeries(
    app: &TestApp,
    claims: &Value,
    typ: &str,
    with_audience: bool,
) -> Vec<(String, String)> {
    let genuine = app.keys.sign(Algorithm::RS256, typ, claims).expect("sign");
    let (header, payload, signature) = parts(&genuine);
    let kid = app.keys.active_kid(Algorithm::RS256);
    let mut cases = Vec::new();
    let mut add = |name: String, token: String| cases.push((name, token));

    // alg none in any case, with and without a signature or kid.
    for none in ["none", "None", "NONE", "nOnE"] {
        let h = b64(json!({"alg": none, "typ": typ, "kid": kid}).to_string().as_bytes());
        add(format!("alg {none}"), format!("{h}.{payload}."));
        add(format!("alg {none} with the genuine signature"), format!("{h}.{payload}.{signature}"));
    }
    let h = b64(json!({"alg": "none"}).to_string().as_bytes());
    add("alg none, no kid or typ".into(), format!("{h}.{payload}."));

    // HS256 keyed with our public key in every encoding.
    for (encoding, secret) in public_key_encodings(app).await {
        let mut hs = Header::new(jsonwebtoken::Algorithm::HS256);
        hs.typ = Some(typ.into());
        hs.kid = Some(kid.clone());
        let token =
            jsonwebtoken::encode(&hs, claims, &EncodingKey::from_secret(&secret)).expect("hs256");
        add(format!("HS256 keyed with the public key as {encoding}"), token);
    }

    // The header's alg switched, the genuine signature kept.
    for alg in ["RS384", "RS512", "PS256", "ES256", "EdDSA", "HS256"] {
        let mut h = decode(&header);
        h["alg"] = json!(alg);
        add(
            format!("alg switched to {alg}"),
            format!("{}.{payload}.{signature}", b64(h.to_string().as_bytes())),
        );
    }
    // Our kid of another algorithm, with the RSA signature.
    for other in [Algorithm::ES256, Algorithm::EdDSA] {
        let mut h = decode(&header);
        h["kid"] = json!(app.keys.active_kid(other));
        add(
            format!("kid of our {other:?} key"),
            format!("{}.{payload}.{signature}", b64(h.to_string().as_bytes())),
        );
    }

    // Stripped, truncated or tampered.
    add("signature stripped".into(), format!("{header}.{payload}."));
    add("signature part missing".into(), format!("{header}.{payload}"));
    add(
        "signature truncated".into(),
        format!("{header}.{payload}.{}", &signature[..signature.len() / 2]),
    );
    let mut flipped = URL_SAFE_NO_PAD.decode(&signature).expect("sig");
    flipped[10] ^= 1;
    add("one signature bit flipped".into(), format!("{header}.{payload}.{}", b64(&flipped)));
    let mut tampered = claims.clone();
    tampered["scope"] = json!(format!("{} admin", claims["scope"].as_str().unwrap_or_default()));
    tampered["sub"] = json!("someone-else");
    add(
        "payload tampered".into(),
        format!("{header}.{}.{signature}", b64(tampered.to_string().as_bytes())),
    );
    let mut h = decode(&header);
    h["extra"] = json!("x");
    add(
        "header tampered".into(),
        format!("{}.{payload}.{signature}", b64(h.to_string().as_bytes())),
    );
    add("four parts".into(), format!("{genuine}.{signature}"));
    add("empty".into(), String::new());
    add("garbage".into(), "not.a.jwt".into());

    // Keys of an attacker: named by kid tricks, or carried in the header (jwk, jku, x5u).
    let attacker = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("key");
    let attacker_key = EncodingKey::from_rsa_der(attacker.to_pkcs1_der().expect("der").as_bytes());
    let attacker_public = rsa::RsaPublicKey::from(&attacker);
    let attacker_jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(json!({
        "kty": "RSA", "alg": "RS256", "kid": "attacker",
        "n": b64(&rsa::traits::PublicKeyParts::n(&attacker_public).to_bytes_be()),
        "e": b64(&rsa::traits::PublicKeyParts::e(&attacker_public).to_bytes_be()),
    }))
    .expect("jwk");
    let sign_as_attacker = |name: &str, edit: &dyn Fn(&mut Header)| {
        let mut h = Header::new(jsonwebtoken::Algorithm::RS256);
        h.typ = Some(typ.into());
        edit(&mut h);
        let token = jsonwebtoken::encode(&h, claims, &attacker_key).expect("sign");
        (name.to_owned(), token)
    };
    let attacker_cases = [
        sign_as_attacker("kid path traversal", &|h| {
            h.kid = Some("../../../../../../etc/passwd".into())
        }),
        sign_as_attacker("kid /dev/null", &|h| h.kid = Some("/dev/null".into())),
        sign_as_attacker("kid empty", &|h| h.kid = Some(String::new())),
        sign_as_attacker("kid SQL", &|h| h.kid = Some("' OR '1'='1".into())),
        sign_as_attacker("kid of 8 KiB", &|h| h.kid = Some("k".repeat(8192))),
        sign_as_attacker("our kid, attacker's key", &|h| h.kid = Some(kid.clone())),
        sign_as_attacker("embedded jwk", &|h| {
            h.kid = Some("attacker".into());
            h.jwk = Some(attacker_jwk.clone());
        }),
        sign_as_attacker("jku to an attacker's JWKS", &|h| {
            h.kid = Some("attacker".into());
            h.jku = Some("http://127.0.0.1:9/jwks.json".into());
        }),
        sign_as_attacker("x5u to an attacker's certificate", &|h| {
            h.kid = Some("attacker".into());
            h.x5u = Some("http://127.0.0.1:9/cert.pem".into());
        }),
    ];
    for (name, token) in attacker_cases {
        add(name, token);
    }

    // Signed by our own key, but wrong in type, issuer, audience or time.
    let now = chrono::Utc::now().timestamp();
    let ours =
        |claims: &Value, typ: &str| app.keys.sign(Algorithm::RS256, typ, claims).expect("sign");
    for wrong_typ in ["JWT", "", "application/jwt", "rt+jwt"] {
        if wrong_typ != typ {
            add(format!("typ {wrong_typ:?}"), ours(claims, wrong_typ));
        }
    }
    let with = |member: &str, value: Value| {
        let mut c = claims.clone();
        c[member] = value;
        c
    };
    add("foreign iss".into(), ours(&with("iss", json!("https://evil.example")), typ));
    add(
        "iss with a trailing slash".into(),
        ours(&with("iss", json!(format!("{}/", app.issuer))), typ),
    );
    if with_audience {
        add("foreign aud".into(), ours(&with("aud", json!("https://api.example.com")), typ));
    }
    add("expired beyond the leeway".into(), ours(&with("exp", json!(now - 60)), typ));
    add("not valid for another minute".into(), ours(&with("nbf", json!(now + 60)), typ));
    let mut no_exp = claims.clone();
    no_exp.as_object_mut().expect("object").remove("exp");
    add("no exp".into(), ours(&no_exp, typ));
    cases
}

/// The same claims, in time within the 5 s leeway: these must pass (docs/REFERENCE.md §4).
fn within_leeway(app: &TestApp, claims: &Value, typ: &str) -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().timestamp();
    let mut expired = claims.clone();
    expired["exp"] = json!(now - 2);
    let mut early = claims.clone();
    early["nbf"] = json!(now + 2);
    vec![
        ("expired 2 s ago", app.keys.sign(Algorithm::RS256, typ, &expired).expect("sign")),
        ("valid in 2 s", app.keys.sign(Algorithm::RS256, typ, &early).expect("sign")),
    ]
}

/// A refresh_token grant by `client`.
async fn refresh_grant(app: &TestApp, client: &(String, String), token: &str) -> Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    app.token_basic(&client.0, &client.1, &form).await
}

async fn admin_status(app: &TestApp, token: &str) -> u16 {
    let request = app.http.get(app.url("/admin/clients")).bearer_auth(token);
    request.send().await.expect("GET").status().as_u16()
}

async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    let request = app.http.get(app.url("/userinfo")).bearer_auth(token);
    request.send().await.expect("GET").status().as_u16()
}

async fn introspect(app: &TestApp, caller: &(String, String), token: &str) -> Value {
    let request = app.http.post(app.url("/introspect")).basic_auth(&caller.0, Some(&caller.1));
    request.form(&[("token", token)]).send().await.expect("POST").json().await.expect("JSON")
}

/// A user's tokens from the whole browser flow: (web client, access, refresh, ID token).
async fn user_tokens(app: &TestApp, username: &str) -> ((String, String), Value) {
    let client = web_client(app, "Attacked", "openid profile offline_access").await;
    user(app, username).await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let url = authorize_url(app, &client.0, &challenge, "openid profile offline_access", "s");
    let back = authorize_with_consent(&browser, app, &url, username).await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens = redeem(app, &client, &code, &verifier).await.json().await.expect("JSON");
    (client, tokens)
}

#[tokio::test]
async fn forged_jwts_are_refused_at_the_admin_api() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let claims = decode(&parts(&admin).1);
    assert_eq!(admin_status(&app, &admin).await, 200, "control: the genuine token");

    let cases = forgeries(&app, &claims, "at+jwt", true).await;
    for (name, token) in &cases {
        assert_eq!(admin_status(&app, token).await, 401, "{name}");
    }
    for (name, token) in within_leeway(&app, &claims, "at+jwt") {
        assert_eq!(admin_status(&app, &token).await, 200, "{name}");
    }
    println!("admin API: {} forged tokens refused", cases.len());
}

#[tokio::test]
async fn forged_jwts_are_refused_at_userinfo_and_introspection() {
    let app = spawn_app().await;
    let (_, tokens) = user_tokens(&app, "mallory").await;
    let access = tokens["access_token"].as_str().expect("access");
    let claims = decode(&parts(access).1);
    let resource_server = app.resource_server().await;
    assert_eq!(userinfo_status(&app, access).await, 200, "control");
    assert_eq!(introspect(&app, &resource_server, access).await["active"], true, "control");

    let cases = forgeries(&app, &claims, "at+jwt", true).await;
    for (name, token) in &cases {
        assert_eq!(userinfo_status(&app, token).await, 401, "userinfo: {name}");
        let answer = introspect(&app, &resource_server, token).await;
        // Introspection answers for every audience: a foreign `aud` is still our token; an
        // empty `token` is a missing parameter (400).
        if name != "foreign aud" && name != "empty" {
            assert_eq!(answer, json!({"active": false}), "introspection: {name}");
        }
    }
    for (name, token) in within_leeway(&app, &claims, "at+jwt") {
        assert_eq!(userinfo_status(&app, &token).await, 200, "{name}");
    }
    println!("userinfo and introspection: {} forged tokens refused", cases.len());
}

#[tokio::test]
async fn tokens_of_one_type_never_pass_as_another() {
    let app = spawn_app().await;
    let (client, tokens) = user_tokens(&app, "trudy").await;
    let resource_server = app.resource_server().await;
    let id_token = tokens["id_token"].as_str().expect("id");
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let access = tokens["access_token"].as_str().expect("access");

    for (name, token) in [("ID token", id_token), ("refresh token", refresh)] {
        assert_eq!(userinfo_status(&app, token).await, 401, "{name} at UserInfo");
        assert_eq!(admin_status(&app, token).await, 401, "{name} at the admin API");
    }
    assert_eq!(introspect(&app, &resource_server, id_token).await, json!({"active": false}));
    // An access token or ID token is no refresh token.
    for (name, token) in [("access token", access), ("ID token", id_token)] {
        let response = refresh_grant(&app, &client, token).await;
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_grant", "{name} as a refresh token");
    }
    // An access token is no ID token hint.
    let logout = Browser::new().get(&app.url(&format!("/logout?id_token_hint={access}"))).await;
    assert_eq!(logout.status(), 400, "an access token as id_token_hint");
}

#[tokio::test]
async fn forged_refresh_tokens_are_invalid_grant_and_consume_nothing() {
    let app = spawn_app().await;
    let (client, tokens) = user_tokens(&app, "oscar").await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let claims = decode(&parts(refresh).1);
    let (header, payload, signature) = parts(refresh);
    let mut cases: Vec<(String, String)> = Vec::new();
    for none in ["none", "None", "NONE"] {
        let h = b64(json!({"alg": none, "typ": "JWT"}).to_string().as_bytes());
        cases.push((format!("alg {none}"), format!("{h}.{payload}.")));
    }
    for (encoding, secret) in public_key_encodings(&app).await {
        let token = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(&secret),
        )
        .expect("hs256");
        cases.push((format!("HS256 keyed with the public key as {encoding}"), token));
    }
    for typ in ["JWT", "at+jwt"] {
        cases.push((
            format!("RS256 by our key, typ {typ}"),
            app.keys.sign(Algorithm::RS256, typ, &claims).expect("sign"),
        ));
    }
    let mut tampered = claims.clone();
    tampered["scope"] = json!("openid profile offline_access admin");
    cases.push((
        "payload tampered".into(),
        format!("{header}.{}.{signature}", b64(tampered.to_string().as_bytes())),
    ));
    cases.push(("signature stripped".into(), format!("{header}.{payload}.")));
    let mut h = decode(&header);
    h["alg"] = json!("HS512");
    cases.push((
        "alg switched to HS512".into(),
        format!("{}.{payload}.{signature}", b64(h.to_string().as_bytes())),
    ));

    for (name, token) in &cases {
        let response = refresh_grant(&app, &client, token).await;
        assert_eq!(response.status(), 400, "{name}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_grant", "{name}");
    }
    let genuine = refresh_grant(&app, &client, refresh).await;
    assert_eq!(genuine.status(), 200, "the genuine token was not consumed by the forgeries");
    println!("refresh grant: {} forged tokens refused", cases.len());
}

#[tokio::test]
async fn forged_id_token_hints_never_log_anyone_out_or_redirect() {
    let app = spawn_app().await;
    let registered = app
        .create_client(json!({
            "redirect_uris": [REDIRECT],
            "post_logout_redirect_uris": ["https://app.example/bye"],
            "scope": "openid",
        }))
        .await;
    let client = (
        registered["client_id"].as_str().expect("id").to_owned(),
        registered["client_secret"].as_str().expect("secret").to_owned(),
    );
    user(&app, "peggy").await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let back = authorize_with_consent(&browser, &app, &url, "peggy").await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    let hint = tokens["id_token"].as_str().expect("id token");
    let claims = decode(&parts(hint).1);
    let logout = |hint: String| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id_token_hint", &hint)
            .append_pair("post_logout_redirect_uri", "https://app.example/bye")
            .finish();
        app.url(&format!("/logout?{query}"))
    };

    let cases = forgeries(&app, &claims, "JWT", false).await;
    let mut refused = 0;
    for (name, token) in &cases {
        // An expired hint is still a hint (OIDC RP-Initiated Logout §2): it may log out.
        if name == "expired beyond the leeway" || name == "no exp" {
            continue;
        }
        let response = browser.get(&logout(token.clone())).await;
        let redirected = location(&response).is_some_and(|l| l.starts_with("https://app.example"));
        assert!(!redirected, "{name}: redirected with a forged hint");
        refused += 1;
    }
    let account = browser.get(&app.url("/account")).await;
    assert_eq!(account.status(), 200, "still signed in after every forgery");

    let genuine = browser.get(&logout(hint.to_owned())).await;
    assert_eq!(location(&genuine).as_deref(), Some("https://app.example/bye"), "control");
    println!("logout: {refused} forged hints refused");
}

/// Redirect URIs are compared as exact strings (docs/REFERENCE.md §5, RFC 9700 §4.1.3): every variant of
/// a registered URI is refused with an error page, never a redirect.
#[tokio::test]
async fn every_variant_of_a_registered_redirect_uri_is_refused_without_redirecting() {
    let app = spawn_app().await;
    let client = web_client(&app, "Exact", "openid").await;
    let (_, challenge) = pkce();
    let variants = [
        "https://app.example/cb/",
        "https://app.example/cb//",
        "https://APP.example/cb",
        "https://app.example/CB",
        "HTTPS://app.example/cb",
        "http://app.example/cb",
        "https://app.example:443/cb",
        "https://app.example:8443/cb",
        "https://app.example/cb?x=1",
        "https://app.example/cb?",
        "https://app.example/cb#frag",
        "https://app.example/cb#",
        "https://app.example/%63b",
        "https://app.example/c%62",
        "https://app.example/cb%2F",
        "https://app.example/cb%00",
        "https://app.example/cb/../cb",
        "https://app.example/./cb",
        "https://app.example/cb/..%2F..%2Fevil",
        "https://app.example/x/../cb",
        "https://evil.example@app.example/cb",
        "https://app.example@evil.example/cb",
        "https://app.example.evil.example/cb",
        "https://app.example%2Eevil.example/cb",
        "https://evil.example/cb",
        "https://evil.example/https://app.example/cb",
        "//evil.example/cb",
        "https:/app.example/cb",
        "https:app.example/cb",
        " https://app.example/cb",
        "https://app.example/cb ",
        "https://app.example/cb\r\nLocation: https://evil.example",
        "https://app.example\\@evil.example/cb",
        "javascript:alert(1)//https://app.example/cb",
        "data:text/html,<script>alert(1)</script>",
    ];
    for variant in variants {
        let url = format!(
            "{}&redirect_uri={}",
            authorize_url(&app, &client.0, &challenge, "openid", "s").replace(
                &format!(
                    "redirect_uri={}",
                    url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>()
                ),
                "x=y"
            ),
            url::form_urlencoded::byte_serialize(variant.as_bytes()).collect::<String>()
        );
        let response = Browser::new().get(&url).await;
        assert_eq!(response.status(), 400, "{variant:?}");
        assert!(location(&response).is_none(), "{variant:?} redirected");
    }
    println!("redirect URI: {} variants refused", variants.len());
}

#[tokio::test]
async fn open_redirects_through_login_and_logout_go_nowhere() {
    let app = spawn_app().await;
    user(&app, "victor").await;
    let targets = [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "https:evil.example",
        "/account@evil.example",
        "javascript:alert(1)",
        "/authorize/../../evil",
        "%2F%2Fevil.example",
    ];
    for target in targets {
        let browser = Browser::new();
        let page = browser
            .get(&app.url(&format!(
                "/login?return_to={}",
                url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
            )))
            .await
            .text()
            .await
            .expect("page");
        assert_eq!(input(&page, "return_to").as_deref(), Some("/account"), "{target}");
        let csrf = input(&page, "csrf_token").expect("csrf");
        let form = [
            ("username", "victor"),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("return_to", target),
        ];
        let response = browser.post(&app.url("/login"), &form).await;
        assert_eq!(response.status(), 303, "{target}");
        assert_eq!(location(&response).as_deref(), Some("/account"), "{target}");

        let logout = browser
            .get(&app.url(&format!(
                "/logout?post_logout_redirect_uri={}",
                url::form_urlencoded::byte_serialize(target.as_bytes()).collect::<String>()
            )))
            .await;
        assert!(location(&logout).is_none(), "logout to {target}");
    }
    println!("open redirect: {} targets tried at login and logout", targets.len() * 2);
}

#[tokio::test]
async fn pkce_is_required_s256_only_and_well_formed() {
    let app = spawn_app().await;
    let client = web_client(&app, "Pkce", "openid").await;
    user(&app, "wendy").await;
    let base = |extra: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.0)
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid")
            .append_pair("state", "s")
            .finish();
        app.url(&format!("/authorize?{query}{extra}"))
    };
    let (verifier, challenge) = pkce();
    let refused_challenges = [
        String::new(),
        format!("&code_challenge={challenge}&code_challenge_method=plain"),
        format!("&code_challenge={challenge}&code_challenge_method=S512"),
        format!("&code_challenge={challenge}&code_challenge_method=s256"),
        format!("&code_challenge={}&code_challenge_method=S256", &challenge[..42]),
        format!("&code_challenge={}&code_challenge_method=S256", "a".repeat(129)),
        format!("&code_challenge={}%2B%2F%3D&code_challenge_method=S256", &challenge[..40]),
        format!("&code_challenge={}%20&code_challenge_method=S256", &challenge[..42]),
        "&code_challenge_method=S256".to_owned(),
        format!(
            "&code_challenge={challenge}&code_challenge={challenge}&code_challenge_method=S256"
        ),
    ];
    for extra in &refused_challenges {
        let response = Browser::new().get(&base(extra)).await;
        let refused = match location(&response) {
            Some(to) => to.contains("error=invalid_request") && !to.contains("code="),
            None => response.status() == 400,
        };
        assert!(refused, "{extra}");
    }

    // A code bound to S256 is redeemed only with its verifier: not without one, not with the
    // challenge itself (a downgrade to plain), not with a malformed or another verifier.
    // Each wrong attempt gets a fresh code (a failed attempt burns the code it names).
    let browser = Browser::new();
    let fresh_code = || async {
        let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
        let back = authorize_with_consent(&browser, &app, &url, "wendy").await;
        params(&location(&back).expect("code"))["code"].clone()
    };
    let wrong_verifiers = [
        None,
        Some(challenge.clone()),
        Some(verifier[..42].to_owned()),
        Some(format!("{verifier}{}", "a".repeat(129 - verifier.len()))),
        Some(format!("{}+", &verifier[..verifier.len() - 1])),
        Some(pkce().0),
    ];
    for wrong in &wrong_verifiers {
        let code = fresh_code().await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        if let Some(v) = wrong {
            form.push(("code_verifier", v.as_str()));
        }
        let response = app.token_basic(&client.0, &client.1, &form).await;
        assert_eq!(response.status(), 400, "{wrong:?}");
        let body: Value = response.json().await.expect("JSON");
        let error = body["error"].as_str();
        assert!(matches!(error, Some("invalid_grant" | "invalid_request")), "{wrong:?}");
    }
    let redeemed = redeem(&app, &client, &fresh_code().await, &verifier).await;
    assert_eq!(redeemed.status(), 200, "control: the right verifier");
    println!("PKCE: {} cases refused", refused_challenges.len() + wrong_verifiers.len());
}

#[tokio::test]
async fn a_code_is_redeemed_only_by_its_client_with_its_redirect_uri() {
    let app = spawn_app().await;
    let victim = web_client(&app, "Victim", "openid").await;
    let attacker = web_client(&app, "Attacker", "openid").await;
    user(&app, "ivan").await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &victim.0, &challenge, "openid", "s"),
        "ivan",
    )
    .await;
    let code = params(&location(&back).expect("code"))["code"].clone();

    let injected = redeem(&app, &attacker, &code, &verifier).await;
    assert_eq!(injected.status(), 400, "another client's code");
    let body: Value = injected.json().await.expect("JSON");
    assert_eq!(body["error"], "invalid_grant");
    let other_redirect = app
        .token_basic(
            &victim.0,
            &victim.1,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "https://app.example/other"),
                ("code_verifier", &verifier),
            ],
        )
        .await;
    assert_eq!(other_redirect.status(), 400, "another redirect_uri");
}

const XSS: [&str; 6] = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "'><svg onload=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>alert(1)</script>",
    "{{7*7}}${7*7}<%= 7*7 %>",
];

fn assert_not_reflected_raw(name: &str, body: &str) {
    for marker in ["<script>alert(1)", "<img src=x", "<svg onload", "onerror=alert(1)>"] {
        assert!(!body.contains(marker), "{name}: raw {marker:?} reflected");
    }
    // Had one of the payload's three template expressions been evaluated, a 49 would stand
    // next to the others (a bare "49" also occurs in random ids and tokens).
    for evaluated in ["49${7*7}", "}}49", "4949", "49&lt;%", "49<%"] {
        assert!(!body.contains(evaluated), "{name}: a template expression was evaluated");
    }
}

async fn headers_clean(name: &str, response: &Response) {
    for (header, value) in response.headers() {
        assert_ne!(header.as_str(), "x-injected", "{name}: CRLF injected a header");
        assert!(!value.as_bytes().contains(&b'\n'), "{name}: a header value holds a newline");
    }
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert!(cookies.iter().all(|c| !c.to_str().unwrap_or("").starts_with("injected")), "{name}");
}

#[tokio::test]
async fn xss_and_crlf_payloads_are_never_reflected_raw() {
    let app = spawn_app().await;
    let client = web_client(&app, "Reflect", "openid").await;
    user(&app, "xavier").await;
    let (_, challenge) = pkce();
    let crlf = "x\r\nX-Injected: 1\r\nSet-Cookie: injected=1";
    let mut tried = 0;
    for payload in XSS.iter().copied().chain([crlf]) {
        let encoded: String = url::form_urlencoded::byte_serialize(payload.as_bytes()).collect();
        let urls = [
            // Error pages (unknown client, bad redirect URI) and error redirects (state, scope).
            format!("/authorize?response_type=code&client_id={encoded}&redirect_uri={encoded}"),
            format!("/authorize?response_type=code&client_id={}&redirect_uri={encoded}", client.0),
            format!(
                "{}&scope={encoded}",
                authorize_url(&app, &client.0, &challenge, "openid", payload)
                    .trim_start_matches(&app.address)
            ),
            format!("/authorize?response_type={encoded}&client_id={}&state={encoded}", client.0),
            format!("/login?login_hint={encoded}&return_to={encoded}"),
            format!("/logout?state={encoded}&post_logout_redirect_uri={encoded}"),
            format!("/logout?id_token_hint={encoded}"),
            format!("/consent?request={encoded}"),
            format!("/nowhere/{encoded}"),
        ];
        for path in urls {
            let response = Browser::new().get(&app.url(&path)).await;
            assert!(response.status().as_u16() < 500, "{path}");
            headers_clean(&path, &response).await;
            if let Some(to) = location(&response) {
                assert!(
                    !to.contains('<') && !to.contains('"') && !to.contains(' '),
                    "{path}: {to}"
                );
            }
            assert_not_reflected_raw(&path, &response.text().await.expect("body"));
            tried += 1;
        }
        // The username of a failed login is shown again in the form.
        let browser = Browser::new();
        let page = browser.get(&app.url("/login")).await.text().await.expect("page");
        let csrf = input(&page, "csrf_token").expect("csrf");
        let form = [
            ("username", payload),
            ("password", "x"),
            ("csrf_token", &csrf),
            ("return_to", payload),
        ];
        let response = browser.post(&app.url("/login"), &form).await;
        headers_clean("login form", &response).await;
        assert_not_reflected_raw("login form", &response.text().await.expect("body"));
        // JSON endpoints never echo input either.
        let token = app.token_basic(&client.0, &client.1, &[("grant_type", payload)]).await;
        assert_not_reflected_raw("token", &token.text().await.expect("body"));
        tried += 2;
    }
    println!("XSS/CRLF: {tried} reflections checked");
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_a_login_never_keeps_a_planted_session() {
    let app = spawn_app().await;
    let client = web_client(&app, "Csrf", "openid").await;
    user(&app, "carol").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let login = browser.follow(&app, browser.get(&url).await).await.text().await.expect("page");
    let csrf = input(&login, "csrf_token").expect("csrf");
    let return_to = input(&login, "return_to").expect("return_to");

    // Another browser's token, none, or a tampered one: refused.
    let other = Browser::new().get(&app.url("/login")).await.text().await.expect("page");
    let foreign = input(&other, "csrf_token").expect("csrf");
    for bad in [None, Some(foreign.as_str()), Some("x"), Some(&csrf[..csrf.len() - 1])] {
        let mut form =
            vec![("username", "carol"), ("password", PASSWORD), ("return_to", return_to.as_str())];
        if let Some(bad) = bad {
            form.push(("csrf_token", bad));
        }
        let response = browser.post(&app.url("/login"), &form).await;
        assert_eq!(response.status(), 400, "login with csrf {bad:?}");
    }

    // A session id planted before login (fixation) is never the one after it.
    let planted = "planted-session-id-0123456789abcdef";
    let cookie_name = if app.issuer.starts_with("https") {
        "__Host-castellan_session"
    } else {
        "castellan_session"
    };
    let fixed = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = fixed
        .get(app.url("/login"))
        .header("cookie", format!("{cookie_name}={planted}"))
        .send()
        .await
        .expect("GET");
    let pre = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect::<Vec<_>>();
    let page = page.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf");
    let pre_cookie = pre.iter().find_map(|c| c.split(';').next()).unwrap_or_default().to_owned();
    let logged_in = fixed
        .post(app.url("/login"))
        .header("cookie", format!("{cookie_name}={planted}; {pre_cookie}"))
        .form(&[
            ("username", "carol"),
            ("password", PASSWORD),
            ("csrf_token", &csrf),
            ("return_to", "/account"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(logged_in.status(), 303);
    let session = logged_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with(&format!("{cookie_name}=")))
        .expect("a new session cookie")
        .to_owned();
    assert!(!session.contains(planted), "the planted id was kept");
}

/// Runs the whole life of a user's tokens against a server process with debug logs, then
/// looks for every secret and token in what it logged (ASVS V7, V16: no secrets in logs).
#[tokio::test]
async fn secrets_and_tokens_never_reach_the_logs() {
    let db = crate::helpers::TestDatabase::create().await;
    let mut env = process_env(&db);
    env.push(("CASTELLAN_LOG", "debug".into()));
    let server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let base = server.address.clone();
    let (admin_id, admin_secret) = crate::helpers::cli_admin(&db);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut secrets: Vec<(String, String)> = Vec::new();
    secrets.push(("admin client secret".into(), admin_secret.clone()));

    let token = |id: String, secret: String, form: Vec<(&'static str, String)>| {
        let request = http.post(format!("{base}/token")).basic_auth(id, Some(secret)).form(&form);
        async move { request.send().await.expect("POST").json::<Value>().await.expect("JSON") }
    };
    let admin = token(
        admin_id.clone(),
        admin_secret.clone(),
        vec![("grant_type", "client_credentials".into())],
    )
    .await;
    let admin = admin["access_token"].as_str().expect("admin token").to_owned();
    secrets.push(("admin access token".into(), admin.clone()));
    let created: Value = http
        .post(format!("{base}/admin/clients"))
        .bearer_auth(&admin)
        .json(&json!({"redirect_uris": [REDIRECT], "grant_types": ["authorization_code", "refresh_token"], "scope": "openid offline_access"}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let client = (
        created["client_id"].as_str().expect("id").to_owned(),
        created["client_secret"].as_str().expect("secret").to_owned(),
    );
    secrets.push(("web client secret".into(), client.1.clone()));
    let password = "correct horse battery staple 42";
    secrets.push(("password".into(), password.into()));
    let made = http
        .post(format!("{base}/admin/users"))
        .bearer_auth(&admin)
        .json(&json!({"username": "logan", "password": password}))
        .send()
        .await
        .expect("POST");
    assert_eq!(made.status(), 201);

    // The browser flow, by hand: authorize, login, consent, code.
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    secrets.push(("PKCE verifier".into(), verifier.clone()));
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.0)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid offline_access")
        .append_pair("state", "st")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let mut response = browser.get(&format!("{base}/authorize?{query}")).await;
    let mut code = None;
    for _ in 0..8 {
        if let Some(to) = location(&response) {
            if to.starts_with(REDIRECT) {
                code = Some(params(&to)["code"].clone());
                break;
            }
            let to = if to.starts_with('/') { format!("{base}{to}") } else { to };
            response = browser.get(&to).await;
            continue;
        }
        let page = response.text().await.expect("page");
        let csrf = input(&page, "csrf_token").expect("csrf");
        secrets.push(("CSRF token".into(), csrf.clone()));
        response = if page.contains(r#"name="password""#) {
            let return_to = input(&page, "return_to").expect("return_to");
            let form = [
                ("username", "logan"),
                ("password", password),
                ("csrf_token", &csrf),
                ("return_to", &return_to),
            ];
            let answer = browser.post(&format!("{base}/login"), &form).await;
            for cookie in answer.headers().get_all("set-cookie") {
                let value = cookie.to_str().expect("ascii").split(';').next().unwrap_or_default();
                if let Some((_, v)) = value.split_once('=')
                    && v.len() > 16
                {
                    secrets.push(("session cookie".into(), v.to_owned()));
                }
            }
            answer
        } else {
            let mut form: Vec<(String, String)> =
                vec![("csrf_token".into(), csrf), ("decision".into(), "allow".into())];
            for name in [
                "request",
                "client_id",
                "scope",
                "redirect_uri",
                "state",
                "code_challenge",
                "code_challenge_method",
                "nonce",
            ] {
                if let Some(v) = input(&page, name) {
                    form.push((name.into(), crate::browser::unescape(&v)));
                }
            }
            browser.http.post(format!("{base}/consent")).form(&form).send().await.expect("POST")
        };
    }
    let code = code.expect("a code");
    secrets.push(("authorization code".into(), code.clone()));
    let tokens = token(
        client.0.clone(),
        client.1.clone(),
        vec![
            ("grant_type", "authorization_code".into()),
            ("code", code),
            ("redirect_uri", REDIRECT.into()),
            ("code_verifier", verifier),
        ],
    )
    .await;
    for name in ["access_token", "refresh_token", "id_token"] {
        secrets.push((
            name.into(),
            tokens[name].as_str().unwrap_or_else(|| panic!("{name}: {tokens}")).to_owned(),
        ));
    }
    let refreshed = token(
        client.0.clone(),
        client.1.clone(),
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", tokens["refresh_token"].as_str().expect("rt").to_owned()),
        ],
    )
    .await;
    secrets.push((
        "rotated refresh token".into(),
        refreshed["refresh_token"].as_str().expect("rt").to_owned(),
    ));
    let introspected = http
        .post(format!("{base}/introspect"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("token", refreshed["access_token"].as_str().expect("at"))])
        .send()
        .await
        .expect("POST");
    assert_eq!(introspected.status(), 200);
    let wrong = http
        .post(format!("{base}/token"))
        .basic_auth(&client.0, Some("a-wrong-secret-that-must-not-be-logged"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(wrong.status(), 401);
    secrets.push(("wrong secret".into(), "a-wrong-secret-that-must-not-be-logged".into()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    let logs = server.stderr.lock().expect("lock").join("\n");
    assert!(logs.contains("logged in"), "the flow was logged at all");
    for (name, secret) in &secrets {
        // Whole tokens, and each JWT's signature on its own.
        let pieces: Vec<&str> = std::iter::once(secret.as_str())
            .chain(secret.rsplit('.').next().filter(|s| s.len() > 20))
            .collect();
        for piece in pieces {
            assert!(!logs.contains(piece), "{name} appears in the logs");
        }
    }
    println!(
        "logs: {} secrets and tokens checked against {} log lines",
        secrets.len(),
        logs.lines().count()
    );
}
