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

/// The wall clock, naive UTC, to the second (sessions in Redis expire by Redis's clock, so
/// these tests use real times).
fn wall_clock() -> PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    let second = now.time().replace_nanosecond(0).expect("a whole second");
    PrimitiveDateTime::new(now.date(), second)
}

/// How many sessions the table holds.
async fn table_sessions(store: &Datastore) -> i64 {
    scalar(store, "SELECT COUNT(*) FROM \"rampart_session\"").await
}

/// Whether Redis holds `key` (under the store's prefix), and its time to live in ms.
async fn redis_key(store: &Datastore, key: &str) -> (bool, i64) {
    let redis = store.redis().expect("Redis");
    let key = format!("{}{key}", redis.prefix());
    let mut connection = redis.connection();
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .expect("EXISTS");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut connection)
        .await
        .expect("PTTL");
    (exists, ttl)
}

datastore_test_with_redis!(
    sessions_are_listed_and_revoked_per_user_wherever_they_live,
    async |store: Datastore| {
        let backend = if store.uses_redis() {
            "redis"
        } else {
            store.backend_name()
        };
        let ann = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        let bob = store
            .create_user(&new_user("bob@example.com", None), "u2", NOW, &[])
            .await
            .expect("create");
        let now = wall_clock();
        let hour = time::Duration::hours(1);
        let (soon, later) = (now + hour, now + hour * 2);

        // An anonymous session that signs in moves into the user's list.
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
                .expect("taken"),
            "{backend}"
        );
        assert!(
            store
                .sessions_of_user(ann.id, now)
                .await
                .expect("list")
                .is_empty()
        );
        store
            .session_save("a", Some(ann.id), "{\"n\":3}", later)
            .await
            .expect("save");
        assert_eq!(
            store.session_load("a", now).await.expect("load").as_deref(),
            Some("{\"n\":3}"),
            "{backend}"
        );
        assert_eq!(
            store.session_load("a", later).await.expect("load"),
            None,
            "{backend}: expired"
        );
        for (id, user) in [("b", ann.id), ("c", ann.id), ("d", bob.id)] {
            store
                .session_save(id, Some(user), "{}", soon)
                .await
                .expect("save");
        }
        let listed = store
            .session_details_of_user(ann.id, now)
            .await
            .expect("list");
        let mut ids: Vec<&str> = listed.iter().map(|s| s.id_hash.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a", "b", "c"], "{backend}");
        let a = listed.iter().find(|s| s.id_hash == "a").expect("a");
        assert_eq!(a.data, "{\"n\":3}", "{backend}");
        assert!(a.last_seen_at.is_some(), "{backend}");
        assert!(a.created_at <= a.last_seen_at.expect("seen"), "{backend}");
        let info = store.sessions_of_user(ann.id, now).await.expect("list");
        let b = info.iter().find(|s| s.id_hash == "b").expect("b");
        assert_eq!(b.expiry_date, soon, "{backend}");
        assert_eq!(
            store
                .sessions_of_user(ann.id, soon)
                .await
                .expect("list")
                .len(),
            1,
            "{backend}: b and c expired by then"
        );
        let seen = now + time::Duration::minutes(3);
        store.session_touch("b", seen).await.expect("touch");
        store.session_touch("gone", seen).await.expect("touch");
        let info = store.sessions_of_user(ann.id, now).await.expect("list");
        let b = info.iter().find(|s| s.id_hash == "b").expect("b");
        assert_eq!(b.last_seen_at, Some(seen), "{backend}");

        if store.uses_redis() {
            assert_eq!(table_sessions(&store).await, 0, "nothing in the table");
            let (exists, ttl) = redis_key(&store, "session:a").await;
            assert!(exists);
            assert!(
                ttl > 3_500_000 && ttl <= 7_200_000,
                "a lives until later: {ttl}"
            );
            let (exists, ttl) = redis_key(&store, &format!("user-sessions:{}", ann.id)).await;
            assert!(
                exists && ttl > 3_500_000,
                "the set lives with its last session"
            );
            assert!(
                !redis_key(&store, "session:gone").await.0,
                "a touch creates nothing"
            );
        }

        // Revoke the others, then one, then all.
        assert_eq!(
            store
                .delete_sessions_of_user(ann.id, Some("a"))
                .await
                .expect("delete others"),
            2,
            "{backend}"
        );
        assert!(store.session_load("b", now).await.expect("load").is_none());
        assert!(store.session_load("a", now).await.expect("load").is_some());
        assert!(
            store.session_load("d", now).await.expect("load").is_some(),
            "bob's stays"
        );
        store.session_delete("a").await.expect("delete");
        store.session_delete("a").await.expect("delete again");
        assert!(store.session_load("a", now).await.expect("load").is_none());
        assert!(
            store
                .sessions_of_user(ann.id, now)
                .await
                .expect("list")
                .is_empty(),
            "{backend}"
        );
        if store.uses_redis() {
            assert!(
                !redis_key(&store, &format!("user-sessions:{}", ann.id))
                    .await
                    .0,
                "an empty set is gone"
            );
        }

        // A new uniquifier ends every session of the user; so does deleting them.
        store
            .session_create("e", Some(ann.id), "{}", soon)
            .await
            .expect("create");
        store
            .rotate_credentials(ann.id, "u1", "u1-new", None, NOW)
            .await
            .expect("rotate");
        assert!(
            store.session_load("e", now).await.expect("load").is_none(),
            "{backend}"
        );
        assert!(store.delete_user(bob.id).await.expect("delete bob"));
        assert!(
            store.session_load("d", now).await.expect("load").is_none(),
            "{backend}"
        );
        assert!(
            store
                .sessions_of_user(bob.id, now)
                .await
                .expect("list")
                .is_empty()
        );
        if store.uses_redis() {
            assert!(!redis_key(&store, "session:e").await.0);
            assert!(!redis_key(&store, "session:d").await.0);
            assert_eq!(table_sessions(&store).await, 0);
        }
    }
);

datastore_test_with_redis!(
    a_stale_member_of_a_users_set_is_dropped_when_listed,
    async |store: Datastore| {
        let Some(redis) = store.redis() else {
            return;
        };
        let ann = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        let now = wall_clock();
        let soon = now + time::Duration::hours(1);
        for id in ["x", "y"] {
            store
                .session_save(id, Some(ann.id), "{}", soon)
                .await
                .expect("save");
        }
        // As if `x` expired (Redis dropped its hash) while the set kept its id.
        let mut connection = redis.connection();
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{}session:x", redis.prefix()))
            .query_async(&mut connection)
            .await
            .expect("DEL");
        let listed = store.sessions_of_user(ann.id, now).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id_hash, "y");
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{}user-sessions:{}", redis.prefix(), ann.id))
            .arg(0)
            .arg(-1)
            .query_async(&mut connection)
            .await
            .expect("ZRANGE");
        assert_eq!(members, ["y"]);
    }
);

datastore_test!(
    a_session_loads_with_its_user_and_roles_in_one_statement,
    async |store: Datastore| {
        let backend = store.backend_name();
        // Uncached: every answer comes from the database.
        store.set_cache_ttl(std::time::Duration::ZERO);
        let user = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        store
            .create_role("zeta", None, &strings(&["z.read"]), NOW)
            .await
            .expect("role");
        store
            .create_role(
                "alpha",
                Some("first"),
                &strings(&["a.read", "a.write"]),
                NOW,
            )
            .await
            .expect("role");
        for role in ["zeta", "alpha"] {
            assert!(store.add_role_to_user(user.id, role).await.expect("add"));
        }
        let later = datetime!(2025-01-03 00:00:00);
        store
            .session_save("signed-in", Some(user.id), "{\"n\":1}", later)
            .await
            .expect("save");
        store
            .session_save("anonymous", None, "{\"n\":2}", later)
            .await
            .expect("save");

        let (data, found) = store
            .session_load_with_user("signed-in", NOW)
            .await
            .expect("load")
            .expect("live session");
        assert_eq!(data, "{\"n\":1}", "{backend}");
        let found = found.expect("the session's user");
        let (loaded, roles) = &*found;
        assert_eq!(loaded, &user, "{backend}: every column of the user");
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["alpha", "zeta"], "{backend}: roles sorted by name");
        assert_eq!(roles[0].permissions, strings(&["a.read", "a.write"]));
        assert_eq!(roles[0].description.as_deref(), Some("first"));

        // A user without roles, a session without a user, an expired or unknown session.
        assert!(
            store
                .remove_role_from_user(user.id, "alpha")
                .await
                .expect("rm")
        );
        assert!(
            store
                .remove_role_from_user(user.id, "zeta")
                .await
                .expect("rm")
        );
        let (_, found) = store
            .session_load_with_user("signed-in", NOW)
            .await
            .expect("load")
            .expect("live session");
        assert!(found.expect("user").1.is_empty(), "{backend}");
        let (data, found) = store
            .session_load_with_user("anonymous", NOW)
            .await
            .expect("load")
            .expect("live session");
        assert_eq!(data, "{\"n\":2}");
        assert!(found.is_none(), "{backend}: no user recorded");
        assert!(
            store
                .session_load_with_user("signed-in", later)
                .await
                .expect("load")
                .is_none(),
            "{backend}: expired"
        );
        assert!(
            store
                .session_load_with_user("nobody", NOW)
                .await
                .expect("load")
                .is_none()
        );
    }
);
