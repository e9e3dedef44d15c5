//! Freshness (`SECURITY_FRESHNESS`): sensitive changes need a recently proven password; a stale
//! session re-enters it at `/verify`; remember-me sessions are never fresh; tokens are.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backend_test, csrf_in_html};

const TEN_MINUTES: &[(&str, &str)] = &[
    ("SECURITY_FRESHNESS", "10 minutes"),
    ("SECURITY_FRESHNESS_GRACE_PERIOD", "0"),
    ("SECURITY_CHANGE_EMAIL", "true"),
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_MULTI_FACTOR_RECOVERY_CODES", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

const REAUTH: &str = "You must reauthenticate to access this endpoint";

const WITH_GRACE: &[(&str, &str)] = &[
    ("SECURITY_FRESHNESS", "10 minutes"),
    ("SECURITY_FRESHNESS_GRACE_PERIOD", "30 minutes"),
    ("SECURITY_CHANGE_EMAIL", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

// SECURITY_FRESHNESS_GRACE_PERIOD: a session found fresh stays fresh that long after each check,
// past the freshness window, and goes stale once a grace period passes without a check.
backend_test!(
    a_session_found_fresh_stays_fresh_for_the_grace_period,
    WITH_GRACE,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let change = |email: &'static str| {
            let client = &client;
            async move {
                client
                    .post("/change-email")
                    .json(&json!({ "email": email }))
                    .csrf()
                    .send()
                    .await
            }
        };
        assert_eq!(change("one@example.com").await.status, StatusCode::OK);
        // Past the 10-minute window, within the grace the last check gave.
        app.advance(Duration::from_secs(25 * 60));
        let graced = change("two@example.com").await;
        assert_eq!(graced.status, StatusCode::OK, "{}", graced.text());
        // That check extended the grace; 31 minutes without one end it.
        app.advance(Duration::from_secs(31 * 60));
        let stale = change("three@example.com").await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());
    }
);

backend_test!(
    a_stale_session_re_enters_the_password_before_sensitive_changes,
    TEN_MINUTES,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let fresh = client
            .post("/change-email")
            .json(&json!({"email": "first@example.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());

        app.advance(Duration::from_secs(11 * 60));
        for (method, path) in [
            ("POST", "/change-email"),
            ("GET", "/tf-setup"),
            ("POST", "/tf-setup"),
            ("POST", "/mf-recovery-codes"),
        ] {
            let request = if method == "GET" {
                client.get(path).accept_json()
            } else {
                client
                    .post(path)
                    .json(&json!({"email": "second@example.com", "setup": "email"}))
                    .csrf()
            };
            let stale = request.send().await;
            assert_eq!(
                stale.status,
                StatusCode::UNAUTHORIZED,
                "{path}: {}",
                stale.text()
            );
            assert_eq!(
                stale.response(),
                json!({"errors": [REAUTH], "reauth_required": true}),
                "{path}"
            );
        }
        // Reading is not sensitive.
        assert_eq!(client.me().await.status, StatusCode::OK);

        let wrong = client
            .post("/verify")
            .json(&json!({"password": "not it"}))
            .csrf()
            .send()
            .await;
        wrong.assert_field_errors(&json!({"password": ["Invalid password"]}));
        let verified = client
            .post("/verify")
            .json(&json!({ "password": PASSWORD }))
            .csrf()
            .send()
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
        assert_eq!(verified.response()["user"]["email"], "ann@example.com");
        let again = client
            .post("/change-email")
            .json(&json!({"email": "second@example.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text());
    }
);

backend_test!(
    browsers_are_sent_to_verify_and_back,
    TEN_MINUTES,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        app.advance(Duration::from_secs(11 * 60));
        let stale = client.get("/tf-setup").send().await;
        assert_eq!(stale.status, StatusCode::FOUND, "{}", stale.text());
        assert_eq!(stale.location(), Some("/verify?next=%2Ftf-setup"));
        let page = client.get("/verify?next=%2Ftf-setup").send().await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html().contains(REAUTH), "{}", page.text());
        let done = client
            .post("/verify?next=%2Ftf-setup")
            .form(&[
                ("password", PASSWORD),
                ("csrf_token", &csrf_in_html(&page.text())),
            ])
            .send()
            .await;
        assert_eq!(done.status, StatusCode::FOUND, "{}", done.text());
        assert_eq!(done.location(), Some("/tf-setup"));
        assert_eq!(client.get("/tf-setup").send().await.status, StatusCode::OK);
    }
);

backend_test!(
    remember_me_sessions_are_never_fresh_and_tokens_are,
    TEN_MINUTES,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let remembered = app.client();
        let login = remembered
            .post("/login?include_auth_token")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD, "remember": true}))
            .send()
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        let auth_token = login.response()["user"]["authentication_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let remember = remembered.cookie("remember_token").unwrap();

        // A browser back with only its remember cookie: signed in, but not fresh.
        let returning = app.client();
        let me = returning
            .get("/api/me")
            .accept_json()
            .header("cookie", &format!("remember_token={remember}"))
            .send()
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        let stale = returning
            .post("/change-email")
            .json(&json!({"email": "new@example.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());

        // Tokens live 15 minutes: fresh enough.
        app.advance(Duration::from_secs(11 * 60));
        let by_token = app
            .client()
            .post("/change-email")
            .json(&json!({"email": "new@example.com"}))
            .header("authentication-token", &auth_token)
            .send()
            .await;
        assert_eq!(by_token.status, StatusCode::OK, "{}", by_token.text());
    }
);

backend_test!(
    freshness_off_never_asks,
    &[
        ("SECURITY_FRESHNESS", "off"),
        ("SECURITY_CHANGE_EMAIL", "true"),
    ],
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        // Two days: past the default 24 hours, within the session's lifetime.
        app.advance(Duration::from_secs(2 * 86_400));
        let late = client
            .post("/change-email")
            .json(&json!({"email": "late@example.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(late.status, StatusCode::OK, "{}", late.text());
    }
);

backend_test!(
    verify_is_throttled_by_the_login_limit_and_says_nothing_while_refused,
    TEN_MINUTES,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let verify = |password: String| {
            let client = &client;
            async move {
                client
                    .post("/verify")
                    .json(&json!({ "password": password }))
                    .csrf()
                    .send()
                    .await
            }
        };
        for i in 0..15 {
            let answer = verify(format!("wrong password {i}")).await;
            let expected = if i < 10 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(answer.status, expected, "try {i}: {}", answer.text());
        }
        let wrong = verify("wrong password".to_owned()).await;
        let right = verify(PASSWORD.to_owned()).await;
        assert_eq!(
            right.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            right.text()
        );
        assert_eq!(right.response(), wrong.response());
        assert!(right.header("retry-after").is_some());

        app.advance(Duration::from_secs(5 * 60 + 1));
        let right = verify(PASSWORD.to_owned()).await;
        assert_eq!(right.status, StatusCode::OK, "{}", right.text());
    }
);
