//! Hash aggregation: exact columns against an oracle, sketch accuracy, merging of states,
//! spilling, determinism and error handling.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use compactor_engine::aggregate::{
    quantile_suffix, state_schema, AggFunc, AggSpec, AggregateOptions, AggregateStats,
    HashAggregate,
};
use compactor_engine::spill::{SpillConfig, SpillManager};
use compactor_engine::{EngineError, MemoryPool};
use proptest::prelude::*;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn spec(name: &str, func: AggFunc, column: Option<&str>) -> AggSpec {
    AggSpec {
        name: name.into(),
        func,
        column: column.map(Into::into),
    }
}

struct Env {
    _dir: tempfile::TempDir,
    spill: Arc<SpillManager>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let spill = SpillManager::new(&SpillConfig::new(dir.path())).unwrap();
    Env { _dir: dir, spill }
}

/// Aggregates raw `batches` and, after them, `states`; returns the output and the counters.
fn aggregate(
    opts: &AggregateOptions,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    states: &[RecordBatch],
    pool: &Arc<MemoryPool>,
) -> Result<(Vec<RecordBatch>, AggregateStats), EngineError> {
    let e = env();
    let mut agg = HashAggregate::try_new(opts.clone(), schema.clone(), e.spill.clone(), pool)?;
    for b in batches {
        agg.push(b)?;
    }
    for s in states {
        agg.push_states(s)?;
    }
    let mut stream = agg.finish()?;
    let out = stream.by_ref().collect::<Result<Vec<_>, _>>()?;
    let stats = stream.stats();
    drop(stream);
    assert_eq!(pool.used(), 0, "memory back after the stream is dropped");
    drop(e);
    Ok((out, stats))
}

fn big_pool() -> Arc<MemoryPool> {
    MemoryPool::new(1 << 30)
}

fn concat(batches: &[RecordBatch]) -> RecordBatch {
    let schema = batches[0].schema();
    arrow_select::concat::concat_batches(&schema, batches).unwrap()
}

fn col<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    b.column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

// ---------------------------------------------------------------------------------------------
// Exact columns against an oracle
// ---------------------------------------------------------------------------------------------

type Row = (Option<String>, Option<i64>, Option<i64>, Option<f64>);

fn oracle_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("k", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
        Field::new("extra", DataType::Int64, true),
    ]))
}

fn oracle_batch(rows: &[Row]) -> RecordBatch {
    RecordBatch::try_new(
        oracle_schema(),
        vec![
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.clone()))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.1))),
            Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.2))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.3))),
            Arc::new(Int64Array::from_iter_values(0..rows.len() as i64)),
        ],
    )
    .unwrap()
}

fn oracle_opts() -> AggregateOptions {
    AggregateOptions::new(
        vec!["s".into(), "k".into()],
        vec![
            spec("rows", AggFunc::Count, None),
            spec("nv", AggFunc::Count, Some("v")),
            spec("sv", AggFunc::Sum, Some("v")),
            spec("minv", AggFunc::Min, Some("v")),
            spec("maxv", AggFunc::Max, Some("v")),
            spec("sf", AggFunc::Sum, Some("f")),
            spec("minf", AggFunc::Min, Some("f")),
            spec("maxf", AggFunc::Max, Some("f")),
            spec("mf", AggFunc::Mean, Some("f")),
            spec("mins", AggFunc::Min, Some("s")),
            spec("maxs", AggFunc::Max, Some("s")),
        ],
    )
}

#[derive(Debug, Default, PartialEq)]
struct Expect {
    rows: i64,
    nv: i64,
    sv: Option<i64>,
    minv: Option<i64>,
    maxv: Option<i64>,
    sf: Option<f64>,
    minf: Option<f64>,
    maxf: Option<f64>,
    nf: i64,
    mins: Option<String>,
    maxs: Option<String>,
}

fn oracle(rows: &[Row]) -> BTreeMap<(Option<String>, Option<i64>), Expect> {
    let mut m: BTreeMap<_, Expect> = BTreeMap::new();
    for (s, k, v, f) in rows {
        let e = m.entry((s.clone(), *k)).or_default();
        e.rows += 1;
        if let Some(v) = *v {
            e.nv += 1;
            e.sv = Some(e.sv.unwrap_or(0) + v);
            e.minv = Some(e.minv.map_or(v, |m| m.min(v)));
            e.maxv = Some(e.maxv.map_or(v, |m| m.max(v)));
        }
        if let Some(f) = *f {
            e.nf += 1;
            e.sf = Some(e.sf.unwrap_or(0.0) + f);
            e.minf = Some(e.minf.map_or(f, |m| m.min(f)));
            e.maxf = Some(e.maxf.map_or(f, |m| m.max(f)));
        }
        if let Some(s) = s {
            e.mins = Some(e.mins.clone().map_or(s.clone(), |m| m.min(s.clone())));
            e.maxs = Some(e.maxs.clone().map_or(s.clone(), |m| m.max(s.clone())));
        }
    }
    m
}

fn check_oracle(out: &[RecordBatch], rows: &[Row]) {
    let want = oracle(rows);
    let got = if out.is_empty() {
        assert!(want.is_empty());
        return;
    } else {
        concat(out)
    };
    assert_eq!(got.num_rows(), want.len());
    let i64s = |n: &str| col(&got, n).as_primitive::<Int64Type>().clone();
    let f64s = |n: &str| col(&got, n).as_primitive::<Float64Type>().clone();
    let strs = |n: &str| col(&got, n).as_string::<i32>().clone();
    let opt_i = |a: &Int64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    let opt_f = |a: &Float64Array, i: usize| a.is_valid(i).then(|| a.value(i));
    let opt_s = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
    let (s, k) = (strs("s"), i64s("k"));
    let (rows_c, nv, sv, minv, maxv) = (
        i64s("rows"),
        i64s("nv"),
        i64s("sv"),
        i64s("minv"),
        i64s("maxv"),
    );
    let (sf, minf, maxf, mf, mf_sum, mf_count) = (
        f64s("sf"),
        f64s("minf"),
        f64s("maxf"),
        f64s("mf"),
        f64s("mf_sum"),
        i64s("mf_count"),
    );
    let (mins, maxs) = (strs("mins"), strs("maxs"));
    for (i, (key, e)) in want.iter().enumerate() {
        assert_eq!(
            (opt_s(&s, i), opt_i(&k, i)),
            key.clone(),
            "row {i}: key order"
        );
        let g = Expect {
            rows: rows_c.value(i),
            nv: nv.value(i),
            sv: opt_i(&sv, i),
            minv: opt_i(&minv, i),
            maxv: opt_i(&maxv, i),
            sf: opt_f(&sf, i),
            minf: opt_f(&minf, i),
            maxf: opt_f(&maxf, i),
            nf: mf_count.value(i),
            mins: opt_s(&mins, i),
            maxs: opt_s(&maxs, i),
        };
        assert_eq!(&g, e, "group {key:?}");
        assert_eq!(opt_f(&mf_sum, i), e.sf);
        assert_eq!(opt_f(&mf, i), e.sf.map(|s| s / e.nf as f64));
    }
}

fn row_strategy() -> impl Strategy<Value = Row> {
    (
        prop::option::weighted(
            0.9,
            prop::sample::select(vec!["", "a", "ab", "b", "zz", "é"]),
        ),
        prop::option::weighted(0.9, -3i64..4),
        prop::option::weighted(0.8, -1000i64..1000),
        prop::option::weighted(0.8, -50i64..50),
    )
        .prop_map(|(s, k, v, f)| (s.map(String::from), k, v, f.map(|f| f as f64)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn exact_columns_match_the_oracle(
        rows in prop::collection::vec(row_strategy(), 0..400),
        cut in 0usize..400,
        batch_rows in 1usize..50,
    ) {
        let cut = cut.min(rows.len());
        let schema = oracle_schema();
        let mut opts = oracle_opts();
        opts.batch_rows = batch_rows;
        let batches = vec![oracle_batch(&rows[..cut]), oracle_batch(&rows[cut..])];
        let (out, stats) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
        prop_assert!(out.iter().all(|b| b.num_rows() <= batch_rows));
        prop_assert_eq!(stats.rows_in, rows.len() as u64);
        prop_assert_eq!(stats.groups, oracle(&rows).len() as u64);
        check_oracle(&out, &rows);

        // the same rows as two partial aggregations, merged
        let (a, _) = aggregate(&opts, &schema, &batches[..1], &[], &big_pool()).unwrap();
        let (b, _) = aggregate(&opts, &schema, &batches[1..], &[], &big_pool()).unwrap();
        let states: Vec<_> = a.into_iter().chain(b).collect();
        let (merged, mstats) = aggregate(&opts, &schema, &[], &states, &big_pool()).unwrap();
        prop_assert_eq!(mstats.states_in, states.iter().map(|b| b.num_rows() as u64).sum::<u64>());
        check_oracle(&merged, &rows);
    }
}

// ---------------------------------------------------------------------------------------------
// Sketches
// ---------------------------------------------------------------------------------------------

fn hll_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("g", DataType::Utf8, false),
        Field::new("u", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
    ]))
}

fn sketch_opts() -> AggregateOptions {
    AggregateOptions::new(
        vec!["g".into()],
        vec![
            spec("n", AggFunc::Count, None),
            spec("du", AggFunc::CountDistinct { lg_k: 14 }, Some("u")),
            spec(
                "qx",
                AggFunc::Quantiles {
                    k: 200,
                    quantiles: vec![0.5, 0.95, 0.99],
                },
                Some("x"),
            ),
        ],
    )
}

/// Groups "a", "b", "c" with `distinct[i]` distinct users each (shuffled by a multiplicative
/// permutation), x a pseudo-random value, in batches of 50k rows.
fn sketch_data(distinct: &[u64]) -> Vec<RecordBatch> {
    let mut rows: Vec<(String, i64, f64)> = Vec::new();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for (gi, &d) in distinct.iter().enumerate() {
        let name = ["a", "b", "c", "d"][gi].to_string();
        // every user twice, except in the largest group (debug-build test time)
        for rep in 0..if d > 100_000 { 1 } else { 2 } {
            for i in 0..d {
                let u = ((i * 2_654_435_761 + rep) % d) as i64 + (gi as i64) * 10_000_000;
                let x = (rng.next_u64() % 1_000_000) as f64 / 7.0;
                rows.push((name.clone(), u, x));
            }
        }
    }
    rows.chunks(50_000)
        .map(|c| {
            RecordBatch::try_new(
                hll_schema(),
                vec![
                    Arc::new(StringArray::from_iter_values(
                        c.iter().map(|r| r.0.as_str()),
                    )),
                    Arc::new(Int64Array::from_iter_values(c.iter().map(|r| r.1))),
                    Arc::new(Float64Array::from_iter_values(c.iter().map(|r| r.2))),
                ],
            )
            .unwrap()
        })
        .collect()
}

fn check_hll(out: &RecordBatch, distinct: &[u64]) {
    let est = col(out, "du").as_primitive::<Int64Type>();
    let bytes = col(out, "du_hll").as_binary::<i32>();
    for (i, &d) in distinct.iter().enumerate() {
        let e = est.value(i) as f64;
        let err = (e - d as f64).abs() / d as f64;
        assert!(err < 0.02, "group {i}: estimate {e} of {d} ({err:.4})");
        let sk = datasketches::hll::HllSketch::deserialize(bytes.value(i)).unwrap();
        assert_eq!(sk.target_type(), datasketches::hll::HllType::Hll4);
        assert_eq!(sk.estimate().round() as i64, est.value(i));
    }
}

/// The t-digest quantiles of each group are within normalized rank error 0.01 of the data.
fn check_tdigest(out: &RecordBatch, batches: &[RecordBatch]) {
    let all = concat(batches);
    let g = col(&all, "g").as_string::<i32>();
    let x = col(&all, "x").as_primitive::<Float64Type>();
    let mut per: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..all.num_rows() {
        per.entry(g.value(i).to_string())
            .or_default()
            .push(x.value(i));
    }
    for (i, (_, vals)) in per.iter_mut().enumerate() {
        vals.sort_by(f64::total_cmp);
        let n = vals.len() as f64;
        for q in [0.5, 0.95, 0.99] {
            let est = col(out, &format!("qx_{}", quantile_suffix(q)))
                .as_primitive::<Float64Type>()
                .value(i);
            // the ranks the estimate could have: [values < est, values <= est] / n
            let lo = vals.partition_point(|&v| v < est) as f64 / n;
            let hi = vals.partition_point(|&v| v <= est) as f64 / n;
            let err = if q < lo {
                lo - q
            } else if q > hi {
                q - hi
            } else {
                0.0
            };
            assert!(
                err <= 0.01,
                "group {i} q {q}: estimate {est}, ranks [{lo}, {hi}]"
            );
        }
        let d = datasketches::tdigest::TDigestMut::deserialize(
            col(out, "qx_tdigest").as_binary::<i32>().value(i),
        )
        .unwrap();
        assert_eq!(d.total_weight(), vals.len() as u64);
    }
}

#[test]
fn hll_and_tdigest_accuracy_single_pass_and_merged() {
    let distinct = [10_000u64, 100_000, 1_000_000];
    let batches = sketch_data(&distinct);
    let schema = hll_schema();
    let opts = sketch_opts();
    let (out, _) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
    let out = concat(&out);
    check_hll(&out, &distinct);
    check_tdigest(&out, &batches);

    // five partial aggregations (round robin over batches), merged
    let mut states = Vec::new();
    for p in 0..5 {
        let part: Vec<_> = batches.iter().skip(p).step_by(5).cloned().collect();
        let (o, _) = aggregate(&opts, &schema, &part, &[], &big_pool()).unwrap();
        states.extend(o);
    }
    let (merged, _) = aggregate(&opts, &schema, &[], &states, &big_pool()).unwrap();
    let merged = concat(&merged);
    check_hll(&merged, &distinct);
    check_tdigest(&merged, &batches);
    assert_eq!(col(&merged, "n"), col(&out, "n"));
}

#[test]
fn empty_groups_get_valid_empty_sketches() {
    let schema = hll_schema();
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(Int64Array::from(vec![None, Some(1)])),
            Arc::new(Float64Array::from(vec![None, Some(f64::NAN)])),
        ],
    )
    .unwrap();
    let (out, _) = aggregate(&sketch_opts(), &schema, &[b], &[], &big_pool()).unwrap();
    let out = concat(&out);
    let est = col(&out, "du").as_primitive::<Int64Type>();
    assert_eq!(est.values().to_vec(), vec![0, 1]);
    let sk =
        datasketches::hll::HllSketch::deserialize(col(&out, "du_hll").as_binary::<i32>().value(0))
            .unwrap();
    assert!(sk.is_empty());
    for i in 0..2 {
        assert!(col(&out, "qx_p50").is_null(i), "NaN and null are ignored");
        let d = datasketches::tdigest::TDigestMut::deserialize(
            col(&out, "qx_tdigest").as_binary::<i32>().value(i),
        )
        .unwrap();
        assert!(d.is_empty());
    }
}

#[test]
fn hll_hashes_like_datasketches_update() {
    // strings by raw bytes, ints as i64, floats canonical: the same registers as a sketch fed
    // through the library's own wrappers
    use datasketches::hash::value::{canonical_float, raw_bytes};
    use datasketches::hll::{HllSketch, HllType};
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, true),
        Field::new("i", DataType::Int32, true),
        Field::new("f", DataType::Float64, true),
    ]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some(""),
                None,
                Some("yy"),
            ])),
            Arc::new(arrow_array::Int32Array::from(vec![
                Some(-1),
                None,
                Some(7),
                Some(7),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(0.0),
                Some(-0.0),
                Some(1.5),
                None,
            ])),
        ],
    )
    .unwrap();
    let opts = AggregateOptions::new(
        vec![],
        vec![
            spec("ds", AggFunc::CountDistinct { lg_k: 12 }, Some("s")),
            spec("di", AggFunc::CountDistinct { lg_k: 12 }, Some("i")),
            spec("df", AggFunc::CountDistinct { lg_k: 12 }, Some("f")),
        ],
    );
    let (out, _) = aggregate(&opts, &schema, &[b], &[], &big_pool()).unwrap();
    let out = concat(&out);
    let bytes = |n: &str| col(&out, n).as_binary::<i32>().value(0).to_vec();
    let mut s = HllSketch::new(12, HllType::Hll8).unwrap();
    s.update(raw_bytes::from_str("x"));
    s.update(raw_bytes::from_str("yy"));
    let mut i = HllSketch::new(12, HllType::Hll8).unwrap();
    i.update(-1i64);
    i.update(7i64);
    let mut f = HllSketch::new(12, HllType::Hll8).unwrap();
    f.update(canonical_float::from_f64(0.0));
    f.update(canonical_float::from_f64(1.5));
    for (name, want, n) in [("ds", s, 2), ("di", i, 2), ("df", f, 2)] {
        let mut u = datasketches::hll::HllUnion::new(12).unwrap();
        u.update(&want);
        assert_eq!(
            bytes(&format!("{name}_hll")),
            u.to_sketch(HllType::Hll4).serialize()
        );
        assert_eq!(col(&out, name).as_primitive::<Int64Type>().value(0), n);
    }
}

// ---------------------------------------------------------------------------------------------
// Merge property, spill, determinism
// ---------------------------------------------------------------------------------------------

fn wide_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("d1", DataType::Utf8, false),
        Field::new("d2", DataType::Int64, true),
        Field::new("v", DataType::Int64, true),
        Field::new("f", DataType::Float64, true),
        Field::new("u", DataType::Utf8, true),
    ]))
}

fn wide_opts(lg_k: u8, k: u16) -> AggregateOptions {
    AggregateOptions::new(
        vec!["d1".into(), "d2".into()],
        vec![
            spec("n", AggFunc::Count, None),
            spec("sv", AggFunc::Sum, Some("v")),
            spec("minv", AggFunc::Min, Some("v")),
            spec("maxv", AggFunc::Max, Some("v")),
            spec("mf", AggFunc::Mean, Some("f")),
            spec("sf", AggFunc::Sum, Some("f")),
            spec("maxu", AggFunc::Max, Some("u")),
            spec("du", AggFunc::CountDistinct { lg_k }, Some("u")),
            spec(
                "qf",
                AggFunc::Quantiles {
                    k,
                    quantiles: vec![0.5, 0.9],
                },
                Some("f"),
            ),
        ],
    )
}

/// `rows` rows over about `groups` groups; float values are small integers (exact sums).
fn wide_data(rows: usize, groups: u64, batch: usize, seed: u64) -> Vec<RecordBatch> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    let mut left = rows;
    while left > 0 {
        let n = left.min(batch);
        left -= n;
        let mut d1 = Vec::with_capacity(n);
        let mut d2 = Vec::with_capacity(n);
        let mut v = Vec::with_capacity(n);
        let mut f = Vec::with_capacity(n);
        let mut u = Vec::with_capacity(n);
        for _ in 0..n {
            let g = rng.next_u64() % groups;
            d1.push(format!("dim-{}", g % 97));
            d2.push((!g.is_multiple_of(13)).then_some((g / 97) as i64));
            let r = rng.next_u64();
            v.push((!r.is_multiple_of(10)).then_some((r % 2001) as i64 - 1000));
            f.push((!r.is_multiple_of(7)).then_some(((r >> 8) % 100) as f64));
            u.push((!r.is_multiple_of(11)).then(|| format!("user{}", (r >> 16) % 500)));
        }
        out.push(
            RecordBatch::try_new(
                wide_schema(),
                vec![
                    Arc::new(StringArray::from(d1)),
                    Arc::new(Int64Array::from(d2)),
                    Arc::new(Int64Array::from(v)),
                    Arc::new(Float64Array::from(f)),
                    Arc::new(StringArray::from(u)),
                ],
            )
            .unwrap(),
        );
    }
    out
}

const EXACT: &[&str] = &[
    "d1", "d2", "n", "sv", "minv", "maxv", "mf", "mf_sum", "mf_count", "sf", "maxu",
];

/// Exact columns equal; sketch estimates close.
fn assert_equivalent(a: &[RecordBatch], b: &[RecordBatch]) {
    let (a, b) = (concat(a), concat(b));
    assert_eq!(a.schema(), b.schema());
    for c in EXACT {
        assert_eq!(col(&a, c), col(&b, c), "column {c}");
    }
    let (ea, eb) = (
        col(&a, "du").as_primitive::<Int64Type>(),
        col(&b, "du").as_primitive::<Int64Type>(),
    );
    for i in 0..a.num_rows() {
        let (x, y) = (ea.value(i) as f64, eb.value(i) as f64);
        assert!(
            (x - y).abs() <= 0.05 * x.max(y) + 1.0,
            "row {i}: {x} vs {y}"
        );
    }
}

#[test]
fn merging_partial_aggregations_equals_one_pass() {
    let schema = wide_schema();
    let opts = wide_opts(10, 50);
    let batches = wide_data(30_000, 2_000, 4_000, 7);
    let (once, _) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
    for parts in [2usize, 3, 8] {
        let mut states = Vec::new();
        for p in 0..parts {
            let part: Vec<_> = batches.iter().skip(p).step_by(parts).cloned().collect();
            let (o, _) = aggregate(&opts, &schema, &part, &[], &big_pool()).unwrap();
            states.extend(o);
        }
        let (merged, _) = aggregate(&opts, &schema, &[], &states, &big_pool()).unwrap();
        assert_equivalent(&once, &merged);
        // merging states twice (states of states) changes nothing exact either
        let (again, _) = aggregate(&opts, &schema, &[], &merged, &big_pool()).unwrap();
        assert_equivalent(&once, &again);
    }
}

#[test]
fn spilling_gives_the_same_output() {
    let schema = wide_schema();
    let mut opts = wide_opts(8, 20);
    opts.batch_rows = 1000;
    let batches = wide_data(12_000, 8_000, 3_000, 11);
    let (mem, mstats) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
    assert_eq!(mstats.spills, 0);
    let pool = MemoryPool::new(192 << 10);
    let (spilled, sstats) = aggregate(&opts, &schema, &batches, &[], &pool).unwrap();
    assert!(sstats.spills > 0 && sstats.spilled_rows > 0, "{sstats:?}");
    assert_eq!(sstats.groups, mstats.groups);
    assert!(pool.peak() <= pool.limit());
    assert!(spilled.iter().all(|b| b.num_rows() <= 1000));
    // exact columns byte-equal batch by batch, sketches within bounds
    assert_eq!(mem.len(), spilled.len());
    for (m, s) in mem.iter().zip(&spilled) {
        for c in EXACT {
            assert_eq!(col(m, c).to_data(), col(s, c).to_data(), "column {c}");
        }
    }
    assert_equivalent(&mem, &spilled);
    // the same pushes under the same (private) budget: byte-identical, sketches included
    let pool2 = MemoryPool::new(192 << 10);
    let (again, _) = aggregate(&opts, &schema, &batches, &[], &pool2).unwrap();
    assert_eq!(spilled, again);
}

#[test]
fn spilling_state_merges_recursively() {
    // a budget so small that partitions of the first level still do not fit
    let schema = wide_schema();
    let mut opts = wide_opts(10, 10);
    opts.spill_partitions = 4;
    let batches = wide_data(10_000, 8_000, 2_000, 5);
    let (mem, _) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
    let pool = MemoryPool::new(160 << 10);
    let (spilled, stats) = aggregate(&opts, &schema, &batches, &[], &pool).unwrap();
    assert!(stats.spills > 2, "{stats:?}");
    assert_equivalent(&mem, &spilled);
    // and push_states spills too
    let pool = MemoryPool::new(160 << 10);
    let (merged, stats) = aggregate(&opts, &schema, &[], &mem, &pool).unwrap();
    assert!(stats.spills > 0);
    assert_equivalent(&mem, &merged);
}

#[test]
fn a_budget_too_small_is_an_error_not_a_panic() {
    let schema = wide_schema();
    let batches = wide_data(1_000, 500, 1_000, 3);
    let pool = MemoryPool::new(100);
    let err = aggregate(&wide_opts(8, 20), &schema, &batches, &[], &pool).unwrap_err();
    assert!(
        matches!(err, EngineError::ResourcesExhausted { .. }),
        "{err}"
    );
    assert_eq!(pool.used(), 0);
}

#[test]
fn output_does_not_depend_on_the_thread_count() {
    let schema = wide_schema();
    let opts = wide_opts(12, 100);
    let batches = wide_data(20_000, 3_000, 5_000, 9);
    let run = |threads: usize, limit: usize| {
        let tp = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        tp.install(|| {
            aggregate(&opts, &schema, &batches, &[], &MemoryPool::new(limit))
                .unwrap()
                .0
        })
    };
    let one = run(1, 1 << 30);
    assert_eq!(one, run(4, 1 << 30));
    let one = run(1, 512 << 10);
    assert_eq!(one, run(4, 512 << 10));
}

// ---------------------------------------------------------------------------------------------
// Errors and types
// ---------------------------------------------------------------------------------------------

#[test]
fn corrupt_sketch_bytes_are_an_error() {
    let schema = wide_schema();
    let opts = wide_opts(10, 50);
    let batches = wide_data(2_000, 10, 2_000, 1);
    let (out, _) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
    let good = concat(&out);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let mut errors = 0;
    for name in ["du_hll", "qf_tdigest"] {
        let idx = good.schema().index_of(name).unwrap();
        let orig = good.column(idx).as_binary::<i32>().value(0).to_vec();
        let mut cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![0xff; 3],
            orig[..orig.len() / 2].to_vec(),
            orig[..8.min(orig.len())].to_vec(),
        ];
        for _ in 0..200 {
            let mut b = orig.clone();
            for _ in 0..(1 + rng.next_u64() % 4) {
                let p = (rng.next_u64() as usize) % b.len();
                b[p] ^= 1 << (rng.next_u64() % 8);
            }
            cases.push(b);
        }
        for bad in cases {
            let mut cols = good.columns().to_vec();
            let mut vals: Vec<&[u8]> = (0..good.num_rows())
                .map(|i| good.column(idx).as_binary::<i32>().value(i))
                .collect();
            vals[0] = &bad;
            cols[idx] = Arc::new(BinaryArray::from(vals));
            let b = RecordBatch::try_new(good.schema(), cols).unwrap();
            // any outcome but a panic; the clearly broken ones must fail
            if aggregate(&opts, &schema, &[], &[b], &big_pool()).is_err() {
                errors += 1;
            }
        }
    }
    assert!(errors >= 8, "{errors}");
}

#[test]
fn corrupt_sketch_header_is_invalid_data() {
    let schema = wide_schema();
    let opts = wide_opts(10, 50);
    let (out, _) = aggregate(&opts, &schema, &wide_data(100, 3, 100, 2), &[], &big_pool()).unwrap();
    let good = concat(&out);
    for name in ["du_hll", "qf_tdigest"] {
        let idx = good.schema().index_of(name).unwrap();
        let mut cols = good.columns().to_vec();
        cols[idx] = Arc::new(BinaryArray::from(vec![&b"garbage"[..]; good.num_rows()]));
        let b = RecordBatch::try_new(good.schema(), cols).unwrap();
        let err = aggregate(&opts, &schema, &[], &[b], &big_pool()).unwrap_err();
        assert!(matches!(err, EngineError::InvalidData(_)), "{err}");
    }
}

#[test]
fn sum_overflow_is_an_error() {
    let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![i64::MAX, 1]))],
    )
    .unwrap();
    let opts = AggregateOptions::new(vec![], vec![spec("s", AggFunc::Sum, Some("v"))]);
    let err = aggregate(&opts, &schema, &[b], &[], &big_pool()).unwrap_err();
    assert!(matches!(err, EngineError::InvalidData(_)), "{err}");
    // through merged states too
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(Int64Array::from(vec![i64::MAX - 1]))],
    )
    .unwrap();
    let (s, _) = aggregate(&opts, &schema, &[b], &[], &big_pool()).unwrap();
    let states = vec![s[0].clone(), s[0].clone()];
    let err = aggregate(&opts, &schema, &[], &states, &big_pool()).unwrap_err();
    assert!(matches!(err, EngineError::InvalidData(_)), "{err}");
}

#[test]
fn plan_errors() {
    let schema = wide_schema();
    let bad = |keys: Vec<&str>, aggs: Vec<AggSpec>| {
        let opts = AggregateOptions::new(keys.into_iter().map(String::from).collect(), aggs);
        match state_schema(&opts, &schema) {
            Err(EngineError::Plan(m)) => m,
            other => panic!("{other:?}"),
        }
    };
    assert!(bad(vec!["nope"], vec![]).contains("nope"));
    assert!(bad(vec![], vec![spec("x", AggFunc::Sum, Some("nope"))]).contains("nope"));
    assert!(bad(vec![], vec![spec("x", AggFunc::Sum, Some("u"))]).contains("Sum"));
    assert!(bad(vec![], vec![spec("x", AggFunc::Mean, Some("u"))]).contains("Mean"));
    assert!(bad(vec![], vec![spec("x", AggFunc::Min, None)]).contains("Count"));
    assert!(bad(
        vec![],
        vec![spec("x", AggFunc::CountDistinct { lg_k: 3 }, Some("u"))]
    )
    .contains("lg_k"));
    assert!(bad(
        vec![],
        vec![spec("x", AggFunc::CountDistinct { lg_k: 22 }, Some("u"))]
    )
    .contains("lg_k"));
    let q = |k, quantiles| AggFunc::Quantiles { k, quantiles };
    assert!(bad(vec![], vec![spec("x", q(9, vec![0.5]), Some("f"))]).contains("k must"));
    assert!(bad(vec![], vec![spec("x", q(100, vec![1.5]), Some("f"))]).contains("quantile"));
    assert!(bad(vec![], vec![spec("x", q(100, vec![0.5]), Some("u"))]).contains("Quantiles"));
    assert!(bad(vec!["d1"], vec![spec("d1", AggFunc::Count, None)]).contains("twice"));
    assert!(bad(
        vec![],
        vec![
            spec("m", AggFunc::Mean, Some("f")),
            spec("m_sum", AggFunc::Count, None)
        ]
    )
    .contains("twice"));
    assert!(bad(vec![], vec![spec("x", q(100, vec![0.5, 0.5]), Some("f"))]).contains("twice"));
}

#[test]
fn state_schema_layout() {
    let s = state_schema(&wide_opts(14, 200), &wide_schema()).unwrap();
    let names: Vec<_> = s.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names,
        [
            "d1",
            "d2",
            "n",
            "sv",
            "minv",
            "maxv",
            "mf",
            "mf_sum",
            "mf_count",
            "sf",
            "maxu",
            "du",
            "du_hll",
            "qf_p50",
            "qf_p90",
            "qf_tdigest"
        ]
    );
    let t = |n: &str| s.field_with_name(n).unwrap().data_type().clone();
    assert_eq!(t("n"), DataType::Int64);
    assert!(!s.field_with_name("n").unwrap().is_nullable());
    assert!(!s.field_with_name("d1").unwrap().is_nullable());
    assert!(s.field_with_name("d2").unwrap().is_nullable());
    assert_eq!(t("sf"), DataType::Float64);
    assert_eq!(t("maxu"), DataType::Utf8);
    assert_eq!(t("du_hll"), DataType::Binary);
    assert_eq!(t("qf_tdigest"), DataType::Binary);
}

#[test]
fn min_max_keep_the_input_type() {
    let tz: Arc<str> = "+02:00".into();
    let ts_type = DataType::Timestamp(TimeUnit::Millisecond, Some(tz.clone()));
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", DataType::Boolean, true),
        Field::new("ts", ts_type.clone(), true),
        Field::new("b", DataType::Boolean, true),
        Field::new("d", DataType::Date32, true),
    ]));
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(true), None])),
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(5), Some(-3), Some(9), None])
                    .with_timezone(tz),
            ),
            Arc::new(BooleanArray::from(vec![
                Some(false),
                Some(true),
                Some(true),
                None,
            ])),
            Arc::new(Date32Array::from(vec![Some(10), None, Some(3), Some(7)])),
        ],
    )
    .unwrap();
    let opts = AggregateOptions::new(
        vec!["k".into()],
        vec![
            spec("mints", AggFunc::Min, Some("ts")),
            spec("maxts", AggFunc::Max, Some("ts")),
            spec("minb", AggFunc::Min, Some("b")),
            spec("maxb", AggFunc::Max, Some("b")),
            spec("mind", AggFunc::Min, Some("d")),
            spec(
                "qd",
                AggFunc::Quantiles {
                    k: 50,
                    quantiles: vec![0.0, 1.0],
                },
                Some("d"),
            ),
            spec("dts", AggFunc::CountDistinct { lg_k: 10 }, Some("ts")),
        ],
    );
    let (out, _) = aggregate(&opts, &schema, &[b], &[], &big_pool()).unwrap();
    let out = concat(&out);
    assert_eq!(col(&out, "mints").data_type(), &ts_type);
    // group order: null key first, then true
    let ts = col(&out, "mints").as_primitive::<arrow_array::types::TimestampMillisecondType>();
    assert_eq!((ts.value(0), ts.value(1)), (-3, 5));
    let ts = col(&out, "maxts").as_primitive::<arrow_array::types::TimestampMillisecondType>();
    assert_eq!((ts.value(0), ts.value(1)), (-3, 9));
    let minb = col(&out, "minb").as_boolean();
    let maxb = col(&out, "maxb").as_boolean();
    assert_eq!(
        (minb.value(0), minb.value(1), maxb.value(1)),
        (true, false, true)
    );
    let d = col(&out, "mind").as_primitive::<arrow_array::types::Date32Type>();
    assert_eq!((d.value(0), d.value(1)), (7, 3));
    let q0 = col(&out, "qd_p0").as_primitive::<Float64Type>();
    let q1 = col(&out, "qd_p100").as_primitive::<Float64Type>();
    assert_eq!((q0.value(1), q1.value(1)), (3.0, 10.0));
    assert_eq!(col(&out, "dts").as_primitive::<Int64Type>().value(1), 2);
}

#[test]
fn global_aggregate_without_keys() {
    let schema = wide_schema();
    let batches = wide_data(5_000, 50, 1_000, 4);
    let opts = AggregateOptions::new(
        vec![],
        vec![
            spec("n", AggFunc::Count, None),
            spec("sv", AggFunc::Sum, Some("v")),
        ],
    );
    let (out, stats) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
    assert_eq!(stats.groups, 1);
    let out = concat(&out);
    assert_eq!(col(&out, "n").as_primitive::<Int64Type>().value(0), 5_000);
    let want: i64 = batches
        .iter()
        .flat_map(|b| {
            col(b, "v")
                .as_primitive::<Int64Type>()
                .iter()
                .flatten()
                .collect::<Vec<_>>()
        })
        .sum();
    assert_eq!(col(&out, "sv").as_primitive::<Int64Type>().value(0), want);
}

#[test]
fn wrong_batches_are_plan_errors() {
    let schema = wide_schema();
    let e = env();
    let pool = big_pool();
    let mut agg =
        HashAggregate::try_new(wide_opts(10, 50), schema.clone(), e.spill.clone(), &pool).unwrap();
    let other = Arc::new(Schema::new(vec![Field::new("d1", DataType::Int64, false)]));
    let b = RecordBatch::try_new(other, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    assert!(matches!(agg.push(&b), Err(EngineError::Plan(_))));
    assert!(matches!(agg.push_states(&b), Err(EngineError::Plan(_))));
}

/// Output batches are cut by bytes, not only by rows: 2,000 groups, the first 1,000 with short
/// keys and the rest with 32 KiB keys (32 MiB of state), come out in batches within
/// `batch_bytes`, each full up to the row that would not fit, in memory and spilled, and both
/// cut them at the same rows. Fails when a batch is `batch_rows` rows whatever their size (one
/// batch of 32 MiB here), or when its rows are guessed from the batch before (the short rows
/// would make the next batch hold 32 MiB).
#[test]
fn output_batches_are_bounded_by_bytes_in_memory_and_spilled() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let key = |i: usize| {
        format!(
            "{i:06}{}",
            "x".repeat(if i < 1_000 { 10 } else { 32 << 10 })
        )
    };
    let batches: Vec<RecordBatch> = (0..20)
        .map(|b| {
            let ids = (0..100).map(|r| (r * 20 + b) % 2_000);
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from_iter_values(ids.clone().map(key))),
                    Arc::new(Int64Array::from_iter_values(ids.map(|i| i as i64))),
                ],
            )
            .unwrap()
        })
        .collect();
    let mut opts = AggregateOptions::new(
        vec!["s".into()],
        vec![
            spec("n", AggFunc::Count, None),
            spec("sv", AggFunc::Sum, Some("v")),
        ],
    );
    opts.batch_bytes = 4 << 20;
    // what the cut counts: string bytes and an offset, fixed widths
    let bytes_of = |b: &RecordBatch| -> usize {
        b.columns()
            .iter()
            .map(|c| match c.data_type() {
                DataType::Utf8 => {
                    let s = c.as_string::<i32>();
                    (0..s.len()).map(|i| s.value(i).len() + 4).sum()
                }
                t => t.primitive_width().unwrap() * c.len(),
            })
            .sum()
    };
    let (memory, mstats) = aggregate(&opts, &schema, &batches, &[], &big_pool()).unwrap();
    let (spilled, sstats) =
        aggregate(&opts, &schema, &batches, &[], &MemoryPool::new(24 << 20)).unwrap();
    assert_eq!(mstats.spills, 0);
    assert!(sstats.spills > 0, "the small pool spills");
    for out in [&memory, &spilled] {
        assert_eq!(out.iter().map(|b| b.num_rows()).sum::<usize>(), 2_000);
        assert!(out.len() >= 8, "{} batches", out.len());
        for (i, b) in out.iter().enumerate() {
            let bytes = bytes_of(b);
            assert!(
                bytes <= opts.batch_bytes,
                "a batch of {} rows: {bytes} bytes",
                b.num_rows()
            );
            // full: the next row would not have fitted
            if let Some(next) = out.get(i + 1) {
                let first = bytes_of(&next.slice(0, 1));
                assert!(bytes + first > opts.batch_bytes, "batch {i}: {bytes} bytes");
            }
        }
    }
    let rows = |o: &[RecordBatch]| o.iter().map(|b| b.num_rows()).collect::<Vec<_>>();
    assert_eq!(rows(&memory), rows(&spilled));
    assert_eq!(concat(&memory), concat(&spilled));
}
