//! The CSRF check: a signed-in session's state-changing request with any token but the
//! session's own (in the header, a URL-encoded field or a multipart field) is refused with a
//! 4xx, never accepted and never a 5xx. Input: [where, route, token…].
#![no_main]

use std::sync::LazyLock;

use axum::http::{HeaderName, Method, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use rampart_fuzz::{HARNESS, Session, USER_EMAIL, take};

static SIGNED_IN: LazyLock<Session> = LazyLock::new(|| HARNESS.sign_in(USER_EMAIL));

/// Routes that change state and keep the session signed in.
const ROUTES: &[&str] = &[
    "/api/sessions/revoke-others",
    "/dashboard/profile/",
    "/api/profile",
];

fuzz_target!(|data: &[u8]| {
    let Some(([place, route], token)) = take::<2>(data) else {
        return;
    };
    let token = String::from_utf8_lossy(token).into_owned();
    if token == SIGNED_IN.csrf {
        return;
    }
    let route = ROUTES[usize::from(route) % ROUTES.len()];
    let mut headers: Vec<(HeaderName, String)> = vec![
        (header::COOKIE, SIGNED_IN.cookies.clone()),
        (header::ACCEPT, "application/json".into()),
    ];
    let body = match place % 3 {
        0 => {
            headers.push((HeaderName::from_static("x-csrf-token"), token.clone()));
            headers.push((header::CONTENT_TYPE, "application/json".into()));
            b"{}".to_vec()
        }
        1 => {
            headers.push((
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded".into(),
            ));
            let mut body = b"csrf_token=".to_vec();
            body.extend(token.bytes().flat_map(|b| format!("%{b:02X}").into_bytes()));
            body
        }
        _ => {
            headers.push((
                header::CONTENT_TYPE,
                "multipart/form-data; boundary=FuzzBoundary".into(),
            ));
            format!(
                "--FuzzBoundary\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n--FuzzBoundary--\r\n"
            )
            .into_bytes()
        }
    };
    if let Some((status, body)) = HARNESS.send(Method::POST, route, &headers, body) {
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::FORBIDDEN,
            "{route} with a wrong CSRF token ({token:?}) answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
});
