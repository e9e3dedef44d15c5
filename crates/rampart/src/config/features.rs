//! One settings struct per Flask-Security feature, each a field of
//! [`SecurityConfig`](super::SecurityConfig) named after the feature's module in
//! `features/` (`config.register.enabled`, `config.change.url`, `config.two_factor.setup_url`).
//!
//! Each field's doc names its `SECURITY_*` key; `Default` holds Flask-Security's defaults.

use std::time::Duration;

use crate::identity::NormalizeForm;

/// Sign-in (`views.login`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoginConfig {
    /// `SECURITY_LOGIN_URL` (default `/login`).
    pub url: String,
    /// `SECURITY_POST_LOGIN_VIEW` (default `/`): where a sign-in without `next` lands.
    pub post_view: String,
    /// `SECURITY_DEFAULT_REMEMBER_ME`: whether "remember me" is on when the form does not say.
    pub default_remember_me: bool,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            url: "/login".into(),
            post_view: "/".into(),
            default_remember_me: false,
        }
    }
}

/// Sign-out (`views.logout`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LogoutConfig {
    /// `SECURITY_LOGOUT_URL` (default `/logout`).
    pub url: String,
    /// `SECURITY_POST_LOGOUT_VIEW` (default `/`).
    pub post_view: String,
}

impl Default for LogoutConfig {
    fn default() -> Self {
        Self {
            url: "/logout".into(),
            post_view: "/".into(),
        }
    }
}

/// Registration (`registerable.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RegisterConfig {
    /// `SECURITY_REGISTERABLE`: visitors may create an account (off by default).
    pub enabled: bool,
    /// `SECURITY_SEND_REGISTER_EMAIL` (default on): the welcome mail.
    pub send_email: bool,
    /// `SECURITY_REGISTER_URL` (default `/register`).
    pub url: String,
    /// `SECURITY_POST_REGISTER_VIEW` (default: a page telling to check the mail, or login).
    pub post_view: Option<String>,
    /// `SECURITY_DEFAULT_ROLES`: roles given to every new registration (sample app: `User`).
    pub default_roles: Vec<String>,
}

impl Default for RegisterConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            send_email: true,
            url: "/register".into(),
            post_view: None,
            default_roles: Vec::new(),
        }
    }
}

/// Confirmation of the email address (`confirmable.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConfirmConfig {
    /// `SECURITY_CONFIRMABLE`: new addresses must be confirmed by a mailed link (off by default).
    pub enabled: bool,
    /// `SECURITY_CONFIRM_EMAIL_WITHIN` (default 5 days): lifetime of the link.
    pub within: Duration,
    /// `SECURITY_LOGIN_WITHOUT_CONFIRMATION`: unconfirmed users may sign in anyway.
    pub login_without_confirmation: bool,
    /// `SECURITY_CONFIRM_URL` (default `/confirm`).
    pub url: String,
    /// `SECURITY_POST_CONFIRM_VIEW`.
    pub post_view: Option<String>,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            within: Duration::from_secs(5 * 86_400),
            login_without_confirmation: false,
            url: "/confirm".into(),
            post_view: None,
        }
    }
}

/// Password reset by mail (`recoverable.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecoverConfig {
    /// `SECURITY_RECOVERABLE`: forgotten passwords can be reset (off by default).
    pub enabled: bool,
    /// `SECURITY_RESET_PASSWORD_WITHIN` (default 1 day): lifetime of the link.
    pub within: Duration,
    /// `SECURITY_SEND_PASSWORD_RESET_NOTICE_EMAIL` (default on): mail after a reset.
    pub send_notice_email: bool,
    /// `SECURITY_RESET_URL` (default `/reset`).
    pub url: String,
    /// `SECURITY_POST_RESET_VIEW`.
    pub post_view: Option<String>,
}

impl Default for RecoverConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            within: Duration::from_secs(86_400),
            send_notice_email: true,
            url: "/reset".into(),
            post_view: None,
        }
    }
}

/// Change of password (`changeable.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChangeConfig {
    /// `SECURITY_CHANGEABLE`: signed-in users may change their password (off by default).
    pub enabled: bool,
    /// `SECURITY_SEND_PASSWORD_CHANGE_EMAIL` (default on): mail after a change.
    pub send_email: bool,
    /// `SECURITY_CHANGE_URL` (default `/change`).
    pub url: String,
    /// `SECURITY_POST_CHANGE_VIEW`.
    pub post_view: Option<String>,
}

impl Default for ChangeConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            send_email: true,
            url: "/change".into(),
            post_view: None,
        }
    }
}

/// Change of email address (`change_email.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChangeEmailConfig {
    /// `SECURITY_CHANGE_EMAIL`: signed-in users may change their email address, confirmed by a
    /// link mailed to the new one (off by default, as in Flask-Security).
    pub enabled: bool,
    /// `SECURITY_CHANGE_EMAIL_WITHIN` (default 2 hours): lifetime of the link.
    pub within: Duration,
    /// `SECURITY_CHANGE_EMAIL_URL` (default `/change-email`).
    pub url: String,
    /// `SECURITY_POST_CHANGE_EMAIL_VIEW`: where a confirmed change of email lands (default
    /// `SECURITY_POST_LOGIN_VIEW`).
    pub post_view: Option<String>,
    /// `SECURITY_CHANGE_EMAIL_ERROR_VIEW`: where a bad or expired link lands (default
    /// `SECURITY_CHANGE_EMAIL_URL`).
    pub error_view: Option<String>,
}

impl Default for ChangeEmailConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            within: Duration::from_secs(2 * 3600),
            url: "/change-email".into(),
            post_view: None,
            error_view: None,
        }
    }
}

/// Two-factor sign-in (`twofactor.py`, `tf_plugin.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TwoFactorConfig {
    /// `SECURITY_TWO_FACTOR`: users may add a second factor (off by default).
    pub enabled: bool,
    /// `SECURITY_TWO_FACTOR_ENABLED_METHODS` (default `email, authenticator`; `sms` texts codes to
    /// the user's `tf_phone_number` with `SECURITY_SMS_SERVICE`).
    pub enabled_methods: Vec<String>,
    /// `SECURITY_TWO_FACTOR_AUTHENTICATOR_VALIDITY` (default 120 seconds either way of now).
    pub authenticator_validity: Duration,
    /// `SECURITY_TWO_FACTOR_MAIL_VALIDITY` (default 5 minutes).
    pub mail_validity: Duration,
    /// `SECURITY_TOTP_ISSUER`: the name authenticator apps show (default `SECURITY_APP_NAME`).
    pub totp_issuer: Option<String>,
    /// `SECURITY_TWO_FACTOR_RESCUE_MAIL`: where a user who lost both their second factor and
    /// their mail asks for help (`/tf-rescue` with `help`); default `no-reply@localhost`.
    pub rescue_mail: String,
    /// `SECURITY_TWO_FACTOR_SETUP_URL` (default `/tf-setup`).
    pub setup_url: String,
    /// `SECURITY_TWO_FACTOR_TOKEN_VALIDATION_URL` (default `/tf-validate`).
    pub token_validation_url: String,
    /// `SECURITY_TWO_FACTOR_RESCUE_URL` (default `/tf-rescue`).
    pub rescue_url: String,
    /// `SECURITY_TWO_FACTOR_POST_SETUP_VIEW`: where a finished two-factor setup or a disable lands
    /// (default the setup page).
    pub post_setup_view: Option<String>,
    /// `SECURITY_TOTP_SECRETS`: key ids to application secrets that encrypt the stored TOTP
    /// secrets as Flask-Security does (passlib's JSON); the largest id writes, every id reads.
    /// Default none: secrets are stored as plain base32 (and still read in either form).
    pub totp_secrets: crate::totp::stored::TotpSecrets,
}

impl Default for TwoFactorConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            enabled_methods: vec!["email".into(), "authenticator".into()],
            authenticator_validity: Duration::from_secs(120),
            mail_validity: Duration::from_secs(300),
            totp_issuer: None,
            rescue_mail: "no-reply@localhost".into(),
            setup_url: "/tf-setup".into(),
            token_validation_url: "/tf-validate".into(),
            rescue_url: "/tf-rescue".into(),
            post_setup_view: None,
            totp_secrets: crate::totp::stored::TotpSecrets::default(),
        }
    }
}

/// One-time recovery codes (`mf_recovery_codes.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecoveryCodesConfig {
    /// `SECURITY_MULTI_FACTOR_RECOVERY_CODES`: one-time recovery codes for users with a second
    /// factor (off by default).
    pub enabled: bool,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_CODES_N` (default 5, from 1 to 20): codes per set.
    pub count: usize,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_CODES_URL` (default `/mf-recovery-codes`): show or
    /// renew the codes.
    pub url: String,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_URL` (default `/mf-recovery`): sign in with a code.
    pub recovery_url: String,
    /// `SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS`: Fernet keys with which Flask-Security
    /// encrypted the stored codes, to read them (Rampart stores keyed digests of its own codes,
    /// and turns Flask-Security's into such digests on first use). Default none (plain codes).
    pub keys: Vec<secrecy::SecretString>,
}

impl Default for RecoveryCodesConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            count: 5,
            url: "/mf-recovery-codes".into(),
            recovery_url: "/mf-recovery".into(),
            keys: Vec::new(),
        }
    }
}

/// Passkeys / WebAuthn (`webauthn.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WebauthnConfig {
    /// `SECURITY_WEBAUTHN`: passkeys and security keys (off by default).
    pub enabled: bool,
    /// `SECURITY_WAN_ALLOW_AS_FIRST_FACTOR` (default on): keys registered as `first` sign in
    /// without a password.
    pub allow_as_first_factor: bool,
    /// `SECURITY_WAN_ALLOW_AS_MULTI_FACTOR` (default on): a first-factor sign-in with user
    /// verification counts as multi-factor (no further code asked).
    pub allow_as_multi_factor: bool,
    /// `SECURITY_WAN_ALLOW_AS_VERIFY` (default `first, secondary`): which keys re-authenticate at
    /// `/wan-verify`; empty turns `/wan-verify` off.
    pub allow_as_verify: Vec<String>,
    /// `SECURITY_WAN_ALLOW_USER_HINTS` (default on): `/wan-signin` may take an identity to list
    /// that user's keys; off, keys must be discoverable (resident).
    pub allow_user_hints: bool,
    /// `SECURITY_WAN_RP_NAME` (default `My Flask App`): the relying party's name shown by
    /// authenticators.
    pub rp_name: String,
    /// `SECURITY_WAN_RP_ID` (Rampart): the relying-party id; default the request's host without
    /// the port.
    pub rp_id: Option<String>,
    /// `SECURITY_WAN_ALLOWED_ORIGINS` (Rampart): origins accepted in the client data; default
    /// `PREFERRED_URL_SCHEME` with the request's host and port.
    pub allowed_origins: Vec<String>,
    /// `SECURITY_WAN_REGISTER_TIMEOUT` (milliseconds, default 60000): the authenticator's time
    /// to create a credential.
    pub register_timeout: u32,
    /// `SECURITY_WAN_SIGNIN_TIMEOUT` (milliseconds, default 60000): the authenticator's time to
    /// sign in.
    pub signin_timeout: u32,
    /// `SECURITY_WAN_REGISTER_WITHIN` (default 30 minutes): how long a registration's
    /// `wan_state` lives.
    pub register_within: Duration,
    /// `SECURITY_WAN_SIGNIN_WITHIN` (default 1 minute): how long a sign-in's or verify's
    /// `wan_state` lives.
    pub signin_within: Duration,
    /// `SECURITY_WAN_REGISTER_URL` (default `/wan-register`).
    pub register_url: String,
    /// `SECURITY_WAN_SIGNIN_URL` (default `/wan-signin`).
    pub signin_url: String,
    /// `SECURITY_WAN_DELETE_URL` (default `/wan-delete`).
    pub delete_url: String,
    /// `SECURITY_WAN_RENAME_URL` (default `/wan-rename`; Rampart's own: Flask-Security cannot
    /// rename a passkey).
    pub rename_url: String,
    /// `SECURITY_WAN_VERIFY_URL` (default `/wan-verify`).
    pub verify_url: String,
    /// `SECURITY_WAN_POST_REGISTER_VIEW` (default: the register page): where a browser goes
    /// after registering a key.
    pub post_register_view: Option<String>,
    /// `SECURITY_WAN_NAME_MAX_LENGTH` (default 64): the longest key name.
    pub name_max_length: usize,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            allow_as_first_factor: true,
            allow_as_multi_factor: true,
            allow_as_verify: vec!["first".into(), "secondary".into()],
            allow_user_hints: true,
            rp_name: "My Flask App".into(),
            rp_id: None,
            allowed_origins: Vec::new(),
            register_timeout: 60_000,
            signin_timeout: 60_000,
            register_within: Duration::from_secs(30 * 60),
            signin_within: Duration::from_secs(60),
            register_url: "/wan-register".into(),
            signin_url: "/wan-signin".into(),
            delete_url: "/wan-delete".into(),
            rename_url: "/wan-rename".into(),
            verify_url: "/wan-verify".into(),
            post_register_view: None,
            name_max_length: 64,
        }
    }
}

/// Re-authentication before sensitive changes (`views.verify`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifyConfig {
    /// `SECURITY_FRESHNESS`: how recent the password must be for sensitive changes (change of
    /// email, two-factor, recovery codes); older sessions re-enter it at `SECURITY_VERIFY_URL`.
    /// Default 24 hours; `off` (or a negative number, as in Flask-Security) disables the check.
    pub freshness: Option<Duration>,
    /// `SECURITY_VERIFY_URL` (default `/verify`): re-enter the password.
    pub url: String,
    /// `SECURITY_FRESHNESS_GRACE_PERIOD` (default 1 hour): a session found fresh stays fresh
    /// this long after each such check, even past `SECURITY_FRESHNESS`, so a multi-step change
    /// is not interrupted.
    pub grace_period: Duration,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            freshness: Some(Duration::from_secs(24 * 3600)),
            url: "/verify".into(),
            grace_period: Duration::from_secs(3600),
        }
    }
}

/// Usernames (Flask-Security's `SECURITY_USERNAME_*`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UsernameConfig {
    /// `SECURITY_USERNAME_ENABLE`: users have a username and may sign in with it.
    pub enabled: bool,
    /// `SECURITY_USERNAME_REQUIRED`: registration needs one.
    pub required: bool,
    /// `SECURITY_USERNAME_MIN_LENGTH` (default 4).
    pub min_length: usize,
    /// `SECURITY_USERNAME_MAX_LENGTH` (default 32).
    pub max_length: usize,
    /// `SECURITY_USERNAME_NORMALIZE_FORM`: the Unicode form usernames are stored and looked up
    /// in (default NFKD, as Flask-Security; `None` turns it off). Non-ASCII
    /// letters are case-folded in any case, see [`normalize_username`](crate::normalize_username).
    pub normalize_form: Option<NormalizeForm>,
}

impl Default for UsernameConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            required: false,
            min_length: 4,
            max_length: 32,
            normalize_form: Some(NormalizeForm::Nfkd),
        }
    }
}
