//! Forgot password (`GET|POST /reset`) and reset (`GET|POST /reset/<token>`).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{EXACT, GENERIC, PASSWORD, TestApp, TestResponse, backend_test};

const NEW_PASSWORD: &str = "a brand new password";

/// Asks for a reset link for `email` and returns its path.
async fn reset_path(app: &TestApp, email: &str) -> String {
    let response = app
        .client()
        .post("/reset")
        .json(&json!({"email": email}))
        .send()
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    app.path_in_mail(email, "/reset/").await
}

async fn reset(app: &TestApp, path: &str, password: &str, confirm: &str) -> TestResponse {
    app.client()
        .post(path)
        .json(&json!({"password": password, "password_confirm": confirm}))
        .send()
        .await
}

fn invalid_token() -> Value {
    json!({"": ["Invalid reset password token."]})
}

backend_test!(
    forgot_password_mails_instructions_with_a_link,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let page = client.get("/reset").accept_json().send().await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.response()["csrf_token"].is_string());
        let response = client
            .post("/reset")
            .json(&json!({"email": "ann@example.com"}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let body = response.response();
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["csrf_token"]
        );
        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Password reset instructions");
        let link = rampart::find_link(&mail.text, "/reset/").expect("reset link");
        assert!(
            mail.text
                .contains(&format!("Use {link} to reset your password.")),
            "{}",
            mail.text
        );
        assert!(
            mail.text.contains("This link will expire in 1 day."),
            "{}",
            mail.text
        );
    }
);

backend_test!(
    a_reset_sets_the_password_without_signing_in,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let path = reset_path(&app, "ann@example.com").await;
        // The link opens an HTML form, even for JSON clients.
        let form = app.client().get(&path).accept_json().send().await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(
            form.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );

        let client = app.client();
        let response = client
            .post(&path)
            .json(&json!({"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(
            response.json(),
            json!({"meta": {"code": 200}, "response": {}})
        );
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            app.mail_to("ann@example.com").await.subject,
            "Your password has been reset"
        );
        assert_eq!(
            app.client().login("ann@example.com", PASSWORD).await.status,
            StatusCode::BAD_REQUEST
        );
        app.client().login_ok("ann@example.com", NEW_PASSWORD).await;
    }
);

backend_test!(a_reset_token_works_once, GENERIC, async |app: TestApp| {
    app.signed_up("ann@example.com").await;
    let path = reset_path(&app, "ann@example.com").await;
    assert_eq!(
        reset(&app, &path, NEW_PASSWORD, NEW_PASSWORD).await.status,
        StatusCode::OK
    );
    reset(&app, &path, "yet another password", "yet another password")
        .await
        .assert_field_errors(&invalid_token());
    assert_eq!(
        app.client().get(&path).send().await.location(),
        Some("/reset")
    );
    app.client().login_ok("ann@example.com", NEW_PASSWORD).await;
});

backend_test!(
    racing_uses_of_one_reset_link_set_one_password,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let path = reset_path(&app, "ann@example.com").await;
        let passwords: Vec<String> = (0..6).map(|i| format!("racing new password {i}")).collect();
        let attempts = passwords
            .iter()
            .map(|password| reset(&app, &path, password, password));
        let answers = futures_util::future::join_all(attempts).await;
        let winners: Vec<&String> = answers
            .iter()
            .zip(&passwords)
            .filter(|(answer, _)| answer.status == StatusCode::OK)
            .map(|(_, password)| password)
            .collect();
        assert_eq!(winners.len(), 1, "exactly one use of the link may win");
        for answer in answers.iter().filter(|a| a.status != StatusCode::OK) {
            answer.assert_field_errors(&invalid_token());
        }
        app.client().login_ok("ann@example.com", winners[0]).await;
        for loser in passwords.iter().filter(|p| *p != winners[0]) {
            assert_ne!(
                app.client().login("ann@example.com", loser).await.status,
                StatusCode::OK,
                "a losing password was not set"
            );
        }
    }
);

backend_test!(
    an_older_reset_token_dies_with_a_newer_reset,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let older = reset_path(&app, "ann@example.com").await;
        let newer = reset_path(&app, "ann@example.com").await;
        assert_eq!(
            reset(&app, &newer, NEW_PASSWORD, NEW_PASSWORD).await.status,
            StatusCode::OK
        );
        reset(&app, &older, "yet another password", "yet another password")
            .await
            .assert_field_errors(&invalid_token());
    }
);

backend_test!(
    a_forged_reset_token_is_refused,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let path = reset_path(&app, "ann@example.com").await;
        for forged in [format!("{path}x"), "/reset/garbage".to_owned()] {
            let response = reset(&app, &forged, NEW_PASSWORD, NEW_PASSWORD).await;
            assert_eq!(
                response.json(),
                json!({"meta": {"code": 400}, "response": {
                    "errors": ["Invalid reset password token."],
                    "field_errors": {"": ["Invalid reset password token."]}}})
            );
            assert_eq!(
                app.client().get(&forged).send().await.location(),
                Some("/reset")
            );
        }
        app.client().login_ok("ann@example.com", PASSWORD).await;
    }
);

backend_test!(
    an_expired_reset_link_is_refused_and_a_new_one_mailed,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let path = reset_path(&app, "ann@example.com").await;
        app.advance(Duration::from_secs(86_400 + 60));
        let response = reset(&app, &path, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        let errors = response.response()["field_errors"][""].clone();
        assert!(
            errors[0]
                .as_str()
                .is_some_and(|m| m.starts_with("You did not reset your password within 1 day.")),
            "{errors}"
        );
        let fresh = app.path_in_mail("ann@example.com", "/reset/").await;
        assert_ne!(fresh, path);
        // Opening the expired link in a browser also redirects and mails a fresh one.
        assert_eq!(
            app.client().get(&path).send().await.location(),
            Some("/reset")
        );
        app.path_in_mail("ann@example.com", "/reset/").await;
        assert_eq!(
            reset(&app, &fresh, NEW_PASSWORD, NEW_PASSWORD).await.status,
            StatusCode::OK
        );
        app.client().login_ok("ann@example.com", NEW_PASSWORD).await;
    }
);

backend_test!(
    reset_validates_the_new_password,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let path = reset_path(&app, "ann@example.com").await;
        reset(&app, &path, NEW_PASSWORD, "something else")
            .await
            .assert_field_errors(&json!({"password_confirm": ["Passwords do not match"]}));
        reset(&app, &path, "short", "short")
            .await
            .assert_field_errors(&json!({"password": ["Password must be at least 8 characters"]}));
        // The token survives failed attempts.
        assert_eq!(
            reset(&app, &path, NEW_PASSWORD, NEW_PASSWORD).await.status,
            StatusCode::OK
        );
    }
);

backend_test!(
    a_reset_signs_out_every_session_and_kills_every_token,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let session = app.client();
        session.login_ok("ann@example.com", PASSWORD).await;
        let token = app.auth_token("ann@example.com").await;
        let path = reset_path(&app, "ann@example.com").await;
        assert_eq!(
            reset(&app, &path, NEW_PASSWORD, NEW_PASSWORD).await.status,
            StatusCode::OK
        );
        assert_eq!(session.me().await.status, StatusCode::UNAUTHORIZED);
        let by_token = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("Authentication-Token", &token)
            .send()
            .await;
        assert_eq!(by_token.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    forgot_password_for_an_unknown_email_gives_fst_messages,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        client
            .post("/reset")
            .json(&json!({"email": "nobody@example.com"}))
            .send()
            .await
            .assert_field_errors(&json!({"email": ["Specified user does not exist"]}));
        client
            .post("/reset")
            .json(&json!({"email": "nope"}))
            .send()
            .await
            .assert_field_errors(&json!({"email": ["Invalid email address"]}));
    }
);

backend_test!(
    forgot_password_does_not_reveal_whether_an_account_exists,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let known = client
            .post("/reset")
            .json(&json!({"email": "ann@example.com"}))
            .send()
            .await;
        let unknown = client
            .post("/reset")
            .json(&json!({"email": "nobody@example.com"}))
            .send()
            .await;
        assert_eq!(known.status, StatusCode::OK);
        assert_eq!(unknown.status, StatusCode::OK);
        let keys = |v: Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(known.response()), keys(unknown.response()));
        assert_eq!(
            app.mail_to("ann@example.com").await.subject,
            "Password reset instructions"
        );
        app.assert_no_mail_to("nobody@example.com").await;
    }
);

const TRUSTED: &[(&str, &str)] = &[("TRUSTED_HOSTS", "rampart.test, .example.org")];

backend_test!(
    with_trusted_hosts_a_forged_host_cannot_steer_the_reset_link,
    TRUSTED,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        // Reset poisoning: the attacker asks for ann's link with their own Host.
        let forged = app
            .client()
            .post("/reset")
            .json(&json!({"email": "ann@example.com"}))
            .header("host", "evil.example.com")
            .send()
            .await;
        forged.assert_errors(
            StatusCode::BAD_REQUEST,
            &["The browser (or proxy) sent a request that this server could not understand."],
        );
        let page = app
            .client()
            .get("/login")
            .header("host", "evil.example.com:5000")
            .send()
            .await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST);
        assert!(
            app.mails_to("ann@example.com")
                .iter()
                .all(|mail| !mail.text.contains("/reset/")),
            "no reset mail was sent"
        );

        // Trusted hosts (a subdomain of a `.domain` entry, any port) work as usual.
        let ok = app
            .client()
            .post("/reset")
            .json(&json!({"email": "ann@example.com"}))
            .header("host", "app.example.org:8443")
            .send()
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
        let link = app.link_in_mail("ann@example.com", "/reset/").await;
        assert!(
            link.starts_with("http://app.example.org:8443/reset/"),
            "{link}"
        );
    }
);

/// A template folder whose reset mail cannot be rendered (it includes a part that does not
/// exist); the folder lives while the value does.
struct UnrenderableResetMail(tempfile::TempDir);

#[expect(
    clippy::expect_used,
    reason = "a test helper: a step that cannot be done must fail the test at once, saying which"
)]
impl UnrenderableResetMail {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("template dir");
        let mail = dir.path().join("security/email/reset_instructions");
        std::fs::create_dir_all(&mail).expect("mail template dir");
        std::fs::write(
            mail.join("body.txt.j2"),
            "{% include \"security/email/no_such_part.txt\" %}",
        )
        .expect("mail template");
        Self(dir)
    }

    fn path(&self) -> &str {
        self.0.path().to_str().expect("UTF-8 path")
    }
}

// A reset mail that cannot be rendered: if only the known address's path signed and rendered
// it, the two answers would differ (a 500 for one, a 200 for the other). The settings are made
// in the test: the template folder is a temporary of the statement that runs the body, so it
// lives until the body is done.
backend_test!(
    forgot_password_does_the_same_work_for_known_and_unknown_addresses,
    &[("SECURITY_TEMPLATE_DIR", UnrenderableResetMail::new().path())],
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let ask = |email: &'static str| {
            let client = app.client();
            async move {
                client
                    .post("/reset")
                    .json(&json!({ "email": email }))
                    .send()
                    .await
            }
        };
        let known = ask("ann@example.com").await;
        assert_eq!(
            known.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{}",
            known.text()
        );
        for unknown in ["nobody@example.com", "NOBODY@example.org"] {
            let unknown = ask(unknown).await;
            assert_eq!(unknown.status, known.status, "{}", unknown.text());
            assert_eq!(unknown.response(), known.response());
        }
        app.assert_no_mail_to("ann@example.com").await;
    }
);

/// `SERVER_NAME` alone (no `TRUSTED_HOSTS`): every request is answered, links name the server.
const NAMED: &[(&str, &str)] = &[
    ("SERVER_NAME", "app.example.com:8443"),
    ("TRUSTED_HOSTS", ""),
];

backend_test!(
    with_server_name_a_forged_host_cannot_steer_the_reset_link,
    NAMED,
    async |app: TestApp| {
        app.signed_up("sam@example.com").await;
        for host in ["evil.example.com", "evil.example.com:5000", "rampart.test"] {
            let response = app
                .client()
                .post("/reset")
                .json(&json!({"email": "sam@example.com"}))
                .header("host", host)
                .send()
                .await;
            assert_eq!(response.status, StatusCode::OK, "{}", response.text());
            let link = app.link_in_mail("sam@example.com", "/reset/").await;
            assert!(
                link.starts_with("http://app.example.com:8443/reset/"),
                "Host {host}: {link}"
            );
        }
    }
);

backend_test!(
    reset_password_checks_the_token_and_the_policy_without_http,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let link = |path: &str| format!("https://{}{path}", crate::harness::HOST);
        let sent = rampart::forgot_password(&app.security, "ann@example.com", &link)
            .await
            .expect("forgot");
        assert!(sent.is_ok());
        let path = app.path_in_mail("ann@example.com", "/reset/").await;
        let token = path.trim_start_matches("/reset/");
        let reset =
            |password: &'static str| rampart::reset_password(&app.security, token, password);
        assert!(matches!(
            reset("short").await.expect("reset"),
            rampart::ResetOutcome::Refused(_)
        ));
        let rampart::ResetOutcome::Reset(user) = reset(NEW_PASSWORD).await.expect("reset") else {
            panic!("a good link resets");
        };
        assert_eq!(user.email, "ann@example.com");
        assert_eq!(
            app.mail_to("ann@example.com").await.subject,
            "Your password has been reset"
        );
        assert!(matches!(
            reset(NEW_PASSWORD).await.expect("reset"),
            rampart::ResetOutcome::Invalid
        ));
        app.client().login_ok("ann@example.com", NEW_PASSWORD).await;
    }
);
