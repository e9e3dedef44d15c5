//! Prometheus metrics at `/metrics` (`RAMPART_METRICS`): scraped after real requests over TCP,
//! series and labels checked, and no personal data in any label.

use std::collections::BTreeMap;

use rampart::testing::TestBackend;
use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp};

/// One sample of the text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus's text format (comments skipped).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (key, value) = pair.split_once('=').expect("key=value");
                    (
                        key.to_owned(),
                        value.trim_matches('"').trim_end_matches('"').to_owned(),
                    )
                })
                .collect();
            Sample {
                name: name.to_owned(),
                labels,
                value: value.parse().expect("a number"),
            }
        })
        .collect()
}

/// The value of the sample `name` with exactly `labels` (0 when absent).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .find(|sample| {
            sample.name == name
                && sample.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(key, value)| sample.labels.get(*key).map(String::as_str) == Some(value))
        })
        .map_or(0.0, |sample| sample.value)
}

async fn scrape(app: &TestApp) -> (StatusCode, String, Option<String>) {
    let response = reqwest::get(format!("{}/metrics", app.base))
        .await
        .expect("scrape");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, response.text().await.expect("body"), content_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_template_and_logins_by_outcome_without_personal_data() {
    let app = TestApp::start(&TestBackend::Sqlite, &[("RAMPART_METRICS", "true")]).await;
    let email = "metered.person@example.com";
    app.create_user(email).await;
    let user_id = app
        .security
        .datastore()
        .user_by_identity(email)
        .await
        .expect("lookup")
        .expect("user")
        .id;
    let http = reqwest::Client::new();
    // Anonymous pages, a matched route with a parameter, and a path no route has.
    let login_page = http
        .get(format!("{}/login", app.base))
        .send()
        .await
        .expect("login page");
    assert_eq!(login_page.status(), StatusCode::OK);
    let picture = http
        .get(format!(
            "{}/media/avatars/secret-picture-name.png",
            app.base
        ))
        .send()
        .await
        .expect("avatar");
    assert_eq!(picture.status(), StatusCode::NOT_FOUND);
    let lost = http
        .get(format!("{}/nowhere/{email}/{user_id}", app.base))
        .send()
        .await
        .expect("unknown path");
    assert_eq!(lost.status(), StatusCode::NOT_FOUND);
    // One failed and one successful sign-in, then signed-in reads (cached after the first).
    let (status, _) = app
        .client()
        .post_json(
            "/login",
            json!({"email": email, "password": "not the password"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (client, token) = app.login(email, PASSWORD).await;
    for _ in 0..5 {
        let (status, _) = client.get_json("/api/me").await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = client
        .request(reqwest::Method::GET, "/api/me", None, Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK);
    // An admin acting on the user: the id is in the path, never in a label.
    let (admin, _) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let _ = admin
        .post_json(&format!("/admin/users/{user_id}/deactivate"), json!({}))
        .await;

    let (status, text, content_type) = scrape(&app).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("text/plain; version=0.0.4")),
        "{content_type:?}"
    );
    let samples = parse(&text);
    let requests = "rampart_http_requests_total";
    let get = |route: &str, status: &str| {
        value(
            &samples,
            requests,
            &[("method", "GET"), ("route", route), ("status", status)],
        )
    };
    assert_eq!(get("/login", "200"), 1.0, "{text}");
    assert_eq!(get("/api/me", "200"), 6.0, "{text}");
    assert_eq!(get("/media/avatars/{name}", "404"), 1.0, "{text}");
    assert_eq!(get("unmatched", "404"), 1.0, "{text}");
    assert_eq!(
        value(
            &samples,
            requests,
            &[("method", "POST"), ("route", "/login"), ("status", "400")]
        ),
        1.0,
        "{text}"
    );
    assert!(
        samples.iter().any(|s| s.name == requests
            && s.labels.get("route").map(String::as_str) == Some("/admin/users/{id}/deactivate")),
        "{text}"
    );
    // The latency histogram, by the same route templates.
    assert_eq!(
        value(
            &samples,
            "rampart_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/api/me")]
        ),
        6.0,
        "{text}"
    );
    assert!(
        samples
            .iter()
            .any(|s| s.name == "rampart_http_request_duration_seconds_bucket"
                && s.labels.get("le").map(String::as_str) == Some("0.001")),
        "{text}"
    );
    // Sign-ins by outcome (the user's and the admin's).
    let logins = |outcome: &str| value(&samples, "rampart_logins_total", &[("outcome", outcome)]);
    assert_eq!(logins("success"), 2.0, "{text}");
    assert_eq!(logins("failed"), 1.0, "{text}");
    assert_eq!(logins("limited"), 0.0, "{text}");
    assert!(text.contains("rampart_logins_total{outcome=\"unavailable\"} 0"));
    // The hashing pool, idle now, refused nobody.
    assert_eq!(value(&samples, "rampart_hashing_queued", &[]), 0.0);
    assert_eq!(value(&samples, "rampart_hashing_running", &[]), 0.0);
    assert!(text.contains("rampart_hashing_refused_total 0"), "{text}");
    // The authentication cache answered the repeated reads.
    let lookups = "rampart_auth_cache_lookups_total";
    let hits = value(
        &samples,
        lookups,
        &[("cache", "session"), ("result", "hit")],
    );
    let misses = value(
        &samples,
        lookups,
        &[("cache", "session"), ("result", "miss")],
    );
    assert!(hits >= 3.0, "session hits {hits}: {text}");
    assert!(misses >= 1.0, "session misses {misses}: {text}");
    assert!(value(&samples, lookups, &[("cache", "user"), ("result", "hit")]) >= 3.0);
    assert_eq!(value(&samples, "rampart_invalidation_channel_up", &[]), 1.0);
    // Nothing personal: only these label names, and no email, id or raw path anywhere.
    let allowed = [
        "method", "route", "status", "outcome", "cache", "result", "le",
    ];
    for sample in &samples {
        for key in sample.labels.keys() {
            assert!(allowed.contains(&key.as_str()), "label {key} in {sample:?}");
        }
    }
    for secret in [
        email,
        "metered",
        "@",
        "secret-picture-name",
        "nowhere",
        &format!("/{user_id}/"),
    ] {
        assert!(!text.contains(secret), "{secret} in the metrics:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashing_refusals_are_counted() {
    let app = TestApp::start(
        &TestBackend::Sqlite,
        &[
            ("RAMPART_METRICS", "true"),
            ("SECURITY_HASHING_MAX_CONCURRENT", "1"),
            ("SECURITY_HASHING_MAX_QUEUED", "0"),
            // Slow enough hashes that concurrent sign-ins meet a busy pool.
            ("SECURITY_ARGON2_MEMORY_KIB", "65536"),
            ("SECURITY_ARGON2_ITERATIONS", "2"),
        ],
    )
    .await;
    let email = "busy@example.com";
    app.create_user(email).await;
    let app = std::sync::Arc::new(app);
    let mut tries = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let app = std::sync::Arc::clone(&app);
        tries.spawn(async move {
            app.client()
                .post_json("/login", json!({"email": email, "password": PASSWORD}))
                .await
                .0
        });
    }
    let statuses = tries.join_all().await;
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(refused > 0, "no sign-in met a busy pool: {statuses:?}");
    assert!(!statuses.contains(&StatusCode::INTERNAL_SERVER_ERROR));
    let (_, text, _) = scrape(&app).await;
    let samples = parse(&text);
    assert_eq!(
        value(&samples, "rampart_hashing_refused_total", &[]),
        refused as f64,
        "{text}"
    );
    assert_eq!(
        value(
            &samples,
            "rampart_logins_total",
            &[("outcome", "unavailable")]
        ),
        refused as f64,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_rampart_metrics_there_is_no_metrics_page() {
    let app = TestApp::start(&TestBackend::Sqlite, &[]).await;
    let (status, text, _) = scrape(&app).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!text.contains("rampart_"));
}
