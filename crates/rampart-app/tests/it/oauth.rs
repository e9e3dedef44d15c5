//! Social sign-in against a real OpenID provider: panva's `oidc-provider` (npm, installed by
//! `.ci/run` with `npm ci` in `tests/oidc-provider/`), started here as a child process on a free
//! port, strict as a real one (exact issuer and redirect URI, PKCE S256 required, single-use
//! codes, the email only from the userinfo endpoint). Skipped with a notice when node or the
//! installed package is missing, except under CI.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{Backend, PASSWORD, TestApp, TestClient, profile_rows};

mod github;

const CLIENT_ID: &str = "rampart-test";
const CLIENT_SECRET: &str = "rampart-test-secret-0123456789";

/// The provider's accounts: id → (email, verified).
const ACCOUNTS: &[(&str, &str, bool)] = &[
    ("alice", "alice@example.com", true),
    ("bob", "bob@example.com", true),
    ("mallory", "victim@example.com", false),
    ("nobody", "unverified@example.com", false),
    ("carol-elsewhere", "carol@elsewhere.example", true),
    ("dave", "dave@example.com", true),
];

/// The running provider (killed on drop).
pub(crate) struct OidcProvider {
    pub(crate) issuer: String,
    child: tokio::process::Child,
}

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

/// How the test provider is set up beyond its defaults.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProviderSetup {
    /// The port to listen on (0: any free one).
    pub(crate) port: u16,
    /// Extra fields of the client's registration (e.g. `token_endpoint_auth_method`).
    pub(crate) client: serde_json::Map<String, Value>,
    /// The token endpoint's client authentication methods (discovery lists them); `None`: the
    /// library's default (all).
    pub(crate) client_auth_methods: Option<Vec<&'static str>>,
}

impl OidcProvider {
    /// Starts the provider with one client whose redirect URIs are `redirect_uris`, set up as
    /// `setup` says, or `None` (with a notice) when node or the package is missing and this is
    /// not CI. Every start makes a new signing key.
    pub(crate) async fn start_with(
        redirect_uris: &[String],
        setup: &ProviderSetup,
    ) -> Option<Self> {
        let dir = provider_dir();
        let installed = dir.join("node_modules/oidc-provider").is_dir();
        let node = std::process::Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !(installed && node) {
            let message = "the sign-in tests need node and the test provider \
                           (cd crates/rampart-app/tests/oidc-provider && npm ci)";
            if std::env::var_os("CI").is_some() {
                panic!("CI must run the sign-in tests: {message}");
            }
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
            return None;
        }
        let accounts: serde_json::Map<String, Value> = ACCOUNTS
            .iter()
            .map(|(id, email, verified)| {
                (
                    (*id).to_owned(),
                    json!({"email": email, "email_verified": verified, "name": id}),
                )
            })
            .collect();
        let mut client = json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uris": redirect_uris,
        });
        if let Some(fields) = client.as_object_mut() {
            fields.extend(setup.client.clone());
        }
        let mut config = json!({
            "port": setup.port,
            "clients": [client],
            "accounts": accounts,
        });
        if let Some(methods) = &setup.client_auth_methods {
            config["client_auth_methods"] = json!(methods);
        }
        let mut child = tokio::process::Command::new("node")
            .arg(dir.join("server.js"))
            .arg(config.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the test provider");
        let stdout = child.stdout.take().expect("provider stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider starts within 30 s")
            .expect("provider output")
            .expect("a line");
        let issuer = line
            .strip_prefix("listening ")
            .expect("listening <issuer>")
            .to_owned();
        // Keep reading its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Some(Self { issuer, child })
    }

    /// The port it listens on.
    pub(crate) fn port(&self) -> u16 {
        reqwest::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.port())
            .expect("the issuer has a port")
    }

    /// Stops it and waits until it has exited.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// An app with the provider `acme` configured, and the provider; `None` when skipped.
pub(crate) async fn app_with_provider(
    backend: &Backend,
    extra: &[(&str, &str)],
) -> Option<(TestApp, OidcProvider)> {
    app_with_provider_setup(backend, extra, &ProviderSetup::default()).await
}

/// As [`app_with_provider`], the provider set up as `setup` says.
pub(crate) async fn app_with_provider_setup(
    backend: &Backend,
    extra: &[(&str, &str)],
    setup: &ProviderSetup,
) -> Option<(TestApp, OidcProvider)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let provider =
        OidcProvider::start_with(&[format!("{base}/login/oauthresponse/acme")], setup).await?;
    let mut settings = vec![
        ("SECURITY_OAUTH_ENABLE", "true"),
        ("SECURITY_OAUTH_PROVIDERS", "acme"),
        ("OAUTH_ACME_ISSUER", provider.issuer.as_str()),
        ("OAUTH_ACME_CLIENT_ID", CLIENT_ID),
        ("OAUTH_ACME_CLIENT_SECRET", CLIENT_SECRET),
    ];
    settings.extend_from_slice(extra);
    let app = TestApp::start_listening(backend, Some(listener), &settings).await;
    Some((app, provider))
}

/// Stamps `name::sqlite` and `name::postgres`, each running `body(app)` on an app with the
/// provider.
macro_rules! oauth_test {
    ($name:ident, $body:expr $(,)?) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some((app, _provider)) = app_with_provider(&Backend::Sqlite, &[]).await {
                    ($body)(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip()
                    && let Some((app, _provider)) = app_with_provider(&backend, &[]).await
                {
                    ($body)(app).await;
                }
            }
        }
    };
}

/// The CSRF token the sign-in page gives this client.
async fn csrf(client: &TestClient) -> String {
    let (status, body) = client.get_json("/login").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["response"]["csrf_token"]
        .as_str()
        .expect("csrf token")
        .to_owned()
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_owned()
}

/// Posts the form button at `path` (with the CSRF token, as a browser): the provider's
/// authorization URL it redirects to.
async fn begin(client: &TestClient, path: &str) -> String {
    let token = csrf(client).await;
    let response = client
        .http
        .post(format!("{}{path}", client.base))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("start");
    assert!(
        response.status().is_redirection(),
        "{}: {:?}",
        response.status(),
        response.text().await
    );
    location(&response)
}

/// Goes through the provider as `account` (`None`: the person cancels), with a browser of its
/// own there: the URL of the redirect back to the app.
async fn at_provider(authorization: &str, account: Option<&str>) -> String {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let issuer = reqwest::Url::parse(authorization).expect("authorization URL");
    let mut url = issuer.clone();
    let mut chose = false;
    for _ in 0..10 {
        let response = http.get(url.clone()).send().await.expect("provider");
        if response.status().is_redirection() {
            let next = url.join(&location(&response)).expect("redirect URL");
            if next.origin() != issuer.origin() {
                return next.to_string();
            }
            url = next;
            continue;
        }
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{:?}",
            response.text().await
        );
        assert!(!chose, "the provider asked twice");
        chose = true;
        match account {
            Some(id) => url.query_pairs_mut().append_pair("user", id),
            None => url.query_pairs_mut().append_pair("deny", "1"),
        };
    }
    panic!("the provider never sent the browser back");
}

/// The app's answer to the provider's redirect (opened by `client`).
async fn back_at_app(client: &TestClient, callback: &str) -> reqwest::Response {
    client.http.get(callback).send().await.expect("callback")
}

/// The email of the user `client` is signed in as, if any.
async fn signed_in_as(client: &TestClient) -> Option<String> {
    let (_, body) = client.get_json("/login").await;
    body["response"]["user"]["email"]
        .as_str()
        .map(str::to_owned)
}

/// The flashed messages the sign-in page shows.
async fn login_page(client: &TestClient) -> String {
    client
        .http
        .get(format!("{}/login", client.base))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("page")
}

/// Signs in through the provider as `account` in a new browser; the final response.
async fn sign_in_as(app: &TestApp, account: &str) -> (TestClient, reqwest::Response) {
    let client = app.client();
    let authorization = begin(&client, "/login/oauthstart/acme").await;
    let callback = at_provider(&authorization, Some(account)).await;
    let response = back_at_app(&client, &callback).await;
    (client, response)
}

async fn user_id(app: &TestApp, email: &str) -> i64 {
    app.security
        .datastore()
        .user_by_email(email)
        .await
        .expect("lookup")
        .expect("user")
        .id
}

oauth_test!(
    a_new_person_signs_up_and_comes_back_to_the_same_account,
    async |app: TestApp| {
        let (client, response) = sign_in_as(&app, "alice").await;
        assert!(response.status().is_redirection(), "{}", response.status());
        assert_eq!(location(&response), app.security.config().login.post_view);
        assert_eq!(
            signed_in_as(&client).await.as_deref(),
            Some("alice@example.com")
        );
        let user = app
            .security
            .datastore()
            .user_by_email("alice@example.com")
            .await
            .expect("lookup")
            .expect("a new account");
        assert!(user.confirmed_at.is_some(), "the provider verified it");
        assert!(user.password.is_none());
        assert_eq!(
            profile_rows(&app.security, user.id).await,
            1,
            "an empty profile"
        );
        let mail = app.mail_to("alice@example.com").await;
        assert_eq!(mail.subject, "Welcome");

        let (again, response) = sign_in_as(&app, "alice").await;
        assert!(response.status().is_redirection(), "{}", response.status());
        assert_eq!(
            signed_in_as(&again).await.as_deref(),
            Some("alice@example.com")
        );
        let links = app
            .security
            .datastore()
            .oauth_links(user.id)
            .await
            .expect("links");
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].provider, "acme");
        assert_eq!(links[0].subject, "alice");
        assert!(links[0].last_used_at.is_some());
    }
);

oauth_test!(
    a_verified_email_links_to_the_confirmed_account_of_that_address,
    async |app: TestApp| {
        app.create_user("bob@example.com").await;
        let id = user_id(&app, "bob@example.com").await;
        let (client, response) = sign_in_as(&app, "bob").await;
        assert!(response.status().is_redirection(), "{}", response.status());
        assert_eq!(
            signed_in_as(&client).await.as_deref(),
            Some("bob@example.com")
        );
        let links = app
            .security
            .datastore()
            .oauth_links(id)
            .await
            .expect("links");
        assert_eq!(links.len(), 1, "linked to the existing account");
        let mail = app.mail_to("bob@example.com").await;
        assert!(mail.subject.contains("Acme was linked"), "{}", mail.subject);
    }
);

oauth_test!(
    an_unverified_email_never_signs_into_an_existing_account_nor_makes_one,
    async |app: TestApp| {
        app.create_user("victim@example.com").await;
        let id = user_id(&app, "victim@example.com").await;
        let (client, response) = sign_in_as(&app, "mallory").await;
        assert!(response.status().is_redirection(), "{}", response.status());
        assert_eq!(location(&response), "/login");
        assert_eq!(signed_in_as(&client).await, None);
        assert!(
            login_page(&client)
                .await
                .contains("has not verified your email address")
        );
        assert!(
            app.security
                .datastore()
                .oauth_links(id)
                .await
                .expect("links")
                .is_empty()
        );

        let (client, _) = sign_in_as(&app, "nobody").await;
        assert_eq!(signed_in_as(&client).await, None);
        let made = app
            .security
            .datastore()
            .user_by_email("unverified@example.com")
            .await
            .expect("lookup");
        assert!(made.is_none(), "no account for an unverified address");
    }
);

oauth_test!(
    the_start_redirect_carries_pkce_s256_state_and_nonce,
    async |app: TestApp| {
        let client = app.client();
        let authorization = begin(&client, "/login/oauthstart/acme").await;
        let url = reqwest::Url::parse(&authorization).expect("URL");
        let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(query["code_challenge_method"], "S256");
        assert!(query["code_challenge"].len() >= 43);
        assert!(query["state"].len() >= 16);
        assert!(query["nonce"].len() >= 16);
        assert_eq!(query["client_id"], CLIENT_ID);
        assert_eq!(
            query["redirect_uri"],
            format!("{}/login/oauthresponse/acme", app.base)
        );
        assert!(query["scope"].split(' ').any(|s| s == "openid"));
    }
);

oauth_test!(
    a_tampered_state_another_browser_and_a_replay_are_refused,
    async |app: TestApp| {
        let client = app.client();
        let authorization = begin(&client, "/login/oauthstart/acme").await;
        let callback = at_provider(&authorization, Some("alice")).await;
        let mut url = reqwest::Url::parse(&callback).expect("URL");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();

        // A tampered state: refused, nobody signed in.
        url.query_pairs_mut().clear();
        for (k, v) in &pairs {
            let v = if k == "state" {
                format!("{v}x")
            } else {
                v.clone()
            };
            url.query_pairs_mut().append_pair(k, &v);
        }
        let response = back_at_app(&client, url.as_str()).await;
        assert_eq!(location(&response), "/login");
        assert_eq!(signed_in_as(&client).await, None);
        assert!(
            login_page(&client)
                .await
                .contains("begun in another browser")
        );

        // The same callback in another browser: refused (JSON: the 400 envelope).
        let other = app.client();
        let response = other
            .http
            .get(&callback)
            .header("accept", "application/json")
            .send()
            .await
            .expect("callback");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("json");
        assert!(body["response"]["errors"][0].as_str().is_some(), "{body}");
        assert_eq!(signed_in_as(&other).await, None);

        // The right browser: signed in (the refusals above used nothing up).
        let response = back_at_app(&client, &callback).await;
        assert_eq!(location(&response), app.security.config().login.post_view);
        assert_eq!(
            signed_in_as(&client).await.as_deref(),
            Some("alice@example.com")
        );

        // Replayed after signing out, in the same browser: refused.
        let (status, _) = client.post_json("/logout", json!({})).await;
        assert_eq!(status, StatusCode::OK);
        let _ = begin(&client, "/login/oauthstart/acme").await;
        let response = back_at_app(&client, &callback).await;
        assert_eq!(location(&response), "/login");
        assert_eq!(signed_in_as(&client).await, None);
    }
);

oauth_test!(
    a_code_answered_for_another_flow_fails_its_pkce_and_nonce,
    async |app: TestApp| {
        // Two flows in one browser; the second's code presented with the first's state: the
        // first's PKCE verifier and nonce do not fit, so the provider and the ID token check
        // refuse it.
        let client = app.client();
        let first = begin(&client, "/login/oauthstart/acme").await;
        let second = begin(&client, "/login/oauthstart/acme").await;
        let first_state = reqwest::Url::parse(&first)
            .expect("URL")
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .expect("state");
        let callback = at_provider(&second, Some("alice")).await;
        let mut url = reqwest::Url::parse(&callback).expect("URL");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        url.query_pairs_mut().clear();
        for (k, v) in &pairs {
            let v = if k == "state" {
                first_state.clone()
            } else {
                v.clone()
            };
            url.query_pairs_mut().append_pair(k, &v);
        }
        let response = back_at_app(&client, url.as_str()).await;
        assert_eq!(location(&response), "/login");
        assert_eq!(signed_in_as(&client).await, None);
        assert!(
            login_page(&client)
                .await
                .contains("An error occurred while communicating with the OAuth provider")
        );
    }
);

oauth_test!(the_providers_error_signs_nobody_in, async |app: TestApp| {
    let client = app.client();
    let authorization = begin(&client, "/login/oauthstart/acme").await;
    let callback = at_provider(&authorization, None).await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let response = back_at_app(&client, &callback).await;
    assert_eq!(location(&response), "/login");
    assert_eq!(signed_in_as(&client).await, None);
    let page = login_page(&client).await;
    assert!(
        page.contains(
            "An error occurred while communicating with the OAuth provider: (access_denied"
        ),
        "{page}"
    );
});

oauth_test!(
    the_sign_in_page_offers_the_providers_and_unknown_ones_are_not_found,
    async |app: TestApp| {
        let client = app.client();
        let (_, body) = client.get_json("/login").await;
        assert_eq!(
            body["response"]["oauth_providers"],
            json!([{"name": "acme", "title": "Acme", "start_url": "/login/oauthstart/acme"}])
        );
        let page = login_page(&client).await;
        assert!(page.contains("oauthstart&#x2f;acme"), "{page}");
        assert!(page.contains("id=\"oauth-acme\""));
        let token = csrf(&client).await;
        let response = client
            .http
            .post(format!("{}/login/oauthstart/nope", app.base))
            .form(&[("csrf_token", token.as_str())])
            .send()
            .await
            .expect("start");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = client
            .http
            .get(format!(
                "{}/login/oauthresponse/nope?state=x&code=y",
                app.base
            ))
            .send()
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        // Without the CSRF token, no sign-in begins.
        let response = client
            .http
            .post(format!("{}/login/oauthstart/acme", app.base))
            .send()
            .await
            .expect("start");
        assert!(response.status().is_client_error(), "{}", response.status());
    }
);

oauth_test!(
    the_security_page_links_and_unlinks_a_provider,
    async |app: TestApp| {
        app.create_user("carol@example.com").await;
        let id = user_id(&app, "carol@example.com").await;
        let (client, _) = app.login("carol@example.com", PASSWORD).await;
        let page = client
            .http
            .get(format!("{}/dashboard/security/", app.base))
            .send()
            .await
            .expect("security page")
            .text()
            .await
            .expect("page");
        assert!(page.contains("Link Acme"), "{page}");

        let authorization =
            begin(&client, "/oauth-link/acme?next=%2Fdashboard%2Fsecurity%2F").await;
        let callback = at_provider(&authorization, Some("carol-elsewhere")).await;
        let response = back_at_app(&client, &callback).await;
        assert_eq!(location(&response), "/dashboard/security/");
        let links = app
            .security
            .datastore()
            .oauth_links(id)
            .await
            .expect("links");
        assert_eq!(links.len(), 1);
        assert_eq!(links[0].email.as_deref(), Some("carol@elsewhere.example"));
        let mail = app.mail_to("carol@example.com").await;
        assert!(mail.subject.contains("linked"), "{}", mail.subject);

        // The provider account now signs in as Carol, whatever its email.
        let (other, _) = sign_in_as(&app, "carol-elsewhere").await;
        assert_eq!(
            signed_in_as(&other).await.as_deref(),
            Some("carol@example.com")
        );

        // Unlinked (she has a password): it signs in no more, and makes no account either.
        let token = csrf(&client).await;
        let response = client
            .http
            .post(format!("{}/oauth-link/acme/delete", app.base))
            .form(&[
                ("csrf_token", token.as_str()),
                ("next", "/dashboard/security/"),
            ])
            .send()
            .await
            .expect("unlink");
        assert_eq!(location(&response), "/dashboard/security/");
        assert!(
            app.security
                .datastore()
                .oauth_links(id)
                .await
                .expect("links")
                .is_empty()
        );
        // Both changes are in her activity log, with the device they came from.
        let activity = app
            .security
            .datastore()
            .activity_of_user(id, None, 50)
            .await
            .expect("activity");
        let events: Vec<&str> = activity.iter().map(|a| a.event.as_str()).collect();
        let unlinked = events.iter().position(|e| *e == "provider_unlinked");
        let linked = events.iter().position(|e| *e == "provider_linked");
        assert!(
            matches!((unlinked, linked), (Some(u), Some(l)) if u < l),
            "{events:?}"
        );
        assert_eq!(
            events.iter().filter(|e| e.starts_with("provider_")).count(),
            2
        );
        assert!(activity.iter().all(|a| a.ip.is_some()), "{activity:?}");
    }
);

oauth_test!(
    the_last_way_to_sign_in_cannot_be_unlinked,
    async |app: TestApp| {
        let (client, _) = sign_in_as(&app, "dave").await;
        let id = user_id(&app, "dave@example.com").await;
        let token = csrf(&client).await;
        let response = client
            .http
            .post(format!("{}/oauth-link/acme/delete", app.base))
            .header("accept", "application/json")
            .header("x-csrf-token", token)
            .send()
            .await
            .expect("unlink");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body: Value = response.json().await.expect("json");
        assert!(
            body["response"]["errors"][0]
                .as_str()
                .is_some_and(|e| e.contains("only way to sign in")),
            "{body}"
        );
        assert_eq!(
            app.security
                .datastore()
                .oauth_links(id)
                .await
                .expect("links")
                .len(),
            1
        );
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_registration_an_unknown_person_is_not_signed_up() {
    let Some((app, _provider)) =
        app_with_provider(&Backend::Sqlite, &[("SECURITY_REGISTERABLE", "false")]).await
    else {
        return;
    };
    let (client, response) = sign_in_as(&app, "alice").await;
    assert_eq!(location(&response), "/login");
    assert_eq!(signed_in_as(&client).await, None);
    assert!(login_page(&client).await.contains("not registered"));
}

oauth_test!(
    a_user_with_a_second_factor_still_gives_it,
    async |app: TestApp| {
        app.create_user("bob@example.com").await;
        let id = user_id(&app, "bob@example.com").await;
        const SQL: &str = "UPDATE \"user\" SET \"tf_primary_method\" = 'email', \"tf_totp_secret\" = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP' WHERE \"id\" = $1";
        match app.security.datastore().pool() {
            rampart::DbPool::Sqlite(pool) => sqlx::query(SQL)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            rampart::DbPool::Postgres(pool) => sqlx::query(SQL)
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .expect("two-factor on");
        app.security.datastore().invalidate_user(id);
        let (client, response) = sign_in_as(&app, "bob").await;
        assert!(response.status().is_redirection());
        assert!(
            location(&response).starts_with("/tf-validate"),
            "{}",
            location(&response)
        );
        assert_eq!(signed_in_as(&client).await, None, "not before the code");
        let mail = app.mail_to("bob@example.com").await;
        assert!(!mail.text.is_empty());
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_sign_ins_is_rate_limited_per_client_and_a_completed_one_takes_its_hit_back() {
    let Some((app, _provider)) = app_with_provider(
        &Backend::Sqlite,
        &[("SECURITY_LOGIN_RATE_LIMIT", "2 per minute")],
    )
    .await
    else {
        return;
    };
    // A completed sign-in does not count.
    let (client, response) = sign_in_as(&app, "alice").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("alice@example.com")
    );
    // Two begun and left: the limit; the third start is refused before the provider is asked.
    let client = app.client();
    let _ = begin(&client, "/login/oauthstart/acme").await;
    let _ = begin(&client, "/login/oauthstart/acme").await;
    let token = csrf(&client).await;
    let response = client
        .http
        .post(format!("{}/login/oauthstart/acme", app.base))
        .header("accept", "application/json")
        .header("x-csrf-token", token)
        .send()
        .await
        .expect("start");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    // Another browser from the same address is limited too.
    let other = app.client();
    let token = csrf(&other).await;
    let response = other
        .http
        .post(format!("{}/login/oauthstart/acme", app.base))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .expect("start");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Runs `sql` (binding the user id) on the app's database.
async fn exec(app: &TestApp, sql: &str, id: i64) {
    match app.security.datastore().pool() {
        rampart::DbPool::Sqlite(pool) => sqlx::query(sql).bind(id).execute(pool).await.map(|_| ()),
        rampart::DbPool::Postgres(pool) => {
            sqlx::query(sql).bind(id).execute(pool).await.map(|_| ())
        }
    }
    .expect("sql");
}

/// A user whose only ways to sign in are two providers unlinks both at once, many times over:
/// exactly one unlink wins each time, the other is refused, one link is always left.
async fn two_concurrent_unlinks_leave_one_way(backend: Backend) {
    let Some((app, _provider)) = app_with_provider(
        &backend,
        &[
            ("SECURITY_OAUTH_PROVIDERS", "acme, acme2"),
            // Never contacted: unlinking asks no provider.
            ("OAUTH_ACME2_ISSUER", "http://127.0.0.1:9/"),
            ("OAUTH_ACME2_CLIENT_ID", "acme2"),
            ("OAUTH_ACME2_CLIENT_SECRET", "acme2-secret"),
        ],
    )
    .await
    else {
        return;
    };
    let (client, _) = sign_in_as(&app, "dave").await;
    let id = user_id(&app, "dave@example.com").await;
    let token = csrf(&client).await;
    let unlink = |name: &'static str| {
        let request = client
            .http
            .post(format!("{}/oauth-link/{name}/delete", app.base))
            .header("accept", "application/json")
            .header("x-csrf-token", token.clone());
        async move { request.send().await.expect("unlink").status() }
    };
    for round in 0..12 {
        exec(
            &app,
            "DELETE FROM \"rampart_oauth_link\" WHERE \"user_id\" = $1",
            id,
        )
        .await;
        exec(
            &app,
            "INSERT INTO \"rampart_oauth_link\" (\"provider\", \"subject\", \"user_id\", \"created_at\") \
             VALUES ('acme', 'dave', $1, CURRENT_TIMESTAMP), ('acme2', 'dave2', $1, CURRENT_TIMESTAMP)",
            id,
        )
        .await;
        let (a, b) = tokio::join!(tokio::spawn(unlink("acme")), tokio::spawn(unlink("acme2")));
        let mut statuses = [a.expect("task"), b.expect("task")];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::OK, StatusCode::BAD_REQUEST],
            "round {round}"
        );
        let links = app
            .security
            .datastore()
            .oauth_links(id)
            .await
            .expect("links");
        assert_eq!(links.len(), 1, "round {round}: one way to sign in is left");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_unlinks_leave_one_way_sqlite() {
    two_concurrent_unlinks_leave_one_way(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_unlinks_leave_one_way_postgres() {
    if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
        two_concurrent_unlinks_leave_one_way(backend).await;
    }
}

/// A provider whose token endpoint takes the client's secret only in the request body
/// (`client_secret_post`, the only method its discovery lists; the test provider then refuses
/// HTTP Basic): the sign-in authenticates that way and completes.
async fn the_token_endpoint_auth_method_follows_discovery(backend: Backend) {
    let client_post = serde_json::Map::from_iter([(
        "token_endpoint_auth_method".to_owned(),
        json!("client_secret_post"),
    )]);
    let post_only = ProviderSetup {
        client: client_post,
        client_auth_methods: Some(vec!["client_secret_post"]),
        ..ProviderSetup::default()
    };
    let Some((app, provider)) = app_with_provider_setup(&backend, &[], &post_only).await else {
        return;
    };
    // The provider refuses HTTP Basic (what the app used to send).
    let basic = reqwest::Client::new()
        .post(format!("{}/token", provider.issuer))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .expect("token endpoint");
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let (client, response) = sign_in_as(&app, "alice").await;
    assert_eq!(
        location(&response),
        app.security.config().login.post_view,
        "{}",
        login_page(&client).await
    );
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("alice@example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_auth_method_follows_discovery_sqlite() {
    the_token_endpoint_auth_method_follows_discovery(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_auth_method_follows_discovery_postgres() {
    if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
        the_token_endpoint_auth_method_follows_discovery(backend).await;
    }
}

const USERNAME_REQUIRED: &[(&str, &str)] = &[
    ("SECURITY_USERNAME_ENABLE", "true"),
    ("SECURITY_USERNAME_REQUIRED", "true"),
];
const USERNAME_PAGE: &str = "/login/oauthresponse/acme/username";

/// Registers a local account `email` with the username `username` (taken from then on).
async fn register_with_username(app: &TestApp, email: &str, username: &str) {
    let (status, body) = app
        .client()
        .post_json(
            "/register",
            json!({"email": email, "username": username, "password": PASSWORD,
                   "password_confirm": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The page (HTML) at `path` of `client`.
async fn page(client: &TestClient, path: &str) -> (StatusCode, String) {
    let response = client
        .http
        .get(format!("{}{path}", client.base))
        .send()
        .await
        .expect("page");
    (response.status(), response.text().await.expect("page"))
}

/// Posts the username form (as a browser, with the CSRF token).
async fn post_username(client: &TestClient, username: &str) -> reqwest::Response {
    let token = csrf(client).await;
    client
        .http
        .post(format!("{}{USERNAME_PAGE}", client.base))
        .form(&[("csrf_token", token.as_str()), ("username", username)])
        .send()
        .await
        .expect("username")
}

async fn new_user_by_email(app: &TestApp, email: &str) -> Option<rampart::User> {
    app.security
        .datastore()
        .user_by_email(email)
        .await
        .expect("lookup")
}

/// With a required username, a new person (a browser) is asked for one: an invalid or taken
/// one is a form error and writes nothing; a free one makes the account, signed in.
async fn a_required_username_is_asked_of_a_browser(backend: Backend) {
    let Some((app, _provider)) = app_with_provider(&backend, USERNAME_REQUIRED).await else {
        return;
    };
    register_with_username(&app, "someone@example.com", "taken").await;
    let (client, response) = sign_in_as(&app, "alice").await;
    assert_eq!(location(&response), USERNAME_PAGE);
    assert!(new_user_by_email(&app, "alice@example.com").await.is_none());
    assert_eq!(signed_in_as(&client).await, None);
    let (status, body) = page(&client, USERNAME_PAGE).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("alice@example.com"), "{body}");
    assert!(body.contains("name=\"csrf_token\""), "{body}");
    assert!(body.contains("name=\"username\""), "{body}");
    assert!(
        body.contains("Choose a username to finish signing up with Acme."),
        "{body}"
    );

    // Without the CSRF token: refused.
    let response = client
        .http
        .post(format!("{}{USERNAME_PAGE}", client.base))
        .form(&[("username", "alice1")])
        .send()
        .await
        .expect("username");
    assert!(response.status().is_client_error(), "{}", response.status());
    // Invalid, missing, taken: the form again with the error at the field (sign-up's rules;
    // the sample app words them for its pages); nothing written.
    for typed in ["not valid!", "", "x", "taken", "TAKEN"] {
        let response = post_username(&client, typed).await;
        assert!(
            !response.status().is_redirection(),
            "{typed}: {}",
            response.status()
        );
        let body = response.text().await.expect("page");
        assert!(body.contains("id=\"username-error\""), "{typed}: {body}");
        assert!(new_user_by_email(&app, "alice@example.com").await.is_none());
    }
    // Another browser has nobody waiting.
    let other = app.client();
    let response = post_username(&other, "alice1").await;
    assert_eq!(location(&response), "/login");
    assert!(new_user_by_email(&app, "alice@example.com").await.is_none());

    let response = post_username(&client, "alice1").await;
    assert_eq!(location(&response), app.security.config().login.post_view);
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("alice@example.com")
    );
    let user = new_user_by_email(&app, "alice@example.com")
        .await
        .expect("the account");
    assert_eq!(user.username.as_deref(), Some("alice1"));
    assert!(user.confirmed_at.is_some());
    assert!(user.password.is_none());
    assert_eq!(profile_rows(&app.security, user.id).await, 1);
    let links = app
        .security
        .datastore()
        .oauth_links(user.id)
        .await
        .expect("links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].subject, "alice");
    let roles = app
        .security
        .datastore()
        .user_roles(user.id)
        .await
        .expect("roles");
    assert!(!roles.is_empty(), "the default roles");

    // Used up: signed out, the page has nobody waiting.
    let (status, _) = client.post_json("/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let response = post_username(&client, "alice2").await;
    assert_eq!(location(&response), "/login");
    assert!(
        login_page(&client)
            .await
            .contains("This sign-in could not be completed")
    );
    // Coming back: the same account, no username asked.
    let (again, response) = sign_in_as(&app, "alice").await;
    assert_eq!(location(&response), app.security.config().login.post_view);
    assert_eq!(
        signed_in_as(&again).await.as_deref(),
        Some("alice@example.com")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_username_is_asked_of_a_browser_sqlite() {
    a_required_username_is_asked_of_a_browser(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_username_is_asked_of_a_browser_postgres() {
    if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
        a_required_username_is_asked_of_a_browser(backend).await;
    }
}

/// A JSON client is told a username is needed (400, `field_errors.username`, `username_url`),
/// then posts it there.
async fn a_required_username_is_asked_of_a_json_client(backend: Backend) {
    let Some((app, _provider)) = app_with_provider(&backend, USERNAME_REQUIRED).await else {
        return;
    };
    register_with_username(&app, "someone@example.com", "taken").await;
    let client = app.client();
    let authorization = begin(&client, "/login/oauthstart/acme").await;
    let callback = at_provider(&authorization, Some("bob")).await;
    let response = client
        .http
        .get(&callback)
        .header("accept", "application/json")
        .send()
        .await
        .expect("callback");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["meta"]["code"], 400);
    assert_eq!(body["response"]["username_url"], USERNAME_PAGE, "{body}");
    assert_eq!(
        body["response"]["field_errors"]["username"][0],
        "Choose a username to finish signing up with Acme."
    );
    assert_eq!(
        body["response"]["errors"][0],
        "Choose a username to finish signing up with Acme."
    );
    assert!(new_user_by_email(&app, "bob@example.com").await.is_none());

    let (status, body) = client.get_json(USERNAME_PAGE).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["email"], "bob@example.com");

    let (status, body) = client
        .post_json(USERNAME_PAGE, json!({"username": "taken"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(
        body["response"]["field_errors"]["username"][0],
        "taken is already associated with an account."
    );
    let (status, body) = client
        .post_json(USERNAME_PAGE, json!({"username": "x"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["response"]["field_errors"]["username"][0].is_string());
    assert!(new_user_by_email(&app, "bob@example.com").await.is_none());

    let (status, body) = client
        .post_json(USERNAME_PAGE, json!({"username": "bobby"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["response"]["user"]["email"], "bob@example.com");
    assert_eq!(body["response"]["user"]["username"], "bobby");
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("bob@example.com")
    );
    // Used up.
    let other = app.client();
    let (status, _) = other
        .post_json(USERNAME_PAGE, json!({"username": "bobby2"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_username_is_asked_of_a_json_client_sqlite() {
    a_required_username_is_asked_of_a_json_client(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_required_username_is_asked_of_a_json_client_postgres() {
    if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
        a_required_username_is_asked_of_a_json_client(backend).await;
    }
}

/// The provider restarted with a new signing key (a new `kid`), as the outside checker's does
/// at every start: the app, running on, checks the next ID token against the new keys (it
/// fetches them afresh), and the person comes back to the same account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_restarted_with_new_signing_keys_still_signs_in() {
    let Some((app, provider)) = app_with_provider(&Backend::Sqlite, &[]).await else {
        return;
    };
    let jwks = |issuer: String| async move {
        let body: Value = reqwest::get(format!("{issuer}/jwks"))
            .await
            .expect("jwks")
            .json()
            .await
            .expect("json");
        body["keys"][0]["kid"].as_str().expect("kid").to_owned()
    };
    let (client, _) = sign_in_as(&app, "alice").await;
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("alice@example.com")
    );
    let id = user_id(&app, "alice@example.com").await;
    let issuer = provider.issuer.clone();
    let first_kid = jwks(issuer.clone()).await;
    let port = provider.port();
    provider.stop().await;
    let setup = ProviderSetup {
        port,
        ..ProviderSetup::default()
    };
    let redirect = [format!("{}/login/oauthresponse/acme", app.base)];
    let mut restarted = None;
    for _ in 0..50 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            restarted = OidcProvider::start_with(&redirect, &setup).await;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restarted = restarted.expect("the provider restarts on its port");
    assert_eq!(restarted.issuer, issuer, "the same issuer");
    assert_ne!(jwks(issuer).await, first_kid, "a new signing key");
    let (client, response) = sign_in_as(&app, "alice").await;
    assert_eq!(
        location(&response),
        app.security.config().login.post_view,
        "{}",
        login_page(&client).await
    );
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(user_id(&app, "alice@example.com").await, id);
}

/// A user without a password whose session went stale re-authenticates through the provider
/// linked to them (Flask-Security's oauth verify): the session is fresh again. Another
/// provider account (not theirs) leaves it stale.
async fn a_stale_session_is_refreshed_by_the_linked_provider(backend: Backend) {
    let Some((app, _provider)) = app_with_provider(
        &backend,
        &[
            ("SECURITY_FRESHNESS", "5 minutes"),
            ("SECURITY_FRESHNESS_GRACE_PERIOD", "0 seconds"),
        ],
    )
    .await
    else {
        return;
    };
    let (client, _) = sign_in_as(&app, "dave").await;
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("dave@example.com")
    );
    // Unlinking needs a fresh session; fresh, it is refused only as the last way (400).
    let unlink_status = async || {
        let token = csrf(&client).await;
        client
            .http
            .post(format!("{}/oauth-link/acme/delete", app.base))
            .header("accept", "application/json")
            .header("x-csrf-token", token)
            .send()
            .await
            .expect("unlink")
            .status()
    };
    assert_eq!(unlink_status().await, StatusCode::BAD_REQUEST);
    app.clock.advance(Duration::from_secs(6 * 60));
    assert_eq!(unlink_status().await, StatusCode::UNAUTHORIZED, "stale");

    // Someone else's provider account: refused, still stale, back to the verify page.
    let authorization = begin(
        &client,
        "/login/oauth-verify-start/acme?next=%2Fdashboard%2Fsecurity%2F",
    )
    .await;
    let callback = at_provider(&authorization, Some("alice")).await;
    let response = back_at_app(&client, &callback).await;
    assert_eq!(
        location(&response),
        "/verify?next=%2Fdashboard%2Fsecurity%2F"
    );
    assert_eq!(
        unlink_status().await,
        StatusCode::UNAUTHORIZED,
        "still stale"
    );

    // Their own: fresh again, back to `next`.
    let authorization = begin(
        &client,
        "/login/oauth-verify-start/acme?next=%2Fdashboard%2Fsecurity%2F",
    )
    .await;
    let callback = at_provider(&authorization, Some("dave")).await;
    let response = back_at_app(&client, &callback).await;
    assert_eq!(location(&response), "/dashboard/security/");
    assert_eq!(
        signed_in_as(&client).await.as_deref(),
        Some("dave@example.com")
    );
    assert_eq!(unlink_status().await, StatusCode::BAD_REQUEST, "fresh");

    // Not signed in: no re-authentication begins.
    let anonymous = app.client();
    let token = csrf(&anonymous).await;
    let response = anonymous
        .http
        .post(format!("{}/login/oauth-verify-start/acme", app.base))
        .header("accept", "application/json")
        .header("x-csrf-token", token)
        .send()
        .await
        .expect("verify start");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_session_is_refreshed_by_the_linked_provider_sqlite() {
    a_stale_session_is_refreshed_by_the_linked_provider(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_session_is_refreshed_by_the_linked_provider_postgres() {
    if let Some(backend) = rampart::testing::TestBackend::postgres_or_skip() {
        a_stale_session_is_refreshed_by_the_linked_provider(backend).await;
    }
}
