//! Change password (`GET|POST SECURITY_CHANGE_URL`, default `/change`), Flask-Security's
//! `change_password` view. Signed-in users only (session with CSRF, or auth token).
//!
//! A change rotates `fs_uniquifier`: every other session and every auth token issued before dies,
//! while the calling session is moved to a fresh id and stays signed in. The user is mailed a
//! `change_notice`.
//!
//! Template: `security/change_password.html`. Mail: `change_notice`.

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::{AuthContext, AuthMethod};
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::rate_limit::CurrentPassword;
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.change.url),
        get(get_change).post(post_change),
    )
}

/// Why a change of password was not accepted.
#[derive(Debug)]
pub enum ChangeRefusal {
    /// The form's errors (missing or wrong current password, a weak or mismatched new one).
    Errors(FieldErrors),
    /// The account's login limit is used up: the 429 answer (see
    /// [`check_current_password`](crate::web::rate_limit::check_current_password)); it says
    /// nothing about the current password, right or wrong.
    Limited(Response),
}

/// Validates a change of password for the request's `user`, checking the current one on the
/// hashing pool; the check counts against the user's login limit first.
pub async fn validate(
    ctx: &AuthContext,
    user: &User,
    input: &mut FormInput,
) -> crate::Result<Result<String, ChangeRefusal>> {
    let security = ctx.security();
    let current = input.text("password");
    let new_password = input.text("new_password");
    let confirm = input.text("new_password_confirm");
    // Counted and checked before anything else is said: while the limit is used up, the answer
    // is the same 429 whatever the password (no "same as the previous one").
    let current_valid = match current.as_deref().filter(|c| !c.is_empty()) {
        Some(current) => {
            match crate::web::rate_limit::check_current_password(ctx, user, current).await? {
                CurrentPassword::Limited(limited) => {
                    return Ok(Err(ChangeRefusal::Limited(limited)));
                }
                CurrentPassword::Valid => Some(true),
                CurrentPassword::Invalid => Some(false),
            }
        }
        None => None,
    };
    let mut errors = input.take_errors();
    if current.as_deref().is_none_or(str::is_empty) && !errors.has("password") {
        errors.add("password", security.msg("PASSWORD_NOT_PROVIDED", &[]));
    }
    crate::web::forms::new_password_errors(
        security,
        &mut errors,
        new_password.as_deref(),
        confirm.as_deref(),
        "new_password",
        "new_password_confirm",
    );
    match current_valid {
        Some(false) => errors.add("password", security.msg("INVALID_PASSWORD", &[])),
        Some(true) if new_password.is_some() && new_password == current => {
            errors.add("password", security.msg("PASSWORD_IS_THE_SAME", &[]));
        }
        _ => {}
    }
    Ok(errors
        .into_result()
        .map(|()| new_password.unwrap_or_default())
        .map_err(ChangeRefusal::Errors))
}

async fn get_change(ctx: AuthContext, user: CurrentUser) -> crate::Result<Response> {
    if ctx.is_json() {
        let mut response = ctx.json_base().await?;
        response.insert(
            "active_password".into(),
            Value::Bool(user.user.password.is_some()),
        );
        response.insert("user".into(), ctx.user_payload(&user, false)?);
        return Ok(crate::web::reply::json_ok(response));
    }
    crate::web::templates::form_page(
        &ctx,
        "security/change_password.html",
        Value::Null,
        &FieldErrors::new(),
        context! {},
    )
    .await
}

async fn post_change(
    ctx: AuthContext,
    user: CurrentUser,
    mut input: FormInput,
) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let new_password = match validate(&ctx, &user.user, &mut input).await? {
        Ok(password) => password,
        Err(ChangeRefusal::Limited(limited)) => return Ok(limited),
        Err(ChangeRefusal::Errors(errors)) => {
            return crate::web::templates::form_errors(
                &ctx,
                "security/change_password.html",
                json!({}),
                &errors,
                context! {},
            )
            .await;
        }
    };
    let uniquifier =
        crate::web::auth::set_new_password(&security, &user.user, &new_password).await?;
    let mut updated = user.user.clone();
    updated.fs_uniquifier = uniquifier;
    let csrf = if user.method == AuthMethod::Session {
        crate::web::auth::refresh_session_user(&ctx, &updated).await?
    } else {
        ctx.csrf_token().await?
    };
    if config.change.send_email {
        let recovery_link = config
            .recover
            .enabled
            .then(|| ctx.external_url(&config.url(&config.recover.url)));
        crate::web::notify::send(
            &security,
            "change_notice",
            &updated.email,
            context! { user => crate::web::notify::user_context(&updated), recovery_link => recovery_link, app_name => config.app_name },
        )?;
    }
    if ctx.is_json() {
        let auth_user = crate::web::context::AuthUser {
            user: updated,
            roles: user.roles.clone(),
            method: user.method,
        };
        let response = json!({"csrf_token": csrf, "user": ctx.user_payload(&auth_user, false)?});
        return Ok(crate::web::reply::json(StatusCode::OK, response));
    }
    ctx.flash("success", &security.msg("PASSWORD_CHANGE", &[]))
        .await?;
    let target = config
        .change
        .post_view
        .clone()
        .unwrap_or_else(|| config.url(&config.change.url));
    Ok(crate::web::reply::redirect(&target))
}
