//! Two instances of the app on one PostgreSQL database (in this process, each on its own port,
//! real HTTP), with cache invalidations carried by PostgreSQL `LISTEN`/`NOTIFY` or, with
//! `TEST_REDIS_URL`, by Redis pub/sub: what one instance changes, the other sees at once.

use std::time::Duration;

use rampart::InvalidationStatus;
use rampart::testing::TestBackend;
use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::time::Instant;

use crate::harness::{PASSWORD, TestApp, TestClient};

/// How soon a change on one instance must show on the other.
const WITHIN: Duration = Duration::from_millis(200);

/// Which channel carries the invalidations.
#[derive(Clone, Copy, Debug)]
enum Channel {
    Postgres,
    Redis,
}

/// Two instances on one fresh PostgreSQL database, their channels up; `None` when the
/// backend (or Redis) is not configured outside CI.
async fn cluster(channel: Channel, extra: &[(&str, &str)]) -> Option<(TestApp, TestApp)> {
    let backend = TestBackend::postgres_or_skip()?;
    let mut settings: Vec<(&str, &str)> = extra.to_vec();
    let redis;
    if let Channel::Redis = channel {
        redis = rampart::testing::redis_url_or_skip()?;
        settings.push(("REDIS_URL", redis.as_str()));
    }
    let a = TestApp::start(&backend, &settings).await;
    let b = a.another_instance(&settings).await;
    for app in [&a, &b] {
        let store = app.security.datastore();
        assert_eq!(
            store.invalidation_transport(),
            Some(match channel {
                Channel::Postgres => "postgres",
                Channel::Redis => "redis",
            })
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.invalidation_status() != InvalidationStatus::Up {
            assert!(Instant::now() < deadline, "the channel never came up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    Some((a, b))
}

/// Polls `request` until it answers `expected`; how long that took (fails after 5 s).
async fn time_until<F, Fut>(expected: StatusCode, mut request: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StatusCode>,
{
    let start = Instant::now();
    loop {
        if request().await == expected {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "never answered {expected}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn me(client: &TestClient, token: Option<&str>) -> StatusCode {
    client.request(Method::GET, "/api/me", None, token).await.0
}

/// A session and a token made on A work on B; a logout on A is refused on B within 0.2 s.
async fn logout_on_one_instance_is_refused_on_the_other(channel: Channel) {
    let Some((a, b)) = cluster(channel, &[]).await else {
        return;
    };
    let email = "roaming@example.com";
    a.create_user(email).await;
    let (on_a, token) = a.login(email, PASSWORD).await;
    let on_b = b.same_browser(&on_a);
    // Both instances now have the session (and the user) cached.
    for _ in 0..3 {
        assert_eq!(me(&on_a, None).await, StatusCode::OK);
        assert_eq!(me(&on_b, None).await, StatusCode::OK);
        assert_eq!(me(&b.client(), Some(&token)).await, StatusCode::OK);
    }
    // The cookie as a thief would replay it (the browser forgets it at logout).
    let stolen = on_a.cookie_header();
    assert!(!stolen.is_empty());
    let thief = reqwest::Client::new();
    let replay = || async {
        thief
            .get(format!("{}/api/me", b.base))
            .header("Accept", "application/json")
            .header("Cookie", &stolen)
            .send()
            .await
            .expect("request")
            .status()
    };
    assert_eq!(replay().await, StatusCode::OK);
    let (status, body) = on_a.post_json("/logout", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delay = time_until(StatusCode::UNAUTHORIZED, replay).await;
    assert!(delay <= WITHIN, "logout seen on B after {delay:?}");
}

/// A password change on A ends the old token on B within 0.2 s; the new password works on B.
async fn a_password_change_on_one_instance_ends_tokens_on_the_other(channel: Channel) {
    let Some((a, b)) = cluster(channel, &[]).await else {
        return;
    };
    let email = "changer@example.com";
    a.create_user(email).await;
    let (on_a, _) = a.login(email, PASSWORD).await;
    let (_, token) = b.login(email, PASSWORD).await;
    let anyone = b.client();
    for _ in 0..3 {
        assert_eq!(me(&anyone, Some(&token)).await, StatusCode::OK);
    }
    let new_password = "a brand new passphrase";
    let (status, body) = on_a
        .post_json(
            "/dashboard/security/",
            json!({"password": PASSWORD, "new_password": new_password, "new_password_confirm": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delay = time_until(StatusCode::UNAUTHORIZED, || me(&anyone, Some(&token))).await;
    assert!(delay <= WITHIN, "old token accepted on B for {delay:?}");
    let (on_b, _) = b.login(email, new_password).await;
    assert_eq!(me(&on_b, None).await, StatusCode::OK);
}

/// A deactivation on A (the admin's) signs the user out on B within 0.2 s.
async fn a_deactivation_on_one_instance_is_seen_on_the_other(channel: Channel) {
    let Some((a, b)) = cluster(channel, &[]).await else {
        return;
    };
    let email = "leaving@example.com";
    a.create_user(email).await;
    let (on_b, token) = b.login(email, PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(me(&on_b, None).await, StatusCode::OK);
    }
    crate::harness::run_cli(&a.security, &["users", "deactivate", email])
        .await
        .expect("deactivated");
    let delay = time_until(StatusCode::UNAUTHORIZED, || me(&on_b, Some(&token))).await;
    assert!(
        delay <= WITHIN,
        "deactivated user served on B for {delay:?}"
    );
}

/// The login limit counts the tries made on every instance.
async fn the_login_limit_is_shared(channel: Channel) {
    let Some((a, b)) = cluster(channel, &[]).await else {
        return;
    };
    let email = "guessed@example.com";
    a.create_user(email).await;
    // The per-account limit: 10 per 5 minutes, tried on A and B in turn.
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (status, body) = app
            .client()
            .post_json(
                "/login",
                json!({"email": email, "password": format!("wrong {i}")}),
            )
            .await;
        let expected = if i < 10 {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, expected, "try {i}: {body}");
    }
    // With Redis the counters live there, not in the database.
    let rampart::DbPool::Postgres(pool) = a.security.datastore().pool() else {
        panic!("a cluster runs on PostgreSQL");
    };
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM \"rampart_rate_limit\"")
        .fetch_one(pool)
        .await
        .expect("count");
    match channel {
        Channel::Redis => assert_eq!(rows, 0, "no counter in the database"),
        Channel::Postgres => assert!(rows > 0, "the counters are in the database"),
    }
}

/// Stamps each scenario for both channels.
macro_rules! on_both_channels {
    ($($scenario:ident),* $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$scenario(super::Channel::Postgres).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() {
                    super::$scenario(super::Channel::Redis).await;
                }
            }
        )*
    };
}

on_both_channels!(
    logout_on_one_instance_is_refused_on_the_other,
    a_password_change_on_one_instance_ends_tokens_on_the_other,
    a_deactivation_on_one_instance_is_seen_on_the_other,
    the_login_limit_is_shared,
);

crate::harness::backend_test!(
    healthz_is_alive_and_readyz_checks_database_migrations_and_channel,
    async |app: TestApp| {
        let http = reqwest::Client::new();
        let alive = http
            .get(format!("{}/healthz", app.base))
            .send()
            .await
            .expect("healthz");
        assert_eq!(alive.status(), StatusCode::OK);
        // The channel may still be coming up on PostgreSQL.
        let deadline = Instant::now() + Duration::from_secs(10);
        let body = loop {
            let ready = http
                .get(format!("{}/readyz", app.base))
                .send()
                .await
                .expect("readyz");
            let status = ready.status();
            let body: serde_json::Value = ready.json().await.expect("json");
            if status == StatusCode::OK {
                break body;
            }
            assert!(Instant::now() < deadline, "never ready: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(body["status"], "ready");
        assert_eq!(body["checks"]["database"], "ok");
        assert_eq!(body["checks"]["migrations"], "ok");
        let expected = match app.security.datastore().backend_name() {
            "sqlite" => "local",
            _ => "up",
        };
        assert_eq!(body["checks"]["invalidation"], expected);
    }
);

/// PostgreSQL refusing connections (every backend of the database ended, new ones refused): the
/// channel is down, `/readyz` answers 503 with `Retry-After`, requests get no 500, and the
/// instance recovers by itself once connections are allowed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_channel_turns_caching_off_and_readiness_down_until_it_is_back() {
    let Some((a, b)) = cluster(Channel::Postgres, &[]).await else {
        return;
    };
    let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let database = url::Url::parse(&a.database_url).expect("url").path()[1..].to_owned();
    let email = "steady@example.com";
    a.create_user(email).await;
    let (on_a, token) = a.login(email, PASSWORD).await;
    assert_eq!(me(&on_a, None).await, StatusCode::OK);
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&admin_url)
        .await
        .expect("admin connection");
    let allow = |yes: bool| format!("ALTER DATABASE \"{database}\" ALLOW_CONNECTIONS {yes}");
    sqlx::query(&allow(false))
        .execute(&mut admin)
        .await
        .expect("refuse connections");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&database)
        .execute(&mut admin)
        .await
        .expect("end the backends");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    for app in [&a, &b] {
        while app.security.datastore().invalidation_status() != InvalidationStatus::Down {
            assert!(Instant::now() < deadline, "the loss was never noticed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let ready = http
            .get(format!("{}/readyz", app.base))
            .send()
            .await
            .expect("readyz");
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(ready.headers().contains_key("retry-after"));
        let body: serde_json::Value = ready.json().await.expect("json");
        assert_eq!(body["checks"]["invalidation"], "down", "{body}");
        // Nothing cached is served, and the refusal is not a 500.
        let status = me(&app.client(), Some(&token)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    sqlx::query(&allow(true))
        .execute(&mut admin)
        .await
        .expect("allow connections");
    let deadline = Instant::now() + Duration::from_secs(15);
    for app in [&a, &b] {
        loop {
            let ready = http
                .get(format!("{}/readyz", app.base))
                .send()
                .await
                .expect("readyz");
            if ready.status() == StatusCode::OK {
                break;
            }
            assert!(Instant::now() < deadline, "never recovered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(me(&app.client(), Some(&token)).await, StatusCode::OK);
    }
}

/// The value of the session cookie `client` sends to `app`.
fn session_cookie(app: &TestApp, client: &TestClient) -> String {
    let name = format!("{}=", app.security.config().session.cookie_name);
    client
        .cookie_header()
        .split("; ")
        .find_map(|pair| pair.strip_prefix(name.as_str()).map(str::to_owned))
        .expect("a session cookie")
}

/// The hex SHA-256 of `text` (how session ids are stored).
fn sha256_hex(text: &str) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How many sessions the database's table holds.
async fn table_sessions(app: &TestApp) -> i64 {
    let rampart::DbPool::Postgres(pool) = app.security.datastore().pool() else {
        panic!("a cluster runs on PostgreSQL");
    };
    sqlx::query_scalar("SELECT COUNT(*) FROM \"rampart_session\"")
        .fetch_one(pool)
        .await
        .expect("count")
}

/// The id (in `GET /api/sessions`) of the session `client` uses, and how many are listed.
async fn own_session(client: &TestClient) -> (String, usize) {
    let (status, body) = client.get_json("/api/sessions").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sessions = body["response"]["sessions"].as_array().expect("sessions");
    let current = sessions
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session is listed");
    (
        current["id"].as_str().expect("id").to_owned(),
        sessions.len(),
    )
}

/// With Redis the sessions live there (keyed by the hash of the cookie's id, never the id; none
/// in the database); both instances serve them, and revoking one, the others, or all of them (a
/// password change) on one instance is refused on the other within 0.2 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_sessions_live_there_and_end_on_every_instance() {
    let Some((a, b)) = cluster(Channel::Redis, &[]).await else {
        return;
    };
    let redis_url = rampart::testing::redis_url_or_skip().expect("TEST_REDIS_URL");
    let mut redis = redis::Client::open(redis_url)
        .expect("Redis URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    let database = url::Url::parse(&a.database_url).expect("url").path()[1..].to_owned();
    let prefix = format!("rampart:{database}:");
    let email = "listed@example.com";
    a.create_user(email).await;
    let (first, _) = a.login(email, PASSWORD).await;
    let (second, _) = b.login(email, PASSWORD).await;
    let (third, _) = a.login(email, PASSWORD).await;

    let cookie = session_cookie(&a, &first);
    let key = format!("{prefix}session:{}", sha256_hex(&cookie));
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("EXISTS");
    assert!(exists, "{key}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .expect("PTTL");
    let lifetime = a.security.config().session.lifetime;
    assert!(
        ttl > 0 && u128::try_from(ttl).expect("ttl") <= lifetime.as_millis(),
        "expires with the session: {ttl} ms"
    );
    let sessions: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}session:*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let raw: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{cookie}*"))
        .query_async(&mut redis)
        .await
        .expect("KEYS");
    assert!(raw.is_empty(), "the cookie's id is never stored: {raw:?}");
    assert_eq!(table_sessions(&a).await, 0, "no session in the database");

    // B serves A's sessions, and lists them.
    let first_on_b = b.same_browser(&first);
    assert_eq!(me(&first_on_b, None).await, StatusCode::OK);
    let (_, listed) = own_session(&first_on_b).await;
    assert_eq!(listed, 3);

    // Revoking one on B: refused on A at once.
    let (second_id, _) = own_session(&second).await;
    let second_on_a = a.same_browser(&second);
    for _ in 0..3 {
        assert_eq!(me(&second_on_a, None).await, StatusCode::OK);
    }
    let (status, body) = first_on_b
        .request(
            Method::DELETE,
            &format!("/api/sessions/{second_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delay = time_until(StatusCode::UNAUTHORIZED, || me(&second_on_a, None)).await;
    assert!(
        delay <= WITHIN,
        "a revoked session served on A for {delay:?}"
    );
    let second_key = format!(
        "{prefix}session:{}",
        sha256_hex(&session_cookie(&b, &second))
    );
    let exists: bool = redis::cmd("EXISTS")
        .arg(&second_key)
        .query_async(&mut redis)
        .await
        .expect("EXISTS");
    assert!(!exists, "the revoked session is gone from Redis");

    // Revoking the others on A: refused on B at once; this one stays.
    let third_on_b = b.same_browser(&third);
    for _ in 0..3 {
        assert_eq!(me(&third_on_b, None).await, StatusCode::OK);
    }
    let (status, body) = first
        .post_json("/api/sessions/revoke-others", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delay = time_until(StatusCode::UNAUTHORIZED, || me(&third_on_b, None)).await;
    assert!(
        delay <= WITHIN,
        "a revoked session served on B for {delay:?}"
    );
    assert_eq!(me(&first, None).await, StatusCode::OK);
    assert_eq!(own_session(&first).await.1, 1);

    // A password change on A ends every other session, on B too; this one stays.
    let (fourth, _) = b.login(email, PASSWORD).await;
    for _ in 0..3 {
        assert_eq!(me(&fourth, None).await, StatusCode::OK);
    }
    let new_password = "a brand new passphrase";
    let (status, body) = first
        .post_json(
            "/dashboard/security/",
            json!({"password": PASSWORD, "new_password": new_password, "new_password_confirm": new_password}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let delay = time_until(StatusCode::UNAUTHORIZED, || me(&fourth, None)).await;
    assert!(delay <= WITHIN, "an old session served on B for {delay:?}");
    assert_eq!(me(&first, None).await, StatusCode::OK);
    assert_eq!(me(&b.same_browser(&first), None).await, StatusCode::OK);
    assert_eq!(own_session(&first).await.1, 1);
    let user_id = a
        .security
        .datastore()
        .user_by_email(email)
        .await
        .expect("query")
        .expect("user")
        .id;
    let listed: i64 = redis::cmd("ZCARD")
        .arg(format!("{prefix}user-sessions:{user_id}"))
        .query_async(&mut redis)
        .await
        .expect("ZCARD");
    assert_eq!(listed, 1, "the user's set holds the one live session");
    assert_eq!(table_sessions(&a).await, 0, "still none in the database");
}
