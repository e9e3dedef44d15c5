//! [`ConsoleMailer`]: mails printed to stdout.

use std::io::Write as _;

use super::{Mail, MailError, Mailer};

/// Prints every mail to stdout instead of sending it, framed so it stands out among the log
/// lines, with its links listed again at the end on lines of their own, to open from the
/// terminal: headers, the text part, then the links (the HTML part says the same and is left
/// out). The default backend in development, like the seed app's `MAIL_BACKEND=console`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleMailer;

impl ConsoleMailer {
    /// Creates a console mailer.
    pub fn new() -> Self {
        Self
    }
}

/// The `http(s)://` links of `text`, in order, without trailing sentence punctuation.
fn links(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\'' | '`'))
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .map(|word| word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']']))
        .collect()
}

/// The mail as printed: one block, so concurrent mails do not interleave.
fn format_mail(mail: &Mail) -> String {
    let rule = "─".repeat(70);
    let mut out = format!(
        "\n┌─ Mail (printed, not sent) {}\n│ From:    {}\n│ To:      {}\n│ Subject: {}\n├{rule}\n",
        "─".repeat(43),
        mail.from,
        mail.to,
        mail.subject,
    );
    for line in mail.text.trim_end().lines() {
        out.push_str("│ ");
        out.push_str(line);
        out.push('\n');
    }
    let found = links(&mail.text);
    if !found.is_empty() {
        out.push_str(&format!("├─ Links {}\n", "─".repeat(62)));
        for link in found {
            out.push_str(&format!("│ ➜ {link}\n"));
        }
    }
    out.push_str(&format!("└{rule}\n\n"));
    out
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
    fn the_printed_mail_is_framed_with_its_links_on_lines_of_their_own() {
        let mail = Mail {
            from: "no-reply@example.com".into(),
            to: "a@example.com".into(),
            subject: "Welcome".into(),
            text: "Use https://example.com/confirm/x to confirm.\nThanks.\n".into(),
            html: "<p>html</p>\n".into(),
        };
        let out = format_mail(&mail);
        let from = out.find("│ From:    no-reply@example.com\n").unwrap();
        let to = out.find("│ To:      a@example.com\n").unwrap();
        let subject = out.find("│ Subject: Welcome\n").unwrap();
        let text = out
            .find("│ Use https://example.com/confirm/x to confirm.\n")
            .unwrap();
        let link = out.find("│ ➜ https://example.com/confirm/x\n").unwrap();
        assert!(from < to && to < subject && subject < text && text < link);
        assert!(out.contains("┌─ Mail") && out.contains("└─"));
        assert!(!out.contains("<p>html</p>"), "the HTML part is left out");
    }

    #[tokio::test]
    async fn sending_to_the_console_succeeds() {
        ConsoleMailer::new().send(&Mail::default()).await.unwrap();
    }
}
