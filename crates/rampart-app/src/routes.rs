//! The app's routes: the HTML home page and the JSON API (`/api/*`).

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;

pub mod api;
pub mod home;

/// The app's own routes (the framework's are merged by [`crate::router`]).
pub fn router() -> Router<AppState> {
    Router::new().merge(home::router()).merge(api::router())
}

/// An unexpected failure in a handler: logged, answered with an opaque 500 (rendered by the
/// security layer in the request's format).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The framework failed.
    #[error(transparent)]
    Security(#[from] rampart::Error),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The framework's datastore failed.
    #[error("database: {0}")]
    Datastore(#[from] rampart::DatastoreError),
}

impl IntoResponse for HandlerError {
    fn into_response(self) -> Response {
        match self {
            Self::Security(error) => error.into_response(),
            Self::Datastore(error) => rampart::Error::from(error).into_response(),
            Self::Database(error) => {
                tracing::error!(%error, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}
