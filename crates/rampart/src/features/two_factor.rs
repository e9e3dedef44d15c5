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

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::pending_login;
use crate::web::security::Security;

const SETUP_SECRET: &str = "tf_setup_secret";
const SETUP_METHOD: &str = "tf_setup_method";
const SETUP_SINCE: &str = "tf_setup_since";
const STATE_SALT: &str = "tf-state-salt";

/// How long a setup may wait for its first code (Flask-Security's `TWO_FACTOR_SETUP_WITHIN`).
const SETUP_WITHIN: Duration = Duration::from_secs(30 * 60);

/// The authenticator method's name.
pub(crate) const AUTHENTICATOR: &str = "authenticator";
/// The email method's name.
pub(crate) const EMAIL: &str = "email";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new()
        .route(
            &config.url(&config.two_factor_setup_url),
            get(get_setup).post(post_setup),
        )
        .route(
            &config.url(&config.two_factor_token_validation_url),
            get(get_validate).post(post_validate),
        )
        .route(
            &config.url(&config.two_factor_rescue_url),
            get(get_rescue).post(post_rescue),
        )
}

pub(crate) use crate::model::second_factor_required as required;

/// The time step of `code` for `method`, if it is a right code now: an authenticator's within
/// `SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY` either way, a mailed one within
/// `SECURITY_TWO_FACTOR_MAIL_VALIDITY` after it was sent.
fn code_step(security: &Security, method: &str, secret: &str, code: &str) -> Option<u64> {
    let config = security.config();
    let steps = |d: Duration| d.as_secs() / crate::totp::STEP;
    let (back, forward) = if method == EMAIL {
        (steps(config.two_factor_mail_validity), 0)
    } else {
        let n = steps(config.two_factor_authenticator_validity);
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
            expire_text => crate::messages::describe_duration(config.two_factor_mail_validity),
            app_name => config.app_name,
        },
    )
}

/// Starts a two-factor login for `user`, whose password was right: the pending user goes into
/// a fresh session, a code is mailed for the email method; nobody is signed in yet.
pub(crate) async fn begin_login(
    ctx: &AuthContext,
    user: &User,
    remember: bool,
    next: Option<String>,
) -> crate::Result<Response> {
    let security = ctx.security();
    let config = security.config();
    let method = user.tf_primary_method.clone().unwrap_or_default();
    pending_login::start(ctx, user, remember, next).await?;
    if method == EMAIL
        && let Some(secret) = user.tf_totp_secret.as_deref()
    {
        send_code(security, user, &user.email, secret)?;
    }
    if ctx.is_json() {
        let mut response = ctx.json_base().await?;
        response.insert("tf_method".into(), json!(method));
        response.insert("tf_primary_method".into(), json!(method));
        response.insert("tf_required".into(), json!(true));
        response.insert("tf_state".into(), json!("ready"));
        return Ok(crate::web::reply::json_ok(response));
    }
    Ok(crate::web::reply::redirect(
        &config.url(&config.two_factor_token_validation_url),
    ))
}

/// Tells `user` by mail that two-factor sign-in is now `method` (on) or off (`None`), so a change
/// made by someone else does not go unnoticed.
fn notify_change(security: &Security, user: &User, method: Option<&str>) -> crate::Result<()> {
    crate::web::notify::send(
        security,
        "two_factor_changed",
        &user.email,
        context! {
            user => crate::web::notify::user_context(user),
            method => method,
            app_name => security.config().app_name,
        },
    )
}

async fn forget_setup(ctx: &AuthContext) -> crate::Result<()> {
    for key in [SETUP_SECRET, SETUP_METHOD, SETUP_SINCE] {
        ctx.session.remove_value(key).await?;
    }
    Ok(())
}

fn available_methods(config: &SecurityConfig) -> Vec<&str> {
    [AUTHENTICATOR, EMAIL]
        .into_iter()
        .filter(|m| config.two_factor_enabled_methods.iter().any(|e| e == m))
        .collect()
}

async fn get_setup(ctx: AuthContext, user: Option<CurrentUser>) -> crate::Result<Response> {
    let Some(user) = user else {
        return pending_login::permission_denied(&ctx).await;
    };
    if let Some(stale) = crate::features::verify::require_fresh(&ctx).await? {
        return Ok(stale);
    }
    let config = ctx.security().config();
    let enabled = required(config, &user.user);
    let method = user.user.tf_primary_method.clone().filter(|_| enabled);
    if ctx.is_json() {
        let mut response = ctx.json_base().await?;
        response.insert(
            "tf_available_methods".into(),
            json!(available_methods(config)),
        );
        response.insert("tf_method".into(), json!(method));
        response.insert("tf_phone_number".into(), Value::Null);
        response.insert("tf_primary_method".into(), json!(method));
        response.insert("tf_required".into(), json!(enabled));
        return Ok(crate::web::reply::json_ok(response));
    }
    setup_page(&ctx, enabled, method, None, &FieldErrors::new()).await
}

async fn setup_page(
    ctx: &AuthContext,
    enabled: bool,
    method: Option<String>,
    setup: Option<Value>,
    errors: &FieldErrors,
) -> crate::Result<Response> {
    let config = ctx.security().config();
    crate::web::templates::form_errors(
        ctx,
        "security/two_factor_setup.html",
        Value::Null,
        errors,
        context! {
            enabled => enabled,
            method => method,
            available_methods => available_methods(config),
            setup => setup,
        },
    )
    .await
}

async fn post_setup(
    ctx: AuthContext,
    user: Option<CurrentUser>,
    mut input: FormInput,
) -> crate::Result<Response> {
    let Some(user) = user else {
        return pending_login::permission_denied(&ctx).await;
    };
    if let Some(stale) = crate::features::verify::require_fresh(&ctx).await? {
        return Ok(stale);
    }
    let security = ctx.security().clone();
    let config = security.config();
    let enabled = required(config, &user.user);
    let choice = input.text("setup").unwrap_or_default();
    if choice == "disable" {
        forget_setup(&ctx).await?;
        if enabled {
            security
                .datastore()
                .set_two_factor(user.user.id, None, None, security.now_naive())
                .await?;
            notify_change(&security, &user.user, None)?;
        }
        if ctx.is_json() {
            let mut response = ctx.json_base().await?;
            response.insert("user".into(), ctx.user_payload(&user, false)?);
            return Ok(crate::web::reply::json_ok(response));
        }
        ctx.flash("success", &security.msg("TWO_FACTOR_DISABLED", &[]))
            .await?;
        return Ok(crate::web::reply::redirect(&post_setup_view(config)));
    }
    if !available_methods(config).contains(&choice.as_str()) {
        let errors = FieldErrors::single(
            "setup",
            security.msg("TWO_FACTOR_METHOD_NOT_AVAILABLE", &[]),
        );
        let method = user.user.tf_primary_method.clone().filter(|_| enabled);
        return setup_page(&ctx, enabled, method, None, &errors).await;
    }
    let secret = crate::totp::new_secret();
    ctx.session.insert(SETUP_SECRET, &secret).await?;
    ctx.session.insert(SETUP_METHOD, &choice).await?;
    ctx.session.insert(SETUP_SINCE, security.unix_now()).await?;
    if choice == EMAIL {
        send_code(&security, &user.user, &user.user.email, &secret)?;
    }
    if ctx.is_json() {
        let state_token = security.signer().sign(
            STATE_SALT,
            &(user.user.fs_uniquifier.as_str(), choice.as_str()),
            security.clock().now(),
        )?;
        let mut response = ctx.json_base().await?;
        response.insert("tf_method".into(), json!(choice));
        response.insert("tf_primary_method".into(), json!(choice));
        response.insert("tf_state".into(), json!("validating_profile"));
        response.insert("tf_state_token".into(), json!(state_token));
        if choice == AUTHENTICATOR {
            let (issuer, uri) = authenticator(config, &user.user, &secret);
            response.insert("tf_authr_b32key".into(), json!(secret));
            response.insert("tf_authr_issuer".into(), json!(issuer));
            response.insert("tf_authr_key".into(), json!(crate::totp::grouped(&secret)));
            response.insert("tf_authr_uri".into(), json!(uri));
            response.insert("tf_authr_username".into(), json!(user.user.email));
        }
        return Ok(crate::web::reply::json_ok(response));
    }
    let method = user.user.tf_primary_method.clone().filter(|_| enabled);
    let setup = setup_context(&security, &user.user, &choice, &secret);
    setup_page(&ctx, enabled, method, Some(setup), &FieldErrors::new()).await
}

/// What the setup page shows while a new method waits for its first code: the QR code and the
/// key for an authenticator.
fn setup_context(security: &Security, user: &User, method: &str, secret: &str) -> Value {
    let qr = (method == AUTHENTICATOR)
        .then(|| crate::totp::qr_svg(&authenticator(security.config(), user, secret).1))
        .flatten();
    json!({
        "method": method,
        "qr": qr,
        "key": crate::totp::grouped(secret),
    })
}

/// The issuer authenticator apps show (`SECURITY_TOTP_ISSUER`, else the app's name) and the
/// `otpauth://` URI of `secret` for `user`.
fn authenticator(config: &SecurityConfig, user: &User, secret: &str) -> (String, String) {
    let issuer = config
        .totp_issuer
        .clone()
        .unwrap_or_else(|| config.app_name.clone());
    let uri = crate::totp::authenticator_uri(&issuer, &user.email, secret);
    (issuer, uri)
}

fn post_setup_view(config: &SecurityConfig) -> String {
    config
        .two_factor_post_setup_view
        .clone()
        .unwrap_or_else(|| config.url(&config.two_factor_setup_url))
}

async fn get_validate(ctx: AuthContext) -> crate::Result<Response> {
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(ctx.json_base().await?));
    }
    let setup_method = ctx.session.get::<String>(SETUP_METHOD).await?;
    if ctx.user().is_some() && setup_method.is_some() {
        return verify_page(&ctx, setup_method, false, &FieldErrors::new()).await;
    }
    match pending_login::pending_user(&ctx).await? {
        Some(user) => verify_page(&ctx, user.tf_primary_method, true, &FieldErrors::new()).await,
        None => pending_login::permission_denied(&ctx).await,
    }
}

async fn verify_page(
    ctx: &AuthContext,
    method: Option<String>,
    rescue: bool,
    errors: &FieldErrors,
) -> crate::Result<Response> {
    let config = ctx.security().config();
    let recovery = rescue && config.multi_factor_recovery_codes;
    let rescue = rescue && config.two_factor_enabled_methods.iter().any(|m| m == EMAIL);
    crate::web::templates::form_errors(
        ctx,
        "security/two_factor_verify_code.html",
        Value::Null,
        errors,
        context! { method => method, rescue => rescue, recovery => recovery },
    )
    .await
}

/// Why a code was not accepted.
enum Refusal {
    /// Too many attempts: the 429 answer.
    Limited(Response),
    /// Wrong, expired or already used: the form's errors.
    Invalid(FieldErrors),
}

/// Checks `code` for `user` (throttled, single use).
async fn accept_code(
    ctx: &AuthContext,
    user: &User,
    method: &str,
    secret: &str,
    code: &str,
) -> crate::Result<Result<(), Refusal>> {
    let security = ctx.security();
    // Counted before the check, atomically: a concurrent burst gets at most the limit checked.
    if let Some(limited) = crate::web::rate_limit::count_code(ctx, user.id).await? {
        return Ok(Err(Refusal::Limited(limited)));
    }
    let accepted = match code_step(security, method, secret, code) {
        Some(step) => security.datastore().claim_otp_step(user.id, step).await?,
        None => false,
    };
    if accepted {
        crate::web::rate_limit::clear_codes(security, user.id).await?;
        return Ok(Ok(()));
    }
    Ok(Err(Refusal::Invalid(FieldErrors::single(
        "code",
        security.msg("TWO_FACTOR_INVALID_TOKEN", &[]),
    ))))
}

async fn post_validate(ctx: AuthContext, mut input: FormInput) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let code = input.text("code").unwrap_or_default();

    // Finishing a setup (signed in).
    if let Some(user) = ctx.user().cloned()
        && let Some(secret) = ctx.session.get::<String>(SETUP_SECRET).await?
    {
        let method: String = ctx.session.get(SETUP_METHOD).await?.unwrap_or_default();
        let since: u64 = ctx.session.get(SETUP_SINCE).await?.unwrap_or(0);
        if security.unix_now().saturating_sub(since) > SETUP_WITHIN.as_secs() {
            forget_setup(&ctx).await?;
            let within = crate::messages::describe_duration(SETUP_WITHIN);
            let message = security.msg("TWO_FACTOR_SETUP_EXPIRED", &[("within", &within)]);
            if ctx.is_json() {
                return Ok(crate::web::reply::json_errors(
                    StatusCode::BAD_REQUEST,
                    &[],
                    Some(&FieldErrors::single("", message)),
                ));
            }
            ctx.flash("error", &message).await?;
            return Ok(crate::web::reply::redirect(
                &config.url(&config.two_factor_setup_url),
            ));
        }
        match accept_code(&ctx, &user.user, &method, &secret, &code).await? {
            Ok(()) => {}
            Err(Refusal::Limited(response)) => return Ok(response),

            Err(Refusal::Invalid(errors)) => {
                let enabled = required(config, &user.user);
                let current = user.user.tf_primary_method.clone().filter(|_| enabled);
                let setup = setup_context(&security, &user.user, &method, &secret);
                return setup_page(&ctx, enabled, current, Some(setup), &errors).await;
            }
        }
        security
            .datastore()
            .set_two_factor(
                user.user.id,
                Some(&method),
                Some(&secret),
                security.now_naive(),
            )
            .await?;
        forget_setup(&ctx).await?;
        notify_change(&security, &user.user, Some(&method))?;
        if ctx.is_json() {
            let mut response = ctx.json_base().await?;
            response.insert("user".into(), ctx.user_payload(&user, false)?);
            return Ok(crate::web::reply::json_ok(response));
        }
        ctx.flash(
            "success",
            &security.msg("TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL", &[]),
        )
        .await?;
        return Ok(crate::web::reply::redirect(&post_setup_view(config)));
    }

    // Completing a login.
    let Some(user) = pending_login::pending_user(&ctx).await? else {
        return pending_login::permission_denied(&ctx).await;
    };
    let method = user.tf_primary_method.clone().unwrap_or_default();
    let secret = user.tf_totp_secret.clone().unwrap_or_default();
    // After a rescue the code came by mail: it lives as long as mailed codes do.
    let rescued = pending_login::rescued(&ctx).await?;
    let window = if rescued { EMAIL } else { method.as_str() };
    match accept_code(&ctx, &user, window, &secret, &code).await? {
        Ok(()) => {}
        Err(Refusal::Limited(response)) => return Ok(response),

        Err(Refusal::Invalid(errors)) => {
            return verify_page(&ctx, Some(method), true, &errors).await;
        }
    }
    pending_login::complete_login(&ctx, &user).await
}

fn recovery_options(config: &SecurityConfig) -> Value {
    let url = config.url(&config.two_factor_rescue_url);
    if config.two_factor_enabled_methods.iter().any(|m| m == EMAIL) {
        json!({ "email": url, "help": url })
    } else {
        json!({ "help": url })
    }
}

async fn get_rescue(ctx: AuthContext) -> crate::Result<Response> {
    if pending_login::pending_user(&ctx).await?.is_none() {
        return pending_login::permission_denied(&ctx).await;
    }
    if !ctx.is_json() {
        let config = ctx.security().config();
        return Ok(crate::web::reply::redirect(
            &config.url(&config.two_factor_token_validation_url),
        ));
    }
    let mut response = ctx.json_base().await?;
    response.insert(
        "recovery_options".into(),
        recovery_options(ctx.security().config()),
    );
    Ok(crate::web::reply::json_ok(response))
}

async fn post_rescue(ctx: AuthContext, mut input: FormInput) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let Some(user) = pending_login::pending_user(&ctx).await? else {
        return pending_login::permission_denied(&ctx).await;
    };
    let choice = input.text("help_setup").unwrap_or_default();
    let email_allowed = config.two_factor_enabled_methods.iter().any(|m| m == EMAIL);
    let valid = choice == "help" || (choice == EMAIL && email_allowed);
    if !valid {
        let errors = FieldErrors::single(
            "help_setup",
            security.msg("TWO_FACTOR_METHOD_NOT_AVAILABLE", &[]),
        );

        return verify_page(&ctx, user.tf_primary_method.clone(), true, &errors).await;
    }
    // Every mailed code counts as an attempt, so rescue cannot flood the user's mailbox.
    if let Some(limited) = crate::web::rate_limit::count_code(&ctx, user.id).await? {
        return Ok(limited);
    }
    if choice == "help" {
        // Lost the mail too: a person at the site has to help.
        crate::web::notify::send(
            &security,
            "two_factor_rescue",
            &config.two_factor_rescue_mail,
            context! { user => crate::web::notify::user_context(&user), app_name => config.app_name },
        )?;
    } else {
        if let Some(secret) = user.tf_totp_secret.as_deref() {
            send_code(&security, &user, &user.email, secret)?;
        }
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
        &config.url(&config.two_factor_token_validation_url),
    ))
}
