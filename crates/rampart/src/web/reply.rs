//! Building responses: Flask-Security's JSON envelope, HTML pages and redirects, all with
//! `Cache-Control: private, no-store`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::web::forms::FieldErrors;

/// Marks a response whose body the framework already rendered (so the error renderer leaves it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rendered;

fn finish(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response.extensions_mut().insert(Rendered);
    response
}

/// `{"meta": {"code": status}, "response": response}` with the given status.
pub fn json(status: StatusCode, response: Value) -> Response {
    json_of(status, &response)
}

/// [`json()`](fn@json) for any serializable answer (a typed struct saves building a [`Value`]).
///
/// ```
/// use axum::http::StatusCode;
///
/// #[derive(serde::Serialize)]
/// struct Answer {
///     message: &'static str,
/// }
/// let response = rampart::reply::json_of(StatusCode::OK, &Answer { message: "hello" });
/// assert_eq!(response.status(), StatusCode::OK);
/// ```
pub fn json_of<T: serde::Serialize + ?Sized>(status: StatusCode, response: &T) -> Response {
    /// The envelope, serialized straight from a borrowed answer (no intermediate map).
    #[derive(serde::Serialize)]
    struct Envelope<'a, T: ?Sized> {
        meta: Meta,
        response: &'a T,
    }
    #[derive(serde::Serialize)]
    struct Meta {
        code: u16,
    }
    let envelope = Envelope {
        meta: Meta {
            code: status.as_u16(),
        },
        response,
    };
    match serde_json::to_vec(&envelope) {
        Ok(body) => finish(
            (
                status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(mime::APPLICATION_JSON.as_ref()),
                )],
                body,
            )
                .into_response(),
        ),
        Err(error) => {
            tracing::error!(%error, "cannot serialize a JSON answer");
            finish(StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// A 200 envelope around `response`.
pub fn json_ok(response: Map<String, Value>) -> Response {
    json(StatusCode::OK, Value::Object(response))
}

/// An error envelope: `errors` (flat list) and, for form errors, `field_errors`.
pub fn json_errors(
    status: StatusCode,
    errors: &[String],
    field_errors: Option<&FieldErrors>,
) -> Response {
    let mut response = Map::new();
    match field_errors {
        Some(fields) => {
            response.insert("errors".into(), json!(fields.all_messages()));
            response.insert("field_errors".into(), fields.to_json());
        }
        None => {
            response.insert("errors".into(), json!(errors));
        }
    }
    json(status, Value::Object(response))
}

/// An HTML page.
pub fn html(status: StatusCode, body: String) -> Response {
    finish((status, axum::response::Html(body)).into_response())
}

/// A `302 Found` redirect.
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    finish(response)
}

/// Standard text for an HTTP error status (Werkzeug's, as Flask-Security apps show them).
pub(crate) fn status_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The browser (or proxy) sent a request that this server could not understand.",
        401 => "You must sign in to view this resource.",
        403 => "You do not have permission to view this resource.",
        404 => {
            "The requested URL was not found on the server. If you entered the URL manually please \
             check your spelling and try again."
        }
        405 => "The method is not allowed for the requested URL.",
        409 => "The account changed while this request ran. Reload the page and try again.",
        408 => {
            "The server closed the network connection because the browser didn't finish the request within the specified time."
        }
        413 => "The data value transmitted exceeds the capacity limit.",
        414 => {
            "The length of the requested URL exceeds the capacity limit for this server. The \
             request cannot be processed."
        }
        415 => "The server does not support the media type transmitted in the request.",
        429 => "Too many requests. Please try again later.",
        503 => {
            "The server is temporarily unable to service your request due to maintenance downtime or \
             capacity problems. Please try again later."
        }
        _ => {
            "The server encountered an internal error and was unable to complete your request. Either \
             the server is overloaded or there is an error in the application."
        }
    }
}

impl IntoResponse for crate::Error {
    fn into_response(self) -> Response {
        let status = match self.kind() {
            crate::error::ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            crate::error::ErrorKind::Conflict => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        tracing::error!(error = %self, "request failed");
        let mut response = status.into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
