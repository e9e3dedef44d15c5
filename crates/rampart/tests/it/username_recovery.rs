//! Username recovery (`SECURITY_USERNAME_RECOVERY`, Flask-Security 5's `/recover-username`):
//! the username is mailed to the account's address; the answer does not tell whether there is
//! one; CSRF on the form and the per-address mail limit apply.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, TestResponse, backend_test, csrf_in_html};

const ON: &[(&str, &str)] = &[("SECURITY_USERNAME_RECOVERY", "true")];
const EXACT_ON: &[(&str, &str)] = &[
    ("SECURITY_USERNAME_RECOVERY", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];
const SENT: &str = "If registered, your username will be sent to your email.";

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

async fn ask(app: &TestApp, email: &str) -> TestResponse {
    app.client()
        .post("/recover-username")
        .json(&json!({ "email": email }))
        .send()
        .await
}

backend_test!(
    the_username_is_mailed_and_the_answer_is_the_same_without_an_account,
    ON,
    async |app: TestApp| {
        signed_up_named(&app, "ann@example.com", "annie").await;
        app.signed_up("nameless@example.com").await;
        let page = app
            .client()
            .get("/recover-username")
            .accept_json()
            .send()
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert!(page.response()["csrf_token"].is_string());

        let known = ask(&app, "Ann@Example.com").await;
        assert_eq!(known.status, StatusCode::OK, "{}", known.text());
        let body = known.response();
        assert_eq!(
            body.as_object().expect("object").keys().collect::<Vec<_>>(),
            ["csrf_token"],
            "no user in the answer: {body}"
        );
        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Your requested username");
        assert!(mail.text.contains("username is: annie"), "{}", mail.text);
        assert!(
            mail.html.contains("<strong>annie</strong>"),
            "{}",
            mail.html
        );

        // No account, or one without a username: the same answer, and no mail.
        for email in ["nobody@example.com", "nameless@example.com"] {
            let unknown = ask(&app, email).await;
            assert_eq!(unknown.status, StatusCode::OK, "{}", unknown.text());
            assert_eq!(
                unknown
                    .response()
                    .as_object()
                    .expect("object")
                    .keys()
                    .collect::<Vec<_>>(),
                ["csrf_token"]
            );
            app.assert_no_mail_to(email).await;
        }
        // An invalid address is still a field error.
        ask(&app, "not an address")
            .await
            .assert_field_errors(&json!({"email": ["Invalid email address"]}));
    }
);

backend_test!(
    without_generic_responses_an_unknown_address_is_a_field_error,
    EXACT_ON,
    async |app: TestApp| {
        signed_up_named(&app, "ann@example.com", "annie").await;
        let known = ask(&app, "ann@example.com").await;
        assert_eq!(known.status, StatusCode::OK, "{}", known.text());
        app.mail_to("ann@example.com").await;
        ask(&app, "nobody@example.com")
            .await
            .assert_field_errors(&json!({"email": ["Specified user does not exist"]}));
        app.assert_no_mail_to("nobody@example.com").await;
    }
);

backend_test!(
    the_html_form_needs_its_csrf_field_and_says_the_same_either_way,
    ON,
    async |app: TestApp| {
        signed_up_named(&app, "ann@example.com", "annie").await;
        let login = app.client().get("/login").send().await;
        assert!(
            login.html().contains("href=\"/recover-username\""),
            "{}",
            login.text()
        );
        let client = app.client();
        let page = client.get("/recover-username").send().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert!(
            page.html().contains("Forgot your username?"),
            "{}",
            page.text()
        );
        let token = csrf_in_html(&page.text());

        let forged = client
            .post("/recover-username")
            .form(&[("email", "ann@example.com")])
            .send()
            .await;
        assert_eq!(forged.status, StatusCode::BAD_REQUEST);
        assert!(
            forged.html().contains("The CSRF token is missing."),
            "{}",
            forged.text()
        );
        app.assert_no_mail_to("ann@example.com").await;

        let mut answers = Vec::new();
        for email in ["ann@example.com", "nobody@example.com"] {
            let sent = client
                .post("/recover-username")
                .form(&[("email", email), ("csrf_token", &token)])
                .send()
                .await;
            assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
            let html = sent.html();
            assert!(html.contains(SENT), "{html}");
            answers.push(html.replace(email, "EMAIL"));
        }
        assert_eq!(answers[0], answers[1], "the pages must not tell them apart");
        let mail = app.mail_to("ann@example.com").await;
        assert!(mail.text.contains("annie"), "{}", mail.text);
    }
);

const LIMITED: &[(&str, &str)] = &[
    ("SECURITY_USERNAME_RECOVERY", "true"),
    ("SECURITY_MAIL_RATE_LIMIT", "2 per 10 minutes"),
];

backend_test!(
    the_mail_limit_of_the_address_applies,
    LIMITED,
    async |app: TestApp| {
        // Signing up mailed ann once; one recovery mail is the second.
        signed_up_named(&app, "ann@example.com", "annie").await;
        assert_eq!(ask(&app, "ann@example.com").await.status, StatusCode::OK);
        let limited = ask(&app, "ANN@example.com").await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        // Unknown addresses count too, so the limit tells nothing either.
        assert_eq!(ask(&app, "nobody@example.com").await.status, StatusCode::OK);
        assert_eq!(ask(&app, "nobody@example.com").await.status, StatusCode::OK);
        assert_eq!(
            ask(&app, "nobody@example.com").await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(app.mails_to("ann@example.com").len(), 2);
    }
);

backend_test!(
    the_feature_is_off_unless_configured,
    &[],
    async |app: TestApp| {
        let page = app.client().get("/recover-username").send().await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
        let login = app.client().get("/login").send().await;
        assert!(
            !login.html().contains("/recover-username"),
            "{}",
            login.text()
        );
    }
);
