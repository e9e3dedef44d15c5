//! Routing decides before CSRF protection on the app's own routes too: a wrong method is a 405
//! with `Allow`, an unknown path a 404, while a real state-changing route without the CSRF
//! token is still refused before its handler runs.

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backend_test, errors};

const METHOD_NOT_ALLOWED: &str = "The method is not allowed for the requested URL.";
const CSRF_MISSING: &str = "The CSRF token is missing.";

backend_test!(
    a_wrong_method_on_the_app_routes_is_405_and_real_routes_still_need_the_csrf_token,
    async |app: TestApp| {
        app.create_user("ann@example.com").await;
        let (client, _token) = app.login("ann@example.com", PASSWORD).await;
        client.forget_csrf();

        // App pages and API routes that do not take the method: 405 with `Allow`, as JSON.
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            for path in [
                "/",
                "/terms",
                "/dashboard/profile/",
                "/api/me",
                "/api/write",
                "/api/profile",
                "/admin/users",
            ] {
                let (status, body) = client
                    .request(method.clone(), path, Some(json!({})), None)
                    .await;
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert_eq!(errors(&body), [METHOD_NOT_ALLOWED], "{method} {path}");
                let allow = client
                    .http
                    .request(method.clone(), format!("{}{path}", app.base))
                    .header(header::ACCEPT, "application/json")
                    .send()
                    .await
                    .expect("request")
                    .headers()
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                assert!(allow.contains("GET"), "{method} {path}: Allow {allow:?}");
                assert!(
                    !allow.contains(method.as_str()),
                    "{method} {path}: {allow:?}"
                );
            }
        }
        // A POST-only page and a DELETE-only API route.
        let (status, body) = client
            .request(Method::PUT, "/dashboard/security/delete", None, None)
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
        let (status, body) = client
            .request(Method::POST, "/api/account", Some(json!({})), None)
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");

        // A browser: the HTML error page with `Allow`, not "CSRF token missing".
        let page = client
            .http
            .put(format!("{}/dashboard/profile/", app.base))
            .form(&[("first_name", "Eve")])
            .send()
            .await
            .expect("put");
        assert_eq!(page.status(), StatusCode::METHOD_NOT_ALLOWED);
        let allow = page.headers()[header::ALLOW]
            .to_str()
            .expect("allow")
            .to_owned();
        assert!(allow.contains("POST"), "{allow}");
        let html = page.text().await.expect("html");
        assert!(html.contains("That doesn't work here"), "{html}");
        assert!(
            !html.contains(METHOD_NOT_ALLOWED),
            "the app's words: {html}"
        );
        assert!(!html.contains("CSRF"), "{html}");

        // Unknown app paths: 404, as JSON and as a page.
        for path in ["/api/nope", "/dashboard/nope", "/admin/users/1/nope"] {
            let (status, body) = client
                .request(Method::DELETE, path, Some(json!({})), None)
                .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
            let page = client
                .http
                .post(format!("{}{path}", app.base))
                .form(&[("a", "b")])
                .send()
                .await
                .expect("post");
            assert_eq!(page.status(), StatusCode::NOT_FOUND, "{path}");
        }

        // Real state-changing routes without the token: the CSRF 400, and nothing happens.
        let (status, body) = client
            .post_json("/api/profile", json!({"first_name": "Eve"}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(errors(&body), [CSRF_MISSING]);
        let (status, body) = client
            .request(
                Method::DELETE,
                "/api/account",
                Some(json!({"password": PASSWORD})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(errors(&body), [CSRF_MISSING]);
        let form = client
            .http
            .post(format!("{}/dashboard/profile/", app.base))
            .form(&[("first_name", "Eve")])
            .send()
            .await
            .expect("post");
        assert_eq!(form.status(), StatusCode::BAD_REQUEST);
        assert!(form.text().await.expect("html").contains("CSRF"));
        // Still signed in, the account and its profile untouched.
        let (status, body) = client.get_json("/api/profile").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["response"]["profile"]["first_name"], json!(null));
        let (status, _) = client.get_json("/api/me").await;
        assert_eq!(status, StatusCode::OK);
    }
);

/// Sends `request` on a new connection and reads the answer until the server closes it.
async fn raw(base: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection")
    .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_url_gets_414_in_the_request_format() {
    let app = TestApp::start(&crate::harness::Backend::Sqlite, &[]).await;
    let host = app.base.trim_start_matches("http://").to_owned();
    let long = "a".repeat(100 * 1024);
    let json = raw(
        &app.base,
        format!("GET /login?q={long} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(json.starts_with("HTTP/1.1 414 URI Too Long"), "{json}");
    let body = json.split("\r\n\r\n").nth(1).unwrap_or_default();
    let envelope: serde_json::Value = serde_json::from_str(body).expect("the JSON envelope");
    assert_eq!(envelope["meta"]["code"], 414, "{envelope}");
    assert!(
        errors(&envelope)
            .first()
            .is_some_and(|e| e.contains("exceeds the capacity limit")),
        "{envelope}"
    );
    // An API path is answered in JSON without `Accept`; a page with the error page.
    let api = raw(
        &app.base,
        format!("DELETE /api/account?{long} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(api.starts_with("HTTP/1.1 414"), "{api}");
    assert!(api.contains("\"code\":414"), "{api}");
    let page = raw(
        &app.base,
        format!("GET /dashboard/profile/?{long} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(page.starts_with("HTTP/1.1 414"), "{page}");
    assert!(page.contains("text/html"), "{page}");
    assert!(page.contains("URI Too Long"), "{page}");

    // Ordinary requests on a fresh connection still work, kept alive.
    let client = app.client();
    for _ in 0..2 {
        let response = client
            .http
            .get(format!("{}/login", app.base))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::OK);
    }
}
