//! Signing up through a provider when a username is required (`SECURITY_USERNAME_ENABLE` and
//! `SECURITY_USERNAME_REQUIRED`): the provider's verified person (provider, subject, email) is
//! kept in this browser's session — never sent to the client — for `SECURITY_OAUTH_WITHIN`,
//! and the person is asked for a username at `GET|POST <SECURITY_OAUTH_RESPONSE_URL>/<name>/username`
//! (sign-up's rules and messages). A valid free username makes the account (confirmed, the
//! default roles, an empty profile, the link; one transaction) and signs it in as any sign-up
//! through a provider; the pending person is used up then. A taken or invalid username is a
//! form error and writes nothing (the person may try another).

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::account::{self, Created};
use super::{login_page, refused};
use crate::config::{OauthConfig, OauthProvider, SecurityConfig};
use crate::web::context::AuthContext;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Reply};
use crate::web::rejection::Rejection;
use crate::web::security::Security;

const PENDING_KEY: &str = "_oauth_pending_signup";
const TEMPLATE: &str = "security/oauth_username.html";

/// A verified person of a provider waiting for their username.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    provider: String,
    subject: String,
    email: String,
    next: Option<String>,
    /// Unix seconds after which it is refused.
    expires: u64,
}

/// The username page of `provider`: `<SECURITY_OAUTH_RESPONSE_URL>/<name>/username`.
pub(crate) fn username_path(config: &SecurityConfig, provider: &str) -> String {
    config.url(&format!(
        "{}/{provider}/username",
        config.oauth.response_url
    ))
}

/// Keeps the verified person in the session (replacing any other waiting one) and answers: a
/// browser goes to the username page, a JSON client gets a 400 envelope saying a username is
/// needed (`field_errors.username`) and where to post it (`username_url`).
pub(crate) async fn ask_username(
    ctx: &AuthContext,
    provider: &OauthProvider,
    subject: &str,
    email: &str,
    next: Option<String>,
) -> crate::Result<Response> {
    let security = ctx.security();
    let config = security.config();
    let pending = Pending {
        provider: provider.name.clone(),
        subject: subject.to_owned(),
        email: email.to_owned(),
        next,
        expires: security
            .unix_now()
            .saturating_add(config.oauth.within.as_secs()),
    };
    ctx.session.insert(PENDING_KEY, &pending).await?;
    let title = OauthConfig::title(&provider.name);
    let message = security.msg("OAUTH_USERNAME_REQUIRED", &[("provider", &title)]);
    let url = username_path(config, &provider.name);
    if ctx.is_json() {
        let errors = FieldErrors::single("username", message);
        return Ok(crate::web::reply::json(
            StatusCode::BAD_REQUEST,
            json!({
                "errors": errors.all_messages(),
                "field_errors": errors.to_json(),
                "username_url": url,
                "email": email,
                "provider": provider.name,
            }),
        ));
    }
    ctx.flash("info", &message).await?;
    Ok(crate::web::reply::redirect(&url))
}

/// The person waiting for a username with `provider` in this session, if not expired.
async fn pending(ctx: &AuthContext, provider: &str) -> crate::Result<Option<Pending>> {
    if ctx.session.id().is_none() {
        return Ok(None);
    }
    let now = ctx.security().unix_now();
    let found: Option<Pending> = ctx.session.get(PENDING_KEY).await?;
    Ok(found.filter(|p| p.provider == provider && p.expires >= now))
}

/// The form, with what the page shows besides.
fn form(security: &Security, pending: &Pending) -> Form {
    let config = security.config();
    Form::new(TEMPLATE)
        .page(context! {
            provider_title => OauthConfig::title(&pending.provider),
            email => pending.email,
            action => username_path(config, &pending.provider),
        })
        .json("email", Value::String(pending.email.clone()))
        .json("provider", Value::String(pending.provider.clone()))
}

/// Refused: nobody waits (expired, used, another browser); back to the sign-in page.
fn nobody_waits(security: &Security) -> Response {
    refused(
        security.msg("OAUTH_STATE_INVALID", &[]),
        login_page(security.config()),
    )
}

/// The username form of a sign-up through a provider.
#[utoipa::path(
    get,
    path = "/login/oauthresponse/{name}/username",
    tag = "oauth",
    params(("name" = String, Path, description = "The name from the link or the earlier answer.")),
    responses((status = 200, description = "The form, with the provider and the email address.", body = crate::web::openapi::CsrfAnswer))
)]
pub(super) async fn get_username(
    ctx: AuthContext,
    Path(name): Path<String>,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let Some(provider) = security.config().oauth.provider(&name) else {
        return Ok(super::not_found());
    };
    if ctx.user().is_some() {
        return Ok(crate::web::reply::redirect(
            &security.config().login.post_view,
        ));
    }
    let Some(pending) = pending(&ctx, &provider.name).await? else {
        return Ok(nobody_waits(&security));
    };
    Ok(Reply::Form(form(&security, &pending)).into_response())
}

/// Finishes a sign-up through a provider with a username.
#[utoipa::path(
    post,
    path = "/login/oauthresponse/{name}/username",
    tag = "oauth",
    request_body = SignupUsernameBody,
    params(("name" = String, Path, description = "The name from the link or the earlier answer.")),
    responses((status = 200, description = "Created and signed in.", body = crate::web::openapi::CsrfAnswer))
)]
pub(super) async fn post_username(
    ctx: AuthContext,
    Path(name): Path<String>,
    mut input: FormInput,
) -> Result<Response, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let Some(provider) = config.oauth.provider(&name) else {
        return Ok(super::not_found());
    };
    if ctx.user().is_some() {
        return Ok(crate::web::reply::redirect(&config.login.post_view));
    }
    let Some(pending) = pending(&ctx, &provider.name).await? else {
        return Ok(nobody_waits(&security));
    };
    let typed = input
        .text("username")
        .map(|u| u.trim().to_owned())
        .unwrap_or_default();
    let mut errors = input.take_errors();
    let mut username = String::new();
    if !errors.has("username") {
        if typed.is_empty() {
            errors.add("username", security.msg("USERNAME_NOT_PROVIDED", &[]));
        } else if let Some(message) = crate::web::forms::username_errors(&security, &typed) {
            errors.add("username", message);
        } else {
            // Checked as typed (as sign-up), kept in its canonical spelling.
            username = security.datastore().username_key(&typed);
            if security
                .datastore()
                .user_by_username(&username)
                .await?
                .is_some()
            {
                errors.add("username", taken(&security, &username));
            }
        }
    }
    let invalid = |errors: FieldErrors| {
        Ok(Reply::Invalid(
            form(&security, &pending)
                .values(json!({ "username": typed }))
                .errors(errors),
        )
        .into_response())
    };
    if let Err(errors) = errors.into_result() {
        return invalid(errors);
    }
    let created = account::create(
        &security,
        &provider.name,
        &pending.subject,
        &pending.email,
        Some(&username),
    )
    .await?;
    let user = match created {
        Created::User(user) => user,
        Created::UsernameTaken => {
            return invalid(FieldErrors::single("username", taken(&security, &username)));
        }
        Created::Refused(message) => {
            ctx.session.remove_value(PENDING_KEY).await?;
            return Ok(refused(message, login_page(config)));
        }
    };
    // Used up: the account is made.
    ctx.session.remove_value(PENDING_KEY).await?;
    Ok(super::sign_in(&ctx, &user, pending.next).await?)
}

fn taken(security: &Security, username: &str) -> String {
    security.msg("USERNAME_ALREADY_ASSOCIATED", &[("username", username)])
}

/// The body of `POST /login/oauthresponse/{name}/username`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct SignupUsernameBody {
    /// The username.
    username: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_username_page_is_under_the_response_url() {
        let config = SecurityConfig::default();
        assert_eq!(
            username_path(&config, "acme"),
            "/login/oauthresponse/acme/username"
        );
    }
}
