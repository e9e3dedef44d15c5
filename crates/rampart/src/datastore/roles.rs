//! Roles and their permissions (comma separated in the `permissions` column), and role links.

use time::PrimitiveDateTime;

use super::invalidation::Invalidation;
use super::{Datastore, DatastoreError, join_csv, split_csv};
use crate::model::Role;

const ALL_ROLES: &str = concat!(
    "SELECT ",
    role_columns!(""),
    " FROM \"role\" ORDER BY \"name\""
);
const ROLE_BY_NAME: &str = concat!(
    "SELECT ",
    role_columns!(""),
    " FROM \"role\" WHERE \"name\" = $1"
);
const INSERT_ROLE: &str = concat!(
    "INSERT INTO \"role\" (\"name\", \"description\", \"permissions\", \"update_datetime\")",
    " VALUES ($1, $2, $3, $4) RETURNING ",
    role_columns!("")
);
const INSERT_ROLE_IF_MISSING: &str = concat!(
    "INSERT INTO \"role\" (\"name\", \"description\", \"permissions\", \"update_datetime\")",
    " VALUES ($1, $2, $3, $4) ON CONFLICT (\"name\") DO NOTHING"
);
const SET_PERMISSIONS: &str = concat!(
    "UPDATE \"role\" SET \"permissions\" = $2, \"update_datetime\" = $3 WHERE \"name\" = $1",
    " RETURNING ",
    role_columns!("")
);
const ROLES_OF_USER: &str = concat!(
    "SELECT ",
    role_columns!("r."),
    " FROM \"role\" r JOIN \"roles_users\" ru ON ru.\"role_id\" = r.\"id\"",
    " WHERE ru.\"user_id\" = $1 ORDER BY r.\"name\""
);
// `NOT EXISTS` rather than relying on the unique constraint alone: tables created by
// Flask-Security have none.
const ADD_ROLE_TO_USER: &str = concat!(
    "INSERT INTO \"roles_users\" (\"user_id\", \"role_id\")",
    " SELECT $1, r.\"id\" FROM \"role\" r WHERE r.\"name\" = $2 AND NOT EXISTS",
    " (SELECT 1 FROM \"roles_users\" x WHERE x.\"user_id\" = $1 AND x.\"role_id\" = r.\"id\")",
    " ON CONFLICT DO NOTHING"
);
const REMOVE_ROLE_FROM_USER: &str = concat!(
    "DELETE FROM \"roles_users\" WHERE \"user_id\" = $1",
    " AND \"role_id\" IN (SELECT \"id\" FROM \"role\" WHERE \"name\" = $2)"
);

/// A `role` row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct RoleRow {
    id: i64,
    name: String,
    description: Option<String>,
    permissions: Option<String>,
}

impl From<RoleRow> for Role {
    fn from(row: RoleRow) -> Self {
        role_from_parts(row.id, row.name, row.description, row.permissions)
    }
}

/// Builds a [`Role`] from its columns, splitting the permissions list.
pub(super) fn role_from_parts(
    id: i64,
    name: String,
    description: Option<String>,
    permissions: Option<String>,
) -> Role {
    Role {
        id,
        name,
        description,
        permissions: split_csv(permissions.as_deref()),
    }
}

impl Datastore {
    /// All roles, sorted by name.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when the query fails.
    pub async fn roles(&self) -> Result<Vec<Role>, DatastoreError> {
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, RoleRow>(ALL_ROLES)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(Role::from).collect())
    }

    /// The role named `name` (exact match).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::roles`].
    pub async fn role_by_name(&self, name: &str) -> Result<Option<Role>, DatastoreError> {
        let row = with_pool!(self, |pool| sqlx::query_as::<_, RoleRow>(ROLE_BY_NAME)
            .bind(name)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(Role::from))
    }

    /// Creates a role.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Conflict`] (`"name"`) when a role of that name exists.
    pub async fn create_role(
        &self,
        name: &str,
        description: Option<&str>,
        permissions: &[String],
        now: PrimitiveDateTime,
    ) -> Result<Role, DatastoreError> {
        let permissions = join_csv(permissions);
        let row = with_pool!(self, |pool| sqlx::query_as::<_, RoleRow>(INSERT_ROLE)
            .bind(name)
            .bind(description)
            .bind(permissions.as_deref())
            .bind(now)
            .fetch_one(pool)
            .await?);
        Ok(row.into())
    }

    /// Creates the role if it is missing; an existing role is returned unchanged.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::roles`].
    pub async fn ensure_role(
        &self,
        name: &str,
        description: Option<&str>,
        permissions: &[String],
        now: PrimitiveDateTime,
    ) -> Result<Role, DatastoreError> {
        let permissions = join_csv(permissions);
        let row = with_pool!(self, |pool| {
            sqlx::query(INSERT_ROLE_IF_MISSING)
                .bind(name)
                .bind(description)
                .bind(permissions.as_deref())
                .bind(now)
                .execute(pool)
                .await?;
            sqlx::query_as::<_, RoleRow>(ROLE_BY_NAME)
                .bind(name)
                .fetch_optional(pool)
                .await?
        });
        // Only a concurrent delete between the two statements could leave it missing.
        row.map(Role::from)
            .ok_or_else(|| DatastoreError::NotFound(format!("role {name}")))
    }

    /// Replaces the permissions of the role named `name`.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] (`"role X"`) when there is no such role.
    pub async fn set_role_permissions(
        &self,
        name: &str,
        permissions: &[String],
        now: PrimitiveDateTime,
    ) -> Result<Role, DatastoreError> {
        let permissions = join_csv(permissions);
        let row = with_pool!(self, |pool| sqlx::query_as::<_, RoleRow>(SET_PERMISSIONS)
            .bind(name)
            .bind(permissions.as_deref())
            .bind(now)
            .fetch_optional(pool)
            .await?);
        // Every holder of the role changed.
        self.invalidate(Invalidation::AllUsers);
        row.map(Role::from)
            .ok_or_else(|| DatastoreError::NotFound(format!("role {name}")))
    }

    /// The roles of a user, sorted by name.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::roles`].
    pub async fn user_roles(&self, user_id: i64) -> Result<Vec<Role>, DatastoreError> {
        let rows = with_pool!(self, |pool| sqlx::query_as::<_, RoleRow>(ROLES_OF_USER)
            .bind(user_id)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(Role::from).collect())
    }

    /// Gives a user the role named `role`; `false` when they already had it.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] for an unknown role (`"role X"`) or user.
    pub async fn add_role_to_user(&self, user_id: i64, role: &str) -> Result<bool, DatastoreError> {
        self.change_role(user_id, role, true, None)
            .await
            .map(|(changed, _)| changed)
    }

    /// Takes the role named `role` from a user; `false` when they did not have it.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::roles`].
    pub async fn remove_role_from_user(
        &self,
        user_id: i64,
        role: &str,
    ) -> Result<bool, DatastoreError> {
        self.change_role(user_id, role, false, None)
            .await
            .map(|(changed, _)| changed)
    }

    /// [`Datastore::add_role_to_user`] (`add`) or [`Datastore::remove_role_from_user`] that also
    /// appends `activity` (an administrator's `role_added` / `role_removed`) at `now` in the same
    /// transaction, when the role was given or taken: the event's id then, `None` (nothing
    /// written) when they already had it, or did not.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::add_role_to_user`].
    pub async fn change_role_recorded(
        &self,
        user_id: i64,
        role: &str,
        add: bool,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<Option<i64>, DatastoreError> {
        self.change_role(user_id, role, add, Some((activity, now)))
            .await
            .map(|(_, id)| id)
    }

    async fn change_role(
        &self,
        user_id: i64,
        role: &str,
        add: bool,
        activity: Option<(&crate::activity::NewActivity, PrimitiveDateTime)>,
    ) -> Result<(bool, Option<i64>), DatastoreError> {
        let statement = if add {
            ADD_ROLE_TO_USER
        } else {
            REMOVE_ROLE_FROM_USER
        };
        let changed = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(statement)
                .bind(user_id)
                .bind(role)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let id = match activity {
                Some((new, now)) if changed > 0 => Some(insert_activity!(&mut *tx, new, now)?),
                _ => None,
            };
            tx.commit().await?;
            (changed, id)
        });
        let (changed, id) = changed;
        self.invalidate(Invalidation::User(user_id));
        if changed > 0 || !add {
            return Ok((changed > 0, id));
        }
        match self.role_by_name(role).await? {
            Some(_) => Ok((false, None)),
            None => Err(DatastoreError::NotFound(format!("role {role}"))),
        }
    }
}
