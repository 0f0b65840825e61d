//! Whole-run throughput: `compactor::run::run` on a generated input file into a fresh table
//! each iteration (read, parse, sort + exact dedup, zstd Parquet, Delta commit), 2 threads.
//!
//! Run: `cargo bench --bench run -- --noplot`. The input size is `COMPACTOR_BENCH_RUN_MB`
//! (default 50) MB per format. Under `cargo test --benches` (no `--bench` flag) criterion runs
//! each benchmark once on 1 MB of input.
//!
//! Throughput is input bytes (as stored) per second of the whole run, table creation included;
//! deleting the table afterwards is not timed.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use compactor::job::Job;
use compactor::run::{run, RunOptions, RunReport};
use compactor_bench_data::{generate, GenConfig, GenFormat};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use tempfile::TempDir;

const DEFAULT_MB: u64 = 50;
const TEST_MODE_MB: u64 = 1;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn input_bytes() -> u64 {
    if !bench_mode() {
        return TEST_MODE_MB * 1_000_000;
    }
    std::env::var("COMPACTOR_BENCH_RUN_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MB)
        * 1_000_000
}

/// Writes about `bytes` bytes of generated `format` to `path`; returns the size written.
fn write_input(path: &Path, format: GenFormat, bytes: u64, seed: u64) -> u64 {
    let mut sample = Vec::new();
    let stats = generate(&GenConfig::new(format, 2_000, seed), &mut sample).unwrap();
    let lines = (bytes * stats.lines / stats.bytes).max(1);
    let file = std::fs::File::create(path).unwrap();
    generate(&GenConfig::new(format, lines, seed), file)
        .unwrap()
        .bytes
}

fn job(input: &Path, format: &str, table: &Path, sort_by: &[&str]) -> Job {
    let text = format!(
        "[input]\npaths = [{input:?}]\nformat = {format:?}\n\n[output]\npath = {table:?}\nsort_by = {sort_by:?}\n",
        input = input.display().to_string(),
        table = table.display().to_string(),
    );
    Job::parse(&text).unwrap_or_else(|e| panic!("job {text}: {e:#}"))
}

fn opts() -> RunOptions {
    RunOptions {
        threads: 2,
        memory: Some(4 << 30),
        spill_dir: None,
        max_spill_bytes: None,
        run_bytes: None,
        progress: false,
    }
}

fn check(report: &RunReport) {
    assert!(report.committed, "{}", report.summary());
    assert_eq!(
        report.lines_in,
        report.rows_out + report.duplicates + report.rejected,
        "{}",
        report.summary()
    );
}

fn bench_run(c: &mut Criterion) {
    let bytes = input_bytes();
    let inputs = TempDir::new().unwrap();
    let mut group = c.benchmark_group("run");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20));
    for (name, gen, format, sort_by, seed) in [
        (
            "json",
            GenFormat::Json,
            "json",
            &["event", "country", "ts"][..],
            11,
        ),
        ("combined", GenFormat::Combined, "combined", &["ts"][..], 12),
    ] {
        let input = inputs.path().join(format!("{name}.log"));
        let size = write_input(&input, gen, bytes, seed);
        // one untimed run to check that the job works end to end
        {
            let dir = TempDir::new().unwrap();
            let report = run(
                &job(&input, format, &dir.path().join("t"), sort_by),
                &opts(),
            )
            .unwrap();
            check(&report);
            eprintln!("run/{name}: {}", report.summary());
        }
        group.throughput(Throughput::Bytes(size));
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    let dir = TempDir::new().unwrap();
                    let job = job(&input, format, &dir.path().join("t"), sort_by);
                    (dir, job)
                },
                |(dir, job)| {
                    let report = run(&job, &opts()).unwrap();
                    black_box(&report);
                    // the table is deleted when `dir` drops, after timing
                    (dir, report)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_run);
criterion_main!(benches);
