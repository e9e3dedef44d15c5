//! The account security centre's pages (the framework's JSON API is `rampart`'s: `/api/sessions`,
//! `/api/activity`, `/api/account/export`):
//!
//! - `POST /dashboard/security/sessions/<id>/revoke` ends one session from the security page's
//!   sessions list (the CSRF token checked by the security layer); another user's id is a 404;
//! - `GET /dashboard/security/activity[?before=<id>]`: the "Account activity" page, newest first,
//!   [`PAGE_SIZE`] a page;
//! - `GET /admin/activity` (role `Admin`): everyone's events with filters (`user` — an email or
//!   username —, `event`, `from` and `until` dates, `YYYY-MM-DD`), and `GET /api/admin/activity`
//!   with the same filters as JSON (`user_id` instead of `user`; `before` pages).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use rampart::{Activity, ActivityEvent, ActivityFilter, roles_required};
use serde::Deserialize;
use serde_json::json;

use super::{ADMIN_ROLE, AdminSignedIn, HandlerError, SignedIn, format_moment, render};
use crate::AppState;

/// Events per page on the activity pages.
pub const PAGE_SIZE: i64 = 25;

/// The security centre's app routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard/security/sessions/{id}/revoke",
            post(post_revoke),
        )
        .route("/dashboard/security/activity", get(get_activity))
        .route("/admin/activity", get(get_admin_activity))
        .route(
            "/api/admin/activity",
            get(get_admin_activity_json).route_layer(roles_required([ADMIN_ROLE])),
        )
}

/// The security page (the framework's change-password view).
fn security_page(state: &AppState) -> String {
    let config = state.security.config();
    config.url(&config.change.url)
}

async fn post_revoke(
    State(state): State<AppState>,
    page: SignedIn,
    fresh: Result<rampart::FreshUser, Response>,
    Path(id): Path<String>,
) -> Result<Response, HandlerError> {
    if fresh.is_err() {
        return super::reauthenticate_for_security_page(&state, &page).await;
    }
    let current = rampart::list_sessions(&page.ctx, &page.user.user)
        .await?
        .into_iter()
        .any(|s| s.id == id && s.current);
    if !rampart::revoke_session(&page.ctx, &page.user.user, &id).await? {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    if current {
        let config = state.security.config();
        return Ok(rampart::reply::redirect(&config.url(&config.login.url)));
    }
    page.ctx
        .flash("success", "That session has been signed out.")
        .await?;
    Ok(rampart::reply::redirect(&format!(
        "{}#settings-sessions",
        security_page(&state)
    )))
}

/// One event as the pages show it.
fn row(event: &Activity, who: Option<&str>) -> minijinja::Value {
    let method = event
        .detail
        .as_ref()
        .and_then(|d| d.get("method"))
        .and_then(|m| m.as_str())
        .map(str::to_owned);
    let role = event
        .detail
        .as_ref()
        .and_then(|d| d.get("role"))
        .and_then(|m| m.as_str())
        .map(str::to_owned);
    context! {
        id => event.id,
        event => event.event,
        label => label(&event.event, method.as_deref(), role.as_deref()),
        when => format_moment(Some(event.created_at)),
        ip => event.ip,
        device => event.device,
        user_id => event.user_id,
        actor_id => event.actor_id,
        who => who,
    }
}

/// The words for an event.
pub fn label(event: &str, method: Option<&str>, role: Option<&str>) -> String {
    let how = |m: Option<&str>| match m {
        Some("password") => " with a password",
        Some("code") => " with a one-time code",
        Some("passkey") => " with a passkey",
        Some("provider") => " with an identity provider",
        Some("remember_me") => " (remembered browser)",
        Some("registration") => " after signing up",
        _ => "",
    };
    match event {
        "sign_in" => format!("Signed in{}", how(method)),
        "sign_in_failed" => "Failed sign-in attempt".to_owned(),
        "sign_out" => "Signed out".to_owned(),
        "new_device" => "Sign-in from a new device".to_owned(),
        "session_revoked" => "A session was signed out".to_owned(),
        "other_sessions_revoked" => "Signed out everywhere else".to_owned(),
        "password_changed" => "Password changed".to_owned(),
        "password_reset" => "Password reset".to_owned(),
        "email_changed" => "Email address changed".to_owned(),
        "username_changed" => "Username changed".to_owned(),
        "two_factor_enabled" => "Two-factor sign-in turned on".to_owned(),
        "two_factor_disabled" => "Two-factor sign-in turned off".to_owned(),
        "recovery_codes_generated" => "New recovery codes".to_owned(),
        "passkey_added" => "Passkey added".to_owned(),
        "passkey_removed" => "Passkey removed".to_owned(),
        "provider_linked" => "Identity provider linked".to_owned(),
        "provider_unlinked" => "Identity provider unlinked".to_owned(),
        "account_locked" => "Sign-in paused after too many attempts".to_owned(),
        "account_unlocked" => "Account unlocked".to_owned(),
        "role_added" => format!("Role {} given by an administrator", role.unwrap_or("?")),
        "role_removed" => format!("Role {} removed by an administrator", role.unwrap_or("?")),
        "account_deactivated" => "Account deactivated by an administrator".to_owned(),
        "account_activated" => "Account reactivated by an administrator".to_owned(),
        "account_deleted" => "Account deleted".to_owned(),
        other => other.replace('_', " "),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    before: Option<String>,
}

async fn get_activity(
    State(state): State<AppState>,
    page: SignedIn,
    Query(query): Query<PageQuery>,
) -> Result<Response, HandlerError> {
    let before = query.before.as_deref().and_then(|b| b.trim().parse().ok());
    let found =
        rampart::activity_page(&state.security, page.user.user.id, before, Some(PAGE_SIZE)).await?;
    let events: Vec<_> = found.events.iter().map(|e| row(e, None)).collect();
    render(
        &page.ctx,
        "app/activity.html",
        context! { events => events, next => found.next, first_page => before.is_none() },
    )
    .await
}

/// The admin filters, as typed in the form.
#[derive(Debug, Default, Deserialize)]
struct AdminQuery {
    user: Option<String>,
    user_id: Option<String>,
    event: Option<String>,
    from: Option<String>,
    until: Option<String>,
    before: Option<String>,
}

/// The filter of an admin query; `Err` with a message for a value that cannot be used.
async fn filter(
    state: &AppState,
    query: &AdminQuery,
) -> Result<Result<ActivityFilter, String>, HandlerError> {
    let text = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut filter = ActivityFilter::default();
    if let Some(user) = text(&query.user) {
        match state.security.datastore().user_by_identity(&user).await? {
            Some(found) => filter.user_id = Some(found.id),
            None => return Ok(Err(format!("There is no user {user:?}."))),
        }
    }
    if let Some(id) = text(&query.user_id) {
        match id.parse() {
            Ok(id) => filter.user_id = Some(id),
            Err(_) => return Ok(Err("user_id must be a number.".to_owned())),
        }
    }
    if let Some(event) = text(&query.event) {
        if !ActivityEvent::NAMES.contains(&event.as_str()) {
            return Ok(Err(format!("There is no event {event:?}.")));
        }
        filter.event = Some(event);
    }
    let date =
        |v: &str| time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"));
    if let Some(from) = text(&query.from) {
        match date(&from) {
            Ok(d) => filter.from = Some(d.midnight()),
            Err(_) => return Ok(Err("From must be a date (YYYY-MM-DD).".to_owned())),
        }
    }
    if let Some(until) = text(&query.until) {
        match date(&until).ok().and_then(|d| d.next_day()) {
            Some(d) => filter.until = Some(d.midnight()),
            None => return Ok(Err("Until must be a date (YYYY-MM-DD).".to_owned())),
        }
    }
    if let Some(before) = text(&query.before) {
        match before.parse() {
            Ok(b) => filter.before_id = Some(b),
            Err(_) => return Ok(Err("before must be a number.".to_owned())),
        }
    }
    Ok(Ok(filter))
}

/// A page of events matching `filter` (one more is read to know whether another page follows).
async fn search(
    state: &AppState,
    filter: &ActivityFilter,
) -> Result<(Vec<Activity>, Option<i64>), HandlerError> {
    let mut events = state
        .security
        .datastore()
        .activity_search(filter, PAGE_SIZE + 1)
        .await?;
    let more = events.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    events.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
    let next = if more {
        events.last().map(|e| e.id)
    } else {
        None
    };
    Ok((events, next))
}

async fn get_admin_activity(
    State(state): State<AppState>,
    AdminSignedIn(admin): AdminSignedIn,
    Query(query): Query<AdminQuery>,
) -> Result<Response, HandlerError> {
    let (events, next, error) = match filter(&state, &query).await? {
        Ok(filter) => {
            let (events, next) = search(&state, &filter).await?;
            (events, next, None)
        }
        Err(message) => (Vec::new(), None, Some(message)),
    };
    let mut rows = Vec::with_capacity(events.len());
    for event in &events {
        let who = match event.user_id {
            Some(id) => state
                .security
                .datastore()
                .user_by_id(id)
                .await?
                .map(|u| u.email),
            None => None,
        };
        rows.push(row(event, who.as_deref()));
    }
    let next_url = next.map(|next| next_page_url(&query, next));
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut response = render(
        &admin.ctx,
        "app/admin_activity.html",
        context! {
            events => rows,
            next_url => next_url,
            error => error,
            names => ActivityEvent::NAMES,
            q => context! { user => query.user, event => query.event, from => query.from, until => query.until },
        },
    )
    .await?;
    *response.status_mut() = status;
    Ok(response)
}

/// `/admin/activity?…` with the same filters, from `before` on.
fn next_page_url(query: &AdminQuery, before: i64) -> String {
    let mut next = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("user", &query.user),
        ("event", &query.event),
        ("from", &query.from),
        ("until", &query.until),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.trim().is_empty()) {
            next.append_pair(key, value);
        }
    }
    next.append_pair("before", &before.to_string());
    format!("/admin/activity?{}", next.finish())
}

async fn get_admin_activity_json(
    State(state): State<AppState>,
    Query(query): Query<AdminQuery>,
) -> Result<Response, HandlerError> {
    match filter(&state, &query).await? {
        Ok(filter) => {
            let (events, next) = search(&state, &filter).await?;
            Ok(rampart::reply::json(
                StatusCode::OK,
                json!({ "activity": events, "next": next }),
            ))
        }
        Err(message) => Ok(rampart::reply::json_errors(
            StatusCode::BAD_REQUEST,
            &[message],
            None,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_words() {
        for name in ActivityEvent::NAMES {
            assert!(!label(name, None, None).contains('_'), "{name}");
        }
        assert_eq!(
            label("sign_in", Some("passkey"), None),
            "Signed in with a passkey"
        );
    }
}
