//! Roles: created, ensured, updated and linked (`datastore/roles.rs`).

use super::*;

datastore_test!(
    roles_are_created_ensured_updated_and_linked,
    async |store: Datastore| {
        let backend = store.backend_name();
        let admin = store
            .create_role("Admin", Some("boss"), &strings(&[" a ", "b,c", ""]), NOW)
            .await
            .expect("create");
        assert_eq!(admin.permissions, ["a", "b", "c"], "{backend}");
        let stored = scalar(
            &store,
            "SELECT COUNT(*) FROM \"role\" WHERE \"permissions\" = 'a,b,c'",
        )
        .await;
        assert_eq!(stored, 1, "{backend}: stored as CSV");

        let err = store
            .create_role("Admin", None, &[], NOW)
            .await
            .expect_err("duplicate");
        assert_eq!(err.conflict_column(), Some("name"), "{backend}: {err:?}");

        let same = store
            .ensure_role("Admin", Some("other"), &strings(&["z"]), NOW)
            .await
            .expect("ensure existing");
        assert_eq!(same, admin, "{backend}");
        let reader = store
            .ensure_role("Reader", None, &[], NOW)
            .await
            .expect("ensure new");
        assert!(reader.permissions.is_empty());

        let updated = store
            .set_role_permissions("Reader", &strings(&["read"]), NOW)
            .await
            .expect("set permissions");
        assert_eq!(updated.permissions, ["read"], "{backend}");
        let err = store
            .set_role_permissions("Ghost", &[], NOW)
            .await
            .expect_err("no such role");
        assert!(err.is_not_found());

        exec(
            &store,
            "UPDATE \"role\" SET \"permissions\" = ' x , y,,' WHERE \"name\" = 'Reader'",
        )
        .await;
        let reader = store
            .role_by_name("Reader")
            .await
            .expect("query")
            .expect("role");
        assert_eq!(reader.permissions, ["x", "y"], "{backend}");

        let names: Vec<String> = store
            .roles()
            .await
            .expect("roles")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["Admin", "Reader"]);
        assert!(store.role_by_name("admin").await.expect("query").is_none());

        let user = store
            .create_user(&new_user("ann@example.com", None), "u1", NOW, &[])
            .await
            .expect("create");
        assert!(
            store
                .add_role_to_user(user.id, "Reader")
                .await
                .expect("add")
        );
        assert!(
            !store
                .add_role_to_user(user.id, "Reader")
                .await
                .expect("add again")
        );
        assert!(store.add_role_to_user(user.id, "Admin").await.expect("add"));
        let err = store
            .add_role_to_user(user.id, "Ghost")
            .await
            .expect_err("no such role");
        assert!(err.is_not_found(), "{backend}: {err:?}");
        let err = store
            .add_role_to_user(user.id + 1, "Admin")
            .await
            .expect_err("no such user");
        assert!(err.is_not_found(), "{backend}: {err:?}");
        let names: Vec<String> = store
            .user_roles(user.id)
            .await
            .expect("roles")
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(names, ["Admin", "Reader"], "{backend}");

        assert!(
            store
                .remove_role_from_user(user.id, "Admin")
                .await
                .expect("remove")
        );
        assert!(
            !store
                .remove_role_from_user(user.id, "Admin")
                .await
                .expect("remove again")
        );
        assert!(
            !store
                .remove_role_from_user(user.id, "Ghost")
                .await
                .expect("remove unknown")
        );
        assert_eq!(store.user_roles(user.id).await.expect("roles").len(), 1);
    }
);
