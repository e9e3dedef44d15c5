//! The account security centre's settings: activity retention and the new-device alert.

use std::time::Duration;

/// The activity log and the new-device alert (Rampart's own settings).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ActivityConfig {
    /// `SECURITY_ACTIVITY_RETENTION` (default 365 days): account events older than this are
    /// purged by the housekeeping task.
    pub retention: Duration,
    /// `SECURITY_NEW_DEVICE_NOTIFICATION` (default `true`): mail the owner when a sign-in comes
    /// from a browser, system and network not seen for the account in the last 90 days (never
    /// for an account's first sign-in).
    pub new_device_notification: bool,
    /// `SECURITY_ACCOUNT_SECURITY_URL` (default `/dashboard/security/`, the sample app's): the
    /// page with the sessions list and activity that the new-device mail links to (a path, put
    /// after the app's external address, or an absolute URL).
    pub security_page_url: String,
}

impl Default for ActivityConfig {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(365 * 24 * 3600),
            new_device_notification: true,
            security_page_url: "/dashboard/security/".into(),
        }
    }
}
