//! The login rate limit (CONTRACT.md §3): `3 per 10 minutes` per client address.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, csrf_in_html, each_backend};

const SEED_LIMIT: &[(&str, &str)] = &[("SECURITY_LOGIN_RATE_LIMIT", "3 per 10 minutes")];

#[tokio::test]
async fn the_fourth_login_post_in_ten_minutes_is_a_429() {
    each_backend(SEED_LIMIT, async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        for _ in 0..3 {
            assert_eq!(
                client
                    .login("ann@example.com", "wrong password")
                    .await
                    .status,
                StatusCode::BAD_REQUEST
            );
        }
        let limited = client.login("ann@example.com", PASSWORD).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert_eq!(limited.response()["errors"], json!(["3 per 10 minute"]));
        assert!(limited.response().get("field_errors").is_none());
        let retry_after: u64 = limited
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=600).contains(&retry_after), "{retry_after}");
        assert_eq!(
            client.me().await.status,
            StatusCode::UNAUTHORIZED,
            "a limited login signs nobody in"
        );

        // Every client of that address is limited; GET /login is not.
        assert_eq!(
            app.client().login("ann@example.com", PASSWORD).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            app.client().get("/login").accept_json().send().await.status,
            StatusCode::OK
        );
        // A browser gets a page with the same status and header.
        let browser = app.client();
        let token = csrf_in_html(&browser.get("/login").send().await.text());
        let page = browser
            .post("/login")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.header("retry-after").is_some());

        app.advance(Duration::from_secs(10 * 60 + 1));
        client.login_ok("ann@example.com", PASSWORD).await;
    })
    .await;
}

const IDENTITY_LIMIT: &[(&str, &str)] = &[
    ("SECURITY_LOGIN_IDENTITY_RATE_LIMIT", "3 per 10 minutes"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

#[tokio::test]
async fn guessing_one_account_is_throttled_whichever_client_guesses() {
    each_backend(IDENTITY_LIMIT, async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        app.signed_up("bob@example.com").await;
        // A success clears the count: it does not add up across normal use.
        for _ in 0..4 {
            app.client().login_ok("ann@example.com", PASSWORD).await;
        }
        for _ in 0..3 {
            let guess = app
                .client()
                .login("ANN@example.com", "wrong password")
                .await;
            assert_eq!(guess.status, StatusCode::BAD_REQUEST, "{}", guess.text());
        }
        // The fourth attempt on that account is refused, even with the right password...
        let limited = app.client().login("ann@example.com", PASSWORD).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert_eq!(limited.response()["errors"], json!(["3 per 10 minute"]));
        assert!(limited.header("retry-after").is_some());
        // ...while other accounts are not affected.
        app.client().login_ok("bob@example.com", PASSWORD).await;

        app.advance(Duration::from_secs(10 * 60 + 1));
        app.client().login_ok("ann@example.com", PASSWORD).await;
    })
    .await;
}
