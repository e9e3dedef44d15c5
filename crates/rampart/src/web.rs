//! The HTTP runtime, between the core (no axum) and the features: the security handle and its
//! builder, the layer that loads the session or token and checks CSRF, the request context,
//! sign-in and sign-out, the session store, rate limits, forms, replies, templates, mail notices,
//! extractors and guards. Imports run only downward: `web` uses the core and never a feature.

pub(crate) mod activity;
pub(crate) mod auth;
pub(crate) mod auth_token;
pub(crate) mod context;
pub(crate) mod csrf;
pub(crate) mod email_form;
pub(crate) mod extract;
pub(crate) mod forms;
pub(crate) mod guard;
pub(crate) mod health;
pub(crate) mod layer;
pub(crate) mod mailed_code;
pub(crate) mod metrics;
pub(crate) mod negotiate;
pub(crate) mod notify;
pub(crate) mod openapi;
pub(crate) mod page_cache;
pub(crate) mod pending_login;
pub(crate) mod rate_limit;
pub(crate) mod rejection;
pub(crate) mod remember;
pub(crate) mod reply;
pub(crate) mod security;
pub(crate) mod server;
pub(crate) mod session_list;
pub(crate) mod session_store;
pub(crate) mod templates;
