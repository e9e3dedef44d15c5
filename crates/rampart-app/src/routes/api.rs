//! The app's JSON API, in Flask-Security's envelope (`{"meta":{"code":…},"response":{…}}`):
//! `GET /api/me`, `GET /api/admin` (role `Admin`), `GET /api/write` (permission `user-write`),
//! `GET|POST /api/profile` and `DELETE /api/account`. Session requests that change something
//! carry the CSRF header (checked by the security layer); token requests need none.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use rampart::reply::{json, json_errors, json_ok};
use rampart::{
    AuthContext, AuthUser, CurrentUser, FormInput, PermissionName, RequirePermission,
    roles_required,
};
use serde_json::{Map, Value, json};
use time::PrimitiveDateTime;
use time::macros::format_description;

use super::HandlerError;
use crate::AppState;

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
    let base = at
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    match at.microsecond() {
        0 => base,
        micros => format!("{base}.{micros:06}"),
    }
}

/// The user as `GET /api/me` shows it.
pub fn me_payload(user: &AuthUser) -> Value {
    let u = &user.user;
    let at = |v: Option<PrimitiveDateTime>| v.map_or(Value::Null, |v| Value::String(isoformat(v)));
    json!({
        "active": u.active,
        "confirmed_at": at(u.confirmed_at),
        "create_datetime": isoformat(u.create_datetime),
        "current_login_at": at(u.current_login_at),
        "current_login_ip": u.current_login_ip,
        "email": u.email,
        "id": u.id,
        "is_accepted": true,
        "last_login_at": at(u.last_login_at),
        "last_login_ip": u.last_login_ip,
        "login_count": u.login_count,
        "permissions": user.permissions(),
        "roles": user.role_names(),
        "tf_primary_method": u.tf_primary_method,
        "username": u.username,
        "uuid": u.fs_uniquifier,
    })
}

fn object(pairs: impl IntoIterator<Item = (&'static str, Value)>) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

async fn me(user: CurrentUser) -> Response {
    json_ok(object([("user", me_payload(&user))]))
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
    let body = match rampart::forms::parse_json_object(&body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let update = match crate::profile::validate(&body) {
        Ok(update) => update,
        Err(errors) => {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                json!({"errors": errors.messages(), "field_errors": errors.field_errors().to_json()}),
            ));
        }
    };
    let before = crate::profile::load(&state.security, user.user.id).await?;
    let profile = crate::profile::update(&state.security, user.user.id, &update).await?;
    if before.avatar != profile.avatar {
        // A picture uploaded on the profile page, replaced through the API.
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
    let body = match rampart::forms::parse_json_object(&body) {
        Ok(body) => body,
        Err(response) => return Ok(response),
    };
    let mut input = FormInput::from_json(body);
    let password = input.text("password");
    let errors = input.take_errors();
    if !errors.is_empty() {
        return Ok(json_errors(StatusCode::BAD_REQUEST, &[], Some(&errors)));
    }
    let security = ctx.security().clone();
    match crate::account::delete_account(&security, &state.media, &user.user, password.as_deref())
        .await?
    {
        Ok(()) => {
            rampart::logout_user(&ctx).await?;
            Ok(json_ok(object([("deleted", Value::Bool(true))])))
        }
        Err(errors) => Ok(json_errors(StatusCode::BAD_REQUEST, &[], Some(&errors))),
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
    }
}
