//! The shared harness of the fuzz targets that go through the real router: the sample app,
//! built once per fuzzing process on a fresh SQLite file, driven in-process (no sockets) with
//! requests made from the fuzzer's bytes.
//!
//! Every answer is checked by [`Harness::send`]: a status of 500 or more (or a panic anywhere in
//! the app) is a finding. Mails go to the console mailer; run the targets with
//! `-close_fd_mask=1` to keep them off the terminal.

use std::net::SocketAddr;
use std::sync::LazyLock;

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::BodyExt;

/// The administrator the app seeds at start-up.
pub const ADMIN_EMAIL: &str = "admin@example.com";
/// A plain user, created at start-up.
pub const USER_EMAIL: &str = "user@example.com";
/// Both accounts' password.
pub const PASSWORD: &str = "fuzzing password 1";

/// Every state-changing route of the sample app (the framework's and the app's own), so a fuzz
/// byte can pick one. Unknown placeholders (`<token>`, ids) are filled with plausible values.
pub const POST_ROUTES: &[&str] = &[
    "/login",
    "/logout",
    "/register",
    "/confirm",
    "/reset",
    "/reset/InvalidToken",
    "/change",
    "/change-email",
    "/verify",
    "/tf-setup",
    "/tf-setup/state",
    "/tf-validate",
    "/tf-rescue",
    "/mf-recovery-codes",
    "/mf-recovery",
    "/us-signin",
    "/us-signin/send-code",
    "/us-setup",
    "/us-setup/state",
    "/us-verify",
    "/us-verify/send-code",
    "/wan-register",
    "/wan-register/state",
    "/wan-signin",
    "/wan-signin/state",
    "/wan-verify",
    "/wan-verify/state",
    "/wan-delete",
    "/wan-rename",
    "/unlock",
    "/login/oauthstart/github",
    "/oauth-link/github/delete",
    "/api/profile",
    "/api/sessions/revoke-others",
    "/dashboard/profile/",
    "/dashboard/security/delete",
    "/dashboard/security/delete/confirm",
    "/admin/users/2/active",
    "/admin/users/2/roles",
];

/// Who sends a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// No cookies, no token.
    Anonymous,
    /// The signed-in user's session cookie and its CSRF token.
    User,
    /// The user's `Authentication-Token`.
    UserToken,
    /// The signed-in administrator's session cookie and its CSRF token.
    Admin,
}

impl Identity {
    /// One of the identities, picked by a fuzz byte.
    pub fn from_byte(byte: u8) -> Self {
        match byte % 4 {
            0 => Self::Anonymous,
            1 => Self::User,
            2 => Self::UserToken,
            _ => Self::Admin,
        }
    }
}

/// A signed-in browser: its cookies and CSRF token, and the auth token of its login.
#[derive(Clone, Debug)]
pub struct Session {
    /// The `Cookie` header value.
    pub cookies: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The login's `Authentication-Token`.
    pub token: String,
}

/// The app and its signed-in sessions.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    _dir: tempfile::TempDir,
}

/// The one harness of this process.
pub static HARNESS: LazyLock<Harness> = LazyLock::new(Harness::start);

impl Harness {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let database_url = format!("sqlite://{}?mode=rwc", dir.path().join("fuzz.db").display());
        let settings = rampart::Settings::from_pairs([
            ("SECRET_KEY", "fuzzing-secret-key-0123456789abcdef"),
            ("SECURITY_PASSWORD_SALT", "fuzzing-salt"),
            (
                "SECURITY_TOTP_SECRETS",
                r#"{"1": "fuzzing-totp-secret-0123456789abcdef"}"#,
            ),
            ("DATABASE_URL", database_url.as_str()),
            ("MAIL_BACKEND", "console"),
            ("DEBUG", "false"),
            ("SERVER_NAME", "localhost"),
            ("SESSION_COOKIE_SECURE", "false"),
            ("SECURITY_ARGON2_MEMORY_KIB", "256"),
            ("SECURITY_ARGON2_ITERATIONS", "1"),
            ("SECURITY_ARGON2_PARALLELISM", "1"),
            ("SECURITY_LOGIN_RATE_LIMIT", "100000 per minute"),
            ("SECURITY_FRESHNESS", "-1"),
            ("ADMIN_EMAIL", ADMIN_EMAIL),
            ("ADMIN_PASSWORD", PASSWORD),
        ]);
        let config = rampart_app::AppConfig::from_settings(settings, &dir.path().join("instance"))
            .expect("config");
        let app = runtime
            .block_on(rampart_app::build(&config))
            .expect("the app builds");
        let harness = Self {
            runtime,
            router: app.router,
            _dir: dir,
        };
        let cli = <rampart_app::cli::Cli as clap::Parser>::try_parse_from([
            "rampart-app",
            "users",
            "create",
            USER_EMAIL,
            "--password",
            PASSWORD,
            "--active",
            "--confirm",
        ])
        .expect("a valid command line");
        let command = cli.command.expect("a command");
        harness
            .runtime
            .block_on(rampart_app::cli::execute(&app.security, &command))
            .expect("the user is created");
        harness
    }

    /// Signs `email` in through the JSON API: a fresh session.
    pub fn sign_in(&self, email: &str) -> Session {
        let (response, body) = self.raw(
            Method::POST,
            "/login?include_auth_token",
            &[
                (header::CONTENT_TYPE, "application/json".into()),
                (header::ACCEPT, "application/json".into()),
            ],
            format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#).into_bytes(),
        );
        assert!(response.status.is_success(), "login: {body:?}");
        let cookies = response
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter(|pair| !pair.ends_with('='))
            .collect::<Vec<_>>()
            .join("; ");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON login answer");
        let field = |name: &str| {
            json["response"][name]
                .as_str()
                .or_else(|| json["response"]["user"][name].as_str())
                .unwrap_or_default()
                .to_owned()
        };
        Session {
            cookies,
            csrf: field("csrf_token"),
            token: field("authentication_token"),
        }
    }

    /// The headers that make a request come from `identity` (signing in afresh for it).
    pub fn identity_headers(&self, identity: Identity) -> Vec<(HeaderName, String)> {
        match identity {
            Identity::Anonymous => Vec::new(),
            Identity::User | Identity::Admin => {
                let email = if identity == Identity::User {
                    USER_EMAIL
                } else {
                    ADMIN_EMAIL
                };
                let session = self.sign_in(email);
                vec![
                    (header::COOKIE, session.cookies),
                    (HeaderName::from_static("x-csrf-token"), session.csrf),
                ]
            }
            Identity::UserToken => {
                let session = self.sign_in(USER_EMAIL);
                vec![(
                    HeaderName::from_static("authentication-token"),
                    session.token,
                )]
            }
        }
    }

    /// Sends a request and checks the answer: anything of 500 or more is a finding (panics).
    /// Headers whose values are not valid in HTTP, and targets that are not URIs, are skipped
    /// (no client could send them), answering `None`.
    pub fn send(
        &self,
        method: Method,
        target: &str,
        headers: &[(HeaderName, String)],
        body: Vec<u8>,
    ) -> Option<(StatusCode, Bytes)> {
        let request = build_request(method.clone(), target, headers, body)?;
        let (parts, body) = self.runtime.block_on(async {
            let response = tower::ServiceExt::oneshot(self.router.clone(), request)
                .await
                .unwrap_or_else(|never| match never {});
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (parts, body)
        });
        assert!(
            parts.status.as_u16() < 500,
            "{method} {target} answered {}: {}",
            parts.status,
            String::from_utf8_lossy(&body)
        );
        Some((parts.status, body))
    }

    fn raw(
        &self,
        method: Method,
        target: &str,
        headers: &[(HeaderName, String)],
        body: Vec<u8>,
    ) -> (axum::http::response::Parts, Bytes) {
        let request = build_request(method, target, headers, body).expect("a valid request");
        self.runtime.block_on(async {
            let response = tower::ServiceExt::oneshot(self.router.clone(), request)
                .await
                .unwrap_or_else(|never| match never {});
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            (parts, body)
        })
    }
}

fn build_request(
    method: Method,
    target: &str,
    headers: &[(HeaderName, String)],
    body: Vec<u8>,
) -> Option<Request<Body>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(target)
        .header(header::HOST, "localhost");
    for (name, value) in headers {
        builder = builder.header(name, HeaderValue::from_str(value).ok()?);
    }
    let mut request = builder.body(Body::from(body)).ok()?;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    Some(request)
}

/// Splits fuzz input into its first bytes (choices) and the rest.
pub fn take<const N: usize>(data: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = data.split_at_checked(N)?;
    Some((head.try_into().ok()?, rest))
}
