//! The test harness: [`TestApp`] (a minimal app on the real router, over a fresh SQLite file and,
//! with `TEST_DATABASE_URL`, a fresh PostgreSQL database), [`TestClient`] (drives the router with
//! `oneshot`, keeps cookies and the CSRF token, never follows redirects) and the helpers that act
//! like a user does (register, follow mailed links, log in).

#![expect(
    clippy::expect_used,
    reason = "test set-up: a step that cannot be done must fail the test at once, saying which"
)]

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use rampart::testing::smtp_sink::SmtpSink;
use rampart::testing::{TestBackend, TestDatabase};
use rampart::{
    AuthMethod, CurrentUser, Datastore, Mail, MemoryMailer, Security, SecurityConfig, Settings,
    TestClock, User, anonymous_required, auth_required, auth_required_with, permissions_accepted,
    roles_accepted, roles_required,
};
use rampart::{SmtpConfig, SmtpMailer};
use serde_json::{Value, json};
use tower::ServiceExt;

/// The password the helpers register users with.
pub(crate) const PASSWORD: &str = "correct horse battery";
/// Flask-Security's exact messages (`SECURITY_RETURN_GENERIC_RESPONSES=false`).
pub(crate) const EXACT: &[(&str, &str)] = &[("SECURITY_RETURN_GENERIC_RESPONSES", "false")];
/// Rampart's defaults (generic responses on).
pub(crate) const GENERIC: &[(&str, &str)] = &[];
/// The change-password URL of the contract's sample app.
pub(crate) const CHANGE_URL: &str = "/dashboard/security/";
/// How long to wait for a mail sent from a background task.
const MAIL_WAIT: Duration = Duration::from_secs(2);
/// The address requests come from.
const CLIENT_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 50_000);
/// The `Host` header of requests (links in mails are built from it).
pub(crate) const HOST: &str = "rampart.test";

fn backends() -> Vec<TestBackend> {
    TestBackend::all_from_env()
}

/// Runs `body` on a fresh [`TestApp`] per backend: SQLite, and PostgreSQL when
/// `TEST_DATABASE_URL` is set (always in CI). `settings` go over the base settings.
///
/// ```ignore
/// #[tokio::test]
/// async fn login_with_a_wrong_password_is_refused() {
///     each_backend(EXACT, async |app: TestApp| { … }).await;
/// }
/// ```
pub(crate) async fn each_backend(settings: &[(&str, &str)], body: impl AsyncFn(TestApp)) {
    for backend in backends() {
        let app = TestApp::on(backend, settings, None).await;
        eprintln!("--- backend: {}", app.backend);
        body(app).await;
    }
}

/// Like [`each_backend`], with mail sent by the real [`SmtpMailer`] to a fresh local [`SmtpSink`].
pub(crate) async fn each_backend_over_smtp(
    settings: &[(&str, &str)],
    body: impl AsyncFn(TestApp, SmtpSink),
) {
    for backend in backends() {
        let sink = SmtpSink::start().await.expect("start the SMTP sink");
        let mailer = SmtpMailer::new(&SmtpConfig {
            server: "127.0.0.1".into(),
            port: sink.port(),
            timeout_secs: 5,
            ..SmtpConfig::default()
        })
        .expect("SMTP mailer");
        let app = TestApp::on(backend, settings, Some(Arc::new(mailer))).await;
        eprintln!("--- backend: {}", app.backend);
        body(app, sink).await;
    }
}

/// Like [`each_backend`], with every mail sent to an SMTP port where nothing listens.
pub(crate) async fn each_backend_with_broken_mail(
    settings: &[(&str, &str)],
    body: impl AsyncFn(TestApp),
) {
    for backend in backends() {
        // Bind then drop a listener: its port now refuses connections.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mailer = SmtpMailer::new(&SmtpConfig {
            server: "127.0.0.1".into(),
            port,
            timeout_secs: 2,
            ..SmtpConfig::default()
        })
        .expect("SMTP mailer");
        let app = TestApp::on(backend, settings, Some(Arc::new(mailer))).await;
        eprintln!("--- backend: {}", app.backend);
        body(app).await;
    }
}

/// A fresh migrated datastore on `backend`, and the database that lives while it is held.
async fn open(backend: TestBackend) -> (Datastore, TestDatabase, &'static str) {
    let database = TestDatabase::create(&backend)
        .await
        .expect("make the test database (TEST_DATABASE_URL reachable?)");
    let store = Datastore::connect(database.url())
        .await
        .expect("open the test database");
    let name = database.backend();
    (store, database, name)
}

/// The settings every test app starts from.
fn base_settings() -> Vec<(&'static str, &'static str)> {
    vec![
        ("SECRET_KEY", "integration-test-secret-key-0123456789"),
        ("SECURITY_PASSWORD_SALT", "integration-test-salt"),
        ("SECURITY_REGISTERABLE", "true"),
        ("SECURITY_CONFIRMABLE", "true"),
        ("SECURITY_RECOVERABLE", "true"),
        ("SECURITY_CHANGEABLE", "true"),
        ("SECURITY_USERNAME_ENABLE", "true"),
        ("SECURITY_CHANGE_URL", CHANGE_URL),
        ("SECURITY_DEFAULT_ROLES", "User"),
        ("SECURITY_EMAIL_SENDER", "no-reply@fst-sample.local"),
        ("SECURITY_ARGON2_MEMORY_KIB", "1024"),
        ("SECURITY_ARGON2_ITERATIONS", "1"),
        ("SECURITY_ARGON2_PARALLELISM", "1"),
        ("SECURITY_LOGIN_RATE_LIMIT", "off"),
        ("SECURITY_MAIL_RATE_LIMIT", "off"),
        // Required outside DEBUG; links in mails still follow the (trusted) request host.
        ("TRUSTED_HOSTS", "rampart.test, 127.0.0.1"),
    ]
}

/// A minimal app: the framework's routes, a few guarded routes, a memory mailer and a test clock.
pub(crate) struct TestApp {
    pub(crate) router: Router,
    pub(crate) security: Security,
    pub(crate) mailer: MemoryMailer,
    pub(crate) clock: TestClock,
    pub(crate) backend: &'static str,
    /// Per address, how many of its mails the test has taken.
    taken: Mutex<HashMap<String, usize>>,
    // Last, so the database outlives everything that uses it.
    _db: TestDatabase,
}

impl TestApp {
    async fn on(
        backend: TestBackend,
        settings: &[(&str, &str)],
        mailer: Option<rampart::SharedMailer>,
    ) -> Self {
        let (datastore, guard, backend) = open(backend).await;
        let mut pairs = base_settings();
        pairs.extend(settings.iter().copied());
        let config =
            SecurityConfig::from_settings(&Settings::from_pairs(pairs)).expect("valid settings");
        let memory = MemoryMailer::new();
        let clock = TestClock::default();
        let security = Security::builder(config)
            .datastore(datastore)
            .shared_mailer(mailer.unwrap_or_else(|| Arc::new(memory.clone())))
            .clock(clock.clone())
            .build()
            .await
            .expect("build Security");
        let now = time_now();
        let store = security.datastore();
        store
            .ensure_role(
                "User",
                None,
                &["user-read".into(), "user-write".into()],
                now,
            )
            .await
            .expect("role User");
        store
            .ensure_role(
                "Admin",
                None,
                &["admin-read".into(), "admin-write".into()],
                now,
            )
            .await
            .expect("role Admin");
        let router = Router::new()
            .route("/api/me", get(me))
            .route(
                "/api/admin",
                get(admin).route_layer(roles_required(["Admin"])),
            )
            .route(
                "/api/write",
                get(write).route_layer(permissions_accepted(["user-write"])),
            )
            .route(
                "/api/any-role",
                get(any_role).route_layer(roles_accepted(["Admin", "Auditor"])),
            )
            .route("/anon", get(anonymous).route_layer(anonymous_required()))
            .route(
                "/basic",
                get(basic).route_layer(auth_required_with([AuthMethod::Basic])),
            )
            .route("/api/echo", post(echo).route_layer(auth_required()))
            .merge(security.router())
            .layer(security.layer());
        Self {
            router,
            security,
            mailer: memory,
            clock,
            backend,
            taken: Mutex::new(HashMap::new()),
            _db: guard,
        }
    }

    /// A new client with no cookies (a new browser).
    pub(crate) fn client(&self) -> TestClient {
        TestClient::new(self.router.clone())
    }

    pub(crate) fn datastore(&self) -> &Datastore {
        self.security.datastore()
    }

    /// The user with `email` (must exist).
    pub(crate) async fn user(&self, email: &str) -> User {
        self.datastore()
            .user_by_email(email)
            .await
            .expect("query user")
            .unwrap_or_else(|| panic!("no user {email}"))
    }

    /// Moves the clock forward.
    pub(crate) fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// All mails sent to `addr` so far (after a bounded wait for pending sends is not implied).
    pub(crate) fn mails_to(&self, addr: &str) -> Vec<Mail> {
        self.mailer
            .sent()
            .into_iter()
            .filter(|m| m.to.eq_ignore_ascii_case(addr))
            .collect()
    }

    /// The oldest mail to `addr` the test has not taken yet, waiting for it up to 2 s.
    pub(crate) async fn mail_to(&self, addr: &str) -> Mail {
        let key = addr.to_ascii_lowercase();
        let taken = self
            .taken
            .lock()
            .expect("lock")
            .get(&key)
            .copied()
            .unwrap_or(0);
        let arrived = self
            .mailer
            .wait_until(MAIL_WAIT, |sent| {
                sent.iter()
                    .filter(|m| m.to.eq_ignore_ascii_case(addr))
                    .count()
                    > taken
            })
            .await;
        assert!(
            arrived,
            "no new mail to {addr} within {MAIL_WAIT:?}; sent: {:#?}",
            self.mailer.sent()
        );
        let mail = self.mails_to(addr).swap_remove(taken);
        self.taken.lock().expect("lock").insert(key, taken + 1);
        mail
    }

    /// The link whose path starts with `prefix` in the next mail to `addr`.
    pub(crate) async fn link_in_mail(&self, addr: &str, prefix: &str) -> String {
        let mail = self.mail_to(addr).await;
        rampart::find_link(&mail.text, prefix)
            .unwrap_or_else(|| panic!("no {prefix} link in the mail to {addr}: {}", mail.text))
    }

    /// The path (and query) of the link whose path starts with `prefix` in the next mail to `addr`.
    pub(crate) async fn path_in_mail(&self, addr: &str, prefix: &str) -> String {
        path_of(&self.link_in_mail(addr, prefix).await)
    }

    /// Asserts that no mail the test has not taken yet is, or soon will be, addressed to `addr`.
    pub(crate) async fn assert_no_mail_to(&self, addr: &str) {
        let taken = self
            .taken
            .lock()
            .expect("lock")
            .get(&addr.to_ascii_lowercase())
            .copied()
            .unwrap_or(0);
        let arrived = self
            .mailer
            .wait_until(Duration::from_millis(100), |sent| {
                sent.iter()
                    .filter(|m| m.to.eq_ignore_ascii_case(addr))
                    .count()
                    > taken
            })
            .await;
        assert!(
            !arrived,
            "unexpected mail to {addr}: {:#?}",
            self.mails_to(addr).get(taken..)
        );
    }

    /// Registers `email` (with [`PASSWORD`]) and follows the confirmation link.
    pub(crate) async fn signed_up(&self, email: &str) {
        let client = self.client();
        let response = client.register(email, PASSWORD).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "register {email}: {}",
            response.text()
        );
        let path = self.path_in_mail(email, "/confirm/").await;
        let confirmed = client.get(&path).send().await;
        assert_eq!(confirmed.location(), Some("/login"), "confirm {email}");
    }

    /// An auth token for `email` (signed up, [`PASSWORD`]), from `POST /login?include_auth_token`.
    pub(crate) async fn auth_token(&self, email: &str) -> String {
        let login = self
            .client()
            .post("/login?include_auth_token")
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await;
        assert_eq!(
            login.status,
            StatusCode::OK,
            "login {email}: {}",
            login.text()
        );
        login.response()["user"]["authentication_token"]
            .as_str()
            .expect("authentication_token")
            .to_owned()
    }

    /// A client signed in (by session) as a fresh confirmed user `email`.
    pub(crate) async fn logged_in(&self, email: &str) -> TestClient {
        self.signed_up(email).await;
        let client = self.client();
        client.login_ok(email, PASSWORD).await;
        client
    }
}

fn time_now() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    time::PrimitiveDateTime::new(now.date(), now.time())
}

/// The path and query of an absolute URL.
pub(crate) fn path_of(link: &str) -> String {
    let url = url::Url::parse(link).unwrap_or_else(|e| panic!("{link}: {e}"));
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Undoes the HTML escapes minijinja produces.
pub(crate) fn unescape_html(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The `csrf_token` hidden field of an HTML form.
pub(crate) fn csrf_in_html(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf_token field in {html}"))
        + marker.len();
    let end = html[start..]
        .find('"')
        .expect("end of the csrf_token value");
    html[start..start + end].to_owned()
}

// ---------------------------------------------------------------------------------------------
// The app's own test routes.

fn datetime(value: Option<time::PrimitiveDateTime>) -> Value {
    value.map_or(Value::Null, |t| Value::String(t.to_string()))
}

async fn me(user: CurrentUser) -> Response {
    let u = &user.user;
    rampart::reply::json(
        StatusCode::OK,
        json!({"user": {
            "email": u.email,
            "username": u.username,
            "uuid": u.fs_uniquifier,
            "active": u.active,
            "confirmed_at": datetime(u.confirmed_at),
            "current_login_at": datetime(u.current_login_at),
            "last_login_at": datetime(u.last_login_at),
            "current_login_ip": u.current_login_ip,
            "last_login_ip": u.last_login_ip,
            "login_count": u.login_count,
            "roles": user.role_names(),
            "permissions": user.permissions(),
            "method": user.method.as_str(),
        }}),
    )
}

async fn admin() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "admin area"}))
}

async fn write() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "you have user-write"}))
}

async fn any_role() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "one of the roles"}))
}

async fn anonymous() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "anonymous"}))
}

async fn basic(user: CurrentUser) -> Response {
    rampart::reply::json(
        StatusCode::OK,
        json!({"email": user.user.email, "method": user.method.as_str()}),
    )
}

async fn echo(user: CurrentUser, body: Bytes) -> Response {
    rampart::reply::json(
        StatusCode::OK,
        json!({"email": user.user.email, "received": body.len()}),
    )
}

// ---------------------------------------------------------------------------------------------
// The client.

#[derive(Default)]
struct ClientState {
    cookies: BTreeMap<String, String>,
    csrf: Option<String>,
}

/// A browser or SPA: keeps cookies and the latest CSRF token; never follows redirects.
#[derive(Clone)]
pub(crate) struct TestClient {
    router: Router,
    state: Arc<Mutex<ClientState>>,
}

impl TestClient {
    fn new(router: Router) -> Self {
        Self {
            router,
            state: Arc::default(),
        }
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, path)
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, path)
    }

    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            content_length: true,
            csrf: false,
            cookies: true,
        }
    }

    /// The value of cookie `name`, if the client holds it.
    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        self.state.lock().expect("lock").cookies.get(name).cloned()
    }

    /// Puts cookie `name` into the client's jar, as a browser holding it would.
    pub(crate) fn put_cookie(&self, name: &str, value: &str) {
        let mut state = self.state.lock().expect("lock");
        state.cookies.insert(name.to_owned(), value.to_owned());
    }

    /// The CSRF token the client would send.
    pub(crate) fn csrf_token(&self) -> Option<String> {
        self.state.lock().expect("lock").csrf.clone()
    }

    /// `POST /register` (JSON) with a matching confirmation.
    pub(crate) async fn register(&self, email: &str, password: &str) -> TestResponse {
        self.post("/register")
            .json(&json!({"email": email, "password": password, "password_confirm": password}))
            .send()
            .await
    }

    /// `POST /login` (JSON) with an email or username.
    pub(crate) async fn login(&self, identity: &str, password: &str) -> TestResponse {
        let field = if identity.contains('@') {
            "email"
        } else {
            "username"
        };
        self.post("/login")
            .json(&json!({field: identity, "password": password}))
            .send()
            .await
    }

    /// `POST /login` that must succeed.
    pub(crate) async fn login_ok(&self, identity: &str, password: &str) -> TestResponse {
        let response = self.login(identity, password).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "login {identity}: {}",
            response.text()
        );
        response
    }

    /// `GET /api/me` as JSON.
    pub(crate) async fn me(&self) -> TestResponse {
        self.get("/api/me").accept_json().send().await
    }

    /// `POST /logout` as JSON.
    pub(crate) async fn logout(&self) -> TestResponse {
        self.post("/logout").json_content_type().send().await
    }

    async fn execute(&self, request: Request<Body>, use_cookies: bool) -> TestResponse {
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let (parts, body) = response.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX)
            .await
            .expect("read body");
        let response = TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        if use_cookies {
            self.remember(&response);
        }
        response
    }

    fn remember(&self, response: &TestResponse) {
        let mut state = self.state.lock().expect("lock");
        for value in response.headers.get_all(header::SET_COOKIE) {
            let text = value.to_str().expect("ASCII Set-Cookie");
            let cookie = cookie::Cookie::parse(text.to_owned()).expect("valid Set-Cookie");
            let deleted = cookie
                .max_age()
                .is_some_and(|age| age.is_zero() || age.is_negative())
                || cookie
                    .expires_datetime()
                    .is_some_and(|at| at <= time::OffsetDateTime::now_utc());
            let name = cookie.name().to_owned();
            if deleted {
                state.cookies.remove(&name);
                if name == "XSRF-TOKEN" {
                    state.csrf = None;
                }
            } else {
                if name == "XSRF-TOKEN" {
                    state.csrf = Some(cookie.value().to_owned());
                }
                state.cookies.insert(name, cookie.value().to_owned());
            }
        }
        if let Some(token) = response
            .try_json()
            .and_then(|v| v["response"]["csrf_token"].as_str().map(str::to_owned))
        {
            state.csrf = Some(token);
        }
    }
}

/// A request being built; see [`TestClient::get`], [`TestClient::post`].
pub(crate) struct RequestBuilder<'a> {
    client: &'a TestClient,
    method: Method,
    path: String,
    headers: Vec<(HeaderName, String)>,
    body: Vec<u8>,
    content_length: bool,
    csrf: bool,
    cookies: bool,
}

impl RequestBuilder<'_> {
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((
            HeaderName::try_from(name).expect("header name"),
            value.to_owned(),
        ));
        self
    }

    /// `Accept: application/json` (an SPA's GET).
    pub(crate) fn accept_json(self) -> Self {
        self.header("accept", "application/json")
    }

    /// `Content-Type: application/json` with no body.
    pub(crate) fn json_content_type(self) -> Self {
        self.header("content-type", "application/json")
    }

    /// A JSON body (`Content-Type` and `Accept` JSON, as SPA clients send).
    pub(crate) fn json(self, value: &Value) -> Self {
        self.raw("application/json", serde_json::to_vec(value).expect("JSON"))
            .accept_json()
    }

    /// An HTML form body.
    pub(crate) fn form(self, pairs: &[(&str, &str)]) -> Self {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.raw("application/x-www-form-urlencoded", body.into_bytes())
    }

    /// A body of any type.
    pub(crate) fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.header("content-type", content_type)
    }

    /// Sends the body without a `Content-Length` (as a chunked upload would).
    pub(crate) fn streamed(mut self) -> Self {
        self.content_length = false;
        self
    }

    /// Sends the client's CSRF token in `X-XSRF-Token`.
    pub(crate) fn csrf(mut self) -> Self {
        self.csrf = true;
        self
    }

    pub(crate) async fn send(self) -> TestResponse {
        let mut request = Request::builder().method(self.method).uri(&self.path);
        if !self.headers.iter().any(|(name, _)| name == header::HOST) {
            request = request.header(header::HOST, HOST);
        }
        {
            let state = self.client.state.lock().expect("lock");
            if self.cookies && !state.cookies.is_empty() {
                let jar: Vec<String> = state
                    .cookies
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                request = request.header(header::COOKIE, jar.join("; "));
            }
            if self.csrf {
                let token = state
                    .csrf
                    .clone()
                    .expect("the client has no CSRF token yet");
                request = request.header("x-xsrf-token", token);
            }
        }
        for (name, value) in self.headers {
            request = request.header(name, HeaderValue::from_str(&value).expect("header value"));
        }
        if self.content_length && !self.body.is_empty() {
            request = request.header(header::CONTENT_LENGTH, self.body.len());
        }
        let body = if self.content_length {
            Body::from(self.body)
        } else {
            // A body of unknown length, in chunks.
            let chunks: Vec<Result<Bytes, std::io::Error>> = self
                .body
                .chunks(64 * 1024)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Body::from_stream(futures_util::stream::iter(chunks))
        };
        let mut request = request.body(body).expect("request");
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(CLIENT_ADDR)));
        self.client.execute(request, self.cookies).await
    }
}

/// A response, read whole.
#[derive(Debug)]
pub(crate) struct TestResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl TestResponse {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body with the HTML escapes the templates use undone (`&#x2f;` → `/`, …).
    pub(crate) fn html(&self) -> String {
        unescape_html(&self.text())
    }

    fn try_json(&self) -> Option<Value> {
        let is_json = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            serde_json::from_slice(&self.body).ok()
        } else {
            None
        }
    }

    /// The JSON body; checks the envelope (`meta.code` equals the status).
    pub(crate) fn json(&self) -> Value {
        let value = self.try_json().unwrap_or_else(|| {
            panic!(
                "not a JSON response ({}): {:?} {}",
                self.status,
                self.headers,
                self.text()
            )
        });
        assert_eq!(
            value["meta"]["code"].as_u64(),
            Some(u64::from(self.status.as_u16())),
            "meta.code must equal the status: {value}"
        );
        value
    }

    /// `response` of the envelope.
    pub(crate) fn response(&self) -> Value {
        self.json()["response"].clone()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` of a 302.
    pub(crate) fn location(&self) -> Option<&str> {
        if self.status != StatusCode::FOUND {
            return None;
        }
        self.header("location")
    }

    /// The raw `Set-Cookie` header for `name`, if the response sets it.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.split('=').next() == Some(name))
            .map(str::to_owned)
    }

    /// Asserts a 400 with exactly these field errors (and `errors` = all their messages).
    pub(crate) fn assert_field_errors(&self, expected: &Value) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text());
        let response = self.response();
        assert_eq!(&response["field_errors"], expected, "{response}");
        let all: Vec<Value> = expected
            .as_object()
            .expect("an object")
            .values()
            .flat_map(|v| v.as_array().expect("a list").clone())
            .collect();
        let mut got = response["errors"].as_array().expect("errors").clone();
        let mut want = all;
        let key = |v: &Value| v.to_string();
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(
            got, want,
            "errors must list every field message: {response}"
        );
    }

    /// Asserts an error envelope with exactly `errors` and no `field_errors`.
    pub(crate) fn assert_errors(&self, status: StatusCode, errors: &[&str]) {
        assert_eq!(self.status, status, "{}", self.text());
        let response = self.response();
        assert_eq!(response["errors"], json!(errors), "{response}");
        assert!(
            response.get("field_errors").is_none(),
            "no field_errors expected: {response}"
        );
    }
}
