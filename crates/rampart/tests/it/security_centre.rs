//! The account security centre: `GET /api/sessions` (devices, the current one marked),
//! `DELETE /api/sessions/<id>`, `POST /api/sessions/revoke-others`, `GET /api/activity`, the
//! new-device mail and `GET /api/account/export`.

#![expect(
    clippy::expect_used,
    reason = "test helpers: a step that cannot be done must fail the test at once, saying which"
)]

use std::time::Duration;

use axum::http::{Method, StatusCode};
use rampart::Clock as _;
use serde_json::{Value, json};

use crate::harness::{GENERIC, PASSWORD, TestApp, TestClient, backend_test};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                      Gecko) Chrome/126.0.0.0 Safari/537.36";

/// Signs `email` in from a browser with `user_agent` (JSON, like an SPA).
async fn sign_in(app: &TestApp, email: &str, user_agent: &str) -> TestClient {
    let client = app.client();
    let response = client
        .post("/login")
        .header("user-agent", user_agent)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    client
}

async fn sessions(client: &TestClient, user_agent: &str) -> Vec<Value> {
    let response = client
        .get("/api/sessions")
        .header("user-agent", user_agent)
        .accept_json()
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.response()["sessions"]
        .as_array()
        .expect("sessions")
        .clone()
}

/// `(event, method)` of each event of the client's user, newest first.
async fn events(client: &TestClient) -> Vec<(String, Option<String>)> {
    let response = client.get("/api/activity").accept_json().send().await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.response()["activity"]
        .as_array()
        .expect("activity")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_owned(),
                e["detail"]["method"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn ev(event: &str, method: Option<&str>) -> (String, Option<String>) {
    (event.to_owned(), method.map(str::to_owned))
}

backend_test!(
    the_sessions_list_shows_each_device_marks_this_one_and_ends_another_at_once,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let firefox = sign_in(&app, "ann@example.com", FIREFOX).await;
        let chrome = sign_in(&app, "ann@example.com", CHROME).await;

        let listed = sessions(&firefox, FIREFOX).await;
        assert_eq!(listed.len(), 2, "{listed:#?}");
        let mine = listed
            .iter()
            .find(|s| s["current"] == json!(true))
            .expect("current");
        let other = listed
            .iter()
            .find(|s| s["current"] == json!(false))
            .expect("other");
        assert_eq!(mine["device"], "Firefox on Linux");
        assert_eq!(mine["user_agent"], FIREFOX);
        assert_eq!(mine["method"], "password");
        assert_eq!(mine["ip"], "127.0.0.1");
        assert!(
            other["device"]
                .as_str()
                .expect("device")
                .starts_with("Chrome on Windows")
        );
        for session in &listed {
            let id = session["id"].as_str().expect("id");
            assert_eq!(id.len(), 32);
            assert!(session["created_at"].is_string() && session["last_seen_at"].is_string());
            for cookie in [firefox.cookie("session"), chrome.cookie("session")] {
                assert_ne!(Some(id.to_owned()), cookie, "the id is not the cookie");
            }
        }
        // The other browser sees itself as current.
        let from_chrome = sessions(&chrome, CHROME).await;
        assert!(
            from_chrome
                .iter()
                .any(|s| s["current"] == json!(true) && s["id"] == other["id"])
        );

        // Another user's session id is a 404, and ends nothing.
        app.signed_up("bob@example.com").await;
        let bob = sign_in(&app, "bob@example.com", FIREFOX).await;
        let bobs = sessions(&bob, FIREFOX).await;
        let bob_id = bobs[0]["id"].as_str().expect("id");
        let refused = firefox
            .request(Method::DELETE, &format!("/api/sessions/{bob_id}"))
            .accept_json()
            .csrf()
            .send()
            .await;
        assert_eq!(refused.status, StatusCode::NOT_FOUND, "{}", refused.text());
        assert_eq!(bob.me().await.status, StatusCode::OK);

        // Without the CSRF header a session request is refused.
        let other_id = other["id"].as_str().expect("id");
        let no_csrf = firefox
            .request(Method::DELETE, &format!("/api/sessions/{other_id}"))
            .accept_json()
            .send()
            .await;
        assert_eq!(
            no_csrf.status,
            StatusCode::BAD_REQUEST,
            "{}",
            no_csrf.text()
        );
        assert_eq!(chrome.me().await.status, StatusCode::OK);

        let ended = firefox
            .request(Method::DELETE, &format!("/api/sessions/{other_id}"))
            .accept_json()
            .csrf()
            .send()
            .await;
        assert_eq!(ended.status, StatusCode::OK, "{}", ended.text());
        assert_eq!(
            chrome.me().await.status,
            StatusCode::UNAUTHORIZED,
            "ended at once"
        );
        assert_eq!(firefox.me().await.status, StatusCode::OK);
        let again = firefox
            .request(Method::DELETE, &format!("/api/sessions/{other_id}"))
            .accept_json()
            .csrf()
            .send()
            .await;
        assert_eq!(again.status, StatusCode::NOT_FOUND);
        assert_eq!(sessions(&firefox, FIREFOX).await.len(), 1);
    }
);

backend_test!(
    the_activity_of_a_flow_is_recorded_exactly_and_the_new_device_is_mailed,
    GENERIC,
    async |app: TestApp| {
        let mut hook = app.security.subscribe_activity();
        app.signed_up("ann@example.com").await;
        // The first sign-in of an account announces nothing.
        let firefox = sign_in(&app, "ann@example.com", FIREFOX).await;
        app.assert_no_mail_to("ann@example.com").await;
        let wrong = app
            .client()
            .post("/login")
            .header("user-agent", CHROME)
            .json(&json!({"email": "ann@example.com", "password": "wrong password"}))
            .send()
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        // The same browser again: seen, no mail.
        let again = sign_in(&app, "ann@example.com", FIREFOX).await;
        app.assert_no_mail_to("ann@example.com").await;
        // A new browser: mailed.
        let chrome = sign_in(&app, "ann@example.com", CHROME).await;
        let mail = app.mail_to("ann@example.com").await;
        assert!(mail.subject.contains("New sign-in"), "{}", mail.subject);
        assert!(mail.text.contains("Chrome on Windows"), "{}", mail.text);
        assert!(mail.text.contains("127.0.0.1"), "{}", mail.text);
        assert!(
            mail.text
                .contains("http://rampart.test/dashboard/security/"),
            "{}",
            mail.text
        );

        let chrome_id = sessions(&chrome, CHROME)
            .await
            .into_iter()
            .find(|s| s["current"] == json!(true))
            .expect("current")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let ended = firefox
            .request(Method::DELETE, &format!("/api/sessions/{chrome_id}"))
            .accept_json()
            .csrf()
            .send()
            .await;
        assert_eq!(ended.status, StatusCode::OK);
        again.logout().await;

        assert_eq!(
            events(&firefox).await,
            vec![
                ev("sign_out", None),
                ev("session_revoked", None),
                ev("new_device", None),
                ev("sign_in", Some("password")),
                ev("sign_in", Some("password")),
                ev("sign_in_failed", None),
                ev("sign_in", Some("password")),
            ]
        );
        // A failed attempt carries the device it came from.
        let response = firefox.get("/api/activity").accept_json().send().await;
        let failed = &response.response()["activity"][5];
        assert_eq!(
            failed["device"].as_str().map(|d| d.starts_with("Chrome")),
            Some(true)
        );
        assert_eq!(failed["ip"], "127.0.0.1");
        // Subscribers got the same events, oldest first.
        let first = hook.recv().await.expect("event");
        assert_eq!(first.event, "sign_in");
        assert_eq!(hook.recv().await.expect("event").event, "sign_in_failed");

        // Bob sees only his own.
        let bob = app.logged_in("bob@example.com").await;
        assert_eq!(events(&bob).await, vec![ev("sign_in", Some("password"))]);
    }
);

backend_test!(
    the_new_device_mail_can_be_turned_off,
    &[("SECURITY_NEW_DEVICE_NOTIFICATION", "false")],
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        sign_in(&app, "ann@example.com", FIREFOX).await;
        let chrome = sign_in(&app, "ann@example.com", CHROME).await;
        app.assert_no_mail_to("ann@example.com").await;
        assert!(!events(&chrome).await.contains(&ev("new_device", None)));
    }
);

backend_test!(
    the_activity_pages_with_a_cursor,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        for _ in 0..3 {
            app.client()
                .post("/login")
                .json(&json!({"email": "ann@example.com", "password": "wrong"}))
                .send()
                .await;
        }
        let first = client
            .get("/api/activity?limit=2")
            .accept_json()
            .send()
            .await;
        let body = first.response();
        assert_eq!(body["activity"].as_array().map(Vec::len), Some(2));
        let next = body["next"].as_i64().expect("next");
        let second = client
            .get(&format!("/api/activity?limit=2&before={next}"))
            .accept_json()
            .send()
            .await
            .response();
        assert_eq!(second["activity"].as_array().map(Vec::len), Some(2));
        assert_eq!(second["next"], Value::Null);
        assert_eq!(second["activity"][1]["event"], "sign_in");
        let ids: Vec<i64> = body["activity"]
            .as_array()
            .into_iter()
            .chain(second["activity"].as_array())
            .flatten()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
        let bad = client
            .get("/api/activity?before=x")
            .accept_json()
            .send()
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            app.client()
                .get("/api/activity")
                .accept_json()
                .send()
                .await
                .status,
            StatusCode::UNAUTHORIZED
        );
    }
);

backend_test!(
    signing_out_everywhere_else_and_changing_the_password_are_recorded,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let other = sign_in(&app, "ann@example.com", CHROME).await;
        let response = client
            .post("/api/sessions/revoke-others")
            .json_content_type()
            .csrf()
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert!(response.response()["csrf_token"].is_string());
        assert_eq!(other.me().await.status, StatusCode::UNAUTHORIZED);
        let changed = client
            .post(crate::harness::CHANGE_URL)
            .json(&json!({"password": PASSWORD, "new_password": "a whole new passphrase", "new_password_confirm": "a whole new passphrase"}))
            .csrf()
            .send()
            .await;
        assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
        let got = events(&client).await;
        assert_eq!(got[0], ev("password_changed", None), "{got:?}");
        assert_eq!(got[1], ev("other_sessions_revoked", None), "{got:?}");
    }
);

backend_test!(
    the_export_has_the_account_and_activity_but_no_secret_and_needs_a_fresh_sign_in,
    GENERIC,
    async |app: TestApp| {
        let client = sign_in_confirmed(&app).await;
        let response = client.get("/api/account/export").accept_json().send().await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert!(
            response
                .header("content-disposition")
                .is_some_and(|d| d.contains("attachment") && d.contains(".json"))
        );
        let text = response.text();
        let doc: Value = serde_json::from_str(&text).expect("JSON document");
        assert_eq!(doc["format"], "rampart-account-export");
        assert_eq!(doc["version"], 1);
        assert_eq!(doc["account"]["email"], "ann@example.com");
        assert_eq!(doc["roles"], json!(["User"]));
        assert_eq!(doc["providers"], json!([]));
        assert_eq!(doc["passkeys"], json!([]));
        assert_eq!(doc["sessions"].as_array().map(Vec::len), Some(1));
        assert_eq!(doc["activity"][0]["event"], "sign_in");
        let user = app.user("ann@example.com").await;
        let hash = user.password.expect("hash");
        assert!(!text.contains(&hash), "no password hash");
        assert!(!text.contains(&user.fs_uniquifier), "no uniquifier");
        for secret in [
            "password",
            "fs_uniquifier",
            "tf_totp_secret",
            "mf_recovery_codes",
        ] {
            assert!(
                doc["account"].get(secret).is_none(),
                "no {secret} in the account"
            );
        }

        // A stale sign-in must prove the password again first.
        app.advance(Duration::from_secs(25 * 3600));
        let stale = client.get("/api/account/export").accept_json().send().await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());
    }
);

async fn sign_in_confirmed(app: &TestApp) -> TestClient {
    app.signed_up("ann@example.com").await;
    sign_in(app, "ann@example.com", FIREFOX).await
}

backend_test!(
    old_activity_is_purged_after_the_retention,
    &[("SECURITY_ACTIVITY_RETENTION", "1 day")],
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        assert_eq!(events(&client).await.len(), 1);
        app.advance(Duration::from_secs(2 * 24 * 3600));
        assert_eq!(app.security.purge_old_activity().await.expect("purge"), 1);
        let user = app.user("ann@example.com").await;
        assert!(
            app.datastore()
                .activity_of_user(user.id, None, 10)
                .await
                .expect("list")
                .is_empty()
        );
    }
);

/// Links the provider account `(provider, subject)` to `user_id` as social sign-in does, with
/// the address the provider gave, at `at` (and last used then when `used`).
async fn link_provider(
    app: &TestApp,
    user_id: i64,
    (provider, subject, email): (&str, &str, Option<&str>),
    at: time::PrimitiveDateTime,
    used: bool,
) {
    let sql = "INSERT INTO \"rampart_oauth_link\" (\"provider\", \"subject\", \"user_id\", \
               \"email\", \"created_at\", \"last_used_at\") VALUES ($1, $2, $3, $4, $5, $6)";
    let last = used.then_some(at);
    match app.datastore().pool() {
        rampart::DbPool::Sqlite(pool) => sqlx::query(sql)
            .bind(provider)
            .bind(subject)
            .bind(user_id)
            .bind(email)
            .bind(at)
            .bind(last)
            .execute(pool)
            .await
            .map(|_| ()),
        rampart::DbPool::Postgres(pool) => sqlx::query(sql)
            .bind(provider)
            .bind(subject)
            .bind(user_id)
            .bind(email)
            .bind(at)
            .bind(last)
            .execute(pool)
            .await
            .map(|_| ()),
    }
    .expect("insert the link");
}

backend_test!(
    the_export_lists_the_linked_providers_without_their_subjects,
    GENERIC,
    async |app: TestApp| {
        let client = sign_in_confirmed(&app).await;
        app.signed_up("bob@example.com").await;
        let ann = app.user("ann@example.com").await;
        let bob = app.user("bob@example.com").await;
        link_provider(
            &app,
            ann.id,
            ("github", "gh-subject-4711", Some("ann@users.example")),
            time::macros::datetime!(2026-11-02 10:00:00),
            true,
        )
        .await;
        link_provider(
            &app,
            ann.id,
            ("acme", "acme-subject-0815", None),
            time::macros::datetime!(2026-11-03 11:30:00),
            false,
        )
        .await;
        link_provider(
            &app,
            bob.id,
            ("github", "gh-subject-bob", Some("bob@example.com")),
            time::macros::datetime!(2026-11-04 09:00:00),
            true,
        )
        .await;
        let response = client.get("/api/account/export").accept_json().send().await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let text = response.text();
        let doc: Value = serde_json::from_str(&text).expect("JSON document");
        assert_eq!(
            doc["providers"],
            json!([
                {"provider": "github", "email": "ann@users.example",
                 "linked_at": "2026-11-02T10:00:00", "last_used_at": "2026-11-02T10:00:00"},
                {"provider": "acme", "email": null,
                 "linked_at": "2026-11-03T11:30:00", "last_used_at": null},
            ])
        );
        assert!(!text.contains("subject-"), "no provider subject: {text}");
    }
);

const CODE_AND_TWO_FACTOR: &[(&str, &str)] = &[
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_US_ENABLED_METHODS", "password, email"),
];

/// The code of the next "Verification Code" mail to `email`.
async fn verification_code(app: &TestApp, email: &str) -> String {
    let mut mail = app.mail_to(email).await;
    while mail.subject.starts_with("Two-factor sign-in is") {
        mail = app.mail_to(email).await;
    }
    assert_eq!(mail.subject, "Verification Code");
    let marker = "using the following code: ";
    let start = mail.text.find(marker).expect("code in the mail") + marker.len();
    mail.text[start..start + 6].to_owned()
}

backend_test!(
    a_sign_in_finished_by_a_second_factor_is_recorded_with_its_first_factor,
    CODE_AND_TWO_FACTOR,
    async |app: TestApp| {
        let (client, secret) = crate::two_factor::with_authenticator(&app, "ann@example.com").await;
        // The setup's event carries the device it was made from.
        let response = client.get("/api/activity").accept_json().send().await;
        let enabled = response.response()["activity"]
            .as_array()
            .expect("activity")
            .iter()
            .find(|e| e["event"] == "two_factor_enabled")
            .cloned()
            .expect("two_factor_enabled");
        assert_eq!(enabled["ip"], "127.0.0.1", "{enabled}");
        assert!(enabled["device"].is_string(), "{enabled}");
        let setup = client
            .post("/us-setup")
            .json(&json!({"chosen_method": "email"}))
            .csrf()
            .send()
            .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        let state = setup.response()["state"]
            .as_str()
            .expect("state")
            .to_owned();
        let code = verification_code(&app, "ann@example.com").await;
        let done = client
            .post(&format!("/us-setup/{state}"))
            .json(&json!({ "passcode": code }))
            .csrf()
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        client.logout().await;

        // A mailed code, then the authenticator: a sign-in by code.
        let browser = app.client();
        let sent = browser
            .post("/us-signin/send-code")
            .json(&json!({"identity": "ann@example.com", "chosen_method": "email"}))
            .header("user-agent", FIREFOX)
            .send()
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
        let code = verification_code(&app, "ann@example.com").await;
        let first = browser
            .post("/us-signin")
            .json(&json!({"identity": "ann@example.com", "passcode": code}))
            .header("user-agent", FIREFOX)
            .send()
            .await;
        assert_eq!(first.response()["tf_required"], true, "{}", first.text());
        app.advance(Duration::from_secs(30));
        let code = rampart::totp::code_at(
            &secret,
            u64::try_from(app.clock.now().unix_timestamp()).expect("after 1970"),
        )
        .expect("code");
        let second = browser
            .post("/tf-validate")
            .json(&json!({ "code": code }))
            .header("user-agent", FIREFOX)
            .send()
            .await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.text());
        let newest_sign_in = |list: Vec<(String, Option<String>)>| {
            list.into_iter().find(|(event, _)| event == "sign_in")
        };
        assert_eq!(
            newest_sign_in(events(&browser).await),
            Some(ev("sign_in", Some("code")))
        );
        let listed = sessions(&browser, FIREFOX).await;
        let mine = listed
            .iter()
            .find(|s| s["current"] == json!(true))
            .expect("current");
        assert_eq!(mine["method"], "code");

        // A password, then the authenticator: still a password sign-in.
        browser.logout().await;
        app.advance(Duration::from_secs(30));
        let again = app.client();
        let first = again.login("ann@example.com", PASSWORD).await;
        assert_eq!(first.response()["tf_required"], true, "{}", first.text());
        let code = rampart::totp::code_at(
            &secret,
            u64::try_from(app.clock.now().unix_timestamp()).expect("after 1970"),
        )
        .expect("code");
        let second = again
            .post("/tf-validate")
            .json(&json!({ "code": code }))
            .send()
            .await;
        assert_eq!(second.status, StatusCode::OK, "{}", second.text());
        assert_eq!(
            newest_sign_in(events(&again).await),
            Some(ev("sign_in", Some("password")))
        );
    }
);

backend_test!(
    a_wrong_second_factor_or_one_time_code_is_a_failed_sign_in,
    CODE_AND_TWO_FACTOR,
    async |app: TestApp| {
        let (client, secret) = crate::two_factor::with_authenticator(&app, "ann@example.com").await;
        let browser = crate::two_factor::pending_login(&app, &client, "ann@example.com").await;
        let wrong = browser
            .post("/tf-validate")
            .json(&json!({ "code": "000000" }))
            .header("user-agent", CHROME)
            .send()
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        let code = rampart::totp::code_at(
            &secret,
            u64::try_from(app.clock.now().unix_timestamp()).expect("after 1970"),
        )
        .expect("code");
        let right = browser
            .post("/tf-validate")
            .json(&json!({ "code": code }))
            .send()
            .await;
        assert_eq!(right.status, StatusCode::OK, "{}", right.text());
        let got = events(&browser).await;
        assert_eq!(got[0], ev("sign_in", Some("password")), "{got:?}");
        assert_eq!(got[1], ev("sign_in_failed", None), "{got:?}");
        let listed = browser.get("/api/activity").accept_json().send().await;
        let failed = &listed.response()["activity"][1];
        assert_eq!(
            failed["device"].as_str().map(|d| d.starts_with("Chrome")),
            Some(true),
            "{failed}"
        );
        assert_eq!(failed["actor_id"], Value::Null, "{failed}");

        // A wrong one-time code at the unified sign-in is one too.
        let other = app.client();
        let refused = other
            .post("/us-signin")
            .json(&json!({"identity": "ann@example.com", "passcode": "123456"}))
            .send()
            .await;
        assert_eq!(
            refused.status,
            StatusCode::BAD_REQUEST,
            "{}",
            refused.text()
        );
        let got = events(&browser).await;
        assert_eq!(got[0], ev("sign_in_failed", None), "{got:?}");
    }
);

backend_test!(
    ending_sessions_needs_a_fresh_sign_in,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let other = sign_in(&app, "ann@example.com", CHROME).await;
        let other_id = sessions(&other, CHROME)
            .await
            .into_iter()
            .find(|s| s["current"] == json!(true))
            .expect("current")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        app.advance(Duration::from_secs(25 * 3600));
        let stale = client
            .request(Method::DELETE, &format!("/api/sessions/{other_id}"))
            .accept_json()
            .csrf()
            .send()
            .await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());
        assert_eq!(stale.response()["reauth_required"], true);
        let stale = client
            .post("/api/sessions/revoke-others")
            .json_content_type()
            .csrf()
            .send()
            .await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());
        // Nothing ended, nothing recorded.
        assert_eq!(sessions(&other, CHROME).await.len(), 2);
        assert!(
            !events(&client)
                .await
                .iter()
                .any(|(e, _)| e.contains("revoked"))
        );

        // The password again, then it ends at once.
        let verified = client
            .post("/verify")
            .json(&json!({ "password": PASSWORD }))
            .csrf()
            .send()
            .await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
        let ended = client
            .request(Method::DELETE, &format!("/api/sessions/{other_id}"))
            .accept_json()
            .csrf()
            .send()
            .await;
        assert_eq!(ended.status, StatusCode::OK, "{}", ended.text());
        assert_eq!(other.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

/// The number of events about `user_id`.
async fn event_count(app: &TestApp, user_id: i64) -> usize {
    app.datastore()
        .activity_of_user(user_id, None, 1000)
        .await
        .expect("activity")
        .len()
}

backend_test!(
    a_change_and_its_record_are_written_together_or_not_at_all,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        app.signed_up("bob@example.com").await;
        let ann = app.user("ann@example.com").await;
        let store = app.datastore();
        let now = {
            let at = app.clock.now();
            time::PrimitiveDateTime::new(at.date(), at.time())
        };
        let activity = |event| rampart::NewActivity {
            user_id: ann.id,
            actor_id: Some(ann.id),
            event,
            device: None,
        };
        let before = event_count(&app, ann.id).await;

        // Refused writes leave no record.
        let taken = store
            .set_email_recorded(
                ann.id,
                "BOB@example.com",
                now,
                &activity(rampart::ActivityEvent::EmailChanged),
            )
            .await
            .expect_err("taken");
        assert!(taken.is_conflict(), "{taken:?}");
        let unknown_role = store
            .change_role_recorded(
                ann.id,
                "Ghost",
                true,
                now,
                &activity(rampart::ActivityEvent::RoleAdded {
                    role: "Ghost".into(),
                }),
            )
            .await
            .expect_err("no such role");
        assert!(unknown_role.is_not_found(), "{unknown_role:?}");
        let not_had = store
            .change_role_recorded(
                ann.id,
                "Admin",
                false,
                now,
                &activity(rampart::ActivityEvent::RoleRemoved {
                    role: "Admin".into(),
                }),
            )
            .await
            .expect("remove");
        assert_eq!(not_had, None);
        assert_eq!(event_count(&app, ann.id).await, before);

        // Done writes have exactly their record.
        store
            .set_email_recorded(
                ann.id,
                "ann.new@example.com",
                now,
                &activity(rampart::ActivityEvent::EmailChanged),
            )
            .await
            .expect("changed");
        store
            .set_two_factor_recorded(
                ann.id,
                None,
                None,
                now,
                &activity(rampart::ActivityEvent::TwoFactorDisabled),
            )
            .await
            .expect("two-factor off");
        store
            .set_recovery_codes_recorded(
                ann.id,
                Some("[]"),
                now,
                &activity(rampart::ActivityEvent::RecoveryCodesGenerated),
            )
            .await
            .expect("codes");
        store
            .set_active_recorded(
                ann.id,
                false,
                now,
                &activity(rampart::ActivityEvent::AccountDeactivated),
            )
            .await
            .expect("deactivated");
        let listed = store
            .activity_of_user(ann.id, None, 10)
            .await
            .expect("activity");
        let names: Vec<&str> = listed.iter().map(|a| a.event.as_str()).collect();
        assert_eq!(
            names[..4],
            [
                "account_deactivated",
                "recovery_codes_generated",
                "two_factor_disabled",
                "email_changed"
            ]
        );
        assert_eq!(event_count(&app, ann.id).await, before + 4);
        let changed = app.user("ann.new@example.com").await;
        assert!(!changed.active);
    }
);

backend_test!(
    changing_the_email_address_records_it_with_the_device,
    &[("SECURITY_CHANGE_EMAIL", "true")],
    async |app: TestApp| {
        let client = sign_in_confirmed(&app).await;
        let asked = client
            .post("/change-email")
            .json(&json!({"email": "ann.new@example.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
        let mail = app.mail_to("ann.new@example.com").await;
        let link = rampart::find_link(&mail.text, "/change-email/").expect("link");
        let opened = client
            .get(link.trim_start_matches("http://rampart.test"))
            .header("user-agent", FIREFOX)
            .send()
            .await;
        assert!(opened.status.is_redirection(), "{}", opened.status);
        let listed = client.get("/api/activity").accept_json().send().await;
        let newest = &listed.response()["activity"][0];
        assert_eq!(newest["event"], "email_changed", "{newest}");
        assert_eq!(
            newest["device"].as_str().map(|d| d.starts_with("Firefox")),
            Some(true),
            "{newest}"
        );
    }
);
