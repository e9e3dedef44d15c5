//! The admin area (role `Admin`, browser sessions): `GET /admin/users` lists users with search
//! (`q`, a part of the email or username) and pages (`page`, [`USERS_PER_PAGE`] a page), with
//! their roles, confirmation and activity; forms on each row activate or deactivate the user and
//! add or remove roles. Everyone else gets the 403 page.
//!
//! Deactivating signs the user out at once (the security layer refuses inactive users, and their
//! sessions are deleted) and they cannot sign in until reactivated. Admins cannot deactivate
//! themselves or take away their own `Admin` role, so the last admin cannot lock everyone out by
//! accident.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use minijinja::context;
use serde::Deserialize;

use super::{ADMIN_ROLE, AdminSignedIn, HandlerError, format_date, format_moment, render};
use crate::AppState;

/// Users shown per page.
pub const USERS_PER_PAGE: i64 = 10;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin",
            get(|_: AdminSignedIn| async { rampart::reply::redirect("/admin/users") }),
        )
        .route("/admin/users", get(list))
        .route("/admin/users/{id}/activate", post(activate))
        .route("/admin/users/{id}/deactivate", post(deactivate))
        .route("/admin/users/{id}/roles/add", post(add_role))
        .route("/admin/users/{id}/roles/remove", post(remove_role))
}

/// The list's query string, also posted back by the row forms to return to the same page.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    page: Option<String>,
}

impl ListQuery {
    fn search(&self) -> Option<&str> {
        self.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    }

    fn page(&self) -> i64 {
        self.page
            .as_deref()
            .and_then(|p| p.trim().parse::<i64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
    }

    /// `/admin/users?…` for this search and page.
    fn url(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if let Some(q) = self.search() {
            query.append_pair("q", q);
        }
        if self.page() > 1 {
            query.append_pair("page", &self.page().to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            "/admin/users".to_owned()
        } else {
            format!("/admin/users?{query}")
        }
    }
}

/// A row form: the list's query and, for role changes, the role.
#[derive(Debug, Default, Deserialize)]
struct RowForm {
    q: Option<String>,
    page: Option<String>,
    role: Option<String>,
    /// `yes` once the admin confirmed a deactivation (it signs the user out at once).
    confirm: Option<String>,
}

impl RowForm {
    fn back(&self) -> String {
        ListQuery {
            q: self.q.clone(),
            page: self.page.clone(),
        }
        .url()
    }
}

async fn list(
    State(state): State<AppState>,
    AdminSignedIn(page): AdminSignedIn,
    Query(query): Query<ListQuery>,
) -> Result<Response, HandlerError> {
    let datastore = state.security.datastore();
    let search = query.search();
    let mut number = query.page();
    let (mut users, mut total) = datastore
        .list_users(search, (number - 1) * USERS_PER_PAGE, USERS_PER_PAGE)
        .await?;
    let pages = ((total + USERS_PER_PAGE - 1) / USERS_PER_PAGE).max(1);
    if number > pages {
        // Past the end (e.g. after a search narrowed the list): show the last page.
        number = pages;
        (users, total) = datastore
            .list_users(search, (number - 1) * USERS_PER_PAGE, USERS_PER_PAGE)
            .await?;
    }
    let all_roles: Vec<String> = datastore
        .roles()
        .await?
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut rows = Vec::with_capacity(users.len());
    for user in &users {
        let roles: Vec<String> = datastore
            .user_roles(user.id)
            .await?
            .into_iter()
            .map(|r| r.name)
            .collect();
        let addable: Vec<&String> = all_roles.iter().filter(|r| !roles.contains(r)).collect();
        let avatar = crate::profile::load(&state.security, user.id).await?.avatar;
        rows.push(context! {
            id => user.id,
            email => user.email,
            username => user.username,
            active => user.active,
            confirmed => user.confirmed_at.is_some(),
            roles => roles,
            addable_roles => addable,
            login_count => user.login_count.unwrap_or(0),
            last_login => format_moment(user.current_login_at),
            created => format_date(user.create_datetime),
            avatar_url => avatar,
            is_self => user.id == page.user.user.id,
        });
    }
    let first = if total == 0 {
        0
    } else {
        (number - 1) * USERS_PER_PAGE + 1
    };
    render(
        &page.ctx,
        "app/admin_users.html",
        context! {
            users => rows,
            total => total,
            q => search.unwrap_or_default(),
            page => number,
            pages => pages,
            first => first,
            last => first + i64::try_from(users.len()).unwrap_or(0) - 1,
        },
    )
    .await
}

/// The target user, or the 404 page.
async fn target(state: &AppState, id: i64) -> Result<Option<rampart::User>, HandlerError> {
    Ok(state.security.datastore().user_by_id(id).await?)
}

async fn set_active(
    state: &AppState,
    admin: &super::SignedIn,
    id: i64,
    form: &RowForm,
    active: bool,
) -> Result<Response, HandlerError> {
    let Some(user) = target(state, id).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let datastore = state.security.datastore();
    if user.id == admin.user.user.id {
        admin
            .ctx
            .flash("error", "You can't deactivate your own account.")
            .await?;
        return Ok(rampart::reply::redirect(&form.back()));
    }
    if !active && form.confirm.as_deref() != Some("yes") {
        admin
            .ctx
            .flash(
                "error",
                &format!(
                    "{} was not deactivated: confirm it with “Yes, deactivate”.",
                    user.email
                ),
            )
            .await?;
        return Ok(rampart::reply::redirect(&form.back()));
    }
    // The change and its record, in one transaction.
    state
        .security
        .set_active_recorded(
            user.id,
            active,
            Some(admin.user.user.id),
            Some(admin.ctx.device()),
        )
        .await?;
    let message = if active {
        format!("{} has been activated and can sign in again.", user.email)
    } else {
        datastore.delete_sessions_of_user(user.id, None).await?;
        datastore.remember_series_delete_of_user(user.id).await?;
        format!(
            "{} has been deactivated: they are signed out and can't sign in until reactivated.",
            user.email
        )
    };
    tracing::info!(
        admin = admin.user.user.id,
        user = user.id,
        active,
        "admin changed activation"
    );
    admin.ctx.flash("success", &message).await?;
    Ok(rampart::reply::redirect(&form.back()))
}

async fn activate(
    State(state): State<AppState>,
    AdminSignedIn(admin): AdminSignedIn,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result<Response, HandlerError> {
    set_active(&state, &admin, id, &form, true).await
}

async fn deactivate(
    State(state): State<AppState>,
    AdminSignedIn(admin): AdminSignedIn,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result<Response, HandlerError> {
    set_active(&state, &admin, id, &form, false).await
}

async fn add_role(
    State(state): State<AppState>,
    AdminSignedIn(admin): AdminSignedIn,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result<Response, HandlerError> {
    let Some(user) = target(&state, id).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let role = form.role.as_deref().map(str::trim).unwrap_or_default();
    let message = match state
        .security
        .change_role_recorded(
            user.id,
            role,
            true,
            Some(admin.user.user.id),
            Some(admin.ctx.device()),
        )
        .await
    {
        Ok(true) => (
            "success",
            format!("{} now has the role {role}.", user.email),
        ),
        Ok(false) => (
            "info",
            format!("{} already had the role {role}.", user.email),
        ),
        Err(rampart::Error::Datastore(error)) if error.is_not_found() => {
            ("error", format!("There is no role {role:?}."))
        }
        Err(error) => return Err(error.into()),
    };
    admin.ctx.flash(message.0, &message.1).await?;
    Ok(rampart::reply::redirect(&form.back()))
}

async fn remove_role(
    State(state): State<AppState>,
    AdminSignedIn(admin): AdminSignedIn,
    Path(id): Path<i64>,
    axum::Form(form): axum::Form<RowForm>,
) -> Result<Response, HandlerError> {
    let Some(user) = target(&state, id).await? else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let role = form.role.as_deref().map(str::trim).unwrap_or_default();
    if user.id == admin.user.user.id && role == ADMIN_ROLE {
        admin
            .ctx
            .flash("error", "You can't take away your own Admin role.")
            .await?;
        return Ok(rampart::reply::redirect(&form.back()));
    }
    let removed = state
        .security
        .change_role_recorded(
            user.id,
            role,
            false,
            Some(admin.user.user.id),
            Some(admin.ctx.device()),
        )
        .await?;
    let message = if removed {
        (
            "success",
            format!("{} no longer has the role {role}.", user.email),
        )
    } else {
        (
            "info",
            format!("{} did not have the role {role}.", user.email),
        )
    };
    admin.ctx.flash(message.0, &message.1).await?;
    Ok(rampart::reply::redirect(&form.back()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_url_keeps_search_and_page() {
        let query = ListQuery {
            q: Some(" ada & co ".into()),
            page: Some("3".into()),
        };
        assert_eq!(query.url(), "/admin/users?q=ada+%26+co&page=3");
        assert_eq!(ListQuery::default().url(), "/admin/users");
        let bad = ListQuery {
            q: Some("".into()),
            page: Some("-2".into()),
        };
        assert_eq!(bad.page(), 1);
        assert_eq!(bad.url(), "/admin/users");
    }
}
