//! The in-process cache of sessions and users: every change made through the datastore is
//! refused (or shown) on the very next request, by session and by auth token alike.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{GENERIC, PASSWORD, TestApp, TestClient, TestResponse, backend_test};

fn now() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    time::PrimitiveDateTime::new(now.date(), now.time())
}

async fn me_by_token(app: &TestApp, token: &str) -> TestResponse {
    app.client()
        .get("/api/me")
        .header("Authentication-Token", token)
        .accept_json()
        .send()
        .await
}

/// A signed-in session and an auth token of `email`, both used once so the cache holds them.
async fn warmed_up(app: &TestApp, email: &str) -> (TestClient, String) {
    let client = app.logged_in(email).await;
    let token = app.auth_token(email).await;
    for _ in 0..2 {
        assert_eq!(client.me().await.status, StatusCode::OK);
        assert_eq!(me_by_token(app, &token).await.status, StatusCode::OK);
    }
    (client, token)
}

backend_test!(
    a_deactivated_user_is_refused_on_the_very_next_request,
    GENERIC,
    async |app: TestApp| {
        let (client, token) = warmed_up(&app, "ann@example.com").await;
        let user = app.user("ann@example.com").await;
        app.datastore()
            .set_active(user.id, false, now())
            .await
            .expect("deactivate");
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            me_by_token(&app, &token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
);

backend_test!(
    a_rotated_uniquifier_signs_out_sessions_and_tokens_at_once,
    GENERIC,
    async |app: TestApp| {
        let (client, token) = warmed_up(&app, "ann@example.com").await;
        let user = app.user("ann@example.com").await;
        app.datastore()
            .set_uniquifier(user.id, "rotated-uniquifier", now())
            .await
            .expect("rotate");
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            me_by_token(&app, &token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
);

backend_test!(
    a_removed_role_is_refused_on_the_very_next_request,
    GENERIC,
    async |app: TestApp| {
        let (client, token) = warmed_up(&app, "ann@example.com").await;
        let user = app.user("ann@example.com").await;
        let store = app.datastore();
        assert!(store.add_role_to_user(user.id, "Admin").await.expect("add"));
        let admin = client.get("/api/admin").accept_json().send().await;
        assert_eq!(admin.status, StatusCode::OK, "granted at once");
        assert!(
            store
                .remove_role_from_user(user.id, "Admin")
                .await
                .expect("remove")
        );
        let admin = client.get("/api/admin").accept_json().send().await;
        assert_eq!(admin.status, StatusCode::FORBIDDEN);
        let admin = app
            .client()
            .get("/api/admin")
            .header("Authentication-Token", &token)
            .accept_json()
            .send()
            .await;
        assert_eq!(admin.status, StatusCode::FORBIDDEN);
    }
);

backend_test!(
    a_permission_taken_from_a_role_is_refused_on_the_very_next_request,
    GENERIC,
    async |app: TestApp| {
        let (client, _token) = warmed_up(&app, "ann@example.com").await;
        let write = client.get("/api/write").accept_json().send().await;
        assert_eq!(write.status, StatusCode::OK);
        app.datastore()
            .set_role_permissions("User", &["user-read".to_owned()], now())
            .await
            .expect("set permissions");
        let write = client.get("/api/write").accept_json().send().await;
        assert_eq!(write.status, StatusCode::FORBIDDEN);
    }
);

backend_test!(
    revoked_sessions_and_deleted_users_are_refused_on_the_very_next_request,
    GENERIC,
    async |app: TestApp| {
        let (client, token) = warmed_up(&app, "ann@example.com").await;
        let user = app.user("ann@example.com").await;
        let store = app.datastore();
        store
            .delete_sessions_of_user(user.id, None)
            .await
            .expect("revoke");
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(me_by_token(&app, &token).await.status, StatusCode::OK);

        let (client, token) = warmed_up(&app, "bob@example.com").await;
        let bob = app.user("bob@example.com").await;
        assert!(store.delete_user(bob.id).await.expect("delete"));
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            me_by_token(&app, &token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
);

backend_test!(
    changes_to_the_user_show_on_the_very_next_request,
    GENERIC,
    async |app: TestApp| {
        let (client, _token) = warmed_up(&app, "ann@example.com").await;
        let before = client.me().await.response()["user"]["login_count"].clone();
        // A login elsewhere updates the tracking columns.
        app.client().login_ok("ann@example.com", PASSWORD).await;
        let after = client.me().await.response()["user"]["login_count"].clone();
        assert_eq!(after, json!(before.as_i64().expect("a count") + 1));

        let user = app.user("ann@example.com").await;
        app.datastore()
            .set_email(user.id, "ann.new@example.com", now())
            .await
            .expect("set email");
        assert_eq!(
            client.me().await.response()["user"]["email"],
            "ann.new@example.com"
        );
    }
);

backend_test!(
    with_the_cache_off_everything_still_works,
    &[("SECURITY_AUTH_CACHE_TTL", "0")],
    async |app: TestApp| {
        assert_eq!(app.datastore().cache_ttl(), std::time::Duration::ZERO);
        let (client, token) = warmed_up(&app, "ann@example.com").await;
        let user = app.user("ann@example.com").await;
        app.datastore()
            .set_active(user.id, false, now())
            .await
            .expect("deactivate");
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            me_by_token(&app, &token).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
);

backend_test!(
    concurrent_visitors_each_get_their_own_committed_session,
    GENERIC,
    async |app: TestApp| {
        // Many new sessions at once (here: each visitor gets a flash message) are written in
        // groups; each must be there on its next request.
        let clients: Vec<TestClient> = (0..24).map(|_| app.client()).collect();
        let visits = clients
            .iter()
            .map(|client| client.get("/confirm/not-a-token").send());
        for visit in futures_util::future::join_all(visits).await {
            assert_eq!(visit.status, StatusCode::FOUND, "{}", visit.text());
        }
        for client in &clients {
            assert!(client.cookie("session").is_some());
        }
        let pages = clients.iter().map(|client| client.get("/confirm").send());
        for page in futures_util::future::join_all(pages).await {
            assert_eq!(page.status, StatusCode::OK);
            assert!(
                page.html().contains("Invalid confirmation token"),
                "{}",
                page.text()
            );
        }
    }
);

/// The anonymous visitor's CSRF cookie (the tests run with secure cookies).
const CSRF_COOKIE: &str = "__Host-rampart_csrf";

backend_test!(
    concurrent_new_visitors_each_get_their_own_csrf_secret_and_no_session,
    GENERIC,
    async |app: TestApp| {
        let clients: Vec<TestClient> = (0..24).map(|_| app.client()).collect();
        let pages = clients
            .iter()
            .map(|client| client.get("/login").accept_json().send());
        for page in futures_util::future::join_all(pages).await {
            assert_eq!(page.status, StatusCode::OK);
        }
        let mut secrets = std::collections::HashSet::new();
        for client in &clients {
            assert!(client.cookie("session").is_none(), "no server-side session");
            secrets.insert(client.cookie(CSRF_COOKIE).expect("CSRF cookie"));
        }
        assert_eq!(
            secrets.len(),
            clients.len(),
            "every visitor has their own secret"
        );
        let logins = clients.iter().enumerate().map(|(i, client)| async move {
            client
                .post("/login")
                .form(&[
                    ("email", &format!("nobody{i}@example.com")),
                    ("password", "x"),
                ])
                .csrf()
                .send()
                .await
        });
        for login in futures_util::future::join_all(logins).await {
            // The form was accepted past CSRF (and refused for its credentials).
            assert_eq!(login.status, StatusCode::OK, "{}", login.text());
            assert!(!login.text().contains("CSRF"), "{}", login.text());
        }
        // One visitor's token does not pass with another's cookie.
        let token = clients[0].csrf_token().expect("token");
        let other = clients[1].cookie(CSRF_COOKIE).expect("cookie");
        let crossed = app
            .client()
            .post("/login")
            .form(&[("email", "nobody@example.com"), ("password", "x")])
            .header("cookie", &format!("{CSRF_COOKIE}={other}"))
            .header("x-xsrf-token", &token)
            .send()
            .await;
        assert_eq!(
            crossed.status,
            StatusCode::BAD_REQUEST,
            "{}",
            crossed.text()
        );
        assert!(
            crossed.text().contains("CSRF tokens do not match"),
            "{}",
            crossed.text()
        );
    }
);
