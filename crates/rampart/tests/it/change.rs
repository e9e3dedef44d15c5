//! Change password (`GET|POST SECURITY_CHANGE_URL`, here the contract's `/dashboard/security/`).

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{
    CHANGE_URL, GENERIC, PASSWORD, TestApp, TestClient, TestResponse, backend_test,
};

const NEW_PASSWORD: &str = "a brand new password";

async fn change(client: &TestClient, current: &str, new: &str, confirm: &str) -> TestResponse {
    client
        .post(CHANGE_URL)
        .json(&json!({"password": current, "new_password": new, "new_password_confirm": confirm}))
        .csrf()
        .send()
        .await
}

backend_test!(
    get_change_answers_the_user_and_a_csrf_token,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let response = client.get(CHANGE_URL).accept_json().send().await;
        assert_eq!(response.status, StatusCode::OK);
        let body = response.response();
        assert_eq!(body["active_password"], json!(true));
        assert!(body["csrf_token"].is_string());
        assert_eq!(body["user"]["email"], "ann@example.com");
        assert_eq!(
            app.client()
                .get(CHANGE_URL)
                .accept_json()
                .send()
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
);

backend_test!(
    a_wrong_current_password_is_refused,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        change(&client, "wrong password", NEW_PASSWORD, NEW_PASSWORD)
            .await
            .assert_field_errors(&json!({"password": ["Invalid password"]}));
    }
);

backend_test!(
    the_same_password_is_refused,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        change(&client, PASSWORD, PASSWORD, PASSWORD)
            .await
            .assert_field_errors(&json!({"password": ["Your new password must be different than your previous password."]}));
    }
);

backend_test!(
    a_mismatched_or_short_new_password_is_refused,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        change(&client, PASSWORD, NEW_PASSWORD, "something else")
            .await
            .assert_field_errors(&json!({"new_password_confirm": ["Passwords do not match"]}));
        change(&client, PASSWORD, "short", "short")
            .await
            .assert_field_errors(
                &json!({"new_password": ["Password must be at least 8 characters"]}),
            );
        app.client().login_ok("ann@example.com", PASSWORD).await;
    }
);

backend_test!(
    changing_needs_a_session_with_csrf_or_a_token,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let response = client
            .post(CHANGE_URL)
            .json(&json!({"password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}))
            .send()
            .await;
        response.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF token is missing."]);
        let anonymous = app
            .client()
            .post(CHANGE_URL)
            .json(&json!({"password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}))
            .send()
            .await;
        anonymous.assert_errors(
            StatusCode::UNAUTHORIZED,
            &["You must sign in to view this resource."],
        );
    }
);

backend_test!(
    a_password_change_keeps_this_session_and_ends_the_others,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let other = app.client();
        other.login_ok("ann@example.com", PASSWORD).await;
        let token = app.auth_token("ann@example.com").await;
        let before = app.user("ann@example.com").await;

        let response = change(&client, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let body = response.response();
        assert!(body["csrf_token"].is_string());
        let after = app.user("ann@example.com").await;
        assert_ne!(before.fs_uniquifier, after.fs_uniquifier);
        assert_eq!(
            body["user"],
            json!({"email": "ann@example.com", "username": null, "uuid": after.fs_uniquifier, "roles": ["User"]})
        );
        assert_eq!(
            app.mail_to("ann@example.com").await.subject,
            "Your password has been changed"
        );

        // This session still works (and can still post with its new CSRF token)…
        assert_eq!(client.me().await.status, StatusCode::OK);
        let echo = client
            .post("/api/echo")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        assert_eq!(echo.status, StatusCode::OK, "{}", echo.text());
        // …the other session is signed out, and the old token is dead.
        assert_eq!(other.me().await.status, StatusCode::UNAUTHORIZED);
        let by_token = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("Authentication-Token", &token)
            .send()
            .await;
        by_token.assert_errors(
            StatusCode::UNAUTHORIZED,
            &["You must sign in to view this resource."],
        );
        // Only the new password signs in.
        assert_eq!(
            app.client().login("ann@example.com", PASSWORD).await.status,
            StatusCode::BAD_REQUEST
        );
        app.client().login_ok("ann@example.com", NEW_PASSWORD).await;
    }
);

backend_test!(
    a_token_client_can_change_its_password_without_csrf,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let token = app.auth_token("ann@example.com").await;
        let response = app
            .client()
            .post(CHANGE_URL)
            .header("Authentication-Token", &token)
            .json(&json!({"password": PASSWORD, "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        // The token used for the change is dead too.
        let again = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("Authentication-Token", &token)
            .send()
            .await;
        assert_eq!(again.status, StatusCode::UNAUTHORIZED);
        app.client().login_ok("ann@example.com", NEW_PASSWORD).await;
    }
);

backend_test!(
    guessing_the_current_password_is_throttled_by_the_login_limit,
    GENERIC,
    async |app: TestApp| {
        // The default account limit: 10 per 5 minutes.
        let client = app.logged_in("ann@example.com").await;
        let mut answers = Vec::new();
        for i in 0..15 {
            let guess = format!("wrong password {i}");
            answers.push(change(&client, &guess, NEW_PASSWORD, NEW_PASSWORD).await);
        }
        for (i, answer) in answers.iter().enumerate() {
            let expected = if i < 10 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(answer.status, expected, "try {i}: {}", answer.text());
        }
        let wrong = &answers[14];
        assert_eq!(wrong.response()["errors"], json!(["10 per 5 minute"]));
        assert!(wrong.header("retry-after").is_some());
        // While refused, the right password says nothing more: not "the same as before", not OK.
        for (new, confirm) in [(PASSWORD, PASSWORD), (NEW_PASSWORD, NEW_PASSWORD)] {
            let right = change(&client, PASSWORD, new, confirm).await;
            assert_eq!(
                right.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{}",
                right.text()
            );
            assert_eq!(right.response(), wrong.response());
            assert_eq!(right.header("retry-after"), wrong.header("retry-after"));
        }
        // The login shares the count.
        let login = app.client().login("ann@example.com", PASSWORD).await;
        assert_eq!(login.status, StatusCode::TOO_MANY_REQUESTS);
        // The browser form gets the 429 page.
        let page = client
            .post(CHANGE_URL)
            .form(&[
                ("password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_confirm", NEW_PASSWORD),
            ])
            .csrf()
            .send()
            .await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(page.text().contains("Too many attempts"), "{}", page.text());

        app.advance(std::time::Duration::from_secs(5 * 60 + 1));
        let changed = change(&client, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    }
);

backend_test!(
    a_burst_of_concurrent_current_password_guesses_gets_at_most_the_limit_checked,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let guesses: Vec<String> = (0..40).map(|i| format!("wrong password {i}")).collect();
        let answers = futures_util::future::join_all(
            guesses
                .iter()
                .map(|guess| change(&client, guess, NEW_PASSWORD, NEW_PASSWORD)),
        )
        .await;
        let checked = answers
            .iter()
            .filter(|a| a.status != StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert_eq!(checked, 10, "exactly the limit was checked");
    }
);
