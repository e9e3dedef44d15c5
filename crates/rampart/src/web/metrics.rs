//! Prometheus metrics (off by default; [`SecurityBuilder::metrics`](crate::SecurityBuilder::metrics),
//! `RAMPART_METRICS` in the sample app), served by [`Security::health_router`] at `GET /metrics`
//! in Prometheus's text format:
//!
//! | series | labels | what |
//! |---|---|---|
//! | `rampart_http_requests_total` | `method`, `route`, `status` | requests answered through the security layer |
//! | `rampart_http_request_duration_seconds` | `method`, `route` | their latency (histogram) |
//! | `rampart_logins_total` | `outcome` | `POST /login`: `success`, `second_factor`, `failed`, `invalid`, `limited`, `unavailable`, `error` |
//! | `rampart_hashing_running`, `rampart_hashing_queued` | | the hashing pool now: hashes running, callers waiting |
//! | `rampart_hashing_refused_total` | | callers refused with 503 (pool and queue full) |
//! | `rampart_auth_cache_lookups_total` | `cache` (`session`, `user`), `result` (`hit`, `miss`) | the authentication cache; hit rate = hits / all |
//! | `rampart_invalidation_channel_up` | | 1 while the cross-instance channel is up (or not needed), else 0 |
//!
//! No label carries personal data: `route` is the matched route's template (`/admin/users/{id}`,
//! never the path as requested; `unmatched` for paths no route has), `method` one of the
//! standard methods or `other`, `status` the answer's code.
//!
//! Off, it costs one branch per request (no clock read, no lock) and nothing in the cache.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::datastore::InvalidationStatus;
use crate::web::security::Security;

/// The `route` label of a request no route matched.
pub(crate) const UNMATCHED: &str = "unmatched";

/// Latency buckets, in seconds (a cached `/api/me` takes well under a millisecond; a sign-in
/// with Flask-Security's argon2 parameters tens of milliseconds).
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How a sign-in through `POST /login` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginOutcome {
    /// Signed in.
    Success,
    /// The password was right; the second factor is asked next.
    SecondFactor,
    /// Wrong identity or password, or the account cannot sign in.
    Failed,
    /// The form was incomplete (no password checked).
    Invalid,
    /// A rate limit refused it (429).
    Limited,
    /// The database, Redis or the hashing pool was unavailable (503).
    Unavailable,
    /// Anything else (500).
    Error,
}

impl LoginOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::SecondFactor => "second_factor",
            Self::Failed => "failed",
            Self::Invalid => "invalid",
            Self::Limited => "limited",
            Self::Unavailable => "unavailable",
            Self::Error => "error",
        }
    }
}

/// The registry and its series; one per [`Security`] (so two instances in one process, as in
/// tests, count apart).
pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    logins: IntCounterVec,
    hashing_running: IntGauge,
    hashing_queued: IntGauge,
    hashing_refused: IntCounter,
    cache_lookups: IntCounterVec,
    channel_up: IntGauge,
    /// What the counters read elsewhere (hasher, cache) were at the last scrape.
    seen: Mutex<Seen>,
}

/// Totals already added to the counters mirrored from the hasher and the cache.
#[derive(Default)]
struct Seen {
    refused: u64,
    lookups: [u64; 4],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A fresh registry with every series.
    pub(crate) fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "rampart_http_requests_total",
                "Requests answered, by method, route template and status.",
            ),
            &["method", "route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "rampart_http_request_duration_seconds",
                "Time to answer a request, by method and route template.",
            )
            .buckets(BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let logins = IntCounterVec::new(
            Opts::new("rampart_logins_total", "Password sign-ins, by outcome."),
            &["outcome"],
        )?;
        let hashing_running = IntGauge::new(
            "rampart_hashing_running",
            "Password hashes or verifications running now.",
        )?;
        let hashing_queued = IntGauge::new(
            "rampart_hashing_queued",
            "Callers waiting for a slot of the password hashing pool.",
        )?;
        let hashing_refused = IntCounter::new(
            "rampart_hashing_refused_total",
            "Callers refused with 503 because the hashing pool and its queue were full.",
        )?;
        let cache_lookups = IntCounterVec::new(
            Opts::new(
                "rampart_auth_cache_lookups_total",
                "Session and user lookups, answered from the cache (hit) or the database (miss).",
            ),
            &["cache", "result"],
        )?;
        let channel_up = IntGauge::new(
            "rampart_invalidation_channel_up",
            "1 while the cross-instance cache invalidation channel is up or not needed, else 0.",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(logins.clone()))?;
        registry.register(Box::new(hashing_running.clone()))?;
        registry.register(Box::new(hashing_queued.clone()))?;
        registry.register(Box::new(hashing_refused.clone()))?;
        registry.register(Box::new(cache_lookups.clone()))?;
        registry.register(Box::new(channel_up.clone()))?;
        // Every outcome and cache series exists from the start (at 0), so rates work at once.
        for outcome in [
            LoginOutcome::Success,
            LoginOutcome::SecondFactor,
            LoginOutcome::Failed,
            LoginOutcome::Invalid,
            LoginOutcome::Limited,
            LoginOutcome::Unavailable,
            LoginOutcome::Error,
        ] {
            let _series = logins.with_label_values(&[outcome.label()]);
        }
        for cache in ["session", "user"] {
            for result in ["hit", "miss"] {
                let _series = cache_lookups.with_label_values(&[cache, result]);
            }
        }
        Ok(Self {
            registry,
            requests,
            latency,
            logins,
            hashing_running,
            hashing_queued,
            hashing_refused,
            cache_lookups,
            channel_up,
            seen: Mutex::default(),
        })
    }

    /// Counts one answered request.
    pub(crate) fn observe_request(
        &self,
        method: &Method,
        route: &str,
        status: StatusCode,
        elapsed: Duration,
    ) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[method, route, status.as_str()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one sign-in.
    pub(crate) fn observe_login(&self, outcome: LoginOutcome) {
        self.logins.with_label_values(&[outcome.label()]).inc();
    }

    /// Reads the hasher, the cache and the channel, then renders every series.
    fn render(&self, security: &Security) -> Result<Vec<u8>, prometheus::Error> {
        let load = security.hasher().load();
        self.hashing_running
            .set(i64::try_from(load.running).unwrap_or(i64::MAX));
        self.hashing_queued
            .set(i64::try_from(load.queued).unwrap_or(i64::MAX));
        let store = security.datastore();
        let stats = store.cache().stats();
        self.channel_up.set(i64::from(
            store.invalidation_status() != InvalidationStatus::Down,
        ));
        if let Ok(mut seen) = self.seen.lock() {
            self.hashing_refused
                .inc_by(load.refused.saturating_sub(seen.refused));
            seen.refused = seen.refused.max(load.refused);
            let now = [
                stats.session_hits,
                stats.session_misses,
                stats.user_hits,
                stats.user_misses,
            ];
            let labels = [
                ["session", "hit"],
                ["session", "miss"],
                ["user", "hit"],
                ["user", "miss"],
            ];
            for ((total, before), labels) in now.iter().zip(seen.lookups.iter_mut()).zip(labels) {
                self.cache_lookups
                    .with_label_values(&labels)
                    .inc_by(total.saturating_sub(*before));
                *before = (*before).max(*total);
            }
        }
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// The `method` label: a standard method's name, else `other` (a client may send any token).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`: every series in Prometheus's text format.
pub(crate) async fn scrape(State(security): State<Security>) -> Response {
    let Some(metrics) = security.metrics() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match metrics.render(&security) {
        Ok(body) => {
            let mut response = body.into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(error) => {
            tracing::error!(%error, "cannot render the metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Starts counting what [`Metrics`] mirrors from elsewhere (the cache's lookups).
pub(crate) fn start_counting(security: &Security) {
    security.datastore().cache().count_lookups();
}

/// Keeps the metrics of a [`Security`] (none when off).
pub(crate) type SharedMetrics = Option<Arc<Metrics>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unusual_methods_share_one_label() {
        let odd = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::POST), "POST");
    }
}
