//! Time source, injected so tests can move time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{OffsetDateTime, PrimitiveDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// Naive UTC "now" as Flask-Security stores datetimes.
pub(crate) fn naive(at: OffsetDateTime) -> PrimitiveDateTime {
    let utc = at.to_offset(time::UtcOffset::UTC);
    PrimitiveDateTime::new(utc.date(), utc.time())
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock for tests: the system time plus an offset that tests can advance.
///
/// ```
/// use rampart::{Clock, TestClock};
/// let clock = TestClock::default();
/// let before = clock.now();
/// clock.advance(std::time::Duration::from_secs(3600));
/// assert!(clock.now() - before >= time::Duration::hours(1));
/// ```
#[derive(Clone, Debug, Default)]
pub struct TestClock {
    offset_secs: Arc<AtomicI64>,
}

impl TestClock {
    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: std::time::Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset_secs.fetch_add(secs, Ordering::SeqCst);
    }
}

impl TestClock {
    /// Moves this clock (and every clone of it) to `at`, backwards or forwards (to replay a
    /// token minted at a known time, say); it runs on from there.
    ///
    /// ```
    /// use rampart::{Clock, TestClock};
    /// let clock = TestClock::default();
    /// let then = time::macros::datetime!(2025-11-24 16:00 UTC);
    /// clock.travel_to(then);
    /// assert!((clock.now() - then).abs() < time::Duration::minutes(1));
    /// ```
    pub fn travel_to(&self, at: OffsetDateTime) {
        let offset = (at - OffsetDateTime::now_utc()).whole_seconds();
        self.offset_secs.store(offset, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + time::Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
}
