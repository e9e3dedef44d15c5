//! Change of username (`SECURITY_CHANGE_USERNAME`, Flask-Security 5's `/change-username`): a
//! fresh sign-in, the sign-up rules, a free name in every equivalent spelling, a notice mail and
//! an activity record.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, TestClient, backend_test, csrf_in_html};

const ON: &[(&str, &str)] = &[
    ("SECURITY_CHANGE_USERNAME", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

const LENGTH: &str = "Username must be at least 4 characters and less than 32 characters";

async fn change(client: &TestClient, username: &str) -> crate::harness::TestResponse {
    client
        .post("/change-username")
        .json(&json!({ "username": username }))
        .csrf()
        .send()
        .await
}

/// The events of the client's user, newest first.
async fn events(client: &TestClient) -> Vec<Value> {
    let response = client.get("/api/activity").accept_json().send().await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    match response.response()["activity"].clone() {
        Value::Array(events) => events,
        other => panic!("no activity list: {other}"),
    }
}

/// Registers `email` with `username` and follows the confirmation link.
async fn signed_up_named(app: &TestApp, email: &str, username: &str) {
    let registered = app
        .client()
        .post("/register")
        .json(&json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD, "username": username}))
        .send()
        .await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.text());
    let path = app.path_in_mail(email, "/confirm/").await;
    assert_eq!(
        app.client().get(&path).send().await.location(),
        Some("/login")
    );
}

backend_test!(
    a_new_username_is_stored_mailed_recorded_and_signs_in,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/change-username").accept_json().send().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert_eq!(page.response()["current_username"], Value::Null);
        assert_eq!(page.response()["user"]["email"], "ann@example.com");
        assert!(page.response()["csrf_token"].is_string());

        let changed = change(&client, "annie").await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
        assert_eq!(changed.response()["user"]["username"], "annie");
        assert_eq!(changed.response()["user"]["email"], "ann@example.com");
        assert_eq!(
            app.user("ann@example.com").await.username.as_deref(),
            Some("annie")
        );
        let notice = app.mail_to("ann@example.com").await;
        assert_eq!(notice.subject, "Your username has been changed");
        assert!(notice.text.contains("changed to annie."), "{}", notice.text);
        let recorded = events(&client).await;
        assert_eq!(recorded[0]["event"], "username_changed", "{recorded:#?}");
        assert_eq!(recorded[0]["ip"], "127.0.0.1");
        assert_eq!(recorded[0]["actor_id"], recorded[0]["user_id"]);

        // A second change names the old one; the old name no longer signs in, the new one does.
        let again = change(&client, "Annabel").await;
        assert_eq!(again.status, StatusCode::OK, "{}", again.text());
        let notice = app.mail_to("ann@example.com").await;
        assert!(
            notice.text.contains("changed from annie to Annabel."),
            "{}",
            notice.text
        );
        let page = client.get("/change-username").accept_json().send().await;
        assert_eq!(page.response()["current_username"], "Annabel");
        let old = app.client().login("annie", PASSWORD).await;
        assert_eq!(old.status, StatusCode::BAD_REQUEST, "{}", old.text());
        app.client().login_ok("annabel", PASSWORD).await;

        // Without SECURITY_USERNAME_REQUIRED an empty one takes the username away.
        let cleared = change(&client, "").await;
        assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.text());
        assert_eq!(app.user("ann@example.com").await.username, None);
        let notice = app.mail_to("ann@example.com").await;
        assert_eq!(notice.subject, "Your username has been changed");
        let gone = app.client().login("Annabel", PASSWORD).await;
        assert_eq!(gone.status, StatusCode::BAD_REQUEST, "{}", gone.text());
        let recorded = events(&client)
            .await
            .iter()
            .filter(|e| e["event"] == "username_changed")
            .count();
        assert_eq!(recorded, 3);
    }
);

backend_test!(
    taken_and_invalid_usernames_are_refused_with_the_sign_up_messages,
    ON,
    async |app: TestApp| {
        signed_up_named(&app, "bob@example.com", "bobby").await;
        let client = app.logged_in("ann@example.com").await;
        // Nothing to take away yet.
        change(&client, "")
            .await
            .assert_field_errors(&json!({"username": ["Username not provided"]}));
        for (username, message) in [
            ("BOBBY", "BOBBY is already associated with an account."),
            ("bobby", "bobby is already associated with an account."),
            ("abc", LENGTH),
            (&"x".repeat(33), LENGTH),
            ("bad name!", "Value entered is not valid for the field"),
            // A Cyrillic "о" among Latin letters.
            ("b\u{43e}bby", "Username contains illegal characters"),
        ] {
            change(&client, username)
                .await
                .assert_field_errors(&json!({ "username": [message] }));
        }
        // The own name is not a change either.
        assert_eq!(change(&client, "annie").await.status, StatusCode::OK);
        app.mail_to("ann@example.com").await;
        change(&client, "ANNIE").await.assert_field_errors(
            &json!({"username": ["ANNIE is already associated with an account."]}),
        );
        assert_eq!(
            app.user("bob@example.com").await.username.as_deref(),
            Some("bobby")
        );
        assert_eq!(
            app.user("ann@example.com").await.username.as_deref(),
            Some("annie")
        );

        // CSRF and a signed-in user are needed.
        let no_csrf = client
            .post("/change-username")
            .json(&json!({"username": "newname"}))
            .send()
            .await;
        no_csrf.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF token is missing."]);
        let anonymous = app
            .client()
            .post("/change-username")
            .json(&json!({"username": "newname"}))
            .send()
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        let anonymous = app
            .client()
            .get("/change-username")
            .accept_json()
            .send()
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        app.assert_no_mail_to("ann@example.com").await;
        let refused = events(&client)
            .await
            .iter()
            .filter(|e| e["event"] == "username_changed")
            .count();
        assert_eq!(refused, 1);
    }
);

const FRESH_TEN_MINUTES: &[(&str, &str)] = &[
    ("SECURITY_CHANGE_USERNAME", "true"),
    ("SECURITY_FRESHNESS", "10 minutes"),
    ("SECURITY_FRESHNESS_GRACE_PERIOD", "0"),
];

backend_test!(
    a_stale_session_re_enters_its_password_first,
    FRESH_TEN_MINUTES,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        app.advance(Duration::from_secs(11 * 60));
        let stale = change(&client, "annie").await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());
        assert_eq!(stale.response()["reauth_required"], true);
        let page = client.get("/change-username").send().await;
        assert_eq!(page.status, StatusCode::FOUND);
        assert_eq!(page.location(), Some("/verify?next=%2Fchange-username"));
        assert_eq!(app.user("ann@example.com").await.username, None);

        let verified = client
            .post("/verify")
            .json(&json!({ "password": PASSWORD }))
            .csrf()
            .send()
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
        let fresh = change(&client, "annie").await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());
    }
);

const ELSEWHERE: &[(&str, &str)] = &[
    ("SECURITY_CHANGE_USERNAME", "true"),
    ("SECURITY_POST_CHANGE_USERNAME_VIEW", "/profile"),
    ("SECURITY_SEND_USERNAME_CHANGE_EMAIL", "false"),
];

backend_test!(
    the_html_form_changes_it_and_says_so,
    ELSEWHERE,
    async |app: TestApp| {
        signed_up_named(&app, "ann@example.com", "annie").await;
        let client = app.client();
        client.login_ok("ann@example.com", PASSWORD).await;
        let page = client.get("/change-username").send().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let html = page.html();
        assert!(html.contains("Change username"), "{html}");
        assert!(html.contains("annie"), "{html}");

        let refused = client
            .post("/change-username")
            .form(&[
                ("username", "abc"),
                ("csrf_token", &csrf_in_html(&page.text())),
            ])
            .send()
            .await;
        assert_eq!(refused.status, StatusCode::OK, "{}", refused.text());
        assert!(refused.html().contains(LENGTH), "{}", refused.text());

        let done = client
            .post("/change-username")
            .form(&[
                ("username", "annabel"),
                ("csrf_token", &csrf_in_html(&page.text())),
            ])
            .send()
            .await;
        assert_eq!(done.status, StatusCode::FOUND, "{}", done.text());
        assert_eq!(done.location(), Some("/profile"));
        let after = client.get("/change-username").send().await;
        let html = after.html();
        assert!(
            html.contains("You successfully changed your username"),
            "{html}"
        );
        assert!(html.contains("annabel"), "{html}");
        // SECURITY_SEND_USERNAME_CHANGE_EMAIL=false: no notice.
        app.assert_no_mail_to("ann@example.com").await;
    }
);

backend_test!(
    the_feature_is_off_unless_configured,
    &[],
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/change-username").accept_json().send().await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
);

#[test]
fn the_feature_needs_usernames() {
    let settings = rampart::Settings::from_pairs([
        ("SECRET_KEY", "integration-test-secret-key-0123456789"),
        ("SECURITY_PASSWORD_SALT", "integration-test-salt"),
        ("SECURITY_CHANGE_USERNAME", "true"),
    ]);
    let error = rampart::SecurityConfig::from_settings(&settings)
        .expect_err("SECURITY_CHANGE_USERNAME without usernames");
    assert!(
        error.to_string().contains("SECURITY_CHANGE_USERNAME"),
        "{error}"
    );
}
