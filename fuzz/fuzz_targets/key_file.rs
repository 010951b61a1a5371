//! Key files and master key material: `KeyFile::decode` on hostile JSON (with round trip), the
//! unwrap step with a fixed key-encryption key instead of Argon2id (far too slow to run per input),
//! and `MasterKeys::decode` on the whole input and on whatever unwraps.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::crypto::{MasterKeys, SealKey};
use sophon::format::config::{KeyFile, KEY_AD, MAX_KEY_FILE_BYTES};

fn kek() -> &'static SealKey {
    static KEY: std::sync::OnceLock<SealKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SealKey::new([7; 32]))
}

fn check_master(bytes: &[u8]) {
    if let Ok(keys) = MasterKeys::decode(bytes) {
        assert_eq!(keys.encode().as_slice(), bytes, "master keys re-encode to different bytes");
        let _ = keys.blob_id(b"x");
        let _ = keys.cdc_seed();
        let _ = format!("{keys:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    check_master(data);

    if let Ok(kf) = KeyFile::decode(data, "fuzz") {
        let salt = kf.salt_bytes("fuzz").expect("decode checked the salt");
        assert!((16..=64).contains(&salt.len()));
        let wrapped = kf.wrapped_bytes("fuzz").expect("decode checked the wrapped key");
        if let Ok(plain) = kek().open(&wrapped, KEY_AD, &|| "fuzz key".into()) {
            check_master(&plain);
        }
        assert!(kf.argon2.check().is_ok(), "decode checked the Argon2id bounds");
        let enc = kf.encode().expect("an accepted key file encodes");
        // Pretty printing adds a few bytes: an input at the size bound may re-encode past it.
        if enc.len() as u64 <= MAX_KEY_FILE_BYTES {
            let back = KeyFile::decode(&enc, "fuzz re-encoded").expect("re-encoded key file must decode");
            assert_eq!(back, kf);
        }
    }
});
