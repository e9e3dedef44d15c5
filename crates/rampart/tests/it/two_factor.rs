//! Two-factor sign-in (`SECURITY_TWO_FACTOR`, CONTRACT.md `/tf-setup`, `/tf-validate`,
//! `/tf-rescue`): setup by authenticator or email, the login's second step, rescue by email,
//! disable; codes single-use and throttled.

#![expect(
    clippy::expect_used,
    reason = "test helpers: a step that cannot be done must fail the test at once, saying which"
)]

use std::time::Duration;

use axum::http::StatusCode;
use rampart::Clock as _;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, TestClient, backend_test, csrf_in_html};

const ON: &[(&str, &str)] = &[
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ("SECURITY_APP_NAME", "FST Sample"),
];

const DENIED: &str = "You currently do not have permissions to access this page";
const ALREADY_USED: &str = "This code was just used. Wait for the next one.";

fn now(app: &TestApp) -> u64 {
    u64::try_from(app.clock.now().unix_timestamp()).expect("after 1970")
}

fn code(app: &TestApp, secret: &str) -> String {
    rampart::totp::code_at(secret, now(app)).expect("code")
}

/// The six digits of the next "Two-Factor Login" mail to `email` (notices before it are skipped).
async fn mailed_code(app: &TestApp, email: &str) -> String {
    let mut mail = app.mail_to(email).await;
    while mail.subject.starts_with("Two-factor sign-in is") {
        mail = app.mail_to(email).await;
    }
    assert_eq!(mail.subject, "Two-Factor Login");
    let marker = "using the following code: ";
    let start = mail.text.find(marker).expect("code in the mail") + marker.len();
    mail.text[start..start + 6].to_owned()
}

/// `POST` a code as JSON, with the CSRF header when the client has a token (a signed-in setup;
/// mid-login requests need none).
async fn validate(client: &TestClient, code: &str, path: &str) -> crate::harness::TestResponse {
    let request = client.post(path).json(&json!({ "code": code }));
    let request = if client.csrf_token().is_some() {
        request.csrf()
    } else {
        request
    };
    request.send().await
}

/// A 400 "no login or setup in progress", as Flask-Security words it.
pub(crate) fn assert_denied(response: &crate::harness::TestResponse) {
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text()
    );
    assert_eq!(
        response.response(),
        json!({"errors": [DENIED], "field_errors": {"": [DENIED]}})
    );
}

/// Signs `email` up and turns on the authenticator; returns the client and the secret.
pub(crate) async fn with_authenticator(app: &TestApp, email: &str) -> (TestClient, String) {
    let client = app.logged_in(email).await;
    let setup = client
        .post("/tf-setup")
        .json(&json!({"setup": "authenticator"}))
        .csrf()
        .send()
        .await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
    let secret = setup.response()["tf_authr_b32key"]
        .as_str()
        .expect("secret")
        .to_owned();
    let done = validate(&client, &code(app, &secret), "/tf-validate").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    (client, secret)
}

/// Signs `client` out, lets the setup's time step pass, and starts a login for `email` in a new
/// browser: the password is right, the second factor still to come.
pub(crate) async fn pending_login(app: &TestApp, client: &TestClient, email: &str) -> TestClient {
    client.logout().await;
    app.advance(Duration::from_secs(30));
    let browser = app.client();
    let login = browser.login(email, PASSWORD).await;
    assert_eq!(login.response()["tf_required"], true, "{}", login.text());
    browser
}

backend_test!(
    an_authenticator_is_set_up_and_then_every_login_needs_its_code_once,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let status = client.get("/tf-setup").accept_json().send().await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.text());
        let body = status.response();
        assert_eq!(body["tf_required"], false);
        assert_eq!(body["tf_primary_method"], Value::Null);
        assert_eq!(
            body["tf_available_methods"],
            json!(["authenticator", "email"])
        );

        let setup = client
            .post("/tf-setup")
            .json(&json!({"setup": "authenticator"}))
            .csrf()
            .send()
            .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        let body = setup.response();
        let secret = body["tf_authr_b32key"].as_str().expect("key").to_owned();
        assert_eq!(body["tf_state"], "validating_profile");
        assert_eq!(body["tf_authr_issuer"], "FST Sample");
        assert_eq!(body["tf_authr_username"], "ann@example.com");
        assert_eq!(body["tf_authr_key"], rampart::totp::grouped(&secret));
        assert_eq!(
            body["tf_authr_uri"],
            format!(
                "otpauth://totp/FST%20Sample:ann%40example.com?secret={secret}&issuer=FST%20Sample"
            )
        );
        // Not on until a code proves the app has the secret.
        assert_eq!(
            client
                .get("/tf-setup")
                .accept_json()
                .send()
                .await
                .response()["tf_required"],
            false
        );
        let wrong = validate(&client, "000000", "/tf-validate").await;
        wrong.assert_field_errors(&json!({"code": ["Invalid code"]}));
        let setup_code = code(&app, &secret);
        let done = validate(&client, &setup_code, "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["user"]["email"], "ann@example.com");
        let notice = app.mail_to("ann@example.com").await;
        assert_eq!(notice.subject, "Two-factor sign-in is on");
        assert!(
            notice.text.contains("a code from your authenticator app"),
            "{}",
            notice.text
        );
        let status = client
            .get("/tf-setup")
            .accept_json()
            .send()
            .await
            .response();
        assert_eq!(status["tf_required"], true);
        assert_eq!(status["tf_primary_method"], "authenticator");
        client.logout().await;

        // The password alone no longer signs in.
        let browser = app.client();
        let login = browser.login("ann@example.com", PASSWORD).await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        let body = login.response();
        assert_eq!(body["tf_required"], true);
        assert_eq!(body["tf_state"], "ready");
        assert_eq!(body["tf_method"], "authenticator");
        assert!(body.get("user").is_none(), "{body}");
        assert!(login.set_cookie("XSRF-TOKEN").is_none());
        assert_eq!(browser.me().await.status, StatusCode::UNAUTHORIZED);

        // The code used for the setup is spent, even inside its window.
        let replay = validate(&browser, &setup_code, "/tf-validate").await;
        replay.assert_field_errors(&json!({"code": [ALREADY_USED]}));
        app.advance(Duration::from_secs(30));
        let done = validate(
            &browser,
            &code(&app, &secret),
            "/tf-validate?include_auth_token",
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert!(done.response()["user"]["authentication_token"].is_string());
        assert!(done.set_cookie("XSRF-TOKEN").is_some());
        assert_eq!(browser.me().await.status, StatusCode::OK);
        // Nothing is pending any more.
        let again = validate(&app.client(), &code(&app, &secret), "/tf-validate").await;
        assert_denied(&again);
    }
);

// Issue 14 (2): signing out and straight back in with the code just used says so, and the next
// step's code signs in (the replay protection stays).
backend_test!(
    a_right_code_of_a_step_just_used_says_so_and_the_next_one_signs_in,
    ON,
    async |app: TestApp| {
        let (client, secret) = with_authenticator(&app, "ann@example.com").await;
        let used = code(&app, &secret);
        client.logout().await;
        let browser = app.client();
        let login = browser.login("ann@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_required"], true, "{}", login.text());
        let replay = validate(&browser, &used, "/tf-validate").await;
        assert_eq!(replay.status, StatusCode::BAD_REQUEST, "{}", replay.text());
        replay.assert_field_errors(&json!({"code": [ALREADY_USED]}));
        assert_eq!(browser.me().await.status, StatusCode::UNAUTHORIZED);
        let page = browser.get("/tf-validate").send().await;
        let html_replay = browser
            .post("/tf-validate")
            .form(&[
                ("code", used.as_str()),
                ("csrf_token", &csrf_in_html(&page.text())),
            ])
            .send()
            .await;
        assert!(
            html_replay
                .html()
                .contains("This code was just used. Wait for the next one."),
            "{}",
            html_replay.text()
        );
        app.advance(Duration::from_secs(30));
        let done = validate(&browser, &code(&app, &secret), "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    codes_by_email_set_up_and_sign_in,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("bob@example.com").await;
        let setup = client
            .post("/tf-setup")
            .json(&json!({"setup": "email"}))
            .csrf()
            .send()
            .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        assert_eq!(setup.response()["tf_method"], "email");
        assert!(setup.response().get("tf_authr_b32key").is_none());
        let code = mailed_code(&app, "bob@example.com").await;
        let done = validate(&client, &code, "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        client.logout().await;

        app.advance(Duration::from_secs(30));
        let browser = app.client();
        let login = browser.login("bob@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_method"], "email");
        let code = mailed_code(&app, "bob@example.com").await;
        // A mailed code lives five minutes.
        app.advance(Duration::from_secs(4 * 60));
        let done = validate(&browser, &code, "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
    }
);

// Issue 15 (1): a mailed code is fresh per mail, so it works even inside a time step the user
// has just used: email set up and then a sign-in within the same step ...
backend_test!(
    a_code_mailed_in_the_step_of_the_setup_code_signs_in,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("bob@example.com").await;
        let setup = client
            .post("/tf-setup")
            .json(&json!({"setup": "email"}))
            .csrf()
            .send()
            .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        let setup_code = mailed_code(&app, "bob@example.com").await;
        let done = validate(&client, &setup_code, "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        client.logout().await;

        // No time passes: same step.
        let browser = app.client();
        let login = browser.login("bob@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_method"], "email", "{}", login.text());
        let code = mailed_code(&app, "bob@example.com").await;
        // The setup's code was used: it does not sign in.
        if code != setup_code {
            let spent = validate(&browser, &setup_code, "/tf-validate").await;
            spent.assert_field_errors(&json!({"code": ["Invalid code"]}));
        }
        let done = validate(&browser, &code, "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
        // Single use.
        client.logout().await;
        let again = app.client();
        let _login = again.login("bob@example.com", PASSWORD).await;
        let fresh = mailed_code(&app, "bob@example.com").await;
        if fresh != code {
            let replay = validate(&again, &code, "/tf-validate").await;
            replay.assert_field_errors(&json!({"code": ["Invalid code"]}));
        }
        // A code mailed longer ago than SECURITY_TWO_FACTOR_MAIL_VALIDITY has expired.
        app.advance(Duration::from_secs(5 * 60 + 1));
        let late = validate(&again, &fresh, "/tf-validate").await;
        late.assert_field_errors(&json!({"code": ["Invalid code"]}));
        // Only a keyed digest is stored, never the code.
        let user = app.user("bob@example.com").await;
        let stored = app
            .datastore()
            .mailed_code_live(
                user.id,
                "tf-signin",
                time::macros::datetime!(2000-01-01 0:00),
            )
            .await
            .expect("query")
            .expect("a code row");
        assert!(!stored.contains(&fresh), "{stored}");
    }
);

// ... and an authenticator set up, then the rescue mail asked for at once.
backend_test!(
    a_rescue_code_mailed_right_after_an_authenticator_setup_signs_in,
    ON,
    async |app: TestApp| {
        let (client, secret) = with_authenticator(&app, "ann@example.com").await;
        client.logout().await;
        let browser = app.client();
        let login = browser.login("ann@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_required"], true, "{}", login.text());
        let rescue = browser
            .post("/tf-rescue")
            .json(&json!({"help_setup": "email"}))
            .send()
            .await;
        assert_eq!(rescue.status, StatusCode::OK, "{}", rescue.text());
        let mailed = mailed_code(&app, "ann@example.com").await;
        let done = validate(&browser, &mailed, "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
        // The authenticator keeps its replay protection.
        browser.logout().await;
        let again = app.client();
        let _login = again.login("ann@example.com", PASSWORD).await;
        let replay = validate(&again, &code(&app, &secret), "/tf-validate").await;
        replay.assert_field_errors(&json!({"code": [ALREADY_USED]}));
    }
);

backend_test!(
    without_the_app_a_code_by_email_rescues_the_login,
    ON,
    async |app: TestApp| {
        let (client, _secret) = with_authenticator(&app, "ann@example.com").await;
        let browser = pending_login(&app, &client, "ann@example.com").await;
        let options = browser.get("/tf-rescue").accept_json().send().await;
        assert_eq!(options.status, StatusCode::OK, "{}", options.text());
        assert_eq!(
            options.response()["recovery_options"],
            json!({"email": "/tf-rescue", "help": "/tf-rescue"})
        );
        // Lost the mail too: the site's rescue address hears of it.
        let help = browser
            .post("/tf-rescue")
            .json(&json!({"help_setup": "help"}))
            .send()
            .await;
        assert_eq!(help.status, StatusCode::OK, "{}", help.text());
        let asked = app.mail_to("no-reply@localhost").await;
        assert_eq!(asked.subject, "Two-factor Rescue");
        assert!(asked.text.contains("ann@example.com"), "{}", asked.text);
        let rescue = browser
            .post("/tf-rescue")
            .json(&json!({"help_setup": "email"}))
            .send()
            .await;
        assert_eq!(rescue.status, StatusCode::OK, "{}", rescue.text());
        app.advance(Duration::from_secs(31));
        let code = mailed_code(&app, "ann@example.com").await;
        let done = validate(&browser, &code, "/tf-validate").await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());

        // No login in progress: nothing to rescue.
        let nothing = app
            .client()
            .post("/tf-rescue")
            .json(&json!({"help_setup": "email"}))
            .send()
            .await;
        assert_denied(&nothing);
    }
);

backend_test!(
    disabling_restores_password_only_sign_in_and_bad_choices_are_refused,
    ON,
    async |app: TestApp| {
        let (client, _) = with_authenticator(&app, "ann@example.com").await;
        let bad = client
            .post("/tf-setup")
            .json(&json!({"setup": "carrier-pigeon"}))
            .csrf()
            .send()
            .await;
        bad.assert_field_errors(&json!({"setup": ["Marked method is not valid"]}));
        let no_csrf = client
            .post("/tf-setup")
            .json(&json!({"setup": "disable"}))
            .send()
            .await;
        assert_eq!(no_csrf.status, StatusCode::BAD_REQUEST);
        let off = client
            .post("/tf-setup")
            .json(&json!({"setup": "disable"}))
            .csrf()
            .send()
            .await;
        assert_eq!(off.status, StatusCode::OK, "{}", off.text());
        assert_eq!(off.response()["user"]["email"], "ann@example.com");
        assert_eq!(
            app.mail_to("ann@example.com").await.subject,
            "Two-factor sign-in is on"
        );
        assert_eq!(
            app.mail_to("ann@example.com").await.subject,
            "Two-factor sign-in is off"
        );
        let login = app.client().login_ok("ann@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_required"], false);

        let anonymous = app.client().get("/tf-setup").accept_json().send().await;
        assert_denied(&anonymous);
    }
);

const THROTTLED: &[(&str, &str)] = &[
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_LOGIN_IDENTITY_RATE_LIMIT", "3 per 10 minutes"),
];

backend_test!(
    guessing_codes_is_throttled_per_user_and_basic_auth_is_refused,
    THROTTLED,
    async |app: TestApp| {
        let (client, secret) = with_authenticator(&app, "ann@example.com").await;
        let browser = pending_login(&app, &client, "ann@example.com").await;
        for guess in ["111111", "222222", "333333"] {
            let wrong = validate(&browser, guess, "/tf-validate").await;
            assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        }
        let limited = validate(&browser, &code(&app, &secret), "/tf-validate").await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        assert!(limited.header("retry-after").is_some());
        assert_eq!(browser.me().await.status, StatusCode::UNAUTHORIZED);

        use base64::Engine as _;
        let pair =
            base64::engine::general_purpose::STANDARD.encode(format!("ann@example.com:{PASSWORD}"));
        let basic = app
            .client()
            .get("/basic")
            .accept_json()
            .header("authorization", &format!("Basic {pair}"))
            .send()
            .await;
        assert_eq!(basic.status, StatusCode::UNAUTHORIZED, "{}", basic.text());
    }
);

backend_test!(
    the_html_forms_walk_through_setup_and_login,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/tf-setup").send().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert!(page.html().contains("id=\"tf-status\""), "{}", page.text());
        let setup = client
            .post("/tf-setup")
            .form(&[
                ("setup", "authenticator"),
                ("csrf_token", &csrf_in_html(&page.text())),
            ])
            .send()
            .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        let html = setup.html();
        assert!(html.contains("<svg"), "a QR code: {html}");
        let start = html.find("id=\"tf-key\">").expect("key") + "id=\"tf-key\">".len();
        let key: String = html[start..]
            .chars()
            .take_while(|c| *c != '<')
            .filter(|c| *c != '-')
            .collect();
        let done = client
            .post("/tf-validate")
            .form(&[
                ("code", code(&app, &key).as_str()),
                ("csrf_token", &csrf_in_html(&setup.text())),
            ])
            .send()
            .await;
        assert_eq!(done.status, StatusCode::FOUND, "{}", done.text());
        assert_eq!(done.location(), Some("/tf-setup"));
        client.logout().await;

        app.advance(Duration::from_secs(30));
        let browser = app.client();
        let form = browser.get("/login").send().await;
        let login = browser
            .post("/login?next=/api/me")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf_in_html(&form.text())),
            ])
            .send()
            .await;
        assert_eq!(login.status, StatusCode::FOUND, "{}", login.text());
        assert_eq!(login.location(), Some("/tf-validate"));
        let verify = browser.get("/tf-validate").send().await;
        assert_eq!(verify.status, StatusCode::OK);
        assert!(
            verify.html().contains("id=\"tf-rescue\""),
            "{}",
            verify.text()
        );
        let wrong = browser
            .post("/tf-validate")
            .form(&[
                ("code", "123"),
                ("csrf_token", &csrf_in_html(&verify.text())),
            ])
            .send()
            .await;
        assert_eq!(wrong.status, StatusCode::OK);
        assert!(wrong.html().contains("Invalid code"), "{}", wrong.text());
        assert!(wrong.html().contains("aria-invalid=\"true\""));
        let done = browser
            .post("/tf-validate")
            .form(&[
                ("code", code(&app, &key).as_str()),
                ("csrf_token", &csrf_in_html(&verify.text())),
            ])
            .send()
            .await;
        assert_eq!(done.status, StatusCode::FOUND, "{}", done.text());
        assert_eq!(done.location(), Some("/api/me"));
        assert_eq!(browser.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    two_factor_is_off_unless_configured,
    &[],
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/tf-setup").accept_json().send().await;
        assert_eq!(page.status, StatusCode::NOT_FOUND);
    }
);

backend_test!(
    codes_stay_throttled_when_the_account_limit_is_turned_off,
    &[
        ("SECURITY_TWO_FACTOR", "true"),
        ("SECURITY_LOGIN_IDENTITY_RATE_LIMIT", "off"),
    ],
    async |app: TestApp| {
        let (client, secret) = with_authenticator(&app, "ann@example.com").await;
        let browser = pending_login(&app, &client, "ann@example.com").await;
        for _ in 0..10 {
            let wrong = validate(&browser, "999999", "/tf-validate").await;
            assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        }
        let limited = validate(&browser, &code(&app, &secret), "/tf-validate").await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
    }
);

/// `count` six-digit codes that are wrong now (none is valid for the current time step or the
/// ones next to it).
fn wrong_codes(app: &TestApp, secret: &str, count: usize) -> Vec<String> {
    let now = now(app);
    let valid: Vec<String> = [now - 30, now, now + 30]
        .iter()
        .map(|at| rampart::totp::code_at(secret, *at).expect("code"))
        .collect();
    (100_000..)
        .map(|n| n.to_string())
        .filter(|c| !valid.contains(c))
        .take(count)
        .collect()
}

/// How many answers were not 429 (the attempts that were checked); every answer is a 400 or 429.
pub(crate) fn checked(answers: &[crate::harness::TestResponse]) -> usize {
    for answer in answers {
        assert!(
            matches!(
                answer.status,
                StatusCode::BAD_REQUEST | StatusCode::TOO_MANY_REQUESTS
            ),
            "{}: {}",
            answer.status,
            answer.text()
        );
    }
    answers
        .iter()
        .filter(|a| a.status != StatusCode::TOO_MANY_REQUESTS)
        .count()
}

backend_test!(
    a_burst_of_concurrent_wrong_codes_gets_at_most_the_limit_checked,
    ON,
    async |app: TestApp| {
        // The default account limit: 10 per 5 minutes.
        let (client, secret) = with_authenticator(&app, "ann@example.com").await;
        let browser = pending_login(&app, &client, "ann@example.com").await;
        let guesses = wrong_codes(&app, &secret, 60);
        let answers = futures_util::future::join_all(
            guesses
                .iter()
                .map(|guess| validate(&browser, guess, "/tf-validate")),
        )
        .await;
        assert_eq!(checked(&answers), 10, "exactly the limit was checked");
        let right = validate(&browser, &code(&app, &secret), "/tf-validate").await;
        assert_eq!(
            right.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            right.text()
        );
        assert!(right.header("retry-after").is_some());
        assert_eq!(browser.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_right_code_clears_the_count_so_normal_use_never_adds_up,
    THROTTLED,
    async |app: TestApp| {
        let (mut client, secret) = with_authenticator(&app, "ann@example.com").await;
        // Two wrong codes and a right one, four logins in a row: 12 attempts, limit 3.
        for _ in 0..4 {
            let browser = pending_login(&app, &client, "ann@example.com").await;
            for guess in wrong_codes(&app, &secret, 2) {
                let wrong = validate(&browser, &guess, "/tf-validate").await;
                assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
            }
            let right = validate(&browser, &code(&app, &secret), "/tf-validate").await;
            assert_eq!(right.status, StatusCode::OK, "{}", right.text());
            client = browser;
        }
    }
);

backend_test!(
    after_tf_validate_only_a_normalised_local_next_is_followed,
    ON,
    async |app: TestApp| {
        let (client, secret) = with_authenticator(&app, "ann@example.com").await;
        client.logout().await;
        app.advance(Duration::from_secs(30));
        for next in crate::redirect::EVIL {
            let browser = app.client();
            let login = browser
                .post("/login")
                .json(&json!({"email": "ann@example.com", "password": PASSWORD, "next": next}))
                .send()
                .await;
            assert_eq!(login.status, StatusCode::BAD_REQUEST, "{next:?}");
            assert_ne!(login.response()["tf_required"], true, "{next:?}");
            let pending = browser.get("/tf-validate").send().await;
            assert_ne!(pending.status, StatusCode::OK, "{next:?}: no login pending");
        }
        let browser = app.client();
        let form = browser.get("/login").send().await;
        let login = browser
            .post("/login?next=%2Fa%2F..%2F%2E%2Fapi%2Fme")
            .form(&[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &csrf_in_html(&form.text())),
            ])
            .send()
            .await;
        assert_eq!(login.location(), Some("/tf-validate"), "{}", login.text());
        let page = browser.get("/tf-validate").send().await;
        let done = browser
            .post("/tf-validate")
            .form(&[
                ("code", code(&app, &secret).as_str()),
                ("csrf_token", &csrf_in_html(&page.text())),
            ])
            .send()
            .await;
        assert_eq!(done.status, StatusCode::FOUND, "{}", done.text());
        assert_eq!(done.location(), Some("/api/me"));
    }
);

// The steps without HTTP, as the sample app's CLI or a test would take them: setup (a method
// not offered is a form error, a wrong first code is refused, a setup left too long expires),
// the sign-in's second step (single use), the throttle, rescue by email, and disabling.
backend_test!(
    the_second_factor_is_usable_without_http,
    ON,
    async |app: TestApp| {
        use rampart::two_factor::{self, CodeVerdict, Rescue, RescueOutcome, SetupVerdict};

        let security = &app.security;
        let email = "ann@example.com";
        app.signed_up(email).await;
        let user = app.user(email).await;

        let refused = two_factor::start_setup(security, &user, "sms")
            .await
            .expect("start");
        let errors = refused.expect_err("sms is not offered");
        assert!(errors.has("setup"), "{:?}", errors.to_json());

        // A setup left longer than 30 minutes expires, even with its right code.
        let stale = two_factor::start_setup(security, &user, "authenticator")
            .await
            .expect("start")
            .expect("offered");
        app.advance(Duration::from_secs(31 * 60));
        let verdict =
            two_factor::confirm_setup(security, &user, &stale, &code(&app, &stale.secret))
                .await
                .expect("confirm");
        assert_eq!(verdict, SetupVerdict::Expired);
        assert!(!two_factor::required(
            security.config(),
            &app.user(email).await
        ));

        let setup = two_factor::start_setup(security, &user, "authenticator")
            .await
            .expect("start")
            .expect("offered");
        assert_eq!(setup.method, "authenticator");
        assert!(
            !format!("{setup:?}").contains(&setup.secret),
            "Debug redacts the secret"
        );
        let wrong = if code(&app, &setup.secret) == "000000" {
            "111111"
        } else {
            "000000"
        };
        let verdict = two_factor::confirm_setup(security, &user, &setup, wrong)
            .await
            .expect("confirm");
        assert_eq!(verdict, SetupVerdict::Invalid);
        let verdict =
            two_factor::confirm_setup(security, &user, &setup, &code(&app, &setup.secret))
                .await
                .expect("confirm");
        assert_eq!(verdict, SetupVerdict::Enabled);
        assert_eq!(app.mail_to(email).await.subject, "Two-factor sign-in is on");
        let user = app.user(email).await;
        assert!(two_factor::required(security.config(), &user));
        assert_eq!(user.tf_primary_method.as_deref(), Some("authenticator"));

        // The sign-in's second step: nothing mailed for an authenticator; each code once.
        let pending = two_factor::begin(security, &user).await.expect("begin");
        assert_eq!(pending.method, "authenticator");
        assert!(!pending.code_mailed);
        app.advance(Duration::from_secs(30));
        let right = code(&app, &setup.secret);
        let first = two_factor::check_code(security, &user, &right)
            .await
            .expect("check");
        assert_eq!(first, CodeVerdict::Accepted);
        let again = two_factor::check_code(security, &user, &right)
            .await
            .expect("check");
        assert_eq!(again, CodeVerdict::AlreadyUsed, "a code is used once");

        // Wrong codes use the user's attempts up; then even a right code is not checked.
        let mut limited = None;
        for _ in 0..20 {
            let wrong = if code(&app, &setup.secret) == "000000" {
                "111111"
            } else {
                "000000"
            };
            match two_factor::check_code(security, &user, wrong)
                .await
                .expect("check")
            {
                CodeVerdict::Invalid => {}
                CodeVerdict::Limited(refused) => {
                    limited = Some(refused.retry_after);
                    break;
                }
                CodeVerdict::Accepted | CodeVerdict::AlreadyUsed | CodeVerdict::Unreadable => {
                    panic!("a wrong code was accepted")
                }
            }
        }
        let retry_after = limited.expect("the attempts run out");
        assert!(retry_after > Duration::ZERO);
        app.advance(Duration::from_secs(30));
        let right = code(&app, &setup.secret);
        let verdict = two_factor::check_code(security, &user, &right)
            .await
            .expect("check");
        assert!(matches!(verdict, CodeVerdict::Limited(_)), "{verdict:?}");
        let rescued = two_factor::rescue(security, &user, Rescue::Email)
            .await
            .expect("rescue");
        assert!(matches!(rescued, RescueOutcome::Limited(_)), "{rescued:?}");
        app.advance(retry_after);

        // Rescue by email mails the current code, which a mailed code's window accepts.
        let rescued = two_factor::rescue(security, &user, Rescue::Email)
            .await
            .expect("rescue");
        assert_eq!(rescued, RescueOutcome::Sent);
        let mailed = mailed_code(&app, email).await;
        let verdict =
            two_factor::check_code_for(security, &user, two_factor::EMAIL, &setup.secret, &mailed)
                .await
                .expect("check");
        assert_eq!(verdict, CodeVerdict::Accepted);

        two_factor::disable(security, &user).await.expect("disable");
        assert_eq!(
            app.mail_to(email).await.subject,
            "Two-factor sign-in is off"
        );
        assert!(!two_factor::required(
            security.config(),
            &app.user(email).await
        ));
    }
);

backend_test!(
    a_setup_that_waits_too_long_for_its_first_code_starts_over,
    ON,
    async |app: TestApp| {
        const EXPIRED: &str = "Setup must be completed within 30 minutes. Please start over.";
        let client = app.logged_in("ann@example.com").await;
        let start = async || {
            let setup = client
                .post("/tf-setup")
                .json(&json!({"setup": "authenticator"}))
                .csrf()
                .send()
                .await;
            assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
            setup.response()["tf_authr_b32key"]
                .as_str()
                .expect("key")
                .to_owned()
        };

        // JSON: a 400 with the message as the form's error; the setup is forgotten.
        let secret = start().await;
        app.advance(Duration::from_secs(31 * 60));
        let late = validate(&client, &code(&app, &secret), "/tf-validate").await;
        assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text());
        assert_eq!(
            late.response(),
            json!({"errors": [EXPIRED], "field_errors": {"": [EXPIRED]}})
        );
        assert_denied(&validate(&client, &code(&app, &secret), "/tf-validate").await);

        // A browser: the message as a flash, back to the setup page.
        let secret = start().await;
        app.advance(Duration::from_secs(31 * 60));
        let late = client
            .post("/tf-validate")
            .form(&[("code", code(&app, &secret).as_str())])
            .csrf()
            .send()
            .await;
        assert_eq!(late.status, StatusCode::FOUND, "{}", late.text());
        assert_eq!(late.location(), Some("/tf-setup"));
        let page = client.get("/tf-setup").send().await;
        assert!(page.html().contains(EXPIRED), "{}", page.html());
        assert!(
            app.user("ann@example.com")
                .await
                .tf_primary_method
                .is_none(),
            "a late code turns nothing on"
        );
    }
);
