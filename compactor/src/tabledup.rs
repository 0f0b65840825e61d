//! Dedup across runs (`[dedup] scope = "table"` or `"partition"`).
//!
//! # Why
//! At-least-once delivery re-sends lines, and a re-sent line often arrives in a later file,
//! read by a later run. Within a run the sort drops duplicates; across runs, a row must be
//! compared with what the table already holds, without reading the whole table every hour.
//!
//! # Algorithm
//! 1. While parsing, [`RangeTracker`] keeps the run's minimum and maximum of every timestamp
//!    and integer column, and the partitions it writes to.
//! 2. After the sort, the candidate segments are those whose Delta statistics (`minValues` /
//!    `maxValues`, written with every segment) overlap the run's range on one *pruning column*
//!    (a dedup column with a value in every row of the run, since a row with a null there could
//!    equal a table row outside any range: the first sort key column if it is one, else a
//!    timestamp column, else any; for `exact` every column is a dedup column, as equal rows
//!    are equal in every column), and for `partition` scope (or `exact`, whose equal rows share
//!    a timestamp, hence a partition) in a partition the run writes to; without such a column
//!    every segment is a candidate. The kernel's data
//!    skipping does this from the log alone: no segment outside the range is opened.
//! 3. The candidates' rows (the dedup columns only) are read, brought back to the parsed types
//!    and hashed (xxh3-128 of their row encoding) into a set, reserved against the memory budget
//!    at [`SET_BYTES_PER_ROW`] a row.
//! 4. The sorted stream is filtered: a row whose hash is in the set (of its partition, for
//!    `partition` scope) is dropped and counted as a duplicate.
//!
//! ```text
//!  parse ─▶ RangeTracker (min/max, partitions)
//!  sort ─▶ sorted rows ─▶ [hash ∈ set? drop] ─▶ segments
//!                                ▲
//!  log stats ─▶ candidate segments ─▶ read dedup columns ─▶ hash set
//! ```
//! Equal hashes are taken as equal rows: with 128-bit hashes a false match needs about 2^64
//! rows. A concurrent run that commits first may hold the same re-sent line: such a commit makes
//! this one a conflict (nothing committed, run again), see `run.rs`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, BooleanArray, RecordBatch};
use arrow_row::{RowConverter, SortField};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};
use compactor_engine::{MemoryPool, MemoryReservation};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use crate::job::{DedupConfig, DedupModeName, DedupScope};
use crate::table::{LiveSegment, Table};

/// Bytes reserved per row in the set of the table's rows (hash, table slot and slack).
pub const SET_BYTES_PER_ROW: usize = 40;

/// The run's value ranges and partitions, seen as batches are parsed.
#[derive(Debug, Default)]
pub struct RangeTracker {
    /// Column → (min, max) of its non-null values (microseconds for timestamps), whether it
    /// is a timestamp, and how many rows had a value.
    pub ranges: HashMap<String, (i64, i64, bool, u64)>,
    /// Rows observed.
    pub rows: u64,
    /// The partition values written to (`None`: the null partition).
    pub partitions: BTreeSet<Option<String>>,
}

impl RangeTracker {
    /// Observes a conformed batch (before its partition column is appended).
    pub fn observe(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        for (f, col) in batch.schema().fields().iter().zip(batch.columns()) {
            let (lo, hi, ts) = match f.data_type() {
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    let a = col.as_primitive::<TimestampMicrosecondType>();
                    match (
                        arrow_arith::aggregate::min(a),
                        arrow_arith::aggregate::max(a),
                    ) {
                        (Some(lo), Some(hi)) => (lo, hi, true),
                        _ => continue,
                    }
                }
                DataType::Int64 => {
                    let a = col.as_primitive::<Int64Type>();
                    match (
                        arrow_arith::aggregate::min(a),
                        arrow_arith::aggregate::max(a),
                    ) {
                        (Some(lo), Some(hi)) => (lo, hi, false),
                        _ => continue,
                    }
                }
                _ => continue,
            };
            let e = self
                .ranges
                .entry(f.name().clone())
                .or_insert((lo, hi, ts, 0));
            e.0 = e.0.min(lo);
            e.1 = e.1.max(hi);
            e.3 += (col.len() - col.null_count()) as u64;
        }
    }

    /// Observes the partition column of a batch.
    pub fn observe_partitions(&mut self, values: &dyn Array) {
        let s = values.as_string::<i32>();
        for i in 0..s.len() {
            let v = (!s.is_null(i)).then(|| s.value(i).to_string());
            if !self.partitions.contains(&v) {
                self.partitions.insert(v);
            }
        }
    }
}

/// The table's rows that a run's rows must not repeat, as hashes.
pub struct TableRows {
    /// The dedup columns (indices into the run's data schema).
    columns: Vec<usize>,
    converter: RowConverter,
    /// Per partition (`None` key for table scope or the null partition).
    sets: HashMap<Option<String>, HashSet<u128>>,
    per_partition: bool,
    _held: MemoryReservation,
    /// Segments read.
    pub segments_read: u64,
    /// Segments in the snapshot.
    pub segments_total: u64,
    /// Rows hashed.
    pub rows: u64,
}

/// Reads the candidate segments of `table` for a run whose rows have `schema` (data columns,
/// the parsed types) and are sorted by `sort_key`; `None` when the scope is the run or the table
/// has no segments.
#[allow(clippy::too_many_arguments)]
pub fn load(
    table: &Table,
    dedup: &DedupConfig,
    schema: &SchemaRef,
    sort_key: &[String],
    partition_column: Option<&str>,
    tracker: &RangeTracker,
    memory: &Arc<MemoryPool>,
) -> Result<Option<TableRows>> {
    if dedup.scope == DedupScope::Run || dedup.mode == DedupModeName::None {
        return Ok(None);
    }
    let find = |n: &str| {
        schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(n))
    };
    let columns: Vec<usize> = match dedup.mode {
        DedupModeName::Keys => dedup.keys.iter().filter_map(|k| find(k)).collect(),
        _ => (0..schema.fields().len()).collect(),
    };
    // the pruning column: a dedup column with a value in every row of the run (a row with a
    // null there could equal a table row outside any range), the sort key's first if it is one
    let tracked = |i: &usize| {
        tracker
            .ranges
            .get(schema.field(*i).name())
            .is_some_and(|r| r.3 == tracker.rows)
    };
    let prune = sort_key
        .iter()
        .filter_map(|k| find(k))
        .find(|i| columns.contains(i) && tracked(i))
        .or_else(|| {
            columns.iter().copied().find(|i| {
                tracked(i) && matches!(schema.field(*i).data_type(), DataType::Timestamp(..))
            })
        })
        .or_else(|| columns.iter().copied().find(tracked));
    let predicate = prune.map(|i| {
        let name = schema.field(i).name();
        let (lo, hi, ts, _) = tracker.ranges[name];
        let (lo, hi) = if ts {
            (
                delta_kernel::expressions::Scalar::Timestamp(lo),
                delta_kernel::expressions::Scalar::Timestamp(hi),
            )
        } else {
            (
                delta_kernel::expressions::Scalar::Long(lo),
                delta_kernel::expressions::Scalar::Long(hi),
            )
        };
        let col = delta_kernel::expressions::Expression::column([name.as_str()]);
        Arc::new(delta_kernel::expressions::Predicate::and(
            col.clone().ge(lo),
            col.le(hi),
        ))
    });
    let all = table.live_segments()?;
    if all.is_empty() {
        return Ok(None);
    }
    let per_partition = dedup.scope == DedupScope::Partition && partition_column.is_some();
    let mut candidates: Vec<LiveSegment> = table.live_segments_where(predicate)?;
    if let Some(p) = partition_column {
        // Only partitions this run writes to can hold its duplicates when the scope is the
        // partition; with `exact` dedup an equal row has an equal timestamp, hence partition.
        if per_partition || dedup.mode == DedupModeName::Exact {
            candidates.retain(|s| {
                let v = s
                    .partition_values
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(p))
                    .map(|(_, v)| v.clone());
                tracker.partitions.contains(&v)
            });
        }
    }
    let fields: Vec<SortField> = columns
        .iter()
        .map(|&i| SortField::new(schema.field(i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let projected = Arc::new(Schema::new(
        columns
            .iter()
            .map(|&i| schema.field(i).clone())
            .collect::<Vec<_>>(),
    ));
    let mut out = TableRows {
        columns: columns.clone(),
        converter,
        sets: HashMap::new(),
        per_partition,
        _held: memory.reservation("table dedup set"),
        segments_read: candidates.len() as u64,
        segments_total: all.len() as u64,
        rows: 0,
    };
    for seg in &candidates {
        let path = table.file_path(&seg.path);
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("reading {}", path.display()))?;
        let descr = builder.parquet_schema();
        let wanted: Vec<usize> = (0..descr.num_columns())
            .filter(|&c| {
                projected
                    .fields()
                    .iter()
                    .any(|f| f.name().eq_ignore_ascii_case(descr.column(c).name()))
            })
            .collect();
        let mask = ProjectionMask::roots(descr, wanted);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(crate::compact::READ_BATCH_ROWS)
            .build()?;
        let key = if per_partition {
            partition_column.and_then(|p| {
                seg.partition_values
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(p))
                    .map(|(_, v)| v.clone())
            })
        } else {
            None
        };
        for batch in reader {
            let batch = batch.with_context(|| format!("reading {}", path.display()))?;
            let b = crate::compact::to_parsed_types(&batch, &projected)?;
            out._held.try_grow(b.num_rows() * SET_BYTES_PER_ROW)?;
            let rows = out.converter.convert_columns(b.columns())?;
            let set = out.sets.entry(key.clone()).or_default();
            for r in rows.iter() {
                set.insert(xxhash_rust::xxh3::xxh3_128(r.as_ref()));
            }
            out.rows += b.num_rows() as u64;
        }
    }
    tracing::info!(
        "dedup against the table: read {} of {} segments ({} rows)",
        out.segments_read,
        out.segments_total,
        out.rows
    );
    Ok(Some(out))
}

impl TableRows {
    /// Drops the rows of a sorted batch (data columns, then the partition column if the table
    /// is partitioned) that the table already holds. Returns the batch and how many it dropped.
    pub fn filter(&self, batch: RecordBatch) -> Result<(RecordBatch, u64)> {
        if self.sets.is_empty() || batch.num_rows() == 0 {
            return Ok((batch, 0));
        }
        let cols: Vec<_> = self
            .columns
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        let rows = self.converter.convert_columns(&cols)?;
        let part = self.per_partition.then(|| {
            batch
                .column(batch.num_columns() - 1)
                .as_string::<i32>()
                .clone()
        });
        let mut keep = Vec::with_capacity(batch.num_rows());
        let mut dropped = 0u64;
        for (i, r) in rows.iter().enumerate() {
            let key = part
                .as_ref()
                .and_then(|p| (!p.is_null(i)).then(|| p.value(i).to_string()));
            let hit = self
                .sets
                .get(&key)
                .is_some_and(|s| s.contains(&xxhash_rust::xxh3::xxh3_128(r.as_ref())));
            keep.push(!hit);
            dropped += u64::from(hit);
        }
        if dropped == 0 {
            return Ok((batch, 0));
        }
        let b = arrow_select::filter::filter_record_batch(&batch, &BooleanArray::from(keep))?;
        Ok((b, dropped))
    }
}
