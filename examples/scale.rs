//! A repository of N blobs, written directly through the library (issue 14, item 2: a hundred
//! million chunks), for `scripts/bench-scale` to run the real commands against.
//!
//! `generate` writes N data blobs of `--blob-bytes` bytes each (unique, raw), `--per-pack` to a
//! pack, one index segment per 1,024 packs as a backup writes them; then one snapshot whose files
//! hold `--chunks-per-file` of those blobs each, `--files-per-dir` files to a folder, every folder
//! in one top folder: its trees are real tree blobs in tree packs, so verify, prune and restore
//! walk every blob as they would in a fleet's repository. The cache is not filled: the first
//! command that opens the repository rebuilds it, which is one of the figures.
//!
//! `lookups` opens the repository with a cache (synced) and asks the index, one blob at a time as
//! a backup's readers do, whether it holds blobs it has (random ones of the N) and blobs it lacks,
//! for `--seconds` each; it prints lookups per second of each kind as JSON.
//!
//! Usage: `cargo run --release --example scale -- generate --repo DIR --blobs N [--per-pack 256]
//! [--chunks-per-file 100] [--files-per-dir 100] [--blob-bytes 32]` and
//! `… lookups --repo DIR --cache DIR --blobs N [--seconds 3]`. The passphrase is
//! `SOPHON_BACKUP_PASSPHRASE` (default "scale bench").

use std::sync::Arc;
use std::time::Instant;

use rayon::prelude::*;
use sophon::compress::{Compression, Compressor};
use sophon::crypto::Argon2Params;
use sophon::format::index::{IndexSegment, IndexedPack};
use sophon::format::snapshot::{Snapshot, SnapshotSummary, VERSION as SNAPSHOT_VERSION};
use sophon::format::tree::{Node, NodeKind, Tree};
use sophon::pack::{compress_blob, pack_path, CompressedBlob, PackBuilder};
use sophon::repo::PACKS_PER_INDEX_SEGMENT;
use sophon::{BlobId, BlobType, InitOptions, Repository};

/// Appended to each blob's number: blob contents are a function of their number alone, so
/// `lookups` can name blobs the repository has without reading anything back.
const FILL: &[u8] = b"sophon scale bench blob, unique by its leading number";
/// Tree packs close at this size, as a backup's do (its default pack size).
const TREE_PACK_BYTES: usize = 16 * 1024 * 1024;

struct Args {
    command: String,
    repo: String,
    cache: Option<String>,
    blobs: u64,
    per_pack: u64,
    chunks_per_file: u64,
    files_per_dir: u64,
    blob_bytes: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or("give a command: generate or lookups")?;
    let mut a = Args {
        command,
        repo: String::new(),
        cache: None,
        blobs: 0,
        per_pack: 256,
        chunks_per_file: 100,
        files_per_dir: 100,
        blob_bytes: 32,
        seconds: 3.0,
    };
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |v: &str| v.replace('_', "").parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--repo" => a.repo = value,
            "--cache" => a.cache = Some(value),
            "--blobs" => a.blobs = num(&value)?,
            "--per-pack" => a.per_pack = num(&value)?.max(1),
            "--chunks-per-file" => a.chunks_per_file = num(&value)?.max(1),
            "--files-per-dir" => a.files_per_dir = num(&value)?.max(1),
            "--blob-bytes" => a.blob_bytes = (num(&value)? as usize).clamp(8, 1 << 20),
            "--seconds" => a.seconds = value.parse().map_err(|e| format!("--seconds {value}: {e}"))?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.repo.is_empty() || (a.blobs == 0 && a.command != "generate") {
        return Err("--repo DIR and --blobs N (more than 0 for lookups) are required".into());
    }
    Ok(a)
}

fn passphrase() -> Vec<u8> {
    std::env::var("SOPHON_BACKUP_PASSPHRASE").unwrap_or_else(|_| "scale bench".into()).into_bytes()
}

/// Blob `i`'s contents: its number, then the fill, to `len` bytes.
fn content(i: u64, len: usize) -> Vec<u8> {
    let mut c = i.to_le_bytes().to_vec();
    c.extend(FILL.iter().cycle().take(len.saturating_sub(8)));
    c
}

fn blob_id(repo: &Repository, i: u64, len: usize) -> BlobId {
    repo.keys().blob_id(&content(i, len))
}

/// Data pack `p`: blobs `p * per_pack ..`, raw (they do not compress), written to the backend.
fn data_pack(repo: &Repository, a: &Args, p: u64) -> sophon::Result<IndexedPack> {
    let first = p * a.per_pack;
    let last = (first + a.per_pack).min(a.blobs);
    let mut b = PackBuilder::with_capacity((last - first) as usize * (a.blob_bytes + 40) + 4096);
    for i in first..last {
        let payload = content(i, a.blob_bytes);
        let blob = CompressedBlob {
            blob_type: BlobType::Data,
            compression: Compression::None,
            id: repo.keys().blob_id(&payload),
            raw_len: payload.len() as u32,
            payload,
        };
        b.add(&repo.keys().seal, &blob)?;
    }
    write_pack(repo, b)
}

fn write_pack(repo: &Repository, b: PackBuilder) -> sophon::Result<IndexedPack> {
    let (id, bytes, entries) = b.finish(&repo.keys().seal)?;
    repo.backend().write(&pack_path(&id), bytes.into())?;
    Ok(IndexedPack { id, entries })
}

fn node(name: String, kind: NodeKind) -> Node {
    let mode = if kind == NodeKind::Dir { 0o755 } else { 0o644 };
    Node {
        name: Some(name),
        name_hex: None,
        kind,
        mode,
        mtime_ns: 1_700_000_000_000_000_000,
        ctime_ns: 0,
        inode: 0,
        device: 0,
        size: 0,
        content: Vec::new(),
        subtree: None,
        target: None,
        target_hex: None,
    }
}

/// Folder `d`'s tree blob: files `d * files_per_dir ..`, each of its run of blobs.
fn dir_tree(repo: &Repository, a: &Args, d: u64) -> sophon::Result<CompressedBlob> {
    let files = a.blobs.div_ceil(a.chunks_per_file);
    let first = d * a.files_per_dir;
    let nodes = (first..(first + a.files_per_dir).min(files))
        .map(|f| {
            let blobs = f * a.chunks_per_file..((f + 1) * a.chunks_per_file).min(a.blobs);
            let mut n = node(format!("f{f:09}"), NodeKind::File);
            n.size = (blobs.end - blobs.start) * a.blob_bytes as u64;
            n.content = blobs.map(|i| blob_id(repo, i, a.blob_bytes)).collect();
            n
        })
        .collect();
    tree_blob(repo, &Tree { nodes })
}

fn tree_blob(repo: &Repository, tree: &Tree) -> sophon::Result<CompressedBlob> {
    let plain = tree.encode()?;
    let id = repo.keys().blob_id(&plain);
    let mut z = Compressor::new(3)?;
    compress_blob(&mut z, BlobType::Tree, id, plain)
}

/// Packs of tree blobs, closed at [`TREE_PACK_BYTES`], indexed as they are written.
struct TreePacks<'a> {
    repo: &'a Repository,
    open: PackBuilder,
    indexed: Vec<IndexedPack>,
}

impl TreePacks<'_> {
    fn add(&mut self, blob: &CompressedBlob) -> sophon::Result<()> {
        self.open.add(&self.repo.keys().seal, blob)?;
        if self.open.len() >= TREE_PACK_BYTES {
            let full = std::mem::take(&mut self.open);
            self.indexed.push(write_pack(self.repo, full)?);
        }
        Ok(())
    }

    fn finish(mut self) -> sophon::Result<Vec<IndexedPack>> {
        if !self.open.is_empty() {
            self.indexed.push(write_pack(self.repo, self.open)?);
        }
        Ok(self.indexed)
    }
}

fn generate(a: &Args) -> sophon::Result<serde_json::Value> {
    let started = Instant::now();
    let backend = sophon::backend::open_url(&a.repo, true)?;
    // Cheap key derivation: the bench measures the index, not Argon2id.
    let init =
        InitOptions { argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }, ..Default::default() };
    let repo = Arc::new(Repository::init(backend, &passphrase(), &init, None)?);
    let packs = a.blobs.div_ceil(a.per_pack);
    let mut segments = 0u64;
    for first in (0..packs).step_by(PACKS_PER_INDEX_SEGMENT) {
        let last = (first + PACKS_PER_INDEX_SEGMENT as u64).min(packs);
        let indexed = (first..last).into_par_iter().map(|p| data_pack(&repo, a, p)).collect::<sophon::Result<_>>()?;
        repo.upload_index_segment(&IndexSegment { packs: indexed, ..Default::default() })?;
        segments += 1;
        if (first / PACKS_PER_INDEX_SEGMENT as u64).is_multiple_of(64) {
            eprintln!("scale: {last} of {packs} data packs, {:.0} s", started.elapsed().as_secs_f64());
        }
    }
    let data_seconds = started.elapsed().as_secs_f64();

    let files = a.blobs.div_ceil(a.chunks_per_file);
    let dirs = files.div_ceil(a.files_per_dir);
    let mut trees = TreePacks { repo: &repo, open: PackBuilder::new(), indexed: Vec::new() };
    let mut top = Vec::new();
    // Folders in groups built in parallel, so at most a group's trees are held at once.
    for group in (0..dirs).collect::<Vec<_>>().chunks(64) {
        let blobs: Vec<CompressedBlob> =
            group.par_iter().map(|&d| dir_tree(&repo, a, d)).collect::<sophon::Result<_>>()?;
        for (d, blob) in group.iter().zip(&blobs) {
            let mut n = node(format!("d{d:07}"), NodeKind::Dir);
            n.subtree = Some(blob.id);
            top.push(n);
            trees.add(blob)?;
        }
    }
    let root = tree_blob(&repo, &Tree { nodes: top })?;
    trees.add(&root)?;
    let tree_packs = trees.finish()?;
    for part in tree_packs.chunks(PACKS_PER_INDEX_SEGMENT) {
        repo.upload_index_segment(&IndexSegment { packs: part.to_vec(), ..Default::default() })?;
        segments += 1;
    }
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        tree: root.id,
        paths: vec!["/scale".into()],
        hostname: "scale-bench".into(),
        username: String::new(),
        tags: vec!["scale".into()],
        parent: None,
        partial: false,
        errors: Vec::new(),
        summary: SnapshotSummary { files, dirs: dirs + 1, bytes: a.blobs * a.blob_bytes as u64, ..Default::default() },
    };
    let snapshot_id = repo.save_snapshot(&snapshot)?;
    Ok(serde_json::json!({
        "blobs": a.blobs, "data_packs": packs, "tree_packs": tree_packs.len(), "segments": segments,
        "files": files, "dirs": dirs, "snapshot": snapshot_id.to_hex(),
        "data_seconds": data_seconds, "seconds": started.elapsed().as_secs_f64(),
    }))
}

/// A small fast generator for random blob numbers (xorshift64*): the lookups must not wait on
/// the OS for randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn lookups(a: &Args) -> sophon::Result<serde_json::Value> {
    let cache = a.cache.as_ref().ok_or_else(|| sophon::Error::invalid("lookups needs --cache DIR"))?;
    let backend = sophon::backend::open_url(&a.repo, false)?;
    let opened = Instant::now();
    let repo = Repository::open(backend, &passphrase(), Some(cache.into()))?;
    let open_seconds = opened.elapsed().as_secs_f64();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64);
    let mut rate = |present: bool| -> sophon::Result<f64> {
        let (started, mut n) = (Instant::now(), 0u64);
        while started.elapsed().as_secs_f64() < a.seconds {
            for _ in 0..1000 {
                // Absent blobs: numbers past the N the repository holds.
                let i = if present { rng.next() % a.blobs } else { a.blobs + rng.next() % (1 << 40) };
                if repo.index().contains(&blob_id(&repo, i, a.blob_bytes))? != present {
                    return Err(sophon::Error::invalid(format!("blob {i}: the index answers wrongly")));
                }
            }
            n += 1000;
        }
        Ok(n as f64 / started.elapsed().as_secs_f64())
    };
    let hits = rate(true)?;
    let misses = rate(false)?;
    Ok(serde_json::json!({
        "blobs": a.blobs, "open_seconds": open_seconds,
        "present_per_second": hits, "absent_per_second": misses,
    }))
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("scale: {e}");
            std::process::exit(2);
        }
    };
    let out = match a.command.as_str() {
        "generate" => generate(&a),
        "lookups" => lookups(&a),
        other => {
            eprintln!("scale: unknown command {other}; generate or lookups");
            std::process::exit(2);
        }
    };
    match out {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("scale: {e}");
            std::process::exit(1);
        }
    }
}
