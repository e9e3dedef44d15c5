//! Datastore tests, run against SQLite and (with `TEST_DATABASE_URL`) PostgreSQL.

use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use time::PrimitiveDateTime;
use time::macros::datetime;

use super::test_support::{empty_test_datastores, test_datastores};
use super::{
    Datastore, DatastoreError, DbPool, ResolvedMigrations, escape_like, join_csv, split_csv,
};
use crate::model::NewUser;

const NOW: PrimitiveDateTime = datetime!(2025-01-02 03:04:05);

/// Runs a statement on whichever backend `store` is.
async fn exec(store: &Datastore, sql: &str) {
    match store.pool() {
        DbPool::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        DbPool::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs a `SELECT COUNT(*)`-like query returning one BIGINT.
async fn scalar(store: &Datastore, sql: &str) -> i64 {
    match store.pool() {
        DbPool::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
        DbPool::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

const PROFILE_TABLE: &str = "CREATE TABLE \"profile\" (\
     \"user_id\" BIGINT PRIMARY KEY REFERENCES \"user\" (\"id\") ON DELETE CASCADE, \
     \"display_name\" TEXT NOT NULL)";

fn new_user(email: &str, username: Option<&str>) -> NewUser {
    NewUser {
        email: email.to_owned(),
        username: username.map(str::to_owned),
        password_hash: Some("$argon2id$hash".to_owned()),
        active: true,
        confirmed_at: None,
        roles: Vec::new(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn migrations_are_idempotent_and_coexist_with_app_migrations() {
    for (store, _guard) in test_datastores().await {
        let backend = store.backend_name();
        store.migrate().await.expect("second migrate");
        let app = Migrator::new(ResolvedMigrations(vec![Migration::new(
            1000,
            "profile".into(),
            MigrationType::Simple,
            PROFILE_TABLE.into(),
            false,
        )]))
        .await
        .expect("app migrator");
        store.migrate_app(&app, &app).await.expect("app migrations");
        store
            .migrate_app(&app, &app)
            .await
            .expect("app migrations again");
        store.migrate().await.expect("framework after app");
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM \"_sqlx_migrations\"").await,
            // The framework's three (0001 schema, 0002 one-time-code steps, 0003 remember-me
            // series) and the app's.
            4,
            "{backend}"
        );
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM \"profile\"").await,
            0,
            "{backend}"
        );
        store.ping().await.expect("ping");
    }
}

/// The tables as Flask-Security (SQLAlchemy, `fsqla_v3`) creates them, in SQLite's spelling.
const FLASK_SECURITY_DDL: [&str; 5] = [
    "CREATE TABLE role (id INTEGER NOT NULL, name VARCHAR(80) NOT NULL, \
     description VARCHAR(255), permissions TEXT, \
     update_datetime DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, \
     PRIMARY KEY (id), UNIQUE (name))",
    "CREATE TABLE \"user\" (id INTEGER NOT NULL, email VARCHAR(255) NOT NULL, \
     username VARCHAR(255), password VARCHAR(255), active BOOLEAN NOT NULL, \
     fs_uniquifier VARCHAR(64) NOT NULL, confirmed_at DATETIME, last_login_at DATETIME, \
     current_login_at DATETIME, last_login_ip VARCHAR(64), current_login_ip VARCHAR(64), \
     login_count INTEGER, tf_primary_method VARCHAR(64), tf_totp_secret VARCHAR(255), \
     tf_phone_number VARCHAR(128), us_totp_secrets TEXT, us_phone_number VARCHAR(128), \
     fs_webauthn_user_handle VARCHAR(64), mf_recovery_codes TEXT, \
     create_datetime DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, \
     update_datetime DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, \
     PRIMARY KEY (id), UNIQUE (email), UNIQUE (username), UNIQUE (fs_uniquifier), \
     UNIQUE (us_phone_number), UNIQUE (fs_webauthn_user_handle))",
    "CREATE TABLE roles_users (user_id INTEGER, role_id INTEGER, \
     FOREIGN KEY(user_id) REFERENCES \"user\" (id), FOREIGN KEY(role_id) REFERENCES role (id))",
    "CREATE TABLE webauthn (id INTEGER NOT NULL, credential_id BLOB NOT NULL, \
     public_key BLOB NOT NULL, sign_count INTEGER, transports TEXT, \
     backup_state BOOLEAN NOT NULL, device_type VARCHAR(64) NOT NULL, \
     extensions VARCHAR(255), create_datetime DATETIME DEFAULT (CURRENT_TIMESTAMP) NOT NULL, \
     lastuse_datetime DATETIME NOT NULL, name VARCHAR(64) NOT NULL, usage VARCHAR(64) NOT NULL, \
     user_id INTEGER NOT NULL, PRIMARY KEY (id), \
     FOREIGN KEY(user_id) REFERENCES \"user\" (id) ON DELETE CASCADE)",
    "CREATE UNIQUE INDEX ix_webauthn_credential_id ON webauthn (credential_id)",
];

#[tokio::test]
async fn a_database_created_by_flask_security_opens_unchanged() {
    for (store, _guard) in empty_test_datastores().await {
        let backend = store.backend_name();
        for ddl in FLASK_SECURITY_DDL {
            let ddl = if backend == "postgres" {
                ddl.replace(
                    "id INTEGER NOT NULL, name VARCHAR(80)",
                    "id SERIAL NOT NULL, name VARCHAR(80)",
                )
                .replace("(id INTEGER NOT NULL, email", "(id SERIAL NOT NULL, email")
                .replace(
                    "(id INTEGER NOT NULL, credential_id",
                    "(id SERIAL NOT NULL, credential_id",
                )
                .replace("DATETIME", "TIMESTAMP WITHOUT TIME ZONE")
                .replace("(CURRENT_TIMESTAMP)", "now()")
                .replace("BLOB", "BYTEA")
            } else {
                ddl.to_owned()
            };
            exec(&store, &ddl).await;
        }
        // A user and a role as Flask-Security writes them (microsecond datetimes, no login yet).
        exec(
            &store,
            "INSERT INTO role (name, permissions) VALUES ('admin', 'user.read,user.write')",
        )
        .await;
        exec(
            &store,
            "INSERT INTO \"user\" (email, password, active, fs_uniquifier, confirmed_at, \
             create_datetime, update_datetime) VALUES ('Old@Example.com', '$pbkdf2-sha512$x', \
             true, 'legacy-uniq', '2023-05-06 07:08:09.123456', '2023-05-06 07:08:09.123456', \
             '2023-05-06 07:08:09.123456')",
        )
        .await;

        store
            .migrate()
            .await
            .expect("migrate over Flask-Security tables");
        store.migrate().await.expect("and again");

        let user = store
            .user_by_email("old@example.com")
            .await
            .expect("query")
            .expect("legacy user");
        assert_eq!(
            user.confirmed_at,
            Some(datetime!(2023-05-06 07:08:09.123456)),
            "{backend}"
        );
        assert_eq!(user.login_count, None);
        assert!(store.add_role_to_user(user.id, "admin").await.expect("add"));
        assert!(
            !store
                .add_role_to_user(user.id, "admin")
                .await
                .expect("add again")
        );
        store
            .record_login(user.id, Some("::1"), NOW)
            .await
            .expect("login");
        let (user, roles) = store
            .user_with_roles_by_uniquifier("legacy-uniq")
            .await
            .expect("query")
            .expect("found");
        assert_eq!(user.login_count, Some(1), "{backend}");
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].permissions, ["user.read", "user.write"]);
        store
            .session_save("s", Some(user.id), "{}", datetime!(2030-01-01 00:00:00))
            .await
            .expect("session");
        let created = store
            .create_user(&new_user("new@example.com", None), "new-uniq", NOW, &[])
            .await
            .expect("new user");
        assert!(created.id > user.id, "{backend}");
        let err = store
            .create_user(&new_user("OLD@example.com", None), "u2", NOW, &[])
            .await
            .expect_err("case-insensitive duplicate");
        assert_eq!(err.conflict_column(), Some("email"), "{backend}: {err:?}");
        assert!(
            store.delete_user(user.id).await.expect("delete"),
            "{backend}"
        );
        assert_eq!(scalar(&store, "SELECT COUNT(*) FROM roles_users").await, 0);
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM rampart_session").await,
            0
        );
    }
}

#[tokio::test]
async fn create_user_links_roles_and_runs_extra_sql_in_one_go() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn lookups_ignore_case_and_duplicates_in_another_case_conflict() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn look_alike_spellings_of_an_email_or_username_are_one_account() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn rows_written_before_normalisation_are_rewritten_unless_another_account_has_the_spelling() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn a_failing_step_of_create_user_leaves_no_user() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn record_login_tracks_logins_like_flask_security() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn account_updates_change_only_their_columns() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn delete_user_removes_links_sessions_credentials_and_app_rows() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn roles_are_created_ensured_updated_and_linked() {
    for (store, _guard) in test_datastores().await {
        let backend = store.backend_name();
        let admin = store
            .create_role("Admin", Some("boss"), &strings(&[" a ", "b,c", ""]), NOW)
            .await
            .expect("create");
        assert_eq!(admin.permissions, ["a", "b", "c"], "{backend}");
        let stored = scalar(
            &store,
            "SELECT COUNT(*) FROM \"role\" WHERE \"permissions\" = 'a,b,c'",
        )
        .await;
        assert_eq!(stored, 1, "{backend}: stored as CSV");

        let err = store
            .create_role("Admin", None, &[], NOW)
            .await
            .expect_err("duplicate");
        assert_eq!(err.conflict_column(), Some("name"), "{backend}: {err:?}");

        let same = store
            .ensure_role("Admin", Some("other"), &strings(&["z"]), NOW)
            .await
            .expect("ensure existing");
        assert_eq!(same, admin, "{backend}");
        let reader = store
            .ensure_role("Reader", None, &[], NOW)
            .await
            .expect("ensure new");
        assert!(reader.permissions.is_empty());

        let updated = store
            .set_role_permissions("Reader", &strings(&["read"]), NOW)
            .await
            .expect("set permissions");
        assert_eq!(updated.permissions, ["read"], "{backend}");
        let err = store
            .set_role_permissions("Ghost", &[], NOW)
            .await
            .expect_err("no such role");
        assert!(err.is_not_found());

        exec(
            &store,
            "UPDATE \"role\" SET \"permissions\" = ' x , y,,' WHERE \"name\" = 'Reader'",
        )
        .await;
        let reader = store
            .role_by_name("Reader")
            .await
            .expect("query")
            .expect("role");
        assert_eq!(reader.permissions, ["x", "y"], "{backend}");

        let names: Vec<String> = store
            .roles()
            .await
            .expect("roles")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["Admin", "Reader"]);
        assert!(store.role_by_name("admin").await.expect("query").is_none());

        let user = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        assert!(
            store
                .add_role_to_user(user.id, "Reader")
                .await
                .expect("add")
        );
        assert!(
            !store
                .add_role_to_user(user.id, "Reader")
                .await
                .expect("add again")
        );
        assert!(store.add_role_to_user(user.id, "Admin").await.expect("add"));
        let err = store
            .add_role_to_user(user.id, "Ghost")
            .await
            .expect_err("no such role");
        assert!(err.is_not_found(), "{backend}: {err:?}");
        let err = store
            .add_role_to_user(user.id + 1, "Admin")
            .await
            .expect_err("no such user");
        assert!(err.is_not_found(), "{backend}: {err:?}");
        let names: Vec<String> = store
            .user_roles(user.id)
            .await
            .expect("roles")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["Admin", "Reader"], "{backend}");

        assert!(
            store
                .remove_role_from_user(user.id, "Admin")
                .await
                .expect("remove")
        );
        assert!(
            !store
                .remove_role_from_user(user.id, "Admin")
                .await
                .expect("remove again")
        );
        assert!(
            !store
                .remove_role_from_user(user.id, "Ghost")
                .await
                .expect("remove unknown")
        );
        assert_eq!(store.user_roles(user.id).await.expect("roles").len(), 1);
    }
}

#[tokio::test]
async fn sessions_are_stored_expired_and_listed_per_user() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn rate_limit_allows_the_limit_per_window_then_refuses_until_it_ends() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn an_undone_hit_gives_its_place_back_and_never_goes_below_zero() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn concurrent_hits_are_counted_exactly() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn list_users_searches_and_pages() {
    for (store, _guard) in test_datastores().await {
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
    }
}

#[tokio::test]
async fn connect_rejects_unknown_urls_and_opens_memory_databases() {
    let err = Datastore::connect("mysql://localhost/x")
        .await
        .expect_err("unsupported");
    assert!(matches!(err, DatastoreError::Config(_)), "{err:?}");

    let store = Datastore::connect("sqlite::memory:").await.expect("memory");
    store.migrate().await.expect("migrate");
    store
        .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
        .await
        .expect("create");
    assert_eq!(store.count_users().await.expect("count"), 1);
    assert_eq!(store.backend_name(), "sqlite");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let err = Datastore::connect("postgres://postgres@127.0.0.1:1/none")
        .await
        .expect_err("nothing listens on port 1");
    assert!(err.is_unavailable(), "{err:?}");
}

#[test]
fn csv_lists_round_trip_like_flask_security_asalist() {
    assert_eq!(split_csv(Some("a,b , c,,")), ["a", "b", "c"]);
    assert!(split_csv(Some("")).is_empty());
    assert!(split_csv(None).is_empty());
    assert_eq!(
        join_csv(&strings(&["a", " b", "c,d"])).as_deref(),
        Some("a,b,c,d")
    );
    assert_eq!(join_csv(&strings(&["", " "])), None);
}

#[test]
fn like_patterns_escape_wildcards() {
    assert_eq!(escape_like("plain"), "plain");
    assert_eq!(escape_like("50%_\\"), "50\\%\\_\\\\");
}

#[tokio::test]
async fn one_time_code_steps_are_claimed_once_and_in_order_per_user() {
    for (store, _guard) in test_datastores().await {
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
}

#[tokio::test]
async fn remember_series_live_until_expiry_or_deletion_and_go_with_their_user() {
    for (store, _guard) in test_datastores().await {
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
}
