//! The account security centre over real HTTP: the sessions list (JSON and the security page),
//! ending a session, the activity (JSON, "Account activity" page, the admin's page and API with
//! filters), the new-device mail through SMTP, and the data export with the profile.

use reqwest::header::{ACCEPT, CONTENT_TYPE, USER_AGENT};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, TestClient, backend_test};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                      Gecko) Chrome/126.0.0.0 Safari/537.36";
const SAFARI: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, \
                      like Gecko) Version/17.5 Safari/605.1.15";

/// A browser with its own user agent: every request says it.
struct Browser {
    client: TestClient,
    agent: &'static str,
    csrf: Option<String>,
}

impl Browser {
    async fn sign_in(app: &TestApp, email: &str, password: &str, agent: &'static str) -> Self {
        let mut browser = Self {
            client: app.client(),
            agent,
            csrf: None,
        };
        let (status, body) = browser
            .send(
                Method::POST,
                "/login",
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        browser.csrf = body["response"]["csrf_token"].as_str().map(str::to_owned);
        browser
    }

    async fn send_raw(&self, method: Method, path: &str, body: Option<Value>) -> reqwest::Response {
        let mut request = self
            .client
            .http
            .request(method, format!("{}{path}", self.client.base))
            .header(USER_AGENT, self.agent)
            .header(ACCEPT, "application/json");
        if let Some(csrf) = &self.csrf {
            request = request.header("X-CSRF-Token", csrf);
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        request.send().await.expect("request")
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let response = self.send_raw(method, path, body).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn sessions(&self) -> Vec<Value> {
        let (status, body) = self.send(Method::GET, "/api/sessions", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["response"]["sessions"]
            .as_array()
            .expect("sessions")
            .clone()
    }

    async fn events(&self) -> Vec<String> {
        let (status, body) = self.send(Method::GET, "/api/activity", None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["response"]["activity"]
            .as_array()
            .expect("activity")
            .iter()
            .map(|e| e["event"].as_str().expect("event").to_owned())
            .collect()
    }

    async fn page(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .client
            .http
            .get(format!("{}{path}", self.client.base))
            .header(USER_AGENT, self.agent)
            .send()
            .await
            .expect("get");
        (response.status(), response.text().await.expect("body"))
    }
}

fn the_id(sessions: &[Value], current: bool) -> String {
    sessions
        .iter()
        .find(|s| s["current"] == json!(current))
        .expect("session")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

backend_test!(
    two_sign_ins_are_listed_with_their_devices_and_one_ends_the_other,
    async |app: TestApp| {
        app.create_user("ann@example.com").await;
        app.create_user("bob@example.com").await;
        let firefox = Browser::sign_in(&app, "ann@example.com", PASSWORD, FIREFOX).await;
        let chrome = Browser::sign_in(&app, "ann@example.com", PASSWORD, CHROME).await;
        let listed = firefox.sessions().await;
        assert_eq!(listed.len(), 2, "{listed:#?}");
        let current = listed
            .iter()
            .find(|s| s["current"] == json!(true))
            .expect("current");
        assert_eq!(current["device"], "Firefox on Linux");
        assert_eq!(current["ip"], "127.0.0.1");
        assert_eq!(current["method"], "password");
        let other = listed
            .iter()
            .find(|s| s["current"] == json!(false))
            .expect("other");
        assert!(
            other["device"]
                .as_str()
                .expect("device")
                .starts_with("Chrome on Windows")
        );

        // A failed attempt, for the activity.
        let (status, _) = app
            .client()
            .post_json(
                "/login",
                json!({"email": "ann@example.com", "password": "wrong one"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);

        // Bob's session id is a 404 for Ann.
        let bob = Browser::sign_in(&app, "bob@example.com", PASSWORD, FIREFOX).await;
        let bob_id = the_id(&bob.sessions().await, true);
        let (status, _) = firefox
            .send(Method::DELETE, &format!("/api/sessions/{bob_id}"), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            bob.send(Method::GET, "/api/me", None).await.0,
            StatusCode::OK
        );

        let chrome_id = the_id(&listed, false);
        let (status, body) = firefox
            .send(Method::DELETE, &format!("/api/sessions/{chrome_id}"), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            chrome.send(Method::GET, "/api/me", None).await.0,
            StatusCode::UNAUTHORIZED,
            "ended at once"
        );
        assert_eq!(
            firefox.events().await,
            [
                "session_revoked",
                "sign_in_failed",
                "new_device",
                "sign_in",
                "sign_in"
            ]
        );
        // The second browser was new to the account: its owner was told.
        let mail = app.mail_to("ann@example.com").await;
        assert!(mail.subject.contains("New sign-in"), "{}", mail.subject);
        assert!(mail.text.contains("Chrome on Windows"), "{}", mail.text);

        // A third browser: mailed too.
        let safari = Browser::sign_in(&app, "ann@example.com", PASSWORD, SAFARI).await;
        let mail = app.mail_to("ann@example.com").await;
        assert!(mail.text.contains("Safari on Mac OSX"), "{}", mail.text);
        assert!(mail.text.contains("/dashboard/security/"), "{}", mail.text);

        // The export: the profile and the activity, no hash or secret.
        let response = safari
            .send_raw(Method::GET, "/api/account/export", None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().await.expect("body");
        let doc: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(doc["account"]["email"], "ann@example.com");
        assert!(doc["profile"].is_object(), "{doc}");
        assert!(doc["profile"].get("first_name").is_some(), "{doc}");
        assert_eq!(doc["activity"][0]["event"], "new_device");
        let user = app
            .security
            .datastore()
            .user_by_email("ann@example.com")
            .await
            .expect("lookup")
            .expect("ann");
        assert!(!text.contains(user.password.as_deref().expect("hash")));
        assert!(!text.contains(&user.fs_uniquifier));
    }
);

backend_test!(
    the_security_page_lists_the_sessions_and_ends_one_with_its_button,
    async |app: TestApp| {
        app.create_user("ann@example.com").await;
        let firefox = Browser::sign_in(&app, "ann@example.com", PASSWORD, FIREFOX).await;
        let chrome = Browser::sign_in(&app, "ann@example.com", PASSWORD, CHROME).await;
        let (status, html) = firefox.page("/dashboard/security/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("id=\"session-list\""), "{html}");
        assert!(
            html.contains("Firefox on Linux") && html.contains("Chrome on Windows"),
            "{html}"
        );
        assert_eq!(html.matches("This device").count(), 1, "{html}");
        assert!(html.contains("/api/account/export") && html.contains("Account activity"));
        let chrome_id = the_id(&firefox.sessions().await, false);
        let action = format!("/dashboard/security/sessions/{chrome_id}/revoke");
        assert!(html.contains(&action), "{html}");
        let csrf = {
            let marker = "name=\"csrf_token\" value=\"";
            let start = html.find(marker).expect("csrf") + marker.len();
            html[start..start + html[start..].find('"').expect("quote")].to_owned()
        };
        let response = firefox
            .client
            .http
            .post(format!("{}{action}", firefox.client.base))
            .header(USER_AGENT, FIREFOX)
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(
            chrome.send(Method::GET, "/api/me", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (_, html) = firefox.page("/dashboard/security/").await;
        assert!(html.contains("That session has been signed out."), "{html}");
        assert!(!html.contains("Chrome on Windows"), "{html}");
        // An id that is not one of hers is a 404.
        let response = firefox
            .client
            .http
            .post(format!(
                "{}/dashboard/security/sessions/{chrome_id}/revoke",
                firefox.client.base
            ))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);

        // The "Account activity" page.
        let (status, html) = firefox.page("/dashboard/security/activity").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Account activity"), "{html}");
        assert!(html.contains("A session was signed out"), "{html}");
        assert!(html.contains("Signed in with a password"), "{html}");
        assert!(html.contains("Sign-in from a new device"), "{html}");
        // Signed out, the page asks to sign in.
        let (status, _) = Browser {
            client: app.client(),
            agent: FIREFOX,
            csrf: None,
        }
        .page("/dashboard/security/activity")
        .await;
        assert!(status.is_redirection(), "{status}");
    }
);

backend_test!(
    admins_see_everyones_activity_with_filters_and_others_are_refused,
    async |app: TestApp| {
        app.create_user("ann@example.com").await;
        let ann = Browser::sign_in(&app, "ann@example.com", PASSWORD, FIREFOX).await;
        let (status, _) = app
            .client()
            .post_json(
                "/login",
                json!({"email": "ann@example.com", "password": "wrong one"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let admin = Browser::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, CHROME).await;

        let (status, body) = admin
            .send(
                Method::GET,
                "/api/admin/activity?event=sign_in_failed",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let events = body["response"]["activity"].as_array().expect("activity");
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0]["event"], "sign_in_failed");
        let (status, body) = admin
            .send(Method::GET, "/api/admin/activity?event=nope", None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let today = time::OffsetDateTime::now_utc().date();
        let tomorrow = today.next_day().expect("tomorrow");
        let (_, body) = admin
            .send(
                Method::GET,
                &format!("/api/admin/activity?from={tomorrow}"),
                None,
            )
            .await;
        assert_eq!(body["response"]["activity"], json!([]), "{body}");

        let (status, html) = admin.page("/admin/activity?user=ann%40example.com").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Failed sign-in attempt"), "{html}");
        assert!(html.contains("ann@example.com"), "{html}");
        let (status, html) = admin
            .page("/admin/activity?user=nobody%40example.com")
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(html.contains("There is no user"), "{html}");

        assert_eq!(
            ann.send(Method::GET, "/api/admin/activity", None).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(ann.page("/admin/activity").await.0, StatusCode::FORBIDDEN);

        // Role changes by an admin are in Ann's activity, by the admin.
        let (_, html) = admin.page("/admin/users").await;
        let csrf = {
            let marker = "name=\"csrf_token\" value=\"";
            let start = html.find(marker).expect("csrf") + marker.len();
            html[start..start + html[start..].find('"').expect("quote")].to_owned()
        };
        let ann_id = app
            .security
            .datastore()
            .user_by_email("ann@example.com")
            .await
            .expect("lookup")
            .expect("ann")
            .id;
        let response = admin
            .client
            .http
            .post(format!(
                "{}/admin/users/{ann_id}/roles/add",
                admin.client.base
            ))
            .form(&[("csrf_token", csrf.as_str()), ("role", "Admin")])
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), StatusCode::FOUND);
        let (_, body) = ann.send(Method::GET, "/api/activity", None).await;
        let latest = &body["response"]["activity"][0];
        assert_eq!(latest["event"], "role_added");
        assert_eq!(latest["detail"], json!({"role": "Admin"}));
        assert_ne!(latest["actor_id"], json!(ann_id));
    }
);

backend_test!(
    deleting_the_account_is_in_the_admins_activity,
    async |app: TestApp| {
        app.create_user("leaving@example.com").await;
        let leaving = Browser::sign_in(&app, "leaving@example.com", PASSWORD, FIREFOX).await;
        let (status, body) = leaving
            .send(
                Method::DELETE,
                "/api/account",
                Some(json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let admin = Browser::sign_in(&app, ADMIN_EMAIL, ADMIN_PASSWORD, CHROME).await;
        let (_, body) = admin
            .send(
                Method::GET,
                "/api/admin/activity?event=account_deleted",
                None,
            )
            .await;
        let events = body["response"]["activity"].as_array().expect("activity");
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0]["device"], "Firefox on Linux");
    }
);
