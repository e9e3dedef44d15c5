//! Two-factor one-time code steps, claimed once (`datastore/two_factor.rs`).

use super::*;

datastore_test!(
    one_time_code_steps_are_claimed_once_and_in_order_per_user,
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
        assert!(
            store.claim_otp_step(ann.id, 100).await.expect("claim"),
            "{backend}"
        );
        assert!(
            !store.claim_otp_step(ann.id, 100).await.expect("replay"),
            "{backend}"
        );
        assert!(
            !store.claim_otp_step(ann.id, 99).await.expect("older"),
            "{backend}"
        );
        assert!(
            store.claim_otp_step(bob.id, 100).await.expect("other user"),
            "{backend}"
        );
        assert!(
            store.claim_otp_step(ann.id, 101).await.expect("later"),
            "{backend}"
        );

        store
            .set_two_factor(ann.id, Some("authenticator"), Some("MZGISEMC"), NOW)
            .await
            .expect("set");
        let found = store.user_by_id(ann.id).await.expect("load").expect("ann");
        assert_eq!(found.tf_primary_method.as_deref(), Some("authenticator"));
        assert_eq!(found.tf_totp_secret.as_deref(), Some("MZGISEMC"));
        store
            .set_two_factor(ann.id, None, None, NOW)
            .await
            .expect("clear");
        let found = store.user_by_id(ann.id).await.expect("load").expect("ann");
        assert_eq!(found.tf_primary_method, None);

        // Recovery codes change only from the value they were read as.
        store
            .set_recovery_codes(ann.id, Some("[\"a\",\"b\"]"), NOW)
            .await
            .expect("set codes");
        assert!(
            store
                .swap_recovery_codes(ann.id, "[\"a\",\"b\"]", "[\"b\"]", NOW)
                .await
                .expect("swap"),
            "{backend}"
        );
        assert!(
            !store
                .swap_recovery_codes(ann.id, "[\"a\",\"b\"]", "[\"a\"]", NOW)
                .await
                .expect("stale swap"),
            "a second spender loses: {backend}"
        );
        let found = store.user_by_id(ann.id).await.expect("load").expect("ann");
        assert_eq!(found.mf_recovery_codes.as_deref(), Some("[\"b\"]"));

        assert!(store.delete_user(ann.id).await.expect("delete"));
        assert_eq!(
            scalar(
                &store,
                &format!(
                    "SELECT COUNT(*) FROM \"rampart_otp_used_step\" WHERE \"user_id\" = {}",
                    ann.id
                )
            )
            .await,
            0,
            "{backend}"
        );
    }
);

datastore_test!(
    a_mailed_code_lives_until_it_expires_is_replaced_or_is_taken_once,
    async |store: Datastore| {
        let backend = store.backend_name();
        let ann = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        let later = NOW + time::Duration::minutes(5);
        store
            .mailed_code_store(ann.id, "tf-signin", "first", later)
            .await
            .expect("store");
        store
            .mailed_code_store(ann.id, "tf-setup", "setup", later)
            .await
            .expect("store another purpose");
        // A new mail replaces the live code of that purpose only.
        store
            .mailed_code_store(ann.id, "tf-signin", "second", later)
            .await
            .expect("replace");
        let live = store.mailed_code_live(ann.id, "tf-signin", NOW).await;
        assert_eq!(live.expect("live").as_deref(), Some("second"), "{backend}");
        assert_eq!(
            store
                .mailed_code_live(ann.id, "tf-setup", NOW)
                .await
                .expect("live")
                .as_deref(),
            Some("setup"),
            "{backend}"
        );
        assert_eq!(
            store
                .mailed_code_live(ann.id, "tf-signin", later)
                .await
                .expect("expired"),
            None,
            "{backend}"
        );
        assert!(
            !store
                .mailed_code_take(ann.id, "tf-signin", "first")
                .await
                .expect("take"),
            "{backend}: the replaced code"
        );
        assert!(
            store
                .mailed_code_take(ann.id, "tf-signin", "second")
                .await
                .expect("take"),
            "{backend}"
        );
        assert!(
            !store
                .mailed_code_take(ann.id, "tf-signin", "second")
                .await
                .expect("again"),
            "{backend}: single use"
        );
        assert!(
            store.delete_user(ann.id).await.expect("delete"),
            "{backend}"
        );
    }
);
