//! Email confirmation: the link from the `welcome` mail (`GET /confirm/<token>`) and resending it
//! (`GET|POST /confirm`), Flask-Security's `confirm_email` and `send_confirmation` views.
//!
//! The token is signed and expires after `SECURITY_CONFIRM_EMAIL_WITHIN`; it carries the user's
//! uniquifier and a keyed digest of the email, and is refused once the address is confirmed, so
//! each link works once. An expired link mails a fresh one.
//!
//! Without axum (CLI, tests): [`confirm_email`] (a link's token) and [`resend_confirmation`].
//!
//! Templates: `security/send_confirmation.html`. Mails: `confirmation_instructions`.

use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::email_form::EmailForm;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Html, Reply};
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

/// Checks a confirmation token and confirms the user's email; an expired one mails a fresh link
/// (`link` turns a path into an absolute URL).
///
/// # Errors
///
/// The datastore's, the signer's or the mailer's error.
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
    if user.confirmed_at.is_some() || !signer.matches_hash_data(&user.email, &email_digest).await {
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

/// Resends confirmation instructions for `email` (canonical, see
/// [`normalize_email`](crate::identity::normalize_email)); `link` turns a path into an absolute
/// URL. `Ok(Err(_))` holds the detailed refusal (unknown user, already confirmed), which the
/// HTTP answer hides when generic responses are on.
///
/// # Errors
///
/// The datastore's, the signer's or the mailer's error.
pub async fn resend_confirmation(
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

/// The link answers alike in every format: a flash and a redirect.
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

const FORM: EmailForm = EmailForm::new("security/send_confirmation.html");

/// The form to send the confirmation mail again.
#[utoipa::path(
    get,
    path = "/confirm",
    tag = "confirm",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer))
)]
async fn get_send_confirmation() -> Reply {
    FORM.empty()
}

/// Sends the confirmation mail again.
#[utoipa::path(
    post,
    path = "/confirm",
    tag = "confirm",
    request_body = crate::web::openapi::EmailBody,
    responses((status = 200, description = "Sent (or, with generic responses, the same answer for an unknown address).", body = crate::web::openapi::CsrfAnswer))
)]
async fn post_send_confirmation(
    ctx: AuthContext,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let email = match FORM.read(&ctx, &mut input).await? {
        Ok(email) => email,
        Err(refused) => return Ok(refused),
    };
    let sent = resend_confirmation(&security, &email, &|path| ctx.external_url(path)).await?;
    let config = security.config();
    let message = if config.return_generic_responses {
        security.msg("CONFIRMATION_LINK_SENT_GENERIC", &[])
    } else {
        security.msg("CONFIRMATION_REQUEST", &[("email", &email)])
    };
    let html = Html::flash_redirect("info", message, config.url(&config.login.url));
    Ok(FORM.answer(&ctx, &email, sent, html))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_send_confirmation, post_send_confirmation))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/confirm", config.url(&config.confirm.url))],
    )
}
