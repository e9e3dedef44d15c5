//! The negotiated reply seen from an app's own handlers: a handler that returns a [`Reply`]
//! answers with the same bytes as one that builds the response itself (the JSON envelope, the
//! 400 `field_errors`, the flash and the redirect), and an app's [`Rejection`] answers as the
//! framework's own routes do (401 `reauth_required`, 429 with `Retry-After`).

use std::time::Duration;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use minijinja::context;
use rampart::reply::{Form, Html, Json, Limited, Rejection, Reply};
use rampart::{AuthContext, CurrentUser, FieldErrors, RateLimit};
use serde_json::{Map, Value, json};

use crate::harness::{GENERIC, PASSWORD, TestApp, TestClient, TestResponse, backend_test};

const TEMPLATE: &str = "security/forgot_password.html";
const LOGIN_LIMIT: &str = "3 per 10 minutes";

fn errors() -> FieldErrors {
    let mut errors = FieldErrors::single("email", "Invalid email address");
    errors.add("", "Something else is wrong.");
    errors
}

fn typed() -> Value {
    json!({"email": "ann@example.com"})
}

async fn reply_base() -> Reply {
    let mut fields = Map::new();
    fields.insert("answer".into(), json!(42));
    Reply::done(Json::Base(fields), Html::redirect("/"))
}

async fn built_base(ctx: AuthContext) -> rampart::Result<Response> {
    let mut response = ctx.json_base().await?;
    response.insert("answer".into(), json!(42));
    Ok(rampart::reply::json_ok(response))
}

async fn reply_invalid() -> Reply {
    Reply::Invalid(Form::new(TEMPLATE).values(typed()).errors(errors()))
}

async fn built_invalid(ctx: AuthContext) -> rampart::Result<Response> {
    let errors = errors();
    if ctx.is_json() {
        return Ok(rampart::reply::json_errors(
            StatusCode::BAD_REQUEST,
            &[],
            Some(&errors),
        ));
    }
    let form = context! {
        values => typed(),
        errors => errors.to_json(),
        form_errors => errors.get("").to_vec(),
    };
    rampart::reply::page(&ctx, TEMPLATE, StatusCode::OK, context! { form => form }).await
}

async fn reply_flash() -> Reply {
    Reply::done(
        Json::base(),
        Html::flash_redirect("success", "Saved.".into(), "/next"),
    )
}

async fn built_flash(ctx: AuthContext) -> rampart::Result<Response> {
    if ctx.is_json() {
        return Ok(rampart::reply::json_ok(ctx.json_base().await?));
    }
    ctx.flash("success", "Saved.").await?;
    Ok(rampart::reply::redirect("/next"))
}

async fn flashes(ctx: AuthContext) -> rampart::Result<Response> {
    let flashes = ctx.take_flashes().await?;
    Ok(rampart::reply::json(StatusCode::OK, json!(flashes)))
}

async fn stale(_user: CurrentUser) -> Result<Reply, Rejection> {
    Err(Rejection::Reauthenticate)
}

#[expect(
    clippy::expect_used,
    reason = "the test's own limit: a typo in it must fail the test at once"
)]
async fn limited(Path(secs): Path<u64>) -> Result<Reply, Rejection> {
    let limit = RateLimit::parse(LOGIN_LIMIT).expect("a rate limit");
    Err(Rejection::Limited(Limited {
        limit,
        retry_after: Duration::from_secs(secs),
    }))
}

/// The test app's security with these routes of an app's own, and a client of it.
fn app_client(app: &TestApp) -> TestClient {
    let router = Router::new()
        .route("/reply/base", get(reply_base))
        .route("/built/base", get(built_base))
        .route("/reply/invalid", get(reply_invalid))
        .route("/built/invalid", get(built_invalid))
        .route("/reply/flash", get(reply_flash))
        .route("/built/flash", get(built_flash))
        .route("/flashes", get(flashes))
        .route("/reply/stale", get(stale))
        .route("/reply/limited/{secs}", get(limited))
        .merge(app.security.router())
        .layer(app.security.layer());
    TestClient::new(router)
}

/// The same status, headers (but the cookies a first request sets) and body bytes.
fn assert_same(reply: &TestResponse, built: &TestResponse, what: &str) {
    assert_eq!(reply.status, built.status, "{what}: status");
    let headers = |r: &TestResponse| {
        let mut headers: Vec<(String, Vec<u8>)> = r
            .headers
            .iter()
            .filter(|(name, _)| *name != header::SET_COOKIE)
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        headers.sort();
        headers
    };
    assert_eq!(headers(reply), headers(built), "{what}: headers");
    assert_eq!(
        reply.text(),
        built.text(),
        "{what}: body (csrf_token included)"
    );
}

backend_test!(
    a_reply_renders_the_bytes_the_builders_did,
    GENERIC,
    async |app: TestApp| {
        let client = app_client(&app);
        // Made first, so the token every answer carries is the same one.
        client.get("/login").accept_json().send().await;

        let built = client.get("/built/base").accept_json().send().await;
        let reply = client.get("/reply/base").accept_json().send().await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.response()["answer"], json!(42));
        assert!(reply.response()["csrf_token"].is_string());
        assert_same(&reply, &built, "Json::Base");

        let built = client.get("/built/invalid").accept_json().send().await;
        let reply = client.get("/reply/invalid").accept_json().send().await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        reply.assert_field_errors(&json!({
            "email": ["Invalid email address"],
            "": ["Something else is wrong."],
        }));
        assert_same(&reply, &built, "Invalid, JSON");

        let built = client.get("/built/invalid").send().await;
        let reply = client.get("/reply/invalid").send().await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.html().contains("Invalid email address"));
        assert!(reply.html().contains("Something else is wrong."));
        assert!(reply.html().contains("ann@example.com"));
        assert_same(&reply, &built, "Invalid, HTML");

        let built = client.get("/built/flash").accept_json().send().await;
        let reply = client.get("/reply/flash").accept_json().send().await;
        assert_same(&reply, &built, "Done, JSON");

        let built = client.get("/built/flash").send().await;
        let built_flashes = client.get("/flashes").send().await;
        let reply = client.get("/reply/flash").send().await;
        let reply_flashes = client.get("/flashes").send().await;
        assert_eq!(reply.status, StatusCode::FOUND);
        assert_eq!(reply.location(), Some("/next"));
        assert_same(&reply, &built, "Html::Redirect");
        assert_eq!(reply_flashes.response(), json!([["success", "Saved."]]));
        assert_same(&reply_flashes, &built_flashes, "the flash");
    }
);

const STALE_AFTER_TEN_MINUTES: &[(&str, &str)] = &[
    ("SECURITY_FRESHNESS", "10 minutes"),
    ("SECURITY_TWO_FACTOR", "true"),
    ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
];

backend_test!(
    an_apps_reauthenticate_answers_as_the_frameworks_routes_do,
    STALE_AFTER_TEN_MINUTES,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app_client(&app);
        client.login_ok("ann@example.com", PASSWORD).await;
        app.advance(Duration::from_secs(11 * 60));

        let framework = client.get("/tf-setup").accept_json().send().await;
        let own = client.get("/reply/stale").accept_json().send().await;
        assert_eq!(own.status, StatusCode::UNAUTHORIZED, "{}", own.text());
        assert_eq!(own.response()["reauth_required"], json!(true));
        assert_same(&own, &framework, "JSON reauth_required");

        let framework = client.get("/tf-setup").send().await;
        let framework_flashes = client.get("/flashes").send().await;
        let own = client.get("/reply/stale").send().await;
        let own_flashes = client.get("/flashes").send().await;
        assert_eq!(own.status, StatusCode::FOUND);
        assert_eq!(framework.location(), Some("/verify?next=%2Ftf-setup"));
        assert_eq!(own.location(), Some("/verify?next=%2Freply%2Fstale"));
        assert_same(&own_flashes, &framework_flashes, "the flash");
    }
);

backend_test!(
    an_apps_limited_answers_as_the_frameworks_routes_do,
    &[("SECURITY_LOGIN_RATE_LIMIT", LOGIN_LIMIT)],
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let client = app_client(&app);
        for _ in 0..3 {
            client.login("ann@example.com", "wrong password").await;
        }
        let framework = client.login("ann@example.com", PASSWORD).await;
        assert_eq!(framework.status, StatusCode::TOO_MANY_REQUESTS);
        let retry_after = framework.header("retry-after").expect("Retry-After");
        let own = client
            .get(&format!("/reply/limited/{retry_after}"))
            .accept_json()
            .send()
            .await;
        assert_eq!(own.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(own.header("retry-after"), Some(retry_after));
        assert_same(&own, &framework, "JSON 429");

        let page = client.get("/reply/limited/600").send().await;
        assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(page.header("retry-after"), Some("600"));
        assert!(
            page.html()
                .contains("Too many attempts (3 per 10 minutes). Please try again in 10 minutes."),
            "{}",
            page.html()
        );
    }
);
