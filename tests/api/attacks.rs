//! What an attacker found, each reproduced against the fix: revocation racing rotation,
//! concurrent code redemptions, a CPU-heavy `scope`, narrowed clients, password changes,
//! loopback redirect tricks, who may introspect, and the smaller ones (docs/REFERENCE.md §4,
//! §5, §9).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, authorize_url, authorize_with_consent, input, location, params, pkce,
    redeem, tokens_for, user, web_client_with,
};
use crate::helpers::{
    ServerProcess, TestApp, TestDatabase, as_refs, castellan, cli_admin, eventually, join_all,
    jwt_claims, process_env, spawn_app, spawn_app_with, token_from,
};

/// The code flow in `browser` (signed in after the first time): the token response.
async fn flow(
    app: &TestApp,
    browser: &Browser,
    client: &(String, String),
    username: &str,
    scope: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let url = authorize_url(app, &client.0, &challenge, scope, "s");
    let back = authorize_with_consent(browser, app, &url, username).await;
    let code = params(&location(&back).expect("a redirect to the client"))["code"].clone();
    let response = redeem(app, client, &code, &verifier).await;
    assert_eq!(response.status(), 200, "code exchange");
    response.json().await.expect("JSON")
}

async fn refresh(app: &TestApp, client: &(String, String), token: &str) -> (u16, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let response = app.token_basic(&client.0, &client.1, &form).await;
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

async fn revoke(app: &TestApp, client: &(String, String), token: &str) -> u16 {
    app.revoke(client, token, None).await
}

async fn active(app: &TestApp, caller: &(String, String), token: &str) -> bool {
    app.introspect(caller, token).await["active"] == true
}

async fn userinfo(app: &TestApp, token: &str) -> reqwest::Response {
    app.userinfo(token).await
}

fn text<'a>(value: &'a Value, member: &str) -> &'a str {
    value[member].as_str().unwrap_or_else(|| panic!("no {member} in {value}"))
}

/// Item 1: whichever of a refresh and a revocation of the same token lands first, once
/// `/revoke` has answered nothing of the family works (RFC 7009 §2.1), ever.
#[tokio::test]
async fn a_family_revoked_while_it_rotates_stays_revoked() {
    let app = spawn_app().await;
    user(&app, "rhea").await;
    let client = web_client_with(&app, "openid offline_access", json!({})).await;
    let browser = Browser::new();
    let mut refreshed_first = 0;
    for trial in 0..24 {
        let tokens = flow(&app, &browser, &client, "rhea", "openid offline_access").await;
        let first = text(&tokens, "refresh_token");

        // Staggered by 0–3 ms one way or the other, so that every interleaving comes up.
        let lead = Duration::from_millis(trial / 2 % 4);
        let (rotation, revoked) = if trial % 2 == 0 {
            tokio::join!(refresh(&app, &client, first), async {
                tokio::time::sleep(lead).await;
                revoke(&app, &client, first).await
            })
        } else {
            tokio::join!(
                async {
                    tokio::time::sleep(lead).await;
                    refresh(&app, &client, first).await
                },
                revoke(&app, &client, first)
            )
        };

        assert_eq!(revoked, 200, "trial {trial}");
        if rotation.0 == 200 {
            refreshed_first += 1;
            let second = text(&rotation.1, "refresh_token");
            assert_eq!(refresh(&app, &client, second).await.0, 400, "trial {trial}: successor");
            assert!(!active(&app, &client, second).await, "trial {trial}: successor inactive");
            let access = text(&rotation.1, "access_token");
            assert_eq!(userinfo(&app, access).await.status(), 401, "trial {trial}");
        }
        assert_eq!(refresh(&app, &client, first).await.0, 400, "trial {trial}");
        let access = text(&tokens, "access_token");
        assert_eq!(userinfo(&app, access).await.status(), 401, "trial {trial}: first access");
    }
    eprintln!("the rotation answered first in {refreshed_first} of 24 trials");
}

/// Item 1, for the other ways a family ends: revoking the grant or cutting off the user while
/// one of its tokens rotates leaves no successor that works.
#[tokio::test]
async fn a_grant_revoked_or_a_user_cut_off_while_a_token_rotates_leaves_nothing() {
    let app = spawn_app().await;
    let user_id = user(&app, "gwen").await;
    let client = web_client_with(&app, "openid offline_access", json!({})).await;
    let admin = app.admin_token().await;
    for trial in 0..12 {
        // A second apart, so each trial's new sign-in comes after the last cut-off.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let browser = Browser::new();
        let tokens = flow(&app, &browser, &client, "gwen", "openid offline_access").await;
        let first = text(&tokens, "refresh_token");
        let end = async {
            let response = if trial % 2 == 0 {
                let grants: Value = app
                    .admin(Method::GET, &format!("/admin/users/{user_id}/grants"), None)
                    .await
                    .json()
                    .await
                    .expect("JSON");
                let grant = text(&grants["items"][0], "id").to_owned();
                app.http.delete(app.url(&format!("/admin/grants/{grant}")))
            } else {
                app.http.delete(app.url(&format!("/admin/users/{user_id}/sessions")))
            };
            response.bearer_auth(&admin).send().await.expect("DELETE").status()
        };

        let (rotation, ended) = tokio::join!(refresh(&app, &client, first), end);

        assert_eq!(ended, StatusCode::NO_CONTENT, "trial {trial}");
        if rotation.0 == 200 {
            let second = text(&rotation.1, "refresh_token");
            assert_eq!(refresh(&app, &client, second).await.0, 400, "trial {trial}: successor");
        }
    }
}

/// Item 2: four simultaneous redemptions of one code: at most one gets tokens, and the
/// replays revoke them (RFC 9700 §4.5.3.1) however the race goes.
#[tokio::test]
async fn four_simultaneous_redemptions_leave_no_live_token() {
    let app = spawn_app().await;
    user(&app, "remy").await;
    let client = web_client_with(&app, "openid offline_access", json!({})).await;
    let rs = app.resource_server().await;
    let browser = Browser::new();
    for trial in 0..10 {
        let (verifier, challenge) = pkce();
        let url = authorize_url(&app, &client.0, &challenge, "openid offline_access", "s");
        let back = authorize_with_consent(&browser, &app, &url, "remy").await;
        let code = params(&location(&back).expect("code"))["code"].clone();

        let responses =
            join_all((0..4).map(|_| redeem(&app, &client, &code, &verifier)).collect()).await;

        let mut winners = Vec::new();
        for response in responses {
            let status = response.status();
            let body: Value = response.json().await.expect("JSON");
            match status {
                StatusCode::OK => winners.push(body),
                _ => assert_eq!(body["error"], "invalid_grant", "trial {trial}: {body}"),
            }
        }
        assert!(winners.len() <= 1, "trial {trial}: {} winners", winners.len());
        for tokens in winners {
            let access = text(&tokens, "access_token");
            assert!(!active(&app, &rs, access).await, "trial {trial}: the winner's access token");
            assert_eq!(userinfo(&app, access).await.status(), 401, "trial {trial}");
            let refresh_token = text(&tokens, "refresh_token");
            assert_eq!(refresh(&app, &client, refresh_token).await.0, 400, "trial {trial}");
        }
    }
}

/// Server CPU time of a process so far, in clock ticks (user + system, every thread).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of proc(5); `after_name` starts at field 3.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Item 3: a `scope` as large as a body may be is refused before its tokens are compared,
/// so it costs about what an ordinary request costs: counted as server CPU over many
/// requests of each kind, not as a response time.
#[tokio::test]
async fn a_maximal_scope_costs_about_what_an_ordinary_request_costs() {
    if !std::path::Path::new("/proc/self/stat").exists() {
        eprintln!("skipped: no /proc here to count the server's CPU");
        return;
    }
    let db = TestDatabase::create().await;
    let admin = cli_admin(&db);
    let env = process_env(&db);
    let server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let admin_token = token_from(&server.address, &admin).await;
    let client: Value = http
        .post(format!("{}/admin/clients", server.address))
        .bearer_auth(&admin_token)
        .json(&json!({"redirect_uris": ["https://app.example/cb"], "scope": "openid profile", "grant_types": ["authorization_code"]}))
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("JSON");
    let client_id = text(&client, "client_id").to_owned();
    let (_, challenge) = pkce();
    let mut maximal = String::new();
    let mut n = 0u32;
    while maximal.len() < 60_000 {
        maximal.push_str(&format!("{n:x} "));
        n += 1;
    }
    let maximal = maximal.trim_end().to_owned();
    let authorize = |scope: &str| {
        http.post(format!("{}/authorize", server.address))
            .form(&[
                ("response_type", "code"),
                ("client_id", client_id.as_str()),
                ("redirect_uri", "https://app.example/cb"),
                ("scope", scope),
                ("state", "s"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
    };
    let refused = authorize(&maximal).await.expect("POST");
    let back = location(&refused).expect("an error sent back to the client");
    assert_eq!(params(&back)["error"], "invalid_scope", "{n} scope tokens");
    let token = http
        .post(format!("{}/token", server.address))
        .basic_auth(&admin.0, Some(&admin.1))
        .form(&[("grant_type", "client_credentials"), ("scope", maximal.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(token.status(), 400);
    assert_eq!(token.json::<Value>().await.expect("JSON")["error"], "invalid_scope");

    let pid = server.pid();
    let cost = |scope: String| {
        let authorize = &authorize;
        async move {
            let before = cpu_ticks(pid);
            for _ in 0..100 {
                authorize(&scope).await.expect("POST").bytes().await.expect("body");
            }
            cpu_ticks(pid) - before
        }
    };
    let ordinary = cost("openid profile".to_owned()).await;
    let huge = cost(maximal).await;

    eprintln!("server CPU for 100 requests: ordinary {ordinary} ticks, maximal scope {huge}");
    // Quadratic de-duplication made each maximal request cost ~0.4 s: 100 of them, thousands
    // of ticks. Parsing 60 KB of form is linear and small beside rendering a page.
    assert!(huge <= 4 * ordinary + 25, "ordinary {ordinary} ticks, maximal {huge}");
}

/// Item 5: what a client holds narrows with it: refresh, ID token, UserInfo, even for an
/// access token issued before the change.
#[tokio::test]
async fn narrowing_a_client_narrows_what_it_already_holds() {
    let app = spawn_app().await;
    user(&app, "nina").await;
    let scope = "openid profile email offline_access";
    let client = web_client_with(&app, scope, json!({})).await;
    let tokens = tokens_for(&app, &client, "nina", scope).await;
    let old_access = text(&tokens, "access_token");
    let before: Value = userinfo(&app, old_access).await.json().await.expect("JSON");
    assert_eq!(before["email"], "nina@example.com");

    let narrowed = app
        .admin(
            Method::PUT,
            &format!("/admin/clients/{}", client.0),
            Some(json!({
                "client_name": "Web app",
                "redirect_uris": [crate::browser::REDIRECT],
                "grant_types": ["authorization_code", "refresh_token"],
                "scope": "openid profile offline_access",
            })),
        )
        .await;
    assert_eq!(narrowed.status(), 200);

    let after: Value = userinfo(&app, old_access).await.json().await.expect("JSON");
    assert_eq!(after["preferred_username"], "nina");
    assert!(after.get("email").is_none(), "the old access token no longer releases email");
    let (status, refreshed) = refresh(&app, &client, text(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(refreshed["scope"], "openid profile offline_access");
    assert_eq!(
        jwt_claims(text(&refreshed, "access_token"))["scope"],
        "openid profile offline_access"
    );
    let id_token = jwt_claims(text(&refreshed, "id_token"));
    assert!(id_token.get("email").is_none(), "{id_token}");
    assert_eq!(id_token["preferred_username"], "nina");
    let info: Value =
        userinfo(&app, text(&refreshed, "access_token")).await.json().await.expect("JSON");
    assert!(info.get("email").is_none(), "{info}");
}

async fn signed_in(app: &TestApp, browser: &Browser) -> bool {
    browser.get(&app.url("/account")).await.status() == StatusCode::OK
}

async fn put_user(app: &TestApp, id: &str, body: Value) {
    let response = app.admin(Method::PUT, &format!("/admin/users/{id}"), Some(body)).await;
    assert_eq!(response.status(), 200);
}

/// Item 6: a new password or a disabling ends the user's sessions, refresh families and
/// access tokens; re-enabling brings none of them back; the owner signs in again afresh.
#[tokio::test]
async fn a_password_change_or_a_disabling_ends_every_session_and_token_for_good() {
    let app = spawn_app().await;
    let id = user(&app, "pat").await;
    let client = web_client_with(&app, "openid offline_access", json!({})).await;
    let browser = Browser::new();
    let tokens = flow(&app, &browser, &client, "pat", "openid offline_access").await;
    assert!(signed_in(&app, &browser).await);

    let new_password = "another long passphrase";
    put_user(&app, &id, json!({"username": "pat", "password": new_password})).await;

    assert!(!signed_in(&app, &browser).await, "the session ended");
    assert_eq!(refresh(&app, &client, text(&tokens, "refresh_token")).await.0, 400);
    assert_eq!(userinfo(&app, text(&tokens, "access_token")).await.status(), 401);

    // Cut-offs have second granularity (a token's `iat`): a new sign-in a second later works.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let fresh = Browser::new();
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid offline_access", "s");
    let login = fresh.follow(&app, fresh.get(&url).await).await.text().await.expect("page");
    let back = fresh
        .follow(&app, crate::browser::log_in(&fresh, &app, &login, "pat", new_password).await)
        .await;
    let code = params(&location(&back).expect("the grant stands: straight back"))["code"].clone();
    let again: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    assert_eq!(userinfo(&app, text(&again, "access_token")).await.status(), 200);

    put_user(&app, &id, json!({"username": "pat", "disabled": true})).await;
    assert!(!signed_in(&app, &fresh).await);
    put_user(&app, &id, json!({"username": "pat", "disabled": false})).await;

    assert!(!signed_in(&app, &fresh).await, "re-enabling brings no session back");
    assert_eq!(refresh(&app, &client, text(&again, "refresh_token")).await.0, 400);
    assert_eq!(userinfo(&app, text(&again, "access_token")).await.status(), 401);
}

/// Item 6: an administrator ends a user's sessions and tokens, by API or CLI.
#[tokio::test]
async fn an_administrator_ends_a_users_sessions_by_api_or_cli() {
    let app = spawn_app().await;
    let id = user(&app, "ulla").await;
    let client = web_client_with(&app, "openid offline_access", json!({})).await;
    let browser = Browser::new();
    let tokens = flow(&app, &browser, &client, "ulla", "openid offline_access").await;

    let ended = app.admin(Method::DELETE, &format!("/admin/users/{id}/sessions"), None).await;

    assert_eq!(ended.status(), 204);
    assert!(!signed_in(&app, &browser).await);
    assert_eq!(refresh(&app, &client, text(&tokens, "refresh_token")).await.0, 400);
    assert_eq!(userinfo(&app, text(&tokens, "access_token")).await.status(), 401);
    let unknown = app.admin(Method::DELETE, "/admin/users/nobody/sessions", None).await;
    assert_eq!(unknown.status(), 404);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let tokens = flow(&app, &browser, &client, "ulla", "openid offline_access").await;
    let env = process_env(&app.db);
    let output = castellan(app.db.dir.path())
        .args(["users", "end-sessions", "--id", &id])
        .envs(as_refs(&env))
        .output()
        .expect("castellan users end-sessions");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    assert!(!signed_in(&app, &browser).await, "the sessions are rows: gone at once");
    assert_eq!(refresh(&app, &client, text(&tokens, "refresh_token")).await.0, 400);
    let access = text(&tokens, "access_token");
    let refused = eventually(Duration::from_secs(2), || async {
        userinfo(&app, access).await.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(refused, "the running server follows the CLI's cut-off within the sync interval");
}

/// Item 7: a registered loopback URI matches on any port and nothing else (RFC 8252 §7.3).
#[tokio::test]
async fn loopback_redirect_uris_vary_in_the_port_only() {
    let app = spawn_app().await;
    let registered = app
        .create_client(json!({"redirect_uris": ["http://127.0.0.1/cb"], "scope": "openid"}))
        .await;
    let id = text(&registered, "client_id");
    let (_, challenge) = pkce();
    let status = |redirect_uri: &'static str| {
        let app = &app;
        let challenge = &challenge;
        async move {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("response_type", "code")
                .append_pair("client_id", id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", "openid")
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256")
                .finish();
            let response = Browser::new().get(&app.url(&format!("/authorize?{query}"))).await;
            (response.status(), location(&response))
        }
    };

    let (code, to) = status("http://127.0.0.1:5555/cb").await;
    assert_eq!(code, StatusCode::SEE_OTHER, "accepted: on to the login page");
    assert!(to.expect("a location").contains("/login"));
    for evil in [
        "http://127.0.0.1:5555\\evil\\path/cb",
        "http://127.0.0.1:80#/cb",
        "http://127.0.0.1:x@127.0.0.1/cb",
        "http://127.0.0.1:5555/cb/../evil",
        "http://127.0.0.1:5555/CB",
        "http://127.0.0.1:5555/cb?x=1",
        "http://localhost:5555/cb",
        "http://127.0.0.1:5555/cb\n",
    ] {
        let (code, to) = status(evil).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{evil:?}");
        assert_eq!(to, None, "{evil:?}: never redirected");
    }
}

/// Item 8: introspection answers only the token's own client and the servers of its
/// audiences (RFC 7662 §4); everyone else learns nothing.
#[tokio::test]
async fn only_a_tokens_client_or_the_servers_of_its_audiences_may_introspect_it() {
    let app = spawn_app().await;
    user(&app, "ines").await;
    let api = "https://api.example.com";
    let client = web_client_with(&app, "openid profile", json!({"audience": [api]})).await;
    let issuer_server = app.resource_server().await;
    let api_server = app
        .create_client(json!({"grant_types": ["client_credentials"], "scope": "profile", "served_resources": [api]}))
        .await;
    let api_server =
        (text(&api_server, "client_id").to_owned(), text(&api_server, "client_secret").to_owned());
    let stranger = app.service_client("profile", &[]).await;

    let with_openid = tokens_for(&app, &client, "ines", "openid profile").await;
    let access = text(&with_openid, "access_token");
    assert!(active(&app, &client, access).await, "its own client");
    assert!(active(&app, &api_server, access).await, "the API it is meant for");
    assert!(active(&app, &issuer_server, access).await, "UserInfo's audience: the issuer");
    assert!(!active(&app, &stranger, access).await, "another client learns nothing");

    let api_only = tokens_for(&app, &client, "ines", "profile").await;
    let access = text(&api_only, "access_token");
    assert_eq!(jwt_claims(access)["aud"], api);
    assert!(active(&app, &api_server, access).await);
    assert!(!active(&app, &issuer_server, access).await, "not meant for the issuer");
    assert!(!active(&app, &stranger, access).await);
}

/// Item 9: a `return_to` with CR, LF or NUL is a 400 page before any session exists.
#[tokio::test]
async fn a_return_to_with_control_characters_is_refused_before_a_session_is_made() {
    let app = spawn_app().await;
    user(&app, "rita").await;
    let client = web_client_with(&app, "openid", json!({})).await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    let page = browser.follow(&app, browser.get(&url).await).await.text().await.expect("page");
    let csrf = input(&page, "csrf_token").expect("csrf");
    let return_to = input(&page, "return_to").expect("return_to");
    let db = app.store().await;

    for bad in ["\r\nSet-Cookie: x=y", "\n", "\0"] {
        let form = [
            ("username", "rita"),
            ("password", PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("return_to", &format!("{return_to}{bad}")),
        ];
        let response = browser.post(&app.url("/login"), &form).await;

        assert_eq!(response.status(), 400, "{bad:?}");
        assert!(response.headers().contains_key("content-security-policy"), "a page of ours");
        assert!(response.headers().get("set-cookie").is_none(), "{bad:?}: no session cookie");
        let sessions = entity::session::Entity::find().count(&db).await.expect("count");
        assert_eq!(sessions, 0, "{bad:?}: no session row");
    }
}

/// Item 9: with an internal listener, metrics are served there only; health on both.
#[tokio::test]
async fn metrics_move_to_the_internal_listener_when_one_is_set() {
    let app = spawn_app_with(|s| {
        s.internal_bind = Some("127.0.0.1:0".parse().expect("address"));
    })
    .await;
    let internal = app.internal.clone().expect("an internal listener");
    let get = |url: String| {
        let http = &app.http;
        async move { http.get(url).send().await.expect("GET").status() }
    };

    assert_eq!(get(app.url("/metrics")).await, StatusCode::NOT_FOUND, "not on the public port");
    assert_eq!(get(format!("{internal}/metrics")).await, StatusCode::OK);
    assert_eq!(get(format!("{internal}/health/ready")).await, StatusCode::OK);
    assert_eq!(get(app.url("/health/ready")).await, StatusCode::OK);
    assert_eq!(get(format!("{internal}/jwks")).await, StatusCode::NOT_FOUND, "nothing else");

    let public = spawn_app().await;
    assert_eq!(public.get("/metrics").await.status(), 200, "without one, metrics stay public");
}

/// Item 9: an https issuer gets `Strict-Transport-Security` on every response.
#[tokio::test]
async fn an_https_issuer_sends_strict_transport_security() {
    let https = spawn_app_with(|s| {
        s.issuer =
            Some(castellan::config::Issuer::parse("https://login.castellan.test").expect("issuer"));
    })
    .await;
    for path in ["/.well-known/openid-configuration", "/login", "/health/live"] {
        let response = https.get(path).await;
        let hsts = response.headers().get("strict-transport-security").expect(path);
        assert!(hsts.to_str().expect("ascii").starts_with("max-age="), "{path}");
    }
    let http = spawn_app().await;
    let response = http.get("/.well-known/openid-configuration").await;
    assert!(response.headers().get("strict-transport-security").is_none(), "never over http");
}

async fn raw_admin_post(app: &TestApp, body: &str) -> (u16, Value) {
    let token = app.admin_token().await;
    let response = app
        .http
        .post(app.url("/admin/clients"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("POST");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

/// Item 9: admin JSON with a repeated member is refused, not read as its last value; a
/// lifetime that does not fit is refused, not stored truncated.
#[tokio::test]
async fn admin_bodies_with_repeated_members_or_oversized_lifetimes_are_400() {
    let app = spawn_app().await;
    let repeated = r#"{"grant_types":["client_credentials"],"scope":"profile","scope":"admin"}"#;
    let (status, body) = raw_admin_post(&app, repeated).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        (body["error"].as_str(), body["field"].as_str()),
        (Some("invalid_request"), Some("body"))
    );

    for lifetime in ["4294967295", "2147483648", "-1", "0"] {
        let body = format!(
            r#"{{"redirect_uris":["https://app.example/cb"],"scope":"openid offline_access","refresh_token_lifetime":{lifetime}}}"#
        );
        let (status, answer) = raw_admin_post(&app, &body).await;
        assert_eq!(status, 400, "{lifetime}: {answer}");
        assert_eq!(answer["field"], "refresh_token_lifetime", "{lifetime}");
    }
    let fits = r#"{"redirect_uris":["https://app.example/cb"],"scope":"openid offline_access","refresh_token_lifetime":2592000}"#;
    let (status, created) = raw_admin_post(&app, fits).await;
    assert_eq!(status, 201, "{created}");
    let id = text(&created, "client_id");
    let read: Value = app
        .admin(Method::GET, &format!("/admin/clients/{id}"), None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(read["refresh_token_lifetime"], 2_592_000, "stored as sent");
}
