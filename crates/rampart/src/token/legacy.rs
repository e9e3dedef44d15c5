//! Digests made by Flask-Security's `hash_data`, found inside tokens it issued.
//!
//! Flask-Security binds confirmation, reset and change-email tokens to the user's current email
//! or password hash with `hash_data(value)`, a passlib `CryptContext` over
//! `SECURITY_HASHING_SCHEMES` (default `["sha256_crypt", "hex_md5"]`, so new digests are
//! `sha256_crypt`). Rampart's own tokens use [`TokenSigner::hash_data`](super::TokenSigner::hash_data);
//! this module only lets links issued before a migration keep working.

/// Most `rounds` accepted in a digest; passlib's default for `sha256_crypt` is 535 000.
const MAX_ROUNDS: usize = 2_000_000;

/// Whether `digest` is Flask-Security's `hash_data(data)` in its default `sha256_crypt` scheme
/// (`$5$[rounds=N$]salt$hash`).
///
/// Other schemes (such as `hex_md5`) are refused. With passlib's default cost this takes tens of
/// milliseconds: call it from a blocking task.
pub(crate) fn verify_flask_security_hash(data: &str, digest: &str) -> bool {
    if !digest.starts_with("$5$") || rounds(digest).is_none_or(|r| r > MAX_ROUNDS) {
        return false;
    }
    sha_crypt::sha256_check(data, digest).is_ok()
}

/// The `rounds` of a `$5$` digest (5 000 when absent), or `None` when unreadable.
fn rounds(digest: &str) -> Option<usize> {
    let params = digest.strip_prefix("$5$")?;
    match params.strip_prefix("rounds=") {
        Some(rest) => rest.split('$').next()?.parse().ok(),
        None => Some(5_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_with_excessive_or_unreadable_rounds_are_refused_without_hashing() {
        assert!(!verify_flask_security_hash(
            "x",
            "$5$rounds=999999999$salt$hash"
        ));
        assert!(!verify_flask_security_hash("x", "$5$rounds=abc$salt$hash"));
        assert!(!verify_flask_security_hash(
            "x",
            "0cc175b9c0f1b6a831c399e269772661"
        ));
        assert!(!verify_flask_security_hash("x", ""));
        assert!(!verify_flask_security_hash("x", "$5$"));
    }
}
