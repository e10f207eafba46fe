//! DPoP (RFC 9449): proofs bind what the token endpoint issues to the client's key, and a
//! bound token opens a resource only with a proof by that key.

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RSA_PSS_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::browser::{
    Browser, REDIRECT, authorize_with_consent, location, params, pkce, user, web_client,
};
use crate::helpers::{TestApp, jwt_claims, spawn_app, spawn_app_with};

/// A client's DPoP key pair.
pub enum DpopKey {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Ps256(RsaKeyPair),
}

impl DpopKey {
    pub fn es256() -> Self {
        Self::es256_with_pkcs8().0
    }

    /// A P-256 key and its PKCS#8 document (for a client that takes its key as a file).
    pub fn es256_with_pkcs8() -> (Self, Vec<u8>) {
        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref()).expect("pair");
        (Self::Es256(pair), doc.as_ref().to_vec())
    }

    pub fn ed25519() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
        Self::Ed25519(Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("pair"))
    }

    /// An RSA key; it signs PS256, or RS256 when a header asks for that.
    pub fn ps256() -> Self {
        use rsa::pkcs8::EncodePrivateKey;
        let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).expect("RSA key");
        let der = key.to_pkcs8_der().expect("PKCS#8");
        Self::Ps256(RsaKeyPair::from_pkcs8(der.as_bytes()).expect("pair"))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
            Self::Ps256(_) => "PS256",
        }
    }

    /// The public JWK, members in RFC 7638 order.
    pub fn jwk(&self) -> Value {
        match self {
            Self::Es256(pair) => {
                let point = pair.public_key().as_ref();
                json!({"crv": "P-256", "kty": "EC",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..])})
            }
            Self::Ed25519(pair) => json!({"crv": "Ed25519", "kty": "OKP",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())}),
            Self::Ps256(pair) => {
                use aws_lc_rs::signature::RsaSubjectPublicKey;
                let public: &RsaSubjectPublicKey = pair.public_key();
                let n = public.modulus();
                let e = public.exponent();
                json!({"e": URL_SAFE_NO_PAD.encode(e.big_endian_without_leading_zero()), "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(n.big_endian_without_leading_zero())})
            }
        }
    }

    /// The public JWK as a client registers it: with `kid` and `use`.
    pub fn registered(&self, kid: &str) -> Value {
        let mut jwk = self.jwk();
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        jwk
    }

    /// The RFC 7638 thumbprint (`jkt`).
    pub fn jkt(&self) -> String {
        thumbprint(&self.jwk())
    }

    /// Signs `header` and `claims` as a compact JWS with this key (an RSA key with the
    /// PKCS#1 v1.5 padding when the header says RS256).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let rng = SystemRandom::new();
        let signature = match self {
            Self::Es256(pair) => pair.sign(&rng, input.as_bytes()).expect("sign").as_ref().to_vec(),
            Self::Ed25519(pair) => pair.sign(input.as_bytes()).as_ref().to_vec(),
            Self::Ps256(pair) => {
                let padding: &dyn aws_lc_rs::signature::RsaEncoding =
                    if header["alg"] == "RS256" { &RSA_PKCS1_SHA256 } else { &RSA_PSS_SHA256 };
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(padding, &rng, input.as_bytes(), &mut signature).expect("sign");
                signature
            }
        };
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// The header of a proof by this key.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// A fresh proof for `method` `url`, with `ath` of `token` when given.
    pub fn proof(&self, method: &str, url: &str, token: Option<&str>) -> String {
        self.sign(&self.header(), &claims(method, url, token))
    }
}

/// The RFC 7638 thumbprint of a public JWK holding only its required members (serde_json
/// writes them in the lexicographic order the RFC asks for).
pub fn thumbprint(jwk: &Value) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, jwk.to_string().as_bytes()))
}

/// Redeems `code` at `/token` as `client` (HTTP Basic) with a fresh proof by `key`.
pub async fn redeem_with_proof(
    app: &TestApp,
    client: &(String, String),
    code: &str,
    verifier: &str,
    key: &DpopKey,
) -> reqwest::Response {
    app.http
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&client.1))
        .header("DPoP", key.proof("POST", &app.url("/token"), None))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .expect("POST /token")
}

/// Fresh proof claims: a new `jti`, `iat` now.
pub fn claims(method: &str, url: &str, token: Option<&str>) -> Value {
    let mut claims = json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "htm": method,
        "htu": url,
        "iat": chrono::Utc::now().timestamp(),
    });
    if let Some(token) = token {
        claims["ath"] = json!(URL_SAFE_NO_PAD.encode(digest(&SHA256, token.as_bytes())));
    }
    claims
}

/// `POST /token` as client_credentials with HTTP Basic and the given `DPoP` headers.
async fn cc_token(app: &TestApp, client: &(String, String), proofs: &[&str]) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url("/token"))
        .basic_auth(&client.0, Some(&client.1))
        .form(&[("grant_type", "client_credentials")]);
    for proof in proofs {
        request = request.header("DPoP", *proof);
    }
    let response = request.send().await.expect("token request");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

/// `GET /userinfo` with `Authorization: {scheme} {token}` and an optional proof.
async fn userinfo(
    app: &TestApp,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> reqwest::Response {
    let mut request =
        app.http.get(app.url("/userinfo")).header("Authorization", format!("{scheme} {token}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    request.send().await.expect("GET /userinfo")
}

fn challenge(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A code for `client_id` through the browser flow, with `extra` authorization parameters.
async fn code(
    app: &TestApp,
    browser: &Browser,
    client_id: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", scope)
        .append_pair("state", "s")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    for (name, value) in extra {
        query.append_pair(name, value);
    }
    let url = app.url(&format!("/authorize?{}", query.finish()));
    let back = authorize_with_consent(browser, app, &url, "dora").await;
    (params(&location(&back).expect("a redirect to the client"))["code"].clone(), verifier)
}

/// A public (native) client for the code flow with refresh tokens.
async fn public_client(app: &TestApp) -> String {
    let client = app
        .create_client(json!({
            "client_name": "Native app",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
            "scope": "openid profile offline_access",
        }))
        .await;
    client["client_id"].as_str().expect("id").to_owned()
}

/// `POST /token` for a public client: `form` plus its `client_id`, with an optional proof.
async fn public_token(
    app: &TestApp,
    client_id: &str,
    form: &[(&str, &str)],
    proof: Option<&str>,
) -> (u16, Value) {
    let mut form = form.to_vec();
    form.push(("client_id", client_id));
    let mut request = app.http.post(app.url("/token")).form(&form);
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.expect("token request");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

#[tokio::test]
async fn a_proof_binds_the_access_token_to_its_key_and_introspection_shows_it() {
    let app = spawn_app().await;
    let client = app.service_client("", &[]).await;
    let key = DpopKey::es256();

    let (status, bound) =
        cc_token(&app, &client, &[&key.proof("POST", &app.url("/token"), None)]).await;
    let (_, plain) = cc_token(&app, &client, &[]).await;

    assert_eq!(status, 200, "{bound}");
    assert_eq!(bound["token_type"], "DPoP");
    let token = bound["access_token"].as_str().expect("token");
    assert_eq!(jwt_claims(token)["cnf"]["jkt"], key.jkt(), "RFC 9449 §6.1: cnf.jkt");
    assert_eq!(plain["token_type"], "Bearer");
    assert!(jwt_claims(plain["access_token"].as_str().expect("token")).get("cnf").is_none());
    // §6.2: the introspection answer carries the binding, for the resource server to check.
    let answer = app.introspect(&client, token).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["cnf"]["jkt"], key.jkt());
    assert_eq!(answer["token_type"], "DPoP");
}

#[tokio::test]
async fn the_token_endpoint_refuses_every_faulty_proof() {
    let app = spawn_app().await;
    let client = app.service_client("", &[]).await;
    let key = DpopKey::es256();
    let url = app.url("/token");
    let now = chrono::Utc::now().timestamp();

    let replayed = key.proof("POST", &url, None);
    assert_eq!(cc_token(&app, &client, &[&replayed]).await.0, 200, "the first use passes");
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims("POST", &url, None);
        edit(&mut c);
        key.sign(&key.header(), &c)
    };
    let mut private = key.header();
    private["jwk"]["d"] = json!(URL_SAFE_NO_PAD.encode([7u8; 32]));
    let mut symmetric = key.header();
    symmetric["alg"] = json!("HS256");
    let mut untyped = key.header();
    untyped["typ"] = json!("JWT");
    let other = DpopKey::es256();
    let mut forged = other.header();
    forged["jwk"] = key.jwk();
    let cases = [
        (replayed.clone(), "a replayed proof"),
        (with(&|c| c["htu"] = json!(app.url("/introspect"))), "another htu"),
        (with(&|c| c["htm"] = json!("GET")), "another htm"),
        (with(&|c| c["iat"] = json!(now - 120)), "a stale iat"),
        (with(&|c| c["iat"] = json!(now + 60)), "an iat in the future"),
        (key.sign(&private, &claims("POST", &url, None)), "a private key in jwk"),
        (key.sign(&symmetric, &claims("POST", &url, None)), "a symmetric alg"),
        (key.sign(&untyped, &claims("POST", &url, None)), "a typ other than dpop+jwt"),
        (other.sign(&forged, &claims("POST", &url, None)), "a signature by another key"),
        ("not.a.proof".to_owned(), "garbage"),
    ];
    for (proof, what) in cases {
        let (status, body) = cc_token(&app, &client, &[&proof]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{what}");
    }
    let (a, b) = (key.proof("POST", &url, None), key.proof("POST", &url, None));
    let (status, body) = cc_token(&app, &client, &[&a, &b]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "two proofs");
}

#[tokio::test]
async fn every_asymmetric_algorithm_binds() {
    let app = spawn_app().await;
    let client = app.service_client("", &[]).await;
    for key in [DpopKey::es256(), DpopKey::ed25519(), DpopKey::ps256()] {
        let (status, body) =
            cc_token(&app, &client, &[&key.proof("POST", &app.url("/token"), None)]).await;
        assert_eq!(status, 200, "{}: {body}", key.alg());
        let token = body["access_token"].as_str().expect("token");
        assert_eq!(jwt_claims(token)["cnf"]["jkt"], key.jkt(), "{}", key.alg());
    }
}

#[tokio::test]
async fn a_proof_is_single_use_across_replicas() {
    let app = spawn_app().await;
    let other = app.replica().await;
    let client = app.service_client("", &[]).await;
    let key = DpopKey::es256();
    // Both replicas answer for the same issuer, so one proof names both.
    let proof = key.proof("POST", &format!("{}/token", app.issuer), None);

    assert_eq!(cc_token(&app, &client, &[&proof]).await.0, 200);
    let (status, body) = cc_token(&other, &client, &[&proof]).await;

    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")));
}

#[tokio::test]
async fn a_client_registered_for_dpop_gets_nothing_without_a_proof() {
    let app = spawn_app().await;
    let created = app
        .create_client(
            json!({"grant_types": ["client_credentials"], "dpop_bound_access_tokens": true}),
        )
        .await;
    assert_eq!(created["dpop_bound_access_tokens"], true);
    let client = (
        created["client_id"].as_str().expect("id").to_owned(),
        created["client_secret"].as_str().expect("secret").to_owned(),
    );
    let key = DpopKey::es256();

    let (status, body) = cc_token(&app, &client, &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")));
    let (status, body) =
        cc_token(&app, &client, &[&key.proof("POST", &app.url("/token"), None)]).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")));
}

#[tokio::test]
async fn a_bound_token_opens_userinfo_only_with_a_fresh_proof_by_its_key() {
    let app = spawn_app().await;
    let client = web_client(&app, "Web app", "openid profile").await;
    user(&app, "dora").await;
    let key = DpopKey::es256();
    let browser = Browser::new();
    let (code, verifier) = code(&app, &browser, &client.0, "openid profile", &[]).await;
    let response = redeem_with_proof(&app, &client, &code, &verifier, &key).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("JSON");
    let token = tokens["access_token"].as_str().expect("token");
    let url = app.url("/userinfo");
    let thief = DpopKey::es256();
    let mut no_ath = claims("GET", &url, None);
    no_ath["ath"] = json!(URL_SAFE_NO_PAD.encode(digest(&SHA256, b"another token")));

    // Stolen, it fails whichever way it is presented.
    let as_bearer = userinfo(&app, "Bearer", token, None).await;
    assert_eq!(as_bearer.status(), 401, "RFC 9449 §7.2: a bound token is no bearer token");
    assert!(challenge(&as_bearer).contains("DPoP"), "{}", challenge(&as_bearer));
    let no_proof = userinfo(&app, "DPoP", token, None).await;
    assert_eq!(no_proof.status(), 401);
    assert!(challenge(&no_proof).contains(r#"error="invalid_dpop_proof""#));
    let thiefs = userinfo(&app, "DPoP", token, Some(&thief.proof("GET", &url, Some(token)))).await;
    assert_eq!(thiefs.status(), 401, "a proof by another key");
    assert!(challenge(&thiefs).starts_with("DPoP "), "{}", challenge(&thiefs));
    for (proof, what) in [
        (key.proof("GET", &url, None), "no ath"),
        (key.sign(&key.header(), &no_ath), "the ath of another token"),
        (key.proof("POST", &url, Some(token)), "another method"),
        (key.proof("GET", &app.url("/token"), Some(token)), "another URL"),
    ] {
        let response = userinfo(&app, "DPoP", token, Some(&proof)).await;
        assert_eq!(response.status(), 401, "{what}");
        assert!(challenge(&response).contains(r#"error="invalid_dpop_proof""#), "{what}");
    }
    // Introspection still calls it active, and says which key it is bound to.
    let answer = app.introspect(&client, token).await;
    assert_eq!(
        (answer["active"].as_bool(), answer["cnf"]["jkt"].as_str()),
        (Some(true), Some(key.jkt().as_str()))
    );

    let proof = key.proof("GET", &url, Some(token));
    let good = userinfo(&app, "DPoP", token, Some(&proof)).await;
    assert_eq!(good.status(), 200);
    assert!(good.headers().get("www-authenticate").is_none(), "no challenge on success");
    let replay = userinfo(&app, "DPoP", token, Some(&proof)).await;
    assert_eq!(replay.status(), 401, "a proof is single use at a resource too");
}

#[tokio::test]
async fn dpop_jkt_binds_the_code_to_one_key() {
    let app = spawn_app().await;
    let client_id = public_client(&app).await;
    user(&app, "dora").await;
    let key = DpopKey::es256();
    let other = DpopKey::es256();
    let browser = Browser::new();
    let jkt = key.jkt();
    let redeem = |code: String, verifier: String, proof: Option<String>| {
        let app = &app;
        let client_id = client_id.clone();
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ];
            public_token(app, &client_id, &form, proof.as_deref()).await
        }
    };

    let (c, v) = code(&app, &browser, &client_id, "openid", &[("dpop_jkt", &jkt)]).await;
    let (status, body) = redeem(c, v, Some(other.proof("POST", &app.url("/token"), None))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "another key");
    let (c, v) = code(&app, &browser, &client_id, "openid", &[("dpop_jkt", &jkt)]).await;
    let (status, body) = redeem(c, v, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "no proof");
    let (c, v) = code(&app, &browser, &client_id, "openid", &[("dpop_jkt", &jkt)]).await;
    let (status, body) = redeem(c, v, Some(key.proof("POST", &app.url("/token"), None))).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")), "{body}");
}

#[tokio::test]
async fn a_public_clients_refresh_tokens_stay_bound_to_its_key() {
    let app = spawn_app().await;
    let client_id = public_client(&app).await;
    user(&app, "dora").await;
    let key = DpopKey::es256();
    let browser = Browser::new();
    let (c, v) = code(&app, &browser, &client_id, "openid offline_access", &[]).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", c.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", v.as_str()),
    ];
    let token_url = app.url("/token");
    let (_, tokens) =
        public_token(&app, &client_id, &form, Some(&key.proof("POST", &token_url, None))).await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];

    let (status, body) = public_token(&app, &client_id, &form, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "no proof");
    let thief = DpopKey::es256();
    let (status, body) =
        public_token(&app, &client_id, &form, Some(&thief.proof("POST", &token_url, None))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "another key");
    // Refused attempts consumed nothing: the holder of the key still refreshes, twice over.
    let (status, body) =
        public_token(&app, &client_id, &form, Some(&key.proof("POST", &token_url, None))).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")), "{body}");
    let next = body["refresh_token"].as_str().expect("rotated").to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", next.as_str())];
    let (status, _) = public_token(&app, &client_id, &form, None).await;
    assert_eq!(status, 400, "the successor is bound too");
    let (status, _) =
        public_token(&app, &client_id, &form, Some(&key.proof("POST", &token_url, None))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn server_nonces_are_demanded_when_configured() {
    let app = spawn_app_with(|s| s.dpop_require_nonce = true).await;
    let client = app.service_client("", &[]).await;
    let key = DpopKey::es256();
    let url = app.url("/token");

    let first = app
        .http
        .post(&url)
        .basic_auth(&client.0, Some(&client.1))
        .header("DPoP", key.proof("POST", &url, None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(first.status(), 400);
    let nonce = first.headers()["dpop-nonce"].to_str().expect("nonce").to_owned();
    assert_eq!(first.json::<Value>().await.expect("JSON")["error"], "use_dpop_nonce");

    let mut with_nonce = claims("POST", &url, None);
    with_nonce["nonce"] = json!(nonce);
    let mut forged = claims("POST", &url, None);
    forged["nonce"] = json!(URL_SAFE_NO_PAD.encode([0u8; 24]));
    assert_eq!(
        cc_token(&app, &client, &[&key.sign(&key.header(), &forged)]).await.1["error"],
        "use_dpop_nonce",
        "a nonce the server never made"
    );
    let response = app
        .http
        .post(&url)
        .basic_auth(&client.0, Some(&client.1))
        .header("DPoP", key.sign(&key.header(), &with_nonce))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("dpop-nonce"), "the next nonce comes along");
    let token = response.json::<Value>().await.expect("JSON")["access_token"]
        .as_str()
        .expect("token")
        .to_owned();

    // At a resource the demand is a 401 challenge (§9).
    let admin = app
        .http
        .get(app.url("/admin/clients"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", key.proof("GET", &app.url("/admin/clients"), Some(&token)))
        .send()
        .await
        .expect("GET");
    assert_eq!(admin.status(), 401);
    assert!(admin.headers().contains_key("dpop-nonce"));
    assert!(challenge(&admin).contains(r#"error="use_dpop_nonce""#), "{}", challenge(&admin));
}

#[tokio::test]
async fn discovery_lists_the_proof_algorithms() {
    let app = spawn_app().await;
    let metadata: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");
    let algs = metadata["dpop_signing_alg_values_supported"].as_array().expect("algs");
    for alg in ["ES256", "EdDSA", "PS256"] {
        assert!(algs.contains(&json!(alg)), "{alg}");
    }
    assert!(!algs.iter().any(|a| a.as_str().is_some_and(|a| a.starts_with("HS"))));
}
