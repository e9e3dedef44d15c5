//! Social sign-in settings (`SECURITY_OAUTH_*`, `OAUTH_<NAME>_*`, `GITHUB_*`, `GOOGLE_*`).

use std::collections::BTreeMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::ConfigError;

/// The issuer of the built-in `google` provider (OpenID Connect discovery runs against it).
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// Social sign-in: OAuth 2 / OpenID Connect providers (Flask-Security 5's `oauth_glue`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OauthConfig {
    /// `SECURITY_OAUTH_ENABLE`: sign-in through the providers of `SECURITY_OAUTH_PROVIDERS`.
    pub enabled: bool,
    /// `SECURITY_OAUTH_PROVIDERS`: the providers offered, by name (lower case): `github`,
    /// `google` (built in) or any name with `OAUTH_<NAME>_ISSUER`, `OAUTH_<NAME>_CLIENT_ID` and
    /// `OAUTH_<NAME>_CLIENT_SECRET` (a generic OpenID Connect provider).
    pub providers: Vec<String>,
    /// `OAUTH_*` (`OAUTH_<NAME>_ISSUER`, `OAUTH_<NAME>_CLIENT_ID`, `OAUTH_<NAME>_CLIENT_SECRET`):
    /// the generic OpenID Connect providers' issuer and client, by lower-case name
    /// (`OAUTH_ACME_ISSUER` → `acme`).
    pub clients: BTreeMap<String, OauthClient>,
    /// `GITHUB_CLIENT_ID` / `GITHUB_CLIENT_SECRET`: the built-in `github` provider's OAuth app.
    pub github: OauthClient,
    /// `GOOGLE_CLIENT_ID` / `GOOGLE_CLIENT_SECRET`: the built-in `google` provider's client.
    pub google: OauthClient,
    /// `SECURITY_OAUTH_START_URL` (default `/login/oauthstart`): `POST <url>/<name>` begins.
    pub start_url: String,
    /// `SECURITY_OAUTH_RESPONSE_URL` (default `/login/oauthresponse`): the redirect URI,
    /// `{base}<url>/<name>`, where `{base}` is `PREFERRED_URL_SCHEME` with `SERVER_NAME` (else
    /// the request's `Host`).
    pub response_url: String,
    /// `SECURITY_OAUTH_LINK_URL` (Rampart; default `/oauth-link`): `POST <url>/<name>` links a
    /// provider to the signed-in account, `POST <url>/<name>/delete` unlinks it.
    pub link_url: String,
    /// `SECURITY_OAUTH_VERIFY_START_URL` (default `/login/oauth-verify-start`, as
    /// Flask-Security 5.8): `POST <url>/<name>` re-authenticates the signed-in user through a
    /// provider linked to their account (freshness, as `SECURITY_VERIFY_URL` does with the
    /// password); the provider answers at the same redirect URI as a sign-in.
    pub verify_start_url: String,
    /// `SECURITY_OAUTH_WITHIN` (Rampart; default 10 minutes): how long a begun sign-in waits
    /// for the provider's answer.
    pub within: Duration,
    /// `SECURITY_OAUTH_GITHUB_URL` (Rampart; default `https://github.com`): where GitHub's
    /// authorize and token endpoints are (a test points it at a local stand-in).
    pub github_url: String,
    /// `SECURITY_OAUTH_GITHUB_API_URL` (Rampart; default `https://api.github.com`): GitHub's
    /// REST API (`/user`, `/user/emails`).
    pub github_api_url: String,
}

impl Default for OauthConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            providers: Vec::new(),
            clients: BTreeMap::new(),
            github: OauthClient::default(),
            google: OauthClient::default(),
            start_url: "/login/oauthstart".into(),
            response_url: "/login/oauthresponse".into(),
            link_url: "/oauth-link".into(),
            verify_start_url: "/login/oauth-verify-start".into(),
            within: Duration::from_secs(10 * 60),
            github_url: "https://github.com".into(),
            github_api_url: "https://api.github.com".into(),
        }
    }
}

/// One provider's client registration.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct OauthClient {
    /// `OAUTH_<NAME>_ISSUER`: the OpenID issuer (discovery at
    /// `<issuer>/.well-known/openid-configuration`); unused for `github`.
    pub issuer: Option<String>,
    /// `OAUTH_<NAME>_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `OAUTH_<NAME>_CLIENT_SECRET`.
    pub client_secret: Option<SecretString>,
}

/// What kind of provider a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OauthKind {
    /// GitHub: OAuth 2 and its REST API for the verified primary email.
    Github,
    /// OpenID Connect with discovery (`google` and every generic provider).
    OpenId,
}

/// A configured provider, resolved from the settings.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OauthProvider {
    /// Its name (lower case), as in the routes.
    pub name: String,
    /// GitHub or OpenID Connect.
    pub kind: OauthKind,
    /// The issuer (OpenID Connect only).
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
}

impl OauthConfig {
    /// The provider `name` (any case) if sign-in through providers is on and it is one of
    /// `SECURITY_OAUTH_PROVIDERS`, fully configured.
    pub fn provider(&self, name: &str) -> Option<OauthProvider> {
        if !self.enabled {
            return None;
        }
        let name = name.to_ascii_lowercase();
        if !self.providers.contains(&name) {
            return None;
        }
        self.resolve(&name).ok()
    }

    /// The configured providers, in the order of `SECURITY_OAUTH_PROVIDERS`.
    pub fn configured(&self) -> Vec<OauthProvider> {
        if !self.enabled {
            return Vec::new();
        }
        self.providers
            .iter()
            .filter_map(|name| self.resolve(name).ok())
            .collect()
    }

    fn resolve(&self, name: &str) -> Result<OauthProvider, ConfigError> {
        let upper = name.to_ascii_uppercase();
        let (kind, client, issuer, prefix) = match name {
            "github" => (OauthKind::Github, &self.github, None, "GITHUB_".to_owned()),
            "google" => (
                OauthKind::OpenId,
                &self.google,
                Some(GOOGLE_ISSUER.to_owned()),
                "GOOGLE_".to_owned(),
            ),
            _ => {
                let client = self.clients.get(name).ok_or_else(|| ConfigError::Missing {
                    key: format!("OAUTH_{upper}_ISSUER"),
                    message: format!("SECURITY_OAUTH_PROVIDERS names {name}"),
                })?;
                (
                    OauthKind::OpenId,
                    client,
                    client.issuer.clone(),
                    format!("OAUTH_{upper}_"),
                )
            }
        };
        let missing = |what: &str| ConfigError::Missing {
            key: format!("{prefix}{what}"),
            message: format!("SECURITY_OAUTH_PROVIDERS names {name}"),
        };
        let issuer = match kind {
            OauthKind::Github => String::new(),
            OauthKind::OpenId => {
                let issuer = issuer.ok_or_else(|| missing("ISSUER"))?;
                url::Url::parse(&issuer).map_err(|e| {
                    ConfigError::invalid(&format!("{prefix}ISSUER"), format!("not a URL: {e}"))
                })?;
                issuer
            }
        };
        let client_id = client
            .client_id
            .clone()
            .ok_or_else(|| missing("CLIENT_ID"))?;
        let client_secret = client
            .client_secret
            .clone()
            .filter(|s| !s.expose_secret().is_empty())
            .ok_or_else(|| missing("CLIENT_SECRET"))?;
        Ok(OauthProvider {
            name: name.to_owned(),
            kind,
            issuer,
            client_id,
            client_secret,
        })
    }

    /// How pages name provider `name`: `GitHub`, `Google`, else the name with a capital.
    pub fn title(name: &str) -> String {
        match name {
            "github" => "GitHub".to_owned(),
            "google" => "Google".to_owned(),
            _ => {
                let mut chars = name.chars();
                chars
                    .next()
                    .map(|first| first.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        }
    }

    /// Checks that every provider of `SECURITY_OAUTH_PROVIDERS` is configured (when on).
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        for name in &self.providers {
            if !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
                || name.is_empty()
            {
                return Err(ConfigError::invalid(
                    "SECURITY_OAUTH_PROVIDERS",
                    format!("{name:?} is not a provider name (letters, digits, `_`, `-`)"),
                ));
            }
            self.resolve(name)?;
        }
        Ok(())
    }
}

/// The providers offered (`oauth_providers` of `GET /login`, `config.oauth_providers` in
/// pages): each one's `name`, `title` and `start_url` (with `SECURITY_URL_PREFIX`); empty when
/// `SECURITY_OAUTH_ENABLE` is off.
pub(crate) fn providers_json(config: &super::SecurityConfig) -> serde_json::Value {
    let list: Vec<serde_json::Value> = config
        .oauth
        .configured()
        .into_iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "title": OauthConfig::title(&p.name),
                "start_url": config.url(&format!("{}/{}", config.oauth.start_url, p.name)),
            })
        })
        .collect();
    serde_json::Value::Array(list)
}

/// The origins the browser is sent to when a sign-in begins (each OpenID issuer's, Google's,
/// GitHub's), space-separated for the `form-action` of the Content-Security-Policy; empty when
/// `SECURITY_OAUTH_ENABLE` is off. A provider whose authorization endpoint lives on another
/// origin than its issuer needs the app's own policy.
pub(crate) fn form_action_origins(config: &super::SecurityConfig) -> String {
    let mut origins: Vec<String> = Vec::new();
    for provider in config.oauth.configured() {
        let url = match provider.kind {
            OauthKind::Github => config.oauth.github_url.clone(),
            OauthKind::OpenId => provider.issuer.clone(),
        };
        if let Ok(url) = url::Url::parse(&url) {
            let origin = url.origin().ascii_serialization();
            if origin != "null" && !origins.contains(&origin) {
                origins.push(origin);
            }
        }
    }
    origins.join(" ")
}

/// Reads `OAUTH_<NAME>_ISSUER`, `OAUTH_<NAME>_CLIENT_ID`, `OAUTH_<NAME>_CLIENT_SECRET` (other
/// `OAUTH_*` names are not ours and are left alone).
pub(crate) fn read_clients(
    pairs: impl Iterator<Item = (String, String)>,
) -> BTreeMap<String, OauthClient> {
    let mut clients: BTreeMap<String, OauthClient> = BTreeMap::new();
    for (rest, value) in pairs {
        let value = value.trim().to_owned();
        if value.is_empty() {
            continue;
        }
        for suffix in ["_ISSUER", "_CLIENT_ID", "_CLIENT_SECRET"] {
            let Some(name) = rest.strip_suffix(suffix).filter(|n| !n.is_empty()) else {
                continue;
            };
            let client = clients.entry(name.to_ascii_lowercase()).or_default();
            match suffix {
                "_ISSUER" => client.issuer = Some(value.clone()),
                "_CLIENT_ID" => client.client_id = Some(value.clone()),
                _ => client.client_secret = Some(SecretString::from(value.clone())),
            }
            break;
        }
    }
    clients
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<crate::SecurityConfig, ConfigError> {
        let mut all = vec![
            ("SECRET_KEY", "unit-test-secret-key-0123456789"),
            ("SECURITY_PASSWORD_SALT", "salt"),
        ];
        all.extend_from_slice(pairs);
        crate::SecurityConfig::from_settings(&crate::Settings::from_pairs(all))
    }

    #[test]
    fn a_generic_provider_is_read_from_its_oauth_names() {
        let config = config(&[
            ("SECURITY_OAUTH_ENABLE", "true"),
            ("SECURITY_OAUTH_PROVIDERS", "Acme, github"),
            ("OAUTH_ACME_ISSUER", "http://127.0.0.1:9000"),
            ("OAUTH_ACME_CLIENT_ID", "rampart"),
            ("OAUTH_ACME_CLIENT_SECRET", "s3cret"),
            ("OAUTH_TOKEN", "someone else's"),
            ("GITHUB_CLIENT_ID", "gh"),
            ("GITHUB_CLIENT_SECRET", "gh-secret"),
        ])
        .expect("valid");
        let acme = config.oauth.provider("ACME").expect("acme");
        assert_eq!(acme.kind, OauthKind::OpenId);
        assert_eq!(acme.issuer, "http://127.0.0.1:9000");
        assert_eq!(acme.client_id, "rampart");
        assert_eq!(
            config.oauth.provider("github").expect("github").kind,
            OauthKind::Github
        );
        assert!(config.oauth.provider("google").is_none(), "not in the list");
        let names: Vec<_> = config
            .oauth
            .configured()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["acme", "github"]);
    }

    #[test]
    fn a_listed_provider_without_its_secret_stops_start_up() {
        let error = config(&[
            ("SECURITY_OAUTH_ENABLE", "true"),
            ("SECURITY_OAUTH_PROVIDERS", "acme"),
            ("OAUTH_ACME_ISSUER", "http://127.0.0.1:9000"),
            ("OAUTH_ACME_CLIENT_ID", "rampart"),
        ])
        .expect_err("no secret");
        assert!(
            error.to_string().contains("OAUTH_ACME_CLIENT_SECRET"),
            "{error}"
        );
    }

    #[test]
    fn nothing_is_offered_while_oauth_is_off() {
        let config = config(&[
            ("SECURITY_OAUTH_PROVIDERS", "acme"),
            ("OAUTH_ACME_ISSUER", "http://127.0.0.1:9000"),
        ])
        .expect("off: not checked");
        assert!(config.oauth.configured().is_empty());
        assert!(config.oauth.provider("acme").is_none());
    }
}
