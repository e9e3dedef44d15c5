//! Recording account events and session devices for the security centre: the device of a
//! request, the events appended to the activity log and broadcast to the app's subscribers, the
//! device and sign-in method stamped into a new session, the throttled "last seen" of a session,
//! and the new-device alert.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use minijinja::context;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::activity::{Activity, ActivityEvent, Device, NewActivity, SignInMethod};
use crate::model::User;
use crate::web::context::{AuthContext, AuthMethod};
use crate::web::security::Security;

/// The session key holding how and from where the session signed in ([`SessionDevice`]).
pub(crate) const SESSION_DEVICE_KEY: &str = "_rampart_device";
/// A session's `last_seen_at` is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Past this many remembered touches, the table is cleared (it only throttles writes).
const MAX_TOUCHES: usize = 50_000;
/// A sign-in from a device not seen for this long is announced to the owner.
const NEW_DEVICE_AFTER: time::Duration = time::Duration::days(90);
/// Events buffered per subscriber before a slow one misses some.
const CHANNEL_CAPACITY: usize = 1024;

/// How and from where a session signed in, kept in the session's data.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct SessionDevice {
    /// The client address at sign-in.
    pub(crate) ip: Option<String>,
    /// The user agent at sign-in.
    pub(crate) user_agent: Option<String>,
    /// The readable device name.
    pub(crate) device: String,
    /// The sign-in method (`password`, `code`, `passkey`, `provider`, `remember_me`, …).
    pub(crate) method: String,
}

/// The activity channel and the sessions' touch times, owned by [`Security`].
#[derive(Debug)]
pub(crate) struct ActivityHub {
    sender: broadcast::Sender<Activity>,
    touches: Mutex<HashMap<String, Instant>>,
}

impl Default for ActivityHub {
    fn default() -> Self {
        Self {
            sender: broadcast::channel(CHANNEL_CAPACITY).0,
            touches: Mutex::new(HashMap::new()),
        }
    }
}

impl ActivityHub {
    /// A new receiver of every event recorded from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Activity> {
        self.sender.subscribe()
    }

    /// Whether the session `id_hash` is due a `last_seen_at` write (and notes it as written).
    fn touch_due(&self, id_hash: &str, now: Instant) -> bool {
        let Ok(mut touches) = self.touches.lock() else {
            return false;
        };
        if let Some(at) = touches.get(id_hash)
            && now.duration_since(*at) < TOUCH_EVERY
        {
            return false;
        }
        if touches.len() >= MAX_TOUCHES {
            touches.clear();
        }
        touches.insert(id_hash.to_owned(), now);
        true
    }
}

/// The device of the request.
pub(crate) fn device(ctx: &AuthContext) -> Device {
    Device::from_request(ctx.client_ip, ctx.user_agent.as_deref())
}

/// Appends `new` to the activity log and hands it to the subscribers.
///
/// # Errors
///
/// The datastore's.
pub(crate) async fn record(security: &Security, new: NewActivity) -> crate::Result<()> {
    let now = security.now_naive();
    let id = security.datastore().activity_record(&new, now).await?;
    broadcast(security, &new, id, now);
    Ok(())
}

/// Hands an event stored as `id` at `now` to the subscribers (after its transaction committed).
pub(crate) fn broadcast(
    security: &Security,
    new: &NewActivity,
    id: i64,
    now: time::PrimitiveDateTime,
) {
    let device = new.device.clone().unwrap_or_default();
    // No subscriber is no error.
    let _ = security.activity_hub().sender.send(Activity {
        id,
        user_id: Some(new.user_id),
        actor_id: new.actor_id,
        event: new.event.name().to_owned(),
        detail: new.event.detail(),
        ip: device.ip,
        device: (!device.name.is_empty()).then_some(device.name),
        user_agent: device.user_agent,
        created_at: now,
    });
}

/// Records `event` about `user_id`, done by the request's user (or by `user_id` when signed
/// out), from the request's device.
///
/// # Errors
///
/// The datastore's.
pub(crate) async fn record_request(
    ctx: &AuthContext,
    user_id: i64,
    event: ActivityEvent,
) -> crate::Result<()> {
    let actor_id = ctx.user().map_or(user_id, |u| u.user.id);
    record(
        &ctx.security,
        NewActivity {
            user_id,
            actor_id: Some(actor_id),
            event,
            device: Some(device(ctx)),
        },
    )
    .await
}

/// Records a refused sign-in of the account `user_id` (a wrong password, one-time code,
/// recovery code or second factor) from the request's device; nobody acted as signed in.
///
/// # Errors
///
/// The datastore's.
pub(crate) async fn sign_in_failed(ctx: &AuthContext, user_id: i64) -> crate::Result<()> {
    record(
        &ctx.security,
        NewActivity {
            user_id,
            actor_id: None,
            event: ActivityEvent::SignInFailed,
            device: Some(device(ctx)),
        },
    )
    .await
}

/// A session was just signed in to `user` by `method`: stamps the device into the session,
/// records the sign-in and, for a device not seen in 90 days (not the account's first sign-in,
/// not a remember-me cookie), records `new_device` and mails the owner
/// (`SECURITY_NEW_DEVICE_NOTIFICATION`).
///
/// # Errors
///
/// The session store's or the datastore's.
pub(crate) async fn signed_in(
    ctx: &AuthContext,
    user: &User,
    method: SignInMethod,
) -> crate::Result<()> {
    let security = &ctx.security;
    let device = device(ctx);
    ctx.session
        .insert(
            SESSION_DEVICE_KEY,
            SessionDevice {
                ip: device.ip.clone(),
                user_agent: device.user_agent.clone(),
                device: device.name.clone(),
                method: method.as_str().to_owned(),
            },
        )
        .await?;
    let config = &security.config().activity;
    let announce = if config.new_device_notification
        && !matches!(
            method,
            SignInMethod::RememberMe | SignInMethod::Registration
        ) {
        let since = security.now_naive() - NEW_DEVICE_AFTER;
        let (seen, signed_in_before) = security
            .datastore()
            .device_seen(user.id, &device.key, since)
            .await?;
        !seen && signed_in_before
    } else {
        false
    };
    let new = |event| NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event,
        device: Some(device.clone()),
    };
    record(security, new(ActivityEvent::SignIn { method })).await?;
    if announce {
        record(security, new(ActivityEvent::NewDevice)).await?;
        let page = &config.security_page_url;
        let link = if page.starts_with("http://") || page.starts_with("https://") {
            page.clone()
        } else {
            ctx.external_url(page)
        };
        let when = crate::activity::iso::format(security.now_naive()).replace('T', " ");
        crate::web::notify::send(
            security,
            "new_device",
            &user.email,
            context! {
                user => crate::web::notify::user_context(user),
                device => device.name,
                ip => device.ip,
                when => when,
                method => method.as_str(),
                security_link => link,
                app_name => security.config().app_name,
            },
        )?;
    }
    Ok(())
}

/// Notes that the request's session was used: its `last_seen_at` is written at most once a
/// minute per session, in a task of its own (the request does not wait for it).
pub(crate) fn touch_session(ctx: &AuthContext) {
    let Some(user) = ctx.user() else { return };
    if user.method != AuthMethod::Session {
        return;
    }
    let Some(id) = ctx.session.id() else { return };
    let id_hash = crate::web::session_store::hash_session_id(&id);
    let security = ctx.security.clone();
    if !security.activity_hub().touch_due(&id_hash, Instant::now()) {
        return;
    }
    let now = security.now_naive();
    tokio::spawn(async move {
        if let Err(error) = security.datastore().session_touch(&id_hash, now).await {
            tracing::debug!(%error, "session last-seen not written");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_touched_at_most_once_a_minute() {
        let hub = ActivityHub::default();
        let start = Instant::now();
        assert!(hub.touch_due("a", start));
        assert!(!hub.touch_due("a", start + Duration::from_secs(59)));
        assert!(hub.touch_due("b", start + Duration::from_secs(1)));
        assert!(hub.touch_due("a", start + Duration::from_secs(61)));
    }
}
