//! Pack framing: `decode_trailer` and `decode_header` on hostile plaintext, and `parse_pack` on a
//! whole hostile pack file.
//!
//! Input layout for the plaintext decoders: `pack_len u64 LE (8) | header_len u32 LE (4) | rest`.
//! `rest[..4]` goes to `decode_trailer` and all of `rest` to `decode_header`. The whole input also
//! goes to `parse_pack` with the fixed key `[7; 32]` that the seed packs are sealed with, so the
//! seeds parse and their blobs open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sophon::crypto::SealKey;
use sophon::format::pack::{self, PREFIX_LEN, TRAILER_LEN};

fn key() -> &'static SealKey {
    static KEY: std::sync::OnceLock<SealKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| SealKey::new([7; 32]))
}

fuzz_target!(|data: &[u8]| {
    if data.len() >= 12 {
        let pack_len = u64::from_le_bytes(data[..8].try_into().unwrap());
        let header_len = u32::from_le_bytes(data[8..12].try_into().unwrap());
        let rest = &data[12..];

        let _ = pack::decode_trailer(&rest[..rest.len().min(TRAILER_LEN)], pack_len, "fuzz");
        if let Ok(len) = pack::decode_trailer(&data[8..12], pack_len, "fuzz") {
            assert_eq!(len, header_len);
            assert!(len as u64 + (TRAILER_LEN + PREFIX_LEN) as u64 <= pack_len);
        }

        if let Ok(entries) = pack::decode_header(rest, pack_len, header_len, "fuzz") {
            // A header that parses is exactly its entries' encoding.
            assert_eq!(pack::encode_header(&entries), rest);
            let mut expected = PREFIX_LEN as u64;
            for e in &entries {
                assert_eq!(e.offset as u64, expected);
                expected += e.sealed_len as u64;
            }
            assert_eq!(expected + header_len as u64 + TRAILER_LEN as u64, pack_len);
        }
    }

    if let Ok(entries) = sophon::pack::parse_pack(key(), None, data) {
        // Every entry parse_pack accepts must lie inside the pack: slicing it must not panic.
        let blob_end = data.len() - TRAILER_LEN;
        for e in &entries {
            let start = e.offset as usize;
            let end = start + e.sealed_len as usize;
            assert!(start >= PREFIX_LEN && end <= blob_end, "entry {e:?} outside the blob area");
            let _ = sophon::pack::open_blob(key(), e, data[start..end].to_vec(), &|| "fuzz blob".into());
        }
    }
});
