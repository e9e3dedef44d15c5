//! Server-side sessions: stored, expired, listed per user (`datastore/sessions.rs`).

use super::*;

datastore_test!(
    sessions_are_stored_expired_and_listed_per_user,
    async |store: Datastore| {
        let backend = store.backend_name();
        let user = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        let soon = datetime!(2025-01-02 04:00:00);
        let later = datetime!(2025-01-03 00:00:00);

        assert!(
            store
                .session_create("a", None, "{\"n\":1}", soon)
                .await
                .expect("create")
        );
        assert!(
            !store
                .session_create("a", None, "{\"n\":2}", soon)
                .await
                .expect("taken")
        );
        assert_eq!(
            store.session_load("a", NOW).await.expect("load").as_deref(),
            Some("{\"n\":1}"),
            "{backend}"
        );
        store
            .session_save("a", Some(user.id), "{\"n\":3}", later)
            .await
            .expect("save");
        assert_eq!(
            store
                .session_load("a", soon)
                .await
                .expect("load")
                .as_deref(),
            Some("{\"n\":3}"),
            "{backend}: save replaced data and expiry"
        );
        assert_eq!(
            store.session_load("a", later).await.expect("load"),
            None,
            "expired"
        );
        assert_eq!(store.session_load("zz", NOW).await.expect("load"), None);

        store
            .session_save("b", Some(user.id), "{}", soon)
            .await
            .expect("save");
        store
            .session_save("c", Some(user.id), "{}", later)
            .await
            .expect("save");
        store
            .session_save("anon", None, "{}", later)
            .await
            .expect("save");
        let live = store.sessions_of_user(user.id, NOW).await.expect("list");
        let mut ids: Vec<&str> = live.iter().map(|s| s.id_hash.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a", "b", "c"], "{backend}");
        let b = live.iter().find(|s| s.id_hash == "b").expect("b");
        assert_eq!(b.expiry_date, soon);
        assert!(b.last_seen_at.is_some());
        assert_eq!(
            store
                .sessions_of_user(user.id, soon)
                .await
                .expect("list")
                .len(),
            2,
            "{backend}: b expired"
        );

        assert_eq!(store.delete_expired_sessions(soon).await.expect("purge"), 1);
        assert_eq!(
            store
                .delete_sessions_of_user(user.id, Some("a"))
                .await
                .expect("delete others"),
            1,
            "{backend}"
        );
        assert!(store.session_load("a", NOW).await.expect("load").is_some());
        assert_eq!(
            store
                .delete_sessions_of_user(user.id, None)
                .await
                .expect("delete all"),
            1
        );
        store.session_delete("anon").await.expect("delete");
        store.session_delete("anon").await.expect("delete again");
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM \"rampart_session\"").await,
            0
        );

        let err = store
            .session_save("x", Some(user.id + 1), "{}", later)
            .await
            .expect_err("no such user");
        assert!(err.is_not_found(), "{backend}: {err:?}");
    }
);
