//! Session and remember-me cookies: whatever a client sends as `session`, `remember_token` or
//! `XSRF-TOKEN` (or a signed-in session's cookie with bytes changed), `GET /api/me` never
//! answers 5xx, and a forged or altered cookie never signs anyone in.
//! Input: [mode, value…].
#![no_main]

use std::sync::LazyLock;

use axum::http::{HeaderName, Method, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use rampart_fuzz::{HARNESS, Session, USER_EMAIL, take};

/// One signed-in session, whose cookie the fuzzer alters.
static SIGNED_IN: LazyLock<Session> = LazyLock::new(|| HARNESS.sign_in(USER_EMAIL));

fuzz_target!(|data: &[u8]| {
    let Some(([mode], value)) = take::<1>(data) else {
        return;
    };
    let text = String::from_utf8_lossy(value);
    let cookie = match mode % 4 {
        0 => format!("session={text}"),
        1 => format!("remember_token={text}"),
        2 => format!("session={text}; remember_token={text}; XSRF-TOKEN={text}"),
        _ => {
            // The real cookie header with the fuzzer's bytes laid over its start.
            let mut bytes = SIGNED_IN.cookies.clone().into_bytes();
            for (at, byte) in value.iter().enumerate().take(bytes.len()) {
                bytes[at] ^= byte;
            }
            if bytes == SIGNED_IN.cookies.as_bytes() {
                return;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    let headers: Vec<(HeaderName, String)> = vec![
        (header::COOKIE, cookie.clone()),
        (header::ACCEPT, "application/json".into()),
    ];
    if let Some((status, body)) = HARNESS.send(Method::GET, "/api/me", &headers, Vec::new()) {
        // Only the unaltered session cookie of a signed-in session signs in; an altered header
        // may still carry that cookie whole (the change fell on another cookie), which is fine.
        if status == StatusCode::OK {
            let session = SIGNED_IN
                .cookies
                .split("; ")
                .find(|pair| pair.starts_with("session="));
            assert!(
                cookie
                    .split(';')
                    .map(str::trim)
                    .any(|pair| Some(pair) == session),
                "a forged cookie signed in: {cookie:?} -> {}",
                String::from_utf8_lossy(&body)
            );
        }
    }
});
