//! THE table of settings: each Flask / Flask-Security name (`SECURITY_REGISTERABLE`), the
//! [`SecurityConfig`] field it fills (`register.enabled`), how its value is read and, for the
//! settings pages see, its key in the templates' `config` object.
//!
//! Each entry is declared once, in [`SETTINGS`]; the `settings!` macro turns it into the code
//! that loads it ([`SecurityConfig::from_settings`] runs every entry's loader in table order), the
//! template value (`web/templates.rs` builds `config` from the entries with a page key)
//! and the docs (`docs/configuration.md` is generated from the table and checked by a test).

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;

use super::{ConfigError, EmailValidatorArgs, RateLimit, SecurityConfig, Settings};
use crate::identity::{NormalizeForm, UnknownForm};

/// One setting of the table.
#[derive(Debug)]
pub(crate) struct Setting {
    /// The name, as Flask-Security (or Flask) spells it: `SECURITY_REGISTERABLE`. A name ending
    /// in `*` is a prefix (`SECURITY_MSG_*`).
    pub(crate) name: &'static str,
    /// The [`SecurityConfig`] field it fills, as a path (`register.enabled`); empty when the
    /// setting is only checked (`SECURITY_PASSWORD_HASH`).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the docs, generated in a test")
    )]
    pub(crate) field: &'static str,
    /// The reader of its value (`flag`, `duration`, `path`, …), see [`value_form`].
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "read by the docs, generated in a test")
    )]
    pub(crate) reader: &'static str,
    /// Reads the setting from [`Settings`] into the configuration, if it is set.
    load: fn(&mut SecurityConfig, &Settings, &str) -> Result<(), ConfigError>,
    /// Its key and value in the `config` object templates see, if pages need it.
    pub(crate) page: Option<PageEntry>,
}

impl Setting {
    /// Reads this setting from `settings` into `config` (a setting that is not set leaves the
    /// field as it is).
    pub(crate) fn load(
        &self,
        config: &mut SecurityConfig,
        settings: &Settings,
    ) -> Result<(), ConfigError> {
        (self.load)(config, settings, self.name)
    }
}

/// A setting as templates see it: `config.<key>`.
#[derive(Debug)]
pub(crate) struct PageEntry {
    /// The key in the templates' `config` object (`registerable`, `login_url`).
    pub(crate) key: &'static str,
    /// The field's value.
    pub(crate) value: fn(&SecurityConfig) -> PageValue<'_>,
}

/// The value of a template-facing setting, by how pages show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageValue<'a> {
    /// A switch (`registerable`).
    Flag(bool),
    /// Text as is (`app_name`, `post_login_view`).
    Text(&'a str),
    /// A framework path, shown with `SECURITY_URL_PREFIX` ([`SecurityConfig::url`]).
    Url(&'a str),
    /// A lifetime, shown in words (`5 days`).
    Duration(Duration),
}

impl<'a> PageValue<'a> {
    fn flag(value: &bool) -> Self {
        Self::Flag(*value)
    }

    fn text(value: &'a str) -> Self {
        Self::Text(value)
    }

    fn url(value: &'a str) -> Self {
        Self::Url(value)
    }

    fn duration(value: &Duration) -> Self {
        Self::Duration(*value)
    }
}

/// Declares the table: one line per setting,
/// `"NAME" => [field.path] reader $(, page key: flag|text|url|duration)?;`
/// where `reader(&Settings, "NAME") -> Result<Option<T>, ConfigError>` gives the field's value
/// when the setting is set, and `[]` stands for no field (the reader only checks).
macro_rules! settings {
    (@assign $c:ident [] $value:expr) => {
        let _: &mut SecurityConfig = $c;
        let _: Option<()> = $value;
    };
    (@assign $c:ident [$($field:ident).+] $value:expr) => {
        if let Some(value) = $value {
            $c.$($field).+ = value;
        }
    };
    (@page [$($field:ident).*]) => {
        None
    };
    (@page [$($field:ident).+] $key:ident $show:ident) => {
        Some(PageEntry {
            key: stringify!($key),
            value: {
                fn value(c: &SecurityConfig) -> PageValue<'_> {
                    PageValue::$show(&c.$($field).+)
                }
                value
            },
        })
    };
    ($($name:literal => [$($field:ident).*] $reader:ident $(, page $key:ident: $show:ident)?;)*) => {
        /// Every setting, in the order they are loaded.
        pub(crate) static SETTINGS: &[Setting] = &[$(
            Setting {
                name: $name,
                field: stringify!($($field).*),
                reader: stringify!($reader),
                load: {
                    fn load(
                        c: &mut SecurityConfig,
                        s: &Settings,
                        name: &str,
                    ) -> Result<(), ConfigError> {
                        settings!(@assign c [$($field).*] $reader(s, name)?);
                        Ok(())
                    }
                    load
                },
                page: settings!(@page [$($field).*] $($key $show)?),
            },
        )*];
    };
}

settings! {
    // Flask and the whole framework.
    "DEBUG" => [debug] flag, page debug: flag;
    "SECRET_KEY" => [secret_key] secret;
    "SECRET_KEY_FALLBACKS" => [secret_key_fallbacks] secret_list;
    "SERVER_NAME" => [server_name] optional_text;
    "TRUSTED_HOSTS" => [trusted_hosts] host_list;
    "PREFERRED_URL_SCHEME" => [url_scheme] text;
    "SECURITY_APP_NAME" => [app_name] text, page app_name: text;
    "SECURITY_URL_PREFIX" => [url_prefix] text;
    "SECURITY_TRACKABLE" => [trackable] flag;
    "SECURITY_RETURN_GENERIC_RESPONSES" => [return_generic_responses] flag;
    "SECURITY_OPENAPI" => [openapi] flag;
    "SECURITY_REDIRECT_ALLOWED_HOSTS" => [redirect_allowed_hosts] list;
    "SECURITY_EMAIL_SENDER" => [email_sender] text;
    "SECURITY_EMAIL_VALIDATOR_ARGS" => [email_validator_args] validator_args;
    "SECURITY_TRUSTED_PROXIES" => [trusted_proxies] number;
    "SECURITY_MSG_*" => [messages] message_overrides;
    "SECURITY_PAGE_MSG_*" => [page_messages] message_overrides;
    "SECURITY_TEMPLATE_DIR" => [template_dir] folder;
    // Languages.
    "BABEL_DEFAULT_LOCALE" => [i18n.default_locale] text;
    "SECURITY_I18N_DIRNAME" => [i18n.dirname] folder;
    "SECURITY_I18N_DOMAIN" => [i18n.domain] text;
    "MAX_CONTENT_LENGTH" => [max_content_length] number;
    "SECURITY_AUTH_CACHE_TTL" => [auth_cache_ttl] duration;
    // Passwords.
    "SECURITY_PASSWORD_SALT" => [password.salt] secret;
    "SECURITY_PASSWORD_LENGTH_MIN" => [password.min_length] number;
    "SECURITY_PASSWORD_LENGTH_MAX" => [password.max_length] number;
    "SECURITY_ARGON2_MEMORY_KIB" => [password.argon2_memory_kib] number;
    "SECURITY_ARGON2_ITERATIONS" => [password.argon2_iterations] number;
    "SECURITY_ARGON2_PARALLELISM" => [password.argon2_parallelism] number;
    "SECURITY_HASHING_MAX_CONCURRENT" => [password.max_concurrent] number;
    "SECURITY_HASHING_MAX_QUEUED" => [password.max_queued] number;
    "SECURITY_PASSWORD_HASH" => [] argon2_only;
    // Sign-in and sign-out.
    "SECURITY_LOGIN_URL" => [login.url] path, page login_url: url;
    "SECURITY_POST_LOGIN_VIEW" => [login.post_view] path, page post_login_view: text;
    "SECURITY_DEFAULT_REMEMBER_ME" => [login.default_remember_me] flag,
        page default_remember_me: flag;
    "SECURITY_LOGOUT_URL" => [logout.url] path, page logout_url: url;
    "SECURITY_POST_LOGOUT_VIEW" => [logout.post_view] path;
    // Registration.
    "SECURITY_REGISTERABLE" => [register.enabled] flag, page registerable: flag;
    "SECURITY_SEND_REGISTER_EMAIL" => [register.send_email] flag;
    "SECURITY_REGISTER_URL" => [register.url] path, page register_url: url;
    "SECURITY_POST_REGISTER_VIEW" => [register.post_view] optional_path;
    "SECURITY_DEFAULT_ROLES" => [register.default_roles] list;
    // Confirmation of the email address.
    "SECURITY_CONFIRMABLE" => [confirm.enabled] flag, page confirmable: flag;
    "SECURITY_CONFIRM_EMAIL_WITHIN" => [confirm.within] duration,
        page confirm_email_within: duration;
    "SECURITY_LOGIN_WITHOUT_CONFIRMATION" => [confirm.login_without_confirmation] flag;
    "SECURITY_CONFIRM_URL" => [confirm.url] path, page confirm_url: url;
    "SECURITY_POST_CONFIRM_VIEW" => [confirm.post_view] optional_path;
    // Password reset.
    "SECURITY_RECOVERABLE" => [recover.enabled] flag, page recoverable: flag;
    "SECURITY_RESET_PASSWORD_WITHIN" => [recover.within] duration,
        page reset_password_within: duration;
    "SECURITY_SEND_PASSWORD_RESET_NOTICE_EMAIL" => [recover.send_notice_email] flag;
    "SECURITY_RESET_URL" => [recover.url] path, page reset_url: url;
    "SECURITY_POST_RESET_VIEW" => [recover.post_view] optional_path;
    // Change of password.
    "SECURITY_CHANGEABLE" => [change.enabled] flag, page changeable: flag;
    "SECURITY_SEND_PASSWORD_CHANGE_EMAIL" => [change.send_email] flag;
    "SECURITY_CHANGE_URL" => [change.url] path, page change_url: url;
    "SECURITY_POST_CHANGE_VIEW" => [change.post_view] optional_path;
    // Change of email address.
    "SECURITY_CHANGE_EMAIL" => [change_email.enabled] flag, page change_email: flag;
    "SECURITY_CHANGE_EMAIL_WITHIN" => [change_email.within] duration,
        page change_email_within: duration;
    "SECURITY_CHANGE_EMAIL_URL" => [change_email.url] path, page change_email_url: url;
    "SECURITY_POST_CHANGE_EMAIL_VIEW" => [change_email.post_view] optional_path;
    "SECURITY_CHANGE_EMAIL_ERROR_VIEW" => [change_email.error_view] optional_path;
    // Two-factor sign-in.
    "SECURITY_TWO_FACTOR" => [two_factor.enabled] flag, page two_factor: flag;
    "SECURITY_TWO_FACTOR_ENABLED_METHODS" => [two_factor.enabled_methods] two_factor_methods;
    "SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY" => [two_factor.authenticator_validity] duration;
    "SECURITY_TWO_FACTOR_MAIL_VALIDITY" => [two_factor.mail_validity] duration;
    "SECURITY_TOTP_SECRETS" => [two_factor.totp_secrets] totp_secrets;
    "SECURITY_TOTP_ISSUER" => [two_factor.totp_issuer] optional_text;
    "SECURITY_TWO_FACTOR_RESCUE_MAIL" => [two_factor.rescue_mail] text;
    "SECURITY_TWO_FACTOR_SETUP_URL" => [two_factor.setup_url] path,
        page two_factor_setup_url: url;
    "SECURITY_TWO_FACTOR_TOKEN_VALIDATION_URL" => [two_factor.token_validation_url] path,
        page two_factor_token_validation_url: url;
    "SECURITY_TWO_FACTOR_RESCUE_URL" => [two_factor.rescue_url] path,
        page two_factor_rescue_url: url;
    "SECURITY_TWO_FACTOR_POST_SETUP_VIEW" => [two_factor.post_setup_view] optional_path;
    // Recovery codes.
    "SECURITY_MULTI_FACTOR_RECOVERY_CODES" => [recovery_codes.enabled] flag;
    "SECURITY_MULTI_FACTOR_RECOVERY_CODES_N" => [recovery_codes.count] recovery_code_count;
    "SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS" => [recovery_codes.keys] secret_list;
    "SECURITY_MULTI_FACTOR_RECOVERY_CODES_URL" => [recovery_codes.url] path,
        page recovery_codes_url: url;
    "SECURITY_MULTI_FACTOR_RECOVERY_URL" => [recovery_codes.recovery_url] path,
        page recovery_url: url;
    // Passkeys / WebAuthn.
    "SECURITY_WEBAUTHN" => [webauthn.enabled] flag, page webauthn: flag;
    "SECURITY_WAN_ALLOW_AS_FIRST_FACTOR" => [webauthn.allow_as_first_factor] flag,
        page wan_allow_as_first_factor: flag;
    "SECURITY_WAN_ALLOW_AS_MULTI_FACTOR" => [webauthn.allow_as_multi_factor] flag;
    "SECURITY_WAN_ALLOW_AS_VERIFY" => [webauthn.allow_as_verify] list;
    "SECURITY_WAN_ALLOW_USER_HINTS" => [webauthn.allow_user_hints] flag,
        page wan_allow_user_hints: flag;
    "SECURITY_WAN_RP_NAME" => [webauthn.rp_name] text;
    "SECURITY_WAN_RP_ID" => [webauthn.rp_id] optional_text;
    "SECURITY_WAN_ALLOWED_ORIGINS" => [webauthn.allowed_origins] list;
    "SECURITY_WAN_REGISTER_TIMEOUT" => [webauthn.register_timeout] number;
    "SECURITY_WAN_SIGNIN_TIMEOUT" => [webauthn.signin_timeout] number;
    "SECURITY_WAN_REGISTER_WITHIN" => [webauthn.register_within] duration;
    "SECURITY_WAN_SIGNIN_WITHIN" => [webauthn.signin_within] duration;
    "SECURITY_WAN_REGISTER_URL" => [webauthn.register_url] path, page wan_register_url: url;
    "SECURITY_WAN_SIGNIN_URL" => [webauthn.signin_url] path, page wan_signin_url: url;
    "SECURITY_WAN_DELETE_URL" => [webauthn.delete_url] path, page wan_delete_url: url;
    "SECURITY_WAN_RENAME_URL" => [webauthn.rename_url] path, page wan_rename_url: url;
    "SECURITY_WAN_VERIFY_URL" => [webauthn.verify_url] path, page wan_verify_url: url;
    "SECURITY_WAN_POST_REGISTER_VIEW" => [webauthn.post_register_view] optional_path;
    "SECURITY_WAN_NAME_MAX_LENGTH" => [webauthn.name_max_length] number;
    // Re-authentication.
    "SECURITY_FRESHNESS" => [verify.freshness] freshness;
    "SECURITY_FRESHNESS_GRACE_PERIOD" => [verify.grace_period] duration;
    "SECURITY_VERIFY_URL" => [verify.url] path, page verify_url: url;
    // Unified sign-in.
    "SECURITY_UNIFIED_SIGNIN" => [unified_signin.enabled] flag, page unified_signin: flag;
    "SECURITY_US_ENABLED_METHODS" => [unified_signin.enabled_methods] us_methods;
    "SECURITY_US_MFA_REQUIRED" => [unified_signin.mfa_required] us_methods;
    "SECURITY_USER_IDENTITY_ATTRIBUTES" => [unified_signin.identity_attributes] identity_attributes;
    "SECURITY_US_SIGNIN_REPLACES_LOGIN" => [unified_signin.signin_replaces_login] flag,
        page us_signin_replaces_login: flag;
    "SECURITY_US_EMAIL_SUBJECT" => [unified_signin.email_subject] text;
    "SECURITY_US_TOKEN_VALIDITY" => [unified_signin.token_validity] duration;
    "SECURITY_US_SETUP_WITHIN" => [unified_signin.setup_within] duration;
    "SECURITY_US_MAGIC_LINK" => [unified_signin.magic_link] flag;
    "SECURITY_US_SIGNIN_URL" => [unified_signin.signin_url] path, page us_signin_url: url;
    "SECURITY_US_SIGNIN_SEND_CODE_URL" => [unified_signin.signin_send_code_url] path,
        page us_signin_send_code_url: url;
    "SECURITY_US_SETUP_URL" => [unified_signin.setup_url] path, page us_setup_url: url;
    "SECURITY_US_VERIFY_URL" => [unified_signin.verify_url] path, page us_verify_url: url;
    "SECURITY_US_VERIFY_SEND_CODE_URL" => [unified_signin.verify_send_code_url] path,
        page us_verify_send_code_url: url;
    "SECURITY_US_VERIFY_LINK_URL" => [unified_signin.verify_link_url] path;
    "SECURITY_US_POST_SETUP_VIEW" => [unified_signin.post_setup_view] optional_path;
    // Text messages and phone numbers.
    "SECURITY_SMS_SERVICE" => [sms.service] sms_service;
    "SECURITY_SMS_SERVICE_CONFIG" => [sms.service_config] sms_service_config;
    "SECURITY_SMS_API_URL" => [sms.api_url] text;
    "SECURITY_PHONE_REGION_DEFAULT" => [sms.phone_region_default] text;
    // Usernames.
    "SECURITY_USERNAME_ENABLE" => [username.enabled] flag, page username_enable: flag;
    "SECURITY_USERNAME_REQUIRED" => [username.required] flag, page username_required: flag;
    "SECURITY_USERNAME_MIN_LENGTH" => [username.min_length] number;
    "SECURITY_USERNAME_MAX_LENGTH" => [username.max_length] number;
    "SECURITY_USERNAME_NORMALIZE_FORM" => [username.normalize_form] normalize_form;
    "SECURITY_CHANGE_USERNAME" => [change_username.enabled] flag, page change_username: flag;
    "SECURITY_CHANGE_USERNAME_URL" => [change_username.url] path,
        page change_username_url: url;
    "SECURITY_POST_CHANGE_USERNAME_VIEW" => [change_username.post_view] optional_path;
    "SECURITY_SEND_USERNAME_CHANGE_EMAIL" => [change_username.send_email] flag;
    "SECURITY_USERNAME_RECOVERY" => [username_recovery.enabled] flag,
        page username_recovery: flag;
    "SECURITY_USERNAME_RECOVERY_URL" => [username_recovery.url] path,
        page username_recovery_url: url;
    // Social sign-in.
    "SECURITY_OAUTH_ENABLE" => [oauth.enabled] flag, page oauth_enable: flag;
    "SECURITY_OAUTH_PROVIDERS" => [oauth.providers] lower_list;
    "OAUTH_*" => [oauth.clients] oauth_clients;
    "GITHUB_CLIENT_ID" => [oauth.github.client_id] optional_text;
    "GITHUB_CLIENT_SECRET" => [oauth.github.client_secret] optional_secret;
    "GOOGLE_CLIENT_ID" => [oauth.google.client_id] optional_text;
    "GOOGLE_CLIENT_SECRET" => [oauth.google.client_secret] optional_secret;
    "SECURITY_OAUTH_START_URL" => [oauth.start_url] path, page oauth_start_url: url;
    "SECURITY_OAUTH_RESPONSE_URL" => [oauth.response_url] path;
    "SECURITY_OAUTH_LINK_URL" => [oauth.link_url] path, page oauth_link_url: url;
    "SECURITY_OAUTH_VERIFY_START_URL" => [oauth.verify_start_url] path, page oauth_verify_start_url: url;
    "SECURITY_OAUTH_WITHIN" => [oauth.within] duration;
    "SECURITY_OAUTH_GITHUB_URL" => [oauth.github_url] text;
    "SECURITY_OAUTH_GITHUB_API_URL" => [oauth.github_api_url] text;
    // Sessions, cookies, tokens, CSRF.
    "PERMANENT_SESSION_LIFETIME" => [session.lifetime] duration;
    "SESSION_COOKIE_NAME" => [session.cookie_name] text;
    "SESSION_COOKIE_SECURE" => [session.cookie_secure] secure_unless_debug;
    "REMEMBER_COOKIE_DURATION" => [session.remember_cookie_duration] duration;
    "REMEMBER_COOKIE_NAME" => [session.remember_cookie_name] text;
    "SECURITY_TOKEN_AUTHENTICATION_HEADER" => [token.header] text;
    "SECURITY_TOKEN_AUTHENTICATION_KEY" => [token.query_key] text;
    "SECURITY_TOKEN_MAX_AGE" => [token.max_age] duration;
    "SECURITY_CSRF_COOKIE_NAME" => [csrf.cookie_name] text;
    // Rate limits.
    "SECURITY_LOGIN_RATE_LIMIT" => [rate_limits.login] rate_limit;
    "SECURITY_LOGIN_IDENTITY_RATE_LIMIT" => [rate_limits.login_identity] rate_limit;
    "SECURITY_MAIL_RATE_LIMIT" => [rate_limits.mail] rate_limit;
    // The account security centre.
    "SECURITY_ACTIVITY_RETENTION" => [activity.retention] duration;
    "SECURITY_NEW_DEVICE_NOTIFICATION" => [activity.new_device_notification] flag;
    "SECURITY_ACCOUNT_SECURITY_URL" => [activity.security_page_url] text;
}

/// How a value read by `reader` is written, for the docs.
#[cfg(test)]
pub(crate) fn value_form(reader: &str) -> &'static str {
    match reader {
        "flag" => "`true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`)",
        "number" => "a whole number",
        "duration" => "a duration: `5 days`, `2 hours`, `30 minutes` or seconds",
        "text" | "optional_text" => "text",
        "secret" => "a secret (text)",
        "secret_list" => "comma-separated secrets",
        "list" => "a comma-separated list (or `[\"a\", \"b\"]`)",
        "host_list" => "comma-separated host names (`.example.com` admits subdomains)",
        "path" | "optional_path" => "a path starting with `/`",
        "folder" => "a folder",
        "rate_limit" => "`N per [M] unit` or `N/unit`; `off` disables",
        "validator_args" => "`{\"check_deliverability\": false}` or `key=value, …`",
        "message_overrides" => "one setting per message: `SECURITY_MSG_INVALID_PASSWORD=…`",
        "argon2_only" => "`argon2` (other schemes are verified, not used for new hashes)",
        "two_factor_methods" => "comma-separated: `email`, `authenticator`, `sms`",
        "us_methods" => "comma-separated: `password`, `email`, `authenticator`, `sms`",
        "identity_attributes" => "comma-separated: `email`, `username`, `us_phone_number`",
        "sms_service" => "`console` or `twilio`",
        "sms_service_config" => {
            "`{\"ACCOUNT_SID\": \"…\", \"AUTH_TOKEN\": \"…\", \"PHONE_NUMBER\": \"+1…\"}`"
        }
        "recovery_code_count" => "a whole number from 1 to 20",
        "freshness" => "a duration; `off` or a negative number disables",
        "totp_secrets" => {
            "`{\"1\": \"secret\", \"2\": \"newer\"}` (key id → secret) or lines of `id: secret`"
        }
        "normalize_form" => "`NFC`, `NFD`, `NFKC`, `NFKD` or `None`",
        "lower_list" => "a comma-separated list of names (any case)",
        "oauth_clients" => {
            "per provider: `OAUTH_<NAME>_ISSUER`, `OAUTH_<NAME>_CLIENT_ID`, `OAUTH_<NAME>_CLIENT_SECRET`"
        }
        "optional_secret" => "a secret (text)",
        "secure_unless_debug" => "`true` or `false` (default: on unless `DEBUG`)",
        _ => "",
    }
}

// The readers: `reader(&Settings, name) -> Result<Option<value>, ConfigError>`, `None` when the
// setting is not set.

fn flag(s: &Settings, key: &str) -> Result<Option<bool>, ConfigError> {
    s.bool(key)
}

fn number<T: FromStr>(s: &Settings, key: &str) -> Result<Option<T>, ConfigError> {
    s.int(key)
}

fn duration(s: &Settings, key: &str) -> Result<Option<Duration>, ConfigError> {
    s.duration(key)
}

fn text(s: &Settings, key: &str) -> Result<Option<String>, ConfigError> {
    Ok(s.string(key))
}

fn optional_text(s: &Settings, key: &str) -> Result<Option<Option<String>>, ConfigError> {
    Ok(s.string(key).map(Some))
}

fn secret(s: &Settings, key: &str) -> Result<Option<SecretString>, ConfigError> {
    Ok(s.string(key).map(SecretString::from))
}

fn optional_secret(s: &Settings, key: &str) -> Result<Option<Option<SecretString>>, ConfigError> {
    Ok(s.string(key).map(|v| Some(SecretString::from(v))))
}

fn lower_list(s: &Settings, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    Ok(s.list(key)
        .map(|names| names.into_iter().map(|n| n.to_ascii_lowercase()).collect()))
}

/// `OAUTH_<NAME>_ISSUER`, `OAUTH_<NAME>_CLIENT_ID`, `OAUTH_<NAME>_CLIENT_SECRET`.
fn oauth_clients(
    s: &Settings,
    key: &str,
) -> Result<Option<std::collections::BTreeMap<String, super::OauthClient>>, ConfigError> {
    let prefix = key.trim_end_matches('*');
    let pairs = s
        .with_prefix(prefix)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect::<Vec<_>>();
    Ok(Some(super::oauth::read_clients(pairs.into_iter())))
}

fn secret_list(s: &Settings, key: &str) -> Result<Option<Vec<SecretString>>, ConfigError> {
    Ok(s.list(key)
        .map(|keys| keys.into_iter().map(SecretString::from).collect()))
}

/// `{"1": "secret", "2": "newer"}` (JSON or a Python dict literal) or passlib's lines of
/// `id: secret`.
fn totp_secrets(
    s: &Settings,
    key: &str,
) -> Result<Option<crate::totp::stored::TotpSecrets>, ConfigError> {
    let Some(text) = s.get(key) else {
        return Ok(None);
    };
    let text = text.trim();
    let pairs: Vec<(String, SecretString)> = if text.starts_with('{') {
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text.replace('\'', "\""))
                .map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        map.into_iter()
            .map(|(id, secret)| match secret {
                serde_json::Value::String(secret) => Ok((id, SecretString::from(secret))),
                serde_json::Value::Number(n) => Ok((id, SecretString::from(n.to_string()))),
                _ => Err(ConfigError::invalid(
                    key,
                    format!("the secret of {id:?} is not text"),
                )),
            })
            .collect::<Result<_, _>>()?
    } else {
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                let (id, secret) = line.split_once(':').ok_or_else(|| {
                    ConfigError::invalid(key, "expected a JSON object or lines of `id: secret`")
                })?;
                Ok((id.trim().to_owned(), SecretString::from(secret.trim())))
            })
            .collect::<Result<_, ConfigError>>()?
    };
    crate::totp::stored::TotpSecrets::new(pairs)
        .map(Some)
        .map_err(|m| ConfigError::invalid(key, m))
}

fn list(s: &Settings, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    Ok(s.list(key))
}

fn host_list(s: &Settings, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    Ok(s.list(key).map(|hosts| {
        hosts
            .into_iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect()
    }))
}

fn folder(s: &Settings, key: &str) -> Result<Option<Option<PathBuf>>, ConfigError> {
    Ok(s.string(key).map(|dir| Some(PathBuf::from(dir))))
}

fn path(s: &Settings, key: &str) -> Result<Option<String>, ConfigError> {
    s.string(key).map(|v| checked_path(key, v)).transpose()
}

fn optional_path(s: &Settings, key: &str) -> Result<Option<Option<String>>, ConfigError> {
    Ok(path(s, key)?.map(Some))
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

/// A rate limit: `Some(None)` when turned off (`off`, `none`, `false`, `0`).
fn rate_limit(s: &Settings, key: &str) -> Result<Option<Option<RateLimit>>, ConfigError> {
    let Some(v) = s.get(key) else {
        return Ok(None);
    };
    Ok(Some(match v.trim().to_ascii_lowercase().as_str() {
        "off" | "none" | "false" | "0" => None,
        _ => Some(RateLimit::parse(v).map_err(|m| ConfigError::invalid(key, m))?),
    }))
}

fn validator_args(s: &Settings, key: &str) -> Result<Option<EmailValidatorArgs>, ConfigError> {
    s.get(key)
        .map(|args| parse_validator_args(key, args))
        .transpose()
}

/// Parses `{"check_deliverability": false}` (JSON or Python literal) or `check_deliverability=false`.
pub(super) fn parse_validator_args(
    key: &str,
    text: &str,
) -> Result<EmailValidatorArgs, ConfigError> {
    let normalized = text
        .replace("True", "true")
        .replace("False", "false")
        .replace('\'', "\"");
    let map: HashMap<String, serde_json::Value> = if normalized.trim_start().starts_with('{') {
        serde_json::from_str(&normalized).map_err(|e| ConfigError::invalid(key, e.to_string()))?
    } else {
        normalized
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    ConfigError::invalid(key, format!("expected key=value, got {pair:?}"))
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
                    key,
                    format!("unsupported option {other:?}"),
                ));
            }
        }
    }
    Ok(args)
}

/// `SECURITY_MSG_<KEY>` overrides; each must name a known message.
fn message_overrides(
    s: &Settings,
    key: &str,
) -> Result<Option<HashMap<String, String>>, ConfigError> {
    let prefix = key.trim_end_matches('*');
    let mut messages = HashMap::new();
    for (message, text) in s.with_prefix(prefix) {
        if !crate::Messages::is_known(message) {
            return Err(ConfigError::invalid(
                &format!("{prefix}{message}"),
                "no such message",
            ));
        }
        messages.insert(message.to_owned(), text.to_owned());
    }
    Ok(Some(messages))
}

/// New hashes are argon2 only; other schemes are still verified.
fn argon2_only(s: &Settings, key: &str) -> Result<Option<()>, ConfigError> {
    match s.get(key) {
        Some(scheme) if scheme != "argon2" => Err(ConfigError::invalid(
            key,
            format!(
                "only argon2 is supported for new hashes (others are verified), got {scheme:?}"
            ),
        )),
        _ => Ok(None),
    }
}

fn two_factor_methods(s: &Settings, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(methods) = s.list(key) else {
        return Ok(None);
    };
    if let Some(bad) = methods
        .iter()
        .find(|m| !matches!(m.as_str(), "email" | "authenticator" | "sms"))
    {
        return Err(ConfigError::invalid(
            key,
            format!("unknown method {bad:?} (email, authenticator, sms)"),
        ));
    }
    Ok(Some(methods))
}

/// Unified sign-in methods: `password`, `email`, `authenticator`, `sms`.
fn us_methods(s: &Settings, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(methods) = s.list(key) else {
        return Ok(None);
    };
    if let Some(bad) = methods
        .iter()
        .find(|m| !matches!(m.as_str(), "password" | "email" | "authenticator" | "sms"))
    {
        return Err(ConfigError::invalid(
            key,
            format!("unknown method {bad:?} (password, email, authenticator, sms)"),
        ));
    }
    Ok(Some(methods))
}

/// `email, username, us_phone_number` in lookup order; Flask-Security's list of one-key maps
/// (`[{"email": {…}}, {"username": {…}}]`) is read for its keys.
fn identity_attributes(s: &Settings, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(text) = s.get(key) else {
        return Ok(None);
    };
    let text = text.trim();
    let names: Vec<String> = if text.starts_with("[{") {
        let maps: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(&text.replace('\'', "\""))
                .map_err(|e| ConfigError::invalid(key, e.to_string()))?;
        maps.into_iter()
            .flat_map(|m| m.into_iter().map(|(k, _)| k))
            .collect()
    } else {
        s.list(key).unwrap_or_default()
    };
    if let Some(bad) = names
        .iter()
        .find(|n| !matches!(n.as_str(), "email" | "username" | "us_phone_number"))
    {
        return Err(ConfigError::invalid(
            key,
            format!("unknown attribute {bad:?} (email, username, us_phone_number)"),
        ));
    }
    if names.is_empty() {
        return Err(ConfigError::invalid(key, "no attribute given"));
    }
    Ok(Some(names))
}

fn sms_service(s: &Settings, key: &str) -> Result<Option<String>, ConfigError> {
    let Some(service) = s.string(key) else {
        return Ok(None);
    };
    let service = service.trim().to_ascii_lowercase();
    if !matches!(service.as_str(), "console" | "twilio") {
        return Err(ConfigError::invalid(
            key,
            format!("unknown service {service:?} (console, twilio)"),
        ));
    }
    Ok(Some(service))
}

/// `SECURITY_SMS_SERVICE_CONFIG`: `{"ACCOUNT_SID": …, "AUTH_TOKEN": …, "PHONE_NUMBER": …}`.
fn sms_service_config(
    s: &Settings,
    key: &str,
) -> Result<Option<super::SmsServiceConfig>, ConfigError> {
    let Some(text) = s.get(key) else {
        return Ok(None);
    };
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&text.trim().replace('\'', "\""))
            .map_err(|e| ConfigError::invalid(key, e.to_string()))?;
    let field = |name: &str| -> Result<Option<String>, ConfigError> {
        match map.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(v)) => Ok(Some(v.clone())),
            Some(_) => Err(ConfigError::invalid(key, format!("{name} is not text"))),
        }
    };
    Ok(Some(super::SmsServiceConfig {
        account_sid: field("ACCOUNT_SID")?,
        auth_token: field("AUTH_TOKEN")?.map(SecretString::from),
        phone_number: field("PHONE_NUMBER")?,
    }))
}

fn recovery_code_count(s: &Settings, key: &str) -> Result<Option<usize>, ConfigError> {
    let Some(n) = s.int::<usize>(key)? else {
        return Ok(None);
    };
    if !(1..=20).contains(&n) {
        return Err(ConfigError::invalid(
            key,
            format!("{n} is not from 1 to 20"),
        ));
    }
    Ok(Some(n))
}

/// A duration, or `off` (or a negative number, as in Flask-Security) for none.
fn freshness(s: &Settings, key: &str) -> Result<Option<Option<Duration>>, ConfigError> {
    let Some(value) = s.get(key) else {
        return Ok(None);
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("off") || value.starts_with('-') {
        Ok(Some(None))
    } else {
        Ok(Some(s.duration(key)?))
    }
}

fn normalize_form(s: &Settings, key: &str) -> Result<Option<Option<NormalizeForm>>, ConfigError> {
    let Some(form) = s.get(key) else {
        return Ok(None);
    };
    Ok(Some(match form.trim() {
        "" | "None" | "none" => None,
        name => Some(
            name.parse()
                .map_err(|e: UnknownForm| ConfigError::invalid(key, e.to_string()))?,
        ),
    }))
}

/// `SESSION_COOKIE_SECURE`, defaulting to the opposite of `DEBUG`.
fn secure_unless_debug(s: &Settings, key: &str) -> Result<Option<bool>, ConfigError> {
    match s.bool(key)? {
        Some(secure) => Ok(Some(secure)),
        None => Ok(Some(!s.bool("DEBUG")?.unwrap_or(false))),
    }
}

/// `docs/configuration.md`: the table as the docs show it (also the settings section of
/// [`SecurityConfig`]'s rustdoc).
#[cfg(test)]
pub(crate) fn configuration_doc() -> String {
    let mut doc = String::from(
        "# Configuration settings\n\
         \n\
         <!-- Generated from crates/rampart/src/config/names.rs (the settings table): run\n\
         `UPDATE_DOCS=1 cargo test -p rampart --lib config::names` after changing it. -->\n\
         \n\
         Every setting Rampart reads, by its Flask or Flask-Security name, with the\n\
         `SecurityConfig` field it fills, in the order they are loaded. Settings are read, each\n\
         layer overriding the one before, from the defaults, `rampart.toml` (same names), `.env` and\n\
         the environment; an invalid value stops start-up with a message naming the setting. The\n\
         last column is the setting's key in the `config` object every page template sees\n\
         (URLs with `SECURITY_URL_PREFIX`, lifetimes in words); pages also see\n\
         `config.recovery_codes`, on when `SECURITY_TWO_FACTOR` and\n\
         `SECURITY_MULTI_FACTOR_RECOVERY_CODES` both are.\n\
         \n\
         | Setting | Field | Value | Page key |\n\
         |---|---|---|---|\n",
    );
    let code = |text: &str| {
        if text.is_empty() {
            "—".to_owned()
        } else {
            format!("`{text}`")
        }
    };
    for setting in SETTINGS {
        doc.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            code(setting.name),
            code(setting.field),
            value_form(setting.reader),
            code(setting.page.as_ref().map_or("", |page| page.key)),
        ));
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md");

    #[test]
    fn every_setting_is_named_once_and_read_with_a_documented_reader() {
        let mut names: Vec<_> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a setting is declared twice");
        for setting in SETTINGS {
            assert!(!value_form(setting.reader).is_empty(), "{}", setting.reader);
            assert!(!setting.field.contains(' '), "{}", setting.field);
        }
    }

    #[test]
    fn docs_configuration_md_is_the_table() {
        let expected = configuration_doc();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(DOC_PATH, &expected).unwrap();
        }
        let actual = std::fs::read_to_string(DOC_PATH).unwrap();
        assert!(
            actual == expected,
            "docs/configuration.md is not the settings table; run \
             `UPDATE_DOCS=1 cargo test -p rampart --lib config::names`"
        );
    }

    #[test]
    fn every_field_doc_names_its_setting() {
        let sources = [
            include_str!("../config.rs"),
            include_str!("features.rs"),
            include_str!("http.rs"),
            include_str!("unified_signin.rs"),
            include_str!("activity.rs"),
            include_str!("oauth.rs"),
            include_str!("usernames.rs"),
            include_str!("../password.rs"),
        ];
        let docs: String = sources
            .iter()
            .flat_map(|source| source.lines())
            .filter(|line| line.trim_start().starts_with("///"))
            .collect::<Vec<_>>()
            .join("\n");
        for setting in SETTINGS.iter().filter(|s| !s.field.is_empty()) {
            assert!(
                docs.contains(&format!("`{}`", setting.name)),
                "no field doc names {}",
                setting.name
            );
        }
    }

    #[test]
    fn the_readme_names_only_settings_of_the_table() {
        let readme = include_str!("../../../../README.md");
        let section = readme
            .split("\n## Configuration")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .unwrap();
        let known = |name: &str| {
            SETTINGS.iter().any(|s| match s.name.strip_suffix('*') {
                Some(prefix) => name == prefix,
                None => name == s.name,
            })
        };
        let mut rest = section;
        while let Some(at) = rest.find("SECURITY_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            assert!(
                known(&name),
                "README names {name}, which is not in the settings table"
            );
            rest = &rest[at + name.len()..];
        }
        for setting in SETTINGS.iter().filter(|s| s.name.ends_with('*')) {
            assert!(section.contains(setting.name.trim_end_matches('*')));
        }
    }
}
