//! The HTTP runtime, between the core (no axum) and the features: the security handle and its
//! builder, the layer that loads the session or token and checks CSRF, the request context,
//! sign-in and sign-out, the session store, rate limits, forms, replies, templates, mail notices,
//! extractors and guards. Imports run only downward: `web` uses the core and never a feature.

pub mod auth;
pub mod auth_token;
pub mod context;
pub mod csrf;
pub mod extract;
pub mod forms;
pub mod guard;
pub mod layer;
pub mod notify;
pub(crate) mod pending_login;
pub mod rate_limit;
pub(crate) mod remember;
pub mod reply;
pub mod security;
pub mod server;
pub mod session_store;
pub mod templates;
