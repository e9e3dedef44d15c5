//! Password hashing, verification and policy, compatible with Flask-Security.
//!
//! # What happens to a password
//! 1. It is normalised with Unicode NFKD (Flask-Security's
//!    `SECURITY_PASSWORD_NORMALIZE_FORM = "NFKD"`).
//! 2. It is pre-hashed as `base64(HMAC-SHA512(key = SECURITY_PASSWORD_SALT, password))`
//!    (Flask-Security's `get_hmac`, used for every scheme it does not list in
//!    `SECURITY_PASSWORD_SINGLE_HASH`, that is all the schemes below).
//! 3. New passwords are hashed with argon2id in PHC format
//!    (`$argon2id$v=19$m=65536,t=3,p=4$…`, Flask-Security's default `SECURITY_PASSWORD_HASH = "argon2"`).
//!
//! Stored hashes made by Flask-Security (passlib/libpass) verify with any of its
//! usual schemes: argon2 (`$argon2id$`, `$argon2i$`), bcrypt (`$2b$`, `$2a$`, `$2y$`;
//! the 88-character pre-hash is cut at 72 bytes, as Flask-Security does),
//! pbkdf2_sha512 and pbkdf2_sha256 (passlib's `$pbkdf2-sha512$rounds$salt$checksum`),
//! sha512_crypt (`$6$`) and sha256_crypt (`$5$`). An unknown or garbled hash simply
//! does not verify. [`Verification::needs_rehash`] says when a stored hash is not
//! argon2id with the current parameters, so the caller can store a fresh hash after a
//! successful login (Flask-Security's `verify_and_update_password`).
//!
//! # Never on the async workers
//! Hashing is CPU- and memory-heavy. [`PasswordHasher`] runs every hash and verification
//! on tokio's blocking pool (`spawn_blocking`), at most
//! [`max_concurrent`](PasswordConfig::max_concurrent) at once. Callers beyond that
//! wait in a bounded queue; when [`max_queued`](PasswordConfig::max_queued) callers
//! are already waiting, [`PasswordError::Busy`] is returned at once, and the server
//! answers 503 with `Retry-After` instead of stalling.
//!
//! Unknown users are checked with [`PasswordHasher::verify_dummy`], which costs the same
//! as a wrong password, so timing does not tell whether an account exists.
//!
//! # Configuration keys
//! `SECURITY_PASSWORD_SALT` → [`PasswordConfig::salt`], `SECURITY_PASSWORD_LENGTH_MIN`
//! → [`PasswordConfig::min_length`]; argon2 parameters as passlib's `argon2__memory_cost`,
//! `argon2__rounds`, `argon2__parallelism`.

mod hashing;
mod policy;

pub use policy::{PasswordPolicy, PolicyViolation};

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use secrecy::SecretString;
use secrecy::zeroize::Zeroizing;
use serde::Deserialize;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use hashing::Engine;

/// Password settings: Flask-Security's defaults, plus the limits of the hashing pool.
///
/// `Debug` never shows the salt.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct PasswordConfig {
    /// `SECURITY_PASSWORD_SALT`: the HMAC key of the pre-hash. Must be the same as the
    /// Flask-Security deployment's for its hashes to verify. Empty by default; the
    /// application's configuration must refuse to start without one.
    pub salt: SecretString,
    /// `SECURITY_ARGON2_MEMORY_KIB`: argon2id memory cost in KiB for new hashes (passlib's
    /// default 65536 = 64 MiB).
    pub argon2_memory_kib: u32,
    /// `SECURITY_ARGON2_ITERATIONS`: argon2id iterations (time cost) for new hashes (passlib's
    /// default 3).
    pub argon2_iterations: u32,
    /// `SECURITY_ARGON2_PARALLELISM`: argon2id lanes (parallelism) for new hashes (passlib's
    /// default 4).
    pub argon2_parallelism: u32,
    /// `SECURITY_HASHING_MAX_CONCURRENT`: how many hashes or verifications may run at once
    /// (default: the number of CPUs).
    pub max_concurrent: usize,
    /// `SECURITY_HASHING_MAX_QUEUED`: how many callers may wait for a free slot before
    /// [`PasswordError::Busy`] (default 64).
    pub max_queued: usize,
    /// `SECURITY_PASSWORD_LENGTH_MIN`: shortest accepted new password, in characters
    /// after NFKD (default 8).
    pub min_length: usize,
    /// `SECURITY_PASSWORD_LENGTH_MAX`: longest accepted new password, in characters after NFKD
    /// (Flask-Security's fixed 128).
    pub max_length: usize,
}

impl Default for PasswordConfig {
    fn default() -> Self {
        let policy = PasswordPolicy::default();
        Self {
            salt: SecretString::default(),
            argon2_memory_kib: 65_536,
            argon2_iterations: 3,
            argon2_parallelism: 4,
            max_concurrent: std::thread::available_parallelism().map_or(1, NonZeroUsize::get),
            max_queued: 64,
            min_length: policy.min_length,
            max_length: policy.max_length,
        }
    }
}

/// Why a password could not be hashed or checked.
///
/// A wrong password is not an error: it is a [`Verification`] with `valid == false`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Too many hashes are running and waiting; try again later (HTTP 503 + `Retry-After`).
    #[error("password hashing is saturated, try again later")]
    Busy,
    /// The configured parameters are not usable.
    #[error("invalid password hashing parameters: {0}")]
    InvalidParams(String),
    /// Unexpected failure of the hashing machinery.
    #[error("password hashing failed: {0}")]
    Internal(String),
}

/// The outcome of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Verification {
    /// The password matches the stored hash.
    pub valid: bool,
    /// The stored hash is not argon2id with the current parameters: when `valid`,
    /// store a fresh [`PasswordHasher::hash`] of the password.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords on a bounded blocking pool.
///
/// Cheap to clone (an `Arc` inside); build one per application.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    max_queued: usize,
    queued: AtomicUsize,
    /// Callers refused with [`PasswordError::Busy`] since start-up.
    refused: AtomicU64,
    policy: PasswordPolicy,
    dummy_hash: OnceCell<String>,
}

/// A snapshot of the hashing pool ([`PasswordHasher::load`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HashingLoad {
    /// Hashes or verifications running now.
    pub running: usize,
    /// Callers waiting for a free slot.
    pub queued: usize,
    /// Callers refused with [`PasswordError::Busy`] (answered 503) since start-up.
    pub refused: u64,
}

/// The password hashed once for [`PasswordHasher::verify_dummy`]; its value does not matter.
const DUMMY_PASSWORD: &str = "rampart dummy password for unknown users";

impl PasswordHasher {
    /// Builds a hasher, checking the argon2 parameters and the pool limits.
    ///
    /// # Errors
    /// [`PasswordError::InvalidParams`] when argon2 rejects the parameters (for example
    /// memory below 8 KiB per lane), `max_concurrent` is 0, or `min_length > max_length`.
    pub fn new(config: &PasswordConfig) -> Result<Self, PasswordError> {
        if config.max_concurrent == 0 {
            return Err(PasswordError::InvalidParams(
                "max_concurrent must be at least 1".to_owned(),
            ));
        }
        if config.max_concurrent > Semaphore::MAX_PERMITS {
            return Err(PasswordError::InvalidParams(format!(
                "max_concurrent must be at most {}",
                Semaphore::MAX_PERMITS
            )));
        }
        if config.min_length > config.max_length {
            return Err(PasswordError::InvalidParams(format!(
                "min_length ({}) is greater than max_length ({})",
                config.min_length, config.max_length
            )));
        }
        let engine = Engine::new(
            config.salt.clone(),
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                engine,
                permits: Arc::new(Semaphore::new(config.max_concurrent)),
                max_concurrent: config.max_concurrent,
                max_queued: config.max_queued,
                queued: AtomicUsize::new(0),
                refused: AtomicU64::new(0),
                policy: PasswordPolicy {
                    min_length: config.min_length,
                    max_length: config.max_length,
                },
                dummy_hash: OnceCell::new(),
            }),
        })
    }

    /// Hashes a new password: NFKD, HMAC pre-hash, argon2id with the current parameters.
    ///
    /// The policy is not checked here: call [`PasswordPolicy::check`] first.
    ///
    /// # Errors
    /// [`PasswordError::Busy`] when the pool and its queue are full,
    /// [`PasswordError::Internal`] if hashing itself fails.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = Zeroizing::new(password.to_owned());
        self.run(move |engine| engine.hash(&password)).await?
    }

    /// Checks a password against a stored hash of any supported scheme.
    ///
    /// An unknown or garbled hash gives `valid == false`, never an error.
    ///
    /// # Errors
    /// [`PasswordError::Busy`] when the pool and its queue are full,
    /// [`PasswordError::Internal`] if the blocking task fails.
    pub async fn verify(
        &self,
        password: &str,
        stored_hash: &str,
    ) -> Result<Verification, PasswordError> {
        let password = Zeroizing::new(password.to_owned());
        let stored_hash = stored_hash.to_owned();
        self.run(move |engine| engine.verify(&password, &stored_hash))
            .await
    }

    /// Spends the time of one wrong-password verification, for a user that does not exist.
    ///
    /// The dummy argon2id hash (current parameters) is made once, on first use.
    ///
    /// # Errors
    /// As [`PasswordHasher::verify`] (and [`PasswordHasher::hash`] on first use).
    pub async fn verify_dummy(&self, password: &str) -> Result<(), PasswordError> {
        let dummy = self
            .inner
            .dummy_hash
            .get_or_try_init(|| self.hash(DUMMY_PASSWORD))
            .await?;
        let _ignored = self.verify(password, dummy).await?;
        Ok(())
    }

    /// How busy the hashing pool is now: hashes running, callers waiting, and how many were
    /// refused with [`PasswordError::Busy`] since start-up (for metrics).
    pub fn load(&self) -> HashingLoad {
        let free = self.inner.permits.available_permits();
        HashingLoad {
            running: self.inner.max_concurrent.saturating_sub(free),
            queued: self.inner.queued.load(Ordering::Acquire),
            refused: self.inner.refused.load(Ordering::Relaxed),
        }
    }

    /// The password policy (length limits) from the configuration.
    pub fn policy(&self) -> &PasswordPolicy {
        &self.inner.policy
    }

    /// [`PasswordHasher::hash`] on the current thread, outside the pool: for command-line
    /// tools and scripts. Never call it from an async task (it blocks for the whole hash).
    ///
    /// # Errors
    /// [`PasswordError::Internal`] if hashing fails.
    pub fn hash_blocking(&self, password: &str) -> Result<String, PasswordError> {
        self.inner.engine.hash(password)
    }

    /// [`PasswordHasher::verify`] on the current thread, outside the pool: for command-line
    /// tools and scripts. Never call it from an async task (it blocks for the whole check).
    pub fn verify_blocking(&self, password: &str, stored_hash: &str) -> Verification {
        self.inner.engine.verify(password, stored_hash)
    }

    /// Runs `work` on the blocking pool once a permit is free.
    ///
    /// The permit moves into the blocking task, so it is held until the work ends even
    /// if the caller gives up waiting for the result.
    async fn run<T, F>(&self, work: F) -> Result<T, PasswordError>
    where
        F: FnOnce(&Engine) -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.acquire().await?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&inner.engine)
        })
        .await
        .map_err(|err| PasswordError::Internal(format!("password hashing task failed: {err}")))
    }

    /// Takes a permit, waiting in the bounded queue when none is free.
    async fn acquire(&self) -> Result<OwnedSemaphorePermit, PasswordError> {
        let closed = || PasswordError::Internal("password hashing pool is closed".to_owned());
        match Arc::clone(&self.inner.permits).try_acquire_owned() {
            Ok(permit) => return Ok(permit),
            Err(TryAcquireError::Closed) => return Err(closed()),
            Err(TryAcquireError::NoPermits) => {}
        }
        let slot = QueueSlot::take(&self.inner.queued);
        if slot.ahead >= self.inner.max_queued {
            self.inner.refused.fetch_add(1, Ordering::Relaxed);
            return Err(PasswordError::Busy);
        }
        let permit = Arc::clone(&self.inner.permits)
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        drop(slot);
        Ok(permit)
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("engine", &self.inner.engine)
            .field("available", &self.inner.permits.available_permits())
            .field("max_queued", &self.inner.max_queued)
            .field("queued", &self.inner.queued.load(Ordering::Relaxed))
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// A place in the wait queue, given back when dropped (also when the caller is cancelled).
struct QueueSlot<'a> {
    queued: &'a AtomicUsize,
    /// How many callers were already waiting when this one arrived.
    ahead: usize,
}

impl<'a> QueueSlot<'a> {
    fn take(queued: &'a AtomicUsize) -> Self {
        let ahead = queued.fetch_add(1, Ordering::AcqRel);
        Self { queued, ahead }
    }
}

impl Drop for QueueSlot<'_> {
    fn drop(&mut self) {
        self.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn cheap_config() -> PasswordConfig {
        PasswordConfig {
            salt: SecretString::from("test-salt"),
            argon2_memory_kib: 1024,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            max_concurrent: 2,
            max_queued: 4,
            ..PasswordConfig::default()
        }
    }

    fn hasher(config: &PasswordConfig) -> PasswordHasher {
        PasswordHasher::new(config).expect("valid config")
    }

    #[test]
    fn defaults_are_flask_security_and_passlib_defaults() {
        let config = PasswordConfig::default();
        assert_eq!(config.argon2_memory_kib, 65_536);
        assert_eq!(config.argon2_iterations, 3);
        assert_eq!(config.argon2_parallelism, 4);
        assert_eq!(config.max_queued, 64);
        assert!(config.max_concurrent >= 1);
        assert_eq!((config.min_length, config.max_length), (8, 128));
        assert!(PasswordHasher::new(&config).is_ok());
    }

    #[test]
    fn config_deserializes_with_defaults_for_missing_keys() {
        let config: PasswordConfig =
            serde_json::from_str(r#"{"salt": "s3cret-salt", "argon2_iterations": 2}"#)
                .expect("valid json");
        assert_eq!(config.argon2_iterations, 2);
        assert_eq!(config.argon2_memory_kib, 65_536);
        assert_eq!(config.min_length, 8);
    }

    #[test]
    fn debug_output_never_shows_the_salt() {
        let config = cheap_config();
        assert!(!format!("{config:?}").contains("test-salt"));
        assert!(!format!("{:?}", hasher(&config)).contains("test-salt"));
    }

    #[test]
    fn bad_parameters_are_refused() {
        let bad = [
            PasswordConfig {
                argon2_memory_kib: 4,
                ..cheap_config()
            },
            PasswordConfig {
                argon2_iterations: 0,
                ..cheap_config()
            },
            PasswordConfig {
                argon2_parallelism: 0,
                ..cheap_config()
            },
            PasswordConfig {
                max_concurrent: 0,
                ..cheap_config()
            },
            PasswordConfig {
                min_length: 10,
                max_length: 9,
                ..cheap_config()
            },
        ];
        for config in bad {
            assert!(
                matches!(
                    PasswordHasher::new(&config),
                    Err(PasswordError::InvalidParams(_))
                ),
                "{config:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_new_hash_verifies_and_needs_no_rehash() {
        let hasher = hasher(&cheap_config());
        let hash = hasher.hash("correct horse").await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        let ok = hasher.verify("correct horse", &hash).await.expect("verify");
        assert_eq!(
            ok,
            Verification {
                valid: true,
                needs_rehash: false
            }
        );
        let wrong = hasher.verify("correct horsf", &hash).await.expect("verify");
        assert!(!wrong.valid);
    }

    #[tokio::test]
    async fn a_hash_made_with_other_parameters_needs_a_rehash() {
        let old = hasher(&cheap_config());
        let hash = old.hash("correct horse").await.expect("hash");
        let new = hasher(&PasswordConfig {
            argon2_iterations: 2,
            ..cheap_config()
        });
        let verification = new.verify("correct horse", &hash).await.expect("verify");
        assert!(verification.valid);
        assert!(verification.needs_rehash);
    }

    #[tokio::test]
    async fn a_different_salt_does_not_verify() {
        let hash = hasher(&cheap_config())
            .hash("correct horse")
            .await
            .expect("hash");
        let other = hasher(&PasswordConfig {
            salt: SecretString::from("other-salt"),
            ..cheap_config()
        });
        assert!(
            !other
                .verify("correct horse", &hash)
                .await
                .expect("verify")
                .valid
        );
    }

    #[tokio::test]
    async fn the_password_is_normalised_before_hashing() {
        let hasher = hasher(&cheap_config());
        // Composed "é" + "ﬁ" ligature, verified in decomposed form, and back.
        let hash = hasher.hash("caf\u{e9} \u{fb01}ne").await.expect("hash");
        let v = hasher
            .verify("cafe\u{301} fine", &hash)
            .await
            .expect("verify");
        assert!(v.valid);
    }

    #[tokio::test]
    async fn verify_dummy_hashes_once_with_the_current_parameters() {
        let hasher = hasher(&cheap_config());
        hasher.verify_dummy("whatever").await.expect("dummy");
        let dummy = hasher.inner.dummy_hash.get().expect("dummy made").clone();
        assert!(dummy.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        hasher.verify_dummy("something else").await.expect("dummy");
        assert_eq!(hasher.inner.dummy_hash.get(), Some(&dummy));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hashing_does_not_block_the_async_worker() {
        // A hash that takes a noticeable time even on a fast machine.
        let hasher = hasher(&PasswordConfig {
            argon2_memory_kib: 8 * 1024,
            argon2_iterations: 4,
            ..cheap_config()
        });
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let ticks = Arc::clone(&ticks);
            async move {
                loop {
                    ticks.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }
        });
        // On a single-threaded runtime the ticker can only run while this task waits.
        let before = ticks.load(Ordering::Relaxed);
        let hash = hasher.hash("correct horse").await.expect("hash");
        let during_hash = ticks.load(Ordering::Relaxed) - before;
        let before = ticks.load(Ordering::Relaxed);
        let verification = hasher.verify("correct horse", &hash).await.expect("verify");
        let during_verify = ticks.load(Ordering::Relaxed) - before;
        ticker.abort();
        assert!(verification.valid);
        assert!(during_hash > 0, "the worker was blocked while hashing");
        assert!(during_verify > 0, "the worker was blocked while verifying");
    }

    /// Holds every permit of `hasher`, as long-running hashes would.
    fn occupy(hasher: &PasswordHasher) -> OwnedSemaphorePermit {
        let n = u32::try_from(hasher.inner.permits.available_permits()).expect("few permits");
        Arc::clone(&hasher.inner.permits)
            .try_acquire_many_owned(n)
            .expect("free permits")
    }

    async fn wait_until_queued(hasher: &PasswordHasher, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while hasher.inner.queued.load(Ordering::Acquire) < n {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("callers queued");
    }

    #[tokio::test]
    async fn a_full_queue_answers_busy_at_once() {
        let hasher = hasher(&PasswordConfig {
            max_concurrent: 1,
            max_queued: 2,
            ..cheap_config()
        });
        let busy = occupy(&hasher);
        let waiting: Vec<_> = (0..2)
            .map(|_| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash("correct horse").await })
            })
            .collect();
        wait_until_queued(&hasher, 2).await;

        let refused = tokio::time::timeout(Duration::from_secs(1), hasher.hash("correct horse"))
            .await
            .expect("answered at once");
        assert!(matches!(refused, Err(PasswordError::Busy)), "{refused:?}");
        let refused = hasher.verify("x", "$2b$04$whatever").await;
        assert!(matches!(refused, Err(PasswordError::Busy)), "{refused:?}");

        drop(busy);
        for task in waiting {
            let hash = task
                .await
                .expect("task")
                .expect("hashed once a permit is free");
            assert!(hash.starts_with("$argon2id$"));
        }
        assert_eq!(hasher.inner.queued.load(Ordering::Acquire), 0);
        assert!(hasher.hash("correct horse").await.is_ok());
    }

    #[tokio::test]
    async fn with_no_queue_a_busy_pool_refuses_at_once() {
        let hasher = hasher(&PasswordConfig {
            max_concurrent: 1,
            max_queued: 0,
            ..cheap_config()
        });
        let busy = occupy(&hasher);
        assert!(matches!(
            hasher.verify_dummy("x").await,
            Err(PasswordError::Busy)
        ));
        drop(busy);
        assert!(hasher.verify_dummy("x").await.is_ok());
    }

    #[tokio::test]
    async fn a_cancelled_waiter_gives_its_queue_place_back() {
        let hasher = hasher(&PasswordConfig {
            max_concurrent: 1,
            max_queued: 1,
            ..cheap_config()
        });
        let busy = occupy(&hasher);
        let waiter = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash("correct horse").await }
        });
        wait_until_queued(&hasher, 1).await;
        waiter.abort();
        assert!(waiter.await.is_err_and(|err| err.is_cancelled()));
        assert_eq!(hasher.inner.queued.load(Ordering::Acquire), 0);
        drop(busy);
        assert!(hasher.hash("correct horse").await.is_ok());
    }

    #[test]
    fn blocking_variants_work_outside_a_runtime() {
        let hasher = hasher(&cheap_config());
        let hash = hasher.hash_blocking("correct horse").expect("hash");
        assert!(hasher.verify_blocking("correct horse", &hash).valid);
        assert!(!hasher.verify_blocking("wrong horse", &hash).valid);
    }
}
