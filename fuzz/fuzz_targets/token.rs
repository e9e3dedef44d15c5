//! The itsdangerous token parser: any string given as a token (for every purpose Rampart signs
//! for) is refused or read, never a panic; a token made from the fuzzer's payload reads back.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rampart::TokenSigner;

static SIGNER: LazyLock<TokenSigner> = LazyLock::new(|| {
    TokenSigner::new(
        "fuzzing-secret-key-0123456789abcdef".to_owned().into(),
        vec!["an older key, still accepted".to_owned().into()],
    )
});

const SALTS: &[&str] = &[
    "remember-salt",
    "reset-salt",
    "confirm-salt",
    "login-salt",
    "change-email-salt",
    "tf-setup-salt",
    "us-setup-salt",
    "wan-salt",
    "csrf",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now = time::OffsetDateTime::now_utc();
    for salt in SALTS {
        let _ =
            SIGNER.verify::<serde_json::Value>(salt, text, Some(Duration::from_secs(3600)), now);
        let _ = SIGNER.verify_link::<serde_json::Value>(salt, text, Duration::from_secs(3600), now);
        let _ = SIGNER.verify_with_timestamp::<serde_json::Value>(salt, text, None, now);
    }
    let _ = SIGNER.verify_hash_data(text, text);
    // A token made of the input reads back as it was.
    if let Ok(token) = SIGNER.sign("fuzz-salt", text, now) {
        let back: String = SIGNER
            .verify("fuzz-salt", &token, None, now)
            .expect("a fresh token verifies");
        assert_eq!(back, text);
    }
});
