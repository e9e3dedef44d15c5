//! [`ConsoleSmsSender`]: text messages printed to stdout.

use std::io::Write as _;

use super::{Sms, SmsError, SmsSender};

/// Prints every text message to stdout instead of sending it, framed as the console mailer
/// frames mails. The default `SECURITY_SMS_SERVICE`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleSmsSender;

/// The message as printed: one block.
fn format_sms(sms: &Sms) -> String {
    let rule = "─".repeat(70);
    format!(
        "\n┌─ Text message (printed, not sent) {}\n│ From: {}\n│ To:   {}\n├{rule}\n│ {}\n└{rule}\n\n",
        "─".repeat(35),
        sms.from.as_deref().unwrap_or("-"),
        sms.to,
        sms.text.trim_end().replace('\n', "\n│ "),
    )
}

#[async_trait::async_trait]
impl SmsSender for ConsoleSmsSender {
    async fn send(&self, sms: &Sms) -> Result<(), SmsError> {
        let out = format_sms(sms);
        let mut stdout = std::io::stdout().lock();
        // A closed stdout loses the printout, not the request.
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_printed_with_its_numbers_and_text() {
        let sms = Sms::new(Some("+15550000000".into()), "+15551234567", "Use 123456");
        let out = format_sms(&sms);
        assert!(out.contains("From: +15550000000"), "{out}");
        assert!(out.contains("To:   +15551234567"), "{out}");
        assert!(out.contains("│ Use 123456"), "{out}");
    }
}
