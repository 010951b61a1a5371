//! Property tests for exports: any tree of files, backed up and rendered as zip or tar.gz (sealed
//! or not, with small chunks so files span several pieces), reads back byte for byte through the
//! archive reader, and verifies clean.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use sophon::archive::{backup, BackupOptions, Progress};
use sophon::chunk::ChunkerParams;
use sophon::crypto::Argon2Params;
use sophon::export::reader::ExportArchive;
use sophon::export::{export_snapshot, seal::Kdf, ExportOptions, Format};
use sophon::{InitOptions, Repository, Session};

fn cheap_repo(dir: &std::path::Path) -> Arc<Repository> {
    let backend = sophon::backend::open_url(dir.to_str().unwrap(), true).unwrap();
    let opts = InitOptions {
        chunker: ChunkerParams { min_size: 256, avg_size: 1024, max_size: 8192, normalization: 1 },
        pack_size: 1024 * 1024,
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..InitOptions::default()
    };
    Arc::new(Repository::init(backend, b"pw", &opts, None).unwrap())
}

fn files() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    let name = "[a-zA-Z0-9_ .-]{1,10}".prop_filter("not . or ..", |s| !s.trim_matches('.').is_empty() && s.trim() == s);
    let path = prop::collection::vec(name, 1..4).prop_map(|p| p.join("/"));
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..40_000),
        (any::<u8>(), 0usize..50_000).prop_map(|(b, n)| vec![b; n]),
        "[a-z ]{0,2000}".prop_map(|s| s.repeat(20).into_bytes()),
    ];
    prop::collection::btree_map(path, content, 1..10)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]

    #[test]
    fn any_tree_round_trips_through_an_export(files in files(), tar in any::<bool>(), sealed in any::<bool>(), level in 1u32..10) {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let mut written = BTreeMap::new();
        for (p, data) in &files {
            let full = src.join(p);
            // Skip a path that runs through a file made before (or a folder over one).
            if written.keys().any(|w: &String| p.starts_with(&format!("{w}/")) || w.starts_with(&format!("{p}/"))) {
                continue;
            }
            if std::fs::create_dir_all(full.parent().unwrap()).is_err() || std::fs::write(&full, data).is_err() {
                continue;
            }
            written.insert(p.clone(), data.clone());
        }
        let repo = cheap_repo(&t.path().join("repo"));
        let session = Session::shared(Arc::clone(&repo), "test").unwrap();
        let out = backup(&session, &BackupOptions::new(vec![src.clone()]), Arc::new(Progress::default())).unwrap();
        let mut opts = ExportOptions::new(if tar { Format::TarGz } else { Format::Zip });
        opts.level = level;
        opts.workers = 3;
        if sealed {
            opts.seal = Some((zeroize::Zeroizing::new(b"pw".to_vec()), Kdf::Argon2id(Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 })));
        }
        let mut bytes = Vec::new();
        let summary = export_snapshot(&session, &out.snapshot_id, &mut bytes, &opts).unwrap();
        prop_assert_eq!(summary.bytes_out, bytes.len() as u64);
        let a = ExportArchive::open_bytes(std::path::Path::new("prop"), bytes, Some(b"pw"), &t.path().join("staging")).unwrap();
        prop_assert_eq!(a.verify().unwrap(), Vec::<String>::new());
        for (p, data) in &written {
            let got = a.read(&format!("src/{p}")).unwrap();
            prop_assert_eq!(got.as_deref(), Some(data.as_slice()), "{}", p);
        }
        let listed: Vec<&str> = a.paths().filter(|p| p.starts_with("src/")).collect();
        prop_assert_eq!(listed.len(), written.len());
    }
}

/// A tar.gz unpacked and then refused (no `metadata.json`, or one that does not parse) leaves
/// nothing in the staging folder (found by the `export_archive` fuzz target).
#[test]
fn a_targz_refused_after_unpacking_leaves_no_staging_folder() {
    let targz = |members: &[(&str, &[u8])]| {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut tar = tar::Builder::new(gz);
        for (name, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, name, *data).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    };
    let t = tempfile::tempdir().unwrap();
    let staging = t.path().join("staging");
    let cases: [&[(&str, &[u8])]; 3] = [
        &[("backup/notes.txt", b"no metadata here")],
        &[("backup/metadata.json", b"{ not json"), ("backup/a/b.txt", b"x")],
        &[("backup/metadata.json", br#"{"format":"sophon-export","version":999}"#)],
    ];
    for members in cases {
        let err = ExportArchive::open_bytes(std::path::Path::new("t.tar.gz"), targz(members), None, &staging);
        assert!(err.is_err(), "{members:?} was accepted");
        let left: Vec<_> = std::fs::read_dir(&staging).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(left.is_empty(), "{members:?} left {left:?} in the staging folder");
    }
}
