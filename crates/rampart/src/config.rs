//! Configuration: [`SecurityConfig`] with Flask-Security's `SECURITY_*` names and defaults, and
//! [`Settings`], the layered key/value source it is read from (defaults → `rampart.toml` → `.env`
//! → environment).
//!
//! Every setting can be given with its Flask-Security name, e.g. `SECURITY_REGISTERABLE=true`,
//! `SECURITY_CONFIRMABLE=true`, `SECURITY_PASSWORD_SALT=…`, `SECURITY_CHANGE_URL=/account/`.
//! Invalid values are reported with the key that holds them.
//!
//! - `settings.rs`: [`Settings`], the layered loader, and the reading of durations and rate limits;
//! - `names.rs`: THE table, each `SECURITY_*` name → its field (loading, docs, templates);
//! - `features.rs`: one `#[non_exhaustive]` struct per feature ([`RegisterConfig`],
//!   [`ChangeConfig`], …), a field of [`SecurityConfig`] named after the feature;
//! - `http.rs`: sessions and cookies, API tokens, CSRF, rate limits.
//!
//! Cross-cutting settings (secret key, debug, hosts, URL prefix, app name, passwords, mail sender,
//! messages, templates, body limits) are fields of [`SecurityConfig`] itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::password::PasswordConfig;

mod activity;
mod features;
mod http;
mod i18n;
pub(crate) mod names;
pub(crate) mod oauth;
mod settings;
mod unified_signin;
mod usernames;

pub use activity::ActivityConfig;
pub use features::{
    ChangeConfig, ChangeEmailConfig, ConfirmConfig, LoginConfig, LogoutConfig, RecoverConfig,
    RecoveryCodesConfig, RegisterConfig, TwoFactorConfig, UsernameConfig, VerifyConfig,
    WebauthnConfig,
};
pub use http::{CsrfConfig, RateLimitConfig, SessionConfig, TokenConfig};
pub use i18n::I18nConfig;
pub use oauth::{GOOGLE_ISSUER, OauthClient, OauthConfig, OauthKind, OauthProvider};
pub use settings::{RateLimit, Settings};
pub use unified_signin::{SmsConfig, SmsServiceConfig, UnifiedSigninConfig};
pub use usernames::{ChangeUsernameConfig, UsernameRecoveryConfig};

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

/// Options of the email address validator (`SECURITY_EMAIL_VALIDATOR_ARGS`).
#[derive(Clone, Debug, Default)]
pub struct EmailValidatorArgs {
    /// Check that the domain can receive mail (DNS). Off by default; Rampart does not look up DNS
    /// and refuses to start when this is requested, rather than pretending.
    pub check_deliverability: bool,
}

/// The framework's configuration. `Default` holds Flask-Security's defaults, except where Rampart
/// is deliberately safer (generic responses on).
///
/// Each feature's settings are a field named after it (`config.register.enabled`,
/// `config.change.url`); the settings every feature shares are fields of their own.
///
#[doc = include_str!("../../../docs/configuration.md")]
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
    /// `SECURITY_URL_PREFIX`: put before every framework path (see [`url`](Self::url)).
    pub url_prefix: String,
    /// Password hashing and policy (`SECURITY_PASSWORD_*`, `SECURITY_ARGON2_*`,
    /// `SECURITY_HASHING_*`).
    pub password: PasswordConfig,
    /// `SECURITY_TRACKABLE` (on by default in Rampart: the columns exist anyway).
    pub trackable: bool,
    /// `SECURITY_RETURN_GENERIC_RESPONSES` (Rampart default `true`).
    pub return_generic_responses: bool,
    /// `SECURITY_OPENAPI` (Rampart's own, default `false`): serve the OpenAPI description of the
    /// JSON API at `GET /openapi.json` (see [`Security::openapi`](crate::Security::openapi)).
    pub openapi: bool,
    /// `SECURITY_REDIRECT_ALLOWED_HOSTS`: extra hosts `next` may point to.
    pub redirect_allowed_hosts: Vec<String>,
    /// `SECURITY_EMAIL_SENDER`.
    pub email_sender: String,
    /// `SECURITY_EMAIL_VALIDATOR_ARGS`.
    pub email_validator_args: EmailValidatorArgs,
    /// `SECURITY_TRUSTED_PROXIES`: how many reverse proxies' `X-Forwarded-For` entries to trust.
    pub trusted_proxies: usize,
    /// `SECURITY_MSG_*` overrides.
    pub messages: HashMap<String, String>,
    /// `SECURITY_PAGE_MSG_*` overrides for HTML pages only (Rampart's own): JSON answers keep
    /// Flask-Security's wording (or the `SECURITY_MSG_*` override) word for word.
    pub page_messages: HashMap<String, String>,
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
    /// Sign-in: `SECURITY_LOGIN_URL`, `SECURITY_POST_LOGIN_VIEW`, `SECURITY_DEFAULT_REMEMBER_ME`.
    pub login: LoginConfig,
    /// Sign-out: `SECURITY_LOGOUT_URL`, `SECURITY_POST_LOGOUT_VIEW`.
    pub logout: LogoutConfig,
    /// Registration: `SECURITY_REGISTERABLE` and its settings.
    pub register: RegisterConfig,
    /// Confirmation of the email address: `SECURITY_CONFIRMABLE` and its settings.
    pub confirm: ConfirmConfig,
    /// Password reset: `SECURITY_RECOVERABLE` and its settings.
    pub recover: RecoverConfig,
    /// Change of password: `SECURITY_CHANGEABLE` and its settings.
    pub change: ChangeConfig,
    /// Change of email address: `SECURITY_CHANGE_EMAIL` and its settings.
    pub change_email: ChangeEmailConfig,
    /// Two-factor sign-in: `SECURITY_TWO_FACTOR` and its settings.
    pub two_factor: TwoFactorConfig,
    /// Recovery codes: `SECURITY_MULTI_FACTOR_RECOVERY_CODES` and its settings.
    pub recovery_codes: RecoveryCodesConfig,
    /// Passkeys / WebAuthn: `SECURITY_WEBAUTHN` and its `SECURITY_WAN_*` settings.
    pub webauthn: WebauthnConfig,
    /// Re-authentication: `SECURITY_FRESHNESS`, `SECURITY_VERIFY_URL`.
    pub verify: VerifyConfig,
    /// Unified sign-in: `SECURITY_UNIFIED_SIGNIN` and its `SECURITY_US_*` settings.
    pub unified_signin: UnifiedSigninConfig,
    /// Text messages and phone numbers: `SECURITY_SMS_*`, `SECURITY_PHONE_REGION_DEFAULT`.
    pub sms: SmsConfig,
    /// Usernames: `SECURITY_USERNAME_*`.
    pub username: UsernameConfig,
    /// Change of username: `SECURITY_CHANGE_USERNAME` and its settings.
    pub change_username: ChangeUsernameConfig,
    /// Username recovery: `SECURITY_USERNAME_RECOVERY` and its settings.
    pub username_recovery: UsernameRecoveryConfig,
    /// Social sign-in: `SECURITY_OAUTH_ENABLE`, `SECURITY_OAUTH_PROVIDERS` and the providers'
    /// clients.
    pub oauth: OauthConfig,
    /// Languages: `BABEL_DEFAULT_LOCALE`, `SECURITY_I18N_DIRNAME`, `SECURITY_I18N_DOMAIN`.
    pub i18n: I18nConfig,
    /// Sessions and cookies: `PERMANENT_SESSION_LIFETIME`, `SESSION_COOKIE_*`, `REMEMBER_COOKIE_*`.
    pub session: SessionConfig,
    /// API tokens: `SECURITY_TOKEN_*`.
    pub token: TokenConfig,
    /// CSRF: `SECURITY_CSRF_COOKIE_NAME`.
    pub csrf: CsrfConfig,
    /// Rate limits: `SECURITY_LOGIN_RATE_LIMIT`, `SECURITY_LOGIN_IDENTITY_RATE_LIMIT`,
    /// `SECURITY_MAIL_RATE_LIMIT`.
    pub rate_limits: RateLimitConfig,
    /// The activity log and new-device alert: `SECURITY_ACTIVITY_RETENTION`,
    /// `SECURITY_NEW_DEVICE_NOTIFICATION`.
    pub activity: ActivityConfig,
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
            url_prefix: String::new(),
            password: PasswordConfig::default(),
            trackable: true,
            return_generic_responses: true,
            openapi: false,
            redirect_allowed_hosts: Vec::new(),
            email_sender: "no-reply@localhost".into(),
            email_validator_args: EmailValidatorArgs::default(),
            trusted_proxies: 0,
            messages: HashMap::new(),
            page_messages: HashMap::new(),
            template_dir: None,
            max_content_length: 1024 * 1024,
            auth_cache_ttl: Duration::from_secs(5),
            body_limits: Vec::new(),
            login: LoginConfig::default(),
            logout: LogoutConfig::default(),
            register: RegisterConfig::default(),
            confirm: ConfirmConfig::default(),
            recover: RecoverConfig::default(),
            change: ChangeConfig::default(),
            change_email: ChangeEmailConfig::default(),
            two_factor: TwoFactorConfig::default(),
            recovery_codes: RecoveryCodesConfig::default(),
            webauthn: WebauthnConfig::default(),
            verify: VerifyConfig::default(),
            unified_signin: UnifiedSigninConfig::default(),
            sms: SmsConfig::default(),
            username: UsernameConfig::default(),
            change_username: ChangeUsernameConfig::default(),
            username_recovery: UsernameRecoveryConfig::default(),
            oauth: OauthConfig::default(),
            i18n: I18nConfig::default(),
            session: SessionConfig::default(),
            token: TokenConfig::default(),
            csrf: CsrfConfig::default(),
            rate_limits: RateLimitConfig::default(),
            activity: ActivityConfig::default(),
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

    /// Builds the configuration from settings (Flask-Security names), starting from the defaults:
    /// every setting of the table (`config/names.rs`, listed in the settings section above) that
    /// is set replaces its field's default, then [`validate`](Self::validate) checks the result.
    ///
    /// ```
    /// let settings = rampart::Settings::from_pairs([
    ///     ("SECRET_KEY", "not-a-real-secret-key-but-long-enough"),
    ///     ("SECURITY_PASSWORD_SALT", "salt-salt-salt"),
    ///     ("SECURITY_REGISTERABLE", "true"),
    ///     ("SECURITY_CHANGE_URL", "/dashboard/security/"),
    /// ]);
    /// let config = rampart::SecurityConfig::from_settings(&settings).unwrap();
    /// assert!(config.register.enabled);
    /// assert_eq!(config.change.url, "/dashboard/security/");
    /// ```
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for setting in names::SETTINGS {
            setting.load(&mut config, settings)?;
        }
        config.validate()?;
        Ok(config)
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
        self.oauth.validate()?;
        if self.username.min_length > self.username.max_length {
            return Err(ConfigError::invalid(
                "SECURITY_USERNAME_MIN_LENGTH",
                "must not exceed SECURITY_USERNAME_MAX_LENGTH",
            ));
        }
        for (on, key) in [
            (self.change_username.enabled, "SECURITY_CHANGE_USERNAME"),
            (self.username_recovery.enabled, "SECURITY_USERNAME_RECOVERY"),
        ] {
            if on && !self.username.enabled {
                return Err(ConfigError::invalid(
                    key,
                    "needs usernames (SECURITY_USERNAME_ENABLE)",
                ));
            }
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
    fn the_username_normalize_form_is_nfkd_unless_set() {
        use crate::identity::NormalizeForm;
        let form = |value: Option<&'static str>| {
            let mut pairs = base();
            if let Some(value) = value {
                pairs.push(("SECURITY_USERNAME_NORMALIZE_FORM", value));
            }
            SecurityConfig::from_settings(&Settings::from_pairs(pairs))
                .map(|c| c.username.normalize_form)
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
            (
                "SECURITY_TWO_FACTOR_ENABLED_METHODS",
                "email, carrier-pigeon",
            ),
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
        let args = names::parse_validator_args(
            "SECURITY_EMAIL_VALIDATOR_ARGS",
            "{\"check_deliverability\": False}",
        )
        .unwrap();
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
        assert!(!c.session.cookie_secure);
        pairs.push(("SESSION_COOKIE_SECURE", "true"));
        let c = SecurityConfig::from_settings(&Settings::from_pairs(pairs)).unwrap();
        assert!(c.session.cookie_secure);
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
