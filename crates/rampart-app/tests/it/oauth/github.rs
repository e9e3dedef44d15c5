//! The built-in `github` provider against a small local fake of GitHub's endpoints (an axum
//! server on a free port, strict where GitHub is: the client id and secret, a single-use code
//! bound to its `redirect_uri` and PKCE challenge, the bearer token on the REST API). The API is
//! served under `/api` so `SECURITY_OAUTH_GITHUB_URL` and `SECURITY_OAUTH_GITHUB_API_URL` are
//! both exercised.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use sha2::Digest as _;

use super::*;

const GITHUB_ID: &str = "gh-client-id";
const GITHUB_SECRET: &str = "gh-client-secret-0123456789";

/// A GitHub account: (numeric id, [(email, primary, verified)]).
type Account = (u64, Vec<(&'static str, bool, bool)>);

/// GitHub's accounts: login → account.
fn accounts() -> HashMap<&'static str, Account> {
    HashMap::from([
        (
            "octo",
            (
                1001,
                vec![
                    ("octo@example.com", true, true),
                    ("octo-work@example.com", false, true),
                ],
            ),
        ),
        // The same GitHub account (id 1001) after changing its primary address.
        (
            "octo-renamed",
            (1001, vec![("octo-new@example.com", true, true)]),
        ),
        (
            "unverified",
            (1002, vec![("gh-unverified@example.com", true, false)]),
        ),
        (
            "secondary",
            (
                1003,
                vec![
                    ("gh-primary@example.com", true, false),
                    ("gh-secondary@example.com", false, true),
                ],
            ),
        ),
    ])
}

/// A code the fake handed out: for whom, to which redirect URI, with which PKCE challenge.
struct Grant {
    login: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct Fake {
    grants: Mutex<HashMap<String, Grant>>,
    tokens: Mutex<HashMap<String, String>>,
}

type Shared = Arc<Fake>;

async fn authorize(
    State(fake): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let ok = query.get("client_id").map(String::as_str) == Some(GITHUB_ID)
        && query.get("code_challenge_method").map(String::as_str) == Some("S256")
        && query.get("response_type").map(String::as_str) == Some("code");
    let (Some(redirect_uri), Some(state), Some(challenge), Some(login)) = (
        query.get("redirect_uri"),
        query.get("state"),
        query.get("code_challenge"),
        query.get("login"),
    ) else {
        return (AxumStatus::BAD_REQUEST, "missing parameters").into_response();
    };
    if !ok {
        return (AxumStatus::BAD_REQUEST, "bad client or PKCE").into_response();
    }
    let code = format!("code-{}", fake.grants.lock().expect("lock").len() + 1);
    fake.grants.lock().expect("lock").insert(
        code.clone(),
        Grant {
            login: login.clone(),
            redirect_uri: redirect_uri.clone(),
            challenge: challenge.clone(),
        },
    );
    let mut url = reqwest::Url::parse(redirect_uri).expect("redirect URI");
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", state);
    Redirect::to(url.as_str()).into_response()
}

async fn access_token(
    State(fake): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let refuse =
        |error: &str| (AxumStatus::BAD_REQUEST, Json(json!({"error": error}))).into_response();
    if form.get("client_id").map(String::as_str) != Some(GITHUB_ID)
        || form.get("client_secret").map(String::as_str) != Some(GITHUB_SECRET)
    {
        return refuse("incorrect_client_credentials");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return refuse("unsupported_grant_type");
    }
    // Single use: taken out whatever follows.
    let Some(grant) = form
        .get("code")
        .and_then(|code| fake.grants.lock().expect("lock").remove(code))
    else {
        return refuse("bad_verification_code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse("redirect_uri_mismatch");
    }
    let Some(verifier) = form.get("code_verifier") else {
        return refuse("bad_verification_code");
    };
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    if challenge != grant.challenge {
        return refuse("bad_verification_code");
    }
    let token = format!(
        "gho_{}_{}",
        grant.login,
        fake.tokens.lock().expect("lock").len()
    );
    fake.tokens
        .lock()
        .expect("lock")
        .insert(token.clone(), grant.login);
    Json(json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}))
        .into_response()
}

/// The account the bearer token was issued for.
fn bearer(fake: &Fake, headers: &HeaderMap) -> Option<Account> {
    let token = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    let login = fake.tokens.lock().expect("lock").get(token)?.clone();
    accounts().remove(login.as_str())
}

async fn user(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    match bearer(&fake, &headers) {
        Some((id, _)) => Json(json!({"id": id, "login": "someone"})).into_response(),
        None => AxumStatus::UNAUTHORIZED.into_response(),
    }
}

async fn emails(State(fake): State<Shared>, headers: HeaderMap) -> Response {
    match bearer(&fake, &headers) {
        Some((_, emails)) => Json(
            emails
                .iter()
                .map(|(email, primary, verified)| {
                    json!({"email": email, "primary": primary, "verified": verified,
                           "visibility": null})
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        None => AxumStatus::UNAUTHORIZED.into_response(),
    }
}

/// Starts the fake on a free port: its base URL.
async fn fake_github() -> String {
    let router = Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/api/user", get(user))
        .route("/api/user/emails", get(emails))
        .with_state(Shared::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn app_with_github(backend: &Backend) -> TestApp {
    let github = fake_github().await;
    let api = format!("{github}/api");
    TestApp::start_listening(
        backend,
        None,
        &[
            ("SECURITY_OAUTH_ENABLE", "true"),
            ("SECURITY_OAUTH_PROVIDERS", "github"),
            ("GITHUB_CLIENT_ID", GITHUB_ID),
            ("GITHUB_CLIENT_SECRET", GITHUB_SECRET),
            ("SECURITY_OAUTH_GITHUB_URL", github.as_str()),
            ("SECURITY_OAUTH_GITHUB_API_URL", api.as_str()),
        ],
    )
    .await
}

/// Signs in through the fake as `login` in a new browser; the browser and the app's answer.
async fn github_sign_in(app: &TestApp, login: &str) -> (TestClient, reqwest::Response) {
    let client = app.client();
    let authorization = begin(&client, "/login/oauthstart/github").await;
    let mut url = reqwest::Url::parse(&authorization).expect("authorization URL");
    let query: HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query["redirect_uri"],
        format!("{}/login/oauthresponse/github", app.base)
    );
    let scopes: Vec<&str> = query["scope"].split(' ').collect();
    assert!(scopes.contains(&"user:email"), "{scopes:?}");
    url.query_pairs_mut().append_pair("login", login);
    let provider = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let response = provider.get(url).send().await.expect("authorize");
    assert!(response.status().is_redirection(), "{}", response.status());
    let callback = location(&response);
    let response = back_at_app(&client, &callback).await;
    (client, response)
}

async fn github_scenario(app: TestApp) {
    // Sign-up with a verified primary email (the verified secondary one is not used).
    let (client, response) = github_sign_in(&app, "octo").await;
    assert_eq!(location(&response), app.security.config().login.post_view);
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("octo@example.com")
    );
    let id = user_id(&app, "octo@example.com").await;
    let links = app
        .security
        .datastore()
        .oauth_links(id)
        .await
        .expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].provider, "github");
    assert_eq!(links[0].subject, "1001");
    assert!(
        app.security
            .datastore()
            .user_by_email("octo-work@example.com")
            .await
            .expect("lookup")
            .is_none()
    );

    // The same GitHub id comes back (with another primary address): the same account.
    let (again, response) = github_sign_in(&app, "octo-renamed").await;
    assert_eq!(location(&response), app.security.config().login.post_view);
    assert_eq!(
        signed_in_as(&again).await.as_deref(),
        Some("octo@example.com")
    );
    assert!(
        app.security
            .datastore()
            .user_by_email("octo-new@example.com")
            .await
            .expect("lookup")
            .is_none()
    );

    // An unverified primary address, or a verified one that is not primary: refused.
    for (login, emails) in [
        ("unverified", &["gh-unverified@example.com"][..]),
        (
            "secondary",
            &["gh-primary@example.com", "gh-secondary@example.com"][..],
        ),
    ] {
        let (client, response) = github_sign_in(&app, login).await;
        assert_eq!(location(&response), "/login", "{login}");
        assert_eq!(signed_in_as(&client).await, None, "{login}");
        let page = login_page(&client).await;
        assert!(
            page.contains("GitHub did not give an email address"),
            "{login}: {page}"
        );
        for email in emails {
            assert!(
                app.security
                    .datastore()
                    .user_by_email(email)
                    .await
                    .expect("lookup")
                    .is_none(),
                "{email}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_signs_up_a_verified_primary_email_and_knows_its_id_again_sqlite() {
    github_scenario(app_with_github(&Backend::Sqlite).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_signs_up_a_verified_primary_email_and_knows_its_id_again_postgres() {
    if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
        github_scenario(app_with_github(&backend).await).await;
    }
}
