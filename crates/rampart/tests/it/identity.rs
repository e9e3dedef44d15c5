//! Look-alike spellings of an email or username (issue 7): fullwidth letters, ligatures, an
//! internationalised domain and its punycode, mixed scripts and hidden marks are one account or
//! refused, on every way in (sign-up as JSON and form, login as JSON, form and HTTP Basic, reset,
//! confirmation resend, change of email).

use axum::http::StatusCode;
use base64::Engine;
use serde_json::json;

use crate::harness::{EXACT, GENERIC, PASSWORD, TestApp, TestClient, TestResponse, backend_test};

async fn sign_up(client: &TestClient, email: &str, username: Option<&str>) -> TestResponse {
    let mut body = json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD});
    if let Some(username) = username {
        body["username"] = json!(username);
    }
    client.post("/register").json(&body).send().await
}

/// Signs up and confirms through the link mailed to `canonical`.
async fn confirmed(app: &TestApp, email: &str, username: Option<&str>, canonical: &str) {
    let client = app.client();
    let response = sign_up(&client, email, username).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let path = app.path_in_mail(canonical, "/confirm/").await;
    assert_eq!(client.get(&path).send().await.location(), Some("/login"));
}

fn basic(identity: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{identity}:{PASSWORD}"));
    format!("Basic {encoded}")
}

backend_test!(
    look_alike_emails_are_refused_as_the_account_they_imitate,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        for (first, canonical, again) in [
            (
                "alice@example.com",
                "alice@example.com",
                "ａｌｉｃｅ@example.com",
            ),
            (
                "ｃａｒｏｌ@example.com",
                "carol@example.com",
                "carol@EXAMPLE.com",
            ),
            (
                "alice@exämple.com",
                "alice@xn--exmple-cua.com",
                "alice@xn--exmple-cua.com",
            ),
            (
                "dave@xn--exmple-cua.com",
                "dave@xn--exmple-cua.com",
                "DAVE@EXÄMPLE.COM",
            ),
            (
                "ﬁnance@example.com",
                "finance@example.com",
                "finance@example.com",
            ),
            (
                "billing@example.com",
                "billing@example.com",
                "billing＠ｅｘａｍｐｌｅ．ｃｏｍ",
            ),
        ] {
            let created = sign_up(&client, first, None).await;
            assert_eq!(
                created.status,
                StatusCode::OK,
                "{first}: {}",
                created.text()
            );
            assert_eq!(app.user(canonical).await.email, canonical);
            // The message shows the address as it would be kept (an ASCII local part keeps its
            // case).
            let shown = rampart::normalize_email(again).unwrap();
            assert!(shown.eq_ignore_ascii_case(canonical), "{again}: {shown}");
            sign_up(&client, again, None)
                .await
                .assert_field_errors(&json!({
                    "email": [format!("{shown} is already associated with an account.")]
                }));
        }
        assert_eq!(app.datastore().count_users().await.unwrap(), 6);
        for bad in [
            "alice@exa mple.com",
            "alice@[127.0.0.1]",
            "alice\u{200B}@example.com",
        ] {
            sign_up(&client, bad, None)
                .await
                .assert_field_errors(&json!({"email": ["Invalid email address"]}));
        }
    }
);

backend_test!(
    with_generic_responses_a_look_alike_sign_up_mails_the_owner_and_creates_nothing,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("alice@example.com").await;
        let response = sign_up(&app.client(), "ａｌｉｃｅ@ｅｘａｍｐｌｅ.com", None).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(app.mail_to("alice@example.com").await.subject, "Welcome");
        assert_eq!(app.datastore().count_users().await.unwrap(), 1);
    }
);

backend_test!(
    look_alike_usernames_are_refused_as_invalid_or_as_duplicates,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        assert_eq!(
            sign_up(&client, "a@example.com", Some("alice"))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            sign_up(&client, "b@example.com", Some("ADMIN"))
                .await
                .status,
            StatusCode::OK
        );
        for name in ["аlice", "ADMİN", "İstanbul", "ѕсоре", "рауpal", "ΑΝΝΑ"] {
            sign_up(&client, "c@example.com", Some(name))
                .await
                .assert_field_errors(
                    &json!({"username": ["Username contains illegal characters"]}),
                );
        }
        // A bare combining mark is not a letter or digit at all.
        sign_up(&client, "c@example.com", Some("admi\u{307}n"))
            .await
            .assert_field_errors(
                &json!({"username": ["Value entered is not valid for the field"]}),
            );
        for (name, canonical) in [
            ("ａｌｉｃｅ", "alice"),
            ("ALICE", "ALICE"),
            ("admın", "admin"),
        ] {
            sign_up(&client, "c@example.com", Some(name)).await.assert_field_errors(
                &json!({"username": [format!("{canonical} is already associated with an account.")]}),
            );
        }
        // One script, not imitating ASCII: accepted, and unique whatever its case.
        assert_eq!(
            sign_up(&client, "d@example.com", Some("Женя")).await.status,
            StatusCode::OK
        );
        sign_up(&client, "e@example.com", Some("ЖЕНЯ"))
            .await
            .assert_field_errors(
                &json!({"username": ["женя is already associated with an account."]}),
            );
        assert_eq!(app.datastore().count_users().await.unwrap(), 3);
    }
);

backend_test!(
    the_html_sign_up_form_refuses_a_mixed_script_username,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        let page = client.get("/register").send().await;
        let token = crate::harness::csrf_in_html(&page.text());
        let response = client
            .post("/register")
            .form(&[
                ("email", "ann@example.com"),
                ("username", "аlice"),
                ("password", PASSWORD),
                ("password_confirm", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert!(response.status.is_client_error() || response.status == StatusCode::OK);
        assert!(
            response
                .text()
                .contains("Username contains illegal characters"),
            "{}",
            response.text()
        );
        assert_eq!(app.datastore().count_users().await.unwrap(), 0);
    }
);

backend_test!(
    every_equivalent_spelling_signs_in_to_the_same_account,
    EXACT,
    async |app: TestApp| {
        confirmed(
            &app,
            "ｂｏｂ@Exämple.com",
            Some("Ｂｏｂｂｙ"),
            "bob@xn--exmple-cua.com",
        )
        .await;
        let user = app.user("bob@xn--exmple-cua.com").await;
        assert_eq!(user.username.as_deref(), Some("Bobby"));
        for identity in [
            "bob@xn--exmple-cua.com",
            "bob@exämple.com",
            "BOB@EXÄMPLE.COM",
            "ｂｏｂ＠ｅｘäｍｐｌｅ．ｃｏｍ",
            "bobby",
            "ＢＯＢＢＹ",
        ] {
            let client = app.client();
            client.login_ok(identity, PASSWORD).await;
            assert_eq!(
                client.me().await.response()["user"]["email"],
                user.email,
                "{identity}"
            );

            let basic = app
                .client()
                .get("/basic")
                .header("authorization", &basic(identity))
                .send()
                .await;
            assert_eq!(
                basic.status,
                StatusCode::OK,
                "basic {identity}: {}",
                basic.text()
            );
        }
        // The HTML form too.
        let client = app.client();
        let page = client.get("/login").send().await;
        let token = crate::harness::csrf_in_html(&page.text());
        let response = client
            .post("/login")
            .form(&[
                ("email", "ｂｏｂ@exämple.com"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert_eq!(response.status, StatusCode::FOUND, "{}", response.text());
        assert_eq!(client.me().await.response()["user"]["email"], user.email);
    }
);

backend_test!(
    reset_and_confirmation_resend_reach_the_account_by_any_spelling,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        assert_eq!(
            sign_up(&client, "ﬁona@exämple.com", None).await.status,
            StatusCode::OK
        );
        let canonical = "fiona@xn--exmple-cua.com";
        app.mail_to(canonical).await;
        let resent = client
            .post("/confirm")
            .json(&json!({"email": "ＦＩＯＮＡ@EXÄMPLE.com"}))
            .send()
            .await;
        assert_eq!(resent.status, StatusCode::OK, "{}", resent.text());
        app.path_in_mail(canonical, "/confirm/").await;

        let reset = client
            .post("/reset")
            .json(&json!({"email": "fiona@exa\u{308}mple.com"}))
            .send()
            .await;
        assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
        app.path_in_mail(canonical, "/reset/").await;
    }
);

backend_test!(
    a_change_of_email_to_a_look_alike_of_a_taken_address_is_refused,
    &[
        ("SECURITY_CHANGE_EMAIL", "true"),
        ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ],
    async |app: TestApp| {
        app.signed_up("finance@example.com").await;
        let client = app.logged_in("ann@example.com").await;
        let asked = client
            .post("/change-email")
            .json(&json!({"email": "ﬁnance@ｅｘａｍｐｌｅ.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(asked.status, StatusCode::BAD_REQUEST, "{}", asked.text());
        // A free address in another spelling is mailed, and stored, canonical.
        let asked = client
            .post("/change-email")
            .json(&json!({"email": "ａｎｎ@exämple.com"}))
            .csrf()
            .send()
            .await;
        assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
        let path = app
            .path_in_mail("ann@xn--exmple-cua.com", "/change-email/")
            .await;
        assert_eq!(
            app.client().get(&path).send().await.status,
            StatusCode::FOUND
        );
        assert_eq!(
            app.user("ann@exämple.com").await.email,
            "ann@xn--exmple-cua.com"
        );
    }
);
