//! Rate limits (fixed window, state in the app database so limits hold across instances).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::config::RateLimit;
use crate::web::context::AuthContext;
use crate::web::security::Security;

/// Counts a hit on `key`; `Err(retry_after)` once the limit is reached.
pub async fn hit(
    security: &Security,
    key: &str,
    limit: &RateLimit,
) -> crate::Result<Result<(), Duration>> {
    let decision = security
        .datastore()
        .rate_limit_hit(key, limit.limit, limit.window, security.now_naive())
        .await?;
    Ok(if decision.allowed {
        Ok(())
    } else {
        Err(decision.retry_after)
    })
}

/// Counts a hit on `key` against `limit` (if any): the 429 answer once it is used up.
async fn count(
    ctx: &AuthContext,
    key: &str,
    limit: Option<&RateLimit>,
) -> crate::Result<Option<Response>> {
    let Some(limit) = limit else {
        return Ok(None);
    };
    Ok(hit(&ctx.security, key, limit)
        .await?
        .err()
        .map(|retry_after| too_many(ctx, limit, retry_after)))
}

/// Whether `key` has already used up `limit` (if any), without counting: the 429 answer if so.
async fn exhausted(
    ctx: &AuthContext,
    key: &str,
    limit: Option<&RateLimit>,
) -> crate::Result<Option<Response>> {
    let Some(limit) = limit else {
        return Ok(None);
    };
    Ok(ctx
        .security
        .datastore()
        .rate_limit_exhausted(key, limit.limit, limit.window, ctx.security.now_naive())
        .await?
        .map(|retry_after| too_many(ctx, limit, retry_after)))
}

fn identity_key(identity: &str) -> String {
    format!("login-identity:{}", identity.trim().to_lowercase())
}

fn code_key(user_id: i64) -> String {
    format!("tf-code:{user_id}")
}

fn address_key(ctx: &AuthContext) -> String {
    let address = ctx
        .client_ip
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    format!("login:{address}")
}

/// Applies the login rate limit for the client's address; `Some(response)` when refused.
pub(crate) async fn check_login(ctx: &AuthContext) -> crate::Result<Option<Response>> {
    let limit = ctx.security.config().login_rate_limit.as_ref();
    count(ctx, &address_key(ctx), limit).await
}

/// Counts a login attempt for an account (any address); `Some(response)` when refused.
pub(crate) async fn check_login_identity(
    ctx: &AuthContext,
    identity: &str,
) -> crate::Result<Option<Response>> {
    let limit = ctx.security.config().login_identity_rate_limit.as_ref();
    count(ctx, &identity_key(identity), limit).await
}

/// Clears an account's attempt count after a successful login.
pub(crate) async fn clear_login_identity(security: &Security, identity: &str) -> crate::Result<()> {
    if security.config().login_identity_rate_limit.is_some() {
        security
            .datastore()
            .rate_limit_reset(&identity_key(identity))
            .await?;
    }
    Ok(())
}

/// HTTP Basic credentials authenticate every request, so only failures count against the login
/// limits (per address and per account); once either is used up, Basic attempts are refused
/// with 429 before any password is checked. `Some(response)` when refused.
pub(crate) async fn basic_refused(
    ctx: &AuthContext,
    identity: &str,
) -> crate::Result<Option<Response>> {
    let config = ctx.security.config();
    if let Some(refused) =
        exhausted(ctx, &address_key(ctx), config.login_rate_limit.as_ref()).await?
    {
        return Ok(Some(refused));
    }
    exhausted(
        ctx,
        &identity_key(identity),
        config.login_identity_rate_limit.as_ref(),
    )
    .await
}

/// Counts a failed HTTP Basic attempt against both login limits (the verdict is read by the next
/// attempt, in [`basic_refused`]).
pub(crate) async fn count_failed_basic(ctx: &AuthContext, identity: &str) -> crate::Result<()> {
    let config = ctx.security.config();
    count(ctx, &address_key(ctx), config.login_rate_limit.as_ref()).await?;
    count(
        ctx,
        &identity_key(identity),
        config.login_identity_rate_limit.as_ref(),
    )
    .await?;
    Ok(())
}

/// The limit on wrong one-time codes per user: `SECURITY_LOGIN_IDENTITY_RATE_LIMIT`, or 10 per
/// 5 minutes when that is off — six digits must never be open to unthrottled guessing.
fn code_limit(ctx: &AuthContext) -> RateLimit {
    ctx.security
        .config()
        .login_identity_rate_limit
        .clone()
        .unwrap_or_else(|| RateLimit {
            limit: 10,
            window: Duration::from_secs(300),
            description: "10 per 5 minute".into(),
        })
}

/// Whether `user_id` has used up its attempts at one-time codes (two-factor, recovery codes);
/// `Some(response)` (429) when it has.
pub(crate) async fn code_refused(
    ctx: &AuthContext,
    user_id: i64,
) -> crate::Result<Option<Response>> {
    exhausted(ctx, &code_key(user_id), Some(&code_limit(ctx))).await
}

/// Counts a wrong one-time code (or a mailed one) for `user_id`.
pub(crate) async fn count_failed_code(ctx: &AuthContext, user_id: i64) -> crate::Result<()> {
    count(ctx, &code_key(user_id), Some(&code_limit(ctx))).await?;
    Ok(())
}

/// Counts a mail about to be sent to `recipient` on a visitor's request
/// (`SECURITY_MAIL_RATE_LIMIT`); `Some(response)` (429) when that address has had enough.
pub(crate) async fn check_mail(
    ctx: &AuthContext,
    recipient: &str,
) -> crate::Result<Option<Response>> {
    let key = format!("mail-to:{}", recipient.trim().to_lowercase());
    count(ctx, &key, ctx.security.config().mail_rate_limit.as_ref()).await
}

/// A 429 answer with `Retry-After`, in the request's format.
pub(crate) fn too_many(ctx: &AuthContext, limit: &RateLimit, retry_after: Duration) -> Response {
    let secs = retry_after.as_secs().max(1);
    let mut response = if ctx.is_json {
        crate::web::reply::json(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"errors": [limit.description], "retry_after": secs}),
        )
    } else {
        let minutes = secs.div_ceil(60);
        crate::web::layer::render_error(
            &ctx.security,
            false,
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many attempts ({}). Please try again in {minutes} minute(s).",
                limit.description
            ),
        )
    };
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
