//! [`TwilioSmsSender`]: text messages through Twilio's REST API (`SECURITY_SMS_SERVICE=twilio`).

use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};

use super::{Sms, SmsError, SmsSender};
use crate::config::SmsConfig;

/// Sends text messages with Twilio's Messages API: `POST
/// {api}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json` with `To`, `From`, `Body`, HTTP Basic
/// with the account id and `AUTH_TOKEN` (Flask-Security's `TwilioSmsSender` does the same
/// through Twilio's library).
#[derive(Clone)]
pub struct TwilioSmsSender {
    client: reqwest::Client,
    api_url: String,
    account_sid: String,
    auth_token: SecretString,
}

impl std::fmt::Debug for TwilioSmsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioSmsSender")
            .field("api_url", &self.api_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"[redacted]")
            .finish()
    }
}

impl TwilioSmsSender {
    /// A sender with the account of `SECURITY_SMS_SERVICE_CONFIG` (`ACCOUNT_SID`, `AUTH_TOKEN`),
    /// talking to `SECURITY_SMS_API_URL` (Twilio's by default).
    ///
    /// # Errors
    ///
    /// [`SmsError::Config`] when the account id or the token is missing.
    pub fn from_config(config: &SmsConfig) -> Result<Self, SmsError> {
        let service = &config.service_config;
        let account_sid = service
            .account_sid
            .clone()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| SmsError::Config("ACCOUNT_SID is not set".into()))?;
        let auth_token = service
            .auth_token
            .clone()
            .ok_or_else(|| SmsError::Config("AUTH_TOKEN is not set".into()))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(SmsError::Transport)?;
        Ok(Self {
            client,
            api_url: config.api_url.trim_end_matches('/').to_owned(),
            account_sid,
            auth_token,
        })
    }
}

#[async_trait::async_trait]
impl SmsSender for TwilioSmsSender {
    async fn send(&self, sms: &Sms) -> Result<(), SmsError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.api_url,
            url::form_urlencoded::byte_serialize(self.account_sid.as_bytes()).collect::<String>()
        );
        let mut form = vec![("To", sms.to.as_str()), ("Body", sms.text.as_str())];
        if let Some(from) = sms.from.as_deref() {
            form.push(("From", from));
        }
        let response = self
            .client
            .post(url)
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await
            .map_err(SmsError::Transport)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        Err(SmsError::Refused {
            status: status.as_u16(),
            body,
        })
    }
}
