//! Start-up data: the tutorial's roles and, when configured, the first administrator.

use rampart::{ConfigError, NewUser, Role, Security};
use secrecy::ExposeSecret as _;

use crate::config::{AdminSeed, AppConfigError};
use crate::db::naive_utc;
use crate::{AppError, PROFILE_ON_USER_CREATED};

/// The roles every installation has, with their permissions.
pub const ROLES: &[(&str, &str, &[&str])] = &[
    ("User", "A signed-up user", &["user-read", "user-write"]),
    ("Admin", "An administrator", &["admin-read", "admin-write"]),
];

/// Creates the roles of [`ROLES`] that are missing (existing roles are left as they are).
///
/// # Errors
///
/// [`AppError::Datastore`] when the database fails.
pub async fn seed_roles(security: &Security) -> Result<Vec<Role>, AppError> {
    let now = naive_utc(security.clock().now());
    let mut roles = Vec::with_capacity(ROLES.len());
    for (name, description, permissions) in ROLES {
        let permissions: Vec<String> = permissions.iter().map(|p| (*p).to_owned()).collect();
        roles.push(
            security
                .datastore()
                .ensure_role(name, Some(description), &permissions, now)
                .await?,
        );
    }
    Ok(roles)
}

/// Creates the administrator (confirmed, active, roles `Admin` and `User`) unless a user with
/// that email exists. Returns whether it was created.
///
/// # Errors
///
/// [`AppError::Config`] naming `ADMIN_PASSWORD` when the password breaks the policy or
/// `ADMIN_EMAIL` when it is not an address; [`AppError::Datastore`] when the database fails.
pub async fn seed_admin(security: &Security, admin: &AdminSeed) -> Result<bool, AppError> {
    let datastore = security.datastore();
    if datastore.user_by_email(&admin.email).await?.is_some() {
        return Ok(false);
    }
    if rampart::normalize_email(&admin.email).is_err() {
        return Err(invalid("ADMIN_EMAIL", "expected an email address".into()));
    }
    let password = admin.password.expose_secret();
    security
        .hasher()
        .policy()
        .check(password)
        .map_err(|violation| invalid("ADMIN_PASSWORD", violation.to_string()))?;
    let hash = security.hasher().hash(password).await?;
    let now = naive_utc(security.clock().now());
    let new_user = NewUser {
        email: admin.email.clone(),
        username: None,
        password_hash: Some(hash),
        active: true,
        confirmed_at: Some(now),
        roles: vec!["Admin".into(), "User".into()],
    };
    match datastore
        .create_user(
            &new_user,
            &rampart::random_hex(16),
            now,
            &[PROFILE_ON_USER_CREATED.to_owned()],
        )
        .await
    {
        Ok(user) => {
            tracing::info!(email = %user.email, "created the administrator from ADMIN_EMAIL");
            Ok(true)
        }
        // Another instance starting at the same time created it.
        Err(error) if error.is_conflict() => Ok(false),
        Err(error) => Err(error.into()),
    }
}

fn invalid(key: &str, message: String) -> AppError {
    AppError::Config(AppConfigError::Config(ConfigError::Invalid {
        key: key.to_owned(),
        message,
    }))
}
