//! JSON bodies of every POST route, through the real router: never a 5xx, never a panic.
//! Input: [route, identity, body…].
#![no_main]

use axum::http::{HeaderName, Method, header};
use libfuzzer_sys::fuzz_target;
use rampart_fuzz::{HARNESS, Identity, POST_ROUTES, take};

fuzz_target!(|data: &[u8]| {
    let Some(([route, who], body)) = take::<2>(data) else {
        return;
    };
    let route = POST_ROUTES[usize::from(route) % POST_ROUTES.len()];
    let mut headers: Vec<(HeaderName, String)> = HARNESS.identity_headers(Identity::from_byte(who));
    headers.push((header::CONTENT_TYPE, "application/json".into()));
    headers.push((header::ACCEPT, "application/json".into()));
    HARNESS.send(Method::POST, route, &headers, body.to_vec());
});
