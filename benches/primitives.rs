//! Throughput of each pipeline stage on 1 MiB inputs (the average chunk size): chunking, keyed
//! hashing, compression (text and random data), sealing (ring and the aes-gcm crate, the measurement
//! behind the choice in src/crypto.rs), and pack building.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

use sophon::chunk::{Chunker, ChunkerParams};
use sophon::compress::Compressor;
use sophon::crypto::{MasterKeys, SealKey};
use sophon::pack::{compress_blob, PackBuilder};
use sophon::{BlobId, BlobType, RepoId};

fn random(n: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn text(n: usize) -> Vec<u8> {
    let words = ["agent ", "memory ", "tool ", "result ", "the ", "of ", "plan\n", "token ", "session ", "42 "];
    let r = random(n);
    let mut out = Vec::with_capacity(n + 16);
    let mut i = 0;
    while out.len() < n {
        out.extend_from_slice(words[(r[i] % 10) as usize].as_bytes());
        i += 1;
    }
    out.truncate(n);
    out
}

const MIB: usize = 1024 * 1024;

fn chunking(c: &mut Criterion) {
    let data = random(64 * MIB);
    let mut g = c.benchmark_group("chunk");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("fastcdc-2020 512K/1M/4M, 64 MiB", |b| {
        let mut ch = Chunker::new(ChunkerParams::DEFAULT, 0x1234).unwrap();
        b.iter(|| {
            ch.reset();
            let mut r = &data[..];
            let mut n = 0;
            while let Some(c) = ch.next_chunk(&mut r).unwrap() {
                n += c.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let keys = MasterKeys::generate(RepoId([0; 32])).unwrap();
    let data = random(MIB);
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Bytes(MIB as u64));
    g.bench_function("keyed blake3, 1 MiB", |b| b.iter(|| black_box(keys.blob_id(&data))));
    g.finish();
}

fn compression(c: &mut Criterion) {
    let mut g = c.benchmark_group("compress");
    g.throughput(Throughput::Bytes(MIB as u64));
    for (name, data) in [("text", text(MIB)), ("random", random(MIB))] {
        for level in [1, 2, 3] {
            g.bench_with_input(BenchmarkId::new(format!("zstd-{level}"), name), &data, |b, d| {
                let mut comp = Compressor::new(level).unwrap();
                b.iter(|| black_box(comp.compress(d.clone())))
            });
        }
    }
    g.finish();
}

fn sealing(c: &mut Criterion) {
    let data = random(MIB);
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Bytes(MIB as u64));
    let key = SealKey::new([7; 32]);
    g.bench_function("aes-256-gcm ring, 1 MiB", |b| b.iter(|| black_box(key.seal(&data, b"ad").unwrap())));
    g.bench_function("aes-256-gcm aes-gcm crate, 1 MiB", |b| {
        use aes_gcm::aead::{AeadInPlace, KeyInit};
        let cipher = aes_gcm::Aes256Gcm::new(&[7u8; 32].into());
        b.iter(|| {
            let mut buf = data.clone();
            let tag = cipher.encrypt_in_place_detached(&[1u8; 12].into(), b"ad", &mut buf).unwrap();
            black_box((buf, tag))
        })
    });
    g.finish();
}

fn pack_writing(c: &mut Criterion) {
    let key = SealKey::new([9; 32]);
    let blobs: Vec<Vec<u8>> = (0..16).map(|i| if i % 2 == 0 { text(MIB) } else { random(MIB) }).collect();
    let mut g = c.benchmark_group("pack");
    g.throughput(Throughput::Bytes(16 * MIB as u64));
    g.sample_size(10);
    g.bench_function("compress+seal+pack 16 x 1 MiB (zstd-2)", |b| {
        let mut comp = Compressor::new(2).unwrap();
        b.iter(|| {
            let mut p = PackBuilder::new();
            for (i, d) in blobs.iter().enumerate() {
                p.add(&key, &compress_blob(&mut comp, BlobType::Data, BlobId([i as u8; 32]), d.clone()).unwrap())
                    .unwrap();
            }
            black_box(p.finish(&key).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, chunking, hashing, compression, sealing, pack_writing);
criterion_main!(benches);
