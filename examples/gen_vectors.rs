//! Generate the repository format v1 test vectors under `format-spec/vectors/`.
//!
//! ```text
//! cargo run --example gen_vectors -- --new-repo [OUT_DIR]   # make repo-v1 + expected.json, then the vectors
//! cargo run --example gen_vectors -- [OUT_DIR]              # keep repo-v1, re-derive every other vector
//! ```
//!
//! `OUT_DIR` defaults to `format-spec/vectors`. `repo-v1/` is a real repository made by
//! `Repository::init` and two `archive::backup` runs over a small folder built deterministically here;
//! its nonces, salt and keys are random, so it is generated once and committed (`--new-repo` replaces
//! it, and with it every derived vector). Everything else is derived deterministically from repo-v1:
//! plaintext vectors are written byte for byte, and the sealed ones are sealed with the repository's
//! own master key through an independent AES-256-GCM implementation (the `aes-gcm` crate) with nonces
//! derived from each vector's label, so re-running without `--new-repo` reproduces the same bytes.
//!
//! `tests/vectors.rs` checks every vector; it never regenerates them.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use sophon::archive::{BackupOptions, Progress};
use sophon::chunk::ChunkerParams;
use sophon::compress::Compression;
use sophon::crypto::{Argon2Params, MasterKeys, SealKey};
use sophon::format::config::KEY_AD;
use sophon::format::envelope::{self, ObjectKind};
use sophon::format::index::{IndexSegment, IndexedPack};
use sophon::format::pack::{self as fpack, PackEntry};
use sophon::id::{BlobId, BlobType, IndexId, PackId};
use sophon::{InitOptions, Repository};

const PASSPHRASE: &str = "test-vector-passphrase";
const SECOND_PASSPHRASE: &str = "second test-vector passphrase";
const ROOT_NAME: &str = "vector-src";
/// Small Argon2id parameters so the vectors open in milliseconds (never use these for real data).
const ARGON2: Argon2Params = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };
/// Small chunks so the few hundred KiB file is split into several blobs.
const CHUNKER: ChunkerParams =
    ChunkerParams { min_size: 16 * 1024, avg_size: 64 * 1024, max_size: 256 * 1024, normalization: 1 };
/// Base of every mtime in the source folder: 2023-11-14T22:13:20.123456789Z.
const MTIME_BASE_S: i64 = 1_700_000_000;
const MTIME_NS: u32 = 123_456_789;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let new_repo = args.iter().any(|a| a == "--new-repo");
    if let Some(bad) = args.iter().find(|a| a.starts_with("--") && *a != "--new-repo") {
        bail!("unknown option {bad}; usage: gen_vectors [--new-repo] [OUT_DIR]");
    }
    let out = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("format-spec/vectors"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let repo_dir = out.join("repo-v1");
    if new_repo {
        if repo_dir.exists() {
            std::fs::remove_dir_all(&repo_dir)?;
        }
        make_repo(&out, &repo_dir)?;
    } else if !repo_dir.join("config").exists() {
        bail!("{} holds no repository; run with --new-repo first", repo_dir.display());
    }
    derive_vectors(&out, &repo_dir)?;
    tidy_repo_dir(&repo_dir)?;
    println!("vectors written to {}", out.display());
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// repo-v1: a real repository from a deterministic folder

fn xorshift_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn readme_text() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..400 {
        s.push_str(&format!("line {i:04}: the quick brown fox jumps over the lazy dog; sophon test vector text.\n"));
    }
    s.into_bytes()
}

fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Give every entry below `dir` (and `dir` itself) a fixed mtime, children before their folder.
fn fix_mtimes(dir: &Path, counter: &mut i64) -> Result<()> {
    let mut names: Vec<_> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<_>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let p = dir.join(name);
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            fix_mtimes(&p, counter)?;
        } else {
            *counter += 1;
            let t = filetime::FileTime::from_unix_time(MTIME_BASE_S + *counter, MTIME_NS);
            if meta.file_type().is_symlink() {
                filetime::set_symlink_file_times(&p, t, t)?;
            } else {
                filetime::set_file_times(&p, t, t)?;
            }
        }
    }
    *counter += 1;
    let t = filetime::FileTime::from_unix_time(MTIME_BASE_S + *counter, MTIME_NS);
    filetime::set_file_times(dir, t, t)?;
    Ok(())
}

/// The folder of the first snapshot.
fn make_source_v1(src: &Path) -> Result<()> {
    let mkdir = |p: &Path, mode: u32| -> Result<()> {
        std::fs::create_dir_all(p)?;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    };
    mkdir(src, 0o755)?;
    write_file(&src.join("empty"), b"", 0o644)?;
    write_file(&src.join("hello.txt"), b"Hello, Sophon!\n", 0o644)?;
    write_file(&src.join("exec.sh"), b"#!/bin/sh\necho sophon test vector\n", 0o755)?;
    write_file(&src.join("private.txt"), b"only the owner reads this\n", 0o600)?;
    // A name that is not UTF-8 (Latin-1 "café.txt"): stored as `name_hex`.
    write_file(&src.join(std::ffi::OsStr::from_bytes(b"caf\xe9.txt")), b"a Latin-1 file name\n", 0o644)?;
    mkdir(&src.join("docs"), 0o755)?;
    write_file(&src.join("docs/readme.md"), &readme_text(), 0o644)?;
    write_file(&src.join("docs/hello-copy.txt"), b"Hello, Sophon!\n", 0o644)?;
    mkdir(&src.join("docs/deep/nested"), 0o750)?;
    write_file(&src.join("docs/deep/nested/note.txt"), b"three folders down\n", 0o640)?;
    mkdir(&src.join("empty-dir"), 0o700)?;
    mkdir(&src.join("data"), 0o755)?;
    write_file(&src.join("data/random.bin"), &xorshift_bytes(200 * 1024, 0x5eed), 0o644)?;
    std::os::unix::fs::symlink("hello.txt", src.join("link-to-hello"))?;
    std::os::unix::fs::symlink("../does/not/exist", src.join("link-dangling"))?;
    // A link target that is not UTF-8: stored as `target_hex`.
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(b"caf\xe9.txt"), src.join("link-latin1"))?;
    fix_mtimes(src, &mut 0)
}

/// The changes between the first and the second snapshot. Only what changes gets a new mtime, so the
/// other files keep size, mtime, ctime and inode and the second backup reuses them from its parent.
fn change_source_v2(src: &Path) -> Result<()> {
    write_file(&src.join("hello.txt"), b"Hello again, Sophon!\n", 0o644)?;
    write_file(&src.join("new.txt"), b"added in the second snapshot\n", 0o644)?;
    let mut random = std::fs::read(src.join("data/random.bin"))?;
    for b in &mut random[100_000..100_100] {
        *b = b'!';
    }
    write_file(&src.join("data/random.bin"), &random, 0o644)?;
    for (n, rel) in ["hello.txt", "new.txt", "data/random.bin", "data", ""].iter().enumerate() {
        let t = filetime::FileTime::from_unix_time(MTIME_BASE_S + 1000 + n as i64, MTIME_NS);
        filetime::set_file_times(src.join(rel), t, t)?;
    }
    Ok(())
}

fn path_json(rel: &[u8], key: &str, obj: &mut serde_json::Map<String, Value>) {
    match std::str::from_utf8(rel) {
        Ok(s) => obj.insert(key.into(), json!(s)),
        Err(_) => obj.insert(format!("{key}_hex"), json!(hex::encode(rel))),
    };
}

/// What a restore of the folder must produce, relative to the restore target.
fn describe(dir: &Path, rel: &[u8], out: &mut Vec<Value>) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)?;
    let mut obj = serde_json::Map::new();
    path_json(rel, "path", &mut obj);
    obj.insert("type".into(), json!("dir"));
    obj.insert("mode".into(), json!(meta.mode() & 0o7777));
    obj.insert("mtime_ns".into(), json!(meta.mtime() * 1_000_000_000 + meta.mtime_nsec()));
    out.push(Value::Object(obj));
    let mut names: Vec<_> =
        std::fs::read_dir(dir)?.map(|e| e.map(|e| e.file_name())).collect::<std::io::Result<_>>()?;
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let p = dir.join(&name);
        let r = [rel, b"/", name.as_bytes()].concat();
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            describe(&p, &r, out)?;
            continue;
        }
        let mut obj = serde_json::Map::new();
        path_json(&r, "path", &mut obj);
        let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        if meta.file_type().is_symlink() {
            obj.insert("type".into(), json!("symlink"));
            obj.insert("mtime_ns".into(), json!(mtime));
            path_json(std::fs::read_link(&p)?.as_os_str().as_bytes(), "target", &mut obj);
        } else {
            let data = std::fs::read(&p)?;
            obj.insert("type".into(), json!("file"));
            obj.insert("mode".into(), json!(meta.mode() & 0o7777));
            obj.insert("mtime_ns".into(), json!(mtime));
            obj.insert("size".into(), json!(data.len()));
            obj.insert("blake3".into(), json!(blake3::hash(&data).to_hex().to_string()));
        }
        out.push(Value::Object(obj));
    }
    Ok(())
}

fn utc(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).expect("valid time").with_timezone(&chrono::Utc)
}

fn make_repo(out: &Path, repo_dir: &Path) -> Result<()> {
    // The snapshot's and key file's `username`; the hostname is the generating machine's.
    std::env::set_var("USER", "vector");
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join(ROOT_NAME);
    make_source_v1(&src)?;

    let backend = sophon::backend::open_url(repo_dir.to_str().context("non-UTF-8 output path")?, true)?;
    let opts = InitOptions { chunker: CHUNKER, pack_size: 1024 * 1024, compression: 3, argon2: ARGON2 };
    let repo = Arc::new(Repository::init(backend, PASSPHRASE.as_bytes(), &opts, None)?);

    let mut b = BackupOptions::new(vec![src.clone()]);
    b.time = Some(utc("2024-01-01T00:00:00Z"));
    b.tags = vec!["vector".into(), "first".into()];
    let session = sophon::Session::shared(Arc::clone(&repo), "backup")?;
    let first = sophon::archive::backup(&session, &b, Arc::new(Progress::default()))?;

    change_source_v2(&src)?;
    b.time = Some(utc("2024-01-02T00:00:00Z"));
    b.tags = vec!["vector".into(), "second".into()];
    let second = sophon::archive::backup(&session, &b, Arc::new(Progress::default()))?;
    if second.parent != Some(first.snapshot_id) {
        bail!("the second backup did not use the first as its parent");
    }

    let mut entries = Vec::new();
    describe(&src, ROOT_NAME.as_bytes(), &mut entries)?;
    let expected = json!({
        "comment": "The tree `restore` must produce from the latest snapshot of repo-v1, relative to the \
                    restore target. Paths are `/`-separated; `path_hex`/`target_hex` hold raw bytes that are \
                    not UTF-8. mtime_ns is nanoseconds since the Unix epoch. Modes are st_mode & 0o7777 \
                    (symlinks have none). blake3 is the unkeyed BLAKE3 of the file's bytes.",
        "passphrase": PASSPHRASE,
        "snapshots": 2,
        "latest": second.snapshot_id.to_hex(),
        "first": first.snapshot_id.to_hex(),
        "entries": entries,
    });
    std::fs::write(out.join("expected.json"), serde_json::to_string_pretty(&expected)? + "\n")?;
    Ok(())
}

/// Remove what opening the repository leaves behind that is not part of it (`.tmp/`, empty folders).
fn tidy_repo_dir(repo_dir: &Path) -> Result<()> {
    fn prune_empty(dir: &Path) -> Result<bool> {
        let mut empty = true;
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if std::fs::symlink_metadata(&p)?.is_dir() {
                if !prune_empty(&p)? {
                    empty = false;
                }
            } else {
                empty = false;
            }
        }
        if empty {
            std::fs::remove_dir(dir)?;
        }
        Ok(empty)
    }
    for e in std::fs::read_dir(repo_dir)? {
        let p = e?.path();
        if p.is_dir() {
            prune_empty(&p)?;
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Sealing with fixed nonces, through an AES-GCM implementation independent of sophon's

fn seal_fixed(key: &[u8; 32], label: &str, plaintext: &[u8], ad: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let n = blake3::hash(format!("sophon format v1 test vector nonce: {label}").as_bytes());
    let nonce = &n.as_bytes()[..12];
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(key).expect("32-byte key");
    let ct = cipher.encrypt(aes_gcm::Nonce::from_slice(nonce), Payload { msg: plaintext, aad: ad }).expect("seal");
    [nonce, &ct[..]].concat()
}

/// A stored object: prefix, then the prefix-bound seal of the (optionally zstd-compressed) plaintext.
fn envelope_fixed(key: &[u8; 32], label: &str, kind: ObjectKind, compressed: bool, plaintext: &[u8]) -> Vec<u8> {
    let payload = if compressed { zstd::bulk::compress(plaintext, 3).expect("zstd") } else { plaintext.to_vec() };
    let prefix = envelope::prefix(kind, compressed);
    [&prefix[..], &seal_fixed(key, label, &payload, &prefix)].concat()
}

struct CraftedBlob {
    blob_type: BlobType,
    compression: Compression,
    /// The id in the header and in the AD (normally the keyed hash of `plain`).
    id: BlobId,
    /// The raw length in the header and in the AD.
    raw_len: u32,
    /// What is sealed (already compressed when `compression` is zstd).
    payload: Vec<u8>,
    /// The AD actually used for the seal (normally the entry's).
    ad: Option<[u8; 43]>,
}

fn blob(keys: &MasterKeys, blob_type: BlobType, plain: &[u8], compress: bool) -> CraftedBlob {
    let (compression, payload) = if compress {
        (Compression::Zstd, zstd::bulk::compress(plain, 3).expect("zstd"))
    } else {
        (Compression::None, plain.to_vec())
    };
    CraftedBlob { blob_type, compression, id: keys.blob_id(plain), raw_len: plain.len() as u32, payload, ad: None }
}

/// A whole pack: prefix, sealed blobs, sealed header, trailer.
fn pack_fixed(key: &[u8; 32], label: &str, blobs: &[CraftedBlob]) -> (Vec<u8>, Vec<u8>) {
    let mut bytes = fpack::prefix().to_vec();
    let mut entries = Vec::new();
    for (i, b) in blobs.iter().enumerate() {
        let entry = PackEntry {
            blob_type: b.blob_type,
            compression: b.compression,
            id: b.id,
            offset: bytes.len() as u32,
            sealed_len: (b.payload.len() + sophon::crypto::SEAL_OVERHEAD) as u32,
            raw_len: b.raw_len,
        };
        let ad = b.ad.unwrap_or_else(|| entry.blob_ad());
        bytes.extend_from_slice(&seal_fixed(key, &format!("{label} blob {i}"), &b.payload, &ad));
        entries.push(entry);
    }
    let header = fpack::encode_header(&entries);
    let sealed = seal_fixed(key, &format!("{label} header"), &header, fpack::HEADER_AD);
    bytes.extend_from_slice(&sealed);
    bytes.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
    (bytes, header)
}

// ------------------------------------------------------------------------------------------------
// The manifest

struct Vectors {
    out: PathBuf,
    manifest: Vec<Value>,
}

fn ok(kind: &str, why: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), json!(kind));
    m.insert("expect".into(), json!("ok"));
    m.insert("why".into(), json!(why));
    m
}

fn reject(kind: &str, error: &str, why: &str) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("kind".into(), json!(kind));
    m.insert("expect".into(), json!("reject"));
    m.insert("error".into(), json!(error));
    m.insert("why".into(), json!(why));
    m
}

trait With {
    fn with(self, k: &str, v: impl Into<Value>) -> Self;
}

impl With for serde_json::Map<String, Value> {
    fn with(mut self, k: &str, v: impl Into<Value>) -> Self {
        self.insert(k.into(), v.into());
        self
    }
}

impl Vectors {
    /// Write `bytes` to `file` (relative to the vectors folder) and record its manifest line.
    fn add(&mut self, file: &str, bytes: &[u8], entry: serde_json::Map<String, Value>) -> Result<()> {
        let path = self.out.join(file);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        self.refer(file, entry);
        Ok(())
    }

    /// Record a manifest line for a file that already exists (in repo-v1, or written before).
    fn refer(&mut self, file: &str, entry: serde_json::Map<String, Value>) {
        let mut m = serde_json::Map::new();
        m.insert("file".into(), json!(file));
        m.extend(entry);
        self.manifest.push(Value::Object(m));
    }

    fn add_json(&mut self, file: &str, v: &Value, entry: serde_json::Map<String, Value>) -> Result<()> {
        self.add(file, (serde_json::to_string_pretty(v)? + "\n").as_bytes(), entry)
    }
}

fn modify(bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    f(&mut b);
    b
}

fn remove(v: &mut Value, field: &str) {
    if let Some(o) = v.as_object_mut() {
        o.remove(field);
    }
}

fn id_hex(n: u8) -> String {
    hex::encode([n; 32])
}

// ------------------------------------------------------------------------------------------------
// Every vector

fn derive_vectors(out: &Path, repo_dir: &Path) -> Result<()> {
    for kind in ["config", "key_file", "pack", "index", "tree", "snapshot", "envelope", "lock", "prune_record"] {
        let d = out.join(kind);
        if d.exists() {
            std::fs::remove_dir_all(&d)?;
        }
    }
    let backend = sophon::backend::open_url(repo_dir.to_str().context("non-UTF-8 output path")?, false)?;
    let repo = Repository::open(backend.clone(), PASSPHRASE.as_bytes(), None)?;
    let keys = repo.keys();
    let key = *keys.seal.raw();
    let mut v = Vectors { out: out.to_path_buf(), manifest: Vec::new() };

    // What repo-v1 holds, by name.
    let mut objects: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for dir in ["keys", "data", "index", "snapshots"] {
        let mut names = Vec::new();
        backend.list(dir, &mut |o| {
            names.push(format!("repo-v1/{dir}/{}", o.name));
            Ok(())
        })?;
        names.sort();
        objects.insert(dir.into(), names);
    }
    let read = |rel: &str| std::fs::read(out.join(rel)).with_context(|| format!("reading {rel}"));
    let name_of = |rel: &str| rel.rsplit('/').next().expect("has a name").to_string();

    config_vectors(&mut v)?;
    key_file_vectors(&mut v, &objects["keys"], keys, &read)?;

    // ---- packs from repo-v1
    for rel in &objects["data"] {
        let bytes = read(rel)?;
        let id: PackId = name_of(rel).parse()?;
        let entries = sophon::pack::parse_pack(&keys.seal, Some(&id), &bytes)?;
        let header_len = fpack::decode_trailer(&bytes[bytes.len() - 4..], bytes.len() as u64, "pack")?;
        let start = bytes.len() - 4 - header_len as usize;
        let plain = keys.seal.open(&bytes[start..bytes.len() - 4], fpack::HEADER_AD, &|| "pack header".into())?;
        let types: Vec<_> = entries.iter().map(|e| e.blob_type).collect();
        let label = if types.iter().all(|t| *t == BlobType::Tree) { "tree" } else { "data" };
        let header_file = format!("pack/header-repo-v1-{label}-{}.bin", &id.to_hex()[..8]);
        v.add(
            &header_file,
            &plain,
            ok("pack", &format!("the plaintext of the sealed header of repo-v1's {label} pack {id}"))
                .with("form", "header")
                .with("pack_len", bytes.len())
                .with("header_len", header_len),
        )?;
        v.refer(
            rel,
            ok("pack", &format!("a {label} pack of repo-v1, named by the BLAKE3 of its bytes; every blob opens and hashes to its id"))
                .with("form", "sealed")
                .with("name", id.to_hex())
                .with("plaintext", header_file.as_str()),
        );
    }
    pack_vectors(&mut v, keys, &key)?;

    // ---- index segments from repo-v1
    for rel in &objects["index"] {
        let bytes = read(rel)?;
        let id: IndexId = name_of(rel).parse()?;
        let plain = repo.open_object(ObjectKind::Index, &id.0, &bytes)?;
        let file = format!("index/ok-repo-v1-{}.bin", &id.to_hex()[..8]);
        v.add(
            &file,
            &plain,
            ok("index", &format!("the plaintext of repo-v1's index segment {id}")).with("form", "plain"),
        )?;
        v.refer(
            rel,
            ok("index", "an index segment of repo-v1 (envelope kind 1, zstd), named by the BLAKE3 of its bytes")
                .with("form", "sealed")
                .with("name", id.to_hex())
                .with("plaintext", file.as_str()),
        );
    }
    index_vectors(&mut v, &key)?;

    // ---- snapshots and trees from repo-v1
    let (snaps, _) = repo.list_snapshots()?;
    let mut latest_sealed = None;
    for (n, (id, snap)) in snaps.iter().enumerate() {
        let rel = format!("repo-v1/snapshots/{id}");
        let bytes = read(&rel)?;
        let plain = repo.open_object(ObjectKind::Snapshot, &id.0, &bytes)?;
        let which = if n + 1 == snaps.len() { "latest" } else { "first" };
        let file = format!("snapshot/ok-repo-v1-{which}.json");
        v.add(
            &file,
            &plain,
            ok("snapshot", &format!("the plaintext of repo-v1's {which} snapshot {id}")).with("form", "plain"),
        )?;
        v.refer(
            &rel,
            ok(
                "snapshot",
                &format!("repo-v1's {which} snapshot (envelope kind 2, zstd), named by the BLAKE3 of its bytes"),
            )
            .with("form", "sealed")
            .with("name", id.to_hex())
            .with("plaintext", file.as_str()),
        );
        if which == "latest" {
            latest_sealed = Some((rel.clone(), *id, bytes));
            let root = repo.read_blob(&snap.tree)?;
            v.add(
                "tree/ok-repo-v1-root.json",
                &root,
                ok("tree", "the root tree of repo-v1's latest snapshot: one folder node per backed-up path")
                    .with("form", "plain"),
            )?;
            let root_tree = sophon::format::tree::Tree::decode(&root, "tree")?;
            let sub = root_tree.nodes[0].subtree.context("root entry is a folder")?;
            v.add(
                "tree/ok-repo-v1-top.json",
                &repo.read_blob(&sub)?,
                ok(
                    "tree",
                    "the top folder of repo-v1's latest snapshot: files, folders, symlinks, name_hex and target_hex",
                )
                .with("form", "plain"),
            )?;
        }
    }
    tree_vectors(&mut v)?;
    let (snap_rel, _snap_id, snap_bytes) = latest_sealed.context("repo-v1 has no snapshot")?;
    snapshot_vectors(&mut v, &key)?;
    envelope_vectors(&mut v, &key, &snap_rel, &snap_bytes)?;
    lock_vectors(&mut v, &key)?;
    prune_record_vectors(&mut v, &key)?;

    let manifest = json!({
        "comment": "One line per vector: `file` is relative to this folder; `kind` names the decoder; `form` is \
                    `plain` (the object's plaintext encoding), `sealed` (the bytes as stored, opened with the master \
                    keys of repo-v1) or `header` (a pack header's plaintext, checked against `pack_len`/`header_len`). \
                    `expect` is ok or reject; `error` names the error a v1 reader reports. See README.md.",
        "passphrase": PASSPHRASE,
        "vectors": v.manifest,
    });
    std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&manifest)? + "\n")?;
    Ok(())
}

fn config_vectors(v: &mut Vectors) -> Result<()> {
    v.refer("repo-v1/config", ok("config", "repo-v1's config as written by `Repository::init`").with("form", "plain"));
    let base = json!({
        "version": 1,
        "id": id_hex(0x42),
        "chunker": { "min_size": 524288, "avg_size": 1048576, "max_size": 4194304, "normalization": 1 },
        "pack_size": 16777216,
        "compression": 2
    });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    v.add_json("config/ok-defaults.json", &base, ok("config", "the default parameters").with("form", "plain"))?;
    let edge = with(&|c| {
        c["chunker"] = json!({ "min_size": 64, "avg_size": 256, "max_size": 1024, "normalization": 0 });
        c["pack_size"] = json!(1024 * 1024);
        c["compression"] = json!(0);
    });
    v.add_json(
        "config/ok-lower-limits.json",
        &edge,
        ok("config", "every parameter at its lower limit").with("form", "plain"),
    )?;
    let edge = with(&|c| {
        c["chunker"] = json!({ "min_size": 1048576, "avg_size": 4194304, "max_size": 16777216, "normalization": 3 });
        c["pack_size"] = json!(128 * 1024 * 1024);
        c["compression"] = json!(22);
    });
    v.add_json(
        "config/ok-upper-limits.json",
        &edge,
        ok("config", "every parameter at its upper limit").with("form", "plain"),
    )?;

    let cases: Vec<(&str, &str, &str, Value)> = vec![
        (
            "version-2.json",
            "UnsupportedVersion",
            "version 2 is unknown to a v1 reader; the version is read before any other field, so new fields do not hide it",
            with(&|c| {
                c["version"] = json!(2);
                c["a_future_field"] = json!(true);
            }),
        ),
        ("version-missing.json", "Malformed", "no version field", with(&|c| remove(c, "version"))),
        ("version-string.json", "Malformed", "the version must be a JSON number", with(&|c| c["version"] = json!("1"))),
        ("chunker-min-below-64.json", "Malformed", "min_size 32 is below FastCDC's minimum of 64", with(&|c| c["chunker"]["min_size"] = json!(32))),
        ("chunker-max-above-16mib.json", "Malformed", "max_size 32 MiB is above FastCDC's maximum of 16 MiB", with(&|c| c["chunker"]["max_size"] = json!(32 << 20))),
        ("chunker-avg-above-max.json", "Malformed", "avg_size must not exceed max_size", with(&|c| c["chunker"]["avg_size"] = json!(8 << 20))),
        ("chunker-odd-size.json", "Malformed", "chunk sizes must be even", with(&|c| c["chunker"]["min_size"] = json!(524287))),
        ("chunker-normalization-4.json", "Malformed", "normalization is 0..=3", with(&|c| c["chunker"]["normalization"] = json!(4))),
        ("pack-size-below-1mib.json", "Malformed", "pack_size must be 1 MiB..=128 MiB", with(&|c| c["pack_size"] = json!(1000))),
        (
            "pack-size-1gib.json",
            "Malformed",
            "pack_size 1 GiB is over the 128 MiB a reader accepts: every backup and prune would hold 1 GiB packs in memory",
            with(&|c| c["pack_size"] = json!(1024 * 1024 * 1024)),
        ),
        ("compression-23.json", "Malformed", "compression is a zstd level 0..=22", with(&|c| c["compression"] = json!(23))),
        ("unknown-field.json", "Malformed", "a v1 config has exactly the v1 fields", with(&|c| c["encryption"] = json!("none"))),
        ("bad-id.json", "Malformed", "the repository id is 64 hex digits", with(&|c| c["id"] = json!("0042"))),
    ];
    for (file, error, why, c) in cases {
        v.add_json(&format!("config/{file}"), &c, reject("config", error, why).with("form", "plain"))?;
    }
    v.add_json(
        "config/ok-chunker-unknown-field.json",
        &with(&|c| c["chunker"]["algorithm"] = json!("gear")),
        ok("config", "v1 readers ignore unknown fields inside `chunker`: only the top level is strict")
            .with("form", "plain"),
    )?;
    let dup = format!(
        "{{\"version\":2,\"id\":\"{}\",\"chunker\":{{\"min_size\":524288,\"avg_size\":1048576,\"max_size\":4194304,\"normalization\":1}},\"pack_size\":16777216,\"compression\":2,\"version\":1}}\n",
        id_hex(0x42)
    );
    v.add(
        "config/ok-duplicate-key-last-wins.json",
        dup.as_bytes(),
        ok(
            "config",
            "`version` appears twice (2, then 1): the v1 config reader keeps the last value. Writers never repeat a key; other readers may refuse this",
        )
        .with("form", "plain"),
    )?;
    v.add(
        "config/not-json.json",
        b"version = 1\n",
        reject("config", "Malformed", "the config is JSON").with("form", "plain"),
    )?;
    Ok(())
}

fn key_file_vectors(
    v: &mut Vectors,
    key_files: &[String],
    keys: &MasterKeys,
    read: &dyn Fn(&str) -> Result<Vec<u8>>,
) -> Result<()> {
    let b64 = base64::engine::general_purpose::STANDARD;
    for rel in key_files {
        read(rel)?;
        v.refer(
            rel,
            ok(
                "key_file",
                "repo-v1's key file: Argon2id (1 MiB, t=1, p=1) over the passphrase wraps the 105-byte master keys",
            )
            .with("form", "plain")
            .with("passphrase", PASSPHRASE),
        );
        v.refer(
            rel,
            reject(
                "key_file",
                "Authentication",
                "the wrong passphrase derives another key-encryption key, so the wrap does not open",
            )
            .with("form", "plain")
            .with("passphrase", "not the passphrase"),
        );
    }
    // Crafted key files: fixed salt and nonce, wrapping repo-v1's master keys (or a variant of them).
    let wrap = |label: &str, passphrase: &str, salt: &[u8], plain: &[u8]| -> Result<String> {
        let kek = sophon::crypto::argon2id(passphrase.as_bytes(), salt, ARGON2)?;
        Ok(b64.encode(seal_fixed(&kek, label, plain, KEY_AD)))
    };
    let salt: Vec<u8> = (0u8..32).collect();
    let master = keys.encode();
    let base = json!({
        "version": 1,
        "kdf": "argon2id",
        "argon2": { "memory_kib": 1024, "iterations": 1, "parallelism": 1 },
        "salt": b64.encode(&salt),
        "wrapped": wrap("key file second passphrase", SECOND_PASSPHRASE, &salt, &master)?,
        "created": "2024-01-01T00:00:00.000000000Z",
        "hostname": "vector-host",
        "username": "vector"
    });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = base.clone();
        f(&mut c);
        c
    };
    v.add_json(
        "key_file/ok-second-passphrase.json",
        &base,
        ok("key_file", "a second key of repo-v1: the same master keys wrapped under another passphrase")
            .with("form", "plain")
            .with("passphrase", SECOND_PASSPHRASE),
    )?;
    let minimal = with(&|c| {
        let o = c.as_object_mut().expect("object");
        o.remove("hostname");
        o.remove("username");
    });
    v.add_json(
        "key_file/ok-no-host-user.json",
        &minimal,
        ok("key_file", "hostname and username are optional")
            .with("form", "plain")
            .with("passphrase", SECOND_PASSPHRASE),
    )?;
    v.add_json(
        "key_file/ok-argon2-unknown-field.json",
        &with(&|c| c["argon2"]["secret"] = json!(0)),
        ok("key_file", "v1 readers ignore unknown fields inside `argon2`: only the top level is strict")
            .with("form", "plain")
            .with("passphrase", SECOND_PASSPHRASE),
    )?;
    v.add_json(
        "key_file/ok-argon2-at-the-bounds.json",
        &with(&|c| {
            c["argon2"]["memory_kib"] = json!(1024 * 1024);
            c["argon2"]["iterations"] = json!(4);
            c["argon2"]["parallelism"] = json!(4);
        }),
        ok("key_file", "1 GiB × 4 iterations: the most memory and work a reader accepts (decoded only; no derivation)")
            .with("form", "plain"),
    )?;
    let v2_master = {
        let mut m = master.to_vec();
        m[0] = 2;
        m
    };
    let wrapped_v2 = wrap("key file master keys version 2", SECOND_PASSPHRASE, &salt, &v2_master)?;
    let wrapped_short = wrap("key file master keys 104 bytes", SECOND_PASSPHRASE, &salt, &master[..104])?;
    let cases: Vec<(&str, &str, &str, Value, Option<&str>)> = vec![
        (
            "version-2.json",
            "UnsupportedVersion",
            "key file version 2 is unknown to a v1 reader",
            with(&|c| c["version"] = json!(2)),
            None,
        ),
        (
            "version-2-new-field.json",
            "UnsupportedVersion",
            "the version is read before any other field, so a newer object with fields this build does not know is reported as an unsupported version, not as malformed",
            with(&|c| {
                c["version"] = json!(2);
                c["pepper"] = json!("x");
            }),
            None,
        ),
        ("unknown-kdf.json", "Malformed", "the only v1 kdf is argon2id", with(&|c| c["kdf"] = json!("scrypt")), None),
        (
            "argon2-memory-huge.json",
            "Malformed",
            "memory_kib 4 GiB + 1 KiB is above the reader's limit (1 GiB): refused before any derivation, so a hostile key file cannot exhaust memory",
            with(&|c| c["argon2"]["memory_kib"] = json!(4 * 1024 * 1024 + 1)),
            None,
        ),
        (
            "argon2-memory-u32-max.json",
            "Malformed",
            "memory_kib 2^32-1 is above the reader's limit",
            with(&|c| c["argon2"]["memory_kib"] = json!(u32::MAX)),
            None,
        ),
        (
            "argon2-memory-over-1gib.json",
            "Malformed",
            "memory_kib 1 GiB + 1 KiB is above the reader's limit (1 GiB)",
            with(&|c| c["argon2"]["memory_kib"] = json!(1024 * 1024 + 1)),
            None,
        ),
        (
            "argon2-work-over-4gib.json",
            "Malformed",
            "1 GiB × 5 iterations is above the reader's work limit (memory_kib × iterations ≤ 4 GiB), though each is within its own",
            with(&|c| {
                c["argon2"]["memory_kib"] = json!(1024 * 1024);
                c["argon2"]["iterations"] = json!(5);
            }),
            None,
        ),
        ("argon2-iterations-0.json", "Malformed", "iterations is 1..=64", with(&|c| c["argon2"]["iterations"] = json!(0)), None),
        ("argon2-iterations-65.json", "Malformed", "iterations is 1..=64", with(&|c| c["argon2"]["iterations"] = json!(65)), None),
        ("argon2-parallelism-0.json", "Malformed", "parallelism is 1..=16", with(&|c| c["argon2"]["parallelism"] = json!(0)), None),
        ("argon2-parallelism-17.json", "Malformed", "parallelism is 1..=16", with(&|c| c["argon2"]["parallelism"] = json!(17)), None),
        (
            "argon2-memory-below-8p.json",
            "Malformed",
            "Argon2 needs at least 8 KiB per lane: memory_kib 8 with parallelism 2",
            with(&|c| {
                c["argon2"]["memory_kib"] = json!(8);
                c["argon2"]["parallelism"] = json!(2);
            }),
            None,
        ),
        ("salt-8-bytes.json", "Malformed", "the salt is 16..=64 bytes", with(&|c| c["salt"] = json!(b64.encode([7u8; 8]))), None),
        ("salt-65-bytes.json", "Malformed", "the salt is 16..=64 bytes", with(&|c| c["salt"] = json!(b64.encode([7u8; 65]))), None),
        ("salt-not-base64.json", "Malformed", "the salt is standard padded base64", with(&|c| c["salt"] = json!("not base64!")), None),
        ("wrapped-not-base64.json", "Malformed", "the wrapped keys are standard padded base64", with(&|c| c["wrapped"] = json!("%%%")), None),
        ("unknown-field.json", "Malformed", "a v1 key file has exactly the v1 fields", with(&|c| c["comment"] = json!("hi")), None),
        ("missing-salt.json", "Malformed", "salt is required", with(&|c| remove(c, "salt")), None),
        (
            "master-keys-version-2.json",
            "UnsupportedVersion",
            "the wrap opens, but the 105-byte master-key plaintext starts with version 2",
            with(&|c| c["wrapped"] = json!(wrapped_v2)),
            Some(SECOND_PASSPHRASE),
        ),
        (
            "master-keys-104-bytes.json",
            "Malformed",
            "the wrap opens, but the master-key plaintext is 104 bytes, not 105",
            with(&|c| c["wrapped"] = json!(wrapped_short)),
            Some(SECOND_PASSPHRASE),
        ),
        (
            "wrapped-other-ad.json",
            "Authentication",
            "the master keys were sealed with associated data SOPHKEY2 instead of SOPHKEY1",
            with(&|c| {
                let kek = sophon::crypto::argon2id(SECOND_PASSPHRASE.as_bytes(), &salt, ARGON2).expect("argon2");
                c["wrapped"] = json!(b64.encode(seal_fixed(&kek, "key file other ad", &master, b"SOPHKEY2")));
            }),
            Some(SECOND_PASSPHRASE),
        ),
        (
            "argon2-params-changed.json",
            "Authentication",
            "the stored Argon2 parameters were changed (iterations 2): a different key-encryption key, so the wrap does not open",
            with(&|c| c["argon2"]["iterations"] = json!(2)),
            Some(SECOND_PASSPHRASE),
        ),
    ];
    for (file, error, why, c, pass) in cases {
        let mut e = reject("key_file", error, why).with("form", "plain");
        if let Some(p) = pass {
            e = e.with("passphrase", p);
        }
        v.add_json(&format!("key_file/{file}"), &c, e)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn pack_vectors(v: &mut Vectors, keys: &MasterKeys, key: &[u8; 32]) -> Result<()> {
    let sealed = |e: serde_json::Map<String, Value>| e.with("form", "sealed");
    // Crafted packs, sealed with repo-v1's key.
    let text = b"the same words again and again, ".repeat(64);
    let tree = br#"{"nodes":[]}"#.to_vec();
    let crafted = [
        blob(keys, BlobType::Data, &text, true),
        blob(keys, BlobType::Data, b"raw bytes: zstd would not shrink these", false),
        blob(keys, BlobType::Data, b"", false),
        blob(keys, BlobType::Tree, &tree, false),
    ];
    let (pack, header) = pack_fixed(key, "pack crafted ok", &crafted);
    v.add(
        "pack/crafted-header.bin",
        &header,
        ok("pack", "the plaintext header of pack/crafted-ok.pack")
            .with("form", "header")
            .with("pack_len", pack.len())
            .with("header_len", (header.len() + sophon::crypto::SEAL_OVERHEAD) as u64),
    )?;
    v.add(
        "pack/crafted-ok.pack",
        &pack,
        sealed(ok("pack", "a zstd data blob, a raw data blob, an empty data blob and a tree blob ({\"nodes\":[]})"))
            .with("name", hex::encode(blake3::hash(&pack).as_bytes()))
            .with("plaintext", "pack/crafted-header.bin"),
    )?;
    // Damaged copies of pack/crafted-ok.pack.
    let bytes = &pack[..];
    let len = bytes.len();
    let pack_id = PackId(*blake3::hash(bytes).as_bytes());
    let entries = sophon::pack::parse_pack(&SealKey::new(*key), Some(&pack_id), bytes)?;
    let header_len = (header.len() + sophon::crypto::SEAL_OVERHEAD) as u32;
    v.add(
        "pack/bad-magic.pack",
        &modify(bytes, |b| b[0] = b'X'),
        sealed(reject("pack", "Malformed", "pack/crafted-ok.pack whose magic starts with X instead of S")),
    )?;
    v.add(
        "pack/version-2.pack",
        &modify(bytes, |b| b[8] = 2),
        sealed(reject("pack", "UnsupportedVersion", "pack/crafted-ok.pack whose version byte (offset 8) is 2")),
    )?;
    v.add(
        "pack/trailer-beyond-file.pack",
        &modify(bytes, |b| {
            let n = (len as u32).to_le_bytes();
            b[len - 4..].copy_from_slice(&n);
        }),
        sealed(reject("pack", "Malformed", "the trailer declares a header as long as the whole pack")),
    )?;
    v.add(
        "pack/trailer-header-too-short.pack",
        &modify(bytes, |b| b[len - 4..].copy_from_slice(&32u32.to_le_bytes())),
        sealed(reject(
            "pack",
            "Malformed",
            "the trailer declares a 32-byte header: shorter than a seal (28) plus the 5-byte empty header",
        )),
    )?;
    v.add(
        "pack/truncated-12-bytes.pack",
        &bytes[..12],
        sealed(reject("pack", "Malformed", "the first 12 bytes of a pack: the trailer cannot fit a header")),
    )?;
    v.add(
        "pack/appended-byte.pack",
        &[bytes, &[0u8]].concat(),
        sealed(reject("pack", "Malformed", "one byte appended: the trailer is no longer the header's length")),
    )?;
    // One flipped bit inside the first blob's ciphertext.
    let e0 = entries[0];
    let flipped_blob = modify(bytes, |b| b[e0.offset as usize + 12 + 3] ^= 0x01);
    v.add(
        "pack/flipped-blob-byte.pack",
        &flipped_blob,
        sealed(reject(
            "pack",
            "HashMismatch",
            "one bit flipped in the first blob; stored under its old name, the BLAKE3 of the bytes no longer matches",
        ))
        .with("name", pack_id.to_hex()),
    )?;
    v.refer(
        "pack/flipped-blob-byte.pack",
        sealed(reject("pack", "Authentication", "the same pack checked without its name (a range read): the header opens, the blob fails AES-GCM authentication")),
    );
    let header_start = len - 4 - header_len as usize;
    v.add(
        "pack/flipped-header-byte.pack",
        &modify(bytes, |b| b[header_start + 20] ^= 0x80),
        sealed(reject(
            "pack",
            "Authentication",
            "one bit flipped in the sealed header: it fails AES-GCM authentication",
        )),
    )?;
    v.add(
        "pack/header-nonce-flipped.pack",
        &modify(bytes, |b| b[header_start] ^= 0x01),
        sealed(reject("pack", "Authentication", "one bit flipped in the header's nonce")),
    )?;

    let mut bigger = blob(keys, BlobType::Data, &text, true);
    bigger.raw_len = 1000;
    bigger.id = keys.blob_id(&text[..1000]);
    let (pack, _) = pack_fixed(key, "pack blob larger than raw_len", &[bigger]);
    v.add(
        "pack/blob-larger-than-raw-len.pack",
        &pack,
        sealed(reject(
            "pack",
            "Malformed",
            "a zstd blob that decompresses to more than the raw_len (1000) its entry and AD declare",
        )),
    )?;
    let mut short = blob(keys, BlobType::Data, b"six b", false);
    short.raw_len = 6;
    let (pack, _) = pack_fixed(key, "pack raw blob shorter than raw_len", &[short]);
    v.add(
        "pack/raw-blob-shorter-than-raw-len.pack",
        &pack,
        sealed(reject("pack", "Malformed", "an uncompressed blob of 5 bytes whose entry declares 6")),
    )?;
    let mut wrong_type = blob(keys, BlobType::Data, b"I am data", false);
    wrong_type.ad = Some(fpack::blob_ad(BlobType::Data, Compression::None, &wrong_type.id, wrong_type.raw_len));
    wrong_type.blob_type = BlobType::Tree;
    let (pack, _) = pack_fixed(key, "pack blob type swapped", &[wrong_type]);
    v.add(
        "pack/blob-type-not-in-ad.pack",
        &pack,
        sealed(reject(
            "pack",
            "Authentication",
            "the header says tree, but the blob was sealed as data: the type is bound in the blob's AD",
        )),
    )?;
    let mut wrong_id = blob(keys, BlobType::Data, b"content whose id is not this", false);
    wrong_id.id = BlobId([0x77; 32]);
    let (pack, _) = pack_fixed(key, "pack blob wrong id", &[wrong_id]);
    v.add(
        "pack/blob-wrong-id.pack",
        &pack,
        sealed(reject("pack", "HashMismatch", "a blob sealed consistently under id 77…77, which is not the keyed BLAKE3 of its plaintext: readers re-hash every blob")),
    )?;
    let (pack, _) = pack_fixed(
        key,
        "pack tree blob unsafe",
        &[blob(keys, BlobType::Tree, br#"{"nodes":[{"name":"..","type":"file","mode":420,"mtime_ns":0}]}"#, false)],
    );
    v.add(
        "pack/tree-blob-unsafe-name.pack",
        &pack,
        sealed(reject("pack", "Malformed", "a tree blob that opens and hashes correctly but names an entry \"..\"")),
    )?;
    let (pack, _) = pack_fixed(key, "pack empty", &[]);
    v.add(
        "pack/empty.pack",
        &pack,
        sealed(ok(
            "pack",
            "a pack with no blobs (never written by v1, but valid): prefix, sealed 5-byte header, trailer",
        )),
    )?;

    // Header plaintexts checked against the pack size, without any cryptography.
    let entry = |t: u8, c: u8, id: u8, offset: u32, sealed_len: u32, raw_len: u32| -> Vec<u8> {
        let mut e = vec![t, c];
        e.extend_from_slice(&[id; 32]);
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&sealed_len.to_le_bytes());
        e.extend_from_slice(&raw_len.to_le_bytes());
        e
    };
    let header = |version: u8, count: u32, entries: &[Vec<u8>]| -> Vec<u8> {
        let mut h = vec![version];
        h.extend_from_slice(&count.to_le_bytes());
        for e in entries {
            h.extend_from_slice(e);
        }
        h
    };
    // Two blobs of 100 and 50 sealed bytes: blob area 9..159. With two entries the sealed header is
    // 5 + 2·46 + 28 = 125 bytes, so the pack is 159 + 125 + 4 = 288 bytes.
    let (pack_len, header_len) = (288u64, 125u32);
    let good = [entry(0, 1, 1, 9, 100, 500), entry(1, 0, 2, 109, 50, 22)];
    let hv = |file: &str,
              bytes: Vec<u8>,
              e: serde_json::Map<String, Value>,
              pl: u64,
              hl: u32|
     -> (String, Vec<u8>, serde_json::Map<String, Value>) {
        (file.to_string(), bytes, e.with("form", "header").with("pack_len", pl).with("header_len", hl))
    };
    let cases = vec![
        hv(
            "header-ok.bin",
            header(1, 2, &good),
            ok("pack", "two entries filling the blob area 9..159 of a 288-byte pack"),
            pack_len,
            header_len,
        ),
        hv(
            "header-empty.bin",
            header(1, 0, &[]),
            ok("pack", "no entries: the blob area is empty (pack of 9 + 33 + 4 bytes)"),
            46,
            33,
        ),
        hv(
            "header-version-2.bin",
            header(2, 2, &good),
            reject("pack", "UnsupportedVersion", "header plaintext version 2"),
            pack_len,
            header_len,
        ),
        hv(
            "header-overlap.bin",
            header(1, 2, &[entry(0, 1, 1, 9, 100, 500), entry(1, 0, 2, 100, 59, 22)]),
            reject("pack", "Malformed", "the second blob starts at 100, inside the first (9..109)"),
            pack_len,
            header_len,
        ),
        hv(
            "header-gap.bin",
            header(1, 2, &[entry(0, 1, 1, 9, 90, 500), entry(1, 0, 2, 109, 50, 22)]),
            reject("pack", "Malformed", "the first blob ends at 99, the second starts at 109: a gap"),
            pack_len,
            header_len,
        ),
        hv(
            "header-first-offset-not-9.bin",
            header(1, 2, &[entry(0, 1, 1, 10, 99, 500), entry(1, 0, 2, 109, 50, 22)]),
            reject("pack", "Malformed", "the first blob must start right after the 9-byte prefix"),
            pack_len,
            header_len,
        ),
        hv(
            "header-short-of-blob-area.bin",
            header(1, 2, &[entry(0, 1, 1, 9, 100, 500), entry(1, 0, 2, 109, 40, 22)]),
            reject("pack", "Malformed", "the blobs end at 149 but the header starts at 159: unaccounted bytes"),
            pack_len,
            header_len,
        ),
        hv(
            "header-past-blob-area.bin",
            header(1, 2, &[entry(0, 1, 1, 9, 100, 500), entry(1, 0, 2, 109, 60, 22)]),
            reject("pack", "Malformed", "the second blob runs to 169, into the sealed header"),
            pack_len,
            header_len,
        ),
        hv(
            "header-count-too-large.bin",
            header(1, 3, &good),
            reject("pack", "Malformed", "the count says 3 entries but 92 bytes (2 entries) follow"),
            pack_len,
            header_len,
        ),
        hv(
            "header-count-huge.bin",
            header(1, u32::MAX, &good),
            reject("pack", "Malformed", "the count is 2^32-1: refused before anything is allocated"),
            pack_len,
            header_len,
        ),
        hv(
            "header-trailing-bytes.bin",
            [header(1, 2, &good), vec![0]].concat(),
            reject("pack", "Malformed", "one byte after the last entry"),
            pack_len,
            header_len,
        ),
        hv(
            "header-longer-than-pack.bin",
            header(1, 2, &good),
            reject("pack", "Malformed", "header_len 300 does not fit a 288-byte pack"),
            pack_len,
            300,
        ),
        hv(
            "header-unknown-blob-type.bin",
            header(1, 2, &[entry(2, 1, 1, 9, 100, 500), entry(1, 0, 2, 109, 50, 22)]),
            reject("pack", "Malformed", "blob type 2 (only 0 data and 1 tree exist)"),
            pack_len,
            header_len,
        ),
        hv(
            "header-unknown-compression.bin",
            header(1, 2, &[entry(0, 2, 1, 9, 100, 500), entry(1, 0, 2, 109, 50, 22)]),
            reject("pack", "Malformed", "compression 2 (only 0 none and 1 zstd exist)"),
            pack_len,
            header_len,
        ),
        hv(
            "header-sealed-len-below-seal.bin",
            header(1, 3, &[entry(0, 1, 1, 9, 100, 500), entry(0, 0, 3, 109, 27, 0), entry(1, 0, 2, 136, 23, 22)]),
            reject("pack", "Malformed", "a blob of 27 sealed bytes cannot hold a 12-byte nonce and a 16-byte tag"),
            pack_len + 46,
            header_len + 46,
        ),
        hv(
            "header-raw-len-over-64mib.bin",
            header(1, 2, &[entry(0, 1, 1, 9, 100, 64 * 1024 * 1024 + 1), entry(1, 0, 2, 109, 50, 22)]),
            reject("pack", "Malformed", "raw_len 64 MiB + 1 is over the blob size limit"),
            pack_len,
            header_len,
        ),
        hv(
            "header-truncated.bin",
            header(1, 2, &good)[..60].to_vec(),
            reject("pack", "Malformed", "the header stops in the middle of the second entry"),
            pack_len,
            header_len,
        ),
    ];
    for (file, bytes, e) in cases {
        v.add(&format!("pack/{file}"), &bytes, e)?;
    }
    Ok(())
}

fn index_vectors(v: &mut Vectors, key: &[u8; 32]) -> Result<()> {
    let entry = |id: u8, offset: u32, sealed_len: u32| PackEntry {
        blob_type: BlobType::Data,
        compression: Compression::Zstd,
        id: BlobId([id; 32]),
        offset,
        sealed_len,
        raw_len: 1000,
    };
    let seg = IndexSegment {
        superseded: vec![IndexId([0xa1; 32]), IndexId([0xa2; 32])],
        packs: vec![
            IndexedPack { id: PackId([0xb1; 32]), entries: vec![entry(1, 9, 100), entry(2, 109, 200)] },
            IndexedPack { id: PackId([0xb2; 32]), entries: vec![entry(3, 9, 300)] },
        ],
        condemned: Vec::new(),
    };
    let good = seg.encode();
    let with_condemned = IndexSegment {
        superseded: vec![IndexId([0xa1; 32])],
        packs: vec![IndexedPack { id: PackId([0xb1; 32]), entries: vec![entry(1, 9, 100)] }],
        condemned: vec![IndexedPack { id: PackId([0xc1; 32]), entries: vec![entry(4, 9, 400), entry(5, 409, 50)] }],
    };
    let condemned = with_condemned.encode();
    let plain = |e: serde_json::Map<String, Value>| e.with("form", "plain");
    v.add(
        "index/ok-superseded.bin",
        &good,
        plain(ok("index", "supersedes segments a1…a1 and a2…a2; lists two packs with 2 and 1 entries")),
    )?;
    v.add(
        "index/ok-empty.bin",
        &IndexSegment::default().encode(),
        plain(ok("index", "nothing superseded, no packs (what repair-index writes for a repository without packs)")),
    )?;
    v.add(
        "index/ok-condemned.bin",
        &condemned,
        plain(ok(
            "index",
            "version 2 (what prune writes): supersedes a1…a1; lists pack b1…b1 (1 entry) and condemned pack c1…c1 \
             (2 entries)",
        )),
    )?;
    // Offsets of the counts in `good`: version at 0, superseded count at 1, ids at 5..69, pack count at 69,
    // first pack id at 73..105, its entry count at 105, its entries at 109..201.
    let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        ("version-3.bin", "UnsupportedVersion", "plaintext version byte 3", modify(&good, |b| b[0] = 3)),
        (
            "version-2-without-condemned-list.bin",
            "Malformed",
            "index/ok-superseded.bin with version byte 2: the condemned count is missing",
            modify(&good, |b| b[0] = 2),
        ),
        (
            "version-2-empty-condemned-list.bin",
            "Malformed",
            "index/ok-superseded.bin with version byte 2 and a condemned count of 0: that segment is version 1, \
             the only encoding writers use (found by fuzzing: it re-encoded to different bytes)",
            {
                let mut b = modify(&good, |b| b[0] = 2);
                b.extend_from_slice(&0u32.to_le_bytes());
                b
            },
        ),
        (
            "condemned-count-too-large.bin",
            "Malformed",
            "index/ok-condemned.bin claiming 2^32-1 condemned packs: refused before anything is allocated",
            {
                // version, 1 superseded id, one pack of one entry, then the condemned count.
                let at = 1 + 4 + 32 + 4 + 32 + 4 + 46;
                modify(&condemned, |b| b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes()))
            },
        ),
        (
            "superseded-count-too-large.bin",
            "Malformed",
            "superseded count 1000: more ids than bytes",
            modify(&good, |b| b[1..5].copy_from_slice(&1000u32.to_le_bytes())),
        ),
        (
            "pack-count-too-large.bin",
            "Malformed",
            "pack count 2^32-1: refused before anything is allocated",
            modify(&good, |b| b[69..73].copy_from_slice(&u32::MAX.to_le_bytes())),
        ),
        (
            "entry-count-too-large.bin",
            "Malformed",
            "the first pack claims 100 entries: more than the segment holds",
            modify(&good, |b| b[105..109].copy_from_slice(&100u32.to_le_bytes())),
        ),
        ("trailing-bytes.bin", "Malformed", "one byte after the last pack", [good.clone(), vec![0]].concat()),
        ("truncated.bin", "Malformed", "the last entry is cut short", good[..good.len() - 10].to_vec()),
        ("bad-entry-blob-type.bin", "Malformed", "the first entry's blob type is 9", modify(&good, |b| b[109] = 9)),
        (
            "bad-entry-sealed-len.bin",
            "Malformed",
            "the first entry's sealed length is 10, shorter than a seal",
            modify(&good, |b| b[109 + 38..109 + 42].copy_from_slice(&10u32.to_le_bytes())),
        ),
        ("empty-file.bin", "Malformed", "zero bytes: not even a version", Vec::new()),
    ];
    for (file, error, why, bytes) in cases {
        v.add(&format!("index/{file}"), &bytes, plain(reject("index", error, why)))?;
    }
    let sealed = envelope_fixed(key, "index sealed version 3", ObjectKind::Index, true, &modify(&good, |b| b[0] = 3));
    v.add(
        "index/sealed-version-3.bin",
        &sealed,
        reject("index", "UnsupportedVersion", "a valid v1 envelope whose plaintext is an index segment of version 3")
            .with("form", "sealed"),
    )?;
    let sealed = envelope_fixed(key, "index sealed ok", ObjectKind::Index, false, &good);
    v.add(
        "index/sealed-ok-uncompressed.bin",
        &sealed,
        ok("index", "index/ok-superseded.bin sealed without compression (compression byte 0)")
            .with("form", "sealed")
            .with("plaintext", "index/ok-superseded.bin"),
    )?;
    Ok(())
}

fn tree_vectors(v: &mut Vectors) -> Result<()> {
    let sub = id_hex(0x11);
    let content = [id_hex(0x21), id_hex(0x22)];
    let good = json!({ "nodes": [
        { "name": "a-file", "type": "file", "mode": 0o644, "mtime_ns": 1_700_000_000_123_456_789i64, "ctime_ns": 1_700_000_001_000_000_000i64,
          "inode": 1234, "device": 64768, "size": 1500, "content": content },
        { "name": "b-dir", "type": "dir", "mode": 0o755, "mtime_ns": -1_000_000_000, "subtree": sub },
        { "name": "c-link", "type": "symlink", "mode": 0o777, "mtime_ns": 0, "target": "../a-file" },
        { "name_hex": "63e9", "type": "file", "mode": 0o600, "mtime_ns": 0, "size": 0 },
        { "name": "d-link", "type": "symlink", "mode": 0o777, "mtime_ns": 0, "target_hex": "ff00ff" }
    ]});
    let plain = |e: serde_json::Map<String, Value>| e.with("form", "plain");
    v.add_json(
        "tree/ok-crafted.json",
        &good,
        plain(ok(
            "tree",
            "every node kind, a negative mtime, target_hex, and name_hex 63e9 (\"c\\xe9\", not UTF-8), which sorts bytewise between c-link and d-link",
        )),
    )?;
    v.add("tree/ok-empty.json", br#"{"nodes":[]}"#, plain(ok("tree", "an empty folder")))?;
    let node = |name: &str| json!({ "name": name, "type": "file", "mode": 420, "mtime_ns": 0 });
    let tree = |nodes: Vec<Value>| json!({ "nodes": nodes });
    let cases: Vec<(&str, &str, Value)> = vec![
        ("name-dotdot-slash-x.json", "the name \"../x\" would escape the folder", tree(vec![node("../x")])),
        ("name-dotdot.json", "the name \"..\"", tree(vec![node("..")])),
        ("name-dot.json", "the name \".\"", tree(vec![node(".")])),
        ("name-empty.json", "an empty name", tree(vec![node("")])),
        ("name-with-slash.json", "the name \"a/b\" is two path components", tree(vec![node("a/b")])),
        ("name-absolute.json", "the name \"/etc\"", tree(vec![node("/etc")])),
        ("name-with-nul.json", "a NUL byte in a name", tree(vec![node("a\u{0}b")])),
        (
            "name-hex-with-slash.json",
            "name_hex 612f62 is \"a/b\": raw names are checked like UTF-8 ones",
            tree(vec![json!({ "name_hex": "612f62", "type": "file", "mode": 420, "mtime_ns": 0 })]),
        ),
        (
            "name-hex-dotdot.json",
            "name_hex 2e2e is \"..\"",
            tree(vec![json!({ "name_hex": "2e2e", "type": "file", "mode": 420, "mtime_ns": 0 })]),
        ),
        (
            "name-hex-not-hex.json",
            "name_hex must be hex",
            tree(vec![json!({ "name_hex": "zz", "type": "file", "mode": 420, "mtime_ns": 0 })]),
        ),
        ("duplicate-names.json", "two entries named \"a\"", tree(vec![node("a"), node("a")])),
        (
            "unsorted-names.json",
            "\"b\" before \"a\": entries are sorted by the bytes of their names",
            tree(vec![node("b"), node("a")]),
        ),
        (
            "unsorted-by-bytes.json",
            "\"a\" (0x61) before \"B\" (0x42): the order is bytewise, not case-insensitive",
            tree(vec![node("a"), node("B")]),
        ),
        (
            "duplicate-via-name-hex.json",
            "\"a\" and name_hex 61 are the same raw name",
            tree(vec![node("a"), json!({ "name_hex": "61", "type": "file", "mode": 420, "mtime_ns": 0 })]),
        ),
        (
            "name-and-name-hex.json",
            "a node has exactly one of name and name_hex",
            tree(vec![json!({ "name": "a", "name_hex": "61", "type": "file", "mode": 420, "mtime_ns": 0 })]),
        ),
        ("no-name.json", "a node without a name", tree(vec![json!({ "type": "file", "mode": 420, "mtime_ns": 0 })])),
        (
            "dir-without-subtree.json",
            "a folder must name its subtree",
            tree(vec![json!({ "name": "d", "type": "dir", "mode": 493, "mtime_ns": 0 })]),
        ),
        (
            "symlink-without-target.json",
            "a symlink needs target or target_hex",
            tree(vec![json!({ "name": "l", "type": "symlink", "mode": 511, "mtime_ns": 0 })]),
        ),
        (
            "symlink-target-and-target-hex.json",
            "a symlink has exactly one of target and target_hex",
            tree(vec![
                json!({ "name": "l", "type": "symlink", "mode": 511, "mtime_ns": 0, "target": "a", "target_hex": "61" }),
            ]),
        ),
        (
            "content-on-dir.json",
            "only files have content",
            tree(vec![
                json!({ "name": "d", "type": "dir", "mode": 493, "mtime_ns": 0, "subtree": sub, "content": [id_hex(0x21)] }),
            ]),
        ),
        (
            "unknown-type.json",
            "node types are file, dir and symlink",
            tree(vec![json!({ "name": "p", "type": "fifo", "mode": 420, "mtime_ns": 0 })]),
        ),
        (
            "unknown-field.json",
            "a v1 node has exactly the v1 fields",
            tree(vec![json!({ "name": "a", "type": "file", "mode": 420, "mtime_ns": 0, "xattrs": {} })]),
        ),
        ("missing-mode.json", "mode is required", tree(vec![json!({ "name": "a", "type": "file", "mtime_ns": 0 })])),
        (
            "bad-content-id.json",
            "content ids are 64 hex digits",
            tree(vec![json!({ "name": "a", "type": "file", "mode": 420, "mtime_ns": 0, "content": ["abcd"] })]),
        ),
        ("no-nodes.json", "a tree is an object with a nodes array", json!({})),
    ];
    for (file, why, t) in cases {
        v.add_json(&format!("tree/{file}"), &t, plain(reject("tree", "Malformed", why)))?;
    }
    v.add(
        "tree/duplicate-json-key.json",
        br#"{"nodes":[{"name":"a","name":"b","type":"file","mode":420,"mtime_ns":0}]}"#,
        plain(reject("tree", "Malformed", "a node repeats the key \"name\": tree readers refuse repeated keys")),
    )?;
    Ok(())
}

fn snapshot_vectors(v: &mut Vectors, key: &[u8; 32]) -> Result<()> {
    let minimal = json!({ "version": 1, "time": "2024-01-01T00:00:00Z", "tree": id_hex(0x31), "paths": ["/srv/data"] });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = minimal.clone();
        f(&mut c);
        c
    };
    let plain = |e: serde_json::Map<String, Value>| e.with("form", "plain");
    v.add_json(
        "snapshot/ok-minimal.json",
        &minimal,
        plain(ok("snapshot", "only the required fields: version, time, tree, paths")),
    )?;
    v.add_json(
        "snapshot/ok-unknown-field.json",
        &with(&|c| c["a_future_field"] = json!({ "x": 1 })),
        plain(ok(
            "snapshot",
            "v1 readers ignore snapshot fields they do not know (unlike config, key files, locks and trees)",
        )),
    )?;
    v.add_json(
        "snapshot/ok-partial-with-parent.json",
        &with(&|c| {
            c["parent"] = json!(id_hex(0x32));
            c["partial"] = json!(true);
            c["errors"] = json!([{ "path": "/srv/data/locked", "error": "Permission denied (os error 13)" }]);
            c["time"] = json!("2024-01-01T01:00:00.5+01:00");
        }),
        plain(ok("snapshot", "a partial snapshot with a parent, an error list and a time with an offset")),
    )?;
    let cases: Vec<(&str, &str, &str, Value)> = vec![
        (
            "version-2.json",
            "UnsupportedVersion",
            "version 2 is unknown to a v1 reader (the version is read first)",
            with(&|c| {
                c["version"] = json!(2);
                c["tree"] = json!({ "new": "shape" });
            }),
        ),
        ("version-missing.json", "Malformed", "no version", with(&|c| remove(c, "version"))),
        ("bad-time.json", "Malformed", "time must be RFC 3339", with(&|c| c["time"] = json!("yesterday"))),
        ("missing-tree.json", "Malformed", "tree is required", with(&|c| remove(c, "tree"))),
        ("bad-tree-id.json", "Malformed", "the tree id is 64 hex digits", with(&|c| c["tree"] = json!("xyz"))),
        ("missing-paths.json", "Malformed", "paths is required", with(&|c| remove(c, "paths"))),
    ];
    for (file, error, why, s) in cases {
        v.add_json(&format!("snapshot/{file}"), &s, plain(reject("snapshot", error, why)))?;
    }
    v.add(
        "snapshot/not-json.bin",
        b"\x28\xb5\x2f\xfd",
        plain(reject(
            "snapshot",
            "Malformed",
            "a zstd magic, not JSON: the plaintext is what the envelope holds after decompression",
        )),
    )?;
    let sealed = envelope_fixed(
        key,
        "snapshot sealed version 2",
        ObjectKind::Snapshot,
        true,
        &serde_json::to_vec(&with(&|c| c["version"] = json!(2)))?,
    );
    v.add(
        "snapshot/sealed-version-2.bin",
        &sealed,
        reject("snapshot", "UnsupportedVersion", "a valid v1 envelope holding a version 2 snapshot")
            .with("form", "sealed"),
    )?;
    Ok(())
}

fn envelope_vectors(v: &mut Vectors, key: &[u8; 32], snap_rel: &str, snap: &[u8]) -> Result<()> {
    let env = |kind: &str, e: serde_json::Map<String, Value>| e.with("form", "sealed").with("object_kind", kind);
    v.refer(
        snap_rel,
        env(
            "index",
            reject(
                "envelope",
                "Malformed",
                "repo-v1's latest snapshot read where an index segment is expected (kind byte 2, not 1)",
            ),
        ),
    );
    v.refer(
        snap_rel,
        env(
            "snapshot",
            reject(
                "envelope",
                "HashMismatch",
                "repo-v1's latest snapshot under another name: the name is the BLAKE3 of the stored bytes",
            ),
        )
        .with("name", id_hex(0xee)),
    );
    let cases: Vec<(&str, &str, &str, &str, Vec<u8>)> = vec![
        ("version-2.bin", "snapshot", "UnsupportedVersion", "repo-v1's latest snapshot with envelope version byte (offset 7) 2", modify(snap, |b| b[7] = 2)),
        ("bad-magic.bin", "snapshot", "Malformed", "magic SOPHOBX", modify(snap, |b| b[6] = b'X')),
        ("unknown-kind.bin", "snapshot", "Malformed", "kind byte 9", modify(snap, |b| b[8] = 9)),
        (
            "kind-changed.bin",
            "index",
            "Authentication",
            "the kind byte changed from 2 (snapshot) to 1 (index) and read as an index: the prefix is the seal's associated data",
            modify(snap, |b| b[8] = 1),
        ),
        ("unknown-compression.bin", "snapshot", "Malformed", "compression byte 2", modify(snap, |b| b[9] = 2)),
        (
            "compression-flag-cleared.bin",
            "snapshot",
            "Authentication",
            "compression byte changed from 1 to 0: bound by the associated data",
            modify(snap, |b| b[9] = 0),
        ),
        ("flipped-ciphertext.bin", "snapshot", "Authentication", "one bit flipped in the ciphertext", modify(snap, |b| b[30] ^= 0x04)),
        ("flipped-tag.bin", "snapshot", "Authentication", "one bit flipped in the tag", modify(snap, |b| *b.last_mut().expect("not empty") ^= 0x01)),
        ("truncated-prefix.bin", "snapshot", "Malformed", "9 bytes: shorter than the 10-byte prefix", snap[..9].to_vec()),
        ("payload-too-short.bin", "snapshot", "Malformed", "the prefix and 20 bytes: shorter than a nonce and a tag", snap[..30].to_vec()),
        ("empty.bin", "snapshot", "Malformed", "zero bytes", Vec::new()),
    ];
    for (file, kind, error, why, bytes) in cases {
        v.add(&format!("envelope/{file}"), &bytes, env(kind, reject("envelope", error, why)))?;
    }
    // A compressed payload that expands past the 256 MiB object limit.
    let bomb = {
        let zeros = vec![0u8; 256 * 1024 * 1024 + 1];
        let payload = zstd::bulk::compress(&zeros, 1)?;
        let prefix = envelope::prefix(ObjectKind::Snapshot, true);
        [&prefix[..], &seal_fixed(key, "envelope decompression bomb", &payload, &prefix)].concat()
    };
    v.add(
        "envelope/decompression-bomb.bin",
        &bomb,
        env(
            "snapshot",
            reject(
                "envelope",
                "TooLarge",
                "an authentic snapshot envelope whose zstd payload expands to 256 MiB + 1 byte: over the object limit",
            ),
        ),
    )?;
    let minimal = std::fs::read(v.out.join("snapshot/ok-minimal.json"))?;
    v.add(
        "envelope/ok-uncompressed-snapshot.bin",
        &envelope_fixed(key, "envelope uncompressed snapshot", ObjectKind::Snapshot, false, &minimal),
        env(
            "snapshot",
            ok("envelope", "snapshot/ok-minimal.json sealed without compression: compression byte 0 is valid"),
        )
        .with("plaintext", "snapshot/ok-minimal.json"),
    )?;
    Ok(())
}

fn prune_record_vectors(v: &mut Vectors, key: &[u8; 32]) -> Result<()> {
    let record = json!({
        "version": 1,
        "created": "2024-01-01T03:10:00Z",
        "hostname": "vector-host",
        "pid": 4343,
        "packs": [{ "id": id_hex(7), "size": 16_777_216 }, { "id": id_hex(8), "size": 1_048_576 }],
        "holders": [{ "hostname": "web-1", "pid": 77, "created": "2024-01-01T03:00:00.123456789Z" }]
    });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = record.clone();
        f(&mut c);
        c
    };
    let bytes = serde_json::to_vec(&record)?;
    let plain = |e: serde_json::Map<String, Value>| e.with("form", "plain");
    v.add(
        "prune_record/ok.json",
        &bytes,
        plain(ok("prune_record", "two condemned packs, waiting for one client that held a lock")),
    )?;
    v.add_json(
        "prune_record/ok-no-holders.json",
        &with(&|c| c["holders"] = json!([])),
        plain(ok("prune_record", "nothing else ran: ripe at once")),
    )?;
    v.add(
        "prune_record/sealed-ok.bin",
        &envelope_fixed(key, "prune record sealed", ObjectKind::PruneRecord, true, &bytes),
        ok("prune_record", "prune_record/ok.json in an envelope of kind 4, zstd-compressed")
            .with("form", "sealed")
            .with("plaintext", "prune_record/ok.json"),
    )?;
    let cases: Vec<(&str, &str, &str, Value)> = vec![
        ("version-2.json", "UnsupportedVersion", "prune record version 2", with(&|c| c["version"] = json!(2))),
        (
            "unknown-field.json",
            "Malformed",
            "a reader must not delete packs on a record it does not fully understand",
            with(&|c| c["grace"] = json!("1h")),
        ),
        (
            "bad-pack-id.json",
            "Malformed",
            "pack ids are 64 hex digits",
            with(&|c| c["packs"][0]["id"] = json!("data/ab/cd")),
        ),
        ("bad-created.json", "Malformed", "created must be RFC 3339", with(&|c| c["created"] = json!("yesterday"))),
        ("missing-holders.json", "Malformed", "holders is required", with(&|c| remove(c, "holders"))),
    ];
    for (file, error, why, r) in cases {
        v.add_json(&format!("prune_record/{file}"), &r, plain(reject("prune_record", error, why)))?;
    }
    Ok(())
}

fn lock_vectors(v: &mut Vectors, key: &[u8; 32]) -> Result<()> {
    let lock = json!({
        "version": 1,
        "exclusive": false,
        "hostname": "vector-host",
        "pid": 4242,
        "operation": "backup",
        "created": "2024-01-01T00:00:00.000000000Z",
        "refreshed": "2024-01-01T00:05:00.000000000Z"
    });
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = lock.clone();
        f(&mut c);
        c
    };
    let lock_bytes = serde_json::to_vec(&lock)?;
    let plain = |e: serde_json::Map<String, Value>| e.with("form", "plain");
    v.add(
        "lock/ok.json",
        &lock_bytes,
        plain(ok("lock", "a shared backup lock (stale by now: readers ignore it for locking, not for decoding)")),
    )?;
    v.add_json(
        "lock/ok-exclusive.json",
        &with(&|c| c["exclusive"] = json!(true)),
        plain(ok("lock", "an exclusive lock")),
    )?;
    v.add(
        "lock/sealed-ok.bin",
        &envelope_fixed(key, "lock sealed", ObjectKind::Lock, true, &lock_bytes),
        ok("lock", "lock/ok.json in an envelope of kind 3, zstd-compressed")
            .with("form", "sealed")
            .with("plaintext", "lock/ok.json"),
    )?;
    v.add(
        "lock/sealed-ok-uncompressed.bin",
        &envelope_fixed(key, "lock sealed uncompressed", ObjectKind::Lock, false, &lock_bytes),
        ok("lock", "lock/ok.json in an envelope of kind 3, uncompressed")
            .with("form", "sealed")
            .with("plaintext", "lock/ok.json"),
    )?;
    v.add(
        "lock/sealed-read-as-snapshot.bin",
        &envelope_fixed(key, "lock sealed as snapshot check", ObjectKind::Lock, true, &lock_bytes),
        reject("envelope", "Malformed", "a lock read where a snapshot is expected")
            .with("form", "sealed")
            .with("object_kind", "snapshot"),
    )?;
    let cases: Vec<(&str, &str, &str, Value)> = vec![
        ("version-2.json", "UnsupportedVersion", "lock version 2", with(&|c| c["version"] = json!(2))),
        (
            "version-2-new-field.json",
            "UnsupportedVersion",
            "the version is read before any other field, so a newer object with fields this build does not know is reported as an unsupported version, not as malformed",
            with(&|c| {
                c["version"] = json!(2);
                c["scope"] = json!("prune");
            }),
        ),
        ("bad-refreshed.json", "Malformed", "refreshed must be RFC 3339", with(&|c| c["refreshed"] = json!("5 minutes ago"))),
        ("missing-pid.json", "Malformed", "pid is required", with(&|c| remove(c, "pid"))),
        ("unknown-field.json", "Malformed", "a v1 lock has exactly the v1 fields", with(&|c| c["ttl"] = json!(60))),
    ];
    for (file, error, why, l) in cases {
        v.add_json(&format!("lock/{file}"), &l, plain(reject("lock", error, why)))?;
    }
    Ok(())
}
