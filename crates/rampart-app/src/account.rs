//! Deleting one's own account (password required). Axum-free, shared by the API and tests.
//!
//! The user row goes with its role links, sessions and credentials (one transaction in the
//! framework's datastore) and the profile by its `ON DELETE CASCADE`; auth tokens die with the
//! user, and the email address can be registered again.

use rampart::{FieldErrors, Security, User};

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
    user: &User,
    password: Option<&str>,
) -> rampart::Result<Result<(), FieldErrors>> {
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Ok(Err(FieldErrors::single(
            "password",
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
    if !valid {
        return Ok(Err(FieldErrors::single(
            "password",
            security.msg("INVALID_PASSWORD", &[]),
        )));
    }
    security.datastore().delete_user(user.id).await?;
    tracing::info!(user_id = user.id, "account deleted by its owner");
    Ok(Ok(()))
}
