//! Login (`GET|POST /login`), Flask-Security's `login` view.
//!
//! Flow: rate limit per client address (counted first, taken back when the password is right:
//! only failures use it up) → validate the form → look up the user by email or
//! username (case-insensitive) → count the attempt against the account's limit (the first
//! refusal offers an unlock mail, see `unlock.rs`) → verify the password on the hashing pool (a
//! dummy verification of equal cost for unknown users) → refuse inactive or unconfirmed accounts
//! (only after a correct password) → the second factor, when the user has one (`two_factor/`) →
//! sign in (new session id, CSRF rotated, remember-me cookie, trackable fields).
//!
//! Without axum (CLI, tests): [`authenticate`] checks an identity and a password (counted
//! against the account's login limit) and says whether the user may be signed in
//! ([`login_user`](crate::web::auth::login_user)) or needs a second factor first.
//!
//! Config: `SECURITY_LOGIN_URL`, `SECURITY_POST_LOGIN_VIEW`, `SECURITY_DEFAULT_REMEMBER_ME`,
//! `SECURITY_RETURN_GENERIC_RESPONSES`, `SECURITY_LOGIN_RATE_LIMIT`,
//! `SECURITY_LOGIN_IDENTITY_RATE_LIMIT`, `SECURITY_USERNAME_ENABLE`.
//! Template: `security/login_user.html`. JSON: see CONTRACT.md `POST /login`.

use axum::Router;
use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::metrics::LoginOutcome;
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::{Limited, Rejection};
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

/// What a sign-in attempt came to ([`authenticate`]).
#[derive(Debug)]
#[must_use]
pub enum SignIn {
    /// The password is right, the account active (and confirmed when that is required) and no
    /// second factor is needed: sign the user in ([`login_user`](crate::web::auth::login_user)).
    /// The account's attempt count is cleared.
    Ready(Box<User>),
    /// As [`Ready`](Self::Ready), but the user's second factor must be proven first
    /// ([`two_factor::begin`](crate::features::two_factor::begin)).
    SecondFactor(Box<User>),
    /// Refused: the errors to show (a generic one, with `SECURITY_RETURN_GENERIC_RESPONSES`, for
    /// an unknown identity or a wrong password).
    Refused(FieldErrors),
    /// The account's login limit (`SECURITY_LOGIN_IDENTITY_RATE_LIMIT`) is used up: nothing was
    /// checked, so it says nothing about the password.
    Limited(Limited),
}

/// Checks a sign-in without HTTP (a CLI, a job, a test): looks `identity` (email or username,
/// case-insensitive) up, counts the attempt against the account's login limit
/// (`SECURITY_LOGIN_IDENTITY_RATE_LIMIT`, the limit that holds without a request; the
/// per-address one is the handler's), verifies `password` on the hashing pool (a dummy
/// verification of equal cost for unknown users), then refuses inactive or unconfirmed
/// accounts. Errors are keyed on `username` when usernames are on and `identity` is not an
/// email address, else on `email`. Signing in is then the caller's.
///
/// # Errors
///
/// The datastore's or the hasher's error.
pub async fn authenticate(
    security: &Security,
    identity: &str,
    password: &str,
) -> crate::Result<SignIn> {
    let identity = identity.trim();
    let field = if security.config().username.enabled
        && crate::identity::normalize_email(identity).is_err()
    {
        "username"
    } else {
        "email"
    };
    check_sign_in(security, field, identity, password).await
}

/// [`authenticate`] with the form field the identity came in (for its errors).
async fn check_sign_in(
    security: &Security,
    identity_field: &'static str,
    identity: &str,
    password: &str,
) -> crate::Result<SignIn> {
    let config = security.config();
    // The per-account count is keyed on the account, whichever identity names it.
    let account = security
        .datastore()
        .user_by_identity(identity.trim())
        .await?;
    if let Err(limited) =
        crate::web::rate_limit::count_login_account(security, account.as_ref(), identity).await?
    {
        return Ok(SignIn::Limited(limited));
    }
    let generic = |errors: FieldErrors| {
        if config.return_generic_responses {
            FieldErrors::single("", security.msg("GENERIC_AUTHN_FAILED", &[]))
        } else {
            errors
        }
    };
    let user = match check_user_password(security, account, password).await? {
        PasswordCheck::Valid(user) => user,
        PasswordCheck::UnknownIdentity => {
            let errors =
                FieldErrors::single(identity_field, security.msg("USER_DOES_NOT_EXIST", &[]));
            return Ok(SignIn::Refused(generic(errors)));
        }
        PasswordCheck::InvalidPassword => {
            let errors = FieldErrors::single("password", security.msg("INVALID_PASSWORD", &[]));
            return Ok(SignIn::Refused(generic(errors)));
        }
    };
    // The password was right: detailed messages no longer reveal anything.
    if !user.active {
        return Ok(SignIn::Refused(FieldErrors::single(
            identity_field,
            security.msg("DISABLED_ACCOUNT", &[]),
        )));
    }
    if requires_confirmation(config, &user) {
        return Ok(SignIn::Refused(FieldErrors::single(
            identity_field,
            security.msg("CONFIRMATION_REQUIRED", &[]),
        )));
    }
    crate::web::rate_limit::clear_login_account(security, user.id).await?;
    Ok(
        if crate::web::pending_login::second_factor_needed(security, &user).await? {
            SignIn::SecondFactor(Box::new(user))
        } else {
            SignIn::Ready(Box::new(user))
        },
    )
}

/// Whether `user` must confirm their email before signing in.
pub(crate) fn requires_confirmation(config: &SecurityConfig, user: &User) -> bool {
    config.confirm.enabled
        && !config.confirm.login_without_confirmation
        && user.confirmed_at.is_none()
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_login, post_login))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/login", config.url(&config.login.url))],
    )
}

/// The body of `POST /login`: an email or a username, and the password.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the fields `validate` reads")]
pub(crate) struct LoginBody {
    /// The email address (or `username`).
    #[schema(nullable = false)]
    email: Option<String>,
    /// The username (with `SECURITY_USERNAME_ENABLE`), instead of `email`.
    #[schema(nullable = false)]
    username: Option<String>,
    /// The password.
    password: String,
    /// Remember me (a long-lived cookie).
    #[schema(nullable = false)]
    remember: Option<bool>,
    /// Where to go next (a local path).
    #[schema(nullable = false)]
    next: Option<String>,
}

/// The answer of `GET /login`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `get_login` renders")]
pub(crate) struct LoginFormAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// What may name the user: `email`, `username`.
    identity_attributes: Vec<String>,
    /// The user, when signed in.
    #[schema(nullable = false)]
    user: Option<crate::web::openapi::UserPayload>,
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

const TEMPLATE: &str = "security/login_user.html";

/// The sign-in form: the CSRF token and what may name the user.
#[utoipa::path(get, path = "/login", tag = "login",
    responses((status = 200, description = "The form (and the user, when signed in).", body = LoginFormAnswer)))]
async fn get_login(ctx: AuthContext, Query(query): Query<LoginQuery>) -> crate::Result<Response> {
    let security = ctx.security();
    let config = security.config();
    // A signed-in browser goes on, without the form's XSRF-TOKEN cookie; a JSON client gets
    // the form (with its user) either way: different work, decided before the reply.
    if ctx.user().is_some() && !ctx.is_json() {
        let target = query
            .next
            .as_deref()
            .and_then(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).ok())
            .unwrap_or_else(|| config.login.post_view.clone());
        return Ok(crate::web::reply::redirect(&target));
    }
    let token = ctx.csrf_token().await?;
    ctx.set_cookie(crate::web::auth::xsrf_cookie(config, token));
    let mut attributes = vec!["email"];
    if config.username.enabled {
        attributes.push("username");
    }
    let mut form = Form::new(TEMPLATE);
    if query.next.is_none() {
        form = form.same_for_every_visitor();
    }
    let mut form = form
        .page(context! { next => query.next, remember => config.login.default_remember_me })
        .json("identity_attributes", json!(attributes))
        .json(
            "oauth_providers",
            crate::config::oauth::providers_json(config),
        );
    if let Some(user) = ctx.user() {
        form = form.json("user", ctx.user_payload(user, false)?);
    }
    Ok(Reply::Form(form).into_response())
}

/// The form refused: JSON clients get every error on its field; browsers get an unsafe `next`
/// as a form-level error (Flask-Security flashes it), and the form again without that value.
fn refused(
    security: &Security,
    host: Option<&str>,
    query_next: Option<&str>,
    input: &mut FormInput,
    errors: FieldErrors,
) -> Reply {
    let values = json!({
        "email": input.values().get("email").cloned().unwrap_or(Value::Null),
        "username": input.values().get("username").cloned().unwrap_or(Value::Null),
    });
    let remember = input.flag("remember").unwrap_or(false);
    let next =
        query_next.filter(|n| crate::redirect::safe_next(security.config(), host, n).is_ok());
    let form = Form::new(TEMPLATE)
        .values(values)
        .page(context! { next => next, remember => remember });
    if errors.has("next") {
        let shown = FieldErrors::single("", security.msg("INVALID_REDIRECT", &[]));
        return Reply::done(Json::invalid(&errors), Html::Form(form.errors(shown)));
    }
    Reply::Invalid(form.errors(errors))
}

/// Signs in with an email or username and a password.
#[utoipa::path(post, path = "/login", tag = "login", request_body = LoginBody,
    params(crate::web::openapi::IncludeAuthToken),
    responses((status = 200, description = "Signed in, or the second factor is needed.", body = crate::web::openapi::SignInAnswer)))]
async fn post_login(
    ctx: AuthContext,
    query: Query<LoginQuery>,
    input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let signed_in = sign_in(ctx, query, input).await;
    if let Some(metrics) = security.metrics() {
        let outcome = match &signed_in {
            Ok((_, outcome)) => *outcome,
            Err(Rejection::Limited(_)) => LoginOutcome::Limited,
            Err(Rejection::Failed(error)) if error.kind() == crate::ErrorKind::Unavailable => {
                LoginOutcome::Unavailable
            }
            Err(_) => LoginOutcome::Error,
        };
        metrics.observe_login(outcome);
    }
    signed_in.map(|(response, _)| response)
}

/// `POST /login`'s work, and how it ended (for the metrics).
async fn sign_in(
    ctx: AuthContext,
    Query(query): Query<LoginQuery>,
    mut input: FormInput,
) -> Result<(Response, LoginOutcome), Rejection> {
    crate::web::rate_limit::check_login(&ctx).await?;
    let security = ctx.security().clone();
    let host = ctx.host.clone();
    let answer_refused = |input: &mut FormInput, errors| {
        refused(
            &security,
            host.as_deref(),
            query.next.as_deref(),
            input,
            errors,
        )
        .into_response()
    };
    let form = match validate(&security, host.as_deref(), &mut input, query.next.clone()) {
        Ok(form) => form,
        Err(errors) => {
            // An incomplete form checked no password: it is no failed attempt.
            crate::web::rate_limit::undo_login(&ctx).await?;
            return Ok((answer_refused(&mut input, errors), LoginOutcome::Invalid));
        }
    };
    let signed_in = check_sign_in(
        &security,
        form.identity_field,
        &form.identity,
        &form.password,
    )
    .await?;
    // Only failures use the per-address limit up: a right password takes its hit back.
    if matches!(signed_in, SignIn::Ready(_) | SignIn::SecondFactor(_)) {
        crate::web::rate_limit::undo_login(&ctx).await?;
    }
    match signed_in {
        SignIn::Limited(limited) => {
            crate::features::unlock::offer(&ctx, &form.identity);
            Err(limited.into())
        }
        SignIn::Refused(errors) => {
            record_failed(&ctx, &form.identity).await?;
            Ok((answer_refused(&mut input, errors), LoginOutcome::Failed))
        }
        // The second step and a completed sign-in answer as the two-factor flow does (shared
        // with `/tf-validate`), so they come back as responses.
        SignIn::SecondFactor(user) => Ok((
            crate::features::two_factor::begin_login_reply(
                &ctx,
                &user,
                form.remember,
                form.next,
                crate::activity::SignInMethod::Password,
            )
            .await?
            .into_response(),
            LoginOutcome::SecondFactor,
        )),
        SignIn::Ready(user) => Ok((
            crate::web::auth::finish_login(
                &ctx,
                &user,
                form.remember,
                form.next,
                crate::activity::SignInMethod::Password,
            )
            .await?,
            LoginOutcome::Success,
        )),
    }
}

/// Records a refused sign-in in the activity log of the account `identity` names, if any (an
/// unknown identity has no log; the answer is the same either way).
async fn record_failed(ctx: &AuthContext, identity: &str) -> crate::Result<()> {
    if let Some(user) = ctx
        .security()
        .datastore()
        .user_by_identity(identity.trim())
        .await?
    {
        crate::web::activity::sign_in_failed(ctx, user.id).await?;
    }
    Ok(())
}
