//! Deleting one's account.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backends, errors};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_account_cannot_sign_in_and_its_email_can_register_again() {
    for backend in backends() {
        let app = TestApp::start(&backend, &[]).await;
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
}
