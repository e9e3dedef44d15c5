//! The test app's own routes (guarded endpoints the tests call).

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::Response;
use rampart::CurrentUser;
use serde_json::{Value, json};

fn datetime(value: Option<time::PrimitiveDateTime>) -> Value {
    value.map_or(Value::Null, |t| Value::String(t.to_string()))
}

pub(super) async fn me(user: CurrentUser) -> Response {
    let u = &user.user;
    rampart::reply::json(
        StatusCode::OK,
        json!({"user": {
            "email": u.email,
            "username": u.username,
            "uuid": u.fs_uniquifier,
            "active": u.active,
            "confirmed_at": datetime(u.confirmed_at),
            "current_login_at": datetime(u.current_login_at),
            "last_login_at": datetime(u.last_login_at),
            "current_login_ip": u.current_login_ip,
            "last_login_ip": u.last_login_ip,
            "login_count": u.login_count,
            "roles": user.role_names(),
            "permissions": user.permissions(),
            "method": user.method.as_str(),
        }}),
    )
}

pub(super) async fn admin() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "admin area"}))
}

pub(super) async fn write() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "you have user-write"}))
}

pub(super) async fn any_role() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "one of the roles"}))
}

pub(super) async fn anonymous() -> Response {
    rampart::reply::json(StatusCode::OK, json!({"message": "anonymous"}))
}

pub(super) async fn basic(user: CurrentUser) -> Response {
    rampart::reply::json(
        StatusCode::OK,
        json!({"email": user.user.email, "method": user.method.as_str()}),
    )
}

pub(super) async fn echo(user: CurrentUser, body: Bytes) -> Response {
    rampart::reply::json(
        StatusCode::OK,
        json!({"email": user.user.email, "received": body.len()}),
    )
}
