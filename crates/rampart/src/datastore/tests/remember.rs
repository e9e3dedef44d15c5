//! Remember-me series: expiry, deletion, and going with their user (`datastore/remember.rs`).

use super::*;

datastore_test!(
    remember_series_live_until_expiry_or_deletion_and_go_with_their_user,
    async |store: Datastore| {
        let backend = store.backend_name();
        let ann = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        let bob = store
            .create_user(&new_user("bob@example.com", None), "u2", NOW, &[])
            .await
            .expect("create");
        let later = datetime!(2025-02-01 00:00:00);
        let expired_by = datetime!(2025-03-01 00:00:00);
        for (hash, user) in [("a1", ann.id), ("a2", ann.id), ("b1", bob.id)] {
            store
                .remember_series_create(hash, user, NOW, later)
                .await
                .expect("create series");
        }
        assert_eq!(
            store.remember_series_use("a1", NOW).await.unwrap(),
            Some(ann.id),
            "{backend}"
        );
        assert_eq!(
            store.remember_series_use("nope", NOW).await.unwrap(),
            None,
            "{backend}"
        );
        assert_eq!(
            store.remember_series_use("a1", expired_by).await.unwrap(),
            None,
            "{backend}"
        );

        assert!(
            store.remember_series_delete("a1").await.unwrap(),
            "{backend}"
        );
        assert!(
            !store.remember_series_delete("a1").await.unwrap(),
            "{backend}"
        );
        assert_eq!(
            store.remember_series_use("a1", NOW).await.unwrap(),
            None,
            "{backend}"
        );
        assert_eq!(
            store.remember_series_use("a2", NOW).await.unwrap(),
            Some(ann.id),
            "{backend}"
        );

        // A new series tidies up the user's expired ones.
        store
            .remember_series_create("a3", ann.id, expired_by, datetime!(2026-01-01 00:00:00))
            .await
            .expect("create series");
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM \"rampart_remember\"").await,
            2,
            "{backend}: a2 expired and went, b1 and a3 stay"
        );
        assert_eq!(
            store.remember_series_delete_of_user(ann.id).await.unwrap(),
            1,
            "{backend}"
        );
        store.delete_user(bob.id).await.expect("delete bob");
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM \"rampart_remember\"").await,
            0,
            "{backend}: a user's series go with them"
        );
    }
);
