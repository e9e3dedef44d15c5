//! Confirmation links (`GET /confirm/<token>`) and resending them (`GET|POST /confirm`).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{EXACT, GENERIC, PASSWORD, TestApp, backend_test};

backend_test!(
    a_valid_confirmation_link_confirms_and_redirects_to_login,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        client.register("ann@example.com", PASSWORD).await;
        assert!(app.user("ann@example.com").await.confirmed_at.is_none());
        let path = app.path_in_mail("ann@example.com", "/confirm/").await;
        // Always a redirect, JSON or not.
        let response = client.get(&path).accept_json().send().await;
        assert_eq!(response.location(), Some("/login"));
        assert!(app.user("ann@example.com").await.confirmed_at.is_some());
        app.client().login_ok("ann@example.com", PASSWORD).await;
    }
);

backend_test!(
    a_used_confirmation_link_redirects_to_confirm,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        client.register("ann@example.com", PASSWORD).await;
        let path = app.path_in_mail("ann@example.com", "/confirm/").await;
        assert_eq!(client.get(&path).send().await.location(), Some("/login"));
        assert_eq!(client.get(&path).send().await.location(), Some("/confirm"));
        assert_eq!(
            app.client()
                .get(&path)
                .accept_json()
                .send()
                .await
                .location(),
            Some("/confirm")
        );
    }
);

backend_test!(
    a_forged_confirmation_link_redirects_to_confirm,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        client.register("ann@example.com", PASSWORD).await;
        let path = app.path_in_mail("ann@example.com", "/confirm/").await;
        let token = path.trim_start_matches("/confirm/");
        for forged in [
            "garbage".to_owned(),
            format!("{token}x"),
            format!("x{}", &token[1..]),
            String::from(".eJwNyk.forged.signature"),
        ] {
            let response = client.get(&format!("/confirm/{forged}")).send().await;
            assert_eq!(response.location(), Some("/confirm"), "{forged}");
        }
        assert!(app.user("ann@example.com").await.confirmed_at.is_none());
    }
);

backend_test!(
    an_expired_confirmation_link_mails_a_new_one,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        client.register("ann@example.com", PASSWORD).await;
        let old = app.path_in_mail("ann@example.com", "/confirm/").await;
        app.advance(Duration::from_secs(5 * 86_400 + 60));
        assert_eq!(client.get(&old).send().await.location(), Some("/confirm"));
        assert!(app.user("ann@example.com").await.confirmed_at.is_none());
        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Please confirm your email");
        let fresh = crate::harness::path_of(
            &rampart::find_link(&mail.text, "/confirm/").expect("new link"),
        );
        assert_ne!(fresh, old);
        assert_eq!(client.get(&fresh).send().await.location(), Some("/login"));
        assert!(app.user("ann@example.com").await.confirmed_at.is_some());
    }
);

backend_test!(
    resending_mails_a_new_link_that_works,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        client.register("ann@example.com", PASSWORD).await;
        app.mail_to("ann@example.com").await;
        let page = client.get("/confirm").accept_json().send().await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.response()["csrf_token"].is_string());
        let response = client
            .post("/confirm")
            .json(&json!({"email": "ANN@example.com"}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        let body = response.response();
        assert_eq!(
            body.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["csrf_token"]
        );
        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Please confirm your email");
        let path =
            crate::harness::path_of(&rampart::find_link(&mail.text, "/confirm/").expect("link"));
        assert_eq!(client.get(&path).send().await.location(), Some("/login"));
    }
);

backend_test!(
    resending_for_a_confirmed_or_unknown_email_gives_fst_messages,
    EXACT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        client
            .post("/confirm")
            .json(&json!({"email": "ann@example.com"}))
            .send()
            .await
            .assert_field_errors(&json!({"email": ["Your email has already been confirmed."]}));
        client
            .post("/confirm")
            .json(&json!({"email": "nobody@example.com"}))
            .send()
            .await
            .assert_field_errors(&json!({"email": ["Specified user does not exist"]}));
        client
            .post("/confirm")
            .json(&json!({"email": "nope"}))
            .send()
            .await
            .assert_field_errors(&json!({"email": ["Invalid email address"]}));
    }
);

backend_test!(
    resending_does_not_reveal_whether_an_account_exists,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let known = client
            .post("/confirm")
            .json(&json!({"email": "ann@example.com"}))
            .send()
            .await;
        let unknown = client
            .post("/confirm")
            .json(&json!({"email": "nobody@example.com"}))
            .send()
            .await;
        assert_eq!(known.status, StatusCode::OK);
        assert_eq!(unknown.status, StatusCode::OK);
        let keys =
            |v: serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(known.response()), keys(unknown.response()));
        app.assert_no_mail_to("ann@example.com").await;
        app.assert_no_mail_to("nobody@example.com").await;
    }
);

backend_test!(
    resend_confirmation_and_confirm_email_work_without_http,
    EXACT,
    async |app: TestApp| {
        app.client().register("ann@example.com", PASSWORD).await;
        let _welcome = app.mail_to("ann@example.com").await;
        let link = |path: &str| format!("https://{}{path}", crate::harness::HOST);
        let unknown = rampart::resend_confirmation(&app.security, "nobody@example.com", &link)
            .await
            .expect("resend");
        assert!(unknown.is_err());
        rampart::resend_confirmation(&app.security, "ann@example.com", &link)
            .await
            .expect("resend")
            .expect("sent");
        let path = app.path_in_mail("ann@example.com", "/confirm/").await;
        let token = path.trim_start_matches("/confirm/");
        let confirmed = rampart::confirm_email(&app.security, token, &link)
            .await
            .expect("confirm");
        assert!(matches!(confirmed, rampart::ConfirmOutcome::Confirmed(_)));
        assert!(app.user("ann@example.com").await.confirmed_at.is_some());
        let again = rampart::resend_confirmation(&app.security, "ann@example.com", &link)
            .await
            .expect("resend");
        assert!(again.is_err(), "already confirmed");
    }
);
