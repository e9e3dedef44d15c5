//! Users: lookups, creation (with roles and the application's own rows), updates, deletion.

use time::PrimitiveDateTime;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::cache::UserWithRoles;
use super::invalidation::Invalidation;
use super::{Datastore, DatastoreError, escape_like};
use crate::identity::{NormalizeForm, email_lookup_key, normalize_email, normalize_username};
use crate::model::{NewUser, Role, User};

const USER_BY_ID: &str = concat!(
    "SELECT ",
    user_columns!(""),
    " FROM \"user\" WHERE \"id\" = $1"
);
const USER_BY_EMAIL: &str = concat!(
    "SELECT ",
    user_columns!(""),
    " FROM \"user\" WHERE lower(\"email\") = lower($1)"
);
const USER_BY_USERNAME: &str = concat!(
    "SELECT ",
    user_columns!(""),
    " FROM \"user\" WHERE lower(\"username\") = lower($1)"
);
// An email match wins over a username match (they could belong to two accounts). `$1` is the
// identity spelt as an email, `$2` spelt as a username.
const USER_BY_IDENTITY: &str = concat!(
    "SELECT ",
    user_columns!(""),
    " FROM \"user\" WHERE lower(\"email\") = lower($1) OR lower(\"username\") = lower($2)",
    " ORDER BY CASE WHEN lower(\"email\") = lower($1) THEN 0 ELSE 1 END LIMIT 1"
);
const USER_BY_UNIQUIFIER: &str = concat!(
    "SELECT ",
    user_columns!(""),
    " FROM \"user\" WHERE \"fs_uniquifier\" = $1"
);
const USER_WITH_ROLES_BY_UNIQUIFIER: &str = concat!(
    "SELECT ",
    user_columns!("u."),
    ", CAST(r.\"id\" AS BIGINT) AS \"role_id\", r.\"name\" AS \"role_name\",",
    " r.\"description\" AS \"role_description\", r.\"permissions\" AS \"role_permissions\"",
    " FROM \"user\" u",
    " LEFT JOIN \"roles_users\" ru ON ru.\"user_id\" = u.\"id\"",
    " LEFT JOIN \"role\" r ON r.\"id\" = ru.\"role_id\"",
    " WHERE u.\"fs_uniquifier\" = $1",
    " ORDER BY r.\"name\""
);
const INSERT_USER: &str = concat!(
    "INSERT INTO \"user\" (\"email\", \"username\", \"password\", \"active\", \"fs_uniquifier\",",
    " \"confirmed_at\", \"login_count\", \"create_datetime\", \"update_datetime\")",
    " VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7) RETURNING ",
    user_columns!("")
);
const LINK_ROLE_BY_NAME: &str = "INSERT INTO \"roles_users\" (\"user_id\", \"role_id\") \
     SELECT $1, \"id\" FROM \"role\" WHERE \"name\" = $2";
const SET_PASSWORD: &str = "UPDATE \"user\" SET \"password\" = $2, \
     \"fs_uniquifier\" = COALESCE($3, \"fs_uniquifier\"), \"update_datetime\" = $4 WHERE \"id\" = $1";
// Rotates the uniquifier (and sets the password when `$4` is not NULL) only if the row still has
// the uniquifier the caller read: of two racing rotations (two uses of one reset link) one wins.
/// What a rotation of the user's credentials writes besides the new uniquifier
/// ([`Datastore::rotate`]).
#[derive(Clone, Copy, Debug)]
pub(super) enum Rotation<'a> {
    /// A new password hash, or none (the uniquifier alone).
    Password(Option<&'a str>),
    /// Two-factor turned on: the method and the stored secret.
    TwoFactor {
        /// `tf_primary_method`.
        method: &'a str,
        /// `tf_totp_secret`, as stored.
        secret: &'a str,
        /// `tf_phone_number` (the SMS method), written with them; `None` leaves it as it is.
        phone: Option<&'a str>,
    },
}

const ROTATE_CREDENTIALS: &str = "UPDATE \"user\" SET \"password\" = COALESCE($4, \"password\"), \
     \"fs_uniquifier\" = $3, \"update_datetime\" = $5 WHERE \"id\" = $1 AND \"fs_uniquifier\" = $2";
const SET_UNIQUIFIER: &str =
    "UPDATE \"user\" SET \"fs_uniquifier\" = $2, \"update_datetime\" = $3 WHERE \"id\" = $1";
const CONFIRM_USER: &str =
    "UPDATE \"user\" SET \"confirmed_at\" = $2, \"update_datetime\" = $2 WHERE \"id\" = $1";
const SET_EMAIL: &str =
    "UPDATE \"user\" SET \"email\" = $2, \"update_datetime\" = $3 WHERE \"id\" = $1";
const SET_USERNAME: &str =
    "UPDATE \"user\" SET \"username\" = $2, \"update_datetime\" = $3 WHERE \"id\" = $1";
const SET_ACTIVE: &str =
    "UPDATE \"user\" SET \"active\" = $2, \"update_datetime\" = $3 WHERE \"id\" = $1";
// Flask-Security's trackable: every right-hand side reads the row as it was before the update.
const RECORD_LOGIN: &str = "UPDATE \"user\" SET \
     \"last_login_at\" = COALESCE(\"current_login_at\", $2), \
     \"current_login_at\" = $2, \
     \"last_login_ip\" = \"current_login_ip\", \
     \"current_login_ip\" = $3, \
     \"login_count\" = COALESCE(\"login_count\", 0) + 1, \
     \"update_datetime\" = $2 \
     WHERE \"id\" = $1";
const SET_IDENTITY: &str =
    "UPDATE \"user\" SET \"email\" = $2, \"username\" = $3 WHERE \"id\" = $1";
// Rows whose email or username has a character outside printable ASCII.
const NON_ASCII_IDENTITIES_SQLITE: &str = "SELECT CAST(\"id\" AS BIGINT), \"email\", \"username\" \
     FROM \"user\" WHERE \"email\" GLOB '*[^ -~]*' OR \"username\" GLOB '*[^ -~]*'";
const NON_ASCII_IDENTITIES_POSTGRES: &str = "SELECT CAST(\"id\" AS BIGINT), \"email\", \"username\" \
     FROM \"user\" WHERE \"email\" ~ '[^ -~]' OR \"username\" ~ '[^ -~]'";
const COUNT_USERS: &str = "SELECT COUNT(*) FROM \"user\"";
const COUNT_MATCHING_USERS: &str = concat!(
    "SELECT COUNT(*) FROM \"user\" WHERE lower(\"email\") LIKE $1 ESCAPE '\\'",
    " OR lower(COALESCE(\"username\", '')) LIKE $1 ESCAPE '\\'"
);
const LIST_MATCHING_USERS: &str = concat!(
    "SELECT ",
    user_columns!(""),
    " FROM \"user\" WHERE lower(\"email\") LIKE $1 ESCAPE '\\'",
    " OR lower(COALESCE(\"username\", '')) LIKE $1 ESCAPE '\\'",
    " ORDER BY \"id\" LIMIT $2 OFFSET $3"
);

impl Datastore {
    /// The user with primary key `id`.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when the query fails.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, DatastoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, User>(
            USER_BY_ID
        )
        .bind(id)
        .fetch_optional(pool)
        .await?))
    }

    /// The user with this email address, in any equivalent spelling
    /// ([`crate::identity::normalize_email`]: NFKC, IDNA domain), compared case-insensitively.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, DatastoreError> {
        self.user_where(USER_BY_EMAIL, &email_lookup_key(email))
            .await
    }

    /// The user with this username, in any equivalent spelling (normalised with
    /// [`Datastore::set_username_normalize_form`]'s form, case-folded), compared
    /// case-insensitively.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>, DatastoreError> {
        self.user_where(USER_BY_USERNAME, &self.username_key(username))
            .await
    }

    /// The user whose email or username is `identity`, each in any equivalent spelling
    /// (case-insensitive); an email match wins.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn user_by_identity(&self, identity: &str) -> Result<Option<User>, DatastoreError> {
        let email = email_lookup_key(identity);
        let username = self.username_key(identity);
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, User>(
            USER_BY_IDENTITY
        )
        .bind(&email)
        .bind(&username)
        .fetch_optional(pool)
        .await?))
    }

    /// The Unicode form usernames are stored and looked up in
    /// (`SECURITY_USERNAME_NORMALIZE_FORM`, NFKD by default; `None`: no normalisation). Applies
    /// to every clone of this datastore; [`crate::Security`] sets it from its configuration.
    pub fn set_username_normalize_form(&self, form: Option<NormalizeForm>) {
        self.shared.username_form.set(form);
    }

    /// The form set by [`Datastore::set_username_normalize_form`].
    pub fn username_normalize_form(&self) -> Option<NormalizeForm> {
        self.shared.username_form.get()
    }

    /// The canonical spelling of `username` for this datastore.
    pub fn username_key(&self, username: &str) -> String {
        normalize_username(username, self.username_normalize_form())
    }

    /// Rewrites the emails and usernames of existing accounts that are not in their canonical
    /// spelling (rows written before normalisation, or by another program), so that lookups find
    /// them and the unique indexes hold on the canonical spellings. Only rows with non-ASCII text
    /// can differ. A row whose canonical spelling another account already has is left as it is
    /// (and logged): two accounts are never merged. Returns the number of rows rewritten.
    ///
    /// [`crate::Security`] runs it at start-up, after the migrations.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn normalize_stored_identities(&self) -> Result<u64, DatastoreError> {
        let rows: Vec<(i64, String, Option<String>)> = match &self.pool {
            super::DbPool::Sqlite(pool) => {
                sqlx::query_as(NON_ASCII_IDENTITIES_SQLITE)
                    .fetch_all(pool)
                    .await?
            }
            super::DbPool::Postgres(pool) => {
                sqlx::query_as(NON_ASCII_IDENTITIES_POSTGRES)
                    .fetch_all(pool)
                    .await?
            }
        };
        let mut rewritten = 0;
        for (id, email, username) in rows {
            let new_email = normalize_email(&email).unwrap_or_else(|_| email.clone());
            let new_username = username.as_deref().map(|u| self.username_key(u));
            if new_email == email && new_username == username {
                continue;
            }
            let result = with_pool!(self, |pool| sqlx::query(SET_IDENTITY)
                .bind(id)
                .bind(&new_email)
                .bind(new_username.as_deref())
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(DatastoreError::from));
            match result {
                Ok(_) => {
                    rewritten += 1;
                    self.invalidate(Invalidation::User(id));
                }
                Err(DatastoreError::Conflict(column)) => tracing::warn!(
                    user_id = id,
                    column,
                    "the canonical spelling of this user's {column} belongs to another account: \
                     left as it is"
                ),
                Err(other) => return Err(other),
            }
        }
        Ok(rewritten)
    }

    /// The user with this `fs_uniquifier`.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn user_by_uniquifier(
        &self,
        uniquifier: &str,
    ) -> Result<Option<User>, DatastoreError> {
        self.user_where(USER_BY_UNIQUIFIER, uniquifier).await
    }

    /// The user with this `fs_uniquifier` and their roles (sorted by name), in one query.
    ///
    /// This is the lookup behind every authenticated request; its answer is cached in this
    /// process (see [`Datastore`]).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn user_with_roles_by_uniquifier(
        &self,
        uniquifier: &str,
    ) -> Result<Option<(User, Vec<Role>)>, DatastoreError> {
        Ok(self
            .user_with_roles_cached(uniquifier)
            .await?
            .map(|found| (*found).clone()))
    }

    /// [`Datastore::user_with_roles_by_uniquifier`], shared with the cache (no copy).
    pub(crate) async fn user_with_roles_cached(
        &self,
        uniquifier: &str,
    ) -> Result<Option<UserWithRoles>, DatastoreError> {
        let cache = self.cache();
        if let Some(found) = cache.user(uniquifier) {
            return Ok(Some(found));
        }
        let ticket = cache.user_ticket();
        let found = self
            .user_with_roles_uncached(uniquifier)
            .await?
            .map(Arc::new);
        if let Some(found) = &found {
            cache.put_user(ticket, Arc::clone(found));
        }
        Ok(found)
    }

    async fn user_with_roles_uncached(
        &self,
        uniquifier: &str,
    ) -> Result<Option<(User, Vec<Role>)>, DatastoreError> {
        with_pool!(self, |pool| {
            let rows = sqlx::query(USER_WITH_ROLES_BY_UNIQUIFIER)
                .bind(uniquifier)
                .fetch_all(pool)
                .await?;
            user_with_roles_of!(&rows)
        })
    }

    /// Creates a user, in one transaction: inserts the row (`login_count` 0, created and updated
    /// `now`), links the roles named in `new.roles`, then runs each statement of `extra_sql` with
    /// `$1` bound to the new user's id, so the application can create its own rows (a profile…).
    ///
    /// A statement of `extra_sql` that does not mention `$1` runs without parameters. If anything
    /// fails, nothing is written.
    ///
    /// # Errors
    ///
    /// The email and username are stored in their canonical spelling ([`normalize_email`](crate::normalize_email), [`normalize_username`](crate::normalize_username)).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Invalid`] (`"email"`) for an email address without a canonical form,
    /// [`DatastoreError::Conflict`] with `"email"` or `"username"` when another account has it
    /// (in any equivalent spelling), [`DatastoreError::NotFound`] (`"role X"`) for an unknown
    /// role, or the error of a failing `extra_sql` statement.
    pub async fn create_user(
        &self,
        new: &NewUser,
        uniquifier: &str,
        now: PrimitiveDateTime,
        extra_sql: &[String],
    ) -> Result<User, DatastoreError> {
        self.create_user_linked(new, uniquifier, now, extra_sql, None)
            .await
    }

    /// [`create_user`](Self::create_user), and in the same transaction the social sign-in
    /// `link` to the new user (`datastore/oauth.rs`).
    pub(super) async fn create_user_linked(
        &self,
        new: &NewUser,
        uniquifier: &str,
        now: PrimitiveDateTime,
        extra_sql: &[String],
        link: Option<&super::oauth::NewOauthLink<'_>>,
    ) -> Result<User, DatastoreError> {
        let email =
            normalize_email(&new.email).map_err(|_| DatastoreError::Invalid("email".to_owned()))?;
        let username = new.username.as_deref().map(|u| self.username_key(u));
        let mut role_names: Vec<&str> = Vec::with_capacity(new.roles.len());
        for name in &new.roles {
            if !role_names.contains(&name.as_str()) {
                role_names.push(name);
            }
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let user = sqlx::query_as::<_, User>(INSERT_USER)
                .bind(&email)
                .bind(username.as_deref())
                .bind(new.password_hash.as_deref())
                .bind(new.active)
                .bind(uniquifier)
                .bind(new.confirmed_at)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            for name in &role_names {
                let linked = sqlx::query(LINK_ROLE_BY_NAME)
                    .bind(user.id)
                    .bind(*name)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if linked == 0 {
                    return Err(DatastoreError::NotFound(format!("role {name}")));
                }
            }
            for sql in extra_sql {
                let query = sqlx::query(sql);
                let query = if sql.contains("$1") {
                    query.bind(user.id)
                } else {
                    query
                };
                query.execute(&mut *tx).await?;
            }
            if let Some(link) = link {
                sqlx::query(super::oauth::INSERT_LINK)
                    .bind(link.provider)
                    .bind(link.subject)
                    .bind(user.id)
                    .bind(link.email)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(user)
        })
    }

    /// Sets the password hash, and rotates `fs_uniquifier` when `new_uniquifier` is given (which
    /// signs the user out of every session and invalidates their tokens).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when there is no such user; [`DatastoreError::Conflict`] if
    /// the uniquifier is taken.
    pub async fn set_password(
        &self,
        user_id: i64,
        hash: &str,
        new_uniquifier: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(SET_PASSWORD)
            .bind(user_id)
            .bind(hash)
            .bind(new_uniquifier)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        self.invalidate(Invalidation::User(user_id));
        expect_user(updated, user_id)
    }

    /// Gives the user a new `fs_uniquifier` (and `password_hash` as their password, when given) and
    /// deletes every server-side session and remember-me series of theirs, all in one transaction,
    /// provided their uniquifier is still `expected_uniquifier`. Of two racing rotations (two
    /// submissions of one reset link, a reset racing a change) exactly one writes. Sessions in
    /// Redis ([`Datastore::use_redis`]) are deleted right after the commit.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Stale`] (`"fs_uniquifier"`) when the user's uniquifier is no longer
    /// `expected_uniquifier` (or there is no such user): nothing was written.
    pub async fn rotate_credentials(
        &self,
        user_id: i64,
        expected_uniquifier: &str,
        new_uniquifier: &str,
        password_hash: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let rotation = Rotation::Password(password_hash);
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

    /// [`Datastore::rotate_credentials`] that also appends `activity` to the activity log, in
    /// the same transaction (a password change or reset is never without its record). Returns
    /// the event's id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::rotate_credentials`].
    pub async fn rotate_credentials_recorded(
        &self,
        user_id: i64,
        expected_uniquifier: &str,
        new_uniquifier: &str,
        password_hash: Option<&str>,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        let rotation = Rotation::Password(password_hash);
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
        recorded_id(id)
    }

    /// The write of [`Datastore::rotate_credentials`] and [`Datastore::enable_two_factor`]: the
    /// user row (new uniquifier and what `rotation` changes, only while the uniquifier is still
    /// `expected_uniquifier`), then every session and remember-me series of theirs deleted, in
    /// one transaction; then their cached entries dropped on every instance.
    pub(super) async fn rotate(
        &self,
        user_id: i64,
        expected_uniquifier: &str,
        new_uniquifier: &str,
        rotation: Rotation<'_>,
        now: PrimitiveDateTime,
        activity: Option<&crate::activity::NewActivity>,
    ) -> Result<Option<i64>, DatastoreError> {
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let statement = match rotation {
                Rotation::Password(hash) => sqlx::query(ROTATE_CREDENTIALS)
                    .bind(user_id)
                    .bind(expected_uniquifier)
                    .bind(new_uniquifier)
                    .bind(hash)
                    .bind(now),
                Rotation::TwoFactor {
                    method,
                    secret,
                    phone: None,
                } => sqlx::query(super::two_factor::ENABLE_TWO_FACTOR)
                    .bind(user_id)
                    .bind(expected_uniquifier)
                    .bind(new_uniquifier)
                    .bind(method)
                    .bind(secret)
                    .bind(now),
                Rotation::TwoFactor {
                    method,
                    secret,
                    phone: Some(phone),
                } => sqlx::query(super::two_factor::ENABLE_TWO_FACTOR_PHONE)
                    .bind(user_id)
                    .bind(expected_uniquifier)
                    .bind(new_uniquifier)
                    .bind(method)
                    .bind(secret)
                    .bind(now)
                    .bind(phone),
            };
            let updated = statement.execute(&mut *tx).await?.rows_affected();
            if updated == 0 {
                Err(DatastoreError::Stale("fs_uniquifier".to_owned()))
            } else {
                sqlx::query(super::sessions::DELETE_SESSIONS_OF_USER)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(super::remember::DELETE_SERIES_OF_USER)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                let mut recorded = None;
                if let Some(new) = activity {
                    let id = insert_activity!(&mut *tx, new, now)?;
                    recorded = Some(id);
                }
                tx.commit().await?;
                Ok(recorded)
            }
        });
        if result.is_ok() {
            self.end_redis_sessions_of_user(user_id).await;
        }
        // Here and on every other instance (the invalidation channel).
        self.invalidate(Invalidation::User(user_id));
        self.invalidate(Invalidation::SessionsOfUser {
            user_id,
            except: None,
        });
        result
    }

    /// Replaces `fs_uniquifier` (signs the user out everywhere).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_password`].
    pub async fn set_uniquifier(
        &self,
        user_id: i64,
        uniquifier: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(SET_UNIQUIFIER)
            .bind(user_id)
            .bind(uniquifier)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected());
        self.invalidate(Invalidation::User(user_id));
        expect_user(updated, user_id)
    }

    /// Marks the email address confirmed at `at`.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when there is no such user.
    pub async fn confirm_user(
        &self,
        user_id: i64,
        at: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(CONFIRM_USER)
            .bind(user_id)
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected());
        self.invalidate(Invalidation::User(user_id));
        expect_user(updated, user_id)
    }

    /// Changes the email address (stored in its canonical spelling).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Invalid`] (`"email"`) for an address without a canonical form,
    /// [`DatastoreError::Conflict`] (`"email"`) when another account has it (in any equivalent
    /// spelling), [`DatastoreError::NotFound`] when there is no such user.
    pub async fn set_email(
        &self,
        user_id: i64,
        email: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        self.set_email_with(user_id, email, now, None)
            .await
            .map(|_| ())
    }

    /// [`Datastore::set_email`] that also appends `activity` (`email_changed`) to the activity
    /// log in the same transaction. Returns the event's id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_email`].
    pub async fn set_email_recorded(
        &self,
        user_id: i64,
        email: &str,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        recorded_id(
            self.set_email_with(user_id, email, now, Some(activity))
                .await?,
        )
    }

    async fn set_email_with(
        &self,
        user_id: i64,
        email: &str,
        now: PrimitiveDateTime,
        activity: Option<&crate::activity::NewActivity>,
    ) -> Result<Option<i64>, DatastoreError> {
        let email =
            normalize_email(email).map_err(|_| DatastoreError::Invalid("email".to_owned()))?;
        let result = recorded_write!(self, activity, now, |tx| {
            let updated = sqlx::query(SET_EMAIL)
                .bind(user_id)
                .bind(&email)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            expect_user(updated, user_id)?
        });
        self.invalidate(Invalidation::User(user_id));
        result.map(|((), id)| id)
    }

    /// Changes the username (stored in its canonical spelling, [`Datastore::username_key`]);
    /// `None` takes it away.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Conflict`] (`"username"`) when another account has it (in any
    /// equivalent spelling), [`DatastoreError::NotFound`] when there is no such user.
    pub async fn set_username(
        &self,
        user_id: i64,
        username: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        self.set_username_with(user_id, username, now, None)
            .await
            .map(|_| ())
    }

    /// [`Datastore::set_username`] that also appends `activity` (`username_changed`) to the
    /// activity log in the same transaction. Returns the event's id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_username`].
    pub async fn set_username_recorded(
        &self,
        user_id: i64,
        username: Option<&str>,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        let id = self
            .set_username_with(user_id, username, now, Some(activity))
            .await?;
        recorded_id(id)
    }

    async fn set_username_with(
        &self,
        user_id: i64,
        username: Option<&str>,
        now: PrimitiveDateTime,
        activity: Option<&crate::activity::NewActivity>,
    ) -> Result<Option<i64>, DatastoreError> {
        let username = username.map(|u| self.username_key(u));
        let result = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(SET_USERNAME)
                .bind(user_id)
                .bind(&username)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            expect_user(updated, user_id)?;
            let mut recorded = None;
            if let Some(new) = activity {
                let id = insert_activity!(&mut *tx, new, now)?;
                recorded = Some(id);
            }
            tx.commit().await?;
            Ok::<_, DatastoreError>(recorded)
        });
        self.invalidate(Invalidation::User(user_id));
        result
    }

    /// Activates or deactivates the account.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when there is no such user.
    pub async fn set_active(
        &self,
        user_id: i64,
        active: bool,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        self.set_active_with(user_id, active, now, None)
            .await
            .map(|_| ())
    }

    /// [`Datastore::set_active`] that also appends `activity` (an administrator's
    /// `account_deactivated` / `account_activated`) in the same transaction. Returns the event's
    /// id.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::set_active`].
    pub async fn set_active_recorded(
        &self,
        user_id: i64,
        active: bool,
        now: PrimitiveDateTime,
        activity: &crate::activity::NewActivity,
    ) -> Result<i64, DatastoreError> {
        recorded_id(
            self.set_active_with(user_id, active, now, Some(activity))
                .await?,
        )
    }

    async fn set_active_with(
        &self,
        user_id: i64,
        active: bool,
        now: PrimitiveDateTime,
        activity: Option<&crate::activity::NewActivity>,
    ) -> Result<Option<i64>, DatastoreError> {
        let result = recorded_write!(self, activity, now, |tx| {
            let updated = sqlx::query(SET_ACTIVE)
                .bind(user_id)
                .bind(active)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            expect_user(updated, user_id)?
        });
        self.invalidate(Invalidation::User(user_id));
        result.map(|((), id)| id)
    }

    /// Records a successful login like Flask-Security's trackable, in one `UPDATE`:
    /// `last_login_at` ← `current_login_at` (or `now` on the first login), `current_login_at` ←
    /// `now`, `last_login_ip` ← `current_login_ip`, `current_login_ip` ← `ip`, `login_count` + 1.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when there is no such user.
    pub async fn record_login(
        &self,
        user_id: i64,
        ip: Option<&str>,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let updated = with_pool!(self, |pool| sqlx::query(RECORD_LOGIN)
            .bind(user_id)
            .bind(now)
            .bind(ip)
            .execute(pool)
            .await?
            .rows_affected());
        self.invalidate(Invalidation::User(user_id));
        expect_user(updated, user_id)
    }

    /// Deletes a user, in one transaction: role links, sessions, WebAuthn credentials, then the
    /// user row (the application's rows go by their `ON DELETE CASCADE`). Returns whether the user
    /// existed. Sessions in Redis ([`Datastore::use_redis`]) are deleted right after the commit.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when a statement fails.
    pub async fn delete_user(&self, user_id: i64) -> Result<bool, DatastoreError> {
        self.delete_user_with(user_id, None)
            .await
            .map(|(deleted, _)| deleted)
    }

    /// [`Datastore::delete_user`] that appends `activity` (`account_deleted`) to the activity log
    /// in the same transaction, at `now` (the log outlives the account until it is purged): the
    /// event's id, or `None` when there was no such user (nothing written).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::delete_user`].
    pub async fn delete_user_recorded(
        &self,
        user_id: i64,
        activity: &crate::activity::NewActivity,
        now: PrimitiveDateTime,
    ) -> Result<Option<i64>, DatastoreError> {
        self.delete_user_with(user_id, Some((activity, now)))
            .await
            .map(|(_, id)| id)
    }

    async fn delete_user_with(
        &self,
        user_id: i64,
        activity: Option<(&crate::activity::NewActivity, PrimitiveDateTime)>,
    ) -> Result<(bool, Option<i64>), DatastoreError> {
        let deleted = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for sql in [
                "DELETE FROM \"roles_users\" WHERE \"user_id\" = $1",
                "DELETE FROM \"rampart_session\" WHERE \"user_id\" = $1",
                "DELETE FROM \"webauthn\" WHERE \"user_id\" = $1",
                "DELETE FROM \"rampart_otp_used_step\" WHERE \"user_id\" = $1",
                "DELETE FROM \"rampart_remember\" WHERE \"user_id\" = $1",
                "DELETE FROM \"rampart_mailed_code\" WHERE \"user_id\" = $1",
            ] {
                sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
            }
            let deleted = sqlx::query("DELETE FROM \"user\" WHERE \"id\" = $1")
                .bind(user_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let id = match activity {
                Some((new, now)) if deleted > 0 => Some(insert_activity!(&mut *tx, new, now)?),
                _ => None,
            };
            tx.commit().await?;
            Ok((deleted > 0, id))
        });
        if matches!(deleted, Ok((true, _))) {
            self.end_redis_sessions_of_user(user_id).await;
        }
        self.invalidate(Invalidation::User(user_id));
        self.invalidate(Invalidation::SessionsOfUser {
            user_id,
            except: None,
        });
        deleted
    }

    /// The number of users.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn count_users(&self) -> Result<i64, DatastoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(
            COUNT_USERS
        )
        .fetch_one(pool)
        .await?))
    }

    /// A page of users ordered by id, and the total number matching.
    ///
    /// `search` matches a substring of the email or username, case-insensitively. Negative
    /// `offset` or `limit` count as 0.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::user_by_id`].
    pub async fn list_users(
        &self,
        search: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<User>, i64), DatastoreError> {
        let pattern = format!(
            "%{}%",
            escape_like(&search.unwrap_or_default().to_lowercase())
        );
        with_pool!(self, |pool| {
            let total = sqlx::query_scalar::<_, i64>(COUNT_MATCHING_USERS)
                .bind(&pattern)
                .fetch_one(pool)
                .await?;
            let users = sqlx::query_as::<_, User>(LIST_MATCHING_USERS)
                .bind(&pattern)
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(pool)
                .await?;
            Ok((users, total))
        })
    }

    /// Runs a one-parameter user lookup.
    async fn user_where(
        &self,
        sql: &'static str,
        value: &str,
    ) -> Result<Option<User>, DatastoreError> {
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, User>(sql)
            .bind(value)
            .fetch_optional(pool)
            .await?))
    }
}

/// `Ok` when an update touched the user, else [`DatastoreError::NotFound`].
pub(super) fn expect_user(rows_affected: u64, user_id: i64) -> Result<(), DatastoreError> {
    if rows_affected == 0 {
        Err(DatastoreError::NotFound(format!("user {user_id}")))
    } else {
        Ok(())
    }
}

/// The username normalisation form shared by the clones of a datastore (NFKD by default).
#[derive(Debug)]
pub(super) struct UsernameForm(AtomicU8);

impl Default for UsernameForm {
    fn default() -> Self {
        Self(AtomicU8::new(Self::encode(Some(NormalizeForm::Nfkd))))
    }
}

impl UsernameForm {
    fn encode(form: Option<NormalizeForm>) -> u8 {
        match form {
            None => 0,
            Some(NormalizeForm::Nfc) => 1,
            Some(NormalizeForm::Nfd) => 2,
            Some(NormalizeForm::Nfkc) => 3,
            Some(NormalizeForm::Nfkd) => 4,
        }
    }

    fn set(&self, form: Option<NormalizeForm>) {
        self.0.store(Self::encode(form), Ordering::Relaxed);
    }

    fn get(&self) -> Option<NormalizeForm> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            1 => Some(NormalizeForm::Nfc),
            2 => Some(NormalizeForm::Nfd),
            3 => Some(NormalizeForm::Nfkc),
            _ => Some(NormalizeForm::Nfkd),
        }
    }
}

/// The id of the event a `…_recorded` write appended (it always appends one).
pub(super) fn recorded_id(id: Option<i64>) -> Result<i64, DatastoreError> {
    id.ok_or_else(|| DatastoreError::Stale("activity".to_owned()))
}
