//! The app's routes: the HTML pages (dashboard, profile, security, admin, terms), profile
//! pictures, static files and the JSON API (`/api/*`).
//!
//! Pages are for browser sessions: [`SignedIn`] and [`AdminSignedIn`] send anonymous visitors
//! (and auth-token requests) to the sign-in page with a safe `next`, and answer a signed-in user
//! without the `Admin` role with the 403 page. State-changing forms carry the session's CSRF
//! token, checked by the security layer (urlencoded and multipart bodies alike).

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::extract::multipart::MultipartError;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use rampart::{AuthContext, AuthMethod, AuthRejection, AuthUser};

use crate::AppState;

pub mod account;
pub mod admin;
pub mod api;
pub mod header;
pub mod home;
pub mod profile;
pub mod security_centre;

/// The app's own routes (the framework's are merged by [`crate::router`]).
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(home::router())
        .merge(profile::router())
        .merge(account::router())
        .merge(admin::router())
        .merge(api::router())
        .merge(security_centre::router())
        .merge(crate::assets::router())
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
    /// Reading or writing an uploaded file failed.
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task (image processing) panicked or was cancelled.
    #[error("background task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A multipart body could not be read: the client's fault (400, or 413 when too large).
    #[error("multipart body: {0}")]
    Multipart(#[from] MultipartError),
}

impl IntoResponse for HandlerError {
    fn into_response(self) -> Response {
        match self {
            Self::Security(error) => error.into_response(),
            Self::Datastore(error) => rampart::Error::from(error).into_response(),
            Self::Multipart(error) => error.status().into_response(),
            error @ (Self::Database(_) | Self::Io(_) | Self::Task(_)) => {
                tracing::error!(%error, "request failed");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// A signed-in browser session (auth tokens are for the API). Anonymous visitors are redirected
/// to the sign-in page, with this page as `next`.
#[derive(Clone, Debug)]
pub struct SignedIn {
    /// The request's security context (for rendering, flashes, sign-out).
    pub ctx: AuthContext,
    /// The user.
    pub user: Arc<AuthUser>,
}

fn signed_in(parts: &Parts) -> Result<SignedIn, AuthRejection> {
    let ctx = parts
        .extensions
        .get::<AuthContext>()
        .cloned()
        .ok_or(AuthRejection::MissingLayer)?;
    match ctx
        .user()
        .filter(|u| u.method == AuthMethod::Session)
        .cloned()
    {
        Some(user) => Ok(SignedIn { ctx, user }),
        None => Err(AuthRejection::Unauthenticated(Box::new(ctx))),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        signed_in(parts)
    }
}

/// The role of the admin area.
pub const ADMIN_ROLE: &str = "Admin";

/// A signed-in session of a user with the `Admin` role; others get the 403 page.
#[derive(Clone, Debug)]
pub struct AdminSignedIn(pub SignedIn);

impl<S: Send + Sync> FromRequestParts<S> for AdminSignedIn {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let page = signed_in(parts)?;
        if page.user.has_role(ADMIN_ROLE) {
            Ok(Self(page))
        } else {
            Err(AuthRejection::Forbidden(Box::new(page.ctx)))
        }
    }
}

/// A form of the security page that needs a fresh sign-in (ending sessions) came from a stale
/// one: the re-authentication page (`SECURITY_VERIFY_URL`), back to the security page after.
pub(crate) async fn reauthenticate_for_security_page(
    state: &AppState,
    page: &SignedIn,
) -> Result<Response, HandlerError> {
    let security = &state.security;
    let config = security.config();
    page.ctx
        .flash("info", &security.msg("REAUTHENTICATION_REQUIRED", &[]))
        .await?;
    let next: String =
        url::form_urlencoded::byte_serialize(config.url(&config.change.url).as_bytes()).collect();
    Ok(rampart::reply::redirect(&format!(
        "{}?next={next}",
        config.url(&config.verify.url)
    )))
}

/// Renders an app page with the framework's common context (`csrf_token`, `flashes`,
/// `current_user`, `config`) and `extra`.
pub(crate) async fn render(
    ctx: &AuthContext,
    template: &str,
    extra: minijinja::Value,
) -> Result<Response, HandlerError> {
    Ok(rampart::reply::page(ctx, template, StatusCode::OK, extra).await?)
}

/// The name a page greets the user with: first name, username, then email.
pub(crate) fn display_name(user: &AuthUser, first_name: Option<&str>) -> String {
    first_name
        .map(str::to_owned)
        .or_else(|| user.user.username.clone())
        .unwrap_or_else(|| user.user.email.clone())
}

/// A date as pages show it: `12 Mar 2026`.
pub(crate) fn format_date(at: time::PrimitiveDateTime) -> String {
    at.format(time::macros::format_description!(
        "[day padding:none] [month repr:short] [year]"
    ))
    .unwrap_or_default()
}

/// A moment as pages show it (UTC): `12 Mar 2026, 14:05`, or `—` when there is none.
pub(crate) fn format_moment(at: Option<time::PrimitiveDateTime>) -> String {
    at.and_then(|at| {
        at.format(time::macros::format_description!(
            "[day padding:none] [month repr:short] [year], [hour]:[minute]"
        ))
        .ok()
    })
    .unwrap_or_else(|| "—".to_owned())
}

/// A time of day as pages show it: `14:05 UTC`.
pub(crate) fn format_time(at: time::PrimitiveDateTime) -> String {
    at.format(time::macros::format_description!("[hour]:[minute] UTC"))
        .unwrap_or_default()
}
