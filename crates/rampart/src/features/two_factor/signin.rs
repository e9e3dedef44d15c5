//! The login's second step: a right password for a user with a second factor hands off here
//! ([`begin_login`]); the session holds the pending sign-in and `POST /tf-validate {"code"}`
//! completes it. `/tf-validate` also takes a setup's first code (see `setup.rs`).

use axum::response::Response;
use serde_json::json;

use super::{CodeVerdict, EMAIL, check_code, check_code_for, send_code, setup, verify_page};
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::pending_login;
use crate::web::security::Security;

/// A sign-in waiting for its second factor ([`begin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecondFactorPending {
    /// The user's method, [`super::AUTHENTICATOR`] or [`EMAIL`] (empty if they have none).
    pub method: String,
    /// Whether a code was just mailed (the email method).
    pub code_mailed: bool,
}

/// Begins the second step of `user`'s sign-in (their password was right): for the email method
/// their current code is mailed. Nobody is signed in; the caller keeps the pending sign-in (the
/// web: in the session) until [`super::check_code`] accepts a code.
///
/// # Errors
///
/// Rendering the mail fails, or the user's secret is malformed.
pub fn begin(security: &Security, user: &User) -> crate::Result<SecondFactorPending> {
    let method = user.tf_primary_method.clone().unwrap_or_default();
    let mut code_mailed = false;
    if method == EMAIL
        && let Some(secret) = user.tf_totp_secret.as_deref()
    {
        send_code(security, user, &user.email, secret)?;
        code_mailed = true;
    }
    Ok(SecondFactorPending {
        method,
        code_mailed,
    })
}

/// Starts a two-factor login for `user`, whose password was right: the pending user goes into
/// a fresh session, a code is mailed for the email method ([`begin`]); nobody is signed in yet.
pub(crate) async fn begin_login(
    ctx: &AuthContext,
    user: &User,
    remember: bool,
    next: Option<String>,
) -> crate::Result<Response> {
    let security = ctx.security();
    let config = security.config();
    pending_login::start(ctx, user, remember, next).await?;
    let pending = begin(security, user)?;
    if ctx.is_json() {
        let mut response = ctx.json_base().await?;
        response.insert("tf_method".into(), json!(pending.method));
        response.insert("tf_primary_method".into(), json!(pending.method));
        response.insert("tf_required".into(), json!(true));
        response.insert("tf_state".into(), json!("ready"));
        return Ok(crate::web::reply::json_ok(response));
    }
    Ok(crate::web::reply::redirect(
        &config.url(&config.two_factor.token_validation_url),
    ))
}

pub(super) async fn get_validate(ctx: AuthContext) -> crate::Result<Response> {
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(ctx.json_base().await?));
    }
    let setup_method = setup::pending_method(&ctx).await?;
    if ctx.user().is_some() && setup_method.is_some() {
        return verify_page(&ctx, setup_method, false, &FieldErrors::new()).await;
    }
    match pending_login::pending_user(&ctx).await? {
        Some(user) => verify_page(&ctx, user.tf_primary_method, true, &FieldErrors::new()).await,
        None => pending_login::permission_denied(&ctx).await,
    }
}

pub(super) async fn post_validate(
    ctx: AuthContext,
    mut input: FormInput,
) -> crate::Result<Response> {
    let code = input.text("code").unwrap_or_default();

    // Finishing a setup (signed in).
    if let Some(user) = ctx.user().cloned()
        && let Some(pending) = setup::pending_setup(&ctx).await?
    {
        return setup::post_first_code(&ctx, &user, &pending, &code).await;
    }

    // Completing a login.
    let Some(user) = pending_login::pending_user(&ctx).await? else {
        return pending_login::permission_denied(&ctx).await;
    };
    let security = ctx.security().clone();
    // After a rescue the code came by mail: it lives as long as mailed codes do.
    let verdict = if pending_login::rescued(&ctx).await? {
        let secret = user.tf_totp_secret.as_deref().unwrap_or_default();
        check_code_for(&security, &user, EMAIL, secret, &code).await?
    } else {
        check_code(&security, &user, &code).await?
    };
    match verdict {
        CodeVerdict::Accepted => pending_login::complete_login(&ctx, &user).await,
        CodeVerdict::Limited { retry_after } => {
            Ok(crate::web::rate_limit::too_many_codes(&ctx, retry_after))
        }
        CodeVerdict::Invalid => {
            let errors = super::invalid_code(&security);
            verify_page(&ctx, user.tf_primary_method.clone(), true, &errors).await
        }
    }
}
