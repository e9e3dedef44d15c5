//! Freshness (`SECURITY_FRESHNESS`), Flask-Security's re-authentication: sensitive changes (the
//! email address, two-factor, recovery codes) need a password proven recently, so a stolen
//! session cookie alone cannot take the account over. A stale session is sent to
//! `SECURITY_VERIFY_URL` (default `/verify`) to enter the password again; JSON clients get
//! `401 {"errors": ["You must reauthenticate to access this endpoint"], "reauth_required": true}`.
//!
//! Handlers that need a fresh password take the [`FreshUser`](crate::web::extract::FreshUser)
//! extractor. Auth tokens count as fresh: they live `SECURITY_TOKEN_MAX_AGE` (15 minutes by default), far
//! less than the freshness window. Template: `security/verify_user.html`.

use axum::Router;
use axum::extract::Query;
use axum::routing::get;
use minijinja::context;

use crate::config::SecurityConfig;
use crate::web::context::AuthContext;
use crate::web::extract::CurrentUser;
use crate::web::forms::{FieldErrors, FormInput};
use crate::web::negotiate::{Form, Html, Json, Reply};
use crate::web::rate_limit::CurrentPassword;
use crate::web::rejection::Rejection;
use crate::web::security::Security;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(
        &config.url(&config.verify.url),
        get(get_verify).post(post_verify),
    )
}

#[derive(serde::Deserialize)]
struct VerifyQuery {
    next: Option<String>,
}

/// The verify form, offering to come back to `next` when that is a safe place.
fn verify_form(ctx: &AuthContext, next: Option<&str>) -> Form {
    let config = ctx.security().config();
    let next = next.filter(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).is_ok());
    Form::new("security/verify_user.html").page(context! { next => next })
}

/// The re-authentication form.
#[utoipa::path(
    get,
    path = "/verify",
    tag = "verify",
    responses((status = 200, description = "The form.", body = crate::web::openapi::CsrfAnswer)),
    security(("signed_in" = []))
)]
async fn get_verify(
    ctx: AuthContext,
    _user: CurrentUser,
    Query(query): Query<VerifyQuery>,
) -> Reply {
    Reply::Form(verify_form(&ctx, query.next.as_deref()))
}

/// Confirms the password again (`SECURITY_FRESHNESS`).
#[utoipa::path(
    post,
    path = "/verify",
    tag = "verify",
    request_body = VerifyBody,
    responses((status = 200, description = "Confirmed.", body = crate::web::openapi::UserAnswer)),
    security(("signed_in" = []))
)]
async fn post_verify(
    ctx: AuthContext,
    user: CurrentUser,
    Query(query): Query<VerifyQuery>,
    mut input: FormInput,
) -> Result<Reply, Rejection> {
    let security = ctx.security().clone();
    let config = security.config();
    let password = input.text("password").unwrap_or_default();
    let valid = !password.is_empty()
        && crate::web::rate_limit::check_current_password(&ctx, &user.user, &password).await?
            == CurrentPassword::Valid;
    if !valid {
        let message = if password.is_empty() {
            security.msg("PASSWORD_NOT_PROVIDED", &[])
        } else {
            security.msg("INVALID_PASSWORD", &[])
        };
        let errors = FieldErrors::single("password", message);
        return Ok(Reply::Invalid(
            verify_form(&ctx, query.next.as_deref()).errors(errors),
        ));
    }
    crate::web::auth::mark_fresh(&ctx).await?;
    let mut response = serde_json::Map::new();
    response.insert("user".into(), ctx.user_payload(&user, false)?);
    let target = query
        .next
        .as_deref()
        .and_then(|n| crate::redirect::safe_next(config, ctx.host.as_deref(), n).ok())
        .unwrap_or_else(|| config.login.post_view.clone());
    Ok(Reply::done(
        Json::Base(response),
        Html::flash_redirect(
            "success",
            security.msg("REAUTHENTICATION_SUCCESSFUL", &[]),
            target,
        ),
    ))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_verify, post_verify))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/verify", config.url(&config.verify.url))],
    )
}

/// The body of `POST /verify`.
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the fields the handler reads from the form or JSON body"
)]
pub(crate) struct VerifyBody {
    /// The password.
    password: String,
}
