//! Email confirmation: the link from the `welcome` mail (`GET /confirm/<token>`) and resending it
//! (`GET|POST /confirm`), Flask-Security's `confirm_email` and `send_confirmation` views.
//!
//! The token is signed and expires after `SECURITY_CONFIRM_EMAIL_WITHIN`; it carries the user's
//! uniquifier and a keyed digest of the email, and is refused once the address is confirmed, so
//! each link works once. An expired link mails a fresh one.
//!
//! Templates: `security/send_confirmation.html`. Mails: `confirmation_instructions`.

use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

const SALT: &str = "confirm-salt";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    let base = config.url(&config.confirm.url);
    Router::new()
        .route(
            &base,
            get(get_send_confirmation).post(post_send_confirmation),
        )
        .route(&format!("{base}/{{token}}"), get(get_confirm))
}

/// The path of a fresh confirmation link for `user` (`/confirm/<token>`).
pub(crate) fn confirmation_path(security: &Security, user: &User) -> crate::Result<String> {
    let payload = (
        user.fs_uniquifier.clone(),
        security.signer().hash_data(&user.email),
    );
    let token = security
        .signer()
        .sign(SALT, &payload, security.clock().now())?;
    let config = security.config();
    Ok(format!("{}/{token}", config.url(&config.confirm.url)))
}

/// What a confirmation link turned out to be.
#[derive(Debug)]
pub enum ConfirmOutcome {
    /// The email is now confirmed.
    Confirmed(User),
    /// Genuine but too old: a new link was mailed to the user.
    Expired(User),
    /// Forged, used, or for an address that changed.
    Invalid,
}

/// Checks a confirmation token and confirms the user's email.
pub async fn confirm_email(
    security: &Security,
    token: &str,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<ConfirmOutcome> {
    let signer = security.signer();
    let now = security.clock().now();
    let within = security.config().confirm.within;
    let Ok((payload, expired)) = signer.verify_link::<(String, String)>(SALT, token, within, now)
    else {
        return Ok(ConfirmOutcome::Invalid);
    };
    let (uniquifier, email_digest) = payload;
    let Some(user) = security.datastore().user_by_uniquifier(&uniquifier).await? else {
        return Ok(ConfirmOutcome::Invalid);
    };
    if user.confirmed_at.is_some() || !signer.verify_hash_data(&user.email, &email_digest) {
        return Ok(ConfirmOutcome::Invalid);
    }
    if expired {
        send_instructions(security, &user, link)?;
        return Ok(ConfirmOutcome::Expired(user));
    }
    security
        .datastore()
        .confirm_user(user.id, security.now_naive())
        .await?;
    Ok(ConfirmOutcome::Confirmed(user))
}

/// Mails `confirmation_instructions` with a fresh link.
pub(crate) fn send_instructions(
    security: &Security,
    user: &User,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<()> {
    let confirmation_link = link(&confirmation_path(security, user)?);
    crate::web::notify::send(
        security,
        "confirmation_instructions",
        &user.email,
        context! {
            user => crate::web::notify::user_context(user),
            confirmation_link => confirmation_link,
            app_name => security.config().app_name,
        },
    )
}

/// Resends confirmation instructions for `email`. `Err` holds the detailed error (unknown user,
/// already confirmed), which callers hide when generic responses are on.
pub(crate) async fn resend_confirmation(
    security: &Security,
    email: &str,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<Result<(), FieldErrors>> {
    let Some(user) = security.datastore().user_by_email(email).await? else {
        return Ok(Err(FieldErrors::single(
            "email",
            security.msg("USER_DOES_NOT_EXIST", &[]),
        )));
    };
    if user.confirmed_at.is_some() {
        return Ok(Err(FieldErrors::single(
            "email",
            security.msg("ALREADY_CONFIRMED", &[]),
        )));
    }
    send_instructions(security, &user, link)?;
    Ok(Ok(()))
}

async fn get_confirm(ctx: AuthContext, Path(token): Path<String>) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let confirm_url = config.url(&config.confirm.url);
    match confirm_email(&security, &token, &|path| ctx.external_url(path)).await? {
        ConfirmOutcome::Confirmed(_) => {
            ctx.flash("success", &security.msg("EMAIL_CONFIRMED", &[]))
                .await?;
            let target = config
                .confirm
                .post_view
                .clone()
                .unwrap_or_else(|| config.url(&config.login.url));
            Ok(crate::web::reply::redirect(&target))
        }
        ConfirmOutcome::Expired(user) => {
            let within = crate::messages::describe_duration(config.confirm.within);
            let message = security.msg(
                "CONFIRMATION_EXPIRED",
                &[("within", &within), ("email", &user.email)],
            );
            ctx.flash("error", &message).await?;
            Ok(crate::web::reply::redirect(&confirm_url))
        }
        ConfirmOutcome::Invalid => {
            ctx.flash("error", &security.msg("INVALID_CONFIRMATION_TOKEN", &[]))
                .await?;
            Ok(crate::web::reply::redirect(&confirm_url))
        }
    }
}

async fn get_send_confirmation(ctx: AuthContext) -> crate::Result<Response> {
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(ctx.json_base().await?));
    }
    crate::web::templates::form_page(
        &ctx,
        "security/send_confirmation.html",
        Value::Null,
        &FieldErrors::new(),
        context! {},
    )
    .await
}

async fn post_send_confirmation(
    ctx: AuthContext,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let (email, mut errors) = crate::web::forms::read_email_field(&security, &mut input);
    if errors.is_empty() {
        crate::web::rate_limit::check_mail(&ctx, &email).await?;
    }
    if errors.is_empty()
        && let Err(detailed) =
            resend_confirmation(&security, &email, &|path| ctx.external_url(path)).await?
        && !security.config().return_generic_responses
    {
        errors = detailed;
    }
    if !errors.is_empty() {
        let values = json!({ "email": email });
        return Ok(crate::web::templates::form_errors(
            &ctx,
            "security/send_confirmation.html",
            values,
            &errors,
            context! {},
        )
        .await?);
    }
    if ctx.is_json() {
        return Ok(crate::web::reply::json_ok(ctx.json_base().await?));
    }
    let message = if security.config().return_generic_responses {
        security.msg("CONFIRMATION_LINK_SENT_GENERIC", &[])
    } else {
        security.msg("CONFIRMATION_REQUEST", &[("email", &email)])
    };
    ctx.flash("info", &message).await?;
    let config = security.config();
    Ok(crate::web::reply::redirect(&config.url(&config.login.url)))
}
