//! Talking to the providers, all through `openidconnect` / `oauth2`: the authorization URL
//! (PKCE S256, `state`, `nonce`), the code exchange, the ID token's checks against the
//! provider's JWKS, and the userinfo endpoint; GitHub through `oauth2` and its REST API.
//!
//! Discovery and the JWKS are fetched for each step (no cache), so keys a provider rotates are
//! always current and a stale key set is never used. The HTTP client follows no redirects (the
//! `openidconnect` docs' SSRF warning) and gives up after [`TIMEOUT`].

use std::sync::OnceLock;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreProviderMetadata,
    CoreUserInfoClaims,
};
use openidconnect::reqwest;
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    TokenResponse,
};
use secrecy::ExposeSecret;

use super::flow::Flow;
use crate::config::{OauthKind, OauthProvider, SecurityConfig};

/// How long one request to a provider may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why a provider's answer was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProviderError {
    /// The provider could not be reached or answered nonsense (discovery, token, userinfo).
    #[error("{0}")]
    Unavailable(String),
    /// The code exchange was refused (a used or wrong code, a wrong PKCE verifier).
    #[error("{0}")]
    Token(String),
    /// The ID token failed its checks (signature, issuer, audience, expiry, nonce).
    #[error("{0}")]
    IdToken(String),
}

impl ProviderError {
    /// The error code shown as `exerror` in `OAUTH_HANDSHAKE_ERROR`.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Unavailable(_) => "provider_unavailable",
            Self::Token(_) => "invalid_grant",
            Self::IdToken(_) => "invalid_id_token",
        }
    }
}

/// A begun authorization: where to send the browser and what to keep.
pub(crate) struct Begun {
    pub(crate) url: String,
    pub(crate) state: String,
    pub(crate) nonce: Option<String>,
    pub(crate) verifier: String,
}

/// Who the provider says signed in.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    /// The provider's stable identifier (`sub`; GitHub's numeric user id).
    pub(crate) subject: String,
    /// Their email address, if the provider gave one.
    pub(crate) email: Option<String>,
    /// Whether the provider says the email is verified (absent: not).
    pub(crate) email_verified: bool,
}

fn http() -> Result<reqwest::Client, ProviderError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .user_agent(concat!("rampart/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ProviderError::Unavailable(format!("http client: {e}")))?;
    Ok(CLIENT.get_or_init(|| client).clone())
}

fn unavailable(what: &str) -> impl Fn(String) -> ProviderError + '_ {
    move |e| ProviderError::Unavailable(format!("{what}: {e}"))
}

/// The provider's OpenID client (after discovery), for `redirect_uri`.
async fn openid_client(
    provider: &OauthProvider,
    redirect_uri: &str,
    http: &reqwest::Client,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    ProviderError,
> {
    let issuer = IssuerUrl::new(provider.issuer.clone())
        .map_err(|e| unavailable("issuer")(e.to_string()))?;
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .map_err(|e| unavailable("discovery")(error_chain(&e)))?;
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|e| unavailable("redirect URI")(e.to_string()))?;
    let auth_type = client_auth_type(metadata.token_endpoint_auth_methods_supported());
    Ok(CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(provider.client_id.clone()),
        Some(ClientSecret::new(
            provider.client_secret.expose_secret().to_owned(),
        )),
    )
    .set_auth_type(auth_type)
    .set_redirect_uri(redirect))
}

/// How the client authenticates at the token endpoint, from the provider's discovery
/// `token_endpoint_auth_methods_supported`: HTTP Basic (`client_secret_basic`) when listed, or
/// when the list is absent (OpenID Connect Discovery's default); else the secret in the request
/// body (`client_secret_post`) when listed; else Basic all the same (the provider's refusal then
/// says why).
pub(crate) fn client_auth_type(supported: Option<&Vec<CoreClientAuthMethod>>) -> AuthType {
    match supported {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

/// An error with its sources, for the logs and the message.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The authorization URL of `provider` with a fresh `state`, `nonce` and PKCE (S256) challenge.
pub(crate) async fn authorization(
    config: &SecurityConfig,
    provider: &OauthProvider,
    redirect_uri: &str,
) -> Result<Begun, ProviderError> {
    let http = http()?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    match provider.kind {
        OauthKind::OpenId => {
            let client = openid_client(provider, redirect_uri, &http).await?;
            let (url, state, nonce) = client
                .authorize_url(
                    CoreAuthenticationFlow::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .add_scope(Scope::new("email".into()))
                .add_scope(Scope::new("profile".into()))
                .set_pkce_challenge(challenge)
                .url();
            Ok(Begun {
                url: url.to_string(),
                state: state.secret().clone(),
                nonce: Some(nonce.secret().clone()),
                verifier: verifier.secret().clone(),
            })
        }
        OauthKind::Github => {
            let client = github::client(config, provider, redirect_uri)?;
            let (url, state) = client
                .authorize_url(CsrfToken::new_random)
                .add_scope(Scope::new("read:user".into()))
                .add_scope(Scope::new("user:email".into()))
                .set_pkce_challenge(challenge)
                .url();
            Ok(Begun {
                url: url.to_string(),
                state: state.secret().clone(),
                nonce: None,
                verifier: verifier.secret().clone(),
            })
        }
    }
}

/// Exchanges `code` (with the flow's PKCE verifier) and finds out who signed in.
pub(crate) async fn identity(
    config: &SecurityConfig,
    provider: &OauthProvider,
    flow: &Flow,
    code: &str,
) -> Result<Identity, ProviderError> {
    let http = http()?;
    match provider.kind {
        OauthKind::OpenId => openid_identity(provider, flow, code, &http).await,
        OauthKind::Github => github::identity(config, provider, flow, code, &http).await,
    }
}

async fn openid_identity(
    provider: &OauthProvider,
    flow: &Flow,
    code: &str,
    http: &reqwest::Client,
) -> Result<Identity, ProviderError> {
    let nonce = flow
        .nonce
        .clone()
        .ok_or_else(|| ProviderError::IdToken("the flow has no nonce".into()))?;
    let client = openid_client(provider, &flow.redirect_uri, http).await?;
    let token = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|e| unavailable("token endpoint")(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
        .request_async(http)
        .await
        .map_err(|e| ProviderError::Token(error_chain(&e)))?;
    let id_token = token
        .id_token()
        .ok_or_else(|| ProviderError::IdToken("the provider sent no ID token".into()))?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(nonce))
        .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
    if let Some(expected) = claims.access_token_hash() {
        let algorithm = id_token
            .signing_alg()
            .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
        let actual = AccessTokenHash::from_token(token.access_token(), algorithm, key)
            .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
        if actual != *expected {
            return Err(ProviderError::IdToken(
                "the access token does not match the ID token's at_hash".into(),
            ));
        }
    }
    let subject = claims.subject().clone();
    // The email comes from the userinfo endpoint (the ID token need not carry it), whose
    // answer must be about the same subject.
    let userinfo: CoreUserInfoClaims = client
        .user_info(token.access_token().to_owned(), Some(subject.clone()))
        .map_err(|e| unavailable("userinfo endpoint")(e.to_string()))?
        .request_async(http)
        .await
        .map_err(|e| unavailable("userinfo")(error_chain(&e)))?;
    Ok(Identity {
        subject: subject.as_str().to_owned(),
        email: userinfo.email().map(|e| e.as_str().to_owned()),
        email_verified: userinfo.email_verified().unwrap_or(false),
    })
}

/// GitHub: OAuth 2 (no OpenID), the person from `GET /user`, the email from `GET /user/emails`
/// (the primary one, only when GitHub verified it).
mod github {
    use oauth2::basic::BasicClient;
    use oauth2::{
        AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
        PkceCodeVerifier, RedirectUrl, TokenResponse, TokenUrl,
    };
    use openidconnect::reqwest;
    use secrecy::ExposeSecret;
    use serde::Deserialize;

    use super::{Identity, ProviderError, error_chain, unavailable};
    use crate::config::{OauthProvider, SecurityConfig};
    use crate::features::oauth::flow::Flow;

    type Client =
        BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

    pub(super) fn client(
        config: &SecurityConfig,
        provider: &OauthProvider,
        redirect_uri: &str,
    ) -> Result<Client, ProviderError> {
        let base = config.oauth.github_url.trim_end_matches('/');
        let auth = AuthUrl::new(format!("{base}/login/oauth/authorize"))
            .map_err(|e| unavailable("SECURITY_OAUTH_GITHUB_URL")(e.to_string()))?;
        let token = TokenUrl::new(format!("{base}/login/oauth/access_token"))
            .map_err(|e| unavailable("SECURITY_OAUTH_GITHUB_URL")(e.to_string()))?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| unavailable("redirect URI")(e.to_string()))?;
        Ok(BasicClient::new(ClientId::new(provider.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                provider.client_secret.expose_secret().to_owned(),
            ))
            .set_auth_type(AuthType::RequestBody)
            .set_auth_uri(auth)
            .set_token_uri(token)
            .set_redirect_uri(redirect))
    }

    #[derive(Deserialize)]
    struct GithubUser {
        id: u64,
    }

    #[derive(Deserialize)]
    struct GithubEmail {
        email: String,
        primary: bool,
        verified: bool,
    }

    async fn get<T: serde::de::DeserializeOwned>(
        http: &reqwest::Client,
        url: String,
        token: &str,
    ) -> Result<T, ProviderError> {
        let response = http
            .get(&url)
            .bearer_auth(token)
            .header("accept", "application/vnd.github+json")
            .send()
            .await
            .map_err(|e| unavailable("GitHub API")(error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(ProviderError::Unavailable(format!(
                "GitHub API {url}: {}",
                response.status()
            )));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| unavailable("GitHub API")(error_chain(&e)))?;
        serde_json::from_slice(&body).map_err(|e| unavailable("GitHub API")(e.to_string()))
    }

    pub(super) async fn identity(
        config: &SecurityConfig,
        provider: &OauthProvider,
        flow: &Flow,
        code: &str,
        http: &reqwest::Client,
    ) -> Result<Identity, ProviderError> {
        let client = client(config, provider, &flow.redirect_uri)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
            .request_async(http)
            .await
            .map_err(|e| ProviderError::Token(error_chain(&e)))?;
        let access = token.access_token().secret();
        let api = config.oauth.github_api_url.trim_end_matches('/');
        let user: GithubUser = get(http, format!("{api}/user"), access).await?;
        let emails: Vec<GithubEmail> = get(http, format!("{api}/user/emails"), access).await?;
        let primary = emails.into_iter().find(|e| e.primary && e.verified);
        Ok(Identity {
            subject: user.id.to_string(),
            email_verified: primary.is_some(),
            email: primary.map(|e| e.email),
        })
    }
}

#[cfg(test)]
mod tests {
    use openidconnect::AuthType;
    use openidconnect::core::CoreClientAuthMethod::{
        ClientSecretBasic, ClientSecretJwt, ClientSecretPost, PrivateKeyJwt,
    };

    use super::client_auth_type;

    fn is_basic(auth: AuthType) -> bool {
        matches!(auth, AuthType::BasicAuth)
    }

    #[test]
    fn basic_when_listed_or_when_nothing_is_said() {
        assert!(is_basic(client_auth_type(None)));
        assert!(is_basic(client_auth_type(Some(&vec![
            ClientSecretPost,
            ClientSecretBasic
        ]))));
        assert!(is_basic(client_auth_type(Some(&vec![ClientSecretBasic]))));
    }

    #[test]
    fn post_when_only_post_is_listed_of_the_two() {
        assert!(matches!(
            client_auth_type(Some(&vec![PrivateKeyJwt, ClientSecretPost])),
            AuthType::RequestBody
        ));
        assert!(is_basic(client_auth_type(Some(&vec![
            ClientSecretJwt,
            PrivateKeyJwt
        ]))));
    }
}
