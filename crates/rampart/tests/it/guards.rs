//! Guards: `auth_required`, `roles_required`, `roles_accepted`, `permissions_accepted`,
//! `anonymous_required`, HTTP Basic, and their 401/403 envelopes and browser redirects.

use axum::http::StatusCode;
use base64::Engine;
use serde_json::json;

use crate::harness::{GENERIC, PASSWORD, TestApp, backend_test};

const UNAUTHENTICATED: &str = "You must sign in to view this resource.";
const FORBIDDEN: &str = "You do not have permission to view this resource.";

fn basic(identity: &str, password: &str) -> String {
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{identity}:{password}"));
    format!("Basic {encoded}")
}

backend_test!(
    anonymous_json_requests_get_a_401_envelope,
    GENERIC,
    async |app: TestApp| {
        for path in ["/api/me", "/api/admin", "/api/write", "/api/any-role"] {
            let response = app.client().get(path).accept_json().send().await;
            assert_eq!(
                response.json(),
                json!({"meta": {"code": 401}, "response": {"errors": [UNAUTHENTICATED]}}),
                "{path}"
            );
        }
    }
);

backend_test!(
    anonymous_browsers_are_sent_to_login_with_next,
    GENERIC,
    async |app: TestApp| {
        let response = app.client().get("/api/me").send().await;
        assert_eq!(response.location(), Some("/login?next=/api/me"));
        // The login page it leads to renders, and its form keeps `next`.
        let page = app.client().get("/login?next=/api/me").send().await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        assert!(
            page.html().contains("action=\"/login?next=%2Fapi%2Fme\""),
            "{}",
            page.text()
        );
        let response = app.client().get("/api/admin?tab=users").send().await;
        let location = response.location().expect("a redirect");
        assert!(location.starts_with("/login?next="), "{location}");
        let next = url::form_urlencoded::parse(location.split_once('?').unwrap().1.as_bytes())
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned());
        assert_eq!(next.as_deref(), Some("/api/admin?tab=users"));
    }
);

backend_test!(
    users_without_the_role_or_permission_get_a_403_envelope,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        for path in ["/api/admin", "/api/any-role"] {
            let response = client.get(path).accept_json().send().await;
            assert_eq!(
                response.json(),
                json!({"meta": {"code": 403}, "response": {"errors": [FORBIDDEN]}}),
                "{path}"
            );
        }
        let write = client.get("/api/write").accept_json().send().await;
        assert_eq!(write.status, StatusCode::OK);
        assert_eq!(write.response()["message"], "you have user-write");
    }
);

backend_test!(admins_pass_role_guards, GENERIC, async |app: TestApp| {
    let client = app.logged_in("root@example.com").await;
    let user = app.user("root@example.com").await;
    app.datastore()
        .add_role_to_user(user.id, "Admin")
        .await
        .unwrap();
    for path in ["/api/admin", "/api/any-role", "/api/write"] {
        let response = client.get(path).accept_json().send().await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {}",
            response.text()
        );
    }
    let me = client.me().await.response();
    assert_eq!(me["user"]["roles"], json!(["Admin", "User"]));
    assert_eq!(
        me["user"]["permissions"],
        json!(["admin-read", "admin-write", "user-read", "user-write"])
    );
});

backend_test!(
    a_forbidden_browser_gets_a_403_page_not_a_redirect,
    GENERIC,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        let response = client.get("/api/admin").send().await;
        assert_eq!(response.status, StatusCode::FORBIDDEN);
        assert!(response.html().contains(FORBIDDEN), "{}", response.text());
    }
);

backend_test!(
    anonymous_only_routes_refuse_signed_in_users,
    GENERIC,
    async |app: TestApp| {
        let anonymous = app.client().get("/anon").accept_json().send().await;
        assert_eq!(anonymous.status, StatusCode::OK);
        let client = app.logged_in("ann@example.com").await;
        let json = client.get("/anon").accept_json().send().await;
        json.assert_errors(
            StatusCode::BAD_REQUEST,
            &["You can only access this endpoint when not logged in."],
        );
        let browser = client.get("/anon").send().await;
        assert_eq!(browser.location(), Some("/"));
    }
);

backend_test!(
    basic_auth_routes_accept_valid_credentials_only,
    GENERIC,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        let ok = app
            .client()
            .get("/basic")
            .accept_json()
            .header("authorization", &basic("ann@example.com", PASSWORD))
            .send()
            .await;
        assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
        assert_eq!(
            ok.response(),
            json!({"email": "ann@example.com", "method": "basic"})
        );
        for authorization in [
            basic("ann@example.com", "wrong password"),
            basic("nobody@example.com", PASSWORD),
            "Basic !!!".into(),
            "Bearer x".into(),
        ] {
            let refused = app
                .client()
                .get("/basic")
                .accept_json()
                .header("authorization", &authorization)
                .send()
                .await;
            refused.assert_errors(StatusCode::UNAUTHORIZED, &[UNAUTHENTICATED]);
            assert_eq!(
                refused.header("www-authenticate"),
                Some("Basic realm=\"Login Required\"")
            );
        }
        let none = app.client().get("/basic").accept_json().send().await;
        assert_eq!(none.status, StatusCode::UNAUTHORIZED);
        // A session is not Basic authentication.
        let session = app.client();
        session.login_ok("ann@example.com", PASSWORD).await;
        assert_eq!(
            session.get("/basic").accept_json().send().await.status,
            StatusCode::UNAUTHORIZED
        );
    }
);

backend_test!(
    post_guards_check_authentication_before_anything_else,
    GENERIC,
    async |app: TestApp| {
        let response = app.client().post("/api/echo").json(&json!({})).send().await;
        response.assert_errors(StatusCode::UNAUTHORIZED, &[UNAUTHENTICATED]);
    }
);
