//! Key rotation (docs/REFERENCE.md §7): published before signing, retired keys kept until their tokens
//! expire, kids never reused, and every replica in step.

use castellan::oauth::audit::Actor;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use castellan::oauth::jwk::Algorithm;
use castellan::oauth::keyring::{self, KeyError, KeyState};

use crate::helpers::{
    ServerProcess, all_kids, as_refs, castellan, cli_admin, eventually, kids, process_env,
    spawn_app, spawn_app_with, token_from,
};

/// Waits until the next key has been published longer than the test JWKS cache (1 s).
async fn let_next_key_publish() {
    tokio::time::sleep(Duration::from_millis(1300)).await;
}

#[tokio::test]
async fn the_next_key_of_every_algorithm_is_published_before_it_signs() {
    let app = spawn_app().await;
    let before = app.jwks().await;
    let signing = Algorithm::ALL.map(|alg| app.keys.active_kid(alg));
    let_next_key_publish().await;

    app.keys.rotate(&app.store().await, false, Actor::system("test")).await.expect("rotation");

    let after = app.jwks().await;
    assert_eq!(all_kids(&after).len(), 12, "per algorithm: active, new next and the retired key");
    for (alg, previous) in Algorithm::ALL.into_iter().zip(signing) {
        let claims = serde_json::json!({"sub": "x"});
        let token = app.keys.sign(alg, "at+jwt", &claims).expect("sign");
        let kid = jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
        assert_ne!(kid, previous, "{alg:?} rotated");
        let published_before = published_with(&before, alg.as_str());
        assert!(published_before.contains(&kid), "the {alg:?} key that signs now was published");
        let new_next: Vec<_> = published_with(&after, alg.as_str())
            .into_iter()
            .filter(|k| !published_before.contains(k))
            .collect();
        assert_eq!(new_next.len(), 1, "{alg:?} has one new next key");
        assert_ne!(new_next[0], kid, "the new next key does not sign yet");
        assert!(all_kids(&after).contains(&previous), "the retired {alg:?} key stays published");
    }
}

fn published_with(jwks: &serde_json::Value, alg: &str) -> Vec<String> {
    let keys = jwks["keys"].as_array().expect("keys").iter();
    keys.filter(|k| k["alg"] == alg).map(|k| k["kid"].as_str().expect("kid").to_owned()).collect()
}

#[tokio::test]
async fn rotation_waits_until_the_next_key_has_outlived_jwks_caches() {
    let app = spawn_app_with(|s| s.jwks_max_age = Duration::from_secs(60)).await;
    let signing = app.keys.active_kid(Algorithm::RS256);

    let refused = app.keys.rotate(&app.store().await, false, Actor::system("test")).await;

    assert!(matches!(refused, Err(KeyError::NextTooNew(_))), "{refused:?}");
    assert_eq!(app.keys.active_kid(Algorithm::RS256), signing);
}

#[tokio::test]
async fn the_retired_key_stays_published_until_every_token_it_signed_has_expired() {
    // Tokens live at most 1 s; with 5 s of verifier leeway the key must stay 6 s.
    let app = spawn_app_with(|s| s.max_token_lifetime = Duration::from_secs(1)).await;
    let retired = app.keys.active_kid(Algorithm::RS256);
    let token =
        app.keys.sign(Algorithm::RS256, "at+jwt", &serde_json::json!({"sub": "x"})).expect("sign");
    let_next_key_publish().await;

    app.keys.rotate(&app.store().await, false, Actor::system("test")).await.expect("rotation");
    let rotated_at = Instant::now();

    assert!(app.jwks_kids().await.contains(&retired), "still published right after rotation");
    let kid = jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
    assert_eq!(kid, retired);
    let gone =
        eventually(Duration::from_secs(12), || async { !app.jwks_kids().await.contains(&retired) })
            .await;
    let published_for = rotated_at.elapsed();
    assert!(gone, "the retired key leaves the JWKS once its tokens have expired");
    assert!(
        published_for >= Duration::from_secs(6),
        "removed after {published_for:?}, before its tokens and leeway ran out"
    );
}

#[tokio::test]
async fn a_kid_is_never_reused() {
    let app = spawn_app().await;
    let db = app.store().await;

    for _ in 0..3 {
        app.keys.rotate(&db, true, Actor::system("test")).await.expect("forced rotation");
    }

    let policy = keyring::KeyPolicy {
        rotation_period: app.settings.key_rotation_period,
        retention: app.settings.max_token_lifetime,
        publish_lead: app.settings.jwks_max_age,
        stale_after: app.settings.sync_interval,
    };
    let listed = keyring::list_stored(&db, &policy).await.expect("list");
    let unique: HashSet<_> = listed.iter().map(|k| k.kid.clone()).collect();
    // Four algorithms, each: the first active and next keys, then a new next per rotation.
    assert_eq!(listed.len(), 20);
    assert_eq!(unique.len(), 20);
    for alg in Algorithm::ALL {
        let of = |state| listed.iter().filter(|k| k.alg == alg && k.state == state).count();
        assert_eq!(of(KeyState::Active), 1, "{alg:?}");
        assert_eq!(of(KeyState::Next), 1, "{alg:?}");
    }
}

#[tokio::test]
async fn keys_rotate_on_schedule() {
    let app = spawn_app_with(|s| s.key_rotation_period = Duration::from_secs(2)).await;
    let first = app.keys.active_kid(Algorithm::RS256);
    let next: Vec<_> = app.jwks_kids().await.into_iter().filter(|k| *k != first).collect();

    let rotated = eventually(Duration::from_secs(8), || async {
        app.keys.active_kid(Algorithm::RS256) != first
    })
    .await;

    assert!(rotated, "the scheduled rotation happened");
    assert_eq!(
        vec![app.keys.active_kid(Algorithm::RS256)],
        next,
        "the published next key took over"
    );
}

#[tokio::test]
async fn two_replicas_sign_with_the_same_kid_after_a_rotation_through_one_of_them() {
    let first = spawn_app().await;
    let second = first.replica().await;
    assert_eq!(first.jwks().await, second.jwks().await);
    let_next_key_publish().await;

    first.keys.rotate(&first.store().await, false, Actor::system("test")).await.expect("rotation");

    let in_step = eventually(Duration::from_secs(5), || async {
        second.keys.active_kid(Algorithm::RS256) == first.keys.active_kid(Algorithm::RS256)
            && first.jwks().await == second.jwks().await
    })
    .await;
    assert!(in_step, "the second replica signs with the new key and publishes the same set");
    let token = second
        .keys
        .sign(Algorithm::RS256, "at+jwt", &serde_json::json!({"sub": "x"}))
        .expect("sign");
    let kid = jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
    assert_eq!(kid, first.keys.active_kid(Algorithm::RS256));
}

#[tokio::test]
async fn two_server_processes_sign_with_the_same_kid_after_a_rotation_through_one_of_them() {
    let db = crate::helpers::TestDatabase::create().await;
    let env = process_env(&db);
    let first = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let second = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let admin = cli_admin(&db);
    let http = reqwest::Client::new();
    let jwks = |p: &ServerProcess| {
        let request = http.get(format!("{}/jwks", p.address));
        async move {
            request.send().await.expect("GET").json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let kid_of =
        |token: String| jsonwebtoken::decode_header(&token).expect("header").kid.expect("kid");
    let before = jwks(&first).await;
    assert_eq!(before, jwks(&second).await);
    let_next_key_publish().await;

    let rotated = http
        .post(format!("{}/admin/keys/rotate", first.address))
        .bearer_auth(token_from(&first.address, &admin).await)
        .send()
        .await
        .expect("rotate");

    assert_eq!(rotated.status(), 200);
    let listed: serde_json::Value = rotated.json().await.expect("JSON");
    let active = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["state"] == "active" && k["alg"] == "RS256")
        .expect("an active key")["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    assert!(kids(&before).contains(&active), "the activated key was published before");
    assert_eq!(kid_of(token_from(&first.address, &admin).await), active);
    let in_step = eventually(Duration::from_secs(5), || async {
        kid_of(token_from(&second.address, &admin).await) == active
            && jwks(&first).await == jwks(&second).await
    })
    .await;
    assert!(
        in_step,
        "the other process signs with the new key and publishes the same set within 5 s"
    );
}

#[tokio::test]
async fn castellan_keys_rotate_reaches_running_servers() {
    let db = crate::helpers::TestDatabase::create().await;
    let env = process_env(&db);
    let server = ServerProcess::spawn(db.dir.path(), &as_refs(&env)).await;
    let http = reqwest::Client::new();
    let jwks = || {
        let request = http.get(format!("{}/jwks", server.address));
        async move {
            request.send().await.expect("GET").json::<serde_json::Value>().await.expect("JSON")
        }
    };
    let before = jwks().await;

    let rotate = castellan(db.dir.path())
        .args(["keys", "rotate", "--force"])
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("castellan keys rotate");

    assert!(rotate.status.success(), "{}", String::from_utf8_lossy(&rotate.stderr));
    // One line per algorithm: "<alg> <kid of its active key>".
    let printed = String::from_utf8(rotate.stdout).expect("utf-8");
    let active = printed
        .lines()
        .find_map(|l| l.strip_prefix("RS256 "))
        .expect("the RS256 active key")
        .to_owned();
    assert_eq!(printed.lines().count(), 4, "{printed}");
    assert!(kids(&before).contains(&active));
    let published =
        eventually(Duration::from_secs(5), || async { kids(&jwks().await).len() == 3 }).await;
    assert!(published, "the server publishes the new next key within 5 s");
}
