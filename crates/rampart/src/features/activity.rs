//! The account activity log, as its owner sees it (Rampart's security centre).
//!
//! Route: `GET /api/activity[?before=<id>&limit=<n>]` (session or auth token) →
//! `{"activity": [{id, event, detail, ip, device, user_agent, created_at, user_id, actor_id}],
//! "next": <id or null>}`: the user's own events, newest first, `limit` of them (default 50, at
//! most 200); `next` is the `before` of the following page, `null` on the last one.
//!
//! Events are recorded by the flows themselves (`web/activity.rs`); administrators search
//! everyone's with [`Datastore::activity_search`](crate::datastore::Datastore::activity_search).

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::json;

use crate::activity::Activity;
use crate::config::SecurityConfig;
use crate::web::context::AuthContext;
use crate::web::extract::CurrentUser;
use crate::web::security::Security;

/// Events per page unless the request asks otherwise.
pub(crate) const DEFAULT_PAGE: i64 = 50;
/// Most events per page.
pub(crate) const MAX_PAGE: i64 = 200;

pub(crate) fn router(config: &SecurityConfig) -> Router<Security> {
    Router::new().route(&config.url("/api/activity"), get(get_activity))
}

/// A page of the activity log: the events and the cursor of the next page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActivityPage {
    /// The events, newest first.
    pub events: Vec<Activity>,
    /// The `before` of the next page, `None` on the last one.
    pub next: Option<i64>,
}

/// The events of `user_id`, newest first: `limit` (clamped to 1..=200) older than `before`.
///
/// # Errors
///
/// The datastore's.
pub async fn activity_page(
    security: &Security,
    user_id: i64,
    before: Option<i64>,
    limit: Option<i64>,
) -> crate::Result<ActivityPage> {
    let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    // One more than asked tells whether another page follows.
    let mut events = security
        .datastore()
        .activity_of_user(user_id, before, limit + 1)
        .await?;
    let more = events.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok(ActivityPage { events, next })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Events older than this id (the previous page's `next`).
    before: Option<i64>,
    /// How many events (default 50, clamped to 1..=200).
    limit: Option<i64>,
}

/// The user's activity log, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/activity",
    tag = "activity",
    params(PageQuery),
    responses((status = 200, description = "A page of events.", body = ActivityAnswer)),
    security(("signed_in" = []))
)]
async fn get_activity(
    ctx: AuthContext,
    user: CurrentUser,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> crate::Result<Response> {
    let Ok(Query(query)) = query else {
        return Ok(crate::web::reply::json_errors(
            StatusCode::BAD_REQUEST,
            &["before and limit must be whole numbers.".to_owned()],
            None,
        ));
    };
    let page = activity_page(ctx.security(), user.user.id, query.before, query.limit).await?;
    Ok(crate::web::reply::json(
        StatusCode::OK,
        json!({ "activity": page.events, "next": page.next }),
    ))
}

/// The operations of this feature, where the configuration mounts them.
pub(crate) fn api(config: &SecurityConfig) -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(get_activity))]
    struct Api;
    crate::web::openapi::mount(
        <Api as utoipa::OpenApi>::openapi(),
        &[("/api/activity", config.url("/api/activity"))],
    )
}

/// The answer of `GET /api/activity`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `get_activity` renders")]
pub(crate) struct ActivityAnswer {
    /// The events.
    activity: Vec<crate::activity::Activity>,
    /// `before` for the next page (`null` on the last).
    next: Option<i64>,
}
