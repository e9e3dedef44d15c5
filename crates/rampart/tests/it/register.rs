//! `GET|POST /register` (CONTRACT.md §2 "POST /register").

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{EXACT, GENERIC, PASSWORD, TestApp, TestClient, TestResponse, backend_test};

async fn register_named(client: &TestClient, email: &str, username: &str) -> TestResponse {
    client
        .post("/register")
        .json(&json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD, "username": username}))
        .send()
        .await
}

backend_test!(
    registering_answers_the_user_payload_and_mails_a_confirmation_link,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        let response = client
            .post("/register")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": PASSWORD, "username": "annie"}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.header("cache-control"), Some("private, no-store"));
        let body = response.response();
        assert!(
            body["csrf_token"].as_str().is_some_and(|t| !t.is_empty()),
            "{body}"
        );
        let user = app.user("ann@example.com").await;
        assert_eq!(
            body["user"],
            json!({"email": "ann@example.com", "username": "annie", "uuid": user.fs_uniquifier, "roles": ["User"]})
        );
        let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["csrf_token", "user"]);

        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Welcome");
        assert_eq!(mail.from, "no-reply@fst-sample.local");
        let link = rampart::find_link(&mail.text, "/confirm/").expect("confirmation link");
        assert!(link.starts_with("http://rampart.test/confirm/"), "{link}");
        assert!(
            mail.text
                .contains(&format!("Use {link} to confirm your email address.")),
            "{}",
            mail.text
        );
        assert!(
            crate::harness::unescape_html(&mail.html).contains(&link),
            "{}",
            mail.html
        );

        // Not signed in: the email must be confirmed first.
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        assert!(user.confirmed_at.is_none());
    }
);

backend_test!(
    registering_with_generic_responses_does_not_echo_the_user,
    GENERIC,
    async |app: TestApp| {
        let response = app.client().register("ann@example.com", PASSWORD).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let body = response.response();
        assert!(body["csrf_token"].is_string(), "{body}");
        assert!(body.get("user").is_none(), "{body}");
        assert_eq!(app.mail_to("ann@example.com").await.subject, "Welcome");
        let roles = app
            .datastore()
            .user_roles(app.user("ann@example.com").await.id)
            .await
            .unwrap();
        assert_eq!(
            roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["User"]
        );
    }
);

backend_test!(
    a_new_user_gets_the_default_role_and_its_permissions,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let me = client.me().await.response();
        assert_eq!(me["user"]["roles"], json!(["User"]));
        assert_eq!(
            me["user"]["permissions"],
            json!(["user-read", "user-write"])
        );
    }
);

backend_test!(
    a_duplicate_email_is_refused_whatever_its_case,
    EXACT,
    async |app: TestApp| {
        app.client().register("ann@example.com", PASSWORD).await;
        let response = app.client().register("Ann@Example.COM", PASSWORD).await;
        response.assert_field_errors(
            &json!({"email": ["Ann@example.com is already associated with an account."]}),
        );
        assert_eq!(app.datastore().count_users().await.unwrap(), 1);
    }
);

backend_test!(
    a_duplicate_registration_gets_the_same_answer_as_a_new_one,
    GENERIC,
    async |app: TestApp| {
        let first = app.client().register("ann@example.com", PASSWORD).await;
        assert_eq!(app.mail_to("ann@example.com").await.subject, "Welcome");
        let again = app
            .client()
            .register("ANN@example.com", "another password")
            .await;
        assert_eq!(first.status, again.status);
        let (first, again) = (first.response(), again.response());
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&first), keys(&again));
        assert_eq!(app.datastore().count_users().await.unwrap(), 1);
        // The owner of the address is told instead.
        let notice = app.mail_to("ann@example.com").await;
        assert_eq!(notice.subject, "Welcome");
        assert!(
            notice.text.contains("already in our system"),
            "{}",
            notice.text
        );
        assert!(
            rampart::find_link(&notice.text, "/confirm/").is_none(),
            "{}",
            notice.text
        );
    }
);

backend_test!(
    an_invalid_or_missing_email_is_refused,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        for email in ["not-an-email", "ann@", "ann @example.com"] {
            client
                .register(email, PASSWORD)
                .await
                .assert_field_errors(&json!({"email": ["Invalid email address"]}));
        }
        client
            .post("/register")
            .json(&json!({"password": PASSWORD, "password_confirm": PASSWORD}))
            .send()
            .await
            .assert_field_errors(&json!({"email": ["Email not provided"]}));
    }
);

backend_test!(a_short_password_is_refused, EXACT, async |app: TestApp| {
    app.client()
        .register("ann@example.com", "short")
        .await
        .assert_field_errors(&json!({"password": ["Password must be at least 8 characters"]}));
});

backend_test!(
    a_mismatched_confirmation_is_refused,
    EXACT,
    async |app: TestApp| {
        app.client()
            .post("/register")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": "something else"}))
            .send()
            .await
            .assert_field_errors(&json!({"password_confirm": ["Passwords do not match"]}));
    }
);

backend_test!(
    weak_but_long_enough_passwords_are_accepted,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        assert_eq!(
            client
                .register("ann@example.com", "ann@example.com")
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            client.register("bob@example.com", "password").await.status,
            StatusCode::OK
        );
    }
);

backend_test!(
    usernames_follow_the_length_character_and_uniqueness_rules,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        register_named(&client, "a@example.com", "abc")
            .await
            .assert_field_errors(&json!({"username": ["Username must be at least 4 characters and less than 32 characters"]}));
        register_named(&client, "a@example.com", &"x".repeat(33))
            .await
            .assert_field_errors(&json!({"username": ["Username must be at least 4 characters and less than 32 characters"]}));
        register_named(&client, "a@example.com", "bad name!")
            .await
            .assert_field_errors(
                &json!({"username": ["Value entered is not valid for the field"]}),
            );
        assert_eq!(
            register_named(&client, "a@example.com", "annie")
                .await
                .status,
            StatusCode::OK
        );
        register_named(&client, "b@example.com", "ANNIE")
            .await
            .assert_field_errors(
                &json!({"username": ["ANNIE is already associated with an account."]}),
            );
    }
);

backend_test!(
    an_empty_body_reports_exactly_email_password_and_confirmation,
    EXACT,
    async |app: TestApp| {
        let response = app.client().post("/register").json(&json!({})).send().await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        let body = response.response();
        assert_eq!(
            body["field_errors"],
            json!({"email": ["Email not provided"], "password": ["Password not provided"], "password_confirm": ["Password not provided"]})
        );
        assert_eq!(
            body["errors"],
            json!([
                "Email not provided",
                "Password not provided",
                "Password not provided"
            ])
        );
    }
);

backend_test!(
    get_register_answers_a_csrf_token,
    GENERIC,
    async |app: TestApp| {
        let response = app.client().get("/register").accept_json().send().await;
        assert_eq!(response.status, StatusCode::OK);
        let body = response.response();
        assert!(body["csrf_token"].is_string(), "{body}");
    }
);

backend_test!(
    the_html_register_form_works_with_its_csrf_field,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        let page = client.get("/register").send().await;
        assert_eq!(page.status, StatusCode::OK);
        let token = crate::harness::csrf_in_html(&page.text());
        let response = client
            .post("/register")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert!(
            response.html().contains("ann@example.com"),
            "{}",
            response.text()
        );
        assert_eq!(app.mail_to("ann@example.com").await.subject, "Welcome");
    }
);

backend_test!(
    validate_and_register_user_work_without_http,
    EXACT,
    async |app: TestApp| {
        let link = |path: &str| format!("https://{}{path}", crate::harness::HOST);
        let mut short = rampart::FormInput::from_pairs([
            ("email", "ann@example.com"),
            ("password", "short"),
            ("password_confirm", "short"),
        ]);
        let refused = rampart::validate_registration(&app.security, &mut short)
            .await
            .expect("validate");
        assert!(refused.unwrap_err().has("password"));
        let mut input = rampart::FormInput::from_pairs([
            ("email", " ann@example.com "),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ]);
        let form = rampart::validate_registration(&app.security, &mut input)
            .await
            .expect("validate")
            .expect("valid");
        let rampart::RegisterOutcome::Created(user) =
            rampart::register_user(&app.security, form, &link)
                .await
                .expect("register")
        else {
            panic!("a new address registers");
        };
        assert_eq!(user.email, "ann@example.com");
        assert!(
            app.link_in_mail("ann@example.com", "/confirm/")
                .await
                .starts_with("https://")
        );
    }
);
