//! One backend conformance suite, run against every store: local disk, memory, and real S3
//! (moto), Azure Blob (Azurite) and SFTP (sshd) servers on 127.0.0.1, which `scripts/test` starts
//! (`scripts/test-servers`) and describes in `SOPHON_TEST_*_URL` variables. Without them a remote
//! case is skipped with a message — unless `SOPHON_REQUIRE_SERVERS=1` (set by `scripts/test`), which
//! makes it fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use sophon::backend::{open_url, Backend, BackendErrorKind, ObjectInfo};

mod common;

/// A fresh prefix per run, so runs never see each other's objects.
fn unique() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("conformance-{}-{nanos}", std::process::id())
}

/// The store behind `var`, or `None` (skipped) when the variable is unset and servers are optional.
fn remote(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(format!("{}/{}", url.trim_end_matches('/'), unique())),
        _ => {
            assert!(
                std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(),
                "{var} is not set: start the servers with scripts/test-servers (scripts/test does)"
            );
            eprintln!("skipped: {var} is not set (scripts/test-servers start DIR; source DIR/env)");
            None
        }
    }
}

fn list(b: &dyn Backend, dir: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    b.list(dir, &mut |o: ObjectInfo| {
        out.insert(o.name, o.size);
        Ok(())
    })
    .unwrap();
    out
}

fn conformance(url: &str) {
    let b: Arc<dyn Backend> = open_url(url, true).unwrap_or_else(|e| panic!("open {url}: {e}"));
    let small = b"hello, object store".to_vec();
    let big = common::pseudo_random(17 << 20, 3);

    // Create and read, whole and by range.
    b.write("data/ab/one", small.clone().into()).unwrap();
    b.write("data/cd/big", big.clone().into()).unwrap();
    assert_eq!(b.read("data/ab/one").unwrap(), small);
    assert_eq!(b.read("data/cd/big").unwrap(), big, "a large object round-trips");
    assert_eq!(b.read_range("data/ab/one", 0, 5).unwrap(), b"hello");
    assert_eq!(b.read_range("data/ab/one", 7, 12).unwrap(), b"object store");
    let (off, len) = (9 << 20, 3 << 20);
    assert_eq!(b.read_range("data/cd/big", off, len).unwrap(), &big[off as usize..(off + len) as usize]);
    assert_eq!(b.read_range("data/cd/big", big.len() as u64 - 10, 10).unwrap(), &big[big.len() - 10..], "the end");
    assert!(b.read_range("data/ab/one", 15, 10).is_err(), "a range past the end is an error, not a short read");

    // Sizes and missing objects.
    assert_eq!(b.stat("data/ab/one").unwrap(), Some(small.len() as u64));
    assert_eq!(b.stat("data/ab/missing").unwrap(), None);
    let e = b.read("data/ab/missing").unwrap_err();
    assert_eq!(e.kind, BackendErrorKind::NotFound, "{e}");
    assert!(e.location.contains("data/ab/missing"), "errors name the object: {e}");

    // Listing: recursive, relative names, sizes, nothing but objects.
    b.write("snapshots/s1", vec![1; 10].into()).unwrap();
    let listed = list(&*b, "data");
    assert_eq!(listed.get("ab/one"), Some(&(small.len() as u64)));
    assert_eq!(listed.get("cd/big"), Some(&(big.len() as u64)));
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(list(&*b, "snapshots").keys().collect::<Vec<_>>(), vec!["s1"]);
    assert!(list(&*b, "nothing-here").is_empty(), "listing an absent folder is empty, not an error");

    // Concurrent writers.
    std::thread::scope(|s| {
        for t in 0..6 {
            let b = Arc::clone(&b);
            s.spawn(move || {
                for i in 0..5 {
                    let data = common::pseudo_random(100_000 + t * 1000 + i, (t * 10 + i) as u64);
                    b.write(&format!("packs/{t}/{i}"), data.clone().into()).unwrap();
                    assert_eq!(b.read(&format!("packs/{t}/{i}")).unwrap(), data);
                }
            });
        }
    });
    assert_eq!(list(&*b, "packs").len(), 30);

    // Delete; deleting what is gone is not an error (a retried delete must succeed).
    b.delete("data/ab/one").unwrap();
    assert_eq!(b.stat("data/ab/one").unwrap(), None);
    b.delete("data/ab/one").unwrap();
    for name in list(&*b, "packs").keys() {
        b.delete(&format!("packs/{name}")).unwrap();
    }
    assert!(list(&*b, "packs").is_empty());
    b.delete("data/cd/big").unwrap();
    b.delete("snapshots/s1").unwrap();
}

#[test]
fn local_disk() {
    let t = tempfile::tempdir().unwrap();
    conformance(t.path().join("store").to_str().unwrap());
}

#[test]
fn memory() {
    conformance(&format!("memory://{}", unique()));
}

#[test]
fn s3() {
    if let Some(url) = remote("SOPHON_TEST_S3_URL") {
        conformance(&url);
    }
}

#[test]
fn azure_blob() {
    if let Some(url) = remote("SOPHON_TEST_AZBLOB_URL") {
        conformance(&url);
    }
}

#[test]
fn sftp() {
    if let Some(url) = remote("SOPHON_TEST_SFTP_URL") {
        conformance(&url);
    }
}

#[test]
fn a_missing_bucket_or_container_fails_at_open_naming_the_url() {
    for (var, bad) in
        [("SOPHON_TEST_S3_URL", "s3://no-such-bucket-here"), ("SOPHON_TEST_AZBLOB_URL", "azblob://no-such-container")]
    {
        if remote(var).is_none() {
            continue;
        }
        let Err(e) = open_url(&format!("{bad}/x"), true) else { panic!("a missing bucket fails at open") };
        let msg = e.to_string();
        assert!(msg.contains(bad) && msg.contains("does not exist"), "{msg}");
    }
}

#[test]
fn refused_credentials_and_unknown_hosts_fail_at_open_naming_the_url() {
    // Azurite checks the account key (moto accepts any). Variables are per process, so this runs
    // the binary with a wrong key rather than changing this process's environment.
    if let Some(url) = remote("SOPHON_TEST_AZBLOB_URL") {
        let t = tempfile::tempdir().unwrap();
        let out = common::Sophon::new(t.path())
            .cmd()
            .env("AZURE_STORAGE_KEY", "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==")
            .args(["repo", "init", "--repo", &url])
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(0));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&url) && err.contains("credentials were refused"), "{err}");
    }
    // An SFTP host that is not in known_hosts (the servers seed 127.0.0.1, not localhost).
    if let Some(url) = remote("SOPHON_TEST_SFTP_URL") {
        let other = url.replace("@127.0.0.1:", "@localhost:");
        let Err(e) = open_url(&other, true) else { panic!("an unknown host key is refused") };
        let msg = e.to_string();
        assert!(msg.contains(&other) && msg.contains("known_hosts"), "{msg}");
    }
}

#[test]
fn an_sftp_host_whose_key_changed_is_refused_even_when_new_hosts_are_trusted() {
    // The server's port that known_hosts pairs with another key (scripts/test-servers).
    let Some(url) = remote("SOPHON_TEST_SFTP_CHANGED_KEY_URL") else { return };
    let t = tempfile::tempdir().unwrap();
    let init = |known_hosts: &str| {
        let out = common::Sophon::new(t.path())
            .cmd()
            .env("SOPHON_SFTP_KNOWN_HOSTS", known_hosts)
            .args(["repo", "init", "--repo", &url, "--kdf-memory-kib", "1024", "--kdf-iterations", "1"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_ne!(out.status.code(), Some(0), "{known_hosts}: {err}");
        err
    };
    for known_hosts in ["strict", "add"] {
        let err = init(known_hosts);
        assert!(err.contains(&url) && err.contains("known_hosts or changed"), "{known_hosts}: {err}");
    }
    // Nor can a changed key be accepted by configuration (OpenDAL's "accept" would).
    let err = init("accept");
    assert!(err.contains("SOPHON_SFTP_KNOWN_HOSTS=accept") && err.contains("strict"), "{err}");
    // The server is on this machine: the folder the URL names was never created.
    let folder = url.trim_start_matches("sftp://").split_once('/').map(|(_, p)| format!("/{p}")).unwrap();
    assert!(!std::path::Path::new(&folder).exists(), "{folder} was written to");
}
