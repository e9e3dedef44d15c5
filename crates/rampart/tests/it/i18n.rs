//! Languages: messages in the request's `Accept-Language`, the default language otherwise, and
//! the app's own catalogs (`SECURITY_I18N_DIRNAME`) over the built-in ones.

use axum::http::StatusCode;
use serde_json::json;

use crate::harness::{EXACT, PASSWORD, TestApp, backend_test};

async fn wrong_password(app: &TestApp, accept_language: Option<&str>) -> serde_json::Value {
    let client = app.client();
    let mut request = client
        .post("/login")
        .json(&json!({"email": "ann@example.com", "password": "wrong password"}));
    if let Some(language) = accept_language {
        request = request.header("accept-language", language);
    }
    let response = request.send().await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.text()
    );
    response.response()["field_errors"]["password"][0].clone()
}

backend_test!(
    json_errors_come_in_the_accepted_language,
    EXACT,
    async |app: TestApp| {
        app.signed_up("ann@example.com").await;
        assert_eq!(wrong_password(&app, None).await, "Invalid password");
        assert_eq!(
            wrong_password(&app, Some("de")).await,
            "Ungültiges Passwort"
        );
        assert_eq!(
            wrong_password(&app, Some("de-CH, fr;q=0.8")).await,
            "Ungültiges Passwort"
        );
        assert_eq!(
            wrong_password(&app, Some("de;q=0.3, fr;q=0.9, en;q=0.5")).await,
            "Mot de passe non valide",
            "q-values rank the languages"
        );
        assert_eq!(
            wrong_password(&app, Some("es-MX")).await,
            "Contraseña no válida"
        );
        assert_eq!(
            wrong_password(&app, Some("ja, zh;q=0.5")).await,
            "Invalid password",
            "an unknown language falls back to English"
        );
        // Placeholders are filled in the other language too.
        let response = app
            .client()
            .post("/register")
            .header("accept-language", "de")
            .json(&json!({"email": "ann@example.com", "password": PASSWORD, "password_confirm": PASSWORD}))
            .send()
            .await;
        assert_eq!(
            response.status,
            StatusCode::BAD_REQUEST,
            "{}",
            response.text()
        );
        assert_eq!(
            response.response()["field_errors"]["email"][0],
            "ann@example.com ist bereits mit einem Konto verknüpft."
        );
    }
);

backend_test!(
    the_sign_in_page_comes_in_the_accepted_language,
    EXACT,
    async |app: TestApp| {
        let page = app
            .client()
            .get("/login")
            .header("accept-language", "de-DE,de;q=0.9,en;q=0.8")
            .send()
            .await;
        assert_eq!(page.status, StatusCode::OK);
        let html = page.html();
        assert!(html.contains("<html lang=\"de\">"), "{html}");
        assert!(html.contains("Anmelden"), "{html}");
        assert!(html.contains("Passwort vergessen?"), "{html}");
        let english = app.client().get("/login").send().await.html();
        assert!(english.contains("<html lang=\"en\">"), "{english}");
        assert!(english.contains("Forgot password?"), "{english}");
    }
);

#[tokio::test]
async fn the_apps_catalogs_win_and_its_msg_settings_stay_in_the_default_language() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("de")).expect("mkdir");
    std::fs::write(
        dir.path().join("de/security.ftl"),
        "INVALID_PASSWORD = Das war nicht Ihr Passwort.\n",
    )
    .expect("write");
    let folder = dir.path().to_string_lossy().into_owned();
    let app = TestApp::on(
        rampart::testing::TestBackend::Sqlite,
        &[
            ("SECURITY_RETURN_GENERIC_RESPONSES", "false"),
            ("SECURITY_I18N_DIRNAME", &folder),
            ("SECURITY_MSG_INVALID_PASSWORD", "Wrong password, sorry."),
        ],
        None,
    )
    .await;
    app.signed_up("ann@example.com").await;
    assert_eq!(
        wrong_password(&app, Some("de")).await,
        "Das war nicht Ihr Passwort."
    );
    assert_eq!(
        wrong_password(&app, None).await,
        "Wrong password, sorry.",
        "SECURITY_MSG_* is the app's text in the default language"
    );
    assert_eq!(
        wrong_password(&app, Some("fr")).await,
        "Mot de passe non valide"
    );
}
