//! Running the app's own SQL on whichever backend the datastore uses.
//!
//! sqlx's SQLite driver understands PostgreSQL's `$1` placeholders, so each query is written
//! once; the crate-private `with_pool!` macro stamps the body out for both pool types.

use time::{OffsetDateTime, PrimitiveDateTime};

/// Runs `$body` with `$pool` bound to the concrete pool (`SqlitePool` or `PgPool`) of a
/// [`rampart::Datastore`].
macro_rules! with_pool {
    ($datastore:expr, |$pool:ident| $body:expr) => {
        match $datastore.pool() {
            ::rampart::DbPool::Sqlite($pool) => $body,
            ::rampart::DbPool::Postgres($pool) => $body,
        }
    };
}

pub(crate) use with_pool;

/// Naive UTC, as the framework stores datetimes.
pub fn naive_utc(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}
