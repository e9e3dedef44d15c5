//! # Rampart
//!
//! Flask-Security(-Too) for axum: sign-up, email confirmation, login with remember-me, logout,
//! password reset and change, roles and permissions, auth tokens, CSRF and rate-limited login —
//! as HTML forms and as the JSON API Flask-Security's single-page-app clients speak, on SQLite or
//! PostgreSQL, with Flask-Security's tables, password hashes and settings.
//!
//! ## Quick start
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use rampart::{CurrentUser, Datastore, Security, SecurityConfig, Settings, roles_required};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let settings = Settings::from_pairs([
//!     ("SECRET_KEY", "change-me-to-a-long-random-string"),
//!     ("SECURITY_PASSWORD_SALT", "change-me-too"),
//!     ("SECURITY_REGISTERABLE", "true"),
//!     ("SERVER_NAME", "127.0.0.1:5000"), // or TRUSTED_HOSTS; one is required outside DEBUG
//! ]);
//! let config = SecurityConfig::from_settings(&settings)?;
//! let datastore = Datastore::connect("sqlite://app.db?mode=rwc").await?;
//! let security = Security::builder(config).datastore(datastore).build().await?;
//!
//! async fn home(user: CurrentUser) -> String {
//!     format!("Hello {}", user.user.email)
//! }
//!
//! let app: Router = Router::new()
//!     .route("/", get(home))
//!     .route("/admin", get(|| async { "admin" }).route_layer(roles_required(["Admin"])))
//!     .merge(security.router())
//!     .layer(security.layer());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! // Header, body and keep-alive timeouts and a connection cap; stops on Ctrl-C or SIGTERM.
//! rampart::serve(listener, app, rampart::ServerLimits::from_settings(&settings)?).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Features
//!
//! | Flask-Security feature | Module | Routes |
//! |---|---|---|
//! | Login, remember-me, trackable | [`login`] | `GET/POST /login` |
//! | Logout | [`logout`] | `POST /logout` |
//! | Registration (`SECURITY_REGISTERABLE`) | [`register`] | `GET/POST /register` |
//! | Confirmation (`SECURITY_CONFIRMABLE`) | [`confirm`] | `GET/POST /confirm`, `GET /confirm/<token>` |
//! | Recovery (`SECURITY_RECOVERABLE`) | [`recover`] | `GET/POST /reset`, `GET/POST /reset/<token>` |
//! | Change password (`SECURITY_CHANGEABLE`) | [`change`] | `GET/POST SECURITY_CHANGE_URL` |
//! | Auth tokens, sessions, CSRF | [`auth_token`], [`csrf`], [`layer`] | |
//! | Guards | [`extract`], [`guard`] | |

#![forbid(unsafe_code)]

pub mod clock;
pub mod config;
pub mod datastore;
pub mod error;
pub mod features;
pub mod identity;
pub mod mail;
pub mod messages;
pub mod model;
pub mod password;
pub mod redirect;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod token;
pub mod totp;
pub mod web;

pub use clock::{Clock, SystemClock, TestClock};
pub use config::{ConfigError, RateLimit, SecurityConfig, Settings};
pub use datastore::{Datastore, DatastoreError, DbPool};
pub use error::{Error, ErrorKind, Result};
pub use identity::{NormalizeForm, normalize_email, normalize_username};
pub use mail::{
    ConsoleMailer, Mail, MailError, Mailer, MemoryMailer, SharedMailer, SmtpConfig, SmtpMailer,
    SmtpSecurity, find_code, find_link,
};
pub use messages::Messages;
pub use model::{NewUser, Role, User};
pub use password::{PasswordConfig, PasswordHasher};
pub use redirect::safe_next;
pub use token::TokenSigner;
pub use web::auth::{login_user, logout_user};
pub use web::context::{AuthContext, AuthMethod, AuthUser};
pub use web::extract::{
    AuthRejection, CurrentUser, PermissionName, RequirePermission, RequireRole, RoleName,
};
pub use web::forms::{FieldErrors, FormInput};
pub use web::guard::{
    anonymous_required, auth_required, auth_required_with, permissions_accepted,
    permissions_required, roles_accepted, roles_required,
};
pub use web::security::{RegisterCheck, Security, SecurityBuilder};
pub use web::server::{ServerLimits, serve, serve_with_shutdown};
pub use web::templates::Templates;

// Paths of the flat layout, kept while the sample app moves to the curated re-exports.
pub use features::{
    change, change_email, confirm, login, logout, recover, recovery_codes, register, two_factor,
    unlock, verify,
};
pub use web::{
    auth, auth_token, context, csrf, extract, forms, guard, layer, notify, rate_limit, reply,
    security, session_store, templates,
};
