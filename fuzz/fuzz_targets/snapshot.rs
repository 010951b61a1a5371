//! Snapshots: `Snapshot::decode` on hostile JSON, and decode(encode(x)) == x.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::format::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = Snapshot::decode(data, "fuzz") {
        let _ = snap.time();
        let enc = snap.encode().expect("an accepted snapshot encodes");
        let back = Snapshot::decode(&enc, "fuzz re-encoded").expect("re-encoded snapshot must decode");
        assert_eq!(back, snap);
        assert_eq!(back.encode().unwrap(), enc);
    }
});
