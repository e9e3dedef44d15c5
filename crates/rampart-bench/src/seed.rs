//! A fresh SQLite database for the sample app, seeded fast with confirmed users.
//!
//! The schema comes from the app itself ([`rampart_app::connect`]: the framework's and the app's
//! migrations, and the roles). Users are then inserted by SQLite alone, with recursive CTEs in one
//! transaction: `user{i}@bench.example`, active, confirmed, one precomputed argon2id hash (the
//! app's hasher, so the app's parameters and `SECURITY_PASSWORD_SALT` pre-hash), a random
//! `fs_uniquifier`, the `User` role and an empty profile — what a registration would have made.

use std::path::Path;
use std::time::{Duration, Instant};

use rampart::{DbPool, Security, Settings};
use rampart_app::AppConfig;
use sqlx::Connection as _;

use crate::BenchError;

/// The password of every seeded user.
pub const PASSWORD: &str = "bench password 1";

/// `SECRET_KEY` of the benchmarked app (fixed, so tokens can be made by the benchmark).
pub const SECRET_KEY: &str = "rampart-bench-secret-key-0123456789";

/// `SECURITY_PASSWORD_SALT` of the benchmarked app.
pub const PASSWORD_SALT: &str = "rampart-bench-password-salt";

/// Users inserted per statement.
const CHUNK: u64 = 50_000;

/// The email address of seeded user `i` (from 1).
pub fn email(i: u64) -> String {
    format!("user{i}@bench.example")
}

/// The app's settings for a database file: fixed secrets, production mode (`SERVER_NAME` set)
/// with cookies allowed over plain HTTP, console mail, the login rate limits (per address and per
/// account) raised out of the way, any free port.
///
/// `extra` is added last (e.g. cheap argon2 parameters for tests).
pub fn app_settings(database: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = [
        (
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", database.display()),
        ),
        ("SECRET_KEY", SECRET_KEY.to_owned()),
        ("SECURITY_PASSWORD_SALT", PASSWORD_SALT.to_owned()),
        ("DEBUG", "false".to_owned()),
        // Production mode needs the links' host named (links in mails never follow `Host`).
        ("SERVER_NAME", "localhost".to_owned()),
        ("SESSION_COOKIE_SECURE", "false".to_owned()),
        ("MAIL_BACKEND", "console".to_owned()),
        (
            "SECURITY_LOGIN_RATE_LIMIT",
            "100000000 per 1 minute".to_owned(),
        ),
        (
            "SECURITY_LOGIN_IDENTITY_RATE_LIMIT",
            "100000000 per 1 minute".to_owned(),
        ),
        ("RAMPART_BIND", "127.0.0.1:0".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (key, value) in extra {
        pairs.retain(|(k, _)| k != key);
        pairs.push(((*key).to_owned(), (*value).to_owned()));
    }
    pairs
}

/// The app's configuration for these settings (as the app will load them).
///
/// # Errors
///
/// [`BenchError::App`] when the settings are refused.
pub fn app_config(settings: &[(String, String)], instance: &Path) -> Result<AppConfig, BenchError> {
    let settings = Settings::from_pairs(settings.iter().map(|(k, v)| (k.as_str(), v.clone())));
    AppConfig::from_settings(settings, instance)
        .map_err(|e| BenchError::App(rampart_app::AppError::Config(e)))
}

/// What seeding did.
#[derive(Debug)]
pub struct Seeded {
    /// The framework handle the schema was made with (same secrets as the app: it can issue
    /// auth tokens the app accepts).
    pub security: Security,
    /// Users in the database.
    pub users: u64,
    /// Time to insert them.
    pub took: Duration,
}

/// Creates the schema and roles, then inserts `users` confirmed users, all with [`PASSWORD`].
///
/// # Errors
///
/// [`BenchError::App`] when the app cannot set up the database, [`BenchError::Database`] when an
/// insert fails.
pub async fn seed(config: &AppConfig, users: u64) -> Result<Seeded, BenchError> {
    let security = rampart_app::connect(config).await?;
    let hash = security.hasher().hash_blocking(PASSWORD)?;
    let DbPool::Sqlite(pool) = security.datastore().pool() else {
        return Err(BenchError::Setup("the benchmark seeds SQLite only".into()));
    };
    let started = Instant::now();
    let mut conn = pool.acquire().await?;
    sqlx::query("PRAGMA cache_size = -262144")
        .execute(&mut *conn)
        .await?;
    let mut tx = conn.begin().await?;
    let role_id: i64 = sqlx::query_scalar("SELECT \"id\" FROM \"role\" WHERE \"name\" = 'User'")
        .fetch_one(&mut *tx)
        .await?;
    let first: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(\"id\"), 0) + 1 FROM \"user\"")
        .fetch_one(&mut *tx)
        .await?;
    let now = rampart_app::db::naive_utc(time::OffsetDateTime::now_utc());
    let mut from = 1;
    while from <= users {
        let to = (from + CHUNK - 1).min(users);
        sqlx::query(
            "WITH RECURSIVE seq(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM seq WHERE i < $2) \
             INSERT INTO \"user\" (\"email\", \"password\", \"active\", \"fs_uniquifier\", \
             \"confirmed_at\", \"login_count\", \"create_datetime\", \"update_datetime\") \
             SELECT 'user' || i || '@bench.example', $3, 1, lower(hex(randomblob(16))), $4, 0, $4, $4 \
             FROM seq",
        )
        .bind(i64::try_from(from).unwrap_or(i64::MAX))
        .bind(i64::try_from(to).unwrap_or(i64::MAX))
        .bind(&hash)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        from = to + 1;
    }
    sqlx::query(
        "INSERT INTO \"roles_users\" (\"user_id\", \"role_id\") \
         SELECT \"id\", $2 FROM \"user\" WHERE \"id\" >= $1",
    )
    .bind(first)
    .bind(role_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO \"profile\" (\"user_id\") SELECT \"id\" FROM \"user\" WHERE \"id\" >= $1",
    )
    .bind(first)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    // Start the app on a clean file: everything in the main database, an empty WAL.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut *conn)
        .await?;
    let took = started.elapsed();
    drop(conn);
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM \"user\"")
        .fetch_one(pool)
        .await?;
    pool.close().await;
    Ok(Seeded {
        security,
        users: u64::try_from(total).unwrap_or(0),
        took,
    })
}
