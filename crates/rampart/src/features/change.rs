//! Change password (`GET|POST SECURITY_CHANGE_URL`, default `/change`), Flask-Security's
//! `change_password` view. Signed-in users only (session with CSRF, or auth token).
//!
//! A change rotates `fs_uniquifier`: every other session and every auth token issued before dies,
//! while the calling session is moved to a fresh id and stays signed in. The user is mailed a
//! `change_notice`.
//!
//! Template: `security/change_password.html`. Mail: `change_notice`.

use axum::Router;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::{AuthContext, AuthMethod};
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rate_limit::CurrentPassword;
use crate::web::rejection::Rejection;
use crate::web::security::Security;

const TEMPLATE: &str = "security/change_password.html";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.change.url),
        get(get_change).post(post_change),
    )
}

/// Validates a change of password for `user`: the current password (checked on the hashing
/// pool, counted against the user's login limit first), and the new one against the password
/// policy. `Ok(Ok(new_password))` when it may be set, `Ok(Err(errors))` with the form's errors.
///
/// # Errors
///
/// [`Rejection::Limited`] while the account's login limit is used up (see
/// [`check_current_password`](crate::web::rate_limit::check_current_password)): it says nothing
/// about the current password, right or wrong. [`Rejection::Failed`] when the datastore or the
/// hasher fails.
pub async fn validate(
    ctx: &AuthContext,
    user: &User,
    input: &mut FormInput,
) -> Result<Result<String, FieldErrors>, Rejection> {
    let security = ctx.security();
    let current = input.text("password");
    let new_password = input.text("new_password");
    let confirm = input.text("new_password_confirm");
    // Counted and checked before anything else is said: while the limit is used up, the answer
    // is the same 429 whatever the password (no "same as the previous one").
    let current_valid = match current.as_deref().filter(|c| !c.is_empty()) {
        Some(current) => Some(
            crate::web::rate_limit::check_current_password(ctx, user, current).await?
                == CurrentPassword::Valid,
        ),
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
        .map(|()| new_password.unwrap_or_default()))
}

/// Sets `new_password` (already validated, see [`validate`]) for `user` and mails the
/// `change_notice` (`SECURITY_SEND_PASSWORD_CHANGE_EMAIL`): the uniquifier rotates, so every
/// session and auth token of the user ends. Returns the user as now stored. `recovery_link` is
/// the absolute reset URL the notice offers (when `SECURITY_RECOVERABLE`).
///
/// # Errors
///
/// The datastore's, the hasher's or the mailer's error.
pub async fn change_password(
    security: &Security,
    user: &User,
    new_password: &str,
    recovery_link: Option<String>,
) -> crate::Result<User> {
    change_password_from(security, user, new_password, recovery_link, None).await
}

/// [`change_password`] from a request's `device`: `password_changed` is recorded in the same
/// transaction as the new password.
pub(crate) async fn change_password_from(
    security: &Security,
    user: &User,
    new_password: &str,
    recovery_link: Option<String>,
    device: Option<crate::activity::Device>,
) -> crate::Result<User> {
    let config = security.config();
    let activity = crate::activity::NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: crate::activity::ActivityEvent::PasswordChanged,
        device,
    };
    let uniquifier =
        crate::web::auth::set_new_password_recorded(security, user, new_password, &activity)
            .await?;
    let mut updated = user.clone();
    updated.fs_uniquifier = uniquifier;
    if config.change.send_email {
        crate::web::notify::send(
            security,
            "change_notice",
            &updated.email,
            context! { user => crate::web::notify::user_context(&updated), recovery_link => recovery_link, app_name => config.app_name },
        )?;
    }
    Ok(updated)
}

/// The change-password form.
#[utoipa::path(
    get,
    path = "/change",
    tag = "change",
    responses((status = 200, description = "The form, with `active_password` (whether the user has a password).", body = crate::web::openapi::UserAnswer)),
    security(("signed_in" = []))
)]
async fn get_change(ctx: AuthContext, user: CurrentUser) -> Result<Reply, Rejection> {
    Ok(Reply::Form(
        Form::new(TEMPLATE)
            .json("active_password", Value::Bool(user.user.password.is_some()))
            .json("user", ctx.user_payload(&user, false)?),
    ))
}

/// Changes the password; other sessions and every auth token end.
#[utoipa::path(
    post,
    path = "/change",
    tag = "change",
    request_body = ChangeBody,
    responses((status = 200, description = "Changed.", body = crate::web::openapi::UserAnswer)),
    security(("signed_in" = []))
)]
async fn post_change(
    ctx: AuthContext,
    user: CurrentUser,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let new_password = match validate(&ctx, &user.user, &mut input).await? {
        Ok(password) => password,
        Err(errors) => {
            return Ok(Reply::Invalid(
                Form::new(TEMPLATE).values(json!({})).errors(errors),
            ));
        }
    };
    let recovery_link = config
        .recover
        .enabled
        .then(|| ctx.external_url(&config.url(&config.recover.url)));
    let updated = change_password_from(
        &security,
        &user.user,
        &new_password,
        recovery_link,
        Some(crate::web::activity::device(&ctx)),
    )
    .await?;
    let csrf = if user.method == AuthMethod::Session {
        crate::web::auth::refresh_session_user(&ctx, &updated).await?
    } else {
        ctx.csrf_token().await?
    };
    let auth_user = crate::web::context::AuthUser {
        user: updated,
        roles: user.roles.clone(),
        method: user.method,
    };
    let json = json!({"csrf_token": csrf, "user": ctx.user_payload(&auth_user, false)?});
    let target = config
        .change
        .post_view
        .clone()
        .unwrap_or_else(|| config.url(&config.change.url));
    Ok(Reply::done(
        Json::ok(json),
        Html::flash_redirect("success", security.msg("PASSWORD_CHANGE", &[]), target),
    ))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_change, post_change))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/change", config.url(&config.change.url))],
    )
}

/// The body of `POST /change`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct ChangeBody {
    /// The current password (absent for a user without one).
    #[schema(nullable = false)]
    password: Option<String>,
    /// The new password.
    new_password: String,
    /// The new password again.
    #[schema(nullable = false)]
    new_password_confirm: Option<String>,
}
