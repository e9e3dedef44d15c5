//! Fixed-window rate limits (`rampart_rate_limit`), shared by every server on the database; in
//! Redis instead when [`Datastore::use_redis`] was called (`redis_store.rs`, same semantics).

use std::time::Duration;

use time::PrimitiveDateTime;

use super::{Datastore, DatastoreError};

// One atomic statement: a new key, or a key whose window has elapsed (`window_start <= $3`),
// starts a window at `$2` with one hit; otherwise the hit is counted (saturating once past the
// limit `$4`, so a flood cannot overflow the counter).
const HIT: &str = "INSERT INTO \"rampart_rate_limit\" (\"key\", \"window_start\", \"hits\") \
     VALUES ($1, $2, 1) \
     ON CONFLICT (\"key\") DO UPDATE SET \
     \"hits\" = CASE \
         WHEN \"rampart_rate_limit\".\"window_start\" <= $3 THEN 1 \
         WHEN \"rampart_rate_limit\".\"hits\" > $4 THEN \"rampart_rate_limit\".\"hits\" \
         ELSE \"rampart_rate_limit\".\"hits\" + 1 END, \
     \"window_start\" = CASE \
         WHEN \"rampart_rate_limit\".\"window_start\" <= $3 THEN $2 \
         ELSE \"rampart_rate_limit\".\"window_start\" END \
     RETURNING \"window_start\", CAST(\"hits\" AS BIGINT) AS \"hits\"";

/// The outcome of one hit on a rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitDecision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Hits left in the current window.
    pub remaining: u32,
    /// When refused, how long until the window ends (for `Retry-After`, round up); zero when
    /// allowed.
    pub retry_after: Duration,
}

impl Datastore {
    /// Counts a hit on `key` and decides: at most `limit` hits are allowed per fixed `window`,
    /// which starts at the first hit and is replaced by a new one once it has elapsed.
    ///
    /// Atomic (one upsert), so concurrent requests on any number of servers are counted exactly.
    ///
    /// # Errors
    ///
    /// [`DatastoreError::Config`] when `window` is out of range; as for
    /// [`Datastore::session_load`] otherwise.
    pub async fn rate_limit_hit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: PrimitiveDateTime,
    ) -> Result<RateLimitDecision, DatastoreError> {
        let window_len = time::Duration::try_from(window)
            .map_err(|_| DatastoreError::Config("rate limit window out of range".to_owned()))?;
        let elapsed_before = now
            .checked_sub(window_len)
            .ok_or_else(|| DatastoreError::Config("rate limit window out of range".to_owned()))?;
        let (window_start, hits): (PrimitiveDateTime, i64) = if let Some(redis) = self.redis() {
            let (start, hits) = redis
                .hit(key, millis(now), millis_of(window_len), limit)
                .await?;
            (from_millis(start), hits)
        } else {
            with_pool!(self, |pool| {
                sqlx::query_as(HIT)
                    .bind(key)
                    .bind(now)
                    .bind(elapsed_before)
                    .bind(i64::from(limit))
                    .fetch_one(pool)
                    .await?
            })
        };
        let hits = u32::try_from(hits.max(0)).unwrap_or(u32::MAX);
        let allowed = hits <= limit;
        let retry_after = if allowed {
            Duration::ZERO
        } else {
            window_start
                .checked_add(window_len)
                .map(|end| end - now)
                .and_then(|left| Duration::try_from(left).ok())
                .unwrap_or(Duration::ZERO)
        };
        Ok(RateLimitDecision {
            allowed,
            remaining: limit.saturating_sub(hits),
            retry_after,
        })
    }

    /// Whether `key` has used up its `limit` in the current window, without counting a hit:
    /// `Some(time until the window ends)` when it has.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::rate_limit_hit`].
    pub async fn rate_limit_exhausted(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: PrimitiveDateTime,
    ) -> Result<Option<Duration>, DatastoreError> {
        let window_len = time::Duration::try_from(window)
            .map_err(|_| DatastoreError::Config("rate limit window out of range".to_owned()))?;
        let elapsed_before = now
            .checked_sub(window_len)
            .ok_or_else(|| DatastoreError::Config("rate limit window out of range".to_owned()))?;
        let row: Option<(PrimitiveDateTime, i64)> = if let Some(redis) = self.redis() {
            redis
                .get(key)
                .await?
                .map(|(start, hits)| (from_millis(start), hits))
                .filter(|(start, _)| *start > elapsed_before)
        } else {
            with_pool!(self, |pool| {
                sqlx::query_as(
                    "SELECT \"window_start\", CAST(\"hits\" AS BIGINT) AS \"hits\" \
                 FROM \"rampart_rate_limit\" WHERE \"key\" = $1 AND \"window_start\" > $2",
                )
                .bind(key)
                .bind(elapsed_before)
                .fetch_optional(pool)
                .await?
            })
        };
        Ok(row
            .filter(|(_, hits)| *hits >= i64::from(limit))
            .map(|(window_start, _)| {
                window_start
                    .checked_add(window_len)
                    .map(|end| end - now)
                    .and_then(|left| Duration::try_from(left).ok())
                    .unwrap_or(Duration::ZERO)
            }))
    }

    /// Takes back one hit counted on `key` by [`Datastore::rate_limit_hit`] (a check that
    /// counted first and then succeeded, e.g. an HTTP Basic request with the right password).
    /// Never goes below zero; a key that is gone (reset, or its window replaced) is left alone.
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn rate_limit_undo(&self, key: &str) -> Result<(), DatastoreError> {
        if let Some(redis) = self.redis() {
            return redis.undo(key).await;
        }
        with_pool!(self, |pool| sqlx::query(
            "UPDATE \"rampart_rate_limit\" SET \"hits\" = \"hits\" - 1 \
             WHERE \"key\" = $1 AND \"hits\" > 0"
        )
        .bind(key)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }

    /// Forgets the hits on `key` (e.g. after a successful login).
    ///
    /// # Errors
    ///
    /// As for [`Datastore::session_load`].
    pub async fn rate_limit_reset(&self, key: &str) -> Result<(), DatastoreError> {
        if let Some(redis) = self.redis() {
            return redis.reset(key).await;
        }
        with_pool!(self, |pool| sqlx::query(
            "DELETE FROM \"rampart_rate_limit\" WHERE \"key\" = $1"
        )
        .bind(key)
        .execute(pool)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}

/// `at` (naive UTC) in milliseconds since the epoch.
fn millis(at: PrimitiveDateTime) -> i64 {
    i64::try_from(at.assume_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A length in milliseconds.
fn millis_of(length: time::Duration) -> i64 {
    i64::try_from(length.whole_milliseconds()).unwrap_or(i64::MAX)
}

/// Milliseconds since the epoch as naive UTC (the epoch itself when out of range).
fn from_millis(ms: i64) -> PrimitiveDateTime {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    PrimitiveDateTime::new(at.date(), at.time())
}
