//! Auth tokens (`Authentication-Token` header / `auth_token` query): signed, expiring, bound to
//! the user's `fs_uniquifier`, so a password change or account deletion kills them.

use serde::{Deserialize, Serialize};

use crate::model::User;
use crate::web::security::Security;

const SALT: &str = "auth-token-salt";

#[derive(Serialize, Deserialize)]
struct Payload {
    ver: String,
    uid: String,
}

/// Issues an auth token for `user`, valid for `SECURITY_TOKEN_MAX_AGE`.
pub(crate) fn issue(security: &Security, user: &User) -> crate::Result<String> {
    let payload = Payload {
        ver: "5".into(),
        uid: user.fs_uniquifier.clone(),
    };
    Ok(security
        .signer()
        .sign(SALT, &payload, security.clock().now())?)
}

/// The `fs_uniquifier` in a valid, unexpired token.
pub(crate) fn verify(security: &Security, token: &str) -> Option<String> {
    security
        .signer()
        .verify::<Payload>(
            SALT,
            token,
            Some(security.config().token.max_age),
            security.clock().now(),
        )
        .ok()
        .map(|p| p.uid)
}
