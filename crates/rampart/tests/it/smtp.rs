//! End to end over TCP: the router served on `127.0.0.1:0`, a real HTTP client, and mail sent by
//! the real [`rampart::SmtpMailer`] to a local SMTP sink.

use std::net::SocketAddr;
use std::time::Duration;

use rampart::testing::smtp_sink::SmtpSink;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, backend_test, path_of, unescape_html};

/// Plain-HTTP cookies (no `Secure`), as the seed app runs in development.
const HTTP: &[(&str, &str)] = &[("SESSION_COOKIE_SECURE", "false")];

backend_test!(
    a_welcome_mail_sent_over_smtp_confirms_the_account,
    HTTP,
    on_backend_over_smtp,
    async |app: TestApp, sink: SmtpSink| {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let router = app.router.clone();
        let server = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let base = format!("http://{addr}");

        let registered = http
            .post(format!("{base}/register"))
            .json(&json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": PASSWORD}))
            .send()
            .await
            .expect("POST /register");
        assert_eq!(registered.status(), 200);

        let mail = sink
            .wait_for("ann@example.com", Duration::from_secs(10))
            .await
            .expect("the Welcome mail");
        assert_eq!(mail.subject, "Welcome");
        assert_eq!(mail.from, "no-reply@fst-sample.local");
        assert!(mail.raw.contains("multipart/alternative"), "{}", mail.raw);
        let link = rampart::find_link(&mail.text, "/confirm/").expect("confirmation link");
        // Links are built from the Host of the request that caused the mail.
        assert!(link.starts_with(&format!("{base}/confirm/")), "{link}");
        assert!(unescape_html(&mail.html).contains(&link), "{}", mail.html);

        let confirmed = http
            .get(format!("{base}{}", path_of(&link)))
            .send()
            .await
            .expect("GET link");
        assert_eq!(confirmed.status(), 302);
        assert_eq!(confirmed.headers()["location"], "/login");
        assert!(app.user("ann@example.com").await.confirmed_at.is_some());

        let login = http
            .post(format!("{base}/login"))
            .json(&json!({"email": "ann@example.com", "password": PASSWORD}))
            .send()
            .await
            .expect("POST /login");
        assert_eq!(login.status(), 200);
        let me: Value = http
            .get(format!("{base}/api/me"))
            .header("accept", "application/json")
            .send()
            .await
            .expect("GET /api/me")
            .json()
            .await
            .expect("JSON");
        assert_eq!(me["response"]["user"]["email"], "ann@example.com");
        assert_eq!(me["response"]["user"]["current_login_ip"], "127.0.0.1");
        server.abort();
    }
);
