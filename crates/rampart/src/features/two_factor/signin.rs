//! The login's second step: a right password for a user with a second factor hands off here
//! ([`begin_login_reply`]); the session holds the pending sign-in and `POST /tf-validate
//! {"code"}` completes it. `/tf-validate` also takes a setup's first code (see `setup.rs`).

use axum::response::{IntoResponse, Response};
use serde_json::{Map, json};

use super::{
    CodeVerdict, EMAIL, SIGN_IN_CODE, check_code, check_code_for, send_code, setup, verify_form,
};
use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::FormInput;
use crate::web::negotiate::{Html, Json, Reply};
use crate::web::pending_login;
use crate::web::rejection::Rejection;
use crate::web::security::Security;

/// A sign-in waiting for its second factor ([`begin`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecondFactorPending {
    /// The user's method, [`super::AUTHENTICATOR`] or [`EMAIL`] (empty if they have none).
    pub method: String,
    /// Whether a code was just mailed (the email method; a text message for SMS is not a mail).
    pub code_mailed: bool,
}

impl SecondFactorPending {
    /// The answer to the password step: JSON clients learn that a code is needed (`tf_required`,
    /// the method, `tf_state: "ready"`), browsers go to the code page.
    fn reply(&self, config: &SecurityConfig) -> Reply {
        let mut json = Map::new();
        json.insert("tf_method".into(), json!(self.method));
        json.insert("tf_primary_method".into(), json!(self.method));
        json.insert("tf_required".into(), json!(true));
        json.insert("tf_state".into(), json!("ready"));
        Reply::done(
            Json::Base(json),
            Html::redirect(config.url(&config.two_factor.token_validation_url)),
        )
    }
}

/// Begins the second step of `user`'s sign-in (their password was right): for the email method
/// a fresh code is mailed. Nobody is signed in; the caller keeps the pending sign-in (the
/// web: in the session) until [`super::check_code`] accepts a code.
///
/// # Errors
///
/// The datastore's errors; rendering the mail fails.
pub async fn begin(security: &Security, user: &User) -> crate::Result<SecondFactorPending> {
    let method = user.tf_primary_method.clone().unwrap_or_default();
    let code_mailed = method == EMAIL;
    if code_mailed {
        send_code(security, user, &user.email, SIGN_IN_CODE).await?;
    }
    if method == super::SMS
        && let Some(phone) = user.tf_phone_number.as_deref()
    {
        // A provider failure is logged; the user can ask again by signing in again.
        let _sent = super::send_sms_code(security, user, phone, SIGN_IN_CODE).await?;
    }
    Ok(SecondFactorPending {
        method,
        code_mailed,
    })
}

/// Starts a two-factor login for `user`, whose first factor (given by `method`) was right (the
/// hand-off from login, unified sign-in, a passkey or an identity provider):
/// the pending user goes into a fresh session, a code is mailed for the email method
/// ([`begin`]); nobody is signed in yet. The reply tells the client a code is needed.
///
/// # Errors
///
/// The session's errors; mailing the code fails.
pub(crate) async fn begin_login_reply(
    ctx: &AuthContext,
    user: &User,
    remember: bool,
    next: Option<String>,
    method: crate::activity::SignInMethod,
) -> crate::Result<Reply> {
    let security = ctx.security();
    pending_login::start(ctx, user, remember, next, method).await?;
    if user.tf_primary_method.is_none()
        && pending_login::webauthn_second_factor(security, user).await?
    {
        return Ok(webauthn_reply(security.config()));
    }
    let pending = begin(security, user).await?;
    Ok(pending.reply(security.config()))
}

/// The answer to the password step of a user whose second factor is a WebAuthn key
/// (Flask-Security's webauthn plugin): JSON clients learn `tf_method: "webauthn"` and
/// `tf_signin_url`, browsers go to `SECURITY_WAN_SIGNIN_URL`.
fn webauthn_reply(config: &SecurityConfig) -> Reply {
    let signin_url = config.url(&config.webauthn.signin_url);
    let mut json = Map::new();
    json.insert("tf_method".into(), json!("webauthn"));
    json.insert("tf_required".into(), json!(true));
    json.insert("tf_state".into(), json!("ready"));
    json.insert("tf_signin_url".into(), json!(signin_url));
    Reply::done(Json::Base(json), Html::redirect(signin_url))
}

/// The code form of a sign-in (or setup) in progress.
#[utoipa::path(
    get,
    path = "/tf-validate",
    tag = "tf",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer))
)]
pub(super) async fn get_validate(ctx: AuthContext) -> Result<Reply, Rejection> {
    let config = ctx.security().config();
    // JSON clients get just a CSRF token, whatever waits: what is pending is looked up (and a
    // stale sign-in forgotten) for the page only.
    if ctx.is_json() {
        return Ok(Reply::Form(verify_form(config, None, false)));
    }
    let setup_method = setup::pending_method(&ctx).await?;
    if ctx.user().is_some() && setup_method.is_some() {
        return Ok(Reply::Form(verify_form(config, setup_method, false)));
    }
    let user = pending_login::pending_user(&ctx)
        .await?
        .ok_or(Rejection::NothingPending)?;
    Ok(Reply::Form(verify_form(
        config,
        user.tf_primary_method,
        true,
    )))
}

/// Proves the second factor with a code: finishes the sign-in, or the setup.
#[utoipa::path(
    post,
    path = "/tf-validate",
    tag = "tf",
    request_body = crate::web::openapi::CodeBody,
    params(crate::web::openapi::IncludeAuthToken),
    responses((status = 200, description = "Signed in, or the method set up.", body = crate::web::openapi::SignInAnswer))
)]
pub(super) async fn post_validate(
    ctx: AuthContext,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let code = input.text("code").unwrap_or_default();

    // Finishing a setup (signed in).
    if let Some(user) = ctx.user().cloned()
        && let Some(pending) = setup::pending_setup(&ctx).await?
    {
        return Ok(setup::post_first_code(&ctx, &user, &pending, &code)
            .await?
            .into_response());
    }

    // Completing a login.
    let user = pending_login::pending_user(&ctx)
        .await?
        .ok_or(Rejection::NothingPending)?;
    let security = ctx.security().clone();
    // After a rescue the code came by mail: it lives as long as mailed codes do.
    let verdict = if pending_login::rescued(&ctx).await? {
        let secret = user.tf_totp_secret.as_deref().unwrap_or_default();
        check_code_for(&security, &user, EMAIL, secret, &code).await?
    } else {
        check_code(&security, &user, &code).await?
    };
    match verdict {
        // The sign-in ends as a password-only one does (shared with login).
        CodeVerdict::Accepted => Ok(pending_login::complete_login(&ctx, &user).await?),
        CodeVerdict::Limited(limited) => Err(Rejection::Limited(limited)),
        CodeVerdict::Invalid => {
            crate::web::activity::sign_in_failed(&ctx, user.id).await?;
            let form = verify_form(security.config(), user.tf_primary_method.clone(), true)
                .errors(super::invalid_code(&security));
            Ok(Reply::Invalid(form).into_response())
        }
        CodeVerdict::AlreadyUsed => {
            crate::web::activity::sign_in_failed(&ctx, user.id).await?;
            let form = verify_form(security.config(), user.tf_primary_method.clone(), true)
                .errors(super::code_already_used(&security));
            Ok(Reply::Invalid(form).into_response())
        }
        CodeVerdict::Unreadable => {
            let form = verify_form(security.config(), user.tf_primary_method.clone(), true)
                .errors(super::unreadable_secret(&security));
            Ok(Reply::Invalid(form).into_response())
        }
    }
}
