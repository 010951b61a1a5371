//! Property tests: whole trees round-trip through backup and restore; chunking is lossless and
//! stable under insertions; every encoder/decoder pair round-trips.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::Jittery;
use proptest::prelude::*;
use sophon::archive::{backup, BackupOptions, Progress};
use sophon::chunk::{Chunker, ChunkerParams};
use sophon::compress::Compression;
use sophon::crypto::Argon2Params;
use sophon::format::index::{IndexSegment, IndexedPack, SegmentEncoder};
use sophon::format::pack::{decode_header, encode_header, PackEntry, ENTRY_LEN, PREFIX_LEN, TRAILER_LEN};
use sophon::format::snapshot::{Snapshot, SnapshotSummary};
use sophon::format::tree::{Node, NodeKind, Tree};
use sophon::restore::{restore, RestoreOptions};
use sophon::{BlobId, BlobType, IndexId, InitOptions, PackId, Repository, Session};

const SMALL_CHUNKS: ChunkerParams = ChunkerParams { min_size: 256, avg_size: 1024, max_size: 8192, normalization: 1 };

fn cheap_repo(dir: &std::path::Path, chunker: ChunkerParams) -> Arc<Repository> {
    let backend = sophon::backend::open_url(dir.to_str().unwrap(), true).unwrap();
    let opts = InitOptions {
        chunker,
        pack_size: 1024 * 1024,
        argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 },
        ..InitOptions::default()
    };
    Arc::new(Repository::init(backend, b"pw", &opts, None).unwrap())
}

fn file_tree() -> impl Strategy<Value = Vec<(Vec<String>, Vec<u8>)>> {
    let name = "[a-zA-Z0-9_.-]{1,12}".prop_filter("not . or ..", |s| s != "." && s != "..");
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        prop::collection::vec(any::<u8>(), 0..40_000),
        (any::<u8>(), 0usize..30_000).prop_map(|(b, n)| vec![b; n]),
    ];
    prop::collection::vec((prop::collection::vec(name, 1..4), content), 1..12)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn any_tree_of_files_restores_byte_identical(files in file_tree()) {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        std::fs::create_dir_all(&src).unwrap();
        let mut written = HashSet::new();
        for (parts, data) in &files {
            let mut p = src.clone();
            for part in parts {
                p.push(part);
            }
            // Skip paths that would clash with a file or folder already made.
            let clashes = written.iter().any(|w: &std::path::PathBuf| p.starts_with(w) || w.starts_with(&p));
            if clashes || std::fs::create_dir_all(p.parent().unwrap()).is_err() {
                continue;
            }
            std::fs::write(&p, data).unwrap();
            written.insert(p);
        }
        let repo = cheap_repo(&t.path().join("repo"), SMALL_CHUNKS);
        let session = Session::shared(Arc::clone(&repo), "test").unwrap();
        let out = backup(&session, &BackupOptions::new(vec![src.clone()]), Arc::new(Progress::default())).unwrap();
        prop_assert!(!out.snapshot.partial);
        let target = t.path().join("out");
        restore(&session, &out.snapshot_id, &RestoreOptions { target: target.clone(), threads: 3 }, Arc::new(Progress::default())).unwrap();
        common::assert_same_tree(&src, &target.join("src"));
    }

    #[test]
    fn concatenated_chunks_equal_the_input(data in prop::collection::vec(any::<u8>(), 0..100_000),
                                           sizes in prop::collection::vec(1usize..20_000, 1..8),
                                           seed in any::<u64>()) {
        let mut c = Chunker::new(SMALL_CHUNKS, seed).unwrap();
        c.reset();
        let mut r = Jittery { data: &data, sizes, i: 0 };
        let mut joined = Vec::new();
        while let Some(chunk) = c.next_chunk(&mut r).unwrap() {
            prop_assert!(chunk.len() <= SMALL_CHUNKS.max_size as usize);
            joined.extend_from_slice(chunk);
        }
        prop_assert_eq!(joined, data);
    }

    #[test]
    fn pack_header_round_trips(entries in prop::collection::vec((any::<bool>(), any::<bool>(), any::<[u8; 32]>(), 28u32..100_000, 0u32..100_000), 0..50)) {
        let mut offset = PREFIX_LEN as u32;
        let entries: Vec<PackEntry> = entries.into_iter().map(|(tree, z, id, sealed_len, raw_len)| {
            let e = PackEntry {
                blob_type: if tree { BlobType::Tree } else { BlobType::Data },
                compression: if z { Compression::Zstd } else { Compression::None },
                id: BlobId(id), offset, sealed_len, raw_len,
            };
            offset += sealed_len;
            e
        }).collect();
        let plain = encode_header(&entries);
        prop_assert_eq!(plain.len(), 5 + entries.len() * ENTRY_LEN);
        let header_len = 1000u32;
        let pack_len = offset as u64 + header_len as u64 + TRAILER_LEN as u64;
        prop_assert_eq!(decode_header(&plain, pack_len, header_len, "t").unwrap(), entries);
        // Any other pack length contradicts the entries.
        prop_assert!(decode_header(&plain, pack_len + 1, header_len, "t").is_err());
    }

    #[test]
    fn index_segment_round_trips(sup in prop::collection::vec(any::<[u8; 32]>(), 0..4),
                                 packs in prop::collection::vec((any::<[u8; 32]>(), prop::collection::vec((any::<[u8; 32]>(), 28u32..1_000_000, 0u32..1_000_000), 0..20), any::<bool>()), 0..10)) {
        let (mut live, mut condemned) = (Vec::new(), Vec::new());
        // A prune's writer encodes packs one at a time as they come, the two lists interleaved.
        let mut streamed = SegmentEncoder::default();
        for (id, es, is_condemned) in packs {
            let mut off = PREFIX_LEN as u32;
            let p = IndexedPack { id: PackId(id), entries: es.into_iter().map(|(bid, sl, rl)| {
                let e = PackEntry { blob_type: BlobType::Data, compression: Compression::Zstd, id: BlobId(bid), offset: off, sealed_len: sl, raw_len: rl.min(64 << 20) };
                off = off.wrapping_add(sl);
                e
            }).collect() };
            streamed.push(&p, is_condemned);
            if is_condemned { condemned.push(p) } else { live.push(p) }
        }
        let seg = IndexSegment { superseded: sup.into_iter().map(IndexId).collect(), packs: live, condemned };
        let bytes = seg.encode();
        prop_assert_eq!(streamed.packs(), seg.packs.len() + seg.condemned.len());
        prop_assert_eq!(streamed.entries(), seg.packs.iter().chain(&seg.condemned).map(|p| p.entries.len()).sum::<usize>());
        prop_assert_eq!(&streamed.finish(&seg.superseded), &bytes);
        // A segment without condemned packs is version 1, byte for byte what earlier writers wrote.
        prop_assert_eq!(bytes[0], if seg.condemned.is_empty() { 1 } else { 2 });
        prop_assert_eq!(IndexSegment::decode(&bytes, "t").unwrap(), seg);
        if !bytes.is_empty() {
            prop_assert!(IndexSegment::decode(&bytes[..bytes.len() - 1], "t").is_err());
        }
    }

    #[test]
    fn tree_round_trips(names in prop::collection::btree_set(prop::collection::vec(any::<u8>(), 1..20), 0..20),
                        mode in 0u32..0o7777, mtime in any::<i64>(), size in any::<u64>()) {
        let mut nodes = Vec::new();
        for raw in names.iter().filter(|n| Node::is_safe_name(n)) {
            let mut n = Node { name: None, name_hex: None, kind: NodeKind::File, mode, mtime_ns: mtime, ctime_ns: 0,
                               inode: 1, device: 2, size, content: vec![BlobId([1; 32])], subtree: None, target: None, target_hex: None };
            n.set_name(raw);
            nodes.push(n);
        }
        let tree = Tree { nodes };
        let bytes = tree.encode().unwrap();
        let back = Tree::decode(&bytes, "t").unwrap();
        for (a, b) in back.nodes.iter().zip(&tree.nodes) {
            prop_assert_eq!(a.name_bytes().unwrap(), b.name_bytes().unwrap());
        }
        prop_assert_eq!(back, tree);
    }

    #[test]
    fn snapshot_round_trips(paths in prop::collection::vec(".{0,30}", 0..4), tags in prop::collection::vec("[a-z]{1,8}", 0..3),
                            secs in 0i64..4_000_000_000, files in any::<u64>()) {
        let time = chrono::DateTime::from_timestamp(secs, 0).unwrap().to_rfc3339();
        let s = Snapshot { version: 1, time, tree: BlobId([9; 32]), paths, hostname: "h".into(), username: "u".into(), tags,
                           parent: None, partial: false, errors: vec![], summary: SnapshotSummary { files, ..Default::default() } };
        prop_assert_eq!(Snapshot::decode(&s.encode().unwrap(), "t").unwrap(), s);
    }

    #[test]
    fn prune_record_round_trips(packs in prop::collection::vec((any::<[u8; 32]>(), any::<u64>()), 0..20),
                                holders in prop::collection::vec(("[a-z0-9.-]{0,20}", any::<u32>(), 0i64..4_000_000_000), 0..5),
                                secs in 0i64..4_000_000_000) {
        use sophon::format::config::LockHolder;
        use sophon::format::prune::{CondemnedPack, PruneRecord};
        let time = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339();
        let r = PruneRecord {
            version: 1,
            created: time(secs),
            hostname: "h".into(),
            pid: 1,
            packs: packs.into_iter().map(|(id, size)| CondemnedPack { id: sophon::PackId(id), size }).collect(),
            holders: holders.into_iter().map(|(hostname, pid, t)| LockHolder { hostname, pid, created: time(t) }).collect(),
        };
        prop_assert_eq!(PruneRecord::decode(&r.encode().unwrap(), "t").unwrap(), r);
    }

    #[test]
    fn retention_durations_round_trip(y in 0i32..100, m in 0i32..100, d in 0i32..1000, h in 0i32..10_000) {
        prop_assume!(y + m + d + h > 0);
        let w = sophon::retention::Within { years: y, months: m, days: d, hours: h };
        prop_assert_eq!(w.to_string().parse::<sophon::retention::Within>().unwrap(), w);
    }
}

#[test]
fn inserting_one_byte_into_100_mib_changes_at_most_3_chunks() {
    let params = ChunkerParams::DEFAULT;
    let data = common::pseudo_random(100 * 1024 * 1024, 5);
    let ids = |d: &[u8]| -> Vec<[u8; 32]> {
        let mut c = Chunker::new(params, 0x1234).unwrap();
        c.reset();
        let mut r = d;
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk(&mut r).unwrap() {
            out.push(*blake3::hash(ch).as_bytes());
        }
        out
    };
    let before: HashSet<[u8; 32]> = ids(&data).into_iter().collect();
    for pos in [0usize, 1, 37 * 1024 * 1024 + 11, 50 * 1024 * 1024, 100 * 1024 * 1024 - 1] {
        let mut changed = data.clone();
        changed.insert(pos, 0xA5);
        let new = ids(&changed).into_iter().filter(|id| !before.contains(id)).count();
        assert!(new <= 3, "inserting a byte at {pos} changed {new} chunks");
    }
}
