//! Resilience, with faults injected under the retry policy every command uses
//! (`backend::open_url_with`): transient faults are retried until backups and verifies succeed;
//! a permanent fault or a write cut part-way fails the backup with a clear error, writes no
//! snapshot, and leaves a repository that verifies clean.

mod common;

use std::sync::{Arc, Mutex};

use sophon::archive::{backup, BackupOptions, Progress};
use sophon::backend::fault::{Fault, FaultyBackend};
use sophon::backend::{open_url_with, Backend};
use sophon::check::{check, CheckOptions};
use sophon::crypto::Argon2Params;
use sophon::restore::{restore, RestoreOptions};
use sophon::{InitOptions, Repository, Session};

const PASS: &[u8] = b"pw";

fn init(url: &str) {
    let backend = sophon::backend::open_url(url, true).unwrap();
    let opts = InitOptions {
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        pack_size: 1024 * 1024,
        ..InitOptions::default()
    };
    Repository::init(backend, PASS, &opts, None).unwrap();
}

/// The repository at `url` with `fault` injected below the retries; the decorator is kept so the
/// test can count what it injected.
fn open_faulty(url: &str, cache: &std::path::Path, fault: Fault, seed: u64) -> (Arc<Repository>, Arc<FaultyBackend>) {
    let kept: Mutex<Option<Arc<FaultyBackend>>> = Mutex::new(None);
    let backend = open_url_with(url, false, |raw| {
        let f = Arc::new(FaultyBackend::new(raw, fault, seed));
        *kept.lock().unwrap() = Some(Arc::clone(&f));
        f as Arc<dyn Backend>
    })
    .unwrap();
    let repo = Repository::open(backend, PASS, Some(cache.to_path_buf())).unwrap();
    (Arc::new(repo), kept.into_inner().unwrap().unwrap())
}

fn clean_open(url: &str, cache: &std::path::Path) -> Arc<Repository> {
    Arc::new(Repository::open(sophon::backend::open_url(url, false).unwrap(), PASS, Some(cache.to_path_buf())).unwrap())
}

fn verify_clean(repo: &Arc<Repository>) {
    let session = Session::shared(Arc::clone(repo), "check").unwrap();
    let r = check(&session, &CheckOptions { read_data_percent: Some(100.0) }, &mut |_| {}).unwrap();
    assert!(r.is_clean(), "findings: {:?}", r.findings);
}

fn runs_under_transient_faults(url: &str, runs: u64) {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("src");
    init(url);
    let mut injected = 0;
    for run in 0..runs {
        common::sample_tree(&src.join(format!("run{run}")), 512, run);
        // A fresh cache each run, so the index is read through the faults too.
        let cache = t.path().join(format!("cache{run}"));
        let (repo, faults) = open_faulty(url, &cache, Fault::Transient(0.10), run + 1);
        let out = Session::shared(Arc::clone(&repo), "backup")
            .and_then(|s| backup(&s, &BackupOptions::new(vec![src.clone()]), Arc::new(Progress::default())))
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert!(!out.snapshot.partial);
        verify_clean(&repo);
        let target = t.path().join(format!("out{run}"));
        restore(
            &Session::shared(Arc::clone(&repo), "restore").unwrap(),
            &out.snapshot_id,
            &RestoreOptions { target: target.clone(), threads: 3 },
            Arc::new(Progress::default()),
        )
        .unwrap();
        common::assert_same_tree(&src, &target.join("src"));
        injected += faults.injected();
    }
    assert!(injected > runs * 3, "faults were injected ({injected} in {runs} runs)");
}

#[test]
fn twenty_backups_and_verifies_succeed_under_ten_percent_transient_faults() {
    let t = tempfile::tempdir().unwrap();
    runs_under_transient_faults(t.path().join("repo").to_str().unwrap(), 20);
}

#[test]
fn transient_faults_on_s3_are_retried_too() {
    if let Ok(url) = std::env::var("SOPHON_TEST_S3_URL") {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        runs_under_transient_faults(&format!("{url}/faults-{nanos}"), 3);
    } else {
        assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_URL is not set");
    }
}

/// A backup that fails with `fault`; afterwards the repository has no new snapshot and verifies clean.
fn fails_cleanly(fault_for: impl Fn(u64) -> Fault, expect: &str) {
    let t = tempfile::tempdir().unwrap();
    let url = t.path().join("repo").to_str().unwrap().to_string();
    init(&url);
    let src = t.path().join("src");
    common::sample_tree(&src, 2048, 5);
    // Count the calls of a clean backup, to put the fault in its middle.
    let (repo, probe) = open_faulty(&url, &t.path().join("c0"), Fault::Transient(0.0), 1);
    Session::shared(Arc::clone(&repo), "backup")
        .and_then(|s| backup(&s, &BackupOptions::new(vec![src.clone()]), Arc::new(Progress::default())))
        .unwrap();
    let calls = probe.calls();
    drop(repo);
    let before = clean_open(&url, &t.path().join("c1")).snapshot_ids().unwrap().len();

    common::write(&src.join("new.bin"), &common::pseudo_random(3 << 20, 77));
    let (repo, faults) = open_faulty(&url, &t.path().join("c2"), fault_for(calls), 9);
    let Err(err) = Session::shared(Arc::clone(&repo), "backup")
        .and_then(|s| backup(&s, &BackupOptions::new(vec![src.clone()]), Arc::new(Progress::default())))
    else {
        panic!("the backup must fail");
    };
    assert!(faults.injected() > 0);
    let msg = err.to_string();
    assert!(msg.contains(expect) && msg.contains(&url), "a clear error naming the store: {msg}");
    drop(repo);

    let repo = clean_open(&url, &t.path().join("c3"));
    assert_eq!(repo.snapshot_ids().unwrap().len(), before, "no snapshot was written");
    verify_clean(&repo);
}

#[test]
fn a_permanent_fault_mid_backup_fails_it_and_the_repository_still_verifies() {
    fails_cleanly(|calls| Fault::PermanentAfter(calls / 2), "injected permanent fault");
}

#[test]
fn a_write_cut_part_way_fails_the_backup_and_the_repository_still_verifies() {
    // The second pack of the backup is cut: the first is already stored.
    fails_cleanly(|_| Fault::CutWrite(2), "injected permanent fault");
}

/// An upload cut part-way and aborted leaves nothing under the archive's name, on every store.
fn cut_upload_leaves_nothing(url: &str) {
    let backend = open_url_with(url, true, |raw| {
        Arc::new(FaultyBackend::new(raw, Fault::CutStream(20 << 20), 1)) as Arc<dyn Backend>
    })
    .unwrap();
    let mut w = backend.writer("exports/big.zip").unwrap();
    let piece = common::pseudo_random(1 << 20, 5);
    let mut failed = false;
    for _ in 0..64 {
        if let Err(e) = w.write(&piece) {
            assert!(e.to_string().contains("injected permanent fault"), "{e}");
            failed = true;
            break;
        }
    }
    assert!(failed, "the stream was cut");
    w.abort();
    let clean = sophon::backend::open_url(url, false).unwrap();
    assert_eq!(clean.stat("exports/big.zip").unwrap(), None, "{url}: no object under the name");
    let mut visible = Vec::new();
    clean
        .list("exports", &mut |o| {
            visible.push(o.name);
            Ok(())
        })
        .unwrap();
    assert!(visible.is_empty(), "{url}: nothing complete-looking left: {visible:?}");
}

#[test]
fn an_upload_cut_part_way_leaves_no_object_on_any_store() {
    let t = tempfile::tempdir().unwrap();
    cut_upload_leaves_nothing(t.path().join("store").to_str().unwrap());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    for var in ["SOPHON_TEST_S3_URL", "SOPHON_TEST_AZBLOB_URL", "SOPHON_TEST_SFTP_URL"] {
        match std::env::var(var) {
            Ok(url) => cut_upload_leaves_nothing(&format!("{url}/cut-{nanos}")),
            Err(_) => assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "{var} is not set"),
        }
    }
}

/// A TCP proxy on 127.0.0.1 in front of `upstream` (host:port). It answers each of the first
/// `refuse` connections with S3's throttling answer, "503 Slow Down", and forwards every later one
/// to the real server. Returns the proxy's URL and the number of connections it has seen.
fn throttling_proxy(upstream: &str, refuse: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let upstream = upstream.to_string();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { continue };
            if counter.fetch_add(1, Ordering::SeqCst) < refuse {
                // The whole request head, so that the client reads the answer rather than a reset.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && matches!(client.read(&mut byte), Ok(1)) {
                    head.push(byte[0]);
                }
                let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                    <Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";
                let _ = write!(
                    client,
                    "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
            let Ok(server) = TcpStream::connect(&upstream) else { continue };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client, &mut server);
                let _ = server.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (url, seen)
}

#[test]
fn a_store_that_throttles_at_open_is_retried_and_one_that_never_answers_fails_naming_it() {
    let (Ok(url), Ok(endpoint)) = (std::env::var("SOPHON_TEST_S3_URL"), std::env::var("SOPHON_TEST_S3_ENDPOINT"))
    else {
        assert!(std::env::var_os("SOPHON_REQUIRE_SERVERS").is_none(), "SOPHON_TEST_S3_URL is not set");
        return;
    };
    let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let t = tempfile::tempdir().unwrap();
    let sophon = common::Sophon::new(t.path());
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let repo = format!("{url}/throttled-{nanos}");

    // The first two requests are throttled, the open's listing among them: the command succeeds.
    let (proxy, seen) = throttling_proxy(upstream, 2);
    let init = ["repo", "init", "--repo", &repo, "--kdf-memory-kib", "1024", "--kdf-iterations", "1"];
    let out = sophon.cmd().env("AWS_ENDPOINT_URL", &proxy).args(init).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(seen.load(std::sync::atomic::Ordering::SeqCst) > 2);
    sophon.ok(&["backup", "verify", "--repo", &repo]);

    // A store that keeps throttling: a bounded number of tries, then an error naming the URL.
    let (proxy, seen) = throttling_proxy(upstream, usize::MAX);
    let out = sophon.cmd().env("AWS_ENDPOINT_URL", &proxy).args(["backup", "list", "--repo", &repo]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&repo) && err.contains("did not answer") && err.contains("SlowDown"), "{err}");
    let tries = seen.load(std::sync::atomic::Ordering::SeqCst);
    assert!((2..=16).contains(&tries), "{tries} tries");
}
