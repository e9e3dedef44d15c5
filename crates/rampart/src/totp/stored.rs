//! TOTP secrets at rest, as Flask-Security stores `tf_totp_secret`: passlib's TOTP JSON, the key
//! encrypted under `SECURITY_TOTP_SECRETS`.
//!
//! passlib's format (`TOTP.to_json(encrypt=True)`, keys sorted):
//! `{"enckey":{"c":14,"k":"<base32>","s":"<base32>","t":"<key id>","v":1},"type":"totp","v":1}`.
//! The TOTP key is encrypted with AES-256-CTR; the AES key and the counter block are the 48 bytes
//! PBKDF2-HMAC-SHA256 derives from the application secret of key id `t`, the salt `s` and
//! `2^c` rounds. Unencrypted JSON (`"key": "<base32>"`) and plain base32 (what Rampart stored
//! before) are read too. Writing uses the key id passlib would pick: the largest (numerically
//! when every id is a number), so keys rotate by adding a larger id; every id is tried for
//! reading. Secrets not written under that id (plain, or an older id) are reported as needing a
//! rewrite, so callers re-encrypt them on use.

use std::fmt;

use aes::Aes256;
use ctr::cipher::{KeyIvInit as _, StreamCipher as _};
use rand::RngCore as _;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret as _, SecretString};
use serde::{Deserialize, Serialize};

type Aes256Ctr = ctr::Ctr128BE<Aes256>;

/// passlib's default cost (log2 of the PBKDF2 rounds).
const COST: u32 = 14;
/// Highest cost read: a stored secret cannot make a request run for minutes.
const MAX_COST: u32 = 20;
/// passlib's salt size in bytes.
const SALT_LEN: usize = 12;

/// `SECURITY_TOTP_SECRETS`: application secrets by key id, which encrypt the TOTP secrets at
/// rest. Empty: secrets are stored as plain base32. `Debug` shows the ids only.
#[derive(Clone, Default)]
pub struct TotpSecrets {
    keys: Vec<(String, SecretString)>,
}

impl fmt::Debug for TotpSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("TotpSecrets").field("ids", &ids).finish()
    }
}

impl TotpSecrets {
    /// The secrets `(key id, secret)`. Key ids are passlib's tags (`[A-Za-z0-9][A-Za-z0-9_.-]*`);
    /// secrets must not be empty.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn new(keys: Vec<(String, SecretString)>) -> Result<Self, String> {
        for (id, secret) in &keys {
            let mut chars = id.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
            if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
                return Err(format!(
                    "key id {id:?} has characters passlib does not allow"
                ));
            }
            if secret.expose_secret().is_empty() {
                return Err(format!("key id {id:?} has an empty secret"));
            }
        }
        Ok(Self { keys })
    }

    /// Whether no secret is configured (TOTP secrets are then stored as plain base32).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key id new secrets are encrypted with: the largest id, compared as numbers when all
    /// are numbers (passlib's `default_tag`).
    pub fn current_id(&self) -> Option<&str> {
        let ids = self.keys.iter().map(|(id, _)| id.as_str());
        if ids.clone().all(|id| id.bytes().all(|b| b.is_ascii_digit())) {
            ids.max_by(|a, b| {
                let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
                a.len().cmp(&b.len()).then_with(|| a.cmp(b))
            })
        } else {
            ids.max()
        }
    }

    fn secret(&self, id: &str) -> Option<&SecretString> {
        self.keys.iter().find(|(k, _)| k == id).map(|(_, s)| s)
    }
}

/// Why a stored TOTP secret cannot be read (or a secret not written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoredSecretError {
    /// Neither base32 nor passlib's TOTP JSON, or a kind this server does not use (another
    /// algorithm, digit count or period).
    #[error("malformed TOTP secret: {0}")]
    Malformed(&'static str),
    /// Encrypted under a key id that `SECURITY_TOTP_SECRETS` does not hold.
    #[error("TOTP secret encrypted under unknown key id {0:?}")]
    UnknownKey(String),
}

/// A stored secret, read.
#[derive(Clone, PartialEq, Eq)]
pub struct OpenedSecret {
    /// The TOTP key in base32 without padding, as authenticator apps and [`super::code_at`] take
    /// it.
    pub base32: String,
    /// Not stored as [`seal`] would store it now (plain, or under an older key id): write
    /// `seal(base32)` back.
    pub needs_rewrite: bool,
}

impl fmt::Debug for OpenedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenedSecret")
            .field("base32", &"[redacted]")
            .field("needs_rewrite", &self.needs_rewrite)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct TotpJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enckey: Option<EncKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    digits: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct EncKey {
    c: u32,
    k: String,
    s: String,
    t: String,
    v: u32,
}

/// Reads a stored `tf_totp_secret` (passlib's JSON, encrypted or not, or plain base32).
///
/// ```
/// use rampart::totp::stored::{TotpSecrets, open, seal};
/// let keys = TotpSecrets::new(vec![("1".into(), "app secret".to_owned().into())]).unwrap();
/// let stored = seal("GEZDGNBVGY3TQOJQ", &keys).unwrap();
/// assert!(stored.starts_with("{\"enckey\":"));
/// let opened = open(&stored, &keys).unwrap();
/// assert_eq!(opened.base32, "GEZDGNBVGY3TQOJQ");
/// assert!(!opened.needs_rewrite);
/// assert!(open("GEZDGNBVGY3TQOJQ", &keys).unwrap().needs_rewrite);
/// ```
///
/// # Errors
///
/// [`StoredSecretError`] when it cannot be read.
pub fn open(stored: &str, keys: &TotpSecrets) -> Result<OpenedSecret, StoredSecretError> {
    let stored = stored.trim();
    if !stored.starts_with('{') {
        let bytes = b32decode(stored).ok_or(StoredSecretError::Malformed("not base32"))?;
        if bytes.is_empty() {
            return Err(StoredSecretError::Malformed("empty"));
        }
        return Ok(OpenedSecret {
            base32: b32encode(&bytes),
            needs_rewrite: !keys.is_empty(),
        });
    }
    let json: TotpJson =
        serde_json::from_str(stored).map_err(|_| StoredSecretError::Malformed("not TOTP JSON"))?;
    if json.kind != "totp" || json.v != 1 {
        return Err(StoredSecretError::Malformed(
            "not passlib TOTP JSON version 1",
        ));
    }
    if json.alg.as_deref().is_some_and(|a| a != "sha1")
        || json.digits.is_some_and(|d| d != 6)
        || json.period.is_some_and(|p| p != 30)
    {
        return Err(StoredSecretError::Malformed(
            "only SHA-1, 6 digits and 30 seconds are supported",
        ));
    }
    let (bytes, needs_rewrite) = match (json.enckey, json.key) {
        (Some(enc), _) => {
            if enc.v != 1 {
                return Err(StoredSecretError::Malformed("unknown encryption version"));
            }
            if enc.c > MAX_COST {
                return Err(StoredSecretError::Malformed("encryption cost too high"));
            }
            let secret = keys
                .secret(&enc.t)
                .ok_or_else(|| StoredSecretError::UnknownKey(enc.t.clone()))?;
            let salt = b32decode(&enc.s).ok_or(StoredSecretError::Malformed("salt"))?;
            let mut key = b32decode(&enc.k).ok_or(StoredSecretError::Malformed("key"))?;
            cipher(secret, &salt, enc.c).apply_keystream(&mut key);
            let stale = keys.current_id() != Some(enc.t.as_str()) || enc.c != COST;
            (key, stale)
        }
        (None, Some(plain)) => (
            b32decode(&plain).ok_or(StoredSecretError::Malformed("key"))?,
            !keys.is_empty(),
        ),
        (None, None) => return Err(StoredSecretError::Malformed("no key")),
    };
    if bytes.is_empty() {
        return Err(StoredSecretError::Malformed("empty"));
    }
    Ok(OpenedSecret {
        base32: b32encode(&bytes),
        needs_rewrite,
    })
}

/// The stored form of the TOTP key `base32`: passlib's encrypted JSON under
/// [`TotpSecrets::current_id`], or `base32` itself when no secret is configured.
///
/// # Errors
///
/// [`StoredSecretError::Malformed`] when `base32` is not base32.
pub fn seal(base32: &str, keys: &TotpSecrets) -> Result<String, StoredSecretError> {
    let mut key = b32decode(base32).ok_or(StoredSecretError::Malformed("not base32"))?;
    let (Some(id), false) = (keys.current_id(), key.is_empty()) else {
        return Ok(b32encode(&key));
    };
    let secret = keys
        .secret(id)
        .ok_or_else(|| StoredSecretError::UnknownKey(id.to_owned()))?;
    let mut salt = [0_u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    cipher(secret, &salt, COST).apply_keystream(&mut key);
    let json = TotpJson {
        enckey: Some(EncKey {
            c: COST,
            k: b32encode(&key),
            s: b32encode(&salt),
            t: id.to_owned(),
            v: 1,
        }),
        key: None,
        kind: "totp".into(),
        v: 1,
        alg: None,
        digits: None,
        period: None,
    };
    serde_json::to_string(&json).map_err(|_| StoredSecretError::Malformed("serialize"))
}

/// AES-256-CTR keyed by PBKDF2-HMAC-SHA256(secret, salt, 2^cost) → 32-byte key + 16-byte counter.
fn cipher(secret: &SecretString, salt: &[u8], cost: u32) -> Aes256Ctr {
    let mut key_iv = [0_u8; 48];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        secret.expose_secret().as_bytes(),
        salt,
        1 << cost,
        &mut key_iv,
    );
    let (key, iv) = key_iv.split_at(32);
    Aes256Ctr::new(key.into(), iv.into())
}

/// RFC 4648 base32 without padding (passlib's `b32encode`).
fn b32encode(bytes: &[u8]) -> String {
    totp_rs::Secret::Raw(bytes.to_vec())
        .to_encoded()
        .to_string()
}

/// Base32, any case, padding optional, spaces and dashes ignored (as typed keys come).
fn b32decode(text: &str) -> Option<Vec<u8>> {
    let cleaned: String = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '='))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if cleaned.is_empty()
        || !cleaned
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return None;
    }
    totp_rs::Secret::Encoded(cleaned).to_bytes().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> TotpSecrets {
        TotpSecrets::new(
            pairs
                .iter()
                .map(|(id, s)| ((*id).to_owned(), SecretString::from(*s)))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn the_current_id_is_passlibs_default_tag() {
        assert_eq!(
            keys(&[("2", "a"), ("10", "b"), ("9", "c")]).current_id(),
            Some("10")
        );
        assert_eq!(
            keys(&[("2024-01", "a"), ("2025-06", "b")]).current_id(),
            Some("2025-06")
        );
        assert_eq!(TotpSecrets::default().current_id(), None);
        assert!(TotpSecrets::new(vec![("bad id".into(), "x".to_owned().into())]).is_err());
        assert!(TotpSecrets::new(vec![("1".into(), String::new().into())]).is_err());
        assert!(!format!("{:?}", keys(&[("1", "hidden")])).contains("hidden"));
    }

    #[test]
    fn a_secret_sealed_under_an_old_id_is_read_and_asks_for_a_rewrite() {
        let old = keys(&[("1", "first")]);
        let both = keys(&[("1", "first"), ("2", "second")]);
        let sealed = seal("JBSWY3DPEHPK3PXP", &old).unwrap();
        let opened = open(&sealed, &both).unwrap();
        assert_eq!(opened.base32, "JBSWY3DPEHPK3PXP");
        assert!(opened.needs_rewrite);
        let resealed = seal(&opened.base32, &both).unwrap();
        assert!(resealed.contains("\"t\":\"2\""), "{resealed}");
        assert!(!open(&resealed, &both).unwrap().needs_rewrite);
        assert_eq!(
            open(&resealed, &old),
            Err(StoredSecretError::UnknownKey("2".into()))
        );
        // Without secrets, secrets are stored in base32.
        assert_eq!(
            seal("jbsw y3dp", &TotpSecrets::default()).unwrap(),
            "JBSWY3DP"
        );
    }

    #[test]
    fn malformed_secrets_are_errors_not_panics() {
        let k = keys(&[("1", "first")]);
        for bad in [
            "",
            "not base32!",
            "{",
            "{}",
            r#"{"type":"totp","v":1}"#,
            r#"{"type":"hotp","v":1,"key":"JBSWY3DP"}"#,
            r#"{"type":"totp","v":1,"key":"JBSWY3DP","digits":8}"#,
            r#"{"type":"totp","v":1,"enckey":{"c":99,"k":"AA","s":"AA","t":"1","v":1}}"#,
            r#"{"type":"totp","v":1,"enckey":{"c":1,"k":"!!","s":"AA","t":"1","v":1}}"#,
            r#"{"type":"totp","v":1,"enckey":{"c":1,"k":"AA","s":"AA","t":"1","v":2}}"#,
        ] {
            assert!(open(bad, &k).is_err(), "{bad:?}");
        }
        let plain = open(r#"{"type":"totp","v":1,"key":"JBSWY3DP"}"#, &k).unwrap();
        assert_eq!(plain.base32, "JBSWY3DP");
        assert!(plain.needs_rewrite);
    }

    /// Made by real passlib under Flask-Security 5.9.2 (`scripts/flask_security_vectors.py`).
    #[test]
    fn flask_security_stored_secrets_decrypt() {
        let all: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/data/flask_security_vectors.json"))
                .unwrap();
        let pairs: Vec<(String, SecretString)> = all["settings"]["SECURITY_TOTP_SECRETS"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), SecretString::from(v.as_str().unwrap())))
            .collect();
        let k = TotpSecrets::new(pairs).unwrap();
        let user = &all["users"]["two_factor"];
        let opened = open(user["tf_totp_secret"].as_str().unwrap(), &k).unwrap();
        assert_eq!(opened.base32, user["totp_base32"].as_str().unwrap());
        assert!(opened.needs_rewrite, "written under key id 1, 2 is current");
        let mint = all["mint_time"].as_u64().unwrap();
        assert_eq!(
            super::super::code_at(&opened.base32, mint).as_deref(),
            user["code_at_mint"].as_str()
        );
        let fresh = &all["new_totp_secret"];
        let opened = open(fresh["stored"].as_str().unwrap(), &k).unwrap();
        assert_eq!(opened.base32, fresh["base32"].as_str().unwrap());
        assert!(!opened.needs_rewrite);
    }
}
