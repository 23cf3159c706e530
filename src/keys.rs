//! The key file: secrets that must not live in the database.
//!
//! One JSON file (default `aixin-keys.json` beside the working directory, or `AIXIN_KEYS`),
//! created with owner-only permissions on first run. It holds
//!
//! - `master_key`: 32 random bytes from which every resident credential's code secret is derived
//!   with HKDF-SHA256 (so a database dump alone cannot mint codes), and
//! - `signing_keys`: HMAC-SHA256 keys, each with a short id and a status. Exactly one is
//!   `active` and signs new receipts, manifests and checkpoints; `retired` keys still verify;
//!   `revoked` keys verify nothing.
//!
//! Rotation (`aixin keys rotate`) retires the active key and adds a new one. Running servers
//! reload the file when it changes (see [`SharedKeys`]), so a rotation needs no downtime.
//! Every signed byte layout starts with its own domain label, so one key never signs two
//! kinds of message that could be confused.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::clock::Entropy;

type HmacSha256 = Hmac<Sha256>;

/// Default key file name, in the current directory.
pub const DEFAULT_KEY_FILE: &str = "aixin-keys.json";
/// Longest key id, in bytes. Ids are printed on receipts, so they stay short.
pub const KEY_ID_MAX_BYTES: usize = 16;
/// Most signing keys one file may hold (active + retired + revoked).
pub const SIGNING_KEYS_MAX: usize = 256;
const FILE_VERSION: u32 = 1;
/// Largest key file read, in bytes.
const FILE_MAX_BYTES: u64 = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key file {path}: {message}")]
    File { path: String, message: String },
    #[error("no signing key with id {0}")]
    UnknownKey(String),
    #[error("signing key {0} is the active key; rotate first")]
    RevokeActive(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Active,
    Retired,
    Revoked,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKey {
    pub id: String,
    #[serde(with = "hex32")]
    pub secret: [u8; 32],
    pub status: KeyStatus,
    /// Microseconds since the epoch.
    pub created_at: i64,
}

/// Why a signature did not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    UnknownKey,
    RevokedKey,
    BadTag,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRing {
    version: u32,
    #[serde(with = "hex32")]
    master_key: [u8; 32],
    signing_keys: Vec<SigningKey>,
}

impl KeyRing {
    /// A fresh ring: a random master key and one active signing key `k1`.
    pub fn generate(entropy: &dyn Entropy, now_micros: i64) -> KeyRing {
        let mut master_key = [0u8; 32];
        entropy.fill(&mut master_key);
        let mut ring = KeyRing {
            version: FILE_VERSION,
            master_key,
            signing_keys: Vec::new(),
        };
        ring.add_active(entropy, now_micros);
        ring
    }

    /// A ring from fixed bytes, for test vectors: master key and one active key with `id`.
    pub fn from_parts(master_key: [u8; 32], id: &str, secret: [u8; 32]) -> KeyRing {
        KeyRing {
            version: FILE_VERSION,
            master_key,
            signing_keys: vec![SigningKey {
                id: id.to_owned(),
                secret,
                status: KeyStatus::Active,
                created_at: 0,
            }],
        }
    }

    fn add_active(&mut self, entropy: &dyn Entropy, now_micros: i64) -> &SigningKey {
        let next = self
            .signing_keys
            .iter()
            .filter_map(|k| k.id.strip_prefix('k').and_then(|n| n.parse::<u64>().ok()))
            .max()
            .unwrap_or(0)
            + 1;
        let mut secret = [0u8; 32];
        entropy.fill(&mut secret);
        self.signing_keys.push(SigningKey {
            id: format!("k{next}"),
            secret,
            status: KeyStatus::Active,
            created_at: now_micros,
        });
        self.signing_keys.last().expect("just pushed")
    }

    /// Parses and checks a key file's text.
    pub fn parse(text: &str) -> Result<KeyRing, String> {
        let ring: KeyRing = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if ring.version != FILE_VERSION {
            return Err(format!("unsupported version {}", ring.version));
        }
        if ring.signing_keys.is_empty() || ring.signing_keys.len() > SIGNING_KEYS_MAX {
            return Err(format!("must hold 1 to {SIGNING_KEYS_MAX} signing keys"));
        }
        let active = ring
            .signing_keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .count();
        if active != 1 {
            return Err(format!("must hold exactly one active key, holds {active}"));
        }
        let mut ids = std::collections::BTreeSet::new();
        for key in &ring.signing_keys {
            if key.id.is_empty()
                || key.id.len() > KEY_ID_MAX_BYTES
                || !key
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(format!("bad key id {:?}", key.id));
            }
            if !ids.insert(key.id.as_str()) {
                return Err(format!("duplicate key id {}", key.id));
            }
        }
        Ok(ring)
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<KeyRing, KeyError> {
        let err = |message: String| KeyError::File {
            path: path.display().to_string(),
            message,
        };
        let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
        if meta.len() > FILE_MAX_BYTES {
            return Err(err(format!("larger than {FILE_MAX_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        KeyRing::parse(&text).map_err(err)
    }

    /// Reads the key file, or creates it (owner-only) if it does not exist. Returns whether it
    /// was created.
    pub fn load_or_create(
        path: &Path,
        entropy: &dyn Entropy,
        now_micros: i64,
    ) -> Result<(KeyRing, bool), KeyError> {
        if path.exists() {
            return Ok((KeyRing::load(path)?, false));
        }
        let ring = KeyRing::generate(entropy, now_micros);
        ring.save(path)?;
        Ok((ring, true))
    }

    /// Writes the file atomically (temp file + rename) with mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let err = |message: String| KeyError::File {
            path: path.display().to_string(),
            message,
        };
        let text = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))? + "\n";
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut file = options.open(&tmp).map_err(|e| err(e.to_string()))?;
            file.write_all(text.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    err(e.to_string())
                })?;
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e.to_string())
        })
    }

    pub fn signing_keys(&self) -> &[SigningKey] {
        &self.signing_keys
    }

    /// The key that signs new messages.
    pub fn active(&self) -> &SigningKey {
        self.signing_keys
            .iter()
            .find(|k| k.status == KeyStatus::Active)
            .expect("a parsed ring has exactly one active key")
    }

    /// Retires the active key and adds a new active one; returns the new key's id.
    pub fn rotate(&mut self, entropy: &dyn Entropy, now_micros: i64) -> String {
        for key in &mut self.signing_keys {
            if key.status == KeyStatus::Active {
                key.status = KeyStatus::Retired;
            }
        }
        self.add_active(entropy, now_micros).id.clone()
    }

    /// Revokes a retired key: what it signed no longer verifies.
    pub fn revoke(&mut self, id: &str) -> Result<(), KeyError> {
        let key = self
            .signing_keys
            .iter_mut()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::UnknownKey(id.to_owned()))?;
        if key.status == KeyStatus::Active {
            return Err(KeyError::RevokeActive(id.to_owned()));
        }
        key.status = KeyStatus::Revoked;
        Ok(())
    }

    /// HMAC-SHA256 of `message` with the active key: (key id, tag).
    pub fn sign(&self, message: &[u8]) -> (String, [u8; 32]) {
        let key = self.active();
        (key.id.clone(), hmac_sha256(&key.secret, message))
    }

    /// Checks a tag in constant time against the named key, if it may still verify.
    pub fn verify(&self, key_id: &str, message: &[u8], tag: &[u8]) -> Result<(), SignatureError> {
        let key = self
            .signing_keys
            .iter()
            .find(|k| k.id == key_id)
            .ok_or(SignatureError::UnknownKey)?;
        if key.status == KeyStatus::Revoked {
            return Err(SignatureError::RevokedKey);
        }
        let mut mac = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes any key length");
        mac.update(message);
        mac.verify_slice(tag).map_err(|_| SignatureError::BadTag)
    }

    /// A resident credential's code secret: HKDF-SHA256 (RFC 5869) with the master key as input
    /// keying material, salt `aixin credential v1`, and info = ledger id bytes ‖ 0x00 ‖
    /// credential id (16 bytes) ‖ generation (u32 big-endian); 32 bytes of output.
    pub fn credential_secret(
        &self,
        ledger_id: &str,
        credential: Uuid,
        generation: u32,
    ) -> [u8; 32] {
        derive_credential_secret(&self.master_key, ledger_id, credential, generation)
    }
}

impl KeyRing {
    /// A 32-byte secret for `purpose`, derived from the master key like credential secrets:
    /// HKDF-SHA256 with the master key as input keying material, `purpose` as salt and `info`
    /// as info. For secrets a retry must get back (a shop clerk's token created with an
    /// idempotency key) without keeping them anywhere.
    pub fn derived_secret(&self, purpose: &str, info: &[u8]) -> [u8; 32] {
        hkdf_32(&self.master_key, purpose.as_bytes(), info)
    }
}

/// See [`KeyRing::credential_secret`].
pub fn derive_credential_secret(
    master_key: &[u8; 32],
    ledger_id: &str,
    credential: Uuid,
    generation: u32,
) -> [u8; 32] {
    let mut info = Vec::with_capacity(ledger_id.len() + 21);
    info.extend_from_slice(ledger_id.as_bytes());
    info.push(0);
    info.extend_from_slice(credential.as_bytes());
    info.extend_from_slice(&generation.to_be_bytes());
    hkdf_32(master_key, b"aixin credential v1", &info)
}

/// 32 bytes of HKDF-SHA256 (RFC 5869) output: extract with `salt`, expand with `info`.
fn hkdf_32(master_key: &[u8; 32], salt: &[u8], info: &[u8]) -> [u8; 32] {
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), master_key);
    let mut out = [0u8; 32];
    hk.expand(info, &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    out
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The key ring a running server uses, reloaded when its file changes on disk so that a
/// rotation done by `aixin keys rotate` (possibly for several processes sharing the file) takes
/// effect without a restart.
#[derive(Clone)]
pub struct SharedKeys {
    inner: Arc<RwLock<KeyRing>>,
    path: Option<PathBuf>,
    stamp: Arc<RwLock<Option<std::time::SystemTime>>>,
}

impl SharedKeys {
    /// A ring with no file behind it (tests).
    pub fn fixed(ring: KeyRing) -> SharedKeys {
        SharedKeys {
            inner: Arc::new(RwLock::new(ring)),
            path: None,
            stamp: Arc::new(RwLock::new(None)),
        }
    }

    /// A ring backed by `path`; call [`SharedKeys::reload_if_changed`] periodically.
    pub fn from_file(path: PathBuf, ring: KeyRing) -> SharedKeys {
        let stamp = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        SharedKeys {
            inner: Arc::new(RwLock::new(ring)),
            path: Some(path),
            stamp: Arc::new(RwLock::new(stamp)),
        }
    }

    /// A snapshot of the current ring.
    pub fn get(&self) -> KeyRing {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Re-reads the file if its modification time moved. A file that no longer parses is
    /// ignored (the last good ring stays) and reported.
    pub fn reload_if_changed(&self) -> Result<bool, KeyError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified == *self.stamp.read().unwrap_or_else(|p| p.into_inner()) {
            return Ok(false);
        }
        let ring = KeyRing::load(path)?;
        *self.inner.write().unwrap_or_else(|p| p.into_inner()) = ring;
        *self.stamp.write().unwrap_or_else(|p| p.into_inner()) = modified;
        Ok(true)
    }

    /// Changes the ring as `change` says (a rotation, a revocation) and, with a file behind it,
    /// writes the file first: the change is read afresh from the file (so a change another
    /// process made is kept), applied, saved atomically, and only then taken into use here. One
    /// change at a time in this process; `change` failing changes nothing. Blocking (file IO).
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut KeyRing) -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        let mut current = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let mut ring = match &self.path {
            Some(path) if path.exists() => KeyRing::load(path)?,
            _ => current.clone(),
        };
        let answer = change(&mut ring)?;
        if let Some(path) = &self.path {
            ring.save(path)?;
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            *self.stamp.write().unwrap_or_else(|p| p.into_inner()) = modified;
        }
        *current = ring;
        Ok(answer)
    }
}

mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|_| serde::de::Error::custom("expected 64 hex digits"))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SeededEntropy;

    #[test]
    fn rotation_keeps_retired_keys_verifying_and_revocation_stops_them() {
        let entropy = SeededEntropy::new(7);
        let mut ring = KeyRing::generate(entropy.as_ref(), 1);
        let (k1, tag1) = ring.sign(b"message");
        assert_eq!(k1, "k1");
        let k2 = ring.rotate(entropy.as_ref(), 2);
        assert_eq!(k2, "k2");
        assert_eq!(ring.verify("k1", b"message", &tag1), Ok(()));
        let (id, tag2) = ring.sign(b"message");
        assert_eq!(id, "k2");
        assert_ne!(tag1, tag2);
        assert_eq!(ring.verify("k2", b"message", &tag2), Ok(()));
        assert_eq!(
            ring.verify("k2", b"messagE", &tag2),
            Err(SignatureError::BadTag)
        );
        assert!(matches!(ring.revoke("k2"), Err(KeyError::RevokeActive(_))));
        ring.revoke("k1").unwrap();
        assert_eq!(
            ring.verify("k1", b"message", &tag1),
            Err(SignatureError::RevokedKey)
        );
        assert_eq!(
            ring.verify("k9", b"message", &tag1),
            Err(SignatureError::UnknownKey)
        );
    }

    #[test]
    fn a_saved_ring_reloads_identically_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let entropy = SeededEntropy::new(9);
        let (ring, created) = KeyRing::load_or_create(&path, entropy.as_ref(), 5).unwrap();
        assert!(created);
        let (again, created) = KeyRing::load_or_create(&path, entropy.as_ref(), 6).unwrap();
        assert!(!created);
        assert_eq!(ring, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_key_files_are_refused() {
        let entropy = SeededEntropy::new(3);
        let mut ring = KeyRing::generate(entropy.as_ref(), 1);
        ring.signing_keys[0].status = KeyStatus::Retired;
        let text = serde_json::to_string(&ring).unwrap();
        assert!(KeyRing::parse(&text)
            .unwrap_err()
            .contains("exactly one active"));
        assert!(KeyRing::parse("{}").is_err());
        assert!(KeyRing::parse("not json").is_err());
    }

    #[test]
    fn credential_secrets_differ_by_every_input() {
        let ring = KeyRing::from_parts([1; 32], "k1", [2; 32]);
        let c = Uuid::from_u128(1);
        let base = ring.credential_secret("demo", c, 1);
        assert_ne!(base, ring.credential_secret("demo2", c, 1));
        assert_ne!(base, ring.credential_secret("demo", Uuid::from_u128(2), 1));
        assert_ne!(base, ring.credential_secret("demo", c, 2));
        let other = KeyRing::from_parts([3; 32], "k1", [2; 32]);
        assert_ne!(base, other.credential_secret("demo", c, 1));
    }
}
