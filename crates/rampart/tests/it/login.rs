//! `GET|POST /login`, `POST /logout`, trackable fields, remember-me and session rotation.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::harness::{EXACT, GENERIC, PASSWORD, TestApp, backend_test, csrf_in_html};

backend_test!(
    login_with_email_answers_the_fst_payload_and_sets_cookies,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let response = client.login("ann@example.com", PASSWORD).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.header("cache-control"), Some("private, no-store"));
        let body = response.response();
        let user = app.user("ann@example.com").await;
        assert_eq!(body["tf_required"], json!(false));
        assert_eq!(
            body["user"],
            json!({"email": "ann@example.com", "username": null, "uuid": user.fs_uniquifier, "roles": ["User"]})
        );
        let csrf = body["csrf_token"].as_str().expect("csrf_token");
        // XSRF-TOKEN carries the same token, readable by scripts.
        let xsrf = response.set_cookie("XSRF-TOKEN").expect("XSRF-TOKEN set");
        assert!(xsrf.starts_with(&format!("XSRF-TOKEN={csrf};")), "{xsrf}");
        assert!(
            xsrf.contains("Path=/") && xsrf.contains("SameSite=Strict"),
            "{xsrf}"
        );
        assert!(!xsrf.contains("HttpOnly"), "{xsrf}");
        let session = response.set_cookie("session").expect("session set");
        assert!(
            session.contains("HttpOnly") && session.contains("Path=/"),
            "{session}"
        );
        assert!(response.set_cookie("remember_token").is_none());
        assert_eq!(
            client.me().await.response()["user"]["email"],
            "ann@example.com"
        );
    }
);

backend_test!(
    login_with_username_ignores_case,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        client
            .post("/register")
            .json(&json!({"email": "ann@example.com", "username": "Annie", "password": PASSWORD, "password_confirm": PASSWORD}))
            .send()
            .await;
        let path = app.path_in_mail("ann@example.com", "/confirm/").await;
        client.get(&path).send().await;
        let response = client.login("aNNIE", PASSWORD).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.response()["user"]["username"], "Annie");
        // Email is case-insensitive too.
        app.client().login_ok("ANN@EXAMPLE.com", PASSWORD).await;
    }
);

backend_test!(
    login_failures_give_fst_exact_messages,
    EXACT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        client
            .login("ann@example.com", "wrong password")
            .await
            .assert_field_errors(&json!({"password": ["Invalid password"]}));
        client
            .login("nobody@example.com", PASSWORD)
            .await
            .assert_field_errors(&json!({"email": ["Specified user does not exist"]}));
        client
            .login("nobody", PASSWORD)
            .await
            .assert_field_errors(&json!({"username": ["Specified user does not exist"]}));
        let missing = client
            .post("/login")
            .json(&json!({"email": "ann@example.com"}))
            .send()
            .await;
        missing.assert_field_errors(&json!({"password": ["Password not provided"]}));
        let empty = client.post("/login").json(&json!({})).send().await;
        assert_eq!(empty.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            empty.response()["field_errors"]["password"],
            json!(["Password not provided"])
        );
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    login_failures_do_not_reveal_whether_the_user_exists,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let wrong = client.login("ann@example.com", "wrong password").await;
        let unknown = client.login("nobody@example.com", PASSWORD).await;
        let unknown_name = client.login("nobody", PASSWORD).await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
        let message = "Authentication failed - identity or password/passcode invalid";
        for response in [&wrong, &unknown, &unknown_name] {
            assert_eq!(response.status, StatusCode::BAD_REQUEST);
            let body = response.response();
            assert_eq!(body["errors"], json!([message]), "{body}");
            assert_eq!(body["field_errors"], json!({"": [message]}), "{body}");
        }
        assert_eq!(wrong.body, unknown.body);
        assert_eq!(wrong.body, unknown_name.body);
    }
);

backend_test!(
    login_with_an_unconfirmed_email_is_refused,
    EXACT,
    async |app: TestApp| {
        let client = app.client();
        client.register("ann@example.com", PASSWORD).await;
        client
            .login("ann@example.com", PASSWORD)
            .await
            .assert_field_errors(&json!({"email": ["Email requires confirmation."]}));
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    login_with_an_unconfirmed_email_is_refused_with_generic_responses,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        client.register("ann@example.com", PASSWORD).await;
        client
            .login("ann@example.com", PASSWORD)
            .await
            .assert_field_errors(&json!({"email": ["Email requires confirmation."]}));
        // A wrong password still gets the generic answer: nothing is revealed without the password.
        let wrong = client.login("ann@example.com", "wrong password").await;
        assert_eq!(
            wrong.response()["errors"],
            json!(["Authentication failed - identity or password/passcode invalid"])
        );
    }
);

backend_test!(
    login_to_an_inactive_account_is_refused,
    EXACT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let user = app.user("ann@example.com").await;
        let client = app.client();
        client.login_ok("ann@example.com", PASSWORD).await;
        app.datastore()
            .set_active(user.id, false, user.update_datetime)
            .await
            .unwrap();
        // The live session dies with the account.
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        app.client()
            .login("ann@example.com", PASSWORD)
            .await
            .assert_field_errors(&json!({"email": ["Account is disabled."]}));
    }
);

backend_test!(
    the_remember_cookie_is_set_only_when_asked_and_signs_in_a_new_session,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let plain = app.client();
        let response = plain.login_ok("ann@example.com", PASSWORD).await;
        assert!(response.set_cookie("remember_token").is_none());

        let remembered = app.client();
        let response = remembered
            .post("/login")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD, "remember": true}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let cookie = response
            .set_cookie("remember_token")
            .expect("remember_token");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        let token = remembered.cookie("remember_token").unwrap();

        // A browser that lost its session cookie is signed in again by the remember cookie alone.
        let returning = app.client();
        let me = returning
            .get("/api/me")
            .accept_json()
            .header("cookie", &format!("remember_token={token}"))
            .send()
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        assert_eq!(me.response()["user"]["email"], "ann@example.com");
        assert!(
            me.set_cookie("session").is_some(),
            "a new session is started"
        );

        // Logout deletes it, and a new uniquifier (password change or reset) kills it for good.
        let response = remembered.logout().await;
        let deleted = response
            .set_cookie("remember_token")
            .expect("remember_token deleted");
        assert!(deleted.contains("Max-Age=0"), "{deleted}");
        assert_eq!(remembered.me().await.status, StatusCode::UNAUTHORIZED);
        let user = app.user("ann@example.com").await;
        app.datastore()
            .set_uniquifier(user.id, "rotated-uniquifier", user.update_datetime)
            .await
            .unwrap();
        let stale = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("cookie", &format!("remember_token={token}"))
            .send()
            .await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    include_auth_token_returns_a_token_usable_by_header_and_query,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let response = app
            .client()
            .post("/login?include_auth_token")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let user = response.response()["user"].clone();
        let token = user["authentication_token"]
            .as_str()
            .expect("authentication_token")
            .to_owned();
        let mut keys: Vec<&String> = user.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["authentication_token", "email", "roles", "username", "uuid"]
        );

        let by_header = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("Authentication-Token", &token)
            .send()
            .await;
        assert_eq!(by_header.status, StatusCode::OK);
        assert_eq!(by_header.response()["user"]["method"], "token");
        let query: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        let by_query = app
            .client()
            .get(&format!("/api/me?auth_token={query}"))
            .accept_json()
            .send()
            .await;
        assert_eq!(by_query.status, StatusCode::OK);
        assert_eq!(by_query.response()["user"]["email"], "ann@example.com");

        // Without the flag, no token.
        let plain = app.client().login_ok("ann@example.com", PASSWORD).await;
        assert!(
            plain.response()["user"]
                .get("authentication_token")
                .is_none()
        );
    }
);

backend_test!(
    the_session_id_changes_on_login,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        // A visitor with a server-side session (a flash message put it there).
        client.get("/confirm/not-a-token").send().await;
        let page = client.get("/login").accept_json().send().await;
        assert_eq!(page.status, StatusCode::OK);
        let before = client
            .cookie("session")
            .expect("the flash message started a session");
        let csrf_before = client.csrf_token().expect("GET /login sets XSRF-TOKEN");
        client.login_ok("ann@example.com", PASSWORD).await;
        let after = client.cookie("session").expect("session after login");
        assert_ne!(before, after);
        assert_ne!(Some(csrf_before), client.csrf_token());
        // The pre-login session id is dead.
        let stale = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("cookie", &format!("session={before}"))
            .send()
            .await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    get_login_answers_a_csrf_token_and_sets_the_xsrf_cookie,
    GENERIC,
    async |app: TestApp| {
        let response = app.client().get("/login").accept_json().send().await;
        assert_eq!(response.status, StatusCode::OK);
        let body = response.response();
        let token = body["csrf_token"].as_str().expect("csrf_token");
        let cookie = response.set_cookie("XSRF-TOKEN").expect("XSRF-TOKEN");
        assert!(
            cookie.starts_with(&format!("XSRF-TOKEN={token};")),
            "{cookie}"
        );
    }
);

backend_test!(
    trackable_fields_are_updated_on_each_login_only,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let first = app.client();
        first.login_ok("ann@example.com", PASSWORD).await;
        let me = first.me().await.response()["user"].clone();
        assert_eq!(me["login_count"], 1);
        assert_eq!(me["current_login_ip"], "127.0.0.1");
        assert_eq!(me["last_login_ip"], json!(null));
        assert!(me["current_login_at"].is_string());
        assert_eq!(me["last_login_at"], me["current_login_at"]);

        // Failed logins don't count.
        app.client()
            .login("ann@example.com", "wrong password")
            .await;
        app.advance(std::time::Duration::from_secs(60));
        let second = app.client();
        second.login_ok("ann@example.com", PASSWORD).await;
        let again = second.me().await.response()["user"].clone();
        assert_eq!(again["login_count"], 2);
        assert_eq!(again["last_login_at"], me["current_login_at"]);
        assert_ne!(again["current_login_at"], me["current_login_at"]);
        assert_eq!(again["last_login_ip"], "127.0.0.1");
        assert_eq!(again["current_login_ip"], "127.0.0.1");
    }
);

backend_test!(
    a_json_next_outside_the_domain_is_refused,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        for next in ["http://evil.example.com/", "//evil.example.com/x"] {
            client
                .post("/login")
                .json(&json!({"email": "ann@example.com", "password": PASSWORD, "next": next}))
                .send()
                .await
                .assert_field_errors(
                    &json!({"next": ["Redirections outside the domain are forbidden"]}),
                );
        }
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        let local = client
            .post("/login")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD, "next": "/api/me"}))
            .send()
            .await;
        assert_eq!(local.status, StatusCode::OK);
    }
);

/// Signs in through the HTML form with `?next=` and returns the response.
async fn form_login(
    client: &crate::harness::TestClient,
    next: &str,
) -> crate::harness::TestResponse {
    let query: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    let page = client.get(&format!("/login?next={query}")).send().await;
    assert_eq!(page.status, StatusCode::OK);
    let token = csrf_in_html(&page.text());
    client
        .post(&format!("/login?next={query}"))
        .form(&[
            ("email", "ann@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await
}

backend_test!(
    a_form_login_follows_a_local_next_only,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let local = form_login(&app.client(), "/api/me").await;
        assert_eq!(local.location(), Some("/api/me"));

        for evil in ["http://evil.example.com/", "//evil.example.com/"] {
            let client = app.client();
            let response = form_login(&client, evil).await;
            assert_eq!(response.status, StatusCode::OK, "{evil}");
            assert!(
                response
                    .html()
                    .contains("Redirections outside the domain are forbidden"),
                "{}",
                response.text()
            );
            assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        }

        // A backslash is read as `/` by browsers: refused, not escaped.
        let backslash = form_login(&app.client(), "/\\evil.example.com").await;
        assert_eq!(backslash.status, StatusCode::OK);
        assert_eq!(backslash.location(), None);

        let none = app.client();
        let page = none.get("/login").send().await;
        let token = csrf_in_html(&page.text());
        let response = none
            .post("/login")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert_eq!(response.location(), Some("/"));
    }
);

backend_test!(
    a_failed_form_login_re_renders_the_form,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let token = csrf_in_html(&client.get("/login").send().await.text());
        let response = client
            .post("/login")
            .form(&[
                ("email", "ann@example.com"),
                ("password", "wrong password"),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK);
        let html = response.html();
        assert!(
            html.contains("Authentication failed - identity or password/passcode invalid"),
            "{html}"
        );
        assert!(
            html.contains("value=\"ann@example.com\""),
            "the identity is kept: {html}"
        );
        assert!(
            !html.contains("wrong password"),
            "the password is never echoed"
        );
    }
);

backend_test!(
    logout_clears_the_cookies_and_ends_the_session,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let session = client.cookie("session").unwrap();
        let response = client.logout().await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(
            response.json(),
            json!({"meta": {"code": 200}, "response": {}})
        );
        for name in ["session", "XSRF-TOKEN"] {
            let cookie = response
                .set_cookie(name)
                .unwrap_or_else(|| panic!("{name} deleted"));
            assert!(cookie.starts_with(&format!("{name}=;")), "{cookie}");
            assert!(cookie.contains("Max-Age=0"), "{cookie}");
            assert!(cookie.contains("Path=/"), "{cookie}");
        }
        assert!(
            response
                .set_cookie("XSRF-TOKEN")
                .unwrap()
                .contains("SameSite=Strict")
        );
        assert!(response.set_cookie("session").unwrap().contains("HttpOnly"));
        assert!(client.cookie("session").is_none());
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        // The old session id is dead on the server too.
        let replay = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("cookie", &format!("session={session}"))
            .send()
            .await;
        assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    logout_answers_200_when_not_signed_in_and_get_is_405,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        let response = client.logout().await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(
            response.json(),
            json!({"meta": {"code": 200}, "response": {}})
        );
        let get = client
            .request(Method::GET, "/logout")
            .accept_json()
            .send()
            .await;
        get.assert_errors(
            StatusCode::METHOD_NOT_ALLOWED,
            &["The method is not allowed for the requested URL."],
        );
        // A browser's form logout redirects.
        let form = app.logged_in("ann@example.com").await;
        let response = form.post("/logout").form(&[]).send().await;
        assert_eq!(response.location(), Some("/"));
        assert_eq!(form.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    authenticate_checks_a_sign_in_without_http,
    crate::rate_limit::IDENTITY_LIMIT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let security = &app.security;
        let check = async |identity: &str, password: &str| {
            rampart::authenticate(security, identity, password)
                .await
                .expect("authenticate")
        };
        match check("nobody@example.com", PASSWORD).await {
            rampart::SignIn::Refused(errors) => assert!(errors.has("email"), "{errors:?}"),
            other => panic!("unknown identity: {other:?}"),
        }
        match check("ann@example.com", "wrong password").await {
            rampart::SignIn::Refused(errors) => assert!(errors.has("password"), "{errors:?}"),
            other => panic!("wrong password: {other:?}"),
        }
        match check(" ann@example.com ", PASSWORD).await {
            rampart::SignIn::Ready(user) => assert_eq!(user.email, "ann@example.com"),
            other => panic!("right password: {other:?}"),
        }
        // The account's limit holds without a request: the fourth guess in a row is not checked.
        for _ in 0..3 {
            assert!(matches!(
                check("ann@example.com", "wrong password").await,
                rampart::SignIn::Refused(_)
            ));
        }
        assert!(matches!(
            check("ann@example.com", PASSWORD).await,
            rampart::SignIn::Limited(_)
        ));
    }
);
