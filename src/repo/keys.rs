//! Key files: the master keys wrapped under a passphrase (format-spec/repository.md), and adding,
//! listing, removing and replacing them.

use base64::Engine;
use zeroize::Zeroizing;

use super::{host, now_rfc3339, user, Repository};
use crate::crypto::{self, Argon2Params, MasterKeys, SealKey};
use crate::error::{Error, Result};
use crate::format::config::{check_object_size, KeyFile, KEYFILE_VERSION, KEY_AD, MAX_KEY_FILE_BYTES};
use crate::id::{content_hash, KeyId};

pub(super) fn key_path(id: &KeyId) -> String {
    format!("keys/{id}")
}

pub(super) fn wrap_keys(keys: &MasterKeys, passphrase: &[u8], params: Argon2Params) -> Result<Vec<u8>> {
    let salt: [u8; 32] = crypto::random_array()?;
    let kek = crypto::argon2id(passphrase, &salt, params)?;
    let wrapped = SealKey::new(*kek).seal(&keys.encode(), KEY_AD)?;
    let b64 = base64::engine::general_purpose::STANDARD;
    KeyFile {
        version: KEYFILE_VERSION,
        kdf: "argon2id".into(),
        argon2: params,
        salt: b64.encode(salt),
        wrapped: b64.encode(wrapped),
        created: now_rfc3339(),
        hostname: host(),
        username: user(),
    }
    .encode()
}

/// Try to open one key file with `passphrase`. `Ok(None)` means "not this passphrase".
pub(super) fn unwrap_key(bytes: &[u8], id: &KeyId, passphrase: &[u8]) -> Result<Option<MasterKeys>> {
    let what = format!("key {id}");
    let kf = KeyFile::decode(bytes, &what)?;
    let salt = kf.salt_bytes(&what)?;
    let kek = crypto::argon2id(passphrase, &salt, kf.argon2)?;
    match SealKey::new(*kek).open(&kf.wrapped_bytes(&what)?, KEY_AD, &|| what.clone()) {
        Ok(plain) => {
            let plain = Zeroizing::new(plain);
            Ok(Some(MasterKeys::decode(&plain)?))
        }
        Err(Error::Authentication { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Repository {
    // ---------------------------------------------------------------- keys

    pub fn add_key(&self, passphrase: &[u8], params: Argon2Params) -> Result<KeyId> {
        if passphrase.is_empty() {
            return Err(Error::invalid("the new passphrase is empty"));
        }
        let keyfile = wrap_keys(&self.keys, passphrase, params)?;
        let id = KeyId(content_hash(&keyfile));
        self.backend.write(&key_path(&id), keyfile.into())?;
        Ok(id)
    }

    pub fn list_keys(&self) -> Result<Vec<(KeyId, KeyFile)>> {
        let mut listed = Vec::new();
        self.backend.list("keys", &mut |o| {
            if let Ok(id) = o.name.parse::<KeyId>() {
                listed.push((id, o.size));
            }
            Ok(())
        })?;
        let mut out = Vec::new();
        for (id, size) in listed {
            let what = format!("key {id}");
            check_object_size(&what, size, MAX_KEY_FILE_BYTES)?;
            let bytes = self.backend.read(&key_path(&id))?;
            out.push((id, KeyFile::decode(&bytes, &what)?));
        }
        out.sort_by(|a, b| a.1.created.cmp(&b.1.created));
        Ok(out)
    }

    /// Remove a key file. The key in use cannot be removed (use `passwd` to replace it), so the
    /// repository always keeps at least one key that opens it.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        if *id == self.key_id {
            return Err(Error::invalid(format!(
                "key {id} is the one this passphrase opened; open with another key to remove it, or use `repo key passwd`"
            )));
        }
        if self.backend.stat(&key_path(id))?.is_none() {
            return Err(Error::NotFound(format!("key {id} not found in {}", self.backend.location())));
        }
        self.backend.delete(&key_path(id))?;
        Ok(())
    }

    /// Replace the key in use by one under a new passphrase (added before the old one is removed).
    pub fn change_passphrase(&mut self, new_passphrase: &[u8], params: Argon2Params) -> Result<KeyId> {
        let new_id = self.add_key(new_passphrase, params)?;
        self.backend.delete(&key_path(&self.key_id))?;
        self.key_id = new_id;
        Ok(new_id)
    }
}
