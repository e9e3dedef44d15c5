//! The web pages in headless Chromium, as a person uses them: the app on `127.0.0.1:0`, mail
//! through SMTP to a sink, links opened from the received mails. Every page visited is saved as a
//! screenshot at desktop and phone widths (see [`driver`]). Skipped with a notice when Chromium
//! is not installed, except under CI.
//!
//! SQLite only, not stamped per backend like the HTTP tests (which cover PostgreSQL, with the
//! same server code): the browser tests take turns (one Chromium at a time) and save 36 pages at
//! two widths each, so a PostgreSQL half would add their whole serial time again (estimated at
//! over a minute) and overwrite the SQLite half's screenshots.

mod driver;

use std::time::Duration;

use image::{ImageFormat, Rgb, RgbImage};
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, PASSWORD, TestApp};
use driver::Browser;

const NEW_PASSWORD: &str = "a much better passphrase";

/// A colourful test picture, written to `dir`.
fn picture(dir: &std::path::Path) -> std::path::PathBuf {
    let image = RgbImage::from_fn(320, 320, |x, y| {
        let (dx, dy) = (x as f32 - 160.0, y as f32 - 130.0);
        let face = dx * dx + dy * dy < 70.0 * 70.0;
        let body = (y > 210) && ((x as f32 - 160.0).abs() < 120.0 - (320 - y) as f32 * 0.2);
        if face || body {
            Rgb([250, 214, 165])
        } else {
            Rgb([(60 + x / 3) as u8, (90 + y / 4) as u8, 200])
        }
    });
    let path = dir.join("me.png");
    image
        .save_with_format(&path, ImageFormat::Png)
        .expect("save picture");
    path
}

/// The link to `path_prefix` in the next mail to `to`.
async fn link_in_mail(app: &TestApp, to: &str, subject: &str, path_prefix: &str) -> String {
    let mail = app.mail_to(to).await;
    assert_eq!(mail.subject, subject, "{}", mail.text);
    rampart::find_link(&mail.text, path_prefix).expect("link in the mail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_signs_up_confirms_edits_the_profile_changes_password_and_deletes_the_account() {
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    let email = "ada@example.com";

    // Sign up: an empty form shows every problem next to its field, terms included.
    browser.open("/register").await;
    browser.wait_for_text("Create your account").await;
    browser.shot("sign-up").await;
    browser.click("#sign-up").await;
    let page = browser.wait_for_text("Please check the form").await;
    assert!(page.contains(rampart_app::TERMS_REQUIRED), "{page}");
    assert_eq!(
        browser.attr("#email", "aria-invalid").await.as_deref(),
        Some("true")
    );
    assert_eq!(
        browser.attr("#terms", "aria-invalid").await.as_deref(),
        Some("true")
    );
    browser.shot("sign-up-errors").await;

    browser.fill("#username", "adalovelace").await;
    browser.fill("#email", email).await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#password_confirm", PASSWORD).await;
    browser.click("#terms").await;
    browser.click("#sign-up").await;
    let page = browser.wait_for_text("Check your email").await;
    assert!(page.contains(email), "{page}");
    browser.shot("check-your-email").await;

    // Not confirmed yet: refused. Then the link from the mail confirms.
    browser
        .sign_in(email, PASSWORD, "Email requires confirmation.")
        .await;
    let link = link_in_mail(&app, email, "Welcome", "/confirm/").await;
    browser.open(&link).await;
    browser.wait_for_path("/login").await;
    browser.wait_for_text("Your email has been confirmed").await;
    browser.shot("sign-in-confirmed").await;

    // A wrong password, then the right one (by username).
    browser.fill("#email", email).await;
    browser.fill("#password", "not my password").await;
    browser.click("#sign-in").await;
    browser.wait_for_text("and password don't match").await;
    assert_eq!(
        browser.attr("#email", "value").await.as_deref(),
        Some(email)
    );
    browser.shot("sign-in-wrong-password").await;
    browser
        .sign_in("adalovelace", PASSWORD, "Welcome, adalovelace")
        .await;
    browser.wait_for_path("/").await;
    browser.shot("dashboard").await;
    browser.click(".usermenu summary").await;
    browser.wait_for_text("Signed in as").await;
    browser.shot("user-menu").await;

    // Profile: a file that only claims to be a picture is refused and nothing is saved…
    browser.open("/dashboard/profile/").await;
    browser.wait_for_text("Personal details").await;
    let dir = tempfile::tempdir().expect("dir");
    let fake = dir.path().join("cat.png");
    std::fs::write(&fake, "<svg xmlns='http://www.w3.org/2000/svg'/>").expect("fake");
    browser.fill("#first_name", "Ada").await;
    browser.fill("#avatar", &fake.display().to_string()).await;
    browser.click("#save-profile").await;
    browser
        .wait_for_text("Choose a PNG, JPEG or WebP picture.")
        .await;
    assert_eq!(
        browser.attr("#avatar", "aria-invalid").await.as_deref(),
        Some("true")
    );
    assert_eq!(
        browser.attr("#first_name", "value").await.as_deref(),
        Some("Ada")
    );
    browser.shot("profile-errors").await;

    // … then the details and a real picture are saved.
    browser.fill("#last_name", "Lovelace").await;
    browser.set_value("#dob", "1990-12-10").await;
    browser.fill("#phone", "+44 20 7946 0000").await;
    browser.fill("#address", "12 St James's Square").await;
    browser.fill("#city", "London").await;
    browser.fill("#zip", "SW1Y 4JH").await;
    browser.fill("#country", "United Kingdom").await;
    browser
        .client
        .execute("document.getElementById('gender').value = 'female'", vec![])
        .await
        .expect("gender");
    browser
        .fill("#avatar", &picture(dir.path()).display().to_string())
        .await;
    browser.click("#save-profile").await;
    browser.wait_for_text("Your profile has been saved.").await;
    let avatar = browser
        .attr("#avatar-image", "src")
        .await
        .expect("avatar shown");
    assert!(avatar.starts_with("/media/avatars/"), "{avatar}");
    let avatar = format!("{}{avatar}", app.base);
    assert_eq!(
        browser.attr("#dob", "value").await.as_deref(),
        Some("1990-12-10")
    );
    browser.shot("profile").await;
    let response = reqwest::get(&avatar).await.expect("avatar");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    browser.open("/").await;
    browser.wait_for_text("Welcome, Ada").await;
    // The header's menu shows the profile too: picture and name.
    assert!(
        browser.exists(".usermenu summary img.avatar").await,
        "the picture"
    );
    assert_eq!(
        browser
            .client
            .execute(
                "return document.querySelector('.usermenu-name').textContent",
                vec![]
            )
            .await
            .expect("menu name")
            .as_str(),
        Some("Ada")
    );
    browser.shot("dashboard-with-profile").await;

    // Security: a wrong current password, then a change.
    browser.open("/dashboard/security/").await;
    browser.wait_for_text("Change password").await;
    browser.shot("security").await;
    browser.fill("#password", "wrong").await;
    browser.fill("#new_password", NEW_PASSWORD).await;
    browser.fill("#new_password_confirm", NEW_PASSWORD).await;
    browser.click("#change-password").await;
    browser.wait_for_text("Invalid password").await;
    browser.fill("#password", PASSWORD).await;
    browser.fill("#new_password", NEW_PASSWORD).await;
    browser.fill("#new_password_confirm", NEW_PASSWORD).await;
    browser.click("#change-password").await;
    browser
        .wait_for_text("You successfully changed your password.")
        .await;
    browser.shot("security-password-changed").await;
    assert_eq!(
        app.mail_to(email).await.subject,
        "Your password has been changed"
    );

    // Sign out; the old password no longer works, the new one does.
    browser.sign_out().await;
    browser
        .sign_in(email, PASSWORD, "and password don't match")
        .await;
    browser
        .sign_in(email, NEW_PASSWORD, "Welcome back, Ada")
        .await;

    // Delete the account: the password first, then a confirmation step.
    browser.open("/dashboard/security/").await;
    browser.fill("#delete_password", "wrong").await;
    browser.click("#delete-account").await;
    browser.wait_for_text("Invalid password").await;
    assert_eq!(
        browser
            .attr("#delete_password", "aria-invalid")
            .await
            .as_deref(),
        Some("true")
    );
    browser.fill("#delete_password", NEW_PASSWORD).await;
    browser.click("#delete-account").await;
    browser.wait_for_text("Delete your account?").await;
    browser.shot("delete-account-confirm").await;
    browser.click("#confirm-delete").await;
    browser.wait_for_path("/login").await;
    browser.wait_for_text("have been deleted").await;
    browser.shot("account-deleted").await;
    assert_eq!(
        reqwest::get(&avatar).await.expect("avatar").status(),
        StatusCode::NOT_FOUND,
        "the picture goes with the account"
    );
    assert!(
        app.security
            .datastore()
            .user_by_email(email)
            .await
            .expect("lookup")
            .is_none()
    );

    // Signing in is refused now.
    browser
        .sign_in(email, NEW_PASSWORD, "and password don't match")
        .await;
    assert_eq!(browser.path().await, "/login");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_and_used_links_are_explained_with_a_way_forward() {
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    let email = "grace@example.com";
    let client = app.client();
    let (status, body) = client
        .post_json(
            "/register",
            json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let link = link_in_mail(&app, email, "Welcome", "/confirm/").await;

    // Six days later the link has expired: the page says so and a fresh one is mailed.
    app.clock.advance(Duration::from_secs(6 * 86_400));
    browser.open(&link).await;
    browser.wait_for_path("/confirm").await;
    let page = browser.wait_for_text("This link has expired").await;
    assert!(
        page.contains("You did not confirm your email within 5 days"),
        "{page}"
    );
    assert!(page.contains(email), "{page}");
    browser.shot("confirm-link-expired").await;
    let fresh = link_in_mail(&app, email, "Please confirm your email", "/confirm/").await;
    browser.open(&fresh).await;
    browser.wait_for_text("Your email has been confirmed").await;

    // Used twice: explained, with the way forward (sign in, or ask for a new link).
    browser.open(&fresh).await;
    let page = browser.wait_for_text("This link can't be used").await;
    assert!(
        page.contains("This confirmation link doesn't work"),
        "{page}"
    );
    browser.shot("confirm-link-used").await;
    browser.open("/confirm").await;
    browser.wait_for_text("Confirm your email").await;
    browser.shot("resend-confirmation").await;

    // Forgot password → mail → new password.
    browser.open("/login").await;
    browser.click("a[href='/reset']").await;
    browser.wait_for_text("Forgot your password?").await;
    browser.shot("forgot-password").await;
    browser.fill("#email", email).await;
    browser.click("#send-reset").await;
    browser.wait_for_text("Check your email").await;
    browser.shot("reset-link-sent").await;
    let reset = link_in_mail(&app, email, "Password reset instructions", "/reset/").await;
    browser.open(&reset).await;
    browser.wait_for_text("Choose a new password").await;
    browser.fill("#password", NEW_PASSWORD).await;
    browser.fill("#password_confirm", "something else").await;
    browser.click("#reset-password").await;
    browser.wait_for_text("Passwords do not match").await;
    browser.shot("reset-password-errors").await;
    browser.fill("#password", NEW_PASSWORD).await;
    browser.fill("#password_confirm", NEW_PASSWORD).await;
    browser.click("#reset-password").await;
    browser.wait_for_path("/login").await;
    browser
        .wait_for_text("You successfully reset your password")
        .await;
    browser.shot("reset-password-done").await;
    browser.sign_in(email, NEW_PASSWORD, "Welcome").await;
    browser.sign_out().await;

    // The reset link worked once.
    browser.open(&reset).await;
    browser.wait_for_path("/reset").await;
    browser.wait_for_text("This reset link can't be used").await;
    browser.shot("reset-link-used").await;

    // An expired reset link mails a new one.
    browser.open("/reset").await;
    browser.fill("#email", email).await;
    browser.click("#send-reset").await;
    browser.wait_for_text("Check your email").await;
    let _notice = app.mail_to(email).await; // "Your password has been reset"
    let old = link_in_mail(&app, email, "Password reset instructions", "/reset/").await;
    app.clock.advance(Duration::from_secs(2 * 86_400));
    browser.open(&old).await;
    let page = browser.wait_for_text("This reset link has expired").await;
    assert!(
        page.contains("You did not reset your password within 1 day"),
        "{page}"
    );
    browser.shot("reset-link-expired").await;
    link_in_mail(&app, email, "Password reset instructions", "/reset/").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_deactivates_a_user_who_then_cannot_sign_in_and_others_are_refused_the_admin_area()
{
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    app.create_user("bob@example.com").await;
    for n in 1..=11 {
        app.create_user(&format!("user{n:02}@example.com")).await;
    }

    // A plain user: the admin area is refused with the 403 page; unknown pages get the 404 page.
    browser
        .sign_in("bob@example.com", PASSWORD, "Welcome")
        .await;
    assert!(
        !browser.exists("a[href='/admin/users']").await,
        "no Admin link"
    );
    browser.open("/admin/users").await;
    let page = browser.wait_for_text("You can't go there").await;
    assert!(page.contains("403"), "{page}");
    browser.shot("error-403").await;
    browser.open("/no/such/page").await;
    browser.wait_for_text("Page not found").await;
    browser.shot("error-404").await;
    browser.open("/").await;
    browser.sign_out().await;

    // The admin: the list has pages and a search.
    browser
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "Welcome")
        .await;
    browser.click("a[href='/admin/users']").await;
    let page = browser.wait_for_text("13 users").await;
    assert!(page.contains("Page 1 of 2"), "{page}");
    assert!(
        browser.fits_at_phone_width(".mainnav a").await,
        "every tab whole on a phone (\"Admin\", not \"Adm\")"
    );
    browser.shot("admin-users").await;
    browser.click("a[rel=next]").await;
    browser.wait_for_text("Page 2 of 2").await;
    browser.fill("#q", "bob").await;
    browser.click("#search").await;
    browser.wait_for_text("1 user matching").await;

    // Give bob the Admin role and take it back.
    browser
        .click("tr[data-email='bob@example.com'] .add-role button")
        .await;
    browser
        .wait_for_text("bob@example.com now has the role Admin.")
        .await;
    browser
        .click("tr[data-email='bob@example.com'] button[aria-label^='Remove role Admin']")
        .await;
    browser
        .wait_for_text("bob@example.com no longer has the role Admin.")
        .await;

    // Deactivate bob: asked first.
    browser
        .click("tr[data-email='bob@example.com'] summary[aria-label^='Deactivate']")
        .await;
    browser
        .wait_for_text("block sign-in until reactivated?")
        .await;
    browser.shot("admin-deactivate-confirm").await;
    browser
        .click("tr[data-email='bob@example.com'] button[aria-label^='Yes, deactivate']")
        .await;
    browser
        .wait_for_text("bob@example.com has been deactivated")
        .await;
    assert_eq!(browser.path().await, "/admin/users?q=bob");
    browser.shot("admin-user-deactivated").await;
    browser.sign_out().await;

    // Bob cannot sign in any more.
    browser
        .sign_in("bob@example.com", PASSWORD, "Account is disabled.")
        .await;
    assert_eq!(browser.path().await, "/login");
    browser.shot("sign-in-disabled").await;

    // The login page itself, for the README.
    browser.open("/login").await;
    browser.wait_for_text("Sign in").await;
    browser.shot("sign-in").await;
    browser.close().await;
}

/// The key shown under the QR code, without its dashes.
fn key_on_page(page: &str) -> String {
    let marker = "Type this key: ";
    let start = page.find(marker).expect("the key is shown") + marker.len();
    page[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .filter(|c| *c != '-')
        .collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_turns_on_an_authenticator_signs_in_with_a_code_and_changes_the_email_address() {
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    app.create_user("carol@example.com").await;
    browser
        .sign_in("carol@example.com", PASSWORD, "Welcome")
        .await;

    // Two-factor from the security page: choose the app, scan, confirm with a code.
    browser.open("/dashboard/security/").await;
    browser.wait_for_text("Two-factor authentication").await;
    browser.click("#tf-manage").await;
    browser.wait_for_text("Two-factor sign-in is off").await;
    browser.shot("two-factor-choose").await;
    browser.click("input[value=authenticator]").await;
    browser.click("#tf-setup").await;
    let page = browser
        .wait_for_text("Scan with your authenticator app")
        .await;
    assert!(browser.exists("#tf-qr svg").await, "a QR code");
    browser.shot("two-factor-scan").await;
    let key = key_on_page(&page);
    browser.fill("#code", "000000").await;
    browser.click("#tf-confirm").await;
    browser.wait_for_text("Invalid code").await;
    let setup_code = rampart::totp::code_at(&key, unix_now()).expect("code");
    browser.fill("#code", &setup_code).await;
    browser.click("#tf-confirm").await;
    browser.wait_for_path("/dashboard/security/").await;
    browser
        .wait_for_text("Two-factor authentication is on.")
        .await;
    browser.shot("security-two-factor-on").await;

    // Recovery codes, shown once.
    browser.click("#recovery-codes-link").await;
    browser.wait_for_text("No recovery codes yet").await;
    browser.click("#generate-recovery-codes").await;
    let page = browser.wait_for_text("Save these codes now").await;
    browser.shot("recovery-codes").await;
    let recovery_code = page
        .split_whitespace()
        .find(|w| w.len() == 14 && w.matches('-').count() == 2)
        .expect("a recovery code on the page")
        .to_owned();
    // Download and copy, then the "I have saved them" step (the box must be ticked).
    let download = browser
        .attr("#download-recovery-codes", "href")
        .await
        .expect("download link");
    assert!(download.contains(&recovery_code), "{download}");
    assert!(
        browser.exists("#copy-recovery-codes:not([hidden])").await,
        "the copy button, shown by the script"
    );
    let here = browser.path().await;
    browser.click("#codes-done").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(browser.path().await, here, "not without the box ticked");
    browser.click("#codes-saved").await;
    browser.click("#codes-done").await;
    browser.wait_for_path("/dashboard/security/").await;
    browser.wait_for_text("Two-factor authentication").await;

    // Signing in now asks for the code after the password.
    browser.sign_out().await;
    browser.submit_sign_in("carol@example.com", PASSWORD).await;
    browser.wait_for_path("/tf-validate").await;
    browser.wait_for_text("Enter your code").await;
    browser.shot("two-factor-code").await;
    // The setup spent its step; the app's next code is accepted a little early.
    let next_code = rampart::totp::code_at(&key, unix_now() + 30).expect("code");
    browser.fill("#code", &next_code).await;
    browser.click("#tf-verify").await;
    browser.wait_for_text("Welcome").await;

    // Without the phone: a recovery code instead, once.
    browser.sign_out().await;
    browser.submit_sign_in("carol@example.com", PASSWORD).await;
    browser.wait_for_path("/tf-validate").await;
    browser.click("#tf-use-recovery-code").await;
    browser.wait_for_text("Use a recovery code").await;
    browser.shot("recovery-code-sign-in").await;
    browser.fill("#code", &recovery_code).await;
    browser.click("#recovery-verify").await;
    browser.wait_for_text("Welcome").await;

    // A new email address, confirmed from the mail sent to it.
    browser.open("/dashboard/security/").await;
    browser.click("#change-email-link").await;
    browser.wait_for_text("New email address").await;
    browser.shot("change-email").await;
    browser.fill("#email", "carol.new@example.com").await;
    browser.click("#send-change-email").await;
    browser
        .wait_for_text("Instructions to confirm your new email address have been sent")
        .await;
    let link = link_in_mail(
        &app,
        "carol.new@example.com",
        "Confirm your new email address",
        "/change-email/",
    )
    .await;
    browser.open(link.trim_start_matches(&app.base)).await;
    browser
        .wait_for_text("Change of email address confirmed")
        .await;
    browser.open("/dashboard/security/").await;
    browser.wait_for_text("carol.new@example.com").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passkey_is_added_then_signs_in_without_a_password() {
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    // WebAuthn needs a domain for its relying-party id: `localhost`, not `127.0.0.1`.
    let base = app.base.replace("127.0.0.1", "localhost");
    let Some(browser) = Browser::start(&base).await else {
        return;
    };
    browser.add_virtual_authenticator().await;
    let email = "pat@example.com";
    app.create_user(email).await;
    browser.open("/login").await;
    browser.wait_for_text("Sign in with a passkey").await;
    browser.shot("passkey-sign-in").await;
    browser
        .sign_in(email, PASSWORD, "Welcome, pat@example.com")
        .await;

    // Add a passkey on the security page, then rename it there.
    browser.open("/dashboard/security/").await;
    browser.wait_for_text("No passkeys yet").await;
    browser.fill("#passkey-name", "This laptop").await;
    browser.shot("passkeys-add").await;
    browser.click("#add-passkey").await;
    browser.wait_for_text("Added This laptop.").await;
    browser.click("[data-passkey-rename]").await;
    browser.fill(".passkey-rename input", "Work laptop").await;
    browser.click(".passkey-rename button").await;
    browser
        .wait_for_text("Renamed This laptop to Work laptop.")
        .await;
    browser.shot("passkeys-list").await;
    let datastore = app.security.datastore();
    let user = datastore
        .user_by_email(email)
        .await
        .expect("lookup")
        .expect("user");
    let registered = datastore.webauthn_credentials(user.id).await.expect("keys");
    assert_eq!(registered.len(), 1);
    assert_eq!(registered[0].name, "Work laptop");
    // Sign out. The sign-in page it lands on may sign straight back in by passkey autofill
    // (conditional mediation), so only leaving the security page is waited for, not the
    // signed-out message.
    browser.click(".usermenu summary").await;
    browser.click("#sign-out").await;
    let start = std::time::Instant::now();
    loop {
        let path = browser.path().await;
        if path.starts_with("/login") || path == "/" || start.elapsed() > Duration::from_secs(40) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }

    // Sign in with it, no email, no password: the browser's passkey autofill (conditional
    // mediation) may do it as the page opens; otherwise the button does.
    browser.open("/login").await;
    // Like a person, click the button again if a prompt did not come (a loaded machine).
    let start = std::time::Instant::now();
    let mut clicked_at = None;
    while browser.path().await.starts_with("/login") && start.elapsed() < Duration::from_secs(20) {
        let waited = clicked_at.map_or(start.elapsed(), |at: std::time::Instant| at.elapsed());
        if waited > Duration::from_secs(3) {
            browser.click("#passkey-signin").await;
            clicked_at = Some(std::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.wait_for_path("/").await;
    browser.wait_for_text("Welcome back").await;
    assert!(browser.text().await.contains(email));
    // The passkey signed in (its counter moved), not a left-over cookie.
    let used = datastore.webauthn_credentials(user.id).await.expect("keys");
    assert!(used[0].sign_count > registered[0].sign_count, "{used:?}");
    browser.close().await;
}

/// The six-digit code of the next "Verification Code" mail to `to`, and its sign-in link.
async fn verification_code(app: &TestApp, to: &str) -> (String, Option<String>) {
    let mail = app.mail_to(to).await;
    assert_eq!(mail.subject, "Verification Code", "{}", mail.text);
    let marker = "using the following code: ";
    let start = mail.text.find(marker).expect("a code in the mail") + marker.len();
    let code = mail.text[start..start + 6].to_owned();
    (code, rampart::find_link(&mail.text, "/us-verify-link"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_turns_on_codes_by_email_and_signs_in_with_a_mailed_code_and_its_link() {
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    let email = "dana@example.com";
    app.create_user(email).await;
    browser.sign_in(email, PASSWORD, "Welcome").await;

    // Codes by email from the security page: choose, then confirm with the mailed code.
    browser.open("/dashboard/security/").await;
    browser.wait_for_text("Sign-in options").await;
    browser.click("#us-manage").await;
    browser.wait_for_text("Ways to sign in").await;
    browser.shot("us-setup-choose").await;
    browser.click("#us-choose-email").await;
    browser.click("#us-setup-add").await;
    browser.wait_for_text("Check your email").await;
    browser.shot("us-setup-code").await;
    let (code, link) = verification_code(&app, email).await;
    assert!(link.is_none(), "a setup code has no sign-in link");
    browser.fill("#passcode", &code).await;
    browser.click("#us-setup-confirm").await;
    browser.wait_for_path("/dashboard/security/").await;
    browser
        .wait_for_text("Unified sign in setup successful")
        .await;

    // Signing in: "Email me a sign-in code" on the sign-in page, then the code.
    browser.sign_out().await;
    browser.open("/login").await;
    browser.click("#code-signin").await;
    browser.wait_for_text("Sign in with a code").await;
    browser.fill("#identity", email).await;
    browser.shot("us-signin").await;
    browser.click("#us-send-email").await;
    browser.wait_for_text("Enter the code we sent").await;
    browser.shot("us-signin-code-sent").await;
    let (code, _) = verification_code(&app, email).await;
    browser.fill("#passcode", "000000").await;
    browser.click("#us-signin").await;
    browser.wait_for_path("/us-signin").await;
    browser.wait_for_text("Sign in with a code").await;
    browser.shot("us-signin-wrong-code").await;
    browser.fill("#passcode", &code).await;
    browser.click("#us-signin").await;
    browser.wait_for_text("Welcome").await;

    // Or the link in the mail, once.
    browser.sign_out().await;
    browser.open("/us-signin").await;
    browser.fill("#identity", email).await;
    browser.click("#us-send-email").await;
    browser.wait_for_text("Enter the code we sent").await;
    let (_, link) = verification_code(&app, email).await;
    let path = link
        .expect("a sign-in link")
        .trim_start_matches(&app.base)
        .to_owned();
    browser.open(&path).await;
    browser.wait_for_text("Welcome").await;
    browser.sign_out().await;
    browser.open(&path).await;
    browser.wait_for_path("/us-signin").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_signs_up_with_the_provider_button_and_comes_back_signed_in() {
    let Some((app, _provider)) = crate::oauth::app_with_provider(&Backend::Sqlite, &[]).await
    else {
        return;
    };
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    browser.open("/login").await;
    browser.wait_for_text("or continue with").await;
    assert!(browser.exists("#oauth-acme").await);
    browser.shot("oauth-sign-in").await;
    browser.click("#oauth-acme").await;
    // The provider's own page (oidc-provider), where the person picks an account.
    browser.wait_for_text("Test provider").await;
    browser.click("#account-alice").await;
    let home = app.security.config().login.post_view.clone();
    browser.wait_for_path(&home).await;
    browser.shot("oauth-signed-in").await;
    browser.open("/dashboard/security/").await;
    let text = browser.wait_for_text("Sign-in providers").await;
    assert!(text.contains("Linked"), "{text}");
    assert!(text.contains("alice@example.com"), "{text}");
    browser.shot("security-oauth").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_page_lists_the_sessions_ends_one_and_the_activity_shows_what_happened() {
    const PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, \
                         like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36";
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    app.create_user("eve@example.com").await;
    // Eve's phone signs in first (over HTTP), then this browser.
    let phone = app.client();
    let signed_in = phone
        .http
        .post(format!("{}/login", phone.base))
        .header(reqwest::header::USER_AGENT, PHONE)
        .header(reqwest::header::ACCEPT, "application/json")
        .json(&json!({"email": "eve@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("phone sign-in");
    assert_eq!(signed_in.status(), StatusCode::OK);
    let (status, _) = phone.get_json("/api/me").await;
    assert_eq!(status, StatusCode::OK);
    browser
        .sign_in("eve@example.com", PASSWORD, "Welcome")
        .await;

    browser.open("/dashboard/security/").await;
    let page = browser.wait_for_text("This device").await;
    assert!(page.contains("Chrome on Android"), "{page}");
    assert!(browser.exists("#session-list li[data-current]").await);
    browser.shot("security-sessions").await;
    browser
        .click("#session-list li:not([data-current]) form button")
        .await;
    let page = browser
        .wait_for_text("That session has been signed out.")
        .await;
    assert!(!page.contains("Chrome on Android"), "{page}");
    let (status, _) = phone.get_json("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the phone is signed out");

    // The new browser was announced to Eve by mail.
    let mail = app.mail_to("eve@example.com").await;
    assert!(mail.subject.contains("New sign-in"), "{}", mail.subject);

    browser.click("#account-activity").await;
    browser.wait_for_path("/dashboard/security/activity").await;
    let page = browser.wait_for_text("Account activity").await;
    for words in [
        "A session was signed out",
        "Sign-in from a new device",
        "Signed in with a password",
    ] {
        assert!(page.contains(words), "{words}: {page}");
    }
    browser.shot("account-activity").await;
    browser.sign_out().await;

    // The admin's view of everyone's activity, filtered to Eve.
    browser
        .sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, "Welcome")
        .await;
    browser.open("/admin/activity").await;
    browser.wait_for_text("Account events of every user").await;
    browser.fill("#f-user", "eve@example.com").await;
    browser.click("#filter").await;
    let page = browser.wait_for_text("A session was signed out").await;
    assert!(page.contains("eve@example.com"), "{page}");
    browser.shot("admin-activity").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_german_browser_gets_the_sign_in_pages_and_messages_in_german() {
    let app = TestApp::start(&Backend::Sqlite, &[]).await;
    app.create_user("greta@example.com").await;
    let Some(browser) = Browser::start_in(&app.base, "de-DE").await else {
        return;
    };
    browser.open("/login").await;
    let page = browser.wait_for_text("Passwort vergessen?").await;
    assert!(page.contains("Anmelden"), "{page}");
    assert!(page.contains("Angemeldet bleiben"), "{page}");
    assert!(!page.contains("Forgot password?"), "{page}");
    assert_eq!(
        browser
            .client
            .execute("return document.documentElement.lang", vec![])
            .await
            .expect("lang"),
        json!("de")
    );
    browser.shot("de-sign-in").await;

    // A wrong password: the message comes from the German catalog too.
    browser.fill("#email", "greta@example.com").await;
    browser.fill("#password", "not the password").await;
    browser.click("#sign-in").await;
    browser.wait_for_text("passen nicht zusammen").await;
    browser.shot("de-sign-in-error").await;

    browser.open("/register").await;
    browser.wait_for_text("Konto erstellen").await;
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_picks_a_username_signs_in_with_it_and_gets_it_back_by_email() {
    let app = TestApp::start(
        &Backend::Sqlite,
        &[
            ("SECURITY_USERNAME_ENABLE", "true"),
            ("SECURITY_USERNAME_RECOVERY", "true"),
        ],
    )
    .await;
    let Some(browser) = Browser::start(&app.base).await else {
        return;
    };
    let email = "fay@example.com";
    app.create_user(email).await;
    browser.sign_in(email, PASSWORD, "Welcome").await;

    // The security page links the username page; a taken or malformed name is refused there.
    browser.open("/dashboard/security/").await;
    browser.click("#change-username-link").await;
    browser.wait_for_text("You have no username yet").await;
    browser.fill("#username", "a").await;
    browser.click("#change-username").await;
    let page = browser.wait_for_text("New username").await;
    assert!(browser.exists("#username-error").await, "{page}");
    browser.shot("change-username-refused").await;
    browser.fill("#username", "faywrites").await;
    browser.click("#change-username").await;
    browser
        .wait_for_text("You successfully changed your username")
        .await;
    browser.shot("change-username-done").await;
    let notice = app.mail_to(email).await;
    assert!(notice.text.contains("faywrites"), "{}", notice.text);

    // The username signs in.
    browser.sign_out().await;
    browser.sign_in("faywrites", PASSWORD, "Welcome").await;
    browser.sign_out().await;

    // Forgotten: the sign-in page's link mails it, with the same answer for any address.
    browser.open("/login").await;
    browser.click("#recover-username-link").await;
    browser.wait_for_text("Forgot your username?").await;
    browser.fill("#email", email).await;
    browser.shot("recover-username").await;
    browser.click("#send-username").await;
    browser
        .wait_for_text("If registered, your username will be sent to your email.")
        .await;
    let mail = app.mail_to(email).await;
    assert!(mail.text.contains("faywrites"), "{}", mail.text);
    browser.open("/recover-username").await;
    browser.fill("#email", "nobody@example.com").await;
    browser.click("#send-username").await;
    browser
        .wait_for_text("If registered, your username will be sent to your email.")
        .await;
    assert!(
        app.sink
            .wait_for("nobody@example.com", Duration::from_secs(2))
            .await
            .is_none()
    );
    browser.close().await;
}
