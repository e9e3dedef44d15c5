//! The datastore's error type and its mapping from sqlx errors.

use sqlx::error::{DatabaseError, ErrorKind};
use sqlx::migrate::MigrateError;

/// Why a datastore operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatastoreError {
    /// The database could not be reached in time (pool timeout, connection or I/O failure, SQLite
    /// busy): a server answers 503 and the client may retry.
    #[error("the database is unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// A unique constraint was violated; holds the column when known (`"email"`, `"username"`,
    /// `"fs_uniquifier"`, `"us_phone_number"`, `"fs_webauthn_user_handle"`, `"name"` for a role),
    /// else the constraint or the database's message.
    #[error("already exists: {0}")]
    Conflict(String),
    /// The row changed since it was read (a concurrent write won; holds the column compared, e.g.
    /// `"fs_uniquifier"`): nothing was written, and the request may be retried with fresh data.
    #[error("changed meanwhile: {0}")]
    Stale(String),
    /// A row the operation needs does not exist (e.g. `"role Admin"`, `"user 42"`).
    #[error("not found: {0}")]
    NotFound(String),
    /// Applying migrations failed (or an applied migration was changed since).
    #[error("database migration failed")]
    Migration(#[source] MigrateError),
    /// A value the datastore will not store, such as an email address without a canonical form
    /// (see [`crate::identity::normalize_email`]); holds the field (`"email"`).
    #[error("invalid value: {0}")]
    Invalid(String),
    /// The datastore is misconfigured (bad URL, out-of-range argument).
    #[error("invalid datastore configuration: {0}")]
    Config(String),
    /// Any other database error.
    #[error("database query failed")]
    Query(#[source] sqlx::Error),
    /// Redis (`REDIS_URL`) could not be reached or refused a command: a server answers 503.
    #[error("Redis is unavailable")]
    Redis(#[source] redis::RedisError),
}

impl DatastoreError {
    /// Whether the database was unavailable (answer 503, retry later).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Redis(_))
    }

    /// Whether a unique constraint was violated.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict(_))
    }

    /// Whether a needed row was missing.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// The column of a unique violation (`"email"`, `"username"`, …), if this is one.
    pub fn conflict_column(&self) -> Option<&str> {
        match self {
            Self::Conflict(column) => Some(column),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for DatastoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            sqlx::Error::Configuration(source) => Self::Config(source.to_string()),
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation => Self::Conflict(conflict_target(db.as_ref())),
                ErrorKind::ForeignKeyViolation => Self::NotFound(format!(
                    "referenced row ({})",
                    db.constraint().unwrap_or_else(|| db.message())
                )),
                _ if is_transient(db.as_ref()) => Self::Unavailable(err),
                _ => Self::Query(err),
            },
            _ => Self::Query(err),
        }
    }
}

impl From<MigrateError> for DatastoreError {
    fn from(err: MigrateError) -> Self {
        match err {
            MigrateError::Execute(inner) => match Self::from(inner) {
                Self::Unavailable(inner) => Self::Unavailable(inner),
                Self::Query(inner) => Self::Migration(MigrateError::Execute(inner)),
                other => other,
            },
            other => Self::Migration(other),
        }
    }
}

/// Columns that carry a unique constraint, most specific first (`username` contains `name`).
const UNIQUE_COLUMNS: [&str; 7] = [
    "fs_webauthn_user_handle",
    "us_phone_number",
    "fs_uniquifier",
    "credential_id",
    "username",
    "email",
    "name",
];

/// Names the column of a unique violation from the constraint (PostgreSQL: `user_email_key`,
/// `ix_user_email_lower`) or the message (SQLite: `UNIQUE constraint failed: user.email`).
fn conflict_target(db: &dyn DatabaseError) -> String {
    let text = db.constraint().unwrap_or_else(|| db.message());
    UNIQUE_COLUMNS
        .iter()
        .find(|column| text.contains(*column))
        .map_or_else(|| text.to_owned(), |column| (*column).to_owned())
}

/// Whether a database error means "try again later" rather than a bad query.
fn is_transient(db: &dyn DatabaseError) -> bool {
    let Some(code) = db.code() else {
        return false;
    };
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Primary result codes SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes.
        code.parse::<i32>()
            .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
    } else {
        // PostgreSQL SQLSTATE: connection exceptions, too many connections, shutting down,
        // starting up, and a database not accepting connections (55000, `ALLOW_CONNECTIONS
        // false` during maintenance).
        code.starts_with("08") || matches!(&*code, "53300" | "55000" | "57P01" | "57P02" | "57P03")
    }
}
