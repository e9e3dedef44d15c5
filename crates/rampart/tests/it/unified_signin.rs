//! Unified sign-in (`SECURITY_UNIFIED_SIGNIN`, CONTRACT.md `/us-signin`, `/us-setup`,
//! `/us-verify`, `/us-verify-link`): sign-in by mailed code (and its magic link), password,
//! authenticator and text message; setup with its state; re-authentication; the second factor
//! still asked; throttles and enumeration-safe answers.

#![expect(
    clippy::expect_used,
    reason = "test helpers: a step that cannot be done must fail the test at once, saying which"
)]

use std::time::Duration;

use axum::http::StatusCode;
use rampart::Clock as _;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, TestClient, backend_test, path_of};

/// The contract's sample app: generic responses off, as Flask-Security's JSON tests run.
const ON: &[(&str, &str)] = &[
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    (
        "SECURITY_US_ENABLED_METHODS",
        "password, email, authenticator",
    ),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ("SECURITY_APP_NAME", "FST Sample"),
];

/// Rampart's defaults: generic responses on.
const GENERIC_ON: &[(&str, &str)] = &[
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    (
        "SECURITY_US_ENABLED_METHODS",
        "password, email, authenticator",
    ),
];

/// With two-factor too.
const WITH_TWO_FACTOR: &[(&str, &str)] = &[
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    ("SECURITY_TWO_FACTOR", "true"),
    (
        "SECURITY_US_ENABLED_METHODS",
        "password, email, authenticator",
    ),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

/// Every method, phone numbers as identities.
const WITH_SMS: &[(&str, &str)] = &[
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    (
        "SECURITY_USER_IDENTITY_ATTRIBUTES",
        "email, us_phone_number",
    ),
    (
        "SECURITY_SMS_SERVICE_CONFIG",
        r#"{"PHONE_NUMBER": "+16505550000"}"#,
    ),
];

const INVALID: &str = "Password or code submitted is not valid";
const SPECIFY: &str = "You must specify a valid identity to sign in";
const NOT_AVAILABLE: &str = "Requested method is not valid";
const GENERIC: &str = "Authentication failed - identity or password/passcode invalid";

fn now(app: &TestApp) -> u64 {
    u64::try_from(app.clock.now().unix_timestamp()).expect("after 1970")
}

fn totp(app: &TestApp, secret: &str) -> String {
    rampart::totp::code_at(secret, now(app)).expect("code")
}

/// The code (and the magic link, if any) of the next "Verification Code" mail to `email`.
async fn verification_mail(app: &TestApp, email: &str) -> (String, Option<String>) {
    let mail = app.mail_to(email).await;
    assert_eq!(mail.subject, "Verification Code");
    let marker = "using the following code: ";
    let start = mail.text.find(marker).expect("code in the mail") + marker.len();
    let code = mail.text[start..start + 6].to_owned();
    (code, rampart::find_link(&mail.text, "/us-verify-link"))
}

async fn post(client: &TestClient, path: &str, body: &Value) -> crate::harness::TestResponse {
    let request = client.post(path).json(body);
    if client.csrf_token().is_some() {
        request.csrf().send().await
    } else {
        request.send().await
    }
}

/// Sets `method` up for the signed-in `client`: the state, then the first code.
async fn set_up(app: &TestApp, client: &TestClient, email: &str, method: &str) -> Option<String> {
    let setup = post(client, "/us-setup", &json!({"chosen_method": method})).await;
    assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
    let body = setup.response();
    assert_eq!(body["chosen_method"], method);
    let state = body["state"].as_str().expect("state").to_owned();
    let (code, secret) = if method == "authenticator" {
        let secret = body["authr_b32key"].as_str().expect("key").to_owned();
        (totp(app, &secret), Some(secret))
    } else {
        let (code, link) = verification_mail(app, email).await;
        assert!(link.is_none(), "a setup mail has no sign-in link");
        (code, None)
    };
    let done = post(
        client,
        &format!("/us-setup/{state}"),
        &json!({"passcode": code}),
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.text());
    assert_eq!(done.response()["chosen_method"], method);
    secret
}

async fn signin(
    client: &TestClient,
    identity: &str,
    passcode: &str,
) -> crate::harness::TestResponse {
    client
        .post("/us-signin?include_auth_token")
        .json(&json!({"identity": identity, "passcode": passcode}))
        .send()
        .await
}

async fn send_code(
    client: &TestClient,
    identity: &str,
    method: &str,
) -> crate::harness::TestResponse {
    client
        .post("/us-signin/send-code")
        .json(&json!({"identity": identity, "chosen_method": method}))
        .send()
        .await
}

backend_test!(
    the_sign_in_form_lists_the_methods_and_sets_the_xsrf_cookie,
    ON,
    async |app: TestApp| {
        let client = app.client();
        let form = client.get("/us-signin").accept_json().send().await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        let body = form.response();
        assert_eq!(
            body["available_methods"],
            json!(["password", "email", "authenticator"])
        );
        assert_eq!(body["code_methods"], json!(["email"]));
        assert_eq!(body["identity_attributes"], json!(["email", "username"]));
        assert!(body["csrf_token"].is_string());
        assert!(form.set_cookie("XSRF-TOKEN").is_some());
        // The HTML page offers the mailed code.
        let page = client.get("/us-signin").send().await;
        assert!(page.html().contains("Email me a code"), "{}", page.html());
    }
);

backend_test!(
    a_password_signs_in_and_wrong_passcodes_and_identities_are_told_apart_without_generic_responses,
    ON,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let wrong = signin(&client, "ann@example.com", "not the password").await;
        wrong.assert_field_errors(&json!({"passcode": [INVALID]}));
        let unknown = signin(&client, "nobody@example.com", PASSWORD).await;
        unknown.assert_field_errors(&json!({"identity": [SPECIFY]}));
        let empty = signin(&client, "ann@example.com", "").await;
        empty.assert_field_errors(&json!({"passcode": [INVALID]}));
        let missing = client.post("/us-signin").json(&json!({})).send().await;
        missing.assert_field_errors(&json!({"identity": ["This field is required."]}));
        let done = signin(&client, "ann@example.com", PASSWORD).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        let body = done.response();
        assert_eq!(body["tf_required"], false);
        assert_eq!(body["user"]["email"], "ann@example.com");
        assert!(body["user"]["authentication_token"].is_string());
        assert!(done.set_cookie("XSRF-TOKEN").is_some());
        assert_eq!(client.me().await.status, StatusCode::OK);
        // Signed in: the view is for visitors.
        let again = client
            .post("/us-signin")
            .json(&json!({"identity": "ann@example.com", "passcode": PASSWORD}))
            .csrf()
            .send()
            .await;
        again.assert_errors(
            StatusCode::BAD_REQUEST,
            &["You can only access this endpoint when not logged in."],
        );
    }
);

backend_test!(
    with_generic_responses_unknown_identities_and_wrong_passcodes_answer_alike,
    GENERIC_ON,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let wrong = signin(&client, "ann@example.com", "not the password").await;
        let unknown = signin(&client, "nobody@example.com", "not the password").await;
        for refused in [&wrong, &unknown] {
            refused.assert_field_errors(&json!({"": [GENERIC]}));
        }
        // Send-code: the same answer for an unknown identity, a method not set up and a sent
        // code; only the last one mails.
        let unknown = send_code(&client, "nobody@example.com", "email").await;
        let not_set_up = send_code(&client, "ann@example.com", "email").await;
        assert_eq!(unknown.status, StatusCode::OK, "{}", unknown.text());
        assert_eq!(not_set_up.status, StatusCode::OK, "{}", not_set_up.text());
        let keys = |v: &Value| {
            let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            keys.sort();
            keys
        };
        assert_eq!(keys(&unknown.response()), keys(&not_set_up.response()));
        app.assert_no_mail_to("ann@example.com").await;
        app.assert_no_mail_to("nobody@example.com").await;
    }
);

backend_test!(
    a_code_by_mail_is_set_up_then_signs_in_once,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let status = client.get("/us-setup").accept_json().send().await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.text());
        let body = status.response();
        assert_eq!(body["active_methods"], json!(["password"]));
        assert_eq!(body["setup_methods"], json!(["authenticator", "email"]));
        assert_eq!(body["phone"], Value::Null);
        assert_eq!(body["identity_attributes"], json!(["email", "username"]));

        // Not set up: no code is sent.
        let visitor = app.client();
        let refused = send_code(&visitor, "ann@example.com", "email").await;
        refused.assert_field_errors(&json!({"chosen_method": [NOT_AVAILABLE]}));
        let unknown = send_code(&visitor, "nobody@example.com", "email").await;
        unknown.assert_field_errors(&json!({"identity": [SPECIFY]}));

        set_up(&app, &client, "ann@example.com", "email").await;
        let status = client
            .get("/us-setup")
            .accept_json()
            .send()
            .await
            .response();
        assert_eq!(status["active_methods"], json!(["password", "email"]));
        let stored = app
            .user("ann@example.com")
            .await
            .us_totp_secrets
            .expect("stored");
        let stored: serde_json::Map<String, Value> = serde_json::from_str(&stored).expect("JSON");
        assert!(stored.contains_key("email"), "{stored:?}");
        client.logout().await;

        let sent = send_code(&visitor, "ann@example.com", "email").await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
        assert!(sent.response()["csrf_token"].is_string());
        let (code, link) = verification_mail(&app, "ann@example.com").await;
        let link = link.expect("a magic link");
        let user = app.user("ann@example.com").await;
        assert!(
            link.contains(&format!("id={}", user.fs_uniquifier))
                && link.contains(&format!("code={code}")),
            "{link}"
        );
        let wrong = signin(&visitor, "ann@example.com", "000000").await;
        wrong.assert_field_errors(&json!({"passcode": [INVALID]}));
        let done = signin(&visitor, "ann@example.com", &code).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["user"]["email"], "ann@example.com");
        // Single use.
        let replay = signin(&app.client(), "ann@example.com", &code).await;
        replay.assert_field_errors(&json!({"passcode": [INVALID]}));
        // A code lives SECURITY_US_TOKEN_VALIDITY (2 minutes).
        let late = app.client();
        send_code(&late, "ann@example.com", "email").await;
        let (code, _) = verification_mail(&app, "ann@example.com").await;
        app.advance(Duration::from_secs(121));
        let expired = signin(&late, "ann@example.com", &code).await;
        expired.assert_field_errors(&json!({"passcode": [INVALID]}));
    }
);

backend_test!(
    the_magic_link_signs_in_once_and_expires,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        set_up(&app, &client, "ann@example.com", "email").await;
        client.logout().await;

        let browser = app.client();
        send_code(&browser, "ann@example.com", "email").await;
        let (_, link) = verification_mail(&app, "ann@example.com").await;
        let path = path_of(&link.expect("link"));
        let followed = browser.get(&path).send().await;
        assert_eq!(followed.status, StatusCode::FOUND, "{}", followed.text());
        assert_eq!(followed.location(), Some("/"));
        assert_eq!(browser.me().await.status, StatusCode::OK);

        // Used: another browser is sent back to the sign-in page.
        let other = app.client();
        let again = other.get(&path).send().await;
        assert_eq!(again.location(), Some("/us-signin"));
        assert_eq!(other.me().await.status, StatusCode::UNAUTHORIZED);

        // Expired.
        let late = app.client();
        send_code(&late, "ann@example.com", "email").await;
        let (_, link) = verification_mail(&app, "ann@example.com").await;
        app.advance(Duration::from_secs(121));
        let expired = late.get(&path_of(&link.expect("link"))).send().await;
        assert_eq!(expired.location(), Some("/us-signin"));
        assert_eq!(late.me().await.status, StatusCode::UNAUTHORIZED);

        // Forged or incomplete links sign nobody in.
        for forged in ["/us-verify-link?id=nobody&code=123456", "/us-verify-link"] {
            let response = app.client().get(forged).send().await;
            assert_eq!(response.location(), Some("/us-signin"), "{forged}");
        }
    }
);

backend_test!(
    an_authenticator_is_set_up_and_its_codes_sign_in_once,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let setup = post(
            &client,
            "/us-setup",
            &json!({"chosen_method": "authenticator"}),
        )
        .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        let body = setup.response();
        let secret = body["authr_b32key"].as_str().expect("key").to_owned();
        assert_eq!(body["authr_issuer"], "FST Sample");
        assert_eq!(body["authr_username"], "ann@example.com");
        assert_eq!(body["authr_key"], rampart::totp::grouped(&secret));
        assert!(
            body["authr_uri"]
                .as_str()
                .expect("uri")
                .starts_with("otpauth://totp/")
        );
        assert_eq!(body["phone"], Value::Null);
        let state = body["state"].as_str().expect("state").to_owned();
        let wrong = post(
            &client,
            &format!("/us-setup/{state}"),
            &json!({"passcode": "000000"}),
        )
        .await;
        wrong.assert_field_errors(&json!({"passcode": [INVALID]}));
        let forged = post(&client, "/us-setup/forged", &json!({"passcode": "000000"})).await;
        forged.assert_field_errors(&json!({"": ["Input not appropriate for requested API"]}));
        let setup_code = totp(&app, &secret);
        let done = post(
            &client,
            &format!("/us-setup/{state}"),
            &json!({"passcode": setup_code}),
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        client.logout().await;

        let browser = app.client();
        // The setup's code is spent.
        let replay = signin(&browser, "ann@example.com", &setup_code).await;
        replay.assert_field_errors(&json!({"passcode": [INVALID]}));
        app.advance(Duration::from_secs(30));
        let done = signin(&browser, "ann@example.com", &totp(&app, &secret)).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    a_setup_state_lives_us_setup_within_and_setup_needs_a_fresh_sign_in,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let setup = post(
            &client,
            "/us-setup",
            &json!({"chosen_method": "authenticator"}),
        )
        .await;
        let body = setup.response();
        let secret = body["authr_b32key"].as_str().expect("key").to_owned();
        let state = body["state"].as_str().expect("state").to_owned();
        app.advance(Duration::from_secs(31 * 60));
        let late = post(
            &client,
            &format!("/us-setup/{state}"),
            &json!({"passcode": totp(&app, &secret)}),
        )
        .await;
        late.assert_field_errors(
            &json!({"": ["Setup must be completed within 30 minutes. Please start over."]}),
        );
        let unknown = post(
            &client,
            "/us-setup",
            &json!({"chosen_method": "carrier-pigeon"}),
        )
        .await;
        unknown.assert_field_errors(&json!({"chosen_method": [NOT_AVAILABLE]}));
        let nothing = post(&client, "/us-setup", &json!({})).await;
        nothing.assert_field_errors(&json!({"": ["Input not appropriate for requested API"]}));

        // A day later the session is stale: setup asks to re-authenticate, /us-verify does it.
        app.advance(Duration::from_secs(25 * 3600));
        let stale = client.get("/us-setup").accept_json().send().await;
        assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.text());
        assert_eq!(stale.response()["reauth_required"], true);
        let form = client.get("/us-verify").accept_json().send().await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        assert_eq!(form.response()["code_methods"], json!([]));
        let wrong = post(&client, "/us-verify", &json!({"passcode": "nope"})).await;
        wrong.assert_field_errors(&json!({"passcode": [INVALID]}));
        let verified = post(&client, "/us-verify", &json!({"passcode": PASSWORD})).await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
        assert_eq!(verified.response()["user"]["email"], "ann@example.com");
        let fresh = client.get("/us-setup").accept_json().send().await;
        assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text());

        // Anonymous: 401.
        let anonymous = app.client().get("/us-setup").accept_json().send().await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    us_verify_accepts_a_code_sent_by_mail,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        set_up(&app, &client, "ann@example.com", "email").await;
        app.advance(Duration::from_secs(25 * 3600));
        let form = client
            .get("/us-verify")
            .accept_json()
            .send()
            .await
            .response();
        assert_eq!(form["code_methods"], json!(["email"]));
        let refused = post(
            &client,
            "/us-verify/send-code",
            &json!({"chosen_method": "authenticator"}),
        )
        .await;
        refused.assert_field_errors(&json!({"chosen_method": [NOT_AVAILABLE]}));
        let sent = post(
            &client,
            "/us-verify/send-code",
            &json!({"chosen_method": "email"}),
        )
        .await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
        let (code, link) = verification_mail(&app, "ann@example.com").await;
        assert!(link.is_none(), "no sign-in link for a re-authentication");
        let verified = post(&client, "/us-verify", &json!({"passcode": code})).await;
        assert_eq!(verified.status, StatusCode::OK, "{}", verified.text());
        assert_eq!(
            client.get("/us-setup").accept_json().send().await.status,
            StatusCode::OK
        );
    }
);

backend_test!(
    a_password_or_mailed_code_still_asks_the_second_factor_an_authenticator_does_not,
    WITH_TWO_FACTOR,
    async |app: TestApp| {
        let (client, tf_secret) =
            crate::two_factor::with_authenticator(&app, "ann@example.com").await;
        app.advance(Duration::from_secs(30));
        let us_secret = set_up(&app, &client, "ann@example.com", "authenticator")
            .await
            .expect("secret");
        client.logout().await;

        // The password is one factor.
        let browser = app.client();
        let first = signin(&browser, "ann@example.com", PASSWORD).await;
        assert_eq!(first.status, StatusCode::OK, "{}", first.text());
        let body = first.response();
        assert_eq!(body["tf_required"], true, "{body}");
        assert_eq!(body["tf_method"], "authenticator");
        assert!(body.get("user").is_none());
        assert_eq!(browser.me().await.status, StatusCode::UNAUTHORIZED);
        app.advance(Duration::from_secs(30));
        let done = post(
            &browser,
            "/tf-validate",
            &json!({"code": totp(&app, &tf_secret)}),
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);

        // An authenticator is a second factor already.
        app.advance(Duration::from_secs(30));
        let other = app.client();
        let direct = signin(&other, "ann@example.com", &totp(&app, &us_secret)).await;
        assert_eq!(direct.status, StatusCode::OK, "{}", direct.text());
        assert_eq!(direct.response()["tf_required"], false);
        assert_eq!(other.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    send_code_is_throttled_per_identity_known_or_not,
    &[
        ("SECURITY_UNIFIED_SIGNIN", "true"),
        ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
        ("SECURITY_MAIL_RATE_LIMIT", "2 per 10 minutes"),
    ],
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        set_up(&app, &client, "ann@example.com", "email").await;
        client.logout().await;
        let visitor = app.client();
        for _ in 0..2 {
            let sent = send_code(&visitor, "ann@example.com", "email").await;
            assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
        }
        let limited = send_code(&visitor, "ann@example.com", "email").await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
        for _ in 0..2 {
            send_code(&visitor, "nobody@example.com", "email").await;
        }
        let limited = send_code(&visitor, "nobody@example.com", "email").await;
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            limited.text()
        );
    }
);

backend_test!(
    wrong_passcodes_are_throttled_per_user,
    ON,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let mut limited = None;
        for _ in 0..12 {
            let response = signin(&client, "ann@example.com", "wrong").await;
            if response.status == StatusCode::TOO_MANY_REQUESTS {
                limited = Some(response);
                break;
            }
            assert_eq!(
                response.status,
                StatusCode::BAD_REQUEST,
                "{}",
                response.text()
            );
        }
        assert!(limited.is_some(), "wrong passcodes are never throttled");
        // Even the right password waits now.
        let right = signin(&client, "ann@example.com", PASSWORD).await;
        assert_eq!(
            right.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            right.text()
        );
    }
);

backend_test!(
    codes_by_text_message_are_set_up_for_a_phone_that_then_names_the_account,
    WITH_SMS,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let bad = post(
            &client,
            "/us-setup",
            &json!({"chosen_method": "sms", "phone": "12"}),
        )
        .await;
        bad.assert_field_errors(
            &json!({"phone": ["Phone number not valid e.g. missing country code"]}),
        );
        let setup = post(
            &client,
            "/us-setup",
            &json!({"chosen_method": "sms", "phone": "(650) 253-0000"}),
        )
        .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        assert_eq!(setup.response()["phone"], "+16502530000");
        let state = setup.response()["state"]
            .as_str()
            .expect("state")
            .to_owned();
        let texts = app.sms.sent_to("+16502530000");
        assert_eq!(texts.len(), 1, "{texts:?}");
        assert_eq!(texts[0].from.as_deref(), Some("+16505550000"));
        let code = texts[0]
            .text
            .trim_start_matches("Use this code to sign in: ")
            .to_owned();
        let done = post(
            &client,
            &format!("/us-setup/{state}"),
            &json!({"passcode": code}),
        )
        .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["phone"], "+16502530000");
        assert_eq!(
            app.user("ann@example.com").await.us_phone_number.as_deref(),
            Some("+16502530000")
        );
        client.logout().await;

        // Another account cannot take the number.
        let bob = app.logged_in("bob@example.com").await;
        let taken = post(
            &bob,
            "/us-setup",
            &json!({"chosen_method": "sms", "phone": "+1 650 253 0000"}),
        )
        .await;
        taken.assert_field_errors(&json!({"phone": [
            "Identity attribute 'us_phone_number' with value '+16502530000' is already associated with an account."
        ]}));

        let visitor = app.client();
        let sent = send_code(&visitor, "+1 (650) 253-0000", "sms").await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
        let texts = app.sms.sent_to("+16502530000");
        assert_eq!(texts.len(), 2, "{texts:?}");
        let code = texts[1]
            .text
            .trim_start_matches("Use this code to sign in: ")
            .to_owned();
        let done = signin(&visitor, "6502530000", &code).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["user"]["email"], "ann@example.com");
    }
);

/// The Twilio sender posts the message to Twilio's Messages API, as a form with HTTP Basic.
#[tokio::test]
async fn the_twilio_sender_posts_the_message_to_the_messages_api() {
    use std::sync::{Arc, Mutex};

    use axum::routing::post as route_post;

    let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let recorded = seen.clone();
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        route_post(
            move |axum::extract::Path(sid): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let recorded = recorded.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    recorded.lock().expect("lock").push((sid, auth, body));
                    (StatusCode::CREATED, "{\"sid\": \"SM1\"}")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    let settings = rampart::Settings::from_pairs(vec![
        ("SECRET_KEY", "integration-test-secret-key-0123456789"),
        ("SECURITY_PASSWORD_SALT", "integration-test-salt"),
        ("SECURITY_SMS_SERVICE", "twilio"),
        (
            "SECURITY_SMS_SERVICE_CONFIG",
            r#"{"ACCOUNT_SID": "AC123", "AUTH_TOKEN": "tok", "PHONE_NUMBER": "+16505550000"}"#,
        ),
    ]);
    let mut config = rampart::SecurityConfig::from_settings(&settings).expect("settings");
    config.sms.api_url = format!("http://{address}");
    let sender = rampart::sms::from_config(&config.sms).expect("twilio");
    let sms = rampart::sms::Sms::new(
        Some("+16505550000".into()),
        "+16502530000",
        "Use this code to sign in: 123456",
    );
    sender.send(&sms).await.expect("sent");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    let (sid, auth, body) = &seen[0];
    assert_eq!(sid, "AC123");
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode("AC123:tok");
    assert_eq!(auth, &format!("Basic {expected}"));
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["To"], "+16502530000");
    assert_eq!(form["From"], "+16505550000");
    assert_eq!(form["Body"], "Use this code to sign in: 123456");

    // A refusal is an error, not a silent loss.
    config.sms.api_url = format!("http://{address}/nowhere");
    let sender = rampart::sms::from_config(&config.sms).expect("twilio");
    assert!(sender.send(&sms).await.is_err());
}

backend_test!(
    two_factor_by_text_message_texts_the_code_to_the_phone_set_up,
    &[
        ("SECURITY_TWO_FACTOR", "true"),
        (
            "SECURITY_TWO_FACTOR_ENABLED_METHODS",
            "authenticator, email, sms"
        ),
        ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ],
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let status = client
            .get("/tf-setup")
            .accept_json()
            .send()
            .await
            .response();
        assert_eq!(
            status["tf_available_methods"],
            json!(["authenticator", "email", "sms"])
        );
        let no_phone = post(&client, "/tf-setup", &json!({"setup": "sms"})).await;
        no_phone.assert_field_errors(
            &json!({"phone": ["Phone number not valid e.g. missing country code"]}),
        );
        let setup = post(
            &client,
            "/tf-setup",
            &json!({"setup": "sms", "phone": "+1 650 253 0000"}),
        )
        .await;
        assert_eq!(setup.status, StatusCode::OK, "{}", setup.text());
        assert_eq!(setup.response()["tf_phone_number"], "+16502530000");
        assert_eq!(setup.response()["tf_state"], "validating_profile");
        let texts = app.sms.sent_to("+16502530000");
        assert_eq!(texts.len(), 1, "{texts:?}");
        let code = texts[0]
            .text
            .trim_start_matches("Use this code to sign in: ")
            .to_owned();
        let wrong = post(&client, "/tf-validate", &json!({"code": "000000"})).await;
        wrong.assert_field_errors(&json!({"code": ["Invalid code"]}));
        let done = post(&client, "/tf-validate", &json!({"code": code})).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        let status = client
            .get("/tf-setup")
            .accept_json()
            .send()
            .await
            .response();
        assert_eq!(status["tf_primary_method"], "sms");
        assert_eq!(status["tf_phone_number"], "+16502530000");
        client.logout().await;

        let browser = app.client();
        let login = browser.login("ann@example.com", PASSWORD).await;
        assert_eq!(login.response()["tf_required"], true, "{}", login.text());
        assert_eq!(login.response()["tf_method"], "sms");
        let texts = app.sms.sent_to("+16502530000");
        assert_eq!(texts.len(), 2, "{texts:?}");
        let code = texts[1]
            .text
            .trim_start_matches("Use this code to sign in: ")
            .to_owned();
        let done = post(&browser, "/tf-validate", &json!({"code": code})).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    us_signin_replaces_login_serves_the_unified_sign_in_at_the_login_url,
    &[
        ("SECURITY_UNIFIED_SIGNIN", "true"),
        ("SECURITY_US_SIGNIN_REPLACES_LOGIN", "true"),
        ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ],
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app.client();
        let form = client.get("/login").accept_json().send().await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        assert!(
            form.response()["code_methods"].is_array(),
            "{}",
            form.text()
        );
        let done = client
            .post("/login")
            .json(&json!({"identity": "ann@example.com", "passcode": PASSWORD}))
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["user"]["email"], "ann@example.com");
    }
);

backend_test!(
    the_html_pages_walk_through_setup_sign_in_by_code_and_verify,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let page = client.get("/us-setup").send().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert!(
            page.html().contains("Add a sign-in option"),
            "{}",
            page.html()
        );
        let qr = client
            .post("/us-setup")
            .form(&[("chosen_method", "authenticator")])
            .csrf()
            .send()
            .await;
        assert_eq!(qr.status, StatusCode::OK, "{}", qr.text());
        assert!(qr.html().contains("<svg"), "a QR code: {}", qr.html());
        let email = client
            .post("/us-setup")
            .form(&[("chosen_method", "email")])
            .csrf()
            .send()
            .await;
        assert_eq!(email.status, StatusCode::OK, "{}", email.text());
        let html = email.html();
        let start = html.find("/us-setup/").expect("the state in the form");
        let end = start + html[start..].find('"').expect("end of the action");
        let action = html[start..end].to_owned();
        let (code, _) = verification_mail(&app, "ann@example.com").await;
        let done = client
            .post(&action)
            .form(&[("passcode", code.as_str())])
            .csrf()
            .send()
            .await;
        assert_eq!(done.status, StatusCode::FOUND, "{}", done.text());
        assert_eq!(done.location(), Some("/us-setup"));
        let verify = client.get("/us-verify").send().await;
        assert_eq!(verify.status, StatusCode::OK, "{}", verify.text());
        assert!(
            verify.html().contains("Email me a code"),
            "{}",
            verify.html()
        );
        client.logout().await;

        let browser = app.client();
        let form = browser.get("/us-signin").send().await;
        assert!(form.html().contains("Email me a code"), "{}", form.html());
        let token = crate::harness::csrf_in_html(&form.html());
        let sent = browser
            .post("/us-signin/send-code")
            .form(&[
                ("identity", "ann@example.com"),
                ("chosen_method", "email"),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
        assert!(
            sent.html().contains("Code has been sent."),
            "{}",
            sent.html()
        );
        let (code, _) = verification_mail(&app, "ann@example.com").await;
        let wrong = browser
            .post("/us-signin")
            .form(&[
                ("identity", "ann@example.com"),
                ("passcode", "000000"),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await;
        assert_eq!(wrong.status, StatusCode::OK, "{}", wrong.text());
        assert!(wrong.html().contains(INVALID), "{}", wrong.html());
        let signed_in = browser
            .post("/us-signin")
            .form(&[
                ("identity", "ann@example.com"),
                ("passcode", code.as_str()),
                ("csrf_token", token.as_str()),
            ])
            .send()
            .await;
        assert_eq!(signed_in.status, StatusCode::FOUND, "{}", signed_in.text());
        assert_eq!(signed_in.location(), Some("/"));
        assert_eq!(browser.me().await.status, StatusCode::OK);
    }
);

backend_test!(
    an_active_method_is_deleted_but_never_the_password,
    ON,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        set_up(&app, &client, "ann@example.com", "email").await;
        let password = post(
            &client,
            "/us-setup",
            &json!({"delete_method": ["password"]}),
        )
        .await;
        password.assert_field_errors(&json!({"delete_method": [NOT_AVAILABLE]}));
        let inactive = post(
            &client,
            "/us-setup",
            &json!({"delete_method": ["authenticator"]}),
        )
        .await;
        inactive.assert_field_errors(&json!({"delete_method": [NOT_AVAILABLE]}));
        let deleted = post(&client, "/us-setup", &json!({"delete_method": ["email"]})).await;
        assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text());
        let status = client
            .get("/us-setup")
            .accept_json()
            .send()
            .await
            .response();
        assert_eq!(status["active_methods"], json!(["password"]));
        assert!(app.user("ann@example.com").await.us_totp_secrets.is_none());
        // No code is sent for it any more.
        let refused = send_code(&app.client(), "ann@example.com", "email").await;
        refused.assert_field_errors(&json!({"chosen_method": [NOT_AVAILABLE]}));
    }
);

backend_test!(
    an_unconfirmed_account_cannot_sign_in_nor_get_a_code,
    ON,
    async |app: TestApp| {
        let client = app.client();
        let registered = client.register("ann@example.com", PASSWORD).await;
        assert_eq!(registered.status, StatusCode::OK, "{}", registered.text());
        let refused = signin(&app.client(), "ann@example.com", PASSWORD).await;
        refused.assert_field_errors(&json!({"identity": ["Email requires confirmation."]}));
        assert_eq!(app.client().me().await.status, StatusCode::UNAUTHORIZED);
    }
);
