//! The login rate limit (CONTRACT.md §3): `3 per 10 minutes` per client address.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backend_test, csrf_in_html};

const SEED_LIMIT: &[(&str, &str)] = &[("SECURITY_LOGIN_RATE_LIMIT", "3 per 10 minutes")];

backend_test!(
    the_fourth_login_post_in_ten_minutes_is_a_429,
    SEED_LIMIT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        for _ in 0..3 {
            assert_eq!(
                client
                    .login("ann@example.com", "wrong password")
                    .await
                    .status,
                StatusCode::BAD_REQUEST
            );
        }
        let limited = client.login("ann@example.com", PASSWORD).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert_eq!(limited.response()["errors"], json!(["3 per 10 minute"]));
        assert!(limited.response().get("field_errors").is_none());
        let retry_after: u64 = limited
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!((1..=600).contains(&retry_after), "{retry_after}");
        assert_eq!(
            client.me().await.status,
            StatusCode::UNAUTHORIZED,
            "a limited login signs nobody in"
        );

        // Every client of that address is limited; GET /login is not.
        assert_eq!(
            app.client().login("ann@example.com", PASSWORD).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(
            app.client().get("/login").accept_json().send().await.status,
            StatusCode::OK
        );
        // A browser gets a page with the same status and header.
        let browser = app.client();
        let token = csrf_in_html(&browser.get("/login").send().await.text());
        let page = browser
            .post("/login")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &token),
            ])
            .send()
            .await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.header("retry-after").is_some());

        app.advance(Duration::from_secs(10 * 60 + 1));
        client.login_ok("ann@example.com", PASSWORD).await;
    }
);

pub(crate) const IDENTITY_LIMIT: &[(&str, &str)] = &[
    ("SECURITY_LOGIN_IDENTITY_RATE_LIMIT", "3 per 10 minutes"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

backend_test!(
    guessing_one_account_is_throttled_whichever_client_guesses,
    IDENTITY_LIMIT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        app.signed_up("bob@example.com").await;
        // A success clears the count: it does not add up across normal use.
        for _ in 0..4 {
            app.client().login_ok("ann@example.com", PASSWORD).await;
        }
        for _ in 0..3 {
            let guess = app
                .client()
                .login("ANN@example.com", "wrong password")
                .await;
            assert_eq!(guess.status, StatusCode::BAD_REQUEST, "{}", guess.text());
        }
        // The fourth attempt on that account is refused, even with the right password...
        let limited = app.client().login("ann@example.com", PASSWORD).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert_eq!(limited.response()["errors"], json!(["3 per 10 minute"]));
        assert!(limited.header("retry-after").is_some());
        // ...while other accounts are not affected.
        app.client().login_ok("bob@example.com", PASSWORD).await;

        app.advance(Duration::from_secs(10 * 60 + 1));
        app.client().login_ok("ann@example.com", PASSWORD).await;
    }
);

const BOTH_LIMITS: &[(&str, &str)] = &[
    ("SECURITY_LOGIN_RATE_LIMIT", "3 per 10 minutes"),
    ("SECURITY_LOGIN_IDENTITY_RATE_LIMIT", "5 per 1 hour"),
];

fn basic(identity: &str, password: &str) -> String {
    use base64::Engine as _;
    let pair = format!("{identity}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

backend_test!(
    http_basic_counts_only_failures_and_is_throttled_per_address_and_per_account,
    BOTH_LIMITS,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let get = |authorization: String| {
            let client = app.client();
            async move {
                client
                    .get("/basic")
                    .accept_json()
                    .header("authorization", &authorization)
                    .send()
                    .await
            }
        };
        // Every Basic request authenticates: good ones never use up the limit.
        for _ in 0..6 {
            let ok = get(basic("ann@example.com", PASSWORD)).await;
            assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
        }
        // Three failures from this address...
        for _ in 0..3 {
            let wrong = get(basic("ann@example.com", "wrong password")).await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
        }
        // ...and the next Basic attempt is refused before any password check, right or not.
        let limited = get(basic("ann@example.com", PASSWORD)).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert!(limited.header("retry-after").is_some());
        // The form login shares the address's count.
        let form = app.client().login("ann@example.com", PASSWORD).await;
        assert_eq!(
            form.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            form.text()
        );

        // A new window for the address; the account has used 3 of its 5 failures this hour.
        app.advance(Duration::from_secs(10 * 60 + 1));
        for _ in 0..2 {
            let wrong = get(basic("ANN@example.com", "wrong password")).await;
            assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text());
        }
        let limited = get(basic("ann@example.com", PASSWORD)).await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
    }
);

const MAIL_LIMIT: &[(&str, &str)] = &[("SECURITY_MAIL_RATE_LIMIT", "2 per 10 minutes")];

backend_test!(
    nobody_can_flood_an_address_with_mails,
    MAIL_LIMIT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let forgot = |email: &'static str| {
            let client = app.client();
            async move {
                client
                    .post("/reset")
                    .json(&json!({ "email": email }))
                    .send()
                    .await
            }
        };
        // Signing up mailed ann once; one reset mail more is the second.
        assert_eq!(forgot("ann@example.com").await.status, StatusCode::OK);
        // The address has had its mails, whichever way they are asked for, known or not.
        let limited = forgot("ANN@example.com").await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert_eq!(limited.response()["errors"], json!(["2 per 10 minute"]));
        assert!(limited.header("retry-after").is_some());
        let resend = app
            .client()
            .post("/confirm")
            .json(&json!({"email": "ann@example.com"}))
            .send()
            .await;
        assert_eq!(resend.status, StatusCode::TOO_MANY_REQUESTS);
        let register = app.client().register("ann@example.com", PASSWORD).await;
        assert_eq!(register.status, StatusCode::TOO_MANY_REQUESTS);
        // Other addresses are not affected.
        assert_eq!(forgot("nobody@example.com").await.status, StatusCode::OK);

        app.advance(Duration::from_secs(10 * 60 + 1));
        assert_eq!(forgot("ann@example.com").await.status, StatusCode::OK);
    }
);

/// Registers and confirms `email` with `username`.
async fn signed_up_with_username(app: &TestApp, email: &str, username: &str) {
    let client = app.client();
    let registered = client
        .post("/register")
        .json(&json!({"email": email, "username": username, "password": PASSWORD, "password_confirm": PASSWORD}))
        .send()
        .await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.text());
    let path = app.path_in_mail(email, "/confirm/").await;
    client.get(&path).send().await;
}

backend_test!(
    the_account_limit_is_shared_by_every_spelling_of_the_account,
    IDENTITY_LIMIT,
    async |app: TestApp| {
        signed_up_with_username(&app, "ann@example.com", "Annie").await;
        signed_up_with_username(&app, "bob@example.com", "bobby").await;
        // Used up by email (any case)...
        for identity in ["ann@example.com", "ANN@example.com", "Ann@Example.com"] {
            let guess = app.client().login(identity, "wrong password").await;
            assert_eq!(guess.status, StatusCode::BAD_REQUEST, "{}", guess.text());
        }
        // ...it holds for the username too, right password or not.
        for identity in ["Annie", "aNNIE", "ann@example.com"] {
            let limited = app.client().login(identity, PASSWORD).await;
            assert_eq!(
                limited.status,
                StatusCode::TOO_MANY_REQUESTS,
                "{identity}: {}",
                limited.text()
            );
            assert_eq!(limited.response()["errors"], json!(["3 per 10 minute"]));
        }
        // The other way round: used up by username, the email is refused.
        for _ in 0..3 {
            let guess = app.client().login("bobby", "wrong password").await;
            assert_eq!(guess.status, StatusCode::BAD_REQUEST, "{}", guess.text());
        }
        let limited = app.client().login("bob@example.com", PASSWORD).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
        // Unknown identities are limited alike, with the same answer, every look-alike spelling
        // of one address sharing one count (fullwidth, case, an IDNA domain).
        for spelling in [
            "nobody@exämple.com",
            "\u{ff4e}\u{ff4f}\u{ff42}\u{ff4f}\u{ff44}\u{ff59}@exämple.com",
            "NOBODY@xn--exmple-cua.com",
        ] {
            let guess = app.client().login(spelling, "guess").await;
            assert_eq!(guess.status, StatusCode::BAD_REQUEST, "{}", guess.text());
        }
        let unknown = app.client().login("nobody@EXÄMPLE.com", "guess").await;
        assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(unknown.response(), limited.response());
        // A new window lets the owner in, by any spelling.
        app.advance(Duration::from_secs(10 * 60 + 1));
        app.client().login_ok("Annie", PASSWORD).await;
    }
);

backend_test!(
    a_burst_of_concurrent_wrong_basic_credentials_gets_at_most_the_limit_checked,
    &[("SECURITY_LOGIN_IDENTITY_RATE_LIMIT", "5 per 1 hour")],
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let clients: Vec<_> = (0..40).map(|_| app.client()).collect();
        let answers =
            futures_util::future::join_all(clients.iter().enumerate().map(|(i, client)| {
                client
                    .get("/basic")
                    .accept_json()
                    .header(
                        "authorization",
                        &basic("ann@example.com", &format!("guess {i}")),
                    )
                    .send()
            }))
            .await;
        let checked = answers
            .iter()
            .filter(|a| a.status != StatusCode::TOO_MANY_REQUESTS)
            .count();
        assert!(
            answers.iter().all(|a| a.status == StatusCode::UNAUTHORIZED
                || a.status == StatusCode::TOO_MANY_REQUESTS)
        );
        assert_eq!(checked, 5, "exactly the limit was checked");
        let right = app
            .client()
            .get("/basic")
            .accept_json()
            .header("authorization", &basic("ann@example.com", PASSWORD))
            .send()
            .await;
        assert_eq!(
            right.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            right.text()
        );
    }
);

backend_test!(
    only_failed_sign_ins_use_the_login_limit_up,
    SEED_LIMIT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        // The newcomer's walk: a wrong password, then signing in and out again and again.
        assert_eq!(
            client
                .login("ann@example.com", "wrong password")
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        for _ in 0..5 {
            client.login_ok("ann@example.com", PASSWORD).await;
            assert_eq!(client.logout().await.status, StatusCode::OK);
        }
        // An incomplete form checks no password: no failure either.
        for _ in 0..3 {
            let incomplete = client
                .post("/login")
                .json(&json!({"email": "ann@example.com"}))
                .send()
                .await;
            assert_eq!(
                incomplete.status,
                StatusCode::BAD_REQUEST,
                "{}",
                incomplete.text()
            );
        }
        client.login_ok("ann@example.com", PASSWORD).await;
        assert_eq!(client.logout().await.status, StatusCode::OK);

        // Two more failures make three in the window: the fourth attempt is refused, even a
        // right password (the limit holds what was counted before the check).
        for _ in 0..2 {
            assert_eq!(
                client
                    .login("ann@example.com", "wrong password")
                    .await
                    .status,
                StatusCode::BAD_REQUEST
            );
        }
        let limited = client.login("ann@example.com", "wrong password").await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert_eq!(limited.response()["errors"], json!(["3 per 10 minute"]));
        assert_eq!(
            client.login("ann@example.com", PASSWORD).await.status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
);

backend_test!(
    the_429_page_words_the_limit_and_the_wait_for_people,
    SEED_LIMIT,
    async |app: TestApp| {
        let browser = app.client();
        let token = csrf_in_html(&browser.get("/login").send().await.text());
        let attempt = || {
            browser.post("/login").form(&[
                ("email", "nobody@example.com"),
                ("password", "wrong password"),
                ("csrf_token", &token),
            ])
        };
        for _ in 0..3 {
            // A browser gets the form again, with the error.
            assert_eq!(attempt().send().await.status, StatusCode::OK);
        }
        app.advance(Duration::from_secs(2 * 60 + 10));
        let page = attempt().send().await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        let text = page.text();
        assert!(text.contains("3 per 10 minutes"), "{text}");
        assert!(text.contains("try again in 8 minutes."), "{text}");
        app.advance(Duration::from_secs(7 * 60 + 20));
        let page = attempt().send().await;
        // Under a minute left: in seconds (about 30).
        let text = page.text();
        assert!(
            text.contains(" seconds.") && !text.contains("again in 1 minute"),
            "{text}"
        );
    }
);

const TWO_FACTOR_LIMIT: &[(&str, &str)] = &[
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_LOGIN_RATE_LIMIT", "3 per 10 minutes"),
];

backend_test!(
    a_right_password_before_the_second_factor_uses_no_attempt_either,
    TWO_FACTOR_LIMIT,
    async |app: TestApp| {
        let (client, _secret) =
            crate::two_factor::with_authenticator(&app, "ann@example.com").await;
        // Four sign-ins up to the code step (each asserts the password was taken).
        for _ in 0..4 {
            crate::two_factor::pending_login(&app, &client, "ann@example.com").await;
        }
        assert_eq!(
            app.client()
                .login("ann@example.com", "wrong password")
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
    }
);
