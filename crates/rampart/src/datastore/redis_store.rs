//! What lives in Redis when [`Datastore::use_redis`](super::Datastore::use_redis) is called: the
//! connection, and the rate-limit counters here; the sessions in `redis_sessions.rs`, the cache
//! invalidation channel in [`super::invalidation`]. Users, roles, remember-me series and
//! everything else stay in the database, the source of truth.
//!
//! Keys are `rampart:<database>:rl:<key>` (the database's name, so apps on different databases
//! can share one Redis). Each counter is a hash `{s: window start (ms, the app's clock), h: hits}`
//! updated by one Lua script, so a hit is atomic across instances exactly like the database's
//! upsert; the key expires (Redis's clock) a second after its window, so nothing piles up.
//! Redis down: the calls fail with [`DatastoreError::Redis`], which a server answers 503.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::DatastoreError;

/// How long a Redis command may take before the request gets its 503.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Counts a hit. KEYS[1] the counter; ARGV now (ms), window (ms), limit. Returns
/// `{window start, hits}`; past the limit the count saturates at limit + 1.
static HIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local start = tonumber(redis.call('HGET', KEYS[1], 's'))
local hits
if start == nil or start <= now - window then
  start = now
  hits = 1
  redis.call('HSET', KEYS[1], 's', start, 'h', hits)
  redis.call('PEXPIRE', KEYS[1], window + 1000)
else
  hits = tonumber(redis.call('HGET', KEYS[1], 'h')) or 0
  if hits <= limit then
    hits = redis.call('HINCRBY', KEYS[1], 'h', 1)
  end
end
return {start, hits}
",
    )
});

/// Takes back one hit, never below zero, leaving a missing key alone.
static UNDO: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local hits = tonumber(redis.call('HGET', KEYS[1], 'h'))
if hits ~= nil and hits > 0 then
  redis.call('HINCRBY', KEYS[1], 'h', -1)
end
return 0
",
    )
});

/// The Redis connection and key prefix of a datastore.
#[derive(Clone)]
pub(crate) struct RedisStore {
    connection: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects (a connection that reconnects by itself) with keys under `prefix`.
    pub(crate) async fn connect(
        client: redis::Client,
        prefix: String,
    ) -> Result<Self, DatastoreError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1);
        let mut connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(DatastoreError::Redis)?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map_err(DatastoreError::Redis)?;
        Ok(Self { connection, prefix })
    }

    /// The key prefix, `rampart:<database>:`.
    pub(super) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A handle on the shared connection (cheap: the connection is multiplexed, so concurrent
    /// commands from many requests are pipelined on it).
    pub(super) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    fn key(&self, key: &str) -> String {
        format!("{}rl:{key}", self.prefix)
    }

    /// One hit on `key` at `now_ms` (the app's clock): `(window start in ms, hits)`.
    pub(crate) async fn hit(
        &self,
        key: &str,
        now_ms: i64,
        window_ms: i64,
        limit: u32,
    ) -> Result<(i64, i64), DatastoreError> {
        let mut connection = self.connection.clone();
        HIT.key(self.key(key))
            .arg(now_ms)
            .arg(window_ms)
            .arg(limit)
            .invoke_async(&mut connection)
            .await
            .map_err(DatastoreError::Redis)
    }

    /// The window start (ms) and hits of `key`, if any.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<(i64, i64)>, DatastoreError> {
        let mut connection = self.connection.clone();
        let (start, hits): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
            .arg(self.key(key))
            .arg("s")
            .arg("h")
            .query_async(&mut connection)
            .await
            .map_err(DatastoreError::Redis)?;
        Ok(start.zip(hits))
    }

    /// Takes back one hit on `key`.
    pub(crate) async fn undo(&self, key: &str) -> Result<(), DatastoreError> {
        let mut connection = self.connection.clone();
        UNDO.key(self.key(key))
            .invoke_async::<i64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(DatastoreError::Redis)
    }

    /// Forgets `key`.
    pub(crate) async fn reset(&self, key: &str) -> Result<(), DatastoreError> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.key(key))
            .query_async::<i64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(DatastoreError::Redis)
    }
}
