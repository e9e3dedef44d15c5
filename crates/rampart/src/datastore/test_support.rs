//! Test fixture: one migrated datastore per backend.
//!
//! Always an SQLite temp file; also a fresh PostgreSQL database when `TEST_DATABASE_URL` is set
//! (e.g. `postgres://postgres@127.0.0.1:5432/test`). Each PostgreSQL fixture creates its own
//! uniquely named database through that URL and drops it when the guard drops, so tests run in
//! parallel.

use sqlx::{Connection, Executor, PgConnection};

use super::Datastore;

/// Keeps a test database alive; dropping it deletes the database.
#[derive(Debug)]
pub(crate) struct TestDbGuard {
    inner: Guarded,
}

#[derive(Debug)]
enum Guarded {
    Sqlite(#[expect(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl Drop for TestDbGuard {
    fn drop(&mut self) {
        if let Guarded::Postgres {
            admin_url,
            database,
        } = &self.inner
        {
            let admin_url = admin_url.clone();
            let sql = format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
            // Drop is synchronous and may run inside a runtime: use a thread with its own.
            let dropped = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async {
                    let mut admin = PgConnection::connect(&admin_url).await?;
                    admin.execute(sql.as_str()).await?;
                    admin.close().await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                })
            })
            .join();
            if !matches!(dropped, Ok(Ok(()))) {
                eprintln!("could not drop test database {database}: {dropped:?}");
            }
        }
    }
}

/// The migrated datastores to run a test against, with the guards that keep them.
///
/// Panics when `TEST_DATABASE_URL` is set but PostgreSQL cannot be used.
pub(crate) async fn test_datastores() -> Vec<(Datastore, TestDbGuard)> {
    let stores = empty_test_datastores().await;
    for (store, _) in &stores {
        store.migrate().await.expect("migrate");
    }
    stores
}

/// Like [`test_datastores`], without running the migrations.
pub(crate) async fn empty_test_datastores() -> Vec<(Datastore, TestDbGuard)> {
    let mut stores = vec![sqlite_datastore().await];
    if let Ok(admin_url) = std::env::var("TEST_DATABASE_URL")
        && !admin_url.is_empty()
    {
        stores.push(postgres_datastore(&admin_url).await);
    }
    stores
}

/// An empty datastore on a fresh SQLite file.
async fn sqlite_datastore() -> (Datastore, TestDbGuard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite:{}", dir.path().join("rampart.db").display());
    let store = Datastore::connect(&url).await.expect("open SQLite");
    (
        store,
        TestDbGuard {
            inner: Guarded::Sqlite(dir),
        },
    )
}

/// An empty datastore on a fresh PostgreSQL database created through `admin_url`.
async fn postgres_datastore(admin_url: &str) -> (Datastore, TestDbGuard) {
    let database = format!("rampart_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(admin_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    admin
        .execute(format!("CREATE DATABASE \"{database}\"").as_str())
        .await
        .expect("create test database");
    admin.close().await.expect("close admin connection");
    let guard = TestDbGuard {
        inner: Guarded::Postgres {
            admin_url: admin_url.to_owned(),
            database: database.clone(),
        },
    };
    let mut url = url::Url::parse(admin_url).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{database}"));
    let store = Datastore::connect(url.as_str())
        .await
        .expect("open PostgreSQL");
    (store, guard)
}
