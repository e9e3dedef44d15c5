//! Username recovery (`GET|POST SECURITY_USERNAME_RECOVERY_URL`, default `/recover-username`),
//! Flask-Security's `recover_username` view. On when `SECURITY_USERNAME_RECOVERY` is set.
//!
//! A visitor gives an email address; when an active account with a username has it, the
//! username is mailed to that address (`username_recovery`). The answer is the same either way
//! with `SECURITY_RETURN_GENERIC_RESPONSES` (default), and the work is the same too (the mail
//! is rendered and dropped), so neither the answer nor its time tells whether the address has an
//! account. Every request counts against the per-address mail limit (`SECURITY_MAIL_RATE_LIMIT`)
//! before anything is looked up.
//!
//! Template: `security/recover_username.html`. Mail: `username_recovery`.

use axum::Router;
use axum::routing::get;
use minijinja::context;

use crate::config::SecurityConfig;
use crate::web::context::AuthContext;
use crate::web::email_form::EmailForm;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Html, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.username_recovery.url),
        get(get_recover_username).post(post_recover_username),
    )
}

/// Mails the username of the account with `email` (canonical) to that address, without HTTP.
/// `Ok(Err(_))` holds the detailed refusal (no active account with a username has it), which the
/// HTTP answer hides when generic responses are on. Both outcomes render the mail, so the time
/// taken does not tell them apart; only a real one is handed to the mailer.
///
/// # Errors
///
/// The datastore's or the mail templates' error.
pub async fn recover_username(
    security: &Security,
    email: &str,
) -> crate::Result<Result<(), FieldErrors>> {
    let user = security
        .datastore()
        .user_by_email(email)
        .await?
        .filter(|u| u.active && u.username.is_some());
    let config = security.config();
    let (user_context, to) = match &user {
        Some(user) => (crate::web::notify::user_context(user), user.email.as_str()),
        None => (context! { email => email, username => "" }, email),
    };
    let mail = crate::web::notify::render(
        security,
        "username_recovery",
        to,
        context! {
            user => user_context,
            app_name => config.app_name,
        },
    )?;
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

const FORM: EmailForm = EmailForm::new("security/recover_username.html");

/// The username-recovery form.
#[utoipa::path(
    get,
    path = "/recover-username",
    tag = "recover-username",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer))
)]
async fn get_recover_username() -> Reply {
    FORM.empty()
}

/// Mails the username of the account with this address.
#[utoipa::path(
    post,
    path = "/recover-username",
    tag = "recover-username",
    request_body = crate::web::openapi::EmailBody,
    responses((status = 200, description = "Sent (the same answer for an unknown address).", body = crate::web::openapi::CsrfAnswer))
)]
async fn post_recover_username(ctx: AuthContext, mut input: FormInput) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let email = match FORM.read(&ctx, &mut input).await? {
        Ok(email) => email,
        Err(refused) => return Ok(refused),
    };
    let sent = recover_username(&security, &email).await?;
    let html = Html::Message {
        title: "Check your email".to_owned(),
        message: security.msg("USERNAME_RECOVERY_REQUEST", &[]),
        link: None,
    };
    Ok(FORM.answer(&ctx, &email, sent, html))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_recover_username, post_recover_username))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[(
            "/recover-username",
            config.url(&config.username_recovery.url),
        )],
    )
}
