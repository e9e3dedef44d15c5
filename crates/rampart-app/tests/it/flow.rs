//! The whole JSON journey of a user, as a single-page app drives it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, backend_test, errors};

backend_test!(
    a_user_registers_confirms_signs_in_edits_the_profile_changes_password_and_signs_out,
    full_flow
);

fn is_naive_iso(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() >= 19
            && s.as_bytes()[10] == b'T'
            && !s.ends_with('Z')
            && !s[19..].contains(['+', '-'])
    })
}

async fn full_flow(app: TestApp) {
    let email = "ada@example.com";
    app.register_and_confirm(email).await;

    // A first login from another client, so the second one shows the previous login.
    let (_first, _) = app.login(email, PASSWORD).await;
    let (client, token) = app.login(email, PASSWORD).await;

    let (status, body) = client.get_json("/api/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let user = &body["response"]["user"];
    assert_eq!(user["email"], email);
    assert_eq!(user["active"], true);
    assert_eq!(user["is_accepted"], true);
    assert_eq!(user["roles"], json!(["User"]));
    assert_eq!(user["permissions"], json!(["user-read", "user-write"]));
    assert_eq!(user["login_count"], 2);
    assert_eq!(user["current_login_ip"], "127.0.0.1");
    assert_eq!(user["last_login_ip"], "127.0.0.1");
    assert_eq!(user["username"], Value::Null);
    assert_eq!(user["tf_primary_method"], Value::Null);
    assert!(user["id"].is_i64());
    assert!(user["uuid"].as_str().is_some_and(|u| !u.is_empty()));
    for key in [
        "confirmed_at",
        "create_datetime",
        "current_login_at",
        "last_login_at",
    ] {
        assert!(is_naive_iso(&user[key]), "{key}: {}", user[key]);
    }
    let fields: Vec<&String> = user.as_object().expect("object").keys().collect();
    assert_eq!(fields.len(), 16, "{fields:?}");

    // The same with the token, without cookies.
    let anonymous = app.client();
    let (status, body) = anonymous
        .request(Method::GET, "/api/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Profile: empty from creation on.
    let (status, body) = client.get_json("/api/profile").await;
    assert_eq!(status, StatusCode::OK);
    let profile = body["response"]["profile"]
        .as_object()
        .expect("profile")
        .clone();
    assert_eq!(profile.len(), 10);
    assert!(profile.values().all(Value::is_null), "{profile:?}");

    // Session writes need the CSRF header.
    client.forget_csrf();
    let (status, body) = client
        .post_json("/api/profile", json!({"first_name": "Ada"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(errors(&body), ["The CSRF token is missing."]);
    let (status, _) = client.get_json("/login").await;
    assert_eq!(status, StatusCode::OK);

    let (status, body) = client
        .post_json(
            "/api/profile",
            json!({"first_name": "  Ada ", "dob": "1990-01-12", "city": "London"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["profile"]["first_name"], "Ada");
    assert_eq!(body["response"]["profile"]["dob"], "1990-01-12");
    assert_eq!(body["response"]["profile"]["last_name"], Value::Null);

    // All or nothing, every error reported with its field.
    let (status, body) = client
        .post_json(
            "/api/profile",
            json!({"dob": "12/01/1990", "foo": "x", "first_name": "Bob", "zip": 42, "phone": "1".repeat(33)}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let messages = errors(&body);
    for expected in [
        "dob: Must be a date (YYYY-MM-DD)",
        "foo: Unknown field",
        "zip: Must be a string",
        "phone: Enter a phone number with its country code, for example +44 20 7946 0000.",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "{expected} in {messages:?}"
        );
    }
    assert_eq!(messages.len(), 4);
    assert_eq!(
        body["response"]["field_errors"]["dob"],
        json!(["Must be a date (YYYY-MM-DD)"])
    );
    assert_eq!(
        body["response"]["field_errors"]["foo"],
        json!(["Unknown field"])
    );
    let (_, body) = client.get_json("/api/profile").await;
    assert_eq!(body["response"]["profile"]["first_name"], "Ada");

    for bad in ["[1,2]", "\"x\"", "42", "null"] {
        let response = client
            .http
            .post(format!("{}/api/profile", client.base))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("X-CSRF-Token", fresh_csrf(&client).await)
            .body(bad)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("json");
        assert_eq!(
            errors(&body),
            ["Request body must be a JSON object"],
            "{bad}"
        );
    }

    // Clearing, and token writes without CSRF.
    let (status, body) = anonymous
        .request(
            Method::POST,
            "/api/profile",
            Some(json!({"city": null, "first_name": ""})),
            Some(&token),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["profile"]["city"], Value::Null);
    assert_eq!(body["response"]["profile"]["first_name"], Value::Null);
    assert_eq!(body["response"]["profile"]["dob"], "1990-01-12");

    // Change password at /dashboard/security/: the old token dies, the session lives.
    let new_password = "a brand new password";
    let (status, body) = client
        .post_json(
            "/dashboard/security/",
            json!({"password": PASSWORD, "new_password": new_password, "new_password_confirm": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mail = app.mail_to(email).await;
    assert_eq!(mail.subject, "Your password has been changed");
    let (status, _) = anonymous
        .request(Method::GET, "/api/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = client.get_json("/api/me").await;
    assert_eq!(status, StatusCode::OK);
    let (other, _) = app.login(email, new_password).await;
    let (status, _) = other.get_json("/api/me").await;
    assert_eq!(status, StatusCode::OK);

    // Logout.
    let (status, body) = client.post_json("/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = client.get_json("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(errors(&body), ["You must sign in to view this resource."]);
}

/// The session's CSRF token, as the server reports it.
async fn fresh_csrf(client: &crate::harness::TestClient) -> String {
    let (_, body) = client.get_json("/dashboard/security/").await;
    body["response"]["csrf_token"]
        .as_str()
        .expect("csrf token")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourth_login_attempt_in_the_window_is_rate_limited() {
    let app = TestApp::start(
        &Backend::Sqlite,
        &[("SECURITY_LOGIN_RATE_LIMIT", "3 per 10 minutes")],
    )
    .await;
    let client = app.client();
    for _ in 0..3 {
        let (status, _) = client
            .post_json(
                "/login",
                json!({"email": "nobody@example.com", "password": "wrong password"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let (status, body) = client
        .post_json(
            "/login",
            json!({"email": "nobody@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(errors(&body), ["3 per 10 minute"]);
}
