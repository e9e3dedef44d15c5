//! CSRF protection: a synchronizer token bound to the session (Flask-WTF's format: the session
//! holds a random secret, clients send it signed), accepted from a form field `csrf_token` or the
//! `X-XSRF-Token` / `X-CSRF-Token` / `X-CSRFToken` headers. Token-authenticated requests and JSON
//! requests without a signed-in session are exempt (they cannot be forged cross-site).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::response::Response;
use subtle::ConstantTimeEq;

use crate::context::{AuthContext, AuthMethod};
use crate::layer::{is_mutating, render_error};

const SESSION_KEY: &str = "csrf_token";
const SALT: &str = "wtf-csrf-token";
const HEADERS: [&str; 3] = ["x-xsrf-token", "x-csrf-token", "x-csrftoken"];
/// The form field carrying the token.
pub const FORM_FIELD: &str = "csrf_token";

/// The session's CSRF token, creating the session secret if needed.
pub(crate) async fn token(ctx: &AuthContext) -> crate::Result<String> {
    let raw = match ctx.session.get::<String>(SESSION_KEY).await? {
        Some(raw) => raw,
        None => {
            let raw = crate::token::random_hex(20);
            ctx.session.insert(SESSION_KEY, &raw).await?;
            raw
        }
    };
    sign(ctx, &raw)
}

fn sign(ctx: &AuthContext, raw: &str) -> crate::Result<String> {
    Ok(ctx
        .security
        .signer()
        .sign(SALT, &raw, ctx.security.clock().now())?)
}

/// Replaces the session secret (on login), returning the new token.
pub(crate) async fn rotate(ctx: &AuthContext) -> crate::Result<String> {
    let raw = crate::token::random_hex(20);
    ctx.session.insert(SESSION_KEY, &raw).await?;
    sign(ctx, &raw)
}

/// Checks a presented token against the session; `Err` holds the message key.
pub(crate) async fn verify(ctx: &AuthContext, presented: Option<&str>) -> Result<(), &'static str> {
    let Some(presented) = presented.filter(|t| !t.is_empty()) else {
        return Err("CSRF_MISSING");
    };
    let Ok(raw) =
        ctx.security
            .signer()
            .verify::<String>(SALT, presented, None, ctx.security.clock().now())
    else {
        return Err("CSRF_INVALID");
    };
    let expected = ctx.session.get::<String>(SESSION_KEY).await.ok().flatten();
    match expected {
        Some(expected) if bool::from(expected.as_bytes().ct_eq(raw.as_bytes())) => Ok(()),
        Some(_) => Err("CSRF_MISMATCH"),
        None if ctx.session.id().is_some() => Err("CSRF_MISMATCH"),
        None => Err("CSRF_SESSION_MISSING"),
    }
}

fn content_type(req: &Request<Body>) -> String {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase()
}

/// Enforces CSRF on a state-changing request; buffers urlencoded bodies to read the form field.
pub(crate) async fn protect(ctx: &AuthContext, req: &mut Request<Body>) -> Result<(), Response> {
    if !is_mutating(req.method()) {
        return Ok(());
    }
    let config = ctx.security.config();
    if req.uri().path() == config.url(&config.logout_url) {
        return Ok(());
    }
    let method = ctx.user.as_ref().map(|u| u.method);
    if matches!(method, Some(AuthMethod::Token | AuthMethod::Basic)) {
        return Ok(());
    }
    let json_body = crate::forms::is_json_content_type(&content_type(req));
    if json_body && method.is_none() {
        return Ok(());
    }
    let mut presented: Option<String> = HEADERS
        .iter()
        .find_map(|h| req.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if presented.is_none() && content_type(req).starts_with("application/x-www-form-urlencoded") {
        let body = std::mem::take(req.body_mut());
        let bytes = axum::body::to_bytes(body, config.max_content_length)
            .await
            .map_err(|_| {
                render_error(
                    &ctx.security,
                    ctx.is_json,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    crate::reply::status_message(StatusCode::PAYLOAD_TOO_LARGE),
                )
            })?;
        presented = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == FORM_FIELD)
            .map(|(_, v)| v.into_owned());
        *req.body_mut() = Body::from(bytes);
    }
    verify(ctx, presented.as_deref()).await.map_err(|key| {
        let message = ctx.security.msg(key, &[]);
        render_error(
            &ctx.security,
            ctx.is_json,
            StatusCode::BAD_REQUEST,
            &message,
        )
    })
}
