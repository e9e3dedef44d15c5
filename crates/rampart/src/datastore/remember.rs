//! Remember-me series (`rampart_remember`): one row per remember-me cookie handed out.
//!
//! The cookie carries a random series id; only its SHA-256 is stored, so a leaked table gives out
//! no cookie. Signing out deletes the row of that cookie alone (the user's other devices stay
//! remembered); changing the password or "sign out everywhere" deletes all of a user's rows.

use time::PrimitiveDateTime;

use super::{Datastore, DatastoreError};

const CREATE_SERIES: &str = "INSERT INTO \"rampart_remember\" \
     (\"series_hash\", \"user_id\", \"created_at\", \"expires_at\") VALUES ($1, $2, $3, $4)";
// Marks the series used and returns its user in one statement, only while it is live.
const USE_SERIES: &str = "UPDATE \"rampart_remember\" SET \"last_used_at\" = $2 \
     WHERE \"series_hash\" = $1 AND \"expires_at\" > $2 RETURNING CAST(\"user_id\" AS BIGINT)";
const DELETE_SERIES: &str = "DELETE FROM \"rampart_remember\" WHERE \"series_hash\" = $1";
pub(super) const DELETE_SERIES_OF_USER: &str =
    "DELETE FROM \"rampart_remember\" WHERE \"user_id\" = $1";
const DELETE_EXPIRED_SERIES: &str =
    "DELETE FROM \"rampart_remember\" WHERE \"user_id\" = $1 AND \"expires_at\" <= $2";

impl Datastore {
    /// Stores a new remember-me series of `user_id`, live until `expires_at`, and drops the
    /// user's series that have expired by `now`.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when the query fails
    /// (including an unknown user).
    pub async fn remember_series_create(
        &self,
        series_hash: &str,
        user_id: i64,
        now: PrimitiveDateTime,
        expires_at: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        with_pool!(self, |pool| sqlx::query(DELETE_EXPIRED_SERIES)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ()))?;
        with_pool!(self, |pool| sqlx::query(CREATE_SERIES)
            .bind(series_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The user of a live series (not expired by `now`, not deleted), marking it used at `now`.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::remember_series_create`].
    pub async fn remember_series_use(
        &self,
        series_hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<i64>, DatastoreError> {
        let user_id = with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(USE_SERIES)
            .bind(series_hash)
            .bind(now)
            .fetch_optional(pool)
            .await)?;
        Ok(user_id)
    }

    /// Deletes one series (its cookie no longer signs anyone in); `true` when it existed.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::remember_series_create`].
    pub async fn remember_series_delete(&self, series_hash: &str) -> Result<bool, DatastoreError> {
        let deleted = with_pool!(self, |pool| sqlx::query(DELETE_SERIES)
            .bind(series_hash)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(deleted > 0)
    }

    /// Deletes every series of `user_id`; returns how many went.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::remember_series_create`].
    pub async fn remember_series_delete_of_user(
        &self,
        user_id: i64,
    ) -> Result<u64, DatastoreError> {
        let deleted = with_pool!(self, |pool| sqlx::query(DELETE_SERIES_OF_USER)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(deleted)
    }
}
