//! The password hash parsers (argon2, bcrypt, pbkdf2, sha-crypt strings as a database may hold
//! them): any stored string is a valid or invalid hash, never a panic.
//! Input: [password length, password…, stored hash…].
//!
//! Work factors in the input are capped (numbers of at most 4 digits, bcrypt cost at most 6),
//! so a run measures the parsers rather than the hash functions' deliberate slowness: a stored
//! hash is the application's own data, not a visitor's.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rampart::{PasswordConfig, PasswordHasher};

static HASHER: LazyLock<PasswordHasher> = LazyLock::new(|| {
    let mut config = PasswordConfig::default();
    config.salt = "fuzzing-salt".to_owned().into();
    config.argon2_memory_kib = 256;
    config.argon2_iterations = 1;
    config.argon2_parallelism = 1;
    PasswordHasher::new(&config).expect("hasher")
});

/// Whether the stored string asks for more work than a fuzz run affords.
fn too_costly(stored: &str) -> bool {
    let mut digits = 0;
    for c in stored.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits > 4 {
                return true;
            }
        } else {
            digits = 0;
        }
    }
    // bcrypt: `$2b$NN$`: 2^NN rounds.
    let bcrypt_cost = stored
        .strip_prefix("$2")
        .and_then(|rest| rest.get(2..4))
        .and_then(|cost| cost.parse::<u32>().ok());
    bcrypt_cost.is_some_and(|cost| cost > 6)
}

fuzz_target!(|data: &[u8]| {
    let Some((&length, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(length).min(rest.len());
    let (password, stored) = rest.split_at(split);
    let (Ok(password), Ok(stored)) = (std::str::from_utf8(password), std::str::from_utf8(stored))
    else {
        return;
    };
    if too_costly(stored) {
        return;
    }
    let _ = HASHER.verify_blocking(password, stored);
});
