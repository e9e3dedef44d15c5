//! WebAuthn credentials (Flask-Security's `webauthn` table) and the user's WebAuthn user handle
//! (`fs_webauthn_user_handle`).

use time::PrimitiveDateTime;

use super::{Datastore, DatastoreError};
use crate::model::{NewWebauthnCredential, WebauthnCredential};

#[rustfmt::skip]
const COLUMNS: &str = concat!(
    "CAST(\"id\" AS BIGINT) AS \"id\", \"credential_id\", \"public_key\", ",
    "CAST(COALESCE(\"sign_count\", 0) AS BIGINT) AS \"sign_count\", \"transports\", ",
    "\"backup_state\", \"device_type\", \"extensions\", \"create_datetime\", ",
    "\"lastuse_datetime\", \"name\", \"usage\", CAST(\"user_id\" AS BIGINT) AS \"user_id\""
);

/// A `webauthn` row as stored (transports comma separated).
#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    credential_id: Vec<u8>,
    public_key: Vec<u8>,
    sign_count: i64,
    transports: Option<String>,
    backup_state: bool,
    device_type: String,
    extensions: Option<String>,
    create_datetime: PrimitiveDateTime,
    lastuse_datetime: PrimitiveDateTime,
    name: String,
    usage: String,
    user_id: i64,
}

impl From<Row> for WebauthnCredential {
    fn from(row: Row) -> Self {
        let transports = row
            .transports
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect();
        Self {
            id: row.id,
            credential_id: row.credential_id,
            public_key: row.public_key,
            sign_count: row.sign_count,
            transports,
            backup_state: row.backup_state,
            device_type: row.device_type,
            extensions: row.extensions,
            create_datetime: row.create_datetime,
            lastuse_datetime: row.lastuse_datetime,
            name: row.name,
            usage: row.usage,
            user_id: row.user_id,
        }
    }
}

// Only set when none is: two racing registrations agree on one handle.
const SET_HANDLE: &str = "UPDATE \"user\" SET \"fs_webauthn_user_handle\" = $2, \
     \"update_datetime\" = $3 WHERE \"id\" = $1 AND \"fs_webauthn_user_handle\" IS NULL";

const GET_HANDLE: &str = "SELECT \"fs_webauthn_user_handle\" FROM \"user\" WHERE \"id\" = $1";

const INSERT: &str = "INSERT INTO \"webauthn\" (\"credential_id\", \"public_key\", \
     \"sign_count\", \"transports\", \"backup_state\", \"device_type\", \"extensions\", \
     \"create_datetime\", \"lastuse_datetime\", \"name\", \"usage\", \"user_id\") \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11)";

// Compare-and-swap on the counter: two racing sign-ins with one assertion cannot both win.
const RECORD_USE: &str = "UPDATE \"webauthn\" SET \"sign_count\" = $3, \
     \"lastuse_datetime\" = $4, \"backup_state\" = $5 \
     WHERE \"id\" = $1 AND COALESCE(\"sign_count\", 0) = $2";

const HAS_USAGE: &str = "SELECT CAST(1 AS BIGINT) FROM \"webauthn\" \
     WHERE \"user_id\" = $1 AND \"usage\" = $2 LIMIT 1";

const DELETE: &str = "DELETE FROM \"webauthn\" WHERE \"user_id\" = $1 AND \"name\" = $2";
/// Renames a key unless the user already has one of the new name (one statement, so two
/// renames racing cannot leave two keys of one name).
const RENAME: &str = "UPDATE \"webauthn\" SET \"name\" = $3 WHERE \"user_id\" = $1 AND \"name\" = $2 \
     AND NOT EXISTS (SELECT 1 FROM \"webauthn\" AS \"other\" \
     WHERE \"other\".\"user_id\" = $1 AND \"other\".\"name\" = $3)";

impl Datastore {
    /// The user's WebAuthn user handle, made (a `uuid4().hex`, as Flask-Security) and stored if
    /// they have none yet.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when there is no such user; as for
    /// [`Datastore::session_load`] otherwise.
    pub async fn webauthn_user_handle(
        &self,
        user_id: i64,
        now: PrimitiveDateTime,
    ) -> Result<String, DatastoreError> {
        let handle = uuid::Uuid::new_v4().simple().to_string();
        with_pool!(self, |pool| sqlx::query(SET_HANDLE)
            .bind(user_id)
            .bind(&handle)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())?);
        self.invalidate_user(user_id);
        let stored: Option<(Option<String>,)> = with_pool!(self, |pool| sqlx::query_as(GET_HANDLE)
            .bind(user_id)
            .fetch_optional(pool)
            .await?);
        stored
            .and_then(|(handle,)| handle)
            .ok_or_else(|| DatastoreError::NotFound(format!("user {user_id}")))
    }

    /// The user's WebAuthn credentials, oldest first.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn webauthn_credentials(
        &self,
        user_id: i64,
    ) -> Result<Vec<WebauthnCredential>, DatastoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM \"webauthn\" WHERE \"user_id\" = $1 ORDER BY \"id\"");
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(user_id)
            .fetch_all(pool)
            .await?);
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// The credential whose id is `credential_id`, if any.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn webauthn_by_credential_id(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<WebauthnCredential>, DatastoreError> {
        let sql = format!("SELECT {COLUMNS} FROM \"webauthn\" WHERE \"credential_id\" = $1");
        let row: Option<Row> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(credential_id)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(Into::into))
    }

    /// Stores a new credential for the user.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Conflict`] (`credential_id`) when the credential is registered already;
    /// [`DatastoreError::NotFound`] when there is no such user; as for
    /// [`Datastore::session_load`] otherwise.
    pub async fn create_webauthn(
        &self,
        user_id: i64,
        new: &NewWebauthnCredential,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        self.create_webauthn_with(user_id, new, now, None)
            .await
            .map(|_| ())
    }

    /// [`Datastore::create_webauthn`] that also appends `activity` (`passkey_added`) to the
    /// activity log in the same transaction. Returns the event's id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::create_webauthn`].
    pub async fn create_webauthn_recorded(
        &self,
        user_id: i64,
        new: &NewWebauthnCredential,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        super::users::recorded_id(
            self.create_webauthn_with(user_id, new, now, Some(activity))
                .await?,
        )
    }

    async fn create_webauthn_with(
        &self,
        user_id: i64,
        new: &NewWebauthnCredential,
        now: PrimitiveDateTime,
        activity: Option<&crate::activity::NewActivity>,
    ) -> Result<Option<i64>, DatastoreError> {
        let transports = (!new.transports.is_empty()).then(|| new.transports.join(","));
        let result = recorded_write!(self, activity, now, |tx| {
            sqlx::query(INSERT)
                .bind(&new.credential_id)
                .bind(&new.public_key)
                .bind(i64::from(new.sign_count))
                .bind(transports.as_deref())
                .bind(new.backup_state)
                .bind(&new.device_type)
                .bind(new.extensions.as_deref())
                .bind(now)
                .bind(&new.name)
                .bind(&new.usage)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
        });
        self.invalidate_user(user_id);
        result.map(|((), id)| id)
    }

    /// Records a use of credential `id`: its new counter, backup state and last use, only if the
    /// counter is still `old_count` (`false` when a racing sign-in used it first).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn record_webauthn_use(
        &self,
        id: i64,
        old_count: i64,
        new_count: u32,
        backup_state: bool,
        now: PrimitiveDateTime,
    ) -> Result<bool, DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(RECORD_USE)
            .bind(id)
            .bind(old_count)
            .bind(i64::from(new_count))
            .bind(now)
            .bind(backup_state)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(updated > 0)
    }

    /// Deletes the user's credential named `name`: `false` when they have none of that name.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn delete_webauthn(&self, user_id: i64, name: &str) -> Result<bool, DatastoreError> {
        self.delete_webauthn_with(user_id, name, None)
            .await
            .map(|(deleted, _)| deleted)
    }

    /// [`Datastore::delete_webauthn`] that also appends `activity` (`passkey_removed`) at `now`
    /// in the same transaction when a key was deleted: the event's id then, `None` when they
    /// have no key of that name (nothing written).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn delete_webauthn_recorded(
        &self,
        user_id: i64,
        name: &str,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<Option<i64>, DatastoreError> {
        self.delete_webauthn_with(user_id, name, Some((activity, now)))
            .await
            .map(|(_, id)| id)
    }

    async fn delete_webauthn_with(
        &self,
        user_id: i64,
        name: &str,
        activity: Option<(&crate::activity::NewActivity, PrimitiveDateTime)>,
    ) -> Result<(bool, Option<i64>), DatastoreError> {
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let deleted = sqlx::query(DELETE)
                .bind(user_id)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let id = match activity {
                Some((new, now)) if deleted > 0 => Some(insert_activity!(&mut *tx, new, now)?),
                _ => None,
            };
            tx.commit().await?;
            Ok::<_, DatastoreError>((deleted > 0, id))
        });
        self.invalidate_user(user_id);
        result
    }

    /// Renames the user's credential `name` to `new_name`: `false` when they have no key named
    /// `name`, or already have one named `new_name`.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn rename_webauthn(
        &self,
        user_id: i64,
        name: &str,
        new_name: &str,
    ) -> Result<bool, DatastoreError> {
        let renamed = with_pool!(self, |pool| sqlx::query(RENAME)
            .bind(user_id)
            .bind(name)
            .bind(new_name)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(renamed > 0)
    }

    /// Whether the user has a credential registered for `usage` (`first` or `secondary`).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn has_webauthn_usage(
        &self,
        user_id: i64,
        usage: &str,
    ) -> Result<bool, DatastoreError> {
        let found: Option<(i64,)> = with_pool!(self, |pool| sqlx::query_as(HAS_USAGE)
            .bind(user_id)
            .bind(usage)
            .fetch_optional(pool)
            .await?);
        Ok(found.is_some())
    }
}
