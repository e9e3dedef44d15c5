//! Auth tokens (`Authentication-Token` header, `auth_token` query): lifetime and invalidation.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{GENERIC, PASSWORD, TestApp, TestResponse, backend_test};

async fn me_with(app: &TestApp, token: &str) -> TestResponse {
    app.client()
        .get("/api/me")
        .accept_json()
        .header("Authentication-Token", token)
        .send()
        .await
}

backend_test!(
    forged_tampered_or_empty_tokens_get_401,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let token = app.auth_token("ann@example.com").await;
        assert_eq!(me_with(&app, &token).await.status, StatusCode::OK);
        let mut tampered = token.clone().into_bytes();
        let middle = tampered.len() / 2;
        tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in [
            tampered.as_str(),
            &token[..token.len() - 1],
            "garbage",
            ".eJwNyk.x.y",
            "",
        ] {
            let response = me_with(&app, bad).await;
            response.assert_errors(
                StatusCode::UNAUTHORIZED,
                &["You must sign in to view this resource."],
            );
        }
    }
);

backend_test!(
    a_token_expires_after_its_max_age,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let token = app.auth_token("ann@example.com").await;
        app.advance(Duration::from_secs(14 * 60));
        assert_eq!(me_with(&app, &token).await.status, StatusCode::OK);
        app.advance(Duration::from_secs(2 * 60));
        assert_eq!(me_with(&app, &token).await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_token_survives_a_session_logout,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let login = client
            .post("/login?include_auth_token")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await;
        let token = login.response()["user"]["authentication_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(client.logout().await.status, StatusCode::OK);
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(me_with(&app, &token).await.status, StatusCode::OK);
    }
);

backend_test!(
    a_token_dies_with_its_account,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let token = app.auth_token("ann@example.com").await;
        let user = app.user("ann@example.com").await;
        app.datastore()
            .set_active(user.id, false, user.update_datetime)
            .await
            .unwrap();
        assert_eq!(me_with(&app, &token).await.status, StatusCode::UNAUTHORIZED);
        app.datastore()
            .set_active(user.id, true, user.update_datetime)
            .await
            .unwrap();
        assert_eq!(me_with(&app, &token).await.status, StatusCode::OK);
        app.datastore().delete_user(user.id).await.unwrap();
        assert_eq!(me_with(&app, &token).await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_token_of_a_user_does_not_sign_in_a_session,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let token = app.auth_token("ann@example.com").await;
        let client = app.client();
        let response = client
            .get("/api/me")
            .accept_json()
            .header("Authentication-Token", &token)
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK);
        assert!(
            response.set_cookie("session").is_none(),
            "token requests are stateless"
        );
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
    }
);
