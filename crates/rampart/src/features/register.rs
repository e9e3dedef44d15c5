//! Registration (`GET|POST /register`), Flask-Security's `register` view.
//!
//! Flow: validate (email, optional username, password policy, confirmation) → duplicate checks
//! (case-insensitive) → hash on the pool → create the user with `SECURITY_DEFAULT_ROLES` and the
//! app's extra rows in one transaction → `welcome` mail (with the confirmation link when
//! `SECURITY_CONFIRMABLE`) → without confirmation, the user is signed in at once.
//!
//! With `SECURITY_RETURN_GENERIC_RESPONSES` (default) an already registered email gets the same
//! answer as a new one, and the owner of that address is mailed instead (`welcome_existing`).
//!
//! Without axum (CLI, tests): [`validate`] then [`register_user`].
//!
//! Config: `SECURITY_REGISTERABLE`, `SECURITY_REGISTER_URL`, `SECURITY_SEND_REGISTER_EMAIL`,
//! `SECURITY_POST_REGISTER_VIEW`, `SECURITY_USERNAME_*`, `SECURITY_PASSWORD_LENGTH_MIN`.
//! Template: `security/register_user.html`. Mails: `welcome`, `welcome_existing`,
//! `welcome_existing_username`.

use axum::Router;
use axum::routing::get;
use minijinja::context;
use serde_json::{Map, Value};

use crate::config::SecurityConfig;
use crate::datastore::DatastoreError;
use crate::model::{NewUser, User};
use crate::web::context::AuthContext;
use crate::web::forms::{
    FieldErrors, FormInput, canonical_email, new_password_errors, username_errors,
};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::notify::user_context;
use crate::web::rejection::Rejection;
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.register.url),
        get(get_register).post(post_register),
    )
}

/// A validated registration.
#[derive(Debug)]
pub struct ValidRegister {
    /// The email, in its canonical spelling ([`crate::identity::normalize_email`]).
    pub email: String,
    /// The username, if given, in its canonical spelling
    /// ([`crate::Datastore::username_key`]).
    pub username: Option<String>,
    /// The password (NFKD-normalised by the hasher).
    pub password: String,
}

/// What registering did.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived outcome value; boxing would only add an allocation"
)]
pub enum RegisterOutcome {
    /// A new account.
    Created(User),
    /// The email or username already belongs to an account (only with generic responses; the
    /// owner was mailed).
    Existing,
}

/// Validates registration input, including duplicate checks. With generic responses, duplicates
/// are not errors: they are reported by [`register_user`] as [`RegisterOutcome::Existing`].
/// `Ok(Err(errors))` holds the form's errors.
///
/// # Errors
///
/// The datastore's error.
pub async fn validate(
    security: &Security,
    input: &mut FormInput,
) -> crate::Result<Result<ValidRegister, FieldErrors>> {
    let config = security.config();
    let mut email = input
        .text("email")
        .map(|e| e.trim().to_owned())
        .unwrap_or_default();
    let mut username = if config.username.enabled {
        input
            .text("username")
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
    } else {
        None
    };
    let password = input.text("password");
    let confirm = input.text("password_confirm");
    let mut errors = input.take_errors();
    if !errors.has("email") {
        match canonical_email(security, &email) {
            Err(message) => errors.add("email", message),
            Ok(canonical) => {
                email = canonical;
                if !config.return_generic_responses
                    && security.datastore().user_by_email(&email).await?.is_some()
                {
                    errors.add(
                        "email",
                        security.msg("EMAIL_ALREADY_ASSOCIATED", &[("email", &email)]),
                    );
                }
            }
        }
    }
    match &mut username {
        Some(name) => {
            if let Some(message) = username_errors(security, name) {
                errors.add("username", message);
            } else {
                // Checked as typed (as Flask-Security), kept in its canonical spelling.
                *name = security.datastore().username_key(name);
                if !config.return_generic_responses
                    && security.datastore().user_by_username(name).await?.is_some()
                {
                    errors.add(
                        "username",
                        security.msg("USERNAME_ALREADY_ASSOCIATED", &[("username", name)]),
                    );
                }
            }
        }
        None if config.username.enabled && config.username.required && !errors.has("username") => {
            errors.add("username", security.msg("USERNAME_NOT_PROVIDED", &[]));
        }
        None => {}
    }
    new_password_errors(
        security,
        &mut errors,
        password.as_deref(),
        confirm.as_deref(),
        "password",
        "password_confirm",
    );
    for check in security.register_checks() {
        check(input, &mut errors);
    }
    if let Err(errors) = errors.into_result() {
        return Ok(Err(errors));
    }
    Ok(Ok(ValidRegister {
        email,
        username,
        password: password.unwrap_or_default(),
    }))
}

/// Creates the account and sends the welcome mail (with the confirmation link if confirmable).
/// `link` turns a path into an absolute URL. Signing the new user in is the caller's (the
/// handler does when no confirmation is needed).
///
/// # Errors
///
/// The datastore's, the hasher's or the mailer's error.
pub async fn register_user(
    security: &Security,
    form: ValidRegister,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<RegisterOutcome> {
    let config = security.config();
    let datastore = security.datastore();
    // Duplicates (checked again at insert time by unique indexes).
    let existing_email = datastore.user_by_email(&form.email).await?;
    let existing_username = match &form.username {
        Some(name) => datastore.user_by_username(name).await?,
        None => None,
    };
    if existing_email.is_some() || existing_username.is_some() {
        // Spend the hashing time anyway so timing does not tell.
        let _ = security.hasher().hash(&form.password).await?;
        notify_existing(
            security,
            &form,
            existing_email.as_ref(),
            existing_username.as_ref(),
            link,
        )?;
        return Ok(RegisterOutcome::Existing);
    }
    let hash = security.hasher().hash(&form.password).await?;
    let now = security.now_naive();
    let new_user = NewUser {
        email: form.email.clone(),
        username: form.username.clone(),
        password_hash: Some(hash),
        active: true,
        confirmed_at: None,
        roles: config.register.default_roles.clone(),
    };
    let user = match datastore
        .create_user(
            &new_user,
            &crate::model::new_uniquifier(),
            now,
            security.user_created_sql(),
        )
        .await
    {
        Ok(user) => user,
        Err(DatastoreError::Conflict(_)) => return Ok(RegisterOutcome::Existing),
        Err(other) => return Err(other.into()),
    };
    if config.register.send_email {
        let confirmation_link = if config.confirm.enabled {
            Some(link(&crate::features::confirm::confirmation_path(
                security, &user,
            )?))
        } else {
            None
        };
        crate::web::notify::send(
            security,
            "welcome",
            &user.email,
            context! { user => user_context(&user), confirmation_link => confirmation_link, app_name => config.app_name },
        )?;
    }
    Ok(RegisterOutcome::Created(user))
}

fn notify_existing(
    security: &Security,
    form: &ValidRegister,
    by_email: Option<&User>,
    by_username: Option<&User>,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<()> {
    let config = security.config();
    let recovery_link = config
        .recover
        .enabled
        .then(|| link(&config.url(&config.recover.url)));
    let login_link = link(&config.url(&config.login.url));
    if let Some(user) = by_email {
        crate::web::notify::send(
            security,
            "welcome_existing",
            &user.email,
            context! { user => user_context(user), recovery_link => recovery_link, login_link => login_link, app_name => config.app_name },
        )?;
    } else if let Some(user) = by_username {
        // The address typed is new, but the username is taken: tell the person who typed it.
        crate::web::notify::send(
            security,
            "welcome_existing_username",
            &form.email,
            context! { user => user_context(user), email => form.email, username => form.username, login_link => login_link, app_name => config.app_name },
        )?;
    }
    Ok(())
}

const TEMPLATE: &str = "security/register_user.html";

/// The sign-up form.
#[utoipa::path(
    get,
    path = "/register",
    tag = "register",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer))
)]
async fn get_register(ctx: AuthContext) -> Reply {
    match ctx.user() {
        // A signed-in browser has nothing to register; a JSON client still gets the form.
        Some(_) => Reply::done(
            Json::base(),
            Html::redirect(ctx.security().config().login.post_view.clone()),
        ),
        None => Reply::Form(Form::new(TEMPLATE)),
    }
}

/// Creates an account (a confirmation mail is sent when confirmation is on).
#[utoipa::path(
    post,
    path = "/register",
    tag = "register",
    request_body = RegisterBody,
    responses((status = 200, description = "Created (or, with generic responses, the same answer for an address already taken).", body = crate::web::openapi::UserAnswer))
)]
async fn post_register(ctx: AuthContext, mut input: FormInput) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let form = match validate(&security, &mut input).await? {
        Ok(form) => form,
        Err(errors) => {
            // What was typed, for the form again: never the passwords or the CSRF token.
            let values: serde_json::Map<String, Value> = input
                .values()
                .iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "password" | "password_confirm" | crate::web::csrf::FORM_FIELD
                    )
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            return Ok(Reply::Invalid(
                Form::new(TEMPLATE)
                    .values(Value::Object(values))
                    .errors(errors),
            ));
        }
    };
    let email = form.email.clone();
    crate::web::rate_limit::check_mail(&ctx, &email).await?;
    let outcome = register_user(&security, form, &|path| ctx.external_url(path)).await?;
    let mut json = Map::new();
    if let RegisterOutcome::Created(user) = &outcome
        && (!config.confirm.enabled || config.confirm.login_without_confirmation)
    {
        let csrf = crate::web::auth::login_user_with(
            &ctx,
            user,
            false,
            crate::activity::SignInMethod::Registration,
        )
        .await?;
        json.insert("csrf_token".into(), Value::String(csrf));
    }
    if let RegisterOutcome::Created(user) = &outcome
        && !config.return_generic_responses
    {
        let auth_user = crate::web::context::AuthUser {
            roles: security.datastore().user_roles(user.id).await?,
            user: user.clone(),
            method: crate::AuthMethod::Session,
        };
        json.insert("user".into(), ctx.user_payload(&auth_user, false)?);
    }
    let html = if let Some(view) = &config.register.post_view {
        Html::redirect(view.clone())
    } else if config.confirm.enabled {
        let login = config.url(&config.login.url);
        Html::Message {
            title: "Check your email".to_owned(),
            message: security.msg("CONFIRM_REGISTRATION", &[("email", &email)]),
            link: Some((login, "Go to sign in".to_owned())),
        }
    } else {
        Html::redirect(config.login.post_view.clone())
    };
    Ok(Reply::done(Json::Base(json), html))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_register, post_register))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/register", config.url(&config.register.url))],
    )
}

/// The body of `POST /register`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct RegisterBody {
    /// The email address.
    email: String,
    /// The password.
    password: String,
    /// The password again (required when `SECURITY_PASSWORD_CONFIRM_REQUIRED`).
    #[schema(nullable = false)]
    password_confirm: Option<String>,
    /// A username (with `SECURITY_USERNAME_ENABLE`).
    #[schema(nullable = false)]
    username: Option<String>,
}
