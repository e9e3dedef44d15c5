//! One-time codes sent by mail (`rampart_mailed_code`): a keyed digest per user and purpose, with
//! its expiry. The code itself is never stored; a right code is deleted as it is used.

use time::PrimitiveDateTime;

use super::{Datastore, DatastoreError};

// A new mail replaces the user's live code for that purpose.
const STORE_CODE: &str = "INSERT INTO \"rampart_mailed_code\" \
     (\"user_id\", \"purpose\", \"digest\", \"expires_at\") VALUES ($1, $2, $3, $4) \
     ON CONFLICT (\"user_id\", \"purpose\") DO UPDATE \
     SET \"digest\" = excluded.\"digest\", \"expires_at\" = excluded.\"expires_at\"";
const LIVE_CODE: &str = "SELECT \"digest\" FROM \"rampart_mailed_code\" \
     WHERE \"user_id\" = $1 AND \"purpose\" = $2 AND \"expires_at\" > $3";
// Deletes the code only if it is still the one read: two requests racing with the same code
// cannot both use it.
const TAKE_CODE: &str = "DELETE FROM \"rampart_mailed_code\" \
     WHERE \"user_id\" = $1 AND \"purpose\" = $2 AND \"digest\" = $3 \
     RETURNING \"digest\"";

impl Datastore {
    /// Stores the digest of the code just mailed to `user_id` for `purpose`, live until
    /// `expires_at`; it replaces the code mailed before for that purpose.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when the query fails
    /// (including an unknown user).
    pub async fn mailed_code_store(
        &self,
        user_id: i64,
        purpose: &str,
        digest: &str,
        expires_at: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        with_pool!(self, |pool| sqlx::query(STORE_CODE)
            .bind(user_id)
            .bind(purpose)
            .bind(digest)
            .bind(expires_at)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// The digest of the code mailed to `user_id` for `purpose`, if it has not expired by `now`
    /// nor been used.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::mailed_code_store`].
    pub async fn mailed_code_live(
        &self,
        user_id: i64,
        purpose: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<String>, DatastoreError> {
        let row: Option<(String,)> = with_pool!(self, |pool| sqlx::query_as(LIVE_CODE)
            .bind(user_id)
            .bind(purpose)
            .bind(now)
            .fetch_optional(pool)
            .await?);
        Ok(row.map(|(digest,)| digest))
    }

    /// Uses up the code whose digest is `digest`: `true` if this call deleted it, `false` when
    /// another request used it first.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::mailed_code_store`].
    pub async fn mailed_code_take(
        &self,
        user_id: i64,
        purpose: &str,
        digest: &str,
    ) -> Result<bool, DatastoreError> {
        let row: Option<(String,)> = with_pool!(self, |pool| sqlx::query_as(TAKE_CODE)
            .bind(user_id)
            .bind(purpose)
            .bind(digest)
            .fetch_optional(pool)
            .await?);
        Ok(row.is_some())
    }
}
