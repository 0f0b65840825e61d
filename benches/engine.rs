//! Sort + exact dedup throughput: `ExternalSort` on ~200k parsed generated JSON rows, sorted by
//! `event, country, ts` (then every other column), as a run does it: once all in memory, once
//! with runs of 1/8 of the input spilled to disk and merged.
//!
//! Run: `cargo bench --bench engine -- --noplot`. Under `cargo test --benches` (no `--bench`
//! flag) criterion runs the benchmark once on 5k rows.

use std::hint::black_box;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use compactor_bench_data::{generate_to_vec, GenConfig, GenFormat};
use compactor_engine::{
    DedupMode, ExternalSort, MemoryPool, SortOptions, SortStats, SpillConfig, SpillManager,
};
use compactor_formats::schema::{conform, unify};
use compactor_formats::{for_each_line, parse_chunk, Format, ParseOptions};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};

const ROWS: u64 = 200_000;
const TEST_MODE_ROWS: u64 = 5_000;
const CHUNK_BYTES: usize = compactor::job::DEFAULT_CHUNK_BYTES;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Parses `data` in chunks of whole lines of about `chunk_bytes`, like the pipeline, and
/// brings every batch to the unified schema.
fn parse_to_batches(data: &[u8], chunk_bytes: usize) -> Vec<RecordBatch> {
    let opts = ParseOptions::new(Format::Json);
    let mut batches = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    while start < data.len() {
        let mut end = (start + chunk_bytes).min(data.len());
        if end < data.len() {
            end = data[..end]
                .iter()
                .rposition(|&b| b == b'\n')
                .filter(|&i| i >= start)
                .map_or(data.len(), |i| i + 1);
        }
        let chunk = &data[start..end];
        let parsed = parse_chunk(&opts, chunk, first_line).unwrap();
        assert!(parsed.rejects.is_empty(), "{:?}", parsed.rejects.first());
        first_line += parsed.lines;
        batches.push(parsed.batch);
        start = end;
    }
    let schemas: Vec<_> = batches.iter().map(|b| b.schema()).collect();
    let schema = unify(None, schemas.iter().map(|s| s.as_ref())).unwrap();
    batches
        .iter()
        .map(|b| conform(b, &schema).unwrap())
        .collect()
}

/// Sorts and deduplicates `batches` (exact mode) by `sort_by` with a fresh 4 GiB budget,
/// writing sorted runs of at most `run_bytes`. Returns (rows out, duplicates, runs spilled).
fn sort_dedup(
    schema: &SchemaRef,
    sort_by: &[String],
    batches: Vec<RecordBatch>,
    run_bytes: usize,
) -> (u64, u64, u64) {
    let tmp = tempfile::tempdir().unwrap();
    let spill = SpillManager::new(&SpillConfig::new(tmp.path())).unwrap();
    let pool = MemoryPool::new(4 << 30);
    let opts = SortOptions::new(sort_by.to_vec(), DedupMode::Exact, run_bytes);
    let mut op = ExternalSort::try_new(opts, spill, &pool).unwrap();
    for b in batches {
        op.push(b).unwrap();
    }
    let mut out = op.finish(schema).unwrap();
    let mut rows = 0;
    while let Some(b) = out.next_batch().unwrap() {
        rows += black_box(b).num_rows() as u64;
    }
    let s = out.stats();
    (
        rows,
        SortStats::get(&s.duplicates),
        SortStats::get(&s.spilled_runs),
    )
}

fn bench_sort_dedup(c: &mut Criterion) {
    let rows = if bench_mode() { ROWS } else { TEST_MODE_ROWS };
    let (data, stats) = generate_to_vec(&GenConfig::new(GenFormat::Json, rows, 7)).unwrap();
    let mut lines = 0u64;
    for_each_line(&data, |_, _| lines += 1);
    assert_eq!(lines, rows);
    let batches = parse_to_batches(&data, CHUNK_BYTES);
    let schema = batches[0].schema();
    let sort_by: Vec<String> = ["event", "country", "ts"].map(String::from).to_vec();
    let in_bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();

    // sanity: exact dedup drops exactly the generator's re-deliveries
    {
        let (out_rows, duplicates, _) = sort_dedup(&schema, &sort_by, batches.clone(), usize::MAX);
        assert_eq!(out_rows + duplicates, rows);
        let spilled = sort_dedup(&schema, &sort_by, batches.clone(), in_bytes / 8);
        assert_eq!(spilled.0, out_rows);
        assert!(spilled.2 >= 8, "{} runs", spilled.2);
        // Re-deliveries split across chunks can differ after cross-chunk casts (see
        // `compactor_formats::schema`), so dedup may find fewer, never more.
        assert!(duplicates <= stats.duplicates);
        if duplicates != stats.duplicates {
            eprintln!(
                "note: {} of {} re-delivered lines were found as duplicates",
                duplicates, stats.duplicates
            );
        }
    }

    eprintln!(
        "sort_dedup input: {rows} rows, {} batches, {} MiB of Arrow arrays",
        batches.len(),
        in_bytes >> 20
    );
    let mut group = c.benchmark_group("sort_dedup");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10))
        .throughput(Throughput::Elements(rows));
    group.bench_function("json_event_country_ts_exact_in_memory", |b| {
        b.iter_batched(
            || batches.clone(),
            |batches| black_box(sort_dedup(&schema, &sort_by, batches, usize::MAX)),
            BatchSize::LargeInput,
        )
    });
    group.bench_function("json_event_country_ts_exact_spill_8_runs", |b| {
        b.iter_batched(
            || batches.clone(),
            |batches| black_box(sort_dedup(&schema, &sort_by, batches, in_bytes / 8)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_sort_dedup);
criterion_main!(benches);
