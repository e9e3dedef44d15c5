//! Two-factor sign-in (`SECURITY_TWO_FACTOR`), Flask-Security's `tf-setup`, `tf-validate` and
//! `tf-rescue` views, with an authenticator app (TOTP) or codes by email.
//!
//! Setup (signed in): `POST /tf-setup {"setup": "authenticator" | "email"}` makes a new secret and
//! keeps it in the session (not on the user yet) with the QR code / a mailed code; the first
//! right code at `POST /tf-validate` turns it on. `{"setup": "disable"}` turns it off.
//!
//! Login: a right password for a user with a second factor does not sign in; the session holds
//! the pending user (`tf_required: true`), and `POST /tf-validate {"code"}` completes the login
//! (new session id, CSRF rotated, remember-me as asked). `POST /tf-rescue {"help_setup":
//! "email"}` mails a code to a user without their app.
//!
//! Codes are single-use: each user's last used time step is stored and only later steps are
//! accepted (Flask-Security has no replay protection). Wrong codes count against
//! `SECURITY_LOGIN_IDENTITY_RATE_LIMIT` for that user; once used up, codes are refused with 429.
//! HTTP Basic cannot carry a second factor, so users with one cannot use it.
//!
//! Templates: `security/two_factor_setup.html`, `security/two_factor_verify_code.html`. Mail:
//! `two_factor_instructions`.
//!
//! Files: this one holds the router and what the steps share (the code check, mailing a code,
//! the code page); `two_factor/setup.rs` turns a method on or off (`/tf-setup`, and the first
//! code at `/tf-validate`), `two_factor/signin.rs` is the login's second step
//! (`begin_login_reply`, the hand-off from login, and `/tf-validate`), `two_factor/rescue.rs` is `/tf-rescue`.
//!
//! Without axum, for HTML, JSON, the CLI and tests alike: [`begin`] (the second step of a
//! sign-in, mailing a code for the email method), [`check_code`] / [`check_code_for`] (a
//! throttled, single-use code check), [`start_setup`], [`confirm_setup`] and [`disable`], and
//! [`rescue`]. The handlers keep the pending state in the session and answer with a `Reply` (or a
//! `Rejection`: rate limited, re-authentication needed, nothing pending).

mod rescue;
mod setup;
mod signin;

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use minijinja::context;

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::forms::FieldErrors;
use crate::web::negotiate::Form;
use crate::web::rejection::Limited;
use crate::web::security::Security;

pub use rescue::{Rescue, RescueOutcome, rescue};
pub use setup::{PendingSetup, SetupVerdict, confirm_setup, disable, start_setup};
pub(crate) use signin::begin_login_reply;
pub use signin::{SecondFactorPending, begin};

/// The authenticator method's name.
pub const AUTHENTICATOR: &str = "authenticator";
/// The email method's name.
pub const EMAIL: &str = "email";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new()
        .route(
            &config.url(&config.two_factor.setup_url),
            get(setup::get_setup).post(setup::post_setup),
        )
        .route(
            &config.url(&config.two_factor.token_validation_url),
            get(signin::get_validate).post(signin::post_validate),
        )
        .route(
            &config.url(&config.two_factor.rescue_url),
            get(rescue::get_rescue).post(rescue::post_rescue),
        )
}

pub(crate) use crate::model::second_factor_required as required;

/// What a check of a one-time code came to ([`check_code`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum CodeVerdict {
    /// Right, and now used: the same code (time step) is not accepted again.
    Accepted,
    /// Wrong, expired or already used.
    Invalid,
    /// Too many attempts for this user: no code was checked; try again after `retry_after`.
    Limited(Limited),
}

/// Checks `code` against `user`'s own second factor (their method and secret): the second step
/// of a sign-in. See [`check_code_for`].
///
/// # Errors
///
/// The datastore's errors.
pub async fn check_code(
    security: &Security,
    user: &User,
    code: &str,
) -> crate::Result<CodeVerdict> {
    let method = user.tf_primary_method.as_deref().unwrap_or_default();
    let secret = user.tf_totp_secret.as_deref().unwrap_or_default();
    check_code_for(security, user, method, secret, code).await
}

/// Checks `code` for `user` against `secret`, with `method`'s window (an authenticator's codes
/// within `SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY` either way, a mailed one within
/// `SECURITY_TWO_FACTOR_MAIL_VALIDITY` after it was sent). The attempt counts against the user's
/// limit *before* the check, atomically, so a concurrent burst gets at most the limit checked; a
/// right code is used up and clears the count.
///
/// # Errors
///
/// The datastore's errors.
pub async fn check_code_for(
    security: &Security,
    user: &User,
    method: &str,
    secret: &str,
    code: &str,
) -> crate::Result<CodeVerdict> {
    if let Err(limited) = crate::web::rate_limit::count_code(security, user.id).await? {
        return Ok(CodeVerdict::Limited(limited));
    }
    let accepted = match code_step(security, method, secret, code) {
        Some(step) => security.datastore().claim_otp_step(user.id, step).await?,
        None => false,
    };
    if !accepted {
        return Ok(CodeVerdict::Invalid);
    }
    crate::web::rate_limit::clear_codes(security, user.id).await?;
    Ok(CodeVerdict::Accepted)
}

/// The time step of `code` for `method`, if it is a right code now (see [`check_code_for`]).
fn code_step(security: &Security, method: &str, secret: &str, code: &str) -> Option<u64> {
    let config = security.config();
    let steps = |d: Duration| d.as_secs() / crate::totp::STEP;
    let (back, forward) = if method == EMAIL {
        (steps(config.two_factor.mail_validity), 0)
    } else {
        let n = steps(config.two_factor.authenticator_validity);
        (n, n)
    };
    crate::totp::matching_step(secret, code, security.unix_now(), back, forward)
}

/// Mails the current code of `secret` to `to`.
fn send_code(security: &Security, user: &User, to: &str, secret: &str) -> crate::Result<()> {
    let code = crate::totp::code_at(secret, security.unix_now())
        .ok_or_else(|| crate::Error::Internal("malformed two-factor secret".into()))?;
    let config = security.config();
    crate::web::notify::send(
        security,
        "two_factor_instructions",
        to,
        context! {
            user => crate::web::notify::user_context(user),
            code => code,
            expire_text => crate::messages::describe_duration(config.two_factor.mail_validity),
            app_name => config.app_name,
        },
    )
}

/// The form's error for a code [`CodeVerdict::Invalid`].
fn invalid_code(security: &Security) -> FieldErrors {
    FieldErrors::single("code", security.msg("TWO_FACTOR_INVALID_TOKEN", &[]))
}

/// The code page (`security/two_factor_verify_code.html`): for a setup's first code, or for a
/// sign-in's second step (`rescue`: with the ways out when the code does not come).
fn verify_form(config: &SecurityConfig, method: Option<String>, rescue: bool) -> Form {
    let recovery = rescue && config.recovery_codes.enabled;
    // A security key registered as a second factor may stand in for the code (`/wan-signin`).
    let webauthn = rescue && config.webauthn.enabled && config.webauthn.allow_as_multi_factor;
    let rescue = rescue && config.two_factor.enabled_methods.iter().any(|m| m == EMAIL);
    Form::new("security/two_factor_verify_code.html").page(context! {
        method => method, rescue => rescue, recovery => recovery, webauthn => webauthn
    })
}
