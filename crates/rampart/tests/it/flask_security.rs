//! A Flask-Security 5.9.2 deployment moving to Rampart: tokens and links it handed out, minted by
//! Flask-Security's own functions (`scripts/flask_security_vectors.py`,
//! `tests/data/flask_security_vectors.json`), for users as it stored them, are accepted within
//! their lifetime and refused after it (the clock travels to the mint time).

#![expect(
    clippy::expect_used,
    reason = "test set-up: a step that cannot be done must fail the test at once, saying which"
)]

use std::time::Duration;

use axum::http::StatusCode;
use rampart::{NewUser, User};
use serde_json::{Value, json};

use crate::harness::{TestApp, backend_test};

/// The deployment's settings, as in the vectors (checked by [`vectors`]).
const FS: &[(&str, &str)] = &[
    ("SECRET_KEY", "fs-golden-secret-key-0123456789abcdef"),
    ("SECURITY_PASSWORD_SALT", "fs-golden-password-salt"),
    ("SECURITY_CHANGE_EMAIL", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ("SECURITY_TOKEN_MAX_AGE", "1 day"),
];

/// The golden vectors, with the settings above.
pub(crate) fn vectors() -> Value {
    let all: Value =
        serde_json::from_str(include_str!("../data/flask_security_vectors.json")).expect("json");
    assert_eq!(all["flask_security_version"], "5.9.2");
    for (name, value) in FS {
        if let Some(expected) = all["settings"][name].as_str() {
            assert_eq!(expected, *value, "{name}");
        }
    }
    all
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

/// The mint time of the vectors.
pub(crate) fn mint(all: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(all["mint_time"].as_i64().expect("mint_time"))
        .expect("time")
}

/// Creates the vectors' user `which` as Flask-Security stored it (uniquifier, email, password
/// hash, two-factor columns) and moves the clock to the mint time.
pub(crate) async fn stored_user(app: &TestApp, all: &Value, which: &str, confirmed: bool) -> User {
    let row = &all["users"][which];
    let now = time::macros::datetime!(2025-11-01 0:00);
    let user = app
        .datastore()
        .create_user(
            &NewUser {
                email: text(row, "email").to_owned(),
                password_hash: Some(text(row, "password").to_owned()),
                active: true,
                confirmed_at: confirmed.then_some(now),
                ..NewUser::default()
            },
            text(row, "fs_uniquifier"),
            now,
            &[],
        )
        .await
        .expect("create the stored user");
    if let Some(method) = row["tf_primary_method"].as_str() {
        app.datastore()
            .set_two_factor(user.id, Some(method), row["tf_totp_secret"].as_str(), now)
            .await
            .expect("two-factor columns");
    }
    if let Some(codes) = row["mf_recovery_codes"].as_str() {
        app.datastore()
            .set_recovery_codes(user.id, Some(codes), now)
            .await
            .expect("recovery codes column");
    }
    app.clock.travel_to(mint(all));
    app.user(text(row, "email")).await
}

backend_test!(
    a_flask_security_auth_token_is_accepted_within_its_lifetime,
    FS,
    async |app: TestApp| {
        let all = vectors();
        stored_user(&app, &all, "plain", true).await;
        let token = text(&all["tokens"], "auth_token");
        app.advance(Duration::from_secs(60));
        let me = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("Authentication-Token", token)
            .send()
            .await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        assert_eq!(
            me.response()["user"]["email"],
            "ada@example.com",
            "{}",
            me.text()
        );
        // SECURITY_TOKEN_MAX_AGE (a day here) later, it has expired.
        app.advance(Duration::from_secs(86_400));
        let late = app
            .client()
            .get("/api/me")
            .accept_json()
            .header("Authentication-Token", token)
            .send()
            .await;
        assert_eq!(late.status, StatusCode::UNAUTHORIZED, "{}", late.text());
    }
);

backend_test!(
    a_flask_login_remember_cookie_signs_in_once_swapped_for_a_series,
    FS,
    async |app: TestApp| {
        let all = vectors();
        let user = stored_user(&app, &all, "plain", true).await;
        let cookie = text(&all["tokens"], "remember_cookie");
        let browser = app.client();
        browser.put_cookie("remember_token", cookie);
        let me = browser.me().await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.text());
        // Replaced by a Rampart series cookie.
        let renewed = browser.cookie("remember_token").expect("a new cookie");
        assert_ne!(renewed, cookie);
        // A forged digest signs nobody in.
        let forged = format!("{}|{}", user.fs_uniquifier, "0".repeat(128));
        let stranger = app.client();
        stranger.put_cookie("remember_token", &forged);
        assert_eq!(stranger.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_flask_security_reset_link_resets_the_password_within_its_lifetime,
    FS,
    async |app: TestApp| {
        let all = vectors();
        stored_user(&app, &all, "plain", true).await;
        let path = format!("/reset/{}", text(&all["tokens"], "reset"));
        let form = app.client().get(&path).send().await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.text());
        let reset = app
            .client()
            .post(&path)
            .json(&json!({"password": "a new long passphrase", "password_confirm": "a new long passphrase"}))
            .send()
            .await;
        assert_eq!(reset.status, StatusCode::OK, "{}", reset.text());
        // Used: the password it was bound to is gone.
        let again = app
            .client()
            .post(&path)
            .json(&json!({"password": "another long passphrase", "password_confirm": "another long passphrase"}))
            .send()
            .await;
        again.assert_field_errors(&json!({"": ["Invalid reset password token."]}));
    }
);

backend_test!(
    a_flask_security_reset_link_expires_with_reset_password_within,
    FS,
    async |app: TestApp| {
        let all = vectors();
        stored_user(&app, &all, "plain", true).await;
        app.advance(Duration::from_secs(2 * 86_400));
        let path = format!("/reset/{}", text(&all["tokens"], "reset"));
        let late = app
            .client()
            .post(&path)
            .json(&json!({"password": "a new long passphrase", "password_confirm": "a new long passphrase"}))
            .send()
            .await;
        assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text());
    }
);

backend_test!(
    a_flask_security_confirmation_link_confirms,
    FS,
    async |app: TestApp| {
        let all = vectors();
        stored_user(&app, &all, "plain", false).await;
        let path = format!("/confirm/{}", text(&all["tokens"], "confirm"));
        let confirmed = app.client().get(&path).send().await;
        assert_eq!(confirmed.location(), Some("/login"), "{}", confirmed.text());
        assert!(app.user("ada@example.com").await.confirmed_at.is_some());
    }
);

backend_test!(
    a_flask_security_change_email_link_changes_the_address,
    FS,
    async |app: TestApp| {
        let all = vectors();
        stored_user(&app, &all, "plain", true).await;
        let path = format!("/change-email/{}", text(&all["tokens"], "change_email"));
        let opened = app.client().get(&path).send().await;
        assert_eq!(opened.status, StatusCode::FOUND, "{}", opened.text());
        assert_eq!(opened.location(), Some("/"));
        assert_eq!(
            app.user(text(&all, "change_email_new_address")).await.email,
            "ada.new@example.com"
        );
    }
);

backend_test!(
    a_flask_security_password_hash_signs_in,
    FS,
    async |app: TestApp| {
        let all = vectors();
        stored_user(&app, &all, "plain", true).await;
        let login = app
            .client()
            .login("ada@example.com", text(&all, "password"))
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    }
);

/// The deployment with two-factor and recovery codes, its secrets at rest as Flask-Security keeps
/// them.
const FS_TWO_FACTOR: &[(&str, &str)] = &[
    ("SECRET_KEY", "fs-golden-secret-key-0123456789abcdef"),
    ("SECURITY_PASSWORD_SALT", "fs-golden-password-salt"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_MULTI_FACTOR_RECOVERY_CODES", "true"),
    (
        "SECURITY_TOTP_SECRETS",
        r#"{"1": "first-totp-key-Ql8wzPq2", "2": "second-totp-key-Vb71xRt0"}"#,
    ),
    (
        "SECURITY_MULTI_FACTOR_RECOVERY_CODES_KEYS",
        "b2Rp0nM3bEYb2g9h3V0p7m5QKk1x2q8cP1o4s6u8w0E=, Y3Jvc3NpbmctdGhlLXJpdmVyLWF0LWRhd24tMTIzNDU=",
    ),
];

async fn post_code(
    client: &crate::harness::TestClient,
    code: &str,
) -> crate::harness::TestResponse {
    client
        .post("/tf-validate")
        .json(&json!({ "code": code }))
        .send()
        .await
}

fn now_secs(app: &TestApp) -> u64 {
    use rampart::Clock as _;
    u64::try_from(app.clock.now().unix_timestamp()).expect("after 1970")
}

backend_test!(
    a_flask_security_user_signs_in_with_a_code_of_the_secret_it_encrypted,
    FS_TWO_FACTOR,
    async |app: TestApp| {
        let all = vectors();
        let row = &all["users"]["two_factor"];
        stored_user(&app, &all, "two_factor", true).await;
        let browser = app.client();
        let login = browser
            .login("tf@example.com", text(&all, "password"))
            .await;
        assert_eq!(login.response()["tf_required"], true, "{}", login.text());
        // The code an authenticator app holding Flask-Security's secret shows now.
        let key = text(row, "totp_base32");
        let code = rampart::totp::code_at(key, now_secs(&app)).expect("code");
        let done = post_code(&browser, &code).await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(browser.me().await.status, StatusCode::OK);
        // Written under key id 1: stored again under the newest (2), the same key inside.
        let stored = app
            .user("tf@example.com")
            .await
            .tf_totp_secret
            .expect("a secret");
        assert!(stored.contains(r#""t":"2""#), "{stored}");
        let keys = &app.security.config().two_factor.totp_secrets;
        let opened = rampart::totp::stored::open(&stored, keys).expect("readable");
        assert_eq!(opened.base32, key);
        assert!(!opened.needs_rewrite);
    }
);

backend_test!(
    flask_security_encrypted_recovery_codes_sign_in_once,
    FS_TWO_FACTOR,
    async |app: TestApp| {
        let all = vectors();
        let codes = &all["users"]["two_factor"]["recovery_codes"];
        stored_user(&app, &all, "two_factor", true).await;
        let browser = app.client();
        browser
            .login("tf@example.com", text(&all, "password"))
            .await;
        let first = codes[1].as_str().expect("code");
        let done = browser
            .post("/mf-recovery")
            .json(&json!({ "code": first }))
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        // The others stay usable (now stored as Rampart's digests); the spent one is gone.
        let stored = app
            .user("tf@example.com")
            .await
            .mf_recovery_codes
            .expect("codes");
        assert!(stored.starts_with('['), "{stored}");
        let again = app.client();
        again.login("tf@example.com", text(&all, "password")).await;
        let spent = again
            .post("/mf-recovery")
            .json(&json!({ "code": first }))
            .send()
            .await;
        spent.assert_field_errors(&json!({"code": ["Recovery code invalid"]}));
        let other = again
            .post("/mf-recovery")
            .json(&json!({ "code": codes[3] }))
            .send()
            .await;
        assert_eq!(other.status, StatusCode::OK, "{}", other.text());
    }
);

backend_test!(
    a_malformed_stored_secret_is_a_clear_refusal_not_a_500,
    FS_TWO_FACTOR,
    async |app: TestApp| {
        let all = vectors();
        let user = stored_user(&app, &all, "two_factor", true).await;
        let now = time::macros::datetime!(2025-11-02 0:00);
        for (method, garbage) in [
            ("authenticator", "{\"enckey\": 42"),
            (
                "authenticator",
                r#"{"enckey":{"c":14,"k":"AAAA","s":"AAAA","t":"9","v":1},"type":"totp","v":1}"#,
            ),
            ("authenticator", "not base32 at all!"),
            ("email", "{\"enckey\": 42"),
        ] {
            app.datastore()
                .set_two_factor(user.id, Some(method), Some(garbage), now)
                .await
                .expect("store garbage");
            let browser = app.client();
            let login = browser
                .login("tf@example.com", text(&all, "password"))
                .await;
            assert_eq!(login.status, StatusCode::OK, "{garbage}: {}", login.text());
            if method == "email" {
                // Mailed codes do not use the secret: the sign-in works.
                let mail = app.mail_to("tf@example.com").await;
                let marker = "using the following code: ";
                let start = mail.text.find(marker).expect("code") + marker.len();
                let done = post_code(&browser, &mail.text[start..start + 6]).await;
                assert_eq!(done.status, StatusCode::OK, "{}", done.text());
            } else {
                let refused = post_code(&browser, "123456").await;
                refused.assert_field_errors(&json!({"code": [
                    "Your authenticator cannot be checked right now. Use a recovery code or get a code by email."
                ]}));
            }
        }
    }
);

backend_test!(
    turning_two_factor_on_ends_other_sessions_and_remember_cookies,
    FS_TWO_FACTOR,
    async |app: TestApp| {
        let all = vectors();
        stored_user(&app, &all, "plain", true).await;
        let password = text(&all, "password");
        // Before: a Flask-Login remember cookie, a Rampart remember-me browser, another session.
        let legacy = app.client();
        legacy.put_cookie("remember_token", text(&all["tokens"], "remember_cookie"));
        let remembered = app.client();
        let login = remembered
            .post("/login")
            .json(&json!({"email": "ada@example.com", "password": password, "remember": true}))
            .send()
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        let cookie = remembered.cookie("remember_token").expect("remember_token");
        let other = app.client();
        other.login_ok("ada@example.com", password).await;

        let me = app.client();
        me.login_ok("ada@example.com", password).await;
        let setup = me
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
        let code = rampart::totp::code_at(&secret, now_secs(&app)).expect("code");
        let done = me
            .post("/tf-validate")
            .json(&json!({ "code": code }))
            .csrf()
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        // The new secret is stored encrypted under the newest key id.
        let stored = app
            .user("ada@example.com")
            .await
            .tf_totp_secret
            .expect("secret");
        assert!(stored.starts_with(r#"{"enckey":"#), "{stored}");
        assert!(stored.contains(r#""t":"2""#), "{stored}");
        assert!(!stored.contains(&secret));

        // This browser stays signed in; nothing from before skips the new factor.
        assert_eq!(me.me().await.status, StatusCode::OK);
        assert_eq!(other.me().await.status, StatusCode::UNAUTHORIZED);
        assert_eq!(legacy.me().await.status, StatusCode::UNAUTHORIZED);
        let returning = app.client();
        returning.put_cookie("remember_token", &cookie);
        assert_eq!(returning.me().await.status, StatusCode::UNAUTHORIZED);
    }
);

backend_test!(
    a_flask_security_two_factor_setup_state_finishes_the_setup_here,
    FS_TWO_FACTOR,
    async |app: TestApp| {
        let all = vectors();
        let row = &all["users"]["two_factor"];
        stored_user(&app, &all, "two_factor", true).await;
        let browser = app.client();
        browser
            .login("tf@example.com", text(&all, "password"))
            .await;
        let code = rampart::totp::code_at(text(row, "totp_base32"), now_secs(&app)).expect("code");
        assert_eq!(post_code(&browser, &code).await.status, StatusCode::OK);
        let path = format!("/tf-setup/{}", text(&all["tokens"], "tf_setup_state"));
        let wrong = browser
            .post(&path)
            .json(&json!({"code": "000000"}))
            .csrf()
            .send()
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        // The secret the state carries (what the app was shown), a step later.
        app.advance(Duration::from_secs(30));
        let new_key = text(&all["setup_state_base32"], "tf_setup_state");
        let code = rampart::totp::code_at(new_key, now_secs(&app)).expect("code");
        let done = browser
            .post(&path)
            .json(&json!({ "code": code }))
            .csrf()
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        let stored = app
            .user("tf@example.com")
            .await
            .tf_totp_secret
            .expect("secret");
        let keys = &app.security.config().two_factor.totp_secrets;
        assert_eq!(
            rampart::totp::stored::open(&stored, keys)
                .expect("readable")
                .base32,
            new_key
        );
        // Past TWO_FACTOR_SETUP_WITHIN (30 minutes) the state has expired.
        app.advance(Duration::from_secs(31 * 60));
        let late = browser
            .post(&path)
            .json(&json!({ "code": code }))
            .csrf()
            .send()
            .await;
        assert_eq!(late.status, StatusCode::BAD_REQUEST, "{}", late.text());
        assert!(
            late.text()
                .contains("Setup must be completed within 30 minutes"),
            "{}",
            late.text()
        );
    }
);

/// [`FS_TWO_FACTOR`] with unified sign-in on.
const FS_UNIFIED: &[(&str, &str)] = &[
    ("SECRET_KEY", "fs-golden-secret-key-0123456789abcdef"),
    ("SECURITY_PASSWORD_SALT", "fs-golden-password-salt"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    (
        "SECURITY_TOTP_SECRETS",
        r#"{"1": "first-totp-key-Ql8wzPq2", "2": "second-totp-key-Vb71xRt0"}"#,
    ),
];

// A unified sign-in setup state minted by Flask-Security is read (signature, lifetime and the
// secret it carries) and finishes the setup at `/us-setup/<state>`: the authenticator it carries
// then signs in at `/us-signin`.
backend_test!(
    a_flask_security_unified_sign_in_setup_state_finishes_the_setup_here,
    FS_UNIFIED,
    async |app: TestApp| {
        let all = vectors();
        let token = text(&all["tokens"], "us_setup_state");
        let state: Value = app
            .security
            .signer()
            .verify(
                "us-setup-salt",
                token,
                Some(Duration::from_secs(30 * 60)),
                mint(&all),
            )
            .expect("authentic and within SECURITY_US_SETUP_WITHIN");
        assert_eq!(state["chosen_method"], "authenticator");
        let keys = &app.security.config().two_factor.totp_secrets;
        let opened =
            rampart::totp::stored::open(text(&state, "totp_secret"), keys).expect("readable");
        let base32 = text(&all["setup_state_base32"], "us_setup_state");
        assert_eq!(opened.base32, base32);

        app.clock.travel_to(mint(&all));
        let client = app.logged_in("us@example.com").await;
        let path = format!("/us-setup/{token}");
        let wrong = client
            .post(&path)
            .json(&json!({"passcode": "000000"}))
            .csrf()
            .send()
            .await;
        assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.text());
        let code = rampart::totp::code_at(base32, now_secs(&app)).expect("code");
        let done = client
            .post(&path)
            .json(&json!({ "passcode": code }))
            .csrf()
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert_eq!(done.response()["chosen_method"], "authenticator");
        client.logout().await;
        app.advance(Duration::from_secs(30));
        let code = rampart::totp::code_at(base32, now_secs(&app)).expect("code");
        let signin = app
            .client()
            .post("/us-signin")
            .json(&json!({"identity": "us@example.com", "passcode": code}))
            .send()
            .await;
        assert_eq!(signin.status, StatusCode::OK, "{}", signin.text());
        // Past SECURITY_US_SETUP_WITHIN the state has expired.
        app.advance(Duration::from_secs(31 * 60));
        let again = app.logged_in("late@example.com").await;
        let late = again
            .post(&path)
            .json(&json!({ "passcode": "123456" }))
            .csrf()
            .send()
            .await;
        assert!(
            late.text()
                .contains("Setup must be completed within 30 minutes"),
            "{}",
            late.text()
        );
    }
);
