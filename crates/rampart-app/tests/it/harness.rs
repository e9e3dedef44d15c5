//! The real app on `127.0.0.1:0` over TCP, on SQLite in a temp dir (and PostgreSQL when
//! `TEST_DATABASE_URL` is set: a fresh database per test, dropped afterwards), with mail going
//! through real SMTP to a sink; a reqwest client that keeps cookies and the CSRF token and
//! never follows redirects.

use std::sync::Mutex;
use std::time::Duration;

use rampart::testing::smtp_sink::{ReceivedMail, SmtpSink};
use rampart::testing::{TestBackend, TestDatabase};
use rampart::{Security, TestClock};
use rampart_app::AppConfig;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tempfile::TempDir;

/// The administrator every test app has.
pub(crate) const ADMIN_EMAIL: &str = "admin@example.com";
/// Their password.
pub(crate) const ADMIN_PASSWORD: &str = "admin-password-1";
/// The password test users get.
pub(crate) const PASSWORD: &str = "correct horse battery";

/// A database backend to run a test on: SQLite, or a fresh database on the PostgreSQL server
/// behind an admin URL (the framework's fixture, shared with its own tests).
pub(crate) type Backend = TestBackend;

/// Stamps a test per backend, so a PostgreSQL-only failure has its own name:
/// `backend_test!(name, async |app: TestApp| { … })` makes `mod name` with `#[tokio::test]`s
/// `sqlite` and `postgres` (`…::name::sqlite`, `…::name::postgres`), each running the body on a
/// fresh [`TestApp`] of its backend (an `async fn(TestApp)` works as the body too). The
/// PostgreSQL one runs on `TEST_DATABASE_URL`; without it, it fails under CI (`CI` set) and
/// passes with a notice elsewhere ([`TestBackend::postgres_or_skip`]).
macro_rules! backend_test {
    ($name:ident, $body:expr $(,)?) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::harness::on_backend(rampart::testing::TestBackend::Sqlite, $body).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
                    $crate::harness::on_backend(backend, $body).await;
                }
            }
        }
    };
}
pub(crate) use backend_test;

/// Runs `body` on a fresh [`TestApp`] on `backend` (what [`backend_test!`] stamps).
pub(crate) async fn on_backend(backend: Backend, body: impl AsyncFn(TestApp)) {
    let app = TestApp::start(&backend, &[]).await;
    body(app).await;
}

/// A running app.
pub(crate) struct TestApp {
    pub(crate) base: String,
    /// The database this instance runs on.
    pub(crate) database_url: String,
    pub(crate) security: Security,
    pub(crate) sink: SmtpSink,
    /// The app's clock: advance it to make links expire.
    pub(crate) clock: TestClock,
    /// Where the app keeps uploaded files.
    pub(crate) media: rampart_app::MediaStore,
    _dir: TempDir,
    server: tokio::task::JoinHandle<()>,
    _pg: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Test settings: cheap hashing, a generous login limit, SMTP to `sink`, an admin.
pub(crate) fn settings(
    database_url: &str,
    sink: &SmtpSink,
    extra: &[(&str, &str)],
) -> rampart::Settings {
    let port = sink.port().to_string();
    let mut settings = rampart::Settings::from_pairs([
        ("SECRET_KEY", "test-secret-key-0123456789abcdef"),
        ("SECURITY_PASSWORD_SALT", "test-salt"),
        // As the sample app runs: authenticator secrets encrypted at rest (one key for every
        // instance of a cluster).
        (
            "SECURITY_TOTP_SECRETS",
            r#"{"1": "test-totp-secret-0123456789abcdef"}"#,
        ),
        ("DATABASE_URL", database_url),
        ("MAIL_BACKEND", "smtp"),
        ("MAIL_SERVER", "127.0.0.1"),
        ("MAIL_PORT", port.as_str()),
        ("SECURITY_ARGON2_MEMORY_KIB", "1024"),
        ("SECURITY_ARGON2_ITERATIONS", "1"),
        ("SECURITY_ARGON2_PARALLELISM", "1"),
        ("SECURITY_LOGIN_RATE_LIMIT", "1000 per minute"),
        ("ADMIN_EMAIL", ADMIN_EMAIL),
        ("ADMIN_PASSWORD", ADMIN_PASSWORD),
    ]);
    for (key, value) in extra {
        settings.set(key, *value);
    }
    settings
}

impl TestApp {
    /// Starts the app with the test settings plus `extra`.
    pub(crate) async fn start(backend: &Backend, extra: &[(&str, &str)]) -> Self {
        Self::start_listening(backend, None, extra).await
    }

    /// [`start`](Self::start) on `listener` (bound beforehand, so its address can go into the
    /// settings, e.g. a sign-in provider's redirect URI), or a fresh one.
    pub(crate) async fn start_listening(
        backend: &Backend,
        listener: Option<tokio::net::TcpListener>,
        extra: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (pg, database_url) = match backend {
            Backend::Sqlite => (
                None,
                format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display()),
            ),
            Backend::Postgres(_) => {
                let db = TestDatabase::create(backend)
                    .await
                    .expect("make the test database (TEST_DATABASE_URL reachable?)");
                let url = db.url().to_owned();
                (Some(db), url)
            }
        };
        Self::start_on(&database_url, extra, dir, pg, listener).await
    }

    /// Starts another instance on the database of `self` (a cluster of two on one database),
    /// with the test settings plus `extra`.
    pub(crate) async fn another_instance(&self, extra: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_on(&self.database_url, extra, dir, None, None).await
    }

    /// Starts an instance on `database_url` (e.g. through a test's proxy in front of the
    /// database `pg` made), with the test settings plus `extra`.
    pub(crate) async fn start_with_database(
        database_url: &str,
        extra: &[(&str, &str)],
        pg: Option<TestDatabase>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_on(database_url, extra, dir, pg, None).await
    }

    async fn start_on(
        database_url: &str,
        extra: &[(&str, &str)],
        dir: TempDir,
        pg: Option<TestDatabase>,
        listener: Option<tokio::net::TcpListener>,
    ) -> Self {
        let database_url = database_url.to_owned();
        let sink = SmtpSink::start().await.expect("smtp sink");
        let listener = match listener {
            Some(listener) => listener,
            None => tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind"),
        };
        let addr = listener.local_addr().expect("local addr");
        // As `serve` does: links in mails name the server's own address, whatever the Host.
        let config = AppConfig::from_settings(
            settings(&database_url, &sink, extra),
            &dir.path().join("instance"),
        )
        .expect("config");
        let config = rampart_app::cli::with_own_server_name(&config, addr);
        let clock = TestClock::default();
        let app = rampart_app::build_with_clock(&config, clock.clone())
            .await
            .expect("app builds");
        let router = app.router.clone();
        // The server `cargo run` uses, with its limits.
        let limits = config.server;
        let server = tokio::spawn(async move {
            let _ = rampart::serve_with_shutdown(
                listener,
                router,
                limits,
                std::future::pending::<()>(),
            )
            .await;
        });
        Self {
            base: format!("http://{addr}"),
            database_url,
            security: app.security,
            media: app.media,
            clock,
            sink,
            _dir: dir,
            server,
            _pg: pg,
        }
    }

    /// A new browser-like client (own cookies, no redirects).
    pub(crate) fn client(&self) -> TestClient {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        TestClient {
            http: reqwest::Client::builder()
                .cookie_provider(std::sync::Arc::clone(&jar))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: self.base.clone(),
            csrf: Mutex::new(None),
            jar,
        }
    }

    /// A client of this instance sharing `other`'s cookie jar and CSRF token (the same browser
    /// sent to another instance by a load balancer).
    pub(crate) fn same_browser(&self, other: &TestClient) -> TestClient {
        TestClient {
            http: other.http.clone(),
            base: self.base.clone(),
            csrf: Mutex::new(other.csrf.lock().expect("lock").clone()),
            jar: std::sync::Arc::clone(&other.jar),
        }
    }

    /// The next mail to `to` (waits up to 30 s: a loaded CI machine).
    pub(crate) async fn mail_to(&self, to: &str) -> ReceivedMail {
        self.sink
            .wait_for(to, Duration::from_secs(30))
            .await
            .unwrap_or_else(|| panic!("no mail to {to}"))
    }

    /// Registers `email` through the JSON API and follows the confirmation link from the mail.
    pub(crate) async fn register_and_confirm(&self, email: &str) {
        let client = self.client();
        let (status, body) = client
            .post_json(
                "/register",
                json!({"email": email, "password": PASSWORD, "password_confirm": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let mail = self.mail_to(email).await;
        assert_eq!(mail.subject, "Welcome");
        let link = rampart::find_link(&mail.text, "/confirm/").expect("confirmation link");
        let response = client.http.get(&link).send().await.expect("confirm");
        assert!(
            response.status().is_redirection() || response.status().is_success(),
            "{}",
            response.status()
        );
    }

    /// Creates an active, confirmed user with the CLI's code (role `User`).
    pub(crate) async fn create_user(&self, email: &str) {
        run_cli(
            &self.security,
            &[
                "users",
                "create",
                email,
                "--password",
                PASSWORD,
                "--active",
                "--confirm",
            ],
        )
        .await
        .expect("user created");
    }

    /// A client signed in as `email` (session), with the auth token from the login response.
    pub(crate) async fn login(&self, email: &str, password: &str) -> (TestClient, String) {
        let client = self.client();
        let (status, body) = client
            .post_json(
                "/login?include_auth_token",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token = body["response"]["user"]["authentication_token"]
            .as_str()
            .expect("token")
            .to_owned();
        (client, token)
    }
}

/// Runs an administration command through the library, like the binary does.
pub(crate) async fn run_cli(
    security: &Security,
    args: &[&str],
) -> Result<String, rampart_app::cli::CliError> {
    let cli = <rampart_app::cli::Cli as clap::Parser>::try_parse_from(
        std::iter::once("rampart-app").chain(args.iter().copied()),
    )
    .expect("valid command line");
    rampart_app::cli::execute(security, &cli.command.expect("a command")).await
}

/// A client with its cookie jar and the last CSRF token the server gave it.
pub(crate) struct TestClient {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    csrf: Mutex<Option<String>>,
    jar: std::sync::Arc<reqwest::cookie::Jar>,
}

impl TestClient {
    /// Sends a JSON request (CSRF header when known, `Authentication-Token` when given) and
    /// returns the status and body (`Null` when not JSON).
    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(csrf) = self.csrf.lock().expect("lock").clone() {
            headers.insert(
                "X-CSRF-Token",
                HeaderValue::from_str(&csrf).expect("header"),
            );
        }
        if let Some(token) = token {
            headers.insert(
                "Authentication-Token",
                HeaderValue::from_str(token).expect("header"),
            );
        }
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .headers(headers);
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(csrf) = value["response"]["csrf_token"].as_str() {
            *self.csrf.lock().expect("lock") = Some(csrf.to_owned());
        }
        assert!(
            value.is_null() || value["meta"]["code"] == status.as_u16(),
            "meta.code must equal the status: {status} {value}"
        );
        (status, value)
    }

    pub(crate) async fn get_json(&self, path: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, None, None).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, Some(body), None).await
    }

    /// The `Cookie` header this client sends to its server (to replay it elsewhere, as a thief
    /// of the cookie would).
    pub(crate) fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore as _;
        let url = reqwest::Url::parse(&self.base).expect("base URL");
        self.jar
            .cookies(&url)
            .and_then(|value| value.to_str().ok().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Forgets the CSRF token (to test that it is required).
    pub(crate) fn forget_csrf(&self) {
        *self.csrf.lock().expect("lock") = None;
    }
}

/// The `errors` of an error envelope.
pub(crate) fn errors(body: &Value) -> Vec<String> {
    body["response"]["errors"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// How many `profile` rows the user has.
pub(crate) async fn profile_rows(security: &Security, user_id: i64) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM \"profile\" WHERE \"user_id\" = $1";
    match security.datastore().pool() {
        rampart::DbPool::Sqlite(pool) => {
            sqlx::query_scalar(SQL).bind(user_id).fetch_one(pool).await
        }
        rampart::DbPool::Postgres(pool) => {
            sqlx::query_scalar(SQL).bind(user_id).fetch_one(pool).await
        }
    }
    .expect("count profiles")
}
