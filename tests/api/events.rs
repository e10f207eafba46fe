//! The audit trail (docs/REFERENCE.md §6.5): every change is recorded with its actor,
//! subject and outcome in the change's own transaction, never with a secret; a change that
//! fails records nothing; `GET /admin/events` filters and pages; old events are purged.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{
    Browser, PASSWORD, authorize_url, authorize_with_consent, input, location, params, pkce,
    redeem, user, web_client,
};
use crate::helpers::{
    ServerProcess, TestApp, TestDatabase, as_refs, cli_admin, eventually, process_env, spawn_app,
    spawn_app_with, token_from,
};

/// The events `query` selects (one page of up to 100), newest first.
async fn events(app: &TestApp, query: &str) -> Vec<Value> {
    let response = app.admin(Method::GET, &format!("/admin/events?limit=100&{query}"), None).await;
    assert_eq!(response.status(), 200, "GET /admin/events?{query}");
    let page: Value = response.json().await.expect("JSON");
    page["items"].as_array().expect("items").clone()
}

/// The types of the events about `subject`, oldest first.
async fn types_about(app: &TestApp, subject: &str) -> Vec<String> {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("subject", subject)
        .finish();
    let mut types: Vec<String> = events(app, &query)
        .await
        .iter()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect();
    types.reverse();
    types
}

/// Every event, walking the pages `limit` at a time.
async fn all_events(app: &TestApp, limit: u32) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/admin/events?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = app.admin(Method::GET, &path, None).await.json().await.expect("JSON");
        all.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

fn admin_actor(app: &TestApp) -> String {
    format!("client:{}", app.admin.0)
}

/// A browser signed in as `username` (with the test password), on its account page.
async fn signed_in(app: &TestApp, username: &str, password: &str) -> (Browser, reqwest::Response) {
    let browser = Browser::new();
    let page = browser.get(&app.url("/login")).await.text().await.expect("login page");
    let response = crate::browser::log_in(&browser, app, &page, username, password).await;
    (browser, response)
}

#[tokio::test]
async fn admin_changes_to_clients_and_scopes_are_recorded_with_the_admin_as_actor() {
    let app = spawn_app().await;
    let scope = app
        .admin(Method::POST, "/admin/scopes", Some(json!({"name": "reports", "description": "R"})))
        .await;
    assert_eq!(scope.status(), 201);
    let put = json!({"description": "Reports"});
    assert_eq!(app.admin(Method::PUT, "/admin/scopes/reports", Some(put)).await.status(), 200);
    let (client_id, _) = app.service_client("reports", &[]).await;
    let path = format!("/admin/clients/{client_id}");
    let metadata = json!({"client_name": "renamed", "grant_types": ["client_credentials"], "scope": "reports"});
    assert_eq!(app.admin(Method::PUT, &path, Some(metadata)).await.status(), 200);
    let rotate = app.admin(Method::POST, &format!("{path}/secret"), None).await;
    assert_eq!(rotate.status(), 200);
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    assert_eq!(app.admin(Method::DELETE, "/admin/scopes/reports", None).await.status(), 204);

    let subject = format!("client:{client_id}");
    assert_eq!(
        types_about(&app, &subject).await,
        ["client.created", "client.updated", "client.secret_rotated", "client.deleted"]
    );
    assert_eq!(
        types_about(&app, "scope:reports").await,
        ["scope.created", "scope.updated", "scope.deleted"]
    );
    for event in events(&app, &format!("subject=client:{client_id}")).await {
        assert_eq!(event["actor"]["id"], admin_actor(&app).as_str(), "{event}");
        assert_eq!(event["outcome"], "success");
        assert_eq!(event["actor"]["address"], "127.0.0.1");
        assert!(event["actor"]["request_id"].as_str().is_some_and(|id| !id.is_empty()), "{event}");
        assert!(event["at"].as_str().is_some(), "{event}");
    }
}

#[tokio::test]
async fn admin_changes_to_users_keys_and_registration_are_recorded() {
    let app = spawn_app().await;
    let user_id = user(&app, "uma").await;
    let path = format!("/admin/users/{user_id}");
    let body = |extra: Value| {
        let mut body = json!({"username": "uma", "email": "uma@example.com", "name": "Uma"});
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    for extra in [
        json!({"admin": true}),
        json!({"password": "another long passphrase"}),
        json!({"disabled": true}),
    ] {
        assert_eq!(app.admin(Method::PUT, &path, Some(body(extra))).await.status(), 200);
    }
    let sessions = app.admin(Method::DELETE, &format!("{path}/sessions"), None).await;
    assert_eq!(sessions.status(), 204);
    assert_eq!(app.admin(Method::DELETE, &path, None).await.status(), 204);
    assert_eq!(app.admin(Method::POST, "/admin/keys/rotate?force=true", None).await.status(), 200);
    let issued = app.admin(Method::POST, "/admin/initial-access-tokens", Some(json!({}))).await;
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.expect("JSON");
    let token_id = issued["id"].as_str().expect("id");
    let revoke_path = format!("/admin/initial-access-tokens/{token_id}");
    assert_eq!(app.admin(Method::DELETE, &revoke_path, None).await.status(), 204);

    let subject = format!("user:{user_id}");
    assert_eq!(
        types_about(&app, &subject).await,
        [
            "user.created",
            "user.updated",
            "user.password_reset",
            "user.disabled",
            "user.sessions_ended",
            "user.deleted"
        ]
    );
    let updated = &events(&app, "type=user.updated").await[0];
    assert_eq!(updated["detail"]["admin_changed"], true, "{updated}");
    let rotated = events(&app, "type=key.rotated").await;
    assert!(!rotated.is_empty());
    for event in &rotated {
        assert!(event["subject"].as_str().expect("subject").starts_with("key:"), "{event}");
        assert_eq!(event["actor"]["id"], admin_actor(&app).as_str());
    }
    assert_eq!(
        types_about(&app, &format!("initial_access_token:{token_id}")).await,
        ["initial_access_token.issued", "initial_access_token.revoked"]
    );
}

#[tokio::test]
async fn sign_in_consent_grant_revocation_and_logout_are_recorded_with_the_user_as_actor() {
    let app = spawn_app().await;
    let user_id = user(&app, "ugo").await;
    let client = web_client(&app, "Recorded", "openid profile").await;
    let browser = Browser::new();
    let (_, challenge) = pkce();
    let back = authorize_with_consent(
        &browser,
        &app,
        &authorize_url(&app, &client.0, &challenge, "openid profile", "s"),
        "ugo",
    )
    .await;
    assert!(location(&back).expect("redirect").contains("code="));
    let consent = &events(&app, "type=consent.given").await[0];
    let grant = consent["subject"].as_str().expect("subject").to_owned();
    let grant_id = grant.strip_prefix("grant:").expect("a grant").to_owned();
    let account = browser.get(&app.url("/account")).await.text().await.expect("account");
    let csrf = input(&account, "csrf_token").expect("csrf_token");
    let revoked = browser
        .post(&app.url(&format!("/account/grants/{grant_id}/revoke")), &[("csrf_token", &csrf)])
        .await;
    assert_eq!(revoked.status(), 303);
    let page = browser.get(&app.url("/logout")).await.text().await.expect("logout page");
    let csrf = input(&page, "csrf_token").expect("csrf_token");
    assert_eq!(browser.post(&app.url("/logout"), &[("csrf_token", &csrf)]).await.status(), 200);

    let me = format!("user:{user_id}");
    let mine: Vec<String> = events(&app, &format!("actor={me}"))
        .await
        .iter()
        .rev()
        .map(|e| e["type"].as_str().expect("type").to_owned())
        .collect();
    assert_eq!(mine, ["sign_in", "consent.given", "grant.revoked", "logout"]);
    assert_eq!(consent["detail"]["client_id"], client.0.as_str());
    assert!(consent["detail"]["scope"].as_str().is_some_and(|s| s.contains("profile")));
    assert_eq!(types_about(&app, &grant).await, ["consent.given", "grant.revoked"]);
    let revocation = &events(&app, "type=grant.revoked").await[0];
    assert_eq!(revocation["detail"]["by"], "user");
}

#[tokio::test]
async fn an_admin_revoking_a_grant_is_recorded_and_a_missing_grant_records_nothing() {
    let app = spawn_app().await;
    user(&app, "gus").await;
    let client = web_client(&app, "Granted", "openid").await;
    let (_, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid", "s");
    authorize_with_consent(&Browser::new(), &app, &url, "gus").await;
    let grant = events(&app, "type=consent.given").await[0]["subject"]
        .as_str()
        .expect("subject")
        .to_owned();
    let grant_id = grant.strip_prefix("grant:").expect("grant");

    let missing = app.admin(Method::DELETE, "/admin/grants/no-such-grant", None).await;
    let revoked = app.admin(Method::DELETE, &format!("/admin/grants/{grant_id}"), None).await;

    assert_eq!((missing.status().as_u16(), revoked.status().as_u16()), (404, 204));
    assert!(events(&app, "subject=grant:no-such-grant").await.is_empty());
    let revocation = &events(&app, "type=grant.revoked").await[0];
    assert_eq!(revocation["subject"], grant.as_str());
    assert_eq!(revocation["actor"]["id"], admin_actor(&app).as_str());
    assert_eq!(revocation["detail"]["by"], "admin");
}

#[tokio::test]
async fn changes_that_fail_record_nothing() {
    let app = spawn_app().await;
    let scope = json!({"name": "held", "description": "Held by a client"});
    assert_eq!(app.admin(Method::POST, "/admin/scopes", Some(scope.clone())).await.status(), 201);
    app.service_client("held", &[]).await;
    let before = all_events(&app, 100).await.len();

    // Validation, a unique violation and a foreign-key refusal inside the transaction, and
    // deletions of what does not exist.
    let invalid = json!({"client_name": "x", "grant_types": ["password"]});
    let statuses = [
        app.admin(Method::POST, "/admin/clients", Some(invalid)).await.status(),
        app.admin(Method::POST, "/admin/scopes", Some(scope)).await.status(),
        app.admin(Method::DELETE, "/admin/scopes/held", None).await.status(),
        app.admin(Method::DELETE, "/admin/clients/nobody", None).await.status(),
        app.admin(Method::DELETE, "/admin/users/nobody", None).await.status(),
        app.admin(Method::DELETE, "/admin/scopes/nothing", None).await.status(),
        app.admin(
            Method::POST,
            "/admin/users",
            Some(json!({"username": "bad name", "password": "p"})),
        )
        .await
        .status(),
    ];

    assert_eq!(statuses.map(|s| s.as_u16()), [400, 409, 409, 404, 404, 404, 400]);
    assert_eq!(all_events(&app, 100).await.len(), before, "no event without its change");
    assert_eq!(types_about(&app, "scope:held").await, ["scope.created"]);
}

#[tokio::test]
async fn a_failed_sign_in_is_recorded_without_the_password_and_a_lockout_too() {
    let app = spawn_app().await;
    let user_id = user(&app, "flo").await;
    let wrong = "wrong-password-1234";

    let mut last = 0;
    for _ in 0..11 {
        last = signed_in(&app, "flo", wrong).await.1.status().as_u16();
    }

    assert_eq!(last, 429, "the eleventh wrong password is refused");
    let failures = events(&app, "type=sign_in").await;
    assert_eq!(failures.len(), 10, "{failures:?}");
    for failure in &failures {
        assert_eq!(failure["outcome"], "failure");
        assert_eq!(failure["subject"], format!("user:{user_id}").as_str());
        assert_eq!(failure["actor"]["id"], "anonymous");
        assert!(!failure.to_string().contains(wrong), "{failure}");
    }
    let locked = events(&app, "type=sign_in.locked").await;
    assert_eq!(locked.len(), 1);
    assert_eq!(locked[0]["outcome"], "failure");
    assert!(locked[0]["detail"]["retry_after"].as_u64().is_some_and(|s| s > 0));
    let unknown = signed_in(&app, "nobody-here", wrong).await.1;
    assert_eq!(unknown.status(), 401);
    let about_nobody = events(&app, "subject=user:unknown").await;
    assert_eq!(about_nobody.len(), 1);
    assert!(!about_nobody[0].to_string().contains("nobody-here"), "no username as typed");
}

#[tokio::test]
async fn refresh_token_reuse_and_code_replay_are_recorded() {
    let app = spawn_app_with(|s| s.refresh_reuse_grace = Duration::from_millis(100)).await;
    user(&app, "rae").await;
    let client = web_client(&app, "Replayed", "openid offline_access").await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid offline_access", "s");
    let back = authorize_with_consent(&browser, &app, &url, "rae").await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    let tokens: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    let first = tokens["refresh_token"].as_str().expect("refresh").to_owned();
    let form = [("grant_type", "refresh_token"), ("refresh_token", first.as_str())];
    assert_eq!(app.token_basic(&client.0, &client.1, &form).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let reuse = app.token_basic(&client.0, &client.1, &form).await;
    let replay = redeem(&app, &client, &code, &verifier).await;

    assert_eq!((reuse.status().as_u16(), replay.status().as_u16()), (400, 400));
    let reused = events(&app, "type=refresh_token.reused").await;
    assert_eq!(reused.len(), 1, "{reused:?}");
    assert_eq!(reused[0]["outcome"], "failure");
    assert_eq!(reused[0]["actor"]["id"], format!("client:{}", client.0).as_str());
    assert!(reused[0]["subject"].as_str().expect("subject").starts_with("grant:"));
    let replayed = events(&app, "type=authorization_code.replayed").await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0]["subject"], format!("client:{}", client.0).as_str());
    assert_eq!(replayed[0]["detail"]["family_revoked"], true);
}

#[tokio::test]
async fn device_decisions_and_dynamic_registration_are_recorded() {
    let app = spawn_app_with(|s| s.registration = castellan::config::RegistrationMode::Open).await;
    let user_id = user(&app, "dee").await;
    let device_client = crate::device::device_client(&app, "openid").await;
    let (_, allowed) = crate::device::start(&app, &device_client, Some("openid")).await;
    crate::device::decide(&app, &allowed, "dee", "allow").await;
    let (_, denied) = crate::device::start(&app, &device_client, Some("openid")).await;
    crate::device::decide(&app, &denied, "dee", "deny").await;
    let policy = json!({"mode": "open", "scope": "openid offline_access",
        "grant_types": ["authorization_code", "refresh_token"], "redirect_uri_kinds": ["loopback"],
        "resources": ["https://mcp.example/mcp"]});
    let set = app.admin(Method::PUT, "/admin/registration-policy", Some(policy)).await;
    assert_eq!(set.status(), 200);
    let metadata = json!({"client_name": "Self", "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
        "token_endpoint_auth_method": "none"});
    let response = app.http.post(app.url("/register")).json(&metadata).send().await.expect("POST");
    assert_eq!(response.status(), 201);
    let registered: Value = response.json().await.expect("JSON");
    let self_id = registered["client_id"].as_str().expect("id");
    let access = registered["registration_access_token"].as_str().expect("token");
    let deleted = app
        .http
        .delete(registered["registration_client_uri"].as_str().expect("uri"))
        .bearer_auth(access)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(deleted.status(), 204);

    let me = format!("user:{user_id}");
    let approved = events(&app, "type=device.approved").await;
    assert_eq!(approved.len(), 1);
    assert_eq!(approved[0]["actor"]["id"], me.as_str());
    assert_eq!(approved[0]["detail"]["client_id"], device_client.as_str());
    let denial = events(&app, "type=device.denied").await;
    assert_eq!(denial.len(), 1);
    assert_eq!(denial[0]["subject"], format!("client:{device_client}").as_str());
    let about_self = format!("client:{self_id}");
    assert_eq!(types_about(&app, &about_self).await, ["client.registered", "client.deleted"]);
    let deletion = &events(&app, &format!("subject={about_self}&type=client.deleted")).await[0];
    assert_eq!(deletion["actor"]["id"], about_self.as_str(), "the client deleted itself");
    let registration = &events(&app, "type=client.registered").await[0];
    assert_eq!(registration["actor"]["id"], "anonymous");
    assert_eq!(registration["detail"]["registration"], "open");
    let policy = events(&app, "type=registration_policy.set").await;
    assert_eq!(policy.len(), 1);
    assert_eq!(policy[0]["detail"]["mode"], "open");
    assert_eq!(policy[0]["actor"]["id"], admin_actor(&app).as_str());
}

#[tokio::test]
async fn no_event_holds_a_secret_token_password_or_code() {
    let app = spawn_app().await;
    let mut secrets = vec![app.admin.1.clone(), PASSWORD.to_owned()];
    let created =
        app.create_client(json!({"client_name": "s", "grant_types": ["client_credentials"]})).await;
    let id = created["client_id"].as_str().expect("id").to_owned();
    secrets.push(created["client_secret"].as_str().expect("secret").to_owned());
    let rotated: Value = app
        .admin(
            Method::POST,
            &format!("/admin/clients/{id}/secret"),
            Some(json!({"overlap_seconds": 60})),
        )
        .await
        .json()
        .await
        .expect("JSON");
    secrets.push(rotated["client_secret"].as_str().expect("secret").to_owned());
    let reset_id = user(&app, "sue").await;
    let reset = json!({"username": "sue", "password": "the reset passphrase"});
    app.admin(Method::PUT, &format!("/admin/users/{reset_id}"), Some(reset)).await;
    secrets.push("the reset passphrase".to_owned());
    let issued: Value = app
        .admin(Method::POST, "/admin/initial-access-tokens", Some(json!({})))
        .await
        .json()
        .await
        .expect("JSON");
    secrets.push(issued["token"].as_str().expect("token").to_owned());
    user(&app, "sid").await;
    let client = web_client(&app, "Secretive", "openid offline_access").await;
    secrets.push(client.1.clone());
    let (verifier, challenge) = pkce();
    let url = authorize_url(&app, &client.0, &challenge, "openid offline_access", "s");
    let back = authorize_with_consent(&Browser::new(), &app, &url, "sid").await;
    let code = params(&location(&back).expect("code"))["code"].clone();
    secrets.push(code.clone());
    let tokens: Value = redeem(&app, &client, &code, &verifier).await.json().await.expect("JSON");
    for name in ["access_token", "refresh_token", "id_token"] {
        secrets.push(tokens[name].as_str().expect(name).to_owned());
    }
    redeem(&app, &client, &code, &verifier).await;
    signed_in(&app, "sid", "a wrong passphrase").await;
    secrets.push("a wrong passphrase".to_owned());

    let all = all_events(&app, 100).await;

    assert!(all.len() >= 8, "{all:?}");
    let text = serde_json::to_string(&all).expect("JSON");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "an event holds a secret");
    }
}

#[tokio::test]
async fn events_filter_by_type_actor_subject_and_time_and_page_by_cursor() {
    let app = spawn_app().await;
    for name in ["a1", "a2", "a3", "a4", "a5"] {
        let body = json!({"name": name, "description": "d"});
        assert_eq!(app.admin(Method::POST, "/admin/scopes", Some(body)).await.status(), 201);
    }
    let all = all_events(&app, 100).await;
    let times: Vec<&str> = all.iter().map(|e| e["at"].as_str().expect("at")).collect();
    let middle = times[2];

    let pages = all_events(&app, 2).await;
    let ids: Vec<&str> = pages.iter().map(|e| e["id"].as_str().expect("id")).collect();
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(ids, all.iter().map(|e| e["id"].as_str().expect("id")).collect::<Vec<_>>());
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    let mut sorted = ids.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(sorted, ids, "newest first");
    assert_eq!(events(&app, "type=scope.created").await.len(), 5);
    assert_eq!(events(&app, "subject=scope:a3").await.len(), 1);
    assert_eq!(events(&app, &format!("actor={}", admin_actor(&app))).await.len(), all.len());
    assert!(events(&app, "actor=user:nobody").await.is_empty());
    let encode = |t: &str| url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>();
    let since = events(&app, &format!("since={}", encode(middle))).await;
    let until = events(&app, &format!("until={}", encode(middle))).await;
    assert!(since.iter().all(|e| e["at"].as_str().expect("at") >= middle));
    assert!(until.iter().all(|e| e["at"].as_str().expect("at") <= middle));
    assert_eq!(since.len() + until.len(), all.len() + 1, "the middle event is in both");
    assert!(events(&app, "since=2999-01-01T00:00:00Z").await.is_empty());
}

#[tokio::test]
async fn bad_filters_and_cursors_are_refused_and_non_admins_are_kept_out() {
    let app = spawn_app().await;
    for name in ["b1", "b2", "b3"] {
        let body = json!({"name": name, "description": "d"});
        app.admin(Method::POST, "/admin/scopes", Some(body)).await;
    }
    let page: Value =
        app.admin(Method::GET, "/admin/events?limit=1", None).await.json().await.expect("JSON");
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let tampered = format!("x{cursor}");

    for query in [
        "type=no.such.type",
        "since=yesterday",
        "until=2026-13-01T00:00:00Z",
        "since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z",
        "limit=0",
        &format!("cursor={tampered}"),
        "subject=",
    ] {
        let response = app.admin(Method::GET, &format!("/admin/events?{query}"), None).await;
        assert_eq!(response.status(), 400, "{query}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"], "invalid_request", "{query}");
        assert!(body["field"].is_string(), "{query}");
    }
    let (id, secret) = app.service_client("profile", &[]).await;
    let token = app.client_token(&id, &secret, None).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let forbidden =
        app.http.get(app.url("/admin/events")).bearer_auth(token).send().await.expect("GET");
    let anonymous = app.get("/admin/events").await;
    assert_eq!((forbidden.status().as_u16(), anonymous.status().as_u16()), (403, 401));
}

#[tokio::test]
async fn events_older_than_the_retention_are_purged_by_housekeeping() {
    let app = spawn_app_with(|s| {
        s.event_retention = Duration::from_secs(1);
        s.purge_interval = Duration::from_millis(200);
    })
    .await;
    let body = json!({"name": "fleeting", "description": "d"});
    assert_eq!(app.admin(Method::POST, "/admin/scopes", Some(body)).await.status(), 201);
    assert_eq!(types_about(&app, "scope:fleeting").await, ["scope.created"]);

    let purged = eventually(Duration::from_secs(10), || async {
        types_about(&app, "scope:fleeting").await.is_empty()
    })
    .await;

    assert!(purged, "the event outlived its retention");
}

#[tokio::test]
async fn a_zero_retention_keeps_events_forever() {
    let app = spawn_app().await;
    let body = json!({"name": "kept", "description": "d"});
    app.admin(Method::POST, "/admin/scopes", Some(body)).await;
    let db = app.store().await;
    let windows =
        |events| castellan::store::purge::Windows { attempts: Duration::from_secs(60), events };
    let later = chrono::Utc::now() + chrono::Duration::days(365);

    let kept = castellan::store::purge::Expired::Events
        .purge(&db, later, windows(Duration::ZERO), 100)
        .await
        .expect("purge");
    let gone = castellan::store::purge::Expired::Events
        .purge(&db, later, windows(Duration::from_secs(86_400)), 100)
        .await
        .expect("purge");

    assert_eq!((kept, gone), (0, 1));
}

#[tokio::test]
async fn the_failure_that_locks_out_a_guessing_address_is_recorded_once() {
    let app = spawn_app_with(|s| {
        s.address_failure_limit = 3;
        s.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await;
    let (id, _) = app.service_client("profile", &[]).await;
    let from = |secret: &'static str| {
        let request = app
            .http
            .post(app.url("/token"))
            .basic_auth(&id, Some(secret))
            .header("x-forwarded-for", "198.51.100.9")
            .form(&[("grant_type", "client_credentials")]);
        async move { request.send().await.expect("POST").status().as_u16() }
    };

    let statuses =
        [from("wrong").await, from("wrong").await, from("wrong").await, from("wrong").await];

    assert_eq!(statuses, [401, 401, 401, 429]);
    let locked = events(&app, "type=client_auth.locked").await;
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0]["subject"], "address:198.51.100.9");
    assert_eq!(locked[0]["actor"]["address"], "198.51.100.9");
    assert_eq!(locked[0]["outcome"], "failure");
}

#[tokio::test]
async fn a_device_code_lookup_refused_for_too_many_guesses_is_recorded() {
    let app = spawn_app().await;
    let client_id = crate::device::device_client(&app, "openid").await;
    let user_id = user(&app, "gil").await;
    let (_, started) = crate::device::start(&app, &client_id, None).await;
    let browser = Browser::new();
    let complete = started["verification_uri_complete"].as_str().expect("complete URI");
    let entry = crate::device::sign_in_at_device(&browser, &app, complete, "gil").await;

    for guess in 0..11 {
        crate::device::look_up(&browser, &app, &entry, &format!("WXYZ-{guess:04}")).await;
    }

    let locked = events(&app, "type=device_lookup.locked").await;
    assert_eq!(locked.len(), 1, "{locked:?}");
    assert_eq!(locked[0]["actor"]["id"], format!("user:{user_id}").as_str());
    assert!(!locked[0].to_string().contains("WXYZ"), "never the code typed");
}

#[tokio::test]
async fn each_recorded_event_is_one_json_audit_log_line_after_its_commit() {
    let db = TestDatabase::create().await;
    let env = process_env(&db);
    let admin = cli_admin(&db);
    let server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let token = token_from(&server.address, &admin).await;

    let created = reqwest::Client::new()
        .post(format!("{}/admin/scopes", server.address))
        .bearer_auth(token)
        .header("x-request-id", "audit-me-1")
        .json(&json!({"name": "logged", "description": "d"}))
        .send()
        .await
        .expect("POST");

    assert_eq!(created.status(), 201);
    let logged = eventually(Duration::from_secs(5), || async {
        server.stderr.lock().expect("lock").iter().any(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|line| {
                line["message"] == "audit"
                    && line["event"] == "scope.created"
                    && line["subject"] == "scope:logged"
                    && line["outcome"] == "success"
                    && line["actor"] == format!("client:{}", admin.0).as_str()
                    && line["span"]["request_id"] == "audit-me-1"
            })
        })
    })
    .await;
    assert!(logged, "{:?}", server.stderr.lock().expect("lock"));
}
