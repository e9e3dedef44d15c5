//! Stored authenticator secrets (passlib's JSON, encrypted or not, or plain base32, as a
//! Flask-Security database may hold them): read or refused, never a panic; a secret that reads
//! gives codes, and sealing it again reads back the same.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rampart::totp::stored::{TotpSecrets, open, seal};

static KEYS: LazyLock<TotpSecrets> = LazyLock::new(|| {
    TotpSecrets::new(vec![
        ("2".into(), "fuzzing-totp-secret-new".to_owned().into()),
        ("1".into(), "fuzzing-totp-secret-old".to_owned().into()),
    ])
    .expect("keys")
});

fuzz_target!(|data: &[u8]| {
    let Ok(stored) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(opened) = open(stored, &KEYS) else {
        return;
    };
    let _ = rampart::totp::code_at(&opened.base32, 1_700_000_000);
    if let Ok(sealed) = seal(&opened.base32, &KEYS) {
        let again = open(&sealed, &KEYS).expect("a sealed secret opens");
        assert_eq!(again.base32, opened.base32);
    }
});
