//! The small JSON objects: the plaintext `config`, key files, and locks.

use serde::{Deserialize, Serialize};

use crate::chunk::ChunkerParams;
use crate::crypto::Argon2Params;
use crate::error::{Error, Result};
use crate::id::RepoId;

pub const CONFIG_VERSION: u32 = 1;

/// Read a JSON object's `version` before its other fields, so a newer object is reported as such
/// (not as malformed because of fields this build does not know).
pub(crate) fn check_version(bytes: &[u8], what: &str, supported: u32) -> Result<()> {
    #[derive(Deserialize)]
    struct Probe {
        version: u64,
    }
    let p: Probe = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e.to_string()))?;
    if p.version != supported as u64 {
        return Err(Error::UnsupportedVersion {
            what: what.into(),
            found: p.version.min(u32::MAX as u64) as u32,
            supported,
        });
    }
    Ok(())
}
pub const KEYFILE_VERSION: u32 = 1;
pub const LOCK_VERSION: u32 = 1;

// Reader bounds (format-spec/repository.md §21): what a reader spends on the two plaintext
// objects it must trust before it holds a key.

/// The smallest `pack_size` a reader accepts: 1 MiB (below it a pack holds a blob or two, and the
/// repository becomes millions of objects).
pub const MIN_PACK_SIZE: u32 = 1024 * 1024;
/// The largest `pack_size` a reader accepts: 128 MiB (restic's ceiling too). Every backup and
/// prune holds a pack of this size in memory (plus the ones queued for upload), so a forged config
/// must not make it 1 GiB.
pub const MAX_PACK_SIZE: u32 = 128 * 1024 * 1024;
/// The largest `config` a reader reads: v1 writes about 250 bytes.
pub const MAX_CONFIG_BYTES: u64 = 64 * 1024;
/// The largest key file a reader reads: v1 writes about 500 bytes (the host and user names are the
/// only free text).
pub const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;
/// The most key files one open reads and tries (each costs one Argon2id derivation): restic's
/// figure. The key named by a hint is tried first; the rest are tried in ascending name order.
pub const MAX_KEYS_TRIED: usize = 20;

/// Refuse an object larger than `limit` before (`declared`, from a listing or a stat) and after
/// reading it.
pub fn check_object_size(what: &str, size: u64, limit: u64) -> Result<()> {
    if size > limit {
        return Err(Error::malformed(what, format!("{size} bytes is over the {limit} bytes a reader accepts")));
    }
    Ok(())
}

/// The only plaintext object. It holds nothing secret; a reader checks its `id` against the id sealed
/// inside the key, so a swapped config is detected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub version: u32,
    pub id: RepoId,
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// zstd level used when a backup does not say otherwise.
    pub compression: i32,
}

impl Config {
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::invalid(format!("encoding config: {e}")))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let what = "config";
        check_object_size(what, bytes.len() as u64, MAX_CONFIG_BYTES)?;
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e.to_string()))?;
        let version = v.get("version").and_then(|v| v.as_u64()).ok_or_else(|| Error::malformed(what, "no version"))?;
        if version != CONFIG_VERSION as u64 {
            return Err(Error::UnsupportedVersion {
                what: what.into(),
                found: version.min(u32::MAX as u64) as u32,
                supported: CONFIG_VERSION,
            });
        }
        let c: Config = serde_json::from_value(v).map_err(|e| Error::malformed(what, e.to_string()))?;
        c.chunker.validate().map_err(|e| Error::malformed(what, e.to_string()))?;
        if c.pack_size > MAX_PACK_SIZE {
            return Err(Error::malformed(
                what,
                format!("pack_size {} bytes is over the {MAX_PACK_SIZE} bytes (128 MiB) a reader accepts", c.pack_size),
            ));
        }
        if c.pack_size < MIN_PACK_SIZE {
            return Err(Error::malformed(
                what,
                format!("pack_size {} bytes is below the {MIN_PACK_SIZE} bytes (1 MiB) a reader accepts", c.pack_size),
            ));
        }
        if !(0..=22).contains(&c.compression) {
            return Err(Error::malformed(what, format!("compression {} outside 0..=22", c.compression)));
        }
        Ok(c)
    }
}

/// A key file: the master keys wrapped under a passphrase-derived key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    pub version: u32,
    pub kdf: String,
    pub argon2: Argon2Params,
    /// Base64 (standard, padded) salt, 16..=64 bytes.
    pub salt: String,
    /// Base64 of `nonce || sealed master keys || tag`, associated data `SOPHKEY1`.
    pub wrapped: String,
    pub created: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub username: String,
}

pub const KEY_AD: &[u8] = b"SOPHKEY1";

impl KeyFile {
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::invalid(format!("encoding key file: {e}")))
    }

    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        check_object_size(what, bytes.len() as u64, MAX_KEY_FILE_BYTES)?;
        check_version(bytes, what, KEYFILE_VERSION)?;
        let k: KeyFile = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e.to_string()))?;
        if k.kdf != "argon2id" {
            return Err(Error::malformed(what, format!("unknown kdf {:?}", k.kdf)));
        }
        let salt = k.salt_bytes(what)?;
        if !(16..=64).contains(&salt.len()) {
            return Err(Error::malformed(what, "salt must be 16..=64 bytes"));
        }
        // Before any derivation: a hostile key file must not make a reader spend minutes and gigabytes.
        k.argon2.check().map_err(|e| Error::malformed(what, e))?;
        k.wrapped_bytes(what)?;
        Ok(k)
    }

    pub fn salt_bytes(&self, what: &str) -> Result<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.salt)
            .map_err(|_| Error::malformed(what, "salt is not base64"))
    }

    pub fn wrapped_bytes(&self, what: &str) -> Result<Vec<u8>> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&self.wrapped)
            .map_err(|_| Error::malformed(what, "wrapped key is not base64"))
    }
}

/// A lock: who holds it, and until when it counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    pub exclusive: bool,
    pub hostname: String,
    pub pid: u32,
    pub operation: String,
    /// RFC 3339; a lock whose `refreshed` is older than the stale age is ignored.
    pub created: String,
    pub refreshed: String,
    /// A prune's lock: coexists with shared locks, excludes other prunes and exclusive locks.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub prune: bool,
    /// Which process table `pid` belongs to (boot id and PID namespace, where `/proc` tells): a
    /// reader decides that a holder is dead from a missing pid only when this equals its own, so
    /// containers sharing a host name never take each other's live locks for dead ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_space: Option<String>,
}

/// Who holds a lock, stable across its refreshes (each refresh writes a new lock object).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockHolder {
    pub hostname: String,
    pub pid: u32,
    pub created: String,
}

impl Lock {
    pub fn holder(&self) -> LockHolder {
        LockHolder { hostname: self.hostname.clone(), pid: self.pid, created: self.created.clone() }
    }
}

impl Lock {
    pub fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(self).map_err(|e| Error::invalid(format!("encoding lock: {e}")))
    }

    pub fn decode(bytes: &[u8], what: &str) -> Result<Self> {
        check_version(bytes, what, LOCK_VERSION)?;
        let l: Lock = serde_json::from_slice(bytes).map_err(|e| Error::malformed(what, e.to_string()))?;
        chrono::DateTime::parse_from_rfc3339(&l.refreshed)
            .map_err(|e| Error::malformed(what, format!("refreshed: {e}")))?;
        Ok(l)
    }
}
