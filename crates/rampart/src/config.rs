//! Configuration: [`SecurityConfig`] with Flask-Security's `SECURITY_*` names and defaults, and
//! [`Settings`], the layered key/value source it is read from (defaults → `rampart.toml` → `.env`
//! → environment).
//!
//! Every setting can be given with its Flask-Security name, e.g. `SECURITY_REGISTERABLE=true`,
//! `SECURITY_CONFIRMABLE=true`, `SECURITY_PASSWORD_SALT=…`, `SECURITY_CHANGE_URL=/account/`.
//! Invalid values are reported with the key that holds them.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::password::PasswordConfig;

/// A configuration value that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key holds a value of the wrong form.
    #[error("invalid value for {key}: {message}")]
    Invalid {
        /// The setting's name, e.g. `SECURITY_REGISTERABLE`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A required key is missing.
    #[error("{key} is not set: {message}")]
    Missing {
        /// The setting's name.
        key: String,
        /// What to do about it.
        message: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

/// Flat, layered settings: later layers override earlier ones.
///
/// Keys are upper-cased, so `security_registerable` in `rampart.toml` and
/// `SECURITY_REGISTERABLE` in the environment name the same setting.
///
/// ```
/// let settings = rampart::Settings::from_pairs([("SECURITY_REGISTERABLE", "true")]);
/// assert_eq!(settings.bool("SECURITY_REGISTERABLE").unwrap(), Some(true));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Settings from explicit pairs (tests, embedding).
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut settings = Self::default();
        for (k, v) in pairs {
            settings.set(k.as_ref(), v);
        }
        settings
    }

    /// Loads `toml_file` (if it exists), then `dotenv_file` (if it exists), then the process
    /// environment, each overriding the one before.
    pub fn load(toml_file: Option<&Path>, dotenv_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some(path) = toml_file.filter(|p| p.exists()) {
            settings.merge_toml(path)?;
        }
        if let Some(path) = dotenv_file.filter(|p| p.exists()) {
            let iter = dotenvy::from_path_iter(path).map_err(|e| ConfigError::File {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| ConfigError::File {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
                settings.set(&k, v);
            }
        }
        for (k, v) in std::env::vars() {
            settings.set(&k, v);
        }
        Ok(settings)
    }

    fn merge_toml(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_error = |message: String| ConfigError::File {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(e.to_string()))?;
        for (key, value) in table {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                toml::Value::Table(_) => {
                    return Err(file_error(format!(
                        "{key}: nested tables are not supported"
                    )));
                }
                other => other.to_string(),
            };
            self.set(&key, text);
        }
        Ok(())
    }

    /// Sets one value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_uppercase(), value.into());
    }

    /// The raw value of `key`, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_uppercase())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// All keys starting with `prefix`, with the prefix removed.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.values
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v.as_str())))
    }

    /// A boolean (`true/false`, `1/0`, `yes/no`, `on/off`, Python's `True/False`).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.get(key)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" | "y" => Ok(true),
                "0" | "false" | "no" | "off" | "n" | "none" => Ok(false),
                _ => Err(ConfigError::invalid(
                    key,
                    format!("expected true or false, got {v:?}"),
                )),
            })
            .transpose()
    }

    /// An integer.
    pub fn int<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        self.get(key)
            .map(|v| {
                v.trim().parse::<T>().map_err(|_| {
                    ConfigError::invalid(key, format!("expected a whole number, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A duration such as `5 days`, `2 hours`, `30 minutes` or a number of seconds.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        self.get(key)
            .map(|v| parse_duration(v).map_err(|m| ConfigError::invalid(key, m)))
            .transpose()
    }

    /// A comma-separated list (also accepts Python-style `["a", "b"]`).
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).map(|v| {
            v.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    /// A string value, owned.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }
}

/// Parses Flask-Security style durations: `"5 days"`, `"1 days"`, `"2 hours"`, `"10 minutes"`,
/// `"30 seconds"`, `"1 week"`, or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut parts = text.split_whitespace();
    let (Some(number), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "expected e.g. \"5 days\" or a number of seconds, got {text:?}"
        ));
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("expected a whole number before the unit, got {number:?}"))?;
    let unit_secs = unit_seconds(unit).ok_or_else(|| format!("unknown time unit {unit:?}"))?;
    number
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| "duration too large".to_owned())
}

fn unit_seconds(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().trim_end_matches('s') {
        "second" | "sec" => 1,
        "minute" | "min" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        _ => return None,
    })
}

/// A rate limit such as `3 per 10 minutes` or `10/minute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Hits allowed per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// The text, as limits are reported (`"3 per 10 minute"`).
    pub description: String,
}

impl RateLimit {
    /// Parses `N per [M] unit` or `N/unit`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let normalized = text.trim().replace('/', " per ");
        let (count, period) = normalized
            .split_once(" per ")
            .ok_or_else(|| format!("expected e.g. \"3 per 10 minutes\", got {text:?}"))?;
        let limit: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("expected a count before \"per\", got {count:?}"))?;
        let period = period.trim();
        let (amount, unit) = match period.split_once(' ') {
            Some((n, unit)) => (
                n.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("bad period {period:?}"))?,
                unit.trim(),
            ),
            None => (1, period),
        };
        let secs = unit_seconds(unit).ok_or_else(|| format!("unknown time unit {unit:?}"))?;
        let singular = unit.trim_end_matches('s');
        let description = if amount == 1 {
            format!("{limit} per 1 {singular}")
        } else {
            format!("{limit} per {amount} {singular}")
        };
        Ok(Self {
            limit,
            window: Duration::from_secs(amount * secs),
            description,
        })
    }
}

/// Options of the email address validator (`SECURITY_EMAIL_VALIDATOR_ARGS`).
#[derive(Clone, Debug, Default)]
pub struct EmailValidatorArgs {
    /// Check that the domain can receive mail (DNS). Off by default; Rampart does not look up DNS
    /// and refuses to start when this is requested, rather than pretending.
    pub check_deliverability: bool,
}

/// The framework's configuration. `Default` holds Flask-Security's defaults, except where Rampart
/// is deliberately safer (generic responses on).
#[derive(Clone, Debug)]
pub struct SecurityConfig {
    /// `SECRET_KEY`: signs tokens, CSRF tokens and remember cookies.
    pub secret_key: SecretString,
    /// `SECRET_KEY_FALLBACKS`: older keys still accepted when verifying (key rotation).
    pub secret_key_fallbacks: Vec<SecretString>,
    /// `DEBUG`: development mode (cookies without `Secure`, detailed logs).
    pub debug: bool,
    /// `SERVER_NAME`: host (and optional port) for absolute links in mails; otherwise the request's
    /// `Host` header is used.
    pub server_name: Option<String>,
    /// `TRUSTED_HOSTS` (Flask's name): when set, requests whose `Host` is not one of these are
    /// refused with 400, so the `Host` header cannot steer links in mails (reset poisoning). An
    /// entry starting with `.` also admits its subdomains; ports are ignored. Empty: any host.
    pub trusted_hosts: Vec<String>,
    /// `PREFERRED_URL_SCHEME`: scheme of absolute links (`http`).
    pub url_scheme: String,
    /// `SECURITY_APP_NAME` / issuer shown in authenticator apps and pages.
    pub app_name: String,
    /// Password hashing and policy (`SECURITY_PASSWORD_*`).
    pub password: PasswordConfig,
    /// `SECURITY_REGISTERABLE`.
    pub registerable: bool,
    /// `SECURITY_SEND_REGISTER_EMAIL`.
    pub send_register_email: bool,
    /// `SECURITY_CONFIRMABLE`.
    pub confirmable: bool,
    /// `SECURITY_CONFIRM_EMAIL_WITHIN` (default 5 days).
    pub confirm_email_within: Duration,
    /// `SECURITY_LOGIN_WITHOUT_CONFIRMATION`.
    pub login_without_confirmation: bool,
    /// `SECURITY_RECOVERABLE`.
    pub recoverable: bool,
    /// `SECURITY_RESET_PASSWORD_WITHIN` (default 1 day).
    pub reset_password_within: Duration,
    /// `SECURITY_SEND_PASSWORD_RESET_NOTICE_EMAIL`.
    pub send_password_reset_notice_email: bool,
    /// `SECURITY_CHANGEABLE`.
    pub changeable: bool,
    /// `SECURITY_SEND_PASSWORD_CHANGE_EMAIL`.
    pub send_password_change_email: bool,
    /// `SECURITY_CHANGE_EMAIL`: signed-in users may change their email address, confirmed by a
    /// link mailed to the new one (off by default, as in Flask-Security).
    pub change_email: bool,
    /// `SECURITY_CHANGE_EMAIL_WITHIN` (default 2 hours).
    pub change_email_within: Duration,
    /// `SECURITY_TWO_FACTOR`: users may add a second factor (off by default).
    pub two_factor: bool,
    /// `SECURITY_TWO_FACTOR_ENABLED_METHODS` (default `email, authenticator`).
    pub two_factor_enabled_methods: Vec<String>,
    /// `SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY` (default 120 seconds either way of now).
    pub two_factor_authenticator_validity: Duration,
    /// `SECURITY_TWO_FACTOR_MAIL_VALIDITY` (default 5 minutes).
    pub two_factor_mail_validity: Duration,
    /// `SECURITY_TOTP_ISSUER`: the name authenticator apps show (default `SECURITY_APP_NAME`).
    pub totp_issuer: Option<String>,
    /// `SECURITY_TWO_FACTOR_RESCUE_MAIL`: where a user who lost both their second factor and
    /// their mail asks for help (`/tf-rescue` with `help`); default `no-reply@localhost`.
    pub two_factor_rescue_mail: String,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_CODES`: one-time recovery codes for users with a second
    /// factor (off by default).
    pub multi_factor_recovery_codes: bool,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_CODES_N` (default 5).
    pub multi_factor_recovery_codes_n: usize,
    /// `SECURITY_FRESHNESS`: how recent the password must be for sensitive changes (change of
    /// email, two-factor, recovery codes); older sessions re-enter it at `SECURITY_VERIFY_URL`.
    /// Default 24 hours; `off` (or a negative number, as in Flask-Security) disables the check.
    pub freshness: Option<Duration>,
    /// `SECURITY_TRACKABLE` (on by default in Rampart: the columns exist anyway).
    pub trackable: bool,
    /// `SECURITY_USERNAME_ENABLE`.
    pub username_enable: bool,
    /// `SECURITY_USERNAME_REQUIRED`.
    pub username_required: bool,
    /// `SECURITY_USERNAME_MIN_LENGTH`.
    pub username_min_length: usize,
    /// `SECURITY_USERNAME_MAX_LENGTH`.
    pub username_max_length: usize,
    /// `SECURITY_USERNAME_NORMALIZE_FORM`: the Unicode form usernames are stored and looked up
    /// in (default NFKD, as Flask-Security; `None` turns it off). Non-ASCII
    /// letters are case-folded in any case, see [`normalize_username`](crate::normalize_username).
    pub username_normalize_form: Option<crate::identity::NormalizeForm>,
    /// `SECURITY_RETURN_GENERIC_RESPONSES` (Rampart default `true`).
    pub return_generic_responses: bool,
    /// `SECURITY_DEFAULT_REMEMBER_ME`.
    pub default_remember_me: bool,
    /// `SECURITY_DEFAULT_ROLES`: roles given to every new registration (sample app: `User`).
    pub default_roles: Vec<String>,
    /// `SECURITY_URL_PREFIX`.
    pub url_prefix: String,
    /// `SECURITY_LOGIN_URL`.
    pub login_url: String,
    /// `SECURITY_LOGOUT_URL`.
    pub logout_url: String,
    /// `SECURITY_REGISTER_URL`.
    pub register_url: String,
    /// `SECURITY_RESET_URL`.
    pub reset_url: String,
    /// `SECURITY_CONFIRM_URL`.
    pub confirm_url: String,
    /// `SECURITY_CHANGE_URL`.
    pub change_url: String,
    /// `SECURITY_CHANGE_EMAIL_URL` (default `/change-email`).
    pub change_email_url: String,
    /// `SECURITY_TWO_FACTOR_SETUP_URL` (default `/tf-setup`).
    pub two_factor_setup_url: String,
    /// `SECURITY_TWO_FACTOR_TOKEN_VALIDATION_URL` (default `/tf-validate`).
    pub two_factor_token_validation_url: String,
    /// `SECURITY_TWO_FACTOR_RESCUE_URL` (default `/tf-rescue`).
    pub two_factor_rescue_url: String,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_CODES_URL` (default `/mf-recovery-codes`).
    pub multi_factor_recovery_codes_url: String,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_URL` (default `/mf-recovery`).
    pub multi_factor_recovery_url: String,
    /// `SECURITY_VERIFY_URL` (default `/verify`): re-enter the password.
    pub verify_url: String,
    /// `SECURITY_POST_LOGIN_VIEW`.
    pub post_login_view: String,
    /// `SECURITY_POST_LOGOUT_VIEW`.
    pub post_logout_view: String,
    /// `SECURITY_POST_REGISTER_VIEW` (default: a page telling to check the mail, or login).
    pub post_register_view: Option<String>,
    /// `SECURITY_POST_CONFIRM_VIEW`.
    pub post_confirm_view: Option<String>,
    /// `SECURITY_POST_RESET_VIEW`.
    pub post_reset_view: Option<String>,
    /// `SECURITY_POST_CHANGE_VIEW`.
    pub post_change_view: Option<String>,
    /// `SECURITY_POST_CHANGE_EMAIL_VIEW`: where a confirmed change of email lands (default
    /// `SECURITY_POST_LOGIN_VIEW`).
    pub post_change_email_view: Option<String>,
    /// `SECURITY_CHANGE_EMAIL_ERROR_VIEW`: where a bad or expired link lands (default
    /// `SECURITY_CHANGE_EMAIL_URL`).
    pub change_email_error_view: Option<String>,
    /// `SECURITY_TWO_FACTOR_POST_SETUP_VIEW`: where a finished two-factor setup or a disable lands
    /// (default the setup page).
    pub two_factor_post_setup_view: Option<String>,
    /// `SECURITY_REDIRECT_ALLOWED_HOSTS`: extra hosts `next` may point to.
    pub redirect_allowed_hosts: Vec<String>,
    /// `SECURITY_EMAIL_SENDER`.
    pub email_sender: String,
    /// `SECURITY_EMAIL_VALIDATOR_ARGS`.
    pub email_validator_args: EmailValidatorArgs,
    /// `PERMANENT_SESSION_LIFETIME`: idle lifetime of a session (seed: 14 days).
    pub session_lifetime: Duration,
    /// `SESSION_COOKIE_NAME`.
    pub session_cookie_name: String,
    /// `SESSION_COOKIE_SECURE`; default: on unless `DEBUG`.
    pub cookie_secure: bool,
    /// `REMEMBER_COOKIE_DURATION` (365 days).
    pub remember_cookie_duration: Duration,
    /// `REMEMBER_COOKIE_NAME`.
    pub remember_cookie_name: String,
    /// `SECURITY_TOKEN_AUTHENTICATION_HEADER`.
    pub token_header: String,
    /// `SECURITY_TOKEN_AUTHENTICATION_KEY` (query parameter).
    pub token_query_key: String,
    /// `SECURITY_TOKEN_MAX_AGE` (default 15 minutes, as the contract observed).
    pub token_max_age: Duration,
    /// `SECURITY_CSRF_COOKIE_NAME` (`XSRF-TOKEN`).
    pub csrf_cookie_name: String,
    /// `SECURITY_LOGIN_RATE_LIMIT` (seed: `3 per 10 minutes`), per client address.
    pub login_rate_limit: Option<RateLimit>,
    /// `SECURITY_LOGIN_IDENTITY_RATE_LIMIT` (default `10 per 5 minutes`): login attempts per
    /// account (email or username), from any address, so guessing spread over many addresses is
    /// throttled too. A successful login clears the account's count.
    pub login_identity_rate_limit: Option<RateLimit>,
    /// `SECURITY_MAIL_RATE_LIMIT` (default `10 per 10 minutes`, about one a minute): mails
    /// visitors can have sent to one address (reset instructions, confirmation, registration,
    /// change of email), so nobody can flood someone else's mailbox. Applies to any address,
    /// known or not.
    pub mail_rate_limit: Option<RateLimit>,
    /// `SECURITY_TRUSTED_PROXIES`: how many reverse proxies' `X-Forwarded-For` entries to trust.
    pub trusted_proxies: usize,
    /// `SECURITY_MSG_*` overrides.
    pub messages: HashMap<String, String>,
    /// `SECURITY_TEMPLATE_DIR`: folder whose templates override the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// `MAX_CONTENT_LENGTH`: request body limit in bytes (1 MiB).
    pub max_content_length: usize,
    /// `SECURITY_AUTH_CACHE_TTL`: how long this process may reuse a session row and a user with
    /// their roles before reading them again (default 5 s; `0` turns the cache off). Changes made
    /// through the framework take effect on the next request regardless; the TTL bounds how long
    /// changes made by other processes (other instances, the CLI) go unseen. See
    /// [`Datastore`](crate::Datastore).
    pub auth_cache_ttl: Duration,
    /// Larger (or smaller) body limits for paths starting with a prefix, e.g. an upload form;
    /// the longest matching prefix wins. See [`SecurityConfig::body_limit_for`].
    pub body_limits: Vec<(String, usize)>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            secret_key: SecretString::from(String::new()),
            secret_key_fallbacks: Vec::new(),
            debug: false,
            server_name: None,
            trusted_hosts: Vec::new(),
            url_scheme: "http".into(),
            app_name: "Rampart".into(),
            password: PasswordConfig::default(),
            registerable: false,
            send_register_email: true,
            confirmable: false,
            confirm_email_within: Duration::from_secs(5 * 86_400),
            login_without_confirmation: false,
            recoverable: false,
            reset_password_within: Duration::from_secs(86_400),
            send_password_reset_notice_email: true,
            changeable: false,
            send_password_change_email: true,
            change_email: false,
            change_email_within: Duration::from_secs(2 * 3600),
            two_factor: false,
            two_factor_enabled_methods: vec!["email".into(), "authenticator".into()],
            two_factor_authenticator_validity: Duration::from_secs(120),
            two_factor_mail_validity: Duration::from_secs(300),
            totp_issuer: None,
            two_factor_rescue_mail: "no-reply@localhost".into(),
            multi_factor_recovery_codes: false,
            multi_factor_recovery_codes_n: 5,
            freshness: Some(Duration::from_secs(24 * 3600)),
            trackable: true,
            username_enable: false,
            username_required: false,
            username_min_length: 4,
            username_max_length: 32,
            username_normalize_form: Some(crate::identity::NormalizeForm::Nfkd),
            return_generic_responses: true,
            default_remember_me: false,
            default_roles: Vec::new(),
            url_prefix: String::new(),
            login_url: "/login".into(),
            logout_url: "/logout".into(),
            register_url: "/register".into(),
            reset_url: "/reset".into(),
            confirm_url: "/confirm".into(),
            change_url: "/change".into(),
            change_email_url: "/change-email".into(),
            two_factor_setup_url: "/tf-setup".into(),
            two_factor_token_validation_url: "/tf-validate".into(),
            two_factor_rescue_url: "/tf-rescue".into(),
            multi_factor_recovery_codes_url: "/mf-recovery-codes".into(),
            multi_factor_recovery_url: "/mf-recovery".into(),
            verify_url: "/verify".into(),
            post_login_view: "/".into(),
            post_logout_view: "/".into(),
            post_register_view: None,
            post_confirm_view: None,
            post_reset_view: None,
            post_change_view: None,
            post_change_email_view: None,
            change_email_error_view: None,
            two_factor_post_setup_view: None,
            redirect_allowed_hosts: Vec::new(),
            email_sender: "no-reply@localhost".into(),
            email_validator_args: EmailValidatorArgs::default(),
            session_lifetime: Duration::from_secs(14 * 86_400),
            session_cookie_name: "session".into(),
            cookie_secure: true,
            remember_cookie_duration: Duration::from_secs(365 * 86_400),
            remember_cookie_name: "remember_token".into(),
            token_header: "Authentication-Token".into(),
            token_query_key: "auth_token".into(),
            token_max_age: Duration::from_secs(15 * 60),
            csrf_cookie_name: "XSRF-TOKEN".into(),
            mail_rate_limit: Some(RateLimit {
                limit: 10,
                window: Duration::from_secs(600),
                description: "10 per 10 minute".into(),
            }),
            login_identity_rate_limit: Some(RateLimit {
                limit: 10,
                window: Duration::from_secs(300),
                description: "10 per 5 minute".into(),
            }),
            login_rate_limit: Some(RateLimit {
                limit: 3,
                window: Duration::from_secs(600),
                description: "3 per 10 minute".into(),
            }),
            trusted_proxies: 0,
            messages: HashMap::new(),
            template_dir: None,
            max_content_length: 1024 * 1024,
            auth_cache_ttl: Duration::from_secs(5),
            body_limits: Vec::new(),
        }
    }
}

impl SecurityConfig {
    /// Whether `host` (a `Host` header, port and all) is admitted by `TRUSTED_HOSTS`; always
    /// `true` when that is empty.
    ///
    /// ```
    /// let mut config = rampart::SecurityConfig::default();
    /// assert!(config.is_trusted_host("anything.example"));
    /// config.trusted_hosts = vec!["example.com".into(), ".example.org".into()];
    /// assert!(config.is_trusted_host("EXAMPLE.com:8443"));
    /// assert!(config.is_trusted_host("www.example.org"));
    /// assert!(config.is_trusted_host("example.org"));
    /// assert!(!config.is_trusted_host("evil.com"));
    /// assert!(!config.is_trusted_host("notexample.org"));
    /// ```
    pub fn is_trusted_host(&self, host: &str) -> bool {
        if self.trusted_hosts.is_empty() {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        // Strip a port, leaving IPv6 literals ("[::1]:5000") whole.
        let name = match host.rsplit_once(':') {
            Some((name, port))
                if port.bytes().all(|b| b.is_ascii_digit())
                    && (!name.contains(':') || name.ends_with(']')) =>
            {
                name
            }
            _ => host.as_str(),
        };
        self.trusted_hosts
            .iter()
            .any(|trusted| match trusted.strip_prefix('.') {
                Some(domain) => name == domain || name.ends_with(trusted.as_str()),
                None => name == trusted,
            })
    }

    /// Builds the configuration from settings (Flask-Security names), starting from the defaults.
    ///
    /// ```
    /// let settings = rampart::Settings::from_pairs([
    ///     ("SECRET_KEY", "not-a-real-secret-key-but-long-enough"),
    ///     ("SECURITY_PASSWORD_SALT", "salt-salt-salt"),
    ///     ("SECURITY_REGISTERABLE", "true"),
    ///     ("SECURITY_CHANGE_URL", "/dashboard/security/"),
    /// ]);
    /// let config = rampart::SecurityConfig::from_settings(&settings).unwrap();
    /// assert!(config.registerable);
    /// assert_eq!(config.change_url, "/dashboard/security/");
    /// ```
    pub fn from_settings(s: &Settings) -> Result<Self, ConfigError> {
        let mut c = Self::default();
        macro_rules! set {
            ($field:expr, $value:expr) => {
                if let Some(v) = $value {
                    $field = v;
                }
            };
        }
        set!(c.debug, s.bool("DEBUG")?);
        c.cookie_secure = !c.debug;
        if let Some(key) = s.string("SECRET_KEY") {
            c.secret_key = SecretString::from(key);
        }
        c.secret_key_fallbacks = s
            .list("SECRET_KEY_FALLBACKS")
            .unwrap_or_default()
            .into_iter()
            .map(SecretString::from)
            .collect();
        c.server_name = s.string("SERVER_NAME");
        c.trusted_hosts = s
            .list("TRUSTED_HOSTS")
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        set!(c.url_scheme, s.string("PREFERRED_URL_SCHEME"));
        set!(c.app_name, s.string("SECURITY_APP_NAME"));
        if let Some(salt) = s.string("SECURITY_PASSWORD_SALT") {
            c.password.salt = SecretString::from(salt);
        }
        set!(
            c.password.min_length,
            s.int("SECURITY_PASSWORD_LENGTH_MIN")?
        );
        set!(
            c.password.max_length,
            s.int("SECURITY_PASSWORD_LENGTH_MAX")?
        );
        set!(
            c.password.argon2_memory_kib,
            s.int("SECURITY_ARGON2_MEMORY_KIB")?
        );
        set!(
            c.password.argon2_iterations,
            s.int("SECURITY_ARGON2_ITERATIONS")?
        );
        set!(
            c.password.argon2_parallelism,
            s.int("SECURITY_ARGON2_PARALLELISM")?
        );
        set!(
            c.password.max_concurrent,
            s.int("SECURITY_HASHING_MAX_CONCURRENT")?
        );
        set!(c.password.max_queued, s.int("SECURITY_HASHING_MAX_QUEUED")?);
        if let Some(scheme) = s.get("SECURITY_PASSWORD_HASH")
            && scheme != "argon2"
        {
            return Err(ConfigError::invalid(
                "SECURITY_PASSWORD_HASH",
                format!(
                    "only argon2 is supported for new hashes (others are verified), got {scheme:?}"
                ),
            ));
        }
        set!(c.registerable, s.bool("SECURITY_REGISTERABLE")?);
        set!(
            c.send_register_email,
            s.bool("SECURITY_SEND_REGISTER_EMAIL")?
        );
        set!(c.confirmable, s.bool("SECURITY_CONFIRMABLE")?);
        set!(
            c.confirm_email_within,
            s.duration("SECURITY_CONFIRM_EMAIL_WITHIN")?
        );
        set!(
            c.login_without_confirmation,
            s.bool("SECURITY_LOGIN_WITHOUT_CONFIRMATION")?
        );
        set!(c.recoverable, s.bool("SECURITY_RECOVERABLE")?);
        set!(
            c.reset_password_within,
            s.duration("SECURITY_RESET_PASSWORD_WITHIN")?
        );
        set!(
            c.send_password_reset_notice_email,
            s.bool("SECURITY_SEND_PASSWORD_RESET_NOTICE_EMAIL")?
        );
        set!(c.changeable, s.bool("SECURITY_CHANGEABLE")?);
        set!(
            c.send_password_change_email,
            s.bool("SECURITY_SEND_PASSWORD_CHANGE_EMAIL")?
        );
        set!(c.change_email, s.bool("SECURITY_CHANGE_EMAIL")?);
        set!(
            c.change_email_within,
            s.duration("SECURITY_CHANGE_EMAIL_WITHIN")?
        );
        set!(c.two_factor, s.bool("SECURITY_TWO_FACTOR")?);
        if let Some(methods) = s.list("SECURITY_TWO_FACTOR_ENABLED_METHODS") {
            if let Some(bad) = methods
                .iter()
                .find(|m| !matches!(m.as_str(), "email" | "authenticator"))
            {
                return Err(ConfigError::invalid(
                    "SECURITY_TWO_FACTOR_ENABLED_METHODS",
                    format!("unknown method {bad:?} (email, authenticator)"),
                ));
            }
            c.two_factor_enabled_methods = methods;
        }
        set!(
            c.two_factor_authenticator_validity,
            s.duration("SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY")?
        );
        set!(
            c.two_factor_mail_validity,
            s.duration("SECURITY_TWO_FACTOR_MAIL_VALIDITY")?
        );
        c.totp_issuer = s.string("SECURITY_TOTP_ISSUER");
        set!(
            c.two_factor_rescue_mail,
            s.string("SECURITY_TWO_FACTOR_RESCUE_MAIL")
        );
        set!(
            c.multi_factor_recovery_codes,
            s.bool("SECURITY_MULTI_FACTOR_RECOVERY_CODES")?
        );
        if let Some(value) = s.string("SECURITY_FRESHNESS") {
            let value = value.trim();
            c.freshness = if value.eq_ignore_ascii_case("off") || value.starts_with('-') {
                None
            } else {
                s.duration("SECURITY_FRESHNESS")?
            };
        }
        if let Some(n) = s.int::<usize>("SECURITY_MULTI_FACTOR_RECOVERY_CODES_N")? {
            if !(1..=20).contains(&n) {
                return Err(ConfigError::invalid(
                    "SECURITY_MULTI_FACTOR_RECOVERY_CODES_N",
                    format!("{n} is not from 1 to 20"),
                ));
            }
            c.multi_factor_recovery_codes_n = n;
        }
        set!(c.trackable, s.bool("SECURITY_TRACKABLE")?);
        set!(c.username_enable, s.bool("SECURITY_USERNAME_ENABLE")?);
        set!(c.username_required, s.bool("SECURITY_USERNAME_REQUIRED")?);
        set!(
            c.username_min_length,
            s.int("SECURITY_USERNAME_MIN_LENGTH")?
        );
        set!(
            c.username_max_length,
            s.int("SECURITY_USERNAME_MAX_LENGTH")?
        );
        if let Some(form) = s.string("SECURITY_USERNAME_NORMALIZE_FORM") {
            c.username_normalize_form = match form.trim() {
                "" | "None" | "none" => None,
                name => Some(name.parse().map_err(|e: crate::identity::UnknownForm| {
                    ConfigError::invalid("SECURITY_USERNAME_NORMALIZE_FORM", e.to_string())
                })?),
            };
        }
        set!(
            c.return_generic_responses,
            s.bool("SECURITY_RETURN_GENERIC_RESPONSES")?
        );
        set!(
            c.default_remember_me,
            s.bool("SECURITY_DEFAULT_REMEMBER_ME")?
        );
        set!(c.default_roles, s.list("SECURITY_DEFAULT_ROLES"));
        set!(c.url_prefix, s.string("SECURITY_URL_PREFIX"));
        for (field, key) in [
            (&mut c.login_url, "SECURITY_LOGIN_URL"),
            (&mut c.logout_url, "SECURITY_LOGOUT_URL"),
            (&mut c.register_url, "SECURITY_REGISTER_URL"),
            (&mut c.reset_url, "SECURITY_RESET_URL"),
            (&mut c.confirm_url, "SECURITY_CONFIRM_URL"),
            (&mut c.change_url, "SECURITY_CHANGE_URL"),
            (&mut c.change_email_url, "SECURITY_CHANGE_EMAIL_URL"),
            (&mut c.two_factor_setup_url, "SECURITY_TWO_FACTOR_SETUP_URL"),
            (
                &mut c.two_factor_token_validation_url,
                "SECURITY_TWO_FACTOR_TOKEN_VALIDATION_URL",
            ),
            (
                &mut c.two_factor_rescue_url,
                "SECURITY_TWO_FACTOR_RESCUE_URL",
            ),
            (
                &mut c.multi_factor_recovery_codes_url,
                "SECURITY_MULTI_FACTOR_RECOVERY_CODES_URL",
            ),
            (
                &mut c.multi_factor_recovery_url,
                "SECURITY_MULTI_FACTOR_RECOVERY_URL",
            ),
            (&mut c.verify_url, "SECURITY_VERIFY_URL"),
            (&mut c.post_login_view, "SECURITY_POST_LOGIN_VIEW"),
            (&mut c.post_logout_view, "SECURITY_POST_LOGOUT_VIEW"),
        ] {
            if let Some(v) = s.string(key) {
                *field = checked_path(key, v)?;
            }
        }
        for (field, key) in [
            (&mut c.post_register_view, "SECURITY_POST_REGISTER_VIEW"),
            (&mut c.post_confirm_view, "SECURITY_POST_CONFIRM_VIEW"),
            (&mut c.post_reset_view, "SECURITY_POST_RESET_VIEW"),
            (&mut c.post_change_view, "SECURITY_POST_CHANGE_VIEW"),
            (
                &mut c.post_change_email_view,
                "SECURITY_POST_CHANGE_EMAIL_VIEW",
            ),
            (
                &mut c.change_email_error_view,
                "SECURITY_CHANGE_EMAIL_ERROR_VIEW",
            ),
            (
                &mut c.two_factor_post_setup_view,
                "SECURITY_TWO_FACTOR_POST_SETUP_VIEW",
            ),
        ] {
            if let Some(v) = s.string(key) {
                *field = Some(checked_path(key, v)?);
            }
        }
        set!(
            c.redirect_allowed_hosts,
            s.list("SECURITY_REDIRECT_ALLOWED_HOSTS")
        );
        set!(c.email_sender, s.string("SECURITY_EMAIL_SENDER"));
        if let Some(args) = s.get("SECURITY_EMAIL_VALIDATOR_ARGS") {
            c.email_validator_args = parse_validator_args(args)?;
        }
        set!(
            c.session_lifetime,
            s.duration("PERMANENT_SESSION_LIFETIME")?
        );
        set!(c.session_cookie_name, s.string("SESSION_COOKIE_NAME"));
        set!(c.cookie_secure, s.bool("SESSION_COOKIE_SECURE")?);
        set!(
            c.remember_cookie_duration,
            s.duration("REMEMBER_COOKIE_DURATION")?
        );
        set!(c.remember_cookie_name, s.string("REMEMBER_COOKIE_NAME"));
        set!(
            c.token_header,
            s.string("SECURITY_TOKEN_AUTHENTICATION_HEADER")
        );
        set!(
            c.token_query_key,
            s.string("SECURITY_TOKEN_AUTHENTICATION_KEY")
        );
        set!(c.token_max_age, s.duration("SECURITY_TOKEN_MAX_AGE")?);
        set!(c.csrf_cookie_name, s.string("SECURITY_CSRF_COOKIE_NAME"));
        if let Some(limit) = optional_rate_limit(s, "SECURITY_LOGIN_RATE_LIMIT")? {
            c.login_rate_limit = limit;
        }
        if let Some(limit) = optional_rate_limit(s, "SECURITY_LOGIN_IDENTITY_RATE_LIMIT")? {
            c.login_identity_rate_limit = limit;
        }
        if let Some(limit) = optional_rate_limit(s, "SECURITY_MAIL_RATE_LIMIT")? {
            c.mail_rate_limit = limit;
        }
        set!(c.trusted_proxies, s.int("SECURITY_TRUSTED_PROXIES")?);
        for (key, text) in s.with_prefix("SECURITY_MSG_") {
            if !crate::Messages::is_known(key) {
                return Err(ConfigError::invalid(
                    &format!("SECURITY_MSG_{key}"),
                    "no such message",
                ));
            }
            c.messages.insert(key.to_owned(), text.to_owned());
        }
        c.template_dir = s.string("SECURITY_TEMPLATE_DIR").map(PathBuf::from);
        set!(c.max_content_length, s.int("MAX_CONTENT_LENGTH")?);
        set!(c.auth_cache_ttl, s.duration("SECURITY_AUTH_CACHE_TTL")?);
        c.validate()?;
        Ok(c)
    }

    /// Checks the settings that have no safe default.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret_key.expose_secret().len() < 16 {
            return Err(ConfigError::Missing {
                key: "SECRET_KEY".into(),
                message: "set a random secret of at least 16 characters \
                          (e.g. `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
                    .into(),
            });
        }
        if self.password.salt.expose_secret().is_empty() {
            return Err(ConfigError::Missing {
                key: "SECURITY_PASSWORD_SALT".into(),
                message: "set a random salt (it keys the password pre-hash; keep it stable)".into(),
            });
        }
        if self.email_validator_args.check_deliverability {
            return Err(ConfigError::invalid(
                "SECURITY_EMAIL_VALIDATOR_ARGS",
                "check_deliverability needs DNS look-ups, which Rampart does not do; set it to false",
            ));
        }
        if self.username_min_length > self.username_max_length {
            return Err(ConfigError::invalid(
                "SECURITY_USERNAME_MIN_LENGTH",
                "must not exceed SECURITY_USERNAME_MAX_LENGTH",
            ));
        }
        if self.password.min_length == 0 || self.password.min_length > self.password.max_length {
            return Err(ConfigError::invalid(
                "SECURITY_PASSWORD_LENGTH_MIN",
                "must be at least 1 and not exceed SECURITY_PASSWORD_LENGTH_MAX",
            ));
        }
        Ok(())
    }

    /// The body limit for a request to `path`: the longest matching prefix of
    /// [`body_limits`](Self::body_limits), else `MAX_CONTENT_LENGTH`.
    ///
    /// ```
    /// let mut config = rampart::SecurityConfig::default();
    /// config.body_limits.push(("/upload/".into(), 8 << 20));
    /// assert_eq!(config.body_limit_for("/upload/avatar"), 8 << 20);
    /// assert_eq!(config.body_limit_for("/api/profile"), 1 << 20);
    /// ```
    pub fn body_limit_for(&self, path: &str) -> usize {
        self.body_limits
            .iter()
            .filter(|(prefix, _)| path.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map_or(self.max_content_length, |(_, limit)| *limit)
    }

    /// The full path of a framework URL (with `SECURITY_URL_PREFIX`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url_prefix, path)
    }
}

/// A rate limit setting: `Some(None)` when turned off (`off`, `none`, `false`, `0`).
fn optional_rate_limit(s: &Settings, key: &str) -> Result<Option<Option<RateLimit>>, ConfigError> {
    let Some(v) = s.get(key) else {
        return Ok(None);
    };
    Ok(Some(match v.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "false" | "0" => None,
        _ => Some(RateLimit::parse(v).map_err(|m| ConfigError::invalid(key, m))?),
    }))
}

fn checked_path(key: &str, value: String) -> Result<String, ConfigError> {
    if value.starts_with('/') && !value.starts_with("//") {
        Ok(value)
    } else {
        Err(ConfigError::invalid(
            key,
            format!("expected a path starting with '/', got {value:?}"),
        ))
    }
}

/// Parses `{"check_deliverability": false}` (JSON or Python literal) or `check_deliverability=false`.
fn parse_validator_args(text: &str) -> Result<EmailValidatorArgs, ConfigError> {
    const KEY: &str = "SECURITY_EMAIL_VALIDATOR_ARGS";
    let normalized = text
        .replace("True", "true")
        .replace("False", "false")
        .replace('\'', "\"");
    let map: HashMap<String, serde_json::Value> = if normalized.trim_start().starts_with('{') {
        serde_json::from_str(&normalized).map_err(|e| ConfigError::invalid(KEY, e.to_string()))?
    } else {
        normalized
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    ConfigError::invalid(KEY, format!("expected key=value, got {pair:?}"))
                })?;
                let v = match v.trim() {
                    "true" | "1" => serde_json::Value::Bool(true),
                    "false" | "0" => serde_json::Value::Bool(false),
                    other => serde_json::Value::String(other.to_owned()),
                };
                Ok((k.trim().to_owned(), v))
            })
            .collect::<Result<_, ConfigError>>()?
    };
    let mut args = EmailValidatorArgs::default();
    for (k, v) in map {
        match (k.as_str(), v) {
            ("check_deliverability", serde_json::Value::Bool(b)) => args.check_deliverability = b,
            ("allow_smtputf8" | "allow_empty_local" | "globally_deliverable", _) => {}
            (other, _) => {
                return Err(ConfigError::invalid(
                    KEY,
                    format!("unsupported option {other:?}"),
                ));
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("SECRET_KEY", "0123456789abcdef0123"),
            ("SECURITY_PASSWORD_SALT", "salt"),
        ]
    }

    #[test]
    fn durations_in_flask_security_form_are_parsed() {
        assert_eq!(
            parse_duration("5 days").unwrap(),
            Duration::from_secs(5 * 86_400)
        );
        assert_eq!(
            parse_duration("1 days").unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_duration("2 hours").unwrap(),
            Duration::from_secs(7200)
        );
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn rate_limits_parse_and_describe_themselves_like_flask_limiter() {
        let limit = RateLimit::parse("3 per 10 minutes").unwrap();
        assert_eq!((limit.limit, limit.window), (3, Duration::from_secs(600)));
        assert_eq!(limit.description, "3 per 10 minute");
        let limit = RateLimit::parse("100/minute").unwrap();
        assert_eq!((limit.limit, limit.window), (100, Duration::from_secs(60)));
        assert!(RateLimit::parse("lots").is_err());
    }

    #[test]
    fn the_username_normalize_form_is_nfkd_unless_set() {
        use crate::identity::NormalizeForm;
        let form = |value: Option<&'static str>| {
            let mut pairs = base();
            if let Some(value) = value {
                pairs.push(("SECURITY_USERNAME_NORMALIZE_FORM", value));
            }
            SecurityConfig::from_settings(&Settings::from_pairs(pairs))
                .map(|c| c.username_normalize_form)
        };
        assert_eq!(form(None).unwrap(), Some(NormalizeForm::Nfkd));
        assert_eq!(form(Some("NFC")).unwrap(), Some(NormalizeForm::Nfc));
        assert_eq!(form(Some("nfkc")).unwrap(), Some(NormalizeForm::Nfkc));
        assert_eq!(form(Some("none")).unwrap(), None);
        assert_eq!(form(Some("None")).unwrap(), None);
        let err = form(Some("NFX")).unwrap_err();
        assert!(
            err.to_string().contains("SECURITY_USERNAME_NORMALIZE_FORM"),
            "{err}"
        );
    }

    #[test]
    fn invalid_values_name_their_key() {
        let mut pairs = base();
        pairs.push(("SECURITY_REGISTERABLE", "maybe"));
        let err = SecurityConfig::from_settings(&Settings::from_pairs(pairs)).unwrap_err();
        assert!(err.to_string().contains("SECURITY_REGISTERABLE"), "{err}");
        for (key, value) in [
            ("SECURITY_MULTI_FACTOR_RECOVERY_CODES_N", "0"),
            ("SECURITY_MULTI_FACTOR_RECOVERY_CODES_N", "many"),
            ("SECURITY_TWO_FACTOR_ENABLED_METHODS", "email, sms"),
            ("SECURITY_FRESHNESS", "soon"),
        ] {
            let mut pairs = base();
            pairs.push((key, value));
            let err = SecurityConfig::from_settings(&Settings::from_pairs(pairs)).unwrap_err();
            assert!(err.to_string().contains(key), "{key}={value}: {err}");
        }
    }

    #[test]
    fn missing_secret_key_is_an_error() {
        let err =
            SecurityConfig::from_settings(&Settings::from_pairs([("SECURITY_PASSWORD_SALT", "x")]))
                .unwrap_err();
        assert!(err.to_string().contains("SECRET_KEY"));
    }

    #[test]
    fn email_validator_args_accept_python_literals() {
        let args = parse_validator_args("{\"check_deliverability\": False}").unwrap();
        assert!(!args.check_deliverability);
        let mut pairs = base();
        pairs.push((
            "SECURITY_EMAIL_VALIDATOR_ARGS",
            "{'check_deliverability': True}",
        ));
        assert!(SecurityConfig::from_settings(&Settings::from_pairs(pairs)).is_err());
    }

    #[test]
    fn debug_turns_off_secure_cookies_unless_forced() {
        let mut pairs = base();
        pairs.push(("DEBUG", "1"));
        let c = SecurityConfig::from_settings(&Settings::from_pairs(pairs.clone())).unwrap();
        assert!(!c.cookie_secure);
        pairs.push(("SESSION_COOKIE_SECURE", "true"));
        let c = SecurityConfig::from_settings(&Settings::from_pairs(pairs)).unwrap();
        assert!(c.cookie_secure);
    }

    #[test]
    fn message_overrides_must_name_known_messages() {
        let mut pairs = base();
        pairs.push(("SECURITY_MSG_INVALID_PASSWORD", "Wrong"));
        let c = SecurityConfig::from_settings(&Settings::from_pairs(pairs.clone())).unwrap();
        assert_eq!(
            c.messages.get("INVALID_PASSWORD").map(String::as_str),
            Some("Wrong")
        );
        pairs.push(("SECURITY_MSG_NO_SUCH", "x"));
        assert!(SecurityConfig::from_settings(&Settings::from_pairs(pairs)).is_err());
    }
}
