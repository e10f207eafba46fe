//! Expired state is purged in bounded batches; live state stays.

use castellan::store::{self, revocations::Kind, sessions::SessionRecord};
use chrono::{Duration, Utc};
use entity::{refresh_family, refresh_token};
use sea_orm::{ActiveValue::Set, EntityTrait};

use crate::browser::user;
use crate::helpers::spawn_app;

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
        };
        store::sessions::insert(&db, &session).await.expect("session");
        let family = refresh_family::ActiveModel {
            id: Set(format!("family-{i}")),
            grant_id: Set("g".into()),
            client_id: Set("c".into()),
            user_id: Set(user_id.clone()),
            scope: Set("openid".into()),
            auth_time: Set(now),
            created_at: Set(now),
            absolute_expires_at: Set(expires_at),
            revoked_at: Set(None),
        };
        refresh_family::Entity::insert(family).exec(&db).await.expect("family");
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

    let first = (
        store::sessions::purge(&db, now, 2).await.expect("purge"),
        store::refresh_tokens::purge(&db, now, 2).await.expect("purge"),
        store::revocations::purge(&db, now, 2).await.expect("purge"),
    );
    let second = (
        store::sessions::purge(&db, now, 2).await.expect("purge"),
        store::refresh_tokens::purge(&db, now, 2).await.expect("purge"),
        store::revocations::purge(&db, now, 2).await.expect("purge"),
    );

    // Refresh: two families (their tokens go with them), then the third's expired token.
    assert_eq!(first, (2, 3, 2), "a batch is bounded");
    assert_eq!(second, (1, 1, 1), "the rest goes next round; live rows stay");
    assert!(store::sessions::find_with_user(&db, &[3u8; 32]).await.expect("find").is_some());
    assert!(store::refresh_tokens::find(&db, "jti-3").await.expect("find").is_some());
    assert!(store::refresh_tokens::find(&db, "jti-2").await.expect("find").is_none());
    let left = store::revocations::after(&db, 0, now - Duration::hours(2), 10).await.expect("log");
    assert_eq!(left.iter().map(|e| e.value.as_str()).collect::<Vec<_>>(), vec!["r-3"]);
}
