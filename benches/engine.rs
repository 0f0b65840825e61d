//! Sort + exact dedup throughput: `SortDedup` on ~200k parsed generated JSON rows, sorted by
//! `event, country, ts` (then every other column), as a run does it.
//!
//! Run: `cargo bench --bench engine -- --noplot`. Under `cargo test --benches` (no `--bench`
//! flag) criterion runs the benchmark once on 5k rows.

use std::hint::black_box;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use compactor_bench_data::{generate_to_vec, GenConfig, GenFormat};
use compactor_engine::{DedupMode, MemoryPool, SortDedup, SortDedupOutput};
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

/// Sorts and deduplicates `batches` (exact mode) by `sort_by` with a fresh 4 GiB budget.
fn sort_dedup(
    schema: &SchemaRef,
    sort_by: &[String],
    batches: Vec<RecordBatch>,
) -> SortDedupOutput {
    let mut op = SortDedup::try_new(
        schema.clone(),
        sort_by,
        DedupMode::Exact,
        &MemoryPool::new(4 << 30),
    )
    .unwrap();
    for b in batches {
        op.push(b).unwrap();
    }
    op.finish().unwrap()
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
        let out = sort_dedup(&schema, &sort_by, batches.clone());
        assert_eq!(out.batch.num_rows() as u64 + out.duplicates, rows);
        // Re-deliveries split across chunks can differ after cross-chunk casts (see
        // `compactor_formats::schema`), so dedup may find fewer, never more.
        assert!(out.duplicates <= stats.duplicates);
        if out.duplicates != stats.duplicates {
            eprintln!(
                "note: {} of {} re-delivered lines were found as duplicates",
                out.duplicates, stats.duplicates
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
    group.bench_function("json_event_country_ts_exact", |b| {
        b.iter_batched(
            || batches.clone(),
            |batches| black_box(sort_dedup(&schema, &sort_by, batches)),
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench_sort_dedup);
criterion_main!(benches);
