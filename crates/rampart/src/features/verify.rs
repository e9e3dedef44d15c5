//! Freshness (`SECURITY_FRESHNESS`), Flask-Security's re-authentication: sensitive changes (the
//! email address, two-factor, recovery codes) need a password proven recently, so a stolen
//! session cookie alone cannot take the account over. A stale session is sent to
//! `SECURITY_VERIFY_URL` (default `/verify`) to enter the password again; JSON clients get
//! `401 {"errors": ["You must reauthenticate to access this endpoint"], "reauth_required": true}`.
//!
//! Auth tokens count as fresh: they live `SECURITY_TOKEN_MAX_AGE` (15 minutes by default), far
//! less than the freshness window. Template: `security/verify_user.html`.

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::config::SecurityConfig;
use crate::web::context::{AuthContext, AuthMethod};
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::rate_limit::CurrentPassword;
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.verify.url),
        get(get_verify).post(post_verify),
    )
}

/// Whether the request's user proved the password within `SECURITY_FRESHNESS`.
pub(crate) async fn is_fresh(ctx: &AuthContext) -> crate::Result<bool> {
    let Some(window) = ctx.security().config().verify.freshness else {
        return Ok(true);
    };
    match ctx.user().map(|u| u.method) {
        Some(AuthMethod::Token | AuthMethod::Basic) => return Ok(true),
        Some(AuthMethod::Session) => {}
        None => return Ok(false),
    }
    let at: Option<u64> = ctx.session.get(crate::web::auth::AUTH_AT_KEY).await?;
    let now = ctx.security().unix_now();
    Ok(at.is_some_and(|at| now.saturating_sub(at) <= window.as_secs()))
}

/// `Some(answer)` when the request's user must re-enter the password first: a 401 with
/// `reauth_required` for JSON, a redirect to the verify page (coming back here) for browsers.
pub(crate) async fn require_fresh(ctx: &AuthContext) -> crate::Result<Option<Response>> {
    if is_fresh(ctx).await? {
        return Ok(None);
    }
    let security = ctx.security();
    let message = security.msg("REAUTHENTICATION_REQUIRED", &[]);
    if ctx.is_json() {
        return Ok(Some(crate::web::reply::json(
            StatusCode::UNAUTHORIZED,
            json!({"errors": [message], "reauth_required": true}),
        )));
    }
    ctx.flash("info", &message).await?;
    let config = security.config();
    let next: String =
        url::form_urlencoded::byte_serialize(ctx.path_and_query().as_bytes()).collect();
    Ok(Some(crate::web::reply::redirect(&format!(
        "{}?next={next}",
        config.url(&config.verify.url)
    ))))
}

#[derive(serde::Deserialize)]
struct VerifyQuery {
    next: Option<String>,
}

async fn get_verify(
    ctx: AuthContext,
    _user: CurrentUser,
    Query(query): Query<VerifyQuery>,
) -> crate::Result<Response> {
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(ctx.json_base().await?));
    }
    verify_page(&ctx, query.next.as_deref(), &FieldErrors::new()).await
}

async fn verify_page(
    ctx: &AuthContext,
    next: Option<&str>,
    errors: &FieldErrors,
) -> crate::Result<Response> {
    let config = ctx.security().config();
    let next = next.filter(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).is_ok());
    crate::web::templates::form_page(
        ctx,
        "security/verify_user.html",
        Value::Null,
        errors,
        context! { next => next },
    )
    .await
}

async fn post_verify(
    ctx: AuthContext,
    user: CurrentUser,
    Query(query): Query<VerifyQuery>,
    mut input: FormInput,
) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let password = input.text("password").unwrap_or_default();
    let valid = if password.is_empty() {
        false
    } else {
        match crate::web::rate_limit::check_current_password(&ctx, &user.user, &password).await? {
            CurrentPassword::Limited(limited) => return Ok(limited),
            CurrentPassword::Valid => true,
            CurrentPassword::Invalid => false,
        }
    };
    if !valid {
        let message = if password.is_empty() {
            security.msg("PASSWORD_NOT_PROVIDED", &[])
        } else {
            security.msg("INVALID_PASSWORD", &[])
        };
        let errors = FieldErrors::single("password", message);
        if ctx.is_json() {
            return Ok(crate::web::reply::json_errors(
                StatusCode::BAD_REQUEST,
                &[],
                Some(&errors),
            ));
        }
        return verify_page(&ctx, query.next.as_deref(), &errors).await;
    }
    ctx.session
        .insert(crate::web::auth::AUTH_AT_KEY, security.unix_now())
        .await?;
    if ctx.is_json() {
        let mut response = ctx.json_base().await?;
        response.insert("user".into(), ctx.user_payload(&user, false)?);
        return Ok(crate::web::reply::json_ok(response));
    }
    ctx.flash("success", &security.msg("REAUTHENTICATION_SUCCESSFUL", &[]))
        .await?;
    let target = query
        .next
        .as_deref()
        .and_then(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).ok())
        .unwrap_or_else(|| config.login.post_view.clone());
    Ok(crate::web::reply::redirect(&target))
}
