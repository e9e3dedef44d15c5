//! [`TestClient`]: a browser or SPA driving the router; requests are built with [`RequestBuilder`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::*;

/// The address requests come from.
const CLIENT_ADDR: ([u8; 4], u16) = ([127, 0, 0, 1], 50_000);

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
    pub(crate) fn new(router: Router) -> Self {
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
