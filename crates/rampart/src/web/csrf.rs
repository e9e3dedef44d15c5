//! CSRF protection: a synchronizer token bound to the session (Flask-WTF's format: the session
//! holds a random secret, clients send it signed), accepted from a form field `csrf_token` (in an
//! urlencoded or a `multipart/form-data` body, as Flask-WTF reads `request.form`) or the
//! `X-XSRF-Token` / `X-CSRF-Token` / `X-CSRFToken` headers. Token-authenticated requests and JSON
//! requests without a signed-in session are exempt (they cannot be forged cross-site).
//!
//! Anonymous visitors without a server-side session keep their secret in a cookie instead
//! (`HttpOnly`, `SameSite=Lax`, `__Host-` prefixed when cookies are secure; a double-submit
//! cookie, as Django does), so showing the sign-in or sign-up form to a new visitor writes nothing
//! on the server. The cookie counts only while nobody is signed in; signing in moves the secret
//! into the new session and deletes the cookie.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use subtle::ConstantTimeEq;

use std::sync::{Arc, Mutex};

use crate::config::SecurityConfig;
use crate::web::context::{AuthContext, AuthMethod};
use crate::web::templates::render_error_for;

const SESSION_KEY: &str = "csrf_token";
const SALT: &str = "wtf-csrf-token";
const HEADERS: [&str; 3] = ["x-xsrf-token", "x-csrf-token", "x-csrftoken"];
/// The form field carrying the token.
pub(crate) const FORM_FIELD: &str = "csrf_token";

/// Length of a raw secret: 20 random bytes, hex-encoded (as Flask-WTF).
const SECRET_LEN: usize = 40;

/// The anonymous visitor's secret, shared by the clones of one request's [`AuthContext`]: read
/// from the request's cookie, or made (and the cookie set) the first time a token is needed.
#[derive(Clone, Debug, Default)]
pub(crate) struct AnonymousSecret(Arc<Mutex<Option<String>>>);

impl AnonymousSecret {
    /// The secret of the request's cookie, when it is well formed.
    pub(crate) fn from_cookie(value: Option<&str>) -> Self {
        let valid =
            value.filter(|v| v.len() == SECRET_LEN && v.bytes().all(|b| b.is_ascii_hexdigit()));
        Self(Arc::new(Mutex::new(valid.map(str::to_owned))))
    }

    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|s| s.clone())
    }

    /// The secret, made now if there is none (`true` when it was made).
    fn get_or_make(&self) -> (String, bool) {
        let Ok(mut secret) = self.0.lock() else {
            return (crate::token::random_hex(SECRET_LEN / 2), true);
        };
        match &*secret {
            Some(raw) => (raw.clone(), false),
            None => {
                let raw = crate::token::random_hex(SECRET_LEN / 2);
                *secret = Some(raw.clone());
                (raw, true)
            }
        }
    }
}

/// The name of the anonymous visitor's CSRF cookie.
pub(crate) fn anonymous_cookie_name(config: &SecurityConfig) -> &'static str {
    if config.session.cookie_secure {
        "__Host-rampart_csrf"
    } else {
        "rampart_csrf"
    }
}

fn anonymous_cookie(config: &SecurityConfig, raw: String) -> cookie::Cookie<'static> {
    cookie::Cookie::build((anonymous_cookie_name(config), raw))
        .path("/")
        .http_only(true)
        .secure(config.session.cookie_secure)
        .same_site(cookie::SameSite::Lax)
        .build()
}

/// The request's CSRF token: from the session's secret when there is a server-side session (or
/// someone is signed in), else from the anonymous visitor's cookie, made on first use.
pub(crate) async fn token(ctx: &AuthContext) -> crate::Result<String> {
    if let Some(raw) = ctx.session.get::<String>(SESSION_KEY).await? {
        return sign(ctx, &raw);
    }
    if ctx.user.is_none() && ctx.session.id().is_none() {
        let (raw, made) = ctx.anonymous_csrf.get_or_make();
        if made {
            ctx.set_cookie(anonymous_cookie(ctx.security.config(), raw.clone()));
        }
        return sign(ctx, &raw);
    }
    let raw = crate::token::random_hex(SECRET_LEN / 2);
    ctx.session.insert(SESSION_KEY, &raw).await?;
    sign(ctx, &raw)
}

/// Signs `raw` (once per request and secret: a page that shows the token twice, in the form and
/// in the `XSRF-TOKEN` cookie, signs it once).
fn sign(ctx: &AuthContext, raw: &str) -> crate::Result<String> {
    if let Ok(memo) = ctx.csrf_signed.0.lock()
        && let Some((for_raw, token)) = &*memo
        && for_raw == raw
    {
        return Ok(token.clone());
    }
    let token = ctx
        .security
        .signer()
        .sign_uncompressed(SALT, &raw, ctx.security.clock().now())?;
    if let Ok(mut memo) = ctx.csrf_signed.0.lock() {
        *memo = Some((raw.to_owned(), token.clone()));
    }
    Ok(token)
}

/// The token signed during this request, with the secret it signs.
#[derive(Clone, Debug, Default)]
pub(crate) struct SignedToken(Arc<Mutex<Option<(String, String)>>>);

/// Replaces the session secret (on login), returning the new token; the anonymous visitor's
/// cookie, if any, is deleted.
pub(crate) async fn rotate(ctx: &AuthContext) -> crate::Result<String> {
    let raw = crate::token::random_hex(SECRET_LEN / 2);
    ctx.session.insert(SESSION_KEY, &raw).await?;
    if ctx.anonymous_csrf.get().is_some() {
        let mut removal = anonymous_cookie(ctx.security.config(), String::new());
        removal.make_removal();
        ctx.set_cookie(removal);
    }
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
    let from_session = ctx.session.get::<String>(SESSION_KEY).await.ok().flatten();
    // The anonymous cookie stands in only while nobody is signed in.
    let from_cookie = ctx
        .user
        .is_none()
        .then(|| ctx.anonymous_csrf.get())
        .flatten();
    if from_session.is_none() && from_cookie.is_none() {
        return if ctx.session.id().is_some() {
            Err("CSRF_MISMATCH")
        } else {
            Err("CSRF_SESSION_MISSING")
        };
    }
    let matches = |expected: &Option<String>| {
        expected
            .as_ref()
            .is_some_and(|e| bool::from(e.as_bytes().ct_eq(raw.as_bytes())))
    };
    // Both are compared, whatever the first gives, so timing tells nothing.
    let (a, b) = (matches(&from_session), matches(&from_cookie));
    if a | b { Ok(()) } else { Err("CSRF_MISMATCH") }
}

/// The text field `csrf_token` of a buffered `multipart/form-data` body (file parts are skipped).
async fn multipart_field(content_type: &str, bytes: axum::body::Bytes) -> Option<String> {
    use axum::extract::FromRequest as _;
    let mut request = Request::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .ok()?;
    // Already bounded by `MAX_CONTENT_LENGTH` when it was buffered.
    axum::extract::DefaultBodyLimit::disable().apply(&mut request);
    let mut multipart = axum::extract::Multipart::from_request(request, &())
        .await
        .ok()?;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some(FORM_FIELD) && field.file_name().is_none() {
            return field.text().await.ok();
        }
    }
    None
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
    let method = ctx.user.as_ref().map(|u| u.method);
    if matches!(method, Some(AuthMethod::Token | AuthMethod::Basic)) {
        return Ok(());
    }
    // Browsers say where a request comes from: a state-changing request started by another
    // site is refused outright (login CSRF, forced logout, …), whatever else it carries.
    if req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        let message = ctx.security.msg("CROSS_SITE_REFUSED", &[]);
        return Err(render_error_for(ctx, StatusCode::FORBIDDEN, &message));
    }
    if req.uri().path() == config.url(&config.logout.url) {
        return Ok(());
    }
    let json_body = crate::web::forms::is_json_content_type(&content_type(req));
    if json_body && method.is_none() {
        return Ok(());
    }
    let mut presented: Option<String> = HEADERS
        .iter()
        .find_map(|h| req.headers().get(*h))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let content_type = content_type(req);
    let urlencoded = content_type.starts_with("application/x-www-form-urlencoded");
    let multipart = content_type.starts_with("multipart/form-data");
    if presented.is_none() && (urlencoded || multipart) {
        let body = std::mem::take(req.body_mut());
        let bytes = axum::body::to_bytes(body, config.body_limit_for(req.uri().path()))
            .await
            .map_err(|_| {
                render_error_for(
                    ctx,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    crate::web::reply::status_message(StatusCode::PAYLOAD_TOO_LARGE),
                )
            })?;
        presented = if urlencoded {
            url::form_urlencoded::parse(&bytes)
                .find(|(k, _)| k == FORM_FIELD)
                .map(|(_, v)| v.into_owned())
        } else {
            // The boundary is case-sensitive: use the header as sent.
            let raw = req
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            multipart_field(raw, bytes.clone()).await
        };
        *req.body_mut() = Body::from(bytes);
    }
    verify(ctx, presented.as_deref()).await.map_err(|key| {
        let message = ctx.security.msg(key, &[]);
        render_error_for(ctx, StatusCode::BAD_REQUEST, &message)
    })
}

/// Whether a method changes state (needs CSRF protection).
pub(crate) fn is_mutating(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_token_is_found_in_a_multipart_body_after_a_large_file() {
        let boundary = "----WebKitFormBoundaryAbCdEf";
        let file = vec![b'x'; 3 * 1024 * 1024];
        let mut body = Vec::new();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"avatar\"; \
                 filename=\"csrf_token\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&file);
        body.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n\
                 signed.token\r\n--{boundary}--\r\n"
            )
            .as_bytes(),
        );
        let content_type = format!("multipart/form-data; boundary={boundary}");
        assert_eq!(
            multipart_field(&content_type, body.into()).await.as_deref(),
            Some("signed.token")
        );
        let empty = format!("--{boundary}--\r\n");
        assert_eq!(
            multipart_field(&content_type, empty.into_bytes().into()).await,
            None
        );
    }
}
