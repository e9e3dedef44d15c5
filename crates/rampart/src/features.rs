//! One module per Flask-Security feature, each with its routes, forms, templates and mails, and
//! the one place that assembles their routers.
//!
//! A feature imports the core and [`crate::web`]; it reaches another feature only through a named
//! hand-off: register → confirm, login → two_factor, login → unlock, webauthn → two_factor (a passkey
//! sign-in that still needs the second factor), unified_signin → two_factor (a password or mailed
//! code sign-in that still needs it), oauth → two_factor (a provider's sign-in of a user with a
//! second factor), and any → verify.

pub(crate) mod activity;
pub(crate) mod change;
pub(crate) mod change_email;
pub(crate) mod change_username;
pub(crate) mod confirm;
pub(crate) mod export;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod oauth;
pub(crate) mod recover;
pub(crate) mod recovery_codes;
pub(crate) mod register;
pub(crate) mod sessions;
pub(crate) mod two_factor;
pub(crate) mod unified_signin;
pub(crate) mod unlock;
pub(crate) mod username_recovery;
pub(crate) mod verify;
pub(crate) mod webauthn;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::config::SecurityConfig;
use crate::web::security::Security;

/// A mounted feature: its router and the OpenAPI description of its JSON operations.
type Part = (
    fn(&SecurityConfig) -> Router<Security>,
    fn(&SecurityConfig) -> utoipa::openapi::OpenApi,
);

/// A feature with no JSON operation (links opened from mails).
fn no_operations(_config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApiBuilder::new().build()
}

/// The features the configuration enables, in mounting order.
fn mounted(config: &SecurityConfig) -> Vec<Part> {
    let mut parts: Vec<Part> = Vec::new();
    // SECURITY_US_SIGNIN_REPLACES_LOGIN: the login URL serves the unified sign-in.
    if !(config.unified_signin.enabled && config.unified_signin.signin_replaces_login) {
        parts.push((login::router, login::api));
    }
    parts.extend([
        (
            logout::router as fn(&SecurityConfig) -> Router<Security>,
            logout::api as fn(&SecurityConfig) -> utoipa::openapi::OpenApi,
        ),
        (verify::router, verify::api),
        (unlock::router, no_operations),
        (sessions::router, sessions::api),
        (activity::router, activity::api),
        (export::router, export::api),
    ]);
    if config.register.enabled {
        parts.push((register::router, register::api));
    }
    if config.confirm.enabled {
        parts.push((confirm::router, confirm::api));
    }
    if config.recover.enabled {
        parts.push((recover::router, recover::api));
    }
    if config.change.enabled {
        parts.push((change::router, change::api));
    }
    if config.change_email.enabled {
        parts.push((change_email::router, change_email::api));
    }
    if config.change_username.enabled {
        parts.push((change_username::router, change_username::api));
    }
    if config.username_recovery.enabled {
        parts.push((username_recovery::router, username_recovery::api));
    }
    if config.webauthn.enabled {
        parts.push((webauthn::router, webauthn::api));
    }
    if config.unified_signin.enabled {
        parts.push((unified_signin::router, unified_signin::api));
    }
    if config.oauth.enabled {
        parts.push((oauth::router, oauth::api));
    }
    if config.two_factor.enabled {
        parts.push((two_factor::router, two_factor::api));
        if config.recovery_codes.enabled {
            parts.push((recovery_codes::router, recovery_codes::api));
        }
    }
    parts
}

impl Security {
    /// The framework's routes (login, logout, register, confirm, reset, change), per the
    /// configuration, and `GET /openapi.json` with `SECURITY_OPENAPI`. Merge it into the app's
    /// router.
    pub fn router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let config = self.config();
        let mut router = Router::new();
        for (feature, _) in mounted(config) {
            router = router.merge(feature(config));
        }
        if config.openapi {
            let body: Arc<[u8]> = serde_json::to_vec(&self.openapi())
                .unwrap_or_default()
                .into();
            router = router.route(
                &config.url("/openapi.json"),
                get(move || {
                    let body = Arc::clone(&body);
                    async move {
                        (
                            [(
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("application/json"),
                            )],
                            body.to_vec(),
                        )
                            .into_response()
                    }
                }),
            );
        }
        router
            .layer(DefaultBodyLimit::max(config.max_content_length))
            .with_state(self.clone())
    }

    /// The OpenAPI 3.1 description of the JSON operations [`router`](Self::router) mounts
    /// (every enabled feature's, at its configured path), with Flask-Security's envelope, the
    /// error answers and the ways to authenticate; `GET /openapi.json` serves it when
    /// `SECURITY_OPENAPI` is on. See `docs/openapi.md`.
    pub fn openapi(&self) -> serde_json::Value {
        let config = self.config();
        let mut doc = utoipa::openapi::OpenApiBuilder::new().build();
        for (_, api) in mounted(config) {
            doc.merge(api(config));
        }
        crate::web::openapi::document(config, doc)
    }
}
