//! Remember-me cookies, one server-side "series" each (the persistent-login pattern).
//!
//! A remember-me cookie is a signed `{uid, series}`: `uid` is the user's `fs_uniquifier` (a new
//! one, after a password change or "sign out everywhere", kills every cookie), `series` a random
//! id whose SHA-256 is stored in `rampart_remember`. A cookie signs in only while its series row
//! lives and has not expired. Logout deletes the series of the cookie the browser sent (and of
//! the one this session was signed in with), so a copy of that cookie taken earlier is dead
//! afterwards, while the user's other devices stay remembered.

use serde::{Deserialize, Serialize};

use crate::config::SecurityConfig;
use crate::model::User;
use crate::web::context::AuthContext;

const REMEMBER_SALT: &str = "remember-salt";
/// The session key holding the hash of the series this session was signed in with.
pub(crate) const SESSION_SERIES_KEY: &str = "_remember_series";

#[derive(Serialize, Deserialize)]
struct RememberPayload {
    uid: String,
    series: String,
}

/// A remember-me cookie whose signature, age and series row all check out, or one Flask-Login
/// set for a Flask-Security deployment (no series: it is replaced by one as it signs in).
pub(crate) struct ValidCookie {
    /// The user's `fs_uniquifier` the cookie was made for.
    pub(crate) uid: String,
    /// The user id of the series row (`None` for Flask-Login's cookie).
    pub(crate) user_id: Option<i64>,
    series_hash: Option<String>,
}

fn series_hash(series: &str) -> String {
    crate::token::sha256_hex(series)
}

fn decode(ctx: &AuthContext, cookie: &str) -> Option<RememberPayload> {
    let security = &ctx.security;
    security
        .signer()
        .verify::<RememberPayload>(
            REMEMBER_SALT,
            cookie,
            Some(security.config().session.remember_cookie_duration),
            security.clock().now(),
        )
        .ok()
}

/// Starts a new series for `user` and sets its cookie; this session remembers the series so
/// that logging out ends it.
pub(crate) async fn issue(ctx: &AuthContext, user: &User) -> crate::Result<()> {
    let security = &ctx.security;
    let config = security.config();
    let series = crate::token::random_token(32);
    let hash = series_hash(&series);
    let now = security.now_naive();
    let lifetime = time::Duration::seconds(
        i64::try_from(config.session.remember_cookie_duration.as_secs()).unwrap_or(i64::MAX / 2),
    );
    let expires_at = now.checked_add(lifetime).unwrap_or(now);
    security
        .datastore()
        .remember_series_create(&hash, user.id, now, expires_at)
        .await?;
    let token = security.signer().sign(
        REMEMBER_SALT,
        &RememberPayload {
            uid: user.fs_uniquifier.clone(),
            series,
        },
        security.clock().now(),
    )?;
    ctx.session.insert(SESSION_SERIES_KEY, &hash).await?;
    ctx.set_cookie(cookie(config, token, lifetime));
    Ok(())
}

/// The request's remember-me cookie, when it is signed, young enough and its series lives; or
/// when it is Flask-Login's (`<fs_uniquifier>|<digest>`, as a Flask-Security deployment set it)
/// with a right digest: it names the user's current `fs_uniquifier`, so a password change, "sign
/// out everywhere" or turning two-factor on (all rotate it) kills it.
pub(crate) async fn check(ctx: &AuthContext) -> crate::Result<Option<ValidCookie>> {
    let Some(cookie) = ctx.remember_cookie.as_deref() else {
        return Ok(None);
    };
    let Some(payload) = decode(ctx, cookie) else {
        return Ok(ctx
            .security
            .signer()
            .verify_flask_login_cookie(cookie)
            .map(|uid| ValidCookie {
                uid,
                user_id: None,
                series_hash: None,
            }));
    };
    let hash = series_hash(&payload.series);
    let security = &ctx.security;
    let user_id = security
        .datastore()
        .remember_series_use(&hash, security.now_naive())
        .await?;
    Ok(user_id.map(|user_id| ValidCookie {
        uid: payload.uid,
        user_id: Some(user_id),
        series_hash: Some(hash),
    }))
}

/// Records in the (new) session which series signed it in; Flask-Login's cookie is replaced by
/// a new series of `user`'s.
pub(crate) async fn adopt(
    ctx: &AuthContext,
    valid: &ValidCookie,
    user: &User,
) -> crate::Result<()> {
    match &valid.series_hash {
        Some(hash) => ctx.session.insert(SESSION_SERIES_KEY, hash).await?,
        None => issue(ctx, user).await?,
    }
    Ok(())
}

/// Ends the series of the cookie this request carries and of the one this session was signed
/// in with. Call before the session is flushed.
pub(crate) async fn end(ctx: &AuthContext) -> crate::Result<()> {
    let datastore = ctx.security.datastore();
    if let Some(payload) = ctx.remember_cookie.as_deref().and_then(|c| decode(ctx, c)) {
        datastore
            .remember_series_delete(&series_hash(&payload.series))
            .await?;
    }
    if ctx.session.id().is_some()
        && let Some(hash) = ctx.session.get::<String>(SESSION_SERIES_KEY).await?
    {
        datastore.remember_series_delete(&hash).await?;
    }
    Ok(())
}

fn cookie(
    config: &SecurityConfig,
    token: String,
    max_age: time::Duration,
) -> cookie::Cookie<'static> {
    cookie::Cookie::build((config.session.remember_cookie_name.clone(), token))
        .path("/")
        .http_only(true)
        .secure(config.session.cookie_secure)
        .same_site(cookie::SameSite::Lax)
        .max_age(max_age)
        .build()
}
