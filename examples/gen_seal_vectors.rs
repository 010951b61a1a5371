//! Generate the sealed-export test vectors under `format-spec/vectors/export-seal/`
//! (`format-spec/export-seal.md`, section "Test vectors").
//!
//! ```text
//! cargo run --example gen_seal_vectors [OUT_DIR]      # default OUT_DIR: format-spec/vectors/export-seal
//! ```
//!
//! Everything is deterministic (fixed passphrase, salt, nonce prefix, plaintexts), so re-running
//! reproduces the same bytes. The `ok` vectors are built independently of the library: the header
//! by hand, the key with the `argon2` crate and `ring::pbkdf2`, the segments with the `aes-gcm`
//! crate; then the generator checks that `SealWriter` writes exactly the same bytes for the layouts
//! a v1 writer produces. Reject vectors are `ok` vectors with bytes changed, cut, moved or added.
//! `tests/seal.rs` checks every vector with both readers; it never regenerates them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use sophon::crypto::Argon2Params;
use sophon::export::seal::{Kdf, SealWriter};

const PASSPHRASE: &str = "seal-vector-passphrase";
const WRONG_PASSPHRASE: &str = "not-the-vector-passphrase";
const SEGMENT: usize = 1024;
/// Deliberately tiny, so the vectors open in milliseconds. Never use these for real data.
const ARGON2: Argon2Params = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
/// The decoder's minimum.
const PBKDF2_ITERATIONS: u32 = 100_000;
const NONCE_PREFIX: [u8; 7] = [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6];
const FULL: usize = SEGMENT + 16;
const HEADER: usize = 65;

fn salt() -> [u8; 32] {
    std::array::from_fn(|i| 0x10 + i as u8)
}

/// Readable, deterministic text: each line names its own offset.
fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    while out.len() < len {
        let line = format!("sealed export test vector, offset {:06}: the quick brown fox jumps\n", out.len());
        out.extend_from_slice(line.as_bytes());
    }
    out.truncate(len);
    out
}

/// The header, byte by byte as the spec's table lists it.
fn header(kdf: Kdf, segment_size: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(b"SOPHSEAL");
    h.push(1);
    match kdf {
        Kdf::Argon2id(p) => {
            h.push(1);
            for v in [p.memory_kib, p.iterations, p.parallelism] {
                h.extend_from_slice(&v.to_le_bytes());
            }
        }
        Kdf::Pbkdf2 { iterations } => {
            h.push(2);
            h.extend_from_slice(&iterations.to_le_bytes());
            h.extend_from_slice(&[0; 8]);
        }
    }
    h.extend_from_slice(&salt());
    h.extend_from_slice(&NONCE_PREFIX);
    h.extend_from_slice(&segment_size.to_le_bytes());
    assert_eq!(h.len(), HEADER);
    h
}

fn key(kdf: Kdf, passphrase: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    match kdf {
        Kdf::Argon2id(p) => {
            let params = argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32)).expect("params");
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_into(passphrase.as_bytes(), &salt(), &mut out)
                .expect("argon2id");
        }
        Kdf::Pbkdf2 { iterations } => ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations).expect("iterations"),
            &salt(),
            passphrase.as_bytes(),
            &mut out,
        ),
    }
    out
}

/// Seal `segments` (their plaintexts, in order; the last is the final one) with the `aes-gcm` crate.
fn seal(kdf: Kdf, segment_size: u32, segments: &[&[u8]]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let h = header(kdf, segment_size);
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&key(kdf, PASSPHRASE)).expect("32-byte key");
    let mut out = h.clone();
    for (i, seg) in segments.iter().enumerate() {
        let mut nonce = [0u8; 12];
        nonce[..7].copy_from_slice(&NONCE_PREFIX);
        nonce[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        nonce[11] = (i + 1 == segments.len()) as u8;
        let ct = cipher.encrypt(aes_gcm::Nonce::from_slice(&nonce), Payload { msg: seg, aad: &h }).expect("seal");
        out.extend_from_slice(&ct);
    }
    out
}

/// The v1 writer's layout: full segments, then a final one of 0..=segment size bytes (empty only
/// for an empty plaintext).
fn canonical(plain: &[u8], segment_size: usize) -> Vec<&[u8]> {
    if plain.is_empty() {
        vec![plain]
    } else {
        plain.chunks(segment_size).collect()
    }
}

/// `SealWriter` must produce the same bytes, whatever the write sizes.
fn check_writer(kdf: Kdf, segment_size: u32, plain: &[u8], expected: &[u8]) -> Result<()> {
    for chunk in [1usize, 7, 1000, 1024, 1025, 1 << 20] {
        let mut w =
            SealWriter::with_params(Vec::new(), PASSPHRASE.as_bytes(), kdf, salt(), NONCE_PREFIX, segment_size)?;
        for c in plain.chunks(chunk) {
            w.write_all(c)?;
        }
        let got = w.finish()?;
        ensure!(got == expected, "SealWriter differs from the independent sealing (write size {chunk})");
    }
    Ok(())
}

struct Out {
    dir: PathBuf,
    vectors: Vec<Value>,
    total: usize,
}

impl Out {
    fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        self.total += bytes.len();
        Ok(())
    }

    fn ok(&mut self, file: &str, sealed: &[u8], plain_file: &str, plain: &[u8], why: &str) -> Result<()> {
        self.write(file, sealed)?;
        self.vectors.push(json!({
            "file": file,
            "passphrase": PASSPHRASE,
            "expect": "ok",
            "plaintext": plain_file,
            "plaintext_len": plain.len(),
            "plaintext_sha256": hex::encode(ring::digest::digest(&ring::digest::SHA256, plain)),
            "why": why,
        }));
        Ok(())
    }

    /// A reject vector; `sealed` is `None` when it reuses an existing file (another passphrase).
    fn reject(
        &mut self,
        file: &str,
        sealed: Option<&[u8]>,
        passphrase: &str,
        error: &str,
        message: &str,
        why: &str,
    ) -> Result<()> {
        if let Some(bytes) = sealed {
            self.write(file, bytes)?;
        }
        self.vectors.push(json!({
            "file": file,
            "passphrase": passphrase,
            "expect": "reject",
            "error": error,
            "message": message,
            "why": why,
        }));
        Ok(())
    }
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at] ^= 0x01;
    b
}

fn with(bytes: &[u8], at: usize, new: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    b[at..at + new.len()].copy_from_slice(new);
    b
}

fn main() -> Result<()> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("format-spec").join("vectors").join("export-seal"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut out = Out { dir: dir.clone(), vectors: Vec::new(), total: 0 };
    let argon = Kdf::Argon2id(ARGON2);
    let pbkdf2 = Kdf::Pbkdf2 { iterations: PBKDF2_ITERATIONS };
    let seg = SEGMENT as u32;

    // ---- ok
    let empty: Vec<u8> = Vec::new();
    let small = b"hello, world\n".to_vec();
    let one = text(SEGMENT);
    let multi = text(3 * SEGMENT + 100);
    let two = text(2 * SEGMENT);
    let pb = text(SEGMENT + 476);
    for (name, p) in [
        ("plain/empty.bin", &empty),
        ("plain/small.txt", &small),
        ("plain/one-segment.txt", &one),
        ("plain/multi.txt", &multi),
        ("plain/two-segments.txt", &two),
        ("plain/pbkdf2.txt", &pb),
    ] {
        out.write(name, p)?;
    }

    let ok_empty = seal(argon, seg, &canonical(&empty, SEGMENT));
    check_writer(argon, seg, &empty, &ok_empty)?;
    ensure!(ok_empty.len() == HEADER + 16);
    out.ok(
        "ok-empty.seal",
        &ok_empty,
        "plain/empty.bin",
        &empty,
        "empty plaintext: the header and one empty final segment (its tag alone)",
    )?;

    let ok_small = seal(argon, seg, &canonical(&small, SEGMENT));
    check_writer(argon, seg, &small, &ok_small)?;
    out.ok("ok-small.seal", &ok_small, "plain/small.txt", &small, "13 bytes: one short final segment")?;

    let ok_one = seal(argon, seg, &canonical(&one, SEGMENT));
    check_writer(argon, seg, &one, &ok_one)?;
    ensure!(ok_one.len() == HEADER + FULL);
    out.ok(
        "ok-one-segment.seal",
        &ok_one,
        "plain/one-segment.txt",
        &one,
        "exactly one segment: a full final segment (what v1 writers write for a plaintext of exactly the segment size)",
    )?;

    let ok_multi = seal(argon, seg, &canonical(&multi, SEGMENT));
    check_writer(argon, seg, &multi, &ok_multi)?;
    ensure!(ok_multi.len() == HEADER + 3 * FULL + 116);
    out.ok(
        "ok-multi.seal",
        &ok_multi,
        "plain/multi.txt",
        &multi,
        "3172 bytes: three full segments and a 100-byte final segment",
    )?;

    let mut two_parts: Vec<&[u8]> = two.chunks(SEGMENT).collect();
    two_parts.push(&[]);
    let ok_empty_final = seal(argon, seg, &two_parts);
    out.ok("ok-empty-final.seal", &ok_empty_final, "plain/two-segments.txt", &two, "2048 bytes as two full segments and an empty final segment: v1 writers end with a full final segment instead, but the format allows both and readers MUST accept this")?;

    let ok_pbkdf2 = seal(pbkdf2, seg, &canonical(&pb, SEGMENT));
    check_writer(pbkdf2, seg, &pb, &ok_pbkdf2)?;
    out.ok("ok-pbkdf2.seal", &ok_pbkdf2, "plain/pbkdf2.txt", &pb, "PBKDF2-HMAC-SHA256 with 100000 iterations (the minimum a reader accepts), one full and one 476-byte final segment")?;

    let max_seg = 16 * 1024 * 1024;
    let ok_max = seal(argon, max_seg, &canonical(&small, max_seg as usize));
    check_writer(argon, max_seg, &small, &ok_max)?;
    out.ok("ok-max-segment-size.seal", &ok_max, "plain/small.txt", &small, "the largest segment size a reader accepts (16 MiB) with a 13-byte plaintext: readers allocate by what the file holds, not by what the header claims")?;

    // ---- reject: passphrase
    const WRONG: &str = "wrong passphrase or damaged first segment";
    out.reject(
        "ok-multi.seal",
        None,
        WRONG_PASSPHRASE,
        "Authentication",
        WRONG,
        "wrong passphrase (Argon2id): segment 0 does not open",
    )?;
    out.reject("ok-pbkdf2.seal", None, WRONG_PASSPHRASE, "Authentication", WRONG, "wrong passphrase (PBKDF2)")?;

    // ---- reject: header (on ok-small)
    out.reject("reject/empty-file.seal", Some(&[]), PASSPHRASE, "Malformed", "truncated", "an empty file")?;
    out.reject(
        "reject/bad-magic.seal",
        Some(&with(&ok_small, 0, b"SOPHSEAX")),
        PASSPHRASE,
        "Malformed",
        "bad magic",
        "magic is not SOPHSEAL",
    )?;
    out.reject(
        "reject/truncated-header.seal",
        Some(&ok_small[..40]),
        PASSPHRASE,
        "Malformed",
        "truncated",
        "the first 40 bytes of a header",
    )?;
    out.reject(
        "reject/version-2.seal",
        Some(&with(&ok_small, 8, &[2])),
        PASSPHRASE,
        "UnsupportedVersion",
        "format version 2",
        "version byte (offset 8) is 2; checked right after the magic, before anything else",
    )?;
    out.reject(
        "reject/unknown-kdf.seal",
        Some(&with(&ok_small, 9, &[3])),
        PASSPHRASE,
        "Malformed",
        "unknown key derivation function 3",
        "KDF id (offset 9) is 3",
    )?;
    // 4 GiB + 1 KiB: over the limit (1 GiB since issue 12; it was the limit plus one before).
    let mem = (4u32 * 1024 * 1024 + 1).to_le_bytes();
    out.reject(
        "reject/argon2-memory-too-large.seal",
        Some(&with(&ok_small, 10, &mem)),
        PASSPHRASE,
        "Malformed",
        "argon2id parameters",
        "Argon2id memory 4 GiB + 1 KiB: refused before any derivation",
    )?;
    out.reject(
        "reject/argon2-iterations-too-many.seal",
        Some(&with(&ok_small, 14, &65u32.to_le_bytes())),
        PASSPHRASE,
        "Malformed",
        "argon2id parameters",
        "Argon2id t = 65 (the limit is 64)",
    )?;
    out.reject(
        "reject/argon2-parallelism-zero.seal",
        Some(&with(&ok_small, 18, &0u32.to_le_bytes())),
        PASSPHRASE,
        "Malformed",
        "argon2id parameters",
        "Argon2id p = 0",
    )?;
    let mut pbkdf2_params = vec![2u8];
    pbkdf2_params.extend_from_slice(&(PBKDF2_ITERATIONS - 1).to_le_bytes());
    pbkdf2_params.extend_from_slice(&[0; 8]);
    out.reject(
        "reject/pbkdf2-too-few-iterations.seal",
        Some(&with(&ok_small, 9, &pbkdf2_params)),
        PASSPHRASE,
        "Malformed",
        "pbkdf2 iterations 99999 out of range",
        "PBKDF2 with 99999 iterations (the minimum is 100000)",
    )?;
    let mut pad = vec![2u8];
    pad.extend_from_slice(&PBKDF2_ITERATIONS.to_le_bytes());
    pad.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    out.reject(
        "reject/pbkdf2-nonzero-padding.seal",
        Some(&with(&ok_small, 9, &pad)),
        PASSPHRASE,
        "Malformed",
        "padding",
        "PBKDF2 parameter padding (offsets 14..22) is not zero",
    )?;
    out.reject(
        "reject/segment-size-too-small.seal",
        Some(&with(&ok_small, 61, &1023u32.to_le_bytes())),
        PASSPHRASE,
        "Malformed",
        "segment size 1023 out of range",
        "segment size 1023 (the minimum is 1024)",
    )?;
    out.reject(
        "reject/segment-size-too-large.seal",
        Some(&with(&ok_small, 61, &(max_seg + 1).to_le_bytes())),
        PASSPHRASE,
        "Malformed",
        "segment size 16777217 out of range",
        "segment size 16 MiB + 1",
    )?;
    out.reject("reject/flipped-header-kdf-params.seal", Some(&flip(&ok_small, 10)), PASSPHRASE, "Authentication", WRONG, "Argon2id memory 1024 → 1025 KiB: still valid, so the key differs (and the header is every segment's associated data)")?;
    out.reject(
        "reject/flipped-header-salt.seal",
        Some(&flip(&ok_small, 22)),
        PASSPHRASE,
        "Authentication",
        WRONG,
        "a salt bit flipped: another key",
    )?;
    out.reject(
        "reject/flipped-header-nonce-prefix.seal",
        Some(&flip(&ok_small, 54)),
        PASSPHRASE,
        "Authentication",
        WRONG,
        "a nonce-prefix bit flipped: other nonces, and the associated data differs",
    )?;
    out.reject(
        "reject/flipped-header-segment-size.seal",
        Some(&flip(&ok_small, 61)),
        PASSPHRASE,
        "Authentication",
        WRONG,
        "segment size 1024 → 1025: still valid, but the associated data differs",
    )?;

    // ---- reject: segments (on ok-multi: segments at 65, 1105, 2145 and the final one at 3185)
    let s = |i: usize| HEADER + i * FULL;
    out.reject(
        "reject/header-only.seal",
        Some(&ok_multi[..HEADER]),
        PASSPHRASE,
        "Malformed",
        "truncated: the final segment is missing",
        "the header alone",
    )?;
    out.reject(
        "reject/truncated-final-missing.seal",
        Some(&ok_multi[..s(3)]),
        PASSPHRASE,
        "Malformed",
        "truncated: the final segment is missing",
        "cut at a segment boundary: the last segment present is not flagged final",
    )?;
    out.reject(
        "reject/truncated-empty-final-missing.seal",
        Some(&ok_empty_final[..s(2)]),
        PASSPHRASE,
        "Malformed",
        "truncated: the final segment is missing",
        "ok-empty-final.seal without its empty final segment: a stream cut right after a full segment",
    )?;
    out.reject(
        "reject/truncated-mid-segment.seal",
        Some(&ok_multi[..ok_multi.len() - 10]),
        PASSPHRASE,
        "Authentication",
        "damaged or tampered at segment 3 (byte offset 3185)",
        "the last 10 bytes cut off: the final segment loses part of its tag",
    )?;
    out.reject(
        "reject/truncated-in-tag.seal",
        Some(&ok_multi[..s(3) + 8]),
        PASSPHRASE,
        "Malformed",
        "truncated",
        "8 bytes of the final segment left, less than a tag: a length no stream can have",
    )?;
    let mut dropped = ok_multi[..s(1)].to_vec();
    dropped.extend_from_slice(&ok_multi[s(2)..]);
    out.reject("reject/dropped-segment.seal", Some(&dropped), PASSPHRASE, "Authentication", "damaged or tampered at segment", "segment 1 removed: a stream reader fails at segment 1, a random-access reader at the final segment (now number 2)")?;
    let mut swapped = ok_multi[..s(1)].to_vec();
    swapped.extend_from_slice(&ok_multi[s(2)..s(3)]);
    swapped.extend_from_slice(&ok_multi[s(1)..s(2)]);
    swapped.extend_from_slice(&ok_multi[s(3)..]);
    out.reject("reject/swapped-segments.seal", Some(&swapped), PASSPHRASE, "Authentication", "damaged or tampered at segment 1 (byte offset 1105)", "segments 1 and 2 swapped: the first and final segments are intact, so a random-access reader opens it and fails when segment 1 is read")?;
    let mut dup = ok_multi[..s(2)].to_vec();
    dup.extend_from_slice(&ok_multi[s(1)..]);
    out.reject("reject/duplicated-segment.seal", Some(&dup), PASSPHRASE, "Authentication", "damaged or tampered at segment", "segment 1 repeated: a stream reader fails at segment 2, a random-access reader at the final segment (now number 4)")?;
    out.reject(
        "reject/flipped-first-segment.seal",
        Some(&flip(&ok_multi, s(0) + 100)),
        PASSPHRASE,
        "Authentication",
        WRONG,
        "a ciphertext bit of segment 0 flipped: indistinguishable from a wrong passphrase",
    )?;
    out.reject(
        "reject/flipped-segment.seal",
        Some(&flip(&ok_multi, s(2) + 500)),
        PASSPHRASE,
        "Authentication",
        "damaged or tampered at segment 2 (byte offset 2145)",
        "a ciphertext bit of segment 2 flipped",
    )?;
    out.reject(
        "reject/flipped-tag.seal",
        Some(&flip(&ok_multi, ok_multi.len() - 1)),
        PASSPHRASE,
        "Authentication",
        "damaged or tampered at segment 3 (byte offset 3185)",
        "the last bit of the final segment's tag flipped",
    )?;
    let mut appended = ok_multi.clone();
    appended.extend_from_slice(&[0x5a; 16]);
    out.reject(
        "reject/appended-garbage.seal",
        Some(&appended),
        PASSPHRASE,
        "Authentication",
        "damaged or tampered at segment 3 (byte offset 3185)",
        "16 bytes appended after a short final segment: read as part of it, which then fails",
    )?;
    let mut appended_full = ok_one.clone();
    appended_full.extend_from_slice(&[0x5a; 32]);
    out.reject("reject/appended-after-full-final.seal", Some(&appended_full), PASSPHRASE, "Malformed", "after the final segment", "32 bytes appended after a full final segment: the segment opens as final, so what follows is reported as trailing data")?;

    let vectors = std::mem::take(&mut out.vectors);
    let count = vectors.len();
    let manifest = json!({
        "comment": "One line per vector; see format-spec/export-seal.md, section \"Test vectors\". `file` and `plaintext` are relative to this folder. `ok`: both readers open `file` with `passphrase` to exactly `plaintext` (also given by length and SHA-256). `reject`: both readers fail with the `sophon::Error` variant `error`, and the error's message contains `message`. `keys` are the 32-byte keys the passphrase derives with the fixed salt (for the `ok` vectors' KDF).",
        "segment_size": SEGMENT,
        "argon2id": { "memory_kib": ARGON2.memory_kib, "iterations": ARGON2.iterations, "parallelism": ARGON2.parallelism },
        "salt": hex::encode(salt()),
        "nonce_prefix": hex::encode(NONCE_PREFIX),
        "passphrase": PASSPHRASE,
        "keys": {
            "argon2id": hex::encode(key(argon, PASSPHRASE)),
            "pbkdf2": hex::encode(key(pbkdf2, PASSPHRASE)),
        },
        "vectors": vectors,
    });
    let text = serde_json::to_string_pretty(&manifest)? + "\n";
    out.write("manifest.json", text.as_bytes())?;
    ensure!(out.total < 100 * 1024, "vectors take {} bytes, more than 100 KiB", out.total);
    println!("{count} vectors, {} bytes, written to {}", out.total, dir.display());
    Ok(())
}
