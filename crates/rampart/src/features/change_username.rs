//! Change of username (`GET|POST SECURITY_CHANGE_USERNAME_URL`, default `/change-username`),
//! Flask-Security's `CHANGE_USERNAME` feature. On when `SECURITY_CHANGE_USERNAME` is set.
//!
//! A signed-in user with a fresh sign-in (`SECURITY_FRESHNESS`, see [`crate::web::extract::FreshUser`])
//! gives a new username; it follows the sign-up rules (length, characters, look-alikes) and is
//! stored in its canonical spelling, and must be free. The change is recorded
//! (`username_changed`, in the same transaction) and, with `SECURITY_SEND_USERNAME_CHANGE_EMAIL` (default), the account's
//! address hears of it.
//!
//! JSON: `GET` answers `{"current_username", "user", "csrf_token"}`; `POST {"username": …}`
//! answers 200 with the user as they are now, or 400 with the field errors.
//!
//! Template: `security/change_username.html`. Mail: `change_username_notice`.

use axum::Router;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::activity::{ActivityEvent, Device, NewActivity};
use crate::config::SecurityConfig;
use crate::datastore::DatastoreError;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::{CurrentUser, FreshUser};
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.change_username.url),
        get(get_change_username).post(post_change_username),
    )
}

/// Checks a requested username as sign-up does (length, characters, look-alikes); `Ok` holds
/// it in its canonical spelling, or `None` for an empty one when usernames are optional and
/// `current` is set (the username is taken away, as in Flask-Security); `Err` holds the message
/// for the `username` field.
fn check_username(
    security: &Security,
    typed: &str,
    current: Option<&str>,
) -> Result<Option<String>, String> {
    let typed = typed.trim();
    if typed.is_empty() {
        if current.is_some() && !security.config().username.required {
            return Ok(None);
        }
        return Err(security.msg("USERNAME_NOT_PROVIDED", &[]));
    }
    if let Some(message) = crate::web::forms::username_errors(security, typed) {
        return Err(message);
    }
    Ok(Some(security.datastore().username_key(typed)))
}

/// Changes `user`'s username to `new_username` (as typed), without HTTP (for CLIs, jobs and
/// tests): the sign-up rules apply, the name must be free (the user's own included; an empty one
/// takes the username away unless `SECURITY_USERNAME_REQUIRED`), the change
/// is recorded (`username_changed`, by the user, no device) in the same transaction, and the
/// `change_username_notice` is mailed when `SECURITY_SEND_USERNAME_CHANGE_EMAIL` is on.
/// `Ok(Ok(user))` is the user as they are now; `Ok(Err(_))` holds the field errors.
///
/// # Errors
///
/// The datastore's or the mail templates' error.
pub async fn change_username(
    security: &Security,
    user: &User,
    new_username: &str,
) -> crate::Result<Result<User, FieldErrors>> {
    change_username_from(security, user, new_username, None).await
}

/// [`change_username`] from a request's `device`.
pub(crate) async fn change_username_from(
    security: &Security,
    user: &User,
    new_username: &str,
    device: Option<Device>,
) -> crate::Result<Result<User, FieldErrors>> {
    let username = match check_username(security, new_username, user.username.as_deref()) {
        Ok(username) => username,
        Err(message) => return Ok(Err(FieldErrors::single("username", message))),
    };
    let taken = |name: &str| {
        FieldErrors::single(
            "username",
            security.msg("USERNAME_ALREADY_ASSOCIATED", &[("username", name)]),
        )
    };
    let datastore = security.datastore();
    if let Some(name) = &username
        && datastore.user_by_username(name).await?.is_some()
    {
        return Ok(Err(taken(name)));
    }
    let activity = NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: ActivityEvent::UsernameChanged,
        device,
    };
    let now = security.now_naive();
    // The unique index decides a race between two requests for the same name.
    let id = match datastore
        .set_username_recorded(user.id, username.as_deref(), now, &activity)
        .await
    {
        Ok(id) => id,
        Err(DatastoreError::Conflict(_)) => {
            return Ok(Err(taken(username.as_deref().unwrap_or_default())));
        }
        Err(error) => return Err(error.into()),
    };
    crate::web::activity::broadcast(security, &activity, id, now);
    let mut changed = user.clone();
    changed.username.clone_from(&username);
    let config = security.config();
    if config.change_username.send_email {
        crate::web::notify::send(
            security,
            "change_username_notice",
            &user.email,
            context! {
                user => crate::web::notify::user_context(&changed),
                old_username => user.username,
                new_username => username,
                app_name => config.app_name,
            },
        )?;
    }
    Ok(Ok(changed))
}

const TEMPLATE: &str = "security/change_username.html";

/// The form, showing the current username; JSON clients get it with their user.
fn change_username_form(ctx: &AuthContext, user: &CurrentUser) -> crate::Result<Form> {
    Ok(Form::new(TEMPLATE)
        .page(context! { current_username => user.user.username })
        .json(
            "current_username",
            user.user
                .username
                .clone()
                .map_or(Value::Null, Value::String),
        )
        .json("user", ctx.user_payload(user, false)?))
}

/// The change-username form.
#[utoipa::path(
    get,
    path = "/change-username",
    tag = "change-username",
    responses((status = 200, description = "The form.", body = crate::web::openapi::UserAnswer)),
    security(("signed_in" = []))
)]
async fn get_change_username(ctx: AuthContext, user: FreshUser) -> Result<Reply, Rejection> {
    Ok(Reply::Form(change_username_form(&ctx, &user.0)?))
}

/// Changes the username.
#[utoipa::path(
    post,
    path = "/change-username",
    tag = "change-username",
    request_body = UsernameBody,
    responses((status = 200, description = "Changed.", body = crate::web::openapi::UserAnswer)),
    security(("signed_in" = []))
)]
async fn post_change_username(
    ctx: AuthContext,
    FreshUser(user): FreshUser,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let typed = input.text("username").unwrap_or_default();
    let errors = input.take_errors();
    let outcome = if errors.is_empty() {
        let device = crate::web::activity::device(&ctx);
        change_username_from(&security, &user.user, &typed, Some(device)).await?
    } else {
        Err(errors)
    };
    let changed = match outcome {
        Ok(changed) => changed,
        Err(errors) => {
            return Ok(Reply::Invalid(
                change_username_form(&ctx, &user)?
                    .values(json!({ "username": typed }))
                    .errors(errors),
            ));
        }
    };
    let config = security.config();
    let mut payload = ctx.user_payload(&user, false)?;
    if let Some(object) = payload.as_object_mut() {
        object.insert(
            "username".to_owned(),
            changed.username.clone().map_or(Value::Null, Value::String),
        );
    }
    let form = Form::new(TEMPLATE).json("user", payload);
    Ok(Reply::done(
        Json::Base(form.into_json()),
        Html::flash_redirect(
            "success",
            security.msg("USERNAME_CHANGE", &[]),
            config
                .change_username
                .post_view
                .clone()
                .unwrap_or_else(|| config.login.post_view.clone()),
        ),
    ))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_change_username, post_change_username))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/change-username", config.url(&config.change_username.url))],
    )
}

/// The body of `POST /change-username`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct UsernameBody {
    /// The new username.
    username: String,
}
