//! The in-process cache behind every authenticated request: session rows by id hash, and users
//! with their roles by `fs_uniquifier`.
//!
//! Without it each request costs two queries (the session, then the user with roles), and on
//! SQLite each query is a round trip to sqlx's connection thread — most of a request's time.
//!
//! # Staying correct
//! - Every [`Datastore`](super::Datastore) write that changes a user (password or uniquifier,
//!   email, active flag, confirmation, login tracking, role links, deletion) or a role's
//!   permissions drops the affected entries **after** the database has the change, so the next
//!   request in this process sees it. Session saves and deletes drop their entries the same way;
//!   a new session is not cached until it is read again.
//! - A reader that missed the cache, read the database and then finds that an invalidation
//!   happened meanwhile does not store what it read (a generation counter), so a stale row cannot
//!   land in the cache after the write that made it stale.
//! - Other instances on the same database hear of those drops through the
//!   [invalidation channel](super::invalidation) (PostgreSQL `LISTEN`/`NOTIFY` or Redis pub/sub)
//!   within milliseconds; while an instance's channel is down it caches nothing.
//! - Entries live at most the TTL ([`SecurityConfig::auth_cache_ttl`](crate::SecurityConfig),
//!   default 5 s). That bounds what this process cannot see: changes made by a process that
//!   publishes nothing (the CLI run separately on SQLite, SQL typed by hand) take effect here
//!   within the TTL. A TTL of zero turns the cache off.
//! - Negative answers (no such session, no such user) are never cached.
//! - Size is bounded; when full, expired entries go first, then an arbitrary tenth.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use time::PrimitiveDateTime;

use crate::model::{Role, User};

/// Most users cached at once.
const MAX_USERS: usize = 10_000;
/// Most sessions cached at once.
const MAX_SESSIONS: usize = 20_000;
/// The TTL until configured otherwise.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(5);

/// A user with their roles, as [`super::Datastore::user_with_roles_by_uniquifier`] returns them.
pub(crate) type UserWithRoles = Arc<(User, Vec<Role>)>;

struct Entry<T> {
    stored: Instant,
    value: T,
}

#[derive(Clone)]
pub(crate) struct CachedSession {
    pub(crate) user_id: Option<i64>,
    pub(crate) data: Arc<str>,
    pub(crate) expiry: PrimitiveDateTime,
}

#[derive(Default)]
struct Users {
    by_uniquifier: HashMap<String, Entry<UserWithRoles>>,
    uniquifier_of: HashMap<i64, String>,
}

/// A snapshot of a generation, taken before a database read that may fill the cache.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ticket(u64);

/// The cache shared by every clone of a datastore.
pub(crate) struct Cache {
    ttl_ms: AtomicU64,
    users: RwLock<Users>,
    sessions: RwLock<HashMap<String, Entry<CachedSession>>>,
    user_generation: AtomicU64,
    session_generation: AtomicU64,
    /// False while an invalidation channel is configured but not subscribed: nothing is
    /// served from the cache nor stored in it.
    channel_up: AtomicBool,
    /// Whether lookups are counted (metrics on).
    counting: AtomicBool,
    /// Lookups answered from the cache / from the database: `[sessions, users]`.
    hits: [AtomicU64; 2],
    misses: [AtomicU64; 2],
}

/// How many lookups the cache answered and missed since counting started
/// ([`super::Datastore::cache_stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CacheStats {
    /// Session lookups answered from the cache.
    pub(crate) session_hits: u64,
    /// Session lookups that went to the database.
    pub(crate) session_misses: u64,
    /// User lookups answered from the cache.
    pub(crate) user_hits: u64,
    /// User lookups that went to the database.
    pub(crate) user_misses: u64,
}

/// Which counter of [`Cache::hits`] / [`Cache::misses`].
const SESSIONS: usize = 0;
const USERS: usize = 1;

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("ttl", &self.ttl())
            .finish_non_exhaustive()
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            ttl_ms: AtomicU64::new(u64::try_from(DEFAULT_TTL.as_millis()).unwrap_or(u64::MAX)),
            users: RwLock::default(),
            sessions: RwLock::default(),
            user_generation: AtomicU64::new(0),
            session_generation: AtomicU64::new(0),
            channel_up: AtomicBool::new(true),
            counting: AtomicBool::new(false),
            hits: [AtomicU64::new(0), AtomicU64::new(0)],
            misses: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }
}

impl Cache {
    pub(crate) fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_ttl(&self, ttl: Duration) {
        self.ttl_ms.store(
            u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if ttl.is_zero() {
            self.clear();
        }
    }

    /// Turns the cache on (the invalidation channel is subscribed) or off (it is not); either
    /// way it starts empty.
    pub(crate) fn set_channel_up(&self, up: bool) {
        if up {
            self.clear();
            self.channel_up.store(true, Ordering::Release);
        } else {
            self.channel_up.store(false, Ordering::Release);
            self.clear();
        }
    }

    /// Starts counting hits and misses (off by default: nothing is counted then).
    pub(crate) fn count_lookups(&self) {
        self.counting.store(true, Ordering::Relaxed);
    }

    /// The hits and misses counted so far.
    pub(crate) fn stats(&self) -> CacheStats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            session_hits: load(&self.hits[SESSIONS]),
            session_misses: load(&self.misses[SESSIONS]),
            user_hits: load(&self.hits[USERS]),
            user_misses: load(&self.misses[USERS]),
        }
    }

    /// Counts a lookup of `kind` as a hit or a miss, when counting; passes `found` on.
    fn counted<T>(&self, kind: usize, found: Option<T>) -> Option<T> {
        if self.counting.load(Ordering::Relaxed) {
            let counters = if found.is_some() {
                &self.hits
            } else {
                &self.misses
            };
            if let Some(counter) = counters.get(kind) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
        found
    }

    /// Whether the invalidation channel (if any) is up.
    pub(crate) fn channel_up(&self) -> bool {
        self.channel_up.load(Ordering::Acquire)
    }

    /// Whether the cache serves and stores entries (a TTL above zero, the channel up).
    pub(crate) fn enabled(&self) -> bool {
        !self.ttl().is_zero() && self.channel_up.load(Ordering::Acquire)
    }

    fn fresh<T>(&self, entry: &Entry<T>, now: Instant) -> bool {
        now.duration_since(entry.stored) < self.ttl()
    }

    // ---- users ----

    /// The cached user with this uniquifier, if fresh.
    pub(crate) fn user(&self, uniquifier: &str) -> Option<UserWithRoles> {
        let found = self.lookup_user(uniquifier);
        self.counted(USERS, found)
    }

    fn lookup_user(&self, uniquifier: &str) -> Option<UserWithRoles> {
        if !self.enabled() {
            return None;
        }
        let users = self.users.read().ok()?;
        let entry = users.by_uniquifier.get(uniquifier)?;
        self.fresh(entry, Instant::now())
            .then(|| Arc::clone(&entry.value))
    }

    /// Taken before reading a user from the database.
    pub(crate) fn user_ticket(&self) -> Ticket {
        Ticket(self.user_generation.load(Ordering::Acquire))
    }

    /// Stores what was read, unless a user was invalidated since `ticket`.
    pub(crate) fn put_user(&self, ticket: Ticket, value: UserWithRoles) {
        if !self.enabled() {
            return;
        }
        let Ok(mut users) = self.users.write() else {
            return;
        };
        // Checked under the lock: invalidations bump the generation under it too.
        if self.user_generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        let now = Instant::now();
        if users.by_uniquifier.len() >= MAX_USERS {
            let ttl = self.ttl();
            users
                .by_uniquifier
                .retain(|_, e| now.duration_since(e.stored) < ttl);
            if users.by_uniquifier.len() >= MAX_USERS {
                let drop: Vec<String> = users
                    .by_uniquifier
                    .keys()
                    .take(MAX_USERS / 10)
                    .cloned()
                    .collect();
                for key in drop {
                    users.by_uniquifier.remove(&key);
                }
            }
            let Users {
                by_uniquifier,
                uniquifier_of,
            } = &mut *users;
            uniquifier_of.retain(|_, u| by_uniquifier.contains_key(u));
        }
        let uniquifier = value.0.fs_uniquifier.clone();
        let id = value.0.id;
        if let Some(old) = users.uniquifier_of.insert(id, uniquifier.clone())
            && old != uniquifier
        {
            users.by_uniquifier.remove(&old);
        }
        users
            .by_uniquifier
            .insert(uniquifier, Entry { stored: now, value });
    }

    /// Drops the user `id` (after a write that changed them).
    pub(crate) fn invalidate_user(&self, id: i64) {
        if let Ok(mut users) = self.users.write() {
            self.user_generation.fetch_add(1, Ordering::AcqRel);
            if let Some(uniquifier) = users.uniquifier_of.remove(&id) {
                users.by_uniquifier.remove(&uniquifier);
            }
        }
    }

    /// Drops every user (after a role's permissions changed).
    pub(crate) fn invalidate_users(&self) {
        if let Ok(mut users) = self.users.write() {
            self.user_generation.fetch_add(1, Ordering::AcqRel);
            users.by_uniquifier.clear();
            users.uniquifier_of.clear();
        }
    }

    // ---- sessions ----

    /// The cached session row, if fresh and not expired at `now`.
    pub(crate) fn session(&self, id_hash: &str, now: PrimitiveDateTime) -> Option<CachedSession> {
        let found = self.lookup_session(id_hash, now);
        self.counted(SESSIONS, found)
    }

    fn lookup_session(&self, id_hash: &str, now: PrimitiveDateTime) -> Option<CachedSession> {
        if !self.enabled() {
            return None;
        }
        let sessions = self.sessions.read().ok()?;
        let entry = sessions.get(id_hash)?;
        (self.fresh(entry, Instant::now()) && entry.value.expiry > now).then(|| entry.value.clone())
    }

    /// Taken before reading a session from the database.
    pub(crate) fn session_ticket(&self) -> Ticket {
        Ticket(self.session_generation.load(Ordering::Acquire))
    }

    /// Stores a session row that was read, unless a session was written or deleted since
    /// `ticket`.
    pub(crate) fn put_session(&self, ticket: Ticket, id_hash: &str, value: CachedSession) {
        if !self.enabled() {
            return;
        }
        let Ok(mut sessions) = self.sessions.write() else {
            return;
        };
        if self.session_generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        let now = Instant::now();
        if sessions.len() >= MAX_SESSIONS {
            let ttl = self.ttl();
            sessions.retain(|_, e| now.duration_since(e.stored) < ttl);
            if sessions.len() >= MAX_SESSIONS {
                let drop: Vec<String> = sessions.keys().take(MAX_SESSIONS / 10).cloned().collect();
                for key in drop {
                    sessions.remove(&key);
                }
            }
        }
        sessions.insert(id_hash.to_owned(), Entry { stored: now, value });
    }

    /// Drops the session `id_hash` (after the database changed it).
    pub(crate) fn invalidate_session(&self, id_hash: &str) {
        if let Ok(mut sessions) = self.sessions.write() {
            self.session_generation.fetch_add(1, Ordering::AcqRel);
            sessions.remove(id_hash);
        }
    }

    /// Drops the sessions for which `drop` is true (after the database changed them).
    pub(crate) fn invalidate_sessions(&self, drop: impl Fn(&str, &CachedSession) -> bool) {
        if let Ok(mut sessions) = self.sessions.write() {
            self.session_generation.fetch_add(1, Ordering::AcqRel);
            sessions.retain(|id, e| !drop(id, &e.value));
        }
    }

    /// Drops everything.
    pub(crate) fn clear(&self) {
        self.invalidate_users();
        self.invalidate_sessions(|_, _| true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64, uniquifier: &str) -> UserWithRoles {
        let at = time::macros::datetime!(2024-01-01 0:00);
        Arc::new((
            User {
                id,
                email: format!("u{id}@example.com"),
                username: None,
                password: None,
                active: true,
                fs_uniquifier: uniquifier.to_owned(),
                confirmed_at: None,
                last_login_at: None,
                current_login_at: None,
                last_login_ip: None,
                current_login_ip: None,
                login_count: None,
                tf_primary_method: None,
                tf_totp_secret: None,
                tf_phone_number: None,
                us_totp_secrets: None,
                us_phone_number: None,
                fs_webauthn_user_handle: None,
                mf_recovery_codes: None,
                create_datetime: at,
                update_datetime: at,
            },
            Vec::new(),
        ))
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_stored() {
        let cache = Cache::default();
        let ticket = cache.user_ticket();
        cache.invalidate_user(1);
        cache.put_user(ticket, user(1, "u1"));
        assert!(cache.user("u1").is_none());
        cache.put_user(cache.user_ticket(), user(1, "u1"));
        assert!(cache.user("u1").is_some());
    }

    #[test]
    fn invalidating_a_user_drops_them_by_id() {
        let cache = Cache::default();
        cache.put_user(cache.user_ticket(), user(1, "u1"));
        cache.put_user(cache.user_ticket(), user(2, "u2"));
        cache.invalidate_user(1);
        assert!(cache.user("u1").is_none());
        assert!(cache.user("u2").is_some());
        // A new uniquifier for the same user replaces the old entry.
        cache.put_user(cache.user_ticket(), user(2, "u2-rotated"));
        assert!(cache.user("u2").is_none());
        assert!(cache.user("u2-rotated").is_some());
    }

    #[test]
    fn a_zero_ttl_turns_the_cache_off() {
        let cache = Cache::default();
        cache.put_user(cache.user_ticket(), user(1, "u1"));
        cache.set_ttl(Duration::ZERO);
        assert!(cache.user("u1").is_none());
        cache.put_user(cache.user_ticket(), user(1, "u1"));
        assert!(cache.user("u1").is_none());
    }

    #[test]
    fn a_channel_down_turns_the_cache_off_and_back_on_empty() {
        let cache = Cache::default();
        cache.put_user(cache.user_ticket(), user(1, "u1"));
        let ticket = cache.user_ticket();
        cache.set_channel_up(false);
        assert!(cache.user("u1").is_none());
        cache.put_user(cache.user_ticket(), user(1, "u1"));
        assert!(cache.user("u1").is_none(), "nothing stored while down");
        cache.set_channel_up(true);
        assert!(cache.user("u1").is_none(), "back on, empty");
        cache.put_user(ticket, user(1, "u1"));
        assert!(
            cache.user("u1").is_none(),
            "a read from before the loss is refused"
        );
        cache.put_user(cache.user_ticket(), user(1, "u1"));
        assert!(cache.user("u1").is_some());
    }

    #[test]
    fn sessions_expire_and_are_invalidated_by_predicate() {
        let cache = Cache::default();
        let now = time::macros::datetime!(2024-01-01 12:00);
        let live = CachedSession {
            user_id: Some(1),
            data: Arc::from("{}"),
            expiry: time::macros::datetime!(2024-01-02 0:00),
        };
        let expired = CachedSession {
            expiry: time::macros::datetime!(2024-01-01 0:00),
            ..live.clone()
        };
        cache.put_session(cache.session_ticket(), "a", live.clone());
        cache.put_session(cache.session_ticket(), "b", expired);
        assert!(cache.session("a", now).is_some());
        assert!(cache.session("b", now).is_none());
        let ticket = cache.session_ticket();
        cache.invalidate_sessions(|_, s| s.user_id == Some(1));
        assert!(cache.session("a", now).is_none());
        cache.put_session(ticket, "a", live);
        assert!(cache.session("a", now).is_none(), "stale fill refused");
    }
}
