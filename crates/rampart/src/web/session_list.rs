//! The user's live sessions as the security centre lists them ([`SessionView`]): when each
//! signed in and was last used, its address, browser and system, how it signed in, and whether
//! it is the request's own. Shared by the sessions API and the data export.

use serde::Serialize;

use crate::model::User;
use crate::web::activity::{SESSION_DEVICE_KEY, SessionDevice};
use crate::web::context::AuthContext;

/// One live session of the user, as the sessions list shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Opaque id for [`revoke_session`](crate::revoke_session) (not the session id, nor its
    /// stored hash).
    pub id: String,
    /// When it signed in (ISO 8601, naive UTC).
    pub created_at: String,
    /// When it was last used (ISO 8601, naive UTC; at most a minute behind).
    pub last_seen_at: Option<String>,
    /// The client address at sign-in.
    pub ip: Option<String>,
    /// The browser and system ("Firefox on Linux").
    pub device: Option<String>,
    /// The user agent at sign-in.
    pub user_agent: Option<String>,
    /// How it signed in (`password`, `code`, `passkey`, `provider`, `remember_me`,
    /// `registration`).
    pub method: Option<String>,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// The public id of a stored session hash.
pub(crate) fn public_id(id_hash: &str) -> String {
    let digest = crate::token::sha256_hex(&format!("rampart-session-ref:{id_hash}"));
    digest.chars().take(32).collect()
}

pub(crate) fn current_hash(ctx: &AuthContext) -> Option<String> {
    ctx.session
        .id()
        .map(|id| crate::web::session_store::hash_session_id(&id))
}

/// The live sessions of `user`, oldest first, the request's own marked `current`.
///
/// # Errors
///
/// The datastore's.
pub async fn list_sessions(ctx: &AuthContext, user: &User) -> crate::Result<Vec<SessionView>> {
    let security = ctx.security();
    let current = current_hash(ctx);
    let rows = security
        .datastore()
        .session_details_of_user(user.id, security.now_naive())
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let data: serde_json::Value = serde_json::from_str(&row.data).unwrap_or_default();
            let device: SessionDevice = data
                .get(SESSION_DEVICE_KEY)
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default();
            SessionView {
                id: public_id(&row.id_hash),
                created_at: crate::activity::iso::format(row.created_at),
                last_seen_at: row.last_seen_at.map(crate::activity::iso::format),
                ip: device.ip,
                device: (!device.device.is_empty()).then_some(device.device),
                user_agent: device.user_agent,
                method: (!device.method.is_empty()).then_some(device.method),
                current: current.as_deref() == Some(row.id_hash.as_str()),
            }
        })
        .collect())
}
