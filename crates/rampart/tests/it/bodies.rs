//! Malformed and oversized bodies, unknown routes and wrong methods: always an envelope, never a
//! 500 (CONTRACT.md §1 "Bodies").

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{GENERIC, PASSWORD, TestApp, backend_test};

const TOO_LARGE: &str = "The data value transmitted exceeds the capacity limit.";

backend_test!(
    unparsable_json_is_a_400_envelope,
    GENERIC,
    async |app: TestApp| {
        for path in ["/login", "/register", "/reset", "/confirm"] {
            for body in ["{oops", "{\"email\": ", "\u{0}"] {
                let response = app
                    .client()
                    .post(path)
                    .raw("application/json", body)
                    .accept_json()
                    .send()
                    .await;
                response
                    .assert_errors(StatusCode::BAD_REQUEST, &["Request body is not valid JSON"]);
            }
        }
    }
);

backend_test!(
    json_that_is_not_an_object_is_a_400_envelope,
    GENERIC,
    async |app: TestApp| {
        for body in ["[1,2]", "\"x\"", "42", "null", "true"] {
            let response = app
                .client()
                .post("/login")
                .raw("application/json", body)
                .send()
                .await;
            response.assert_errors(
                StatusCode::BAD_REQUEST,
                &["Request body must be a JSON object"],
            );
        }
    }
);

backend_test!(
    a_non_string_field_value_is_refused_per_field,
    GENERIC,
    async |app: TestApp| {
        app.client()
            .post("/login")
            .json(&json!({"email": {"$ne": 1}, "password": PASSWORD}))
            .send()
            .await
            .assert_field_errors(&json!({"email": ["Input not appropriate for requested API"]}));
        let response = app
            .client()
            .post("/register")
            .json(&json!({"email": ["a@example.com"], "password": 12345678, "password_confirm": PASSWORD}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        let fields = response.response()["field_errors"].clone();
        assert_eq!(
            fields["email"],
            json!(["Input not appropriate for requested API"])
        );
        assert_eq!(
            fields["password"],
            json!(["Input not appropriate for requested API"])
        );
    }
);

backend_test!(
    a_body_over_1_mib_is_a_413_envelope,
    GENERIC,
    async |app: TestApp| {
        let big = format!("{{\"email\": \"{}\"}}", "a".repeat(1024 * 1024));
        let response = app
            .client()
            .post("/login")
            .raw("application/json", big.clone())
            .send()
            .await;
        response.assert_errors(StatusCode::PAYLOAD_TOO_LARGE, &[TOO_LARGE]);
        // Without a Content-Length (a chunked upload) too.
        let streamed = app
            .client()
            .post("/login")
            .raw("application/json", big.clone())
            .streamed()
            .send()
            .await;
        streamed.assert_errors(StatusCode::PAYLOAD_TOO_LARGE, &[TOO_LARGE]);
        // And on the app's own routes.
        let client = app.logged_in("ann@example.com").await;
        let echo = client
            .post("/api/echo")
            .raw("application/json", big.clone())
            .csrf()
            .send()
            .await;
        echo.assert_errors(StatusCode::PAYLOAD_TOO_LARGE, &[TOO_LARGE]);
        let echo = client
            .post("/api/echo")
            .raw("application/json", big)
            .csrf()
            .streamed()
            .send()
            .await;
        echo.assert_errors(StatusCode::PAYLOAD_TOO_LARGE, &[TOO_LARGE]);
        // Just under the limit is fine.
        let fits = format!("{{\"email\": \"{}\"}}", "a".repeat(1000 * 1024));
        let ok = client
            .post("/api/echo")
            .raw("application/json", fits)
            .csrf()
            .send()
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    }
);

backend_test!(
    an_unknown_route_is_a_404_envelope,
    GENERIC,
    async |app: TestApp| {
        let response = app
            .client()
            .get("/no/such/route")
            .accept_json()
            .send()
            .await;
        assert_eq!(response.status, StatusCode::NOT_FOUND);
        let body = response.response();
        assert_eq!(body["errors"].as_array().map(Vec::len), Some(1), "{body}");
        assert!(body.get("field_errors").is_none());
        let post = app
            .client()
            .post("/no/such/route")
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(post.status, StatusCode::NOT_FOUND);
        assert!(post.response()["errors"].is_array());
        let html = app.client().get("/no/such/route").send().await;
        assert_eq!(html.status, StatusCode::NOT_FOUND);
        assert!(
            html.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
    }
);

backend_test!(
    a_wrong_method_is_a_405_envelope,
    GENERIC,
    async |app: TestApp| {
        for (method, path) in [
            (Method::DELETE, "/login"),
            (Method::PUT, "/register"),
            (Method::GET, "/logout"),
            (Method::POST, "/api/me"),
        ] {
            let response = app
                .client()
                .request(method.clone(), path)
                .json_content_type()
                .accept_json()
                .send()
                .await;
            response.assert_errors(
                StatusCode::METHOD_NOT_ALLOWED,
                &["The method is not allowed for the requested URL."],
            );
            assert!(response.header("allow").is_some(), "{method} {path}");
        }
    }
);

backend_test!(
    a_form_body_with_odd_bytes_is_not_a_500,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        let token = crate::harness::csrf_in_html(&client.get("/login").send().await.text());
        let body = format!("email=%FF%FE&password=%00&csrf_token={token}&remember=%%%");
        let response = client
            .post("/login")
            .raw("application/x-www-form-urlencoded", body)
            .send()
            .await;
        assert!(
            response.status.is_success() || response.status.is_client_error(),
            "{}",
            response.status
        );
    }
);
