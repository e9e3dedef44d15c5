//! The OpenAPI description (`SECURITY_OPENAPI`, `GET /openapi.json`): a valid OpenAPI 3.x
//! document that describes every JSON POST route the router mounts, served only when on.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use rampart::testing::TestBackend;
use serde_json::Value;

use crate::harness::TestApp;

/// Every feature on, at its default paths and some moved ones, with the description served.
const EVERYTHING: &[(&str, &str)] = &[
    ("SECURITY_OPENAPI", "true"),
    ("SECURITY_CHANGE_EMAIL", "true"),
    ("SECURITY_CHANGE_USERNAME", "true"),
    ("SECURITY_USERNAME_RECOVERY", "true"),
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_MULTI_FACTOR_RECOVERY_CODES", "true"),
    ("SECURITY_WEBAUTHN", "true"),
    ("SECURITY_UNIFIED_SIGNIN", "true"),
    ("SECURITY_OAUTH_ENABLE", "true"),
    ("SECURITY_OAUTH_PROVIDERS", "github"),
    ("GITHUB_CLIENT_ID", "client"),
    ("GITHUB_CLIENT_SECRET", "secret"),
    ("SECURITY_RESET_URL", "/forgot"),
    ("SECURITY_TWO_FACTOR_RESCUE_URL", "/tf/rescue"),
];

/// The routes of `router` and whether each takes POST, read from axum's `Debug` output
/// (`RouteId(n): "/path"` and `RouteId(n): MethodRouter(MethodRouter { …, post: …, … })` in
/// its `path_router`).
fn mounted_routes(router: &axum::Router) -> Vec<(String, bool)> {
    let dump = format!("{router:?}");
    // The routes, not the fallback router's (whose route ids start again).
    let dump = dump.split("fallback_router").next().unwrap_or_default();
    let mut paths = std::collections::HashMap::new();
    let mut posts = std::collections::HashMap::new();
    let pieces: Vec<&str> = dump.split("RouteId(").skip(1).collect();
    for piece in pieces {
        let Some((id, rest)) = piece.split_once("): ") else {
            continue;
        };
        if let Some(path) = rest.strip_prefix('"') {
            let path = path.split('"').next().unwrap_or_default();
            paths.insert(id.to_owned(), path.to_owned());
        } else if rest.starts_with("MethodRouter(") {
            posts.insert(id.to_owned(), !rest.contains("post: None"));
        }
    }
    assert!(
        !paths.is_empty() && paths.len() == posts.len(),
        "axum's Debug output of a Router changed: {} paths, {} method routers",
        paths.len(),
        posts.len()
    );
    paths
        .into_iter()
        .map(|(id, path)| {
            let post = posts.get(&id).copied().unwrap_or(false);
            (path, post)
        })
        .collect()
}

#[tokio::test]
async fn every_json_post_route_the_router_mounts_is_described() {
    let app = TestApp::on(TestBackend::Sqlite, EVERYTHING, None).await;
    let doc = app.security.openapi();
    let paths = doc["paths"].as_object().expect("paths");
    let routes = mounted_routes(&app.security.router::<()>());
    let posts: BTreeSet<&str> = routes
        .iter()
        .filter(|(_, post)| *post)
        .map(|(path, _)| path.as_str())
        .collect();
    // Sanity: the walk saw the routes of every feature, at their configured paths.
    for expected in [
        "/login",
        "/forgot/{token}",
        "/tf/rescue",
        "/us-setup/{state}",
    ] {
        assert!(posts.contains(expected), "{expected} not seen in {posts:?}");
    }
    // Routes whose POST answers browsers only, never a JSON client: none today.
    let browser_only: BTreeSet<&str> = BTreeSet::new();
    let missing: Vec<&str> = posts
        .iter()
        .copied()
        .filter(|path| !browser_only.contains(path))
        .filter(|path| paths.get(*path).and_then(|item| item.get("post")).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "POST routes missing from /openapi.json: {missing:?}"
    );
    // And nothing described that is not mounted.
    let mounted: BTreeSet<&str> = routes.iter().map(|(path, _)| path.as_str()).collect();
    for path in paths.keys() {
        assert!(
            mounted.contains(path.as_str()),
            "{path} is described, not mounted"
        );
    }
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match (key.as_str(), inner) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(inner, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_description_is_valid_openapi_3_json_served_at_openapi_json() {
    let app = TestApp::on(TestBackend::Sqlite, EVERYTHING, None).await;
    let response = app.client().get("/openapi.json").send().await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let doc: Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(doc, app.security.openapi(), "served as built");
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["token"]["name"], "Authentication-Token");
    assert_eq!(schemes["token"]["in"], "header");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["csrf"]["name"], "X-XSRF-Token");
    let methods = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        assert!(path.starts_with('/'), "{path}");
        for (method, operation) in item.as_object().expect("path item") {
            assert!(methods.contains(&method.as_str()), "{path}: {method}");
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
            let responses = operation["responses"].as_object().expect("responses");
            for status in ["200", "400", "401", "403", "404", "429", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            // Path parameters are declared.
            for name in path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            {
                let declared = operation["parameters"].as_array().is_some_and(|params| {
                    params
                        .iter()
                        .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
                });
                assert!(
                    declared,
                    "{method} {path}: path parameter {name} undeclared"
                );
            }
        }
    }
    // The envelope, the error answers with Retry-After, the schemes named by operations.
    let login = &doc["paths"]["/login"]["post"];
    let ok = &login["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(ok["required"], serde_json::json!(["meta", "response"]));
    assert_eq!(
        ok["properties"]["meta"]["properties"]["code"]["enum"][0],
        200
    );
    let too_many = &doc["components"]["responses"]["429"];
    assert!(too_many["headers"]["Retry-After"].is_object());
    assert!(doc["components"]["responses"]["503"]["headers"]["Retry-After"].is_object());
    let error = &doc["components"]["schemas"]["ErrorAnswer"];
    assert!(error["properties"]["field_errors"].is_object());
    // Every reference resolves.
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(!found.is_empty());
    for target in found {
        let pointer = target.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "{target} does not resolve");
    }
}

#[tokio::test]
async fn the_description_is_not_served_when_off() {
    let app = TestApp::on(TestBackend::Sqlite, &[], None).await;
    let response = app.client().get("/openapi.json").send().await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
}
