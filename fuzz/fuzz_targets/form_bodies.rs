//! Form bodies (URL-encoded and multipart) of every POST route, through the real router, as a
//! browser sends them: never a 5xx, never a panic. Input: [route, identity, kind, body…].
#![no_main]

use axum::http::{HeaderName, Method, header};
use libfuzzer_sys::fuzz_target;
use rampart_fuzz::{HARNESS, Identity, POST_ROUTES, take};

/// The boundary the seed corpus's multipart bodies use.
const BOUNDARY: &str = "FuzzBoundary";

fuzz_target!(|data: &[u8]| {
    let Some(([route, who, kind], body)) = take::<3>(data) else {
        return;
    };
    let route = POST_ROUTES[usize::from(route) % POST_ROUTES.len()];
    let mut headers: Vec<(HeaderName, String)> = HARNESS.identity_headers(Identity::from_byte(who));
    let content_type = if kind % 2 == 0 {
        "application/x-www-form-urlencoded".to_owned()
    } else {
        format!("multipart/form-data; boundary={BOUNDARY}")
    };
    headers.push((header::CONTENT_TYPE, content_type));
    headers.push((header::ACCEPT, "text/html".into()));
    HARNESS.send(Method::POST, route, &headers, body.to_vec());
});
