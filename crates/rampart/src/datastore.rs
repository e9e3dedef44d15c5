//! The datastore: users, roles, sessions and rate limits in SQLite or PostgreSQL, through sqlx.
//!
//! Tables follow Flask-Security's `fsqla_v3` models (`user`, `role`, `roles_users`, `webauthn`, same
//! names and columns, naive UTC datetimes, comma separated `permissions`), so a database created by
//! Flask-Security opens unchanged; Rampart adds `rampart_session` and `rampart_rate_limit` beside
//! them (both move to Redis with [`Datastore::use_redis`]). The schema lives in `migrations/sqlite` and `migrations/postgres` (same content, one
//! flavour per backend) and is applied by [`Datastore::migrate`].
//!
//! Every query is written once: sqlx's SQLite driver understands PostgreSQL's `$1` placeholders, so
//! each method body is stamped out for both pool types by a small macro. Every operation that writes
//! more than one statement runs in one transaction.
//!
//! Emails and usernames are stored and looked up in their canonical spelling
//! ([`crate::identity`]: NFKC and IDNA for emails, `SECURITY_USERNAME_NORMALIZE_FORM` for
//! usernames, non-ASCII letters case-folded), and compared case-insensitively (`lower()` on both
//! sides, backed by unique expression indexes, so two accounts cannot differ only by case or by a
//! look-alike spelling). SQLite's `lower()` folds ASCII only, which is why non-ASCII letters are
//! folded before they are stored.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationSource, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub use activity::{ActivityFilter, SessionDetails};
pub(crate) use cache::UserWithRoles;
pub use error::DatastoreError;
pub use invalidation::InvalidationStatus;
pub use oauth::OauthLink;
pub(crate) use oauth::{NewOauthLink, Unlinked};
pub use rate_limit::RateLimitDecision;
pub use sessions::SessionInfo;

/// Runs `$body` with `$pool` bound to the concrete pool of `$store`.
///
/// The body is expanded once per backend, so the same sqlx calls type-check against
/// `SqlitePool` and `PgPool`; SQL text must therefore be portable (`$n` placeholders, quoted
/// identifiers, `ON CONFLICT`, `RETURNING`).
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::datastore::DbPool::Sqlite($pool) => $body,
            $crate::datastore::DbPool::Postgres($pool) => $body,
        }
    };
}

/// Appends the event `$new` (a `&NewActivity`) stamped `$now` through `$conn` (a connection or
/// an open transaction of either backend); resolves to `Result<i64, sqlx::Error>`, the event's id.
macro_rules! insert_activity {
    ($conn:expr, $new:expr, $now:expr) => {{
        let new: &$crate::activity::NewActivity = $new;
        let detail = new.event.detail().map(|d| d.to_string());
        let device = new.device.as_ref();
        sqlx::query_scalar::<_, i64>($crate::datastore::activity::INSERT)
            .bind(new.user_id)
            .bind(new.actor_id)
            .bind(new.event.name())
            .bind(detail.as_deref())
            .bind(device.and_then(|d| d.ip.as_deref()))
            .bind(device.map(|d| d.name.as_str()))
            .bind(device.map(|d| d.key.as_str()))
            .bind(device.and_then(|d| d.user_agent.as_deref()))
            .bind($now)
            .fetch_one($conn)
            .await
    }};
}

/// Runs the write `$body` in a transaction `$tx` of `$store` and, when `$activity` (an
/// `Option<&NewActivity>`) is some, appends that event in the same transaction, then commits.
/// Evaluates to `Result<(body's value, Option<event id>), DatastoreError>`; a `?` in `$body`
/// rolls everything back.
macro_rules! recorded_write {
    ($store:expr, $activity:expr, $now:expr, |$tx:ident| $body:expr) => {
        with_pool!($store, |pool| {
            let mut $tx = pool.begin().await?;
            let value = $body;
            let id = match $activity {
                Some(new) => Some(insert_activity!(&mut *$tx, new, $now)?),
                None => None,
            };
            $tx.commit().await?;
            Ok::<_, $crate::datastore::DatastoreError>((value, id))
        })
    };
}

/// The columns of `user`, decoded into [`crate::model::User`], with an optional table prefix.
///
/// Integer columns are cast to `BIGINT` so that tables created by Flask-Security (32-bit `INTEGER`
/// on PostgreSQL) decode as `i64` too.
#[rustfmt::skip]
macro_rules! user_columns {
    ($p:literal) => {
        concat!(
            "CAST(", $p, "\"id\" AS BIGINT) AS \"id\", ",
            $p, "\"email\" AS \"email\", ",
            $p, "\"username\" AS \"username\", ",
            $p, "\"password\" AS \"password\", ",
            $p, "\"active\" AS \"active\", ",
            $p, "\"fs_uniquifier\" AS \"fs_uniquifier\", ",
            $p, "\"confirmed_at\" AS \"confirmed_at\", ",
            $p, "\"last_login_at\" AS \"last_login_at\", ",
            $p, "\"current_login_at\" AS \"current_login_at\", ",
            $p, "\"last_login_ip\" AS \"last_login_ip\", ",
            $p, "\"current_login_ip\" AS \"current_login_ip\", ",
            "CAST(", $p, "\"login_count\" AS BIGINT) AS \"login_count\", ",
            $p, "\"tf_primary_method\" AS \"tf_primary_method\", ",
            $p, "\"tf_totp_secret\" AS \"tf_totp_secret\", ",
            $p, "\"tf_phone_number\" AS \"tf_phone_number\", ",
            $p, "\"us_totp_secrets\" AS \"us_totp_secrets\", ",
            $p, "\"us_phone_number\" AS \"us_phone_number\", ",
            $p, "\"fs_webauthn_user_handle\" AS \"fs_webauthn_user_handle\", ",
            $p, "\"mf_recovery_codes\" AS \"mf_recovery_codes\", ",
            $p, "\"create_datetime\" AS \"create_datetime\", ",
            $p, "\"update_datetime\" AS \"update_datetime\""
        )
    };
}

/// The columns of `role`, decoded into `roles::RoleRow`, with an optional table prefix.
#[rustfmt::skip]
macro_rules! role_columns {
    ($p:literal) => {
        concat!(
            "CAST(", $p, "\"id\" AS BIGINT) AS \"id\", ",
            $p, "\"name\" AS \"name\", ",
            $p, "\"description\" AS \"description\", ",
            $p, "\"permissions\" AS \"permissions\""
        )
    };
}

/// The user and their roles from the rows (`&[Row]`) of a `user` ⟕ `roles_users` ⟕ `role`
/// join — the user's columns as [`user_columns!`] names them, the role's as `role_id`,
/// `role_name`, `role_description`, `role_permissions`; one row per role, or one with `role_id`
/// NULL — as `Result<Option<(User, Vec<Role>)>, DatastoreError>`: `None` without rows or when the
/// user's `id` is NULL (an outer join that found no user).
macro_rules! user_with_roles_of {
    ($rows:expr) => {{
        use sqlx::{FromRow as _, Row as _};
        let rows = $rows;
        match rows.first() {
            None => Ok(None),
            Some(first) if first.try_get::<Option<i64>, _>("id")?.is_none() => Ok(None),
            Some(first) => {
                let user = $crate::model::User::from_row(first)?;
                let mut roles = Vec::with_capacity(rows.len());
                for row in rows {
                    if let Some(id) = row.try_get::<Option<i64>, _>("role_id")? {
                        roles.push($crate::datastore::roles::role_from_parts(
                            id,
                            row.try_get("role_name")?,
                            row.try_get("role_description")?,
                            row.try_get("role_permissions")?,
                        ));
                    }
                }
                Ok::<_, $crate::datastore::DatastoreError>(Some((user, roles)))
            }
        }
    }};
}

// Declared after the macros above, which they use.
mod activity;
mod cache;
mod error;
mod invalidation;
mod mailed_code;
mod oauth;
mod rate_limit;
mod redis_sessions;
mod redis_store;
mod remember;
mod roles;
mod session_writer;
mod sessions;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod two_factor;
mod unified_signin;
mod users;
mod webauthn;

/// How long a request waits for a pooled connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite waits on a lock held by another connection.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in a SQLite file pool (WAL: many readers, one writer at a time).
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// Connections in a PostgreSQL pool.
const POSTGRES_MAX_CONNECTIONS: u32 = 16;

/// A connection pool for one of the supported backends.
#[derive(Clone, Debug)]
pub enum DbPool {
    /// An SQLite database (a file, or memory).
    Sqlite(SqlitePool),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

/// Rampart's storage: every query the framework runs, for SQLite and PostgreSQL alike.
///
/// Cheap to clone (the pool is reference counted); clones share one pool and one cache.
///
/// # The cache
/// The two lookups behind every authenticated request — the session row and the user with their
/// roles — are cached in this process for a short time ([`Datastore::set_cache_ttl`], 5 s by
/// default, `SECURITY_AUTH_CACHE_TTL`), and every write made through a `Datastore` drops what it
/// changed, so a deactivated user, a rotated uniquifier or a removed role is refused on the very
/// next request. On PostgreSQL (and with [`Datastore::use_redis`]) every write also publishes
/// what it dropped, and every other instance on the database drops it too within milliseconds
/// (see [`InvalidationStatus`]; while an instance cannot hear the others it caches nothing).
/// Changes that publish nothing (hand-written SQL, the CLI on SQLite) are seen within the TTL;
/// an application that writes the
/// `user`, `role` or `roles_users` tables itself through [`Datastore::pool`] calls
/// [`Datastore::invalidate_user`] or [`Datastore::invalidate_all`] afterwards. Session writes are
/// grouped: concurrent saves share one statement and one commit, each caller still returning only
/// once its row is committed (in Redis, concurrent writes are pipelined on one connection).
#[derive(Clone, Debug)]
pub struct Datastore {
    pool: DbPool,
    shared: Arc<Shared>,
}

/// What every clone of a datastore shares besides the pool.
#[derive(Debug, Default)]
struct Shared {
    cache: Arc<cache::Cache>,
    channel: invalidation::Channel,
    redis: std::sync::OnceLock<redis_store::RedisStore>,
    session_writer: session_writer::SessionWriter,
    username_form: users::UsernameForm,
}

impl Datastore {
    /// Connects to `url` and returns a datastore over a new pool.
    ///
    /// - `sqlite:path`, `sqlite://path?mode=rwc`: the file is created when missing and opened in WAL
    ///   mode with foreign keys on, a 5 s busy timeout and `synchronous = NORMAL`; the pool holds up
    ///   to 8 connections. `sqlite::memory:` gets a single connection kept for the pool's life.
    /// - `postgres://…` or `postgresql://…`: a pool of up to 16 connections.
    ///
    /// Waiting more than 5 s for a pooled connection fails with [`DatastoreError::Unavailable`].
    /// Prepared statements are cached per connection by sqlx.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Config`] for an unsupported or malformed URL,
    /// [`DatastoreError::Unavailable`] when the database cannot be reached.
    pub async fn connect(url: &str) -> Result<Self, DatastoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| DatastoreError::Config(format!("invalid SQLite URL: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .synchronous(SqliteSynchronous::Normal);
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let pool_options = if in_memory {
                // Each connection to a private in-memory database sees its own database: keep
                // exactly one, forever.
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .min_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
            } else {
                SqlitePoolOptions::new().max_connections(SQLITE_MAX_CONNECTIONS)
            };
            let pool = pool_options
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Ok(Self::from_pool(DbPool::Sqlite(pool)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| DatastoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(POSTGRES_MAX_CONNECTIONS)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            Ok(Self::from_pool(DbPool::Postgres(pool)))
        } else {
            Err(DatastoreError::Config(
                "unsupported database URL: expected sqlite:… or postgres://…".to_owned(),
            ))
        }
    }

    /// Wraps a pool the application built itself (to choose its own pool options).
    ///
    /// SQLite pools should enable foreign keys (they are on by default in sqlx), or deletes will
    /// not cascade to application tables.
    ///
    /// On PostgreSQL, called within a Tokio runtime, this starts the cross-instance
    /// [invalidation channel](InvalidationStatus) (`LISTEN`/`NOTIFY`, one pooled connection).
    pub fn from_pool(pool: DbPool) -> Self {
        let store = Self {
            pool,
            shared: Arc::default(),
        };
        if let DbPool::Postgres(pg) = &store.pool
            && tokio::runtime::Handle::try_current().is_ok()
        {
            store.shared.channel.start(
                invalidation::Transport::Postgres(pg.clone()),
                Arc::clone(&store.shared.cache),
            );
        }
        store
    }

    /// Uses Redis at `url` (`redis://host:port/db`) beside the database: the sessions and the
    /// rate-limit counters live there (atomic Lua scripts; sessions keyed by the hash of their
    /// id, expiring with them, listed per user), and cache invalidations go over Redis pub/sub
    /// instead of PostgreSQL's `LISTEN`/`NOTIFY` (on SQLite, instead of nothing). Users, roles,
    /// remember-me series and the rest stay in the database, the source of truth; sessions
    /// already in the database are no longer read (their users sign in again, or come back by
    /// their remember-me cookie). Keys and the channel are named after the database
    /// (`rampart:<database>:…`: its name on PostgreSQL, `sqlite-` and a digest of the file's
    /// path on SQLite), so apps on different databases can share one Redis. The cache
    /// is off until the subscription is up. Call it once, before serving.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Config`] for a malformed URL or a second call,
    /// [`DatastoreError::Redis`] when Redis does not answer.
    pub async fn use_redis(&self, url: &str) -> Result<(), DatastoreError> {
        let client = redis::Client::open(url)
            .map_err(|e| DatastoreError::Config(format!("invalid Redis URL: {e}")))?;
        let database = match &self.pool {
            DbPool::Postgres(pool) => sqlx::query_scalar::<_, String>("SELECT current_database()")
                .fetch_one(pool)
                .await
                .map_err(DatastoreError::from)?,
            // The file's path, digested: two SQLite apps sharing one Redis keep their keys
            // (users numbered alike, above all) apart.
            DbPool::Sqlite(pool) => {
                let file = pool
                    .connect_options()
                    .get_filename()
                    .to_string_lossy()
                    .into_owned();
                let digest = crate::token::sha256_hex(&file);
                format!("sqlite-{}", digest.get(..12).unwrap_or(&digest))
            }
        };
        let prefix = format!("rampart:{database}:");
        let store = redis_store::RedisStore::connect(client.clone(), prefix.clone()).await?;
        self.shared
            .redis
            .set(store)
            .map_err(|_| DatastoreError::Config("Redis is already in use".to_owned()))?;
        self.shared.channel.start(
            invalidation::Transport::Redis(client, format!("{prefix}invalidate")),
            Arc::clone(&self.shared.cache),
        );
        Ok(())
    }

    /// Redis, when [`Datastore::use_redis`] was called.
    pub(crate) fn redis(&self) -> Option<&redis_store::RedisStore> {
        self.shared.redis.get()
    }

    /// Whether [`Datastore::use_redis`] was called.
    pub fn uses_redis(&self) -> bool {
        self.redis().is_some()
    }

    /// The state of the cross-instance invalidation channel: [`InvalidationStatus::Local`] on
    /// SQLite without Redis, else [`InvalidationStatus::Up`] while subscribed.
    pub fn invalidation_status(&self) -> InvalidationStatus {
        if self.shared.channel.transport().is_none() {
            InvalidationStatus::Local
        } else if self.shared.cache.channel_up() {
            InvalidationStatus::Up
        } else {
            InvalidationStatus::Down
        }
    }

    /// `"postgres"` or `"redis"` when invalidations go to other instances, `None` when they stay
    /// in this process.
    pub fn invalidation_transport(&self) -> Option<&'static str> {
        self.shared.channel.transport()
    }

    /// Drops what `invalidation` names from this process's cache and publishes it to the other
    /// instances.
    pub(crate) fn invalidate(&self, invalidation: invalidation::Invalidation) {
        invalidation.apply(&self.shared.cache);
        self.shared.channel.publish(invalidation);
    }

    /// How long the session and user lookups stay cached in this process (default 5 s; zero
    /// turns the cache off). Applies to every clone of this datastore. See [`Datastore`].
    pub fn set_cache_ttl(&self, ttl: Duration) {
        self.shared.cache.set_ttl(ttl);
    }

    /// The cache's time to live.
    pub fn cache_ttl(&self) -> Duration {
        self.shared.cache.ttl()
    }

    /// Forgets what this process (and, through the invalidation channel, every instance) cached
    /// about user `user_id`: call it after changing the
    /// `user` or `roles_users` rows of that user with SQL of your own.
    pub fn invalidate_user(&self, user_id: i64) {
        self.invalidate(invalidation::Invalidation::User(user_id));
    }

    /// Forgets every cached user and session, here and on every instance: call it after changing roles, or many users, with
    /// SQL of your own.
    pub fn invalidate_all(&self) {
        self.invalidate(invalidation::Invalidation::AllUsers);
        self.invalidate(invalidation::Invalidation::AllSessions);
    }

    pub(crate) fn cache(&self) -> &cache::Cache {
        &self.shared.cache
    }

    /// Closes the datastore at shutdown, after the requests in flight: stops the invalidation
    /// channel and the caching with it, then waits for every pooled connection to come back
    /// and closes them (session writes are made on the requests' own tasks, so none is left
    /// behind). Every clone is closed; later queries fail with [`DatastoreError::Unavailable`].
    pub async fn close(&self) {
        self.shared.channel.stop();
        self.shared.cache.set_channel_up(false);
        with_pool!(self, |pool| pool.close().await);
    }

    /// The underlying pool, for the application's own queries.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self.pool {
            DbPool::Sqlite(_) => "sqlite",
            DbPool::Postgres(_) => "postgres",
        }
    }

    /// Applies the framework's pending migrations (idempotent).
    ///
    /// Migrations the framework does not know (the application's) are ignored, so both sets
    /// share sqlx's `_sqlx_migrations` table. Framework migrations use versions 1 to 999.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Migration`] when a migration fails or an applied one was changed,
    /// [`DatastoreError::Unavailable`] when the database cannot be reached.
    pub async fn migrate(&self) -> Result<(), DatastoreError> {
        match &self.pool {
            DbPool::Sqlite(pool) => {
                let mut migrator = sqlx::migrate!("./migrations/sqlite");
                migrator.set_ignore_missing(true);
                migrator.run(pool).await?;
            }
            DbPool::Postgres(pool) => {
                let mut migrator = sqlx::migrate!("./migrations/postgres");
                migrator.set_ignore_missing(true);
                migrator.run(pool).await?;
            }
        }
        Ok(())
    }

    /// How many of the framework's migrations are not applied (or failed) in this database: 0
    /// when [`Datastore::migrate`] has run to the end.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] when the database cannot be reached.
    pub async fn pending_migrations(&self) -> Result<usize, DatastoreError> {
        const APPLIED: &str = "SELECT \"version\" FROM \"_sqlx_migrations\" WHERE \"success\"";
        let (known, applied): (Vec<i64>, Result<Vec<i64>, sqlx::Error>) = match &self.pool {
            DbPool::Sqlite(pool) => (
                sqlx::migrate!("./migrations/sqlite")
                    .iter()
                    .map(|m| m.version)
                    .collect(),
                sqlx::query_scalar(APPLIED).fetch_all(pool).await,
            ),
            DbPool::Postgres(pool) => (
                sqlx::migrate!("./migrations/postgres")
                    .iter()
                    .map(|m| m.version)
                    .collect(),
                sqlx::query_scalar(APPLIED).fetch_all(pool).await,
            ),
        };
        let applied = match applied {
            Ok(applied) => applied,
            // No table yet: nothing is applied.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        Ok(known.iter().filter(|v| !applied.contains(v)).count())
    }

    /// Applies an application's own migrations, given one set per backend (the one matching this
    /// datastore runs).
    ///
    /// Applied migrations missing from the set (the framework's) are ignored. Application and
    /// framework migrations share one version space: **applications must number theirs from 1000**
    /// (the framework keeps 1 to 999). Run [`Datastore::migrate`] first, since application tables
    /// usually reference `user`.
    ///
    /// ```ignore
    /// static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
    /// static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
    /// store.migrate().await?;
    /// store.migrate_app(&SQLITE, &POSTGRES).await?;
    /// ```
    ///
    /// # Errors
    ///
    /// As for [`Datastore::migrate`].
    pub async fn migrate_app(
        &self,
        sqlite: &Migrator,
        postgres: &Migrator,
    ) -> Result<(), DatastoreError> {
        match &self.pool {
            DbPool::Sqlite(pool) => ignoring_missing(sqlite).await?.run(pool).await?,
            DbPool::Postgres(pool) => ignoring_missing(postgres).await?.run(pool).await?,
        }
        Ok(())
    }

    /// Checks that the database answers.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] when it does not.
    pub async fn ping(&self) -> Result<(), DatastoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }
}

/// A copy of `migrator` that ignores applied migrations it does not contain.
async fn ignoring_missing(migrator: &Migrator) -> Result<Migrator, DatastoreError> {
    let mut copy = Migrator::new(ResolvedMigrations(migrator.iter().cloned().collect())).await?;
    copy.set_ignore_missing(true);
    Ok(copy)
}

/// Migrations already in memory, as a [`MigrationSource`].
#[derive(Debug)]
struct ResolvedMigrations(Vec<Migration>);

type BoxDynError = Box<dyn std::error::Error + Send + Sync>;

impl MigrationSource<'static> for ResolvedMigrations {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async move { Ok(self.0) })
    }
}

/// Splits a comma separated list (Flask-Security's `AsaList`), trimming items and dropping empty ones.
pub(crate) fn split_csv(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Joins items into a comma separated list, `None` when there are none.
///
/// Items are trimmed and any comma inside an item splits it, so the list reads back as written.
pub(crate) fn join_csv(items: &[String]) -> Option<String> {
    let items: Vec<String> = items
        .iter()
        .flat_map(|item| split_csv(Some(item)))
        .collect();
    if items.is_empty() {
        None
    } else {
        Some(items.join(","))
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn escape_like(value: &str) -> Cow<'_, str> {
    if value.contains(['%', '_', '\\']) {
        let mut escaped = String::with_capacity(value.len() + 8);
        for c in value.chars() {
            if matches!(c, '%' | '_' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        Cow::Owned(escaped)
    } else {
        Cow::Borrowed(value)
    }
}
