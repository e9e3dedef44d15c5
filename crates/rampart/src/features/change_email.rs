//! Change of email address (`GET|POST SECURITY_CHANGE_EMAIL_URL`, default `/change-email`, and
//! the link `GET /change-email/<token>`), Flask-Security's `CHANGE_EMAIL` feature. On when
//! `SECURITY_CHANGE_EMAIL` is set.
//!
//! A signed-in user asks for a new address; a link goes to that address, and the change happens
//! only when it is opened, within `SECURITY_CHANGE_EMAIL_WITHIN` (default 2 hours). The token
//! carries the user's uniquifier, a keyed digest of the *current* address and the new one, so it
//! works once (after the change the digest no longer matches) and dies with a password change
//! (which rotates the uniquifier). Opening it needs no session.
//!
//! Every request counts against a per-user limit (`SECURITY_MAIL_RATE_LIMIT`, 10 per 10 minutes
//! when that is off) and the per-address mail limit. With `SECURITY_RETURN_GENERIC_RESPONSES`
//! (default) an address another account has gets the same answer as a free one, and that
//! account's owner is mailed `change_email_existing` instead of the link.
//!
//! Template: `security/change_email.html`. Mails: `change_email_instructions` (to the new
//! address), `change_email_existing` (to the owner of a taken one) and, once changed,
//! `change_email_notice` (to the old one).

use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use serde_json::{Value, json};

use crate::activity::ActivityEvent;
use crate::config::SecurityConfig;
use crate::datastore::DatastoreError;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::extract::{CurrentUser, FreshUser};
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

const SALT: &str = "change-email-salt";

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    let base = config.url(&config.change_email.url);
    Router::new()
        .route(&base, get(get_change_email).post(post_change_email))
        .route(&format!("{base}/{{token}}"), get(get_confirm_change))
}

/// The token's payload: uniquifier, digest of the current address, new address.
type Payload = (String, String, String);

/// The path of a link that changes `user`'s address to `new_email` (`/change-email/<token>`).
pub(crate) fn change_email_path(
    security: &Security,
    user: &User,
    new_email: &str,
) -> crate::Result<String> {
    let payload: Payload = (
        user.fs_uniquifier.clone(),
        security.signer().hash_data(&user.email),
        new_email.to_owned(),
    );
    let token = security
        .signer()
        .sign(SALT, &payload, security.clock().now())?;
    let config = security.config();
    Ok(format!("{}/{token}", config.url(&config.change_email.url)))
}

/// Checks the form of a requested new address for `user` (a valid address, not the current
/// one); `Err` holds the field errors. Whether another account has it is for
/// [`request_change`] to find out.
pub(crate) async fn validate(
    security: &Security,
    user: &User,
    input: &mut FormInput,
) -> crate::Result<Result<String, FieldErrors>> {
    let (email, mut errors) = crate::web::forms::read_email_field(security, input);
    if errors.is_empty() && email.eq_ignore_ascii_case(&user.email) {
        errors.add(
            "email",
            security.msg("EMAIL_ALREADY_ASSOCIATED", &[("email", &email)]),
        );
    }
    Ok(errors.into_result().map(|()| email))
}

/// Asks to change `user`'s address to `new_email`, without HTTP (the form's step, for CLIs, jobs
/// and tests): the confirmation link (`link` turns its path into an absolute URL) goes to that
/// address, and [`confirm_change`] makes the change once it is opened. `new_email` must be a
/// valid address in its canonical spelling ([`normalize_email`](crate::normalize_email)), not the
/// user's current one. When another account has it, with `SECURITY_RETURN_GENERIC_RESPONSES` the
/// outcome looks the same to the requester and that account's owner is mailed
/// `change_email_existing` instead; without, `Err` says the address is taken.
///
/// # Errors
///
/// The datastore's, the signer's or the mailer's error.
pub async fn request_change(
    security: &Security,
    user: &User,
    new_email: &str,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<Result<(), FieldErrors>> {
    let config = security.config();
    let Some(owner) = security.datastore().user_by_email(new_email).await? else {
        send_instructions(security, user, new_email, link)?;
        return Ok(Ok(()));
    };
    if !config.return_generic_responses {
        return Ok(Err(FieldErrors::single(
            "email",
            security.msg("EMAIL_ALREADY_ASSOCIATED", &[("email", new_email)]),
        )));
    }
    // The same work as for a free address (a token signed, a mail rendered and handed over).
    let _same_work = change_email_path(security, user, new_email)?;
    let recovery_link = config
        .recover
        .enabled
        .then(|| link(&config.url(&config.recover.url)));
    crate::web::notify::send(
        security,
        "change_email_existing",
        &owner.email,
        context! {
            user => crate::web::notify::user_context(&owner),
            recovery_link => recovery_link,
            app_name => config.app_name,
        },
    )?;
    Ok(Ok(()))
}

/// Mails the confirmation link for `new_email` to that address.
pub(crate) fn send_instructions(
    security: &Security,
    user: &User,
    new_email: &str,
    link: &(dyn Fn(&str) -> String + Sync),
) -> crate::Result<()> {
    let config = security.config();
    let link = link(&change_email_path(security, user, new_email)?);
    crate::web::notify::send(
        security,
        "change_email_instructions",
        new_email,
        context! {
            user => crate::web::notify::user_context(user),
            link => link,
            old_email => user.email,
            new_email => new_email,
            expire_text => crate::messages::describe_duration(config.change_email.within),
            app_name => config.app_name,
        },
    )
}

/// What a change-of-email link turned out to be.
#[derive(Debug)]
pub enum ChangeEmailOutcome {
    /// The address is changed; the user as they are now.
    Changed(Box<User>),
    /// Genuine but too old.
    Expired,
    /// Another account took the new address since the link was sent.
    Taken(String),
    /// Forged, used, or for an account whose address or uniquifier changed since.
    Invalid,
}

/// Checks a change-of-email token and changes the address (`email_changed` is recorded in the
/// same transaction).
pub async fn confirm_change(security: &Security, token: &str) -> crate::Result<ChangeEmailOutcome> {
    confirm_change_from(security, token, None).await
}

/// [`confirm_change`] from a request's `device` (recorded with `email_changed`).
async fn confirm_change_from(
    security: &Security,
    token: &str,
    device: Option<crate::activity::Device>,
) -> crate::Result<ChangeEmailOutcome> {
    let signer = security.signer();
    let within = security.config().change_email.within;
    let Ok(((uniquifier, digest, new_email), expired)) =
        signer.verify_link::<Payload>(SALT, token, within, security.clock().now())
    else {
        return Ok(ChangeEmailOutcome::Invalid);
    };
    let datastore = security.datastore();
    // A deactivated account changes nothing, even with a link mailed before.
    let Some(user) = datastore
        .user_by_uniquifier(&uniquifier)
        .await?
        .filter(|u| u.active)
    else {
        return Ok(ChangeEmailOutcome::Invalid);
    };
    if !signer.matches_hash_data(&user.email, &digest).await {
        return Ok(ChangeEmailOutcome::Invalid);
    }
    if expired {
        return Ok(ChangeEmailOutcome::Expired);
    }
    let activity = crate::activity::NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: ActivityEvent::EmailChanged,
        device,
    };
    let now = security.now_naive();
    match datastore
        .set_email_recorded(user.id, &new_email, now, &activity)
        .await
    {
        Ok(id) => crate::web::activity::broadcast(security, &activity, id, now),
        Err(DatastoreError::Conflict(_)) => return Ok(ChangeEmailOutcome::Taken(new_email)),
        Err(error) => return Err(error.into()),
    }
    // The old address hears of it, so a takeover does not go unnoticed.
    crate::web::notify::send(
        security,
        "change_email_notice",
        &user.email,
        context! {
            user => crate::web::notify::user_context(&user),
            old_email => user.email,
            new_email => new_email,
            app_name => security.config().app_name,
        },
    )?;
    let mut changed = user;
    changed.email = new_email;
    Ok(ChangeEmailOutcome::Changed(Box::new(changed)))
}

const TEMPLATE: &str = "security/change_email.html";

/// The form, showing the current address; JSON clients get it with their user.
fn change_email_form(ctx: &AuthContext, user: &CurrentUser) -> crate::Result<Form> {
    Ok(Form::new(TEMPLATE)
        .page(context! { current_email => user.user.email })
        .json("current_email", Value::String(user.user.email.clone()))
        .json("user", ctx.user_payload(user, false)?))
}

/// The change-email form.
#[utoipa::path(
    get,
    path = "/change-email",
    tag = "change-email",
    responses((status = 200, description = "The form.", body = ChangeEmailAnswer)),
    security(("signed_in" = []))
)]
async fn get_change_email(ctx: AuthContext, user: FreshUser) -> Result<Reply, Rejection> {
    Ok(Reply::Form(change_email_form(&ctx, &user.0)?))
}

/// Mails a confirmation link to the new address (the address changes when it is followed).
#[utoipa::path(
    post,
    path = "/change-email",
    tag = "change-email",
    request_body = crate::web::openapi::EmailBody,
    responses((status = 200, description = "Sent.", body = ChangeEmailAnswer)),
    security(("signed_in" = []))
)]
async fn post_change_email(
    ctx: AuthContext,
    FreshUser(user): FreshUser,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let invalid = |errors: FieldErrors, email: &str| -> Result<Reply, Rejection> {
        Ok(Reply::Invalid(
            change_email_form(&ctx, &user)?
                .values(json!({ "email": email }))
                .errors(errors),
        ))
    };
    let new_email = match validate(&security, &user.user, &mut input).await? {
        Ok(email) => email,
        Err(errors) => {
            let email = input.text("email").unwrap_or_default();
            return invalid(errors, &email);
        }
    };
    // Every request counts, per user and per address, before anything is looked up.
    crate::web::rate_limit::count_change_email(&ctx, user.user.id).await?;
    crate::web::rate_limit::check_mail(&ctx, &new_email).await?;
    if let Err(errors) = request_change(&security, &user.user, &new_email, &|path| {
        ctx.external_url(path)
    })
    .await?
    {
        return invalid(errors, &new_email);
    }
    let config = security.config();
    let form = change_email_form(&ctx, &user)?;
    Ok(Reply::done(
        Json::Base(form.into_json()),
        Html::flash_redirect(
            "success",
            security.msg("CHANGE_EMAIL_SENT", &[("email", &new_email)]),
            config.url(&config.change_email.url),
        ),
    ))
}

async fn get_confirm_change(
    ctx: AuthContext,
    Path(token): Path<String>,
) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    let error_view = config
        .change_email
        .error_view
        .clone()
        .unwrap_or_else(|| config.url(&config.change_email.url));
    let device = crate::web::activity::device(&ctx);
    let outcome = confirm_change_from(&security, &token, Some(device)).await?;
    let (category, message, target) = match outcome {
        ChangeEmailOutcome::Changed(_) => (
            "success",
            security.msg("CHANGE_EMAIL_CONFIRMED", &[]),
            config
                .change_email
                .post_view
                .clone()
                .unwrap_or_else(|| config.login.post_view.clone()),
        ),
        ChangeEmailOutcome::Expired => {
            let within = crate::messages::describe_duration(config.change_email.within);
            (
                "error",
                security.msg("CHANGE_EMAIL_EXPIRED", &[("within", &within)]),
                error_view,
            )
        }
        ChangeEmailOutcome::Taken(email) => (
            "error",
            security.msg("EMAIL_ALREADY_ASSOCIATED", &[("email", &email)]),
            error_view,
        ),
        ChangeEmailOutcome::Invalid => ("error", security.msg("API_ERROR", &[]), error_view),
    };
    ctx.flash(category, &message).await?;
    Ok(crate::web::reply::redirect(&target))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_change_email, post_change_email))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/change-email", config.url(&config.change_email.url))],
    )
}

/// The answer of `GET` and `POST /change-email`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer the handlers render")]
pub(crate) struct ChangeEmailAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// The address in use (until the new one is confirmed).
    current_email: String,
    /// The user.
    user: crate::web::openapi::UserPayload,
}
