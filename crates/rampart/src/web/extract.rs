//! Extractors that guard handlers: [`CurrentUser`], `Option<CurrentUser>`, [`RequireRole`],
//! [`RequirePermission`]. A failed check answers 401/403 in the envelope for JSON clients and
//! redirects browsers to the login page with a safe `next`.

use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::web::context::{AuthContext, AuthUser};

/// Why a guard refused a request.
#[derive(Debug)]
pub enum AuthRejection {
    /// Not signed in: 401 (JSON) or a redirect to the login page.
    Unauthenticated(Box<AuthContext>),
    /// Signed in, but lacking a role or permission: 403.
    Forbidden(Box<AuthContext>),
    /// Only for anonymous users (e.g. the login page for a signed-in user).
    AnonymousRequired(Box<AuthContext>),
    /// The security layer is missing (a wiring bug).
    MissingLayer,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Unauthenticated(ctx) => unauthenticated(&ctx),
            Self::Forbidden(ctx) => {
                let message = ctx.security.msg("UNAUTHORIZED", &[]);
                crate::web::templates::render_error_for(&ctx, StatusCode::FORBIDDEN, &message)
            }
            Self::AnonymousRequired(ctx) => {
                if ctx.is_json {
                    let message = ctx.security.msg("ANONYMOUS_USER_REQUIRED", &[]);
                    crate::web::reply::json_errors(StatusCode::BAD_REQUEST, &[message], None)
                } else {
                    crate::web::reply::redirect(&ctx.security.config().login.post_view)
                }
            }
            Self::MissingLayer => {
                tracing::error!("AuthContext missing: wrap the app in `security.layer()`");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

fn unauthenticated(ctx: &AuthContext) -> Response {
    let security = &ctx.security;
    if ctx.is_json {
        let message = security.msg("UNAUTHENTICATED", &[]);
        return crate::web::reply::json_errors(StatusCode::UNAUTHORIZED, &[message], None);
    }
    let config = security.config();
    // `/` may stay as is in a query value (RFC 3986), as Flask-Security sends it: `?next=/api/me`.
    let next = url::form_urlencoded::byte_serialize(ctx.path_and_query.as_bytes())
        .collect::<String>()
        .replace("%2F", "/");
    crate::web::reply::redirect(&format!("{}?next={next}", config.url(&config.login.url)))
}

pub(crate) fn context(parts: &Parts) -> Result<AuthContext, AuthRejection> {
    parts
        .extensions
        .get::<AuthContext>()
        .cloned()
        .ok_or(AuthRejection::MissingLayer)
}

/// The signed-in user (by session, auth token or remember-me cookie). Rejects anonymous requests.
///
/// ```no_run
/// use rampart::CurrentUser;
/// async fn home(user: CurrentUser) -> String {
///     format!("Hello {}", user.user.email)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct CurrentUser(pub Arc<AuthUser>);

impl Deref for CurrentUser {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = context(parts)?;
        match ctx.user.clone() {
            Some(user) => Ok(Self(user)),
            None => Err(AuthRejection::Unauthenticated(Box::new(ctx))),
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(context(parts)?.user.map(Self))
    }
}

/// The signed-in user, who proved the password recently (`SECURITY_FRESHNESS`, Flask-Security's
/// `auth_required(within=…)`): for sensitive changes (the email address, two-factor, recovery
/// codes), so a stolen session cookie alone cannot take the account over. Anonymous requests
/// are refused as by [`CurrentUser`]; a stale session gets
/// [`Rejection::Reauthenticate`](crate::web::rejection::Rejection::Reauthenticate) (a JSON `401`
/// with `reauth_required`, or a redirect to `SECURITY_VERIFY_URL` that comes back).
///
/// ```no_run
/// use rampart::FreshUser;
/// async fn close_account(user: FreshUser) -> String {
///     format!("Goodbye {}", user.user.email)
/// }
/// ```
#[derive(Clone, Debug)]
pub struct FreshUser(pub CurrentUser);

impl Deref for FreshUser {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for FreshUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let ctx = context(parts).map_err(IntoResponse::into_response)?;
        match crate::web::auth::is_fresh(&ctx).await {
            Ok(true) => Ok(Self(user)),
            Ok(false) => Err(crate::web::rejection::Rejection::Reauthenticate.into_response()),
            Err(error) => Err(error.into_response()),
        }
    }
}

/// A role name known at compile time, for [`RequireRole`].
///
/// ```
/// struct Admin;
/// impl rampart::RoleName for Admin { const NAME: &'static str = "Admin"; }
/// ```
pub trait RoleName: Send + Sync + 'static {
    /// The role's name.
    const NAME: &'static str;
}

/// A permission name known at compile time, for [`RequirePermission`].
pub trait PermissionName: Send + Sync + 'static {
    /// The permission's name.
    const NAME: &'static str;
}

/// The signed-in user, who must have role `R` (401 if anonymous, 403 otherwise).
pub struct RequireRole<R: RoleName>(pub CurrentUser, PhantomData<R>);

impl<R: RoleName> Deref for RequireRole<R> {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.0
    }
}

impl<S: Send + Sync, R: RoleName> FromRequestParts<S> for RequireRole<R> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if user.has_role(R::NAME) {
            Ok(Self(user, PhantomData))
        } else {
            Err(AuthRejection::Forbidden(Box::new(context(parts)?)))
        }
    }
}

/// The signed-in user, who must have permission `P` through a role.
pub struct RequirePermission<P: PermissionName>(pub CurrentUser, PhantomData<P>);

impl<P: PermissionName> Deref for RequirePermission<P> {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.0
    }
}

impl<S: Send + Sync, P: PermissionName> FromRequestParts<S> for RequirePermission<P> {
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let user = <CurrentUser as FromRequestParts<S>>::from_request_parts(parts, state).await?;
        if user.has_permission(P::NAME) {
            Ok(Self(user, PhantomData))
        } else {
            Err(AuthRejection::Forbidden(Box::new(context(parts)?)))
        }
    }
}
