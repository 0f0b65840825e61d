//! External sort with dedup: any number of rows through a fixed memory budget.
//!
//! # Why one operator
//! Exact duplicates are identical rows. Sorting by *every* column (the sort key first, then the
//! remaining columns in schema order) puts identical rows next to each other, so dedup is a
//! comparison with the previous row, both inside a sorted run and while merging runs. The
//! output order is a total order on the rows' values, so the output is the same whatever the
//! thread count, the memory budget or where the runs were cut.
//!
//! # Algorithm
//! 1. `push` buffers batches against the memory budget ([`crate::MemoryPool`]). When the buffer
//!    reaches `run_bytes`, or the budget refuses more, the buffer becomes a *sorted run*:
//!    encode the order columns with Arrow's row format (one `memcmp` per comparison; long,
//!    repetitive strings first replaced by their ranks in the run, see `encode_ranked`; when
//!    few rows tie on the sort key, only the key and then the tied rows, `sort_lead_first`),
//!    sort the row indices ([`crate::kernels::sort_row_indices`]), drop rows equal to their
//!    predecessor,
//!    and write the survivors to a spill file ([`crate::spill`]) in small batches. With more
//!    than one thread the file is written by a thread of its own while the caller parses on
//!    (at most one such write in flight). If even the encoding does not fit, the buffer is
//!    halved and each half becomes a run.
//! 2. `finish` (given the final schema, which may have gained columns or widened types since a
//!    run was written): if nothing was spilled, the buffer is sorted in memory and streamed.
//!    Otherwise the buffer is spilled as the last run; a run whose types changed is re-sorted
//!    (a widened column can order differently); while there are more runs than the memory
//!    allows to merge at once (the *fan-in*), the first fan-in runs are merged into one; then a
//!    k-way merge (a binary heap of run cursors) streams the output, dropping each row equal to
//!    the last row emitted.
//! 3. `keys` mode keeps the *first* row of each key in input order, exactly: a first external
//!    sort orders by (keys, input sequence number) and drops a row whose keys equal its
//!    predecessor's, so the survivor is the earliest; its output feeds a second external sort
//!    in output order.
//!
//! ```text
//!  push ─▶ buffer ──full──▶ encode ▶ sort ▶ dedup ▶ spill run ─┐
//!            │                                                 ▼
//!   finish ──┴─ nothing spilled: sort in memory ─▶ stream   runs ─▶ [merge fan-in at a time]
//!                                                              ▼
//!                                     stream ◀─ k-way merge + dedup (heap of cursors)
//! ```
//! Columns missing from a run are null in all its rows, a constant, so they do not change its
//! order; this is why runs written before a column first appeared merge correctly.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt64Array};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use rayon::prelude::*;

use crate::kernels::{self, RowParts, RowSet};
use crate::memory::{MemoryPool, MemoryReservation};
use crate::spill::{SpillFile, SpillManager};
use crate::{EngineError, Result};

/// Default rows per output batch.
pub const DEFAULT_BATCH_ROWS: usize = 8192;
/// Default in-memory size of one batch in a spill file (what a merge cursor holds).
pub const DEFAULT_SPILL_BATCH_BYTES: usize = 1 << 20;
/// Most runs merged at once (each is an open file).
pub const MAX_FAN_IN: usize = 256;
/// Name of the input-order column the `keys` mode adds while it deduplicates.
pub const SEQ_COLUMN: &str = "__compactor_seq";

/// How duplicates are recognised.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DedupMode {
    /// Rows equal in every column are one record; the copies are dropped.
    #[default]
    Exact,
    /// Rows equal in these columns are one record; the first in input order is kept.
    Keys(Vec<String>),
    /// Keep every row.
    None,
}

/// Brings a batch written under an earlier schema to a later one (more columns, wider types).
/// It must map equal values to equal values and distinct to distinct.
pub type ConformFn = Arc<
    dyn Fn(&RecordBatch, &SchemaRef) -> std::result::Result<RecordBatch, ArrowError> + Send + Sync,
>;

/// Options of the sort.
#[derive(Clone)]
pub struct SortOptions {
    /// Columns to sort by, in order (case-insensitive); the other columns follow.
    pub sort_by: Vec<String>,
    /// Duplicate handling.
    pub dedup: DedupMode,
    /// Buffer at most this many bytes before writing a sorted run.
    pub run_bytes: usize,
    /// Rows per output batch ([`DEFAULT_BATCH_ROWS`]).
    pub batch_rows: usize,
    /// Target in-memory bytes of one spilled batch ([`DEFAULT_SPILL_BATCH_BYTES`]).
    pub spill_batch_bytes: usize,
    /// How to widen batches of an earlier schema.
    pub conform: ConformFn,
}

impl std::fmt::Debug for SortOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortOptions")
            .field("sort_by", &self.sort_by)
            .field("dedup", &self.dedup)
            .field("run_bytes", &self.run_bytes)
            .field("batch_rows", &self.batch_rows)
            .field("spill_batch_bytes", &self.spill_batch_bytes)
            .finish()
    }
}

impl SortOptions {
    /// Options with the defaults and a `conform` that only accepts identical schemas.
    pub fn new(sort_by: Vec<String>, dedup: DedupMode, run_bytes: usize) -> Self {
        SortOptions {
            sort_by,
            dedup,
            run_bytes,
            batch_rows: DEFAULT_BATCH_ROWS,
            spill_batch_bytes: DEFAULT_SPILL_BATCH_BYTES,
            conform: Arc::new(|b, s| {
                if b.schema().as_ref() == s.as_ref() {
                    Ok(b.clone())
                } else {
                    Err(ArrowError::SchemaError(
                        "batch schema differs and no conform function was given".into(),
                    ))
                }
            }),
        }
    }
}

/// Counters of a sort, shared with its output stream (final once the stream is exhausted).
#[derive(Debug, Default)]
pub struct SortStats {
    /// Rows dropped as duplicates.
    pub duplicates: AtomicU64,
    /// Sorted runs written to disk (merge passes included).
    pub spilled_runs: AtomicU64,
    /// Rows written to disk (merge passes included).
    pub spilled_rows: AtomicU64,
    /// Intermediate merge passes (more runs than the fan-in).
    pub merge_passes: AtomicU64,
}

impl SortStats {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Which columns order the rows and which define a duplicate, resolved per schema by name.
#[derive(Debug, Clone)]
struct Plan {
    /// Leading order columns (missing ones are skipped: they are all null in that data).
    lead: Vec<String>,
    /// Whether every other column follows `lead`, in schema order.
    rest: bool,
    /// What makes two rows duplicates.
    equal: Equal,
}

#[derive(Debug, Clone, PartialEq)]
enum Equal {
    /// Equal in every order column (`rest` is then true, so: in every column).
    All,
    /// Equal in these columns.
    Columns(Vec<String>),
    /// Never.
    Never,
}

fn find(schema: &Schema, name: &str) -> Option<usize> {
    schema
        .fields()
        .iter()
        .position(|f| f.name().eq_ignore_ascii_case(name))
}

impl Plan {
    fn order(&self, schema: &Schema) -> Vec<usize> {
        let mut order: Vec<usize> = Vec::with_capacity(schema.fields().len());
        for name in &self.lead {
            if let Some(i) = find(schema, name) {
                if !order.contains(&i) {
                    order.push(i);
                }
            }
        }
        if self.rest {
            for i in 0..schema.fields().len() {
                if !order.contains(&i) {
                    order.push(i);
                }
            }
        }
        order
    }

    fn equal_columns(&self, schema: &Schema) -> Option<Vec<usize>> {
        match &self.equal {
            Equal::Columns(c) => Some(c.iter().filter_map(|n| find(schema, n)).collect()),
            _ => None,
        }
    }
}

/// Row encodings of a set of batches, for ordering and for equality.
struct Encoded {
    order: RowParts,
    equal: Option<RowParts>,
}

impl Encoded {
    fn size(&self) -> usize {
        self.order.size() + self.equal.as_ref().map_or(0, RowParts::size)
    }
    /// The rows that decide equality.
    fn eq_rows(&self) -> &RowParts {
        self.equal.as_ref().unwrap_or(&self.order)
    }
}

fn converter(schema: &Schema, columns: &[usize]) -> Result<RowConverter> {
    let fields = columns
        .iter()
        .map(|&i| SortField::new(schema.field(i).data_type().clone()))
        .collect();
    Ok(RowConverter::new(fields)?)
}

struct Encoders {
    order: (RowConverter, Vec<usize>),
    equal: Option<(RowConverter, Vec<usize>)>,
}

impl Encoders {
    fn new(plan: &Plan, schema: &Schema) -> Result<Self> {
        let order = plan.order(schema);
        let equal = match plan.equal_columns(schema) {
            Some(cols) => Some((converter(schema, &cols)?, cols)),
            None => None,
        };
        Ok(Encoders {
            order: (converter(schema, &order)?, order),
            equal,
        })
    }

    /// Encodes `batches`, in parallel: contiguous groups of batches are encoded on separate
    /// threads into the parts of a [`RowParts`].
    fn encode(&self, batches: &[RecordBatch]) -> Result<Encoded> {
        let plain = |(conv, cols): &(RowConverter, Vec<usize>)| {
            encode_parts(conv, batches.len(), |b| {
                cols.iter().map(|&i| batches[b].column(i).clone()).collect()
            })
        };
        Ok(Encoded {
            order: plain(&self.order)?,
            equal: self.equal.as_ref().map(plain).transpose()?,
        })
    }
}

/// Encodes batches `0..n` (their columns given by `columns`) with `conv`: contiguous groups
/// of batches on separate threads, each into a part of the [`RowParts`].
fn encode_parts(
    conv: &RowConverter,
    n: usize,
    columns: impl Fn(usize) -> Vec<ArrayRef> + Sync,
) -> Result<RowParts> {
    let groups = (rayon::current_num_threads() * 2).min(n).max(1);
    let per = n.div_ceil(groups).max(1);
    let encode_group = |group: std::ops::Range<usize>| -> Result<Rows> {
        let mut rows = conv.empty_rows(0, 0);
        for b in group {
            conv.append(&mut rows, &columns(b))?;
        }
        Ok(rows)
    };
    if groups == 1 {
        return Ok(RowParts::new(vec![encode_group(0..n)?]));
    }
    let parts: Vec<Rows> = (0..groups)
        .into_par_iter()
        .map(|g| encode_group(g * per..((g + 1) * per).min(n)))
        .collect::<Result<_>>()?;
    Ok(RowParts::new(parts))
}

/// A string order column is replaced by dense ranks when a sample of its values has at most
/// one distinct value in this many...
const RANK_MAX_DISTINCT_SHARE: usize = 8;
/// ...and its values are at least this long on average (bytes): shorter ones are settled by
/// the sort's first digits anyway.
const RANK_MIN_AVG_LEN: usize = 12;
/// Values sampled from the first batch to decide.
const RANK_SAMPLE: usize = 4096;

impl Encoders {
    /// [`Encoders::encode`] for sorting one run in memory. Long, repetitive string columns of
    /// the order (user agents, referers, paths) are first replaced by their dense ranks among
    /// the run's distinct values: the same order and the same equalities (ranks follow byte
    /// order, nulls stay null and first), but a 4-byte value instead of a long byte string that
    /// the sort would otherwise compare digit by digit, in row after row that share it. Ranks
    /// mean nothing outside the run, so runs are merged on the plain encoding.
    fn encode_ranked(&self, batches: &[RecordBatch]) -> Result<Encoded> {
        let Some(first) = batches.first() else {
            return self.encode(batches);
        };
        let (_, cols) = &self.order;
        let ranked: Vec<Option<Vec<ArrayRef>>> = cols
            .par_iter()
            .map(|&c| worth_ranking(batches, c).then(|| rank_strings(batches, c)))
            .collect();
        if ranked.iter().all(Option::is_none) {
            return self.encode(batches);
        }
        let fields = cols
            .iter()
            .zip(&ranked)
            .map(|(&c, r)| {
                SortField::new(match r {
                    Some(_) => DataType::UInt32,
                    None => first.schema().field(c).data_type().clone(),
                })
            })
            .collect();
        let conv = RowConverter::new(fields)?;
        let order = encode_parts(&conv, batches.len(), |b| {
            cols.iter()
                .zip(&ranked)
                .map(|(&c, r)| match r {
                    Some(ranks) => ranks[b].clone(),
                    None => batches[b].column(c).clone(),
                })
                .collect()
        })?;
        let equal = match &self.equal {
            Some((conv, cols)) => Some(encode_parts(conv, batches.len(), |b| {
                cols.iter().map(|&i| batches[b].column(i).clone()).collect()
            })?),
            None => None,
        };
        Ok(Encoded { order, equal })
    }
}

/// Whether string column `col` looks worth ranking (see [`Encoders::encode_ranked`]), from
/// its first values (up to [`RANK_SAMPLE`]).
fn worth_ranking(batches: &[RecordBatch], col: usize) -> bool {
    let mut distinct: std::collections::HashSet<&str, xxhash_rust::xxh3::Xxh3Builder> =
        Default::default();
    let (mut n, mut bytes) = (0, 0);
    for b in batches {
        let Some(a) = b.column(col).as_string_opt::<i32>() else {
            return false;
        };
        let take = a.len().min(RANK_SAMPLE - n);
        let offsets = &a.value_offsets()[..take + 1];
        bytes += (offsets[take] - offsets[0]) as usize;
        distinct.extend((0..take).filter(|&i| a.is_valid(i)).map(|i| a.value(i)));
        n += take;
        if n == RANK_SAMPLE {
            break;
        }
    }
    n > 0 && bytes >= RANK_MIN_AVG_LEN * n && distinct.len() * RANK_MAX_DISTINCT_SHARE <= n
}

/// The dense, byte-ordered ranks of string column `col` across `batches`: one `UInt32` array
/// per batch, null where the value is null.
fn rank_strings(batches: &[RecordBatch], col: usize) -> Vec<ArrayRef> {
    type Map<'a> = std::collections::HashMap<&'a [u8], u32, xxhash_rust::xxh3::Xxh3Builder>;
    // Per batch, in parallel: its distinct values and each row's local id.
    let locals: Vec<(Vec<&[u8]>, Vec<u32>)> = batches
        .par_iter()
        .map(|b| {
            let a = b.column(col).as_string::<i32>();
            let mut map = Map::default();
            let mut distinct = Vec::new();
            let ids = (0..a.len())
                .map(|i| {
                    // a null's id is never read (the rank array is null there)
                    let v = a.value(i).as_bytes();
                    *map.entry(v).or_insert_with(|| {
                        distinct.push(v);
                        distinct.len() as u32 - 1
                    })
                })
                .collect();
            (distinct, ids)
        })
        .collect();
    let mut all: Vec<&[u8]> = locals.iter().flat_map(|(d, _)| d.iter().copied()).collect();
    all.par_sort_unstable();
    all.dedup();
    batches
        .par_iter()
        .zip(&locals)
        .map(|(b, (distinct, ids))| {
            let rank: Vec<u32> = distinct
                .iter()
                .map(|v| all.binary_search(v).expect("collected above") as u32)
                .collect();
            let values: Vec<u32> = ids.iter().map(|&id| rank[id as usize]).collect();
            let nulls = b.column(col).logical_nulls();
            Arc::new(arrow_array::UInt32Array::new(values.into(), nulls)) as ArrayRef
        })
        .collect()
}

/// Of the rows of a run sorted in memory, at most one in this many may tie on the sort key
/// for [`Stage::sort_lead_first`]; more, and whole rows are sorted instead.
const MAX_TIED_SHARE: usize = 4;

/// Rows per parallel task in [`Stage::sort_lead_first`] (tiny in unit tests, so that their
/// small inputs take several).
const TIE_CHUNK: usize = if cfg!(test) { 7 } else { 16 * 1024 };

/// Global row index `g` -> (batch, row), given the batches' first global indices.
fn pair(starts: &[usize], g: u32) -> (usize, usize) {
    let g = g as usize;
    let b = starts.partition_point(|&s| s <= g) - 1;
    (b, g - starts[b])
}

/// Global row index -> (batch, row) for `interleave`.
fn locate(batches: &[RecordBatch]) -> Vec<usize> {
    let mut starts = Vec::with_capacity(batches.len() + 1);
    let mut n = 0;
    for b in batches {
        starts.push(n);
        n += b.num_rows();
    }
    starts.push(n);
    starts
}

fn gather(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    idx: &[(usize, usize)],
) -> Result<RecordBatch> {
    let one = |c: usize| {
        let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
        arrow_select::interleave::interleave(&arrays, idx)
    };
    // Parallel inside a rayon pool; sequential on a thread of its own (a pipeline stage
    // outside the pool must not borrow the pool's workers).
    let columns: Vec<ArrayRef> = if rayon::current_thread_index().is_some() {
        (0..schema.fields().len())
            .into_par_iter()
            .map(one)
            .collect::<std::result::Result<_, _>>()?
    } else {
        (0..schema.fields().len())
            .map(one)
            .collect::<std::result::Result<_, _>>()?
    };
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(idx.len()));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &opts,
    )?)
}

/// A buffer of batches sorted in memory: `sorted` are global row indices.
struct SortedBuffer {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    starts: Vec<usize>,
    sorted: Vec<u32>,
}

impl SortedBuffer {
    fn slice(&self, range: std::ops::Range<usize>) -> Result<RecordBatch> {
        let idx: Vec<(usize, usize)> = self.sorted[range]
            .iter()
            .map(|&g| pair(&self.starts, g))
            .collect();
        gather(&self.schema, &self.batches, &idx)
    }
}

/// One stage of external sort (see the module docs); `keys` mode chains two.
struct Stage {
    plan: Plan,
    opts: SortOptions,
    stats: Arc<SortStats>,
    spill: Arc<SpillManager>,
    pool: Arc<MemoryPool>,
    buffer: Vec<RecordBatch>,
    reservation: MemoryReservation,
    runs: Vec<SpillFile>,
    /// A run being written to disk by a thread of its own.
    pending: Option<std::thread::JoinHandle<Result<SpillFile>>>,
}

impl Stage {
    fn new(
        plan: Plan,
        opts: SortOptions,
        stats: Arc<SortStats>,
        spill: Arc<SpillManager>,
        pool: &Arc<MemoryPool>,
        name: &str,
    ) -> Self {
        Stage {
            plan,
            opts,
            stats,
            spill,
            pool: Arc::clone(pool),
            buffer: Vec::new(),
            reservation: pool.reservation(name),
            runs: Vec::new(),
            pending: None,
        }
    }

    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let size = batch_bytes(&batch);
        let run_bytes = self.opts.run_bytes.max(1);
        if size > run_bytes && batch.num_rows() > 1 {
            // Larger than a run: sort it in pieces (slices share the batch's buffers, so each
            // piece is charged its share of them).
            let pieces = size.div_ceil(run_bytes).min(batch.num_rows());
            let rows = batch.num_rows().div_ceil(pieces);
            let mut at = 0;
            while at < batch.num_rows() {
                let len = rows.min(batch.num_rows() - at);
                self.push_sized(batch.slice(at, len), size / pieces)?;
                at += len;
            }
            return Ok(());
        }
        self.push_sized(batch, size)
    }

    fn push_sized(&mut self, batch: RecordBatch, size: usize) -> Result<()> {
        if !self.buffer.is_empty() && self.reservation.size() + size > self.opts.run_bytes {
            self.spill_buffer()?;
        }
        if self.reservation.try_grow(size).is_err() {
            self.spill_buffer()?;
            // the spilled buffer's memory comes back once its file is written
            self.join_pending()?;
            self.reservation.try_grow(size)?;
        }
        self.buffer.push(batch);
        Ok(())
    }

    /// Conforms the buffer to its newest schema (the widest: schemas only grow).
    fn conformed_buffer(&mut self, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
        let batches = std::mem::take(&mut self.buffer);
        batches
            .iter()
            .map(|b| (self.opts.conform)(b, schema).map_err(EngineError::from))
            .collect()
    }

    /// Sorts `batches` in memory; drops rows equal to their predecessor.
    fn sort(
        &self,
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
        scratch: &mut MemoryReservation,
    ) -> Result<SortedBuffer> {
        // Reserve an estimate before encoding (rows are about the data's size plus a few bytes
        // of framing per value), then the exact size.
        let n: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let data: usize = batches.iter().map(batch_bytes).sum();
        let factor = if self.plan.equal_columns(schema).is_some() {
            2
        } else {
            1
        };
        let estimate = factor * (data + 8 * n * schema.fields().len()) + 4 * n;
        scratch.try_grow(estimate)?;
        if n > u32::MAX as usize {
            return Err(EngineError::Plan(format!(
                "{n} rows in one sorted run exceed 4 billion; lower the memory budget's run size"
            )));
        }
        let sorted = match self.sort_lead_first(schema, &batches, n, scratch)? {
            Some(sorted) => sorted,
            None => {
                scratch.try_resize(estimate)?;
                self.sort_whole_rows(schema, &batches, n, scratch)?
            }
        };
        // what stays held: the sorted indices
        scratch.try_resize(4 * sorted.len())?;
        Ok(SortedBuffer {
            schema: schema.clone(),
            starts: locate(&batches),
            batches,
            sorted,
        })
    }

    /// Sorts and dedups by whole encoded rows: the order columns, every one of them.
    fn sort_whole_rows(
        &self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        n: usize,
        scratch: &mut MemoryReservation,
    ) -> Result<Vec<u32>> {
        let enc = Encoders::new(&self.plan, schema)?.encode_ranked(batches)?;
        // indices (4 B/row) plus the sort kernel's keys (16 B/row) and dedup flags (1 B/row)
        scratch.try_resize(enc.size() + 21 * n)?;
        let mut sorted: Vec<u32> = (0..n as u32).collect();
        kernels::sort_row_indices(&enc.order, &mut sorted);
        match self.plan.equal_columns(schema) {
            // None of the key columns has appeared yet: every key is null, so all rows are one
            // key and the first in input order (sorted first by sequence number) stays.
            Some(cols) if cols.is_empty() => {
                let dropped = sorted.len().saturating_sub(1);
                sorted.truncate(1);
                SortStats::add(&self.stats.duplicates, dropped as u64);
            }
            _ if self.plan.equal != Equal::Never => {
                let dropped = kernels::dedup_sorted(enc.eq_rows(), &mut sorted);
                SortStats::add(&self.stats.duplicates, dropped as u64);
            }
            _ => {}
        }
        Ok(sorted)
    }

    /// Sorts by the leading (sort key) columns alone, then settles only the rows that tie on
    /// them by their whole rows, or returns `None` where that does not apply or would not pay.
    ///
    /// The order is by the key, then every other column; but rows that tie on a key holding a
    /// timestamp are rare, and mostly the duplicates themselves. So encoding every column of
    /// every row (most of the sort's memory traffic) is wasted on the rows the key already
    /// orders. Here the key alone is encoded and sorted; the columns after the key of the
    /// tied rows (at most 1 in [`MAX_TIED_SHARE`]) are gathered and sorted by (tie group,
    /// those columns, position), and go back into the key order group by group. Duplicates
    /// can only be tied rows.
    fn sort_lead_first(
        &self,
        schema: &SchemaRef,
        batches: &[RecordBatch],
        n: usize,
        scratch: &mut MemoryReservation,
    ) -> Result<Option<Vec<u32>>> {
        let lead_plan = Plan {
            lead: self.plan.lead.clone(),
            rest: false,
            equal: Equal::Never,
        };
        let (lead_cols, full) = (lead_plan.order(schema), self.plan.order(schema));
        if lead_cols.is_empty()
            || lead_cols.len() == full.len()
            || !matches!(self.plan.equal, Equal::All | Equal::Never)
        {
            return Ok(None);
        }
        let lead = Encoders::new(&lead_plan, schema)?
            .encode_ranked(batches)?
            .order;
        scratch.try_resize(lead.size() + 21 * n)?;
        let mut sorted: Vec<u32> = (0..n as u32).collect();
        kernels::sort_row_indices(&lead, &mut sorted);
        // maximal runs of rows with equal keys: which rows equal their predecessor (in
        // parallel), then one pass over those flags
        let mut same = vec![false; n];
        same.par_chunks_mut(TIE_CHUNK)
            .enumerate()
            .for_each(|(c, flags)| {
                let start = c * TIE_CHUNK;
                for (k, f) in flags.iter_mut().enumerate() {
                    let i = start + k;
                    *f = i > 0
                        && lead.bytes(sorted[i] as usize) == lead.bytes(sorted[i - 1] as usize);
                }
            });
        let mut ties: Vec<std::ops::Range<usize>> = Vec::new();
        let mut tied = 0;
        let mut i = 0;
        while i < n {
            let mut j = i + 1;
            while j < n && same[j] {
                j += 1;
            }
            if j - i > 1 {
                tied += j - i;
                ties.push(i..j);
            }
            i = j;
        }
        drop(same);
        if tied * MAX_TIED_SHARE > n {
            return Ok(None);
        }
        drop(lead);
        if ties.is_empty() {
            return Ok(Some(sorted));
        }
        let starts = locate(batches);
        let tie_idx: Vec<u32> = ties
            .iter()
            .flat_map(|r| sorted[r.clone()].to_vec())
            .collect();
        let pairs: Vec<(usize, usize)> = tie_idx.iter().map(|&g| pair(&starts, g)).collect();
        // The tied rows' group (their key's rank) and the columns after the key: sorting by
        // (group, rest, position) is their whole-row order.
        let rest = &full[lead_cols.len()..];
        let projected = batches
            .iter()
            .map(|b| b.project(rest))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let rest_batch = gather(&projected[0].schema(), &projected, &pairs)?;
        let group: ArrayRef = Arc::new(arrow_array::UInt32Array::from_iter_values(
            ties.iter()
                .enumerate()
                .flat_map(|(g, r)| std::iter::repeat_n(g as u32, r.len())),
        ));
        scratch.try_grow(batch_bytes(&rest_batch) * 2 + 8 * tie_idx.len())?;
        let mut fields = vec![SortField::new(DataType::UInt32)];
        fields.extend(
            rest_batch
                .columns()
                .iter()
                .map(|c| SortField::new(c.data_type().clone())),
        );
        let conv = RowConverter::new(fields)?;
        let m = tie_idx.len();
        let pieces = m.div_ceil(TIE_CHUNK);
        let rows = encode_parts(&conv, pieces, |p| {
            let (at, len) = (p * TIE_CHUNK, TIE_CHUNK.min(m - p * TIE_CHUNK));
            std::iter::once(group.slice(at, len))
                .chain(rest_batch.columns().iter().map(|c| c.slice(at, len)))
                .collect()
        })?;
        let mut pos: Vec<u32> = (0..tie_idx.len() as u32).collect();
        kernels::sort_row_indices(&rows, &mut pos);
        if self.plan.equal == Equal::All {
            let dropped = kernels::dedup_sorted(&rows, &mut pos);
            SortStats::add(&self.stats.duplicates, dropped as u64);
        }
        // Put each group's survivors, now in (rest, position) order, back in its place.
        let group_of = group
            .as_primitive::<arrow_array::types::UInt32Type>()
            .values();
        let mut out = Vec::with_capacity(n);
        let (mut k, mut prev) = (0, 0);
        for (g, r) in ties.iter().enumerate() {
            out.extend_from_slice(&sorted[prev..r.start]);
            while k < pos.len() && group_of[pos[k] as usize] as usize == g {
                out.push(tie_idx[pos[k] as usize]);
                k += 1;
            }
            prev = r.end;
        }
        out.extend_from_slice(&sorted[prev..]);
        debug_assert_eq!(k, pos.len());
        Ok(Some(out))
    }

    /// Sorts `batches` into a run and writes it to a spill file. `held` is the memory of the
    /// batches; it is released once the run is on disk. With `background` (and more than one
    /// thread) the file is written by a thread of its own while the caller goes on; at most
    /// one such write is in flight.
    fn spill_batches(
        &mut self,
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
        held: MemoryReservation,
        background: bool,
    ) -> Result<()> {
        let bytes: usize = batches.iter().map(batch_bytes).sum();
        let mut scratch = self.pool.reservation("sort scratch");
        let mut attempt = self.sort(schema, batches.clone(), &mut scratch);
        if matches!(attempt, Err(EngineError::ResourcesExhausted { .. })) && self.pending.is_some()
        {
            // The previous run is still being written: wait for its memory, then try again.
            self.join_pending()?;
            attempt = self.sort(schema, batches.clone(), &mut scratch);
        }
        let sorted = match attempt {
            Ok(s) => s,
            Err(EngineError::ResourcesExhausted { .. }) if batches.len() > 1 => {
                // The encoding does not fit next to the buffer: halve and try again.
                let mut first = batches;
                let second = first.split_off(first.len() / 2);
                let none = self.pool.reservation("sort buffer");
                self.spill_batches(schema, first, none, false)?;
                return self.spill_batches(schema, second, held, background);
            }
            Err(e) => return Err(e),
        };
        drop(batches);
        let rows_per = spill_rows(bytes, sorted.sorted.len(), self.opts.spill_batch_bytes);
        let spill = self.spill.clone();
        let stats = self.stats.clone();
        let write = move || -> Result<SpillFile> {
            let _held = (held, scratch);
            let mut w = spill.create(&sorted.schema)?;
            let mut at = 0;
            while at < sorted.sorted.len() {
                let end = (at + rows_per).min(sorted.sorted.len());
                w.write(&sorted.slice(at..end)?)?;
                at = end;
            }
            let run = w.finish()?;
            SortStats::add(&stats.spilled_runs, 1);
            SortStats::add(&stats.spilled_rows, run.rows());
            Ok(run)
        };
        self.join_pending()?;
        if background && rayon::current_num_threads() > 1 {
            let h = std::thread::Builder::new()
                .name("compactor-spill".into())
                .spawn(write)
                .map_err(|e| EngineError::Io(format!("starting the spill writer: {e}")))?;
            self.pending = Some(h);
        } else {
            let run = write()?;
            self.runs.push(run);
        }
        Ok(())
    }

    /// Waits for the spill file being written in the background, if any.
    fn join_pending(&mut self) -> Result<()> {
        if let Some(h) = self.pending.take() {
            let run = h
                .join()
                .map_err(|_| EngineError::Io("the spill writer thread panicked".into()))??;
            self.runs.push(run);
        }
        Ok(())
    }

    fn spill_buffer(&mut self) -> Result<()> {
        let Some(schema) = self.buffer.last().map(|b| b.schema()) else {
            return Ok(());
        };
        let batches = self.conformed_buffer(&schema)?;
        let name = "sort buffer";
        let held = std::mem::replace(&mut self.reservation, self.pool.reservation(name));
        self.spill_batches(&schema, batches, held, true)
    }

    /// Sorts what is left and returns the output stream in `schema`.
    fn finish(mut self, schema: &SchemaRef) -> Result<SortedStream> {
        self.join_pending()?;
        if self.runs.is_empty() {
            let batches = self.conformed_buffer(schema)?;
            let mut scratch = self.pool.reservation("sort scratch");
            match self.sort(schema, batches.clone(), &mut scratch) {
                Ok(sorted) => {
                    let held =
                        std::mem::replace(&mut self.reservation, self.pool.reservation("sorted"));
                    return Ok(SortedStream {
                        inner: Inner::Memory {
                            buf: sorted,
                            at: 0,
                            _reservation: (held, scratch),
                        },
                        batch_rows: self.opts.batch_rows,
                        stats: self.stats.clone(),
                    });
                }
                // Does not fit in memory after all: spill it (halved as needed) and merge.
                Err(EngineError::ResourcesExhausted { .. }) => {
                    drop(scratch);
                    let held = std::mem::replace(
                        &mut self.reservation,
                        self.pool.reservation("sort buffer"),
                    );
                    self.spill_batches(schema, batches, held, false)?;
                }
                Err(e) => return Err(e),
            }
        }
        self.spill_buffer()?;
        self.join_pending()?;
        // Runs whose types were widened since they were written may be out of order now.
        let runs = std::mem::take(&mut self.runs);
        let mut ready = VecDeque::with_capacity(runs.len());
        for run in runs {
            if same_types(run.schema(), schema) {
                ready.push_back(run);
            } else {
                let mut batches = Vec::new();
                let mut held = self.pool.reservation("re-sort");
                for b in run.reader()? {
                    let b = (self.opts.conform)(&b?, schema)?;
                    held.try_grow(b.get_array_memory_size())?;
                    batches.push(b);
                }
                drop(run);
                self.spill_batches(schema, batches, held, false)?;
                ready.extend(self.runs.drain(..));
            }
        }
        // Merge passes while there are more runs than fit in memory at once. Each pass merges
        // just enough of the smallest runs that the rest fit in one final merge, so as little
        // data as possible is written twice.
        loop {
            let fan_in = self.fan_in(ready.iter());
            if ready.len() <= fan_in {
                break;
            }
            let take = (ready.len() - fan_in + 1).clamp(2, fan_in);
            ready.make_contiguous().sort_by_key(SpillFile::rows);
            let group: Vec<SpillFile> = ready.drain(..take).collect();
            let mut merge = Merge::try_new(
                group,
                schema,
                &self.plan,
                &self.opts,
                &self.pool,
                &self.stats,
            )?;
            let mut w = self.spill.create(schema)?;
            while let Some(b) = merge.next_batch()? {
                w.write(&b)?;
            }
            let run = w.finish()?;
            drop(merge);
            SortStats::add(&self.stats.spilled_runs, 1);
            SortStats::add(&self.stats.spilled_rows, run.rows());
            SortStats::add(&self.stats.merge_passes, 1);
            ready.push_back(run);
        }
        let merge = Merge::try_new(
            ready.into(),
            schema,
            &self.plan,
            &self.opts,
            &self.pool,
            &self.stats,
        )?;
        Ok(SortedStream {
            inner: Inner::Merge(Box::new(merge)),
            batch_rows: self.opts.batch_rows,
            stats: self.stats.clone(),
        })
    }

    /// How many runs can be merged at once: each cursor holds one batch, its row encodings,
    /// and its share of the output batch; half of what is free goes to the merge.
    fn fan_in<'a>(&self, runs: impl Iterator<Item = &'a SpillFile>) -> usize {
        let per = runs.map(cursor_cost).max().unwrap_or(1).max(1);
        let free = self.pool.limit().saturating_sub(self.pool.used());
        // at most MAX_FAN_IN files open at once (the default open-file limit is 1024)
        (free / 2 / per).clamp(2, MAX_FAN_IN)
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        // On an error path, let the background write finish (and its file be deleted) before
        // the caller reports the error and perhaps exits.
        if let Some(h) = self.pending.take() {
            let _ = h.join();
        }
    }
}

fn cursor_cost(run: &SpillFile) -> usize {
    // batch + order rows + equality rows + interleaved output share, plus the read buffer.
    run.max_batch_bytes() * 4 + (1 << 20)
}

fn spill_rows(bytes: usize, rows: usize, target: usize) -> usize {
    let per_row = (bytes / rows.max(1)).max(1);
    (target / per_row).clamp(64, DEFAULT_BATCH_ROWS * 8)
}

/// Whether a run written under schema `a` is still in order under `b`: every column has the
/// same type, was all null (`Null`), or widened int -> float (exact: the tracker makes a
/// column with an int beyond 2^53 a string, not a float), which keeps order and equality.
fn same_types(a: &Schema, b: &Schema) -> bool {
    a.fields().iter().all(|f| {
        let to = find(b, f.name()).map(|j| b.field(j).data_type());
        match (f.data_type(), to) {
            (DataType::Null, _) => true,
            (x, Some(y)) if x == y => true,
            (DataType::Int64, Some(DataType::Float64)) => true,
            _ => false,
        }
    })
}

/// Memory of a batch's own rows (a slice is charged its share, not its parent's buffers).
fn batch_bytes(b: &RecordBatch) -> usize {
    b.columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

/// A run being merged: its current batch, encoded.
struct Cursor {
    reader: crate::spill::SpillReader,
    batch: usize,
    enc: Encoded,
    pos: usize,
    len: usize,
    _run: SpillFile,
}

/// k-way merge of sorted runs with dedup. See the module docs.
struct Merge {
    schema: SchemaRef,
    encoders: Encoders,
    cursors: Vec<Cursor>,
    /// Cursor indices, a binary min-heap by current row.
    heap: Vec<usize>,
    /// Batches the pending output refers to.
    held: Vec<RecordBatch>,
    pending: Vec<(usize, usize)>,
    last: Vec<u8>,
    has_last: bool,
    dedup: bool,
    batch_rows: usize,
    conform: ConformFn,
    stats: Arc<SortStats>,
    _reservation: MemoryReservation,
    /// Exhausted batches still referred to by `pending`, and the output batch being built
    /// (beyond the one current batch per cursor that `_reservation` covers).
    extra: MemoryReservation,
}

impl Merge {
    fn try_new(
        runs: Vec<SpillFile>,
        schema: &SchemaRef,
        plan: &Plan,
        opts: &SortOptions,
        pool: &Arc<MemoryPool>,
        stats: &Arc<SortStats>,
    ) -> Result<Self> {
        let mut reservation = pool.reservation("merge");
        reservation.try_grow(runs.iter().map(cursor_cost).sum())?;
        let mut m = Merge {
            schema: schema.clone(),
            encoders: Encoders::new(plan, schema)?,
            cursors: Vec::with_capacity(runs.len()),
            heap: Vec::with_capacity(runs.len()),
            held: Vec::new(),
            pending: Vec::with_capacity(opts.batch_rows),
            last: Vec::new(),
            has_last: false,
            dedup: plan.equal != Equal::Never,
            batch_rows: opts.batch_rows,
            conform: opts.conform.clone(),
            stats: stats.clone(),
            _reservation: reservation,
            extra: pool.reservation("merge output"),
        };
        for run in runs {
            let reader = run.reader()?;
            let mut c = Cursor {
                reader,
                batch: 0,
                enc: Encoded {
                    order: RowParts::new(Vec::new()),
                    equal: None,
                },
                pos: 0,
                len: 0,
                _run: run,
            };
            if load(&mut c, &m.conform, &m.schema, &m.encoders, &mut m.held)? {
                m.cursors.push(c);
            }
        }
        for i in 0..m.cursors.len() {
            m.heap.push(i);
            m.sift_up(m.heap.len() - 1);
        }
        Ok(m)
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (ca, cb) = (&self.cursors[a], &self.cursors[b]);
        match ca.enc.order.bytes(ca.pos).cmp(cb.enc.order.bytes(cb.pos)) {
            std::cmp::Ordering::Equal => a < b,
            o => o == std::cmp::Ordering::Less,
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if self.less(self.heap[i], self.heap[p]) {
                self.heap.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && self.less(self.heap[l], self.heap[m]) {
                m = l;
            }
            if r < n && self.less(self.heap[r], self.heap[m]) {
                m = r;
            }
            if m == i {
                return;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }

    /// The next output batch, or `None` when every run is exhausted.
    fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        while self.pending.len() < self.batch_rows {
            let Some(&top) = self.heap.first() else { break };
            let c = &self.cursors[top];
            let row = c.enc.eq_rows().bytes(c.pos);
            let dup = self.dedup && self.has_last && row == self.last.as_slice();
            if dup {
                SortStats::add(&self.stats.duplicates, 1);
            } else {
                if self.dedup {
                    self.last.clear();
                    self.last.extend_from_slice(row);
                    self.has_last = true;
                }
                self.pending.push((c.batch, c.pos));
            }
            let c = &mut self.cursors[top];
            c.pos += 1;
            if c.pos == c.len {
                let more = load(
                    &mut self.cursors[top],
                    &self.conform,
                    &self.schema,
                    &self.encoders,
                    &mut self.held,
                )?;
                if !more {
                    let last = self.heap.len() - 1;
                    self.heap.swap(0, last);
                    self.heap.pop();
                }
            }
            if !self.heap.is_empty() {
                self.sift_down(0);
            }
        }
        if self.pending.is_empty() {
            return Ok(None);
        }
        // Reserve what the output holds: exhausted batches it still refers to, and itself
        // (about the size of the rows it takes).
        let current: std::collections::HashSet<usize> =
            self.heap.iter().map(|&h| self.cursors[h].batch).collect();
        let (mut old, mut rows_bytes) = (0, 0);
        for (i, b) in self.held.iter().enumerate() {
            let size = batch_bytes(b);
            if !current.contains(&i) {
                old += size;
            }
            rows_bytes += size / b.num_rows().max(1);
        }
        let estimate = rows_bytes / self.held.len().max(1) * self.pending.len();
        self.extra.try_resize(old + estimate)?;
        let out = gather(&self.schema, &self.held, &self.pending)?;
        self.pending.clear();
        // Keep only the batches the cursors still read from.
        let live: Vec<usize> = self.heap.iter().map(|&h| self.cursors[h].batch).collect();
        let mut remap = vec![usize::MAX; self.held.len()];
        let mut kept = Vec::with_capacity(live.len());
        for (&h, &b) in self.heap.iter().zip(&live) {
            if remap[b] == usize::MAX {
                remap[b] = kept.len();
                kept.push(self.held[b].clone());
            }
            self.cursors[h].batch = remap[b];
        }
        self.held = kept;
        self.extra.free();
        Ok(Some(out))
    }
}

/// Loads the cursor's next batch (conformed and encoded) into `held`; false at the end of its
/// run.
fn load(
    c: &mut Cursor,
    conform: &ConformFn,
    schema: &SchemaRef,
    encoders: &Encoders,
    held: &mut Vec<RecordBatch>,
) -> Result<bool> {
    loop {
        let Some(b) = c.reader.next() else {
            return Ok(false);
        };
        let b = conform(&b?, schema)?;
        if b.num_rows() == 0 {
            continue;
        }
        c.enc = encoders.encode(std::slice::from_ref(&b))?;
        c.pos = 0;
        c.len = b.num_rows();
        c.batch = held.len();
        held.push(b);
        return Ok(true);
    }
}

enum Inner {
    Memory {
        buf: SortedBuffer,
        at: usize,
        _reservation: (MemoryReservation, MemoryReservation),
    },
    Merge(Box<Merge>),
}

/// The sorted, deduplicated rows, a batch at a time. Holds its memory reservation and spill
/// files until dropped.
pub struct SortedStream {
    inner: Inner,
    batch_rows: usize,
    stats: Arc<SortStats>,
}

impl std::fmt::Debug for SortedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SortedStream")
            .field("stats", &self.stats)
            .finish()
    }
}

impl SortedStream {
    /// The next batch of `batch_rows` rows (fewer only for the last), or `None` at the end.
    pub fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        match &mut self.inner {
            Inner::Memory { buf, at, .. } => {
                if *at >= buf.sorted.len() {
                    return Ok(None);
                }
                let end = (*at + self.batch_rows).min(buf.sorted.len());
                let out = buf.slice(*at..end)?;
                *at = end;
                Ok(Some(out))
            }
            Inner::Merge(m) => m.next_batch(),
        }
    }

    /// The sort's counters (duplicates are final once the stream is exhausted).
    pub fn stats(&self) -> &SortStats {
        &self.stats
    }
}

impl Iterator for SortedStream {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch().transpose()
    }
}

/// The external sort + dedup operator. See the module docs.
pub struct ExternalSort {
    first: Stage,
    /// `keys` mode: the output-order stage fed by `first`.
    second: Option<(Plan, SortOptions)>,
    sort_by: Vec<String>,
    next_seq: u64,
    stats: Arc<SortStats>,
    spill: Arc<SpillManager>,
    pool: Arc<MemoryPool>,
}

impl std::fmt::Debug for ExternalSort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalSort")
            .field("sort_by", &self.sort_by)
            .field("stats", &self.stats)
            .finish()
    }
}

impl ExternalSort {
    /// A sort by `opts.sort_by` (then every other column), spilling through `spill`, within
    /// `pool`'s budget.
    pub fn try_new(
        opts: SortOptions,
        spill: Arc<SpillManager>,
        pool: &Arc<MemoryPool>,
    ) -> Result<Self> {
        let stats = Arc::new(SortStats::default());
        let output = Plan {
            lead: opts.sort_by.clone(),
            rest: true,
            equal: Equal::All,
        };
        let (first, second) = match &opts.dedup {
            DedupMode::Keys(k) if k.is_empty() => {
                return Err(EngineError::Plan(
                    "dedup mode \"keys\" needs at least one key column".into(),
                ))
            }
            DedupMode::Keys(k) => {
                let mut lead = k.clone();
                lead.push(SEQ_COLUMN.to_string());
                let first = Plan {
                    lead,
                    rest: false,
                    equal: Equal::Columns(k.clone()),
                };
                let second = Plan {
                    equal: Equal::Never,
                    ..output
                };
                // Each stage gets half the run size: the second fills while the first merges.
                let mut half = opts.clone();
                half.run_bytes = (opts.run_bytes / 2).max(1);
                (
                    Stage::new(
                        first,
                        half.clone(),
                        stats.clone(),
                        spill.clone(),
                        pool,
                        "sort (keys)",
                    ),
                    Some((second, half)),
                )
            }
            DedupMode::None => (
                Stage::new(
                    Plan {
                        equal: Equal::Never,
                        ..output
                    },
                    opts.clone(),
                    stats.clone(),
                    spill.clone(),
                    pool,
                    "sort",
                ),
                None,
            ),
            DedupMode::Exact => (
                Stage::new(
                    output,
                    opts.clone(),
                    stats.clone(),
                    spill.clone(),
                    pool,
                    "sort",
                ),
                None,
            ),
        };
        Ok(ExternalSort {
            first,
            second,
            sort_by: opts.sort_by,
            next_seq: 0,
            stats,
            spill,
            pool: Arc::clone(pool),
        })
    }

    /// Buffers a batch (pushed in input order). Its schema may be wider than earlier batches'
    /// (more columns, wider types), never narrower.
    pub fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let n = batch.num_rows() as u64;
        let batch = if self.second.is_some() {
            if find(&batch.schema(), SEQ_COLUMN).is_some() {
                return Err(EngineError::Plan(format!(
                    "{SEQ_COLUMN} is a reserved column name"
                )));
            }
            let seq = UInt64Array::from_iter_values(self.next_seq..self.next_seq + n);
            self.next_seq += n;
            let mut fields = batch.schema().fields().to_vec();
            fields.push(Arc::new(Field::new(SEQ_COLUMN, DataType::UInt64, false)));
            let mut cols = batch.columns().to_vec();
            cols.push(Arc::new(seq));
            RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?
        } else {
            batch
        };
        self.first.push(batch)
    }

    /// The counters, shared with the output stream.
    pub fn stats(&self) -> Arc<SortStats> {
        self.stats.clone()
    }

    /// Ends the input; `schema` is the final schema of the data (every pushed batch's columns,
    /// types widened). Checks that the sort and key columns exist, then streams the output.
    pub fn finish(self, schema: &SchemaRef) -> Result<SortedStream> {
        for name in &self.sort_by {
            column_index(schema, name, "sort")?;
        }
        let Some((plan, opts)) = self.second else {
            return self.first.finish(schema);
        };
        if let Equal::Columns(k) = &self.first.plan.equal {
            for name in k {
                column_index(schema, name, "dedup key")?;
            }
        }
        let mut fields = schema.fields().to_vec();
        fields.push(Arc::new(Field::new(SEQ_COLUMN, DataType::UInt64, false)));
        let with_seq = Arc::new(Schema::new(fields));
        let mut first = self.first.finish(&with_seq)?;
        let mut second = Stage::new(
            plan,
            opts,
            self.stats.clone(),
            self.spill.clone(),
            &self.pool,
            "sort",
        );
        let data: Vec<usize> = (0..schema.fields().len()).collect();
        while let Some(b) = first.next_batch()? {
            second.push(b.project(&data)?)?;
        }
        drop(first);
        second.finish(schema)
    }
}

fn column_index(schema: &Schema, name: &str, what: &str) -> Result<usize> {
    find(schema, name).ok_or_else(|| {
        let have: Vec<_> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        EngineError::Plan(format!(
            "{what} column {name:?} is not in the data (columns: {})",
            have.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spill::SpillConfig;
    use arrow_array::cast::AsArray;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    use proptest::prelude::*;

    type Row = (Option<i64>, Option<String>);

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]))
    }

    fn batch(rows: &[Row]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(rows.iter().map(|r| r.0).collect::<Int64Array>()),
                Arc::new(rows.iter().map(|r| r.1.clone()).collect::<StringArray>()),
            ],
        )
        .unwrap()
    }

    fn rows(b: &RecordBatch) -> Vec<Row> {
        let a = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
        let s = b.column(1).as_string::<i32>();
        (0..b.num_rows())
            .map(|i| {
                (
                    (!a.is_null(i)).then(|| a.value(i)),
                    (!s.is_null(i)).then(|| s.value(i).to_string()),
                )
            })
            .collect()
    }

    /// Test conform: by name, missing columns null, types cast.
    fn conform() -> ConformFn {
        Arc::new(|b: &RecordBatch, s: &SchemaRef| {
            let cols = s
                .fields()
                .iter()
                .map(|f| match find(&b.schema(), f.name()) {
                    None => Ok(arrow_array::new_null_array(f.data_type(), b.num_rows())),
                    Some(i) => arrow_cast::cast(b.column(i), f.data_type()),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            RecordBatch::try_new_with_options(
                s.clone(),
                cols,
                &arrow_array::RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
            )
        })
    }

    struct Outcome {
        rows: Vec<Row>,
        duplicates: u64,
        spilled_runs: u64,
        merge_passes: u64,
    }

    fn run(data: &[Row], cut: usize, mode: DedupMode, run_bytes: usize, limit: usize) -> Outcome {
        let tmp = tempfile::tempdir().unwrap();
        let pool = MemoryPool::new(limit);
        let spill = SpillManager::new(&SpillConfig::new(tmp.path())).unwrap();
        let mut opts = SortOptions::new(vec!["b".into()], mode, run_bytes);
        opts.batch_rows = 7;
        opts.spill_batch_bytes = 64;
        opts.conform = conform();
        let mut op = ExternalSort::try_new(opts, spill.clone(), &pool).unwrap();
        for piece in data.chunks(cut.max(1)) {
            op.push(batch(piece)).unwrap();
        }
        let mut stream = op.finish(&schema()).unwrap();
        let mut out = Vec::new();
        for b in stream.by_ref() {
            let b = b.unwrap();
            assert!(b.num_rows() <= 7);
            out.extend(rows(&b));
        }
        let stats = stream.stats();
        let o = Outcome {
            rows: out,
            duplicates: SortStats::get(&stats.duplicates),
            spilled_runs: SortStats::get(&stats.spilled_runs),
            merge_passes: SortStats::get(&stats.merge_passes),
        };
        drop(stream);
        assert_eq!(pool.used(), 0, "memory back to zero");
        assert_eq!(spill.used(), 0, "spill bytes back to zero");
        let left: Vec<_> = std::fs::read_dir(spill.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("owner.lock")]);
        o
    }

    fn oracle(data: &[Row], mode: &DedupMode) -> Vec<Row> {
        let mut expect: Vec<Row> = Vec::new();
        for r in data {
            let dup = match mode {
                DedupMode::Exact => expect.contains(r),
                DedupMode::Keys(_) => expect.iter().any(|e| e.0 == r.0),
                _ => false,
            };
            if !dup {
                expect.push(r.clone());
            }
        }
        expect.sort_by(|x, y| (&x.1, x.0).cmp(&(&y.1, y.0)));
        expect
    }

    /// Short strings, or long repetitive ones (which the in-memory run sort replaces by ranks,
    /// see `encode_ranked`; `ranked_strings_sort_like_plain_ones` checks that it does).
    fn data_strategy() -> impl Strategy<Value = Vec<Row>> {
        prop_oneof![
            proptest::collection::vec(
                (
                    proptest::option::of(0i64..6),
                    proptest::option::of("[ab]{0,3}"),
                ),
                0..300,
            ),
            proptest::collection::vec(
                (
                    proptest::option::of(0i64..6),
                    proptest::option::weighted(0.9, "(x{20}|y{30}|x{19}y)[ab]?"),
                ),
                0..300,
            ),
            // keys mostly distinct, with re-sent rows and rows that tie on the key only: few
            // enough ties for the in-memory sort to settle only them (`sort_lead_first`)
            (
                proptest::collection::vec(
                    (
                        proptest::option::of(0i64..6),
                        proptest::option::weighted(0.95, "[a-f]{1,8}"),
                    ),
                    0..300,
                ),
                proptest::collection::vec(
                    (any::<usize>(), proptest::option::of(0i64..6), any::<bool>()),
                    0..40
                ),
            )
                .prop_map(|(mut rows, again)| {
                    for (i, a, same) in again {
                        if !rows.is_empty() {
                            let r = rows[i % rows.len()].clone();
                            rows.push(if same { r } else { (a, r.1) });
                        }
                    }
                    rows
                }),
        ]
    }

    #[test]
    fn ranked_strings_sort_like_plain_ones() {
        let data: Vec<Row> = (0..500i64)
            .map(|i| {
                let s = [
                    "Mozilla/5.0 (X11; Linux)",
                    "Mozilla/5.0 (X11; Linux) Gecko",
                    "",
                ];
                (
                    Some(i % 7),
                    (i % 11 != 0).then(|| s[(i * 7 % 3) as usize].to_string()),
                )
            })
            .collect();
        let batches: Vec<RecordBatch> = data.chunks(64).map(batch).collect();
        assert!(worth_ranking(&batches, 1), "the test data must be ranked");
        assert!(!worth_ranking(&batches, 0), "an int column is not");
        let plan = Plan {
            lead: vec!["b".into()],
            rest: true,
            equal: Equal::All,
        };
        let enc = Encoders::new(&plan, &schema()).unwrap();
        let (plain, ranked) = (
            enc.encode(&batches).unwrap(),
            enc.encode_ranked(&batches).unwrap(),
        );
        assert!(
            ranked.order.size() < plain.order.size(),
            "ranks are shorter"
        );
        let order = |rows: &RowParts| {
            let mut idx: Vec<u32> = (0..data.len() as u32).collect();
            kernels::sort_row_indices(rows, &mut idx);
            let mut distinct = idx.clone();
            kernels::dedup_sorted(rows, &mut distinct);
            (idx, distinct)
        };
        assert_eq!(order(&ranked.order), order(&plain.order));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn matches_oracle_with_0_1_and_many_spills(data in data_strategy(), cut in 1usize..60) {
            let modes = [DedupMode::Exact, DedupMode::None, DedupMode::Keys(vec!["a".into()])];
            for mode in modes {
                let expect = oracle(&data, &mode);
                // 0 spills: everything fits
                let o = run(&data, cut, mode.clone(), usize::MAX, 1 << 30);
                prop_assert_eq!(&o.rows, &expect);
                prop_assert_eq!(o.duplicates as usize, data.len() - expect.len());
                prop_assert_eq!(o.spilled_runs, 0);
                // at least one spill: runs of about half the input
                let half = data.chunks(cut).take(data.len() / cut / 2 + 1).map(|c| batch_bytes(&batch(c))).sum::<usize>();
                let o = run(&data, cut, mode.clone(), half, 1 << 30);
                prop_assert_eq!(&o.rows, &expect);
                prop_assert_eq!(o.duplicates as usize, data.len() - expect.len());
                if data.len() > 2 * cut {
                    prop_assert!(o.spilled_runs >= 1);
                }
                // many spills, and a budget that merges only a few runs at once
                let o = run(&data, cut, mode.clone(), 1, 5 << 20);
                prop_assert_eq!(&o.rows, &expect);
                prop_assert_eq!(o.duplicates as usize, data.len() - expect.len());
                if data.len() > 8 * cut {
                    prop_assert!(o.spilled_runs > 4, "{} runs", o.spilled_runs);
                    prop_assert!(o.merge_passes > 0);
                }
            }
        }
    }

    /// A sort by `by` that spills every batch it is given (runs of 1 byte), under a fresh
    /// temporary directory, with the test `conform`.
    fn spilling_sort(
        by: &str,
        mode: DedupMode,
    ) -> (tempfile::TempDir, Arc<MemoryPool>, ExternalSort) {
        let tmp = tempfile::tempdir().unwrap();
        let pool = MemoryPool::new(1 << 30);
        let spill = SpillManager::new(&SpillConfig::new(tmp.path())).unwrap();
        let mut opts = SortOptions::new(vec![by.into()], mode, 1);
        opts.conform = conform();
        let op = ExternalSort::try_new(opts, spill, &pool).unwrap();
        (tmp, pool, op)
    }

    #[test]
    fn keys_mode_with_the_key_column_appearing_late() {
        // Runs spilled before the key column exists hold one (null) key: its first row stays.
        let (_tmp, pool, mut op) = spilling_sort("b", DedupMode::Keys(vec!["a".into()]));
        let only_b = |v: Vec<&str>| {
            let s = Arc::new(Schema::new(vec![Field::new("b", DataType::Utf8, true)]));
            RecordBatch::try_new(s, vec![Arc::new(StringArray::from(v))]).unwrap()
        };
        op.push(only_b(vec!["z", "y"])).unwrap();
        op.push(only_b(vec!["x"])).unwrap();
        let both = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("b", DataType::Utf8, true),
                Field::new("a", DataType::Int64, true),
            ])),
            vec![
                Arc::new(StringArray::from(vec!["w", "v", "u"])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(1)])),
            ],
        )
        .unwrap();
        let fin = both.schema();
        op.push(both).unwrap();
        let mut stream = op.finish(&fin).unwrap();
        let mut got = Vec::new();
        for b in stream.by_ref() {
            let b = b.unwrap();
            let s = b.column(0).as_string::<i32>();
            got.extend((0..b.num_rows()).map(|i| s.value(i).to_string()));
        }
        // null key: "z" (first line) wins over "y", "x", "v"; key 1: "w" wins over "u"
        assert_eq!(got, ["w", "z"]);
        assert_eq!(SortStats::get(&stream.stats().duplicates), 4);
        assert!(SortStats::get(&stream.stats().spilled_runs) >= 2);
        drop(stream);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn runs_written_before_a_type_widened_are_resorted() {
        // `a` is an int in the first batches and a string later: 10 < 9 as strings.
        let (_tmp, pool, mut op) = spilling_sort("a", DedupMode::Exact);
        let ints = |v: Vec<i64>| {
            let s = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
            RecordBatch::try_new(s, vec![Arc::new(Int64Array::from(v))]).unwrap()
        };
        let strs = |v: Vec<&str>| {
            let s = Arc::new(Schema::new(vec![
                Field::new("a", DataType::Utf8, true),
                Field::new("c", DataType::Utf8, true),
            ]));
            let n = v.len();
            RecordBatch::try_new(
                s,
                vec![
                    Arc::new(StringArray::from(v)),
                    Arc::new(StringArray::from(vec![Some("x"); n])),
                ],
            )
            .unwrap()
        };
        op.push(ints(vec![9, 10, 100, 9])).unwrap();
        op.push(ints(vec![2, 20])).unwrap();
        op.push(strs(vec!["10", "1a"])).unwrap();
        let fin = strs(vec![]).schema();
        let mut stream = op.finish(&fin).unwrap();
        let mut got = Vec::new();
        for b in stream.by_ref() {
            let b = b.unwrap();
            let a = b.column(0).as_string::<i32>();
            let c = b.column(1).as_string::<i32>();
            for i in 0..b.num_rows() {
                got.push(format!(
                    "{}{}",
                    a.value(i),
                    if c.is_null(i) { "" } else { "+" }
                ));
            }
        }
        assert_eq!(got, ["10", "10+", "100", "1a+", "2", "20", "9"]);
        assert_eq!(SortStats::get(&stream.stats().duplicates), 1);
        assert!(SortStats::get(&stream.stats().spilled_runs) >= 3);
        drop(stream);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn budget_too_small_is_an_error_and_releases() {
        let tmp = tempfile::tempdir().unwrap();
        let pool = MemoryPool::new(64);
        let spill = SpillManager::new(&SpillConfig::new(tmp.path())).unwrap();
        let opts = SortOptions::new(vec![], DedupMode::Exact, usize::MAX);
        let mut op = ExternalSort::try_new(opts, spill, &pool).unwrap();
        let b = batch(&vec![(Some(1), Some("x".into())); 100]);
        assert!(matches!(
            op.push(b),
            Err(EngineError::ResourcesExhausted { .. })
        ));
        drop(op);
        assert_eq!(pool.used(), 0);
    }

    #[test]
    fn unknown_columns_are_plan_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let pool = MemoryPool::new(1 << 20);
        let spill = SpillManager::new(&SpillConfig::new(tmp.path())).unwrap();
        let op = ExternalSort::try_new(
            SortOptions::new(vec!["zz".into()], DedupMode::Exact, 1 << 20),
            spill.clone(),
            &pool,
        )
        .unwrap();
        assert!(matches!(op.finish(&schema()), Err(EngineError::Plan(_))));
        assert!(matches!(
            ExternalSort::try_new(
                SortOptions::new(vec![], DedupMode::Keys(vec![]), 1 << 20),
                spill.clone(),
                &pool
            ),
            Err(EngineError::Plan(_))
        ));
        let op = ExternalSort::try_new(
            SortOptions::new(vec![], DedupMode::Keys(vec!["zz".into()]), 1 << 20),
            spill,
            &pool,
        )
        .unwrap();
        assert!(matches!(op.finish(&schema()), Err(EngineError::Plan(_))));
    }
}
