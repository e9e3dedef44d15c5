//! Test support (feature `testing`): throwaway SQLite and PostgreSQL databases, and a local SMTP
//! sink that receives and decodes mails.

pub mod database;
pub mod smtp_sink;

pub use database::{TestBackend, TestDatabase, TestDatabaseError};

/// The Redis of `TEST_REDIS_URL` (e.g. `redis://127.0.0.1:6379/0`) for a test that needs one.
/// Without that variable, CI (`CI` set, as `.ci/run` does) must fail, since it has to test
/// Redis, so this panics there; elsewhere it prints a notice and gives `None`, and the test
/// passes without running (as [`TestBackend::postgres_or_skip`] does for PostgreSQL).
///
/// # Panics
///
/// When `CI` is set and `TEST_REDIS_URL` is not.
pub fn redis_url_or_skip() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty());
    if url.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Redis tests: set TEST_REDIS_URL"
        );
        eprintln!("TEST_REDIS_URL is not set: Redis not tested");
    }
    url
}
