//! [`TestApp`]: a minimal app on the real router, its settings, mails and user helpers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use rampart::testing::{TestBackend, TestDatabase};
use rampart::{
    AuthMethod, Datastore, Mail, MemoryMailer, Security, SecurityConfig, Settings, TestClock, User,
    anonymous_required, auth_required, auth_required_with, permissions_accepted, roles_accepted,
    roles_required,
};
use serde_json::json;

use super::routes::{admin, anonymous, any_role, basic, echo, me, write};
use super::*;

/// The password the helpers register users with.
pub(crate) const PASSWORD: &str = "correct horse battery";
/// Flask-Security's exact messages (`SECURITY_RETURN_GENERIC_RESPONSES=false`).
pub(crate) const EXACT: &[(&str, &str)] = &[("SECURITY_RETURN_GENERIC_RESPONSES", "false")];
/// Rampart's defaults (generic responses on).
pub(crate) const GENERIC: &[(&str, &str)] = &[];
/// The change-password URL of the contract's sample app.
pub(crate) const CHANGE_URL: &str = "/dashboard/security/";
/// How long to wait for a mail sent from a background task.
const MAIL_WAIT: Duration = Duration::from_secs(2);

/// The `Host` header of requests (links in mails are built from it).
pub(crate) const HOST: &str = "rampart.test";

/// The settings every test app starts from.
fn base_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SECRET_KEY", "integration-test-secret-key-0123456789"),
        ("SECURITY_PASSWORD_SALT", "integration-test-salt"),
        ("SECURITY_REGISTERABLE", "true"),
        ("SECURITY_CONFIRMABLE", "true"),
        ("SECURITY_RECOVERABLE", "true"),
        ("SECURITY_CHANGEABLE", "true"),
        ("SECURITY_USERNAME_ENABLE", "true"),
        ("SECURITY_CHANGE_URL", CHANGE_URL),
        ("SECURITY_DEFAULT_ROLES", "User"),
        ("SECURITY_EMAIL_SENDER", "no-reply@fst-sample.local"),
        ("SECURITY_ARGON2_MEMORY_KIB", "1024"),
        ("SECURITY_ARGON2_ITERATIONS", "1"),
        ("SECURITY_ARGON2_PARALLELISM", "1"),
        ("SECURITY_LOGIN_RATE_LIMIT", "off"),
        ("SECURITY_MAIL_RATE_LIMIT", "off"),
        // Required outside DEBUG; links in mails still follow the (trusted) request host.
        ("TRUSTED_HOSTS", "rampart.test, 127.0.0.1"),
    ]
}

/// A minimal app: the framework's routes, a few guarded routes, a memory mailer and a test clock.
pub(crate) struct TestApp {
    pub(crate) router: Router,
    pub(crate) security: Security,
    pub(crate) mailer: MemoryMailer,
    /// Text messages sent (`SECURITY_SMS_SERVICE` is replaced by this memory sender).
    pub(crate) sms: rampart::sms::MemorySmsSender,
    pub(crate) clock: TestClock,
    /// Per address, how many of its mails the test has taken.
    taken: Mutex<HashMap<String, usize>>,
    // Last, so the database outlives everything that uses it.
    _db: TestDatabase,
}

impl TestApp {
    pub(crate) async fn on(
        backend: TestBackend,
        settings: &[(&str, &str)],
        mailer: Option<rampart::SharedMailer>,
    ) -> Self {
        let (datastore, guard) = open(backend).await;
        let mut pairs = base_settings();
        pairs.extend(settings.iter().copied());
        let config =
            SecurityConfig::from_settings(&Settings::from_pairs(pairs)).expect("valid settings");
        let memory = MemoryMailer::new();
        let clock = TestClock::default();
        let sms = rampart::sms::MemorySmsSender::new();
        let security = Security::builder(config)
            .datastore(datastore)
            .sms_sender(Arc::new(sms.clone()))
            .shared_mailer(mailer.unwrap_or_else(|| Arc::new(memory.clone())))
            .clock(clock.clone())
            .build()
            .await
            .expect("build Security");
        let now = time_now();
        let store = security.datastore();
        store
            .ensure_role(
                "User",
                None,
                &["user-read".into(), "user-write".into()],
                now,
            )
            .await
            .expect("role User");
        store
            .ensure_role(
                "Admin",
                None,
                &["admin-read".into(), "admin-write".into()],
                now,
            )
            .await
            .expect("role Admin");
        let router = Router::new()
            .route("/api/me", get(me))
            .route(
                "/api/admin",
                get(admin).route_layer(roles_required(["Admin"])),
            )
            .route(
                "/api/write",
                get(write).route_layer(permissions_accepted(["user-write"])),
            )
            .route(
                "/api/any-role",
                get(any_role).route_layer(roles_accepted(["Admin", "Auditor"])),
            )
            .route("/anon", get(anonymous).route_layer(anonymous_required()))
            .route(
                "/basic",
                get(basic).route_layer(auth_required_with([AuthMethod::Basic])),
            )
            .route("/api/echo", post(echo).route_layer(auth_required()))
            .merge(security.router())
            .layer(security.layer());
        Self {
            router,
            security,
            mailer: memory,
            sms,
            clock,
            taken: Mutex::new(HashMap::new()),
            _db: guard,
        }
    }

    /// A new client with no cookies (a new browser).
    pub(crate) fn client(&self) -> TestClient {
        TestClient::new(self.router.clone())
    }

    pub(crate) fn datastore(&self) -> &Datastore {
        self.security.datastore()
    }

    /// The user with `email` (must exist).
    pub(crate) async fn user(&self, email: &str) -> User {
        self.datastore()
            .user_by_email(email)
            .await
            .expect("query user")
            .unwrap_or_else(|| panic!("no user {email}"))
    }

    /// Moves the clock forward.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// All mails sent to `addr` so far (after a bounded wait for pending sends is not implied).
    pub(crate) fn mails_to(&self, addr: &str) -> Vec<Mail> {
        self.mailer
            .sent()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(addr))
            .collect()
    }

    /// The oldest mail to `addr` the test has not taken yet, waiting for it up to 2 s.
    pub(crate) async fn mail_to(&self, addr: &str) -> Mail {
        let key = addr.to_ascii_lowercase();
        let taken = self
            .taken
            .lock()
            .expect("lock")
            .get(&key)
            .copied()
            .unwrap_or(0);
        let arrived = self
            .mailer
            .wait_until(MAIL_WAIT, |sent| {
                sent.iter()
                    .filter(|m| m.to.eq_ignore_ascii_case(addr))
                    .count()
                    > taken
            })
            .await;
        assert!(
            arrived,
            "no new mail to {addr} within {MAIL_WAIT:?}; sent: {:#?}",
            self.mailer.sent()
        );
        let mail = self.mails_to(addr).swap_remove(taken);
        self.taken.lock().expect("lock").insert(key, taken + 1);
        mail
    }

    /// The link whose path starts with `prefix` in the next mail to `addr`.
    pub(crate) async fn link_in_mail(&self, addr: &str, prefix: &str) -> String {
        let mail = self.mail_to(addr).await;
        rampart::find_link(&mail.text, prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in the mail to {addr}: {}", mail.text))
    }

    /// The path (and query) of the link whose path starts with `prefix` in the next mail to `addr`.
    pub(crate) async fn path_in_mail(&self, addr: &str, prefix: &str) -> String {
        path_of(&self.link_in_mail(addr, prefix).await)
    }

    /// Asserts that no mail the test has not taken yet is, or soon will be, addressed to `addr`.
    pub(crate) async fn assert_no_mail_to(&self, addr: &str) {
        let taken = self
            .taken
            .lock()
            .expect("lock")
            .get(&addr.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        let arrived = self
            .mailer
            .wait_until(Duration::from_millis(100), |sent| {
                sent.iter()
                    .filter(|m| m.to.eq_ignore_ascii_case(addr))
                    .count()
                    > taken
            })
            .await;
        assert!(
            !arrived,
            "unexpected mail to {addr}: {:#?}",
            self.mails_to(addr).get(taken..)
        );
    }

    /// Registers `email` (with [`PASSWORD`]) and follows the confirmation link.
    pub(crate) async fn signed_up(&self, email: &str) {
        let client = self.client();
        let response = client.register(email, PASSWORD).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "register {email}: {}",
            response.text()
        );
        let path = self.path_in_mail(email, "/confirm/").await;
        let confirmed = client.get(&path).send().await;
        assert_eq!(confirmed.location(), Some("/login"), "confirm {email}");
    }

    /// An auth token for `email` (signed up, [`PASSWORD`]), from `POST /login?include_auth_token`.
    pub(crate) async fn auth_token(&self, email: &str) -> String {
        let login = self
            .client()
            .post("/login?include_auth_token")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await;
        assert_eq!(
            login.status,
            StatusCode::OK,
            "login {email}: {}",
            login.text()
        );
        login.response()["user"]["authentication_token"]
            .as_str()
            .expect("authentication_token")
            .to_owned()
    }

    /// A client signed in (by session) as a fresh confirmed user `email`.
    pub(crate) async fn logged_in(&self, email: &str) -> TestClient {
        self.signed_up(email).await;
        let client = self.client();
        client.login_ok(email, PASSWORD).await;
        client
    }
}

fn time_now() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    time::PrimitiveDateTime::new(now.date(), now.time())
}
