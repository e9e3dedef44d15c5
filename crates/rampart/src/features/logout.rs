//! Logout (`POST /logout`): destroys the session and deletes the session, `XSRF-TOKEN` and
//! remember-me cookies. Answers 200 `{}` to JSON clients (also when not signed in) and redirects
//! browsers to `SECURITY_POST_LOGOUT_VIEW`. `GET /logout` is 405, as in Flask-Security 5.
//! No CSRF token is needed (Flask-Security's `LOGOUT_CSRF` is off).

use axum::Router;
use axum::response::Response;
use axum::routing::post;
use serde_json::Map;

use crate::config::SecurityConfig;
use crate::web::context::AuthContext;
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(&config.url(&config.logout.url), post(post_logout))
}

async fn post_logout(ctx: AuthContext) -> crate::Result<Response> {
    crate::web::auth::logout_user(&ctx).await?;
    if ctx.is_json() {
        Ok(crate::web::reply::json_ok(Map::new()))
    } else {
        Ok(crate::web::reply::redirect(
            &ctx.security().config().logout.post_view,
        ))
    }
}
