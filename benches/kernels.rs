//! Columnar kernels on ~200k synthetic rows (`event: Utf8, user: Int64 (5% null),
//! ts: Timestamp(µs, UTC), path: Utf8`, 10% re-delivered rows): sort-key encoding
//! (`RowConverter` over `event, user, ts`), the stub comparison sort against the MSD prefix sort,
//! dedup of the sorted indices, row hashing over all four columns, and `take_batch`.
//!
//! Each kernel is measured twice, in group `kernels_rows` (rows/s) and in group
//! `kernels_bytes` (bytes/s). The bytes are the encoded row bytes for encode, sort and dedup,
//! and the Arrow arrays' memory (`get_array_memory_size`) for hash and take.
//!
//! Run: `cargo bench --bench kernels -- --noplot`. Under `cargo test --benches` (no `--bench`
//! flag) criterion runs each benchmark once on 5k rows.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use arrow::datatypes::DataType;
use arrow::row::{RowConverter, SortField};
use compactor_engine::kernels::{
    dedup_sorted, hash_rows, sort_row_indices, sort_row_indices_comparison, take_batch,
};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ROWS: usize = 200_000;
const TEST_MODE_ROWS: usize = 5_000;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

const EVENTS: [&str; 12] = [
    "page_view",
    "click",
    "add_to_cart",
    "purchase",
    "search",
    "login",
    "logout",
    "signup",
    "scroll",
    "share",
    "video_play",
    "video_pause",
];

/// The synthetic batch; one row in ten repeats an earlier row exactly.
fn make_batch(n: usize) -> RecordBatch {
    let mut rng = ChaCha8Rng::seed_from_u64(0x9e37_79b9_7f4a_7c15);
    let mut event: Vec<&str> = Vec::with_capacity(n);
    let mut user: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut ts: Vec<i64> = Vec::with_capacity(n);
    let mut path: Vec<String> = Vec::with_capacity(n);
    let day0 = 1_700_000_000_000_000i64;
    for i in 0..n {
        if i > 0 && rng.gen_range(0u64..10) == 0 {
            let j = rng.gen_range(0u64..i as u64) as usize;
            event.push(event[j]);
            user.push(user[j]);
            ts.push(ts[j]);
            let p = path[j].clone();
            path.push(p);
            continue;
        }
        event.push(EVENTS[rng.gen_range(0u64..EVENTS.len() as u64) as usize]);
        user.push((rng.gen_range(0u64..20) != 0).then(|| rng.gen_range(0u64..50_000) as i64));
        ts.push(day0 + rng.gen_range(0u64..86_400_000_000) as i64);
        let depth = 1 + rng.gen_range(0u64..4);
        let mut p = String::new();
        for _ in 0..depth {
            p.push_str(
                ["/api", "/v2", "/items", "/users", "/static/img", "/search"]
                    [rng.gen_range(0u64..6) as usize],
            );
        }
        p.push_str(&format!("/{}", rng.gen_range(0u64..100_000)));
        path.push(p);
    }
    RecordBatch::try_from_iter([
        ("event", Arc::new(StringArray::from(event)) as ArrayRef),
        ("user", Arc::new(Int64Array::from(user)) as ArrayRef),
        (
            "ts",
            Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
        ),
        ("path", Arc::new(StringArray::from(path)) as ArrayRef),
    ])
    .unwrap()
}

fn converter() -> RowConverter {
    RowConverter::new(vec![
        SortField::new(DataType::Utf8),
        SortField::new(DataType::Int64),
        SortField::new(DataType::Timestamp(
            arrow::datatypes::TimeUnit::Microsecond,
            Some("UTC".into()),
        )),
    ])
    .unwrap()
}

fn bench_kernels(c: &mut Criterion) {
    let n = if bench_mode() { ROWS } else { TEST_MODE_ROWS };
    let batch = make_batch(n);
    let key_cols: Vec<ArrayRef> = batch.columns()[..3].to_vec();
    let conv = converter();
    let rows = conv.convert_columns(&key_cols).unwrap();
    let row_bytes: usize = rows.lengths().sum();
    let array_bytes = batch.get_array_memory_size();
    let key_array_bytes: usize = key_cols.iter().map(|c| c.get_array_memory_size()).sum();

    let input: Vec<u32> = (0..n as u32).collect();
    let mut sorted = input.clone();
    sort_row_indices(&rows, &mut sorted);
    {
        let mut expected = input.clone();
        sort_row_indices_comparison(&rows, &mut expected);
        assert_eq!(
            sorted, expected,
            "prefix sort differs from the comparison sort"
        );
    }
    let mut distinct = sorted.clone();
    let dups = dedup_sorted(&rows, &mut distinct);
    let take_idx = UInt32Array::from(distinct.clone());
    eprintln!(
        "kernels input: {n} rows, {} MiB of arrays ({} MiB in the key columns), {} MiB of encoded \
         keys ({:.1} B/row), {dups} duplicate keys, {} threads",
        array_bytes >> 20,
        key_array_bytes >> 20,
        row_bytes >> 20,
        row_bytes as f64 / n as f64,
        std::thread::available_parallelism().map_or(1, |p| p.get()),
    );

    for (group_name, per_kernel_bytes) in [("kernels_rows", false), ("kernels_bytes", true)] {
        let mut group = c.benchmark_group(group_name);
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        let tp = |bytes: usize| {
            if per_kernel_bytes {
                Throughput::Bytes(bytes as u64)
            } else {
                Throughput::Elements(n as u64)
            }
        };

        group.throughput(tp(key_array_bytes));
        group.bench_function("encode_rowconverter_utf8_i64_ts", |b| {
            b.iter(|| black_box(conv.convert_columns(black_box(&key_cols)).unwrap()))
        });

        group.throughput(tp(row_bytes));
        group.bench_function("sort_stub_comparison", |b| {
            b.iter_batched_ref(
                || input.clone(),
                |idx| sort_row_indices_comparison(&rows, idx),
                BatchSize::LargeInput,
            )
        });
        group.bench_function("sort_row_indices_msd_prefix", |b| {
            b.iter_batched_ref(
                || input.clone(),
                |idx| sort_row_indices(&rows, idx),
                BatchSize::LargeInput,
            )
        });
        group.bench_function("dedup_sorted", |b| {
            b.iter_batched_ref(
                || sorted.clone(),
                |idx| black_box(dedup_sorted(&rows, idx)),
                BatchSize::LargeInput,
            )
        });

        group.throughput(tp(array_bytes));
        let mut hashes = Vec::new();
        group.bench_function("hash_rows_4_columns", |b| {
            b.iter(|| {
                hash_rows(black_box(batch.columns()), &mut hashes).unwrap();
                black_box(&hashes);
            })
        });
        group.bench_function("take_batch_4_columns", |b| {
            b.iter(|| black_box(take_batch(&batch, &take_idx).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_kernels);
criterion_main!(benches);
