//! Settings of the HTTP runtime every feature shares: sessions and their cookies, API tokens,
//! the CSRF cookie and the rate limits.

use std::time::Duration;

use super::RateLimit;

/// Sessions and the remember-me cookie (Flask's `SESSION_*`, Flask-Login's `REMEMBER_*`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SessionConfig {
    /// `PERMANENT_SESSION_LIFETIME`: idle lifetime of a session (seed: 14 days).
    pub lifetime: Duration,
    /// `SESSION_COOKIE_NAME` (default `session`).
    pub cookie_name: String,
    /// `SESSION_COOKIE_SECURE`: the `Secure` flag of every cookie; default: on unless `DEBUG`.
    pub cookie_secure: bool,
    /// `REMEMBER_COOKIE_DURATION` (365 days).
    pub remember_cookie_duration: Duration,
    /// `REMEMBER_COOKIE_NAME` (default `remember_token`).
    pub remember_cookie_name: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            lifetime: Duration::from_secs(14 * 86_400),
            cookie_name: "session".into(),
            cookie_secure: true,
            remember_cookie_duration: Duration::from_secs(365 * 86_400),
            remember_cookie_name: "remember_token".into(),
        }
    }
}

/// API authentication tokens (`SECURITY_TOKEN_*`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TokenConfig {
    /// `SECURITY_TOKEN_AUTHENTICATION_HEADER` (default `Authentication-Token`).
    pub header: String,
    /// `SECURITY_TOKEN_AUTHENTICATION_KEY` (query parameter, default `auth_token`).
    pub query_key: String,
    /// `SECURITY_TOKEN_MAX_AGE` (default 15 minutes, as the contract observed).
    pub max_age: Duration,
}

impl Default for TokenConfig {
    fn default() -> Self {
        Self {
            header: "Authentication-Token".into(),
            query_key: "auth_token".into(),
            max_age: Duration::from_secs(15 * 60),
        }
    }
}

/// CSRF protection (`SECURITY_CSRF_*`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CsrfConfig {
    /// `SECURITY_CSRF_COOKIE_NAME` (`XSRF-TOKEN`).
    pub cookie_name: String,
}

impl Default for CsrfConfig {
    fn default() -> Self {
        Self {
            cookie_name: "XSRF-TOKEN".into(),
        }
    }
}

/// Rate limits (`SECURITY_*_RATE_LIMIT`); `None` when turned off.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// `SECURITY_LOGIN_RATE_LIMIT` (seed: `3 per 10 minutes`), per client address.
    pub login: Option<RateLimit>,
    /// `SECURITY_LOGIN_IDENTITY_RATE_LIMIT` (default `10 per 5 minutes`): login attempts per
    /// account (email or username), from any address, so guessing spread over many addresses is
    /// throttled too. A successful login clears the account's count.
    pub login_identity: Option<RateLimit>,
    /// `SECURITY_MAIL_RATE_LIMIT` (default `10 per 10 minutes`, about one a minute): mails
    /// visitors can have sent to one address (reset instructions, confirmation, registration,
    /// change of email), so nobody can flood someone else's mailbox. Applies to any address,
    /// known or not.
    pub mail: Option<RateLimit>,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            login: Some(RateLimit {
                limit: 3,
                window: Duration::from_secs(600),
                description: "3 per 10 minute".into(),
            }),
            login_identity: Some(RateLimit {
                limit: 10,
                window: Duration::from_secs(300),
                description: "10 per 5 minute".into(),
            }),
            mail: Some(RateLimit {
                limit: 10,
                window: Duration::from_secs(600),
                description: "10 per 10 minute".into(),
            }),
        }
    }
}
