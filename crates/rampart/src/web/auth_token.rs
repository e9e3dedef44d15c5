//! Auth tokens (`Authentication-Token` header / `auth_token` query): signed, expiring, bound to
//! the user's `fs_uniquifier`, so a password change or account deletion kills them.
//!
//! Issued in Flask-Security 5.9's format (its `get_auth_token`): signed with the remember salt,
//! payload `{ver: "5", uid, fs_paa, exp}` (`exp` 0: no expiry of its own besides
//! `SECURITY_TOKEN_MAX_AGE`), so tokens a Flask-Security deployment handed out keep working after
//! it moves to Rampart, and back. Tokens of Rampart's earlier format (salt `auth-token-salt`,
//! `{ver, uid}`) are still read.

use serde::{Deserialize, Serialize};

use crate::model::User;
use crate::web::security::Security;

/// Flask-Security's `SECURITY_REMEMBER_SALT`: its `remember_token_serializer` signs auth tokens.
const SALT: &str = "remember-salt";
/// The salt of the tokens Rampart issued before it used Flask-Security's format.
const EARLIER_SALT: &str = "auth-token-salt";

/// Flask-Security 5.5+'s payload. A remember-me cookie (same salt, `{uid, series}`) lacks `ver`
/// and `exp`, so it never passes as an auth token, nor one as the other.
#[derive(Serialize, Deserialize)]
struct Payload {
    ver: String,
    uid: String,
    /// When the user last proved who they are (Unix seconds, a float as Python's `time.time()`).
    #[serde(default)]
    fs_paa: f64,
    /// Expiry (Unix seconds) when above 0 (`SECURITY_TOKEN_EXPIRE_TIMESTAMP`).
    exp: i64,
}

#[derive(Deserialize)]
struct EarlierPayload {
    uid: String,
}

/// Issues an auth token for `user`, valid for `SECURITY_TOKEN_MAX_AGE`.
pub(crate) fn issue(security: &Security, user: &User) -> crate::Result<String> {
    let now = security.clock().now();
    let payload = Payload {
        ver: "5".into(),
        uid: user.fs_uniquifier.clone(),
        #[expect(
            clippy::cast_precision_loss,
            reason = "Unix seconds fit an f64 exactly for millions of years"
        )]
        fs_paa: now.unix_timestamp() as f64,
        exp: 0,
    };
    Ok(security.signer().sign(SALT, &payload, now)?)
}

/// The `fs_uniquifier` in a valid, unexpired token (Flask-Security's format or Rampart's earlier
/// one).
pub(crate) fn verify(security: &Security, token: &str) -> Option<String> {
    let signer = security.signer();
    let now = security.clock().now();
    let max_age = Some(security.config().token.max_age);
    if let Ok(payload) = signer.verify::<Payload>(SALT, token, max_age, now) {
        let expired = payload.exp > 0 && payload.exp < now.unix_timestamp();
        return (!expired).then_some(payload.uid);
    }
    signer
        .verify::<EarlierPayload>(EARLIER_SALT, token, max_age, now)
        .ok()
        .map(|p| p.uid)
}
