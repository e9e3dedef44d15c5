//! Form input shared by HTML forms and the JSON API: [`FormInput`] reads either body kind into
//! one map, and [`FieldErrors`] collects validation messages per field, in order.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::web::reply;
use crate::web::security::Security;

/// Validation messages per field, in the order they were found. The key `""` holds errors not
/// tied to a field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors {
    entries: Vec<(String, Vec<String>)>,
}

impl FieldErrors {
    /// No errors.
    pub fn new() -> Self {
        Self::default()
    }

    /// One error on one field.
    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }

    /// Adds a message to `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        match self.entries.iter_mut().find(|(f, _)| f == field) {
            Some((_, messages)) => messages.push(message),
            None => self.entries.push((field.to_owned(), vec![message])),
        }
    }

    /// Takes `field`'s messages away (e.g. to show them on another field of the page).
    pub fn remove(&mut self, field: &str) -> Vec<String> {
        match self.entries.iter().position(|(f, _)| f == field) {
            Some(index) => self.entries.remove(index).1,
            None => Vec::new(),
        }
    }

    /// Whether there are no errors.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `field` has an error.
    pub fn has(&self, field: &str) -> bool {
        self.entries.iter().any(|(f, _)| f == field)
    }

    /// Messages for `field`.
    pub fn get(&self, field: &str) -> &[String] {
        self.entries
            .iter()
            .find(|(f, _)| f == field)
            .map_or(&[], |(_, m)| m.as_slice())
    }

    /// Every message, flat, in order (duplicates kept).
    pub fn all_messages(&self) -> Vec<String> {
        self.entries
            .iter()
            .flat_map(|(_, m)| m.iter().cloned())
            .collect()
    }

    /// `{"field": ["message", …]}`.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.entries
                .iter()
                .map(|(f, m)| (f.clone(), Value::from(m.clone())))
                .collect(),
        )
    }

    /// Turns `self` into `Err(self)` when there are errors.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

/// A request body from a JSON object or an HTML form (urlencoded), read into one map.
///
/// Reading a field as text records `Input not appropriate for requested API` when a JSON client
/// sends a non-string value, so handlers validate one shape for both kinds of client.
#[derive(Debug, Default)]
pub struct FormInput {
    /// Whether the body was JSON.
    pub is_json: bool,
    values: Map<String, Value>,
    errors: FieldErrors,
}

impl FormInput {
    /// Input from a JSON object (tests, internal callers).
    pub fn from_json(values: Map<String, Value>) -> Self {
        Self {
            is_json: true,
            values,
            errors: FieldErrors::new(),
        }
    }

    /// Input from form pairs.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            is_json: false,
            values: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                .collect(),
            errors: FieldErrors::new(),
        }
    }

    /// A text field: `None` if absent, null or (for forms) empty. Records an error on non-strings.
    pub fn text(&mut self, field: &str) -> Option<String> {
        match self.values.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.errors.add(
                    field,
                    crate::messages::Messages::default().get("API_ERROR", &[]),
                );
                None
            }
        }
    }

    /// A boolean field: JSON `true/false`, or form values `y`, `on`, `true`, `1`.
    pub fn flag(&mut self, field: &str) -> Option<bool> {
        match self.values.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(Value::String(s)) => Some(matches!(
                s.to_ascii_lowercase().as_str(),
                "y" | "on" | "true" | "1" | "yes"
            )),
            Some(Value::Number(n)) => Some(n.as_i64().is_some_and(|n| n != 0)),
            Some(_) => {
                self.errors.add(
                    field,
                    crate::messages::Messages::default().get("API_ERROR", &[]),
                );
                None
            }
        }
    }

    /// Whether the body has `field` at all.
    pub fn contains(&self, field: &str) -> bool {
        self.values.contains_key(field)
    }

    /// The raw JSON map (for app-defined forms with their own validation).
    pub fn values(&self) -> &Map<String, Value> {
        &self.values
    }

    /// Errors recorded while reading fields (wrong types).
    pub fn take_errors(&mut self) -> FieldErrors {
        std::mem::take(&mut self.errors)
    }
}

/// Checks a username (as typed) against the configured length and character rules, and refuses
/// look-alike spellings ([`crate::identity::check_username_lookalike`]).
pub(crate) fn username_errors(security: &Security, username: &str) -> Option<String> {
    let config = security.config();
    // Both rule messages get the lengths, so an app may word the whole rule in each
    // (`SECURITY_MSG_INVALID_INPUT`, `SECURITY_MSG_USERNAME_INVALID_LENGTH`, or their
    // `SECURITY_PAGE_MSG_*` forms for the pages only).
    let (min, max) = (
        config.username.min_length.to_string(),
        config.username.max_length.to_string(),
    );
    let rule = [("min", min.as_str()), ("max", max.as_str())];
    if !username.chars().all(char::is_alphanumeric) {
        // The seed app's message (CONTRACT.md), Flask-Security's INVALID_INPUT.
        return Some(security.msg("INVALID_INPUT", &rule));
    }
    if crate::identity::check_username_lookalike(username).is_err() {
        return Some(security.msg("USERNAME_ILLEGAL_CHARACTERS", &rule));
    }
    let length = username.chars().count();
    if length < config.username.min_length || length > config.username.max_length {
        return Some(security.msg("USERNAME_INVALID_LENGTH", &rule));
    }
    None
}

/// Reads and checks the `email` field of a one-field form (resend confirmation, forgot password,
/// change of email). The address comes back in its canonical spelling
/// ([`crate::identity::normalize_email`]) when it is valid, trimmed as typed otherwise.
pub(crate) fn read_email_field(
    security: &Security,
    input: &mut FormInput,
) -> (String, FieldErrors) {
    let email = input
        .text("email")
        .map(|e| e.trim().to_owned())
        .unwrap_or_default();
    let mut errors = input.take_errors();
    if errors.has("email") {
        return (email, errors);
    }
    match canonical_email(security, &email) {
        Ok(email) => (email, errors),
        Err(message) => {
            errors.add("email", message);
            (email, errors)
        }
    }
}

/// The canonical spelling of an email address (NFKC, IDNA domain; no DNS look-up), or the
/// message saying why it has none.
pub(crate) fn canonical_email(security: &Security, email: &str) -> Result<String, String> {
    crate::identity::normalize_email(email).map_err(|error| match error {
        crate::identity::EmailError::Empty => security.msg("EMAIL_NOT_PROVIDED", &[]),
        _ => security.msg("INVALID_EMAIL_ADDRESS", &[]),
    })
}

/// Checks a new password and its confirmation; errors go to `field` / `confirm_field`.
pub(crate) fn new_password_errors(
    security: &Security,
    errors: &mut FieldErrors,
    password: Option<&str>,
    confirm: Option<&str>,
    field: &str,
    confirm_field: &str,
) {
    match password {
        None | Some("") => {
            if !errors.has(field) {
                errors.add(field, security.msg("PASSWORD_NOT_PROVIDED", &[]));
            }
        }
        Some(password) => {
            if let Err(violation) = security.hasher().policy().check(password) {
                errors.add(field, violation.to_string());
            }
        }
    }
    match confirm {
        None | Some("") => {
            if !errors.has(confirm_field) {
                errors.add(confirm_field, security.msg("PASSWORD_NOT_PROVIDED", &[]));
            }
        }
        Some(confirm) => {
            if password.is_some_and(|p| !p.is_empty() && p != confirm) {
                errors.add(confirm_field, security.msg("RETYPE_PASSWORD_MISMATCH", &[]));
            }
        }
    }
}

/// Whether the content type is JSON (`application/json`, `application/*+json`).
pub(crate) fn is_json_content_type(value: &str) -> bool {
    let mime = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// Parses a JSON body that must be an object, answering Flask-Security's messages otherwise.
#[expect(
    clippy::result_large_err,
    reason = "the rejection is a ready response, built once per bad request"
)]
pub fn parse_json_object(bytes: &[u8]) -> Result<Map<String, Value>, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(body_error("BODY_NOT_OBJECT")),
        Err(_) => Err(body_error("BODY_NOT_JSON")),
    }
}

fn body_error(key: &str) -> Response {
    reply::json_errors(
        StatusCode::BAD_REQUEST,
        &[crate::messages::Messages::default().get(key, &[])],
        None,
    )
}

impl<S: Send + Sync> FromRequest<S> for FormInput {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if is_json_content_type(&content_type) {
            return parse_json_object(&bytes).map(Self::from_json);
        }
        let pairs: Vec<(String, String)> =
            url::form_urlencoded::parse(&bytes).into_owned().collect();
        Ok(Self {
            is_json: false,
            values: pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
            errors: FieldErrors::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_errors_keep_order_and_duplicates() {
        let mut e = FieldErrors::new();
        e.add("email", "Email not provided");
        e.add("password", "Password not provided");
        e.add("password_confirm", "Password not provided");
        assert_eq!(
            e.all_messages(),
            [
                "Email not provided",
                "Password not provided",
                "Password not provided"
            ]
        );
        assert_eq!(e.get("password"), ["Password not provided"]);
    }

    #[test]
    fn non_string_json_values_are_refused_per_field() {
        let mut input = FormInput::from_json(
            serde_json::from_str(r#"{"email": {"$ne": 1}, "remember": true}"#).unwrap(),
        );
        assert_eq!(input.text("email"), None);
        assert_eq!(input.flag("remember"), Some(true));
        let errors = input.take_errors();
        assert_eq!(
            errors.get("email"),
            ["Input not appropriate for requested API"]
        );
    }

    #[test]
    fn json_bodies_must_be_objects() {
        assert!(parse_json_object(b"[1,2]").is_err());
        assert!(parse_json_object(b"null").is_err());
        assert!(parse_json_object(b"{oops").is_err());
        assert!(parse_json_object(b"").unwrap().is_empty());
        assert_eq!(parse_json_object(br#"{"a":"b"}"#).unwrap().len(), 1);
    }
}
