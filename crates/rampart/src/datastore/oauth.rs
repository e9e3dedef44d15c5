//! Social sign-in links (`rampart_oauth_link`): which provider account — the provider's name and
//! its subject (`sub`, GitHub's user id) — signs in as which user.

use serde::Serialize;
use time::PrimitiveDateTime;

use super::{Datastore, DatastoreError};
use crate::model::{NewUser, User};

/// A provider account linked to a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow)]
#[non_exhaustive]
pub struct OauthLink {
    /// The row id.
    pub id: i64,
    /// The provider's name (`github`, `google`, a generic provider's name).
    pub provider: String,
    /// The provider's identifier of the person (`sub`).
    pub subject: String,
    /// The user it signs in as.
    pub user_id: i64,
    /// The email the provider gave when the link was made.
    pub email: Option<String>,
    /// When the link was made (naive UTC).
    pub created_at: PrimitiveDateTime,
    /// When it last signed in (naive UTC).
    pub last_used_at: Option<PrimitiveDateTime>,
}

/// A link to make.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewOauthLink<'a> {
    /// The provider's name.
    pub(crate) provider: &'a str,
    /// The provider's subject.
    pub(crate) subject: &'a str,
    /// The email the provider gave.
    pub(crate) email: Option<&'a str>,
}

const COLUMNS: &str = "CAST(\"id\" AS BIGINT) AS \"id\", \"provider\", \"subject\", \
     CAST(\"user_id\" AS BIGINT) AS \"user_id\", \"email\", \"created_at\", \"last_used_at\"";

pub(super) const INSERT_LINK: &str = "INSERT INTO \"rampart_oauth_link\" (\"provider\", \
     \"subject\", \"user_id\", \"email\", \"created_at\", \"last_used_at\") \
     VALUES ($1, $2, $3, $4, $5, $5)";

const TOUCH: &str = "UPDATE \"rampart_oauth_link\" SET \"last_used_at\" = $2 WHERE \"id\" = $1";

const DELETE: &str =
    "DELETE FROM \"rampart_oauth_link\" WHERE \"user_id\" = $1 AND \"provider\" = $2";

/// Deletes the link unless it is the user's last way to sign in: they have a password, another
/// link, or (`$3`) a passkey that signs in alone. One statement, so its check and its delete see
/// the same rows.
const DELETE_UNLESS_LAST: &str = "DELETE FROM \"rampart_oauth_link\" \
     WHERE \"user_id\" = $1 AND \"provider\" = $2 AND ( \
     EXISTS (SELECT 1 FROM \"user\" WHERE \"id\" = $1 AND \"password\" IS NOT NULL) \
     OR EXISTS (SELECT 1 FROM \"rampart_oauth_link\" AS \"other\" \
         WHERE \"other\".\"user_id\" = $1 AND \"other\".\"provider\" <> $2) \
     OR ($3 AND EXISTS (SELECT 1 FROM \"webauthn\" \
         WHERE \"webauthn\".\"user_id\" = $1 AND \"webauthn\".\"usage\" = 'first')))";

/// PostgreSQL: the user's row locked first, so concurrent unlinks of one user take turns and each
/// one's statement (a fresh snapshot under READ COMMITTED) sees what the one before removed.
const LOCK_USER_POSTGRES: &str = "SELECT 1 FROM \"user\" WHERE \"id\" = $1 FOR UPDATE";

const LINKED: &str = "SELECT CAST(1 AS BIGINT) FROM \"rampart_oauth_link\" \
     WHERE \"user_id\" = $1 AND \"provider\" = $2";

/// What [`Datastore::oauth_unlink_unless_last`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unlinked {
    /// The link is gone; the id of its `provider_unlinked` record.
    Removed(i64),
    /// There was no such link.
    NotLinked,
    /// Kept: it is the user's last way to sign in.
    LastWay,
}

impl Datastore {
    /// Removes the user's link to `provider` unless it is their last way to sign in (no
    /// password, no other link, and no passkey that signs in alone when `passkeys_sign_in`), as
    /// one atomic step: two concurrent unlinks of a user's last two ways never remove both
    /// (SQLite runs the one statement under its single writer; PostgreSQL locks the user's row
    /// first, in a transaction). A removal appends `activity` (`provider_unlinked`) at `now` in
    /// the same transaction.
    ///
    /// # Errors
    ///
    /// As for any query.
    pub(crate) async fn oauth_unlink_unless_last(
        &self,
        user_id: i64,
        provider: &str,
        passkeys_sign_in: bool,
        activity: &crate::activity::NewActivity,
        now: PrimitiveDateTime,
    ) -> Result<Unlinked, DatastoreError> {
        let postgres = matches!(self.pool, super::DbPool::Postgres(_));
        let removed = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            if postgres {
                sqlx::query(LOCK_USER_POSTGRES)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
            }
            let removed = sqlx::query(DELETE_UNLESS_LAST)
                .bind(user_id)
                .bind(provider)
                .bind(passkeys_sign_in)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let recorded = if removed > 0 {
                Some(insert_activity!(&mut *tx, activity, now)?)
            } else {
                None
            };
            tx.commit().await?;
            recorded
        });
        if let Some(id) = removed {
            return Ok(Unlinked::Removed(id));
        }
        let linked: Option<(i64,)> = with_pool!(self, |pool| sqlx::query_as(LINKED)
            .bind(user_id)
            .bind(provider)
            .fetch_optional(pool)
            .await?);
        Ok(if linked.is_some() {
            Unlinked::LastWay
        } else {
            Unlinked::NotLinked
        })
    }

    /// The link of the provider account (`provider`, `subject`), if any.
    ///
    /// # Errors
    ///
    /// As for any query.
    pub async fn oauth_link(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<OauthLink>, DatastoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM \"rampart_oauth_link\" WHERE \"provider\" = $1 AND \"subject\" = $2"
        );
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, OauthLink>(
            &sql
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(pool)
        .await?))
    }

    /// The user's links, oldest first.
    ///
    /// # Errors
    ///
    /// As for any query.
    pub async fn oauth_links(&self, user_id: i64) -> Result<Vec<OauthLink>, DatastoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM \"rampart_oauth_link\" WHERE \"user_id\" = $1 ORDER BY \"id\""
        );
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, OauthLink>(
            &sql
        )
        .bind(user_id)
        .fetch_all(pool)
        .await?))
    }

    /// Links the provider account to `user_id`, appending `activity` (`provider_linked`) in the
    /// same transaction.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Conflict`] when that provider account is linked already (to anyone).
    pub(crate) async fn oauth_link_create(
        &self,
        user_id: i64,
        link: &NewOauthLink<'_>,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        let ((), id) = recorded_write!(self, Some(activity), now, |tx| {
            sqlx::query(INSERT_LINK)
                .bind(link.provider)
                .bind(link.subject)
                .bind(user_id)
                .bind(link.email)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        })?;
        super::users::recorded_id(id)
    }

    /// Makes a new user and their first link in one transaction (a sign-up through a
    /// provider); see [`Datastore::create_user`].
    ///
    /// # Errors
    ///
    /// As for [`Datastore::create_user`]; [`DatastoreError::Conflict`] also when the provider
    /// account was linked meanwhile.
    pub(crate) async fn create_user_with_oauth_link(
        &self,
        new: &NewUser,
        uniquifier: &str,
        now: PrimitiveDateTime,
        extra_sql: &[String],
        link: &NewOauthLink<'_>,
    ) -> Result<User, DatastoreError> {
        self.create_user_linked(new, uniquifier, now, extra_sql, Some(link))
            .await
    }

    /// Records a sign-in through the link.
    ///
    /// # Errors
    ///
    /// As for any query.
    pub(crate) async fn oauth_link_touch(
        &self,
        id: i64,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        with_pool!(self, |pool| sqlx::query(TOUCH)
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Removes the user's link to `provider`; whether there was one.
    ///
    /// # Errors
    ///
    /// As for any query.
    pub async fn oauth_link_delete(
        &self,
        user_id: i64,
        provider: &str,
    ) -> Result<bool, DatastoreError> {
        let done = with_pool!(self, |pool| sqlx::query(DELETE)
            .bind(user_id)
            .bind(provider)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())?);
        Ok(done > 0)
    }
}
