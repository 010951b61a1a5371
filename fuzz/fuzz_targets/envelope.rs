//! The envelope around index segments, snapshots and locks: `envelope::parse` for every
//! `ObjectKind`, then the rest of `Repository::open_object` (open under a fixed key, bounded
//! `decompress_object`) and the kind's decoder on what comes out.
//!
//! Random bytes never authenticate, so the body is also treated as if it had been opened: that is
//! what reaches `decompress_object` and the decoders once a (compromised or buggy) writer has
//! sealed it. The seeds are sealed with the fixed key `[7; 32]`, so they take the real path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::compress;
use sophon::crypto::SealKey;
use sophon::format::config::Lock;
use sophon::format::envelope::{self, ObjectKind, PREFIX_LEN};
use sophon::format::index::IndexSegment;
use sophon::format::snapshot::Snapshot;

/// Small, so a decompression bomb is cut off fast.
const LIMIT: usize = 1 << 20;

fn key() -> &'static SealKey {
    static KEY: std::sync::OnceLock<SealKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SealKey::new([7; 32]))
}

fn what() -> String {
    "fuzz object".to_string()
}

fn decode(kind: ObjectKind, compressed: bool, payload: &[u8]) {
    let plain = if compressed {
        match compress::decompress_object(payload, LIMIT, &what) {
            Ok(p) => {
                assert!(p.len() <= LIMIT, "decompress_object returned more than its limit");
                p
            }
            Err(_) => return,
        }
    } else {
        payload.to_vec()
    };
    match kind {
        ObjectKind::Index => {
            let _ = IndexSegment::decode(&plain, "fuzz index");
        }
        ObjectKind::Snapshot => {
            let _ = Snapshot::decode(&plain, "fuzz snapshot");
        }
        ObjectKind::Lock => {
            let _ = Lock::decode(&plain, "fuzz lock");
        }
        ObjectKind::PruneRecord => {
            let _ = sophon::format::prune::PruneRecord::decode(&plain, "fuzz prune record");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut matched = 0;
    for kind in [ObjectKind::Index, ObjectKind::Snapshot, ObjectKind::Lock, ObjectKind::PruneRecord] {
        let Ok((prefix, compressed, start)) = envelope::parse(data, kind, "fuzz") else {
            continue;
        };
        matched += 1;
        assert_eq!(start, PREFIX_LEN);
        assert_eq!(prefix, envelope::prefix(kind, compressed));
        assert_eq!(&data[..start], &prefix[..]);
        let body = &data[start..];
        if let Ok(plain) = key().open(body, &prefix, &what) {
            decode(kind, compressed, &plain);
        }
        decode(kind, compressed, body);
    }
    // The kind byte names one kind, so at most one parse succeeds.
    assert!(matched <= 1);

    // decompress_object on the raw input too, with the small limit and with an even smaller one.
    for limit in [LIMIT, 64] {
        if let Ok(out) = compress::decompress_object(data, limit, &what) {
            assert!(out.len() <= limit);
        }
    }
});
