//! Parser throughput: `parse_chunk` on one pipeline-sized chunk (8 MiB) of generated input.
//!
//! Run: `cargo bench --bench parse -- --noplot`. Under `cargo test --benches` (no `--bench`
//! flag) criterion runs each benchmark once, and the chunk shrinks to 256 KiB so that the
//! unoptimised test build stays fast.
//!
//! Formats:
//! - `json`: generated click / playback events (nested objects, arrays, escapes, timestamps).
//! - `combined`: generated nginx combined log with a trailing `$request_time`.
//! - `common`: the same lines cut after the `bytes` field (the generator has no common mode).

use compactor_bench_data::{generate_to_vec, GenConfig, GenFormat};
use compactor_formats::{parse_chunk, Format, ParseOptions};
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// The chunk size the pipeline uses (`compactor::job::DEFAULT_CHUNK_BYTES`).
const CHUNK_BYTES: usize = compactor::job::DEFAULT_CHUNK_BYTES;
const TEST_MODE_CHUNK_BYTES: usize = 256 << 10;

/// True under `cargo bench` (cargo passes `--bench`), false under `cargo test --benches`.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Whole lines of generated `format`, at most `target` bytes (and close to it).
fn generate_bytes(format: GenFormat, target: usize, seed: u64) -> Vec<u8> {
    let (sample, stats) = generate_to_vec(&GenConfig::new(format, 2_000, seed)).unwrap();
    let per_line = (stats.bytes as f64 / stats.lines as f64).max(1.0);
    let lines = (target as f64 / per_line * 1.05) as u64 + 16;
    drop(sample);
    let (mut data, _) = generate_to_vec(&GenConfig::new(format, lines, seed)).unwrap();
    if data.len() > target {
        let cut = data[..target]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        data.truncate(cut);
    }
    data
}

/// Cuts each combined line after its `bytes` field: `ip ident user [ts] "request" status bytes`.
fn combined_to_common(combined: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(combined.len());
    for line in combined.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        out.extend_from_slice(common_prefix(line).unwrap_or(line));
        out.push(b'\n');
    }
    out
}

fn common_prefix(line: &[u8]) -> Option<&[u8]> {
    let open = line.windows(3).position(|w| w == b"] \"")? + 3;
    let mut i = open;
    while i < line.len() && line[i] != b'"' {
        i += if line[i] == b'\\' { 2 } else { 1 };
    }
    // after the request: " status bytes"
    let mut end = i + 1;
    for _ in 0..2 {
        while line.get(end) == Some(&b' ') {
            end += 1;
        }
        while end < line.len() && line[end] != b' ' {
            end += 1;
        }
    }
    Some(&line[..end.min(line.len())])
}

fn bench_parse(c: &mut Criterion) {
    let target = if bench_mode() {
        CHUNK_BYTES
    } else {
        TEST_MODE_CHUNK_BYTES
    };
    let json = generate_bytes(GenFormat::Json, target, 1);
    let combined = generate_bytes(GenFormat::Combined, target, 2);
    // the common lines are shorter; cut from a larger combined sample to fill the chunk
    let common = {
        let mut c = combined_to_common(&generate_bytes(GenFormat::Combined, target * 2, 3));
        let cut = c[..target.min(c.len())]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        c.truncate(cut);
        c
    };

    let mut group = c.benchmark_group("parse_chunk");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    for (name, format, data) in [
        ("json", Format::Json, &json),
        ("combined", Format::Combined, &combined),
        ("common", Format::Common, &common),
    ] {
        let opts = ParseOptions::new(format);
        // sanity: the generated data parses, and nothing is silently dropped
        let parsed = parse_chunk(&opts, data, 1).unwrap();
        assert_eq!(
            parsed.batch.num_rows() as u64 + parsed.rejects.len() as u64,
            parsed.lines
        );
        assert!(
            parsed.rejects.len() as u64 * 100 <= parsed.lines,
            "{name}: {} of {} lines rejected, first: {:?}",
            parsed.rejects.len(),
            parsed.lines,
            parsed.rejects.first()
        );
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| parse_chunk(&opts, black_box(data), 1).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
