//! The OpenAPI 3.1 description of the JSON API, generated from the handlers' `#[utoipa::path]`
//! attributes and the `ToSchema` types beside them, served at `GET /openapi.json` when
//! `SECURITY_OPENAPI` is on (assembled in `features.rs`, like the routers).
//!
//! Each feature describes its operations at their default paths and moves them to where the
//! configuration mounts them ([`mount`]); [`document`] then adds what every operation shares:
//! Flask-Security's envelope around each JSON answer (`{"meta": {"code": …}, "response": …}`),
//! the error answers (400 with `errors` and `field_errors`, 401, 403, 404, 409, 413, 429 and 503,
//! the last two with `Retry-After`), and the ways to authenticate (the session cookie with its
//! CSRF header, the `Authentication-Token` header).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::config::SecurityConfig;

/// The security requirement of an operation that needs a signed-in user: the session cookie with
/// the CSRF header, or an auth token. For `security(...)` in `#[utoipa::path]`.
pub(crate) const SIGNED_IN: &str = "signed_in";

/// The user as JSON answers show it (`response.user`): Flask-Security's security payload.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct UserPayload {
    /// The email address.
    pub(crate) email: String,
    /// The username (`null` when none is set).
    pub(crate) username: Option<String>,
    /// The user's `fs_uniquifier`.
    pub(crate) uuid: String,
    /// The user's role names.
    pub(crate) roles: Vec<String>,
    /// An auth token for the `Authentication-Token` header: only with `?include_auth_token`, on
    /// an answer that signed the user in.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) authentication_token: Option<String>,
}

/// The answer of most forms: the session's CSRF token (for the `X-CSRF-Token` header), and the
/// form's fields.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer `Reply::Form` renders")]
pub(crate) struct CsrfAnswer {
    /// The session's CSRF token.
    csrf_token: String,
}

/// The answer of a sign-in (`POST /login`, `/us-signin`, `/tf-validate`, `/mf-recovery`, …):
/// signed in (`user`), or a second factor needed (`tf_required`, no `user`).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the answer `finish_login` and `begin_login_reply` render"
)]
pub(crate) struct SignInAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// Whether a second factor must be proven before the user is signed in.
    #[schema(nullable = false)]
    tf_required: Option<bool>,
    /// The second factor's method (`authenticator`, `email`, `sms`, `webauthn`).
    #[schema(nullable = false)]
    tf_method: Option<String>,
    /// The user's primary second-factor method.
    #[schema(nullable = false)]
    tf_primary_method: Option<String>,
    /// `ready` while the second factor is awaited.
    #[schema(nullable = false)]
    tf_state: Option<String>,
    /// The user, once signed in.
    #[schema(nullable = false)]
    user: Option<UserPayload>,
}

/// The answer of the forms that show the user: the CSRF token and the user.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the answer the handlers render")]
pub(crate) struct UserAnswer {
    /// The session's CSRF token.
    csrf_token: String,
    /// The user (absent where it would reveal an account, e.g. a registration with generic
    /// responses).
    #[schema(nullable = false)]
    user: Option<UserPayload>,
}

/// The body of the forms that take one email address (resend confirmation, forgot password,
/// change of email, username recovery).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the field the handlers read from the form or JSON body"
)]
pub(crate) struct EmailBody {
    /// The email address.
    email: String,
}

/// The body of the forms that take a one-time code (`/tf-validate`, `/tf-setup/{token}`,
/// `/mf-recovery`).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the field the handlers read from the form or JSON body"
)]
pub(crate) struct CodeBody {
    /// The code.
    code: String,
}

/// An empty answer (`{}`).
#[derive(utoipa::ToSchema)]
pub(crate) struct EmptyAnswer {}

/// A refusal: every message in `errors`, and per field in `field_errors` for form errors (the
/// key `""` for an error of no one field).
#[derive(utoipa::ToSchema)]
#[expect(
    dead_code,
    reason = "describes the answer `reply::json_errors` renders"
)]
pub(crate) struct ErrorAnswer {
    /// Every message, flat (never empty).
    errors: Vec<String>,
    /// The messages per request field, for form errors.
    #[schema(nullable = false)]
    field_errors: Option<BTreeMap<String, Vec<String>>>,
}

/// The query parameter that adds `authentication_token` to `response.user` on a sign-in.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(dead_code, reason = "describes the query the sign-in handlers read")]
pub(crate) struct IncludeAuthToken {
    /// Present (any value): answer with an auth token in `response.user`.
    #[param(nullable = false)]
    include_auth_token: Option<String>,
}

/// Moves operations described at their default paths to where the configuration mounts them:
/// each `(default, mounted)` pair re-keys that one path.
pub(crate) fn mount(
    mut doc: utoipa::openapi::OpenApi,
    moves: &[(&str, String)],
) -> utoipa::openapi::OpenApi {
    for (default, mounted) in moves {
        if default == mounted {
            continue;
        }
        if let Some(item) = doc.paths.paths.remove(*default) {
            doc.paths.paths.insert(mounted.clone(), item);
        }
    }
    doc
}

/// The answers that are JSON documents of their own, not in the envelope (the account export,
/// a download).
const BARE: [&str; 1] = ["AccountExport"];

/// The error answers every operation may give, with their descriptions.
const ERRORS: [(u16, &str); 8] = [
    (
        400,
        "Refused input (`field_errors` per field), a missing or wrong CSRF token, a body that is \
         not a JSON object, or a flow not in progress.",
    ),
    (
        401,
        "Not signed in, or the password must be confirmed again (`SECURITY_FRESHNESS`).",
    ),
    (403, "Signed in, without the role or permission this needs."),
    (404, "No such thing (an unknown session, provider or link)."),
    (
        409,
        "The account changed while the request ran: reload and try again.",
    ),
    (413, "The body is larger than `MAX_CONTENT_LENGTH`."),
    (
        429,
        "A rate limit is used up: try again after `Retry-After` seconds.",
    ),
    (
        503,
        "The server is saturated (the password hashing pool is full, or the database is \
         unreachable): try again after `Retry-After` seconds.",
    ),
];

/// The served document: `parts` (every mounted feature's operations) with the envelope, the
/// error answers, the security schemes and the title added.
pub(crate) fn document(config: &SecurityConfig, parts: utoipa::openapi::OpenApi) -> Value {
    let mut doc = match serde_json::to_value(&parts) {
        Ok(Value::Object(doc)) => doc,
        _ => Map::new(),
    };
    doc.insert("openapi".into(), json!("3.1.0"));
    doc.insert(
        "info".into(),
        json!({
            "title": format!("{} JSON API", config.app_name),
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Flask-Security's JSON API as Rampart serves it. A request is a JSON \
                request with `Content-Type: application/json` (bodies) or `Accept: \
                application/json` (GETs); every answer is the envelope `{\"meta\": {\"code\": \
                <status>}, \"response\": {…}}`. Signed-in requests carry the session cookie and, \
                when they change something, the CSRF token in `X-XSRF-Token` (or \
                `X-CSRF-Token`); or an auth token in the `Authentication-Token` header (no CSRF \
                token needed).",
        }),
    );
    let components = doc
        .entry("components")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut components = components;
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    if let Some(schemas) = schemas {
        schemas.insert("ErrorAnswer".into(), utoipa_schema::<ErrorAnswer>());
    }
    components.insert(
        "securitySchemes".into(),
        json!({
            "session": {
                "type": "apiKey", "in": "cookie", "name": config.session.cookie_name,
                "description": "The session cookie, set by a sign-in (and by `GET` of the sign-in forms).",
            },
            "csrf": {
                "type": "apiKey", "in": "header", "name": "X-XSRF-Token",
                "description": format!(
                    "The CSRF token: the `{}` cookie's value, or any answer's `csrf_token` (also as \
                     `X-CSRF-Token` or `X-CSRFToken`). Needed with the session cookie on requests \
                     that change something.",
                    config.csrf.cookie_name
                ),
            },
            "token": {
                "type": "apiKey", "in": "header", "name": config.token.header,
                "description": "An auth token, from a sign-in with `?include_auth_token`.",
            },
        }),
    );
    let mut responses = Map::new();
    for (status, description) in ERRORS {
        let mut response = json!({
            "description": description,
            "content": {"application/json": {"schema": envelope(status, json!({"$ref": "#/components/schemas/ErrorAnswer"}))}},
        });
        if status == 429 || status == 503 {
            response["headers"] = json!({
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 0},
                },
            });
        }
        responses.insert(status.to_string(), response);
    }
    components.insert("responses".into(), Value::Object(responses));
    doc.insert("components".into(), Value::Object(components));
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                if matches!(method.as_str(), "get" | "post" | "delete" | "put" | "patch") {
                    finish_operation(&format!("{method} {path}"), operation);
                }
            }
        }
    }
    Value::Object(doc)
}

/// The schema of a `ToSchema` type, as JSON.
fn utoipa_schema<T: utoipa::ToSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or_else(|_| json!({}))
}

/// `{"meta": {"code": status}, "response": inner}`.
fn envelope(status: u16, inner: Value) -> Value {
    json!({
        "type": "object",
        "required": ["meta", "response"],
        "properties": {
            "meta": {
                "type": "object",
                "required": ["code"],
                "properties": {"code": {"type": "integer", "enum": [status]}},
            },
            "response": inner,
        },
    })
}

/// Wraps an operation's JSON answers in the envelope, adds the error answers it lacks, and the
/// security requirement: [`SIGNED_IN`] becomes "session and CSRF header, or token"; an operation
/// that names none may be called either way or anonymously.
fn finish_operation(id: &str, operation: &mut Value) {
    let Some(operation) = operation.as_object_mut() else {
        return;
    };
    // Handlers of two features share names (`get_setup`): the method and path are unique.
    operation.insert("operationId".into(), json!(id));
    if let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    {
        for (status, response) in responses.iter_mut() {
            let code = status.parse::<u16>().unwrap_or(200);
            if let Some(schema) = response.pointer_mut("/content/application~1json/schema") {
                let bare = BARE.iter().any(|name| {
                    schema.get("$ref").and_then(Value::as_str)
                        == Some(&format!("#/components/schemas/{name}"))
                });
                if !bare {
                    *schema = envelope(code, schema.take());
                }
            }
        }
        for (status, _) in ERRORS {
            responses
                .entry(status.to_string())
                .or_insert_with(|| json!({"$ref": format!("#/components/responses/{status}")}));
        }
    }
    let signed_in = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|requirements| {
            requirements
                .iter()
                .any(|requirement| requirement.get(SIGNED_IN).is_some())
        });
    let security = if signed_in {
        json!([{"session": [], "csrf": []}, {"token": []}])
    } else {
        json!([{}, {"session": [], "csrf": []}, {"token": []}])
    };
    operation.insert("security".into(), security);
}
