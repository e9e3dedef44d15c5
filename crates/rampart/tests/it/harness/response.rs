//! [`TestResponse`]: a response read whole, and assertions on its JSON or HTML.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Value, json};

use super::*;

#[derive(Debug)]
pub(crate) struct TestResponse {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl TestResponse {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body with the HTML escapes the templates use undone (`&#x2f;` → `/`, …).
    pub(crate) fn html(&self) -> String {
        unescape_html(&self.text())
    }

    pub(super) fn try_json(&self) -> Option<Value> {
        let is_json = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if is_json {
            serde_json::from_slice(&self.body).ok()
        } else {
            None
        }
    }

    /// The JSON body; checks the envelope (`meta.code` equals the status).
    pub(crate) fn json(&self) -> Value {
        let value = self.try_json().unwrap_or_else(|| {
            panic!(
                "not a JSON response ({}): {:?} {}",
                self.status,
                self.headers,
                self.text()
            )
        });
        assert_eq!(
            value["meta"]["code"].as_u64(),
            Some(u64::from(self.status.as_u16())),
            "meta.code must equal the status: {value}"
        );
        value
    }

    /// `response` of the envelope.
    pub(crate) fn response(&self) -> Value {
        self.json()["response"].clone()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Location` of a 302.
    pub(crate) fn location(&self) -> Option<&str> {
        if self.status != StatusCode::FOUND {
            return None;
        }
        self.header("location")
    }

    /// The raw `Set-Cookie` header for `name`, if the response sets it.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.split('=').next() == Some(name))
            .map(str::to_owned)
    }

    /// Asserts a 400 with exactly these field errors (and `errors` = all their messages).
    pub(crate) fn assert_field_errors(&self, expected: &Value) {
        assert_eq!(self.status, StatusCode::BAD_REQUEST, "{}", self.text());
        let response = self.response();
        assert_eq!(&response["field_errors"], expected, "{response}");
        let all: Vec<Value> = expected
            .as_object()
            .expect("an object")
            .values()
            .flat_map(|v| v.as_array().expect("a list").clone())
            .collect();
        let mut got = response["errors"].as_array().expect("errors").clone();
        let mut want = all;
        let key = |v: &Value| v.to_string();
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(
            got, want,
            "errors must list every field message: {response}"
        );
    }

    /// Asserts an error envelope with exactly `errors` and no `field_errors`.
    pub(crate) fn assert_errors(&self, status: StatusCode, errors: &[&str]) {
        assert_eq!(self.status, status, "{}", self.text());
        let response = self.response();
        assert_eq!(response["errors"], json!(errors), "{response}");
        assert!(
            response.get("field_errors").is_none(),
            "no field_errors expected: {response}"
        );
    }
}
