//! Logout (`POST /logout`): destroys the session and deletes the session, `XSRF-TOKEN` and
//! remember-me cookies. Answers 200 `{}` to JSON clients (also when not signed in) and redirects
//! browsers to `SECURITY_POST_LOGOUT_VIEW`. `GET /logout` is 405, as in Flask-Security 5.
//! No CSRF token is needed (Flask-Security's `LOGOUT_CSRF` is off).
//!
//! Signing out is of a session, so there is no logout without one: the shared function is
//! [`logout_user`](crate::web::auth::logout_user); a CLI or a job ends every session of a user
//! with a new uniquifier instead ([`set_new_password`](crate::web::auth::set_new_password), or
//! [`sign_out_other_sessions`](crate::web::auth::sign_out_other_sessions) from a request).

use axum::Router;
use axum::routing::post;
use serde_json::json;

use crate::config::SecurityConfig;
use crate::web::context::AuthContext;
use crate::web::negotiate::{Html, Json, Reply};
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(&config.url(&config.logout.url), post(post_logout))
}

/// Signs out (also when not signed in).
#[utoipa::path(
    post,
    path = "/logout",
    tag = "logout",
    responses((status = 200, description = "Signed out.", body = crate::web::openapi::EmptyAnswer))
)]
async fn post_logout(ctx: AuthContext) -> crate::Result<Reply> {
    crate::web::auth::logout_user(&ctx).await?;
    Ok(Reply::done(
        Json::ok(json!({})),
        Html::redirect(ctx.security().config().logout.post_view.clone()),
    ))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(post_logout))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/logout", config.url(&config.logout.url))],
    )
}
