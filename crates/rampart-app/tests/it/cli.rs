//! The `users` and `roles` commands, through the library.

use rampart_app::cli::CliError;

use crate::harness::{PASSWORD, TestApp, backend_test, run_cli};

backend_test!(
    users_commands_create_activate_reset_and_change_passwords,
    users_commands
);

async fn users_commands(app: TestApp) {
    let store = app.security.datastore();

    let err = run_cli(
        &app.security,
        &[
            "users",
            "create",
            "short@example.com",
            "--password",
            "short",
        ],
    )
    .await
    .expect_err("policy");
    assert_eq!(
        err.to_string(),
        "Error creating user. {'password': ['Password must be at least 8 characters']}"
    );
    assert_eq!(err.exit_code(), 1);
    let err = run_cli(
        &app.security,
        &["users", "create", "not-an-email", "--password", PASSWORD],
    )
    .await
    .expect_err("email");
    assert!(
        err.to_string()
            .starts_with("Error creating user. {'email':"),
        "{err}"
    );

    let message = run_cli(
        &app.security,
        &[
            "users",
            "create",
            "cli@example.com",
            "--username",
            "clifford",
            "--password",
            PASSWORD,
            "--confirm",
        ],
    )
    .await
    .expect("created");
    assert!(
        message.starts_with("User created successfully."),
        "{message}"
    );
    let user = store
        .user_by_email("cli@example.com")
        .await
        .expect("query")
        .expect("user");
    assert!(
        !user.active,
        "inactive unless --active, as in Flask-Security"
    );
    assert!(user.confirmed_at.is_some());
    assert_eq!(user.username.as_deref(), Some("clifford"));
    assert_eq!(
        crate::harness::profile_rows(&app.security, user.id).await,
        1
    );
    let roles = store.user_roles(user.id).await.expect("roles");
    assert_eq!(
        roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["User"]
    );

    let err = run_cli(
        &app.security,
        &["users", "create", "CLI@example.com", "--password", PASSWORD],
    )
    .await
    .expect_err("duplicate");
    assert!(
        err.to_string()
            .contains("is already associated with an account."),
        "{err}"
    );

    assert_eq!(
        run_cli(&app.security, &["users", "activate", "clifford"])
            .await
            .expect("activate"),
        "User \"clifford\" has been activated."
    );
    assert_eq!(
        run_cli(&app.security, &["users", "activate", "cli@example.com"])
            .await
            .expect("activate"),
        "User \"cli@example.com\" was already activated."
    );
    assert_eq!(
        run_cli(&app.security, &["users", "deactivate", "cli@example.com"])
            .await
            .expect("deactivate"),
        "User \"cli@example.com\" has been deactivated."
    );
    assert!(
        !store
            .user_by_email("cli@example.com")
            .await
            .expect("q")
            .expect("u")
            .active
    );
    run_cli(&app.security, &["users", "activate", "cli@example.com"])
        .await
        .expect("activate");

    // reset-access signs out everywhere.
    let (client, token) = app.login("cli@example.com", PASSWORD).await;
    let before = store
        .user_by_email("cli@example.com")
        .await
        .expect("q")
        .expect("u");
    assert_eq!(
        run_cli(&app.security, &["users", "reset-access", "cli@example.com"])
            .await
            .expect("reset"),
        "User \"cli@example.com\" authentication credentials have been reset."
    );
    let after = store
        .user_by_email("cli@example.com")
        .await
        .expect("q")
        .expect("u");
    assert_ne!(before.fs_uniquifier, after.fs_uniquifier);
    let (status, _) = client.get_json("/api/me").await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .client()
        .request(reqwest::Method::GET, "/api/me", None, Some(&token))
        .await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED);

    // change-password.
    let err = run_cli(
        &app.security,
        &[
            "users",
            "change-password",
            "cli@example.com",
            "--password",
            "tiny",
        ],
    )
    .await
    .expect_err("policy");
    assert!(
        err.to_string().starts_with("Error changing password."),
        "{err}"
    );
    run_cli(
        &app.security,
        &[
            "users",
            "change_password",
            "cli@example.com",
            "--password",
            "another password",
        ],
    )
    .await
    .expect("changed");
    let (status, _) = app
        .client()
        .post_json(
            "/login",
            serde_json::json!({"email": "cli@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST);
    app.login("cli@example.com", "another password").await;

    let err = run_cli(&app.security, &["users", "activate", "ghost@example.com"])
        .await
        .expect_err("unknown");
    assert!(matches!(err, CliError::UserNotFound));
    assert_eq!(err.to_string(), "User not found.");
}

backend_test!(
    roles_commands_manage_roles_and_permissions,
    async |app: TestApp| {
        let store = app.security.datastore();
        app.create_user("member@example.com").await;

        assert_eq!(
            run_cli(
                &app.security,
                &[
                    "roles",
                    "create",
                    "Editor",
                    "-d",
                    "Edits",
                    "-p",
                    "edit, publish"
                ]
            )
            .await
            .expect("create"),
            "Role \"Editor\" created successfully."
        );
        let err = run_cli(&app.security, &["roles", "create", "Editor"])
            .await
            .expect_err("dup");
        assert_eq!(err.exit_code(), 1);

        run_cli(
            &app.security,
            &["roles", "add-permissions", "Editor", "review,edit"],
        )
        .await
        .expect("add permissions");
        let role = store
            .role_by_name("Editor")
            .await
            .expect("q")
            .expect("role");
        assert_eq!(role.permissions, ["edit", "publish", "review"]);
        assert_eq!(
            run_cli(
                &app.security,
                &["roles", "remove_permissions", "Editor", "publish"]
            )
            .await
            .expect("remove permissions"),
            "Permission(s) \"publish\" removed from role \"Editor\" successfully."
        );
        let role = store
            .role_by_name("Editor")
            .await
            .expect("q")
            .expect("role");
        assert_eq!(role.permissions, ["edit", "review"]);

        assert_eq!(
            run_cli(
                &app.security,
                &["roles", "add", "member@example.com", "Editor"]
            )
            .await
            .expect("add"),
            "Role \"Editor\" added to user \"member@example.com\" successfully."
        );
        let err = run_cli(
            &app.security,
            &["roles", "add", "member@example.com", "Editor"],
        )
        .await
        .expect_err("twice");
        assert_eq!(err.to_string(), "Cannot add role to user.");
        let (client, _) = app.login("member@example.com", PASSWORD).await;
        let (_, body) = client.get_json("/api/me").await;
        assert_eq!(
            body["response"]["user"]["roles"],
            serde_json::json!(["Editor", "User"])
        );

        run_cli(
            &app.security,
            &["roles", "remove", "member@example.com", "Editor"],
        )
        .await
        .expect("remove");
        let err = run_cli(
            &app.security,
            &["roles", "remove", "member@example.com", "Editor"],
        )
        .await
        .expect_err("not had");
        assert_eq!(err.to_string(), "Cannot remove role from user.");
        let err = run_cli(
            &app.security,
            &["roles", "add", "member@example.com", "Nope"],
        )
        .await
        .expect_err("no role");
        assert_eq!(err.to_string(), "Cannot find role.");
        let err = run_cli(
            &app.security,
            &["roles", "add", "ghost@example.com", "Editor"],
        )
        .await
        .expect_err("no user");
        assert_eq!(err.to_string(), "User not found.");
    }
);

backend_test!(
    users_create_refuses_look_alikes_and_commands_find_users_by_any_spelling,
    async |app: TestApp| {
        let message = run_cli(
            &app.security,
            &[
                "users",
                "create",
                "ｚｏｅ@exämple.com",
                "--username",
                "ｚｏｅｙ",
                "--password",
                PASSWORD,
            ],
        )
        .await
        .expect("created");
        assert!(
            message.starts_with("User created successfully."),
            "{message}"
        );
        let user = app
            .security
            .datastore()
            .user_by_email("zoe@xn--exmple-cua.com")
            .await
            .expect("query")
            .expect("stored in its canonical spelling");
        assert_eq!(user.email, "zoe@xn--exmple-cua.com");
        assert_eq!(user.username.as_deref(), Some("zoey"));

        for (email, username) in [
            ("zoe@xn--exmple-cua.com", "another1"),
            ("other@example.com", "ZOEY"),
        ] {
            let err = run_cli(
                &app.security,
                &[
                    "users",
                    "create",
                    email,
                    "--username",
                    username,
                    "--password",
                    PASSWORD,
                ],
            )
            .await
            .expect_err("a look-alike duplicate");
            assert!(
                err.to_string()
                    .contains("is already associated with an account."),
                "{err}"
            );
        }
        let err = run_cli(
            &app.security,
            &[
                "users",
                "create",
                "other@example.com",
                "--username",
                "zоey",
                "--password",
                PASSWORD,
            ],
        )
        .await
        .expect_err("mixed scripts");
        assert!(
            err.to_string()
                .contains("Username contains illegal characters"),
            "{err}"
        );

        run_cli(&app.security, &["users", "activate", "ＺＯＥ@EXÄMPLE.COM"])
            .await
            .expect("found by another spelling of the email");
        run_cli(&app.security, &["users", "deactivate", "ｚｏｅｙ"])
            .await
            .expect("found by another spelling of the username");
    }
);
