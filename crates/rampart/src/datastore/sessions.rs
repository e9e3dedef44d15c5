//! Server-side sessions (`rampart_session`), keyed by a hash of the session id.
//!
//! These are the primitives of the framework's `tower-sessions` store. Session ids are never
//! stored, only their hashes, so a leaked table does not hand out live sessions.
//!
//! With [`Datastore::use_redis`] the sessions live in Redis instead (`redis_sessions.rs`: same
//! methods, same hashes as keys, same cache and invalidations); the table is then left alone
//! but for [`Datastore::delete_expired_sessions`], which still clears what it held before.
//!
//! Loads are cached in this process (see [`Datastore`]). Creations and saves are grouped (group
//! commit, [`SessionWriter`](super::session_writer::SessionWriter), in `session_writer.rs`): while one group is being written, the next collects, and one of
//! its callers then writes it as one multi-row statement, so a burst of new sessions (anonymous
//! visitors fetching a form, each needing a CSRF secret) costs one round trip and one commit per
//! group instead of per session. Each caller still returns only once its own row is committed;
//! if a group fails, its callers write their rows one by one, so each gets its own precise error.
//! No background task is involved: the work runs on the callers' own tasks.

use std::sync::Arc;

use time::{OffsetDateTime, PrimitiveDateTime};

use super::cache::{CachedSession, UserWithRoles};
use super::invalidation::Invalidation;
use super::redis_sessions::SessionWrite;
use super::session_writer::{Kind, SessionRow};
use super::{Datastore, DatastoreError};

pub(super) const DELETE_SESSIONS_OF_USER: &str =
    "DELETE FROM \"rampart_session\" WHERE \"user_id\" = $1";
const LOAD_SESSION: &str = "SELECT \"data\", CAST(\"user_id\" AS BIGINT) AS \"user_id\", \
     \"expiry_date\" FROM \"rampart_session\" WHERE \"id\" = $1 AND \"expiry_date\" > $2";
// The session and its user with their roles, in one statement (one row per role).
const LOAD_SESSION_WITH_USER: &str = concat!(
    "SELECT s.\"data\" AS \"session_data\", ",
    "CAST(s.\"user_id\" AS BIGINT) AS \"session_user_id\", ",
    "s.\"expiry_date\" AS \"session_expiry\", ",
    user_columns!("u."),
    ", CAST(r.\"id\" AS BIGINT) AS \"role_id\", r.\"name\" AS \"role_name\",",
    " r.\"description\" AS \"role_description\", r.\"permissions\" AS \"role_permissions\"",
    " FROM \"rampart_session\" s",
    " LEFT JOIN \"user\" u ON u.\"id\" = s.\"user_id\"",
    " LEFT JOIN \"roles_users\" ru ON ru.\"user_id\" = u.\"id\"",
    " LEFT JOIN \"role\" r ON r.\"id\" = ru.\"role_id\"",
    " WHERE s.\"id\" = $1 AND s.\"expiry_date\" > $2",
    " ORDER BY r.\"name\""
);
const SAVE_SESSION: &str = "INSERT INTO \"rampart_session\" \
     (\"id\", \"user_id\", \"data\", \"expiry_date\", \"created_at\", \"last_seen_at\") \
     VALUES ($1, $2, $3, $4, $5, $5) \
     ON CONFLICT (\"id\") DO UPDATE SET \"user_id\" = excluded.\"user_id\", \
     \"data\" = excluded.\"data\", \"expiry_date\" = excluded.\"expiry_date\", \
     \"last_seen_at\" = excluded.\"last_seen_at\"";
const CREATE_SESSION: &str = "INSERT INTO \"rampart_session\" \
     (\"id\", \"user_id\", \"data\", \"expiry_date\", \"created_at\", \"last_seen_at\") \
     VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (\"id\") DO NOTHING";
const SESSIONS_OF_USER: &str = "SELECT \"id\" AS \"id_hash\", \"expiry_date\", \"created_at\", \
     \"last_seen_at\" FROM \"rampart_session\" WHERE \"user_id\" = $1 AND \"expiry_date\" > $2 \
     ORDER BY \"created_at\", \"id\"";

/// One live session of a user, for an "active sessions" page.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionInfo {
    /// The stored hash of the session id (not the id itself).
    pub id_hash: String,
    /// When the session expires (naive UTC).
    pub expiry_date: PrimitiveDateTime,
    /// When the session was first stored (naive UTC, wall clock).
    pub created_at: PrimitiveDateTime,
    /// When the session was last saved (naive UTC, wall clock).
    pub last_seen_at: Option<PrimitiveDateTime>,
}

impl Datastore {
    /// The data (JSON) of the session whose id hashes to `id_hash`, unless it expired by `now`.
    ///
    /// Cached in this process (see [`Datastore`]).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when the query fails.
    pub async fn session_load(
        &self,
        id_hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<String>, DatastoreError> {
        let cache = self.cache();
        if let Some(hit) = cache.session(id_hash, now) {
            return Ok(Some(hit.data.to_string()));
        }
        let ticket = cache.session_ticket();
        let row = match self.redis() {
            Some(redis) => redis.session_load(id_hash, now).await?,
            None => with_pool!(self, |pool| sqlx::query_as::<
                _,
                (String, Option<i64>, PrimitiveDateTime),
            >(LOAD_SESSION)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?),
        };
        Ok(row.map(|(data, user_id, expiry)| {
            cache.put_session(
                ticket,
                id_hash,
                CachedSession {
                    user_id,
                    data: Arc::from(data.as_str()),
                    expiry,
                },
            );
            data
        }))
    }

    /// [`Datastore::session_load`], and with it the session's user and their roles (sorted by
    /// name) when the session records a user: one statement instead of two on the path of
    /// every authenticated request that misses the cache. The user is `None` when the session
    /// came from the cache or Redis (then [`Datastore::user_with_roles_by_uniquifier`] finds
    /// it), names no user, or the user is gone. Whether it is the user the session signed in
    /// (same `fs_uniquifier`) and still active is for the caller to check. Both go into the
    /// cache, each under its own generation check.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub(crate) async fn session_load_with_user(
        &self,
        id_hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<(String, Option<UserWithRoles>)>, DatastoreError> {
        if self.redis().is_some() {
            return Ok(self
                .session_load(id_hash, now)
                .await?
                .map(|data| (data, None)));
        }
        let cache = self.cache();
        if let Some(hit) = cache.session(id_hash, now) {
            return Ok(Some((hit.data.to_string(), None)));
        }
        let session_ticket = cache.session_ticket();
        let user_ticket = cache.user_ticket();
        let found = with_pool!(self, |pool| {
            use sqlx::Row as _;
            let rows = sqlx::query(LOAD_SESSION_WITH_USER)
                .bind(id_hash)
                .bind(now)
                .fetch_all(pool)
                .await?;
            match rows.first() {
                None => None,
                Some(first) => {
                    let data: String = first.try_get("session_data")?;
                    let user_id: Option<i64> = first.try_get("session_user_id")?;
                    let expiry: PrimitiveDateTime = first.try_get("session_expiry")?;
                    let user = user_with_roles_of!(&rows)?;
                    Some((data, user_id, expiry, user))
                }
            }
        });
        Ok(found.map(|(data, user_id, expiry, user)| {
            let user = user.map(Arc::new);
            if cache.enabled() {
                cache.put_session(
                    session_ticket,
                    id_hash,
                    CachedSession {
                        user_id,
                        data: Arc::from(data.as_str()),
                        expiry,
                    },
                );
                if let Some(user) = &user {
                    cache.put_user(user_ticket, Arc::clone(user));
                }
            }
            (data, user)
        }))
    }

    /// Inserts or replaces a session (its creation time is kept; `last_seen_at` is set to the
    /// wall clock).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when `user_id` names no user (in the database; Redis has no
    /// foreign keys); as for [`Datastore::session_load`] otherwise.
    pub async fn session_save(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expiry: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        let row = SessionRow {
            id_hash: id_hash.to_owned(),
            user_id,
            data: data.to_owned(),
            expiry,
            now: wall_clock(),
        };
        if let Some(redis) = self.redis() {
            redis.session_save(&row.as_write()).await?;
            self.invalidate(Invalidation::Session(id_hash.to_owned()));
            return Ok(());
        }
        let grouped = self
            .shared
            .session_writer
            .write(&self.pool, Kind::Save, &row)
            .await;
        if grouped.is_err() {
            with_pool!(self, |pool| sqlx::query(SAVE_SESSION)
                .bind(&row.id_hash)
                .bind(row.user_id)
                .bind(&row.data)
                .bind(row.expiry)
                .bind(row.now)
                .execute(pool)
                .await
                .map(|_| ()))?;
        }
        self.invalidate(Invalidation::Session(id_hash.to_owned()));
        Ok(())
    }

    /// Inserts a new session; `false` (and nothing written) when the id is taken.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_save`].
    pub async fn session_create(
        &self,
        id_hash: &str,
        user_id: Option<i64>,
        data: &str,
        expiry: PrimitiveDateTime,
    ) -> Result<bool, DatastoreError> {
        let row = SessionRow {
            id_hash: id_hash.to_owned(),
            user_id,
            data: data.to_owned(),
            expiry,
            now: wall_clock(),
        };
        if let Some(redis) = self.redis() {
            return redis.session_create(&row.as_write()).await;
        }
        if let Ok(inserted) = self
            .shared
            .session_writer
            .write(&self.pool, Kind::Create, &row)
            .await
        {
            return Ok(inserted);
        }
        let inserted = with_pool!(self, |pool| sqlx::query(CREATE_SESSION)
            .bind(&row.id_hash)
            .bind(row.user_id)
            .bind(&row.data)
            .bind(row.expiry)
            .bind(row.now)
            .execute(pool)
            .await?
            .rows_affected());
        Ok(inserted > 0)
    }

    /// Deletes a session (no error when it does not exist).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn session_delete(&self, id_hash: &str) -> Result<(), DatastoreError> {
        match self.redis() {
            Some(redis) => redis.session_delete(id_hash).await?,
            None => with_pool!(self, |pool| sqlx::query(
                "DELETE FROM \"rampart_session\" WHERE \"id\" = $1"
            )
            .bind(id_hash)
            .execute(pool)
            .await
            .map(|_| ()))?,
        }
        self.invalidate(Invalidation::Session(id_hash.to_owned()));
        Ok(())
    }

    /// The live sessions of a user, oldest first.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn sessions_of_user(
        &self,
        user_id: i64,
        now: PrimitiveDateTime,
    ) -> Result<Vec<SessionInfo>, DatastoreError> {
        if let Some(redis) = self.redis() {
            let sessions = redis.sessions_of_user(user_id, now).await?;
            return Ok(sessions
                .into_iter()
                .map(|s| SessionInfo {
                    id_hash: s.id_hash,
                    expiry_date: s.expiry,
                    created_at: s.created_at,
                    last_seen_at: s.last_seen_at,
                })
                .collect());
        }
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, SessionInfo>(
            SESSIONS_OF_USER
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(pool)
        .await?))
    }

    /// Deletes every session of a user, except `except_id_hash` (the current one) when given;
    /// returns how many went.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn delete_sessions_of_user(
        &self,
        user_id: i64,
        except_id_hash: Option<&str>,
    ) -> Result<u64, DatastoreError> {
        if let Some(redis) = self.redis() {
            let deleted = redis
                .delete_sessions_of_user(user_id, except_id_hash)
                .await?;
            self.invalidate(Invalidation::SessionsOfUser {
                user_id,
                except: except_id_hash.map(str::to_owned),
            });
            return Ok(deleted);
        }
        let deleted = with_pool!(self, |pool| match except_id_hash {
            Some(keep) => sqlx::query(
                "DELETE FROM \"rampart_session\" WHERE \"user_id\" = $1 AND \"id\" <> $2"
            )
            .bind(user_id)
            .bind(keep)
            .execute(pool)
            .await?
            .rows_affected(),
            None => sqlx::query(DELETE_SESSIONS_OF_USER)
                .bind(user_id)
                .execute(pool)
                .await?
                .rows_affected(),
        });
        self.invalidate(Invalidation::SessionsOfUser {
            user_id,
            except: except_id_hash.map(str::to_owned),
        });
        Ok(deleted)
    }

    /// Deletes the sessions expired by `now`; returns how many went. (Sessions in Redis expire
    /// by themselves; this clears the table, which may hold sessions from before Redis.)
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn delete_expired_sessions(
        &self,
        now: PrimitiveDateTime,
    ) -> Result<u64, DatastoreError> {
        let deleted = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM \"rampart_session\" WHERE \"expiry_date\" <= $1"
        )
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected());
        self.cache()
            .invalidate_sessions(|_, session| session.expiry <= now);
        Ok(deleted)
    }
}

impl Datastore {
    /// After a transaction that ended every session of `user_id` in the table (a new
    /// uniquifier, a deleted user), ends them in Redis too when sessions live there. A failure is
    /// logged, not returned: the change is committed, and those sessions no longer sign anyone in
    /// (they carry the old uniquifier, or name a user who is gone); they expire by themselves.
    pub(super) async fn end_redis_sessions_of_user(&self, user_id: i64) {
        if let Some(redis) = self.redis()
            && let Err(error) = redis.delete_sessions_of_user(user_id, None).await
        {
            tracing::warn!(%error, user_id, "the user's sessions in Redis were not deleted");
        }
    }
}

impl SessionRow {
    /// The row as a Redis session write.
    fn as_write(&self) -> SessionWrite<'_> {
        SessionWrite {
            id_hash: &self.id_hash,
            user_id: self.user_id,
            data: &self.data,
            expiry: self.expiry,
            now: self.now,
        }
    }
}

/// The current naive UTC time, for bookkeeping columns only (expiry uses the caller's clock).
fn wall_clock() -> PrimitiveDateTime {
    let now = OffsetDateTime::now_utc();
    PrimitiveDateTime::new(now.date(), now.time())
}
