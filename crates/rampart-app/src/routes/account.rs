//! Deleting one's account from the security page, in two steps:
//!
//! 1. `POST /dashboard/security/delete` with the password (field `delete_password`): a wrong or
//!    missing password shows the security page again with the error; a right one shows a page
//!    asking to confirm, carrying a signed confirmation valid for [`CONFIRM_WITHIN`].
//! 2. `POST /dashboard/security/delete/confirm` with that confirmation: the account, its profile,
//!    role links, sessions and picture are deleted, the browser is signed out and sent to the
//!    sign-in page with a message.
//!
//! `POST /dashboard/security/sign-out-others` signs the user out of every other session.
//!
//! The forms carry the CSRF token (checked by the security layer). The security page itself
//! (`GET|POST /dashboard/security/`, change password) is the framework's `change` view, rendered
//! with the app's `security/change_password.html`.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use minijinja::context;
use rampart::{FieldErrors, FormInput};
use serde_json::Value;

use super::{HandlerError, SignedIn, render};
use crate::AppState;
use crate::account::PasswordRefused;

/// How long the confirmation step stays valid.
pub const CONFIRM_WITHIN: Duration = Duration::from_secs(10 * 60);

/// Salt of the signed confirmation.
const SALT: &str = "rampart-app-delete-account";

/// The two steps.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard/security/delete", post(post_delete))
        .route("/dashboard/security/delete/confirm", post(post_confirm))
        .route(
            "/dashboard/security/sign-out-others",
            post(post_sign_out_others),
        )
}

/// "Sign out everywhere else": every other session, auth token and remember-me cookie dies.
async fn post_sign_out_others(
    State(state): State<AppState>,
    page: SignedIn,
    fresh: Result<rampart::FreshUser, Response>,
) -> Result<Response, HandlerError> {
    if fresh.is_err() {
        return super::reauthenticate_for_security_page(&state, &page).await;
    }
    rampart::sign_out_other_sessions(&page.ctx, &page.user.user).await?;
    page.ctx
        .flash("success", "You are now signed out everywhere else.")
        .await?;
    let config = state.security.config();
    Ok(rampart::reply::redirect(&config.url(&config.change.url)))
}

async fn post_delete(
    State(state): State<AppState>,
    page: SignedIn,
    mut input: FormInput,
) -> Result<Response, HandlerError> {
    let security = &state.security;
    let user = &page.user.user;
    let password = input.text("delete_password");
    match crate::account::check_password(&page.ctx, user, password.as_deref(), "delete_password")
        .await?
    {
        Err(PasswordRefused::Limited(limited)) => Ok(limited.into_response()),
        Err(PasswordRefused::Errors(errors)) => {
            // The security page again, with the error under the delete form's password.
            render(
                &page.ctx,
                "security/change_password.html",
                context! {
                    form => context! { values => Value::Null, errors => FieldErrors::new().to_json() },
                    delete_form => context! { errors => errors.to_json() },
                },
            )
            .await
        }
        Ok(()) => {
            let confirmation = security
                .signer()
                .sign(SALT, &user.fs_uniquifier, security.clock().now())
                .map_err(rampart::Error::from)?;
            render(
                &page.ctx,
                "app/delete_account.html",
                context! { confirmation => confirmation },
            )
            .await
        }
    }
}

async fn post_confirm(
    State(state): State<AppState>,
    page: SignedIn,
    mut input: FormInput,
) -> Result<Response, HandlerError> {
    let security = &state.security;
    let user = &page.user.user;
    let config = security.config();
    let confirmed = input.text("confirmation").is_some_and(|token| {
        security
            .signer()
            .verify::<String>(SALT, &token, Some(CONFIRM_WITHIN), security.clock().now())
            .is_ok_and(|uniquifier| uniquifier == user.fs_uniquifier)
    });
    if !confirmed {
        page.ctx
            .flash(
                "error",
                "That confirmation has expired. Enter your password again to delete your account.",
            )
            .await?;
        return Ok(rampart::reply::redirect(&config.url(&config.change.url)));
    }
    crate::account::delete_user(&page.ctx, &state.media, user).await?;
    rampart::logout_user(&page.ctx).await?;
    page.ctx
        .flash(
            "success",
            "Your account and everything in it have been deleted. Goodbye!",
        )
        .await?;
    Ok(rampart::reply::redirect(&config.url(&config.login.url)))
}
