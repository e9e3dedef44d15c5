//! Recovery codes (`SECURITY_MULTI_FACTOR_RECOVERY_CODES`, CONTRACT.md `/mf-recovery-codes`,
//! `/mf-recovery`): a code stands in for the second factor once; guessing is throttled.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, backend_test};
use crate::two_factor::{assert_denied, checked, pending_login, with_authenticator};

const WITH_RECOVERY: &[(&str, &str)] = &[
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_MULTI_FACTOR_RECOVERY_CODES", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

backend_test!(
    a_recovery_code_stands_in_for_the_second_factor_once,
    WITH_RECOVERY,
    async |app: TestApp| {
        let (client, _) = with_authenticator(&app, "ann@example.com").await;
        let made = client
            .post("/mf-recovery-codes")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        assert_eq!(made.status, StatusCode::OK, "{}", made.text());
        let codes: Vec<String> = made.response()["recovery_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_owned())
            .collect();
        assert_eq!(codes.len(), 5);
        for code in &codes {
            assert_eq!(code.len(), 14, "{code}");
            assert_eq!(code.matches('-').count(), 2, "{code}");
        }
        // Stored as digests only; shown once.
        let stored = app
            .user("ann@example.com")
            .await
            .mf_recovery_codes
            .expect("stored");
        assert!(
            codes.iter().all(|c| !stored.contains(c.as_str())),
            "{stored}"
        );
        let listed = client.get("/mf-recovery-codes").accept_json().send().await;
        assert_eq!(listed.response()["recovery_codes"], json!([]));
        assert_eq!(listed.response()["recovery_codes_left"], 5);
        client.logout().await;

        let browser = app.client();
        browser.login("ann@example.com", PASSWORD).await;
        let wrong = browser
            .post("/mf-recovery")
            .json(&json!({"code": "0000-0000-0000"}))
            .send()
            .await;
        wrong.assert_field_errors(&json!({"code": ["Recovery code invalid"]}));
        let typed = format!(" {} ", codes[2].to_uppercase());
        let done = browser
            .post("/mf-recovery?include_auth_token")
            .json(&json!({ "code": typed }))
            .send()
            .await;
        assert_eq!(done.status, StatusCode::OK, "{}", done.text());
        assert!(done.response()["user"]["authentication_token"].is_string());
        assert_eq!(browser.me().await.status, StatusCode::OK);
        let listed = browser.get("/mf-recovery-codes").accept_json().send().await;
        assert_eq!(listed.response()["recovery_codes_left"], 4);
        browser.logout().await;

        // Spent: the same code no longer works.
        let again = app.client();
        again.login("ann@example.com", PASSWORD).await;
        let spent = again
            .post("/mf-recovery")
            .json(&json!({ "code": codes[2] }))
            .send()
            .await;
        spent.assert_field_errors(&json!({"code": ["Recovery code invalid"]}));

        let anonymous = app
            .client()
            .get("/mf-recovery-codes")
            .accept_json()
            .send()
            .await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
        let nothing_pending = app
            .client()
            .post("/mf-recovery")
            .json(&json!({ "code": codes[0] }))
            .send()
            .await;
        assert_denied(&nothing_pending);
    }
);

backend_test!(
    a_burst_of_concurrent_wrong_recovery_codes_gets_at_most_the_limit_checked,
    WITH_RECOVERY,
    async |app: TestApp| {
        let (client, _) = with_authenticator(&app, "ann@example.com").await;
        let made = client
            .post("/mf-recovery-codes")
            .json(&json!({}))
            .csrf()
            .send()
            .await;
        assert_eq!(made.status, StatusCode::OK, "{}", made.text());
        let right = made.response()["recovery_codes"][0]
            .as_str()
            .expect("a code")
            .to_owned();
        let browser = pending_login(&app, &client, "ann@example.com").await;
        let guesses: Vec<String> = (0..60).map(|i| format!("0000-0000-{i:04}")).collect();
        let answers = futures_util::future::join_all(guesses.iter().map(|guess| {
            browser
                .post("/mf-recovery")
                .json(&json!({ "code": guess }))
                .send()
        }))
        .await;
        assert_eq!(checked(&answers), 10, "exactly the limit was checked");
        let refused = browser
            .post("/mf-recovery")
            .json(&json!({ "code": right }))
            .send()
            .await;
        assert_eq!(
            refused.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{}",
            refused.text()
        );
        assert_eq!(browser.me().await.status, StatusCode::UNAUTHORIZED);
    }
);
