//! Open redirects: every spelling of another host in `next` is refused wherever `next` is
//! followed (GET /login when signed in, the login form and JSON body, /verify, after
//! /tf-validate), and the default view is used instead.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{EXACT, PASSWORD, TestApp, TestClient, backend_test, csrf_in_html};

/// Spellings of `evil.com` (or of a page that is not a page of this site); the test host is
/// `rampart.test`.
pub(crate) const EVIL: &[&str] = &[
    "/..//evil.com",
    "/.//evil.com",
    "/%2e%2e//evil.com",
    "/%2E%2e/%2fevil.com",
    "/.%2e//evil.com",
    "/a/..//evil.com",
    "/a/../..//evil.com",
    "/a/b/../../..//evil.com/x?y#z",
    "http://rampart.test/..//evil.com",
    "http://rampart.test//evil.com",
    "/\\evil.com",
    "/\\\\evil.com",
    "\\/evil.com",
    "\\\\evil.com",
    "/%5cevil.com",
    "/%5C%5Cevil.com",
    "/%09/evil.com",
    "/\t/evil.com",
    "\t//evil.com",
    "/\n/evil.com",
    "//evil.com",
    "///evil.com",
    " //evil.com",
    "https:evil.com",
    "http:evil.com",
    "http://evil.com@rampart.test/",
    "http://rampart.test@evil.com/",
    "http://evil.com",
    "HTTPS://EVIL.COM/",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,<script>alert(1)</script>",
];

fn query(next: &str) -> String {
    url::form_urlencoded::byte_serialize(next.as_bytes()).collect()
}

/// Fails unless a `Location` stays on this site: a single leading `/`, nothing of `evil.com`.
fn assert_local(location: Option<&str>, expected: &str, next: &str) {
    assert_eq!(location, Some(expected), "next={next:?}");
}

backend_test!(
    signed_in_get_login_never_follows_a_foreign_next,
    EXACT,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        for next in EVIL {
            let response = client
                .get(&format!("/login?next={}", query(next)))
                .send()
                .await;
            assert_eq!(response.status, StatusCode::FOUND, "{next:?}");
            assert_local(response.location(), "/", next);
        }
        let good = client
            .get(&format!("/login?next={}", query("/a/../api/me?tab=1")))
            .send()
            .await;
        assert_local(good.location(), "/api/me?tab=1", "/a/../api/me?tab=1");
    }
);

/// Signs in through the HTML form with `?next=`.
async fn form_login(client: &TestClient, next: &str) -> crate::harness::TestResponse {
    let page = client.get("/login").send().await;
    client
        .post(&format!("/login?next={}", query(next)))
        .form(&[
            ("email", "ann@example.com"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in_html(&page.text())),
        ])
        .send()
        .await
}

backend_test!(
    the_login_form_and_json_never_follow_a_foreign_next,
    EXACT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        for next in EVIL {
            let client = app.client();
            let response = form_login(&client, next).await;
            assert_eq!(response.status, StatusCode::OK, "{next:?}");
            assert!(response.location().is_none(), "{next:?}");
            assert!(
                response
                    .html()
                    .contains("Redirections outside the domain are forbidden"),
                "{next:?}: {}",
                response.text()
            );
            assert!(!response.text().contains("evil.com"), "{next:?}");

            let json = client
                .post("/login")
                .json(&json!({"email": "ann@example.com", "password": PASSWORD, "next": next}))
                .send()
                .await;
            json.assert_field_errors(
                &json!({"next": ["Redirections outside the domain are forbidden"]}),
            );
            assert_eq!(client.me().await.status, StatusCode::UNAUTHORIZED);
        }
        let good = form_login(&app.client(), "/a/./b/../../api/me").await;
        assert_local(good.location(), "/api/me", "/a/./b/../../api/me");
    }
);

backend_test!(
    verify_never_follows_a_foreign_next,
    EXACT,
    async |app: TestApp| {
        let client = app.logged_in("ann@example.com").await;
        for next in EVIL {
            let path = format!("/verify?next={}", query(next));
            let page = client.get(&path).send().await;
            assert_eq!(page.status, StatusCode::OK, "{next:?}");
            assert!(!page.text().contains("evil.com"), "{next:?}");
            let done = client
                .post(&path)
                .form(&[
                    ("password", PASSWORD),
                    ("csrf_token", &csrf_in_html(&page.text())),
                ])
                .send()
                .await;
            assert_eq!(done.status, StatusCode::FOUND, "{next:?}: {}", done.text());
            assert_local(done.location(), "/", next);
        }
    }
);
