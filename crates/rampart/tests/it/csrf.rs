//! CSRF (CONTRACT.md §1 "CSRF"): session-authenticated mutating requests need the token in a
//! header; token-authenticated ones and anonymous JSON ones don't; HTML forms carry a field.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{GENERIC, PASSWORD, TestApp, backend_test, csrf_in_html};

backend_test!(
    a_session_post_without_the_csrf_header_is_refused,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let response = client.post("/api/echo").json(&json!({})).send().await;
        response.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF token is missing."]);
        // A csrf_token field in a JSON body is not accepted.
        let token = client.csrf_token().unwrap();
        let in_body = client
            .post("/api/echo")
            .json(&json!({"csrf_token": token}))
            .send()
            .await;
        in_body.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF token is missing."]);
    }
);

backend_test!(
    a_session_post_with_the_csrf_header_is_accepted,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let response = client
            .post("/api/echo")
            .json(&json!({"a": "b"}))
            .csrf()
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.response()["email"], "ann@example.com");
        // Every header name of the contract works, with the XSRF-TOKEN cookie or any csrf_token.
        let cookie_token = client.cookie("XSRF-TOKEN").unwrap();
        let response_token =
            client.get("/login").accept_json().send().await.response()["csrf_token"]
                .as_str()
                .unwrap()
                .to_owned();
        for (header, token) in [
            ("X-XSRF-Token", &cookie_token),
            ("X-CSRF-Token", &response_token),
            ("X-CSRFToken", &response_token),
        ] {
            let response = client
                .post("/api/echo")
                .json(&json!({}))
                .header(header, token)
                .send()
                .await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{header}: {}",
                response.text()
            );
        }
    }
);

backend_test!(
    a_garbage_csrf_token_is_invalid,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        for garbage in ["garbage", "IjljYzU5.forged.sig", "x.y.z"] {
            let response = client
                .post("/api/echo")
                .json(&json!({}))
                .header("X-XSRF-Token", garbage)
                .send()
                .await;
            response.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF token is invalid."]);
        }
    }
);

backend_test!(
    the_csrf_token_of_another_session_does_not_match,
    GENERIC,
    async |app: TestApp| {
        let ann = app.logged_in("ann@example.com").await;
        let bob = app.logged_in("bob@example.com").await;
        let bobs = bob.csrf_token().unwrap();
        let response = ann
            .post("/api/echo")
            .json(&json!({}))
            .header("X-XSRF-Token", &bobs)
            .send()
            .await;
        response.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF tokens do not match."]);
    }
);

backend_test!(
    a_csrf_token_from_before_logout_does_not_match,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let old = client.csrf_token().unwrap();
        client.logout().await;
        client.login_ok("ann@example.com", PASSWORD).await;
        let response = client
            .post("/api/echo")
            .json(&json!({}))
            .header("X-XSRF-Token", &old)
            .send()
            .await;
        response.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF tokens do not match."]);
    }
);

backend_test!(
    token_authenticated_requests_need_no_csrf_token,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let token = app.auth_token("ann@example.com").await;
        let response = app
            .client()
            .post("/api/echo")
            .json(&json!({}))
            .header("Authentication-Token", &token)
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }
);

backend_test!(
    anonymous_json_endpoints_need_no_csrf_token,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        for (path, body) in [
            ("/reset", json!({"email": "ann@example.com"})),
            ("/confirm", json!({"email": "ann@example.com"})),
            (
                "/register",
                json!({"email": "bob@example.com", "password": PASSWORD, "password_confirm": PASSWORD}),
            ),
            (
                "/login",
                json!({"email": "ann@example.com", "password": PASSWORD}),
            ),
        ] {
            let response = client.post(path).json(&body).send().await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{path}: {}",
                response.text()
            );
        }
        // Logout needs none even when signed in.
        assert_eq!(client.logout().await.status, StatusCode::OK);
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    an_html_form_post_needs_its_csrf_field,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let page = client.get("/login").send().await;
        let token = csrf_in_html(&page.text());
        let refused = client
            .post("/login")
            .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
            .send()
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(
            refused.html().contains("The CSRF token is missing."),
            "{}",
            refused.text()
        );
        let forged = client
            .post("/login")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", "forged"),
            ])
            .send()
            .await;
        assert_eq!(forged.status, StatusCode::BAD_REQUEST);
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        let accepted = client
            .post("/login")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert_eq!(accepted.location(), Some("/"), "{}", accepted.text());
        assert_eq!(client.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    a_cross_site_form_post_without_a_session_is_refused,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        // A form posted from another site to a fresh browser: no session, no token.
        let client = app.client();
        let response = client
            .post("/login")
            .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
            .send()
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert!(
            response.html().contains("The CSRF token is missing."),
            "{}",
            response.text()
        );
        assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    csrf_tokens_do_not_expire_by_time,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        app.advance(std::time::Duration::from_secs(30 * 86_400));
        let response = client
            .post("/api/echo")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }
);

backend_test!(
    a_state_changing_request_from_another_site_is_refused,
    GENERIC,
    async |app: TestApp| {
        // Anonymous JSON login: normally exempt from the token, but not when the browser says
        // another site started it.
        let response = app
            .client()
            .post("/login")
            .header("Sec-Fetch-Site", "cross-site")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await;
        response.assert_errors(
            StatusCode::FORBIDDEN,
            &["Cross-site requests are not allowed."],
        );
        // The same request from the site itself goes through to the login check.
        let response = app
            .client()
            .post("/login")
            .header("Sec-Fetch-Site", "same-origin")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{}",
            response.text()
        );
        // A signed-in session cannot be logged out by another site either.
        let client = app.logged_in("bob@example.com").await;
        let response = client
            .post("/logout")
            .header("Sec-Fetch-Site", "cross-site")
            .json(&json!({}))
            .send()
            .await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        assert_eq!(client.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    a_new_visitor_gets_a_csrf_cookie_instead_of_a_session_and_loses_it_on_login,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let page = client.get("/login").send().await;
        assert_eq!(page.status, StatusCode::OK);
        let cookie = page
            .set_cookie("__Host-rampart_csrf")
            .expect("the visitor's CSRF cookie");
        for flag in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(flag), "{flag} in {cookie}");
        }
        assert!(
            page.set_cookie("session").is_none(),
            "nothing stored on the server"
        );
        let anonymous_secret = client.cookie("__Host-rampart_csrf").expect("cookie kept");
        let anonymous_token = csrf_in_html(&page.text());
        // The page's own token passes: the form signs in.
        let login = client
            .post("/login")
            .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
            .header("x-csrf-token", &anonymous_token)
            .send()
            .await;
        assert_eq!(login.status, StatusCode::FOUND, "{}", login.text());
        let removal = login
            .set_cookie("__Host-rampart_csrf")
            .expect("the CSRF cookie is deleted on login");
        assert!(removal.contains("Max-Age=0"), "{removal}");
        assert_eq!(client.me().await.status, StatusCode::OK);
        // Signed in, the visitor's old cookie and token count for nothing.
        let response = client
            .post("/api/echo")
            .json(&json!({}))
            .header("X-XSRF-Token", &anonymous_token)
            .header("cookie", &format!("__Host-rampart_csrf={anonymous_secret}"))
            .send()
            .await;
        response.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF tokens do not match."]);
    }
);

backend_test!(
    a_malformed_csrf_cookie_is_replaced,
    GENERIC,
    async |app: TestApp| {
        let page = app
            .client()
            .get("/login")
            .header("cookie", "__Host-rampart_csrf=not-hex")
            .send()
            .await;
        let cookie = page
            .set_cookie("__Host-rampart_csrf")
            .expect("a new cookie");
        let value = cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, v)| v)
            .expect("value");
        assert_eq!(value.len(), 40, "{cookie}");
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()), "{cookie}");
    }
);

const METHOD_NOT_ALLOWED: &str = "The method is not allowed for the requested URL.";
const NOT_FOUND: &str = "The requested URL was not found on the server. If you entered the URL \
                         manually please check your spelling and try again.";

backend_test!(
    routing_decides_before_csrf_unknown_paths_are_404_and_other_methods_405,
    GENERIC,
    async |app: TestApp| {
        use axum::http::Method;
        let client = app.logged_in("ann@example.com").await;
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            // Framework pages (GET and POST; GET only) and an unknown path.
            for path in ["/login", "/verify", "/tf-setup-nope/x", "/api/nope"] {
                let response = client
                    .request(method.clone(), path)
                    .accept_json()
                    .json(&json!({}))
                    .send()
                    .await;
                if path.contains("nope") {
                    response.assert_errors(StatusCode::NOT_FOUND, &[NOT_FOUND]);
                    continue;
                }
                response.assert_errors(StatusCode::METHOD_NOT_ALLOWED, &[METHOD_NOT_ALLOWED]);
                let allow = response.header("allow").unwrap_or_default().to_owned();
                assert!(allow.contains("GET"), "{method} {path}: Allow {allow:?}");
                assert!(
                    !allow.contains(method.as_str()),
                    "{method} {path}: {allow:?}"
                );
            }
            // The same for a browser: an HTML error page, not "CSRF token missing".
            let page = client
                .request(method.clone(), "/login")
                .form(&[("a", "b")])
                .send()
                .await;
            assert_eq!(
                page.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{}",
                page.text()
            );
            assert!(page.header("allow").is_some());
            assert!(page.text().contains(METHOD_NOT_ALLOWED), "{}", page.text());
            assert!(!page.text().contains("CSRF"), "{}", page.text());
            let missing = client
                .request(method.clone(), "/no/such/page")
                .form(&[("a", "b")])
                .send()
                .await;
            assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.text());
            assert!(missing.html().contains("Not Found"), "{}", missing.text());
        }
    }
);

backend_test!(
    real_state_changing_routes_still_need_the_csrf_token,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        assert!(
            client.cookie("session").is_some(),
            "signed in with a session cookie"
        );
        for path in [
            "/api/echo",
            crate::harness::CHANGE_URL,
            "/login",
            "/logout-nope",
        ] {
            if path == "/logout-nope" {
                // Not a route: 404 rather than a CSRF refusal.
                let response = client.post(path).json(&json!({})).send().await;
                response.assert_errors(StatusCode::NOT_FOUND, &[NOT_FOUND]);
                continue;
            }
            let response = client.post(path).json(&json!({})).send().await;
            response.assert_errors(StatusCode::BAD_REQUEST, &["The CSRF token is missing."]);
        }
        let form = client
            .post(crate::harness::CHANGE_URL)
            .form(&[("password", PASSWORD), ("new_password", "x")])
            .send()
            .await;
        assert_eq!(form.status, StatusCode::BAD_REQUEST, "{}", form.text());
        assert!(form.text().contains("CSRF"), "{}", form.text());
        // Logged in still, password unchanged.
        assert_eq!(client.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    an_over_long_url_gets_414_in_the_request_format,
    GENERIC,
    async |app: TestApp| {
        let client = app.client();
        let long = format!("/login?q={}", "a".repeat(10 * 1024));
        let json = client.get(&long).accept_json().send().await;
        json.assert_errors(
            StatusCode::URI_TOO_LONG,
            &[
                "The length of the requested URL exceeds the capacity limit for this server. The \
               request cannot be processed.",
            ],
        );
        let page = client.get(&long).send().await;
        assert_eq!(page.status, StatusCode::URI_TOO_LONG);
        assert!(page.html().contains("URI Too Long"), "{}", page.text());
        // A long but sane URL is still served.
        let fine = format!("/login?q={}", "a".repeat(4 * 1024));
        assert_eq!(client.get(&fine).send().await.status, StatusCode::OK);
    }
);

backend_test!(
    the_sign_in_page_is_the_same_for_every_new_visitor_but_for_their_own_working_token,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        // Rendered once, then filled in: every visitor's page, in their language, with a token
        // of their own that signs them in only with their own cookie.
        let visit = async |language: &str| {
            let client = app.client();
            let page = client
                .get("/login")
                .header("accept-language", language)
                .send()
                .await;
            assert_eq!(page.status, StatusCode::OK);
            let token = csrf_in_html(&page.text());
            (client, page.text().replace(&token, "TOKEN"), token)
        };
        let (first, first_page, first_token) = visit("en").await;
        let (second, second_page, second_token) = visit("en").await;
        let (_, german_page, _) = visit("de").await;
        assert_ne!(first_token, second_token);
        assert_eq!(first_page, second_page, "the same page but for the token");
        assert!(first_page.contains("value=\"TOKEN\""), "{first_page}");
        assert_ne!(first_page, german_page, "each language its own page");
        let (_, again, _) = visit("en").await;
        assert_eq!(again, first_page);
        // With `next` (from the request) the page is rendered as usual, and shows it.
        let with_next = app
            .client()
            .get("/login?next=/somewhere")
            .send()
            .await
            .text();
        assert!(with_next.contains("next=%2Fsomewhere"), "{with_next}");

        let refused = second
            .post("/login")
            .form(&[("email", "ann@example.com"), ("password", PASSWORD)])
            .header("x-csrf-token", &first_token)
            .send()
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "another's token");
        let login = first
            .post("/login")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &first_token),
            ])
            .send()
            .await;
        assert_eq!(login.status, StatusCode::FOUND, "{}", login.text());
        assert_eq!(first.me().await.status, StatusCode::OK);
    }
);
