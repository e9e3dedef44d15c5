//! Unlock by email: the per-account login limit (`SECURITY_LOGIN_IDENTITY_RATE_LIMIT`) pauses an
//! account that is being guessed at, which would also lock its owner out. The first refusal in a
//! window mails the owner a link (`GET /unlock/<token>`, valid one hour) that clears the pause,
//! so an attacker can slow guessing down but cannot keep the owner out.
//!
//! The refusal looks the same whether or not the account exists; only an existing, active
//! account gets the mail, at most one per window. Mail: `unlock_instructions`.
//!
//! Without axum (CLI, tests): [`unlock_account`] checks a link's token and lifts the pause.

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::response::Response;
use axum::routing::get;
use minijinja::context;

use crate::config::{RateLimit, SecurityConfig};
use crate::model::User;
use crate::web::context::AuthContext;
use crate::web::security::Security;

const SALT: &str = "unlock-salt";
/// How long an unlock link works.
const WITHIN: Duration = Duration::from_secs(3600);

fn base(config: &SecurityConfig) -> String {
    config.url("/unlock")
}

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(&format!("{}/{{token}}", base(config)), get(get_unlock))
}

/// Mails the owner of `identity` an unlock link, once per window of the account limit. The work
/// (the look-up, the counter, the mail) runs after the answer is sent, so the refusal takes the
/// same time whether or not the account exists.
pub(crate) fn offer(ctx: &AuthContext, identity: &str) {
    let security = ctx.security().clone();
    let link_base = ctx.external_url(&format!("{}/", base(security.config())));
    let identity = identity.trim().to_owned();
    let device = crate::web::activity::device(ctx);
    tokio::spawn(async move {
        if let Err(error) = send_link(&security, &identity, &link_base, device).await {
            tracing::warn!(%error, "unlock mail not sent");
        }
    });
}

async fn send_link(
    security: &Security,
    identity: &str,
    link_base: &str,
    device: crate::activity::Device,
) -> crate::Result<()> {
    let Some(limit) = security.config().rate_limits.login_identity.as_ref() else {
        return Ok(());
    };
    let Some(user) = security
        .datastore()
        .user_by_identity(identity)
        .await?
        .filter(|u| u.active)
    else {
        return Ok(());
    };
    let once = RateLimit {
        limit: 1,
        window: limit.window,
        description: String::new(),
    };
    let key = format!("unlock-mail:{}", user.id);
    if crate::web::rate_limit::hit(security, &key, &once)
        .await?
        .is_err()
    {
        return Ok(());
    }
    // Once per window, as the mail: the account was paused by this refusal's window.
    crate::web::activity::record(
        security,
        crate::activity::NewActivity {
            user_id: user.id,
            actor_id: None,
            event: crate::activity::ActivityEvent::AccountLocked,
            device: Some(device),
        },
    )
    .await?;
    let payload = (
        user.fs_uniquifier.clone(),
        security.signer().hash_data(&user.email),
    );
    let token = security
        .signer()
        .sign(SALT, &payload, security.clock().now())?;
    crate::web::notify::send(
        security,
        "unlock_instructions",
        &user.email,
        context! {
            user => crate::web::notify::user_context(&user),
            unlock_link => format!("{link_base}{token}"),
            within => crate::messages::describe_duration(limit.window),
            app_name => security.config().app_name,
        },
    )
}

/// What an unlock link turned out to be ([`unlock_account`]).
#[derive(Debug)]
#[must_use]
pub enum UnlockOutcome {
    /// The account's login pause is lifted; the user it is for.
    Unlocked(Box<User>),
    /// Forged, too old, or for an account whose address or uniquifier changed since.
    Invalid,
}

/// Checks an unlock token (from the `unlock_instructions` mail) and, when it is genuine and
/// recent, clears the account's login attempt count (`SECURITY_LOGIN_IDENTITY_RATE_LIMIT`).
///
/// # Errors
///
/// The datastore's error.
pub async fn unlock_account(security: &Security, token: &str) -> crate::Result<UnlockOutcome> {
    let signer = security.signer();
    let user =
        match signer.verify_link::<(String, String)>(SALT, token, WITHIN, security.clock().now()) {
            Ok(((uniquifier, digest), false)) => security
                .datastore()
                .user_by_uniquifier(&uniquifier)
                .await?
                .filter(|u| signer.verify_hash_data(&u.email, &digest)),
            _ => None,
        };
    let Some(user) = user else {
        return Ok(UnlockOutcome::Invalid);
    };
    crate::web::rate_limit::clear_login_account(security, user.id).await?;
    Ok(UnlockOutcome::Unlocked(Box::new(user)))
}

/// The link answers alike in every format: a flash and a redirect to the sign-in page.
async fn get_unlock(ctx: AuthContext, Path(token): Path<String>) -> crate::Result<Response> {
    let security = ctx.security().clone();
    let config = security.config();
    match unlock_account(&security, &token).await? {
        UnlockOutcome::Unlocked(user) => {
            crate::web::activity::record_request(
                &ctx,
                user.id,
                crate::activity::ActivityEvent::AccountUnlocked,
            )
            .await?;
            ctx.flash("success", &security.msg("UNLOCK_SUCCESSFUL", &[]))
                .await?;
        }
        UnlockOutcome::Invalid => {
            ctx.flash("error", &security.msg("UNLOCK_INVALID", &[]))
                .await?;
        }
    }
    Ok(crate::web::reply::redirect(&config.url(&config.login.url)))
}
