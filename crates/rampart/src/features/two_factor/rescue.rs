//! `/tf-rescue`: a sign-in waiting for its second factor whose code does not come. `{"help_setup":
//! "email"}` mails the user a code (which then lives as long as mailed codes do); `"help"` asks a
//! person at the site (`SECURITY_TWO_FACTOR_RESCUE_MAIL`) to help.

use std::time::Duration;

use axum::response::Response;
use minijinja::context;
use serde_json::{Value, json};

use super::{EMAIL, send_code, verify_page};
use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::pending_login;
use crate::web::security::Security;

/// A way out for a sign-in whose second factor is at hand no more ([`rescue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescue {
    /// Mail the user their current code (`help_setup: "email"`).
    Email,
    /// Mail `SECURITY_TWO_FACTOR_RESCUE_MAIL`: a person at the site has to help
    /// (`help_setup: "help"`).
    Help,
}

/// What a [`rescue`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum RescueOutcome {
    /// The mail is on its way.
    Sent,
    /// Too many attempts for this user: nothing was mailed (see
    /// [`super::CodeVerdict::Limited`]).
    Limited {
        /// How long until the user's attempts are counted afresh.
        retry_after: Duration,
    },
}

/// Rescues `user`'s waiting sign-in `how`. Every mail counts as an attempt at a code, so rescue
/// cannot flood the user's mailbox.
///
/// # Errors
///
/// The datastore's errors; rendering the mail fails.
pub async fn rescue(security: &Security, user: &User, how: Rescue) -> crate::Result<RescueOutcome> {
    if let Err(retry_after) = crate::web::rate_limit::hit_code(security, user.id).await? {
        return Ok(RescueOutcome::Limited { retry_after });
    }
    let config = security.config();
    match how {
        Rescue::Help => crate::web::notify::send(
            security,
            "two_factor_rescue",
            &config.two_factor.rescue_mail,
            context! { user => crate::web::notify::user_context(user), app_name => config.app_name },
        )?,
        Rescue::Email => {
            if let Some(secret) = user.tf_totp_secret.as_deref() {
                send_code(security, user, &user.email, secret)?;
            }
        }
    }
    Ok(RescueOutcome::Sent)
}

fn recovery_options(config: &SecurityConfig) -> Value {
    let url = config.url(&config.two_factor.rescue_url);
    if config.two_factor.enabled_methods.iter().any(|m| m == EMAIL) {
        json!({ "email": url, "help": url })
    } else {
        json!({ "help": url })
    }
}

pub(super) async fn get_rescue(ctx: AuthContext) -> crate::Result<Response> {
    if pending_login::pending_user(&ctx).await?.is_none() {
        return pending_login::permission_denied(&ctx).await;
    }
    if !ctx.is_json() {
        let config = ctx.security().config();
        return Ok(crate::web::reply::redirect(
            &config.url(&config.two_factor.token_validation_url),
        ));
    }
    let mut response = ctx.json_base().await?;
    response.insert(
        "recovery_options".into(),
        recovery_options(ctx.security().config()),
    );
    Ok(crate::web::reply::json_ok(response))
}

pub(super) async fn post_rescue(ctx: AuthContext, mut input: FormInput) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let Some(user) = pending_login::pending_user(&ctx).await? else {
        return pending_login::permission_denied(&ctx).await;
    };
    let choice = input.text("help_setup").unwrap_or_default();
    let email_allowed = config.two_factor.enabled_methods.iter().any(|m| m == EMAIL);
    let how = match choice.as_str() {
        "help" => Rescue::Help,
        EMAIL if email_allowed => Rescue::Email,
        _ => {
            let errors = FieldErrors::single(
                "help_setup",
                security.msg("TWO_FACTOR_METHOD_NOT_AVAILABLE", &[]),
            );
            return verify_page(&ctx, user.tf_primary_method.clone(), true, &errors).await;
        }
    };
    match rescue(&security, &user, how).await? {
        RescueOutcome::Sent => {}
        RescueOutcome::Limited { retry_after } => {
            return Ok(crate::web::rate_limit::too_many_codes(&ctx, retry_after));
        }
    }
    if how == Rescue::Email {
        pending_login::mark_rescued(&ctx).await?;
    }
    if ctx.is_json() {
        let mut response = ctx.json_base().await?;
        response.insert("recovery_options".into(), recovery_options(config));
        return Ok(crate::web::reply::json_ok(response));
    }
    ctx.flash("info", &security.msg("CODE_HAS_BEEN_SENT", &[]))
        .await?;
    Ok(crate::web::reply::redirect(
        &config.url(&config.two_factor.token_validation_url),
    ))
}
