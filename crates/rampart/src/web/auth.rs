//! Who is making the request (auth token, session, remember-me cookie), and signing a user into
//! or out of the session.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::json;

use crate::activity::{ActivityEvent, SignInMethod};
use crate::config::SecurityConfig;
use crate::datastore::UserWithRoles;
use crate::model::User;
use crate::web::context::{AuthContext, AuthMethod, AuthUser};
use crate::web::security::Security;
use crate::web::session_store::{DbSessionStore, USER_ID_KEY};

const UNIQUIFIER_KEY: &str = "_fs_uid";
/// When the session last proved the password (unix seconds): login and re-authentication.
pub(crate) const AUTH_AT_KEY: &str = "_auth_at";
/// Until when (unix seconds) the session counts as fresh past `SECURITY_FRESHNESS`
/// (`SECURITY_FRESHNESS_GRACE_PERIOD`, Flask-Security's `fs_gexp`).
const GRACE_UNTIL_KEY: &str = "_fs_gexp";

/// Whether the request's user proved the password within `SECURITY_FRESHNESS` (Flask-Security's
/// `check_and_update_authn_fresh`): auth tokens and HTTP Basic count as fresh (a token lives
/// `SECURITY_TOKEN_MAX_AGE`, far less than the window); a session is fresh for the window after
/// its login or its last re-authentication at `SECURITY_VERIFY_URL`.
pub(crate) async fn is_fresh(ctx: &AuthContext) -> crate::Result<bool> {
    let Some(window) = ctx.security().config().verify.freshness else {
        return Ok(true);
    };
    match ctx.user().map(|u| u.method) {
        Some(AuthMethod::Token | AuthMethod::Basic) => return Ok(true),
        Some(AuthMethod::Session) => {}
        None => return Ok(false),
    }
    let now = ctx.security().unix_now();
    let grace_until = now.saturating_add(ctx.security().config().verify.grace_period.as_secs());
    let in_grace = ctx
        .session
        .get::<u64>(GRACE_UNTIL_KEY)
        .await?
        .is_some_and(|until| now < until);
    let at: Option<u64> = ctx.session.get(AUTH_AT_KEY).await?;
    let fresh = in_grace || at.is_some_and(|at| now.saturating_sub(at) <= window.as_secs());
    if fresh {
        // Found fresh: stays so for SECURITY_FRESHNESS_GRACE_PERIOD from now (Flask-Security's
        // `fs_gexp`), so a change of several steps is not cut off half-way.
        ctx.session.insert(GRACE_UNTIL_KEY, grace_until).await?;
    }
    Ok(fresh)
}

/// Refuses with [`Rejection::Reauthenticate`](crate::web::rejection::Rejection::Reauthenticate)
/// unless the request's user proved the password recently ([`is_fresh`]); for handlers that
/// cannot take the [`FreshUser`](crate::web::extract::FreshUser) extractor.
pub(crate) async fn require_fresh(
    ctx: &AuthContext,
) -> Result<(), crate::web::rejection::Rejection> {
    if is_fresh(ctx).await? {
        Ok(())
    } else {
        Err(crate::web::rejection::Rejection::Reauthenticate)
    }
}

/// Marks the session's password as proven now (a login, or re-authentication).
pub(crate) async fn mark_fresh(ctx: &AuthContext) -> crate::Result<()> {
    ctx.session
        .insert(AUTH_AT_KEY, ctx.security().unix_now())
        .await?;
    Ok(())
}

/// Loads an active user and their roles by `fs_uniquifier`.
pub(crate) async fn load_user(
    security: &Security,
    uniquifier: &str,
    method: AuthMethod,
) -> crate::Result<Option<Arc<AuthUser>>> {
    let found = security
        .datastore()
        .user_with_roles_cached(uniquifier)
        .await?;
    Ok(active_user(found, method))
}

/// The authenticated user of `found` (shared with the cache, or read for this request only),
/// unless they are inactive. Copied only when the cache keeps it too.
fn active_user(found: Option<UserWithRoles>, method: AuthMethod) -> Option<Arc<AuthUser>> {
    let found = found.filter(|found| found.0.active)?;
    let (user, roles) = Arc::try_unwrap(found).unwrap_or_else(|shared| (*shared).clone());
    Some(Arc::new(AuthUser {
        user,
        roles,
        method,
    }))
}

/// Resolves the requester: auth token first, then the session, then the remember-me cookie.
///
/// `store` is the request's session store: the user read with the session, if any, saves a query.
pub(crate) async fn authenticate(
    ctx: &AuthContext,
    headers: &HeaderMap,
    query: Option<&str>,
    store: &DbSessionStore,
) -> crate::Result<Option<Arc<AuthUser>>> {
    let security = &ctx.security;
    let config = security.config();
    let token = headers
        .get(config.token.header.as_str())
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query.and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| *k == config.token.query_key.as_str())
                    .map(|(_, v)| v.into_owned())
            })
        });
    if let Some(token) = token
        && let Some(uid) = crate::web::auth_token::verify(security, &token)
        && let Some(user) = load_user(security, &uid, AuthMethod::Token).await?
    {
        return Ok(Some(user));
    }
    if ctx.session.id().is_some()
        && let Some(uid) = ctx.session.get::<String>(UNIQUIFIER_KEY).await?
    {
        let user = match store.prefetched_user(&uid) {
            Some(found) => active_user(Some(found), AuthMethod::Session),
            None => load_user(security, &uid, AuthMethod::Session).await?,
        };
        match user {
            Some(user) => return Ok(Some(user)),
            None => {
                // The user was deleted, deactivated or signed out everywhere.
                forget_user(ctx).await?;
            }
        }
    }
    if ctx.remember_cookie.is_some() {
        let user = match crate::web::remember::check(ctx).await? {
            Some(valid) => load_user(security, &valid.uid, AuthMethod::Session)
                .await?
                .filter(|user| valid.user_id.is_none_or(|id| user.user.id == id))
                .map(|user| (user, valid)),
            None => None,
        };
        match user {
            Some((user, valid)) => {
                // Signed in, but the password was not proven now: not fresh.
                attach_to_session(ctx, &user.user, false).await?;
                crate::web::remember::adopt(ctx, &valid, &user.user).await?;
                crate::web::activity::signed_in(
                    ctx,
                    &user.user,
                    crate::activity::SignInMethod::RememberMe,
                )
                .await?;
                return Ok(Some(user));
            }
            None => ctx.set_cookie(expired_cookie(
                config,
                &config.session.remember_cookie_name,
                true,
            )),
        }
    }
    Ok(None)
}

async fn forget_user(ctx: &AuthContext) -> crate::Result<()> {
    for key in [UNIQUIFIER_KEY, USER_ID_KEY, AUTH_AT_KEY, GRACE_UNTIL_KEY] {
        ctx.session.remove_value(key).await?;
    }
    Ok(())
}

/// Puts `user` into a fresh session id (fixation defence) with a new CSRF secret; `proven` when
/// the password (and any second factor) was just checked, which makes the session fresh.
async fn attach_to_session(ctx: &AuthContext, user: &User, proven: bool) -> crate::Result<String> {
    if ctx.session.id().is_some() {
        ctx.session.cycle_id().await?;
    }
    ctx.session.insert(USER_ID_KEY, user.id).await?;
    ctx.session
        .insert(UNIQUIFIER_KEY, &user.fs_uniquifier)
        .await?;
    if proven {
        ctx.session
            .insert(AUTH_AT_KEY, ctx.security.unix_now())
            .await?;
    } else {
        ctx.session.remove_value(AUTH_AT_KEY).await?;
        ctx.session.remove_value(GRACE_UNTIL_KEY).await?;
    }
    let csrf = crate::web::csrf::rotate(ctx).await?;
    ctx.set_cookie(xsrf_cookie(ctx.security.config(), csrf.clone()));
    Ok(csrf)
}

/// The result of checking an identity and a password.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "short-lived outcome value; boxing would only add an allocation"
)]
pub enum PasswordCheck {
    /// The password is right (the hash was upgraded if needed).
    Valid(User),
    /// No such user (a dummy hash was verified to spend the same time).
    UnknownIdentity,
    /// The user exists but the password is wrong (or they have none).
    InvalidPassword,
}

/// Looks up `identity` (email or username) and verifies `password`, upgrading an outdated hash
/// (bcrypt, pbkdf2, older argon2 parameters) to the current scheme.
pub async fn check_password(
    security: &Security,
    identity: &str,
    password: &str,
) -> crate::Result<PasswordCheck> {
    let user = security
        .datastore()
        .user_by_identity(identity.trim())
        .await?;
    check_user_password(security, user, password).await
}

/// [`check_password`] for the account an identity was already looked up to (`None`: unknown).
pub(crate) async fn check_user_password(
    security: &Security,
    user: Option<User>,
    password: &str,
) -> crate::Result<PasswordCheck> {
    let hasher = security.hasher();
    let Some(user) = user else {
        hasher.verify_dummy(password).await?;
        return Ok(PasswordCheck::UnknownIdentity);
    };
    let Some(hash) = user.password.as_deref() else {
        hasher.verify_dummy(password).await?;
        return Ok(PasswordCheck::InvalidPassword);
    };
    let verification = hasher.verify(password, hash).await?;
    if !verification.valid {
        return Ok(PasswordCheck::InvalidPassword);
    }
    if verification.needs_rehash {
        let new_hash = hasher.hash(password).await?;
        security
            .datastore()
            .set_password(user.id, &new_hash, None, security.now_naive())
            .await?;
    }
    Ok(PasswordCheck::Valid(user))
}

/// Signs `user` in: new session id, CSRF secret rotated, `XSRF-TOKEN` cookie, remember-me cookie
/// when asked, trackable fields updated, the sign-in recorded (method `password`, see
/// [`login_user_with`]). Returns the new CSRF token.
pub async fn login_user(ctx: &AuthContext, user: &User, remember: bool) -> crate::Result<String> {
    login_user_with(ctx, user, remember, SignInMethod::Password).await
}

/// [`login_user`] for a sign-in by `method` (a one-time code, a passkey, an identity
/// provider…): the session records it with its device, the activity log gets a `sign_in`, and a
/// device not seen in 90 days is announced to the owner.
pub async fn login_user_with(
    ctx: &AuthContext,
    user: &User,
    remember: bool,
    method: SignInMethod,
) -> crate::Result<String> {
    let security = &ctx.security;
    let config = security.config();
    let csrf = attach_to_session(ctx, user, true).await?;
    crate::web::activity::signed_in(ctx, user, method).await?;
    if remember {
        crate::web::remember::issue(ctx, user).await?;
    }
    if config.trackable {
        let ip = ctx.client_ip.map(|ip| ip.to_string());
        security
            .datastore()
            .record_login(user.id, ip.as_deref(), security.now_naive())
            .await?;
    }
    Ok(csrf)
}

/// Signs `user` in ([`login_user`]) once every factor is proven, and answers as a completed
/// sign-in does: JSON gets `csrf_token`, `tf_required: false` and `user` (with the auth token
/// when the query asks `include_auth_token`); a browser goes to `next`, else
/// `SECURITY_POST_LOGIN_VIEW`. Shared by every sign-in (password, second factor, passkey, …);
/// `method` is how the user signed in, recorded with the session and in the activity log.
pub(crate) async fn finish_login(
    ctx: &AuthContext,
    user: &User,
    remember: bool,
    next: Option<String>,
    method: SignInMethod,
) -> crate::Result<Response> {
    let csrf = login_user_with(ctx, user, remember, method).await?;
    if ctx.is_json() {
        return json_login_success(ctx, user, csrf).await;
    }
    let config = ctx.security.config();
    Ok(crate::web::reply::redirect(
        &next.unwrap_or_else(|| config.login.post_view.clone()),
    ))
}

fn include_auth_token(ctx: &AuthContext) -> bool {
    ctx.path_and_query().split_once('?').is_some_and(|(_, q)| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "include_auth_token")
    })
}

/// The JSON answer of a completed authentication: `csrf_token`, `tf_required: false`, `user`.
async fn json_login_success(
    ctx: &AuthContext,
    user: &User,
    csrf: String,
) -> crate::Result<Response> {
    let auth_user = load_user(ctx.security(), &user.fs_uniquifier, AuthMethod::Session)
        .await?
        .ok_or_else(|| crate::Error::Internal("signed-in user vanished".into()))?;
    let payload = ctx.user_payload(&auth_user, include_auth_token(ctx))?;
    let response = json!({"csrf_token": csrf, "tf_required": false, "user": payload});
    Ok(crate::web::reply::json(StatusCode::OK, response))
}

/// Re-binds the current session to `user` after their uniquifier changed (password change), so
/// this session stays signed in while every other one dies.
pub(crate) async fn refresh_session_user(ctx: &AuthContext, user: &User) -> crate::Result<String> {
    attach_to_session(ctx, user, true).await
}

/// Gives `user` a new `fs_uniquifier` (and `new_password_hash` as their password, when given) and
/// ends every session of theirs on the server, in one transaction: every session, every auth token
/// and every remember-me cookie issued before dies. Returns the new uniquifier. Only writes if the
/// stored uniquifier is still `user.fs_uniquifier`, so of two racing rotations (two submissions of
/// one reset link) exactly one succeeds. The request's own session is left as it is (see
/// [`sign_out_other_sessions`], [`refresh_session_user`]).
///
/// # Errors
///
/// As for the datastore; [`crate::datastore::DatastoreError::Stale`] when the user's uniquifier
/// changed meanwhile (nothing was written).
pub(crate) async fn rotate_uniquifier(
    security: &Security,
    user: &User,
    new_password_hash: Option<&str>,
) -> crate::Result<String> {
    rotate_uniquifier_recorded(security, user, new_password_hash, None).await
}

/// [`rotate_uniquifier`] that appends `activity` to the activity log in the same transaction.
pub(crate) async fn rotate_uniquifier_recorded(
    security: &Security,
    user: &User,
    new_password_hash: Option<&str>,
    activity: Option<&crate::activity::NewActivity>,
) -> crate::Result<String> {
    let uniquifier = crate::model::new_uniquifier();
    let datastore = security.datastore();
    let now = security.now_naive();
    match activity {
        Some(activity) => {
            let id = datastore
                .rotate_credentials_recorded(
                    user.id,
                    &user.fs_uniquifier,
                    &uniquifier,
                    new_password_hash,
                    now,
                    activity,
                )
                .await?;
            crate::web::activity::broadcast(security, activity, id, now);
        }
        None => {
            datastore
                .rotate_credentials(
                    user.id,
                    &user.fs_uniquifier,
                    &uniquifier,
                    new_password_hash,
                    now,
                )
                .await?;
        }
    }
    Ok(uniquifier)
}

/// Sets `user`'s new password (hashed on the pool), rotating `fs_uniquifier` and ending every
/// session of theirs on the server, in one transaction. Returns the new uniquifier.
///
/// # Errors
///
/// As for the hasher and the datastore; [`crate::datastore::DatastoreError::Stale`] when `user`'s
/// uniquifier changed since `user` was read (another reset or sign-out won; nothing was written).
pub async fn set_new_password(
    security: &Security,
    user: &User,
    password: &str,
) -> crate::Result<String> {
    let hash = security.hasher().hash(password).await?;
    rotate_uniquifier(security, user, Some(&hash)).await
}

/// [`set_new_password`] that records `activity` (`password_changed`, `password_reset`) in the
/// same transaction as the new password.
pub(crate) async fn set_new_password_recorded(
    security: &Security,
    user: &User,
    password: &str,
    activity: &crate::activity::NewActivity,
) -> crate::Result<String> {
    let hash = security.hasher().hash(password).await?;
    rotate_uniquifier_recorded(security, user, Some(&hash), Some(activity)).await
}

/// Signs `user` out everywhere except here: a new `fs_uniquifier` kills every other session,
/// every auth token and every remember-me cookie; this session moves to a fresh id and stays
/// signed in. Returns the new CSRF token.
///
/// # Errors
///
/// As for the datastore.
pub async fn sign_out_other_sessions(ctx: &AuthContext, user: &User) -> crate::Result<String> {
    let activity = crate::activity::NewActivity {
        user_id: user.id,
        actor_id: Some(user.id),
        event: ActivityEvent::OtherSessionsRevoked,
        device: Some(crate::web::activity::device(ctx)),
    };
    let uniquifier = rotate_uniquifier_recorded(&ctx.security, user, None, Some(&activity)).await?;
    let mut updated = user.clone();
    updated.fs_uniquifier = uniquifier;
    refresh_session_user(ctx, &updated).await
}

/// Signs out: the remember-me cookie's series ends on the server (a copy of that cookie no
/// longer signs in; other devices stay remembered), the session is destroyed and the session,
/// `XSRF-TOKEN` and remember cookies are deleted.
pub async fn logout_user(ctx: &AuthContext) -> crate::Result<()> {
    let config = ctx.security.config();
    if let Some(user) = ctx.user() {
        crate::web::activity::record_request(ctx, user.user.id, ActivityEvent::SignOut).await?;
    }
    crate::web::remember::end(ctx).await?;
    if ctx.session.id().is_some() {
        ctx.session.flush().await?;
    }
    ctx.set_cookie(expired_cookie(config, &config.session.cookie_name, true));
    ctx.set_cookie(expired_xsrf_cookie(config));
    ctx.set_cookie(expired_cookie(
        config,
        &config.session.remember_cookie_name,
        true,
    ));
    Ok(())
}

/// The `XSRF-TOKEN` cookie (readable by scripts, `SameSite=Strict`).
pub(crate) fn xsrf_cookie(config: &SecurityConfig, token: String) -> cookie::Cookie<'static> {
    cookie::Cookie::build((config.csrf.cookie_name.clone(), token))
        .path("/")
        .secure(config.session.cookie_secure)
        .same_site(cookie::SameSite::Strict)
        .build()
}

fn expired_xsrf_cookie(config: &SecurityConfig) -> cookie::Cookie<'static> {
    let mut c = xsrf_cookie(config, String::new());
    c.make_removal();
    c
}

/// A cookie that deletes `name`.
pub(crate) fn expired_cookie(
    config: &SecurityConfig,
    name: &str,
    http_only: bool,
) -> cookie::Cookie<'static> {
    let mut c = cookie::Cookie::build((name.to_owned(), String::new()))
        .path("/")
        .http_only(http_only)
        .secure(config.session.cookie_secure)
        .build();
    c.make_removal();
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datastore::{Datastore, DatastoreError};
    use crate::model::NewUser;

    async fn security() -> Security {
        let config = SecurityConfig::from_settings(&crate::Settings::from_pairs([
            ("SECRET_KEY", "unit-test-secret-key-0123456789"),
            ("SECURITY_PASSWORD_SALT", "unit-test-salt"),
            ("DEBUG", "true"),
        ]))
        .expect("valid settings");
        let datastore = Datastore::connect("sqlite::memory:")
            .await
            .expect("memory database");
        Security::builder(config)
            .datastore(datastore)
            .build()
            .await
            .expect("security")
    }

    #[tokio::test]
    async fn rotating_the_uniquifier_ends_every_session_and_remember_series_of_the_user() {
        let security = security().await;
        let store = security.datastore();
        let now = security.now_naive();
        let later = now + time::Duration::hours(1);
        let new_user = |email: &str| NewUser {
            email: email.to_owned(),
            username: None,
            password_hash: Some("old-hash".to_owned()),
            active: true,
            confirmed_at: None,
            roles: Vec::new(),
        };
        let ann = store
            .create_user(&new_user("ann@example.com"), "ann-uid", now, &[])
            .await
            .expect("ann");
        let bob = store
            .create_user(&new_user("bob@example.com"), "bob-uid", now, &[])
            .await
            .expect("bob");
        for (hash, user) in [("ann-1", &ann), ("ann-2", &ann), ("bob-1", &bob)] {
            store
                .session_create(hash, Some(user.id), "{}", later)
                .await
                .expect("session");
            store
                .remember_series_create(hash, user.id, now, later)
                .await
                .expect("series");
        }

        let uniquifier = rotate_uniquifier(&security, &ann, None)
            .await
            .expect("rotate");
        let after = store.user_by_id(ann.id).await.expect("load").expect("ann");
        assert_eq!(after.fs_uniquifier, uniquifier);
        assert_ne!(uniquifier, "ann-uid");
        assert_eq!(after.password.as_deref(), Some("old-hash"), "password kept");
        for hash in ["ann-1", "ann-2"] {
            assert_eq!(store.session_load(hash, now).await.expect("load"), None);
            assert_eq!(
                store.remember_series_use(hash, now).await.expect("use"),
                None
            );
        }
        assert!(
            store
                .session_load("bob-1", now)
                .await
                .expect("load")
                .is_some()
        );
        assert_eq!(
            store.remember_series_use("bob-1", now).await.expect("use"),
            Some(bob.id),
            "other users keep theirs"
        );

        let stale = rotate_uniquifier(&security, &ann, Some("lost-hash")).await;
        assert!(
            matches!(
                stale,
                Err(crate::Error::Datastore(DatastoreError::Stale(_)))
            ),
            "a rotation from an outdated read must not write: {stale:?}"
        );
        let second = rotate_uniquifier(&security, &after, Some("new-hash"))
            .await
            .expect("rotate with a password");
        let after = store.user_by_id(ann.id).await.expect("load").expect("ann");
        assert_eq!(after.fs_uniquifier, second);
        assert_ne!(second, uniquifier);
        assert_eq!(after.password.as_deref(), Some("new-hash"));
    }
}
