//! Throwaway databases for tests: a fresh SQLite file, or a fresh PostgreSQL database created
//! through an admin URL (e.g. `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres`).
//! Each [`TestDatabase`] has its own uniquely named database, so tests run in parallel; dropping
//! it deletes the database.

use sqlx::{Connection, Executor, PgConnection};

/// The backend a test runs on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestBackend {
    /// A temporary SQLite file.
    Sqlite,
    /// A new database on the PostgreSQL server behind this admin URL.
    Postgres(String),
}

impl TestBackend {
    /// The PostgreSQL backend named by `TEST_DATABASE_URL`, if that is set and not empty.
    pub fn postgres_from_env() -> Option<Self> {
        std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
            .map(Self::Postgres)
    }

    /// The PostgreSQL backend for a test stamped `…::postgres`: the one of `TEST_DATABASE_URL`.
    /// Without that variable, CI (`CI` set, as `.ci/run` does) must fail, since it has to test
    /// PostgreSQL, so this panics there; elsewhere it prints a notice and gives `None`, and the
    /// test passes without running.
    ///
    /// # Panics
    ///
    /// When `CI` is set and `TEST_DATABASE_URL` is not.
    pub fn postgres_or_skip() -> Option<Self> {
        let backend = Self::postgres_from_env();
        if backend.is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the PostgreSQL tests: set TEST_DATABASE_URL"
            );
            eprintln!("TEST_DATABASE_URL is not set: PostgreSQL not tested");
        }
        backend
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Why a test database could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TestDatabaseError {
    /// The temporary folder for SQLite could not be made.
    #[error("temporary folder: {0}")]
    TempDir(#[from] std::io::Error),
    /// The admin URL is not a URL.
    #[error("TEST_DATABASE_URL is not a URL: {0}")]
    Url(#[from] url::ParseError),
    /// The datastore could not connect to the new database.
    #[error("cannot open the test database: {0}")]
    Connect(String),
    /// PostgreSQL refused or could not be reached.
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
}

/// A database that exists while this value lives: [`TestDatabase::url`] connects to it.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
    backend: &'static str,
    guard: Guard,
}

#[derive(Debug)]
enum Guard {
    Sqlite(#[expect(dead_code, reason = "held for its Drop")] tempfile::TempDir),
    Postgres { admin_url: String, database: String },
}

impl TestDatabase {
    /// Makes an empty database on `backend`.
    ///
    /// # Errors
    ///
    /// [`TestDatabaseError`] when the folder or the PostgreSQL database cannot be made.
    pub async fn create(backend: &TestBackend) -> Result<Self, TestDatabaseError> {
        match backend {
            TestBackend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite:{}", dir.path().join("rampart.db").display());
                Ok(Self {
                    url,
                    backend: "sqlite",
                    guard: Guard::Sqlite(dir),
                })
            }
            TestBackend::Postgres(admin_url) => {
                let database = format!("rampart_test_{}", uuid::Uuid::new_v4().simple());
                let mut url = url::Url::parse(admin_url)?;
                let mut admin = PgConnection::connect(admin_url).await?;
                admin
                    .execute(format!("CREATE DATABASE \"{database}\"").as_str())
                    .await?;
                admin.close().await?;
                url.set_path(&format!("/{database}"));
                Ok(Self {
                    url: url.to_string(),
                    backend: "postgres",
                    guard: Guard::Postgres {
                        admin_url: admin_url.clone(),
                        database,
                    },
                })
            }
        }
    }

    /// Makes an empty database on `backend` and connects a [`Datastore`](crate::Datastore) to it
    /// (no migrations run): the datastore and the database that lives while it is held.
    ///
    /// # Errors
    ///
    /// [`TestDatabaseError`] when the database cannot be made or connected to.
    pub async fn open(
        backend: &TestBackend,
    ) -> Result<(crate::Datastore, Self), TestDatabaseError> {
        let database = Self::create(backend).await?;
        let store = crate::Datastore::connect(database.url())
            .await
            .map_err(|error| TestDatabaseError::Connect(error.to_string()))?;
        Ok((store, database))
    }

    /// The database's connection URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Guard::Postgres {
            admin_url,
            database,
        } = &self.guard
        else {
            return;
        };
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
            tracing::warn!(%database, "could not drop the test database: {dropped:?}");
        }
    }
}
