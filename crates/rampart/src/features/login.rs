//! Login (`GET|POST /login`), Flask-Security's `login` view.
//!
//! Flow: rate limit per client address → validate the form → look up the user by email or
//! username (case-insensitive) → verify the password on the hashing pool (a dummy verification of
//! equal cost for unknown users) → refuse inactive or unconfirmed accounts (only after a correct
//! password) → sign in (new session id, CSRF rotated, remember-me cookie, trackable fields).
//!
//! Config: `SECURITY_LOGIN_URL`, `SECURITY_POST_LOGIN_VIEW`, `SECURITY_DEFAULT_REMEMBER_ME`,
//! `SECURITY_RETURN_GENERIC_RESPONSES`, `SECURITY_LOGIN_RATE_LIMIT`, `SECURITY_USERNAME_ENABLE`.
//! Template: `security/login_user.html`. JSON: see CONTRACT.md `POST /login`.

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
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

/// Checking a password lives in the web layer, shared with HTTP Basic.
pub(crate) use crate::web::auth::PasswordCheck;
use crate::web::auth::check_user_password;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.login.url),
        get(get_login).post(post_login),
    )
}

/// A validated login form.
#[derive(Debug)]
pub(crate) struct LoginForm {
    /// `email` or `username`: the field the identity came in.
    pub identity_field: &'static str,
    /// The email or username.
    pub identity: String,
    /// The password.
    pub password: String,
    /// Remember me (an absent field is off, as with an unchecked box).
    pub remember: bool,
    /// A safe local `next`, if one was given.
    pub next: Option<String>,
}

/// Validates login input; `next` comes from the body or the query string.
pub(crate) fn validate(
    security: &Security,
    host: Option<&str>,
    input: &mut FormInput,
    query_next: Option<String>,
) -> Result<LoginForm, FieldErrors> {
    let config = security.config();
    let email = input
        .text("email")
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    let username = if config.username.enabled {
        input
            .text("username")
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
    } else {
        None
    };
    let password = input.text("password").filter(|p| !p.is_empty());
    let remember = input.flag("remember");
    let next = input.text("next").or(query_next).filter(|n| !n.is_empty());
    let mut errors = input.take_errors();
    let (identity_field, identity) = match (email, username) {
        (Some(email), _) => {
            if !config.username.enabled && crate::identity::normalize_email(&email).is_err() {
                errors.add("email", security.msg("INVALID_EMAIL_ADDRESS", &[]));
            }
            ("email", email)
        }
        (None, Some(username)) => ("username", username),
        (None, None) => {
            if !errors.has("email") {
                errors.add("email", security.msg("EMAIL_NOT_PROVIDED", &[]));
            }
            ("email", String::new())
        }
    };
    if password.is_none() && !errors.has("password") {
        errors.add("password", security.msg("PASSWORD_NOT_PROVIDED", &[]));
    }
    let next = match next {
        Some(next) => match crate::redirect::safe_next(config, host, &next) {
            Ok(safe) => Some(safe),
            Err(_) => {
                errors.add("next", security.msg("INVALID_REDIRECT", &[]));
                None
            }
        },
        None => None,
    };
    errors.into_result()?;
    Ok(LoginForm {
        identity_field,
        identity,
        password: password.unwrap_or_default(),
        // As WTForms: an absent checkbox is "off"; the default only pre-checks the form.
        remember: remember.unwrap_or(false),
        next,
    })
}

/// Authenticates a validated form against the account its identity was already looked up to:
/// the user to sign in, or the errors to show.
async fn authenticate_user(
    security: &Security,
    form: &LoginForm,
    user: Option<User>,
) -> crate::Result<Result<User, FieldErrors>> {
    let config = security.config();
    let generic = |errors: FieldErrors| {
        if config.return_generic_responses {
            FieldErrors::single("", security.msg("GENERIC_AUTHN_FAILED", &[]))
        } else {
            errors
        }
    };
    let user = match check_user_password(security, user, &form.password).await? {
        PasswordCheck::Valid(user) => user,
        PasswordCheck::UnknownIdentity => {
            let errors = FieldErrors::single(
                form.identity_field,
                security.msg("USER_DOES_NOT_EXIST", &[]),
            );
            return Ok(Err(generic(errors)));
        }
        PasswordCheck::InvalidPassword => {
            let errors = FieldErrors::single("password", security.msg("INVALID_PASSWORD", &[]));
            return Ok(Err(generic(errors)));
        }
    };
    // The password was right: detailed messages no longer reveal anything.
    if !user.active {
        return Ok(Err(FieldErrors::single(
            form.identity_field,
            security.msg("DISABLED_ACCOUNT", &[]),
        )));
    }
    if requires_confirmation(config, &user) {
        return Ok(Err(FieldErrors::single(
            form.identity_field,
            security.msg("CONFIRMATION_REQUIRED", &[]),
        )));
    }
    Ok(Ok(user))
}

/// Whether `user` must confirm their email before signing in.
pub(crate) fn requires_confirmation(config: &SecurityConfig, user: &User) -> bool {
    config.confirm.enabled
        && !config.confirm.login_without_confirmation
        && user.confirmed_at.is_none()
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
    include_auth_token: Option<String>,
}

async fn get_login(ctx: AuthContext, Query(query): Query<LoginQuery>) -> crate::Result<Response> {
    let security = ctx.security();
    let config = security.config();
    if ctx.is_json() {
        let mut response = ctx.json_base().await?;
        let mut attributes = vec!["email"];
        if config.username.enabled {
            attributes.push("username");
        }
        response.insert("identity_attributes".into(), json!(attributes));
        if let Some(user) = ctx.user() {
            response.insert("user".into(), ctx.user_payload(user, false)?);
        }
        if let Some(Value::String(token)) = response.get("csrf_token") {
            ctx.set_cookie(crate::web::auth::xsrf_cookie(config, token.clone()));
        }
        return Ok(crate::web::reply::json_ok(response));
    }
    if ctx.user().is_some() {
        let target = query
            .next
            .as_deref()
            .and_then(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).ok())
            .unwrap_or_else(|| config.login.post_view.clone());
        return Ok(crate::web::reply::redirect(&target));
    }
    let token = ctx.csrf_token().await?;
    ctx.set_cookie(crate::web::auth::xsrf_cookie(config, token));
    render_form(
        &ctx,
        StatusCode::OK,
        None,
        &FieldErrors::new(),
        query.next.as_deref(),
        config.login.default_remember_me,
    )
    .await
}

async fn render_form(
    ctx: &AuthContext,
    status: StatusCode,
    values: Option<Value>,
    errors: &FieldErrors,
    next: Option<&str>,
    remember: bool,
) -> crate::Result<Response> {
    let form_errors = errors.get("").to_vec();
    let form =
        context! { values => values, errors => errors.to_json(), form_errors => form_errors };
    crate::web::templates::page(
        ctx,
        "security/login_user.html",
        status,
        context! { form => form, next => next, remember => remember },
    )
    .await
}

async fn post_login(
    ctx: AuthContext,
    Query(query): Query<LoginQuery>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let _ = &query.include_auth_token;
    crate::web::rate_limit::check_login(&ctx).await?;
    let security = ctx.security().clone();
    let host = ctx.host.clone();
    let outcome = match validate(&security, host.as_deref(), &mut input, query.next.clone()) {
        Ok(form) => {
            // The per-account count is keyed on the account, whichever identity names it.
            let account = security
                .datastore()
                .user_by_identity(form.identity.trim())
                .await?;
            let counted =
                crate::web::rate_limit::check_login_account(&ctx, account.as_ref(), &form.identity)
                    .await;
            if let Err(Rejection::Limited(_)) = &counted {
                crate::features::unlock::offer(&ctx, &form.identity);
            }
            counted?;
            let outcome = authenticate_user(&security, &form, account).await?;
            if let Ok(user) = &outcome {
                crate::web::rate_limit::clear_login_account(&security, user.id).await?;
            }
            outcome.map(|user| (user, form))
        }
        Err(errors) => Err(errors),
    };
    match outcome {
        Ok((user, form)) => {
            if crate::model::second_factor_required(security.config(), &user) {
                return Ok(crate::features::two_factor::begin_login(
                    &ctx,
                    &user,
                    form.remember,
                    form.next,
                )
                .await?);
            }
            Ok(crate::web::auth::finish_login(&ctx, &user, form.remember, form.next).await?)
        }
        Err(errors) => {
            if ctx.is_json() {
                return Ok(crate::web::reply::json_errors(
                    StatusCode::BAD_REQUEST,
                    &[],
                    Some(&errors),
                ));
            }
            let mut errors = errors;
            if errors.has("next") {
                // Shown as a flash, like Flask-Security, and the unsafe value is dropped.
                let message = security.msg("INVALID_REDIRECT", &[]);
                errors = FieldErrors::single("", message);
            }
            let values = json!({
                "email": input.values().get("email").cloned().unwrap_or(Value::Null),
                "username": input.values().get("username").cloned().unwrap_or(Value::Null),
            });
            let remember = input.flag("remember").unwrap_or(false);
            let next = query.next.as_deref().filter(|n| {
                crate::redirect::safe_next(security.config(), host.as_deref(), n).is_ok()
            });
            Ok(render_form(&ctx, StatusCode::OK, Some(values), &errors, next, remember).await?)
        }
    }
}
