//! Sessions and devices (Rampart's security centre): the user's live sessions with when they
//! began and were last used, the client address, the browser and system ("Firefox on Linux") and
//! how they signed in; ending one of them, or every other one.
//!
//! Routes (session or auth token; state-changing session requests carry the CSRF header):
//! - `GET /api/sessions` → `{"sessions": [{id, created_at, last_seen_at, ip, device, user_agent,
//!   method, current}]}`, oldest first; `id` is opaque (derived from the stored hash of the session
//!   id, never the cookie's value);
//! - `DELETE /api/sessions/<id>` ends that session at once (its remember-me cookie too); an id
//!   that is not one of the user's live sessions is a 404;
//! - `POST /api/sessions/revoke-others` ends every other session, remember-me cookie and auth
//!   token ([`sign_out_other_sessions`](crate::web::auth::sign_out_other_sessions)).
//!
//! Ending sessions needs a fresh sign-in (`SECURITY_FRESHNESS`, as OWASP ASVS 3.3.4 asks:
//! "having re-entered login credentials"); otherwise a `401` with `reauth_required`. Each end is
//! recorded in the activity log (`session_revoked`, `other_sessions_revoked`).

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::json;

use crate::activity::ActivityEvent;
use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::{CurrentUser, FreshUser};
use crate::web::security::Security;
use crate::web::session_list::{SessionView, current_hash, list_sessions, public_id};

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new()
        .route(&config.url("/api/sessions"), get(get_sessions))
        .route(
            &config.url("/api/sessions/revoke-others"),
            post(post_revoke_others),
        )
        .route(&config.url("/api/sessions/{id}"), delete(delete_session))
}

/// Ends the session of `user` whose public id is `id` (its remember-me series too), at once on
/// every instance; ending the request's own session signs this browser out. `false` when `id`
/// names no live session of `user` (another user's included).
///
/// # Errors
///
/// The datastore's or the session store's.
pub async fn revoke_session(ctx: &AuthContext, user: &User, id: &str) -> crate::Result<bool> {
    let security = ctx.security();
    let datastore = security.datastore();
    let rows = datastore
        .session_details_of_user(user.id, security.now_naive())
        .await?;
    let Some(row) = rows.into_iter().find(|row| public_id(&row.id_hash) == id) else {
        return Ok(false);
    };
    if current_hash(ctx).as_deref() == Some(row.id_hash.as_str()) {
        // Recorded before the sign-out, which ends the request's user.
        crate::web::activity::record_request(ctx, user.id, ActivityEvent::SessionRevoked).await?;
        crate::web::auth::logout_user(ctx).await?;
        return Ok(true);
    }
    let data: serde_json::Value = serde_json::from_str(&row.data).unwrap_or_default();
    if let Some(series) = data
        .get(crate::web::remember::SESSION_SERIES_KEY)
        .and_then(serde_json::Value::as_str)
    {
        datastore.remember_series_delete(series).await?;
    }
    datastore.session_delete(&row.id_hash).await?;
    // Recorded once the session is gone, so the log never shows an end that did not happen.
    crate::web::activity::record_request(ctx, user.id, ActivityEvent::SessionRevoked).await?;
    Ok(true)
}

/// Ends every other session of `user` (and every remember-me cookie and auth token), keeping
/// this one signed in; records `other_sessions_revoked` (in the same transaction). Returns the
/// new CSRF token.
///
/// # Errors
///
/// The datastore's or the session store's.
pub async fn revoke_other_sessions(ctx: &AuthContext, user: &User) -> crate::Result<String> {
    crate::web::auth::sign_out_other_sessions(ctx, user).await
}

/// The user's live sessions.
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "sessions",
    responses((status = 200, description = "The sessions.", body = SessionsAnswer)),
    security(("signed_in" = []))
)]
async fn get_sessions(ctx: AuthContext, user: CurrentUser) -> crate::Result<Response> {
    let sessions = list_sessions(&ctx, &user.user).await?;
    Ok(crate::web::reply::json(
        StatusCode::OK,
        json!({ "sessions": sessions }),
    ))
}

/// Ends one of the user's sessions.
#[utoipa::path(
    delete,
    path = "/api/sessions/{id}",
    tag = "sessions",
    params(("id" = String, Path, description = "The id from the link or the earlier answer.")),
    responses((status = 200, description = "Ended.", body = crate::web::openapi::EmptyAnswer)),
    security(("signed_in" = []))
)]
async fn delete_session(
    ctx: AuthContext,
    user: FreshUser,
    Path(id): Path<String>,
) -> crate::Result<Response> {
    if revoke_session(&ctx, &user.user, &id).await? {
        Ok(crate::web::reply::json(StatusCode::OK, json!({})))
    } else {
        Ok(crate::web::reply::json_errors(
            StatusCode::NOT_FOUND,
            &["No such session.".to_owned()],
            None,
        ))
    }
}

/// Ends every other session of the user (and their auth tokens).
#[utoipa::path(
    post,
    path = "/api/sessions/revoke-others",
    tag = "sessions",
    responses((status = 200, description = "Ended; the new CSRF token.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
async fn post_revoke_others(ctx: AuthContext, user: FreshUser) -> crate::Result<Response> {
    let csrf = revoke_other_sessions(&ctx, &user.user).await?;
    Ok(crate::web::reply::json(StatusCode::OK, json!({ "csrf_token": csrf })).into_response())
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_sessions, delete_session, post_revoke_others))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[
            ("/api/sessions", config.url("/api/sessions")),
            ("/api/sessions/{id}", config.url("/api/sessions/{id}")),
            (
                "/api/sessions/revoke-others",
                config.url("/api/sessions/revoke-others"),
            ),
        ],
    )
}

/// The answer of `GET /api/sessions`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `get_sessions` renders")]
pub(crate) struct SessionsAnswer {
    /// The live sessions.
    sessions: Vec<SessionView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_id_is_neither_the_hash_nor_reversible_to_it() {
        let hash = crate::token::sha256_hex("session-id");
        let id = public_id(&hash);
        assert_eq!(id.len(), 32);
        assert!(!hash.contains(&id));
        assert_eq!(id, public_id(&hash), "stable");
    }
}
