//! Running a test body on each backend: SQLite, and PostgreSQL with `TEST_DATABASE_URL`.

use std::sync::Arc;

use rampart::Datastore;
use rampart::testing::smtp_sink::SmtpSink;
use rampart::testing::{TestBackend, TestDatabase};
use rampart::{SmtpConfig, SmtpMailer};

use super::*;

/// Stamps a test per backend, so a PostgreSQL-only failure has its own name:
/// `backend_test!(name, settings, body)` makes `mod name` with `#[tokio::test]`s `sqlite` and
/// `postgres` (`…::name::sqlite`, `…::name::postgres`), each running `body` (an
/// `async |app: TestApp| { … }`) on a fresh [`TestApp`] with `settings` over the base settings;
/// a fourth argument before the body names another runner (e.g. [`on_backend_over_smtp`]).
/// `settings` is evaluated in each test's statement that runs the body, so a temporary it makes
/// (e.g. a template folder) lives until the body is done.
/// The PostgreSQL one runs on `TEST_DATABASE_URL`; without it, it fails under CI (`CI` set, as
/// `.ci/run` does) and passes with a notice elsewhere (see [`TestBackend::postgres_or_skip`]).
///
/// ```ignore
/// backend_test!(login_with_a_wrong_password_is_refused, EXACT, async |app: TestApp| { … });
/// ```
macro_rules! backend_test {
    ($name:ident, $settings:expr, $body:expr $(,)?) => {
        $crate::harness::backend_test!($name, $settings, on_backend, $body);
    };
    ($name:ident, $settings:expr, $runner:ident, $body:expr $(,)?) => {
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                $crate::harness::$runner(rampart::testing::TestBackend::Sqlite, $settings, $body)
                    .await;
            }

            #[tokio::test]
            async fn postgres() {
                if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
                    $crate::harness::$runner(backend, $settings, $body).await;
                }
            }
        }
    };
}
pub(crate) use backend_test;

/// Runs `body` on a fresh [`TestApp`] on `backend`, `settings` over the base settings.
pub(crate) async fn on_backend(
    backend: TestBackend,
    settings: &[(&str, &str)],
    body: impl AsyncFn(TestApp),
) {
    let app = TestApp::on(backend, settings, None).await;
    body(app).await;
}

/// Like [`on_backend`], with mail sent by the real [`SmtpMailer`] to a fresh local [`SmtpSink`]
/// (`backend_test!(name, settings, on_backend_over_smtp, async |app, sink| { … })`).
pub(crate) async fn on_backend_over_smtp(
    backend: TestBackend,
    settings: &[(&str, &str)],
    body: impl AsyncFn(TestApp, SmtpSink),
) {
    let sink = SmtpSink::start().await.expect("start the SMTP sink");
    let mailer = SmtpMailer::new(&SmtpConfig {
        server: "127.0.0.1".into(),
        port: sink.port(),
        timeout_secs: 5,
        ..SmtpConfig::default()
    })
    .expect("SMTP mailer");
    let app = TestApp::on(backend, settings, Some(Arc::new(mailer))).await;
    body(app, sink).await;
}

/// Like [`on_backend`], with every mail sent to an SMTP port where nothing listens
/// (`backend_test!(name, settings, on_backend_with_broken_mail, async |app| { … })`).
pub(crate) async fn on_backend_with_broken_mail(
    backend: TestBackend,
    settings: &[(&str, &str)],
    body: impl AsyncFn(TestApp),
) {
    // Bind then drop a listener: its port now refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mailer = SmtpMailer::new(&SmtpConfig {
        server: "127.0.0.1".into(),
        port,
        timeout_secs: 2,
        ..SmtpConfig::default()
    })
    .expect("SMTP mailer");
    let app = TestApp::on(backend, settings, Some(Arc::new(mailer))).await;
    body(app).await;
}

/// A fresh datastore on `backend`, and the database that lives while it is held.
pub(super) async fn open(backend: TestBackend) -> (Datastore, TestDatabase) {
    TestDatabase::open(&backend)
        .await
        .expect("make and open the test database (TEST_DATABASE_URL reachable?)")
}
