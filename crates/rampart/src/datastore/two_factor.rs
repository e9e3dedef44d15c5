//! Two-factor state: the user's method and TOTP secret (Flask-Security's `tf_primary_method` and
//! `tf_totp_secret` columns) and the last one-time-code step each user has used
//! (`rampart_otp_used_step`).

use time::PrimitiveDateTime;

use super::invalidation::Invalidation;
use super::users::expect_user;
use super::{Datastore, DatastoreError};

const SET_TWO_FACTOR: &str = "UPDATE \"user\" SET \"tf_primary_method\" = $2, \
     \"tf_totp_secret\" = $3, \"update_datetime\" = $4 WHERE \"id\" = $1";

// Turning a method on: the method, the secret and a new uniquifier, only if the uniquifier is
// still the one read (see `rotate_credentials`).
pub(super) const ENABLE_TWO_FACTOR: &str = "UPDATE \"user\" SET \"tf_primary_method\" = $4, \
     \"tf_totp_secret\" = $5, \"fs_uniquifier\" = $3, \"update_datetime\" = $6 \
     WHERE \"id\" = $1 AND \"fs_uniquifier\" = $2";

// The same, with the phone codes are texted to (the SMS method).
pub(super) const ENABLE_TWO_FACTOR_PHONE: &str = "UPDATE \"user\" SET \"tf_primary_method\" = $4, \
     \"tf_totp_secret\" = $5, \"fs_uniquifier\" = $3, \"update_datetime\" = $6, \
     \"tf_phone_number\" = $7 WHERE \"id\" = $1 AND \"fs_uniquifier\" = $2";

// Claims `$2` only if it is later than the step already used: one atomic statement, so two
// requests racing with the same code cannot both win.
const CLAIM_STEP: &str = "INSERT INTO \"rampart_otp_used_step\" (\"user_id\", \"step\") \
     VALUES ($1, $2) \
     ON CONFLICT (\"user_id\") DO UPDATE SET \"step\" = excluded.\"step\" \
     WHERE \"rampart_otp_used_step\".\"step\" < excluded.\"step\" \
     RETURNING \"step\"";

impl Datastore {
    /// Sets (or with `None`, clears) the user's two-factor method and secret.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when there is no such user; as for
    /// [`Datastore::session_load`] otherwise.
    pub async fn set_two_factor(
        &self,
        user_id: i64,
        method: Option<&str>,
        secret: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        self.set_two_factor_with(user_id, method, secret, now, None)
            .await
            .map(|_| ())
    }

    /// [`Datastore::set_two_factor`] that also appends `activity` (e.g. `two_factor_disabled`)
    /// to the activity log in the same transaction. Returns the event's id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_two_factor`].
    pub async fn set_two_factor_recorded(
        &self,
        user_id: i64,
        method: Option<&str>,
        secret: Option<&str>,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        super::users::recorded_id(
            self.set_two_factor_with(user_id, method, secret, now, Some(activity))
                .await?,
        )
    }

    async fn set_two_factor_with(
        &self,
        user_id: i64,
        method: Option<&str>,
        secret: Option<&str>,
        now: PrimitiveDateTime,
        activity: Option<&crate::activity::NewActivity>,
    ) -> Result<Option<i64>, DatastoreError> {
        let result = recorded_write!(self, activity, now, |tx| {
            let updated = sqlx::query(SET_TWO_FACTOR)
                .bind(user_id)
                .bind(method)
                .bind(secret)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            expect_user(updated, user_id)?
        });
        self.invalidate(Invalidation::User(user_id));
        result.map(|((), id)| id)
    }

    /// Turns a second factor on for `user_id` (`method`, stored `secret`) and signs them out
    /// everywhere, in one transaction: a new `fs_uniquifier` (every auth token and Flask-Login
    /// remember cookie dies), every session and every remember-me series deleted, so nothing
    /// issued before skips the new factor. Only writes while the uniquifier is still
    /// `expected_uniquifier`.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Stale`] (`"fs_uniquifier"`) when the uniquifier changed meanwhile (or
    /// there is no such user): nothing was written. As for [`Datastore::session_load`] otherwise.
    pub async fn enable_two_factor(
        &self,
        user_id: i64,
        expected_uniquifier: &str,
        new_uniquifier: &str,
        method: &str,
        secret: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let rotation = super::users::Rotation::TwoFactor {
            method,
            secret,
            phone: None,
        };
        self.rotate(
            user_id,
            expected_uniquifier,
            new_uniquifier,
            rotation,
            now,
            None,
        )
        .await
        .map(|_| ())
    }

    /// [`Datastore::enable_two_factor`] for the SMS method: `phone` (`tf_phone_number`) is
    /// written in the same statement.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::enable_two_factor`].
    #[expect(
        clippy::too_many_arguments,
        reason = "one row's columns, written at once"
    )]
    pub async fn enable_two_factor_with_phone(
        &self,
        user_id: i64,
        expected_uniquifier: &str,
        new_uniquifier: &str,
        method: &str,
        secret: &str,
        phone: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let rotation = super::users::Rotation::TwoFactor {
            method,
            secret,
            phone: Some(phone),
        };
        self.rotate(
            user_id,
            expected_uniquifier,
            new_uniquifier,
            rotation,
            now,
            None,
        )
        .await
        .map(|_| ())
    }

    /// [`Datastore::enable_two_factor`] (or, with a `phone`, its SMS form) that also appends
    /// `activity` (`two_factor_enabled`) to the activity log in the same transaction. Returns
    /// the event's id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::enable_two_factor`].
    #[expect(
        clippy::too_many_arguments,
        reason = "one row's columns and its record, written at once"
    )]
    pub async fn enable_two_factor_recorded(
        &self,
        user_id: i64,
        expected_uniquifier: &str,
        new_uniquifier: &str,
        method: &str,
        secret: &str,
        phone: Option<&str>,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        let rotation = super::users::Rotation::TwoFactor {
            method,
            secret,
            phone,
        };
        let id = self
            .rotate(
                user_id,
                expected_uniquifier,
                new_uniquifier,
                rotation,
                now,
                Some(activity),
            )
            .await?;
        super::users::recorded_id(id)
    }

    /// Records that the user used the one-time code of time step `step`: `true` when `step` is
    /// later than any step they used before (the code may be accepted), `false` for a replay.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn claim_otp_step(&self, user_id: i64, step: u64) -> Result<bool, DatastoreError> {
        let step = i64::try_from(step)
            .map_err(|_| DatastoreError::Config("time step out of range".to_owned()))?;
        let claimed: Option<(i64,)> = with_pool!(self, |pool| sqlx::query_as(CLAIM_STEP)
            .bind(user_id)
            .bind(step)
            .fetch_optional(pool)
            .await?);
        Ok(claimed.is_some())
    }
}

const SET_RECOVERY_CODES: &str = "UPDATE \"user\" SET \"mf_recovery_codes\" = $2, \
     \"update_datetime\" = $3 WHERE \"id\" = $1";

// Compare-and-swap: the codes change only if nobody changed them since they were read, so one
// recovery code cannot be spent twice by two racing requests.
const SWAP_RECOVERY_CODES: &str = "UPDATE \"user\" SET \"mf_recovery_codes\" = $3, \
     \"update_datetime\" = $4 WHERE \"id\" = $1 AND \"mf_recovery_codes\" = $2";

impl Datastore {
    /// Replaces the user's stored recovery codes (`None` removes them).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_two_factor`].
    pub async fn set_recovery_codes(
        &self,
        user_id: i64,
        codes: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        self.set_recovery_codes_with(user_id, codes, now, None)
            .await
            .map(|_| ())
    }

    /// [`Datastore::set_recovery_codes`] that also appends `activity`
    /// (`recovery_codes_generated`) to the activity log in the same transaction. Returns the
    /// event's id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_two_factor`].
    pub async fn set_recovery_codes_recorded(
        &self,
        user_id: i64,
        codes: Option<&str>,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        super::users::recorded_id(
            self.set_recovery_codes_with(user_id, codes, now, Some(activity))
                .await?,
        )
    }

    async fn set_recovery_codes_with(
        &self,
        user_id: i64,
        codes: Option<&str>,
        now: PrimitiveDateTime,
        activity: Option<&crate::activity::NewActivity>,
    ) -> Result<Option<i64>, DatastoreError> {
        let result = recorded_write!(self, activity, now, |tx| {
            let updated = sqlx::query(SET_RECOVERY_CODES)
                .bind(user_id)
                .bind(codes)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            expect_user(updated, user_id)?
        });
        self.invalidate(Invalidation::User(user_id));
        result.map(|((), id)| id)
    }

    /// Replaces the stored recovery codes `old` by `new`, only if they are still `old`: `false`
    /// when another request changed them first.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn swap_recovery_codes(
        &self,
        user_id: i64,
        old: &str,
        new: &str,
        now: PrimitiveDateTime,
    ) -> Result<bool, DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(SWAP_RECOVERY_CODES)
            .bind(user_id)
            .bind(old)
            .bind(new)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        self.invalidate(Invalidation::User(user_id));
        Ok(updated > 0)
    }
}
