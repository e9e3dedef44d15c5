//! Guard layers for routes, like Flask-Security's decorators: [`auth_required`],
//! [`roles_required`], [`roles_accepted`], [`permissions_required`], [`permissions_accepted`],
//! [`anonymous_required`].
//!
//! ```
//! use axum::{Router, routing::get};
//! use rampart::{roles_required, permissions_accepted};
//! let app: Router = Router::new()
//!     .route("/admin", get(|| async { "admin" }).route_layer(roles_required(["Admin"])))
//!     .route("/write", get(|| async { "w" }).route_layer(permissions_accepted(["user-write", "admin-write"])));
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use tower::{Layer, Service};

use crate::web::context::{AuthContext, AuthMethod, AuthUser};
use crate::web::extract::AuthRejection;

#[derive(Debug)]
enum Requirement {
    Authenticated(Vec<AuthMethod>),
    AllRoles(Vec<String>),
    AnyRole(Vec<String>),
    AllPermissions(Vec<String>),
    AnyPermission(Vec<String>),
    Anonymous,
}

impl Requirement {
    fn allows(&self, user: &AuthUser) -> bool {
        match self {
            Self::Authenticated(methods) => methods.is_empty() || methods.contains(&user.method),
            Self::AllRoles(roles) => roles.iter().all(|r| user.has_role(r)),
            Self::AnyRole(roles) => roles.iter().any(|r| user.has_role(r)),
            Self::AllPermissions(perms) => perms.iter().all(|p| user.has_permission(p)),
            Self::AnyPermission(perms) => perms.iter().any(|p| user.has_permission(p)),
            Self::Anonymous => false,
        }
    }

    fn accepts_basic(&self) -> bool {
        matches!(self, Self::Authenticated(methods) if methods.contains(&AuthMethod::Basic))
    }
}

/// A route layer enforcing one requirement.
#[derive(Clone, Debug)]
pub struct GuardLayer {
    requirement: Arc<Requirement>,
}

fn names<I, T>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = T>,
    T: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

/// Requires a signed-in user, by session or token.
pub fn auth_required() -> GuardLayer {
    auth_required_with([AuthMethod::Session, AuthMethod::Token])
}

/// Requires a user authenticated by one of `methods` (`Basic` checks HTTP Basic credentials).
pub fn auth_required_with(methods: impl IntoIterator<Item = AuthMethod>) -> GuardLayer {
    GuardLayer {
        requirement: Arc::new(Requirement::Authenticated(methods.into_iter().collect())),
    }
}

/// Requires every one of `roles`.
pub fn roles_required<T: Into<String>>(roles: impl IntoIterator<Item = T>) -> GuardLayer {
    GuardLayer {
        requirement: Arc::new(Requirement::AllRoles(names(roles))),
    }
}

/// Requires at least one of `roles`.
pub fn roles_accepted<T: Into<String>>(roles: impl IntoIterator<Item = T>) -> GuardLayer {
    GuardLayer {
        requirement: Arc::new(Requirement::AnyRole(names(roles))),
    }
}

/// Requires every one of `permissions`.
pub fn permissions_required<T: Into<String>>(
    permissions: impl IntoIterator<Item = T>,
) -> GuardLayer {
    GuardLayer {
        requirement: Arc::new(Requirement::AllPermissions(names(permissions))),
    }
}

/// Requires at least one of `permissions`.
pub fn permissions_accepted<T: Into<String>>(
    permissions: impl IntoIterator<Item = T>,
) -> GuardLayer {
    GuardLayer {
        requirement: Arc::new(Requirement::AnyPermission(names(permissions))),
    }
}

/// Only for anonymous users (signed-in browsers are sent to the post-login view).
pub fn anonymous_required() -> GuardLayer {
    GuardLayer {
        requirement: Arc::new(Requirement::Anonymous),
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            requirement: self.requirement.clone(),
            inner,
        }
    }
}

/// The service of [`GuardLayer`].
#[derive(Clone, Debug)]
pub struct Guard<S> {
    requirement: Arc<Requirement>,
    inner: S,
}

impl<S> Service<Request<Body>> for Guard<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let requirement = self.requirement.clone();
        Box::pin(async move {
            let Some(mut ctx) = req.extensions().get::<AuthContext>().cloned() else {
                return Ok(AuthRejection::MissingLayer.into_response());
            };
            if matches!(*requirement, Requirement::Anonymous) {
                if ctx.user.is_some() {
                    return Ok(AuthRejection::AnonymousRequired(Box::new(ctx)).into_response());
                }
                return inner.call(req).await;
            }
            if ctx.user.is_none() && requirement.accepts_basic() {
                let authorization = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                match basic_user(&ctx, authorization.as_deref()).await {
                    Ok(BasicOutcome::User(user)) => {
                        ctx.user = Some(user);
                        req.extensions_mut().insert(ctx.clone());
                    }
                    Ok(BasicOutcome::Limited(response)) => return Ok(response),
                    Ok(BasicOutcome::Refused) => {
                        let mut response =
                            AuthRejection::Unauthenticated(Box::new(ctx)).into_response();
                        response.headers_mut().insert(
                            header::WWW_AUTHENTICATE,
                            HeaderValue::from_static("Basic realm=\"Login Required\""),
                        );
                        return Ok(response);
                    }
                    Err(error) => return Ok(error.into_response()),
                }
            }
            let Some(user) = ctx.user.clone() else {
                return Ok(AuthRejection::Unauthenticated(Box::new(ctx)).into_response());
            };
            if !requirement.allows(&user) {
                let rejection = if matches!(*requirement, Requirement::Authenticated(_)) {
                    AuthRejection::Unauthenticated(Box::new(ctx))
                } else {
                    AuthRejection::Forbidden(Box::new(ctx))
                };
                return Ok(rejection.into_response());
            }
            inner.call(req).await
        })
    }
}

/// What HTTP Basic credentials came to.
enum BasicOutcome {
    /// Valid credentials of an active user.
    User(Arc<AuthUser>),
    /// Missing, malformed or wrong credentials.
    Refused,
    /// Too many failures from this address or for this account (a 429 answer).
    Limited(Response),
}

/// Checks HTTP Basic credentials (email or username, and password). Every attempt counts against
/// the login rate limits before the password is checked; a success takes its hits back (every
/// Basic request authenticates), so only failures use the limits up.
async fn basic_user(ctx: &AuthContext, authorization: Option<&str>) -> crate::Result<BasicOutcome> {
    let Some(encoded) = authorization.and_then(|v| v.strip_prefix("Basic ")) else {
        return Ok(BasicOutcome::Refused);
    };
    let Some((identity, password)) = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| {
            text.split_once(':')
                .map(|(a, b)| (a.to_owned(), b.to_owned()))
        })
    else {
        return Ok(BasicOutcome::Refused);
    };
    let security = &ctx.security;
    let account = security
        .datastore()
        .user_by_identity(identity.trim())
        .await?;
    // Counted before the password is checked (atomically), taken back on success.
    if let Some(response) =
        crate::web::rate_limit::count_basic(ctx, account.as_ref(), &identity).await?
    {
        return Ok(BasicOutcome::Limited(response));
    }
    let crate::web::auth::PasswordCheck::Valid(user) =
        crate::web::auth::check_user_password(security, account, &password).await?
    else {
        return Ok(BasicOutcome::Refused);
    };
    crate::web::rate_limit::undo_basic(ctx, &user).await?;
    // HTTP Basic cannot carry a second factor.
    if crate::model::second_factor_required(security.config(), &user) {
        return Ok(BasicOutcome::Refused);
    }
    Ok(
        match crate::web::auth::load_user(security, &user.fs_uniquifier, AuthMethod::Basic).await? {
            Some(user) => BasicOutcome::User(user),
            None => BasicOutcome::Refused,
        },
    )
}
