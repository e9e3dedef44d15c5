//! The sample app's configuration: the seed tutorial's defaults, the framework's
//! [`SecurityConfig`], the database URL, the mail backend and the optional first admin.
//!
//! Settings come from `rampart.toml`, `.env` and the environment ([`Settings::load`]); the app's
//! defaults ([`APP_DEFAULTS`]) fill only what none of them set. In `DEBUG` a missing `SECRET_KEY` or
//! `SECURITY_PASSWORD_SALT` (and `SECURITY_TOTP_SECRETS`, which encrypts authenticator secrets at
//! rest) is generated once and kept in `instance/secrets.toml` (mode 0600);
//! outside `DEBUG` it is an error naming the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rampart::{ConfigError, SecurityConfig, ServerLimits, Settings, SmtpConfig, SmtpSecurity};
use secrecy::SecretString;

/// The seed tutorial's settings, applied only where the user set nothing.
pub const APP_DEFAULTS: &[(&str, &str)] = &[
    ("DEBUG", "true"),
    ("SECURITY_REGISTERABLE", "true"),
    ("SECURITY_CONFIRMABLE", "true"),
    ("SECURITY_RECOVERABLE", "true"),
    ("SECURITY_CHANGEABLE", "true"),
    ("SECURITY_USERNAME_ENABLE", "true"),
    ("SECURITY_CHANGE_URL", "/dashboard/security/"),
    ("SECURITY_CHANGE_EMAIL", "true"),
    ("SECURITY_CHANGE_USERNAME", "true"),
    ("SECURITY_USERNAME_RECOVERY", "true"),
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_MULTI_FACTOR_RECOVERY_CODES", "true"),
    ("SECURITY_WEBAUTHN", "true"),
    ("SECURITY_WAN_RP_NAME", "Rampart Sample"),
    // Unified sign-in as the contract's sample app: password, a code by email, an authenticator.
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    (
        "SECURITY_US_ENABLED_METHODS",
        "password, email, authenticator",
    ),
    ("SECURITY_US_POST_SETUP_VIEW", "/dashboard/security/"),
    (
        "SECURITY_TWO_FACTOR_POST_SETUP_VIEW",
        "/dashboard/security/",
    ),
    ("SECURITY_DEFAULT_ROLES", "User"),
    // Signing out ends the session: the page after it says so (`routes::home`).
    ("SECURITY_POST_LOGOUT_VIEW", "/signed-out"),
    ("SECURITY_DEFAULT_REMEMBER_ME", "true"),
    ("SECURITY_EMAIL_SENDER", "no-reply@fst-sample.local"),
    ("SECURITY_APP_NAME", "Rampart Sample"),
    // The OpenAPI description of the JSON API at /openapi.json (docs/openapi.md).
    ("SECURITY_OPENAPI", "true"),
    ("MAIL_BACKEND", "console"),
    // Plain words for the people using the sample app's pages. Only the HTML pages say them
    // (`SECURITY_PAGE_MSG_*`): the JSON API keeps Flask-Security's exact English, which its
    // single-page-app clients match on.
    ("SECURITY_PAGE_MSG_USERNAME_INVALID_LENGTH", USERNAME_RULE),
    ("SECURITY_PAGE_MSG_INVALID_INPUT", USERNAME_RULE),
    ("SECURITY_PAGE_MSG_GENERIC_AUTHN_FAILED", SIGN_IN_FAILED),
    (
        "SECURITY_PAGE_MSG_INVALID_RESET_PASSWORD_TOKEN",
        "This password reset link doesn't work: it was already used or is incomplete. Ask for a \
         new one below.",
    ),
    (
        "SECURITY_PAGE_MSG_INVALID_CONFIRMATION_TOKEN",
        "This confirmation link doesn't work: it is incomplete or out of date. Ask for a new one \
         below.",
    ),
    (
        "SECURITY_PAGE_MSG_TWO_FACTOR_CHANGE_METHOD_SUCCESSFUL",
        "Two-factor authentication is on. You'll be asked for a code when you sign in.",
    ),
    // Flask-Security's full wording: an expired link mails a fresh one, so say so.
    (
        "SECURITY_MSG_CONFIRMATION_EXPIRED",
        "You did not confirm your email within %(within)s. New instructions to confirm your email \
         have been sent to %(email)s.",
    ),
    (
        "SECURITY_MSG_PASSWORD_RESET_EXPIRED",
        "You did not reset your password within %(within)s. New instructions have been sent to \
         %(email)s.",
    ),
];

/// The username rule, worded once: the sign-up hint and both of its errors (too short or long,
/// other characters) say this (`%(min)d`, `%(max)d`: `SECURITY_USERNAME_MIN_LENGTH`, `_MAX_LENGTH`).
pub const USERNAME_RULE: &str =
    "Use %(min)d to %(max)d letters or digits, with no spaces or symbols.";

/// A sign-in refused for a wrong identity or password (the same answer for both, so it tells
/// nobody which accounts exist).
pub const SIGN_IN_FAILED: &str = "That email or username and password don't match. Check both \
     and try again.";

/// The keys generated in `DEBUG` when missing.
/// Body limit of the profile form (a picture of up to 2 MB plus the other fields).
pub const PROFILE_FORM_MAX_BYTES: usize = 3 * 1024 * 1024;

const GENERATED_SECRETS: [&str; 2] = ["SECRET_KEY", "SECURITY_PASSWORD_SALT"];

/// Generated in `DEBUG` when missing too, but optional outside it: the key that encrypts the
/// authenticator secrets at rest (Flask-Security's format), so a database dump of the sample app
/// does not expose them. Without it, secrets are stored as plain base32 (and a warning says so).
const GENERATED_IN_DEBUG: [&str; 1] = ["SECURITY_TOTP_SECRETS"];

/// The file, inside the instance folder, holding generated secrets.
pub const SECRETS_FILE: &str = "secrets.toml";

/// The database file, inside the instance folder, used when `DATABASE_URL` is not set.
pub const DEFAULT_DATABASE_FILE: &str = "rampart.db";

/// How long a request may take before it is answered with 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the app's configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum AppConfigError {
    /// A setting is missing or invalid (the message names the key).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The instance folder or the secrets file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where mails go (`MAIL_BACKEND`).
#[derive(Clone, Debug)]
pub enum MailBackend {
    /// Printed to stdout (`console`, the default).
    Console,
    /// Sent through an SMTP server (`smtp`, with `MAIL_SERVER`, `MAIL_PORT`, …).
    Smtp(SmtpConfig),
}

/// The first administrator, created at start-up when missing (`ADMIN_EMAIL`, `ADMIN_PASSWORD`).
#[derive(Clone, Debug)]
pub struct AdminSeed {
    /// The admin's email address.
    pub email: String,
    /// The admin's password (checked against the password policy).
    pub password: SecretString,
}

/// Everything the app needs to start.
#[derive(Clone, Debug)]
pub struct AppConfig {
    /// The framework's configuration.
    pub security: SecurityConfig,
    /// `DATABASE_URL` (default: `sqlite://instance/rampart.db?mode=rwc`).
    pub database_url: String,
    /// `REDIS_URL` (e.g. `redis://127.0.0.1:6379/0`), when set: sessions and rate-limit
    /// counters live in Redis, and cache invalidations between instances go over Redis pub/sub
    /// instead of PostgreSQL's `LISTEN`/`NOTIFY` (`Datastore::use_redis`).
    pub redis_url: Option<String>,
    /// `MAIL_BACKEND` and its settings.
    pub mail: MailBackend,
    /// `ADMIN_EMAIL` and `ADMIN_PASSWORD`, when both are set.
    pub admin: Option<AdminSeed>,
    /// The instance folder (generated secrets, default database).
    pub instance_dir: PathBuf,
    /// The keys that were generated into `instance/secrets.toml` during this load.
    pub generated: Vec<String>,
    /// The settings the configuration was read from (app defaults applied).
    pub settings: Settings,
    /// The server's timeouts and connection cap (`RAMPART_HEADER_TIMEOUT`,
    /// `RAMPART_BODY_TIMEOUT`, `RAMPART_KEEPALIVE_TIMEOUT`, `RAMPART_MAX_CONNECTIONS`).
    pub server: ServerLimits,
    /// `RAMPART_METRICS`: Prometheus metrics at `GET /metrics` (default off).
    pub metrics: bool,
    /// How many uploaded pictures are decoded at once (`RAMPART_AVATAR_DECODES`, default
    /// [`crate::avatar::DEFAULT_MAX_DECODES`]); beyond it uploads get 503.
    pub avatar_decodes: usize,
}

/// Setting: Prometheus metrics at `GET /metrics` ([`AppConfig::metrics`]).
pub const METRICS_KEY: &str = "RAMPART_METRICS";

/// Setting: how many uploaded pictures are decoded at once ([`AppConfig::avatar_decodes`]).
pub const AVATAR_DECODES_KEY: &str = "RAMPART_AVATAR_DECODES";

/// Sets each of [`APP_DEFAULTS`] that `settings` does not set.
pub fn apply_defaults(settings: &mut Settings) {
    for (key, value) in APP_DEFAULTS {
        if settings.get(key).is_none() {
            settings.set(key, *value);
        }
    }
}

impl AppConfig {
    /// Loads `rampart.toml` and `.env` (when present) and the environment, then builds the
    /// configuration with [`AppConfig::from_settings`].
    ///
    /// # Errors
    ///
    /// As [`AppConfig::from_settings`], and when a file cannot be read.
    pub fn load(
        toml_file: &Path,
        dotenv_file: &Path,
        instance_dir: &Path,
    ) -> Result<Self, AppConfigError> {
        let settings = Settings::load(Some(toml_file), Some(dotenv_file))?;
        Self::from_settings(settings, instance_dir)
    }

    /// Builds the configuration from settings: app defaults, generated secrets (in `DEBUG`),
    /// database URL, mail backend, admin seed and the framework's [`SecurityConfig`].
    ///
    /// # Errors
    ///
    /// [`AppConfigError::Config`] naming the key of a missing or invalid setting;
    /// [`AppConfigError::Io`] when the instance folder or secrets file cannot be written.
    pub fn from_settings(
        mut settings: Settings,
        instance_dir: &Path,
    ) -> Result<Self, AppConfigError> {
        apply_defaults(&mut settings);
        let debug = settings.bool("DEBUG")?.unwrap_or(false);
        let generated = ensure_secrets(&mut settings, debug, instance_dir)?;
        let database_url = match settings.string("DATABASE_URL") {
            Some(url) => url,
            None => {
                create_dir(instance_dir)?;
                format!(
                    "sqlite://{}?mode=rwc",
                    instance_dir.join(DEFAULT_DATABASE_FILE).display()
                )
            }
        };
        let redis_url = settings
            .string("REDIS_URL")
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty());
        let mail = mail_backend(&settings)?;
        let admin = match (
            settings.string("ADMIN_EMAIL"),
            settings.string("ADMIN_PASSWORD"),
        ) {
            (Some(email), Some(password)) => Some(AdminSeed {
                email: email.trim().to_owned(),
                password: SecretString::from(password),
            }),
            _ => None,
        };
        let server = ServerLimits::from_settings(&settings)?;
        let metrics = settings.bool(METRICS_KEY)?.unwrap_or(false);
        let avatar_decodes = settings
            .int::<usize>(AVATAR_DECODES_KEY)?
            .unwrap_or(crate::avatar::DEFAULT_MAX_DECODES);
        let mut security = SecurityConfig::from_settings(&settings)?;
        // Room for a 2 MB profile picture in the profile form; every other route keeps
        // MAX_CONTENT_LENGTH (1 MiB, as the JSON API contract says).
        security.body_limits.push((
            crate::routes::profile::PROFILE_URL.to_owned(),
            PROFILE_FORM_MAX_BYTES,
        ));
        Ok(Self {
            security,
            database_url,
            redis_url,
            mail,
            admin,
            instance_dir: instance_dir.to_owned(),
            generated,
            settings,
            server,
            metrics,
            avatar_decodes,
        })
    }
}

/// Reads `MAIL_BACKEND` and, for `smtp`, Flask-Mail's `MAIL_*` settings.
fn mail_backend(settings: &Settings) -> Result<MailBackend, ConfigError> {
    let backend = settings
        .get("MAIL_BACKEND")
        .unwrap_or("console")
        .trim()
        .to_ascii_lowercase();
    match backend.as_str() {
        "console" => Ok(MailBackend::Console),
        "smtp" => {
            let mut smtp = SmtpConfig::default();
            if let Some(server) = settings.string("MAIL_SERVER") {
                smtp.server = server;
            }
            if let Some(port) = settings.int("MAIL_PORT")? {
                smtp.port = port;
            }
            smtp.username = settings.string("MAIL_USERNAME");
            smtp.password = settings.string("MAIL_PASSWORD").map(SecretString::from);
            let tls = settings.bool("MAIL_USE_TLS")?.unwrap_or(false);
            let ssl = settings.bool("MAIL_USE_SSL")?.unwrap_or(false);
            smtp.security = match (tls, ssl) {
                (true, true) => {
                    return Err(ConfigError::Invalid {
                        key: "MAIL_USE_SSL".into(),
                        message:
                            "set either MAIL_USE_TLS (STARTTLS) or MAIL_USE_SSL (TLS), not both"
                                .into(),
                    });
                }
                (true, false) => SmtpSecurity::StartTls,
                (false, true) => SmtpSecurity::Tls,
                (false, false) => SmtpSecurity::None,
            };
            Ok(MailBackend::Smtp(smtp))
        }
        other => Err(ConfigError::Invalid {
            key: "MAIL_BACKEND".into(),
            message: format!("expected \"console\" or \"smtp\", got {other:?}"),
        }),
    }
}

/// Fills missing secrets: from `instance/secrets.toml`, else (in `DEBUG`) freshly generated and
/// saved there. Returns the keys generated now.
fn ensure_secrets(
    settings: &mut Settings,
    debug: bool,
    instance_dir: &Path,
) -> Result<Vec<String>, AppConfigError> {
    let required: Vec<&str> = GENERATED_SECRETS
        .into_iter()
        .filter(|key| settings.get(key).is_none())
        .collect();
    if !debug {
        if let Some(key) = required.first() {
            return Err(ConfigError::Missing {
                key: (*key).to_owned(),
                message: "it is required outside DEBUG; set it in the environment, .env or \
                          rampart.toml to a long random value and keep it stable"
                    .into(),
            }
            .into());
        }
        for key in GENERATED_IN_DEBUG {
            if settings.get(key).is_none() {
                tracing::warn!(
                    key,
                    "not set: authenticator secrets are stored unencrypted (set it to \
                     {{\"1\": \"<a long random value>\"}} to encrypt them at rest)"
                );
            }
        }
        return Ok(Vec::new());
    }
    let missing: Vec<&str> = GENERATED_SECRETS
        .into_iter()
        .chain(GENERATED_IN_DEBUG)
        .filter(|key| settings.get(key).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let path = instance_dir.join(SECRETS_FILE);
    let mut saved = read_secrets(&path)?;
    let mut generated = Vec::new();
    for key in &missing {
        if !saved.contains_key(*key) {
            let secret = rampart::random_token(32);
            let value = if GENERATED_IN_DEBUG.contains(key) {
                // Key id 1 (Flask-Security's map of ids to secrets; a newer id rotates it).
                format!("{{\"1\": \"{secret}\"}}")
            } else {
                secret
            };
            saved.insert((*key).to_owned(), toml::Value::String(value));
            generated.push((*key).to_owned());
        }
    }
    if !generated.is_empty() {
        create_dir(instance_dir)?;
        write_private(&path, &saved.to_string())?;
        tracing::warn!(
            keys = %generated.join(", "),
            path = %path.display(),
            "DEBUG: generated missing secrets and saved them; set them explicitly in production"
        );
    }
    for key in missing {
        if let Some(toml::Value::String(value)) = saved.get(key) {
            settings.set(key, value.clone());
        }
    }
    Ok(generated)
}

/// The secrets saved earlier, or an empty table.
fn read_secrets(path: &Path) -> Result<toml::Table, AppConfigError> {
    if !path.exists() {
        return Ok(toml::Table::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    Ok(text.parse::<toml::Table>().map_err(|e| ConfigError::File {
        path: path.to_owned(),
        message: e.to_string(),
    })?)
}

fn create_dir(dir: &Path) -> Result<(), AppConfigError> {
    std::fs::create_dir_all(dir).map_err(|source| AppConfigError::Io {
        path: dir.to_owned(),
        source,
    })
}

/// Writes `text` to `path`, readable by the owner only.
fn write_private(path: &Path, text: &str) -> Result<(), AppConfigError> {
    use std::io::Write as _;
    let io_error = |source| AppConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_defaults_do_not_override_user_settings() {
        let mut settings = Settings::from_pairs([("SECURITY_REGISTERABLE", "false")]);
        apply_defaults(&mut settings);
        assert_eq!(settings.bool("SECURITY_REGISTERABLE").unwrap(), Some(false));
        assert_eq!(settings.bool("SECURITY_CONFIRMABLE").unwrap(), Some(true));
        assert_eq!(
            settings.get("SECURITY_CHANGE_URL"),
            Some("/dashboard/security/")
        );
    }

    #[test]
    fn debug_generates_secrets_once_and_keeps_them_private() {
        let dir = tempfile::tempdir().unwrap();
        let instance = dir.path().join("instance");
        let first = AppConfig::from_settings(Settings::default(), &instance).unwrap();
        assert_eq!(
            first.generated,
            [
                "SECRET_KEY",
                "SECURITY_PASSWORD_SALT",
                "SECURITY_TOTP_SECRETS"
            ]
        );
        assert!(
            !first.security.two_factor.totp_secrets.is_empty(),
            "authenticator secrets are encrypted at rest"
        );
        let second = AppConfig::from_settings(Settings::default(), &instance).unwrap();
        assert!(second.generated.is_empty());
        assert_eq!(
            first.settings.get("SECRET_KEY"),
            second.settings.get("SECRET_KEY")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(instance.join(SECRETS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(first.database_url.starts_with("sqlite://"));
    }

    #[test]
    fn missing_secrets_outside_debug_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let settings =
            Settings::from_pairs([("DEBUG", "false"), ("SECRET_KEY", "0123456789abcdef0123")]);
        let err = AppConfig::from_settings(settings, dir.path()).unwrap_err();
        assert!(err.to_string().contains("SECURITY_PASSWORD_SALT"), "{err}");
    }

    #[test]
    fn server_limits_and_decode_slots_come_from_settings() {
        let dir = tempfile::tempdir().unwrap();
        let config = AppConfig::from_settings(Settings::default(), dir.path()).unwrap();
        assert_eq!(config.server, ServerLimits::default());
        assert_eq!(config.avatar_decodes, crate::avatar::DEFAULT_MAX_DECODES);
        let settings = Settings::from_pairs([
            ("RAMPART_HEADER_TIMEOUT", "7"),
            ("RAMPART_MAX_CONNECTIONS", "50"),
            (AVATAR_DECODES_KEY, "1"),
        ]);
        let config = AppConfig::from_settings(settings, dir.path()).unwrap();
        assert_eq!(config.server.header_timeout, Duration::from_secs(7));
        assert_eq!(config.server.max_connections, 50);
        assert_eq!(config.avatar_decodes, 1);
        for (key, value) in [
            ("RAMPART_KEEPALIVE_TIMEOUT", "0"),
            (AVATAR_DECODES_KEY, "two"),
        ] {
            let err = AppConfig::from_settings(Settings::from_pairs([(key, value)]), dir.path())
                .unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn unknown_mail_backend_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::from_pairs([("MAIL_BACKEND", "pigeon")]);
        let err = AppConfig::from_settings(settings, dir.path()).unwrap_err();
        assert!(err.to_string().contains("MAIL_BACKEND"), "{err}");
    }

    #[test]
    fn smtp_settings_follow_flask_mail() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::from_pairs([
            ("MAIL_BACKEND", "smtp"),
            ("MAIL_SERVER", "mail.example.com"),
            ("MAIL_PORT", "587"),
            ("MAIL_USE_TLS", "true"),
        ]);
        let config = AppConfig::from_settings(settings, dir.path()).unwrap();
        let MailBackend::Smtp(smtp) = config.mail else {
            panic!("expected smtp");
        };
        assert_eq!((smtp.server.as_str(), smtp.port), ("mail.example.com", 587));
        assert_eq!(smtp.security, SmtpSecurity::StartTls);
    }
}
