//! Health checks for load balancers and orchestrators: [`Security::health_router`] serves
//!
//! - `GET /healthz`: `200 {"status":"alive"}` whenever the process answers (liveness);
//! - `GET /readyz`: `200` when the instance can serve — the database answers (within
//!   [`READY_TIMEOUT`]), the framework's migrations are all applied, and the cache invalidation
//!   channel is up (or not needed: SQLite) — else `503` with `Retry-After`. Either way the body
//!   says which check failed, without any detail of the database:
//!   `{"status":"ready"|"unavailable","checks":{"database":"ok"|"unreachable",
//!   "migrations":"ok"|"pending"|"unknown","invalidation":"local"|"up"|"down"}}`.
//!
//! - `GET /metrics` (only when [metrics](crate::SecurityBuilder::metrics) are on): Prometheus's
//!   text format (see `web/metrics.rs`). Keep it off the public internet (the reverse proxy
//!   should not forward it).
//!
//! Mount the router **outside** the security layer, so a probe is never refused by the host
//! check or rate limits and never touches a session: the sample app serves
//! `security.health_router().fallback_service(app_with_layers)` (merging it after the layer
//! would take unknown paths away from the layer's error pages).

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::datastore::InvalidationStatus;
use crate::web::security::Security;

/// How long `/readyz` waits for the database.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// The `Retry-After` of a `503` from `/readyz`, in seconds.
const RETRY_AFTER_SECONDS: &str = "5";

impl Security {
    /// `GET /healthz`: `200 {"status":"alive"}` while the process answers. `GET /readyz`:
    /// `200` when the database answers (within 2 s), the framework's migrations are applied and
    /// the cache invalidation channel is up (or not needed: SQLite); else `503` with
    /// `Retry-After` and the failing check named in
    /// `{"status":…,"checks":{"database":…,"migrations":…,"invalidation":…}}`.
    ///
    /// With [metrics](crate::SecurityBuilder::metrics) on, `GET /metrics` too (Prometheus's text
    /// format).
    ///
    /// Mount it outside the security layer (so a probe is never refused by the host check or
    /// the rate limits), e.g. `security.health_router().fallback_service(app_with_layers)`.
    pub fn health_router<S>(&self) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz));
        let router = if self.metrics_enabled() {
            router.route("/metrics", get(crate::web::metrics::scrape))
        } else {
            router
        };
        router.with_state(self.clone())
    }
}

async fn healthz() -> Response {
    let mut response = axum::Json(json!({ "status": "alive" })).into_response();
    no_store(&mut response);
    response
}

async fn readyz(State(security): State<Security>) -> Response {
    let store = security.datastore();
    let database = matches!(
        tokio::time::timeout(READY_TIMEOUT, store.ping()).await,
        Ok(Ok(()))
    );
    let migrations = if database {
        match tokio::time::timeout(READY_TIMEOUT, store.pending_migrations()).await {
            Ok(Ok(0)) => "ok",
            Ok(Ok(_)) => "pending",
            _ => "unknown",
        }
    } else {
        "unknown"
    };
    let invalidation = store.invalidation_status();
    let ready = database && migrations == "ok" && invalidation != InvalidationStatus::Down;
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": {
            "database": if database { "ok" } else { "unreachable" },
            "migrations": migrations,
            "invalidation": invalidation.to_string(),
        },
    });
    if !ready {
        tracing::warn!(checks = %body["checks"], "not ready");
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut response = (status, axum::Json(body)).into_response();
    no_store(&mut response);
    if !ready {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(RETRY_AFTER_SECONDS),
        );
    }
    response
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}
