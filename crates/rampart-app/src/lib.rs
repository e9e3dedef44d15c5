//! # Rampart sample app
//!
//! The seed tutorial's app, built only on the public API of [`rampart`]: registration with email
//! confirmation, login, password recovery and change (at `/dashboard/security/`), a profile per
//! user with a picture, an admin area, account deletion, and a `flask users` / `flask roles`-like
//! CLI. Its pages are server-rendered minijinja templates compiled into the binary
//! ([`assets`]), styled by one stylesheet of its own, and work without JavaScript.
//!
//! [`build`] makes the real router, so tests drive exactly what `cargo run` serves:
//!
//! | route | guard | what |
//! |---|---|---|
//! | `GET /` | session | the dashboard |
//! | `GET|POST /dashboard/profile/` | session (+CSRF) | the profile form with picture upload |
//! | `POST /dashboard/security/delete[/confirm]` | session (+CSRF) | deleting the account, in two steps |
//! | `GET /admin/users`, `POST /admin/users/{id}/…` | role `Admin` (session) | users: search, pages, activation, roles |
//! | `GET /media/avatars/{name}` | none (random names) | profile pictures |
//! | `GET /static/{name}`, `GET /terms` | none | stylesheet, icon, terms of service |
//! | `GET /api/me` | session or token | the user, roles, permissions and login tracking |
//! | `GET /api/admin` | role `Admin` | `{"message":"admin area","user_count":N}` |
//! | `GET /api/write` | permission `user-write` | `{"message":"you have user-write"}` |
//! | `GET|POST /api/profile` | session (+CSRF) or token | the profile, partial updates |
//! | `DELETE /api/account` | session (+CSRF) or token | deletes the account (password required) |
//! | `GET /healthz`, `GET /readyz` | none (outside the security layer) | alive; ready (database, migrations, invalidation channel) or 503 |
//! | `GET /metrics` | none (outside the security layer; only with `RAMPART_METRICS`) | Prometheus metrics |
//!
//! plus every Flask-Security route of [`rampart::Security::router`].

#![forbid(unsafe_code)]

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use rampart::{Clock, ConsoleMailer, Datastore, Security, SmtpMailer, SystemClock};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub mod account;
pub mod assets;
pub mod avatar;
pub mod cli;
pub mod config;
pub mod db;
pub mod profile;
pub mod routes;
pub mod seed;

pub use avatar::MediaStore;
pub use config::{AppConfig, AppConfigError, MailBackend};

/// The SQL run with every user creation, in the same transaction: the user's empty profile.
pub const PROFILE_ON_USER_CREATED: &str = "INSERT INTO \"profile\" (\"user_id\") VALUES ($1)";

/// The app's migrations for SQLite (versions from 1000; the framework keeps 1 to 999).
pub static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The app's migrations for PostgreSQL (versions from 1000).
pub static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Why the app could not start or a command failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is missing or invalid (exit code 2).
    #[error(transparent)]
    Config(#[from] AppConfigError),
    /// The database could not be reached or migrated.
    #[error("database: {0}")]
    Datastore(#[from] rampart::DatastoreError),
    /// The framework failed (configuration, hashing, …).
    #[error(transparent)]
    Security(#[from] rampart::Error),
    /// The mailer could not be set up.
    #[error("mail: {0}")]
    Mail(#[from] rampart::MailError),
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Password(#[from] rampart::PasswordError),
    /// The server could not listen or failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

impl AppError {
    /// Whether the error is the configuration's fault (the process then exits with code 2).
    pub fn is_config(&self) -> bool {
        match self {
            Self::Config(_) => true,
            Self::Security(error) => {
                error.kind() == rampart::ErrorKind::Config
                    || matches!(
                        error,
                        rampart::Error::Password(rampart::PasswordError::InvalidParams(_))
                    )
            }
            Self::Password(error) => {
                matches!(error, rampart::PasswordError::InvalidParams(_))
            }
            _ => false,
        }
    }
}

/// The app's shared state: the framework handle and the uploaded files.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The framework.
    pub security: Security,
    /// Uploaded files (profile pictures).
    pub media: MediaStore,
}

impl FromRef<AppState> for Security {
    fn from_ref(state: &AppState) -> Self {
        state.security.clone()
    }
}

/// A started app: its router and the framework handle behind it.
#[derive(Clone, Debug)]
pub struct App {
    /// The complete router (framework routes, app routes and layers). Serve it with
    /// [`rampart::serve`] (or `into_make_service_with_connect_info::<SocketAddr>()`).
    pub router: Router,
    /// The framework handle (datastore, hasher, mailer…).
    pub security: Security,
    /// Where uploaded files are kept.
    pub media: MediaStore,
}

/// The message shown when the sign-up form's "I agree to the terms" box is not ticked.
pub const TERMS_REQUIRED: &str = "You must agree to the terms of service to create an account.";

/// Connects to the database, builds the framework, applies the framework's and the app's
/// migrations and seeds the roles (and the admin, when configured). Used by the server and the CLI.
///
/// # Errors
///
/// [`AppError`] when the database cannot be reached or migrated, the mailer or framework cannot
/// be set up, or the admin's password breaks the policy ([`AppError::Config`]).
pub async fn connect(config: &AppConfig) -> Result<Security, AppError> {
    connect_with_clock(config, SystemClock).await
}

/// [`connect`] with a given clock (tests pass a [`rampart::TestClock`] to make links expire).
///
/// # Errors
///
/// As [`connect`].
pub async fn connect_with_clock(
    config: &AppConfig,
    clock: impl Clock,
) -> Result<Security, AppError> {
    let datastore = Datastore::connect(&config.database_url).await?;
    if let Some(redis_url) = &config.redis_url {
        datastore.use_redis(redis_url).await?;
    }
    let builder = Security::builder(config.security.clone())
        .datastore(datastore)
        .clock(clock)
        .metrics(config.metrics)
        .on_user_created_sql(PROFILE_ON_USER_CREATED)
        // The data export (`GET /api/account/export`) carries the profile.
        .export_section("profile", |security, user_id| async move {
            crate::profile::load(&security, user_id)
                .await
                .map(|profile| profile.to_json())
                .map_err(|error| rampart::Error::from(rampart::DatastoreError::from(error)))
        })
        .embedded_templates(assets::TEMPLATES.iter().copied())
        // The app's own page texts in every language it ships (docs/i18n.md).
        .catalog("en", include_str!("../i18n/en/app.ftl"))
        .catalog("de", include_str!("../i18n/de/app.ftl"))
        .catalog("fr", include_str!("../i18n/fr/app.ftl"))
        .catalog("es", include_str!("../i18n/es/app.ftl"))
        .template_global("asset_version", assets::asset_version())
        .template_global("mail_console", matches!(config.mail, MailBackend::Console))
        .template_global("username_rule", username_rule(config))
        // The sign-up page's "I agree to the terms" box. JSON clients (single-page apps) show
        // their own terms and keep the Flask-Security API unchanged.
        .register_check(|input, errors| {
            if !input.is_json && input.flag("terms") != Some(true) {
                errors.add("terms", TERMS_REQUIRED);
            }
        });
    let builder = match &config.mail {
        MailBackend::Console => builder.mailer(ConsoleMailer::new()),
        MailBackend::Smtp(smtp) => builder.mailer(SmtpMailer::new(smtp)?),
    };
    let security = builder.build().await?;
    security
        .datastore()
        .migrate_app(&SQLITE_MIGRATOR, &PG_MIGRATOR)
        .await?;
    seed::seed_roles(&security).await?;
    if let Some(admin) = &config.admin {
        seed::seed_admin(&security, admin).await?;
    }
    Ok(security)
}

/// The username rule as the sign-up hint states it: the very text of the error a username that
/// breaks it gets on the pages (`SECURITY_PAGE_MSG_USERNAME_INVALID_LENGTH`, else
/// `SECURITY_MSG_USERNAME_INVALID_LENGTH`), lengths filled in.
pub fn username_rule(config: &AppConfig) -> String {
    let username = &config.security.username;
    let (min, max) = (
        username.min_length.to_string(),
        username.max_length.to_string(),
    );
    // The pages' wording wins over the general one, as on any page the app answers.
    let mut wording = config.security.messages.clone();
    wording.extend(config.security.page_messages.clone());
    rampart::Messages::new(wording).get("USERNAME_INVALID_LENGTH", &[("min", &min), ("max", &max)])
}

/// Builds the whole app: [`connect`], then the router.
///
/// # Errors
///
/// As [`connect`].
pub async fn build(config: &AppConfig) -> Result<App, AppError> {
    build_with_clock(config, SystemClock).await
}

/// [`build`] with a given clock (tests pass a [`rampart::TestClock`]).
///
/// # Errors
///
/// As [`connect`].
pub async fn build_with_clock(config: &AppConfig, clock: impl Clock) -> Result<App, AppError> {
    let security = connect_with_clock(config, clock).await?;
    let media = MediaStore::new(&config.instance_dir).with_max_decodes(config.avatar_decodes);
    Ok(App {
        router: router(&security, &media),
        security,
        media,
    })
}

/// The router over an existing [`Security`]: the framework's routes and the app's, inside the
/// security layer, a 30 s request timeout, the body limit and request tracing.
pub fn router(security: &Security, media: &MediaStore) -> Router {
    let state = AppState {
        security: security.clone(),
        media: media.clone(),
    };
    let routes = Router::new()
        .merge(routes::router())
        .with_state(state.clone())
        .merge(security.router())
        .layer(axum::middleware::from_fn_with_state(
            state,
            routes::header::header_values,
        ));
    // The layer learns every route, so a wrong method on the app's pages is a 405, not a CSRF
    // refusal.
    let layer = security.layer().routes(&routes);
    let app = routes
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config::REQUEST_TIMEOUT,
        ))
        .layer(layer)
        .layer(axum::middleware::from_fn(routes::profile::upload_guard));
    // Probes bypass the security layer (host check, limits, sessions); everything else,
    // unknown paths included, goes through it.
    security
        .health_router()
        .fallback_service(app)
        .layer(TraceLayer::new_for_http())
}
