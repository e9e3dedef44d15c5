//! Typed rejections: the refusals that end a request before its work is done — a rate limit used
//! up, a session that must prove the password again, a failure of the framework. A handler or
//! check returns `Err(Rejection)` and `?` carries it out; it renders itself in the request's
//! format (through the security layer, like a [`Reply`](crate::web::negotiate::Reply)).

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::RateLimit;
use crate::web::context::AuthContext;
use crate::web::negotiate::Unrendered;

/// Why a request was refused before its work was done.
#[derive(Debug)]
#[must_use]
pub enum Rejection {
    /// A rate limit is used up: `429` with `Retry-After`.
    Limited(Limited),
    /// The session must prove the password again first (`SECURITY_FRESHNESS`): JSON clients get
    /// `401` with `reauth_required`, browsers a flash and a redirect to `SECURITY_VERIFY_URL`
    /// that comes back here.
    Reauthenticate,
    /// No sign-in (or two-factor setup) is waiting for a code: a 400 envelope with
    /// `field_errors[""]` for JSON clients (as Flask-Security), the sign-in page with the message
    /// for browsers.
    NothingPending,
    /// The framework failed (the database, the templates, …): `500`, or `503` with
    /// `Retry-After` while the database is unreachable.
    Failed(crate::Error),
}

/// A rate limit that is used up: JSON clients get `429 {"errors": [limit], "retry_after":
/// seconds}`, browsers the error page saying when to try again; both with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// The limit that was reached.
    pub limit: RateLimit,
    /// When the next attempt will be counted.
    pub retry_after: Duration,
}

impl Limited {
    /// The `429` answer, in `ctx`'s format.
    pub(crate) fn response(&self, ctx: &AuthContext) -> Response {
        crate::web::rate_limit::too_many(ctx, &self.limit, self.retry_after)
    }
}

impl From<Limited> for Rejection {
    fn from(limited: Limited) -> Self {
        Self::Limited(limited)
    }
}

impl From<crate::Error> for Rejection {
    fn from(error: crate::Error) -> Self {
        Self::Failed(error)
    }
}

/// Every error the framework's `?` meets becomes [`Rejection::Failed`], as it becomes a
/// [`crate::Error`].
macro_rules! failed_from {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for Rejection {
            fn from(error: $error) -> Self {
                Self::Failed(error.into())
            }
        }
    )*};
}

failed_from!(
    crate::datastore::DatastoreError,
    crate::password::PasswordError,
    crate::mail::MailError,
    minijinja::Error,
    crate::config::ConfigError,
    crate::token::TokenError,
    tower_sessions::session::Error,
);

impl Rejection {
    /// Renders the rejection in `ctx`'s format.
    pub(crate) async fn render(self, ctx: &AuthContext) -> Response {
        match self {
            Self::Limited(limited) => limited.response(ctx),
            Self::Reauthenticate => match reauthenticate(ctx).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            },
            Self::NothingPending => match crate::web::pending_login::permission_denied(ctx).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            },
            Self::Failed(error) => error.into_response(),
        }
    }
}

async fn reauthenticate(ctx: &AuthContext) -> crate::Result<Response> {
    let security = ctx.security();
    let message = security.msg("REAUTHENTICATION_REQUIRED", &[]);
    if ctx.is_json() {
        return Ok(crate::web::reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [message], "reauth_required": true}),
        ));
    }
    ctx.flash("info", &message).await?;
    let config = security.config();
    let next: String =
        url::form_urlencoded::byte_serialize(ctx.path_and_query().as_bytes()).collect();
    Ok(crate::web::reply::redirect(&format!(
        "{}?next={next}",
        config.url(&config.verify.url)
    )))
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        match self {
            Self::Failed(error) => error.into_response(),
            other => Unrendered::Rejection(other).into_marked_response(),
        }
    }
}
