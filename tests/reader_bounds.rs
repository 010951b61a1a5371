//! Reader bounds (format-spec/repository.md §21): what a reader spends on the plaintext objects it
//! must trust before it holds a key. A forged key file or `config` is refused before the work, with
//! an error naming the object; an open reads and tries at most 20 key files, the hinted ones first.
//!
//! Nothing here derives a key with the forged parameters: a refused file is refused before Argon2id
//! runs, so these tests take milliseconds (the code before the bounds spent minutes on (a)).

mod common;

use std::path::Path;

use serde_json::Value;

use sophon::backend::open_url;
use sophon::crypto::Argon2Params;
use sophon::format::config::{Config, KeyFile};
use sophon::id::content_hash;
use sophon::{Error, InitOptions, KeyId, Repository};

const CHEAP: Argon2Params = Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 };

fn cheap() -> InitOptions {
    InitOptions { argon2: CHEAP, pack_size: 1024 * 1024, ..Default::default() }
}

fn init(dir: &Path, passphrase: &[u8]) -> Repository {
    Repository::init(open_url(dir.to_str().unwrap(), true).unwrap(), passphrase, &cheap(), None).unwrap()
}

fn open(dir: &Path, passphrase: &[u8]) -> sophon::Result<Repository> {
    Repository::open(open_url(dir.to_str().unwrap(), false).unwrap(), passphrase, None)
}

fn key_names(dir: &Path) -> Vec<KeyId> {
    let mut ids: Vec<KeyId> = std::fs::read_dir(dir.join("keys"))
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    ids.sort();
    ids
}

/// A copy of the repository's first key file with `edit` applied, stored under its new hash (so it
/// is a well-formed key file of this repository except for what `edit` changed).
fn forge_key(dir: &Path, edit: &dyn Fn(&mut Value)) -> KeyId {
    let first = key_names(dir)[0];
    let mut v: Value = serde_json::from_slice(&std::fs::read(dir.join("keys").join(first.to_hex())).unwrap()).unwrap();
    edit(&mut v);
    let bytes = serde_json::to_vec_pretty(&v).unwrap();
    let id = KeyId(content_hash(&bytes));
    std::fs::write(dir.join("keys").join(id.to_hex()), bytes).unwrap();
    id
}

fn set_argon2(m: u64, t: u64) -> impl Fn(&mut Value) {
    move |v: &mut Value| {
        v["argon2"]["memory_kib"] = m.into();
        v["argon2"]["iterations"] = t.into();
    }
}

// ------------------------------------------------------------------------------------------------
// (a) KDF parameters

/// The largest parameters the format used to accept (4 GiB, t = 64: about 5 minutes of CPU and 4 GiB
/// per try) are refused by the decoder, naming the key file, before any derivation.
#[test]
fn a_key_file_with_huge_argon2_parameters_is_refused_by_the_decoder() {
    let t = tempfile::tempdir().unwrap();
    drop(init(t.path(), b"pw"));
    let id = forge_key(t.path(), &set_argon2(4 * 1024 * 1024, 64));
    let bytes = std::fs::read(t.path().join("keys").join(id.to_hex())).unwrap();
    let err = KeyFile::decode(&bytes, &format!("key {id}")).unwrap_err();
    assert!(matches!(err, Error::Malformed { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("key {id}: ")), "{msg}");
    assert!(msg.contains("argon2 memory 4194304 KiB is over the 1048576 KiB a reader accepts"), "{msg}");

    // Within the memory and iteration limits each, but 16 GiB of work (about 16 s of one core).
    let err = KeyFile::decode(
        &serde_json::to_vec(&{
            let mut v: Value = serde_json::from_slice(&bytes).unwrap();
            set_argon2(256 * 1024, 64)(&mut v);
            v
        })
        .unwrap(),
        "key x",
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("argon2 work 262144 KiB × 64 iterations = 16777216 KiB is over the 4194304 KiB"),
        "{err}"
    );
}

/// In a repository, a forged key file is skipped without deriving: the right passphrase still opens
/// through the real key, and a wrong one is reported with the forged file named and why.
#[test]
fn a_forged_key_file_is_skipped_and_reported_when_opening() {
    let t = tempfile::tempdir().unwrap();
    drop(init(t.path(), b"pw"));
    // 256 MiB × 64 passes: the code before the bounds derived it (tens of seconds per try).
    let forged = forge_key(t.path(), &set_argon2(256 * 1024, 64));

    let started = std::time::Instant::now();
    let err = open(t.path(), b"not the passphrase").unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(msg.contains(&format!("key {forged}: malformed: argon2 work")), "{msg}");
    assert!(msg.contains("a reader accepts"), "{msg}");
    eprintln!("refused in {:?}", started.elapsed());

    let repo = open(t.path(), b"pw").expect("the real key still opens");
    assert_ne!(repo.key_id(), forged);
}

/// A writer is held to the same bounds, so nothing `init` or `key add` writes is unreadable.
#[test]
fn writers_refuse_what_a_reader_would_refuse() {
    let t = tempfile::tempdir().unwrap();
    let repo = init(t.path(), b"pw");
    let over = Argon2Params { memory_kib: 2 * 1024 * 1024, iterations: 1, parallelism: 1 };
    let err = repo.add_key(b"other", over).unwrap_err();
    assert!(err.to_string().contains("is over the 1048576 KiB a reader accepts"), "{err}");
    let err =
        repo.add_key(b"other", Argon2Params { memory_kib: 1024 * 1024, iterations: 5, parallelism: 1 }).unwrap_err();
    assert!(err.to_string().contains("argon2 work"), "{err}");
    assert_eq!(key_names(t.path()).len(), 1, "nothing was written");
    // The default and the largest allowed parameters are within the bounds.
    for (m, i) in [(64 * 1024, 3), (1024 * 1024, 4), (64 * 1024, 64)] {
        let id = forge_key(t.path(), &set_argon2(m, i));
        let bytes = std::fs::read(t.path().join("keys").join(id.to_hex())).unwrap();
        KeyFile::decode(&bytes, "key").unwrap_or_else(|e| panic!("{m} KiB × {i}: {e}"));
    }

    let u = tempfile::tempdir().unwrap();
    let big = InitOptions { pack_size: 256 * 1024 * 1024, ..cheap() };
    let err = Repository::init(open_url(u.path().to_str().unwrap(), true).unwrap(), b"pw", &big, None).unwrap_err();
    assert!(err.to_string().contains("pack_size 268435456 bytes is over"), "{err}");
}

// ------------------------------------------------------------------------------------------------
// (b) the number of key files tried, and the hint

/// A repository whose key for `right` sorts after at least 20 other key files (their passphrase is
/// `decoy`). Returns the right key's id.
fn repo_with_right_key_last(dir: &Path) -> KeyId {
    let repo = init(dir, b"decoy");
    // Of a few keys under the right passphrase keep the one with the highest id, so few decoys sort after it.
    let mut rights: Vec<KeyId> = (0..8).map(|_| repo.add_key(b"right", CHEAP).unwrap()).collect();
    rights.sort();
    let right = rights.pop().unwrap();
    for id in rights {
        repo.remove_key(&id).unwrap();
    }
    while key_names(dir).iter().filter(|id| **id < right).count() < 21 {
        let id = repo.add_key(b"decoy", CHEAP).unwrap();
        if id > right && id != repo.key_id() {
            repo.remove_key(&id).unwrap();
        }
    }
    right
}

fn sophon_json(work: &Path, repo: &Path, passphrase: &str, hint: Option<(&str, &str)>) -> std::process::Output {
    let s = common::Sophon::new(work);
    let mut c = s.cmd();
    c.env("SOPHON_REPOSITORY_PASSPHRASE", passphrase).env_remove("SOPHON_KEY_HINT");
    let mut args = vec!["repo", "key", "list", "--repo", repo.to_str().unwrap(), "--json"];
    match hint {
        Some(("env", h)) => {
            c.env("SOPHON_KEY_HINT", h);
        }
        Some((_, h)) => args.extend(["--key-hint", h]),
        None => {}
    }
    c.args(&args).output().unwrap()
}

fn current_key(out: &std::process::Output) -> String {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cur: Vec<&Value> = v.as_array().unwrap().iter().filter(|k| k["current"] == true).collect();
    assert_eq!(cur.len(), 1, "{v}");
    cur[0]["id"].as_str().unwrap().to_string()
}

/// More than 20 key files: the right one, 22nd or later in name order, is not tried, and the error
/// says how many were left and how to name one; named by the hint (flag or variable), it opens.
#[test]
fn at_most_20_key_files_are_tried_and_the_hint_names_one() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("repo");
    let right = repo_with_right_key_last(&dir);
    let total = key_names(&dir).len();
    assert!(total >= 22);

    let err = open(&dir, b"right").unwrap_err();
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
    let msg = err.to_string();
    let untried = total - 20;
    assert!(msg.contains(&format!("{untried} more key files were not tried (a reader tries at most 20)")), "{msg}");
    assert!(msg.contains("--key-hint") && msg.contains("SOPHON_KEY_HINT"), "{msg}");

    // The command line says the same.
    let out = sophon_json(t.path(), &dir, "right", None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("were not tried") && stderr.contains("--key-hint"), "{stderr}");

    // Named by the hint, it opens: by the variable with 8 hex digits, by the flag with its whole name.
    let prefix = &right.to_hex()[..8];
    assert_eq!(current_key(&sophon_json(t.path(), &dir, "right", Some(("env", prefix)))), right.to_hex());
    let whole = format!("keys/{}", right.to_hex());
    assert_eq!(current_key(&sophon_json(t.path(), &dir, "right", Some(("flag", &whole)))), right.to_hex());
}

/// The hinted key file is tried before the others: of two keys that both open, the hinted one is the
/// one in use, though the other comes first by name.
#[test]
fn the_hinted_key_is_tried_first() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("repo");
    let repo = init(&dir, b"right");
    let other = repo.add_key(b"right", CHEAP).unwrap();
    drop(repo);
    let ids = key_names(&dir);
    let (first, second) = (ids[0], ids[1]);
    assert!(ids.contains(&other));

    assert_eq!(current_key(&sophon_json(t.path(), &dir, "right", None)), first.to_hex());
    let hint = &second.to_hex()[..12];
    assert_eq!(current_key(&sophon_json(t.path(), &dir, "right", Some(("env", hint)))), second.to_hex());
    assert_eq!(current_key(&sophon_json(t.path(), &dir, "right", Some(("flag", hint)))), second.to_hex());

    // A hint that names no key file does not stop the others; a wrong passphrase then says so.
    assert_eq!(current_key(&sophon_json(t.path(), &dir, "right", Some(("flag", "0000000000")))), first.to_hex());
    let out = sophon_json(t.path(), &dir, "wrong", Some(("flag", "0000000000")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the key hint \"0000000000\" names no key file"), "{stderr}");
    // A hint that is not hex is a mistake, said at once.
    let out = sophon_json(t.path(), &dir, "right", Some(("flag", "my-laptop")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("is not the start of a key id"), "{stderr}");
}

// ------------------------------------------------------------------------------------------------
// (c) sizes: pack_size, the config's and a key file's own size

fn rewrite_config(dir: &Path, edit: &dyn Fn(&mut Value)) {
    let path = dir.join("config");
    let mut v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// A forged `pack_size` of 1 GiB (every backup would buffer 1 GiB per pack) is refused, naming `config`.
#[test]
fn a_config_with_a_1_gib_pack_size_is_refused() {
    let t = tempfile::tempdir().unwrap();
    drop(init(t.path(), b"pw"));
    rewrite_config(t.path(), &|v| v["pack_size"] = (1024u64 * 1024 * 1024).into());
    let err = open(t.path(), b"pw").unwrap_err();
    match &err {
        Error::Malformed { what, reason } => {
            assert_eq!(what, "config");
            assert!(reason.contains("pack_size 1073741824 bytes is over the 134217728 bytes (128 MiB)"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().starts_with("config: "), "{err}");

    // 128 MiB is the largest accepted.
    rewrite_config(t.path(), &|v| v["pack_size"] = (128u64 * 1024 * 1024).into());
    assert_eq!(open(t.path(), b"pw").unwrap().config().pack_size, 128 * 1024 * 1024);
}

/// `config` and key files are small JSON: one padded past 64 KiB is refused before it is parsed.
#[test]
fn an_oversized_config_or_key_file_is_refused() {
    let t = tempfile::tempdir().unwrap();
    drop(init(t.path(), b"pw"));
    let config = std::fs::read(t.path().join("config")).unwrap();
    let mut padded = config.clone();
    padded.extend(vec![b' '; 70 * 1024]);
    assert!(Config::decode(&config).is_ok());
    let err = Config::decode(&padded).unwrap_err();
    assert!(
        err.to_string().starts_with("config: malformed: ") && err.to_string().contains("bytes is over the 65536"),
        "{err}"
    );
    std::fs::write(t.path().join("config"), &padded).unwrap();
    let err = open(t.path(), b"pw").unwrap_err();
    assert!(err.to_string().contains("bytes is over the 65536 bytes a reader accepts"), "{err}");
    std::fs::write(t.path().join("config"), &config).unwrap();

    let forged = forge_key(t.path(), &|v| v["hostname"] = "h".repeat(70 * 1024).into());
    let err = open(t.path(), b"wrong").unwrap_err();
    assert!(err.to_string().contains(&format!("key {forged}: malformed: ")), "{err}");
    assert!(err.to_string().contains("is over the 65536 bytes a reader accepts"), "{err}");
    open(t.path(), b"pw").expect("the real key still opens");
}
