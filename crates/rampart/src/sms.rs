//! Text messages (Flask-Security's `SmsSenderFactory`, `SECURITY_SMS_SERVICE`): a small
//! [`SmsSender`] trait, the [`ConsoleSmsSender`] (the default: messages are printed, as the
//! console mailer does), [`TwilioSmsSender`] (Twilio's REST API) and, for tests, the
//! [`MemorySmsSender`].

mod console;
mod memory;
mod twilio;

use std::sync::Arc;

pub use console::ConsoleSmsSender;
pub use memory::MemorySmsSender;
pub use twilio::TwilioSmsSender;

use crate::config::SmsConfig;

/// One text message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sms {
    /// The number it comes from (`PHONE_NUMBER` of `SECURITY_SMS_SERVICE_CONFIG`), if set.
    pub from: Option<String>,
    /// The number it goes to (E.164).
    pub to: String,
    /// What it says.
    pub text: String,
}

impl Sms {
    /// A message from `from` to `to` saying `text`.
    pub fn new(from: Option<String>, to: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            from,
            to: to.into(),
            text: text.into(),
        }
    }
}

/// Sends text messages.
#[async_trait::async_trait]
pub trait SmsSender: Send + Sync + 'static {
    /// Sends one message; returns once the provider has accepted it.
    async fn send(&self, sms: &Sms) -> Result<(), SmsError>;
}

/// An [`SmsSender`] shared by the whole application.
pub type SharedSmsSender = Arc<dyn SmsSender>;

/// Why a text message could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SmsError {
    /// The service is not configured as it needs (`SECURITY_SMS_SERVICE_CONFIG`).
    #[error("text messages: {0}")]
    Config(String),
    /// The provider could not be reached.
    #[error("the text message provider could not be reached")]
    Transport(#[source] reqwest::Error),
    /// The provider refused the message.
    #[error("the text message provider refused the message: {status} {body}")]
    Refused {
        /// The HTTP status it answered.
        status: u16,
        /// What it said (shortened).
        body: String,
    },
}

/// The sender `SECURITY_SMS_SERVICE` names: `console` (default) or `twilio`.
///
/// # Errors
///
/// [`SmsError::Config`] when `twilio` lacks its `ACCOUNT_SID` or `AUTH_TOKEN`.
pub fn from_config(config: &SmsConfig) -> Result<SharedSmsSender, SmsError> {
    match config.service.as_str() {
        "twilio" => Ok(Arc::new(TwilioSmsSender::from_config(config)?)),
        _ => Ok(Arc::new(ConsoleSmsSender)),
    }
}
