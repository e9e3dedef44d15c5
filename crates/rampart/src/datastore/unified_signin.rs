//! Unified sign-in state: the user's sign-in secrets per method (Flask-Security's
//! `us_totp_secrets`, a JSON map of method to secret) and phone (`us_phone_number`, unique).

use time::PrimitiveDateTime;

use super::invalidation::Invalidation;
use super::users::expect_user;
use super::{Datastore, DatastoreError};
use crate::model::User;

const USER_BY_PHONE: &str = concat!(
    "SELECT ",
    user_columns!(""),
    " FROM \"user\" WHERE \"us_phone_number\" = $1"
);
const SET_US: &str = "UPDATE \"user\" SET \"us_totp_secrets\" = $2, \"us_phone_number\" = $3, \
     \"update_datetime\" = $4 WHERE \"id\" = $1";
const SET_TF_PHONE: &str = "UPDATE \"user\" SET \"tf_phone_number\" = $2, \
     \"update_datetime\" = $3 WHERE \"id\" = $1";

impl Datastore {
    /// The user whose unified sign-in phone (`us_phone_number`, E.164) is `phone`.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when the query fails.
    pub async fn user_by_us_phone(&self, phone: &str) -> Result<Option<User>, DatastoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, User>(
            USER_BY_PHONE
        )
        .bind(phone)
        .fetch_optional(pool)
        .await?))
    }

    /// Sets the user's unified sign-in secrets (`us_totp_secrets`, Flask-Security's JSON map of
    /// method to stored secret; `None` when no method is left) and phone.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Conflict`] (`us_phone_number`) when another user has that phone;
    /// [`DatastoreError::NotFound`] when there is no such user; as for
    /// [`Datastore::user_by_id`] otherwise.
    pub async fn set_unified_signin(
        &self,
        user_id: i64,
        secrets: Option<&str>,
        phone: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(SET_US)
            .bind(user_id)
            .bind(secrets)
            .bind(phone)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        self.invalidate(Invalidation::User(user_id));
        expect_user(updated, user_id)
    }

    /// Sets (or clears) the phone two-factor codes are texted to (`tf_phone_number`).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_two_factor`].
    pub async fn set_two_factor_phone(
        &self,
        user_id: i64,
        phone: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(SET_TF_PHONE)
            .bind(user_id)
            .bind(phone)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        self.invalidate(Invalidation::User(user_id));
        expect_user(updated, user_id)
    }
}
