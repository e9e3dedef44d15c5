//! A tower-sessions [`SessionStore`] over the datastore's sessions: the `rampart_session` table,
//! or Redis when the datastore uses it ([`Datastore::use_redis`]).
//!
//! Session ids are stored only as SHA-256 hashes, and each session records the signed-in user's
//! id so a user's sessions can be listed and revoked. A store that cannot be reached (database or
//! Redis) makes the request answer 503, never a signed-out page.
//!
//! A request with a session cookie gets a store of its own ([`DbSessionStore::for_request`]):
//! loading the session reads the signed-in user with their roles in the same statement
//! ([`Datastore::session_load_with_user`]) and keeps them for the request's authentication
//! ([`DbSessionStore::prefetched_user`]), so a cache miss costs one query, not two.

use std::sync::OnceLock;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error as StoreError, Result as StoreResult, SessionStore};

use crate::datastore::{Datastore, UserWithRoles};

/// Session key holding the signed-in user's id (recorded in its own column).
pub(crate) const USER_ID_KEY: &str = "_user_id";

/// Stores sessions through the datastore (its table, or Redis).
#[derive(Clone)]
pub(crate) struct DbSessionStore {
    datastore: Datastore,
    /// The user read with the session, for a request's own store.
    prefetched: OnceLock<UserWithRoles>,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSessionStore").finish_non_exhaustive()
    }
}

impl DbSessionStore {
    /// A store over `datastore`.
    pub(crate) fn new(datastore: Datastore) -> Self {
        Self {
            datastore,
            prefetched: OnceLock::new(),
        }
    }

    /// A store for one request (the same sessions), which keeps the user it read with the
    /// session.
    pub(crate) fn for_request(&self) -> Self {
        Self::new(self.datastore.clone())
    }

    /// The user (with roles) read together with this request's session, if it is the one with
    /// `uniquifier` (whether active is the caller's check).
    pub(crate) fn prefetched_user(&self, uniquifier: &str) -> Option<UserWithRoles> {
        self.prefetched
            .get()
            .filter(|found| found.0.fs_uniquifier == uniquifier)
            .cloned()
    }
}

/// The stored form of a session id: hex SHA-256 of its text.
pub(crate) fn hash_session_id(id: &Id) -> String {
    crate::token::sha256_hex(&id.to_string())
}

fn parts(record: &Record) -> StoreResult<(String, Option<i64>, String, time::PrimitiveDateTime)> {
    let data =
        serde_json::to_string(&record.data).map_err(|e| StoreError::Encode(e.to_string()))?;
    let user_id = record
        .data
        .get(USER_ID_KEY)
        .and_then(serde_json::Value::as_i64);
    Ok((
        hash_session_id(&record.id),
        user_id,
        data,
        crate::clock::naive(record.expiry_date),
    ))
}

/// Prefix of store errors caused by an unreachable database (answered with 503, not 500).
pub(crate) use crate::error::SESSION_STORE_UNAVAILABLE as UNAVAILABLE_PREFIX;

fn backend(e: crate::datastore::DatastoreError) -> StoreError {
    if e.is_unavailable() {
        StoreError::Backend(format!("{UNAVAILABLE_PREFIX}{e}"))
    } else {
        StoreError::Backend(e.to_string())
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> StoreResult<()> {
        loop {
            let (hash, user_id, data, expiry) = parts(record)?;
            if self
                .datastore
                .session_create(&hash, user_id, &data, expiry)
                .await
                .map_err(backend)?
            {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> StoreResult<()> {
        let (hash, user_id, data, expiry) = parts(record)?;
        self.datastore
            .session_save(&hash, user_id, &data, expiry)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> StoreResult<Option<Record>> {
        let now = crate::clock::naive(time::OffsetDateTime::now_utc());
        let Some((data, user)) = self
            .datastore
            .session_load_with_user(&hash_session_id(id), now)
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        if let Some(user) = user {
            // Loaded once per request: a second load (none happens) would find it set.
            let _first = self.prefetched.set(user);
        }
        let data = serde_json::from_str(&data).map_err(|e| StoreError::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            // Recomputed from the session's idle expiry whenever the session is saved.
            expiry_date: now.assume_utc(),
        }))
    }

    async fn delete(&self, id: &Id) -> StoreResult<()> {
        self.datastore
            .session_delete(&hash_session_id(id))
            .await
            .map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn session_ids_are_stored_as_lowercase_hex_sha256() {
        let id = Id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let expected: String = Sha256::digest(id.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hash_session_id(&id), expected);
        assert_eq!(expected.len(), 64);
    }
}
