//! Password recovery: ask for a link (`GET|POST /reset`), open it (`GET /reset/<token>`) and set
//! a new password (`POST /reset/<token>`), Flask-Security's `forgot_password` and
//! `reset_password` views.
//!
//! The token is signed, expires after `SECURITY_RESET_PASSWORD_WITHIN` (1 day) and carries a
//! keyed digest of the current password hash, so it dies as soon as the password changes: each
//! link works once, and older links die with a newer reset. A reset rotates `fs_uniquifier`
//! (every session and auth token of the user dies) and does not sign the user in.
//!
//! Templates: `security/forgot_password.html`, `security/reset_password.html`. Mails:
//! `reset_instructions`, `reset_notice`.

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde_json::{Map, Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

/// Setting the new password of a reset lives in the web layer, shared with change password.
pub(crate) use crate::web::auth::set_new_password;

const SALT: &str = "reset-salt";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    let base = config.url(&config.recover.url);
    Router::new()
        .route(&base, get(get_forgot).post(post_forgot))
        .route(
            &format!("{base}/{{token}}"),
            get(get_reset).post(post_reset),
        )
}

fn password_digest(security: &Security, user: &User) -> String {
    security
        .signer()
        .hash_data(user.password.as_deref().unwrap_or(""))
}

/// The reset instructions for the account with `uniquifier`, `password_digest` and `user` (its
/// template context), mailed to `to`: the link is signed and the mail rendered, not sent.
fn reset_mail(
    security: &Security,
    (uniquifier, digest): (String, String),
    user: minijinja::Value,
    to: &str,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<crate::mail::Mail> {
    let config = security.config();
    let token = security
        .signer()
        .sign(SALT, &(uniquifier, digest), security.clock().now())?;
    let reset_link = link(&format!("{}/{token}", config.url(&config.recover.url)));
    crate::web::notify::render(
        security,
        "reset_instructions",
        to,
        context! {
            user => user,
            reset_link => reset_link,
            expire_text => crate::messages::describe_duration(config.recover.within),
            app_name => config.app_name,
        },
    )
}

/// Mails reset instructions with a fresh link to `user`.
pub(crate) fn send_reset_instructions(
    security: &Security,
    user: &User,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<()> {
    let payload = (user.fs_uniquifier.clone(), password_digest(security, user));
    let user_context = crate::web::notify::user_context(user);
    let mail = reset_mail(security, payload, user_context, &user.email, link)?;
    crate::web::notify::deliver(security, mail);
    Ok(())
}

/// Starts a reset for `email`. `Err` holds the detailed error (unknown user), which callers hide
/// when generic responses are on.
///
/// Both outcomes do the same work, so the time taken does not tell them apart: for an unknown
/// (or inactive) address a link is signed and the mail rendered just the same, and dropped
/// instead of handed to the mailer (which runs off the request path either way).
pub async fn forgot_password(
    security: &Security,
    email: &str,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<Result<(), FieldErrors>> {
    let user = security
        .datastore()
        .user_by_email(email)
        .await?
        .filter(|u| u.active);
    let (payload, user_context, to) = match &user {
        Some(user) => (
            (user.fs_uniquifier.clone(), password_digest(security, user)),
            crate::web::notify::user_context(user),
            user.email.as_str(),
        ),
        None => (
            (
                crate::model::new_uniquifier(),
                security.signer().hash_data(""),
            ),
            context! { email => email, username => Option::<&str>::None },
            email,
        ),
    };
    let mail = reset_mail(security, payload, user_context, to, link)?;
    if user.is_none() {
        drop(mail);
        return Ok(Err(FieldErrors::single(
            "email",
            security.msg("USER_DOES_NOT_EXIST", &[]),
        )));
    }
    crate::web::notify::deliver(security, mail);
    Ok(Ok(()))
}

/// What a reset token turned out to be.
#[derive(Debug)]
pub enum ResetToken {
    /// Valid: the user it is for.
    Valid(User),
    /// Genuine but too old.
    Expired(User),
    /// Forged, used or outdated.
    Invalid,
}

/// Checks a reset token.
pub async fn check_reset_token(security: &Security, token: &str) -> crate::Result<ResetToken> {
    let signer = security.signer();
    let now = security.clock().now();
    let within = security.config().recover.within;
    let Ok((payload, expired)) = signer.verify_link::<(String, String)>(SALT, token, within, now)
    else {
        return Ok(ResetToken::Invalid);
    };
    let (uniquifier, digest) = payload;
    let Some(user) = security.datastore().user_by_uniquifier(&uniquifier).await? else {
        return Ok(ResetToken::Invalid);
    };
    if !user.active || !signer.verify_hash_data(user.password.as_deref().unwrap_or(""), &digest) {
        return Ok(ResetToken::Invalid);
    }
    Ok(if expired {
        ResetToken::Expired(user)
    } else {
        ResetToken::Valid(user)
    })
}

async fn get_forgot(ctx: AuthContext) -> crate::Result<Response> {
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(ctx.json_base().await?));
    }
    crate::web::templates::form_page(
        &ctx,
        "security/forgot_password.html",
        Value::Null,
        &FieldErrors::new(),
        context! {},
    )
    .await
}

async fn post_forgot(ctx: AuthContext, mut input: FormInput) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let (email, mut errors) = crate::web::forms::read_email_field(&security, &mut input);
    if errors.is_empty() {
        crate::web::rate_limit::check_mail(&ctx, &email).await?;
    }
    if errors.is_empty()
        && let Err(detailed) =
            forgot_password(&security, &email, &|path| ctx.external_url(path)).await?
        && !security.config().return_generic_responses
    {
        errors = detailed;
    }
    if !errors.is_empty() {
        return Ok(crate::web::templates::form_errors(
            &ctx,
            "security/forgot_password.html",
            json!({"email": email}),
            &errors,
            context! {},
        )
        .await?);
    }
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(ctx.json_base().await?));
    }
    let message = if security.config().return_generic_responses {
        security.msg("GENERIC_RECOVERY", &[])
    } else {
        security.msg("PASSWORD_RESET_REQUEST", &[("email", &email)])
    };
    Ok(crate::web::templates::message_page(&ctx, "Check your email", &message, None).await?)
}

async fn invalid_token_redirect(
    ctx: &AuthContext,
    outcome: &ResetToken,
) -> crate::Result<Response> {
    let security = ctx.security();
    let config = security.config();
    let message = match outcome {
        ResetToken::Expired(user) => {
            send_reset_instructions(security, user, &|path| ctx.external_url(path))?;
            let within = crate::messages::describe_duration(config.recover.within);
            security.msg(
                "PASSWORD_RESET_EXPIRED",
                &[("within", &within), ("email", &user.email)],
            )
        }
        _ => security.msg("INVALID_RESET_PASSWORD_TOKEN", &[]),
    };
    ctx.flash("error", &message).await?;
    Ok(crate::web::reply::redirect(
        &config.url(&config.recover.url),
    ))
}

async fn get_reset(ctx: AuthContext, Path(token): Path<String>) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let outcome = check_reset_token(&security, &token).await?;
    if !matches!(outcome, ResetToken::Valid(_)) {
        return invalid_token_redirect(&ctx, &outcome).await;
    }
    let config = security.config();
    let action = format!("{}/{token}", config.url(&config.recover.url));
    crate::web::templates::form_page(
        &ctx,
        "security/reset_password.html",
        Value::Null,
        &FieldErrors::new(),
        context! { action => action },
    )
    .await
}

async fn post_reset(
    ctx: AuthContext,
    Path(token): Path<String>,
    mut input: FormInput,
) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let action = format!("{}/{token}", config.url(&config.recover.url));
    let password = input.text("password");
    let confirm = input.text("password_confirm");
    let mut errors = input.take_errors();
    crate::web::forms::new_password_errors(
        &security,
        &mut errors,
        password.as_deref(),
        confirm.as_deref(),
        "password",
        "password_confirm",
    );
    let outcome = check_reset_token(&security, &token).await?;
    let user = match (&outcome, errors.is_empty()) {
        (ResetToken::Valid(user), true) => user.clone(),
        (ResetToken::Valid(_), false) => {
            return crate::web::templates::form_errors(
                &ctx,
                "security/reset_password.html",
                Value::Null,
                &errors,
                context! { action => action },
            )
            .await;
        }
        _ => {
            if ctx.is_json() {
                let key = if matches!(outcome, ResetToken::Expired(_)) {
                    "PASSWORD_RESET_EXPIRED"
                } else {
                    "INVALID_RESET_PASSWORD_TOKEN"
                };
                let message = match &outcome {
                    ResetToken::Expired(user) => {
                        send_reset_instructions(&security, user, &|path| ctx.external_url(path))?;
                        let within = crate::messages::describe_duration(config.recover.within);
                        security.msg(key, &[("within", &within), ("email", &user.email)])
                    }
                    _ => security.msg(key, &[]),
                };
                let errors = FieldErrors::single("", message);
                return Ok(crate::web::reply::json_errors(
                    StatusCode::BAD_REQUEST,
                    &[],
                    Some(&errors),
                ));
            }
            return invalid_token_redirect(&ctx, &outcome).await;
        }
    };
    set_new_password(&security, &user, password.as_deref().unwrap_or_default()).await?;
    if config.recover.send_notice_email {
        crate::web::notify::send(
            &security,
            "reset_notice",
            &user.email,
            context! { user => crate::web::notify::user_context(&user), app_name => config.app_name },
        )?;
    }
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(Map::new()));
    }
    ctx.flash("success", &security.msg("PASSWORD_RESET_NO_LOGIN", &[]))
        .await?;
    let target = config
        .recover
        .post_view
        .clone()
        .unwrap_or_else(|| config.url(&config.login.url));
    Ok(crate::web::reply::redirect(&target))
}
