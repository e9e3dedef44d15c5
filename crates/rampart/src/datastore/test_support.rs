//! Test fixture: a fresh datastore on one backend, on [`crate::testing::TestDatabase`] — an
//! SQLite temp file, or a new PostgreSQL database on `TEST_DATABASE_URL`. The datastore tests
//! stamp a test per backend with `datastore_test!` (`datastore/tests.rs`), which runs its body
//! through [`migrated`] or [`unmigrated`].

use super::Datastore;
use crate::testing::{TestBackend, TestDatabase};

/// Runs `body` on a fresh, migrated datastore on `backend`; the database is deleted afterwards.
///
/// Panics when the database cannot be made, opened or migrated.
pub(crate) async fn migrated(backend: TestBackend, body: impl AsyncFn(Datastore)) {
    let (store, _database) = open(&backend).await;
    store.migrate().await.expect("migrate");
    body(store).await;
}

/// Like [`migrated`], with Redis at `redis_url` ([`Datastore::use_redis`]).
pub(crate) async fn migrated_with_redis(
    backend: TestBackend,
    redis_url: &str,
    body: impl AsyncFn(Datastore),
) {
    let (store, _database) = open(&backend).await;
    store.migrate().await.expect("migrate");
    store.use_redis(redis_url).await.expect("use Redis");
    assert!(store.uses_redis());
    body(store).await;
}

/// Like [`migrated`], without running the migrations.
pub(crate) async fn unmigrated(backend: TestBackend, body: impl AsyncFn(Datastore)) {
    let (store, _database) = open(&backend).await;
    body(store).await;
}

/// A fresh, empty datastore on `backend`, and the database that lives while it is held.
async fn open(backend: &TestBackend) -> (Datastore, TestDatabase) {
    TestDatabase::open(backend)
        .await
        .expect("make and open the test database (TEST_DATABASE_URL reachable?)")
}
