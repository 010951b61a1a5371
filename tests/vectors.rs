//! The repository format v1 test vectors in `format-spec/vectors/` (see its README.md):
//! - `repo-v1/` is a committed repository: it must open with the known passphrase, restore to exactly
//!   the tree `expected.json` describes, and verify clean with every pack read;
//! - every line of `manifest.json` must get its expected outcome from the matching decoder, and a
//!   rejected vector must fail with the named error variant, naming the object.
//!
//! The vectors are read, never regenerated (`cargo run --example gen_vectors` writes them).

use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use sophon::archive::Progress;
use sophon::check::{check, CheckOptions};
use sophon::crypto::{argon2id, MasterKeys, SealKey};
use sophon::format::config::{Config, KeyFile, Lock, KEY_AD};
use sophon::format::envelope::ObjectKind;
use sophon::format::index::IndexSegment;
use sophon::format::pack::{self as fpack, decode_header, encode_header};
use sophon::format::snapshot::Snapshot;
use sophon::format::tree::Tree;
use sophon::id::{BlobType, PackId};
use sophon::restore::{restore, RestoreOptions};
use sophon::{Error, Repository, Session};

const KINDS: [&str; 9] =
    ["config", "key_file", "pack", "index", "tree", "snapshot", "envelope", "lock", "prune_record"];

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("format-spec").join("vectors")
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

fn passphrase() -> String {
    read_json(&vectors_dir().join("expected.json"))["passphrase"]
        .as_str()
        .expect("expected.json names the passphrase")
        .to_string()
}

/// A copy of repo-v1 in a temporary folder (opening a local repository creates `.tmp/` in it, and
/// the committed vectors stay untouched), opened with an in-memory index cache.
fn open_repo_v1(tmp: &Path) -> Repository {
    let dir = tmp.join("repo-v1");
    copy_dir(&vectors_dir().join("repo-v1"), &dir);
    let backend = sophon::backend::open_url(dir.to_str().unwrap(), false).unwrap();
    Repository::open(backend, passphrase().as_bytes(), None).expect("repo-v1 opens with the known passphrase")
}

// ------------------------------------------------------------------------------------------------
// repo-v1

fn path_json(rel: &[u8], key: &str, obj: &mut serde_json::Map<String, Value>) {
    match std::str::from_utf8(rel) {
        Ok(s) => obj.insert(key.into(), json!(s)),
        Err(_) => obj.insert(format!("{key}_hex"), json!(hex::encode(rel))),
    };
}

/// Describe a restored folder the way expected.json does: the folder, then its entries sorted by
/// the bytes of their names, recursively.
fn describe(dir: &Path, rel: &[u8], out: &mut Vec<Value>) {
    let meta = std::fs::symlink_metadata(dir).unwrap();
    let mut obj = serde_json::Map::new();
    path_json(rel, "path", &mut obj);
    obj.insert("type".into(), json!("dir"));
    obj.insert("mode".into(), json!(meta.mode() & 0o7777));
    obj.insert("mtime_ns".into(), json!(meta.mtime() * 1_000_000_000 + meta.mtime_nsec()));
    out.push(Value::Object(obj));
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in names {
        let p = dir.join(&name);
        let r = [rel, b"/", name.as_bytes()].concat();
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            describe(&p, &r, out);
            continue;
        }
        let mut obj = serde_json::Map::new();
        path_json(&r, "path", &mut obj);
        let mtime = meta.mtime() * 1_000_000_000 + meta.mtime_nsec();
        if meta.file_type().is_symlink() {
            obj.insert("type".into(), json!("symlink"));
            obj.insert("mtime_ns".into(), json!(mtime));
            path_json(std::fs::read_link(&p).unwrap().as_os_str().as_bytes(), "target", &mut obj);
        } else {
            assert!(meta.is_file(), "{}: restore made something that is not a file", p.display());
            let data = std::fs::read(&p).unwrap();
            obj.insert("type".into(), json!("file"));
            obj.insert("mode".into(), json!(meta.permissions().mode() & 0o7777));
            obj.insert("mtime_ns".into(), json!(mtime));
            obj.insert("size".into(), json!(data.len()));
            obj.insert("blake3".into(), json!(blake3::hash(&data).to_hex().to_string()));
        }
        out.push(Value::Object(obj));
    }
}

#[test]
fn repo_v1_opens_restores_the_expected_tree_and_verifies_clean() {
    let expected = read_json(&vectors_dir().join("expected.json"));
    let tmp = tempfile::tempdir().unwrap();
    let repo = open_repo_v1(tmp.path());
    assert_eq!(repo.keys().repo_id, repo.config().id, "the id sealed in the key is the config's");

    let (snaps, bad) = repo.list_snapshots().unwrap();
    assert!(bad.is_empty(), "unreadable snapshots: {bad:?}");
    assert_eq!(snaps.len() as u64, expected["snapshots"].as_u64().unwrap());
    assert_eq!(snaps[0].0.to_hex(), expected["first"].as_str().unwrap());
    let latest = repo.resolve_snapshot("latest").unwrap();
    assert_eq!(latest.to_hex(), expected["latest"].as_str().unwrap());
    assert_eq!(snaps[1].1.parent, Some(snaps[0].0), "the second snapshot names the first as its parent");

    let target = tmp.path().join("restored");
    let opts = RestoreOptions { target: target.clone(), threads: 2 };
    let repo = Arc::new(repo);
    let session = Session::shared(Arc::clone(&repo), "test").unwrap();
    let outcome = restore(&session, &latest, &opts, Arc::new(Progress::default())).unwrap();

    let want = expected["entries"].as_array().unwrap();
    let mut got = Vec::new();
    let mut roots: Vec<_> = std::fs::read_dir(&target).unwrap().map(|e| e.unwrap().file_name()).collect();
    roots.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    for name in roots {
        describe(&target.join(&name), name.as_bytes(), &mut got);
    }
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g, w, "restored entry differs from expected.json");
    }
    assert_eq!(got.len(), want.len(), "restored {} entries, expected.json lists {}", got.len(), want.len());
    let count = |t: &str| want.iter().filter(|e| e["type"] == t).count() as u64;
    assert_eq!((outcome.files, outcome.dirs, outcome.symlinks), (count("file"), count("dir"), count("symlink")));

    let report = check(&session, &CheckOptions { read_data_percent: Some(100.0) }, &mut |_| {}).unwrap();
    assert!(report.findings.is_empty(), "verify found damage in repo-v1: {:?}", report.findings);
    assert!(report.warnings.is_empty(), "verify warned about repo-v1: {:?}", report.warnings);
    assert_eq!(report.snapshots, 2);
    assert!(report.packs > 0);
    assert_eq!(report.packs_read, report.packs, "read_data 100% reads every pack");
}

#[test]
fn repo_v1_refuses_a_wrong_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("repo-v1");
    copy_dir(&vectors_dir().join("repo-v1"), &dir);
    let backend = sophon::backend::open_url(dir.to_str().unwrap(), false).unwrap();
    let err = Repository::open(backend, b"not the passphrase", None).unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
}

// ------------------------------------------------------------------------------------------------
// manifest.json

fn variant(e: &Error) -> &'static str {
    match e {
        Error::Backend(_) => "Backend",
        Error::Malformed { .. } => "Malformed",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::Authentication { .. } => "Authentication",
        Error::WrongPassphrase { .. } => "WrongPassphrase",
        Error::HashMismatch { .. } => "HashMismatch",
        Error::TooLarge { .. } => "TooLarge",
        Error::Io { .. } => "Io",
        Error::Sqlite { .. } => "Sqlite",
        Error::NotFound(_) => "NotFound",
        Error::PackUnreadable(_) => "PackUnreadable",
        Error::BlobNotIndexed(_) => "BlobNotIndexed",
        Error::Invalid(_) => "Invalid",
        Error::Locked { .. } => "Locked",
        Error::WrongSession { .. } => "WrongSession",
        Error::UnsafePath(_) => "UnsafePath",
        Error::LatestUnreadable { .. } => "LatestUnreadable",
        Error::RestoreIncomplete { .. } => "RestoreIncomplete",
        Error::Cancelled => "Cancelled",
    }
}

/// The object an error names, for the variants that carry one.
fn named_object(e: &Error) -> Option<&str> {
    match e {
        Error::Malformed { what, .. }
        | Error::UnsupportedVersion { what, .. }
        | Error::Authentication { what }
        | Error::HashMismatch { what, .. }
        | Error::TooLarge { what, .. } => Some(what),
        _ => None,
    }
}

fn object_kind(name: &str) -> ObjectKind {
    match name {
        "index" => ObjectKind::Index,
        "snapshot" => ObjectKind::Snapshot,
        "lock" => ObjectKind::Lock,
        "prune_record" => ObjectKind::PruneRecord,
        other => panic!("unknown object kind {other:?} in manifest.json"),
    }
}

struct Ctx {
    repo: Repository,
    dir: PathBuf,
}

impl Ctx {
    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// Decode a stored object's plaintext with the decoder for `kind`.
fn decode_plain(kind: ObjectKind, plain: &[u8], what: &str) -> sophon::Result<()> {
    match kind {
        ObjectKind::Index => IndexSegment::decode(plain, what).map(drop),
        ObjectKind::Snapshot => Snapshot::decode(plain, what).map(drop),
        ObjectKind::Lock => Lock::decode(plain, what).map(drop),
        ObjectKind::PruneRecord => sophon::format::prune::PruneRecord::decode(plain, what).map(drop),
    }
}

/// Run one vector through its decoder. `Err` is the reader's verdict; a wrong plaintext or a failed
/// round trip on an `ok` vector panics.
fn run(ctx: &Ctx, v: &Value) -> sophon::Result<()> {
    let file = v["file"].as_str().unwrap();
    let kind = v["kind"].as_str().unwrap();
    let form = v["form"].as_str().unwrap();
    let bytes = ctx.read(file);
    let expect_ok = v["expect"] == "ok";
    let keys = ctx.repo.keys();
    match (kind, form) {
        ("config", "plain") => Config::decode(&bytes).map(drop),
        ("key_file", "plain") => {
            let what = format!("key file {file}");
            let kf = KeyFile::decode(&bytes, &what)?;
            let Some(pass) = v["passphrase"].as_str() else { return Ok(()) };
            let kek = argon2id(pass.as_bytes(), &kf.salt_bytes(&what)?, kf.argon2)?;
            let plain = SealKey::new(*kek).open(&kf.wrapped_bytes(&what)?, KEY_AD, &|| what.clone())?;
            let master = MasterKeys::decode(&plain)?;
            assert_eq!(
                &master.encode()[..],
                &keys.encode()[..],
                "{file}: every key of repo-v1 wraps the same master keys"
            );
            Ok(())
        }
        ("pack", "header") => {
            let pack_len = v["pack_len"].as_u64().unwrap();
            let header_len = v["header_len"].as_u64().unwrap() as u32;
            let entries = decode_header(&bytes, pack_len, header_len, &format!("pack header {file}"))?;
            assert_eq!(encode_header(&entries), bytes, "{file}: the header encoding is canonical");
            Ok(())
        }
        ("pack", "sealed") => {
            let name: Option<PackId> = v["name"].as_str().map(|n| n.parse().unwrap());
            let entries = sophon::pack::parse_pack(&keys.seal, name.as_ref(), &bytes)?;
            if let Some(p) = v["plaintext"].as_str() {
                let header_len = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()) as usize;
                let sealed = &bytes[bytes.len() - 4 - header_len..bytes.len() - 4];
                let plain = keys.seal.open(sealed, fpack::HEADER_AD, &|| format!("pack {file} header")).unwrap();
                assert_eq!(plain, ctx.read(p), "{file}: the sealed header opens to {p}");
            }
            // What restore and verify do with every blob: open it, re-hash it, parse it if a tree.
            for e in &entries {
                let what = format!("blob {} in pack {file}", e.id);
                let sealed = bytes[e.offset as usize..(e.offset + e.sealed_len) as usize].to_vec();
                let plain = sophon::pack::open_blob(&keys.seal, e, sealed, &|| what.clone())?;
                if keys.blob_id(&plain) != e.id {
                    return Err(Error::HashMismatch { what, expected: e.id.to_hex() });
                }
                if e.blob_type == BlobType::Tree {
                    Tree::decode(&plain, &format!("tree {} in pack {file}", e.id))?;
                }
            }
            Ok(())
        }
        ("index", "plain") => {
            let seg = IndexSegment::decode(&bytes, &format!("index segment {file}"))?;
            assert_eq!(seg.encode(), bytes, "{file}: the index segment encoding is canonical");
            Ok(())
        }
        ("tree", "plain") => Tree::decode(&bytes, &format!("tree {file}")).map(drop),
        ("snapshot", "plain") => Snapshot::decode(&bytes, &format!("snapshot {file}")).map(drop),
        ("lock", "plain") => Lock::decode(&bytes, &format!("lock {file}")).map(drop),
        ("prune_record", "plain") => {
            sophon::format::prune::PruneRecord::decode(&bytes, &format!("prune record {file}")).map(drop)
        }
        ("index" | "snapshot" | "lock" | "prune_record" | "envelope", "sealed") => {
            let obj = object_kind(if kind == "envelope" { v["object_kind"].as_str().unwrap() } else { kind });
            let id: [u8; 32] = match v["name"].as_str() {
                Some(n) => hex::decode(n).unwrap().try_into().unwrap(),
                None => *blake3::hash(&bytes).as_bytes(),
            };
            let plain = ctx.repo.open_object(obj, &id, &bytes)?;
            if let Some(p) = v["plaintext"].as_str() {
                assert_eq!(plain, ctx.read(p), "{file}: opens to {p}");
            }
            assert!(
                !expect_ok || v["plaintext"].is_string() || kind == "envelope",
                "{file}: an ok sealed vector names its plaintext"
            );
            decode_plain(obj, &plain, &format!("{} {}", obj.name(), hex::encode(id)))
        }
        _ => panic!("{file}: no decoder for kind {kind:?} in form {form:?}"),
    }
}

/// What the error of a rejected vector must name.
fn label(v: &Value) -> &'static str {
    match v["kind"].as_str().unwrap() {
        "config" => "config",
        "key_file" => "key",
        "pack" => "pack",
        "tree" => "tree",
        "index" => "index segment",
        "snapshot" => "snapshot",
        "lock" => "lock",
        "prune_record" => "prune record",
        "envelope" => object_kind(v["object_kind"].as_str().unwrap()).name(),
        k => panic!("unknown kind {k}"),
    }
}

#[test]
fn every_manifest_vector_gets_its_expected_outcome() {
    let manifest = read_json(&vectors_dir().join("manifest.json"));
    let tmp = tempfile::tempdir().unwrap();
    let ctx = Ctx { repo: open_repo_v1(tmp.path()), dir: vectors_dir() };
    let vectors = manifest["vectors"].as_array().unwrap();
    let mut failures = Vec::new();
    for v in vectors {
        let file = v["file"].as_str().unwrap();
        let kind = v["kind"].as_str().unwrap();
        assert!(KINDS.contains(&kind), "{file}: unknown kind {kind:?}");
        assert!(v["why"].as_str().is_some_and(|w| !w.is_empty()), "{file}: says why");
        let outcome = run(&ctx, v);
        match (v["expect"].as_str().unwrap(), outcome) {
            ("ok", Ok(())) => {}
            ("ok", Err(e)) => failures.push(format!("{file} ({kind}): expected ok, got {e}")),
            ("reject", Ok(())) => {
                failures.push(format!("{file} ({kind}): expected {}, but it was accepted", v["error"]))
            }
            ("reject", Err(e)) => {
                let want = v["error"].as_str().unwrap_or_else(|| panic!("{file}: a reject vector names its error"));
                if variant(&e) != want {
                    failures.push(format!("{file} ({kind}): expected {want}, got {} ({e})", variant(&e)));
                } else if !named_object(&e).is_some_and(|w| w.contains(label(v))) {
                    failures.push(format!("{file} ({kind}): the error does not name the {}: {e}", label(v)));
                }
            }
            (other, _) => panic!("{file}: expect must be ok or reject, not {other:?}"),
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), vectors.len(), failures.join("\n"));
}

#[test]
fn manifest_covers_every_kind_and_every_vector_file() {
    let dir = vectors_dir();
    let manifest = read_json(&dir.join("manifest.json"));
    let vectors = manifest["vectors"].as_array().unwrap();
    let listed: BTreeSet<&str> = vectors.iter().map(|v| v["file"].as_str().unwrap()).collect();
    for f in &listed {
        assert!(dir.join(f).is_file(), "manifest.json lists {f}, which does not exist");
    }
    for kind in KINDS {
        for expect in ["ok", "reject"] {
            assert!(
                vectors.iter().any(|v| v["kind"] == kind && v["expect"] == expect),
                "manifest.json has no {expect} vector of kind {kind}"
            );
        }
        let Ok(rd) = std::fs::read_dir(dir.join(kind)) else { continue };
        for e in rd {
            let rel = format!("{kind}/{}", e.unwrap().file_name().to_string_lossy());
            assert!(listed.contains(rel.as_str()), "{rel} is not in manifest.json");
        }
    }
    // The scenarios the specification promises a vector for.
    for must in [
        "config/version-2.json",
        "config/chunker-min-below-64.json",
        "key_file/unknown-kdf.json",
        "key_file/argon2-memory-huge.json",
        "pack/bad-magic.pack",
        "pack/version-2.pack",
        "pack/trailer-beyond-file.pack",
        "pack/header-overlap.bin",
        "pack/header-gap.bin",
        "pack/flipped-blob-byte.pack",
        "index/entry-count-too-large.bin",
        "index/trailing-bytes.bin",
        "tree/name-dotdot-slash-x.json",
        "tree/name-with-slash.json",
        "tree/duplicate-names.json",
        "tree/unsorted-names.json",
        "tree/dir-without-subtree.json",
        "snapshot/version-2.json",
        "envelope/version-2.bin",
        "envelope/kind-changed.bin",
    ] {
        assert!(listed.contains(must), "manifest.json lacks {must}");
    }
}
