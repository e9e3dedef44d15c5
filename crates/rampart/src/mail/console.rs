//! [`ConsoleMailer`]: mails printed to stdout.

use std::io::Write as _;

use super::{Mail, MailError, Mailer};

/// Prints every mail (headers, text part, then HTML part) to stdout instead of sending it, so the
/// links in it can be followed from the terminal. The default backend in development, like the
/// seed app's `MAIL_BACKEND=console`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleMailer;

impl ConsoleMailer {
    /// Creates a console mailer.
    pub fn new() -> Self {
        Self
    }
}

/// The mail as printed: one block, so concurrent mails do not interleave.
fn format_mail(mail: &Mail) -> String {
    let rule = "-".repeat(72);
    format!(
        "{rule}\nFrom: {}\nTo: {}\nSubject: {}\n\n{}\n{rule} text/html\n{}\n{rule}\n",
        mail.from,
        mail.to,
        mail.subject,
        mail.text.trim_end(),
        mail.html.trim_end(),
    )
}

#[async_trait::async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let out = format_mail(mail);
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(MailError::Io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_mail_shows_headers_then_text_then_html() {
        let mail = Mail {
            from: "no-reply@example.com".into(),
            to: "a@example.com".into(),
            subject: "Welcome".into(),
            text: "Use https://example.com/confirm/x to confirm.\n".into(),
            html: "<p>html</p>\n".into(),
        };
        let out = format_mail(&mail);
        let from = out.find("From: no-reply@example.com\n").unwrap();
        let to = out.find("To: a@example.com\n").unwrap();
        let subject = out.find("Subject: Welcome\n").unwrap();
        let text = out
            .find("Use https://example.com/confirm/x to confirm.\n")
            .unwrap();
        let html = out.find("<p>html</p>\n").unwrap();
        assert!(from < to && to < subject && subject < text && text < html);
    }

    #[tokio::test]
    async fn sending_to_the_console_succeeds() {
        ConsoleMailer::new().send(&Mail::default()).await.unwrap();
    }
}
