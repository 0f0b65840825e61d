//! Hash aggregation on 1M synthetic rows: three string dimensions (`country`, `device`,
//! `page`) whose product gives about 1k groups or about 100k groups, with `count(*)`,
//! `sum(bytes)`, `count_distinct(user)` (HLL, lg_k 12) and `quantiles(latency)` (t-digest,
//! k 100, p50/p95/p99), under a memory budget large enough not to spill. Throughput is in
//! rows/s (group `aggregate_rows`).
//!
//! Run: `cargo bench --bench aggregate -- --noplot`. Under `cargo test --benches` (no
//! `--bench` flag) criterion runs each benchmark once on 10k rows.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use compactor_engine::aggregate::{AggFunc, AggSpec, AggregateOptions, HashAggregate};
use compactor_engine::spill::{SpillConfig, SpillManager};
use compactor_engine::MemoryPool;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROWS: usize = 1_000_000;
const TEST_MODE_ROWS: usize = 10_000;
const BATCH: usize = 64 * 1024;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("country", DataType::Utf8, false),
        Field::new("device", DataType::Utf8, false),
        Field::new("page", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, true),
        Field::new("bytes", DataType::Int64, true),
        Field::new("latency", DataType::Float64, true),
    ]))
}

/// `rows` rows whose dimensions take `c * d * p` combinations.
fn data(rows: usize, (c, d, p): (u64, u64, u64)) -> Vec<RecordBatch> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let mut out = Vec::new();
    let mut left = rows;
    while left > 0 {
        let n = left.min(BATCH);
        left -= n;
        let mut cols: [Vec<String>; 4] = Default::default();
        let mut bytes = Vec::with_capacity(n);
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let r = rng.next_u64();
            cols[0].push(format!("country-{:02}", r % c));
            cols[1].push(format!("device-{}", (r >> 8) % d));
            cols[2].push(format!("/site/section/page-{:05}", (r >> 16) % p));
            cols[3].push(format!("user-{:07}", (r >> 32) % 200_000));
            bytes.push((r >> 40) as i64 % 100_000);
            lat.push(((r >> 20) % 10_000) as f64 / 10.0);
        }
        let [country, device, page, user] = cols;
        out.push(
            RecordBatch::try_new(
                schema(),
                vec![
                    Arc::new(StringArray::from(country)),
                    Arc::new(StringArray::from(device)),
                    Arc::new(StringArray::from(page)),
                    Arc::new(StringArray::from(user)),
                    Arc::new(Int64Array::from(bytes)),
                    Arc::new(Float64Array::from(lat)),
                ],
            )
            .unwrap(),
        );
    }
    out
}

fn opts() -> AggregateOptions {
    let spec = |name: &str, func, column: Option<&str>| AggSpec {
        name: name.into(),
        func,
        column: column.map(Into::into),
    };
    AggregateOptions::new(
        vec!["country".into(), "device".into(), "page".into()],
        vec![
            spec("rows", AggFunc::Count, None),
            spec("bytes", AggFunc::Sum, Some("bytes")),
            spec("users", AggFunc::CountDistinct { lg_k: 12 }, Some("user")),
            spec(
                "latency",
                AggFunc::Quantiles {
                    k: 100,
                    quantiles: vec![0.5, 0.95, 0.99],
                },
                Some("latency"),
            ),
        ],
    )
}

fn run(batches: &[RecordBatch], spill: &Arc<SpillManager>) -> usize {
    let pool = MemoryPool::new(8 << 30);
    let mut agg = HashAggregate::try_new(opts(), schema(), spill.clone(), &pool).unwrap();
    for b in batches {
        agg.push(b).unwrap();
    }
    agg.finish().unwrap().map(|b| b.unwrap().num_rows()).sum()
}

fn bench(c: &mut Criterion) {
    let n = if bench_mode() { ROWS } else { TEST_MODE_ROWS };
    let dir = tempfile::tempdir().unwrap();
    let spill = SpillManager::new(&SpillConfig::new(dir.path())).unwrap();
    let mut g = c.benchmark_group("aggregate_rows");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(n as u64));
    for (name, dims) in [("1k_groups", (10, 4, 25)), ("100k_groups", (20, 5, 1000))] {
        let batches = data(n, dims);
        g.bench_function(name, |b| b.iter(|| black_box(run(&batches, &spill))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
