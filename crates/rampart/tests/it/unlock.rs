//! Unlocking a paused account (CONTRACT.md `/unlock/<token>`): the one mail a paused account
//! gets, and its link.

use axum::http::StatusCode;

use crate::harness::{PASSWORD, TestApp, backend_test};
use crate::rate_limit::IDENTITY_LIMIT;

backend_test!(
    a_paused_account_gets_one_unlock_mail_and_the_link_lets_its_owner_in,
    IDENTITY_LIMIT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        for _ in 0..3 {
            app.client().login("ann@example.com", "guess").await;
        }
        let paused = app.client().login("ann@example.com", PASSWORD).await;
        assert_eq!(paused.status, StatusCode::TOO_MANY_REQUESTS);
        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Unlock your account");
        assert!(mail.text.contains("paused for 10 minutes"), "{}", mail.text);
        let path = crate::harness::path_of(
            &rampart::find_link(&mail.text, "/unlock/").expect("unlock link"),
        );
        // More refusals in the same window send nothing more.
        let again = app.client().login("ann@example.com", "guess").await;
        assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
        app.assert_no_mail_to("ann@example.com").await;
        // Unknown accounts are paused alike, and mail nobody.
        for _ in 0..4 {
            app.client().login("nobody@example.com", "guess").await;
        }
        app.assert_no_mail_to("nobody@example.com").await;

        let browser = app.client();
        let opened = browser.get(&path).send().await;
        assert_eq!(opened.status, StatusCode::FOUND, "{}", opened.text());
        assert_eq!(opened.location(), Some("/login"));
        let page = browser.get("/login").send().await;
        assert!(
            page.html().contains("Your account is unlocked"),
            "{}",
            page.text()
        );
        browser.login_ok("ann@example.com", PASSWORD).await;

        let stranger = app.client();
        let forged = stranger.get("/unlock/forged-token").send().await;
        assert_eq!(forged.location(), Some("/login"));
        let page = stranger.get("/login").send().await;
        assert!(
            page.html().contains("invalid or has expired"),
            "{}",
            page.text()
        );
    }
);

backend_test!(
    unlock_account_lifts_the_pause_without_http,
    IDENTITY_LIMIT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        for _ in 0..4 {
            app.client().login("ann@example.com", "guess").await;
        }
        let path = app.path_in_mail("ann@example.com", "/unlock/").await;
        let token = path.trim_start_matches("/unlock/");
        assert!(matches!(
            rampart::unlock_account(&app.security, "forged")
                .await
                .expect("unlock"),
            rampart::UnlockOutcome::Invalid
        ));
        let rampart::UnlockOutcome::Unlocked(user) = rampart::unlock_account(&app.security, token)
            .await
            .expect("unlock")
        else {
            panic!("a genuine link unlocks");
        };
        assert_eq!(user.email, "ann@example.com");
        app.client().login_ok("ann@example.com", PASSWORD).await;
    }
);
