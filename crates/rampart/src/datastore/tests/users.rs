//! Users: creation, look-ups, normalised spellings, login tracking, updates, deletion, listing
//! (`datastore/users.rs`).

use super::*;

datastore_test!(
    create_user_links_roles_and_runs_extra_sql_in_one_go,
    async |store: Datastore| {
        let backend = store.backend_name();
        exec(&store, PROFILE_TABLE).await;
        store
            .create_role("Editor", None, &strings(&["post.edit"]), NOW)
            .await
            .expect("role");
        store
            .create_role(
                "Admin",
                Some("All powers"),
                &strings(&["user.admin", "post.edit"]),
                NOW,
            )
            .await
            .expect("role");
        let mut new = new_user("Ann@Example.com", Some("ann"));
        new.roles = strings(&["Editor", "Admin", "Editor"]);
        new.confirmed_at = Some(NOW);
        let extra = strings(&[
            "INSERT INTO \"profile\" (\"user_id\", \"display_name\") VALUES ($1, 'Ann')",
        ]);
        let user = store
            .create_user(&new, "uniq-ann", NOW, &extra)
            .await
            .expect("create user");
        // The local part keeps its case; the domain is stored in its canonical (IDNA) form.
        assert_eq!(user.email, "Ann@example.com", "{backend}");
        assert_eq!(user.username.as_deref(), Some("ann"));
        assert_eq!(user.password.as_deref(), Some("$argon2id$hash"));
        assert!(user.active);
        assert_eq!(user.fs_uniquifier, "uniq-ann");
        assert_eq!(user.confirmed_at, Some(NOW));
        assert_eq!(user.login_count, Some(0));
        assert_eq!(user.create_datetime, NOW);
        assert_eq!(user.update_datetime, NOW);
        assert_eq!(user.last_login_at, None);

        let profile_owner = scalar(&store, "SELECT \"user_id\" FROM \"profile\"").await;
        assert_eq!(profile_owner, user.id, "{backend}");

        let names: Vec<String> = store
            .user_roles(user.id)
            .await
            .expect("roles")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["Admin", "Editor"], "{backend}");

        let (loaded, roles) = store
            .user_with_roles_by_uniquifier("uniq-ann")
            .await
            .expect("query")
            .expect("found");
        assert_eq!(loaded, user, "{backend}");
        assert_eq!(roles.len(), 2);
        assert_eq!(roles[0].name, "Admin");
        assert_eq!(roles[0].description.as_deref(), Some("All powers"));
        assert_eq!(roles[0].permissions, ["user.admin", "post.edit"]);
        assert_eq!(roles[1].name, "Editor");
        assert_eq!(roles[1].permissions, ["post.edit"]);

        let plain = store
            .create_user(&new_user("bob@example.com", None), "uniq-bob", NOW, &[])
            .await
            .expect("create plain user");
        let (_, roles) = store
            .user_with_roles_by_uniquifier("uniq-bob")
            .await
            .expect("query")
            .expect("found");
        assert!(roles.is_empty(), "{backend}");
        assert_eq!(plain.username, None);
        assert!(
            store
                .user_with_roles_by_uniquifier("nobody")
                .await
                .expect("query")
                .is_none()
        );
        assert_eq!(store.count_users().await.expect("count"), 2);
    }
);

datastore_test!(
    lookups_ignore_case_and_duplicates_in_another_case_conflict,
    async |store: Datastore| {
        let backend = store.backend_name();
        let user = store
            .create_user(&new_user("Ann@Example.com", Some("AnnA")), "u1", NOW, &[])
            .await
            .expect("create");
        for found in [
            store.user_by_email("ann@example.COM").await,
            store.user_by_username("anna").await,
            store.user_by_identity("ANN@example.com").await,
            store.user_by_identity("ANNA").await,
            store.user_by_uniquifier("u1").await,
            store.user_by_id(user.id).await,
        ] {
            assert_eq!(
                found.expect("query").map(|u| u.id),
                Some(user.id),
                "{backend}"
            );
        }
        assert!(
            store
                .user_by_uniquifier("U1")
                .await
                .expect("query")
                .is_none()
        );
        assert!(
            store
                .user_by_email("nobody@example.com")
                .await
                .expect("query")
                .is_none()
        );
        assert!(
            store
                .user_by_id(user.id + 100)
                .await
                .expect("query")
                .is_none()
        );

        let err = store
            .create_user(&new_user("ANN@example.com", None), "u2", NOW, &[])
            .await
            .expect_err("duplicate email");
        assert_eq!(err.conflict_column(), Some("email"), "{backend}: {err:?}");
        let err = store
            .create_user(&new_user("other@example.com", Some("anna")), "u3", NOW, &[])
            .await
            .expect_err("duplicate username");
        assert_eq!(
            err.conflict_column(),
            Some("username"),
            "{backend}: {err:?}"
        );
        let err = store
            .create_user(&new_user("third@example.com", None), "u1", NOW, &[])
            .await
            .expect_err("duplicate uniquifier");
        assert_eq!(
            err.conflict_column(),
            Some("fs_uniquifier"),
            "{backend}: {err:?}"
        );

        let other = store
            .create_user(&new_user("bob@example.com", None), "u4", NOW, &[])
            .await
            .expect("create");
        let err = store
            .set_email(other.id, "ann@EXAMPLE.com", NOW)
            .await
            .expect_err("email taken");
        assert!(err.is_conflict(), "{backend}: {err:?}");
        assert_eq!(store.count_users().await.expect("count"), 2, "{backend}");
    }
);

datastore_test!(
    look_alike_spellings_of_an_email_or_username_are_one_account,
    async |store: Datastore| {
        let backend = store.backend_name();
        let user = store
            .create_user(
                &new_user("ａｌｉｃｅ@Exämple.com", Some("ＡｌｉｃｅＷ")),
                "u1",
                NOW,
                &[],
            )
            .await
            .expect("create");
        assert_eq!(user.email, "alice@xn--exmple-cua.com", "{backend}");
        assert_eq!(user.username.as_deref(), Some("AliceW"), "{backend}");
        for found in [
            store.user_by_email("alice@exämple.com").await,
            store.user_by_email("ALICE@xn--exmple-cua.com").await,
            store
                .user_by_email(" ａｌｉｃｅ＠ｅｘäｍｐｌｅ．ｃｏｍ ")
                .await,
            store.user_by_username("alicew").await,
            store.user_by_username("ａｌｉｃｅｗ").await,
            store.user_by_identity("Alice@EXA\u{308}MPLE.com").await,
            store.user_by_identity("ＡＬＩＣＥＷ").await,
        ] {
            assert_eq!(
                found.expect("query").map(|u| u.id),
                Some(user.id),
                "{backend}"
            );
        }
        for (email, username) in [
            ("alice@xn--exmple-cua.com", None),
            ("ALICE@EXÄMPLE.COM", None),
            ("other@example.com", Some("ａｌｉｃｅｗ")),
        ] {
            let err = store
                .create_user(&new_user(email, username), "u2", NOW, &[])
                .await
                .expect_err("a look-alike duplicate");
            assert!(err.is_conflict(), "{backend} {email}: {err:?}");
        }
        // Non-ASCII letters are folded, so case differences outside ASCII conflict too (which
        // SQLite's ASCII-only lower() would miss).
        store
            .create_user(
                &new_user("ÉLODIE@example.com", Some("ЖЕНЯ")),
                "u3",
                NOW,
                &[],
            )
            .await
            .expect("create");
        for (email, username) in [
            ("élodie@example.com", None),
            ("other@example.com", Some("женя")),
        ] {
            let err = store
                .create_user(&new_user(email, username), "u4", NOW, &[])
                .await
                .expect_err("a duplicate in another case");
            assert!(err.is_conflict(), "{backend} {email}: {err:?}");
        }
        let finance = store
            .create_user(&new_user("ﬁnance@example.com", None), "u5", NOW, &[])
            .await
            .expect("create");
        assert_eq!(finance.email, "finance@example.com", "{backend}");
        let err = store
            .set_email(user.id, "ＦＩＮＡＮＣＥ@example.com", NOW)
            .await
            .expect_err("taken in another spelling");
        assert!(err.is_conflict(), "{backend}: {err:?}");
        let err = store
            .set_email(user.id, "not an address", NOW)
            .await
            .expect_err("invalid");
        assert!(
            matches!(&err, DatastoreError::Invalid(field) if field == "email"),
            "{backend}: {err:?}"
        );
        store
            .set_email(user.id, "alice@ｎｅｗ.example", NOW)
            .await
            .expect("set email");
        assert_eq!(
            store
                .user_by_id(user.id)
                .await
                .expect("query")
                .expect("found")
                .email,
            "alice@new.example"
        );
        assert_eq!(store.count_users().await.expect("count"), 3, "{backend}");
    }
);

datastore_test!(
    rows_written_before_normalisation_are_rewritten_unless_another_account_has_the_spelling,
    async |store: Datastore| {
        let backend = store.backend_name();
        let taken = store
            .create_user(&new_user("bob@example.com", None), "u0", NOW, &[])
            .await
            .expect("create");
        // As another program (or an earlier version) would have written them.
        for (email, username, uniquifier) in [
            ("ａｌｉｃｅ@exämple.com", "ＡＬＩＣＥ", "u1"),
            ("ｂｏｂ@example.com", "ｂｏｂ", "u2"),
            ("plain@example.com", "plain", "u3"),
        ] {
            exec(
                &store,
                &format!(
                    "INSERT INTO \"user\" (\"email\", \"username\", \"active\", \"fs_uniquifier\") \
                     VALUES ('{email}', '{username}', TRUE, '{uniquifier}')"
                ),
            )
            .await;
        }
        assert!(
            store
                .user_by_email("alice@exämple.com")
                .await
                .expect("query")
                .is_none(),
            "{backend}: not found before"
        );
        assert_eq!(
            store.normalize_stored_identities().await.expect("rewrite"),
            1,
            "{backend}"
        );
        let alice = store
            .user_by_identity("alice@xn--exmple-cua.com")
            .await
            .expect("query")
            .expect("found after");
        assert_eq!(alice.fs_uniquifier, "u1");
        assert_eq!(alice.email, "alice@xn--exmple-cua.com");
        assert_eq!(alice.username.as_deref(), Some("ALICE"));
        // `ｂｏｂ@example.com` would become bob@example.com, which is taken: left alone.
        let found = store
            .user_by_email("bob@example.com")
            .await
            .expect("query")
            .expect("found");
        assert_eq!(found.id, taken.id, "{backend}");
        assert_eq!(
            scalar(
                &store,
                "SELECT COUNT(*) FROM \"user\" WHERE \"email\" = 'ｂｏｂ@example.com'"
            )
            .await,
            1,
            "{backend}"
        );
        assert_eq!(
            store.normalize_stored_identities().await.expect("again"),
            0,
            "{backend}"
        );
    }
);

datastore_test!(
    a_failing_step_of_create_user_leaves_no_user,
    async |store: Datastore| {
        let backend = store.backend_name();
        exec(&store, PROFILE_TABLE).await;
        let extra = strings(&[
            "INSERT INTO \"profile\" (\"user_id\", \"display_name\") VALUES ($1, 'Ann')",
            "INSERT INTO \"no_such_table\" (\"user_id\") VALUES ($1)",
        ]);
        let err = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &extra)
            .await
            .expect_err("bad extra sql");
        assert!(
            matches!(err, DatastoreError::Query(_)),
            "{backend}: {err:?}"
        );

        let mut new = new_user("ann@example.com", None);
        new.roles = strings(&["Ghost"]);
        let err = store
            .create_user(&new, "u1", NOW, &[])
            .await
            .expect_err("unknown role");
        assert!(
            matches!(&err, DatastoreError::NotFound(what) if what == "role Ghost"),
            "{backend}: {err:?}"
        );

        assert_eq!(store.count_users().await.expect("count"), 0, "{backend}");
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM \"profile\"").await, 0);
        assert!(
            store
                .user_by_email("ann@example.com")
                .await
                .expect("query")
                .is_none()
        );
    }
);

datastore_test!(
    record_login_tracks_logins_like_flask_security,
    async |store: Datastore| {
        let backend = store.backend_name();
        let user = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        let first = datetime!(2025-02-01 10:00:00);
        let second = datetime!(2025-02-02 11:30:00);

        store
            .record_login(user.id, Some("10.0.0.1"), first)
            .await
            .expect("first login");
        let u = store
            .user_by_id(user.id)
            .await
            .expect("query")
            .expect("user");
        assert_eq!(u.last_login_at, Some(first), "{backend}");
        assert_eq!(u.current_login_at, Some(first));
        assert_eq!(u.last_login_ip, None);
        assert_eq!(u.current_login_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(u.login_count, Some(1));

        store
            .record_login(user.id, None, second)
            .await
            .expect("second login");
        let u = store
            .user_by_id(user.id)
            .await
            .expect("query")
            .expect("user");
        assert_eq!(u.last_login_at, Some(first), "{backend}");
        assert_eq!(u.current_login_at, Some(second));
        assert_eq!(u.last_login_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(u.current_login_ip, None);
        assert_eq!(u.login_count, Some(2));
        assert_eq!(u.update_datetime, second);

        let err = store
            .record_login(user.id + 1, None, second)
            .await
            .expect_err("no such user");
        assert!(err.is_not_found(), "{backend}: {err:?}");
    }
);

datastore_test!(
    account_updates_change_only_their_columns,
    async |store: Datastore| {
        let backend = store.backend_name();
        let user = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        let later = datetime!(2025-03-01 00:00:00);

        store
            .set_password(user.id, "new-hash", None, later)
            .await
            .expect("set password");
        let u = store
            .user_by_id(user.id)
            .await
            .expect("query")
            .expect("user");
        assert_eq!(u.password.as_deref(), Some("new-hash"), "{backend}");
        assert_eq!(u.fs_uniquifier, "u1");
        assert_eq!(u.update_datetime, later);

        store
            .set_password(user.id, "newer-hash", Some("u2"), later)
            .await
            .expect("set password and rotate");
        assert!(
            store
                .user_by_uniquifier("u1")
                .await
                .expect("query")
                .is_none()
        );
        let u = store
            .user_by_uniquifier("u2")
            .await
            .expect("query")
            .expect("rotated");
        assert_eq!(u.password.as_deref(), Some("newer-hash"), "{backend}");

        store
            .set_uniquifier(user.id, "u3", later)
            .await
            .expect("rotate");
        assert!(
            store
                .user_by_uniquifier("u3")
                .await
                .expect("query")
                .is_some()
        );

        store.confirm_user(user.id, later).await.expect("confirm");
        store
            .set_active(user.id, false, later)
            .await
            .expect("deactivate");
        store
            .set_email(user.id, "ann@new.example", later)
            .await
            .expect("set email");
        let u = store
            .user_by_id(user.id)
            .await
            .expect("query")
            .expect("user");
        assert_eq!(u.confirmed_at, Some(later), "{backend}");
        assert!(!u.active);
        assert_eq!(u.email, "ann@new.example");
        assert_eq!(u.create_datetime, NOW);

        let missing = user.id + 1;
        for result in [
            store.set_password(missing, "h", None, later).await,
            store.set_uniquifier(missing, "x", later).await,
            store.confirm_user(missing, later).await,
            store.set_email(missing, "x@example.com", later).await,
            store.set_active(missing, true, later).await,
        ] {
            let err = result.expect_err("no such user");
            assert!(err.is_not_found(), "{backend}: {err:?}");
        }
    }
);

datastore_test!(
    delete_user_removes_links_sessions_credentials_and_app_rows,
    async |store: Datastore| {
        let backend = store.backend_name();
        exec(&store, PROFILE_TABLE).await;
        store
            .create_role("Admin", None, &[], NOW)
            .await
            .expect("role");
        let mut new = new_user("ann@example.com", None);
        new.roles = strings(&["Admin"]);
        let extra = strings(&[
            "INSERT INTO \"profile\" (\"user_id\", \"display_name\") VALUES ($1, 'Ann')",
        ]);
        let user = store
            .create_user(&new, "u1", NOW, &extra)
            .await
            .expect("create");
        let keep = store
            .create_user(&new_user("bob@example.com", None), "u2", NOW, &extra)
            .await
            .expect("create");
        let expiry = datetime!(2030-01-01 00:00:00);
        store
            .session_save("s1", Some(user.id), "{}", expiry)
            .await
            .expect("session");
        store
            .session_save("s2", Some(keep.id), "{}", expiry)
            .await
            .expect("session");
        exec(
            &store,
            &format!(
                "INSERT INTO \"webauthn\" (\"credential_id\", \"public_key\", \"sign_count\", \
                 \"backup_state\", \"device_type\", \"lastuse_datetime\", \"name\", \"usage\", \
                 \"user_id\") VALUES ({blob}, {blob}, 0, {no}, 'single_device', \
                 '2025-01-01 00:00:00', 'key', 'first', {id})",
                blob = if backend == "sqlite" {
                    "x'01'"
                } else {
                    "'\\x01'::bytea"
                },
                no = if backend == "sqlite" { "0" } else { "false" },
                id = user.id
            ),
        )
        .await;

        assert!(
            store.delete_user(user.id).await.expect("delete"),
            "{backend}"
        );
        assert!(!store.delete_user(user.id).await.expect("delete again"));
        assert!(store.user_by_id(user.id).await.expect("query").is_none());
        for table in ["roles_users", "webauthn"] {
            let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
            assert_eq!(scalar(&store, &sql).await, 0, "{backend}: {table}");
        }
        for table in ["rampart_session", "profile"] {
            let sql = format!("SELECT COUNT(*) FROM \"{table}\"");
            assert_eq!(scalar(&store, &sql).await, 1, "{backend}: {table}");
        }
        assert!(store.role_by_name("Admin").await.expect("query").is_some());
        assert!(store.session_load("s2", NOW).await.expect("load").is_some());
    }
);

datastore_test!(list_users_searches_and_pages, async |store: Datastore| {
    let backend = store.backend_name();
    for (i, (email, username)) in [
        ("ann@example.com", Some("Annie")),
        ("bob@example.com", None),
        ("carl@other.org", Some("c_50%")),
        ("dora@EXAMPLE.com", Some("dora")),
    ]
    .into_iter()
    .enumerate()
    {
        store
            .create_user(&new_user(email, username), &format!("u{i}"), NOW, &[])
            .await
            .expect("create");
    }
    let (page, total) = store.list_users(None, 0, 2).await.expect("list");
    assert_eq!(total, 4, "{backend}");
    let emails: Vec<&str> = page.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["ann@example.com", "bob@example.com"]);
    let (page, _) = store.list_users(None, 2, 10).await.expect("list");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0].email, "carl@other.org");

    let (page, total) = store
        .list_users(Some("Example"), 0, 10)
        .await
        .expect("list");
    assert_eq!(total, 3, "{backend}");
    assert_eq!(page.len(), 3);
    let (page, total) = store.list_users(Some("ANNI"), 0, 10).await.expect("list");
    assert_eq!((page.len(), total), (1, 1), "{backend}: username match");
    let (_, total) = store.list_users(Some("50%"), 0, 10).await.expect("list");
    assert_eq!(total, 1, "{backend}: % is literal");
    let (_, total) = store.list_users(Some("_"), 0, 10).await.expect("list");
    assert_eq!(total, 1, "{backend}: _ is literal");
    let (page, total) = store
        .list_users(Some("nobody"), -5, -1)
        .await
        .expect("list");
    assert_eq!((page.len(), total), (0, 0));
});
