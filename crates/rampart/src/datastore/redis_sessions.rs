//! Server-side sessions in Redis, when [`Datastore::use_redis`](super::Datastore::use_redis) was
//! called: the same operations as `rampart_session` (`sessions.rs`), behind the same
//! [`Datastore`](super::Datastore) methods, so no caller knows where they live.
//!
//! # Keys (under the datastore's prefix, `rampart:<database>:`)
//! - `session:<id hash>`: a hash `{d: data (JSON), u: user id or "", e: expiry, c: created,
//!   l: last seen}` (times in microseconds since the epoch, naive UTC as the database keeps them),
//!   expiring (Redis's clock) when the session does, and moved whenever a save moves the expiry.
//!   Like the table, it is keyed by the SHA-256 of the session id, never the id (the cookie).
//! - `user-sessions:<user id>`: a sorted set of that user's session id hashes (scored by their
//!   expiry in ms), to list and revoke them; it expires with its last session.
//!
//! Every write that touches both is one Lua script (atomic: no other command runs in between),
//! so a session is always in its user's set while it exists: revoking "every session of the user"
//! cannot miss one. A set member whose hash is gone (expired, or deleted by an older version) is
//! dropped when the set is listed or revoked. A session whose user changes (an anonymous session
//! signing in) moves from the old user's set to the new one in the same script.
//!
//! Unlike the table there is no foreign key: a session may name a user that does not exist (the
//! sign-in check, which loads the user, refuses it then). Redis down: every call fails with
//! [`DatastoreError::Redis`], which a server answers 503 + `Retry-After`.

use std::sync::LazyLock;

use time::{OffsetDateTime, PrimitiveDateTime};

use super::DatastoreError;
use super::redis_store::RedisStore;

/// Adds the session to its user's set (shared by the create and save scripts). Needs ARGV as the
/// scripts below pass it: 2 user id, 5 expiry (ms), 6 id hash, 7 user-set key prefix, 8 now (ms).
const ADD_TO_USER: &str = r"
local function add_to_user()
  if ARGV[2] == '' then return end
  local set = ARGV[7] .. ARGV[2]
  redis.call('ZADD', set, ARGV[5], ARGV[6])
  redis.call('ZREMRANGEBYSCORE', set, '-inf', '(' .. ARGV[8])
  local top = redis.call('ZRANGE', set, -1, -1, 'WITHSCORES')
  if top[2] then
    redis.call('PEXPIREAT', set, string.format('%.0f', tonumber(top[2])))
  end
end
";

/// Inserts a session unless its id exists. KEYS[1] the session; ARGV 1 data, 2 user id or "",
/// 3 expiry (µs), 4 now (µs), then as [`ADD_TO_USER`]. Returns 1 when inserted.
static CREATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"{ADD_TO_USER}
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'u', ARGV[2], 'e', ARGV[3], 'c', ARGV[4], 'l', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
add_to_user()
return 1
"
    ))
});

/// Inserts or replaces a session, keeping its creation time, moving it between users' sets
/// when its user changed. Arguments as for [`CREATE`].
static SAVE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        r"{ADD_TO_USER}
local old = redis.call('HGET', KEYS[1], 'u')
local created = redis.call('HGET', KEYS[1], 'c') or ARGV[4]
if old and old ~= '' and old ~= ARGV[2] then
  redis.call('ZREM', ARGV[7] .. old, ARGV[6])
end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'u', ARGV[2], 'e', ARGV[3], 'c', created, 'l', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[5])
add_to_user()
return 1
"
    ))
});

/// Deletes a session and its entry in its user's set. KEYS[1] the session; ARGV 1 user-set key
/// prefix, 2 id hash.
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local user = redis.call('HGET', KEYS[1], 'u')
redis.call('DEL', KEYS[1])
if user and user ~= '' then
  redis.call('ZREM', ARGV[1] .. user, ARGV[2])
end
return 0
",
    )
});

/// Deletes every session of a user but one. KEYS[1] the user's set; ARGV 1 session key prefix,
/// 2 user id, 3 the id hash to keep or "". Returns how many sessions went.
static DELETE_OF_USER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[3] then
    local key = ARGV[1] .. id
    if redis.call('HGET', key, 'u') == ARGV[2] then
      n = n + redis.call('DEL', key)
    end
    redis.call('ZREM', KEYS[1], id)
  end
end
return n
",
    )
});

/// The live sessions of a user; drops set members whose session is gone or moved to another
/// user. KEYS[1] the user's set; ARGV 1 session key prefix, 2 user id, 3 now (µs). Returns
/// `{id hash, data, expiry, created, last seen or ""}` per session.
static OF_USER: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('HMGET', ARGV[1] .. id, 'd', 'u', 'e', 'c', 'l')
  local expiry = tonumber(v[3])
  if not v[1] or v[2] ~= ARGV[2] or not expiry then
    redis.call('ZREM', KEYS[1], id)
  elseif expiry > tonumber(ARGV[3]) then
    table.insert(out, {id, v[1], v[3], v[4] or '', v[5] or ''})
  end
end
return out
",
    )
});

/// Sets a session's last-seen time, if the session still exists. KEYS[1] the session; ARGV 1
/// the time (µs).
static TOUCH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('HSET', KEYS[1], 'l', ARGV[1])
end
return 0
",
    )
});

/// A session as Redis holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct StoredSession {
    pub(super) id_hash: String,
    pub(super) data: String,
    pub(super) expiry: PrimitiveDateTime,
    pub(super) created_at: PrimitiveDateTime,
    pub(super) last_seen_at: Option<PrimitiveDateTime>,
}

/// What a session write stores.
pub(super) struct SessionWrite<'a> {
    pub(super) id_hash: &'a str,
    pub(super) user_id: Option<i64>,
    pub(super) data: &'a str,
    pub(super) expiry: PrimitiveDateTime,
    pub(super) now: PrimitiveDateTime,
}

/// Microseconds since the epoch of a naive UTC time.
fn micros(at: PrimitiveDateTime) -> i64 {
    i64::try_from(at.assume_utc().unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The naive UTC time `us` microseconds after the epoch.
fn from_micros(us: i64) -> Option<PrimitiveDateTime> {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).ok()?;
    Some(PrimitiveDateTime::new(at.date(), at.time()))
}

/// A time field (microseconds); `None` when it does not parse (a session that does not decode
/// counts as absent).
fn field_time(value: &str) -> Option<PrimitiveDateTime> {
    value.parse::<i64>().ok().and_then(from_micros)
}

impl RedisStore {
    fn session_key(&self, id_hash: &str) -> String {
        format!("{}session:{id_hash}", self.prefix())
    }

    fn user_set_prefix(&self) -> String {
        format!("{}user-sessions:", self.prefix())
    }

    fn user_set(&self, user_id: i64) -> String {
        format!("{}{user_id}", self.user_set_prefix())
    }

    /// Runs the create or save script for `write`.
    async fn write(
        &self,
        script: &redis::Script,
        write: &SessionWrite<'_>,
    ) -> Result<bool, DatastoreError> {
        let expiry_us = micros(write.expiry);
        let now_us = micros(write.now);
        let inserted: i64 = script
            .key(self.session_key(write.id_hash))
            .arg(write.data)
            .arg(write.user_id.map(|id| id.to_string()).unwrap_or_default())
            .arg(expiry_us)
            .arg(now_us)
            .arg(expiry_us.div_euclid(1000))
            .arg(write.id_hash)
            .arg(self.user_set_prefix())
            .arg(now_us.div_euclid(1000))
            .invoke_async(&mut self.connection())
            .await
            .map_err(DatastoreError::Redis)?;
        Ok(inserted > 0)
    }

    /// Inserts a session; `false` (and nothing written) when the id is taken.
    pub(super) async fn session_create(
        &self,
        write: &SessionWrite<'_>,
    ) -> Result<bool, DatastoreError> {
        self.write(&CREATE, write).await
    }

    /// Inserts or replaces a session (its creation time is kept).
    pub(super) async fn session_save(
        &self,
        write: &SessionWrite<'_>,
    ) -> Result<(), DatastoreError> {
        self.write(&SAVE, write).await.map(|_| ())
    }

    /// The data and user of the session `id_hash`, unless it expired by `now`.
    pub(super) async fn session_load(
        &self,
        id_hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<Option<(String, Option<i64>, PrimitiveDateTime)>, DatastoreError> {
        let (data, user, expiry): (Option<String>, Option<String>, Option<String>) =
            redis::cmd("HMGET")
                .arg(self.session_key(id_hash))
                .arg("d")
                .arg("u")
                .arg("e")
                .query_async(&mut self.connection())
                .await
                .map_err(DatastoreError::Redis)?;
        let (Some(data), Some(expiry)) = (data, expiry) else {
            return Ok(None);
        };
        let Some(expiry) = field_time(&expiry).filter(|expiry| *expiry > now) else {
            return Ok(None);
        };
        let user_id = user.and_then(|u| u.parse::<i64>().ok());
        Ok(Some((data, user_id, expiry)))
    }

    /// Deletes a session (nothing when it does not exist).
    pub(super) async fn session_delete(&self, id_hash: &str) -> Result<(), DatastoreError> {
        DELETE
            .key(self.session_key(id_hash))
            .arg(self.user_set_prefix())
            .arg(id_hash)
            .invoke_async::<i64>(&mut self.connection())
            .await
            .map(|_| ())
            .map_err(DatastoreError::Redis)
    }

    /// Deletes every session of `user_id` except `except_id_hash`; how many went.
    pub(super) async fn delete_sessions_of_user(
        &self,
        user_id: i64,
        except_id_hash: Option<&str>,
    ) -> Result<u64, DatastoreError> {
        let deleted: i64 = DELETE_OF_USER
            .key(self.user_set(user_id))
            .arg(format!("{}session:", self.prefix()))
            .arg(user_id.to_string())
            .arg(except_id_hash.unwrap_or_default())
            .invoke_async(&mut self.connection())
            .await
            .map_err(DatastoreError::Redis)?;
        Ok(u64::try_from(deleted).unwrap_or_default())
    }

    /// The live sessions of `user_id` at `now`, oldest first.
    pub(super) async fn sessions_of_user(
        &self,
        user_id: i64,
        now: PrimitiveDateTime,
    ) -> Result<Vec<StoredSession>, DatastoreError> {
        let rows: Vec<(String, String, String, String, String)> = OF_USER
            .key(self.user_set(user_id))
            .arg(format!("{}session:", self.prefix()))
            .arg(user_id.to_string())
            .arg(micros(now))
            .invoke_async(&mut self.connection())
            .await
            .map_err(DatastoreError::Redis)?;
        let mut sessions: Vec<StoredSession> = rows
            .into_iter()
            .filter_map(|(id_hash, data, expiry, created, last_seen)| {
                Some(StoredSession {
                    id_hash,
                    data,
                    expiry: field_time(&expiry)?,
                    created_at: field_time(&created)?,
                    last_seen_at: field_time(&last_seen),
                })
            })
            .collect();
        sessions.sort_by(|a, b| (a.created_at, &a.id_hash).cmp(&(b.created_at, &b.id_hash)));
        Ok(sessions)
    }

    /// Sets the last-seen time of a session (nothing when it is gone).
    pub(super) async fn session_touch(
        &self,
        id_hash: &str,
        now: PrimitiveDateTime,
    ) -> Result<(), DatastoreError> {
        TOUCH
            .key(self.session_key(id_hash))
            .arg(micros(now))
            .invoke_async::<i64>(&mut self.connection())
            .await
            .map(|_| ())
            .map_err(DatastoreError::Redis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_round_trip_through_microseconds() {
        let at = datetime!(2025-01-02 03:04:05.123456);
        assert_eq!(from_micros(micros(at)), Some(at));
        assert_eq!(field_time(&micros(at).to_string()), Some(at));
        assert_eq!(field_time("soon"), None);
        assert_eq!(field_time(""), None);
    }
}
