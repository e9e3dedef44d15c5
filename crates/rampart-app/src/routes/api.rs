//! The app's JSON API, in Flask-Security's envelope (`{"meta":{"code":…},"response":{…}}`):
//! `GET /api/me`, `GET /api/admin` (role `Admin`), `GET /api/write` (permission `user-write`),
//! `GET|POST /api/profile` and `DELETE /api/account`. Session requests that change something
//! carry the CSRF header (checked by the security layer); token requests need none.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use rampart::reply::{json, json_errors, json_of, json_ok};
use rampart::{
    AuthContext, AuthUser, CurrentUser, FormInput, PermissionName, RequirePermission,
    roles_required,
};
use serde::Serialize;
use serde_json::{Map, Value, json};
use time::PrimitiveDateTime;

use super::HandlerError;
use crate::AppState;
use crate::account::PasswordRefused;

/// The permission `user-write`, for [`RequirePermission`].
#[derive(Debug)]
pub struct UserWrite;

impl PermissionName for UserWrite {
    const NAME: &'static str = "user-write";
}

/// The `/api/*` routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/me", get(me))
        .route(
            "/api/admin",
            get(admin).route_layer(roles_required(["Admin"])),
        )
        .route("/api/write", get(write))
        .route("/api/profile", get(get_profile).post(post_profile))
        .route("/api/account", delete(delete_account))
}

/// A datetime as Python's `isoformat()` writes a naive one: microseconds only when not zero.
pub fn isoformat(at: PrimitiveDateTime) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(26);
    let (date, t) = (at.date(), at.time());
    // Writing to a `String` cannot fail.
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if t.microsecond() != 0 {
        let _ = write!(out, ".{:06}", t.microsecond());
    }
    out
}

/// The user as `GET /api/me` shows it (keys in alphabetical order, as Flask's `jsonify`).
#[derive(Debug, Serialize)]
pub struct MePayload<'a> {
    active: bool,
    confirmed_at: Option<String>,
    create_datetime: String,
    current_login_at: Option<String>,
    current_login_ip: Option<&'a str>,
    email: &'a str,
    id: i64,
    is_accepted: bool,
    last_login_at: Option<String>,
    last_login_ip: Option<&'a str>,
    login_count: Option<i64>,
    permissions: Vec<&'a str>,
    roles: Vec<&'a str>,
    tf_primary_method: Option<&'a str>,
    username: Option<&'a str>,
    uuid: &'a str,
}

/// The user as `GET /api/me` shows it.
pub fn me_payload(user: &AuthUser) -> MePayload<'_> {
    let u = &user.user;
    let mut roles: Vec<&str> = user.roles.iter().map(|r| r.name.as_str()).collect();
    roles.sort_unstable();
    let mut permissions: Vec<&str> = user
        .roles
        .iter()
        .flat_map(|r| r.permissions.iter().map(String::as_str))
        .collect();
    permissions.sort_unstable();
    permissions.dedup();
    MePayload {
        active: u.active,
        confirmed_at: u.confirmed_at.map(isoformat),
        create_datetime: isoformat(u.create_datetime),
        current_login_at: u.current_login_at.map(isoformat),
        current_login_ip: u.current_login_ip.as_deref(),
        email: &u.email,
        id: u.id,
        is_accepted: true,
        last_login_at: u.last_login_at.map(isoformat),
        last_login_ip: u.last_login_ip.as_deref(),
        login_count: u.login_count,
        permissions,
        roles,
        tf_primary_method: u.tf_primary_method.as_deref(),
        username: u.username.as_deref(),
        uuid: &u.fs_uniquifier,
    }
}

fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

async fn me(user: CurrentUser) -> Response {
    #[derive(Serialize)]
    struct Me<'a> {
        user: MePayload<'a>,
    }
    json_of(
        StatusCode::OK,
        &Me {
            user: me_payload(&user),
        },
    )
}

async fn admin(State(state): State<AppState>) -> Result<Response, HandlerError> {
    let count = state.security.datastore().count_users().await?;
    Ok(json_ok(object([
        ("message", Value::from("admin area")),
        ("user_count", Value::from(count)),
    ])))
}

async fn write(_user: RequirePermission<UserWrite>) -> Response {
    json_ok(object([("message", Value::from("you have user-write"))]))
}

async fn get_profile(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, HandlerError> {
    let profile = crate::profile::load(&state.security, user.user.id).await?;
    Ok(json_ok(object([("profile", profile.to_json())])))
}

async fn post_profile(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> Result<Response, HandlerError> {
    let body = match rampart::reply::parse_json_object(&body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let before = crate::profile::load(&state.security, user.user.id).await?;
    let mut body = body;
    // A profile sent back as it was read may carry its avatar unchanged.
    if let Some(Value::String(avatar)) = body.get("avatar")
        && before.avatar.as_deref() == Some(avatar.as_str())
    {
        body.remove("avatar");
    }
    let update = match crate::profile::validate(&body, state.security.clock().now().date()) {
        Ok(update) => update,
        Err(errors) => {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                json!({"errors": errors.messages(), "field_errors": errors.field_errors().to_json()}),
            ));
        }
    };
    let profile = crate::profile::update(&state.security, user.user.id, &update).await?;
    if before.avatar != profile.avatar {
        // A picture uploaded on the profile page, removed through the API.
        state
            .media
            .delete_avatar(user.user.id, before.avatar.as_deref())
            .await;
    }
    Ok(json_ok(object([("profile", profile.to_json())])))
}

async fn delete_account(
    State(state): State<AppState>,
    ctx: AuthContext,
    user: CurrentUser,
    body: Bytes,
) -> Result<Response, HandlerError> {
    let body = match rampart::reply::parse_json_object(&body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let mut input = FormInput::from_json(body);
    let password = input.text("password");
    let errors = input.take_errors();
    if !errors.is_empty() {
        return Ok(json_errors(StatusCode::BAD_REQUEST, &[], Some(&errors)));
    }
    match crate::account::delete_account(&ctx, &state.media, &user.user, password.as_deref())
        .await?
    {
        Ok(()) => {
            rampart::logout_user(&ctx).await?;
            Ok(json_ok(object([("deleted", Value::Bool(true))])))
        }
        Err(PasswordRefused::Errors(errors)) => {
            Ok(json_errors(StatusCode::BAD_REQUEST, &[], Some(&errors)))
        }
        Err(PasswordRefused::Limited(limited)) => Ok(limited.into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_look_like_python_isoformat() {
        let whole = time::macros::datetime!(2026-11-26 07:11:29);
        assert_eq!(isoformat(whole), "2026-11-26T07:11:29");
        let fraction = time::macros::datetime!(2026-11-26 07:11:30.128618);
        assert_eq!(isoformat(fraction), "2026-11-26T07:11:30.128618");
        let padded = time::macros::datetime!(0987-01-02 03:04:05.000042);
        assert_eq!(isoformat(padded), "0987-01-02T03:04:05.000042");
    }
}
