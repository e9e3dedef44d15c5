//! The framework's data model: users and roles, as Flask-Security's `fsqla_v3` stores them.
//!
//! Apps extend users with tables of their own keyed by [`User::id`]; nothing here is generic over a
//! user type.

use serde::Serialize;
use time::PrimitiveDateTime;

/// A user account (a row of the `user` table).
///
/// Datetimes are naive UTC, as Flask-Security stores them.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow, Serialize)]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Email address as registered (unique, compared case-insensitively).
    pub email: String,
    /// Optional username (unique, compared case-insensitively).
    pub username: Option<String>,
    /// The password hash (`None` for accounts without a password).
    #[serde(skip)]
    pub password: Option<String>,
    /// Whether the account may sign in.
    pub active: bool,
    /// Identity used in sessions and tokens; rotating it signs the user out everywhere.
    pub fs_uniquifier: String,
    /// When the email address was confirmed.
    pub confirmed_at: Option<PrimitiveDateTime>,
    /// Previous login time (trackable).
    pub last_login_at: Option<PrimitiveDateTime>,
    /// Current login time (trackable).
    pub current_login_at: Option<PrimitiveDateTime>,
    /// Previous login address (trackable).
    pub last_login_ip: Option<String>,
    /// Current login address (trackable).
    pub current_login_ip: Option<String>,
    /// Number of successful logins (trackable).
    pub login_count: Option<i64>,
    /// Primary two-factor method (`authenticator`, `email`, …), if two-factor is set up.
    pub tf_primary_method: Option<String>,
    /// Encrypted/encoded TOTP secret for two-factor.
    #[serde(skip)]
    pub tf_totp_secret: Option<String>,
    /// Phone number for SMS two-factor.
    pub tf_phone_number: Option<String>,
    /// Unified sign-in TOTP secrets (JSON).
    #[serde(skip)]
    pub us_totp_secrets: Option<String>,
    /// Unified sign-in phone number.
    pub us_phone_number: Option<String>,
    /// WebAuthn user handle.
    pub fs_webauthn_user_handle: Option<String>,
    /// Multi-factor recovery codes (CSV of hashes).
    #[serde(skip)]
    pub mf_recovery_codes: Option<String>,
    /// When the account was created.
    pub create_datetime: PrimitiveDateTime,
    /// When the account last changed.
    pub update_datetime: PrimitiveDateTime,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("username", &self.username)
            .field("active", &self.active)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// A role (a row of the `role` table) with its permissions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Role {
    /// Primary key.
    pub id: i64,
    /// Unique name, e.g. `Admin`.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// Permissions granted by this role (stored as CSV, like Flask-Security's `AsaList`).
    pub permissions: Vec<String>,
}

/// The fields needed to create a user.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    /// Email address (stored as given).
    pub email: String,
    /// Optional username.
    pub username: Option<String>,
    /// Password hash, already computed.
    pub password_hash: Option<String>,
    /// Whether the account is active.
    pub active: bool,
    /// Pre-confirmed (e.g. created from the CLI or when confirmation is off).
    pub confirmed_at: Option<PrimitiveDateTime>,
    /// Names of roles to link; unknown names are an error.
    pub roles: Vec<String>,
}

/// A new random `fs_uniquifier`.
pub(crate) fn new_uniquifier() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Whether signing `user` in needs a second factor (two-factor is on and the user has set it up).
pub fn second_factor_required(config: &crate::config::SecurityConfig, user: &User) -> bool {
    config.two_factor.enabled && user.tf_primary_method.is_some() && user.tf_totp_secret.is_some()
}

/// A registered WebAuthn credential (a row of Flask-Security's `webauthn` table): a passkey or
/// security key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WebauthnCredential {
    /// Primary key.
    pub id: i64,
    /// The credential's id (raw bytes; unique).
    pub credential_id: Vec<u8>,
    /// The credential's public key, a COSE key (CBOR), as Flask-Security stores it.
    #[serde(skip)]
    pub public_key: Vec<u8>,
    /// The last signature counter seen.
    pub sign_count: i64,
    /// The transports the authenticator said it can use (`usb`, `internal`, `hybrid`, …).
    pub transports: Vec<String>,
    /// Whether the credential said it is backed up (synced).
    pub backup_state: bool,
    /// `single_device` or `multi_device` (backup eligible).
    pub device_type: String,
    /// The client's extension outputs at registration (JSON), e.g. `credProps`.
    pub extensions: Option<String>,
    /// When it was registered.
    pub create_datetime: PrimitiveDateTime,
    /// When it was last used.
    pub lastuse_datetime: PrimitiveDateTime,
    /// The user's name for it (unique per user).
    pub name: String,
    /// `first` (signs in alone) or `secondary` (a second factor).
    pub usage: String,
    /// The owner.
    pub user_id: i64,
}

/// The fields needed to store a new WebAuthn credential.
#[derive(Clone, Debug)]
pub struct NewWebauthnCredential {
    /// The credential's id (raw bytes).
    pub credential_id: Vec<u8>,
    /// The COSE public key (CBOR).
    pub public_key: Vec<u8>,
    /// The signature counter at registration.
    pub sign_count: u32,
    /// Transports reported by the client.
    pub transports: Vec<String>,
    /// Backed up now.
    pub backup_state: bool,
    /// `single_device` or `multi_device`.
    pub device_type: String,
    /// The client's extension outputs (JSON).
    pub extensions: Option<String>,
    /// The user's name for it.
    pub name: String,
    /// `first` or `secondary`.
    pub usage: String,
}
