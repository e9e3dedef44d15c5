//! Deleting one's own account (password required). Axum-free, shared by the API, the security
//! page and tests.
//!
//! The user row goes with its role links, sessions and credentials (one transaction in the
//! framework's datastore) and the profile by its `ON DELETE CASCADE`; then the profile picture's
//! file is removed. Auth tokens die with the user, and the email address can be registered again.

use rampart::{FieldErrors, Security, User};

use crate::avatar::MediaStore;

/// Checks `password` against the user's, on the framework's hashing pool (a dummy verification
/// of equal cost when the user has no password).
///
/// Returns `Ok(Err(errors))` with `field: ["Password not provided"]` or `["Invalid password"]`.
///
/// # Errors
///
/// The framework's error when hashing fails or is saturated.
pub async fn check_password(
    security: &Security,
    user: &User,
    password: Option<&str>,
    field: &str,
) -> rampart::Result<Result<(), FieldErrors>> {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Ok(Err(FieldErrors::single(
            field,
            security.msg("PASSWORD_NOT_PROVIDED", &[]),
        )));
    };
    let valid = match user.password.as_deref() {
        Some(hash) => security.hasher().verify(password, hash).await?.valid,
        None => {
            security.hasher().verify_dummy(password).await?;
            false
        }
    };
    if valid {
        Ok(Ok(()))
    } else {
        Ok(Err(FieldErrors::single(
            field,
            security.msg("INVALID_PASSWORD", &[]),
        )))
    }
}

/// Deletes the account of `user` and their profile picture (no password check: see
/// [`delete_account`]).
///
/// # Errors
///
/// The framework's error when the database fails; nothing is deleted then.
pub async fn delete_user(
    security: &Security,
    media: &MediaStore,
    user: &User,
) -> rampart::Result<()> {
    let profile = crate::profile::load(security, user.id)
        .await
        .map_err(rampart::DatastoreError::from)?;
    security.datastore().delete_user(user.id).await?;
    media
        .delete_avatar(user.id, profile.avatar.as_deref())
        .await;
    tracing::info!(user_id = user.id, "account deleted by its owner");
    Ok(())
}

/// Checks `password` against the user's and deletes the account.
///
/// Returns `Ok(Err(errors))` with `password: ["Password not provided"]` or
/// `["Invalid password"]` when the password is missing or wrong.
///
/// # Errors
///
/// The framework's error when hashing or the database fails.
pub async fn delete_account(
    security: &Security,
    media: &MediaStore,
    user: &User,
    password: Option<&str>,
) -> rampart::Result<Result<(), FieldErrors>> {
    if let Err(errors) = check_password(security, user, password, "password").await? {
        return Ok(Err(errors));
    }
    delete_user(security, media, user).await?;
    Ok(Ok(()))
}
