//! Password recovery: ask for a link (`GET|POST /reset`), open it (`GET /reset/<token>`) and set
//! a new password (`POST /reset/<token>`), Flask-Security's `forgot_password` and
//! `reset_password` views.
//!
//! The token is signed, expires after `SECURITY_RESET_PASSWORD_WITHIN` (1 day) and carries a
//! keyed digest of the current password hash, so it dies as soon as the password changes: each
//! link works once, and older links die with a newer reset. A reset rotates `fs_uniquifier`
//! (every session and auth token of the user dies) and does not sign the user in.
//!
//! Without axum (CLI, tests): [`forgot_password`], [`check_reset_token`] and [`reset_password`].
//!
//! Templates: `security/forgot_password.html`, `security/reset_password.html`. Mails:
//! `reset_instructions`, `reset_notice`.

use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::email_form::EmailForm;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

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

/// Starts a reset for `email` (canonical): mails `reset_instructions` with a link (`link` turns
/// a path into an absolute URL). `Ok(Err(_))` holds the detailed refusal (unknown user), which
/// the HTTP answer hides when generic responses are on.
///
/// Both outcomes do the same work, so the time taken does not tell them apart: for an unknown
/// (or inactive) address a link is signed and the mail rendered just the same, and dropped
/// instead of handed to the mailer (which runs off the request path either way).
///
/// # Errors
///
/// The datastore's, the signer's or the mail templates' error.
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

/// Checks a reset token (it says nothing and mails nothing).
///
/// # Errors
///
/// The datastore's error.
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
    if !user.active
        || !signer
            .matches_hash_data(user.password.as_deref().unwrap_or(""), &digest)
            .await
    {
        return Ok(ResetToken::Invalid);
    }
    Ok(if expired {
        ResetToken::Expired(user)
    } else {
        ResetToken::Valid(user)
    })
}

/// What a reset came to ([`reset_password`]).
#[derive(Debug)]
#[must_use]
pub enum ResetOutcome {
    /// The password is set (the uniquifier rotated: every session and auth token of the user
    /// ended) and the `reset_notice` mailed; the user is not signed in. The user as they were.
    Reset(Box<User>),
    /// The link is good, but the password policy refuses the new password.
    Refused(FieldErrors),
    /// Genuine but too old (nothing changed; no new link is mailed).
    Expired(Box<User>),
    /// Forged, used or outdated.
    Invalid,
}

/// Resets a password with the token of a reset link: checks the token ([`check_reset_token`])
/// and `new_password` against the password policy, then sets it (rotating `fs_uniquifier`, so
/// every session and auth token of the user ends) and mails the `reset_notice`
/// (`SECURITY_SEND_PASSWORD_RESET_NOTICE_EMAIL`). The user is not signed in.
///
/// # Errors
///
/// The datastore's, the hasher's or the mailer's error.
pub async fn reset_password(
    security: &Security,
    token: &str,
    new_password: &str,
) -> crate::Result<ResetOutcome> {
    reset_password_from(security, token, new_password, None).await
}

/// [`reset_password`] from a request's `device`: `password_reset` is recorded in the same
/// transaction as the new password.
pub(crate) async fn reset_password_from(
    security: &Security,
    token: &str,
    new_password: &str,
    device: Option<crate::activity::Device>,
) -> crate::Result<ResetOutcome> {
    let user = match check_reset_token(security, token).await? {
        ResetToken::Valid(user) => user,
        ResetToken::Expired(user) => return Ok(ResetOutcome::Expired(Box::new(user))),
        ResetToken::Invalid => return Ok(ResetOutcome::Invalid),
    };
    let mut errors = FieldErrors::new();
    crate::web::forms::new_password_errors(
        security,
        &mut errors,
        Some(new_password),
        Some(new_password),
        "password",
        "password_confirm",
    );
    if let Err(errors) = errors.into_result() {
        return Ok(ResetOutcome::Refused(errors));
    }
    let activity = crate::activity::NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: crate::activity::ActivityEvent::PasswordReset,
        device,
    };
    match crate::web::auth::set_new_password_recorded(security, &user, new_password, &activity)
        .await
    {
        Ok(_) => {}
        // Another use of this link (or a change of password) won the race: the link is spent.
        Err(crate::Error::Datastore(crate::datastore::DatastoreError::Stale(_))) => {
            return Ok(ResetOutcome::Invalid);
        }
        Err(error) => return Err(error),
    }
    let config = security.config();
    if config.recover.send_notice_email {
        crate::web::notify::send(
            security,
            "reset_notice",
            &user.email,
            context! { user => crate::web::notify::user_context(&user), app_name => config.app_name },
        )?;
    }
    Ok(ResetOutcome::Reset(Box::new(user)))
}

const FORGOT: EmailForm = EmailForm::new("security/forgot_password.html");
const RESET_TEMPLATE: &str = "security/reset_password.html";

/// The forgotten-password form.
#[utoipa::path(
    get,
    path = "/reset",
    tag = "reset",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer))
)]
async fn get_forgot() -> Reply {
    FORGOT.empty()
}

/// Mails a password reset link.
#[utoipa::path(
    post,
    path = "/reset",
    tag = "reset",
    request_body = crate::web::openapi::EmailBody,
    responses((status = 200, description = "Sent (or, with generic responses, the same answer for an unknown address).", body = crate::web::openapi::CsrfAnswer))
)]
async fn post_forgot(ctx: AuthContext, mut input: FormInput) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let email = match FORGOT.read(&ctx, &mut input).await? {
        Ok(email) => email,
        Err(refused) => return Ok(refused),
    };
    let sent = forgot_password(&security, &email, &|path| ctx.external_url(path)).await?;
    let message = if security.config().return_generic_responses {
        security.msg("GENERIC_RECOVERY", &[])
    } else {
        security.msg("PASSWORD_RESET_REQUEST", &[("email", &email)])
    };
    let html = Html::Message {
        title: "Check your email".to_owned(),
        message,
        link: None,
    };
    Ok(FORGOT.answer(&ctx, &email, sent, html))
}

/// What refusing a reset link says: an expired one mails a fresh link and says so.
fn refused_token_message(ctx: &AuthContext, expired: Option<&User>) -> crate::Result<String> {
    let security = ctx.security();
    let config = security.config();
    Ok(match expired {
        Some(user) => {
            send_reset_instructions(security, user, &|path| ctx.external_url(path))?;
            let within = crate::messages::describe_duration(config.recover.within);
            security.msg(
                "PASSWORD_RESET_EXPIRED",
                &[("within", &within), ("email", &user.email)],
            )
        }
        None => security.msg("INVALID_RESET_PASSWORD_TOKEN", &[]),
    })
}

/// Opening the link answers alike in every format: the form page (a link is opened in a
/// browser), or a flash and a redirect to ask again when it is refused.
async fn get_reset(ctx: AuthContext, Path(token): Path<String>) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let expired = match check_reset_token(&security, &token).await? {
        ResetToken::Valid(_) => {
            return crate::web::templates::form_page(
                &ctx,
                RESET_TEMPLATE,
                Value::Null,
                &FieldErrors::new(),
                context! { action => reset_action(config, &token) },
            )
            .await;
        }
        ResetToken::Expired(user) => Some(user),
        ResetToken::Invalid => None,
    };
    let message = refused_token_message(&ctx, expired.as_ref())?;
    ctx.flash("error", &message).await?;
    Ok(crate::web::reply::redirect(
        &config.url(&config.recover.url),
    ))
}

fn reset_action(config: &SecurityConfig, token: &str) -> String {
    format!("{}/{token}", config.url(&config.recover.url))
}

/// Sets a new password with the token of the reset mail.
#[utoipa::path(
    post,
    path = "/reset/{token}",
    tag = "reset",
    request_body = ResetBody,
    params(("token" = String, Path, description = "The token from the link or the earlier answer.")),
    responses((status = 200, description = "The password is changed (the user is not signed in).", body = crate::web::openapi::EmptyAnswer))
)]
async fn post_reset(
    ctx: AuthContext,
    Path(token): Path<String>,
    mut input: FormInput,
) -> crate::Result<Reply> {
    let security = ctx.security().clone();
    let config = security.config();
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
    // A refused link is said whatever the form holds; the form's errors only for a good one.
    let outcome = if errors.is_empty() {
        let password = password.unwrap_or_default();
        reset_password_from(
            &security,
            &token,
            &password,
            Some(crate::web::activity::device(&ctx)),
        )
        .await?
    } else {
        match check_reset_token(&security, &token).await? {
            ResetToken::Valid(_) => ResetOutcome::Refused(errors),
            ResetToken::Expired(user) => ResetOutcome::Expired(Box::new(user)),
            ResetToken::Invalid => ResetOutcome::Invalid,
        }
    };
    let expired = match outcome {
        ResetOutcome::Reset(_) => {
            let target = config
                .recover
                .post_view
                .clone()
                .unwrap_or_else(|| config.url(&config.login.url));
            return Ok(Reply::done(
                Json::ok(json!({})),
                Html::flash_redirect(
                    "success",
                    security.msg("PASSWORD_RESET_NO_LOGIN", &[]),
                    target,
                ),
            ));
        }
        ResetOutcome::Refused(errors) => {
            return Ok(Reply::Invalid(
                Form::new(RESET_TEMPLATE)
                    .page(context! { action => reset_action(config, &token) })
                    .errors(errors),
            ));
        }
        ResetOutcome::Expired(user) => Some(user),
        ResetOutcome::Invalid => None,
    };
    let message = refused_token_message(&ctx, expired.as_deref())?;
    let refused = FieldErrors::single("", message.clone());
    Ok(Reply::done(
        Json::invalid(&refused),
        Html::flash_redirect("error", message, config.url(&config.recover.url)),
    ))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_forgot, post_forgot, post_reset))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[
            ("/reset", config.url(&config.recover.url)),
            (
                "/reset/{token}",
                format!("{}/{{token}}", config.url(&config.recover.url)),
            ),
        ],
    )
}

/// The body of `POST /reset/{token}`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct ResetBody {
    /// The new password.
    password: String,
    /// The new password again.
    #[schema(nullable = false)]
    password_confirm: Option<String>,
}
