//! Who may see what: anonymous, plain users, the admin from `ADMIN_EMAIL`.

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, backend_test, errors};

backend_test!(
    roles_and_permissions_guard_the_api_and_the_home_page_wants_a_session,
    async |app: TestApp| {
        app.create_user("user@example.com").await;

        // Anonymous.
        let anonymous = app.client();
        for path in ["/api/me", "/api/admin", "/api/write", "/api/profile"] {
            let (status, body) = anonymous.get_json(path).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(
                errors(&body),
                ["You must sign in to view this resource."],
                "{path}"
            );
        }
        let response = anonymous
            .http
            .get(format!("{}/", app.base))
            .send()
            .await
            .expect("home");
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = response.headers()[header::LOCATION]
            .to_str()
            .expect("location")
            .to_owned();
        assert!(
            location == "/login?next=/" || location == "/login?next=%2F",
            "{location}"
        );

        // A plain user.
        let (user, token) = app.login("user@example.com", PASSWORD).await;
        let (status, body) = user.get_json("/api/admin").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(
            errors(&body),
            ["You do not have permission to view this resource."]
        );
        let (status, body) = user.get_json("/api/write").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response"]["message"], "you have user-write");
        let home = user
            .http
            .get(format!("{}/", app.base))
            .send()
            .await
            .expect("home");
        assert_eq!(home.status(), StatusCode::OK);
        let html = home.text().await.expect("html");
        assert!(html.contains("user@example.com"), "{html}");
        assert!(html.contains("name=\"csrf_token\""), "{html}");

        // The home page is for sessions: a token alone is redirected to the login.
        let tokened = app
            .client()
            .http
            .get(format!("{}/", app.base))
            .header("Authentication-Token", &token)
            .send()
            .await
            .expect("home");
        assert_eq!(tokened.status(), StatusCode::FOUND);

        // The administrator.
        let (admin, admin_token) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let (status, body) = admin.get_json("/api/admin").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body["response"],
            json!({"message": "admin area", "user_count": 2})
        );
        let (_, body) = admin.get_json("/api/me").await;
        assert_eq!(body["response"]["user"]["roles"], json!(["Admin", "User"]));
        assert_eq!(
            body["response"]["user"]["permissions"],
            json!(["admin-read", "admin-write", "user-read", "user-write"])
        );
        let (status, _) = app
            .client()
            .request(Method::GET, "/api/admin", None, Some(&admin_token))
            .await;
        assert_eq!(status, StatusCode::OK);

        // Without user-write, /api/write is forbidden.
        crate::harness::run_cli(
            &app.security,
            &["roles", "remove-permissions", "User", "user-write"],
        )
        .await
        .expect("permission removed");
        let (status, _) = user.get_json("/api/write").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_bodies_over_one_mebibyte_are_refused_even_where_uploads_may_be_larger() {
    let app = TestApp::start(&crate::harness::Backend::Sqlite, &[]).await;
    app.create_user("big@example.com").await;
    let (client, token) = app.login("big@example.com", PASSWORD).await;
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, body) = client
        .request(
            Method::POST,
            "/api/profile",
            Some(json!({"address": big})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        errors(&body),
        ["The data value transmitted exceeds the capacity limit."]
    );
}
