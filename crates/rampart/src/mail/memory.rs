//! [`MemoryMailer`]: mails kept in memory, for tests.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Mail, MailError, Mailer};

/// Keeps every mail it is asked to send, in order, for in-process tests to read back.
///
/// Clones share the same list: keep one clone and give the other to the security builder.
#[derive(Debug, Clone, Default)]
pub struct MemoryMailer {
    sent: Arc<Mutex<Vec<Mail>>>,
    /// Woken whenever a mail is sent.
    arrived: Arc<Notify>,
}

impl MemoryMailer {
    /// Creates a mailer with no mails.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Mail>> {
        // A panic while holding the lock cannot leave the list half-written; keep using it.
        self.sent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// All mails sent so far, oldest first.
    pub fn sent(&self) -> Vec<Mail> {
        self.lock().clone()
    }

    /// The most recent mail sent to `addr` (compared without case, and ignoring a display name
    /// such as `Ann <ann@example.com>`).
    pub fn last_to(&self, addr: &str) -> Option<Mail> {
        let addr = bare_address(addr);
        self.lock()
            .iter()
            .rev()
            .find(|mail| bare_address(&mail.to).eq_ignore_ascii_case(addr))
            .cloned()
    }

    /// Forgets all mails sent so far.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Waits up to `timeout` until `ready` holds for the mails sent so far (oldest first),
    /// checking again whenever a mail is sent; returns whether it held.
    ///
    /// Mails are sent from background tasks, so tests wait for them with this instead of
    /// sleeping. It relies on tokio's real clock.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&[Mail]) -> bool,
    ) -> bool {
        let wait = async {
            loop {
                // Register for the wake-up before looking, so a mail sent in between is not missed.
                let mut arrived = std::pin::pin!(self.arrived.notified());
                arrived.as_mut().enable();
                if ready(&self.lock()) {
                    return;
                }
                arrived.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.is_ok()
    }
}

/// `ann@example.com` from `Ann <ann@example.com>`; the trimmed input otherwise.
fn bare_address(addr: &str) -> &str {
    let addr = addr.trim();
    match (addr.rfind('<'), addr.ends_with('>')) {
        (Some(open), true) => addr[open + 1..addr.len() - 1].trim(),
        _ => addr,
    }
}

#[async_trait::async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        self.lock().push(mail.clone());
        self.arrived.notify_waiters();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::SharedMailer;

    fn mail(to: &str, subject: &str) -> Mail {
        Mail {
            from: "no-reply@example.com".into(),
            to: to.into(),
            subject: subject.into(),
            text: format!("text of {subject}"),
            html: format!("<p>{subject}</p>"),
        }
    }

    #[tokio::test]
    async fn sent_mails_are_kept_in_order_and_shared_by_clones() {
        let mailer = MemoryMailer::new();
        let shared: SharedMailer = std::sync::Arc::new(mailer.clone());
        shared.send(&mail("a@example.com", "one")).await.unwrap();
        shared.send(&mail("b@example.com", "two")).await.unwrap();
        let subjects: Vec<_> = mailer.sent().into_iter().map(|m| m.subject).collect();
        assert_eq!(subjects, ["one", "two"]);
    }

    #[tokio::test]
    async fn last_to_finds_the_latest_mail_for_an_address() {
        let mailer = MemoryMailer::new();
        mailer.send(&mail("a@example.com", "one")).await.unwrap();
        mailer
            .send(&mail("Ann <A@Example.com>", "two"))
            .await
            .unwrap();
        mailer.send(&mail("b@example.com", "three")).await.unwrap();
        assert_eq!(mailer.last_to("a@example.com").unwrap().subject, "two");
        assert_eq!(mailer.last_to("<b@example.com>").unwrap().subject, "three");
        assert!(mailer.last_to("c@example.com").is_none());
    }

    #[tokio::test]
    async fn wait_until_wakes_up_when_a_mail_is_sent() {
        let mailer = MemoryMailer::new();
        let sender = mailer.clone();
        tokio::spawn(async move { sender.send(&mail("a@example.com", "one")).await });
        let found = mailer
            .wait_until(Duration::from_secs(5), |sent| {
                sent.iter().any(|m| m.subject == "one")
            })
            .await;
        assert!(found);
        let never = mailer
            .wait_until(Duration::from_millis(20), |sent| sent.len() > 1)
            .await;
        assert!(!never);
    }

    #[tokio::test]
    async fn clear_forgets_every_mail() {
        let mailer = MemoryMailer::new();
        mailer.send(&mail("a@example.com", "one")).await.unwrap();
        mailer.clear();
        assert!(mailer.sent().is_empty());
        assert!(mailer.last_to("a@example.com").is_none());
    }
}
