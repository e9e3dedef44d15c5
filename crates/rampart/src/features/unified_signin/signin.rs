//! Signing in: `GET|POST /us-signin`, `POST /us-signin/send-code` and the magic link
//! `GET /us-verify-link?id=<fs_uniquifier>&code=<code>`.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde_json::{Value, json};

use super::{
    EMAIL, PasscodeVerdict, SMS, available_methods, check_passcode, code_methods,
    identity_attributes, invalid_passcode, lookup_identity, secrets, send_code, send_failed,
    signin_purpose,
};
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

const TEMPLATE: &str = "security/us_signin.html";

/// Whether `user` must confirm their email before signing in (as `/login` decides).
fn requires_confirmation(config: &crate::config::SecurityConfig, user: &User) -> bool {
    config.confirm.enabled
        && !config.confirm.login_without_confirmation
        && user.confirmed_at.is_none()
}

#[derive(serde::Deserialize)]
pub(super) struct SigninQuery {
    next: Option<String>,
}

/// The sign-in form; JSON: `available_methods`, `code_methods`, `identity_attributes`.
fn signin_form(security: &Security, next: Option<&str>, chosen_method: Option<&str>) -> Form {
    let config = security.config();
    let remember = config.login.default_remember_me;
    Form::new(TEMPLATE)
        .page(context! {
            available_methods => available_methods(config),
            code_methods => code_methods(config),
            chosen_method => chosen_method,
            next => next,
            remember => remember,
        })
        .json("available_methods", json!(available_methods(config)))
        .json("code_methods", json!(code_methods(config)))
        .json("identity_attributes", json!(identity_attributes(config)))
}

/// A signed-in caller of a view for visitors: JSON 400 (`ANONYMOUS_USER_REQUIRED`), browsers go
/// to `SECURITY_POST_LOGIN_VIEW`.
fn anonymous_required(ctx: &AuthContext) -> Response {
    let security = ctx.security();
    if ctx.is_json() {
        return crate::web::reply::json_errors(
            StatusCode::BAD_REQUEST,
            &[security.msg("ANONYMOUS_USER_REQUIRED", &[])],
            None,
        );
    }
    crate::web::reply::redirect(&security.config().login.post_view)
}

/// The unified sign-in form: the methods and what may name the user.
#[utoipa::path(
    get,
    path = "/us-signin",
    tag = "us",
    responses((status = 200, description = "The form.", body = UsSigninForm))
)]
pub(super) async fn get_signin(
    ctx: AuthContext,
    Query(query): Query<SigninQuery>,
) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    if ctx.user().is_some() && !ctx.is_json() {
        return Ok(crate::web::reply::redirect(&config.login.post_view));
    }
    let token = ctx.csrf_token().await?;
    ctx.set_cookie(crate::web::auth::xsrf_cookie(config, token));
    let next = query
        .next
        .as_deref()
        .filter(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).is_ok());
    let mut form = signin_form(&security, next, None);
    if let Some(user) = ctx.user() {
        form = form.json("user", ctx.user_payload(user, false)?);
    }
    Ok(Reply::Form(form).into_response())
}

/// The typed identity, kept for the form again (never the passcode).
fn typed(input: &FormInput) -> Value {
    json!({
        "identity": input.values().get("identity").cloned().unwrap_or(Value::Null),
        "chosen_method": input.values().get("chosen_method").cloned().unwrap_or(Value::Null),
    })
}

/// Refusals of the identity and the passcode, as Flask-Security words them or, with
/// `SECURITY_RETURN_GENERIC_RESPONSES`, one generic message.
fn generic(security: &Security, errors: FieldErrors) -> FieldErrors {
    if !security.config().return_generic_responses {
        return errors;
    }
    let mut kept = FieldErrors::new();
    let mut hidden = false;
    for field in ["identity", "passcode"] {
        hidden |= errors.has(field);
    }
    for message in errors.get("next") {
        kept.add("next", message.clone());
    }
    if hidden {
        kept.add("", security.msg("GENERIC_AUTHN_FAILED", &[]));
    }
    kept
}

/// The user of a sign-in's identity, or the identity's error (missing, unknown, disabled).
async fn identity_user(
    security: &Security,
    identity: Option<&str>,
) -> crate::Result<Result<User, FieldErrors>> {
    let Some(identity) = identity.map(str::trim).filter(|i| !i.is_empty()) else {
        return Ok(Err(FieldErrors::single(
            "identity",
            security.msg("FIELD_REQUIRED", &[]),
        )));
    };
    match lookup_identity(security, identity).await? {
        None => Ok(Err(FieldErrors::single(
            "identity",
            security.msg("US_SPECIFY_IDENTITY", &[]),
        ))),
        Some(user) if !user.active => Ok(Err(FieldErrors::single(
            "identity",
            security.msg("DISABLED_ACCOUNT", &[]),
        ))),
        Some(user) => Ok(Ok(user)),
    }
}

/// Signs in with an identity and a passcode (password, mailed code or authenticator code).
#[utoipa::path(
    post,
    path = "/us-signin",
    tag = "us",
    request_body = UsSigninBody,
    params(crate::web::openapi::IncludeAuthToken),
    responses((status = 200, description = "Signed in, or the second factor is needed.", body = crate::web::openapi::SignInAnswer))
)]
pub(super) async fn post_signin(
    ctx: AuthContext,
    Query(query): Query<SigninQuery>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    if ctx.user().is_some() {
        return Ok(anonymous_required(&ctx));
    }
    crate::web::rate_limit::check_login(&ctx).await?;
    let security = ctx.security().clone();
    let config = security.config();
    let identity = input.text("identity");
    let passcode = input.text("passcode").unwrap_or_default();
    let remember = input.flag("remember").unwrap_or(false);
    let next = input
        .text("next")
        .or(query.next.clone())
        .filter(|n| !n.is_empty());
    let mut errors = input.take_errors();
    let next = match next {
        Some(next) => match crate::redirect::safe_next(config, ctx.host.as_deref(), &next) {
            Ok(safe) => Some(safe),
            Err(_) => {
                errors.add("next", security.msg("INVALID_REDIRECT", &[]));
                None
            }
        },
        None => None,
    };
    let shown_next = next.clone();
    let refuse = |input: &FormInput, errors: FieldErrors| {
        let form = signin_form(&security, shown_next.as_deref(), None)
            .values(typed(input))
            .errors(generic(&security, errors));
        Reply::Invalid(form).into_response()
    };
    if !errors.is_empty() {
        crate::web::rate_limit::undo_login(&ctx).await?;
        return Ok(refuse(&input, errors));
    }
    let user = match identity_user(&security, identity.as_deref()).await? {
        Ok(user) => user,
        Err(errors) => {
            // Equal time for an unknown identity: a password check of equal cost.
            security.hasher().verify_dummy(&passcode).await?;
            return Ok(refuse(&input, errors));
        }
    };
    if passcode.is_empty() {
        return Ok(refuse(&input, invalid_passcode(&security)));
    }
    let method = match check_passcode(&security, &user, &passcode).await? {
        PasscodeVerdict::Accepted(method) => method,
        PasscodeVerdict::Invalid => {
            crate::web::activity::sign_in_failed(&ctx, user.id).await?;
            return Ok(refuse(&input, invalid_passcode(&security)));
        }
        PasscodeVerdict::Limited(limited) => return Err(Rejection::Limited(limited)),
    };
    if requires_confirmation(config, &user) {
        return Ok(refuse(
            &input,
            FieldErrors::single("identity", security.msg("CONFIRMATION_REQUIRED", &[])),
        ));
    }
    crate::web::rate_limit::undo_login(&ctx).await?;
    crate::web::rate_limit::clear_login_account(&security, user.id).await?;
    let signed_in_by = if method == "password" {
        crate::activity::SignInMethod::Password
    } else {
        crate::activity::SignInMethod::Code
    };
    // A password or a mailed code is one factor: a user with two-factor gives the second.
    if config.unified_signin.mfa_required.contains(&method)
        && crate::web::pending_login::second_factor_needed(&security, &user).await?
    {
        return Ok(crate::features::two_factor::begin_login_reply(
            &ctx,
            &user,
            remember,
            next,
            signed_in_by,
        )
        .await?
        .into_response());
    }
    Ok(crate::web::auth::finish_login(&ctx, &user, remember, next, signed_in_by).await?)
}

/// Checks a send-code request: the user and the method to send by, or the form's errors.
async fn check_send_code(
    security: &Security,
    identity: Option<&str>,
    method: &str,
) -> crate::Result<Result<User, FieldErrors>> {
    let config = security.config();
    let user = match identity_user(security, identity).await? {
        Ok(user) => user,
        Err(errors) => return Ok(Err(errors)),
    };
    let not_available = || {
        FieldErrors::single(
            "chosen_method",
            security.msg("US_METHOD_NOT_AVAILABLE", &[]),
        )
    };
    if !super::is_enabled(config, method) || !secrets(&user).contains_key(method) {
        return Ok(Err(not_available()));
    }
    if method == SMS && user.us_phone_number.is_none() {
        return Ok(Err(FieldErrors::single(
            "chosen_method",
            security.msg("PHONE_INVALID", &[]),
        )));
    }
    if requires_confirmation(config, &user) {
        return Ok(Err(FieldErrors::single(
            "identity",
            security.msg("CONFIRMATION_REQUIRED", &[]),
        )));
    }
    Ok(Ok(user))
}

/// Sends a sign-in code by the chosen method.
#[utoipa::path(
    post,
    path = "/us-signin/send-code",
    tag = "us",
    request_body = UsSendCodeBody,
    responses((status = 200, description = "Sent (the same answer for an unknown identity with generic responses).", body = crate::web::openapi::CsrfAnswer))
)]
pub(super) async fn post_send_code(
    ctx: AuthContext,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    if ctx.user().is_some() {
        return Ok(anonymous_required(&ctx));
    }
    let security = ctx.security().clone();
    let config = security.config();
    let identity = input.text("identity");
    let method = input.text("chosen_method").unwrap_or_default();
    let input_errors = input.take_errors();
    // Counted per identity as typed, known or not, so the limit tells nothing about accounts.
    if let Some(identity) = identity.as_deref().filter(|i| !i.trim().is_empty()) {
        crate::web::rate_limit::check_mail(&ctx, &format!("us:{}", identity.trim())).await?;
    }
    let checked = if input_errors.is_empty() {
        check_send_code(&security, identity.as_deref(), &method).await?
    } else {
        Err(input_errors)
    };
    let generic = config.return_generic_responses;
    let sent_form = |errors: Option<FieldErrors>| {
        let form = signin_form(&security, None, Some(&method)).values(typed(&input));
        match errors {
            Some(errors) => form.errors(errors),
            None => form,
        }
    };
    let user = match checked {
        Ok(user) => user,
        Err(errors) if !generic => {
            return Ok(Reply::Invalid(sent_form(Some(errors))).into_response());
        }
        Err(_) => {
            // The same answer as a code sent: nothing tells whether the identity exists.
            return Ok(Reply::done(
                Json::base(),
                Html::Form(sent_form(None).page(context! {
                    available_methods => available_methods(config),
                    code_methods => code_methods(config),
                    chosen_method => method,
                    code_sent => true,
                    flash_message => security.msg("GENERIC_US_SIGNIN", &[]),
                })),
            )
            .into_response());
        }
    };
    if method == EMAIL || method == SMS {
        let link = (method == EMAIL && config.unified_signin.magic_link)
            .then(|| ctx.external_url(&config.url(&config.unified_signin.verify_link_url)));
        let phone = user.us_phone_number.clone();
        let sent = send_code(
            &security,
            &user,
            &method,
            signin_purpose(&method),
            phone.as_deref(),
            link,
        )
        .await?;
        if sent.is_err() {
            let errors = send_failed(&security);
            return Ok(Reply::done(
                Json::Body(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"errors": errors.all_messages(), "field_errors": errors.to_json()}),
                ),
                Html::Form(sent_form(Some(errors))),
            )
            .into_response());
        }
    }
    let message = if generic {
        security.msg("GENERIC_US_SIGNIN", &[])
    } else {
        security.msg("CODE_HAS_BEEN_SENT", &[])
    };
    Ok(Reply::done(
        Json::base(),
        Html::Form(sent_form(None).page(context! {
            available_methods => available_methods(config),
            code_methods => code_methods(config),
            chosen_method => method,
            code_sent => true,
            flash_message => message,
        })),
    )
    .into_response())
}

#[derive(serde::Deserialize)]
pub(super) struct LinkQuery {
    id: Option<String>,
    code: Option<String>,
}

/// `GET /us-verify-link?id=<fs_uniquifier>&code=<code>`: the magic link of a sign-in mail. A
/// link answers with redirects only (a browser follows it); its code is single use and lives
/// `SECURITY_US_TOKEN_VALIDITY`; nothing tells whether an account exists.
pub(super) async fn get_verify_link(
    ctx: AuthContext,
    Query(query): Query<LinkQuery>,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    if ctx.user().is_some() {
        return Ok(anonymous_required(&ctx));
    }
    let signin_url = config.url(&config.unified_signin.signin_url);
    let refuse = |key: &str| {
        let key = if config.return_generic_responses && key != "API_ERROR" {
            "GENERIC_AUTHN_FAILED"
        } else {
            key
        };
        (security.msg(key, &[]), signin_url.clone())
    };
    let (Some(id), Some(code)) = (
        query.id.filter(|i| !i.is_empty()),
        query.code.filter(|c| !c.is_empty()),
    ) else {
        let (message, to) = refuse("API_ERROR");
        ctx.flash("error", &message).await?;
        return Ok(crate::web::reply::redirect(&to));
    };
    let user = security.datastore().user_by_uniquifier(&id).await?;
    let user = match user {
        Some(user) if user.active => user,
        other => {
            let key = if other.is_some() {
                "DISABLED_ACCOUNT"
            } else {
                "USER_DOES_NOT_EXIST"
            };
            let (message, to) = refuse(key);
            ctx.flash("error", &message).await?;
            return Ok(crate::web::reply::redirect(&to));
        }
    };
    let right = if secrets(&user).contains_key(EMAIL) {
        if let Err(limited) = crate::web::rate_limit::count_code(&security, user.id).await? {
            return Err(Rejection::Limited(limited));
        }
        crate::web::mailed_code::redeem(&security, &user, signin_purpose(EMAIL), &code).await?
    } else {
        false
    };
    if !right {
        crate::web::activity::sign_in_failed(&ctx, user.id).await?;
        let (message, to) = refuse("INVALID_CODE");
        ctx.flash("error", &message).await?;
        return Ok(crate::web::reply::redirect(&to));
    }
    crate::web::rate_limit::clear_codes(&security, user.id).await?;
    if config
        .unified_signin
        .mfa_required
        .iter()
        .any(|m| m == EMAIL)
        && crate::web::pending_login::second_factor_needed(&security, &user).await?
    {
        return Ok(crate::features::two_factor::begin_login_reply(
            &ctx,
            &user,
            false,
            None,
            crate::activity::SignInMethod::Code,
        )
        .await?
        .into_response());
    }
    crate::web::auth::login_user_with(&ctx, &user, false, crate::activity::SignInMethod::Code)
        .await?;
    ctx.flash(
        "success",
        &security.msg("PASSWORDLESS_LOGIN_SUCCESSFUL", &[]),
    )
    .await?;
    Ok(crate::web::reply::redirect(&config.login.post_view))
}

/// The answer of `GET /us-signin`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `get_signin` renders")]
pub(crate) struct UsSigninForm {
    /// The session's CSRF token.
    csrf_token: String,
    /// The sign-in methods.
    available_methods: Vec<String>,
    /// The methods that send a code.
    code_methods: Vec<String>,
    /// What may name the user.
    identity_attributes: Vec<String>,
    /// The user, when signed in.
    #[schema(nullable = false)]
    user: Option<crate::web::openapi::UserPayload>,
}

/// The body of `POST /us-signin`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct UsSigninBody {
    /// An email address or username.
    identity: String,
    /// The password, a mailed code or an authenticator code.
    passcode: String,
    /// Remember me.
    #[schema(nullable = false)]
    remember: Option<bool>,
}

/// The body of `POST /us-signin/send-code`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct UsSendCodeBody {
    /// An email address or username.
    identity: String,
    /// `email` or `sms`.
    chosen_method: String,
}
