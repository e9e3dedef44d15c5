//! The scenarios: what is sent to which server, in which order, and what is measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::{ACCEPT, COOKIE, HeaderName};
use rampart::PasswordHasher;
use serde_json::json;

use crate::BenchError;
use crate::load::{self, LoadPlan, LoadResult, RequestSpec};
use crate::seed::{PASSWORD, email};
use crate::server::Target;

/// The auth token header the app reads (`SECURITY_TOKEN_AUTHENTICATION_HEADER`).
const TOKEN_HEADER: &str = "authentication-token";

/// How much load, for how long.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Measured time per scenario.
    pub duration: Duration,
    /// Unrecorded time before it.
    pub warmup: Duration,
    /// Connections of the throughput scenarios (and of `/api/me` during the flood).
    pub connections: usize,
    /// Connections sending `POST /login` in the login scenario.
    pub login_connections: usize,
    /// Connections sending `POST /login` during the flood.
    pub flood_connections: usize,
    /// Pause of a flooding connection after a 503.
    pub flood_backoff: Duration,
    /// Client threads per load.
    pub client_threads: usize,
    /// Pause between scenarios, so one's leftovers do not land in the next.
    pub settle: Duration,
}

/// Signed-in users: their session cookies and auth tokens.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// `session=…` cookie headers.
    pub cookies: Vec<String>,
    /// `Authentication-Token` values.
    pub tokens: Vec<String>,
}

/// Signs in seeded users `users` over HTTP (`POST /login?include_auth_token`, JSON), all at
/// once, and keeps their session cookies and auth tokens.
///
/// # Errors
///
/// [`BenchError::Setup`] when a login is refused or its answer lacks a cookie or token.
pub async fn sign_in(app: &Target, users: &[u64]) -> Result<Credentials, BenchError> {
    let logins = users.iter().map(|&i| async move {
        let spec = RequestSpec::post_json(
            "/login?include_auth_token",
            &json!({"email": email(i), "password": PASSWORD}),
        );
        // A busy hashing pool answers 503: wait a little and try again (bounded).
        let mut tries = 0;
        let (status, headers, body) = loop {
            let answer = load::fetch(app.addr, &spec).await?;
            tries += 1;
            if answer.0 != StatusCode::SERVICE_UNAVAILABLE || tries >= 50 {
                break answer;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        if status != StatusCode::OK {
            return Err(BenchError::Setup(format!(
                "login of {} answered {status}: {}",
                email(i),
                String::from_utf8_lossy(&body)
            )));
        }
        let cookie = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.starts_with("session="))
            .map(str::to_owned)
            .ok_or_else(|| BenchError::Setup("login set no session cookie".into()))?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| BenchError::Setup(format!("login answer is not JSON: {e}")))?;
        let token = body
            .pointer("/response/user/authentication_token")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| BenchError::Setup("login answer has no auth token".into()))?;
        Ok::<_, BenchError>((cookie, token))
    });
    let mut credentials = Credentials::default();
    for result in futures_util::future::join_all(logins).await {
        let (cookie, token) = result?;
        credentials.cookies.push(cookie);
        credentials.tokens.push(token);
    }
    Ok(credentials)
}

/// One measured scenario.
#[derive(Clone, Debug)]
pub struct Measured {
    /// What was sent.
    pub name: String,
    /// Connections used.
    pub connections: usize,
    /// What came back.
    pub result: LoadResult,
    /// The server's resident memory right after, in KiB.
    pub rss_after_kib: Option<u64>,
}

impl Measured {
    /// A measurement of `target`, with its resident memory now.
    pub fn new(name: &str, connections: usize, result: LoadResult, target: &Target) -> Self {
        Self {
            name: name.to_owned(),
            connections,
            result,
            rss_after_kib: target.rss_kib(),
        }
    }
}

/// A plan of `specs` on `connections` connections against `target`, sized by `sizes`.
pub fn plan(
    target: &Target,
    specs: Vec<RequestSpec>,
    connections: usize,
    sizes: &Sizes,
) -> LoadPlan {
    LoadPlan {
        addr: target.addr,
        specs: Arc::from(specs),
        connections,
        threads: sizes.client_threads,
        warmup: sizes.warmup,
        duration: sizes.duration,
        backoff_on_503: None,
        server_pid: target.pid,
    }
}

/// The bare handler's `GET /`.
///
/// # Errors
///
/// As [`load::run`].
pub fn bare(target: &Target, sizes: &Sizes) -> Result<Measured, BenchError> {
    let result = load::run(&plan(
        target,
        vec![RequestSpec::get("/")],
        sizes.connections,
        sizes,
    ))?;
    Ok(Measured::new(
        "bare axum handler GET /",
        sizes.connections,
        result,
        target,
    ))
}

/// `GET /api/me` with each signed-in user's session cookie.
fn me_with_cookies(credentials: &Credentials) -> Result<Vec<RequestSpec>, BenchError> {
    credentials
        .cookies
        .iter()
        .map(|cookie| {
            RequestSpec::get("/api/me")
                .header(ACCEPT, "application/json")?
                .header(COOKIE, cookie)
        })
        .collect()
}

/// `GET /api/me` with each signed-in user's auth token.
fn me_with_tokens(credentials: &Credentials) -> Result<Vec<RequestSpec>, BenchError> {
    credentials
        .tokens
        .iter()
        .map(|token| {
            RequestSpec::get("/api/me")
                .header(ACCEPT, "application/json")?
                .header(HeaderName::from_static(TOKEN_HEADER), token)
        })
        .collect()
}

/// `POST /login` (JSON, valid credentials) for seeded users `users`.
fn logins(users: &[u64]) -> Vec<RequestSpec> {
    users
        .iter()
        .map(|&i| {
            RequestSpec::post_json("/login", &json!({"email": email(i), "password": PASSWORD}))
        })
        .collect()
}

/// `GET /api/me` with session cookies, then with auth tokens.
///
/// # Errors
///
/// As [`load::run`].
pub fn me(
    target: &Target,
    credentials: &Credentials,
    sizes: &Sizes,
    label: &str,
) -> Result<(Measured, Measured), BenchError> {
    let session = load::run(&plan(
        target,
        me_with_cookies(credentials)?,
        sizes.connections,
        sizes,
    ))?;
    let session = Measured::new(
        &format!("GET /api/me, session cookie{label}"),
        sizes.connections,
        session,
        target,
    );
    std::thread::sleep(sizes.settle);
    let token = load::run(&plan(
        target,
        me_with_tokens(credentials)?,
        sizes.connections,
        sizes,
    ))?;
    let token = Measured::new(
        &format!("GET /api/me, Authentication-Token{label}"),
        sizes.connections,
        token,
        target,
    );
    Ok((session, token))
}

/// Everything measured on the app with the default number of users.
#[derive(Clone, Debug)]
pub struct AppScenarios {
    /// Anonymous `GET /login` (HTML).
    pub login_page: Measured,
    /// `GET /api/me` with a session cookie.
    pub me_session: Measured,
    /// `GET /api/me` with an auth token.
    pub me_token: Measured,
    /// `POST /login`, valid credentials.
    pub login: Measured,
    /// `GET /api/me` (session) while logins flood.
    pub flood_me: Measured,
    /// The flooding logins.
    pub flood_logins: Measured,
}

/// Runs the app's scenarios in order, pausing between them.
///
/// # Errors
///
/// As [`load::run`].
pub fn app(
    target: &Target,
    credentials: &Credentials,
    login_users: &[u64],
    sizes: &Sizes,
) -> Result<AppScenarios, BenchError> {
    let page = RequestSpec::get("/login").header(ACCEPT, "text/html")?;
    let login_page = load::run(&plan(target, vec![page], sizes.connections, sizes))?;
    let login_page = Measured::new(
        "GET /login, anonymous (HTML form)",
        sizes.connections,
        login_page,
        target,
    );
    std::thread::sleep(sizes.settle);

    let (me_session, me_token) = me(target, credentials, sizes, "")?;
    std::thread::sleep(sizes.settle);

    let login = load::run(&plan(
        target,
        logins(login_users),
        sizes.login_connections,
        sizes,
    ))?;
    let login = Measured::new(
        "POST /login (JSON, valid password)",
        sizes.login_connections,
        login,
        target,
    );
    std::thread::sleep(sizes.settle);

    let mut flood = plan(target, logins(login_users), sizes.flood_connections, sizes);
    flood.backoff_on_503 = Some(sizes.flood_backoff);
    let flood = load::start(&flood)?;
    let during = load::run(&plan(
        target,
        me_with_cookies(credentials)?,
        sizes.connections,
        sizes,
    ));
    let flood = flood.wait()?;
    let flood_me = Measured::new(
        "GET /api/me, session cookie, during a login flood",
        sizes.connections,
        during?,
        target,
    );
    let flood_logins = Measured::new(
        "POST /login flood (concurrent with the line above)",
        sizes.flood_connections,
        flood,
        target,
    );
    std::thread::sleep(sizes.settle.max(Duration::from_secs(1)));
    Ok(AppScenarios {
        login_page,
        me_session,
        me_token,
        login,
        flood_me,
        flood_logins,
    })
}

/// Raw password verifications per second, in this process, with the app's hasher.
#[derive(Clone, Copy, Debug)]
pub struct HashRate {
    /// Verifications per second on one thread.
    pub one_thread: f64,
    /// Verifications per second on `threads` threads.
    pub all_threads: f64,
    /// Threads of `all_threads` (the CPUs).
    pub threads: usize,
}

/// Measures `verify_blocking` of `hash` on 1 thread, then on `threads`, for about `duration`
/// each (whole verifications only).
///
/// # Errors
///
/// [`BenchError::Setup`] when the password does not verify against the hash.
pub fn hash_rate(
    hasher: &PasswordHasher,
    hash: &str,
    threads: usize,
    duration: Duration,
) -> Result<HashRate, BenchError> {
    if !hasher.verify_blocking(PASSWORD, hash).valid {
        return Err(BenchError::Setup(
            "the seeded hash does not verify with the app's hasher".into(),
        ));
    }
    let one_thread = verify_for(hasher, hash, 1, duration);
    let all_threads = verify_for(hasher, hash, threads, duration);
    Ok(HashRate {
        one_thread,
        all_threads,
        threads,
    })
}

fn verify_for(hasher: &PasswordHasher, hash: &str, threads: usize, duration: Duration) -> f64 {
    let started = Instant::now();
    let deadline = started + duration;
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0_u64;
                    while Instant::now() < deadline {
                        let _verification = hasher.verify_blocking(PASSWORD, hash);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).collect()
    });
    let total: u64 = counts.iter().sum();
    total as f64 / started.elapsed().as_secs_f64()
}
