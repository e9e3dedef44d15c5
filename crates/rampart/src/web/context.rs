//! [`AuthContext`]: what the security layer learned about a request (format, session, user), put
//! in the request's extensions for extractors, guards and the framework's handlers.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use tower_sessions::Session;

use crate::model::{Role, User};
use crate::web::security::Security;

/// How the current user authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// The session cookie (after a login or a remember-me cookie).
    Session,
    /// An `Authentication-Token` header or `auth_token` query parameter.
    Token,
    /// HTTP Basic credentials.
    Basic,
}

impl AuthMethod {
    /// The Flask-Security name (`session`, `token`, `basic`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Token => "token",
            Self::Basic => "basic",
        }
    }
}

/// An authenticated user with their roles.
#[derive(Clone, Debug)]
pub struct AuthUser {
    /// The user row.
    pub user: User,
    /// Their roles, sorted by name.
    pub roles: Vec<Role>,
    /// How they authenticated on this request.
    pub method: AuthMethod,
}

impl AuthUser {
    /// Whether the user has the role `name`.
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.iter().any(|r| r.name == name)
    }

    /// Whether any of the user's roles grants `permission`.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.roles
            .iter()
            .any(|r| r.permissions.iter().any(|p| p == permission))
    }

    /// Role names, sorted.
    pub fn role_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.roles.iter().map(|r| r.name.clone()).collect();
        names.sort();
        names
    }

    /// Every permission the user's roles grant, sorted and without duplicates.
    pub fn permissions(&self) -> Vec<String> {
        let mut perms: Vec<String> = self
            .roles
            .iter()
            .flat_map(|r| r.permissions.iter().cloned())
            .collect();
        perms.sort();
        perms.dedup();
        perms
    }
}

/// Cookies to add to the response (set by flows such as login and logout).
#[derive(Clone, Debug, Default)]
pub(crate) struct ResponseCookies(Arc<Mutex<Vec<cookie::Cookie<'static>>>>);

impl ResponseCookies {
    pub(crate) fn add(&self, cookie: cookie::Cookie<'static>) {
        if let Ok(mut cookies) = self.0.lock() {
            cookies.retain(|c| c.name() != cookie.name());
            cookies.push(cookie);
        }
    }

    pub(crate) fn take(&self) -> Vec<cookie::Cookie<'static>> {
        self.0
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

/// Values an app adds to every page of a request (see [`AuthContext::set_page_values`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct PageValues(Arc<Mutex<Option<minijinja::Value>>>);

impl PageValues {
    fn set(&self, values: minijinja::Value) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(values);
        }
    }

    /// Whether the app set values for this request's pages.
    pub(crate) fn is_set(&self) -> bool {
        self.0.lock().is_ok_and(|slot| slot.is_some())
    }

    pub(crate) fn get(&self) -> minijinja::Value {
        self.0
            .lock()
            .ok()
            .and_then(|slot| slot.clone())
            .unwrap_or_else(|| minijinja::context! {})
    }
}

/// Per-request security state, found in the request's extensions (and as an extractor).
#[derive(Clone)]
pub struct AuthContext {
    pub(crate) security: Security,
    pub(crate) session: Session,
    pub(crate) user: Option<Arc<AuthUser>>,
    pub(crate) is_json: bool,
    pub(crate) client_ip: Option<IpAddr>,
    /// The request's `User-Agent` header, if any.
    pub(crate) user_agent: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) path_and_query: String,
    /// The request's remember-me cookie, if it sent one (not yet checked).
    pub(crate) remember_cookie: Option<String>,
    pub(crate) cookies: ResponseCookies,
    pub(crate) anonymous_csrf: crate::web::csrf::AnonymousSecret,
    pub(crate) csrf_signed: crate::web::csrf::SignedToken,
    pub(crate) page_values: PageValues,
}

impl std::fmt::Debug for AuthContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthContext")
            .field("user", &self.user.as_ref().map(|u| u.user.id))
            .field("is_json", &self.is_json)
            .finish_non_exhaustive()
    }
}

impl AuthContext {
    /// Adds `values` (a map) to every page this request renders, the framework's and the app's,
    /// error pages included: e.g. the signed-in user's picture and name for the header, loaded by
    /// a middleware inside the security layer. The page's own values win over them.
    pub fn set_page_values(&self, values: minijinja::Value) {
        self.page_values.set(values);
    }

    /// The framework handle.
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// The session (tower-sessions), loaded lazily.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The authenticated user, if any.
    pub fn user(&self) -> Option<&Arc<AuthUser>> {
        self.user.as_ref()
    }

    /// Whether the client asked for JSON (`Content-Type` or `Accept: application/json`).
    pub fn is_json(&self) -> bool {
        self.is_json
    }

    /// The client's address (after trusted proxies), if known.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// The request's device: client address, user agent, readable name ("Firefox on Linux").
    pub fn device(&self) -> crate::activity::Device {
        crate::web::activity::device(self)
    }

    /// The request's path and query (used for `next`).
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// An absolute URL for `path`: `SERVER_NAME` if configured, else the request's `Host`.
    pub fn external_url(&self, path: &str) -> String {
        let config = self.security.config();
        let host = config
            .server_name
            .clone()
            .or_else(|| self.host.clone())
            .unwrap_or_else(|| "localhost".into());
        format!("{}://{}{}", config.url_scheme, host, path)
    }

    /// The session's CSRF token (creating the session secret if needed), as sent in forms,
    /// `response.csrf_token` and the `XSRF-TOKEN` cookie.
    pub async fn csrf_token(&self) -> crate::Result<String> {
        crate::web::csrf::token(self).await
    }

    /// Whether `token` is this session's CSRF token. The security layer already checks every
    /// state-changing session request (form field or header); this is for handlers that read a
    /// token from somewhere else.
    pub async fn verify_csrf(&self, token: &str) -> bool {
        crate::web::csrf::verify(self, Some(token)).await.is_ok()
    }

    /// Queues a cookie for the response.
    pub(crate) fn set_cookie(&self, cookie: cookie::Cookie<'static>) {
        self.cookies.add(cookie);
    }

    /// Queues a flash message, shown on the next rendered page.
    pub async fn flash(&self, category: &str, message: &str) -> crate::Result<()> {
        let mut flashes: Vec<(String, String)> =
            self.session.get(FLASHES_KEY).await?.unwrap_or_default();
        flashes.push((category.to_owned(), message.to_owned()));
        self.session.insert(FLASHES_KEY, flashes).await?;
        Ok(())
    }

    /// Takes the queued flash messages.
    pub async fn take_flashes(&self) -> crate::Result<Vec<(String, String)>> {
        if self.session.id().is_none() && !self.session.is_modified() {
            return Ok(Vec::new());
        }
        Ok(self.session.remove(FLASHES_KEY).await?.unwrap_or_default())
    }

    /// Flask-Security's user payload: `email`, `username`, `uuid`, `roles`
    /// (+ `authentication_token` when asked).
    pub fn user_payload(&self, user: &AuthUser, with_token: bool) -> crate::Result<Value> {
        let authentication_token = if with_token {
            Some(crate::web::auth_token::issue(&self.security, &user.user)?)
        } else {
            None
        };
        let payload = crate::web::openapi::UserPayload {
            email: user.user.email.clone(),
            username: user.user.username.clone(),
            uuid: user.user.fs_uniquifier.clone(),
            roles: user.role_names(),
            authentication_token,
        };
        serde_json::to_value(payload)
            .map_err(|e| crate::Error::Internal(format!("user payload: {e}")))
    }

    /// A JSON response map with `csrf_token` filled in.
    pub async fn json_base(&self) -> crate::Result<Map<String, Value>> {
        let mut map = Map::new();
        map.insert("csrf_token".into(), Value::String(self.csrf_token().await?));
        Ok(map)
    }
}

pub(crate) const FLASHES_KEY: &str = "_flashes";

impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("AuthContext missing: wrap the app in `security.layer()`");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}
