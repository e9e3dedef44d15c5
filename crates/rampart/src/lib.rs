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
//! Every Flask-Security feature lives in the file named after it under `src/features/`; each file's
//! own doc comment lists its flow, routes, settings, templates and mails. [`Security::router`]
//! mounts the routes of the features the configuration enables.
//!
//! | Flask-Security feature | File | Settings | Routes |
//! |---|---|---|---|
//! | Login, remember-me, trackable | `features/login.rs` | `SECURITY_LOGIN_URL`, `SECURITY_POST_LOGIN_VIEW`, `SECURITY_DEFAULT_REMEMBER_ME`, `SECURITY_TRACKABLE`, `REMEMBER_COOKIE_NAME`, `REMEMBER_COOKIE_DURATION` | `GET/POST /login` |
//! | Logout | `features/logout.rs` | `SECURITY_LOGOUT_URL`, `SECURITY_POST_LOGOUT_VIEW` | `POST /logout` |
//! | Registration | `features/register.rs` | `SECURITY_REGISTERABLE`, `SECURITY_REGISTER_URL`, `SECURITY_SEND_REGISTER_EMAIL`, `SECURITY_POST_REGISTER_VIEW`, `SECURITY_DEFAULT_ROLES`, `SECURITY_USERNAME_*` | `GET/POST /register` |
//! | Confirmation | `features/confirm.rs` | `SECURITY_CONFIRMABLE`, `SECURITY_CONFIRM_URL`, `SECURITY_CONFIRM_EMAIL_WITHIN`, `SECURITY_LOGIN_WITHOUT_CONFIRMATION`, `SECURITY_POST_CONFIRM_VIEW` | `GET/POST /confirm`, `GET /confirm/<token>` |
//! | Recovery (forgot and reset password) | `features/recover.rs` | `SECURITY_RECOVERABLE`, `SECURITY_RESET_URL`, `SECURITY_RESET_PASSWORD_WITHIN`, `SECURITY_POST_RESET_VIEW`, `SECURITY_SEND_PASSWORD_RESET_NOTICE_EMAIL` | `GET/POST /reset`, `GET/POST /reset/<token>` |
//! | Change password | `features/change.rs` | `SECURITY_CHANGEABLE`, `SECURITY_CHANGE_URL`, `SECURITY_POST_CHANGE_VIEW`, `SECURITY_SEND_PASSWORD_CHANGE_EMAIL` | `GET/POST /change` |
//! | Change email | `features/change_email.rs` | `SECURITY_CHANGE_EMAIL`, `SECURITY_CHANGE_EMAIL_URL`, `SECURITY_CHANGE_EMAIL_WITHIN`, `SECURITY_POST_CHANGE_EMAIL_VIEW` | `GET/POST /change-email`, `GET /change-email/<token>` |
//! | Change username, username recovery | `features/change_username.rs`, `features/username_recovery.rs` | `SECURITY_CHANGE_USERNAME`, `SECURITY_CHANGE_USERNAME_URL`, `SECURITY_POST_CHANGE_USERNAME_VIEW`, `SECURITY_SEND_USERNAME_CHANGE_EMAIL`, `SECURITY_USERNAME_RECOVERY`, `SECURITY_USERNAME_RECOVERY_URL` | `GET/POST /change-username`, `GET/POST /recover-username` |
//! | Two-factor (authenticator app, mailed or texted code) | `features/two_factor.rs` + `two_factor/{setup,signin,rescue}.rs`; no-HTTP steps in [`two_factor`] | `SECURITY_TWO_FACTOR`, `SECURITY_TWO_FACTOR_ENABLED_METHODS`, `SECURITY_TWO_FACTOR_*_URL`, `SECURITY_TWO_FACTOR_*_VALIDITY`, `SECURITY_TOTP_ISSUER`, `SECURITY_TOTP_SECRETS` | `GET/POST /tf-setup`, `POST /tf-setup/<token>`, `/tf-validate`, `/tf-rescue` |
//! | Unified sign-in (password, mailed code and magic link, authenticator, text message) | `features/unified_signin.rs` + `unified_signin/{signin,setup,verify}.rs`; [`unified_signin::check_passcode`]; texts in [`sms`], phones in [`phone`] | `SECURITY_UNIFIED_SIGNIN`, `SECURITY_US_ENABLED_METHODS`, `SECURITY_US_MFA_REQUIRED`, `SECURITY_USER_IDENTITY_ATTRIBUTES`, `SECURITY_US_TOKEN_VALIDITY`, `SECURITY_US_SETUP_WITHIN`, `SECURITY_US_*_URL`, `SECURITY_SMS_SERVICE`, `SECURITY_SMS_SERVICE_CONFIG`, `SECURITY_PHONE_REGION_DEFAULT` | `GET/POST /us-signin`, `POST /us-signin/send-code`, `GET/POST /us-setup`, `POST /us-setup/<state>`, `GET/POST /us-verify`, `POST /us-verify/send-code`, `GET /us-verify-link` |
//! | Recovery codes | `features/recovery_codes.rs` | `SECURITY_MULTI_FACTOR_RECOVERY_CODES`, `SECURITY_MULTI_FACTOR_RECOVERY_CODES_N`, `…_CODES_URL`, `SECURITY_MULTI_FACTOR_RECOVERY_URL` | `GET/POST /mf-recovery-codes`, `GET/POST /mf-recovery` |
//! | Passkeys / WebAuthn | `features/webauthn.rs` | `SECURITY_WEBAUTHN`, `SECURITY_WAN_ALLOW_AS_FIRST_FACTOR`, `…_MULTI_FACTOR`, `…_VERIFY`, `SECURITY_WAN_ALLOW_USER_HINTS`, `SECURITY_WAN_RP_NAME`, `SECURITY_WAN_RP_ID`, `SECURITY_WAN_*_TIMEOUT`, `SECURITY_WAN_*_URL` | `GET/POST /wan-register`, `POST /wan-register/<state>`, `POST /wan-signin[/<state>]`, `POST /wan-verify[/<state>]`, `POST /wan-delete` |
//! | Unlock (after too many failed logins) | `features/unlock.rs` | `SECURITY_LOGIN_IDENTITY_RATE_LIMIT` | `GET /unlock/<token>` |
//! | Verify (re-authentication, freshness) | `features/verify.rs` | `SECURITY_FRESHNESS`, `SECURITY_VERIFY_URL` | `GET/POST /verify` |
//! | Auth tokens | `web/auth_token.rs` | `SECURITY_TOKEN_AUTHENTICATION_HEADER`, `SECURITY_TOKEN_AUTHENTICATION_KEY`, `SECURITY_TOKEN_MAX_AGE` | on login, `?include_auth_token` |
//! | Sessions and CSRF | `web/layer.rs`, `web/session_store.rs`, `web/csrf.rs` | `PERMANENT_SESSION_LIFETIME`, `SESSION_COOKIE_NAME`, `SESSION_COOKIE_SECURE`, `SECURITY_CSRF_COOKIE_NAME` | |
//! | Rate limits | `web/rate_limit.rs` | `SECURITY_LOGIN_RATE_LIMIT`, `SECURITY_LOGIN_IDENTITY_RATE_LIMIT`, `SECURITY_MAIL_RATE_LIMIT`, `SECURITY_TRUSTED_PROXIES` | 429 with `Retry-After` |
//! | Roles and permissions | `web/extract.rs`, `web/guard.rs` | `SECURITY_DEFAULT_ROLES` | |
//! | OpenAPI description of the JSON API ([`Security::openapi`]) | `#[utoipa::path]` on each feature's JSON handlers; `web/openapi.rs` (envelope, errors, auth schemes), assembled in `features.rs` | `SECURITY_OPENAPI` | `GET /openapi.json` |
//!
//! The file layout is described in `docs/architecture.md`: the core (no axum), `web/` (the HTTP
//! runtime) and `features/`, each importing only from the layers below it.
//!
//! ## The public API
//!
//! Everything an app uses is re-exported here, at the crate root:
//!
//! - **Setting up**: [`Settings`] → [`SecurityConfig`] → [`Security::builder`] ([`SecurityBuilder`])
//!   with a [`Datastore`] and a [`Mailer`]; then [`Security::router`] and [`Security::layer`]
//!   ([`SecurityLayer`]), and [`serve`] with [`ServerLimits`]; for operations,
//!   [`Security::health_router`] (`/healthz`, `/readyz`, and `/metrics` when
//!   [`SecurityBuilder::metrics`] is on; [`HashingLoad`] is the hashing pool's part).
//! - **Protecting routes**: the extractors [`CurrentUser`], [`FreshUser`] (re-authenticated
//!   within `SECURITY_FRESHNESS`), [`RequireRole`], [`RequirePermission`]
//!   and the request's [`AuthContext`]; the guard layers [`auth_required`], [`roles_required`],
//!   [`roles_accepted`], [`permissions_required`], [`permissions_accepted`], [`anonymous_required`].
//! - **Flows**, for an app's own pages, its CLI and its tests: signing in and out
//!   ([`authenticate`], [`check_password`], [`login_user`], [`logout_user`]), registration
//!   ([`validate_registration`], [`register_user`], [`confirm_email`],
//!   [`resend_confirmation`]), passwords ([`check_current_password`],
//!   [`validate_password_change`], [`change_password`], [`forgot_password`],
//!   [`check_reset_token`], [`reset_password`], [`set_new_password`]), [`sign_out_other_sessions`],
//!   [`request_email_change`], [`confirm_email_change`] and [`unlock_account`].
//! - **Replies** in the request's format: a handler returns what happened, a
//!   [`reply::Reply`] (a form, a form with errors, done), or refuses with a typed
//!   [`reply::Rejection`] (rate limited, re-authentication needed, no sign-in waiting for its
//!   second factor), and the security layer renders it once in the request's format; the
//!   [`reply`] module also has the building blocks
//!   (Flask-Security's JSON envelope, redirects, pages rendered with the framework's
//!   [`Templates`]), and [`FieldErrors`] / [`FormInput`] for forms.
//! - **Data**: [`User`], [`Role`], [`NewUser`], the [`Datastore`] and its errors; passwords
//!   ([`PasswordHasher`]), tokens ([`TokenSigner`], [`random_hex`]), identities
//!   ([`normalize_email`], [`normalize_username`], [`phone::canonical`]), the [`totp`] helpers,
//!   text messages ([`sms`]), the [`Clock`]
//!   ([`TestClock`] for tests), and with the `testing` feature the `testing` fixtures.

#![forbid(unsafe_code)]

mod activity;
mod clock;
mod config;
mod datastore;
mod error;
mod features;
pub mod i18n;
mod identity;
mod mail;
mod messages;
mod model;
mod password;
pub mod phone;
mod redirect;
pub mod sms;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod token;
pub mod totp;
mod web;

pub use activity::{Activity, ActivityEvent, Device, NewActivity, SignInMethod};
pub use clock::{Clock, SystemClock, TestClock};
pub use config::{
    ActivityConfig, ChangeConfig, ChangeEmailConfig, ChangeUsernameConfig, ConfigError,
    ConfirmConfig, CsrfConfig, EmailValidatorArgs, GOOGLE_ISSUER, I18nConfig, LoginConfig,
    LogoutConfig, OauthClient, OauthConfig, OauthKind, OauthProvider, RateLimit, RateLimitConfig,
    RecoverConfig, RecoveryCodesConfig, RegisterConfig, SecurityConfig, SessionConfig, Settings,
    SmsConfig, SmsServiceConfig, TokenConfig, TwoFactorConfig, UnifiedSigninConfig, UsernameConfig,
    UsernameRecoveryConfig, VerifyConfig, WebauthnConfig,
};
pub use datastore::{
    ActivityFilter, Datastore, DatastoreError, DbPool, InvalidationStatus, OauthLink,
    RateLimitDecision, SessionDetails, SessionInfo,
};
pub use error::{Error, ErrorKind, Result};
pub use features::activity::{ActivityPage, activity_page};
pub use features::change::{change_password, validate as validate_password_change};
pub use features::change_email::{
    ChangeEmailOutcome, confirm_change as confirm_email_change,
    request_change as request_email_change,
};
pub use features::change_username::change_username;
pub use features::confirm::{ConfirmOutcome, confirm_email, resend_confirmation};
pub use features::export::{EXPORT_FORMAT_VERSION, export_account};
pub use features::login::{SignIn, authenticate};
pub use features::recover::{
    ResetOutcome, ResetToken, check_reset_token, forgot_password, reset_password,
};
pub use features::register::{
    RegisterOutcome, ValidRegister, register_user, validate as validate_registration,
};
pub use features::sessions::{revoke_other_sessions, revoke_session};
pub use features::unlock::{UnlockOutcome, unlock_account};
pub use features::username_recovery::recover_username;
pub use identity::{
    EmailError, NormalizeForm, UnknownForm, UsernameRefusal, normalize_email, normalize_username,
};
pub use mail::{
    ConsoleMailer, Mail, MailError, Mailer, MemoryMailer, SharedMailer, SmtpConfig, SmtpMailer,
    SmtpSecurity, find_code, find_link,
};
pub use messages::Messages;
pub use model::{NewUser, Role, User};
pub use password::{
    HashingLoad, PasswordConfig, PasswordError, PasswordHasher, PasswordPolicy, PolicyViolation,
    Verification,
};
pub use redirect::{UnsafeRedirect, safe_next};
pub use token::{TokenError, TokenSigner, random_hex, random_token};
pub use web::auth::{
    PasswordCheck, check_password, login_user, login_user_with, logout_user, set_new_password,
    sign_out_other_sessions,
};
pub use web::context::{AuthContext, AuthMethod, AuthUser};
pub use web::extract::{
    AuthRejection, CurrentUser, FreshUser, PermissionName, RequirePermission, RequireRole, RoleName,
};
pub use web::forms::{FieldErrors, FormInput};
pub use web::guard::{
    Guard, GuardLayer, anonymous_required, auth_required, auth_required_with, permissions_accepted,
    permissions_required, roles_accepted, roles_required,
};
pub use web::layer::{SecurityLayer, SecurityService};
pub use web::rate_limit::{CurrentPassword, check_current_password};
pub use web::security::{ActivityHook, ExportSection, RegisterCheck, Security, SecurityBuilder};
pub use web::server::{ServerLimits, serve, serve_with_shutdown};
pub use web::session_list::{SessionView, list_sessions};
pub use web::templates::Templates;

/// Two-factor sign-in without HTTP, for CLIs, jobs and tests: set a method up
/// ([`start_setup`](two_factor::start_setup), [`confirm_setup`](two_factor::confirm_setup)),
/// [`begin`](two_factor::begin) a sign-in's second step, [`check_code`](two_factor::check_code)
/// (counted against the user's code limit first, single use), [`rescue`](two_factor::rescue)
/// and [`disable`](two_factor::disable). The routes are in [`Security::router`].
pub mod two_factor {
    pub use crate::features::two_factor::{
        AUTHENTICATOR, CodeVerdict, EMAIL, PendingSetup, Rescue, RescueOutcome, SMS,
        SecondFactorPending, SetupVerdict, begin, check_code, check_code_for, confirm_setup,
        disable, rescue, start_setup, start_setup_to,
    };
    pub use crate::model::second_factor_required as required;
}

/// Unified sign-in without HTTP: the method names and [`check_passcode`](unified_signin::check_passcode)
/// (a password, a sent code or an authenticator code for a user; counted against the user's
/// code limit first, single use). The routes are in [`Security::router`].
pub mod unified_signin {
    pub use crate::features::unified_signin::{
        AUTHENTICATOR, EMAIL, PASSWORD, PasscodeVerdict, SMS, check_passcode,
    };
}

/// Responses in the request's format, for an app's own handlers: Flask-Security's JSON envelope
/// (`{"meta": {"code": …}, "response": {…}}`), redirects, and HTML pages rendered with the
/// framework's templates (so an app's pages share its layout, flashes and CSRF token).
pub mod reply {
    pub use crate::web::forms::parse_json_object;
    pub use crate::web::negotiate::{Form, Html, Json, Reply};
    pub use crate::web::rejection::{Limited, Rejection};
    pub use crate::web::reply::{html, json, json_errors, json_of, json_ok, redirect};
    pub use crate::web::templates::page;
}
