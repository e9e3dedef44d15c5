//! `/tf-rescue`: a sign-in waiting for its second factor whose code does not come. `{"help_setup":
//! "email"}` mails the user a code (which then lives as long as mailed codes do); `"help"` asks a
//! person at the site (`SECURITY_TWO_FACTOR_RESCUE_MAIL`) to help.

use minijinja::context;
use serde_json::{Map, Value, json};

use super::{EMAIL, SIGN_IN_CODE, send_code, verify_form};
use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Html, Json, Reply};
use crate::web::pending_login::{self, PendingSignIn};
use crate::web::rejection::{Limited, Rejection};
use crate::web::security::Security;

/// A way out for a sign-in whose second factor is at hand no more ([`rescue`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rescue {
    /// Mail the user a fresh code (`help_setup: "email"`).
    Email,
    /// Mail `SECURITY_TWO_FACTOR_RESCUE_MAIL`: a person at the site has to help
    /// (`help_setup: "help"`).
    Help,
}

/// What a [`rescue`] came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum RescueOutcome {
    /// The mail is on its way.
    Sent,
    /// Too many attempts for this user: nothing was mailed (see
    /// [`super::CodeVerdict::Limited`]).
    Limited(Limited),
}

/// Rescues `user`'s waiting sign-in `how`. Every mail counts as an attempt at a code, so rescue
/// cannot flood the user's mailbox.
///
/// # Errors
///
/// The datastore's errors; rendering the mail fails.
pub async fn rescue(security: &Security, user: &User, how: Rescue) -> crate::Result<RescueOutcome> {
    if let Err(limited) = crate::web::rate_limit::count_code(security, user.id).await? {
        return Ok(RescueOutcome::Limited(limited));
    }
    let config = security.config();
    match how {
        Rescue::Help => crate::web::notify::send(
            security,
            "two_factor_rescue",
            &config.two_factor.rescue_mail,
            context! { user => crate::web::notify::user_context(user), app_name => config.app_name },
        )?,
        Rescue::Email => send_code(security, user, &user.email, SIGN_IN_CODE).await?,
    }
    Ok(RescueOutcome::Sent)
}

fn recovery_options(config: &SecurityConfig) -> Value {
    let url = config.url(&config.two_factor.rescue_url);
    if config.two_factor.enabled_methods.iter().any(|m| m == EMAIL) {
        json!({ "email": url, "help": url })
    } else {
        json!({ "help": url })
    }
}

/// JSON clients get the ways out (`recovery_options`); browsers go back to the code page (which
/// shows them).
fn with_recovery_options(config: &SecurityConfig, html: Html) -> Reply {
    let mut json = Map::new();
    json.insert("recovery_options".into(), recovery_options(config));
    Reply::done(Json::Base(json), html)
}

/// The ways out of a sign-in whose second factor is lost.
#[utoipa::path(
    get,
    path = "/tf-rescue",
    tag = "tf",
    responses((status = 200, description = "The options.", body = RescueAnswer))
)]
pub(super) async fn get_rescue(ctx: AuthContext, _pending: PendingSignIn) -> Reply {
    let config = ctx.security().config();
    with_recovery_options(
        config,
        Html::redirect(config.url(&config.two_factor.token_validation_url)),
    )
}

/// Mails a code for the sign-in in progress (`help_setup: email`), or asks for help.
#[utoipa::path(
    post,
    path = "/tf-rescue",
    tag = "tf",
    request_body = RescueBody,
    responses((status = 200, description = "Sent.", body = RescueAnswer))
)]
pub(super) async fn post_rescue(
    ctx: AuthContext,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    // Looked up here, not by the `PendingSignIn` extractor: the form is read first, as it was.
    let user = pending_login::pending_user(&ctx)
        .await?
        .ok_or(Rejection::NothingPending)?;
    let choice = input.text("help_setup").unwrap_or_default();
    let email_allowed = config.two_factor.enabled_methods.iter().any(|m| m == EMAIL);
    let how = match choice.as_str() {
        "help" => Rescue::Help,
        EMAIL if email_allowed => Rescue::Email,
        _ => {
            let errors = FieldErrors::single(
                "help_setup",
                security.msg("TWO_FACTOR_METHOD_NOT_AVAILABLE", &[]),
            );
            let form = verify_form(config, user.tf_primary_method.clone(), true).errors(errors);
            return Ok(Reply::Invalid(form));
        }
    };
    match rescue(&security, &user, how).await? {
        RescueOutcome::Sent => {}
        RescueOutcome::Limited(limited) => return Err(Rejection::Limited(limited)),
    }
    if how == Rescue::Email {
        pending_login::mark_rescued(&ctx).await?;
    }
    Ok(with_recovery_options(
        config,
        Html::flash_redirect(
            "info",
            security.msg("CODE_HAS_BEEN_SENT", &[]),
            config.url(&config.two_factor.token_validation_url),
        ),
    ))
}

/// The answer of `/tf-rescue`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer the handlers render")]
pub(crate) struct RescueAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// The options and where to ask for them.
    #[schema(value_type = Object)]
    recovery_options: serde_json::Value,
}

/// The body of `POST /tf-rescue`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct RescueBody {
    /// `email` or `help`.
    help_setup: String,
}
