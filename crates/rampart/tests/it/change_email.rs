//! Change of email address (`SECURITY_CHANGE_EMAIL`, CONTRACT.md "GET /change-email"): a link to
//! the new address, single use, expiring, no session needed to open it.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backend_test, csrf_in_html};

const ON: &[(&str, &str)] = &[
    ("SECURITY_CHANGE_EMAIL", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

backend_test!(
    a_new_address_is_confirmed_by_the_link_mailed_to_it,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/change-email").accept_json().send().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert_eq!(page.response()["current_email"], "ann@example.com");
        assert_eq!(page.response()["user"]["email"], "ann@example.com");

        let asked = client
            .post("/change-email")
            .json(&json!({"email": "Ann.New@example.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
        // Nothing changes until the link is opened.
        assert_eq!(asked.response()["current_email"], "ann@example.com");
        assert_eq!(app.user("ann@example.com").await.email, "ann@example.com");

        let mail = app.mail_to("Ann.New@example.com").await;
        assert_eq!(mail.subject, "Confirm your new email address");
        assert!(
            mail.text.contains("to confirm your new email address."),
            "{}",
            mail.text
        );
        assert!(
            mail.text.contains("This link will expire in 2 hours."),
            "{}",
            mail.text
        );
        assert!(
            mail.text
                .contains("Your currently registered email is ann@example.com."),
            "{}",
            mail.text
        );
        let link = rampart::find_link(&mail.text, "/change-email/").expect("link");
        let path = link.trim_start_matches("http://rampart.test");

        // The link works without a session.
        let opened = app.client().get(path).send().await;
        assert_eq!(opened.status, StatusCode::FOUND, "{}", opened.text());
        assert_eq!(opened.location(), Some("/"));
        assert_eq!(
            client.me().await.response()["user"]["email"],
            "Ann.New@example.com"
        );
        let notice = app.mail_to("ann@example.com").await;
        assert_eq!(notice.subject, "Your email address has been changed");
        assert!(
            notice
                .text
                .contains("changed from ann@example.com to Ann.New@example.com"),
            "{}",
            notice.text
        );
        let old = app.client().login("ann@example.com", PASSWORD).await;
        old.assert_field_errors(&json!({"email": ["Specified user does not exist"]}));
        app.client().login_ok("ann.new@example.com", PASSWORD).await;

        // Used again: refused, back to the form with a message.
        let again = app.client().get(path).send().await;
        assert_eq!(again.status, StatusCode::FOUND);
        assert_eq!(again.location(), Some("/change-email"));
        let forged = app.client().get("/change-email/not-a-token").send().await;
        assert_eq!(forged.location(), Some("/change-email"));

        // A link to a deactivated account changes nothing.
        let client = app.logged_in("bo@example.com").await;
        let asked = client
            .post("/change-email")
            .json(&json!({"email": "bo.new@example.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
        let path = app
            .path_in_mail("bo.new@example.com", "/change-email/")
            .await;
        let bo = app.user("bo@example.com").await;
        app.datastore()
            .set_active(bo.id, false, bo.update_datetime)
            .await
            .expect("deactivate");
        let refused = app.client().get(&path).send().await;
        assert_eq!(refused.location(), Some("/change-email"));
        assert_eq!(app.user("bo@example.com").await.email, "bo@example.com");
    }
);

backend_test!(
    taken_own_and_invalid_addresses_are_refused_with_field_errors,
    ON,
    async |app: TestApp| {
        app.signed_up("bob@example.com").await;
        let client = app.logged_in("ann@example.com").await;
        for (email, message) in [
            (
                "BOB@example.com",
                "BOB@example.com is already associated with an account.",
            ),
            (
                "ann@example.com",
                "ann@example.com is already associated with an account.",
            ),
            ("not an address", "Invalid email address"),
        ] {
            let refused = client
                .post("/change-email")
                .json(&json!({"email": email}))
                .csrf()
                .send()
                .await;
            refused.assert_field_errors(&json!({"email": [message]}));
        }
        // CSRF and a signed-in user are needed.
        let no_csrf = client
            .post("/change-email")
            .json(&json!({"email": "new@example.com"}))
            .send()
            .await;
        no_csrf.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF token is missing."]);
        let anonymous = app
            .client()
            .post("/change-email")
            .json(&json!({"email": "new@example.com"}))
            .send()
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        app.assert_no_mail_to("new@example.com").await;
    }
);

backend_test!(
    an_expired_link_or_one_whose_address_was_taken_meanwhile_changes_nothing,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        for email in ["late@example.com", "contested@example.com"] {
            let asked = client
                .post("/change-email")
                .json(&json!({"email": email}))
                .csrf()
                .send()
                .await;
            assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
        }
        let late = app.path_in_mail("late@example.com", "/change-email/").await;
        let contested = app
            .path_in_mail("contested@example.com", "/change-email/")
            .await;

        // Someone registers the contested address first.
        app.signed_up("contested@example.com").await;
        let browser = app.client();
        let refused = browser.get(&contested).send().await;
        assert_eq!(refused.location(), Some("/change-email"));
        assert_eq!(app.user("ann@example.com").await.email, "ann@example.com");

        app.advance(Duration::from_secs(2 * 3600 + 1));
        let expired = client.get(&late).send().await;
        assert_eq!(expired.location(), Some("/change-email"));
        let form = client.get("/change-email").send().await;
        assert!(
            form.html()
                .contains("Confirmation must be completed within 2 hours. Please start over."),
            "{}",
            form.text()
        );
        assert_eq!(app.user("ann@example.com").await.email, "ann@example.com");
    }
);

backend_test!(
    the_html_form_sends_the_link_and_says_so,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/change-email").send().await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.html().contains("ann@example.com"), "{}", page.text());
        let sent = client
            .post("/change-email")
            .form(&[
                ("email", "fresh@example.com"),
                ("csrf_token", &csrf_in_html(&page.text())),
            ])
            .send()
            .await;
        assert_eq!(sent.status, StatusCode::FOUND, "{}", sent.text());
        let after = client.get("/change-email").send().await;
        assert!(
            after.html().contains(
                "Instructions to confirm your new email address have been sent to fresh@example.com."
            ),
            "{}",
            after.text()
        );
        app.path_in_mail("fresh@example.com", "/change-email/")
            .await;
    }
);

backend_test!(
    the_feature_is_off_unless_configured,
    &[],
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/change-email").accept_json().send().await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
);

const GENERIC_ON: &[(&str, &str)] = &[("SECURITY_CHANGE_EMAIL", "true")];

backend_test!(
    with_generic_responses_a_taken_address_answers_as_a_free_one_and_its_owner_hears,
    GENERIC_ON,
    async |app: TestApp| {
        app.signed_up("bob@example.com").await;
        let client = app.logged_in("ann@example.com").await;
        let ask = |email: &'static str| {
            let client = &client;
            async move {
                client
                    .post("/change-email")
                    .json(&json!({ "email": email }))
                    .csrf()
                    .send()
                    .await
            }
        };
        let free = ask("free@example.com").await;
        let taken = ask("BOB@example.com").await;
        assert_eq!(free.status, StatusCode::OK, "{}", free.text());
        assert_eq!(taken.status, StatusCode::OK, "{}", taken.text());
        let without_csrf = |mut body: serde_json::Value| {
            body.as_object_mut().expect("object").remove("csrf_token");
            body
        };
        assert_eq!(
            without_csrf(free.response()),
            without_csrf(taken.response())
        );
        assert_eq!(
            app.mail_to("free@example.com").await.subject,
            "Confirm your new email address"
        );
        // The owner of the taken address is told, and gets no link.
        let notice = app.mail_to("bob@example.com").await;
        assert_eq!(notice.subject, "Someone tried to use your email address");
        assert!(
            notice.text.contains("already belongs to your account"),
            "{}",
            notice.text
        );
        assert!(
            rampart::find_link(&notice.text, "/change-email/").is_none(),
            "{}",
            notice.text
        );
        assert_eq!(app.user("bob@example.com").await.email, "bob@example.com");
        assert_eq!(app.user("ann@example.com").await.email, "ann@example.com");

        // The browser form says the same for both.
        let page = client.get("/change-email").send().await;
        let csrf = csrf_in_html(&page.text());
        for email in ["other@example.com", "bob@example.com"] {
            let sent = client
                .post("/change-email")
                .form(&[("email", email), ("csrf_token", &csrf)])
                .send()
                .await;
            assert_eq!(sent.status, StatusCode::FOUND, "{email}: {}", sent.text());
            assert_eq!(sent.location(), Some("/change-email"));
            let shown = client.get("/change-email").send().await;
            assert!(
                shown.html().contains(&format!(
                    "Instructions to confirm your new email address have been sent to {email}."
                )),
                "{email}: {}",
                shown.text()
            );
        }
    }
);

backend_test!(
    asking_to_change_the_address_is_counted_per_user,
    GENERIC_ON,
    async |app: TestApp| {
        // The harness turns the mail limit off: the fallback is 10 per 10 minutes.
        app.signed_up("bob@example.com").await;
        let client = app.logged_in("ann@example.com").await;
        for i in 0..10 {
            let email = if i % 2 == 0 {
                format!("try{i}@example.com")
            } else {
                "bob@example.com".to_owned()
            };
            let asked = client
                .post("/change-email")
                .json(&json!({ "email": email }))
                .csrf()
                .send()
                .await;
            assert_eq!(asked.status, StatusCode::OK, "{i}: {}", asked.text());
        }
        for email in ["next@example.com", "bob@example.com"] {
            let limited = client
                .post("/change-email")
                .json(&json!({ "email": email }))
                .csrf()
                .send()
                .await;
            assert_eq!(
                limited.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{}",
                limited.text()
            );
            assert!(limited.header("retry-after").is_some());
        }
        app.assert_no_mail_to("next@example.com").await;
    }
);

backend_test!(
    an_address_change_can_be_asked_and_confirmed_without_http,
    ON,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let user = app.user("ann@example.com").await;
        let link = |path: &str| format!("http://rampart.test{path}");
        rampart::request_email_change(&app.security, &user, "ann.new@example.com", &link)
            .await
            .expect("request")
            .expect("a free address is accepted");
        assert_eq!(app.user("ann@example.com").await.email, "ann@example.com");
        let path = app
            .path_in_mail("ann.new@example.com", "/change-email/")
            .await;
        let token = path.trim_start_matches("/change-email/");
        let outcome = rampart::confirm_email_change(&app.security, token)
            .await
            .expect("confirm");
        assert!(
            matches!(outcome, rampart::ChangeEmailOutcome::Changed(ref changed) if changed.email == "ann.new@example.com"),
            "{outcome:?}"
        );
        assert_eq!(
            app.user("ann.new@example.com").await.email,
            "ann.new@example.com"
        );
        // A taken address is refused when generic responses are off (ON turns them off).
        app.signed_up("bob@example.com").await;
        let ann = app.user("ann.new@example.com").await;
        let refused = rampart::request_email_change(&app.security, &ann, "bob@example.com", &link)
            .await
            .expect("request");
        assert!(refused.is_err(), "a taken address must be refused");
    }
);
