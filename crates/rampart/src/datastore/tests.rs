//! Datastore tests, each stamped per backend by `datastore_test!` (`…::sqlite`, and
//! `…::postgres` on `TEST_DATABASE_URL`): here the connection and migrations, in `tests/` one
//! file per datastore file, all on the fixture of `test_support.rs` and the helpers below.

/// Stamps a datastore test per backend, so a PostgreSQL-only failure has its own name:
/// `datastore_test!(name, async |store: Datastore| { … })` makes `mod name` with
/// `#[tokio::test]`s `sqlite` and `postgres`, each running the body on a fresh migrated datastore
/// of its backend (`test_support::migrated`); `datastore_test!(name, unmigrated, body)` gives
/// it an empty database (`test_support::unmigrated`). The PostgreSQL one runs on
/// `TEST_DATABASE_URL`; without it, it fails under CI (`CI` set) and passes with a notice
/// elsewhere (`TestBackend::postgres_or_skip`).
macro_rules! datastore_test {
    ($name:ident, $body:expr $(,)?) => {
        datastore_test!($name, migrated, $body);
    };
    ($name:ident, $open:ident, $body:expr $(,)?) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $crate::datastore::test_support::$open($crate::testing::TestBackend::Sqlite, $body)
                    .await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(backend) = $crate::testing::TestBackend::postgres_or_skip() {
                    $crate::datastore::test_support::$open(backend, $body).await;
                }
            }
        }
    };
}

/// [`datastore_test!`] plus `…::redis`: the body on PostgreSQL with Redis
/// ([`Datastore::use_redis`] on `TEST_REDIS_URL`), for what moves to Redis. PostgreSQL, since
/// its database names keep parallel tests' Redis keys apart; skipped (failing under CI) as the
/// PostgreSQL tests are without `TEST_DATABASE_URL`, and without `TEST_REDIS_URL`.
macro_rules! datastore_test_with_redis {
    ($name:ident, $body:expr $(,)?) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $crate::datastore::test_support::migrated(
                    $crate::testing::TestBackend::Sqlite,
                    $body,
                )
                .await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(backend) = $crate::testing::TestBackend::postgres_or_skip() {
                    $crate::datastore::test_support::migrated(backend, $body).await;
                }
            }

            #[tokio::test]
            async fn redis() {
                if let Some(backend) = $crate::testing::TestBackend::postgres_or_skip()
                    && let Some(url) = $crate::testing::redis_url_or_skip()
                {
                    $crate::datastore::test_support::migrated_with_redis(backend, &url, $body)
                        .await;
                }
            }
        }
    };
}

// Declared after the macros above, which they use.
mod rate_limit;
mod remember;
mod roles;
mod sessions;
mod two_factor;
mod users;

use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use time::PrimitiveDateTime;
use time::macros::datetime;

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

datastore_test!(
    migrations_are_idempotent_and_coexist_with_app_migrations,
    async |store: Datastore| {
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
            // The framework's six (0001 schema, 0002 one-time-code steps, 0003 remember-me
            // series, 0004 mailed codes, 0006 social sign-in links, 0007 the activity log and
            // session details) and the app's.
            7,
            "{backend}"
        );
        assert_eq!(
            scalar(&store, "SELECT COUNT(*) FROM \"profile\"").await,
            0,
            "{backend}"
        );
        store.ping().await.expect("ping");
    }
);

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

datastore_test!(
    a_database_created_by_flask_security_opens_unchanged,
    unmigrated,
    async |store: Datastore| {
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
);

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
