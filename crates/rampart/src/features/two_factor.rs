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
//! Codes are single-use. An authenticator's: each user's last used time step is stored and only
//! later steps are accepted (Flask-Security has no replay protection); a right code of a used
//! step is told apart ("This code was just used. Wait for the next one.",
//! `TWO_FACTOR_CODE_ALREADY_USED`). A mailed code is a fresh random one per mail, stored as a
//! keyed digest with its expiry (`web/mailed_code.rs`), so it is always usable, even in a time
//! step just used. Wrong codes count against
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

use axum::Router;
use axum::routing::{get, post};
use minijinja::context;

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::forms::FieldErrors;
use crate::web::negotiate::Form;
use crate::web::rejection::Limited;
use crate::web::security::Security;

pub use rescue::{Rescue, RescueOutcome, rescue};
pub use setup::{PendingSetup, SetupVerdict, confirm_setup, disable, start_setup, start_setup_to};
pub(crate) use signin::begin_login_reply;
pub use signin::{SecondFactorPending, begin};

/// The authenticator method's name.
pub const AUTHENTICATOR: &str = "authenticator";
/// The email method's name.
pub const EMAIL: &str = "email";
/// The text-message method's name (codes texted to `tf_phone_number`).
pub const SMS: &str = "sms";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new()
        .route(
            &config.url(&config.two_factor.setup_url),
            get(setup::get_setup).post(setup::post_setup),
        )
        .route(
            &format!("{}/{{token}}", config.url(&config.two_factor.setup_url)),
            post(setup::post_setup_validate),
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
    /// Wrong or expired.
    Invalid,
    /// A right authenticator code of a time step this user has used already (replay
    /// protection): the next step's code will do.
    AlreadyUsed,
    /// The user's stored authenticator secret cannot be read (malformed, or encrypted under a
    /// key id `SECURITY_TOTP_SECRETS` lacks); logged. A recovery code or a mailed code can still
    /// sign in.
    Unreadable,
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
    if method == EMAIL || method == SMS {
        return check(security, user, Expected::Mailed(SIGN_IN_CODE), code).await;
    }
    let stored = user.tf_totp_secret.as_deref().unwrap_or_default();
    let Some(opened) = open_secret(security, user, stored) else {
        return Ok(CodeVerdict::Unreadable);
    };
    let verdict = check(
        security,
        user,
        Expected::Authenticator(&opened.base32),
        code,
    )
    .await?;
    if verdict == CodeVerdict::Accepted && opened.needs_rewrite {
        // Plain, or under an older key id: stored again as SECURITY_TOTP_SECRETS writes now.
        let sealed = seal_secret(security, &opened.base32)?;
        security
            .datastore()
            .set_two_factor(user.id, Some(method), Some(&sealed), security.now_naive())
            .await?;
    }
    Ok(verdict)
}

/// `stored` (a `tf_totp_secret`) read with `SECURITY_TOTP_SECRETS`; `None`, logged, when it cannot
/// be.
fn open_secret(
    security: &Security,
    user: &User,
    stored: &str,
) -> Option<crate::totp::stored::OpenedSecret> {
    match crate::totp::stored::open(stored, &security.config().two_factor.totp_secrets) {
        Ok(opened) => Some(opened),
        Err(error) => {
            tracing::error!(user_id = user.id, %error, "the stored two-factor secret cannot be read");
            None
        }
    }
}

/// The stored form of the TOTP key `base32` (see [`crate::totp::stored::seal`]).
fn seal_secret(security: &Security, base32: &str) -> crate::Result<String> {
    crate::totp::stored::seal(base32, &security.config().two_factor.totp_secrets)
        .map_err(|e| crate::Error::Internal(format!("two-factor secret: {e}")))
}

/// Checks `code` for `user`: for [`EMAIL`] the code last mailed for a sign-in (or a rescue),
/// live for `SECURITY_TWO_FACTOR_MAIL_VALIDITY` after it was sent; otherwise a code of the
/// authenticator `secret` (as stored: base32 or Flask-Security's passlib JSON), within `SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY` either way. The
/// attempt counts against the user's limit *before* the check, atomically, so a concurrent burst
/// gets at most the limit checked; a right code is used up and clears the count.
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
    if method == EMAIL || method == SMS {
        return check(security, user, Expected::Mailed(SIGN_IN_CODE), code).await;
    }
    let Some(opened) = open_secret(security, user, secret) else {
        return Ok(CodeVerdict::Unreadable);
    };
    check(
        security,
        user,
        Expected::Authenticator(&opened.base32),
        code,
    )
    .await
}

/// The purpose of a code mailed for a sign-in's second step (and a rescue).
const SIGN_IN_CODE: &str = "tf-signin";
/// The purpose of the code mailed to confirm setting up the email method.
const SETUP_CODE: &str = "tf-setup";

/// The code a check expects.
#[derive(Clone, Copy)]
enum Expected<'a> {
    /// A code of this authenticator secret (base32), each time step used once per user.
    Authenticator(&'a str),
    /// The live code mailed for this purpose (see `web/mailed_code.rs`).
    Mailed(&'static str),
}

/// The throttled, single-use check behind [`check_code_for`].
async fn check(
    security: &Security,
    user: &User,
    expected: Expected<'_>,
    code: &str,
) -> crate::Result<CodeVerdict> {
    if let Err(limited) = crate::web::rate_limit::count_code(security, user.id).await? {
        return Ok(CodeVerdict::Limited(limited));
    }
    let verdict = match expected {
        Expected::Authenticator(secret) => match authenticator_step(security, secret, code) {
            None => CodeVerdict::Invalid,
            Some(step) if security.datastore().claim_otp_step(user.id, step).await? => {
                CodeVerdict::Accepted
            }
            Some(_) => CodeVerdict::AlreadyUsed,
        },
        Expected::Mailed(purpose) => {
            if crate::web::mailed_code::redeem(security, user, purpose, code).await? {
                CodeVerdict::Accepted
            } else {
                CodeVerdict::Invalid
            }
        }
    };
    if verdict == CodeVerdict::Accepted {
        crate::web::rate_limit::clear_codes(security, user.id).await?;
    }
    Ok(verdict)
}

/// The time step of `code` for the authenticator `secret`, if it is a right code now (see
/// [`check_code_for`]).
fn authenticator_step(security: &Security, secret: &str, code: &str) -> Option<u64> {
    let config = security.config();
    let n = config.two_factor.authenticator_validity.as_secs() / crate::totp::STEP;
    crate::totp::matching_step(secret, code, security.unix_now(), n, n)
}

/// Mails `user` (at `to`) a fresh code for `purpose`, live for
/// `SECURITY_TWO_FACTOR_MAIL_VALIDITY`.
async fn send_code(
    security: &Security,
    user: &User,
    to: &str,
    purpose: &'static str,
) -> crate::Result<()> {
    let config = security.config();
    let code =
        crate::web::mailed_code::issue(security, user, purpose, config.two_factor.mail_validity)
            .await?;
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

/// Texts `user` (at `phone`) a fresh code for `purpose`, live for
/// `SECURITY_TWO_FACTOR_MAIL_VALIDITY`; `false` (logged) when the provider failed.
async fn send_sms_code(
    security: &Security,
    user: &User,
    phone: &str,
    purpose: &'static str,
) -> crate::Result<bool> {
    let config = security.config();
    let code =
        crate::web::mailed_code::issue(security, user, purpose, config.two_factor.mail_validity)
            .await?;
    let text = security.msg("USE_CODE", &[("code", &code)]);
    let sms = crate::sms::Sms::new(config.sms.service_config.phone_number.clone(), phone, text);
    match security.sms_sender().send(&sms).await {
        Ok(()) => Ok(true),
        Err(error) => {
            tracing::warn!(user_id = user.id, %error, "two-factor text message not sent");
            Ok(false)
        }
    }
}

/// The form's error for a code [`CodeVerdict::Invalid`].
fn invalid_code(security: &Security) -> FieldErrors {
    FieldErrors::single("code", security.msg("TWO_FACTOR_INVALID_TOKEN", &[]))
}

/// The form's error for [`CodeVerdict::Unreadable`].
fn unreadable_secret(security: &Security) -> FieldErrors {
    FieldErrors::single("code", security.msg("TWO_FACTOR_SECRET_UNREADABLE", &[]))
}

/// The form's error for a code [`CodeVerdict::AlreadyUsed`].
fn code_already_used(security: &Security) -> FieldErrors {
    FieldErrors::single("code", security.msg("TWO_FACTOR_CODE_ALREADY_USED", &[]))
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

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        setup::get_setup,
        setup::post_setup,
        setup::post_setup_validate,
        signin::get_validate,
        signin::post_validate,
        rescue::get_rescue,
        rescue::post_rescue
    ))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[
            ("/tf-setup", config.url(&config.two_factor.setup_url)),
            (
                "/tf-setup/{token}",
                format!("{}/{{token}}", config.url(&config.two_factor.setup_url)),
            ),
            (
                "/tf-validate",
                config.url(&config.two_factor.token_validation_url),
            ),
            ("/tf-rescue", config.url(&config.two_factor.rescue_url)),
        ],
    )
}
