//! Server-side sessions (`rampart_session`), keyed by a hash of the session id.
//!
//! These are the primitives of the framework's `tower-sessions` store. Session ids are never
//! stored, only their hashes, so a leaked table does not hand out live sessions.
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

use super::cache::CachedSession;
use super::invalidation::Invalidation;
use super::session_writer::{Kind, SessionRow};
use super::{Datastore, DatastoreError};

pub(super) const DELETE_SESSIONS_OF_USER: &str =
    "DELETE FROM \"rampart_session\" WHERE \"user_id\" = $1";
const LOAD_SESSION: &str = "SELECT \"data\", CAST(\"user_id\" AS BIGINT) AS \"user_id\", \
     \"expiry_date\" FROM \"rampart_session\" WHERE \"id\" = $1 AND \"expiry_date\" > $2";
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
        let row = with_pool!(self, |pool| sqlx::query_as::<
            _,
            (String, Option<i64>, PrimitiveDateTime),
        >(LOAD_SESSION)
        .bind(id_hash)
        .bind(now)
        .fetch_optional(pool)
        .await?);
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

    /// Inserts or replaces a session (its creation time is kept; `last_seen_at` is set to the
    /// wall clock).
    ///
    /// # Errors
    ///
    /// [`DatastoreError::NotFound`] when `user_id` names no user; as for
    /// [`Datastore::session_load`] otherwise.
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
        with_pool!(self, |pool| sqlx::query(
            "DELETE FROM \"rampart_session\" WHERE \"id\" = $1"
        )
        .bind(id_hash)
        .execute(pool)
        .await
        .map(|_| ()))?;
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

    /// Deletes the sessions expired by `now`; returns how many went.
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

/// The current naive UTC time, for bookkeeping columns only (expiry uses the caller's clock).
fn wall_clock() -> PrimitiveDateTime {
    let now = OffsetDateTime::now_utc();
    PrimitiveDateTime::new(now.date(), now.time())
}
