//! [`SmtpMailer`]: mails sent through an SMTP server with lettre.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport as _, Message, Tokio1Executor};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use tokio::runtime::Handle;

use super::{Mail, MailError, Mailer};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain text, no TLS (a local relay or a test sink; Flask-Mail's default).
    #[default]
    None,
    /// Plain connection upgraded with `STARTTLS`, which is then required (Flask-Mail's
    /// `MAIL_USE_TLS`, usually port 587).
    #[serde(alias = "start_tls", alias = "start-tls")]
    StartTls,
    /// TLS from the first byte (Flask-Mail's `MAIL_USE_SSL`, usually port 465).
    #[serde(alias = "ssl")]
    Tls,
}

/// Settings of [`SmtpMailer`], with Flask-Mail's defaults (`MAIL_SERVER`, `MAIL_PORT`,
/// `MAIL_USERNAME`, `MAIL_PASSWORD`, `MAIL_USE_TLS` / `MAIL_USE_SSL`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SmtpConfig {
    /// Host name of the SMTP server (also the name its TLS certificate is checked against).
    /// Default `"localhost"`.
    pub server: String,
    /// Port of the SMTP server. Default `25`.
    pub port: u16,
    /// User name to log in with; no authentication when `None` (the default).
    pub username: Option<String>,
    /// Password to log in with (used only with a `username`).
    pub password: Option<SecretString>,
    /// Transport security. Default [`SmtpSecurity::None`].
    pub security: SmtpSecurity,
    /// Timeout of each network operation, in seconds. Default `10`.
    pub timeout_secs: u64,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            server: "localhost".to_owned(),
            port: 25,
            username: None,
            password: None,
            security: SmtpSecurity::None,
            timeout_secs: 10,
        }
    }
}

/// Sends mails as `multipart/alternative` (text and HTML) over a pool of SMTP connections.
///
/// Clones share the pool. The pool is started by the first mail sent, on the tokio runtime that
/// sends it.
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    builder: AsyncSmtpTransportBuilder,
    /// The pooled transport, with the runtime it runs on.
    transport: OnceLock<(Handle, AsyncSmtpTransport<Tokio1Executor>)>,
}

impl SmtpMailer {
    /// Checks the settings; no connection is made until the first mail is sent, so this may be
    /// called outside a tokio runtime.
    ///
    /// Fails with [`MailError::Smtp`] when the TLS settings cannot be set up for `server`.
    pub fn new(config: &SmtpConfig) -> Result<Self, MailError> {
        type Transport = AsyncSmtpTransport<Tokio1Executor>;
        let builder = match config.security {
            SmtpSecurity::None => Transport::builder_dangerous(&config.server),
            SmtpSecurity::StartTls => {
                Transport::starttls_relay(&config.server).map_err(MailError::Smtp)?
            }
            SmtpSecurity::Tls => Transport::relay(&config.server).map_err(MailError::Smtp)?,
        };
        let mut builder = builder
            .port(config.port)
            .timeout(Some(Duration::from_secs(config.timeout_secs)))
            .pool_config(PoolConfig::new());
        if let Some(username) = &config.username {
            let password = config
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                builder,
                transport: OnceLock::new(),
            }),
        })
    }

    /// The pooled transport, started on the current tokio runtime the first time.
    fn transport(&self) -> Result<&AsyncSmtpTransport<Tokio1Executor>, MailError> {
        let runtime = Handle::try_current()
            .map_err(|_| MailError::Transport("SmtpMailer must run on a tokio runtime".into()))?;
        let (_, transport) = self
            .inner
            .transport
            .get_or_init(|| (runtime, self.inner.builder.clone().build()));
        Ok(transport)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The pool spawns its shutdown on drop, which needs a runtime context even when the
        // last clone is dropped outside one.
        if let Some((runtime, transport)) = self.transport.take() {
            let _context = runtime.enter();
            drop(transport);
        }
    }
}

/// Parses a sender or recipient, `addr@example.com` or `Name <addr@example.com>`.
fn mailbox(address: &str) -> Result<Mailbox, MailError> {
    address.trim().parse().map_err(|source| MailError::Address {
        address: address.to_owned(),
        source,
    })
}

/// The MIME message for `mail`.
fn message(mail: &Mail) -> Result<Message, MailError> {
    Message::builder()
        .from(mailbox(&mail.from)?)
        .to(mailbox(&mail.to)?)
        .subject(mail.subject.as_str())
        .message_id(None)
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(MailError::Build)
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(mail)?;
        self.transport()?
            .send(message)
            .await
            .map_err(MailError::Smtp)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(to: &str) -> Mail {
        Mail {
            from: "Rampart <no-reply@example.com>".into(),
            to: to.into(),
            subject: "Please confirm your email".into(),
            text: "Use https://example.com/confirm/t to confirm your email address.".into(),
            html: "<p>Use <a href=\"https://example.com/confirm/t\">this link</a>.</p>".into(),
        }
    }

    #[test]
    fn the_config_defaults_to_plain_smtp_on_localhost_port_25() {
        let config: SmtpConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.server, "localhost");
        assert_eq!(config.port, 25);
        assert!(config.username.is_none() && config.password.is_none());
        assert_eq!(config.security, SmtpSecurity::None);
        assert_eq!(config.timeout_secs, 10);
    }

    #[test]
    fn the_config_reads_security_names_and_hides_the_password() {
        let config: SmtpConfig = serde_json::from_str(
            r#"{"server":"smtp.example.com","port":587,"username":"u","password":"hunter2","security":"starttls"}"#,
        )
        .unwrap();
        assert_eq!(config.security, SmtpSecurity::StartTls);
        assert!(!format!("{config:?}").contains("hunter2"));
        let tls: SmtpSecurity = serde_json::from_str(r#""ssl""#).unwrap();
        assert_eq!(tls, SmtpSecurity::Tls);
        for security in [
            SmtpSecurity::None,
            SmtpSecurity::StartTls,
            SmtpSecurity::Tls,
        ] {
            let mailer = SmtpMailer::new(&SmtpConfig {
                security,
                ..config.clone()
            })
            .unwrap();
            assert!(!format!("{mailer:?}").contains("hunter2"));
        }
    }

    #[test]
    fn the_message_is_multipart_alternative_with_text_and_html() {
        let raw =
            String::from_utf8(message(&sample("a@example.com")).unwrap().formatted()).unwrap();
        assert!(raw.contains("Content-Type: multipart/alternative"));
        assert!(raw.contains("Content-Type: text/plain; charset=utf-8"));
        assert!(raw.contains("Content-Type: text/html; charset=utf-8"));
        assert!(raw.contains("Message-ID: <"));
        assert!(raw.contains("From: Rampart <no-reply@example.com>"));
    }

    #[tokio::test]
    async fn an_invalid_address_is_refused_before_connecting() {
        let mailer = SmtpMailer::new(&SmtpConfig::default()).unwrap();
        let err = mailer.send(&sample("not an address")).await.unwrap_err();
        assert!(
            matches!(&err, MailError::Address { address, .. } if address == "not an address"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_server_is_a_transport_error() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let mailer = SmtpMailer::new(&SmtpConfig {
            server: "127.0.0.1".into(),
            port,
            ..SmtpConfig::default()
        })
        .unwrap();
        let err = mailer.send(&sample("a@example.com")).await.unwrap_err();
        assert!(matches!(err, MailError::Smtp(_)), "{err:?}");
    }

    mod through_the_sink {
        use super::*;
        use crate::mail::find_link;
        use crate::testing::smtp_sink::SmtpSink;

        /// Long (folded by quoted-printable) and full of `=`, which quoted-printable escapes.
        const LINK: &str = "https://example.com/confirm/\
            WyIxMjM0NTY3ODkwYWJjZGVmIiwiYUBleGFtcGxlLmNvbSJd.ZxYwVu.\
            q9Kc2lnbmF0dXJlX3RoYXRfaXNfbG9uZw?next=%2Fdashboard%3Fa%3D1&x=y==";

        async fn sink_and_mailer() -> (SmtpSink, SmtpMailer) {
            let sink = SmtpSink::start().await.unwrap();
            let mailer = SmtpMailer::new(&SmtpConfig {
                server: "127.0.0.1".into(),
                port: sink.port(),
                ..SmtpConfig::default()
            })
            .unwrap();
            (sink, mailer)
        }

        #[tokio::test]
        async fn a_mail_arrives_with_subject_text_link_and_html_intact() {
            let (sink, mailer) = sink_and_mailer().await;
            let mail = Mail {
                from: "Rampart <no-reply@example.com>".into(),
                to: "Zoë <zoe@example.com>".into(),
                subject: "Please confirm your email — ünïcode".into(),
                text: format!(
                    "Use {LINK} to confirm your email address.\n\
                     This link will expire in 1 day.\n\
                     .a line that starts with a dot\n.\n"
                ),
                html: format!(
                    "<p>Use <a href=\"{}\">this link</a> to confirm your email address.</p>",
                    LINK.replace('&', "&amp;")
                ),
            };
            mailer.send(&mail).await.unwrap();

            let received = sink
                .wait_for("zoe@example.com", Duration::from_secs(10))
                .await
                .unwrap();
            assert_eq!(received.from, "no-reply@example.com");
            assert_eq!(received.to, ["zoe@example.com"]);
            // The wire form really was quoted-printable and folded.
            assert!(
                received
                    .raw
                    .contains("Content-Transfer-Encoding: quoted-printable")
            );
            assert!(received.raw.contains("=\r\n"));
            assert!(!received.raw.contains(LINK));
            // The decoded parts are exactly what was sent.
            assert_eq!(received.subject, mail.subject);
            assert_eq!(received.text.replace("\r\n", "\n"), mail.text);
            assert_eq!(received.html.replace("\r\n", "\n"), mail.html);
            assert_eq!(
                find_link(&received.text, "/confirm/").as_deref(),
                Some(LINK)
            );
        }

        #[tokio::test]
        async fn pooled_mails_to_several_recipients_all_arrive() {
            let (sink, mailer) = sink_and_mailer().await;
            let sends = (0..5).map(|i| {
                let mailer = mailer.clone();
                tokio::spawn(
                    async move { mailer.send(&sample(&format!("user{i}@example.com"))).await },
                )
            });
            for send in sends.collect::<Vec<_>>() {
                send.await.unwrap().unwrap();
            }
            mailer.send(&sample("user0@example.com")).await.unwrap();
            for i in 0..5 {
                let mail = sink
                    .wait_for(&format!("user{i}@example.com"), Duration::from_secs(10))
                    .await
                    .unwrap();
                assert_eq!(mail.subject, "Please confirm your email");
            }
            assert_eq!(sink.messages().len(), 6);
        }
    }
}
