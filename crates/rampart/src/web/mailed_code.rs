//! One-time codes sent by mail, shared by every feature that mails a code (two-factor sign-in,
//! setup by email and rescue; unified sign-in can reuse it with its own purpose).
//!
//! Each mail carries a fresh random six-digit code, so a mailed code is always usable, whatever
//! codes the user used before. Only a keyed digest is stored (HMAC with the app's secret key, over
//! the purpose, the user and the code: a database dump gives out no code), with its expiry; one
//! live code per user and purpose (a new mail replaces the last one), deleted as it is used.
//! Callers count attempts against the user's limit before [`redeem`], as for every code.

use std::time::Duration;

use rand::Rng as _;
use rand::rngs::OsRng;

use crate::model::User;
use crate::web::security::Security;

/// Digits per mailed code.
const DIGITS: usize = 6;

fn digest_input(purpose: &str, user: &User, code: &str) -> String {
    format!("rampart.mailed-code:{purpose}:{}:{code}", user.id)
}

/// A new code for `user` and `purpose`, live for `validity`: its digest is stored (replacing
/// the code mailed before for that purpose) and the code returned, to be mailed.
///
/// # Errors
///
/// The datastore's errors.
pub(crate) async fn issue(
    security: &Security,
    user: &User,
    purpose: &str,
    validity: Duration,
) -> crate::Result<String> {
    let code = format!("{:0DIGITS$}", OsRng.gen_range(0..1_000_000_u32));
    let digest = security
        .signer()
        .hash_data(&digest_input(purpose, user, &code));
    let now = security.now_naive();
    let lifetime = time::Duration::try_from(validity).unwrap_or(time::Duration::MINUTE);
    let expires_at = now.checked_add(lifetime).unwrap_or(now);
    security
        .datastore()
        .mailed_code_store(user.id, purpose, &digest, expires_at)
        .await?;
    Ok(code)
}

/// Whether `code` is `user`'s live mailed code for `purpose`; a right one is used up (only one
/// of two racing requests gets `true`). The digest is compared in constant time.
///
/// # Errors
///
/// The datastore's errors.
pub(crate) async fn redeem(
    security: &Security,
    user: &User,
    purpose: &str,
    code: &str,
) -> crate::Result<bool> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(false);
    }
    let datastore = security.datastore();
    let Some(stored) = datastore
        .mailed_code_live(user.id, purpose, security.now_naive())
        .await?
    else {
        return Ok(false);
    };
    if !security
        .signer()
        .verify_hash_data(&digest_input(purpose, user, code), &stored)
    {
        return Ok(false);
    }
    Ok(datastore
        .mailed_code_take(user.id, purpose, &stored)
        .await?)
}
