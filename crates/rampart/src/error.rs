//! The framework's error type. Expected outcomes (bad input, wrong password) are not errors; these
//! are failures of the machinery, answered with an opaque 500 or a 503.

use crate::config::ConfigError;
use crate::datastore::DatastoreError;
use crate::mail::MailError;
use crate::password::PasswordError;
use crate::token::TokenError;

/// A `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, broadly: decides the HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A dependency (database, hashing pool) is unavailable or saturated: 503, retry later.
    Unavailable,
    /// The data changed while the request ran (a concurrent write won): 409, reload and retry.
    Conflict,
    /// Configuration problem, found at start-up.
    Config,
    /// Anything else: 500.
    Internal,
}

/// A failure of the framework's machinery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The datastore failed.
    #[error("datastore: {0}")]
    Datastore(#[from] DatastoreError),
    /// Password hashing failed or is saturated.
    #[error("password hashing: {0}")]
    Password(#[from] PasswordError),
    /// A mail could not be built or sent.
    #[error("mail: {0}")]
    Mail(#[from] MailError),
    /// A template failed to render.
    #[error("template: {0}")]
    Template(#[from] minijinja::Error),
    /// Invalid configuration.
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    /// A token could not be made.
    #[error("token: {0}")]
    Token(#[from] TokenError),
    /// The session store failed.
    #[error("session: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

/// How the session store marks a backend error that means "the database is unreachable" (so
/// [`Error::kind`] reports it as [`ErrorKind::Unavailable`]).
pub(crate) const SESSION_STORE_UNAVAILABLE: &str = "database unavailable: ";

impl Error {
    /// The broad kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Datastore(DatastoreError::Unavailable(_) | DatastoreError::Redis(_))
            | Self::Password(PasswordError::Busy) => ErrorKind::Unavailable,
            Self::Session(tower_sessions::session::Error::Store(
                tower_sessions::session_store::Error::Backend(message),
            )) if message.starts_with(SESSION_STORE_UNAVAILABLE) => ErrorKind::Unavailable,
            Self::Datastore(DatastoreError::Stale(_)) => ErrorKind::Conflict,
            Self::Config(_) => ErrorKind::Config,
            _ => ErrorKind::Internal,
        }
    }
}
