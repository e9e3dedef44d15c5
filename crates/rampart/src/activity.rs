//! The account activity log: what happened to an account ([`ActivityEvent`]), how a session
//! signed in ([`SignInMethod`]), from which device ([`Device`], in `activity/device.rs`), and a
//! stored event ([`Activity`]).
//!
//! Events are appended to `rampart_activity` (see `Datastore::activity_record`) and broadcast to
//! the app's subscribers (`Security::subscribe_activity`). Old events are purged after
//! `SECURITY_ACTIVITY_RETENTION` by the housekeeping task.

use serde::{Deserialize, Serialize};
use time::PrimitiveDateTime;

pub use device::Device;

mod device;

/// How a session signed in (Flask-Security's names where it has them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignInMethod {
    /// Identity and password (`/login`), possibly followed by a second factor.
    Password,
    /// A one-time code sent by mail or SMS, or an authenticator code (unified sign-in).
    Code,
    /// A passkey (`/wan-signin`).
    Passkey,
    /// An external identity provider (social login).
    Provider,
    /// The remember-me cookie brought a new session.
    RememberMe,
    /// The session that registration signed in.
    Registration,
}

impl SignInMethod {
    /// The stored name (`password`, `code`, `passkey`, `provider`, `remember_me`,
    /// `registration`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Code => "code",
            Self::Passkey => "passkey",
            Self::Provider => "provider",
            Self::RememberMe => "remember_me",
            Self::Registration => "registration",
        }
    }

    /// The method of a stored name ([`SignInMethod::as_str`]), if it is one.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Password,
            Self::Code,
            Self::Passkey,
            Self::Provider,
            Self::RememberMe,
            Self::Registration,
        ]
        .into_iter()
        .find(|m| m.as_str() == name)
    }
}

/// What happened to an account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActivityEvent {
    /// A sign-in completed.
    SignIn {
        /// How.
        method: SignInMethod,
    },
    /// A sign-in with this account's identity was refused (wrong password or second factor).
    SignInFailed,
    /// The user signed out.
    SignOut,
    /// A sign-in came from a browser, system and network not seen for this account in 90 days.
    NewDevice,
    /// One session was ended from the sessions list.
    SessionRevoked,
    /// Every other session was ended ("sign out everywhere else").
    OtherSessionsRevoked,
    /// The password was changed (signed in).
    PasswordChanged,
    /// The password was reset (forgotten-password link).
    PasswordReset,
    /// The email address was changed.
    EmailChanged,
    /// The username was changed.
    UsernameChanged,
    /// Two-factor sign-in was set up or changed.
    TwoFactorEnabled,
    /// Two-factor sign-in was turned off.
    TwoFactorDisabled,
    /// New recovery codes were generated.
    RecoveryCodesGenerated,
    /// A passkey was added.
    PasskeyAdded,
    /// A passkey was removed.
    PasskeyRemoved,
    /// An identity provider was linked.
    ProviderLinked,
    /// An identity provider was unlinked.
    ProviderUnlinked,
    /// Too many failed sign-ins paused the account.
    AccountLocked,
    /// The account was unlocked (the mailed link).
    AccountUnlocked,
    /// An administrator gave a role.
    RoleAdded {
        /// The role's name.
        role: String,
    },
    /// An administrator took a role away.
    RoleRemoved {
        /// The role's name.
        role: String,
    },
    /// An administrator deactivated the account.
    AccountDeactivated,
    /// An administrator reactivated the account.
    AccountActivated,
    /// The account was deleted.
    AccountDeleted,
}

impl ActivityEvent {
    /// The stored name of the event (`sign_in`, `sign_in_failed`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Self::SignIn { .. } => "sign_in",
            Self::SignInFailed => "sign_in_failed",
            Self::SignOut => "sign_out",
            Self::NewDevice => "new_device",
            Self::SessionRevoked => "session_revoked",
            Self::OtherSessionsRevoked => "other_sessions_revoked",
            Self::PasswordChanged => "password_changed",
            Self::PasswordReset => "password_reset",
            Self::EmailChanged => "email_changed",
            Self::UsernameChanged => "username_changed",
            Self::TwoFactorEnabled => "two_factor_enabled",
            Self::TwoFactorDisabled => "two_factor_disabled",
            Self::RecoveryCodesGenerated => "recovery_codes_generated",
            Self::PasskeyAdded => "passkey_added",
            Self::PasskeyRemoved => "passkey_removed",
            Self::ProviderLinked => "provider_linked",
            Self::ProviderUnlinked => "provider_unlinked",
            Self::AccountLocked => "account_locked",
            Self::AccountUnlocked => "account_unlocked",
            Self::RoleAdded { .. } => "role_added",
            Self::RoleRemoved { .. } => "role_removed",
            Self::AccountDeactivated => "account_deactivated",
            Self::AccountActivated => "account_activated",
            Self::AccountDeleted => "account_deleted",
        }
    }

    /// Every event name, for filters.
    pub const NAMES: &'static [&'static str] = &[
        "sign_in",
        "sign_in_failed",
        "sign_out",
        "new_device",
        "session_revoked",
        "other_sessions_revoked",
        "password_changed",
        "password_reset",
        "email_changed",
        "username_changed",
        "two_factor_enabled",
        "two_factor_disabled",
        "recovery_codes_generated",
        "passkey_added",
        "passkey_removed",
        "provider_linked",
        "provider_unlinked",
        "account_locked",
        "account_unlocked",
        "role_added",
        "role_removed",
        "account_deactivated",
        "account_activated",
        "account_deleted",
    ];

    /// The event's details as stored (`{"method": "password"}`, `{"role": "Admin"}`), if any.
    pub fn detail(&self) -> Option<serde_json::Value> {
        match self {
            Self::SignIn { method } => Some(serde_json::json!({ "method": method.as_str() })),
            Self::RoleAdded { role } | Self::RoleRemoved { role } => {
                Some(serde_json::json!({ "role": role }))
            }
            _ => None,
        }
    }
}

/// An event to append: about whom, by whom, what, and from where.
#[derive(Clone, Debug)]
pub struct NewActivity {
    /// The account the event is about.
    pub user_id: i64,
    /// Who acted (the user themselves, an administrator); `None` for the system.
    pub actor_id: Option<i64>,
    /// What happened.
    pub event: ActivityEvent,
    /// The request's client and browser, when there was a request.
    pub device: Option<Device>,
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Activity {
    /// Its id (increasing: newer events have larger ids).
    pub id: i64,
    /// The account it is about.
    pub user_id: Option<i64>,
    /// Who acted.
    pub actor_id: Option<i64>,
    /// The event's name (`sign_in`, …; see [`ActivityEvent::name`]).
    pub event: String,
    /// Its details (JSON object), if any.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// The client address.
    pub ip: Option<String>,
    /// The readable device ("Firefox on Linux").
    pub device: Option<String>,
    /// The raw user agent.
    pub user_agent: Option<String>,
    /// When (naive UTC).
    #[serde(with = "iso")]
    #[schema(value_type = String)]
    pub created_at: PrimitiveDateTime,
}

impl Activity {
    /// The same event as JSON for the API: `{id, event, detail, ip, device, user_agent,
    /// created_at, user_id, actor_id}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Naive UTC datetimes as ISO 8601 (`2026-01-02T03:04:05`).
pub(crate) mod iso {
    use serde::Serializer;
    use time::PrimitiveDateTime;

    /// Writes `at` as `YYYY-MM-DDTHH:MM:SS`.
    pub(crate) fn serialize<S: Serializer>(
        at: &PrimitiveDateTime,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format(*at))
    }

    /// `YYYY-MM-DDTHH:MM:SS` (whole seconds).
    pub(crate) fn format(at: PrimitiveDateTime) -> String {
        let (date, t) = (at.date(), at.time());
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            date.year(),
            u8::from(date.month()),
            date.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_is_listed_for_the_filters() {
        let events = [
            ActivityEvent::SignIn {
                method: SignInMethod::Password,
            },
            ActivityEvent::SignInFailed,
            ActivityEvent::AccountDeleted,
            ActivityEvent::RoleAdded {
                role: "Admin".into(),
            },
        ];
        for event in events {
            assert!(ActivityEvent::NAMES.contains(&event.name()), "{event:?}");
        }
        assert_eq!(
            ActivityEvent::SignIn {
                method: SignInMethod::RememberMe
            }
            .detail(),
            Some(serde_json::json!({"method": "remember_me"}))
        );
    }
}
