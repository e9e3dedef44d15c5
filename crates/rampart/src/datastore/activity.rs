//! The account activity log (`rampart_activity`): append, list a user's events newest first
//! (cursor pagination), search everyone's (administrators), tell whether a device was seen, and
//! purge old events. Also the session details of the security centre (`rampart_session` rows, or
//! the sessions in Redis, with their data, for the device recorded at sign-in) and the throttled
//! "last seen" touch.

use time::PrimitiveDateTime;

use super::{Datastore, DatastoreError};
use crate::activity::{Activity, NewActivity};

pub(crate) const INSERT: &str = "INSERT INTO \"rampart_activity\" (\"user_id\", \"actor_id\", \"event\", \
     \"detail\", \"ip\", \"device\", \"device_key\", \"user_agent\", \"created_at\") \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING CAST(\"id\" AS BIGINT)";
const COLUMNS: &str = "CAST(\"id\" AS BIGINT) AS \"id\", CAST(\"user_id\" AS BIGINT) AS \"user_id\", \
     CAST(\"actor_id\" AS BIGINT) AS \"actor_id\", \"event\", \"detail\", \"ip\", \"device\", \
     \"user_agent\", \"created_at\"";

/// The stored columns of an event.
type Row = (
    i64,
    Option<i64>,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    PrimitiveDateTime,
);

fn activity(row: Row) -> Activity {
    let (id, user_id, actor_id, event, detail, ip, device, user_agent, created_at) = row;
    Activity {
        id,
        user_id,
        actor_id,
        event,
        detail: detail.and_then(|d| serde_json::from_str(&d).ok()),
        ip,
        device,
        user_agent,
        created_at,
    }
}

/// What an administrator's search of the activity log asks for (every field optional).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityFilter {
    /// Events about this user only.
    pub user_id: Option<i64>,
    /// Events of this name only (`sign_in`, …).
    pub event: Option<String>,
    /// Events at or after this time.
    pub from: Option<PrimitiveDateTime>,
    /// Events before this time.
    pub until: Option<PrimitiveDateTime>,
    /// Events older than this id (the cursor of the next page).
    pub before_id: Option<i64>,
}

/// One live session with the data it carries (for the device recorded at sign-in).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionDetails {
    /// The stored hash of the session id (never shown: see the opaque id of the API).
    pub id_hash: String,
    /// The session's data (JSON).
    pub data: String,
    /// When the session was first stored (naive UTC).
    pub created_at: PrimitiveDateTime,
    /// When the session was last used (naive UTC; updated at most once a minute).
    pub last_seen_at: Option<PrimitiveDateTime>,
}

impl Datastore {
    /// Appends an event; returns its id.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Unavailable`] or [`DatastoreError::Query`] when the insert fails.
    pub async fn activity_record(
        &self,
        new: &NewActivity,
        now: PrimitiveDateTime,
    ) -> Result<i64, DatastoreError> {
        Ok(with_pool!(self, |pool| insert_activity!(pool, new, now)?))
    }

    /// The events about `user_id`, newest first: at most `limit`, older than `before_id` when
    /// given (the `id` of the last event of the previous page).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::activity_record`].
    pub async fn activity_of_user(
        &self,
        user_id: i64,
        before_id: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Activity>, DatastoreError> {
        self.activity_search(
            &ActivityFilter {
                user_id: Some(user_id),
                before_id,
                ..ActivityFilter::default()
            },
            limit,
        )
        .await
    }

    /// Everyone's events matching `filter`, newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::activity_record`].
    pub async fn activity_search(
        &self,
        filter: &ActivityFilter,
        limit: i64,
    ) -> Result<Vec<Activity>, DatastoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM \"rampart_activity\" WHERE 1 = 1");
        let mut n = 0;
        let mut next = |column: &str, op: &str| {
            n += 1;
            format!(" AND \"{column}\" {op} ${n}")
        };
        if filter.user_id.is_some() {
            sql.push_str(&next("user_id", "="));
        }
        if filter.event.is_some() {
            sql.push_str(&next("event", "="));
        }
        if filter.from.is_some() {
            sql.push_str(&next("created_at", ">="));
        }
        if filter.until.is_some() {
            sql.push_str(&next("created_at", "<"));
        }
        if filter.before_id.is_some() {
            sql.push_str(&next("id", "<"));
        }
        n += 1;
        sql.push_str(&format!(" ORDER BY \"id\" DESC LIMIT ${n}"));
        let rows = with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, Row>(&sql);
            if let Some(user_id) = filter.user_id {
                query = query.bind(user_id);
            }
            if let Some(event) = &filter.event {
                query = query.bind(event.clone());
            }
            if let Some(from) = filter.from {
                query = query.bind(from);
            }
            if let Some(until) = filter.until {
                query = query.bind(until);
            }
            if let Some(before) = filter.before_id {
                query = query.bind(before);
            }
            query.bind(limit).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(activity).collect())
    }

    /// Whether `user_id` signed in from a device with `device_key` at or after `since`, and
    /// whether they ever signed in before: `(seen, signed_in_before)`.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::activity_record`].
    pub async fn device_seen(
        &self,
        user_id: i64,
        device_key: &str,
        since: PrimitiveDateTime,
    ) -> Result<(bool, bool), DatastoreError> {
        let (seen, before) = with_pool!(self, |pool| {
            sqlx::query_as::<_, (i64, i64)>(
            "SELECT \
             CAST((SELECT COUNT(*) FROM \"rampart_activity\" WHERE \"user_id\" = $1 \
                AND \"event\" = 'sign_in' AND \"device_key\" = $2 AND \"created_at\" >= $3) AS BIGINT), \
             CAST((SELECT COUNT(*) FROM \"rampart_activity\" WHERE \"user_id\" = $1 \
                AND \"event\" = 'sign_in') AS BIGINT)"
        )
        .bind(user_id)
        .bind(device_key)
        .bind(since)
        .fetch_one(pool)
        .await?
        });
        Ok((seen > 0, before > 0))
    }

    /// Deletes the events older than `before`; returns how many went.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::activity_record`].
    pub async fn delete_activity_before(
        &self,
        before: PrimitiveDateTime,
    ) -> Result<u64, DatastoreError> {
        Ok(with_pool!(self, |pool| sqlx::query(
            "DELETE FROM \"rampart_activity\" WHERE \"created_at\" < $1"
        )
        .bind(before)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// The live sessions of a user with their data, oldest first.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::activity_record`].
    pub async fn session_details_of_user(
        &self,
        user_id: i64,
        now: PrimitiveDateTime,
    ) -> Result<Vec<SessionDetails>, DatastoreError> {
        if let Some(redis) = self.redis() {
            let sessions = redis.sessions_of_user(user_id, now).await?;
            return Ok(sessions
                .into_iter()
                .map(|s| SessionDetails {
                    id_hash: s.id_hash,
                    data: s.data,
                    created_at: s.created_at,
                    last_seen_at: s.last_seen_at,
                })
                .collect());
        }
        Ok(with_pool!(self, |pool| {
            sqlx::query_as::<_, SessionDetails>(
                "SELECT \"id\" AS \"id_hash\", \"data\", \"created_at\", \"last_seen_at\" \
             FROM \"rampart_session\" WHERE \"user_id\" = $1 AND \"expiry_date\" > $2 \
             ORDER BY \"created_at\", \"id\"",
            )
            .bind(user_id)
            .bind(now)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Sets the `last_seen_at` of a session (no error when it is gone).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::activity_record`].
    pub async fn session_touch(
        &self,
        id_hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        if let Some(redis) = self.redis() {
            return redis.session_touch(id_hash, now).await;
        }
        with_pool!(self, |pool| sqlx::query(
            "UPDATE \"rampart_session\" SET \"last_seen_at\" = $2 WHERE \"id\" = $1"
        )
        .bind(id_hash)
        .bind(now)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}
