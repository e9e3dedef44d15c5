//! Deleting one's account.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backend_test, errors};

backend_test!(
    a_deleted_account_cannot_sign_in_and_its_email_can_register_again,
    async |app: TestApp| {
        let email = "leaving@example.com";
        app.create_user(email).await;
        let user_id = app
            .security
            .datastore()
            .user_by_email(email)
            .await
            .expect("query")
            .expect("user")
            .id;
        assert_eq!(
            crate::harness::profile_rows(&app.security, user_id).await,
            1
        );
        let (client, token) = app.login(email, PASSWORD).await;
        let (_, body) = client.get_json("/api/me").await;
        assert_eq!(body["response"]["user"]["email"], email);

        let (status, body) = client
            .request(Method::DELETE, "/api/account", Some(json!({})), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(errors(&body), ["Password not provided"]);
        assert_eq!(
            body["response"]["field_errors"]["password"],
            json!(["Password not provided"])
        );

        let (status, body) = client
            .request(
                Method::DELETE,
                "/api/account",
                Some(json!({"password": "not my password"})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body["response"]["field_errors"]["password"],
            json!(["Invalid password"])
        );

        let (status, body) = client
            .request(
                Method::DELETE,
                "/api/account",
                Some(json!({"password": PASSWORD})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["response"], json!({"deleted": true}));

        // Signed out, token dead, profile gone, login refused.
        let (status, _) = client.get_json("/api/me").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = app
            .client()
            .request(Method::GET, "/api/me", None, Some(&token))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            crate::harness::profile_rows(&app.security, user_id).await,
            0
        );
        let (status, _) = app
            .client()
            .post_json("/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // The address is free again.
        app.register_and_confirm(email).await;
        let (client, _) = app.login(email, PASSWORD).await;
        let (status, body) = client.get_json("/api/profile").await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
);

backend_test!(
    guessing_the_password_to_delete_an_account_is_throttled_by_the_login_limit,
    async |app: TestApp| {
        let email = "staying@example.com";
        app.create_user(email).await;
        let (client, _) = app.login(email, PASSWORD).await;
        let delete = |password: String| {
            let client = &client;
            async move {
                client
                    .request(
                        Method::DELETE,
                        "/api/account",
                        Some(json!({ "password": password })),
                        None,
                    )
                    .await
            }
        };
        // The default account limit: 10 per 5 minutes.
        for i in 0..15 {
            let (status, body) = delete(format!("not my password {i}")).await;
            let expected = if i < 10 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(status, expected, "try {i}: {body}");
        }
        let (_, wrong) = delete("not my password".to_owned()).await;
        assert_eq!(errors(&wrong), ["10 per 5 minute"]);
        assert!(
            wrong["response"]["retry_after"].as_u64().is_some(),
            "{wrong}"
        );
        // The right password gets the same refusal, and deletes nothing.
        let (status, right) = delete(PASSWORD.to_owned()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{right}");
        assert_eq!(right["response"]["errors"], wrong["response"]["errors"]);
        let (status, _) = client.get_json("/api/me").await;
        assert_eq!(status, StatusCode::OK);
        // The security page's change of password shares the count, and does not tell either.
        let (status, body) = client
            .post_json(
                "/dashboard/security/",
                json!({"password": PASSWORD, "new_password": PASSWORD, "new_password_confirm": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(errors(&body), ["10 per 5 minute"]);
        assert!(
            app.security
                .datastore()
                .user_by_email(email)
                .await
                .expect("query")
                .is_some()
        );
    }
);

backend_test!(
    guessing_the_current_password_on_the_security_page_is_throttled,
    async |app: TestApp| {
        let email = "changing@example.com";
        app.create_user(email).await;
        let (client, _) = app.login(email, PASSWORD).await;
        for i in 0..15 {
            let (status, body) = client
                .post_json(
                    "/dashboard/security/",
                    json!({"password": format!("wrong {i}"), "new_password": "a brand new password", "new_password_confirm": "a brand new password"}),
                )
                .await;
            let expected = if i < 10 {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(status, expected, "try {i}: {body}");
        }
        let (status, body) = client
            .request(
                Method::DELETE,
                "/api/account",
                Some(json!({ "password": PASSWORD })),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    }
);
