//! Index segments: `IndexSegment::decode` on hostile plaintext, and decode(encode(x)) == x.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::format::index::IndexSegment;

fuzz_target!(|data: &[u8]| {
    if let Ok(seg) = IndexSegment::decode(data, "fuzz") {
        let enc = seg.encode();
        // The format has one encoding per value, so a segment that parses re-encodes to its input.
        assert_eq!(enc, data, "index segment re-encodes to different bytes");
        let back = IndexSegment::decode(&enc, "fuzz re-encoded").expect("re-encoded index segment must decode");
        assert_eq!(back, seg);
        let _ = seg.packs.iter().map(|p| p.blob_bytes()).sum::<u64>();
    }
});
