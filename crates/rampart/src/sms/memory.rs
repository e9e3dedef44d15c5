//! [`MemorySmsSender`]: text messages kept in memory, for tests.

use std::sync::{Arc, Mutex};

use super::{Sms, SmsError, SmsSender};

/// Keeps every text message in memory (clones share them), for tests to read.
#[derive(Debug, Clone, Default)]
pub struct MemorySmsSender {
    sent: Arc<Mutex<Vec<Sms>>>,
}

impl MemorySmsSender {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message sent so far, oldest first.
    pub fn sent(&self) -> Vec<Sms> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The messages sent to `to`, oldest first.
    pub fn sent_to(&self, to: &str) -> Vec<Sms> {
        self.sent().into_iter().filter(|s| s.to == to).collect()
    }
}

#[async_trait::async_trait]
impl SmsSender for MemorySmsSender {
    async fn send(&self, sms: &Sms) -> Result<(), SmsError> {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push(sms.clone());
        }
        Ok(())
    }
}
