//! Change of username and username recovery (`change_username.py`, `views.recover_username`).

/// Change of username (`change_username.py`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChangeUsernameConfig {
    /// `SECURITY_CHANGE_USERNAME`: signed-in users may change their username, after a fresh
    /// sign-in (off by default, as in Flask-Security).
    pub enabled: bool,
    /// `SECURITY_CHANGE_USERNAME_URL` (default `/change-username`).
    pub url: String,
    /// `SECURITY_POST_CHANGE_USERNAME_VIEW`: where a browser lands after the change (default
    /// `SECURITY_POST_LOGIN_VIEW`).
    pub post_view: Option<String>,
    /// `SECURITY_SEND_USERNAME_CHANGE_EMAIL` (default on): mail the account's address after a
    /// change (`change_username_notice`).
    pub send_email: bool,
}

impl Default for ChangeUsernameConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "/change-username".into(),
            post_view: None,
            send_email: true,
        }
    }
}

/// Username recovery (`recover_username` in Flask-Security's views).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct UsernameRecoveryConfig {
    /// `SECURITY_USERNAME_RECOVERY`: a visitor may have the username of the account with an
    /// email address mailed to that address (off by default, as in Flask-Security).
    pub enabled: bool,
    /// `SECURITY_USERNAME_RECOVERY_URL` (default `/recover-username`).
    pub url: String,
}

impl Default for UsernameRecoveryConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            url: "/recover-username".into(),
        }
    }
}
