//! Unified sign-in (`unified_signin.py`) and text messages (`SECURITY_SMS_*`) settings.

use std::time::Duration;

use secrecy::SecretString;

/// Unified sign-in (`SECURITY_UNIFIED_SIGNIN`): one form that signs in with an identity (email,
/// username or phone) and a passcode (the password, a code sent by mail or text, or an
/// authenticator's code).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UnifiedSigninConfig {
    /// `SECURITY_UNIFIED_SIGNIN`: the feature is on (off by default).
    pub enabled: bool,
    /// `SECURITY_US_ENABLED_METHODS` (default `password, email, authenticator, sms`): the
    /// passcodes accepted.
    pub enabled_methods: Vec<String>,
    /// `SECURITY_US_MFA_REQUIRED` (default `password, email`): the methods after which a user
    /// with two-factor still gives their second factor (an authenticator or a text message is
    /// one already).
    pub mfa_required: Vec<String>,
    /// `SECURITY_USER_IDENTITY_ATTRIBUTES` (default `email`, plus `username` with
    /// `SECURITY_USERNAME_ENABLE`): the attributes an identity is looked up by, in order
    /// (`email`, `username`, `us_phone_number`); the first one the identity has the form of
    /// decides.
    pub identity_attributes: Vec<String>,
    /// `SECURITY_US_SIGNIN_REPLACES_LOGIN`: `SECURITY_LOGIN_URL` serves the unified sign-in
    /// (form and JSON) instead of the password form.
    pub signin_replaces_login: bool,
    /// `SECURITY_US_EMAIL_SUBJECT` (default `Verification Code`).
    pub email_subject: String,
    /// `SECURITY_US_TOKEN_VALIDITY` (default 120 seconds): how long a sent code (and the magic
    /// link) lives; authenticator codes are accepted this long either way of now.
    pub token_validity: Duration,
    /// `SECURITY_US_SETUP_WITHIN` (default 30 minutes): how long a setup's `state` lives.
    pub setup_within: Duration,
    /// `SECURITY_US_MAGIC_LINK` (Rampart; default on, as Flask-Security always does): the code
    /// mailed for a sign-in also comes as a link that signs in (`SECURITY_US_VERIFY_LINK_URL`).
    pub magic_link: bool,
    /// `SECURITY_US_SIGNIN_URL` (default `/us-signin`).
    pub signin_url: String,
    /// `SECURITY_US_SIGNIN_SEND_CODE_URL` (default `/us-signin/send-code`).
    pub signin_send_code_url: String,
    /// `SECURITY_US_SETUP_URL` (default `/us-setup`).
    pub setup_url: String,
    /// `SECURITY_US_VERIFY_URL` (default `/us-verify`).
    pub verify_url: String,
    /// `SECURITY_US_VERIFY_SEND_CODE_URL` (default `/us-verify/send-code`).
    pub verify_send_code_url: String,
    /// `SECURITY_US_VERIFY_LINK_URL` (default `/us-verify-link`).
    pub verify_link_url: String,
    /// `SECURITY_US_POST_SETUP_VIEW` (default the setup page).
    pub post_setup_view: Option<String>,
}

impl Default for UnifiedSigninConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            enabled_methods: ["password", "email", "authenticator", "sms"]
                .map(String::from)
                .to_vec(),
            mfa_required: ["password", "email"].map(String::from).to_vec(),
            identity_attributes: vec!["email".into()],
            signin_replaces_login: false,
            email_subject: "Verification Code".into(),
            token_validity: Duration::from_secs(120),
            setup_within: Duration::from_secs(30 * 60),
            magic_link: true,
            signin_url: "/us-signin".into(),
            signin_send_code_url: "/us-signin/send-code".into(),
            setup_url: "/us-setup".into(),
            verify_url: "/us-verify".into(),
            verify_send_code_url: "/us-verify/send-code".into(),
            verify_link_url: "/us-verify-link".into(),
            post_setup_view: None,
        }
    }
}

/// Text messages (`SECURITY_SMS_SERVICE`) and phone numbers (`SECURITY_PHONE_REGION_DEFAULT`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SmsConfig {
    /// `SECURITY_SMS_SERVICE` (default `console`: messages are printed, as the console mailer
    /// does); `twilio` sends them with Twilio's REST API.
    pub service: String,
    /// `SECURITY_SMS_SERVICE_CONFIG`: `{"ACCOUNT_SID": …, "AUTH_TOKEN": …, "PHONE_NUMBER": …}`
    /// as Flask-Security's (the provider's credentials and the sender's number).
    pub service_config: SmsServiceConfig,
    /// `SECURITY_SMS_API_URL` (Rampart): the provider's API base URL (default Twilio's
    /// `https://api.twilio.com`); for tests and proxies.
    pub api_url: String,
    /// `SECURITY_PHONE_REGION_DEFAULT` (default `US`): the region of numbers typed without a
    /// country code.
    pub phone_region_default: String,
}

impl Default for SmsConfig {
    fn default() -> Self {
        Self {
            service: "console".into(),
            service_config: SmsServiceConfig::default(),
            api_url: "https://api.twilio.com".into(),
            phone_region_default: "US".into(),
        }
    }
}

/// `SECURITY_SMS_SERVICE_CONFIG`, as Flask-Security's.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct SmsServiceConfig {
    /// `ACCOUNT_SID`: the provider's account.
    pub account_sid: Option<String>,
    /// `AUTH_TOKEN`: the provider's secret.
    pub auth_token: Option<SecretString>,
    /// `PHONE_NUMBER`: the number messages come from.
    pub phone_number: Option<String>,
}
