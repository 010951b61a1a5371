//! What a client pays at start for the index as segments accumulate (issue 14, item 1): a
//! repository is given N index segments written directly through the library (each one night's
//! backup of one client: a few packs of a few hundred blobs; the packs themselves are never
//! read by a sync), then a session is started (lock, then index sync) as every backup does:
//!
//! - cold:      a client with an empty cache (a new machine, a lost cache) opens the repository
//!   (which syncs the cache: every segment is read) and starts a session;
//! - warm:      a client whose cache is up to date (nothing new): lists `index/` only;
//! - +night:    a warm client after one night of the fleet's backups (CLIENTS new segments);
//! - compacted: a warm client after a prune consolidated every segment into a few
//!   (`Repository::replace_index`, 1,024 packs a segment): the superseded segments are gone, so
//!   the cache is rebuilt from the few that replace them (every blob is written again).
//!
//! The in-repository key derivation is cheap here (1 MiB of Argon2id), so `cold` is the sync.
//!
//! Usage: `cargo run --release --example index_sync -- --repo URL [--segments 10,100,1000]
//! [--runs 3] [--clients 8] [--packs 4] [--blobs 200] [--json FILE]`; `scripts/bench-index-sync`
//! runs it on a local folder and on the S3 test server. URL is a folder or store prefix; each N
//! gets a fresh repository below it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use sophon::crypto::Argon2Params;
use sophon::format::index::{IndexSegment, IndexedPack};
use sophon::format::pack::PackEntry;
use sophon::{BlobId, BlobType, InitOptions, PackId, Repository, Session};

const PASSPHRASE: &[u8] = b"index-sync bench";

struct Args {
    repo: String,
    segments: Vec<usize>,
    runs: usize,
    clients: usize,
    packs: usize,
    blobs: usize,
    json: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        repo: String::new(),
        segments: vec![10, 100, 1000],
        runs: 3,
        clients: 8,
        packs: 4,
        blobs: 200,
        json: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let num = |v: String| v.parse::<usize>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--repo" => a.repo = value()?,
            "--segments" => a.segments = value()?.split(',').map(|v| num(v.to_string())).collect::<Result<_, _>>()?,
            "--runs" => a.runs = num(value()?)?.max(1),
            "--clients" => a.clients = num(value()?)?.max(1),
            "--packs" => a.packs = num(value()?)?.max(1),
            "--blobs" => a.blobs = num(value()?)?.max(1),
            "--json" => a.json = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.repo.is_empty() {
        return Err("--repo URL is required".into());
    }
    Ok(a)
}

fn random_id() -> [u8; 32] {
    sophon::crypto::random_array::<32>().expect("random bytes")
}

/// One client's night: `packs` packs of `blobs` blobs each.
fn night_segment(packs: usize, blobs: usize) -> IndexSegment {
    let pack = |_| IndexedPack {
        id: PackId(random_id()),
        entries: (0..blobs)
            .map(|i| PackEntry {
                blob_type: if i == 0 { BlobType::Tree } else { BlobType::Data },
                compression: sophon::compress::Compression::Zstd,
                id: BlobId(random_id()),
                offset: (i * 8192) as u32,
                sealed_len: 8192,
                raw_len: 16384,
            })
            .collect(),
    };
    IndexSegment { packs: (0..packs).map(pack).collect(), ..Default::default() }
}

fn open(url: &str, cache: &std::path::Path) -> sophon::Result<Arc<Repository>> {
    let backend = sophon::backend::open_url(url, false)?;
    Ok(Arc::new(Repository::open(backend, PASSPHRASE, Some(cache.to_path_buf()))?))
}

/// Seconds to start a session (lock, index sync) on `repo`, the session ended again.
fn session_start(repo: &Arc<Repository>) -> sophon::Result<f64> {
    let started = Instant::now();
    let session = Session::shared(Arc::clone(repo), "index-sync bench")?;
    let secs = started.elapsed().as_secs_f64();
    drop(session);
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

struct Row {
    segments: usize,
    blobs: usize,
    cold: f64,
    warm: f64,
    night: f64,
    compacted: f64,
    compacted_segments: usize,
    cache_bytes: u64,
}

/// A fresh repository holding `n` night segments; its URL.
fn repository_with_segments(a: &Args, n: usize, run: usize) -> sophon::Result<String> {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let url = format!("{}/index-sync-{n}-{run}-{nanos}", a.repo.trim_end_matches('/'));
    let init =
        InitOptions { argon2: Argon2Params { memory_kib: 1024, iterations: 1, parallelism: 1 }, ..Default::default() };
    let repo = Repository::init(sophon::backend::open_url(&url, true)?, PASSPHRASE, &init, None)?;
    for _ in 0..n {
        repo.upload_index_segment(&night_segment(a.packs, a.blobs))?;
    }
    Ok(url)
}

fn measure(a: &Args, n: usize, work: &std::path::Path) -> sophon::Result<Row> {
    let (mut cold, mut warm, mut night, mut compacted) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut cache_bytes = 0;
    let mut compacted_segments = 0;
    for run in 0..a.runs {
        // Each run consolidates its repository: the next starts from a fresh one.
        let url = repository_with_segments(a, n, run)?;
        let cache = work.join(format!("cache-{n}-{run}"));
        // Opening syncs the cache already (a command that takes no lock reads the index too).
        let started = Instant::now();
        let repo = open(&url, &cache)?;
        let opened = started.elapsed().as_secs_f64();
        cold.push(opened + session_start(&repo)?);
        cache_bytes = dir_bytes(&cache);
        warm.push(session_start(&repo)?);
        for _ in 0..a.clients {
            repo.upload_index_segment(&night_segment(a.packs, a.blobs))?;
        }
        night.push(session_start(&repo)?);
        // What a prune does to the index: every pack, 1,024 a segment, superseding every segment.
        let ids = repo.index_segment_ids()?;
        let mut packs = Vec::new();
        for id in &ids {
            packs.extend(repo.load_index_segment(id)?.packs);
        }
        let written = repo.replace_index(&mut packs.into_iter().map(|p| Ok((p, false))), &ids)?;
        compacted_segments = written.len();
        compacted.push(session_start(&repo)?);
        let _ = std::fs::remove_dir_all(&cache);
    }
    Ok(Row {
        segments: n,
        blobs: n * a.packs * a.blobs,
        cold: median(cold),
        warm: median(warm),
        night: median(night),
        compacted: median(compacted),
        compacted_segments,
        cache_bytes,
    })
}

fn main() {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("index_sync: {e}");
            std::process::exit(2);
        }
    };
    let work = std::env::temp_dir().join(format!("sophon-index-sync-{}", std::process::id()));
    let mut rows = Vec::new();
    println!("repository: {} ({} runs, medians; a night = {} clients' segments)", a.repo, a.runs, a.clients);
    println!(
        "{:>9} {:>10} {:>10} {:>10} {:>10} {:>14} {:>10}",
        "segments", "blobs", "cold s", "warm s", "+night s", "compacted s", "cache MiB"
    );
    for &n in &a.segments {
        match measure(&a, n, &work) {
            Ok(r) => {
                println!(
                    "{:>9} {:>10} {:>10.3} {:>10.3} {:>10.3} {:>9.3} ({:>2}) {:>10.1}",
                    r.segments,
                    r.blobs,
                    r.cold,
                    r.warm,
                    r.night,
                    r.compacted,
                    r.compacted_segments,
                    r.cache_bytes as f64 / (1 << 20) as f64
                );
                rows.push(r);
            }
            Err(e) => {
                eprintln!("index_sync: {n} segments: {e}");
                std::process::exit(1);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    if let Some(path) = &a.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "segments": r.segments, "blobs": r.blobs, "cold_s": r.cold, "warm_s": r.warm,
                    "night_s": r.night, "compacted_s": r.compacted,
                    "compacted_segments": r.compacted_segments, "cache_bytes": r.cache_bytes,
                })
            })
            .collect();
        let doc = serde_json::json!({ "repo": a.repo, "runs": a.runs, "clients": a.clients, "rows": v });
        if let Err(e) = std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap_or_default()) {
            eprintln!("index_sync: {}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
