//! When a dependency fails: the database answers 503 (never a 500 or a hang), and a mail that
//! cannot be sent leaves the account in place.

use axum::http::StatusCode;
use rampart::DbPool;
use serde_json::json;

use crate::harness::{EXACT, PASSWORD, TestApp, backend_test};

const UNAVAILABLE: &str = "The server is temporarily unable to service your request due to \
                           maintenance downtime or capacity problems. Please try again later.";

backend_test!(
    a_database_outage_answers_503_with_retry_after,
    EXACT,
    async |app: TestApp| {
        match app.datastore().pool() {
            DbPool::Sqlite(pool) => pool.close().await,
            DbPool::Postgres(pool) => pool.close().await,
        }
        let response = app
            .client()
            .post("/login")
            .json(&json!({"email": "someone@example.com", "password": PASSWORD}))
            .send()
            .await;
        response.assert_errors(StatusCode::SERVICE_UNAVAILABLE, &[UNAVAILABLE]);
        assert!(
            response.header("retry-after").is_some(),
            "Retry-After is set"
        );

        // The sign-in form needs no database; submitting it does.
        let browser = app.client();
        let form = browser.get("/login").send().await;
        assert_eq!(form.status, StatusCode::OK);
        let page = browser
            .post("/login")
            .form(&[("email", "someone@example.com"), ("password", PASSWORD)])
            .header("x-csrf-token", &crate::harness::csrf_in_html(&form.text()))
            .send()
            .await;
        assert_eq!(
            page.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            page.text()
        );
        assert!(
            page.text().contains("temporarily unable"),
            "an error page, not a stack trace"
        );
    }
);

backend_test!(
    a_mail_that_cannot_be_sent_leaves_the_account_and_resend_still_answers,
    EXACT,
    on_backend_with_broken_mail,
    async |app: TestApp| {
        let email = "unlucky@example.com";
        let response = app.client().register(email, PASSWORD).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let user = app.user(email).await;
        assert!(user.active);
        assert!(user.confirmed_at.is_none());

        let resend = app
            .client()
            .post("/confirm")
            .json(&json!({"email": email}))
            .send()
            .await;
        assert_eq!(resend.status, StatusCode::OK, "{}", resend.text());
    }
);
