//! Running a test body on each backend: SQLite, and PostgreSQL with `TEST_DATABASE_URL`.

use std::sync::Arc;

use rampart::Datastore;
use rampart::testing::smtp_sink::SmtpSink;
use rampart::testing::{TestBackend, TestDatabase};
use rampart::{SmtpConfig, SmtpMailer};

use super::*;

fn backends() -> Vec<TestBackend> {
    TestBackend::all_from_env()
}

/// Runs `body` on a fresh [`TestApp`] per backend: SQLite, and PostgreSQL when
/// `TEST_DATABASE_URL` is set (always in CI). `settings` go over the base settings.
///
/// ```ignore
/// #[tokio::test]
/// async fn login_with_a_wrong_password_is_refused() {
///     each_backend(EXACT, async |app: TestApp| { … }).await;
/// }
/// ```
pub(crate) async fn each_backend(settings: &[(&str, &str)], body: impl AsyncFn(TestApp)) {
    for backend in backends() {
        let app = TestApp::on(backend, settings, None).await;
        eprintln!("--- backend: {}", app.backend);
        body(app).await;
    }
}

/// Like [`each_backend`], with mail sent by the real [`SmtpMailer`] to a fresh local [`SmtpSink`].
pub(crate) async fn each_backend_over_smtp(
    settings: &[(&str, &str)],
    body: impl AsyncFn(TestApp, SmtpSink),
) {
    for backend in backends() {
        let sink = SmtpSink::start().await.expect("start the SMTP sink");
        let mailer = SmtpMailer::new(&SmtpConfig {
            server: "127.0.0.1".into(),
            port: sink.port(),
            timeout_secs: 5,
            ..SmtpConfig::default()
        })
        .expect("SMTP mailer");
        let app = TestApp::on(backend, settings, Some(Arc::new(mailer))).await;
        eprintln!("--- backend: {}", app.backend);
        body(app, sink).await;
    }
}

/// Like [`each_backend`], with every mail sent to an SMTP port where nothing listens.
pub(crate) async fn each_backend_with_broken_mail(
    settings: &[(&str, &str)],
    body: impl AsyncFn(TestApp),
) {
    for backend in backends() {
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
        eprintln!("--- backend: {}", app.backend);
        body(app).await;
    }
}

/// A fresh migrated datastore on `backend`, and the database that lives while it is held.
pub(super) async fn open(backend: TestBackend) -> (Datastore, TestDatabase, &'static str) {
    let database = TestDatabase::create(&backend)
        .await
        .expect("make the test database (TEST_DATABASE_URL reachable?)");
    let store = Datastore::connect(database.url())
        .await
        .expect("open the test database");
    let name = database.backend();
    (store, database, name)
}
