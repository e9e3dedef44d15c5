//! Rate-limit counters: windows, undone hits, concurrent hits (`datastore/rate_limit.rs`).

use super::*;

datastore_test_with_redis!(
    rate_limit_allows_the_limit_per_window_then_refuses_until_it_ends,
    async |store: Datastore| {
        let backend = store.backend_name();
        let window = Duration::from_secs(60);
        let start = datetime!(2025-01-01 12:00:00);
        for (i, remaining) in [2, 1, 0].into_iter().enumerate() {
            let at = start + time::Duration::seconds(i64::try_from(i).expect("small") * 10);
            let decision = store
                .rate_limit_hit("login:ann", 3, window, at)
                .await
                .expect("hit");
            assert!(decision.allowed, "{backend}: hit {i}");
            assert_eq!(decision.remaining, remaining, "{backend}: hit {i}");
            assert_eq!(decision.retry_after, Duration::ZERO);
        }
        let refused = store
            .rate_limit_hit("login:ann", 3, window, start + time::Duration::seconds(45))
            .await
            .expect("hit");
        assert!(!refused.allowed, "{backend}");
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, Duration::from_secs(15), "{backend}");
        let other = store
            .rate_limit_hit("login:bob", 3, window, start + time::Duration::seconds(45))
            .await
            .expect("hit");
        assert!(other.allowed, "{backend}: keys are independent");

        let renewed = store
            .rate_limit_hit("login:ann", 3, window, start + time::Duration::seconds(60))
            .await
            .expect("hit");
        assert!(renewed.allowed, "{backend}: a new window started");
        assert_eq!(renewed.remaining, 2);

        for _ in 0..3 {
            store
                .rate_limit_hit("login:ann", 3, window, start + time::Duration::seconds(61))
                .await
                .expect("hit");
        }
        store.rate_limit_reset("login:ann").await.expect("reset");
        let after_reset = store
            .rate_limit_hit("login:ann", 3, window, start + time::Duration::seconds(62))
            .await
            .expect("hit");
        assert!(after_reset.allowed, "{backend}");
        assert_eq!(after_reset.remaining, 2);
    }
);

datastore_test_with_redis!(
    an_undone_hit_gives_its_place_back_and_never_goes_below_zero,
    async |store: Datastore| {
        let backend = store.backend_name();
        let window = Duration::from_secs(60);
        // Nothing to undo: no row appears, and the key starts from zero.
        store.rate_limit_undo("basic:ann").await.expect("undo");
        for _ in 0..2 {
            let hit = store
                .rate_limit_hit("basic:ann", 2, window, NOW)
                .await
                .expect("hit");
            assert!(hit.allowed, "{backend}");
        }
        store.rate_limit_undo("basic:ann").await.expect("undo");
        let again = store
            .rate_limit_hit("basic:ann", 2, window, NOW)
            .await
            .expect("hit");
        assert!(again.allowed, "{backend}: the undone hit freed a place");
        assert_eq!(again.remaining, 0, "{backend}");
        let refused = store
            .rate_limit_hit("basic:ann", 2, window, NOW)
            .await
            .expect("hit");
        assert!(!refused.allowed, "{backend}");
        for _ in 0..5 {
            store.rate_limit_undo("basic:bob").await.expect("undo");
        }
        let bob = store
            .rate_limit_hit("basic:bob", 2, window, NOW)
            .await
            .expect("hit");
        assert_eq!(bob.remaining, 1, "{backend}: undo never banks hits");
    }
);

datastore_test_with_redis!(
    concurrent_hits_are_counted_exactly,
    async |store: Datastore| {
        let backend = store.backend_name();
        let hits = (0..20).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .rate_limit_hit("flood", 5, Duration::from_secs(60), NOW)
                    .await
                    .expect("hit")
            })
        });
        let mut allowed = 0;
        for hit in hits.collect::<Vec<_>>() {
            if hit.await.expect("task").allowed {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5, "{backend}");
    }
);

#[tokio::test]
async fn redis_that_does_not_answer_is_unavailable() {
    let (store, _database) =
        crate::testing::TestDatabase::open(&crate::testing::TestBackend::Sqlite)
            .await
            .expect("open");
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    let err = store
        .use_redis(&format!("redis://127.0.0.1:{port}/0"))
        .await
        .expect_err("no Redis there");
    assert!(err.is_unavailable(), "{err:?}");
    assert!(!store.uses_redis());
    let err = store
        .use_redis("http://not-redis")
        .await
        .expect_err("bad URL");
    assert!(matches!(err, DatastoreError::Config(_)), "{err:?}");
}
