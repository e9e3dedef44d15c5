//! Faults: PostgreSQL going away under load (a TCP proxy in front of the shared server, cut and
//! restored by the test, so other tests keep their database), Redis stopped and restarted empty
//! (a private `redis-server` on a free port), and `kill -9` of the real binary in the middle of sign-ups.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart::testing::{TestBackend, TestDatabase};
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::harness::{PASSWORD, TestApp};

/// A TCP proxy to `upstream` that the test can cut (every connection dropped, new ones closed
/// at once, as when the database's host goes away) and restore.
struct CuttableProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    pipes: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl CuttableProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(AtomicBool::new(false));
        let pipes: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = tokio::spawn({
            let cut = Arc::clone(&cut);
            let pipes = Arc::clone(&pipes);
            async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let pipe = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    pipes.lock().expect("lock").push(pipe.abort_handle());
                }
            }
        })
        .abort_handle();
        Self {
            addr,
            cut,
            pipes,
            accept,
        }
    }

    /// Drops every connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for pipe in self.pipes.lock().expect("lock").drain(..) {
            pipe.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for pipe in self.pipes.lock().expect("lock").drain(..) {
            pipe.abort();
        }
    }
}

/// `url` with its host and port replaced by `addr`.
fn via(url: &str, addr: SocketAddr) -> String {
    let mut url = url::Url::parse(url).expect("database URL");
    url.set_host(Some(&addr.ip().to_string())).expect("host");
    url.set_port(Some(addr.port())).expect("port");
    url.to_string()
}

/// The address of the server in a `postgres://` URL.
async fn server_of(url: &str) -> SocketAddr {
    let url = url::Url::parse(url).expect("database URL");
    let host = url.host_str().expect("host").to_owned();
    let port = url.port().unwrap_or(5432);
    tokio::net::lookup_host((host.as_str(), port))
        .await
        .expect("resolve")
        .next()
        .expect("an address")
}

/// Users whose account is incomplete: no role or not exactly one profile (what a half-made
/// sign-up would leave).
async fn half_made_accounts(url: &str) -> Vec<(i64, i64, i64)> {
    const SQL: &str = "SELECT CAST(u.\"id\" AS BIGINT), \
         (SELECT COUNT(*) FROM \"roles_users\" r WHERE r.\"user_id\" = u.\"id\"), \
         (SELECT COUNT(*) FROM \"profile\" p WHERE p.\"user_id\" = u.\"id\") \
         FROM \"user\" u";
    let rows: Vec<(i64, i64, i64)> = if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open");
        sqlx::query_as(SQL).fetch_all(&pool).await.expect("users")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open");
        sqlx::query_as(SQL).fetch_all(&pool).await.expect("users")
    };
    rows.into_iter()
        .filter(|(_, roles, profiles)| *roles == 0 || *profiles != 1)
        .collect()
}

/// How many users `url` holds.
async fn user_count(url: &str) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM \"user\"";
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.expect("open");
        sqlx::query_scalar(SQL)
            .fetch_one(&pool)
            .await
            .expect("count")
    } else {
        let pool = sqlx::PgPool::connect(url).await.expect("open");
        sqlx::query_scalar(SQL)
            .fetch_one(&pool)
            .await
            .expect("count")
    }
}

/// What a load worker saw: statuses by count, and whether every 503 had `Retry-After`.
#[derive(Default)]
struct Seen {
    statuses: BTreeMap<u16, usize>,
    unavailable_without_retry_after: usize,
}

/// Sends sign-ups, signed-in reads and sign-ins to `base` until `stop`, recording the answers.
async fn load(
    base: String,
    token: String,
    worker: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    signed_up: Arc<AtomicUsize>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let mut i = 0;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let request = match i % 3 {
            0 => http
                .post(format!("{base}/register"))
                .header("Accept", "application/json")
                .json(&json!({
                    "email": format!("load-{worker}-{i}@example.com"),
                    "password": PASSWORD,
                    "password_confirm": PASSWORD,
                })),
            1 => http
                .get(format!("{base}/api/me"))
                .header("Accept", "application/json")
                .header("Authentication-Token", &token),
            _ => http
                .post(format!("{base}/login"))
                .header("Accept", "application/json")
                .json(&json!({"email": "steady@example.com", "password": PASSWORD})),
        };
        let Ok(response) = request.send().await else {
            continue;
        };
        let status = response.status();
        if i % 3 == 0 && status == StatusCode::OK {
            signed_up.fetch_add(1, Ordering::SeqCst);
        }
        let mut record = seen.lock().expect("lock");
        *record.statuses.entry(status.as_u16()).or_default() += 1;
        if status == StatusCode::SERVICE_UNAVAILABLE
            && !response.headers().contains_key("retry-after")
        {
            record.unavailable_without_retry_after += 1;
        }
    }
}

async fn wait_ready(app: &TestApp, within: Duration) {
    let http = reqwest::Client::new();
    let deadline = Instant::now() + within;
    loop {
        if let Ok(response) = http.get(format!("{}/readyz", app.base)).send().await
            && response.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL gone under load: 503 with `Retry-After` (JSON envelope or error page) while it
/// is gone, never a 500, no half-made account; back by itself when the database is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gone_under_load_answers_503_and_recovers_by_itself() {
    let Some(backend) = TestBackend::postgres_or_skip() else {
        return;
    };
    let database = TestDatabase::create(&backend).await.expect("test database");
    let direct_url = database.url().to_owned();
    let proxy = CuttableProxy::start(server_of(&direct_url).await).await;
    let proxied_url = via(&direct_url, proxy.addr);
    let app = TestApp::start_with_database(
        &proxied_url,
        &[
            ("SECURITY_SEND_REGISTER_EMAIL", "false"),
            ("SECURITY_CONFIRMABLE", "false"),
        ],
        Some(database),
    )
    .await;
    wait_ready(&app, Duration::from_secs(10)).await;
    app.create_user("steady@example.com").await;
    let (browser, token) = app.login("steady@example.com", PASSWORD).await;

    let stop = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let signed_up = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..6 {
        workers.spawn(load(
            app.base.clone(),
            token.clone(),
            worker,
            Arc::clone(&stop),
            Arc::clone(&seen),
            Arc::clone(&signed_up),
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.cut();
    let cut_at = Instant::now();
    // While it is gone: JSON clients get the envelope, browsers the error page, both 503 with
    // `Retry-After`.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = browser.get_json("/api/me").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["meta"]["code"], 503, "{body}");
            break;
        }
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(
            Instant::now() < deadline,
            "never 503 while the database was gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let page = reqwest::Client::new()
        .get(format!("{}/", app.base))
        .header("Accept", "text/html")
        .header("Cookie", browser.cookie_header())
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers().contains_key("retry-after"));
    assert!(
        page.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/html")
    );
    let ready = reqwest::get(format!("{}/readyz", app.base))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    tokio::time::sleep(Duration::from_secs(3).saturating_sub(cut_at.elapsed())).await;
    proxy.restore();
    let restored_at = Instant::now();
    wait_ready(&app, Duration::from_secs(30)).await;
    let recovered_in = restored_at.elapsed();
    // Back: reads, sign-ins and sign-ups work again, with no restart.
    let (status, body) = browser.get_json("/api/me").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    while workers.join_next().await.is_some() {}
    let (status, body) = app
        .client()
        .post_json(
            "/register",
            json!({"email": "after@example.com", "password": PASSWORD, "password_confirm": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (statuses, unavailable_without_retry_after) = {
        let seen = seen.lock().expect("lock");
        (seen.statuses.clone(), seen.unavailable_without_retry_after)
    };
    eprintln!("statuses under load: {statuses:?}; ready again {recovered_in:?} after the database");
    assert_eq!(statuses.get(&500), None, "500s: {statuses:?}");
    assert!(statuses.contains_key(&503), "{statuses:?}");
    assert_eq!(unavailable_without_retry_after, 0);
    assert!(signed_up.load(Ordering::SeqCst) > 0);
    // Every sign-up is whole (user, role, profile) or absent.
    assert_eq!(half_made_accounts(&direct_url).await, Vec::new());
}

/// A free TCP port on 127.0.0.1 (bound and released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A private `redis-server` on `port`, no persistence; killed when dropped.
struct PrivateRedis(Child);

impl PrivateRedis {
    fn start(port: u16, dir: &Path) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self(child)
    }

    fn stop(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether `redis-server` can be run; outside CI its absence skips the test.
fn redis_server_or_skip() -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the Redis fault tests: redis-server is missing"
        );
        eprintln!("redis-server not found: the Redis fault test does not run");
    }
    found
}

/// Redis stopped: what lives there (the sessions, the login limits' counters) fails closed
/// with 503 + `Retry-After`, never 500 nor a signed-out answer; auth tokens (checked against the
/// database) keep working; back by itself when Redis is. Redis restarted empty (no persistence)
/// has lost the sessions: their browsers are signed out, but a remember-me cookie (its series is
/// in the database) signs its browser back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_answers_503_for_sessions_and_recovers_by_itself() {
    if !redis_server_or_skip() {
        return;
    }
    let backend = TestBackend::postgres_from_env().unwrap_or(TestBackend::Sqlite);
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let redis = PrivateRedis::start(port, dir.path());
    let url = format!("redis://127.0.0.1:{port}/0");
    let app = TestApp::start(&backend, &[("REDIS_URL", url.as_str())]).await;
    wait_ready(&app, Duration::from_secs(10)).await;
    let email = "kept@example.com";
    app.create_user(email).await;
    let (browser, token) = app.login(email, PASSWORD).await;
    assert_eq!(browser.get_json("/api/me").await.0, StatusCode::OK);
    let remembered = app.client();
    let (status, body) = remembered
        .post_json(
            "/login",
            json!({"email": email, "password": PASSWORD, "remember": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(remembered.get_json("/api/me").await.0, StatusCode::OK);

    redis.stop();
    // The sessions are in Redis: a signed-in browser gets 503 + Retry-After (once its cached
    // session is dropped with the lost channel), never a 500 nor an anonymous answer.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = browser.get_json("/api/me").await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(body["meta"]["code"], 503, "{body}");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(Instant::now() < deadline, "never 503 while Redis was gone");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while app.security.datastore().invalidation_status() != rampart::InvalidationStatus::Down {
        assert!(
            Instant::now() < deadline,
            "the lost channel was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for client in [&browser, &remembered] {
        let response = reqwest::Client::new()
            .get(format!("{}/api/me", app.base))
            .header("Accept", "application/json")
            .header("Cookie", client.cookie_header())
            .send()
            .await
            .expect("me");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
    }
    let page = reqwest::Client::new()
        .get(format!("{}/", app.base))
        .header("Accept", "text/html")
        .header("Cookie", browser.cookie_header())
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers().contains_key("retry-after"));
    // Auth tokens are checked against the database: they keep working.
    for _ in 0..3 {
        let (status, body) = app
            .client()
            .request(reqwest::Method::GET, "/api/me", None, Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // A sign-in needs its counters (and a session): refused with 503 + Retry-After.
    let response = reqwest::Client::new()
        .post(format!("{}/login", app.base))
        .header("Accept", "application/json")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: serde_json::Value = response.json().await.expect("envelope");
    assert_eq!(body["meta"]["code"], 503, "{body}");
    let ready = reqwest::get(format!("{}/readyz", app.base))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Redis back, empty (a restart without persistence): everything works again by itself.
    let _redis = PrivateRedis::start(port, dir.path());
    wait_ready(&app, Duration::from_secs(30)).await;
    let (signed_in_again, _) = app.login(email, PASSWORD).await;
    assert_eq!(signed_in_again.get_json("/api/me").await.0, StatusCode::OK);
    // The sessions were lost with Redis: signed out, unless remembered.
    let (status, body) = browser.get_json("/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = remembered.get_json("/api/me").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "back by the remember-me cookie: {body}"
    );
    assert_eq!(remembered.get_json("/api/me").await.0, StatusCode::OK);
    let (status, body) = app
        .client()
        .request(reqwest::Method::GET, "/api/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

const BIN: &str = env!("CARGO_BIN_EXE_rampart-app");

/// `kill -9` of the real server in the middle of a flood of sign-ups: every account in the
/// database afterwards is whole (user, role, profile), none half-made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_sign_ups_leaves_whole_accounts_or_none() {
    let dir = tempfile::tempdir().expect("dir");
    let backend = TestBackend::postgres_from_env().unwrap_or(TestBackend::Sqlite);
    let (database_url, _database) = match &backend {
        TestBackend::Sqlite => (
            format!("sqlite://{}?mode=rwc", dir.path().join("app.db").display()),
            None,
        ),
        TestBackend::Postgres(_) => {
            let database = TestDatabase::create(&backend).await.expect("database");
            (database.url().to_owned(), Some(database))
        }
    };
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = Command::new(BIN)
        .current_dir(dir.path())
        .env_clear()
        .envs([
            ("DATABASE_URL", database_url.as_str()),
            ("SECURITY_ARGON2_MEMORY_KIB", "1024"),
            ("SECURITY_ARGON2_ITERATIONS", "1"),
            ("SECURITY_ARGON2_PARALLELISM", "1"),
            ("SECURITY_SEND_REGISTER_EMAIL", "false"),
            ("SECURITY_MAIL_RATE_LIMIT", "off"),
            ("RUST_LOG", "error"),
        ])
        .args(["serve", "--bind", &bind])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the server");
    let base = format!("http://{bind}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status() == StatusCode::OK
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let created = Arc::new(AtomicUsize::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let base = base.clone();
        let http = http.clone();
        let created = Arc::clone(&created);
        flood.spawn(async move {
            for i in 0.. {
                let sent = http
                    .post(format!("{base}/register"))
                    .header("Accept", "application/json")
                    .json(&json!({
                        "email": format!("flood-{worker}-{i}@example.com"),
                        "password": PASSWORD,
                        "password_confirm": PASSWORD,
                    }))
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status() == StatusCode::OK => {
                        created.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(_) => {}
                    // The server is gone.
                    Err(_) => break,
                }
            }
        });
    }
    // Kill once sign-ups are well under way (some committed, others in flight).
    let deadline = Instant::now() + Duration::from_secs(30);
    while created.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "sign-ups did not get going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("kill -9");
    server.wait().expect("reaped");
    while flood.join_next().await.is_some() {}
    let answered = created.load(Ordering::SeqCst);
    let users = user_count(&database_url).await;
    // Every sign-up answered 200 is there (plus, perhaps, some committed as the server died).
    assert!(
        users >= i64::try_from(answered).expect("count"),
        "{users} users for {answered} sign-ups answered"
    );
    assert_eq!(half_made_accounts(&database_url).await, Vec::new());
}
