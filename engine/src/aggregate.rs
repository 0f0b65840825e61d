//! Hash aggregation into mergeable states: group by key columns, any number of rows through a
//! fixed memory budget.
//!
//! # Why
//! Rollups are aggregated more than once: raw rows into a file's states, files' states into a
//! day's, days' into a month's. So what an aggregation stores is not only a readable answer but
//! a *state* that merges: counts and sums add, minima and maxima combine, a mean keeps its sum
//! and count, distinct counts keep a HyperLogLog sketch and quantiles a t-digest, both in the
//! DataSketches binary formats so that Java and C++ readers can merge them too. One operator
//! does both: [`HashAggregate::push`] takes raw rows, [`HashAggregate::push_states`] takes
//! state rows (the output of another aggregation, read back from a rollup), and both can be
//! mixed. The output is state rows, sorted by the keys.
//!
//! # Algorithm
//! 1. Per pushed batch: hash the key columns ([`crate::kernels::hash_rows`], in parallel) and
//!    encode them once with an [`arrow_row::RowConverter`] (one memcmp-ordered byte string per
//!    row). Group ids are found in a [`hashbrown::HashTable<u32>`], comparing the hash and then
//!    the encoded bytes against one growing arena (`Vec<u8>` + offsets) that holds each group's
//!    key once: no allocation per row. A new group takes the next id.
//! 2. Accumulators are columnar (one `Vec` per aggregate, indexed by group id); each is updated
//!    in a tight loop over `(group id, value)`, with a fast path for columns without nulls. The
//!    aggregates of a batch are updated in parallel (one rayon task each); HLL coupons (the
//!    murmur3 hash of each value) are computed in parallel before the serial register updates.
//!    Sketches are created per group on its first value.
//! 3. Memory: capacity for groups is reserved from the [`MemoryPool`] *before* a group is
//!    inserted (the arena, the table and every accumulator's per-group slot, doubling); the
//!    variable part (strings kept by min/max, sketches, measured by their `estimated_size`) is
//!    accounted after each chunk of at most [`CHUNK_ROWS`] rows. When the pool refuses, the
//!    table *spills*: every group is written as a state row into one of `spill_partitions`
//!    spill files, chosen by a fixed-seed hash of its encoded key; the table is cleared, its
//!    reservation freed, and the input goes on. The same group can so appear in several spills
//!    of the same partition, never in two partitions.
//! 4. `finish`: without a spill, the group ids are sorted by encoded key
//!    ([`crate::kernels::sort_row_indices`]) and streamed from memory. After a spill the rest is
//!    spilled too; each partition is then aggregated alone (`push_states` of its file into a
//!    fresh table), and written as a run sorted by key. A partition that still does not fit is
//!    re-partitioned with another seed, recursively (at most [`MAX_SPILL_DEPTH`] levels, then
//!    [`EngineError::ResourcesExhausted`]). A k-way merge of the sorted runs by encoded key (runs
//!    hold disjoint keys) streams the globally sorted output; when the budget cannot hold a
//!    cursor per run, runs are first merged a budget's worth at a time.
//!
//! ```text
//!  push ──hash_rows + RowConverter──▶ HashTable<u32> ─ group ids ─▶ accumulators (Vec per agg)
//!  push_states ─┘                        │ key arena: Vec<u8> + offsets
//!                                        │
//!                  pool refuses ─────────┴─▶ spill: state rows ─xxh3(key, seed)─▶ P files
//!                                                                    │
//!  finish ─ nothing spilled: sort ids by key ─▶ stream               │
//!         └ spilled: per partition ─ push_states ─ fits? ── yes ─▶ sort ─▶ sorted run ─┐
//!                                                  └── no ─▶ re-partition (seed + 1) ──┘
//!                                   stream ◀─ k-way merge by encoded key ◀─ sorted runs
//! ```
//!
//! # State layout
//! A state row is the group keys (in `opts.keys` order, input types and nullability; a null
//! key is a group of its own), then per aggregate, in `opts.aggs` order:
//!
//! | function | columns | type | meaning |
//! |---|---|---|---|
//! | `Count` | `<name>` | Int64, non-null | rows (no column) or non-null values |
//! | `Sum` | `<name>` | Int64 (integer input, overflow is an error) or Float64 | null: no value |
//! | `Min`, `Max` | `<name>` | the input type | null: no value; NaN is ignored |
//! | `Mean` | `<name>`, `<name>_sum`, `<name>_count` | Float64, Float64, Int64 non-null | mean null when count is 0 |
//! | `CountDistinct` | `<name>`, `<name>_hll` | Int64 non-null, Binary non-null | rounded estimate; DataSketches HLL sketch (Hll4) |
//! | `Quantiles` | `<name>_p<q>`…, `<name>_tdigest` | Float64, Binary non-null | estimates (null: no value); DataSketches t-digest |
//!
//! `<q>` is the quantile times 100 with its decimal point as `_` ([`quantile_suffix`]:
//! 0.5 → `p50`, 0.999 → `p99_9`). The readable columns (estimate, quantiles, mean) of pushed
//! states are ignored and recomputed from the mergeable ones at output.
//!
//! Sketch inputs are hashed as DataSketches Java's `update()` does, so sketches built here and
//! there merge: strings and binaries by their raw bytes (empty ones are skipped, as Java does),
//! integers, timestamps, dates and booleans (0/1) as a 64-bit integer, floats through the
//! canonical double (one NaN, one zero). The t-digest ignores NaN and infinities.
//!
//! # Determinism
//! The same pushes in the same order, under the same budget, give byte-identical batches,
//! whatever the rayon thread count: groups are found serially in input order, the parallel
//! steps (hashing, coupons, one task per aggregate, the sort) compute the same thing on any
//! number of threads, spill partitions come from a fixed-seed hash, and partitions and runs are
//! processed in a fixed order. Counts, integer sums, minima and maxima are exact and do not
//! depend on where the input was cut either: a spilled run gives the same values as an unspilled
//! one. Three things do depend on the cuts (spill points, or how a caller split the input into
//! partial aggregations): float sums and means (partial sums added, so the last bits can
//! differ), and the bytes of the sketches: an HLL union of partials has the same registers but
//! an out-of-order estimator (the composite estimate instead of HIP), and a merged t-digest has
//! other centroids than one fed the values in one pass. Both stay within their error bounds.
//! With a pool shared by other operators, spill points depend on them, so only exact columns
//! are reproducible then.
//!
//! # Memory
//! Everything the table holds is reserved first (see step 3); sketch growth within one chunk is
//! reserved right after the chunk, so the budget can be passed by at most one chunk's sketch
//! growth. Not reserved, like the sort's scratch: one chunk's hashes and encoded keys, the
//! sort's 16-byte keys, and the output batches handed to the caller. Those are cut by bytes as
//! well as rows: rows are added while their values stay within [`DEFAULT_BATCH_BYTES`] (a
//! state row can hold a 1 MiB sketch; a bigger row alone makes a batch of one). The cut
//! depends on the rows' values alone, so an in-memory and a merged output of the same values
//! (exact aggregates; sketches differ once an aggregation spilled, see above) have the same
//! batches. An in-memory output emits its rows in pieces sized from the widest row so far and
//! carries what a cut leaves over to the next batch; a merge holds one batch per cursor. Merge cursors reserve twice their largest batch. Everything returns to
//! the pool when the stream is dropped.
//!
//! An error (a sum overflow, corrupt sketch bytes) leaves the aggregation unusable: drop it.

use std::cmp::Ordering;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use arrow_array::builder::BinaryBuilder;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{
    new_null_array, Array, ArrayRef, BinaryArray, Float64Array, Int64Array, RecordBatch,
};
use arrow_buffer::NullBuffer;
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datasketches::hash::value::{canonical_float, raw_bytes};
use datasketches::hll::{Coupon, HllSketch, HllType, HllUnion};
use datasketches::tdigest::TDigestMut;
use hashbrown::HashTable;
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::kernels::{self, RowSet};
use crate::memory::MemoryReservation;
use crate::spill::{SpillFile, SpillWriter};
use crate::{EngineError, MemoryPool, Result, SpillManager};

/// Default HyperLogLog precision (`lg_k`): 2^14 registers, about 0.8% standard error.
pub const DEFAULT_HLL_LG_K: u8 = 14;
/// Default t-digest compression (`k`).
pub const DEFAULT_TDIGEST_K: u16 = 200;
/// Default quantiles written next to a t-digest.
pub const DEFAULT_QUANTILES: &[f64] = &[0.5, 0.95, 0.99];
/// Default number of hash partitions groups spill into.
pub const DEFAULT_SPILL_PARTITIONS: usize = 16;
/// Default rows per output batch (at most; see [`DEFAULT_BATCH_BYTES`]).
pub const DEFAULT_BATCH_ROWS: usize = 64 * 1024;
/// Default bound on the bytes of an output batch's values. A state row holds its sketches, from
/// a few bytes to 1 MiB (an HLL at `lg_k` 21), so a batch takes rows while their bytes stay
/// within this (and `batch_rows`); a row bigger than this alone makes a batch of one.
pub const DEFAULT_BATCH_BYTES: usize = 8 << 20;
/// Rows processed between two memory checks (bounds the unreserved sketch growth).
pub const CHUNK_ROWS: usize = 8192;
/// Most levels of re-partitioning of a partition that does not fit.
pub const MAX_SPILL_DEPTH: u32 = 4;
/// Rows per batch of the spill files and sorted runs (small, so that merge cursors are cheap).
pub const SPILL_BATCH_ROWS: usize = 1024;

/// An aggregate function.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AggFunc {
    /// Rows (no column) or non-null values of the column.
    Count,
    /// Sum of non-null values (Int64 for integer input, overflow is an error; Float64 else).
    Sum,
    /// Smallest non-null value (numeric, timestamp or string input).
    Min,
    /// Largest non-null value.
    Max,
    /// Mean of non-null numeric values (stored as sum and count).
    Mean,
    /// Distinct non-null values: a DataSketches HLL sketch of precision `lg_k`.
    CountDistinct {
        /// log2 of the register count (4..=21).
        lg_k: u8,
    },
    /// Quantiles of non-null, non-NaN numeric values: a DataSketches t-digest.
    Quantiles {
        /// t-digest compression.
        k: u16,
        /// The quantiles written as readable columns (each in [0, 1]).
        quantiles: Vec<f64>,
    },
}

/// One output aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    /// Output column name (the readable one; state columns get suffixes).
    pub name: String,
    /// What to compute.
    pub func: AggFunc,
    /// Input column (`None` only for `Count`: rows).
    pub column: Option<String>,
}

/// What to aggregate.
#[derive(Debug, Clone)]
pub struct AggregateOptions {
    /// Group-by columns, in output (and sort) order.
    pub keys: Vec<String>,
    /// Aggregates, in output order.
    pub aggs: Vec<AggSpec>,
    /// Hash partitions groups spill into when the budget is full.
    pub spill_partitions: usize,
    /// Rows per output batch, at most.
    pub batch_rows: usize,
    /// Bound on the bytes of an output batch's values (see [`DEFAULT_BATCH_BYTES`]).
    pub batch_bytes: usize,
}

impl AggregateOptions {
    /// Options with the defaults.
    pub fn new(keys: Vec<String>, aggs: Vec<AggSpec>) -> Self {
        Self {
            keys,
            aggs,
            spill_partitions: DEFAULT_SPILL_PARTITIONS,
            batch_rows: DEFAULT_BATCH_ROWS,
            batch_bytes: DEFAULT_BATCH_BYTES,
        }
    }
}

/// The column-name suffix of quantile `q` (without the `_`): `q * 100` with as few decimals as
/// it needs and `.` written `_`. 0.5 → `p50`, 0.95 → `p95`, 0.999 → `p99_9`, 1 → `p100`.
pub fn quantile_suffix(q: f64) -> String {
    let s = format!("{:.9}", q * 100.0);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("p{}", s.replace('.', "_"))
}

// ---------------------------------------------------------------------------------------------
// Plan
// ---------------------------------------------------------------------------------------------

/// How an input column's values are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Cast to Int64: integers, booleans, timestamps, dates.
    Int,
    /// Cast to Float64.
    Float,
    /// Cast to Binary: strings and binaries.
    Bytes,
}

/// The kind of `dt`, and whether it is a plain number (summable).
fn kind_of(dt: &DataType) -> Option<(Kind, bool)> {
    use DataType::*;
    Some(match dt {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => (Kind::Int, true),
        Boolean | Timestamp(_, _) | Date32 | Date64 => (Kind::Int, false),
        Float32 | Float64 => (Kind::Float, true),
        Utf8 | LargeUtf8 | Binary | LargeBinary => (Kind::Bytes, false),
        _ => return None,
    })
}

#[derive(Debug)]
struct AggPlan {
    func: AggFunc,
    /// The input column (`None`: count rows).
    column: Option<String>,
    /// The input column's type.
    input_type: Option<DataType>,
    kind: Option<Kind>,
    /// The state columns of this aggregate: `first..first + width`.
    first: usize,
    width: usize,
}

struct Plan {
    keys: Vec<String>,
    aggs: Vec<AggPlan>,
    schema: SchemaRef,
    converter: RowConverter,
    batch_rows: usize,
    batch_bytes: usize,
    partitions: usize,
}

fn plan_err(msg: impl Into<String>) -> EngineError {
    EngineError::Plan(msg.into())
}

fn build_plan(opts: &AggregateOptions, input: &Schema) -> Result<Plan> {
    let mut fields: Vec<Field> = Vec::new();
    let mut sort_fields = Vec::new();
    for k in &opts.keys {
        let f = input
            .field_with_name(k)
            .map_err(|_| plan_err(format!("group-by column {k:?} is not in the input")))?;
        fields.push(f.clone());
        sort_fields.push(SortField::new(f.data_type().clone()));
    }
    let converter = RowConverter::new(sort_fields).map_err(|e| {
        plan_err(format!(
            "group-by columns {:?} cannot be encoded: {e}",
            opts.keys
        ))
    })?;
    let mut aggs = Vec::new();
    for spec in &opts.aggs {
        let name = &spec.name;
        let input_field = match &spec.column {
            Some(c) => Some(input.field_with_name(c).map_err(|_| {
                plan_err(format!(
                    "aggregate {name:?}: column {c:?} is not in the input"
                ))
            })?),
            None => None,
        };
        let input_type = input_field.map(|f| f.data_type().clone());
        let kind = input_type.as_ref().and_then(kind_of);
        let unsupported = |what: &str| {
            plan_err(format!(
                "aggregate {name:?}: {what} of a {} column is not supported",
                input_type
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            ))
        };
        if input_type.is_none() && spec.func != AggFunc::Count {
            return Err(plan_err(format!(
                "aggregate {name:?}: only Count can go without an input column"
            )));
        }
        let first = fields.len();
        match &spec.func {
            AggFunc::Count => fields.push(Field::new(name, DataType::Int64, false)),
            AggFunc::Sum => match kind {
                Some((Kind::Int, true)) => fields.push(Field::new(name, DataType::Int64, true)),
                Some((Kind::Float, _)) => fields.push(Field::new(name, DataType::Float64, true)),
                _ => return Err(unsupported("Sum")),
            },
            AggFunc::Min | AggFunc::Max => {
                if kind.is_none() {
                    return Err(unsupported("Min/Max"));
                }
                fields.push(Field::new(name, input_type.clone().unwrap(), true));
            }
            AggFunc::Mean => {
                if !matches!(kind, Some((_, true))) {
                    return Err(unsupported("Mean"));
                }
                fields.push(Field::new(name, DataType::Float64, true));
                fields.push(Field::new(format!("{name}_sum"), DataType::Float64, true));
                fields.push(Field::new(format!("{name}_count"), DataType::Int64, false));
            }
            AggFunc::CountDistinct { lg_k } => {
                if !(4..=21).contains(lg_k) {
                    return Err(plan_err(format!(
                        "aggregate {name:?}: lg_k must be in 4..=21, got {lg_k}"
                    )));
                }
                if kind.is_none() {
                    return Err(unsupported("CountDistinct"));
                }
                fields.push(Field::new(name, DataType::Int64, false));
                fields.push(Field::new(format!("{name}_hll"), DataType::Binary, false));
            }
            AggFunc::Quantiles { k, quantiles } => {
                if *k < 10 {
                    return Err(plan_err(format!(
                        "aggregate {name:?}: t-digest k must be at least 10, got {k}"
                    )));
                }
                if !matches!(kind, Some((Kind::Int | Kind::Float, _)))
                    || input_type == Some(DataType::Boolean)
                {
                    return Err(unsupported("Quantiles"));
                }
                for &q in quantiles {
                    if !(0.0..=1.0).contains(&q) {
                        return Err(plan_err(format!(
                            "aggregate {name:?}: quantile {q} is outside [0, 1]"
                        )));
                    }
                    fields.push(Field::new(
                        format!("{name}_{}", quantile_suffix(q)),
                        DataType::Float64,
                        true,
                    ));
                }
                fields.push(Field::new(
                    format!("{name}_tdigest"),
                    DataType::Binary,
                    false,
                ));
            }
        }
        aggs.push(AggPlan {
            func: spec.func.clone(),
            column: spec.column.clone(),
            input_type,
            kind: kind.map(|k| k.0),
            first,
            width: fields.len() - first,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for f in &fields {
        if !seen.insert(f.name().as_str()) {
            return Err(plan_err(format!(
                "output column {:?} appears twice (a key and an aggregate, or two aggregates)",
                f.name()
            )));
        }
    }
    Ok(Plan {
        keys: opts.keys.clone(),
        aggs,
        schema: Arc::new(Schema::new(fields)),
        converter,
        batch_rows: opts.batch_rows,
        batch_bytes: opts.batch_bytes,
        partitions: opts.spill_partitions,
    })
}

/// The schema of state rows for `opts` over `input`: the keys, then each aggregate's columns
/// (see the module documentation for the layout).
///
/// # Errors
///
/// [`EngineError::Plan`]: an unknown column, a type the function does not support (Sum of
/// strings, say), a function other than `Count` without a column, `lg_k` outside 4..=21, a
/// t-digest `k` below 10, a quantile outside [0, 1], or two output columns of the same name.
pub fn state_schema(opts: &AggregateOptions, input: &Schema) -> Result<SchemaRef> {
    Ok(build_plan(opts, input)?.schema)
}

// ---------------------------------------------------------------------------------------------
// Accumulators
// ---------------------------------------------------------------------------------------------

/// An aggregate's values for one batch, read for the accumulator.
enum Input {
    /// Count: the validity of the column (`None`: every row counts).
    Valid(Option<NullBuffer>),
    Int(Int64Array),
    Float(Float64Array),
    Bytes(BinaryArray),
    /// Mean states: sums and counts.
    Mean(Float64Array, Int64Array),
}

fn cast_kind(col: &ArrayRef, kind: Kind) -> Result<Input> {
    Ok(match kind {
        Kind::Int => Input::Int(
            arrow_cast::cast(col, &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .clone(),
        ),
        Kind::Float => Input::Float(
            arrow_cast::cast(col, &DataType::Float64)?
                .as_primitive::<Float64Type>()
                .clone(),
        ),
        Kind::Bytes => Input::Bytes(
            arrow_cast::cast(col, &DataType::Binary)?
                .as_binary::<i32>()
                .clone(),
        ),
    })
}

fn invalid(msg: impl Into<String>) -> EngineError {
    EngineError::InvalidData(msg.into())
}

/// Calls `f(row, group)` for each valid row of `ids` (rows `offset..offset + ids.len()`).
#[inline(always)]
fn each_valid(
    nulls: Option<&NullBuffer>,
    offset: usize,
    ids: &[u32],
    mut f: impl FnMut(usize, usize),
) {
    match nulls.filter(|n| n.null_count() > 0) {
        None => {
            for (j, &g) in ids.iter().enumerate() {
                f(offset + j, g as usize);
            }
        }
        Some(n) => {
            for (j, &g) in ids.iter().enumerate() {
                if n.is_valid(offset + j) {
                    f(offset + j, g as usize);
                }
            }
        }
    }
}

/// Same as [`each_valid`], for a fallible `f`.
#[inline(always)]
fn try_each_valid(
    nulls: Option<&NullBuffer>,
    offset: usize,
    ids: &[u32],
    mut f: impl FnMut(usize, usize) -> Result<()>,
) -> Result<()> {
    match nulls.filter(|n| n.null_count() > 0) {
        None => {
            for (j, &g) in ids.iter().enumerate() {
                f(offset + j, g as usize)?;
            }
        }
        Some(n) => {
            for (j, &g) in ids.iter().enumerate() {
                if n.is_valid(offset + j) {
                    f(offset + j, g as usize)?;
                }
            }
        }
    }
    Ok(())
}

fn wrong_input() -> EngineError {
    EngineError::Plan("internal: aggregate input of the wrong kind".into())
}

/// Columnar per-group state of one aggregate.
trait Accumulator: Send + Sync {
    /// Bytes each group's slot takes (reserved with the group).
    fn slot_bytes(&self) -> usize;
    /// Bytes held beyond the slots (strings, sketches).
    fn var_bytes(&self) -> usize;
    /// Makes room for `cap` groups.
    fn reserve(&mut self, cap: usize);
    /// Extends to `n` groups (new ones empty).
    fn resize(&mut self, n: usize);
    /// Adds raw values of rows `offset..offset + ids.len()`.
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()>;
    /// Merges states of rows `offset..offset + ids.len()`.
    fn merge(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()>;
    /// The state columns of `ids`; `readable`: compute the estimate columns (else placeholders,
    /// for spill files).
    fn emit(&mut self, ids: &[u32], readable: bool) -> Result<Vec<ArrayRef>>;
}

struct CountAcc {
    n: Vec<i64>,
}

impl Accumulator for CountAcc {
    fn slot_bytes(&self) -> usize {
        8
    }
    fn var_bytes(&self) -> usize {
        0
    }
    fn reserve(&mut self, cap: usize) {
        self.n.reserve_exact(cap.saturating_sub(self.n.len()));
    }
    fn resize(&mut self, n: usize) {
        self.n.resize(n, 0);
    }
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Valid(nulls) = input else {
            return Err(wrong_input());
        };
        let n = &mut self.n;
        each_valid(nulls.as_ref(), offset, ids, |_, g| n[g] += 1);
        Ok(())
    }
    fn merge(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Int(a) = input else {
            return Err(wrong_input());
        };
        let (v, n) = (a.values(), &mut self.n);
        try_each_valid(a.nulls(), offset, ids, |i, g| {
            n[g] = n[g]
                .checked_add(v[i])
                .ok_or_else(|| invalid("count overflows Int64"))?;
            Ok(())
        })
    }
    fn emit(&mut self, ids: &[u32], _: bool) -> Result<Vec<ArrayRef>> {
        let a = Int64Array::from_iter_values(ids.iter().map(|&g| self.n[g as usize]));
        Ok(vec![Arc::new(a)])
    }
}

/// One optional value per group: the storage of sums, minima and maxima.
struct Slots<T> {
    v: Vec<T>,
    seen: Vec<bool>,
}

impl<T: Copy + Default> Slots<T> {
    fn new() -> Self {
        Slots {
            v: Vec::new(),
            seen: Vec::new(),
        }
    }
    fn reserve(&mut self, cap: usize) {
        self.v.reserve_exact(cap.saturating_sub(self.v.len()));
        self.seen.reserve_exact(cap.saturating_sub(self.seen.len()));
    }
    fn resize(&mut self, n: usize) {
        self.v.resize(n, T::default());
        self.seen.resize(n, false);
    }
    /// The groups' values, `None` where a group saw none.
    fn values<'a>(&'a self, ids: &'a [u32]) -> impl Iterator<Item = Option<T>> + 'a {
        ids.iter()
            .map(|&g| self.seen[g as usize].then_some(self.v[g as usize]))
    }
}

/// The storage methods of an accumulator whose per-group state is one [`Slots`] of 8-byte
/// values in the field `s` (9 bytes a group, with its flag), and whose states merge as raw
/// values do (a sum of sums, a minimum of minima).
macro_rules! slots_storage {
    () => {
        fn slot_bytes(&self) -> usize {
            9
        }
        fn var_bytes(&self) -> usize {
            0
        }
        fn reserve(&mut self, cap: usize) {
            self.s.reserve(cap);
        }
        fn resize(&mut self, n: usize) {
            self.s.resize(n);
        }
        fn merge(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
            self.update(input, offset, ids)
        }
    };
}

struct SumIntAcc {
    s: Slots<i64>,
}

impl Accumulator for SumIntAcc {
    slots_storage!();
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Int(a) = input else {
            return Err(wrong_input());
        };
        let (vals, v, seen) = (a.values(), &mut self.s.v, &mut self.s.seen);
        try_each_valid(a.nulls(), offset, ids, |i, g| {
            v[g] = v[g]
                .checked_add(vals[i])
                .ok_or_else(|| invalid("integer sum overflows Int64"))?;
            seen[g] = true;
            Ok(())
        })
    }
    fn emit(&mut self, ids: &[u32], _: bool) -> Result<Vec<ArrayRef>> {
        let a: Int64Array = self.s.values(ids).collect();
        Ok(vec![Arc::new(a)])
    }
}

struct SumFloatAcc {
    s: Slots<f64>,
}

impl Accumulator for SumFloatAcc {
    slots_storage!();
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Float(a) = input else {
            return Err(wrong_input());
        };
        let (vals, v, seen) = (a.values(), &mut self.s.v, &mut self.s.seen);
        each_valid(a.nulls(), offset, ids, |i, g| {
            v[g] += vals[i];
            seen[g] = true;
        });
        Ok(())
    }
    fn emit(&mut self, ids: &[u32], _: bool) -> Result<Vec<ArrayRef>> {
        let a: Float64Array = self.s.values(ids).collect();
        Ok(vec![Arc::new(a)])
    }
}

/// Min or max of integer-like values, kept as i64 and cast back to `out` at emit.
struct MinMaxIntAcc {
    s: Slots<i64>,
    max: bool,
    out: DataType,
}

impl Accumulator for MinMaxIntAcc {
    slots_storage!();
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Int(a) = input else {
            return Err(wrong_input());
        };
        let (vals, v, seen) = (a.values(), &mut self.s.v, &mut self.s.seen);
        if self.max {
            each_valid(a.nulls(), offset, ids, |i, g| {
                let x = vals[i];
                if !seen[g] || x > v[g] {
                    v[g] = x;
                    seen[g] = true;
                }
            });
        } else {
            each_valid(a.nulls(), offset, ids, |i, g| {
                let x = vals[i];
                if !seen[g] || x < v[g] {
                    v[g] = x;
                    seen[g] = true;
                }
            });
        }
        Ok(())
    }
    fn emit(&mut self, ids: &[u32], _: bool) -> Result<Vec<ArrayRef>> {
        let a: Int64Array = self.s.values(ids).collect();
        Ok(vec![arrow_cast::cast(&a, &self.out)?])
    }
}

/// Min or max of floats in `total_cmp` order (so -0 < +0), NaN ignored.
struct MinMaxFloatAcc {
    s: Slots<f64>,
    max: bool,
    out: DataType,
}

impl Accumulator for MinMaxFloatAcc {
    slots_storage!();
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Float(a) = input else {
            return Err(wrong_input());
        };
        let want = if self.max {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        let (vals, v, seen) = (a.values(), &mut self.s.v, &mut self.s.seen);
        each_valid(a.nulls(), offset, ids, |i, g| {
            let x = vals[i];
            if !x.is_nan() && (!seen[g] || x.total_cmp(&v[g]) == want) {
                v[g] = x;
                seen[g] = true;
            }
        });
        Ok(())
    }
    fn emit(&mut self, ids: &[u32], _: bool) -> Result<Vec<ArrayRef>> {
        let a: Float64Array = self.s.values(ids).collect();
        Ok(vec![arrow_cast::cast(&a, &self.out)?])
    }
}

/// Min or max of strings or binaries, by bytes (UTF-8 byte order is code point order).
struct MinMaxBytesAcc {
    v: Vec<Option<Box<[u8]>>>,
    max: bool,
    out: DataType,
    bytes: usize,
}

impl Accumulator for MinMaxBytesAcc {
    fn slot_bytes(&self) -> usize {
        size_of::<Option<Box<[u8]>>>()
    }
    fn var_bytes(&self) -> usize {
        self.bytes
    }
    fn reserve(&mut self, cap: usize) {
        self.v.reserve_exact(cap.saturating_sub(self.v.len()));
    }
    fn resize(&mut self, n: usize) {
        self.v.resize(n, None);
    }
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Bytes(a) = input else {
            return Err(wrong_input());
        };
        let want = if self.max {
            Ordering::Greater
        } else {
            Ordering::Less
        };
        let (v, bytes) = (&mut self.v, &mut self.bytes);
        each_valid(a.nulls(), offset, ids, |i, g| {
            let x = a.value(i);
            let replace = match &v[g] {
                None => true,
                Some(cur) => x.cmp(cur) == want,
            };
            if replace {
                *bytes -= v[g].as_ref().map_or(0, |c| c.len());
                *bytes += x.len();
                v[g] = Some(x.into());
            }
        });
        Ok(())
    }
    fn merge(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        self.update(input, offset, ids)
    }
    fn emit(&mut self, ids: &[u32], _: bool) -> Result<Vec<ArrayRef>> {
        let a: BinaryArray = ids.iter().map(|&g| self.v[g as usize].as_deref()).collect();
        Ok(vec![arrow_cast::cast(&a, &self.out)?])
    }
}

struct MeanAcc {
    sum: Vec<f64>,
    n: Vec<i64>,
}

impl Accumulator for MeanAcc {
    fn slot_bytes(&self) -> usize {
        16
    }
    fn var_bytes(&self) -> usize {
        0
    }
    fn reserve(&mut self, cap: usize) {
        self.sum.reserve_exact(cap.saturating_sub(self.sum.len()));
        self.n.reserve_exact(cap.saturating_sub(self.n.len()));
    }
    fn resize(&mut self, n: usize) {
        self.sum.resize(n, 0.0);
        self.n.resize(n, 0);
    }
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let (sum, n) = (&mut self.sum, &mut self.n);
        match input {
            Input::Float(a) => {
                let vals = a.values();
                each_valid(a.nulls(), offset, ids, |i, g| {
                    sum[g] += vals[i];
                    n[g] += 1;
                });
            }
            Input::Int(a) => {
                let vals = a.values();
                each_valid(a.nulls(), offset, ids, |i, g| {
                    sum[g] += vals[i] as f64;
                    n[g] += 1;
                });
            }
            _ => return Err(wrong_input()),
        }
        Ok(())
    }
    fn merge(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Mean(s, c) = input else {
            return Err(wrong_input());
        };
        let (sum, n) = (&mut self.sum, &mut self.n);
        let (sv, cv) = (s.values(), c.values());
        try_each_valid(c.nulls(), offset, ids, |i, g| {
            if s.is_valid(i) {
                sum[g] += sv[i];
            }
            n[g] = n[g]
                .checked_add(cv[i])
                .ok_or_else(|| invalid("mean count overflows Int64"))?;
            Ok(())
        })
    }
    fn emit(&mut self, ids: &[u32], readable: bool) -> Result<Vec<ArrayRef>> {
        let mean: ArrayRef = if readable {
            Arc::new(
                ids.iter()
                    .map(|&g| {
                        let g = g as usize;
                        (self.n[g] > 0).then(|| self.sum[g] / self.n[g] as f64)
                    })
                    .collect::<Float64Array>(),
            )
        } else {
            new_null_array(&DataType::Float64, ids.len())
        };
        let sum: Float64Array = ids
            .iter()
            .map(|&g| (self.n[g as usize] > 0).then_some(self.sum[g as usize]))
            .collect();
        let n = Int64Array::from_iter_values(ids.iter().map(|&g| self.n[g as usize]));
        Ok(vec![mean, Arc::new(sum), Arc::new(n)])
    }
}

/// Per-group byte sizes of lazily grown sketches, refreshed for the groups a chunk touched.
#[derive(Default)]
struct SketchSizes {
    sizes: Vec<u32>,
    total: usize,
    touched: Vec<u32>,
}

const TOUCHED: u32 = 1 << 31;

impl SketchSizes {
    fn reserve(&mut self, cap: usize) {
        self.sizes
            .reserve_exact(cap.saturating_sub(self.sizes.len()));
    }
    fn resize(&mut self, n: usize) {
        self.sizes.resize(n, 0);
    }
    /// Marks `g` as touched by this chunk.
    #[inline(always)]
    fn touch(&mut self, g: usize) {
        if self.sizes[g] & TOUCHED == 0 {
            self.sizes[g] |= TOUCHED;
            self.touched.push(g as u32);
        }
    }
    /// Re-measures the touched groups.
    fn refresh(&mut self, size: impl Fn(usize) -> usize) {
        for &g in &self.touched {
            let g = g as usize;
            let new = size(g).min((TOUCHED - 1) as usize);
            self.total = self.total - (self.sizes[g] & !TOUCHED) as usize + new;
            self.sizes[g] = new as u32;
        }
        self.touched.clear();
    }
}

/// Deserializes sketch bytes, turning errors and panics into [`EngineError::InvalidData`].
fn decode<T>(
    what: &str,
    bytes: &[u8],
    f: impl FnOnce(&[u8]) -> std::result::Result<T, datasketches::error::Error>,
) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(|| f(bytes))) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(invalid(format!("corrupt {what} sketch: {e}"))),
        Err(_) => Err(invalid(format!("corrupt {what} sketch (rejected)"))),
    }
}

struct HllAcc {
    lg_k: u8,
    s: Vec<Option<HllSketch>>,
    sizes: SketchSizes,
    coupons: Vec<Option<Coupon>>,
    empty: Vec<u8>,
}

impl HllAcc {
    fn new(lg_k: u8) -> Result<Self> {
        let empty = HllSketch::new(lg_k, HllType::Hll4)
            .map_err(|e| plan_err(format!("HLL sketch: {e}")))?
            .serialize();
        Ok(HllAcc {
            lg_k,
            s: Vec::new(),
            sizes: SketchSizes::default(),
            coupons: Vec::new(),
            empty,
        })
    }

    fn new_sketch(&self) -> HllSketch {
        HllSketch::new(self.lg_k, HllType::Hll8).expect("lg_k validated by the plan")
    }

    fn union(&self) -> HllUnion {
        HllUnion::new(self.lg_k).expect("lg_k validated by the plan")
    }
}

impl Accumulator for HllAcc {
    fn slot_bytes(&self) -> usize {
        size_of::<Option<HllSketch>>() + 4
    }
    fn var_bytes(&self) -> usize {
        self.sizes.total
    }
    fn reserve(&mut self, cap: usize) {
        self.s.reserve_exact(cap.saturating_sub(self.s.len()));
        self.sizes.reserve(cap);
    }
    fn resize(&mut self, n: usize) {
        self.s.resize_with(n, || None);
        self.sizes.resize(n);
    }
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let n = ids.len();
        let range = offset..offset + n;
        // The hashes, in parallel (they are the cost); None for nulls and empty strings.
        let mut coupons = std::mem::take(&mut self.coupons);
        match input {
            Input::Int(a) => range
                .into_par_iter()
                .with_min_len(2048)
                .map(|i| a.is_valid(i).then(|| Coupon::from_value(a.value(i))))
                .collect_into_vec(&mut coupons),
            Input::Float(a) => range
                .into_par_iter()
                .with_min_len(2048)
                .map(|i| {
                    a.is_valid(i)
                        .then(|| Coupon::from_value(canonical_float::from_f64(a.value(i))))
                })
                .collect_into_vec(&mut coupons),
            Input::Bytes(a) => range
                .into_par_iter()
                .with_min_len(2048)
                .map(|i| {
                    let v = a.value(i);
                    (a.is_valid(i) && !v.is_empty())
                        .then(|| Coupon::from_value(raw_bytes::from_slice(v)))
                })
                .collect_into_vec(&mut coupons),
            _ => return Err(wrong_input()),
        }
        for (&g, c) in ids.iter().zip(&coupons) {
            if let Some(c) = *c {
                let g = g as usize;
                if self.s[g].is_none() {
                    self.s[g] = Some(self.new_sketch());
                }
                self.s[g].as_mut().unwrap().update_with_coupon(c);
                self.sizes.touch(g);
            }
        }
        self.coupons = coupons;
        let s = &self.s;
        self.sizes
            .refresh(|g| s[g].as_ref().map_or(0, |s| s.estimated_size()));
        Ok(())
    }
    fn merge(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Bytes(a) = input else {
            return Err(wrong_input());
        };
        for (j, &g) in ids.iter().enumerate() {
            let i = offset + j;
            if a.is_null(i) {
                continue;
            }
            let inc = decode("HLL", a.value(i), HllSketch::deserialize)?;
            if inc.is_empty() {
                continue;
            }
            let g = g as usize;
            let mut u = self.union();
            if let Some(cur) = &self.s[g] {
                u.update(cur);
            }
            u.update(&inc);
            self.s[g] = Some(u.to_sketch(HllType::Hll8));
            self.sizes.touch(g);
        }
        let s = &self.s;
        self.sizes
            .refresh(|g| s[g].as_ref().map_or(0, |s| s.estimated_size()));
        Ok(())
    }
    fn emit(&mut self, ids: &[u32], readable: bool) -> Result<Vec<ArrayRef>> {
        let out: Vec<(i64, Vec<u8>)> = ids
            .par_iter()
            .with_min_len(64)
            .map(|&g| match &self.s[g as usize] {
                None => (0, self.empty.clone()),
                Some(s) if !readable => (0, s.serialize()),
                Some(s) => {
                    let mut u = self.union();
                    u.update(s);
                    let h = u.to_sketch(HllType::Hll4);
                    (h.estimate().round() as i64, h.serialize())
                }
            })
            .collect();
        let est = Int64Array::from_iter_values(out.iter().map(|o| o.0));
        let mut b =
            BinaryBuilder::with_capacity(out.len(), out.iter().map(|o| o.1.len()).sum::<usize>());
        for (_, bytes) in &out {
            b.append_value(bytes);
        }
        Ok(vec![Arc::new(est), Arc::new(b.finish())])
    }
}

struct TDigestAcc {
    k: u16,
    quantiles: Vec<f64>,
    d: Vec<Option<TDigestMut>>,
    sizes: SketchSizes,
    empty: Vec<u8>,
}

impl TDigestAcc {
    fn new(k: u16, quantiles: Vec<f64>) -> Result<Self> {
        let empty = TDigestMut::new(k)
            .map_err(|e| plan_err(format!("t-digest: {e}")))?
            .serialize();
        Ok(TDigestAcc {
            k,
            quantiles,
            d: Vec::new(),
            sizes: SketchSizes::default(),
            empty,
        })
    }

    fn new_digest(&self) -> TDigestMut {
        TDigestMut::new(self.k).expect("k validated by the plan")
    }

    fn refresh(&mut self) {
        let d = &self.d;
        self.sizes
            .refresh(|g| d[g].as_ref().map_or(0, |d| d.estimated_size()));
    }
}

impl Accumulator for TDigestAcc {
    fn slot_bytes(&self) -> usize {
        size_of::<Option<TDigestMut>>() + 4
    }
    fn var_bytes(&self) -> usize {
        self.sizes.total
    }
    fn reserve(&mut self, cap: usize) {
        self.d.reserve_exact(cap.saturating_sub(self.d.len()));
        self.sizes.reserve(cap);
    }
    fn resize(&mut self, n: usize) {
        self.d.resize_with(n, || None);
        self.sizes.resize(n);
    }
    fn update(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let mut add = |g: usize, x: f64| {
            if x.is_finite() {
                if self.d[g].is_none() {
                    self.d[g] = Some(self.new_digest());
                }
                self.d[g].as_mut().unwrap().update(x);
                self.sizes.touch(g);
            }
        };
        match input {
            Input::Float(a) => {
                let v = a.values();
                each_valid(a.nulls(), offset, ids, |i, g| add(g, v[i]));
            }
            Input::Int(a) => {
                let v = a.values();
                each_valid(a.nulls(), offset, ids, |i, g| add(g, v[i] as f64));
            }
            _ => return Err(wrong_input()),
        }
        self.refresh();
        Ok(())
    }
    fn merge(&mut self, input: &Input, offset: usize, ids: &[u32]) -> Result<()> {
        let Input::Bytes(a) = input else {
            return Err(wrong_input());
        };
        for (j, &g) in ids.iter().enumerate() {
            let i = offset + j;
            if a.is_null(i) {
                continue;
            }
            let inc = decode("t-digest", a.value(i), TDigestMut::deserialize)?;
            if inc.is_empty() {
                continue;
            }
            let g = g as usize;
            match &mut self.d[g] {
                None if inc.k() == self.k => self.d[g] = Some(inc),
                slot => {
                    let cur = slot.get_or_insert_with(|| TDigestMut::new(self.k).unwrap());
                    if cur.total_weight().checked_add(inc.total_weight()).is_none() {
                        return Err(invalid("t-digest total weight overflows u64"));
                    }
                    catch_unwind(AssertUnwindSafe(|| cur.merge(&inc)))
                        .map_err(|_| invalid("corrupt t-digest sketch (merge rejected)"))?;
                }
            }
            self.sizes.touch(g);
        }
        self.refresh();
        Ok(())
    }
    fn emit(&mut self, ids: &[u32], readable: bool) -> Result<Vec<ArrayRef>> {
        let nq = self.quantiles.len();
        let mut qs: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(ids.len()); nq];
        let mut b = BinaryBuilder::with_capacity(ids.len(), ids.len() * 64);
        for &g in ids {
            match &mut self.d[g as usize] {
                None => {
                    qs.iter_mut().for_each(|q| q.push(None));
                    b.append_value(&self.empty);
                }
                Some(d) => {
                    if readable && nq > 0 {
                        let v = d
                            .quantiles(&self.quantiles)
                            .map_err(|e| invalid(format!("t-digest quantiles: {e}")))?;
                        for (j, q) in qs.iter_mut().enumerate() {
                            q.push(v.as_ref().map(|v| v[j]));
                        }
                    } else {
                        qs.iter_mut().for_each(|q| q.push(None));
                    }
                    b.append_value(d.serialize());
                }
            }
        }
        let mut cols: Vec<ArrayRef> = qs
            .into_iter()
            .map(|q| Arc::new(Float64Array::from(q)) as ArrayRef)
            .collect();
        cols.push(Arc::new(b.finish()));
        Ok(cols)
    }
}

fn new_acc(p: &AggPlan) -> Result<Box<dyn Accumulator>> {
    let out = p.input_type.clone().unwrap_or(DataType::Int64);
    Ok(match (&p.func, p.kind) {
        (AggFunc::Count, _) => Box::new(CountAcc { n: Vec::new() }),
        (AggFunc::Sum, Some(Kind::Int)) => Box::new(SumIntAcc { s: Slots::new() }),
        (AggFunc::Sum, _) => Box::new(SumFloatAcc { s: Slots::new() }),
        (AggFunc::Min | AggFunc::Max, kind) => {
            let max = p.func == AggFunc::Max;
            match kind {
                Some(Kind::Int) => Box::new(MinMaxIntAcc {
                    s: Slots::new(),
                    max,
                    out,
                }),
                Some(Kind::Float) => Box::new(MinMaxFloatAcc {
                    s: Slots::new(),
                    max,
                    out,
                }),
                _ => Box::new(MinMaxBytesAcc {
                    v: Vec::new(),
                    max,
                    out,
                    bytes: 0,
                }),
            }
        }
        (AggFunc::Mean, _) => Box::new(MeanAcc {
            sum: Vec::new(),
            n: Vec::new(),
        }),
        (AggFunc::CountDistinct { lg_k }, _) => Box::new(HllAcc::new(*lg_k)?),
        (AggFunc::Quantiles { k, quantiles }, _) => {
            Box::new(TDigestAcc::new(*k, quantiles.clone())?)
        }
    })
}

impl AggPlan {
    /// This aggregate's input from a raw batch.
    fn raw_input(&self, batch: &RecordBatch) -> Result<Input> {
        let col = match &self.column {
            None => return Ok(Input::Valid(None)),
            Some(c) => batch.column_by_name(c).ok_or_else(|| {
                plan_err(format!("column {c:?} is missing from the pushed batch"))
            })?,
        };
        if Some(col.data_type()) != self.input_type.as_ref() {
            return Err(plan_err(format!(
                "column {:?} is {} in the pushed batch, {} in the input schema",
                self.column.as_deref().unwrap_or_default(),
                col.data_type(),
                self.input_type.as_ref().unwrap()
            )));
        }
        match (&self.func, self.kind) {
            (AggFunc::Count, _) => Ok(Input::Valid(col.logical_nulls())),
            (_, Some(kind)) => cast_kind(col, kind),
            _ => Err(wrong_input()),
        }
    }

    /// This aggregate's input from a state batch (columns in the state schema).
    fn state_input(&self, cols: &[ArrayRef]) -> Result<Input> {
        let c = &cols[self.first..self.first + self.width];
        match (&self.func, self.kind) {
            (AggFunc::Count, _) => cast_kind(&c[0], Kind::Int),
            (AggFunc::Sum, Some(Kind::Int)) => cast_kind(&c[0], Kind::Int),
            (AggFunc::Sum, _) => cast_kind(&c[0], Kind::Float),
            (AggFunc::Min | AggFunc::Max, Some(kind)) => cast_kind(&c[0], kind),
            (AggFunc::Mean, _) => Ok(Input::Mean(
                c[1].as_primitive::<Float64Type>().clone(),
                c[2].as_primitive::<Int64Type>().clone(),
            )),
            (AggFunc::CountDistinct { .. }, _) | (AggFunc::Quantiles { .. }, _) => {
                cast_kind(&c[self.width - 1], Kind::Bytes)
            }
            _ => Err(wrong_input()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// Group keys: the encoded bytes of group `g` are `data[offsets[g]..offsets[g + 1]]`.
struct Groups {
    map: HashTable<u32>,
    hashes: Vec<u64>,
    offsets: Vec<usize>,
    data: Vec<u8>,
}

impl Groups {
    fn new() -> Self {
        Groups {
            map: HashTable::new(),
            hashes: Vec::new(),
            offsets: vec![0],
            data: Vec::new(),
        }
    }
    fn len(&self) -> usize {
        self.hashes.len()
    }
    #[inline(always)]
    fn key(&self, g: usize) -> &[u8] {
        &self.data[self.offsets[g]..self.offsets[g + 1]]
    }
}

impl RowSet for Groups {
    fn num_rows(&self) -> usize {
        self.len()
    }
    #[inline(always)]
    fn bytes(&self, i: usize) -> &[u8] {
        self.key(i)
    }
}

/// Bytes a hash table of `cap` entries allocates (hashbrown: buckets a power of two at 7/8
/// load, one control byte per bucket).
fn table_bytes(cap: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let buckets = if cap < 8 {
        if cap < 4 {
            4
        } else {
            8
        }
    } else {
        (cap * 8 / 7).next_power_of_two()
    };
    buckets * (size_of::<u32>() + 1) + 16
}

/// The encoded keys of one pushed batch.
enum KeyRows {
    /// No group-by columns: every row is the one group.
    None,
    Rows(Rows),
}

impl KeyRows {
    #[inline(always)]
    fn key(&self, i: usize) -> &[u8] {
        match self {
            KeyRows::None => &[],
            KeyRows::Rows(r) => r.row(i).data(),
        }
    }
}

/// What a chunk feeds the accumulators.
enum Feed<'a> {
    Raw(&'a [Input]),
    States(&'a [Input]),
}

/// The hash table and the accumulators, with the memory they hold.
struct Core {
    plan: Arc<Plan>,
    groups: Groups,
    accs: Vec<Box<dyn Accumulator>>,
    /// Groups and key bytes reserved for.
    cap_groups: usize,
    cap_key_bytes: usize,
    slot_bytes: usize,
    res: MemoryReservation,
}

impl Core {
    fn new(plan: &Arc<Plan>, pool: &Arc<MemoryPool>) -> Result<Self> {
        let accs = plan.aggs.iter().map(new_acc).collect::<Result<Vec<_>>>()?;
        let slot_bytes = 8 + 8 + accs.iter().map(|a| a.slot_bytes()).sum::<usize>();
        Ok(Core {
            plan: Arc::clone(plan),
            groups: Groups::new(),
            accs,
            cap_groups: 0,
            cap_key_bytes: 0,
            slot_bytes,
            res: pool.reservation("hash aggregate"),
        })
    }

    fn is_empty(&self) -> bool {
        self.groups.len() == 0
    }

    fn fixed_bytes(&self, groups: usize, key_bytes: usize) -> usize {
        groups * self.slot_bytes + key_bytes + table_bytes(groups)
    }

    fn held_bytes(&self) -> usize {
        self.fixed_bytes(self.cap_groups, self.cap_key_bytes)
            + self.accs.iter().map(|a| a.var_bytes()).sum::<usize>()
    }

    /// Reserves room for `groups` groups of `key_bytes` key bytes in all (doubling), then makes
    /// the room.
    fn grow(&mut self, groups: usize, key_bytes: usize) -> Result<()> {
        let new_groups = if groups > self.cap_groups {
            groups.max(self.cap_groups * 2).max(64)
        } else {
            self.cap_groups
        };
        let new_key_bytes = if key_bytes > self.cap_key_bytes {
            key_bytes.max(self.cap_key_bytes * 2).max(1024)
        } else {
            self.cap_key_bytes
        };
        let var = self.accs.iter().map(|a| a.var_bytes()).sum::<usize>();
        self.res
            .try_resize(self.fixed_bytes(new_groups, new_key_bytes) + var)?;
        let g = &mut self.groups;
        let n = g.len();
        g.hashes.reserve_exact(new_groups - n);
        g.offsets.reserve_exact(new_groups + 1 - g.offsets.len());
        g.data.reserve_exact(new_key_bytes - g.data.len());
        let hashes = &g.hashes;
        g.map.reserve(new_groups - n, |&i| hashes[i as usize]);
        for a in &mut self.accs {
            a.reserve(new_groups);
        }
        self.cap_groups = new_groups;
        self.cap_key_bytes = new_key_bytes;
        Ok(())
    }

    /// Finds or inserts the groups of rows `start..end` into `ids`; stops at the first row
    /// whose new group the budget refuses, returning that row and the refusal.
    fn assign(
        &mut self,
        keys: &KeyRows,
        hashes: &[u64],
        start: usize,
        end: usize,
        ids: &mut Vec<u32>,
    ) -> (usize, Option<EngineError>) {
        for i in start..end {
            let h = hashes[i];
            let k = keys.key(i);
            let g = &self.groups;
            let found = g.map.find(h, |&c| {
                let c = c as usize;
                g.hashes[c] == h && g.key(c) == k
            });
            if let Some(&id) = found {
                ids.push(id);
                continue;
            }
            let n = g.len();
            let bytes = g.data.len() + k.len();
            if n + 1 > self.cap_groups || bytes > self.cap_key_bytes {
                if let Err(e) = self.grow(n + 1, bytes) {
                    return (i, Some(e));
                }
            }
            let g = &mut self.groups;
            g.hashes.push(h);
            g.data.extend_from_slice(k);
            g.offsets.push(g.data.len());
            let hashes = &g.hashes;
            g.map.insert_unique(h, n as u32, |&c| hashes[c as usize]);
            ids.push(n as u32);
        }
        (end, None)
    }

    /// Feeds rows `offset..offset + ids.len()` to every accumulator, one rayon task each.
    fn feed(&mut self, feed: &Feed<'_>, offset: usize, ids: &[u32]) -> Result<()> {
        let n = self.groups.len();
        let results: Vec<Result<()>> = match feed {
            Feed::Raw(inputs) => self
                .accs
                .par_iter_mut()
                .zip(inputs.par_iter())
                .map(|(a, inp)| {
                    a.resize(n);
                    a.update(inp, offset, ids)
                })
                .collect(),
            Feed::States(inputs) => self
                .accs
                .par_iter_mut()
                .zip(inputs.par_iter())
                .map(|(a, inp)| {
                    a.resize(n);
                    a.merge(inp, offset, ids)
                })
                .collect(),
        };
        results.into_iter().collect()
    }

    /// State rows of `ids`.
    fn emit(&mut self, ids: &[u32], readable: bool) -> Result<RecordBatch> {
        let mut cols: Vec<ArrayRef> = if self.plan.keys.is_empty() {
            Vec::new()
        } else {
            let parser = self.plan.converter.parser();
            let g = &self.groups;
            self.plan
                .converter
                .convert_rows(ids.iter().map(|&i| parser.parse(g.key(i as usize))))?
        };
        let per_agg: Vec<Result<Vec<ArrayRef>>> = self
            .accs
            .par_iter_mut()
            .map(|a| a.emit(ids, readable))
            .collect();
        for c in per_agg {
            cols.extend(c?);
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.plan.schema), cols)?)
    }

    /// The group ids sorted by key.
    fn sorted_ids(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.groups.len() as u32).collect();
        kernels::sort_row_indices(&self.groups, &mut order);
        order
    }

    /// Drops every group and gives the memory back.
    fn clear(&mut self) -> Result<()> {
        self.groups = Groups::new();
        self.accs = self
            .plan
            .aggs
            .iter()
            .map(new_acc)
            .collect::<Result<Vec<_>>>()?;
        self.cap_groups = 0;
        self.cap_key_bytes = 0;
        self.res.free();
        Ok(())
    }
}

/// Spill files of one level of partitioning, one per partition, created on first use.
struct Partitioner {
    writers: Vec<Option<SpillWriter>>,
    seed: u64,
}

impl Partitioner {
    fn new(partitions: usize, level: u32) -> Self {
        Partitioner {
            writers: (0..partitions.max(1)).map(|_| None).collect(),
            seed: 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(u64::from(level) + 1),
        }
    }

    fn finish(self) -> Result<Vec<SpillFile>> {
        self.writers
            .into_iter()
            .flatten()
            .map(SpillWriter::finish)
            .collect()
    }
}

/// A table at one level of partitioning, with the partitions it spilled into.
struct Level {
    core: Core,
    part: Option<Partitioner>,
    level: u32,
    spill: Arc<SpillManager>,
    stats: AggregateStats,
    hashes: Vec<u64>,
    ids: Vec<u32>,
}

impl Level {
    fn new(
        plan: &Arc<Plan>,
        level: u32,
        spill: &Arc<SpillManager>,
        pool: &Arc<MemoryPool>,
    ) -> Result<Self> {
        Ok(Level {
            core: Core::new(plan, pool)?,
            part: None,
            level,
            spill: Arc::clone(spill),
            stats: AggregateStats::default(),
            hashes: Vec::new(),
            ids: Vec::new(),
        })
    }

    fn plan(&self) -> &Arc<Plan> {
        &self.core.plan
    }

    /// Groups rows of `key_cols` and feeds them, spilling whenever the budget is full.
    fn consume(&mut self, key_cols: &[ArrayRef], n: usize, feed: Feed<'_>) -> Result<()> {
        let keys = if key_cols.is_empty() {
            self.hashes.clear();
            self.hashes.resize(n, 0);
            KeyRows::None
        } else {
            kernels::hash_rows(key_cols, &mut self.hashes)?;
            KeyRows::Rows(self.core.plan.converter.convert_columns(key_cols)?)
        };
        let hashes = std::mem::take(&mut self.hashes);
        let mut ids = std::mem::take(&mut self.ids);
        let mut start = 0;
        let result = (|| {
            while start < n {
                let end = (start + CHUNK_ROWS).min(n);
                ids.clear();
                let (stop, refused) = self.core.assign(&keys, &hashes, start, end, &mut ids);
                if stop > start {
                    self.core.feed(&feed, start, &ids)?;
                }
                let held = self.core.held_bytes();
                let over = self.core.res.try_resize(held).err();
                if let Some(e) = refused.or(over) {
                    if self.core.is_empty() {
                        return Err(e);
                    }
                    self.spill()?;
                }
                start = stop;
            }
            Ok(())
        })();
        self.hashes = hashes;
        self.ids = ids;
        result
    }

    fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let plan = Arc::clone(self.plan());
        let key_cols = plan
            .keys
            .iter()
            .map(|k| {
                batch.column_by_name(k).cloned().ok_or_else(|| {
                    plan_err(format!("group-by column {k:?} is missing from the batch"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        for (c, f) in key_cols.iter().zip(plan.schema.fields()) {
            if c.data_type() != f.data_type() {
                return Err(plan_err(format!(
                    "group-by column {:?} is {} in the batch, {} in the input schema",
                    f.name(),
                    c.data_type(),
                    f.data_type()
                )));
            }
        }
        let inputs = plan
            .aggs
            .iter()
            .map(|a| a.raw_input(batch))
            .collect::<Result<Vec<_>>>()?;
        self.stats.rows_in += batch.num_rows() as u64;
        self.consume(&key_cols, batch.num_rows(), Feed::Raw(&inputs))
    }

    fn push_states(&mut self, batch: &RecordBatch) -> Result<()> {
        let plan = Arc::clone(self.plan());
        let want = plan.schema.fields();
        let got = batch.schema();
        if got.fields().len() != want.len()
            || got
                .fields()
                .iter()
                .zip(want)
                .any(|(g, w)| g.name() != w.name() || g.data_type() != w.data_type())
        {
            return Err(plan_err(format!(
                "push_states: the batch is not in the state schema (want {want:?}, got {:?})",
                got.fields()
            )));
        }
        let cols = batch.columns();
        let inputs = plan
            .aggs
            .iter()
            .map(|a| a.state_input(cols))
            .collect::<Result<Vec<_>>>()?;
        self.stats.states_in += batch.num_rows() as u64;
        self.consume(
            &cols[..plan.keys.len()],
            batch.num_rows(),
            Feed::States(&inputs),
        )
    }

    /// Writes every group into its partition's spill file and empties the table.
    fn spill(&mut self) -> Result<()> {
        if self.core.is_empty() {
            return Ok(());
        }
        let plan = Arc::clone(self.plan());
        let part = self
            .part
            .get_or_insert_with(|| Partitioner::new(plan.partitions, self.level));
        let p = part.writers.len();
        let mut lists: Vec<Vec<u32>> = vec![Vec::new(); p];
        for g in 0..self.core.groups.len() {
            let h = xxh3_64_with_seed(self.core.groups.key(g), part.seed);
            lists[(h % p as u64) as usize].push(g as u32);
        }
        for (w, ids) in part.writers.iter_mut().zip(&lists) {
            for chunk in ids.chunks(SPILL_BATCH_ROWS) {
                let batch = self.core.emit(chunk, false)?;
                if w.is_none() {
                    *w = Some(self.spill.create(&plan.schema)?);
                }
                w.as_mut().unwrap().write(&batch)?;
            }
        }
        self.stats.spills += 1;
        self.stats.spilled_rows += self.core.groups.len() as u64;
        self.core.clear()
    }

    /// The table and its sorted ids (nothing spilled), or the partition files, with the
    /// counters of this level.
    fn finish(mut self) -> Result<(Finished, AggregateStats)> {
        if self.part.is_none() {
            // The sort's index: reserve it, or spill after all.
            let n = self.core.groups.len();
            if self.core.res.try_grow(n * size_of::<u32>()).is_ok() {
                let order = self.core.sorted_ids();
                return Ok((Finished::Memory(self.core, order), self.stats));
            }
        }
        self.spill()?;
        let files = self
            .part
            .take()
            .map_or(Ok(Vec::new()), Partitioner::finish)?;
        Ok((Finished::Spilled(files), self.stats))
    }
}

enum Finished {
    /// Nothing spilled: the table and its group ids sorted by key.
    Memory(Core, Vec<u32>),
    /// The partition files.
    Spilled(Vec<SpillFile>),
}

/// Shared context of the partition passes.
struct Ctx<'a> {
    plan: &'a Arc<Plan>,
    spill: &'a Arc<SpillManager>,
    pool: &'a Arc<MemoryPool>,
    /// Target in-memory bytes of one batch of a sorted run (what a merge cursor holds).
    run_batch_bytes: usize,
}

/// A sorted run and the rows of its batches.
type Run = (SpillFile, usize);

/// Writes `order` of `core` as a sorted run in batches of about `ctx.run_batch_bytes`.
fn write_run(ctx: &Ctx<'_>, core: &mut Core, order: &[u32]) -> Result<Run> {
    let mut w = ctx.spill.create(&ctx.plan.schema)?;
    // A first small batch measures the row size; the rest are sized from it.
    let mut rows = 64;
    let mut pos = 0;
    let mut measured = false;
    while pos < order.len() {
        let end = (pos + rows).min(order.len());
        let b = core.emit(&order[pos..end], true)?;
        if !measured {
            let per_row = b.get_array_memory_size() / b.num_rows() + 1;
            rows = (ctx.run_batch_bytes / per_row).clamp(16, SPILL_BATCH_ROWS);
            measured = true;
        }
        w.write(&b)?;
        pos = end;
    }
    Ok((w.finish()?, rows))
}

/// Aggregates one partition file alone into sorted runs (re-partitioning it if it does not fit).
fn process_partition(
    ctx: &Ctx<'_>,
    file: SpillFile,
    level: u32,
    runs: &mut Vec<Run>,
    stats: &mut AggregateStats,
) -> Result<()> {
    let mut lvl = Level::new(ctx.plan, level, ctx.spill, ctx.pool)?;
    for batch in file.reader()? {
        lvl.push_states(&batch?)?;
    }
    drop(file);
    let (fin, lstats) = lvl.finish()?;
    stats.spills += lstats.spills;
    stats.spilled_rows += lstats.spilled_rows;
    match fin {
        Finished::Memory(mut core, order) => {
            if !order.is_empty() {
                runs.push(write_run(ctx, &mut core, &order)?);
            }
            stats.groups += order.len() as u64;
        }
        Finished::Spilled(files) => {
            if level >= MAX_SPILL_DEPTH {
                return Err(EngineError::ResourcesExhausted {
                    consumer: format!(
                        "hash aggregate (a spill partition still does not fit after {level} re-partitionings)"
                    ),
                    requested: 0,
                    used: ctx.pool.used(),
                    limit: ctx.pool.limit(),
                });
            }
            for f in files {
                process_partition(ctx, f, level + 1, runs, stats)?;
            }
        }
    }
    Ok(())
}

/// Memory a merge cursor over `run` holds: a batch and its encoded keys.
fn cursor_bytes(run: &SpillFile) -> usize {
    run.max_batch_bytes() * 2 + 1024
}

/// Merges runs (a budget's worth at a time while they do not all fit) into one merge.
fn merge_runs(ctx: &Ctx<'_>, mut runs: Vec<Run>, out: BatchSize) -> Result<Merge> {
    loop {
        let mut res = ctx.pool.reservation("hash aggregate merge");
        let mut fan = 0;
        let mut refused = None;
        for (r, _) in &runs {
            if let Err(e) = res.try_grow(cursor_bytes(r)) {
                refused = Some(e);
                break;
            }
            fan += 1;
        }
        let Some(e) = refused else {
            return Merge::new(ctx.plan, runs, res, out);
        };
        if fan < 2 {
            return Err(e);
        }
        let rest = runs.split_off(fan);
        let rows = runs.iter().map(|r| r.1).min().unwrap_or(SPILL_BATCH_ROWS);
        let merge = Merge::new(ctx.plan, runs, res, BatchSize::rows(rows))?;
        let mut w = ctx.spill.create(&ctx.plan.schema)?;
        for b in merge {
            w.write(&b?)?;
        }
        runs = rest;
        runs.push((w.finish()?, rows));
    }
}

struct Cursor {
    reader: crate::spill::SpillReader,
    _file: SpillFile,
    rows: Option<Rows>,
    /// [`RowBytes`] of each row of the current batch.
    sizes: Vec<usize>,
    len: usize,
    pos: usize,
    /// Index of the current batch in [`Merge::batches`].
    slot: usize,
}

/// k-way merge of sorted runs with disjoint keys, by encoded key.
struct Merge {
    plan: Arc<Plan>,
    cursors: Vec<Cursor>,
    batches: Vec<RecordBatch>,
    size: BatchSize,
    _res: MemoryReservation,
}

impl Merge {
    fn new(
        plan: &Arc<Plan>,
        runs: Vec<Run>,
        res: MemoryReservation,
        size: BatchSize,
    ) -> Result<Self> {
        let mut m = Merge {
            plan: Arc::clone(plan),
            cursors: Vec::with_capacity(runs.len()),
            batches: Vec::new(),
            size,
            _res: res,
        };
        for (f, _) in runs {
            let reader = f.reader()?;
            m.cursors.push(Cursor {
                reader,
                _file: f,
                rows: None,
                sizes: Vec::new(),
                len: 0,
                pos: 0,
                slot: 0,
            });
            let c = m.cursors.len() - 1;
            m.advance(c)?;
        }
        Ok(m)
    }

    /// Loads cursor `c`'s next non-empty batch (or marks it done).
    fn advance(&mut self, c: usize) -> Result<()> {
        let cur = &mut self.cursors[c];
        cur.rows = None;
        for b in cur.reader.by_ref() {
            let b = b?;
            if b.num_rows() == 0 {
                continue;
            }
            let nk = self.plan.keys.len();
            let rows = self.plan.converter.convert_columns(&b.columns()[..nk])?;
            cur.rows = Some(rows);
            cur.sizes = if self.size.target_bytes.is_some() {
                let sizes = RowBytes::new(&b);
                (0..b.num_rows()).map(|i| sizes.row(i)).collect()
            } else {
                vec![0; b.num_rows()]
            };
            cur.len = b.num_rows();
            cur.pos = 0;
            cur.slot = self.batches.len();
            self.batches.push(b);
            break;
        }
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let mut picks: Vec<(usize, usize)> = Vec::new();
        let mut bytes = 0;
        loop {
            let mut best: Option<usize> = None;
            for (i, c) in self.cursors.iter().enumerate() {
                let Some(rows) = &c.rows else { continue };
                best = match best {
                    None => Some(i),
                    Some(b) => {
                        let bc = &self.cursors[b];
                        let br = bc.rows.as_ref().unwrap().row(bc.pos);
                        if rows.row(c.pos) < br {
                            Some(i)
                        } else {
                            Some(b)
                        }
                    }
                };
            }
            let Some(b) = best else { break };
            let c = &mut self.cursors[b];
            let row = c.sizes[c.pos];
            if !self.size.takes(picks.len(), bytes, row) {
                break;
            }
            bytes += row;
            picks.push((c.slot, c.pos));
            c.pos += 1;
            if c.pos == c.len {
                self.advance(b)?;
            }
        }
        if picks.is_empty() {
            return Ok(None);
        }
        let refs: Vec<&RecordBatch> = self.batches.iter().collect();
        let out = arrow_select::interleave::interleave_record_batch(&refs, &picks)?;
        // Keep only the cursors' current batches.
        let old = std::mem::take(&mut self.batches);
        let mut old: Vec<Option<RecordBatch>> = old.into_iter().map(Some).collect();
        for c in &mut self.cursors {
            if c.rows.is_some() {
                let b = old[c.slot].take().expect("one batch per cursor");
                c.slot = self.batches.len();
                self.batches.push(b);
            }
        }
        Ok(Some(out))
    }
}

impl Iterator for Merge {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

// ---------------------------------------------------------------------------------------------
// Public operator
// ---------------------------------------------------------------------------------------------

/// Counters of one aggregation.
#[derive(Debug, Clone, Default)]
pub struct AggregateStats {
    /// Raw rows pushed.
    pub rows_in: u64,
    /// State rows pushed.
    pub states_in: u64,
    /// Groups output.
    pub groups: u64,
    /// Times the table was spilled.
    pub spills: u64,
    /// State rows written to spill files.
    pub spilled_rows: u64,
}

/// Hash aggregation: raw rows ([`HashAggregate::push`]) and state rows
/// ([`HashAggregate::push_states`]) in, state rows sorted by the keys out. See the module
/// documentation.
pub struct HashAggregate {
    level: Level,
    input: SchemaRef,
    pool: Arc<MemoryPool>,
}

impl std::fmt::Debug for HashAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashAggregate")
            .field("schema", &self.level.core.plan.schema)
            .field("groups", &self.level.core.groups.len())
            .field("stats", &self.level.stats)
            .finish()
    }
}

impl HashAggregate {
    /// A new aggregation of rows of `input` (extra columns are ignored).
    ///
    /// # Errors
    ///
    /// [`EngineError::Plan`]: see [`state_schema`]; also `spill_partitions`, `batch_rows` or
    /// `batch_bytes` of 0.
    pub fn try_new(
        opts: AggregateOptions,
        input: SchemaRef,
        spill: Arc<SpillManager>,
        pool: &Arc<MemoryPool>,
    ) -> Result<Self> {
        if opts.spill_partitions == 0 || opts.batch_rows == 0 || opts.batch_bytes == 0 {
            return Err(plan_err(
                "spill_partitions, batch_rows and batch_bytes must be at least 1",
            ));
        }
        let plan = Arc::new(build_plan(&opts, &input)?);
        Ok(HashAggregate {
            level: Level::new(&plan, 0, &spill, pool)?,
            input,
            pool: Arc::clone(pool),
        })
    }

    /// The state schema.
    pub fn state_schema(&self) -> &SchemaRef {
        &self.level.core.plan.schema
    }

    /// The input schema given to [`HashAggregate::try_new`].
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input
    }

    /// Aggregates raw rows (the key and input columns are looked up by name).
    ///
    /// # Errors
    ///
    /// A missing column or one of another type than in the input schema
    /// ([`EngineError::Plan`]), an integer sum past Int64 ([`EngineError::InvalidData`]), a
    /// budget too small for one group ([`EngineError::ResourcesExhausted`]), spill errors.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        self.level.push(batch)
    }

    /// Merges state rows (in `state_schema`).
    ///
    /// # Errors
    ///
    /// As [`HashAggregate::push`]; a batch not in the state schema ([`EngineError::Plan`]);
    /// corrupt sketch bytes ([`EngineError::InvalidData`]).
    pub fn push_states(&mut self, batch: &RecordBatch) -> Result<()> {
        self.level.push_states(batch)
    }

    /// Counters so far.
    pub fn stats(&self) -> AggregateStats {
        self.level.stats.clone()
    }

    /// Every group, sorted by the keys, as state rows.
    ///
    /// # Errors
    ///
    /// Spill and budget errors of the partition passes (see the module documentation).
    pub fn finish(self) -> Result<AggregateStream> {
        let plan = Arc::clone(&self.level.core.plan);
        let spill = Arc::clone(&self.level.spill);
        let size = BatchSize::new(plan.batch_rows, plan.batch_bytes);
        let (fin, mut stats) = self.level.finish()?;
        let inner = match fin {
            Finished::Memory(core, order) => {
                stats.groups = order.len() as u64;
                Inner::Memory {
                    core,
                    order,
                    pos: 0,
                    carry: None,
                    widest: 0,
                }
            }
            Finished::Spilled(files) => {
                let ctx = Ctx {
                    plan: &plan,
                    spill: &spill,
                    pool: &self.pool,
                    run_batch_bytes: (self.pool.limit() / 64).clamp(16 << 10, 1 << 20),
                };
                let mut runs = Vec::new();
                for f in files {
                    process_partition(&ctx, f, 1, &mut runs, &mut stats)?;
                }
                Inner::Merge(merge_runs(&ctx, runs, size)?)
            }
        };
        Ok(AggregateStream { inner, stats, size })
    }
}

enum Inner {
    Memory {
        core: Core,
        order: Vec<u32>,
        /// The next group of `order` to emit.
        pos: usize,
        /// Rows emitted past the last batch's cut: the next batch's first.
        carry: Option<RecordBatch>,
        /// The largest [`RowBytes`] emitted so far (sizes the next emit).
        widest: usize,
    },
    Merge(Merge),
    Done,
}

/// The output of [`HashAggregate::finish`]: state rows sorted by the keys, in batches of at
/// most `batch_rows` rows and `batch_bytes` of values (see [`DEFAULT_BATCH_BYTES`]). Dropping
/// it gives the memory back.
pub struct AggregateStream {
    inner: Inner,
    stats: AggregateStats,
    size: BatchSize,
}

/// How output batches are cut: at most `max_rows` rows, and rows are added while their bytes
/// ([`RowBytes`]) stay within `target_bytes` (a row bigger than that alone makes a batch of
/// one). The bytes are a function of the rows' values alone, so an in-memory and a merged
/// output of the same rows are cut alike.
#[derive(Debug, Clone, Copy)]
struct BatchSize {
    max_rows: usize,
    /// `None`: `max_rows` rows whatever their size (a merge into a sorted run, whose rows are
    /// sized already).
    target_bytes: Option<usize>,
}

impl BatchSize {
    fn new(max_rows: usize, target_bytes: usize) -> Self {
        BatchSize {
            max_rows,
            target_bytes: Some(target_bytes),
        }
    }

    fn rows(rows: usize) -> Self {
        BatchSize {
            max_rows: rows,
            target_bytes: None,
        }
    }

    /// Whether a batch of `rows` rows and `bytes` bytes takes one more row of `row` bytes.
    fn takes(&self, rows: usize, bytes: usize, row: usize) -> bool {
        rows < self.max_rows
            && (rows == 0
                || self
                    .target_bytes
                    .is_none_or(|t| bytes.saturating_add(row) <= t))
    }
}

/// The bytes of each row of a batch: fixed-width values, and the value bytes and offset of
/// strings and binaries (from their offsets, not their buffers' capacities).
struct RowBytes<'a> {
    fixed: usize,
    var: Vec<VarCol<'a>>,
}

enum VarCol<'a> {
    Small(&'a [i32]),
    Large(&'a [i64]),
}

impl<'a> RowBytes<'a> {
    fn new(b: &'a RecordBatch) -> Self {
        let mut fixed = 0;
        let mut var = Vec::new();
        for c in b.columns() {
            match c.data_type() {
                DataType::Binary => var.push(VarCol::Small(c.as_binary::<i32>().value_offsets())),
                DataType::Utf8 => var.push(VarCol::Small(c.as_string::<i32>().value_offsets())),
                DataType::LargeBinary => {
                    var.push(VarCol::Large(c.as_binary::<i64>().value_offsets()))
                }
                DataType::LargeUtf8 => {
                    var.push(VarCol::Large(c.as_string::<i64>().value_offsets()))
                }
                t => fixed += t.primitive_width().unwrap_or(8),
            }
        }
        RowBytes { fixed, var }
    }

    fn row(&self, i: usize) -> usize {
        self.fixed
            + self
                .var
                .iter()
                .map(|v| match v {
                    VarCol::Small(o) => (o[i + 1] - o[i]).unsigned_abs() as usize + 4,
                    VarCol::Large(o) => (o[i + 1] - o[i]).unsigned_abs() as usize + 8,
                })
                .sum::<usize>()
    }
}

/// Rows of an in-memory output's first emit, before any row size is known.
const FIRST_EMIT_ROWS: usize = 64;

impl AggregateStream {
    /// Counters of the whole aggregation.
    pub fn stats(&self) -> AggregateStats {
        self.stats.clone()
    }

    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match &mut self.inner {
            Inner::Memory {
                core,
                order,
                pos,
                carry,
                widest,
            } => {
                // Pieces: the rows carried from the last cut, then emits sized to fill what is
                // left at the widest row so far; the batch takes rows while they fit, and the
                // rest of the piece that did not fit is carried to the next batch. Where it is
                // cut depends on the rows alone, not on how they were emitted.
                let size = self.size;
                let (mut parts, mut rows, mut bytes) = (Vec::new(), 0, 0);
                while rows < size.max_rows {
                    let piece = match carry.take() {
                        Some(c) => c,
                        None if *pos < order.len() => {
                            let want = match (size.target_bytes, *widest) {
                                (_, 0) => FIRST_EMIT_ROWS,
                                (Some(t), w) => t.saturating_sub(bytes) / w,
                                (None, _) => usize::MAX,
                            };
                            let want = want.clamp(1, size.max_rows - rows);
                            let end = order.len().min(*pos + want);
                            let b = core.emit(&order[*pos..end], true)?;
                            *pos = end;
                            b
                        }
                        None => break,
                    };
                    let sizes = RowBytes::new(&piece);
                    let mut n = 0;
                    while n < piece.num_rows() {
                        let row = sizes.row(n);
                        *widest = (*widest).max(row);
                        if !size.takes(rows, bytes, row) {
                            break;
                        }
                        bytes += row;
                        rows += 1;
                        n += 1;
                    }
                    if n < piece.num_rows() {
                        *carry = Some(piece.slice(n, piece.num_rows() - n));
                        if n > 0 {
                            parts.push(piece.slice(0, n));
                        }
                        break;
                    }
                    parts.push(piece);
                }
                Ok(match parts.len() {
                    0 => None,
                    1 => parts.pop(),
                    _ => Some(arrow_select::concat::concat_batches(
                        &parts[0].schema(),
                        &parts,
                    )?),
                })
            }
            Inner::Merge(m) => m.next_batch(),
            Inner::Done => Ok(None),
        }
    }
}

impl Iterator for AggregateStream {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                // Gives the memory back as soon as the output ends.
                self.inner = Inner::Done;
                None
            }
            Err(e) => {
                self.inner = Inner::Done;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_suffixes() {
        assert_eq!(quantile_suffix(0.5), "p50");
        assert_eq!(quantile_suffix(0.95), "p95");
        assert_eq!(quantile_suffix(0.99), "p99");
        assert_eq!(quantile_suffix(0.999), "p99_9");
        assert_eq!(quantile_suffix(0.25), "p25");
        assert_eq!(quantile_suffix(0.0), "p0");
        assert_eq!(quantile_suffix(1.0), "p100");
        assert_eq!(quantile_suffix(0.9999), "p99_99");
    }

    #[test]
    fn table_bytes_matches_hashbrown() {
        for cap in [1usize, 3, 5, 7, 8, 100, 1000, 12345] {
            let mut t: HashTable<u32> = HashTable::new();
            t.reserve(cap, |_| 0);
            assert!(
                t.allocation_size() <= table_bytes(cap) + 64,
                "{cap}: {} vs {}",
                t.allocation_size(),
                table_bytes(cap)
            );
        }
    }

    #[test]
    fn tdigest_serialization_is_deterministic() {
        let make = || {
            let mut d = TDigestMut::new(200).unwrap();
            let mut x = 12345u64;
            for _ in 0..50_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                d.update((x % 100_000) as f64);
            }
            d.serialize()
        };
        assert_eq!(make(), make());
    }
}
