//! A sign-in waiting for its second factor: the first factor was right (a password, a code, a
//! passkey that did not verify the user, an identity provider), and the session holds who is
//! waiting (with `remember`, `next` and how the first factor was given) until a one-time code (`features::two_factor`) or a
//! recovery code (`features::recovery_codes`) proves the second factor and finishes the sign-in
//! here.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::activity::SignInMethod;
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::forms::FieldErrors;
use crate::web::rejection::Rejection;

const PENDING_USER: &str = "tf_user";
const PENDING_REMEMBER: &str = "tf_remember";
const PENDING_NEXT: &str = "tf_next";
const PENDING_SINCE: &str = "tf_since";
const PENDING_RESCUED: &str = "tf_rescued";
const PENDING_METHOD: &str = "tf_first_factor";

/// How long a login may wait for its second factor.
const PENDING_WITHIN: Duration = Duration::from_secs(10 * 60);

/// Puts `user`, whose first factor (given by `method`) was right, into a fresh session id as
/// waiting for a second factor, with the `remember` and `next` of the sign-in; nobody is signed
/// in yet.
pub(crate) async fn start(
    ctx: &AuthContext,
    user: &User,
    remember: bool,
    next: Option<String>,
    method: SignInMethod,
) -> crate::Result<()> {
    if ctx.session.id().is_some() {
        ctx.session.cycle_id().await?;
    }
    ctx.session
        .insert(PENDING_USER, &user.fs_uniquifier)
        .await?;
    ctx.session.insert(PENDING_REMEMBER, remember).await?;
    ctx.session.insert(PENDING_NEXT, &next).await?;
    ctx.session.insert(PENDING_METHOD, method.as_str()).await?;
    ctx.session
        .insert(PENDING_SINCE, ctx.security().unix_now())
        .await?;
    Ok(())
}

/// The user whose login waits for a second factor, if any (a stale one is forgotten).
pub(crate) async fn pending_user(ctx: &AuthContext) -> crate::Result<Option<User>> {
    let Some(uniquifier) = ctx.session.get::<String>(PENDING_USER).await? else {
        return Ok(None);
    };
    let since: u64 = ctx.session.get(PENDING_SINCE).await?.unwrap_or(0);
    let fresh = ctx.security().unix_now().saturating_sub(since) <= PENDING_WITHIN.as_secs();
    let user = if fresh {
        ctx.security()
            .datastore()
            .user_by_uniquifier(&uniquifier)
            .await?
            .filter(|u| u.active)
    } else {
        None
    };
    let user = match user {
        Some(user) if second_factor_needed(ctx.security(), &user).await? => Some(user),
        _ => None,
    };
    if user.is_none() {
        forget(ctx).await?;
    }
    Ok(user)
}

/// Whether signing `user` in needs a second factor: a two-factor method
/// ([`crate::model::second_factor_required`]), or a WebAuthn key registered as `secondary`
/// (`SECURITY_WEBAUTHN` and `SECURITY_WAN_ALLOW_AS_MULTI_FACTOR`, with `SECURITY_TWO_FACTOR`).
/// Deleting a user's last secondary key so ends two-factor sign-in where it was their only
/// second factor.
pub(crate) async fn second_factor_needed(
    security: &crate::web::security::Security,
    user: &User,
) -> crate::Result<bool> {
    let config = security.config();
    if crate::model::second_factor_required(config, user) {
        return Ok(true);
    }
    webauthn_second_factor(security, user).await
}

/// Whether `user`'s second factor is a WebAuthn `secondary` key (and that counts as one).
pub(crate) async fn webauthn_second_factor(
    security: &crate::web::security::Security,
    user: &User,
) -> crate::Result<bool> {
    let config = security.config();
    if !(config.two_factor.enabled
        && config.webauthn.enabled
        && config.webauthn.allow_as_multi_factor)
    {
        return Ok(false);
    }
    Ok(security
        .datastore()
        .has_webauthn_usage(user.id, "secondary")
        .await?)
}

/// Records that the waiting sign-in was rescued: its code came by mail.
pub(crate) async fn mark_rescued(ctx: &AuthContext) -> crate::Result<()> {
    ctx.session.insert(PENDING_RESCUED, true).await?;
    Ok(())
}

/// Whether the waiting sign-in was rescued ([`mark_rescued`]).
pub(crate) async fn rescued(ctx: &AuthContext) -> crate::Result<bool> {
    Ok(ctx.session.get(PENDING_RESCUED).await?.unwrap_or(false))
}

async fn forget(ctx: &AuthContext) -> crate::Result<()> {
    for key in [
        PENDING_USER,
        PENDING_REMEMBER,
        PENDING_NEXT,
        PENDING_SINCE,
        PENDING_RESCUED,
        PENDING_METHOD,
    ] {
        ctx.session.remove_value(key).await?;
    }
    Ok(())
}

/// Signs in the user whose second factor was just proven (a code, or a recovery code): the
/// pending state goes, the login completes as the first factor alone would have (`remember`,
/// `next`), recorded with the first factor's method (a sign-in begun with a provider is a
/// provider sign-in, and so on).
pub(crate) async fn complete_login(ctx: &AuthContext, user: &User) -> crate::Result<Response> {
    let remember: bool = ctx.session.get(PENDING_REMEMBER).await?.unwrap_or(false);
    let next: Option<String> = ctx.session.get(PENDING_NEXT).await?.flatten();
    let method = first_factor(ctx).await?;
    forget(ctx).await?;
    crate::web::auth::finish_login(ctx, user, remember, next, method).await
}

/// How the waiting sign-in's first factor was given (a password when the session does not
/// say, as before this was kept).
async fn first_factor(ctx: &AuthContext) -> crate::Result<SignInMethod> {
    let name: Option<String> = ctx.session.get(PENDING_METHOD).await?;
    Ok(name
        .as_deref()
        .and_then(SignInMethod::from_name)
        .unwrap_or(SignInMethod::Password))
}

/// The user whose sign-in waits for a second factor, as an extractor: a request without one
/// (none started, or it went stale) is refused with
/// [`Rejection::NothingPending`](crate::web::rejection::Rejection::NothingPending).
#[derive(Clone, Debug)]
pub(crate) struct PendingSignIn(pub(crate) User);

impl<S: Send + Sync> FromRequestParts<S> for PendingSignIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = crate::web::extract::context(parts).map_err(IntoResponse::into_response)?;
        match pending_user(&ctx).await {
            Ok(Some(user)) => Ok(Self(user)),
            Ok(None) => Err(Rejection::NothingPending.into_response()),
            Err(error) => Err(error.into_response()),
        }
    }
}

/// No login or setup in progress: a 400 envelope for JSON (`field_errors[""]`, as
/// Flask-Security), the sign-in page with the message for browsers.
pub(crate) async fn permission_denied(ctx: &AuthContext) -> crate::Result<Response> {
    if ctx.is_json() {
        let message = ctx.security().msg("TWO_FACTOR_PERMISSION_DENIED", &[]);
        return Ok(crate::web::reply::json_errors(
            StatusCode::BAD_REQUEST,
            &[],
            Some(&FieldErrors::single("", message)),
        ));
    }
    html_permission_denied(ctx).await
}

/// A browser without a login or setup in progress goes to the sign-in page with the message.
async fn html_permission_denied(ctx: &AuthContext) -> crate::Result<Response> {
    let security = ctx.security();
    ctx.flash("error", &security.msg("TWO_FACTOR_PERMISSION_DENIED", &[]))
        .await?;
    let config = security.config();
    Ok(crate::web::reply::redirect(&config.url(&config.login.url)))
}
