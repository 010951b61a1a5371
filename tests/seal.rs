//! The sealed-export envelope (`export::seal`, `format-spec/export-seal.md`): every vector in
//! `format-spec/vectors/export-seal/manifest.json` with both readers; round trips under random
//! lengths, write sizes, read sizes and seeks; and every way of damaging a sealed file: each byte
//! flipped, each length cut, segments dropped, swapped and repeated, a wrong passphrase.

mod common;

use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use common::Jittery;
use proptest::prelude::*;
use serde_json::Value;
use sophon::crypto::{argon2id, random_array, Argon2Params};
use sophon::export::seal::{
    error_from_io, is_sealed, sealed_len, verify_all, Kdf, SealReader, SealWriter, SealedFile, DEFAULT_SEGMENT_SIZE,
    HEADER_LEN, TAG_LEN,
};
use sophon::Error;

const PASS: &[u8] = b"correct horse battery staple";
/// Cheap enough to run thousands of times; never for real data.
const CHEAP: Argon2Params = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
const SALT: [u8; 32] = [0x42; 32];
const PREFIX: [u8; 7] = [1, 2, 3, 4, 5, 6, 7];
const WRONG: &str = "wrong passphrase or damaged first segment";
const TRUNCATED: &str = "truncated: the final segment is missing";

fn cheap() -> Kdf {
    Kdf::Argon2id(CHEAP)
}

/// Deterministic bytes that differ from segment to segment (so a moved segment is a different one).
fn data(len: usize, seed: u64) -> Vec<u8> {
    common::pseudo_random(len, seed)
}

fn seal(plain: &[u8], segment_size: u32, write_size: usize) -> Vec<u8> {
    let mut w = SealWriter::with_params(Vec::new(), PASS, cheap(), SALT, PREFIX, segment_size).unwrap();
    for c in plain.chunks(write_size.max(1)) {
        w.write_all(c).unwrap();
    }
    w.finish().unwrap()
}

fn key_for_fixed_salt() -> [u8; 32] {
    *argon2id(PASS, &SALT, CHEAP).unwrap()
}

/// Everything the stream reader hands out, and how it ended.
fn stream(bytes: &[u8], pass: &[u8]) -> (Vec<u8>, Result<(), Error>) {
    let mut out = Vec::new();
    let r = SealReader::new(bytes, pass).and_then(|mut r| {
        r.read_to_end(&mut out).map_err(error_from_io)?;
        assert_eq!(r.plaintext_len(), out.len() as u64);
        Ok(())
    });
    (out, r)
}

fn stream_key(bytes: &[u8], key: &[u8; 32]) -> (Vec<u8>, Result<(), Error>) {
    let mut out = Vec::new();
    let r =
        SealReader::with_key(bytes, key).and_then(|mut r| r.read_to_end(&mut out).map(|_| ()).map_err(error_from_io));
    (out, r)
}

fn file(bytes: &[u8], pass: &[u8]) -> Result<Vec<u8>, Error> {
    let mut f = SealedFile::open(Cursor::new(bytes), pass)?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).map_err(error_from_io)?;
    assert_eq!(f.plaintext_len(), out.len() as u64);
    Ok(out)
}

fn file_key(bytes: &[u8], key: &[u8; 32]) -> Result<Vec<u8>, Error> {
    let mut f = SealedFile::open_with_key(Cursor::new(bytes), key)?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).map_err(error_from_io)?;
    Ok(out)
}

fn variant(e: &Error) -> &'static str {
    match e {
        Error::Malformed { .. } => "Malformed",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::Authentication { .. } => "Authentication",
        Error::Io { .. } => "Io",
        Error::Invalid(_) => "Invalid",
        _ => "other",
    }
}

/// The stream reader handed out only whole, authenticated segments before failing: a prefix of the
/// plaintext that ends on a segment boundary.
fn assert_clean_prefix(got: &[u8], plain: &[u8], segment_size: usize, what: &str) {
    assert!(
        got.len().is_multiple_of(segment_size) && got.len() <= plain.len(),
        "{what}: {} bytes handed out",
        got.len()
    );
    assert_eq!(got, &plain[..got.len()], "{what}: plaintext handed out differs");
}

// ------------------------------------------------------------------------------------------------
// Vectors

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors/export-seal")
}

#[test]
fn every_vector_gets_its_expected_outcome_from_both_readers() {
    let dir = vectors_dir();
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let vectors = manifest["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 30);
    // The keys the passphrase derives, so the KDF can be checked apart from the segments.
    let salt = hex::decode(manifest["salt"].as_str().unwrap()).unwrap();
    let vector_pass = manifest["passphrase"].as_str().unwrap().as_bytes();
    let argon_key = *argon2id(vector_pass, &salt, CHEAP).unwrap();
    assert_eq!(hex::encode(argon_key), manifest["keys"]["argon2id"].as_str().unwrap());
    let mut pbkdf2_key = [0u8; 32];
    let iterations = std::num::NonZeroU32::new(100_000).unwrap();
    ring::pbkdf2::derive(ring::pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, vector_pass, &mut pbkdf2_key);
    assert_eq!(hex::encode(pbkdf2_key), manifest["keys"]["pbkdf2"].as_str().unwrap());
    let (mut oks, mut rejects) = (0, 0);
    for v in vectors {
        let name = v["file"].as_str().unwrap();
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let pass = v["passphrase"].as_str().unwrap().as_bytes();
        let (streamed, stream_result) = stream(&bytes, pass);
        let filed = file(&bytes, pass);
        let verified = verify_all(&bytes[..], pass);
        match v["expect"].as_str().unwrap() {
            "ok" => {
                oks += 1;
                let plain = std::fs::read(dir.join(v["plaintext"].as_str().unwrap())).unwrap();
                assert_eq!(plain.len() as u64, v["plaintext_len"].as_u64().unwrap(), "{name}");
                let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &plain));
                assert_eq!(sha, v["plaintext_sha256"].as_str().unwrap(), "{name}");
                stream_result.unwrap_or_else(|e| panic!("{name}: stream reader: {e}"));
                assert_eq!(streamed, plain, "{name}: stream reader");
                assert_eq!(filed.unwrap_or_else(|e| panic!("{name}: random-access reader: {e}")), plain, "{name}");
                assert_eq!(verified.unwrap(), plain.len() as u64, "{name}");
                let key = if bytes[9] == 2 { &pbkdf2_key } else { &argon_key };
                assert_eq!(stream_key(&bytes, key).0, plain, "{name}: under the manifest's key");
                assert_eq!(file_key(&bytes, key).unwrap(), plain, "{name}: under the manifest's key");
                assert!(is_sealed(&bytes), "{name}");
            }
            "reject" => {
                rejects += 1;
                let kind = v["error"].as_str().unwrap();
                let message = v["message"].as_str().unwrap();
                for (reader, result) in [
                    ("stream reader", stream_result.map(|_| ())),
                    ("random-access reader", filed.map(|_| ())),
                    ("verify_all", verified.map(|_| ())),
                ] {
                    let e = result.expect_err(&format!("{name}: {reader} accepted it"));
                    assert_eq!(variant(&e), kind, "{name}: {reader}: {e}");
                    assert!(e.to_string().contains(message), "{name}: {reader}: {e:?} lacks {message:?}");
                    assert_eq!(e.is_damage(), kind != "UnsupportedVersion", "{name}: {reader}");
                }
                // Only whole authenticated segments before the failure.
                let segment = manifest["segment_size"].as_u64().unwrap() as usize;
                assert!(streamed.len().is_multiple_of(segment), "{name}: {} bytes handed out", streamed.len());
            }
            other => panic!("{name}: unknown expectation {other}"),
        }
    }
    assert!(oks >= 6 && rejects >= 25, "{oks} ok, {rejects} reject");
}

#[test]
fn vectors_stay_small() {
    let mut total = 0;
    let mut stack = vec![vectors_dir()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                total += e.metadata().unwrap().len();
            }
        }
    }
    assert!(total < 100 * 1024, "{total} bytes");
}

// ------------------------------------------------------------------------------------------------
// Round trips

fn plain_len() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..200 * 1024, (0usize..=200).prop_map(|k| k * 1024), (1usize..=3).prop_map(|k| k * 65536)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_through_both_readers(
        len in plain_len(),
        seed in any::<u64>(),
        segment_size in prop_oneof![Just(1024u32), Just(1500u32), Just(4096u32), Just(DEFAULT_SEGMENT_SIZE)],
        write_sizes in prop::collection::vec(1usize..5000, 1..8),
        read_sizes in prop::collection::vec(1usize..9000, 1..8),
        seeks in prop::collection::vec((0u8..3, any::<u32>(), 0usize..5000), 0..12),
    ) {
        let plain = data(len, seed);
        let salt = random_array().unwrap();
        let prefix = random_array().unwrap();
        let mut w = SealWriter::with_params(Vec::new(), PASS, cheap(), salt, prefix, segment_size).unwrap();
        let mut rest = &plain[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = write_sizes[i % write_sizes.len()].min(rest.len());
            w.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(w.plaintext_len(), len as u64);
        let sealed = w.finish().unwrap();
        prop_assert_eq!(sealed.len() as u64, sealed_len(len as u64, segment_size).unwrap());
        prop_assert!(is_sealed(&sealed));

        // Sequentially, through a pipe-like reader.
        let mut r = SealReader::new(Jittery { data: &sealed, sizes: read_sizes.clone(), i: 0 }, PASS).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; 9000];
        let mut j = 0;
        loop {
            let want = read_sizes[j % read_sizes.len()];
            j += 1;
            let n = r.read(&mut buf[..want]).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        prop_assert!(out == plain, "stream reader output differs");
        prop_assert_eq!(r.read(&mut buf).unwrap(), 0);
        prop_assert_eq!(verify_all(&sealed[..], PASS).unwrap(), len as u64);

        // Random access.
        let mut f = SealedFile::open(Cursor::new(&sealed), PASS).unwrap();
        prop_assert_eq!(f.plaintext_len(), len as u64);
        let mut all = Vec::new();
        f.read_to_end(&mut all).unwrap();
        prop_assert!(all == plain, "random-access reader output differs");
        for (how, at, n) in seeks {
            let target = if len == 0 { at as u64 % 16 } else { at as u64 % (len as u64 + 16) };
            let pos = match how {
                0 => f.seek(SeekFrom::Start(target)).unwrap(),
                1 => f.seek(SeekFrom::End(target as i64 - len as i64)).unwrap(),
                _ => {
                    let cur = f.stream_position().unwrap();
                    f.seek(SeekFrom::Current(target as i64 - cur as i64)).unwrap()
                }
            };
            prop_assert_eq!(pos, target);
            let mut got = vec![0u8; n];
            let mut filled = 0;
            while filled < n {
                let k = f.read(&mut got[filled..]).unwrap();
                if k == 0 {
                    break;
                }
                filled += k;
            }
            let start = (target as usize).min(len);
            let end = (start + n).min(len);
            prop_assert!(got[..filled] == plain[start..end], "read of {} at {} differs", n, target);
            prop_assert_eq!(f.stream_position().unwrap(), target + filled as u64);
        }
        let back = -(f.stream_position().unwrap() as i64) - 1;
        prop_assert!(f.seek(SeekFrom::Current(back)).is_err());
    }
}

#[test]
fn exact_multiples_end_with_a_full_final_segment() {
    for k in 0..4usize {
        let plain = data(k * 1024, k as u64);
        let sealed = seal(&plain, 1024, 100);
        let segments = k.max(1);
        assert_eq!(sealed.len(), HEADER_LEN + k * 1024 + segments * TAG_LEN, "{k}");
        assert_eq!(stream(&sealed, PASS).1.map(|_| ()).ok(), Some(()));
        assert_eq!(file(&sealed, PASS).unwrap(), plain);
    }
}

#[test]
fn pbkdf2_default_round_trips() {
    assert_eq!(Kdf::pbkdf2_default(), Kdf::Pbkdf2 { iterations: 600_000 });
    assert_eq!(Kdf::default_argon2id(), Kdf::Argon2id(Argon2Params::DEFAULT));
    let plain = data(3000, 9);
    let mut w = SealWriter::new(Vec::new(), PASS, Kdf::pbkdf2_default()).unwrap();
    w.write_all(&plain).unwrap();
    let sealed = w.finish().unwrap();
    assert_eq!(sealed[9], 2);
    assert_eq!(&sealed[10..14], &600_000u32.to_le_bytes());
    let mut f = SealedFile::open(Cursor::new(&sealed), PASS).unwrap();
    let mut out = Vec::new();
    f.read_to_end(&mut out).unwrap();
    assert_eq!(out, plain);
}

#[test]
fn overhead_at_the_default_segment_size_is_under_one_percent() {
    let len = 10 * 1024 * 1024;
    let mut w = SealWriter::new(Vec::with_capacity(len + 8192), PASS, cheap()).unwrap();
    let block = data(1 << 20, 3);
    for _ in 0..10 {
        w.write_all(&block).unwrap();
    }
    let sealed = w.finish().unwrap();
    let overhead = sealed.len() - len;
    assert_eq!(overhead, HEADER_LEN + 160 * TAG_LEN);
    assert!((overhead as f64) / (len as f64) < 0.01, "{overhead} bytes");
    assert_eq!(verify_all(&sealed[..], PASS).unwrap(), len as u64);
}

#[test]
fn new_uses_a_fresh_salt_and_nonce_prefix() {
    let a = SealWriter::new(Vec::new(), PASS, cheap()).unwrap().finish().unwrap();
    let b = SealWriter::new(Vec::new(), PASS, cheap()).unwrap().finish().unwrap();
    assert_ne!(a[22..54], b[22..54]);
    assert_ne!(a[54..61], b[54..61]);
    assert_eq!(&a[61..65], &DEFAULT_SEGMENT_SIZE.to_le_bytes());
}

#[test]
fn writer_refuses_settings_no_reader_accepts() {
    let w = |kdf, seg| SealWriter::with_params(Vec::new(), PASS, kdf, SALT, PREFIX, seg).map(|_| ());
    assert!(matches!(w(cheap(), 1023), Err(Error::Invalid(_))));
    assert!(matches!(w(cheap(), 16 * 1024 * 1024 + 1), Err(Error::Invalid(_))));
    assert!(matches!(w(Kdf::Pbkdf2 { iterations: 1000 }, 1024), Err(Error::Invalid(_))));
    let huge = Argon2Params { memory_kib: Argon2Params::MAX_MEMORY_KIB + 1, ..CHEAP };
    assert!(matches!(w(Kdf::Argon2id(huge), 1024), Err(Error::Invalid(_))));
    assert!(matches!(SealWriter::new(Vec::new(), b"", cheap()), Err(Error::Invalid(_))));
}

// ------------------------------------------------------------------------------------------------
// Damage

/// Four segments of 1 KiB: three full ones and a short final one.
fn three_and_a_bit() -> (Vec<u8>, Vec<u8>) {
    let plain = data(3 * 1024 + 300, 77);
    let sealed = seal(&plain, 1024, 333);
    (plain, sealed)
}

#[test]
fn every_flipped_byte_is_detected_by_both_readers() {
    let (plain, sealed) = three_and_a_bit();
    let key = key_for_fixed_salt();
    for at in 0..sealed.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = sealed.clone();
            bad[at] ^= bit;
            // The header goes through key derivation as a reader would; segments use the derived key
            // (the same bytes are authenticated, without 13 000 Argon2id runs).
            let ((got, s), f) = if at < HEADER_LEN {
                (stream(&bad, PASS), file(&bad, PASS))
            } else {
                (stream_key(&bad, &key), file_key(&bad, &key))
            };
            let se = s.expect_err(&format!("stream reader accepted a flip at {at}"));
            let fe = f.expect_err(&format!("random-access reader accepted a flip at {at}"));
            assert!(se.is_damage() || matches!(se, Error::UnsupportedVersion { .. }), "{at}: {se}");
            assert!(fe.is_damage() || matches!(fe, Error::UnsupportedVersion { .. }), "{at}: {fe}");
            assert_clean_prefix(&got, &plain, 1024, &format!("flip at {at}"));
            if at >= HEADER_LEN {
                let segment = (at - HEADER_LEN) / (1024 + TAG_LEN);
                assert_eq!(got.len(), segment * 1024, "flip at {at}: the segments before it are delivered");
                let msg = se.to_string();
                if segment == 0 {
                    assert!(msg.contains(WRONG), "{at}: {msg}");
                } else {
                    assert!(!msg.contains("wrong passphrase"), "{at}: {msg}");
                    assert!(msg.contains(&format!("segment {segment} (byte offset")), "{at}: {msg}");
                }
            }
        }
    }
}

#[test]
fn every_truncation_is_detected_by_both_readers() {
    let (plain, sealed) = three_and_a_bit();
    let key = key_for_fixed_salt();
    for len in 0..sealed.len() {
        let cut = &sealed[..len];
        let (got, s) = if len >= HEADER_LEN { stream_key(cut, &key) } else { stream(cut, PASS) };
        let f = if len >= HEADER_LEN { file_key(cut, &key) } else { file(cut, PASS) };
        let se = s.expect_err(&format!("stream reader accepted {len} bytes"));
        let fe = f.expect_err(&format!("random-access reader accepted {len} bytes"));
        assert!(se.is_damage() && fe.is_damage(), "{len}: {se} / {fe}");
        assert_clean_prefix(&got, &plain, 1024, &format!("cut at {len}"));
        // A cut on a segment boundary: both readers say exactly what happened.
        if len >= HEADER_LEN && (len - HEADER_LEN).is_multiple_of(1024 + TAG_LEN) {
            assert!(se.to_string().contains(TRUNCATED), "{len}: {se}");
            assert!(fe.to_string().contains(TRUNCATED), "{len}: {fe}");
        }
    }
    // The same through the passphrase path, at each boundary and a few odd lengths.
    for len in [HEADER_LEN, HEADER_LEN + 1, HEADER_LEN + 1040, HEADER_LEN + 2080, HEADER_LEN + 3120, sealed.len() - 1] {
        let e = verify_all(&sealed[..len], PASS).unwrap_err();
        assert!(e.is_damage(), "{len}: {e}");
    }
}

fn segments(sealed: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let header = sealed[..HEADER_LEN].to_vec();
    let segs = sealed[HEADER_LEN..].chunks(1024 + TAG_LEN).map(|c| c.to_vec()).collect();
    (header, segs)
}

fn assemble(header: &[u8], segs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = header.to_vec();
    for s in segs {
        out.extend_from_slice(s);
    }
    out
}

fn assert_rejected(bytes: &[u8], key: &[u8; 32], plain: &[u8], what: &str) {
    let (got, s) = stream_key(bytes, key);
    let se = s.expect_err(&format!("{what}: stream reader accepted it"));
    let fe = file_key(bytes, key).expect_err(&format!("{what}: random-access reader accepted it"));
    assert!(se.is_damage() && fe.is_damage(), "{what}: {se} / {fe}");
    assert_clean_prefix(&got, plain, 1024, what);
}

#[test]
fn dropped_swapped_and_repeated_segments_are_detected() {
    let (plain, sealed) = three_and_a_bit();
    let key = key_for_fixed_salt();
    let (header, segs) = segments(&sealed);
    assert_eq!(segs.len(), 4);
    for i in 0..segs.len() {
        let mut dropped = segs.clone();
        dropped.remove(i);
        assert_rejected(&assemble(&header, &dropped), &key, &plain, &format!("segment {i} dropped"));
        for j in 0..segs.len() {
            let mut dup = segs.clone();
            dup.insert(j, segs[i].clone());
            assert_rejected(&assemble(&header, &dup), &key, &plain, &format!("segment {i} repeated at {j}"));
            if i < j {
                let mut swapped = segs.clone();
                swapped.swap(i, j);
                assert_rejected(&assemble(&header, &swapped), &key, &plain, &format!("segments {i} and {j} swapped"));
            }
        }
    }
    // Two sealed streams under the same header and key, concatenated: still one stream's worth.
    let mut twice = sealed.clone();
    twice.extend_from_slice(&sealed[HEADER_LEN..]);
    assert_rejected(&twice, &key, &plain, "the segments appended again");
}

#[test]
fn trailing_bytes_are_an_error_not_ignored() {
    let key = key_for_fixed_salt();
    for len in [1024usize, 2048, 1000, 0] {
        let plain = data(len, 5);
        let sealed = seal(&plain, 1024, 4096);
        for extra in [1usize, 15, 16, 17, 500, 1040, 1041, 3000] {
            let mut bad = sealed.clone();
            bad.extend(std::iter::repeat_n(0xa5u8, extra));
            assert_rejected(&bad, &key, &plain, &format!("{len} bytes + {extra} appended"));
        }
    }
    // After a full final segment, both readers name the problem.
    let plain = data(2048, 6);
    let mut bad = seal(&plain, 1024, 4096);
    bad.extend_from_slice(&[0u8; 100]);
    let (_, s) = stream_key(&bad, &key);
    assert!(s.unwrap_err().to_string().contains("after the final segment"));
    assert!(file_key(&bad, &key).unwrap_err().to_string().contains("after the final segment"));
}

#[test]
fn wrong_passphrase_is_reported_as_such_by_every_reader() {
    let (_, sealed) = three_and_a_bit();
    let check = |e: Error| {
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        assert!(e.to_string().contains(WRONG), "{e}");
    };
    check(SealReader::new(&sealed[..], b"not it").unwrap_err());
    check(SealedFile::open(Cursor::new(&sealed), b"not it").unwrap_err());
    check(verify_all(&sealed[..], b"not it").unwrap_err());
    let mut w =
        SealWriter::with_params(Vec::new(), PASS, Kdf::Pbkdf2 { iterations: 100_000 }, SALT, PREFIX, 1024).unwrap();
    w.write_all(b"x").unwrap();
    let pb = w.finish().unwrap();
    check(SealedFile::open(Cursor::new(&pb), b"not it").unwrap_err());
    assert_eq!(file(&pb, PASS).unwrap(), b"x");
}

#[test]
fn a_writer_dropped_without_finish_leaves_an_unreadable_file() {
    let key = key_for_fixed_salt();
    for len in [0usize, 10, 1024, 1025, 5000] {
        let mut out = Vec::new();
        {
            let mut w = SealWriter::with_params(&mut out, PASS, cheap(), SALT, PREFIX, 1024).unwrap();
            w.write_all(&data(len, 1)).unwrap();
            w.flush().unwrap();
        }
        let (_, s) = stream_key(&out, &key);
        let se = s.unwrap_err();
        assert!(se.to_string().contains("truncated"), "{len}: {se}");
        let fe = file_key(&out, &key).unwrap_err();
        assert!(fe.to_string().contains("truncated"), "{len}: {fe}");
    }
}

#[test]
fn a_failed_stream_reader_keeps_failing() {
    let (_, sealed) = three_and_a_bit();
    let cut = &sealed[..HEADER_LEN + 2 * 1040];
    let mut r = SealReader::new(cut, PASS).unwrap();
    let mut buf = vec![0u8; 100_000];
    let mut total = 0;
    let first = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("a truncated stream ended cleanly"),
            Ok(n) => total += n,
            Err(e) => break e,
        }
    };
    assert_eq!(total, 1024, "segment 1 cannot be told non-final, so it is held back");
    assert!(first.to_string().contains(TRUNCATED), "{first}");
    for _ in 0..3 {
        let again = r.read(&mut buf).unwrap_err();
        assert_eq!(again.to_string(), first.to_string());
    }
    assert!(matches!(error_from_io(first), Error::Malformed { .. }));
}

#[test]
fn the_magic_check() {
    let (_, sealed) = three_and_a_bit();
    assert!(is_sealed(&sealed[..8]));
    assert!(!is_sealed(&sealed[..7]));
    assert!(!is_sealed(b"PK\x03\x04 a zip"));
    assert!(!is_sealed(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]));
}
