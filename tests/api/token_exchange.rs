//! Token exchange (RFC 8693): an API exchanges a user's token meant for it for one meant for
//! an API it calls, acting for the user; the chain of actors shows in `act`, and the new
//! token never outlives, outranks or outlasts the revocation of what it came from.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{tokens_for, user, web_client_with};
use crate::dpop::DpopKey;
use crate::helpers::{TestApp, jwt_claims, spawn_app};

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const API_A: &str = "https://a.api.example";
const API_B: &str = "https://b.api.example";
const API_C: &str = "https://c.api.example";

type Credentials = (String, String);

/// A confidential client running `serves`, allowed to exchange into `audience` with `scope`
/// (and `extra` metadata).
async fn api_client(app: &TestApp, serves: &str, audience: &[&str], scope: &str) -> Credentials {
    api_client_with(app, serves, audience, scope, json!({})).await
}

async fn api_client_with(
    app: &TestApp,
    serves: &str,
    audience: &[&str],
    scope: &str,
    extra: Value,
) -> Credentials {
    let mut metadata = json!({
        "client_name": format!("API {serves}"),
        "grant_types": [GRANT],
        "scope": scope,
        "served_resources": [serves],
        "audience": audience,
    });
    if let (Some(base), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    let client = app.create_client(metadata).await;
    (
        client["client_id"].as_str().expect("id").to_owned(),
        client["client_secret"].as_str().expect("secret").to_owned(),
    )
}

/// Alice's access token with `scope`, meant for API A, from a web app allowed `openid profile
/// email offline_access` (and `extra` metadata).
async fn users_token(app: &TestApp, scope: &str, extra: Value) -> String {
    let mut metadata = json!({"audience": [API_A]});
    if let (Some(base), Some(extra)) = (metadata.as_object_mut(), extra.as_object()) {
        base.extend(extra.clone());
    }
    let web = web_client_with(app, "openid profile email offline_access", metadata).await;
    user(app, "alice").await;
    let tokens = tokens_for(app, &web, "alice", scope).await;
    tokens["access_token"].as_str().expect("access token").to_owned()
}

/// `POST /token` by `client` with `form`: the status and the JSON answer.
async fn post(app: &TestApp, client: &Credentials, form: &[(&str, &str)]) -> (u16, Value) {
    let response = app.token_basic(&client.0, &client.1, form).await;
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

/// A token exchange of `subject` (an access token) by `client`, with `extra` parameters.
async fn exchange(
    app: &TestApp,
    client: &Credentials,
    subject: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token", subject),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    form.extend_from_slice(extra);
    post(app, client, &form).await
}

fn access_token(body: &Value) -> String {
    body["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {body}")).to_owned()
}

#[tokio::test]
async fn token_exchange_over_two_hops_nests_each_actor_inside_the_next() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile offline_access", json!({})).await;
    let a = api_client(&app, API_A, &[API_B], "openid profile").await;
    let b = api_client(&app, API_B, &[API_C], "openid profile").await;

    let (status, first) = exchange(&app, &a, &subject, &[("resource", API_B)]).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = exchange(&app, &b, &access_token(&first), &[("resource", API_C)]).await;

    assert_eq!(status, 200, "{second}");
    assert_eq!(second["issued_token_type"], ACCESS_TOKEN, "RFC 8693 §2.2.1");
    assert_eq!(second["token_type"], "Bearer");
    assert!(second.get("refresh_token").is_none());
    let user = jwt_claims(&subject);
    let one = jwt_claims(&access_token(&first));
    assert_eq!(one["act"], json!({"sub": a.0}));
    assert_eq!(one["aud"], json!([API_B, app.issuer]));
    let two = jwt_claims(&access_token(&second));
    let chain = json!({"sub": b.0, "act": {"sub": a.0}});
    assert_eq!(two["act"], chain, "RFC 8693 §4.1: the current actor outermost");
    assert_eq!((&two["sub"], &two["client_id"]), (&user["sub"], &json!(b.0)));
    assert_eq!(two["aud"], json!([API_C, app.issuer]));
    for carried in ["gid", "fid", "auth_time"] {
        assert!(user[carried].is_string() || user[carried].is_i64(), "{carried}");
        assert_eq!(two[carried], user[carried], "{carried}");
    }
    assert_eq!(two["scope"], "openid profile");
    let described = app.introspect(&b, &access_token(&second)).await;
    assert_eq!(described["active"], true);
    assert_eq!(described["act"], chain);
    assert_eq!(described["sub"], user["sub"]);
}

#[tokio::test]
async fn token_exchange_narrows_the_scope_to_what_is_asked() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    let a = api_client(&app, API_A, &[API_B], "openid profile email").await;

    let (_, whole) = exchange(&app, &a, &subject, &[]).await;
    let (status, narrow) = exchange(&app, &a, &subject, &[("scope", "profile")]).await;

    assert_eq!(whole["scope"], "openid profile", "without scope: the subject's, not the client's");
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "profile");
    let claims = jwt_claims(&access_token(&narrow));
    assert_eq!(claims["scope"], "profile");
    assert_eq!(claims["aud"], API_B, "without a target, the client's first audience");
}

#[tokio::test]
async fn token_exchange_never_widens_the_subject_tokens_scope() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    let a = api_client(&app, API_A, &[API_B], "openid profile email").await;

    let (status, body) = exchange(&app, &a, &subject, &[("scope", "profile email")]).await;

    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_scope")), "{body}");
}

#[tokio::test]
async fn token_exchange_into_a_target_outside_the_clients_audience_is_invalid_target() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    let a = api_client(&app, API_A, &[API_B], "openid profile").await;

    let (resource, by_resource) = exchange(&app, &a, &subject, &[("resource", API_C)]).await;
    let (audience, by_audience) = exchange(&app, &a, &subject, &[("audience", API_C)]).await;
    let (allowed, _) = exchange(&app, &a, &subject, &[("audience", API_B)]).await;

    assert_eq!((resource, by_resource["error"].as_str()), (400, Some("invalid_target")));
    assert_eq!((audience, by_audience["error"].as_str()), (400, Some("invalid_target")));
    assert_eq!(allowed, 200);
}

#[tokio::test]
async fn token_exchange_refuses_a_subject_token_not_meant_for_an_api_the_client_serves() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    let b = api_client(&app, API_B, &[API_C], "openid profile").await;

    let (status, body) = exchange(&app, &b, &subject, &[]).await;

    // RFC 8693 §2.2.2: a subject token unacceptable by policy is invalid_request.
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
}

#[tokio::test]
async fn token_exchange_is_unauthorized_for_a_public_client_or_one_without_the_grant_type() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    let public = app
        .create_client(json!({"redirect_uris": [crate::browser::REDIRECT],
                              "token_endpoint_auth_method": "none", "scope": "openid"}))
        .await["client_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let without = app
        .create_client(json!({"grant_types": ["client_credentials"], "served_resources": [API_A],
                              "audience": [API_B], "scope": "openid profile"}))
        .await;
    let without = (
        without["client_id"].as_str().expect("id").to_owned(),
        without["client_secret"].as_str().expect("secret").to_owned(),
    );

    let refused = app
        .admin(
            Method::POST,
            "/admin/clients",
            Some(json!({"grant_types": [GRANT],
            "token_endpoint_auth_method": "none"})),
        )
        .await;
    let form = [
        ("grant_type", GRANT),
        ("client_id", public.as_str()),
        ("subject_token", subject.as_str()),
        ("subject_token_type", ACCESS_TOKEN),
    ];
    let by_public = app.http.post(app.url("/token")).form(&form).send().await.expect("POST");
    let (status, by_public) =
        (by_public.status().as_u16(), by_public.json::<Value>().await.expect("JSON"));
    let (without_status, by_without) = exchange(&app, &without, &subject, &[]).await;

    assert_eq!(refused.status(), 400, "a public client is never registered for it");
    assert_eq!((status, by_public["error"].as_str()), (400, Some("unauthorized_client")));
    assert_eq!((without_status, by_without["error"].as_str()), (400, Some("unauthorized_client")));
}

#[tokio::test]
async fn token_exchange_refuses_a_revoked_subject_token() {
    let app = spawn_app().await;
    let web = web_client_with(&app, "openid profile", json!({"audience": [API_A]})).await;
    user(&app, "alice").await;
    let subject = access_token(&tokens_for(&app, &web, "alice", "openid profile").await);
    let a = api_client(&app, API_A, &[API_B], "openid profile").await;
    assert_eq!(exchange(&app, &a, &subject, &[]).await.0, 200, "live, it exchanges");

    assert_eq!(app.revoke(&web, &subject, None).await, 200);
    let (status, body) = exchange(&app, &a, &subject, &[]).await;

    // RFC 8693 §2.2.2: a subject token invalid for any reason is invalid_request.
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
}

#[tokio::test]
async fn token_exchange_issues_a_token_that_dies_with_the_users_grant() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    let a = api_client(&app, API_A, &[API_B], "openid profile").await;
    let (_, body) = exchange(&app, &a, &subject, &[]).await;
    let exchanged = access_token(&body);
    assert_eq!(app.userinfo(&exchanged).await.status(), 200, "it opens UserInfo while it stands");
    assert_eq!(app.introspect(&a, &exchanged).await["active"], true);

    let grant = jwt_claims(&subject)["gid"].as_str().expect("gid").to_owned();
    let revoked = app.admin(Method::DELETE, &format!("/admin/grants/{grant}"), None).await;

    assert_eq!(revoked.status(), 204);
    assert_eq!(app.introspect(&a, &exchanged).await, json!({"active": false}));
    assert_eq!(app.userinfo(&exchanged).await.status(), 401);
    let (status, again) = exchange(&app, &a, &subject, &[]).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_request")));
}

#[tokio::test]
async fn token_exchange_never_issues_a_token_outliving_its_subject() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid", json!({"access_token_lifetime": 60})).await;
    let a = api_client(&app, API_A, &[API_B], "openid").await; // its own tokens live 600 s

    let (status, body) = exchange(&app, &a, &subject, &[]).await;

    assert_eq!(status, 200, "{body}");
    let exp = jwt_claims(&access_token(&body))["exp"].as_i64().expect("exp");
    assert!(exp <= jwt_claims(&subject)["exp"].as_i64().expect("subject exp"));
    assert!(body["expires_in"].as_u64().expect("expires_in") <= 60, "{body}");
}

#[tokio::test]
async fn token_exchange_of_other_token_types_is_invalid_request() {
    let app = spawn_app().await;
    let web = web_client_with(&app, "openid profile", json!({"audience": [API_A]})).await;
    user(&app, "alice").await;
    let tokens = tokens_for(&app, &web, "alice", "openid profile").await;
    let subject = access_token(&tokens);
    let id_token = tokens["id_token"].as_str().expect("ID token");
    let extra = json!({"grant_types": [GRANT, "client_credentials"]});
    let a = api_client_with(&app, API_A, &[API_B], "openid profile", extra).await;
    let own = access_token(&app.client_token(&a.0, &a.1, None).await);
    let id_type = "urn:ietf:params:oauth:token-type:id_token";
    let refresh_type = "urn:ietf:params:oauth:token-type:refresh_token";

    let id_as_subject = post(
        &app,
        &a,
        &[("grant_type", GRANT), ("subject_token", id_token), ("subject_token_type", id_type)],
    )
    .await;
    let untyped = post(&app, &a, &[("grant_type", GRANT), ("subject_token", &subject)]).await;
    // The type is checked itself, not left to the token failing verification.
    let mistyped = post(
        &app,
        &a,
        &[("grant_type", GRANT), ("subject_token", &subject), ("subject_token_type", id_type)],
    )
    .await;
    let jwt_type = "urn:ietf:params:oauth:token-type:jwt";
    let actor_mistyped =
        exchange(&app, &a, &subject, &[("actor_token", &own), ("actor_token_type", jwt_type)])
            .await;
    let actor_untyped = exchange(&app, &a, &subject, &[("actor_token", &own)]).await;
    let type_alone = exchange(&app, &a, &subject, &[("actor_token_type", ACCESS_TOKEN)]).await;
    let refresh_asked =
        exchange(&app, &a, &subject, &[("requested_token_type", refresh_type)]).await;
    let id_actor =
        exchange(&app, &a, &subject, &[("actor_token", id_token), ("actor_token_type", id_type)])
            .await;

    for (name, (status, body)) in [
        ("an ID token as subject", id_as_subject),
        ("no subject_token_type", untyped),
        ("an access token typed as an ID token", mistyped),
        ("an actor token typed as a JWT", actor_mistyped),
        ("an actor token without its type", actor_untyped),
        ("an actor token type without the token", type_alone),
        ("a refresh token asked for", refresh_asked),
        ("an ID token as actor", id_actor),
    ] {
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{name}");
    }
    let asked = exchange(&app, &a, &subject, &[("requested_token_type", ACCESS_TOKEN)]).await;
    assert_eq!(asked.0, 200, "an access token may be asked for");
    let acting =
        exchange(&app, &a, &subject, &[("actor_token", &own), ("actor_token_type", ACCESS_TOKEN)])
            .await;
    assert_eq!(acting.0, 200, "its own access token may name the actor: {}", acting.1);
}

#[tokio::test]
async fn token_exchange_with_an_actor_token_names_its_subject_as_the_actor() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    // API A's operator signs in to API A's own console: a token of API A naming the operator.
    let extra = json!({"grant_types": ["authorization_code", GRANT],
                       "redirect_uris": [crate::browser::REDIRECT]});
    let a = api_client_with(&app, API_A, &[API_B], "openid profile", extra).await;
    let operator = user(&app, "oscar").await;
    let actor = access_token(&tokens_for(&app, &a, "oscar", "openid").await);
    let others = users_token_of_another_client(&app).await;

    let (status, body) = exchange(
        &app,
        &a,
        &subject,
        &[("actor_token", &actor), ("actor_token_type", ACCESS_TOKEN)],
    )
    .await;
    let (foreign, refused) = exchange(
        &app,
        &a,
        &subject,
        &[("actor_token", &others), ("actor_token_type", ACCESS_TOKEN)],
    )
    .await;

    assert_eq!(status, 200, "{body}");
    let claims = jwt_claims(&access_token(&body));
    assert_eq!(claims["act"], json!({"sub": operator}));
    assert_eq!(claims["sub"], jwt_claims(&subject)["sub"], "the subject stays the user");
    assert_eq!((foreign, refused["error"].as_str()), (400, Some("invalid_request")), "{refused}");
}

/// A token of a client other than the exchanging one (a web app's, for its user).
async fn users_token_of_another_client(app: &TestApp) -> String {
    let web = web_client_with(app, "openid", json!({})).await;
    user(app, "olga").await;
    access_token(&tokens_for(app, &web, "olga", "openid").await)
}

#[tokio::test]
async fn token_exchange_with_a_dpop_proof_binds_the_new_token_to_its_key() {
    let app = spawn_app().await;
    let subject = users_token(&app, "openid profile", json!({})).await;
    let a = api_client(&app, API_A, &[API_B], "openid profile").await;
    let key = DpopKey::es256();

    let response = app
        .http
        .post(app.url("/token"))
        .basic_auth(&a.0, Some(&a.1))
        .header("DPoP", key.proof("POST", &app.url("/token"), None))
        .form(&[
            ("grant_type", GRANT),
            ("subject_token", subject.as_str()),
            ("subject_token_type", ACCESS_TOKEN),
        ])
        .send()
        .await
        .expect("POST /token");

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(jwt_claims(&access_token(&body))["cnf"]["jkt"], key.jkt());
}

#[tokio::test]
async fn token_exchange_is_listed_in_discovery() {
    let app = spawn_app().await;

    let metadata: Value =
        app.get("/.well-known/openid-configuration").await.json().await.expect("JSON");

    let grants = metadata["grant_types_supported"].as_array().expect("grant types");
    assert!(grants.contains(&json!(GRANT)), "{grants:?}");
}
