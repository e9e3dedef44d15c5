//! Test fixture: one migrated datastore per backend, on [`crate::testing::TestDatabase`] — an
//! SQLite temp file, and a fresh PostgreSQL database when `TEST_DATABASE_URL` is set.

use super::Datastore;
use crate::testing::{TestBackend, TestDatabase};

/// Keeps a test database alive; dropping it deletes the database.
pub(crate) type TestDbGuard = TestDatabase;

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
    let mut stores = Vec::new();
    for backend in TestBackend::all_from_env() {
        let database = TestDatabase::create(&backend)
            .await
            .expect("create a test database");
        let store = Datastore::connect(database.url())
            .await
            .expect("open the test database");
        stores.push((store, database));
    }
    stores
}
