//! Unified sign-in (`SECURITY_UNIFIED_SIGNIN`), Flask-Security's `us-signin`, `us-setup`,
//! `us-verify` and `us-verify-link` views: one form that takes an identity (email, username or
//! phone, per `SECURITY_USER_IDENTITY_ATTRIBUTES`) and a passcode: the password, a code sent by
//! mail (or its magic link) or by text message, or an authenticator app's code
//! (`SECURITY_US_ENABLED_METHODS`).
//!
//! Sign-in: `POST /us-signin/send-code {"identity", "chosen_method"}` sends a fresh code (mail:
//! with a link to `/us-verify-link?id=<fs_uniquifier>&code=<code>`); `POST /us-signin
//! {"identity", "passcode"}` signs in. A user with two-factor still gives their second factor
//! when the method used is in `SECURITY_US_MFA_REQUIRED` (password and email by default: an
//! authenticator or a text message is a second factor already), through the two-factor
//! hand-off. Setup (signed in, fresh): `POST /us-setup {"chosen_method"}` answers a signed
//! `state` (`SECURITY_US_SETUP_SALT`, lives `SECURITY_US_SETUP_WITHIN`) and sends a code (or
//! shows the authenticator's QR code); `POST /us-setup/<state> {"passcode"}` turns the method on
//! (the secret stored in `us_totp_secrets` as Flask-Security stores it: a JSON map of method to
//! secret). `/us-verify` re-authenticates (freshness) with any active method.
//!
//! Codes are single-use: a sent code is a fresh random one stored as a keyed digest
//! (`web/mailed_code.rs`), an authenticator's time step is used once per user. Every passcode
//! attempt counts against the user's code limit first. With `SECURITY_RETURN_GENERIC_RESPONSES`
//! (Rampart's default) the answers do not tell whether an identity exists.
//!
//! Files: this one holds the router and what the views share (methods, identity lookup, the
//! passcode check, sending a code); `signin.rs` (`us-signin`, `send-code`, `us-verify-link`),
//! `setup.rs` (`us-setup`), `verify.rs` (`us-verify`).
//!
//! Templates: `security/us_signin.html`, `security/us_setup.html`, `security/us_verify.html`.
//! Mail: `us_instructions` (subject `SECURITY_US_EMAIL_SUBJECT`).

mod setup;
mod signin;
mod verify;

use std::collections::BTreeMap;

use axum::Router;
use axum::routing::{get, post};
use minijinja::context;

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::forms::FieldErrors;
use crate::web::rejection::Limited;
use crate::web::security::Security;

/// The password method.
pub const PASSWORD: &str = "password";
/// The mailed-code method.
pub const EMAIL: &str = "email";
/// The authenticator-app method.
pub const AUTHENTICATOR: &str = "authenticator";
/// The text-message method.
pub const SMS: &str = "sms";

/// The purpose of a code sent for a sign-in (or a re-authentication), per method.
fn signin_purpose(method: &str) -> &'static str {
    if method == SMS { "us-sms" } else { "us-email" }
}

/// The purpose of a code sent to confirm setting a method up.
fn setup_purpose(method: &str) -> &'static str {
    if method == SMS {
        "us-setup-sms"
    } else {
        "us-setup-email"
    }
}

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    let us = &config.unified_signin;
    let mut router = Router::new();
    if us.signin_replaces_login && config.login.url != us.signin_url {
        router = router.route(
            &config.url(&config.login.url),
            get(signin::get_signin).post(signin::post_signin),
        );
    }
    router
        .route(
            &config.url(&us.signin_url),
            get(signin::get_signin).post(signin::post_signin),
        )
        .route(
            &config.url(&us.signin_send_code_url),
            post(signin::post_send_code),
        )
        .route(
            &config.url(&us.verify_link_url),
            get(signin::get_verify_link),
        )
        .route(
            &config.url(&us.setup_url),
            get(setup::get_setup).post(setup::post_setup),
        )
        .route(
            &format!("{}/{{state}}", config.url(&us.setup_url)),
            post(setup::post_setup_validate),
        )
        .route(
            &config.url(&us.verify_url),
            get(verify::get_verify).post(verify::post_verify),
        )
        .route(
            &config.url(&us.verify_send_code_url),
            post(verify::post_send_code),
        )
}

/// `SECURITY_US_ENABLED_METHODS`.
fn available_methods(config: &SecurityConfig) -> Vec<String> {
    config.unified_signin.enabled_methods.clone()
}

fn is_enabled(config: &SecurityConfig, method: &str) -> bool {
    config
        .unified_signin
        .enabled_methods
        .iter()
        .any(|m| m == method)
}

/// The enabled methods that send a code (email, sms), sorted.
fn code_methods(config: &SecurityConfig) -> Vec<String> {
    let mut methods: Vec<String> = available_methods(config)
        .into_iter()
        .filter(|m| m != PASSWORD && m != AUTHENTICATOR)
        .collect();
    methods.sort();
    methods
}

/// The enabled methods that need a setup (all but the password), sorted.
fn setup_methods(config: &SecurityConfig) -> Vec<String> {
    let mut methods: Vec<String> = available_methods(config)
        .into_iter()
        .filter(|m| m != PASSWORD)
        .collect();
    methods.sort();
    methods
}

/// `user`'s `us_totp_secrets`: method → stored secret (empty when unset or unreadable).
fn secrets(user: &User) -> BTreeMap<String, String> {
    user.us_totp_secrets
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default()
}

/// The methods `user` has set up (and are enabled), the password when they have one; in
/// `SECURITY_US_ENABLED_METHODS` order.
fn active_methods(config: &SecurityConfig, user: &User) -> Vec<String> {
    let secrets = secrets(user);
    available_methods(config)
        .into_iter()
        .filter(|m| {
            if m == PASSWORD {
                user.password.is_some()
            } else {
                secrets.contains_key(m)
            }
        })
        .collect()
}

/// The active methods that send a code.
fn active_code_methods(config: &SecurityConfig, user: &User) -> Vec<String> {
    let codes = code_methods(config);
    active_methods(config, user)
        .into_iter()
        .filter(|m| codes.contains(m))
        .collect()
}

/// `SECURITY_USER_IDENTITY_ATTRIBUTES`, with `username` added when usernames are on (as
/// Flask-Security does at start-up).
fn identity_attributes(config: &SecurityConfig) -> Vec<String> {
    let mut attributes = config.unified_signin.identity_attributes.clone();
    if config.username.enabled && !attributes.iter().any(|a| a == "username") {
        attributes.push("username".into());
    }
    attributes
}

/// The user `identity` names (Flask-Security's `lookup_identity`): the identity attributes are
/// tried in order, and the first one the identity has the form of decides (an email address,
/// a username, a phone number in E.164 after normalisation), found or not.
///
/// # Errors
///
/// The datastore's errors.
pub(crate) async fn lookup_identity(
    security: &Security,
    identity: &str,
) -> crate::Result<Option<User>> {
    let identity = identity.trim();
    if identity.is_empty() {
        return Ok(None);
    }
    let config = security.config();
    let datastore = security.datastore();
    for attribute in identity_attributes(config) {
        match attribute.as_str() {
            "email" if crate::identity::normalize_email(identity).is_ok() => {
                return Ok(datastore.user_by_email(identity).await?);
            }
            "username" => return Ok(datastore.user_by_username(identity).await?),
            "us_phone_number" => {
                let region = &config.sms.phone_region_default;
                if let Some(phone) = crate::phone::canonical(identity, region) {
                    return Ok(datastore.user_by_us_phone(&phone).await?);
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

/// What a passcode came to ([`check_passcode`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum PasscodeVerdict {
    /// Right: the method it proved (`password`, `email`, `authenticator`, `sms`); a code is
    /// used up.
    Accepted(String),
    /// Wrong, expired or used.
    Invalid,
    /// Too many attempts for this user: nothing was checked.
    Limited(Limited),
}

/// Checks `passcode` for `user` against each enabled method they have, in
/// `SECURITY_US_ENABLED_METHODS` order: the password, the code last sent by mail or text
/// (live `SECURITY_US_TOKEN_VALIDITY`), an authenticator's code (within
/// `SECURITY_US_TOKEN_VALIDITY` either way, each time step once). The attempt counts against
/// the user's code limit first; a right passcode clears it.
///
/// # Errors
///
/// The datastore's or the hasher's errors.
pub async fn check_passcode(
    security: &Security,
    user: &User,
    passcode: &str,
) -> crate::Result<PasscodeVerdict> {
    if let Err(limited) = crate::web::rate_limit::count_code(security, user.id).await? {
        return Ok(PasscodeVerdict::Limited(limited));
    }
    let config = security.config();
    let secrets = secrets(user);
    let mut accepted = None;
    for method in &config.unified_signin.enabled_methods {
        let right = match method.as_str() {
            PASSWORD if user.password.is_some() => matches!(
                crate::web::auth::check_user_password(security, Some(user.clone()), passcode)
                    .await?,
                crate::web::auth::PasswordCheck::Valid(_)
            ),
            EMAIL | SMS if secrets.contains_key(method) => {
                crate::web::mailed_code::redeem(security, user, signin_purpose(method), passcode)
                    .await?
            }
            AUTHENTICATOR => match secrets.get(method) {
                Some(stored) => authenticator_accepts(security, user, stored, passcode).await?,
                None => false,
            },
            _ => false,
        };
        if right {
            accepted = Some(method.clone());
            break;
        }
    }
    match accepted {
        Some(method) => {
            crate::web::rate_limit::clear_codes(security, user.id).await?;
            Ok(PasscodeVerdict::Accepted(method))
        }
        None => Ok(PasscodeVerdict::Invalid),
    }
}

/// Whether `code` is a right, unused code of the authenticator secret `stored` (as stored:
/// base32 or Flask-Security's passlib JSON).
async fn authenticator_accepts(
    security: &Security,
    user: &User,
    stored: &str,
    code: &str,
) -> crate::Result<bool> {
    let opened = match crate::totp::stored::open(stored, &security.config().two_factor.totp_secrets)
    {
        Ok(opened) => opened,
        Err(error) => {
            tracing::error!(user_id = user.id, %error, "a unified sign-in secret cannot be read");
            return Ok(false);
        }
    };
    Ok(match authenticator_step(security, &opened.base32, code) {
        Some(step) => security.datastore().claim_otp_step(user.id, step).await?,
        None => false,
    })
}

/// The time step of `code` for the authenticator `secret`, if it is right now.
fn authenticator_step(security: &Security, secret: &str, code: &str) -> Option<u64> {
    let n = security.config().unified_signin.token_validity.as_secs() / crate::totp::STEP;
    crate::totp::matching_step(secret, code.trim(), security.unix_now(), n, n)
}

/// Why a code could not be sent.
#[derive(Debug)]
enum SendFailure {
    /// The text message provider failed (logged).
    Sms,
}

/// Sends `user` a fresh code for `method` (`email` or `sms`) for `purpose`, live
/// `SECURITY_US_TOKEN_VALIDITY`: by mail (with `link`, the magic link, when given) or by text
/// message to `phone`.
async fn send_code(
    security: &Security,
    user: &User,
    method: &str,
    purpose: &'static str,
    phone: Option<&str>,
    link_base: Option<String>,
) -> crate::Result<Result<(), SendFailure>> {
    let config = security.config();
    let validity = config.unified_signin.token_validity;
    let code = crate::web::mailed_code::issue(security, user, purpose, validity).await?;
    if method == SMS {
        let Some(phone) = phone else {
            return Ok(Err(SendFailure::Sms));
        };
        let text = security.msg("USE_CODE", &[("code", &code)]);
        let sms = crate::sms::Sms::new(config.sms.service_config.phone_number.clone(), phone, text);
        return Ok(match security.sms_sender().send(&sms).await {
            Ok(()) => Ok(()),
            Err(error) => {
                tracing::warn!(user_id = user.id, %error, "text message not sent");
                Err(SendFailure::Sms)
            }
        });
    }
    let link = link_base.map(|base| {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("id", &user.fs_uniquifier)
            .append_pair("code", &code)
            .finish();
        format!("{base}?{query}")
    });
    crate::web::notify::send(
        security,
        "us_instructions",
        &user.email,
        context! {
            user => crate::web::notify::user_context(user),
            subject => config.unified_signin.email_subject,
            code => code,
            login_token => code,
            login_link => link,
            within => crate::messages::describe_duration(validity),
            app_name => config.app_name,
        },
    )?;
    Ok(Ok(()))
}

/// The form error for a code that could not be sent (Flask-Security answers 500).
fn send_failed(security: &Security) -> FieldErrors {
    FieldErrors::single("chosen_method", security.msg("FAILED_TO_SEND_CODE", &[]))
}

/// The form error for a wrong passcode.
fn invalid_passcode(security: &Security) -> FieldErrors {
    FieldErrors::single("passcode", security.msg("INVALID_PASSWORD_CODE", &[]))
}

/// The operations of this feature, where the configuration mounts them (the sign-in also at
/// the login URL when it replaces the login).
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        signin::get_signin,
        signin::post_signin,
        signin::post_send_code,
        setup::get_setup,
        setup::post_setup,
        setup::post_setup_validate,
        verify::get_verify,
        verify::post_verify,
        verify::post_send_code
    ))]
    struct Api;
    let us = &config.unified_signin;
    let mut doc = crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[
            ("/us-signin", config.url(&us.signin_url)),
            ("/us-signin/send-code", config.url(&us.signin_send_code_url)),
            ("/us-setup", config.url(&us.setup_url)),
            (
                "/us-setup/{state}",
                format!("{}/{{state}}", config.url(&us.setup_url)),
            ),
            ("/us-verify", config.url(&us.verify_url)),
            ("/us-verify/send-code", config.url(&us.verify_send_code_url)),
        ],
    );
    if us.signin_replaces_login && config.login.url != us.signin_url {
        let signin = doc.paths.paths.get(&config.url(&us.signin_url)).cloned();
        if let Some(item) = signin {
            doc.paths.paths.insert(config.url(&config.login.url), item);
        }
    }
    doc
}
