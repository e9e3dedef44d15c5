//! Deleting one's own account (password required, checked against the user's login limit).
//! Shared by the API and the security page.
//!
//! The user row goes with its role links, sessions and credentials (one transaction in the
//! framework's datastore) and the profile by its `ON DELETE CASCADE`; then the profile picture's
//! file is removed. Auth tokens die with the user, and the email address can be registered again.

use rampart::AuthContext;
use rampart::CurrentPassword;
use rampart::reply::Rejection;
use rampart::{FieldErrors, User};

use crate::avatar::MediaStore;

/// Why a password was not accepted.
#[derive(Debug)]
pub enum PasswordRefused {
    /// `field: ["Password not provided"]` or `["Invalid password"]`.
    Errors(FieldErrors),
    /// The user's login limit is used up: the framework's 429 rejection (`Retry-After`, in the
    /// request's format), the same whether the password was right or not.
    Limited(Rejection),
}

/// Checks `password` against the request's user's, through the framework's
/// [`check_current_password`](rampart::check_current_password): the attempt counts
/// against the user's login limit first, and is refused with 429 while that is used up.
///
/// # Errors
///
/// The framework's error when the database or hashing fails, or hashing is saturated.
pub async fn check_password(
    ctx: &AuthContext,
    user: &User,
    password: Option<&str>,
    field: &str,
) -> rampart::Result<Result<(), PasswordRefused>> {
    let security = ctx.security();
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        return Ok(Err(PasswordRefused::Errors(FieldErrors::single(
            field,
            security.msg("PASSWORD_NOT_PROVIDED", &[]),
        ))));
    };
    Ok(
        match rampart::check_current_password(ctx, user, password).await {
            Ok(CurrentPassword::Valid) => Ok(()),
            Ok(CurrentPassword::Invalid) => Err(PasswordRefused::Errors(FieldErrors::single(
                field,
                security.msg("INVALID_PASSWORD", &[]),
            ))),
            Err(Rejection::Failed(error)) => return Err(error),
            Err(limited) => Err(PasswordRefused::Limited(limited)),
        },
    )
}

/// Deletes the account of `user` and their profile picture (no password check: see
/// [`delete_account`]).
///
/// # Errors
///
/// The framework's error when the database fails; nothing is deleted then.
pub async fn delete_user(
    ctx: &AuthContext,
    media: &MediaStore,
    user: &User,
) -> rampart::Result<()> {
    let security = ctx.security();
    let profile = crate::profile::load(security, user.id)
        .await
        .map_err(rampart::DatastoreError::from)?;
    // `account_deleted` is recorded in the deletion's transaction.
    security
        .delete_user_recorded(user.id, Some(user.id), Some(ctx.device()))
        .await?;
    media
        .delete_avatar(user.id, profile.avatar.as_deref())
        .await;
    tracing::info!(user_id = user.id, "account deleted by its owner");
    Ok(())
}

/// Checks `password` against the request's user's (see [`check_password`]) and deletes the
/// account.
///
/// Returns `Ok(Err(_))` with `password: ["Password not provided"]` or `["Invalid password"]`
/// when the password is missing or wrong, or the 429 answer while the user's login limit is used
/// up.
///
/// # Errors
///
/// The framework's error when hashing or the database fails.
pub async fn delete_account(
    ctx: &AuthContext,
    media: &MediaStore,
    user: &User,
    password: Option<&str>,
) -> rampart::Result<Result<(), PasswordRefused>> {
    if let Err(refused) = check_password(ctx, user, password, "password").await? {
        return Ok(Err(refused));
    }
    delete_user(ctx, media, user).await?;
    Ok(Ok(()))
}
