//! Rate limits (fixed window, state in the app database so limits hold across instances).

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use crate::config::RateLimit;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::rejection::{Limited, Rejection};
use crate::web::security::Security;

/// Counts a hit on `key`; `Err(retry_after)` once the limit is reached.
pub(crate) async fn hit(
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

/// Counts a hit on `key` against `limit` (if any): [`Limited`] once it is used up.
async fn count(
    security: &Security,
    key: &str,
    limit: Option<&RateLimit>,
) -> crate::Result<Result<(), Limited>> {
    let Some(limit) = limit else {
        return Ok(Ok(()));
    };
    Ok(hit(security, key, limit)
        .await?
        .map_err(|retry_after| Limited {
            limit: limit.clone(),
            retry_after,
        }))
}

/// The key of an identity that names no account: its canonical spelling (as the datastore would
/// look it up), lower-cased, so look-alike spellings of one unknown address share one count.
fn identity_key(identity: &str) -> String {
    let canonical = crate::identity::normalize_email(identity).unwrap_or_else(|_| {
        crate::identity::normalize_username(identity, Some(crate::identity::NormalizeForm::Nfkc))
    });
    format!("login-identity:{}", canonical.to_lowercase())
}

fn account_key(user_id: i64) -> String {
    format!("login-account:{user_id}")
}

/// The per-account key: the account once it is known, so every spelling of it (email, username,
/// any case) shares one count; an unknown identity keys on what was typed (normalised).
fn login_key(user: Option<&User>, identity: &str) -> String {
    user.map_or_else(|| identity_key(identity), |user| account_key(user.id))
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

/// Applies the login rate limit for the client's address: the attempt is counted *before* its
/// password is checked, so a concurrent burst gets at most the limit checked; a right password
/// takes its hit back ([`undo_login`]), so only failures use the limit up (as Devise and
/// allauth count them: a success cannot help a guesser).
pub(crate) async fn check_login(ctx: &AuthContext) -> Result<(), Rejection> {
    let limit = ctx.security.config().rate_limits.login.as_ref();
    Ok(count(&ctx.security, &address_key(ctx), limit).await??)
}

/// Takes back the hit [`check_login`] counted for an attempt whose password was right.
pub(crate) async fn undo_login(ctx: &AuthContext) -> crate::Result<()> {
    if ctx.security.config().rate_limits.login.is_some() {
        ctx.security
            .datastore()
            .rate_limit_undo(&address_key(ctx))
            .await?;
    }
    Ok(())
}

fn oauth_start_key(ctx: &AuthContext) -> String {
    let address = ctx
        .client_ip
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    format!("oauth-start:{address}")
}

/// Counts the start of a sign-in through a provider against the login limit
/// (`SECURITY_LOGIN_RATE_LIMIT`) for the client's address, before the provider is contacted, under
/// a key of its own (password failures and provider sign-ins do not use up each other's count); a
/// sign-in that completes takes its hit back ([`undo_oauth_start`]), so only flows left
/// unfinished or refused use the limit up.
pub(crate) async fn check_oauth_start(ctx: &AuthContext) -> Result<(), Rejection> {
    let limit = ctx.security.config().rate_limits.login.as_ref();
    Ok(count(&ctx.security, &oauth_start_key(ctx), limit).await??)
}

/// Takes back the hit [`check_oauth_start`] counted for a sign-in through a provider that
/// completed.
pub(crate) async fn undo_oauth_start(ctx: &AuthContext) -> crate::Result<()> {
    if ctx.security.config().rate_limits.login.is_some() {
        ctx.security
            .datastore()
            .rate_limit_undo(&oauth_start_key(ctx))
            .await?;
    }
    Ok(())
}

/// Counts a login attempt on an account (from any address), before its password is checked:
/// `user` is the account `identity` names, if any. [`Limited`] once its limit is used up.
pub(crate) async fn count_login_account(
    security: &Security,
    user: Option<&User>,
    identity: &str,
) -> crate::Result<Result<(), Limited>> {
    let limit = security.config().rate_limits.login_identity.as_ref();
    count(security, &login_key(user, identity), limit).await
}

/// Clears an account's attempt count after a successful login (or an unlock link).
pub(crate) async fn clear_login_account(security: &Security, user_id: i64) -> crate::Result<()> {
    security
        .datastore()
        .rate_limit_reset(&account_key(user_id))
        .await?;
    Ok(())
}

/// HTTP Basic credentials authenticate every request. Each attempt counts against both login
/// limits (per address, per account) *before* the password is checked, so a concurrent burst
/// gets at most the limit checked; a success takes its hits back ([`undo_basic`]), so only
/// failures use the limits up. `Some(response)` (429) when either is used up.
pub(crate) async fn count_basic(
    ctx: &AuthContext,
    user: Option<&User>,
    identity: &str,
) -> crate::Result<Option<Response>> {
    let config = ctx.security.config();
    let security = &ctx.security;
    let mut counted = count(
        security,
        &address_key(ctx),
        config.rate_limits.login.as_ref(),
    )
    .await?;
    if counted.is_ok() {
        counted = count(
            security,
            &login_key(user, identity),
            config.rate_limits.login_identity.as_ref(),
        )
        .await?;
    }
    Ok(counted.err().map(|limited| limited.response(ctx)))
}

/// Takes back the hits of a successful HTTP Basic attempt (see [`count_basic`]).
pub(crate) async fn undo_basic(ctx: &AuthContext, user: &User) -> crate::Result<()> {
    let config = ctx.security.config();
    let datastore = ctx.security.datastore();
    if config.rate_limits.login.is_some() {
        datastore.rate_limit_undo(&address_key(ctx)).await?;
    }
    if config.rate_limits.login_identity.is_some() {
        datastore.rate_limit_undo(&account_key(user.id)).await?;
    }
    Ok(())
}

/// `SECURITY_LOGIN_IDENTITY_RATE_LIMIT`, or 10 per 5 minutes when that is off: one-time codes
/// (six digits) and current passwords behind a signed-in session must never be open to
/// unthrottled guessing.
fn account_limit(security: &Security) -> RateLimit {
    security
        .config()
        .rate_limits
        .login_identity
        .clone()
        .unwrap_or_else(|| RateLimit {
            limit: 10,
            window: Duration::from_secs(300),
            description: "10 per 5 minute".into(),
        })
}

/// Counts an attempt at a one-time code (two-factor, recovery code, or a mailed code) for
/// `user_id` *before* it is checked, atomically: `Some(response)` (429) once the limit is used
/// up, so a concurrent burst gets at most the limit checked.
pub(crate) async fn count_code(
    security: &Security,
    user_id: i64,
) -> crate::Result<Result<(), Limited>> {
    count(security, &code_key(user_id), Some(&account_limit(security))).await
}

/// Forgets `user_id`'s attempts at codes once one was right.
pub(crate) async fn clear_codes(security: &Security, user_id: i64) -> crate::Result<()> {
    security
        .datastore()
        .rate_limit_reset(&code_key(user_id))
        .await?;
    Ok(())
}

/// What a check of a signed-in user's current password came to ([`check_current_password`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum CurrentPassword {
    /// The password is right (the account's attempt count is cleared).
    Valid,
    /// The password is wrong, or the user has none.
    Invalid,
}

/// Checks `password` against `user`'s current one (change of password, re-authentication,
/// deleting an account, …): the attempt counts against the user's login limit
/// (`SECURITY_LOGIN_IDENTITY_RATE_LIMIT`, shared with `/login`; 10 per 5 minutes when that is
/// off) *first*, atomically, and while that is used up the answer is
/// [`Rejection::Limited`] whether the password is right or not (nothing was checked, so it
/// says nothing about the password). A right password clears the count, as a login does. Users
/// without a password get a dummy verification of equal cost.
///
/// # Errors
///
/// [`Rejection::Limited`]; [`Rejection::Failed`] with the datastore's error, or the hasher's
/// when it fails or is saturated.
pub async fn check_current_password(
    ctx: &AuthContext,
    user: &User,
    password: &str,
) -> Result<CurrentPassword, Rejection> {
    let limit = account_limit(&ctx.security);
    count(&ctx.security, &account_key(user.id), Some(&limit)).await??;
    let hasher = ctx.security.hasher();
    let valid = match user.password.as_deref() {
        Some(hash) => hasher.verify(password, hash).await?.valid,
        None => {
            hasher.verify_dummy(password).await?;
            false
        }
    };
    if !valid {
        return Ok(CurrentPassword::Invalid);
    }
    clear_login_account(&ctx.security, user.id).await?;
    Ok(CurrentPassword::Valid)
}

/// Counts a request by `user_id` to change their email address (`SECURITY_MAIL_RATE_LIMIT`, or
/// 10 per 10 minutes when that is off: each request may mail someone, and the answers must not
/// be a fast way to try addresses).
pub(crate) async fn count_change_email(ctx: &AuthContext, user_id: i64) -> Result<(), Rejection> {
    let limit = ctx
        .security
        .config()
        .rate_limits
        .mail
        .clone()
        .unwrap_or_else(|| RateLimit {
            limit: 10,
            window: Duration::from_secs(600),
            description: "10 per 10 minute".into(),
        });
    Ok(count(
        &ctx.security,
        &format!("change-email:{user_id}"),
        Some(&limit),
    )
    .await??)
}

/// Counts a mail about to be sent to `recipient` on a visitor's request
/// (`SECURITY_MAIL_RATE_LIMIT`); refused when that address has had enough.
pub(crate) async fn check_mail(ctx: &AuthContext, recipient: &str) -> Result<(), Rejection> {
    let key = format!("mail-to:{}", recipient.trim().to_lowercase());
    let limit = ctx.security.config().rate_limits.mail.as_ref();
    Ok(count(&ctx.security, &key, limit).await??)
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
        crate::web::templates::render_error_for(
            ctx,
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many attempts ({}). Please try again in {}.",
                limit.readable(),
                crate::messages::describe_wait(retry_after)
            ),
        )
    };
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}
