//! Blobs: `pack::open_blob` and `compress::decompress` with the sizes and flags a pack header
//! declares.
//!
//! Input layout: `flags u8 | compression u8 | raw_len u32 LE | payload`.
//! flags bit 0: blob type (data/tree); bit 7: take raw_len as is (may exceed `MAX_BLOB_SIZE`),
//! otherwise raw_len is cut to 20 bits so most inputs exercise real decompression. compression:
//! bit 0 (none/zstd).
//!
//! Random bytes never authenticate, so the payload is also sealed with the fixed key and opened
//! again: `open_blob` must then agree exactly with `decompress` on the plain payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::compress::{self, Compression, MAX_BLOB_SIZE};
use sophon::crypto::SealKey;
use sophon::format::pack::PackEntry;
use sophon::id::{BlobId, BlobType};

fn key() -> &'static SealKey {
    static KEY: std::sync::OnceLock<SealKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SealKey::new([7; 32]))
}

fn what() -> String {
    "fuzz blob".to_string()
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 6 {
        return;
    }
    let flags = data[0];
    let blob_type = if flags & 1 == 0 { BlobType::Data } else { BlobType::Tree };
    let compression = if data[1] & 1 == 0 { Compression::None } else { Compression::Zstd };
    let declared = u32::from_le_bytes(data[2..6].try_into().unwrap());
    let raw_len = if flags & 0x80 != 0 { declared } else { declared & 0xF_FFFF };
    let payload = &data[6..];

    // decompress on its own.
    let direct = compress::decompress(compression, payload.to_vec(), raw_len as usize, &what);
    if let Ok(out) = &direct {
        assert_eq!(out.len(), raw_len as usize);
        assert!(out.len() <= MAX_BLOB_SIZE);
        if compression == Compression::None {
            assert_eq!(out.as_slice(), payload);
        }
    }

    let entry = PackEntry {
        blob_type,
        compression,
        id: BlobId([flags; 32]),
        offset: 9,
        sealed_len: (payload.len() + sophon::crypto::SEAL_OVERHEAD) as u32,
        raw_len,
    };

    // The payload as stored: almost never authentic.
    let _ = sophon::pack::open_blob(key(), &entry, payload.to_vec(), &what);

    // The payload sealed as a writer would: open_blob must agree with decompress.
    let sealed = key().seal(payload, &entry.blob_ad()).expect("sealing works");
    let opened = sophon::pack::open_blob(key(), &entry, sealed.clone(), &what);
    match (&opened, &direct) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!(
            "open_blob and decompress disagree: {:?} vs {:?}",
            opened.as_ref().map(|v| v.len()),
            direct.as_ref().map(|v| v.len())
        ),
    }

    // The seal binds type, compression, id and size: any change fails authentication.
    let mut other = entry;
    other.raw_len ^= 1;
    assert!(sophon::pack::open_blob(key(), &other, sealed, &what).is_err());

    // The writer's side: whatever Compressor picks must decompress back to the input.
    let mut c = compressor().lock().unwrap();
    let (kind, stored) = c.compress(payload.to_vec());
    let back = compress::decompress(kind, stored, payload.len(), &what).expect("compressed blob decompresses");
    assert_eq!(back, payload);
});

fn compressor() -> &'static std::sync::Mutex<compress::Compressor> {
    static C: std::sync::OnceLock<std::sync::Mutex<compress::Compressor>> = std::sync::OnceLock::new();
    C.get_or_init(|| std::sync::Mutex::new(compress::Compressor::new(3).unwrap()))
}
