//! Expired state is purged in bounded batches; live state stays.

use castellan::store::{self, refresh_tokens::RefreshRecord, sessions::SessionRecord};
use chrono::{Duration, Utc};

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
        let refresh = RefreshRecord {
            jti: format!("jti-{i}"),
            family_id: "f".into(),
            grant_id: "g".into(),
            client_id: "c".into(),
            user_id: user_id.clone(),
            scope: "openid".into(),
            auth_time: now,
            created_at: now,
            expires_at,
            absolute_expires_at: expires_at,
        };
        store::refresh_tokens::insert(&db, &refresh).await.expect("refresh");
        store::revocations::revoke(&db, store::revocations::JTI, &format!("r-{i}"), expires_at)
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

    assert_eq!(first, (2, 2, 2), "a batch is bounded");
    assert_eq!(second, (1, 1, 1), "the rest goes next round; live rows stay");
    assert!(store::sessions::find(&db, &[3u8; 32]).await.expect("find").is_some());
    assert!(store::refresh_tokens::find(&db, "jti-3").await.expect("find").is_some());
    assert!(
        store::revocations::any_revoked(&db, store::revocations::JTI, &["r-3"])
            .await
            .expect("find")
    );
}
