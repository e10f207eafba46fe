//! Expired state is purged in bounded batches; live state stays.

use castellan::store::{self, revocations::Kind, sessions::SessionRecord};
use chrono::{Duration, Utc};
use entity::{refresh_family, refresh_token};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::browser::user;
use crate::helpers::{spawn_app, spawn_app_with};

/// A refresh family of `user_id`, written straight to the store, ending at `absolute_expiry`.
async fn insert_family(
    db: &castellan::store::Db,
    id: &str,
    user_id: &str,
    absolute_expiry: chrono::DateTime<Utc>,
) {
    let now = Utc::now();
    let family = refresh_family::ActiveModel {
        id: Set(id.to_owned()),
        grant_id: Set("g".into()),
        client_id: Set("c".into()),
        user_id: Set(user_id.to_owned()),
        scope: Set("openid".into()),
        auth_time: Set(now),
        amr: Set(None),
        sid: Set(None),
        created_at: Set(now),
        absolute_expires_at: Set(absolute_expiry),
        revoked_at: Set(None),
    };
    refresh_family::Entity::insert(family).exec(db).await.expect("family");
}

#[tokio::test]
async fn expired_sessions_refresh_tokens_and_revocations_go_in_bounded_batches() {
    let app = spawn_app().await;
    let db = app.store().await;
    let user_id = user(&app, "kai").await;
    let now = Utc::now();
    let past = now - Duration::hours(1);
    let future = now + Duration::hours(1);
    for (i, expires_at) in [past, past, past, future].into_iter().enumerate() {
        let session = SessionRecord {
            id_hash: vec![i as u8; 32],
            user_id: user_id.clone(),
            auth_time: now,
            last_seen_at: now,
            expires_at,
            user_agent: None,
            address: None,
            amr: None,
        };
        store::sessions::insert(&db, &session).await.expect("session");
        insert_family(&db, &format!("family-{i}"), &user_id, expires_at).await;
        let token = refresh_token::ActiveModel {
            jti: Set(format!("jti-{i}")),
            family_id: Set(format!("family-{i}")),
            status: Set("active".into()),
            used_at: Set(None),
            created_at: Set(now),
            expires_at: Set(expires_at),
        };
        refresh_token::Entity::insert(token).exec(&db).await.expect("refresh");
        store::revocations::append(&db, Kind::AccessToken, &format!("r-{i}"), None, expires_at)
            .await
            .expect("revocation");
    }

    let purge = || async {
        (
            store::sessions::purge(&db, now, 2).await.expect("purge"),
            store::refresh_tokens::purge_families(&db, now, 2).await.expect("purge"),
            store::refresh_tokens::purge_tokens(&db, now, 2).await.expect("purge"),
            store::revocations::purge(&db, now, 2).await.expect("purge"),
        )
    };
    let (first, second) = (purge().await, purge().await);

    // Refresh: two families (their tokens go with them), then the third's expired token.
    assert_eq!(first, (2, 2, 1, 2), "a batch is bounded");
    assert_eq!(second, (1, 1, 0, 1), "the rest goes next round; live rows stay");
    assert!(store::sessions::find_with_user(&db, &[3u8; 32]).await.expect("find").is_some());
    assert!(store::refresh_tokens::find(&db, "jti-3").await.expect("find").is_some());
    assert!(store::refresh_tokens::find(&db, "jti-2").await.expect("find").is_none());
    let left = store::revocations::after(&db, 0, now - Duration::hours(2), 10).await.expect("log");
    assert_eq!(left.iter().map(|e| e.value.as_str()).collect::<Vec<_>>(), vec!["r-3"]);
}

/// More expired rows than one batch of each kind (and than the old once-a-minute purge of 500
/// could clear in ten seconds), written behind the running server's back.
const BACKLOG: usize = 3000;

#[tokio::test]
async fn the_running_server_works_through_an_expired_backlog_and_keeps_live_rows() {
    let app = spawn_app_with(|s| s.purge_interval = std::time::Duration::from_millis(200)).await;
    let db = app.store().await;
    let user_id = user(&app, "noor").await;
    let now = Utc::now();
    let (past, future) = (now - Duration::minutes(5), now + Duration::hours(1));
    insert_family(&db, "family", &user_id, future).await;
    let tokens: Vec<_> = (0..=BACKLOG)
        .map(|i| refresh_token::ActiveModel {
            jti: Set(format!("jti-{i}")),
            family_id: Set("family".into()),
            status: Set("used".into()),
            used_at: Set(Some(now)),
            created_at: Set(now),
            // The last one is live.
            expires_at: Set(if i == BACKLOG { future } else { past }),
        })
        .collect();
    for chunk in tokens.chunks(500) {
        refresh_token::Entity::insert_many(chunk.to_vec()).exec(&db).await.expect("tokens");
    }
    for i in 0..=BACKLOG {
        let session = SessionRecord {
            id_hash: (i as u64).to_be_bytes().repeat(4),
            user_id: user_id.clone(),
            auth_time: now,
            last_seen_at: now,
            expires_at: if i == BACKLOG { future } else { past },
            user_agent: None,
            address: None,
            amr: None,
        };
        store::sessions::insert(&db, &session).await.expect("session");
    }

    let expired = || async {
        let tokens = refresh_token::Entity::find()
            .filter(refresh_token::Column::ExpiresAt.lt(now))
            .count(&db)
            .await
            .expect("count");
        let sessions = entity::session::Entity::find()
            .filter(entity::session::Column::ExpiresAt.lt(now))
            .count(&db)
            .await
            .expect("count");
        tokens + sessions
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while expired().await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "{} expired rows left", expired().await);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let live = format!("jti-{BACKLOG}");
    assert!(store::refresh_tokens::find(&db, &live).await.expect("find").is_some());
    let live_session = (BACKLOG as u64).to_be_bytes().repeat(4);
    assert!(store::sessions::find_with_user(&db, &live_session).await.expect("find").is_some());
    // The round counts its deletions when it ends, a moment after the last batch.
    let lines: Vec<String> = ["refresh_tokens", "sessions"]
        .iter()
        .map(|table| format!("castellan_rows_purged_total{{table=\"{table}\"}} {BACKLOG}"))
        .collect();
    crate::helpers::eventually(std::time::Duration::from_secs(5), || async {
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        lines.iter().all(|line| metrics.contains(line))
    })
    .await;
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for line in &lines {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}
