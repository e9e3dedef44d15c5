//! Remember-me cookies end on the server: logout kills the cookie it was given (even a copy taken
//! earlier) without signing out the user's other devices; a password change or reset kills all.

#![expect(
    clippy::expect_used,
    reason = "test helpers: a step that cannot be done must fail the test at once, saying which"
)]

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{CHANGE_URL, GENERIC, PASSWORD, TestApp, TestClient, backend_test};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Signs `email` in on a new client with "remember me"; returns the client and its cookie.
async fn remembered(app: &TestApp, email: &str) -> (TestClient, String) {
    let client = app.client();
    let response = client
        .post("/login")
        .json(&json!({"email": email, "password": PASSWORD, "remember": true}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let cookie = client.cookie("remember_token").expect("remember_token");
    (client, cookie)
}

/// `GET /api/me` from a browser holding only `cookie` (its session is gone).
async fn me_with(app: &TestApp, cookie: &str) -> StatusCode {
    app.client()
        .get("/api/me")
        .accept_json()
        .header("cookie", &format!("remember_token={cookie}"))
        .send()
        .await
        .status
}

async fn series_count(app: &TestApp) -> i64 {
    let sql = "SELECT COUNT(*) FROM \"rampart_remember\"";
    match app.datastore().pool() {
        rampart::DbPool::Sqlite(pool) => sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("count series"),
        rampart::DbPool::Postgres(pool) => sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("count series"),
    }
}

backend_test!(
    logout_kills_a_copied_remember_cookie_but_not_other_devices,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let (laptop, stolen) = remembered(&app, "ann@example.com").await;
        let (_phone, phone_cookie) = remembered(&app, "ann@example.com").await;
        assert_ne!(stolen, phone_cookie, "each device gets its own series");
        assert_eq!(
            me_with(&app, &stolen).await,
            StatusCode::OK,
            "the copy works before logout"
        );

        let response = laptop.logout().await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());

        assert_eq!(me_with(&app, &stolen).await, StatusCode::UNAUTHORIZED);
        let replay = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("cookie", &format!("remember_token={stolen}"))
            .send()
            .await;
        let deleted = replay.set_cookie("remember_token").expect("cookie deleted");
        assert!(deleted.contains("Max-Age=0"), "{deleted}");
        assert_eq!(
            me_with(&app, &phone_cookie).await,
            StatusCode::OK,
            "other device stays"
        );
        assert_eq!(series_count(&app).await, 1);
    }
);

backend_test!(
    logout_from_a_session_the_cookie_restored_ends_that_cookie,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let (_laptop, cookie) = remembered(&app, "ann@example.com").await;

        // The browser comes back with only its remember cookie, is signed in, and logs out.
        let returning = app.client();
        returning.put_cookie("remember_token", &cookie);
        assert_eq!(returning.me().await.status, StatusCode::OK);
        assert!(
            returning.cookie("session").is_some(),
            "a new session started"
        );
        let response = returning.logout().await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());

        assert_eq!(me_with(&app, &cookie).await, StatusCode::UNAUTHORIZED);
        assert_eq!(series_count(&app).await, 0);
    }
);

backend_test!(
    logout_ends_a_cookie_the_browser_sends_even_if_this_session_never_used_it,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let (_, cookie) = remembered(&app, "ann@example.com").await;
        // The same browser signed in again later without "remember me": its session never
        // used the cookie, but the browser still holds and sends it.
        let fresh = app.client();
        fresh.login_ok("ann@example.com", PASSWORD).await;
        fresh.put_cookie("remember_token", &cookie);
        fresh.logout().await;
        assert_eq!(me_with(&app, &cookie).await, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_password_change_or_reset_ends_every_remember_cookie,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let (laptop, laptop_cookie) = remembered(&app, "ann@example.com").await;
        let (_, phone_cookie) = remembered(&app, "ann@example.com").await;
        let response = laptop
            .post(CHANGE_URL)
            .json(&json!({
                "password": PASSWORD,
                "new_password": NEW_PASSWORD,
                "new_password_confirm": NEW_PASSWORD,
            }))
            .csrf()
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        for cookie in [&laptop_cookie, &phone_cookie] {
            assert_eq!(me_with(&app, cookie).await, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(series_count(&app).await, 0, "the rows went too");
    }
);

backend_test!(
    a_tampered_or_forged_series_signs_nobody_in,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let (_, cookie) = remembered(&app, "ann@example.com").await;
        let mut tampered = cookie.clone();
        let last = tampered.pop().expect("non-empty");
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(me_with(&app, &tampered).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me_with(&app, "garbage").await, StatusCode::UNAUTHORIZED);
        assert_eq!(me_with(&app, &cookie).await, StatusCode::OK);
    }
);
