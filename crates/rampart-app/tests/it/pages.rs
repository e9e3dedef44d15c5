//! The HTML pages over HTTP (no browser), on every backend: guards, the profile form's CSRF and
//! picture handling, the sign-up terms box, account deletion in two steps, the admin's actions.

use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageFormat, RgbImage};
use reqwest::multipart::{Form, Part};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::harness::{ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, TestApp, TestClient, backend_test};

/// The value of the hidden input `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::from_pixel(
        width,
        height,
        image::Rgb([9, 99, 199]),
    ))
    .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
    .expect("png");
    bytes
}

async fn get(client: &TestClient, path: &str) -> (StatusCode, String, header::HeaderMap) {
    let response = client
        .http
        .get(format!("{}{path}", client.base))
        .send()
        .await
        .expect("get");
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().await.expect("body"), headers)
}

fn location(headers: &header::HeaderMap) -> &str {
    headers[header::LOCATION].to_str().expect("location")
}

async fn post_form(
    client: &TestClient,
    path: &str,
    pairs: &[(&str, &str)],
) -> (StatusCode, String, header::HeaderMap) {
    let response = client
        .http
        .post(format!("{}{path}", client.base))
        .form(pairs)
        .send()
        .await
        .expect("post");
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().await.expect("body"), headers)
}

async fn post_profile(client: &TestClient, form: Form) -> (StatusCode, String, header::HeaderMap) {
    let response = client
        .http
        .post(format!("{}/dashboard/profile/", client.base))
        .multipart(form)
        .send()
        .await
        .expect("post");
    let status = response.status();
    let headers = response.headers().clone();
    (status, response.text().await.expect("body"), headers)
}

async fn profile(client: &TestClient) -> Value {
    let (status, body) = client.get_json("/api/profile").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["response"]["profile"].clone()
}

backend_test!(
    pages_need_a_session_and_the_admin_area_needs_the_admin_role,
    async |app: TestApp| {
        app.create_user("user@example.com").await;
        let anonymous = app.client();
        for path in ["/dashboard/profile/", "/admin/users"] {
            let (status, _, headers) = get(&anonymous, path).await;
            assert_eq!(status, StatusCode::FOUND, "{path}");
            assert!(location(&headers).starts_with("/login?next="), "{path}");
        }
        let (status, html, headers) = get(&anonymous, "/no/such/page").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(html.contains("Page not found") && html.contains("/static/app.css"));
        assert!(
            headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let (status, css, headers) = get(&anonymous, "/static/app.css").await;
        assert_eq!(status, StatusCode::OK);
        assert!(css.contains(":root"));
        assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let (status, _, _) = get(&anonymous, "/terms").await;
        assert_eq!(status, StatusCode::OK);

        let (user, token) = app.login("user@example.com", PASSWORD).await;
        let (status, html, _) = get(&user, "/admin/users").await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(
            html.contains("You can&#x27;t go there") || html.contains("You can't go there"),
            "{html}"
        );
        let (_, page, _) = get(&user, "/").await;
        assert!(
            !page.contains("href=\"/admin/users\""),
            "no Admin link for users"
        );
        let csrf = hidden(&page, "csrf_token");
        let admin_id = app
            .security
            .datastore()
            .user_by_email(ADMIN_EMAIL)
            .await
            .expect("lookup")
            .expect("admin")
            .id;
        let (status, _, _) = post_form(
            &user,
            &format!("/admin/users/{admin_id}/deactivate"),
            &[("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // Pages are for browser sessions: an auth token alone is sent to the sign-in page.
        let response = app
            .client()
            .http
            .get(format!("{}/dashboard/profile/", app.base))
            .header("Authentication-Token", &token)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::FOUND);
    }
);

backend_test!(
    the_profile_form_checks_csrf_and_stores_only_real_pictures,
    async |app: TestApp| {
        app.create_user("pic@example.com").await;
        let (client, _) = app.login("pic@example.com", PASSWORD).await;
        let (status, html, _) = get(&client, "/dashboard/profile/").await;
        assert_eq!(status, StatusCode::OK);
        let csrf = hidden(&html, "csrf_token");

        // Without the token the layer refuses the multipart form.
        let (status, _, _) = post_profile(&client, Form::new().text("first_name", "Eve")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(profile(&client).await["first_name"], Value::Null);

        // A file that says it is a PNG but is not: refused, nothing saved.
        let svg = Part::bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec())
            .file_name("me.png")
            .mime_str("image/png")
            .expect("mime");
        let form = Form::new()
            .text("csrf_token", csrf.clone())
            .text("first_name", "Eve")
            .part("avatar", svg);
        let (status, html, _) = post_profile(&client, form).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Choose a PNG, JPEG or WebP picture."),
            "{html}"
        );
        assert!(html.contains("value=\"Eve\""), "what was typed is kept");
        assert_eq!(profile(&client).await["first_name"], Value::Null);

        // A bad date and a picture over the limit are reported together.
        let big = Part::bytes(vec![0x89; 2 * 1024 * 1024 + 10]).file_name("big.png");
        let form = Form::new()
            .text("csrf_token", csrf.clone())
            .text("dob", "12/01/1990")
            .part("avatar", big);
        let (_, html, _) = post_profile(&client, form).await;
        assert!(html.contains("Must be a date (YYYY-MM-DD)"), "{html}");
        assert!(html.contains("The picture is too large"), "{html}");

        // A real picture: re-encoded, stored under a random name, served with its type.
        let form = Form::new()
            .text("csrf_token", csrf.clone())
            .text("first_name", "Eve")
            .text("dob", "1990-01-12")
            .part(
                "avatar",
                Part::bytes(png(900, 600)).file_name("holiday.webp"),
            );
        let (status, _, headers) = post_profile(&client, form).await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/dashboard/profile/");
        let saved = profile(&client).await;
        assert_eq!(saved["first_name"], "Eve");
        assert_eq!(saved["dob"], "1990-01-12");
        let first = saved["avatar"].as_str().expect("avatar").to_owned();
        assert!(
            first.starts_with("/media/avatars/") && first.ends_with(".jpg"),
            "{first}"
        );
        let (status, _, headers) = get(&app.client(), &first).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/jpeg");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let stored = app
            .media
            .avatar_dir()
            .join(first.trim_start_matches("/media/avatars/"));
        let decoded = image::open(&stored).expect("stored picture decodes");
        assert_eq!((decoded.width(), decoded.height()), (512, 341));

        // A new picture replaces the old file; removing it deletes the file.
        let form = Form::new()
            .text("csrf_token", csrf.clone())
            .part("avatar", Part::bytes(png(40, 40)).file_name("x"));
        post_profile(&client, form).await;
        let second = profile(&client).await["avatar"]
            .as_str()
            .expect("avatar")
            .to_owned();
        assert_ne!(first, second);
        assert!(!stored.exists(), "the old picture is deleted");
        assert_eq!(get(&app.client(), &first).await.0, StatusCode::NOT_FOUND);
        let form = Form::new()
            .text("csrf_token", csrf.clone())
            .text("first_name", "Eve")
            .text("remove_avatar", "y");
        post_profile(&client, form).await;
        assert_eq!(profile(&client).await["avatar"], Value::Null);
        assert_eq!(get(&app.client(), &second).await.0, StatusCode::NOT_FOUND);

        // Names that we could not have written are not served.
        for path in [
            "/media/avatars/..%2Fsecrets.toml",
            "/media/avatars/1-abc.png",
        ] {
            assert_eq!(
                get(&app.client(), path).await.0,
                StatusCode::NOT_FOUND,
                "{path}"
            );
        }

        // Deleting the account through the API takes the picture with it.
        let form = Form::new()
            .text("csrf_token", csrf.clone())
            .part("avatar", Part::bytes(png(20, 20)).file_name("x.png"));
        post_profile(&client, form).await;
        let third = profile(&client).await["avatar"]
            .as_str()
            .expect("avatar")
            .to_owned();
        let (status, body) = client
            .request(
                reqwest::Method::DELETE,
                "/api/account",
                Some(json!({"password": PASSWORD})),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(get(&app.client(), &third).await.0, StatusCode::NOT_FOUND);
    }
);

/// An all-black 1-bit PNG, written row by row: a few kilobytes, however many pixels.
fn blank_png(width: u32, height: u32) -> Vec<u8> {
    use std::io::Write as _;
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    let mut writer = encoder.write_header().expect("png header");
    let mut stream = writer.stream_writer().expect("png stream");
    let row = vec![0u8; width.div_ceil(8) as usize];
    for _ in 0..height {
        stream.write_all(&row).expect("png row");
    }
    stream.finish().expect("png end");
    writer.finish().expect("png end");
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn picture_decoding_is_bounded_in_pixels_and_in_concurrency() {
    let app = TestApp::start(
        &crate::harness::Backend::Sqlite,
        &[("RAMPART_AVATAR_DECODES", "1")],
    )
    .await;
    app.create_user("big@example.com").await;
    let (client, _) = app.login("big@example.com", PASSWORD).await;
    let (_, html, _) = get(&client, "/dashboard/profile/").await;
    let csrf = hidden(&html, "csrf_token");
    let upload = |bytes: Vec<u8>| {
        Form::new()
            .text("csrf_token", csrf.clone())
            .text("first_name", "Big")
            .part("avatar", Part::bytes(bytes).file_name("me.png"))
    };

    // The probe's all-zero 8000×8000 PNG, and 16+ megapixels within 4096 a side: 413 at once,
    // with the form and a clear message; nothing saved.
    for (width, height) in [(8_000, 8_000), (4_096, 4_000)] {
        let start = std::time::Instant::now();
        let (status, html, _) = post_profile(&client, upload(blank_png(width, height))).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{width}×{height}");
        assert!(
            html.contains(&format!("{width}×{height} pixels"))
                && html.contains("the limit is 4096×4096 pixels"),
            "{html}"
        );
        assert!(html.contains("value=\"Big\""), "what was typed is kept");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{width}×{height} took {:?}",
            start.elapsed()
        );
        assert_eq!(profile(&client).await["first_name"], Value::Null);
    }

    // Every decode slot busy: 503 with Retry-After, the form says to try again.
    let held = app.media.try_decode_permit().expect("a free slot");
    let (status, html, headers) = post_profile(&client, upload(png(40, 40))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers[header::RETRY_AFTER], "5");
    assert!(html.contains("Try again in a few seconds"), "{html}");
    assert_eq!(profile(&client).await["avatar"], Value::Null);

    // A slot free again: an ordinary picture is stored.
    drop(held);
    let (status, _, _) = post_profile(&client, upload(png(40, 40))).await;
    assert_eq!(status, StatusCode::FOUND);
    let saved = profile(&client).await;
    assert!(
        saved["avatar"]
            .as_str()
            .is_some_and(|a| a.starts_with("/media/avatars/")),
        "{saved}"
    );
}

backend_test!(
    the_avatar_is_only_ever_a_picture_the_app_stored,
    async |app: TestApp| {
        app.create_user("pic@example.com").await;
        let (client, token) = app.login("pic@example.com", PASSWORD).await;

        // The JSON API refuses any avatar text, session or token, and saves nothing else.
        for avatar in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:image/svg+xml,<svg onload=alert(1)>",
            "https://evil.example/a.png",
            "//evil.example/a.png",
            "/media/avatars/1-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.png",
            "\" onerror=\"alert(1)",
        ] {
            let (status, body) = client
                .post_json("/api/profile", json!({"avatar": avatar, "city": "Paris"}))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{avatar}: {body}");
            assert_eq!(
                body["response"]["field_errors"]["avatar"],
                json!([rampart_app::profile::AVATAR_UPLOAD_ONLY]),
                "{avatar}"
            );
            let (status, _) = app
                .client()
                .request(
                    reqwest::Method::POST,
                    "/api/profile",
                    Some(json!({"avatar": avatar})),
                    Some(&token),
                )
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{avatar} with a token");
        }
        let stored = profile(&client).await;
        assert_eq!(stored["avatar"], Value::Null);
        assert_eq!(stored["city"], Value::Null);

        // An uploaded picture may be sent back unchanged with the rest of the profile, or
        // removed with null.
        let (_, html, _) = get(&client, "/dashboard/profile/").await;
        let csrf = hidden(&html, "csrf_token");
        let form = Form::new()
            .text("csrf_token", csrf)
            .part("avatar", Part::bytes(png(30, 30)).file_name("me.png"));
        assert_eq!(post_profile(&client, form).await.0, StatusCode::FOUND);
        let mut read = profile(&client).await;
        let url = read["avatar"].as_str().expect("avatar").to_owned();
        read["city"] = json!("Paris");
        let (status, body) = client.post_json("/api/profile", read).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["response"]["profile"]["avatar"], url.as_str());
        assert_eq!(body["response"]["profile"]["city"], "Paris");
        let (status, body) = client
            .post_json("/api/profile", json!({"avatar": null}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["response"]["profile"]["avatar"], Value::Null);
        assert_eq!(get(&app.client(), &url).await.0, StatusCode::NOT_FOUND);

        // Text stored before the API refused it is never shown: not in the API, not in pages.
        let user_id = app
            .security
            .datastore()
            .user_by_email("pic@example.com")
            .await
            .expect("lookup")
            .expect("user")
            .id;
        const SQL: &str = "UPDATE \"profile\" SET \"avatar\" = $1 WHERE \"user_id\" = $2";
        let evil = "javascript:alert(document.cookie)";
        match app.security.datastore().pool() {
            rampart::DbPool::Sqlite(pool) => sqlx::query(SQL)
                .bind(evil)
                .bind(user_id)
                .execute(pool)
                .await
                .map(drop),
            rampart::DbPool::Postgres(pool) => sqlx::query(SQL)
                .bind(evil)
                .bind(user_id)
                .execute(pool)
                .await
                .map(drop),
        }
        .expect("legacy avatar");
        assert_eq!(profile(&client).await["avatar"], Value::Null);
        for path in ["/", "/dashboard/profile/"] {
            let (status, html, _) = get(&client, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(!html.contains("javascript:"), "{path}: {html}");
        }
        let (admin, _) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let (status, html, _) = get(&admin, "/admin/users").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("pic@example.com"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }
);

backend_test!(
    the_sign_up_page_needs_the_terms_box_but_the_json_api_does_not,
    async |app: TestApp| {
        let browser = app.client();
        let (_, html, _) = get(&browser, "/register").await;
        let csrf = hidden(&html, "csrf_token");
        let fields = [
            ("csrf_token", csrf.as_str()),
            ("username", "newbie"),
            ("email", "new@example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ];
        let (status, html, _) = post_form(&browser, "/register", &fields).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains(rampart_app::TERMS_REQUIRED), "{html}");
        assert!(html.contains("id=\"terms\""), "{html}");
        assert!(html.contains("value=\"newbie\""), "what was typed is kept");
        let datastore = app.security.datastore();
        assert!(
            datastore
                .user_by_email("new@example.com")
                .await
                .expect("lookup")
                .is_none()
        );

        let mut ticked = fields.to_vec();
        ticked.push(("terms", "y"));
        let (status, html, _) = post_form(&browser, "/register", &ticked).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Check your email"), "{html}");
        assert!(
            datastore
                .user_by_email("new@example.com")
                .await
                .expect("lookup")
                .is_some()
        );

        // Flask-Security's JSON API is unchanged: no terms field.
        let (status, body) = app
            .client()
            .post_json(
                "/register",
                json!({"email": "spa@example.com", "password": PASSWORD, "password_confirm": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
);

backend_test!(
    deleting_the_account_takes_the_password_and_a_fresh_confirmation,
    async |app: TestApp| {
        app.create_user("leaving@example.com").await;
        let (client, _) = app.login("leaving@example.com", PASSWORD).await;
        let (_, html, _) = get(&client, "/dashboard/security/").await;
        assert!(html.contains("Delete account"), "{html}");
        let csrf = hidden(&html, "csrf_token");

        let (status, html, _) = post_form(
            &client,
            "/dashboard/security/delete",
            &[("csrf_token", &csrf), ("delete_password", "nope")],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Invalid password") && html.contains("aria-invalid"),
            "{html}"
        );

        let step = |csrf: String| {
            let client = &client;
            async move {
                let (_, html, _) = post_form(
                    client,
                    "/dashboard/security/delete",
                    &[("csrf_token", &csrf), ("delete_password", PASSWORD)],
                )
                .await;
                assert!(html.contains("Delete your account?"), "{html}");
                hidden(&html, "confirmation")
            }
        };
        // A confirmation older than 10 minutes is refused.
        let confirmation = step(csrf.clone()).await;
        app.clock.advance(Duration::from_secs(11 * 60));
        let (status, _, headers) = post_form(
            &client,
            "/dashboard/security/delete/confirm",
            &[("csrf_token", &csrf), ("confirmation", &confirmation)],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/dashboard/security/");
        let datastore = app.security.datastore();
        assert!(
            datastore
                .user_by_email("leaving@example.com")
                .await
                .expect("lookup")
                .is_some()
        );

        let confirmation = step(csrf.clone()).await;
        let (status, _, headers) = post_form(
            &client,
            "/dashboard/security/delete/confirm",
            &[("csrf_token", &csrf), ("confirmation", &confirmation)],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/login");
        assert!(
            datastore
                .user_by_email("leaving@example.com")
                .await
                .expect("lookup")
                .is_none()
        );
        let (status, html, _) = get(&client, "/login").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("have been deleted"), "{html}");
        assert_eq!(get(&client, "/").await.0, StatusCode::FOUND, "signed out");
    }
);

backend_test!(
    admins_manage_activation_and_roles_but_cannot_lock_themselves_out,
    async |app: TestApp| {
        app.create_user("carol@example.com").await;
        let (carol, _) = app.login("carol@example.com", PASSWORD).await;
        let (admin, _) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let (status, html, _) = get(&admin, "/admin/users?q=CAROL").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("1 user matching") && html.contains("carol@example.com"),
            "{html}"
        );
        let csrf = hidden(&html, "csrf_token");
        let datastore = app.security.datastore();
        let carol_id = datastore
            .user_by_email("carol@example.com")
            .await
            .expect("lookup")
            .expect("carol")
            .id;
        let admin_id = datastore
            .user_by_email(ADMIN_EMAIL)
            .await
            .expect("lookup")
            .expect("admin")
            .id;

        // Without the confirmation nothing happens.
        let (status, _, _) = post_form(
            &admin,
            &format!("/admin/users/{carol_id}/deactivate"),
            &[("csrf_token", &csrf), ("q", "carol"), ("page", "1")],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(carol.get_json("/api/me").await.0, StatusCode::OK);
        let (_, html, _) = get(&admin, "/admin/users?q=carol").await;
        assert!(html.contains("was not deactivated"), "{html}");
        assert!(html.contains("Yes, deactivate"), "{html}");

        // Deactivation signs carol out at once.
        let (status, _, headers) = post_form(
            &admin,
            &format!("/admin/users/{carol_id}/deactivate"),
            &[
                ("csrf_token", &csrf),
                ("q", "carol"),
                ("page", "1"),
                ("confirm", "yes"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/admin/users?q=carol");
        assert_eq!(carol.get_json("/api/me").await.0, StatusCode::UNAUTHORIZED);
        let (_, html, _) = get(&admin, "/admin/users?q=carol").await;
        assert!(
            html.contains("has been deactivated") && html.contains("Deactivated"),
            "{html}"
        );
        post_form(
            &admin,
            &format!("/admin/users/{carol_id}/activate"),
            &[("csrf_token", &csrf)],
        )
        .await;
        let (status, _) = app
            .client()
            .post_json(
                "/login",
                json!({"email": "carol@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "active again");

        // Roles.
        post_form(
            &admin,
            &format!("/admin/users/{carol_id}/roles/add"),
            &[("csrf_token", &csrf), ("role", "Admin")],
        )
        .await;
        let roles = datastore.user_roles(carol_id).await.expect("roles");
        assert!(roles.iter().any(|r| r.name == "Admin"));
        post_form(
            &admin,
            &format!("/admin/users/{carol_id}/roles/add"),
            &[("csrf_token", &csrf), ("role", "Wizard")],
        )
        .await;
        let (_, html, _) = get(&admin, "/admin/users").await;
        assert!(html.contains("There is no role"), "{html}");
        post_form(
            &admin,
            &format!("/admin/users/{carol_id}/roles/remove"),
            &[("csrf_token", &csrf), ("role", "Admin")],
        )
        .await;
        let roles = datastore.user_roles(carol_id).await.expect("roles");
        assert!(!roles.iter().any(|r| r.name == "Admin"));

        // No locking oneself out.
        post_form(
            &admin,
            &format!("/admin/users/{admin_id}/deactivate"),
            &[("csrf_token", &csrf)],
        )
        .await;
        post_form(
            &admin,
            &format!("/admin/users/{admin_id}/roles/remove"),
            &[("csrf_token", &csrf), ("role", "Admin")],
        )
        .await;
        let me = datastore
            .user_by_id(admin_id)
            .await
            .expect("lookup")
            .expect("admin");
        assert!(me.active);
        let roles = datastore.user_roles(admin_id).await.expect("roles");
        assert!(roles.iter().any(|r| r.name == "Admin"));
        let (status, _, _) = post_form(
            &admin,
            "/admin/users/999999/deactivate",
            &[("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_pages_are_in_the_app_style_and_never_show_internals() {
    let app = TestApp::start(&crate::harness::Backend::Sqlite, &[]).await;
    let templates = app.security.templates();
    for (status, heading) in [
        (403, "You can't go there"),
        (404, "Page not found"),
        (500, "Something went wrong"),
        (413, "That was too much"),
    ] {
        let html = templates
            .render(
                "security/error.html",
                minijinja::context! {
                    status => status,
                    title => "Title",
                    message => "The standard message.",
                    stock => true,
                    current_user => minijinja::context! { email => "ann@example.com", roles => Vec::<String>::new() },
                    config => minijinja::context! { app_name => "Rampart Sample" },
                },
            )
            .expect("render");
        assert!(html.contains(heading), "{status}: {html}");
        assert!(html.contains("/static/app.css"), "{status}");
        assert!(html.contains("Go to the dashboard"), "{status}");
        assert!(
            !html.contains("The standard message."),
            "the server's stock text is left out: {html}"
        );
    }
}

backend_test!(
    the_email_address_is_changed_from_the_security_page_by_a_link_mailed_to_the_new_one,
    async |app: TestApp| {
        app.create_user("old@example.com").await;
        let (client, _) = app.login("old@example.com", PASSWORD).await;

        let (status, html, _) = get(&client, "/dashboard/security/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("id=\"change-email-link\""), "{html}");
        let (status, html, _) = get(&client, "/change-email").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("id=\"current-email\">old@example.com<"),
            "{html}"
        );
        assert!(
            html.contains("class=\"mainnav\""),
            "the app's layout: {html}"
        );

        let csrf = hidden(&html, "csrf_token");
        let (status, _, headers) = post_form(
            &client,
            "/change-email",
            &[("email", "taken@example.com"), ("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/change-email");
        let mail = app.mail_to("taken@example.com").await;
        assert_eq!(mail.subject, "Confirm your new email address");
        assert!(
            mail.text
                .contains("Your currently registered email is old@example.com.")
        );
        let link = rampart::find_link(&mail.text, "/change-email/").expect("link");

        // Opened in another browser, without a session.
        let other = app.client();
        let response = other.http.get(&link).send().await.expect("open link");
        assert_eq!(response.status(), StatusCode::FOUND);
        let (status, body) = client.get_json("/api/me").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["response"]["user"]["email"], "taken@example.com");
        let (status, _) = other
            .post_json(
                "/login",
                json!({"email": "old@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "the old address no longer signs in"
        );
        app.login("taken@example.com", PASSWORD).await;
    }
);

backend_test!(
    the_username_is_changed_from_the_security_page_and_recovered_from_the_sign_in_page,
    async |app: TestApp| {
        crate::harness::run_cli(
            &app.security,
            &[
                "users",
                "create",
                "ann@example.com",
                "--username",
                "annie",
                "--password",
                PASSWORD,
                "--active",
                "--confirm",
            ],
        )
        .await
        .expect("user created");
        let (client, _) = app.login("ann@example.com", PASSWORD).await;
        let (status, html, _) = get(&client, "/dashboard/security/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("id=\"change-username-link\""), "{html}");
        assert!(html.contains("id=\"security-username\">annie<"), "{html}");

        let (status, html, _) = get(&client, "/change-username").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("id=\"current-username\">annie<"), "{html}");
        assert!(
            html.contains("class=\"mainnav\""),
            "the app's layout: {html}"
        );
        let csrf = hidden(&html, "csrf_token");
        // The pages word the sign-up rule the app's way.
        let (status, html, _) = post_form(
            &client,
            "/change-username",
            &[("username", "a b"), ("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("Use 4 to 32 letters or digits, with no spaces or symbols."),
            "{html}"
        );
        let (status, _, headers) = post_form(
            &client,
            "/change-username",
            &[("username", "annabel"), ("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/");
        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Your username has been changed");
        assert!(mail.text.contains("from annie to annabel"), "{}", mail.text);
        let (status, html, _) = get(&client, "/dashboard/security/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("id=\"security-username\">annabel<"), "{html}");

        // Signed out: the sign-in page leads to the recovery form, which mails the username.
        let visitor = app.client();
        let (status, html, _) = get(&visitor, "/login").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("id=\"recover-username-link\""), "{html}");
        let (status, html, _) = get(&visitor, "/recover-username").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("Forgot your username?"), "{html}");
        let csrf = hidden(&html, "csrf_token");
        let (status, html, _) = post_form(
            &visitor,
            "/recover-username",
            &[("email", "ann@example.com"), ("csrf_token", &csrf)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(
            html.contains("If registered, your username will be sent to your email."),
            "{html}"
        );
        let mail = app.mail_to("ann@example.com").await;
        assert_eq!(mail.subject, "Your requested username");
        assert!(mail.text.contains("annabel"), "{}", mail.text);
        let (status, _) = visitor
            .post_json(
                "/login",
                json!({"username": "annabel", "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
);

backend_test!(
    two_factor_is_turned_on_from_the_security_page_and_then_asked_at_sign_in,
    async |app: TestApp| {
        app.create_user("ann@example.com").await;
        let (client, _) = app.login("ann@example.com", PASSWORD).await;
        let (status, html, _) = get(&client, "/dashboard/security/").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("id=\"tf-state\">Off."), "{html}");

        let (status, html, _) = get(&client, "/tf-setup").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("class=\"mainnav\""),
            "the app's layout: {html}"
        );
        let (status, html, _) = post_form(
            &client,
            "/tf-setup",
            &[
                ("setup", "authenticator"),
                ("csrf_token", &hidden(&html, "csrf_token")),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{html}");
        assert!(html.contains("<svg"), "{html}");
        assert!(
            html.contains(r#"inputmode="numeric""#),
            "attributes are not escaped: {html}"
        );
        let start = html.find("id=\"tf-key\">").expect("key") + "id=\"tf-key\">".len();
        let key: String = html[start..]
            .chars()
            .take_while(|c| *c != '<')
            .filter(|c| *c != '-')
            .collect();
        let now = || u64::try_from(app.security.clock().now().unix_timestamp()).expect("time");
        let code = rampart::totp::code_at(&key, now()).expect("code");
        let (status, _, headers) = post_form(
            &client,
            "/tf-validate",
            &[
                ("code", &code),
                ("csrf_token", &hidden(&html, "csrf_token")),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/dashboard/security/");
        let (_, html, _) = get(&client, "/dashboard/security/").await;
        assert!(html.contains("id=\"tf-state\">On:"), "{html}");
        // At rest the secret is encrypted (Flask-Security's format under SECURITY_TOTP_SECRETS):
        // the database does not hold the key the user scanned.
        let stored = app
            .security
            .datastore()
            .user_by_email("ann@example.com")
            .await
            .expect("read")
            .expect("user")
            .tf_totp_secret
            .expect("a secret");
        assert!(!stored.contains(&key), "{stored}");
        assert!(stored.starts_with('{'), "passlib's JSON: {stored}");

        // A new browser: the password leads to the code page, the code signs in.
        let browser = app.client();
        let (_, html, _) = get(&browser, "/login").await;
        let (status, _, headers) = post_form(
            &browser,
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", PASSWORD),
                ("csrf_token", &hidden(&html, "csrf_token")),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/tf-validate");
        let (status, _, _) = get(&browser, "/").await;
        assert_eq!(status, StatusCode::FOUND, "not signed in yet");
        let (status, html, _) = get(&browser, "/tf-validate").await;
        assert_eq!(status, StatusCode::OK);
        // The setup spent the current step: the app's next code (accepted a little early, as
        // phones run fast) is the one to use.
        let fresh = rampart::totp::code_at(&key, now() + 30).expect("code");
        let (status, _, headers) = post_form(
            &browser,
            "/tf-validate",
            &[
                ("code", &fresh),
                ("csrf_token", &hidden(&html, "csrf_token")),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/");
        let (status, _, _) = get(&browser, "/").await;
        assert_eq!(status, StatusCode::OK);
    }
);

backend_test!(
    signing_out_everywhere_else_ends_other_sessions_and_tokens_but_not_this_one,
    async |app: TestApp| {
        app.create_user("ann@example.com").await;
        let (here, _) = app.login("ann@example.com", PASSWORD).await;
        let (elsewhere, token) = app.login("ann@example.com", PASSWORD).await;
        assert_eq!(elsewhere.get_json("/api/me").await.0, StatusCode::OK);

        let (_, html, _) = get(&here, "/dashboard/security/").await;
        let (status, _, headers) = post_form(
            &here,
            "/dashboard/security/sign-out-others",
            &[("csrf_token", &hidden(&html, "csrf_token"))],
        )
        .await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(location(&headers), "/dashboard/security/");
        let (_, html, _) = get(&here, "/dashboard/security/").await;
        assert!(
            html.contains("You are now signed out everywhere else."),
            "{html}"
        );

        assert_eq!(here.get_json("/api/me").await.0, StatusCode::OK);
        assert_eq!(
            elsewhere.get_json("/api/me").await.0,
            StatusCode::UNAUTHORIZED
        );
        let anonymous = app.client();
        let (status, _) = anonymous
            .request(reqwest::Method::GET, "/api/me", None, Some(&token))
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the old token is dead");

        // Without the CSRF token nothing happens.
        let (status, _, _) = post_form(&here, "/dashboard/security/sign-out-others", &[]).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_user_keeps_the_navigation_on_error_pages() {
    let app = TestApp::start(&crate::harness::Backend::Sqlite, &[]).await;
    app.create_user("ann@example.com").await;
    let (client, _) = app.login("ann@example.com", PASSWORD).await;
    let (status, html, headers) = get(&client, "/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("Page not found"), "{html}");
    assert!(
        html.contains("id=\"signed-in-email\">ann@example.com<"),
        "{html}"
    );
    assert!(
        html.contains("id=\"sign-out\""),
        "a working sign-out form: {html}"
    );
    assert_eq!(headers["cache-control"], "private, no-store");
    // Wrong method: 405 with its Allow header, in the same page.
    let (status, html, headers) = get(&client, "/dashboard/security/delete").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(html.contains("id=\"signed-in-email\""), "{html}");
    assert!(headers.contains_key("allow"), "{headers:?}");
}
