//! Writes the seed corpora under `fuzz/seeds/<target>/`, built with the library's own encoders so
//! fuzzing starts from valid structures. Everything sealed uses the fixed key `[7; 32]` the targets
//! open with. Sealing draws random nonces, so re-running changes the sealed seeds' bytes (not their
//! meaning).
//!
//! ```text
//! cargo +nightly run --manifest-path fuzz/Cargo.toml --example gen_seeds
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use sophon::chunk::ChunkerParams;
use sophon::compress::{self, Compression, Compressor};
use sophon::crypto::{Argon2Params, MasterKeys, SealKey};
use sophon::format::config::{Config, KeyFile, Lock, KEY_AD};
use sophon::format::envelope::{self, ObjectKind};
use sophon::format::index::{IndexSegment, IndexedPack};
use sophon::format::pack::{self as fmt, PackEntry};
use sophon::format::snapshot::{Snapshot, SnapshotError, SnapshotSummary};
use sophon::format::tree::{Node, NodeKind, Tree};
use sophon::id::{BlobId, BlobType, IndexId, PackId, RepoId, SnapshotId};
use sophon::pack::{compress_blob, PackBuilder};

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

fn b64(bytes: &[u8]) -> String {
    base64_lite::encode(bytes)
}

/// Standard padded base64, so the example needs no extra dependency.
mod base64_lite {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    pub fn encode(b: &[u8]) -> String {
        let mut s = String::new();
        for c in b.chunks(3) {
            let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                if i <= c.len() {
                    s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    s.push('=');
                }
            }
        }
        s
    }
}

fn node(name: &str, kind: NodeKind) -> Node {
    Node {
        name: Some(name.into()),
        name_hex: None,
        kind,
        mode: 0o644,
        mtime_ns: 1_700_000_000_123_456_789,
        ctime_ns: 1_700_000_000_000_000_000,
        inode: 42,
        device: 7,
        size: 0,
        content: vec![],
        subtree: None,
        target: None,
        target_hex: None,
    }
}

fn sample_entries() -> Vec<PackEntry> {
    let mut off = fmt::PREFIX_LEN as u32;
    let mut out = Vec::new();
    for (i, (sealed_len, raw_len, c)) in
        [(128u32, 200u32, Compression::Zstd), (28, 0, Compression::None), (33, 5, Compression::None)]
            .into_iter()
            .enumerate()
    {
        out.push(PackEntry {
            blob_type: if i == 1 { BlobType::Tree } else { BlobType::Data },
            compression: c,
            id: BlobId([i as u8 + 1; 32]),
            offset: off,
            sealed_len,
            raw_len,
        });
        off += sealed_len;
    }
    out
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let key = SealKey::new([7; 32]);
    let mut comp = Compressor::new(3).unwrap();

    // pack_header: whole packs (parse_pack) and `pack_len | header_len | header plaintext`.
    {
        let dir = root.join("pack_header");
        let mut b = PackBuilder::new();
        let blobs: Vec<(BlobType, Vec<u8>)> = vec![
            (BlobType::Data, b"alpha ".repeat(100)),
            (BlobType::Tree, br#"{"nodes":[]}"#.to_vec()),
            (BlobType::Data, vec![]),
        ];
        for (i, (t, data)) in blobs.into_iter().enumerate() {
            b.add(&key, &compress_blob(&mut comp, t, BlobId([i as u8; 32]), data).unwrap()).unwrap();
        }
        let (_, bytes, entries) = b.finish(&key).unwrap();
        assert_eq!(sophon::pack::parse_pack(&key, None, &bytes).unwrap(), entries);
        write(&dir, "pack-3-blobs", &bytes);
        let (_, empty, _) = PackBuilder::new().finish(&key).unwrap();
        assert!(sophon::pack::parse_pack(&key, None, &empty).unwrap().is_empty());
        write(&dir, "pack-empty", &empty);

        for (name, entries) in [("header-3-entries", sample_entries()), ("header-empty", vec![])] {
            let plain = fmt::encode_header(&entries);
            let header_len = (plain.len() + sophon::crypto::SEAL_OVERHEAD) as u32;
            let blob_area: u64 = entries.iter().map(|e| e.sealed_len as u64).sum();
            let pack_len = fmt::PREFIX_LEN as u64 + blob_area + header_len as u64 + fmt::TRAILER_LEN as u64;
            let mut s = pack_len.to_le_bytes().to_vec();
            s.extend_from_slice(&header_len.to_le_bytes());
            s.extend_from_slice(&plain);
            assert!(fmt::decode_header(&plain, pack_len, header_len, "seed").is_ok());
            write(&dir, name, &s);
        }
    }

    // index_segment
    let segment = IndexSegment {
        superseded: vec![IndexId([9; 32])],
        packs: vec![
            IndexedPack { id: PackId([1; 32]), entries: sample_entries() },
            IndexedPack { id: PackId([2; 32]), entries: vec![] },
        ],
        condemned: vec![IndexedPack { id: PackId([3; 32]), entries: vec![] }],
    };
    {
        let dir = root.join("index_segment");
        write(&dir, "segment", &segment.encode());
        write(&dir, "segment-empty", &IndexSegment::default().encode());
    }

    // tree
    let tree = {
        let mut f = node("a.txt", NodeKind::File);
        f.size = 12;
        f.content = vec![BlobId([1; 32]), BlobId([2; 32])];
        let mut d = node("dir", NodeKind::Dir);
        d.mode = 0o755;
        d.subtree = Some(BlobId([3; 32]));
        let mut l = node("link", NodeKind::Symlink);
        l.target = Some("../a.txt".into());
        let mut h = node("x", NodeKind::Symlink);
        h.set_name(b"\xffraw");
        h.set_target(b"\xfe\x00t");
        Tree { nodes: vec![f, d, l, h] }
    };
    {
        let dir = root.join("tree");
        let enc = tree.encode().unwrap();
        Tree::decode(&enc, "seed").unwrap();
        write(&dir, "tree", &enc);
        write(&dir, "tree-empty", &Tree::default().encode().unwrap());
    }

    // snapshot
    let snapshot = Snapshot {
        version: 1,
        time: "2024-05-01T12:00:00.123456789+02:00".into(),
        tree: BlobId([4; 32]),
        paths: vec!["/home/user".into(), "/etc".into()],
        hostname: "host".into(),
        username: "user".into(),
        tags: vec!["daily".into()],
        parent: Some(SnapshotId([5; 32])),
        partial: true,
        errors: vec![SnapshotError { path: "/etc/shadow".into(), error: "permission denied".into() }],
        summary: SnapshotSummary { files: 10, dirs: 2, bytes: 12345, files_new: 3, ..Default::default() },
    };
    {
        let dir = root.join("snapshot");
        let enc = snapshot.encode().unwrap();
        Snapshot::decode(&enc, "seed").unwrap();
        write(&dir, "snapshot", &enc);
        write(
            &dir,
            "snapshot-minimal",
            br#"{"version":1,"time":"2024-01-01T00:00:00Z","tree":"0000000000000000000000000000000000000000000000000000000000000000","paths":[]}"#,
        );
    }

    // key_file: a key file whose master keys are wrapped under the fixed key (no Argon2 in the
    // target), and bare master key material.
    {
        let dir = root.join("key_file");
        let keys = MasterKeys::generate(RepoId([6; 32])).unwrap();
        let material = keys.encode();
        let kf = KeyFile {
            version: 1,
            kdf: "argon2id".into(),
            argon2: Argon2Params::DEFAULT,
            salt: b64(&[8; 32]),
            wrapped: b64(&key.seal(&material, KEY_AD).unwrap()),
            created: "2024-05-01T12:00:00Z".into(),
            hostname: "host".into(),
            username: "user".into(),
        };
        let enc = kf.encode().unwrap();
        let back = KeyFile::decode(&enc, "seed").unwrap();
        let unwrapped = key.open(&back.wrapped_bytes("seed").unwrap(), KEY_AD, &|| "seed".into()).unwrap();
        assert_eq!(MasterKeys::decode(&unwrapped).unwrap().repo_id, RepoId([6; 32]));
        write(&dir, "keyfile", &enc);
        write(&dir, "master-keys", &material);
    }

    // config: a config and a lock.
    let lock = Lock {
        version: 1,
        exclusive: false,
        hostname: "host".into(),
        pid: 1234,
        operation: "backup".into(),
        created: "2024-05-01T12:00:00Z".into(),
        refreshed: "2024-05-01T12:05:00Z".into(),
        prune: false,
        pid_space: Some("4026531836".into()),
    };
    {
        let dir = root.join("config");
        let cfg = Config {
            version: 1,
            id: RepoId([6; 32]),
            chunker: ChunkerParams::DEFAULT,
            pack_size: 16 << 20,
            compression: 3,
        };
        let enc = cfg.encode().unwrap();
        Config::decode(&enc).unwrap();
        write(&dir, "config", &enc);
        let enc = lock.encode().unwrap();
        Lock::decode(&enc, "seed").unwrap();
        write(&dir, "lock", &enc);
    }

    // envelope: each kind sealed as the repository stores it, plus the unsealed forms.
    {
        let dir = root.join("envelope");
        let objects = [
            (ObjectKind::Index, segment.encode()),
            (ObjectKind::Snapshot, snapshot.encode().unwrap()),
            (ObjectKind::Lock, lock.encode().unwrap()),
        ];
        for (kind, plain) in objects {
            let name = format!("{kind:?}").to_lowercase();
            let payload = compress::compress_object(&plain).unwrap();
            let prefix = envelope::prefix(kind, true);
            let mut sealed = prefix.to_vec();
            sealed.extend_from_slice(&key.seal(&payload, &prefix).unwrap());
            let (p, _, start) = envelope::parse(&sealed, kind, "seed").unwrap();
            let opened = key.open(&sealed[start..], &p, &|| "seed".into()).unwrap();
            assert_eq!(compress::decompress_object(&opened, 1 << 20, &|| "seed".into()).unwrap(), plain);
            write(&dir, &format!("{name}-sealed"), &sealed);
            let mut open = prefix.to_vec();
            open.extend_from_slice(&payload);
            write(&dir, &format!("{name}-compressed"), &open);
            let mut raw = envelope::prefix(kind, false).to_vec();
            raw.extend_from_slice(&plain);
            write(&dir, &format!("{name}-plain"), &raw);
        }
    }

    // blob: `flags | compression | raw_len | payload`.
    {
        let dir = root.join("blob");
        let text = b"the same words again and again ".repeat(20);
        let (kind, stored) = comp.compress(text.clone());
        assert_eq!(kind, Compression::Zstd);
        let mut s = vec![0u8, 1];
        s.extend_from_slice(&(text.len() as u32).to_le_bytes());
        s.extend_from_slice(&stored);
        write(&dir, "zstd", &s);
        let mut s = vec![1u8, 0];
        s.extend_from_slice(&5u32.to_le_bytes());
        s.extend_from_slice(b"hello");
        write(&dir, "raw", &s);
        let mut s = vec![0x80u8, 1];
        s.extend_from_slice(&u32::MAX.to_le_bytes());
        s.extend_from_slice(&stored);
        write(&dir, "zstd-too-large", &s);
    }

    println!("seeds written under {}", root.display());
}
