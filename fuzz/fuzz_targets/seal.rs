//! The sealed-export envelope: `format::seal::SealHeader::decode` and `layout` on hostile bytes,
//! both readers (`SealReader`, `SealedFile`) on the input as a sealed file, and a round trip of the
//! input sealed by `SealWriter` then damaged once.
//!
//! The readers take a fixed pre-derived key (`with_key`, `open_with_key`): a KDF per input would
//! leave the fuzzer running Argon2id instead of the parsers. The header is still decoded with every
//! limit checked, and still bound as associated data. Random bytes never authenticate, so the
//! round trip is what takes the paths behind authentication (short final segments, lookahead,
//! diagnosis of truncation and trailing data).
#![no_main]

use std::io::{Cursor, Read, Seek, SeekFrom, Write};

use libfuzzer_sys::fuzz_target;
use sophon::crypto::Argon2Params;
use sophon::export::seal::{is_sealed, Kdf, SealHeader, SealReader, SealWriter, SealedFile, HEADER_LEN};
use sophon::format::seal::{layout, sealed_len, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, TAG_LEN};

const KEY: [u8; 32] = [7; 32];

/// The stream reader's plaintext, or `None` if it failed. Plaintext handed out before a failure
/// must be whole segments of what the writer sealed, which the round trip below checks.
fn stream(bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let ok = match SealReader::with_key(bytes, &KEY) {
        Ok(mut r) => {
            let ok = r.read_to_end(&mut out).is_ok();
            if ok {
                assert_eq!(r.plaintext_len(), out.len() as u64);
                // Finished means finished: no more bytes, no error.
                assert_eq!(r.read(&mut [0u8; 16]).expect("read after the end"), 0);
            } else {
                // A failed reader keeps failing.
                assert!(r.read(&mut [0u8; 16]).is_err());
            }
            ok
        }
        Err(_) => false,
    };
    (out, ok)
}

fn random_access(bytes: &[u8], probes: &[u8]) -> Option<Vec<u8>> {
    let mut f = SealedFile::open_with_key(Cursor::new(bytes), &KEY).ok()?;
    let len = f.plaintext_len();
    // Random seeks and reads first (they may hit a damaged middle segment), then everything.
    let mut probed = Vec::new();
    for p in probes.chunks(3).take(8) {
        let at = u16::from_le_bytes([p[0], *p.get(1).unwrap_or(&0)]) as u64;
        let n = *p.get(2).unwrap_or(&1) as usize * 17;
        if f.seek(SeekFrom::Start(at)).ok()? != at {
            panic!("seek landed elsewhere");
        }
        let mut buf = vec![0u8; n];
        let mut filled = 0;
        while filled < n {
            match f.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(k) => filled += k,
                Err(_) => return None,
            }
        }
        assert_eq!(filled as u64, (n as u64).min(len.saturating_sub(at)));
        probed.push((at as usize, buf[..filled].to_vec()));
    }
    f.seek(SeekFrom::Start(0)).ok()?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).ok()?;
    assert_eq!(out.len() as u64, len);
    for (at, got) in probed {
        match out.get(at..at + got.len()) {
            Some(whole) => assert_eq!(whole, &got[..], "a random read disagrees with the whole"),
            None => assert!(got.is_empty(), "a read past the end returned data"),
        }
    }
    Some(out)
}

fn check_both(bytes: &[u8], probes: &[u8]) -> Option<Vec<u8>> {
    let (streamed, stream_ok) = stream(bytes);
    let filed = random_access(bytes, probes);
    // The two readers find segments differently (lookahead vs. length arithmetic) but must agree.
    assert_eq!(stream_ok, filed.is_some(), "the readers disagree on whether the input is valid");
    if let Some(f) = &filed {
        assert_eq!(&streamed, f, "the readers disagree on the plaintext");
    }
    filed
}

fuzz_target!(|data: &[u8]| {
    // The header decoder on the input's first 65 bytes and on all of it.
    let head = &data[..data.len().min(HEADER_LEN)];
    if let Ok(h) = SealHeader::decode(head, "fuzz") {
        assert_eq!(&h.encode()[..], head, "an accepted header re-encodes to other bytes");
        assert!(is_sealed(data));
        assert!((MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&h.segment_size));
    }
    if SealHeader::decode(data, "fuzz").is_ok() {
        assert_eq!(data.len(), HEADER_LEN);
    }

    // The layout arithmetic on a hostile length and segment size.
    if data.len() >= 12 {
        let body = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let raw = u32::from_le_bytes(data[8..12].try_into().expect("4 bytes"));
        // Half the inputs in range, so the arithmetic past the range check is reached.
        let seg = if raw & 1 == 0 { MIN_SEGMENT_SIZE + raw % (MAX_SEGMENT_SIZE - MIN_SEGMENT_SIZE + 1) } else { raw };
        if let Ok(l) = layout(body, seg, "fuzz") {
            assert!(l.segments >= 1 && l.last_len >= TAG_LEN as u64 && l.last_len <= seg as u64 + TAG_LEN as u64);
            assert!((MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&seg));
            // Offsets are computed in u64 by the readers: the sums must fit.
            assert_eq!(l.offset(seg, l.segments - 1) as u128 + l.last_len as u128, HEADER_LEN as u128 + body as u128);
            assert_eq!(l.plaintext_len as u128 + l.segments as u128 * TAG_LEN as u128, body as u128);
        }
    }

    // Both readers on the input itself.
    let probes = data.get(..data.len().min(24)).unwrap_or_default();
    check_both(data, probes);

    // Round trip: seal the input, read it back, then damage it once.
    if data.len() < 4 {
        return;
    }
    let segment_size = MIN_SEGMENT_SIZE + u16::from_le_bytes([data[0], data[1]]) as u32 % 3072;
    let write_size = data[2] as usize + 1;
    let plain = &data[4..];
    let header = SealHeader {
        kdf: Kdf::Argon2id(Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }),
        salt: [data[3]; 32],
        nonce_prefix: [data[2]; 7],
        segment_size,
    };
    let mut w = SealWriter::with_key(Vec::new(), header, &KEY).expect("valid settings");
    for c in plain.chunks(write_size) {
        w.write_all(c).expect("writing to a Vec");
    }
    let sealed = w.finish().expect("finishing into a Vec");
    assert_eq!(Some(sealed.len() as u64), sealed_len(plain.len() as u64, segment_size));
    assert_eq!(check_both(&sealed, probes).as_deref(), Some(plain), "round trip");

    let pick = |salt: usize| (data[3] as usize * 257 + plain.len() * 31 + salt) % sealed.len();
    let mut flipped = sealed.clone();
    flipped[pick(0)] ^= 1 << (data[0] % 8);
    assert!(check_both(&flipped, probes).is_none(), "a flipped bit went unnoticed");
    let (partial, _) = stream(&flipped);
    let seg = segment_size as usize;
    assert!(partial.len().is_multiple_of(seg) && plain.starts_with(&partial), "unauthenticated plaintext handed out");

    assert!(check_both(&sealed[..pick(1)], probes).is_none(), "a truncation went unnoticed");
    let mut longer = sealed.clone();
    longer.extend_from_slice(&data[..data.len().min(1 + data[1] as usize)]);
    assert!(check_both(&longer, probes).is_none(), "appended bytes went unnoticed");
});
