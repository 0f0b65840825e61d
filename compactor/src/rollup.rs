//! Rollups: summary tables of mergeable aggregates, written in the same pass as the detailed
//! table and kept correct as later runs and compactions merge more data in.
//!
//! # Why
//! Most questions asked of logs are counts, sums, distinct users and latency percentiles per
//! time bucket and a few dimensions. A `[[rollup]]` answers them from a table thousands of
//! times smaller than the detailed one. Its rows are aggregation *states*: counts and sums add,
//! minima and maxima combine, and distinct counts and quantiles are Apache DataSketches
//! sketches (HLL, t-digest) that union; so two rows of one group merge into exactly what
//! aggregating their raw rows together gives (within the sketch's bound for the sketches). The
//! layout of a row is that of [`compactor_engine::aggregate::state_schema`], with the bucket
//! start in the time column and a `dt` (UTC day of the bucket) partition column.
//!
//! # Algorithm
//! 1. During a run, every row that goes into the detailed table (after the run's dedup and the
//!    table's, so a re-delivered line is never counted) is also pushed, time column truncated
//!    to its bucket, into one [`HashAggregate`] per rollup (memory reserved from the run's
//!    budget; it spills hash partitions when full).
//! 2. Before the detailed commit, each rollup's state rows are *staged*: written to
//!    `<table>/_compactor/rollups/<run id>/<name>.parquet` with a manifest naming the run's
//!    segments and the rollup definitions, fsynced; the directory's `lock` is held while the
//!    run lives.
//! 3. The detailed commit is the point of no return. After it, each staged rollup is
//!    *applied* to its own Delta table under that table's `_compactor/rollup.lock`:
//!    `merge = "rewrite"` reads the live segments of the day partitions the new rows touch,
//!    merges them with the new states and replaces them (remove + add in one commit);
//!    `"append"` adds the new states as segments (`compactor compact` merges them later). The
//!    commit records the run id in the rollup table's domain metadata [`ROLLUP_DOMAIN`], and
//!    the staged directory is deleted.
//! 4. A run that dies between 2 and 3 leaves its staged directory unlocked. The next run (of
//!    any job on the table) finds it: if the detailed commit landed (its first segment is in
//!    the log) and the rollup table does not list the run id, the states are applied; else
//!    they are dropped. So each run is counted exactly once in each rollup.
//!
//! ```text
//!  sorted, deduplicated rows ─┬─▶ detailed segments ───────────────┐
//!                             └─▶ bucket ─▶ HashAggregate ─▶ staged │ fsync
//!                                                                  ▼
//!                                               detailed commit (atomic)
//!                                                                  │
//!   rollup table: lock ─▶ read touched partitions ─▶ merge states ─▶ remove + add + run id
//! ```
//! `compactor compact` on a rollup table merges the segments of each partition the same way
//! ([`compact_rollup`]): sketches union, counts add.
//!
//! # Rollup-only runs
//! With `[output] detailed = false` a run writes no detailed rows, so it reads and keeps only
//! what its rollups need: the parse is projected onto [`input_columns`] (JSON skips the other
//! fields' values, still checking that the line is JSON). Without dedup the parsed chunks go
//! straight into the aggregations, in input order (no sort at all); with dedup they are sorted
//! and deduplicated first, as for a detailed run (`mode = "keys"` parses the keys too, `exact`
//! parses whole rows). The table at `[output] path` still commits, with no files: its commit
//! carries the ledger of consumed inputs and the run id ([`crate::table::RUN_ID_METRIC`]), and
//! is the point of no return of step 3; recovery (step 4) looks for the run id in its log
//! instead of a first segment.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use compactor_engine::aggregate::{
    AggFunc, AggSpec, AggregateOptions, HashAggregate, DEFAULT_HLL_LG_K, DEFAULT_QUANTILES,
};
use compactor_engine::{MemoryPool, SpillManager};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::{ArrowWriter, ProjectionMask};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::job::Granularity;
use crate::pending::{self, PendingMarker};
use crate::run::{failpoint, JobError};
use crate::segment::{self, SegmentWriter};
use crate::table::{LiveSegment, Table, WrittenSegment};

/// The rollup table's domain-metadata entry: its definition and the runs applied to it.
pub const ROLLUP_DOMAIN: &str = "compactor.rollup";
/// Where a run stages its rollup states, under the detailed table.
pub const STAGED_DIR: &str = "_compactor/rollups";
/// Name of a rollup table's partition column (UTC day of the bucket start).
pub const PARTITION_COLUMN: &str = "dt";
/// How long a writer waits for a rollup table's `_compactor/rollup.lock` before it gives up
/// (exit 5): a stuck holder must not block every run for ever. What the writer could not apply
/// stays staged, and the next run applies it. `COMPACTOR_ROLLUP_LOCK_WAIT_MS` overrides it
/// (tests).
pub const DEFAULT_ROLLUP_LOCK_WAIT: Duration = Duration::from_secs(600);
/// Default bound on the normalized rank error of quantiles.
pub const DEFAULT_ACCURACY: f64 = 0.01;
/// Rows per row group of rollup segments (at most: see [`MAX_ROLLUP_ROW_GROUP_BYTES`]).
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Bytes at which a rollup segment's row group ends early (a quarter of the memory pool when
/// that is less, 64 KiB at least): the writer holds the open row group's pages, reserved, and
/// a day's sketches can be far bigger than the pool.
pub const MAX_ROLLUP_ROW_GROUP_BYTES: usize = 32 << 20;
/// Default zstd level of rollup segments (they are small; sketches compress little).
pub const DEFAULT_ROLLUP_ZSTD_LEVEL: i32 = 9;
/// Bytes (uncompressed, on average) per batch when state rows are read back: a run's staged
/// states, or a rollup segment being merged. A state row holds its sketches, from a few
/// bytes to 1 MiB (an HLL at precision 21), so the rows per batch are this over the widest
/// row group's average bytes per row (from the file's metadata), between 1 and
/// [`STATE_BATCH_MAX_ROWS`]. An average: rows much bigger than their row group's can make a
/// batch bigger (never more than a row group).
pub const STATE_BATCH_BYTES: usize = 8 << 20;
/// Encoded bytes at which a run's staged file ends a row group (the Parquet writer holds the
/// open row group's pages in memory until then).
pub const STAGED_ROW_GROUP_BYTES: usize = 32 << 20;
/// Most rows per batch when state rows are read back (see [`STATE_BATCH_BYTES`]).
pub const STATE_BATCH_MAX_ROWS: usize = 64 * 1024;

/// `[[rollup]]`: one summary table.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RollupConfig {
    /// Name (letters, digits, `_`, `-`); also names the default table directory.
    pub name: String,
    /// The rollup table's directory; default `<output.path>_<name>` beside the detailed table.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// The timestamp column bucketed; the rollup's bucket column keeps its name.
    pub time: String,
    /// `minute`, `hour`, `day`, or a duration: `30s`, `5m`, `15min`, `2h`, `1d`.
    pub bucket: String,
    /// Group-by columns besides the bucket.
    #[serde(default)]
    pub dimensions: Vec<String>,
    /// The aggregates, in column order.
    pub aggregates: Vec<AggregateConfig>,
    /// How a run's groups reach the table.
    #[serde(default)]
    pub merge: MergeMode,
}

/// One aggregate of a `[[rollup]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AggregateConfig {
    /// Output column (state columns get suffixes: see the layout in README.md).
    pub name: String,
    /// `count`, `sum`, `min`, `max`, `mean`, `count_distinct`, `quantiles`.
    #[serde(rename = "fn")]
    pub func: FuncName,
    /// Input column (optional for `count`: rows).
    #[serde(default)]
    pub column: Option<String>,
    /// `count_distinct`: HLL precision `lg_k`, 4..=21 (default
    /// [`DEFAULT_HLL_LG_K`]: 2^14 registers, about 0.8% standard error).
    #[serde(default)]
    pub precision: Option<u8>,
    /// `quantiles`: which (default 0.5, 0.95, 0.99).
    #[serde(default)]
    pub quantiles: Option<Vec<f64>>,
    /// `quantiles`: bound on the normalized rank error (default [`DEFAULT_ACCURACY`]); sets
    /// the t-digest's compression `k = ceil(2 / accuracy)`.
    #[serde(default)]
    pub accuracy: Option<f64>,
}

/// Aggregate function names.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FuncName {
    /// Rows, or non-null values of `column`.
    Count,
    /// Sum.
    Sum,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Mean (stored as sum and count).
    Mean,
    /// Distinct values (HLL sketch).
    CountDistinct,
    /// Quantiles (t-digest).
    Quantiles,
}

/// `merge`: how a run's groups reach the rollup table.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum MergeMode {
    /// Merge into the existing rows, rewriting only the day partitions touched: one row per
    /// group.
    #[default]
    Rewrite,
    /// Append the run's state rows; `compactor compact` merges them.
    Append,
}

/// What a run did to one rollup.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RollupReport {
    /// The rollup's name.
    pub name: String,
    /// Its table directory.
    pub path: String,
    /// The run whose rows these are.
    pub run_id: String,
    /// Whether a commit was made.
    pub committed: bool,
    /// The rollup table's version after it.
    pub version: Option<u64>,
    /// Groups (state rows) the run contributed.
    pub groups: u64,
    /// Raw rows aggregated (the run's rows out).
    pub rows: u64,
    /// Day partitions rewritten (`rewrite`) or appended to (`append`).
    pub partitions_rewritten: u64,
    /// Rows of the rollup table read back to merge.
    pub rows_merged: u64,
    /// Why nothing was committed, when nothing was.
    pub note: Option<String>,
    /// Seconds.
    pub seconds: f64,
}

/// The rollup table's default directory: `<output>_<name>`, beside the detailed table.
pub fn default_path(output: &Path, name: &str) -> PathBuf {
    let base = output
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table".into());
    output.with_file_name(format!("{base}_{name}"))
}

/// The bucket width in microseconds.
pub fn parse_bucket(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let micros = match t.as_str() {
        "minute" => 60_000_000,
        "hour" => 3_600_000_000,
        "day" => 86_400_000_000,
        _ => {
            let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
            let (n, unit) = t.split_at(digits);
            let n: i64 = n.parse().map_err(|_| {
                anyhow::anyhow!(
                    "bucket {s:?}: expected minute, hour, day or a duration such as 5m, 1h, 1d"
                )
            })?;
            let unit_micros: i64 = match unit.trim() {
                "s" | "sec" | "second" | "seconds" => 1_000_000,
                "m" | "min" | "minute" | "minutes" => 60_000_000,
                "h" | "hour" | "hours" => 3_600_000_000,
                "d" | "day" | "days" => 86_400_000_000,
                other => bail!("bucket {s:?}: unknown unit {other:?} (s, m, min, h, d)"),
            };
            n.checked_mul(unit_micros)
                .filter(|m| *m > 0)
                .ok_or_else(|| anyhow::anyhow!("bucket {s:?} must be positive"))?
        }
    };
    if micros > 366 * 86_400_000_000 {
        bail!("bucket {s:?} is longer than a year");
    }
    Ok(micros)
}

/// The t-digest compression for a rank-error bound.
pub fn tdigest_k(accuracy: f64) -> u16 {
    (2.0 / accuracy).ceil().clamp(10.0, 65_535.0) as u16
}

/// Checks the `[[rollup]]` tables of a job.
pub fn validate(rollups: &[RollupConfig]) -> Result<()> {
    let mut names = BTreeSet::new();
    for r in rollups {
        let at = format!("[[rollup]] {:?}", r.name);
        if r.name.is_empty()
            || !r
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("{at}: name must be letters, digits, '_' or '-'");
        }
        if !names.insert(r.name.to_ascii_lowercase()) {
            bail!("{at}: two rollups have this name");
        }
        parse_bucket(&r.bucket).with_context(|| at.clone())?;
        if r.aggregates.is_empty() {
            bail!("{at}: aggregates is empty");
        }
        if std::iter::once(&r.time)
            .chain(&r.dimensions)
            .chain(r.aggregates.iter().map(|a| &a.name))
            .any(|n| n.eq_ignore_ascii_case(PARTITION_COLUMN))
        {
            bail!("{at}: {PARTITION_COLUMN:?} is the rollup table's partition column; rename the column or the aggregate");
        }
        let mut seen = BTreeSet::from([r.time.to_ascii_lowercase()]);
        for d in &r.dimensions {
            if !seen.insert(d.to_ascii_lowercase()) {
                bail!("{at}: {d:?} is named twice among time and dimensions");
            }
        }
        let mut out = BTreeSet::new();
        for a in &r.aggregates {
            let at = format!("{at} aggregate {:?}", a.name);
            if a.name.is_empty() || !out.insert(a.name.to_ascii_lowercase()) {
                bail!("{at}: an aggregate name must be non-empty and unique");
            }
            if a.column.is_none() && a.func != FuncName::Count {
                bail!("{at}: {:?} needs a column", a.func);
            }
            if a.precision.is_some() && a.func != FuncName::CountDistinct {
                bail!("{at}: precision is for count_distinct");
            }
            if let Some(p) = a.precision.filter(|p| !(4..=21).contains(p)) {
                bail!("{at}: precision must be 4..=21, got {p}");
            }
            if (a.quantiles.is_some() || a.accuracy.is_some()) && a.func != FuncName::Quantiles {
                bail!("{at}: quantiles and accuracy are for fn = \"quantiles\"");
            }
            if let Some(q) = &a.quantiles {
                if q.is_empty() || q.iter().any(|q| !(0.0..=1.0).contains(q)) {
                    bail!("{at}: quantiles must be a non-empty list of numbers in [0, 1]");
                }
            }
            if let Some(e) = a.accuracy.filter(|e| !(*e > 0.0 && *e <= 0.2)) {
                bail!("{at}: accuracy must be in (0, 0.2], got {e}");
            }
        }
    }
    Ok(())
}

/// A rollup resolved against a schema: the aggregation plan.
#[derive(Debug, Clone)]
struct Plan {
    cfg: RollupConfig,
    /// The time column's name as in the data.
    time: String,
    bucket: i64,
    opts: AggregateOptions,
}

fn find<'a>(schema: &'a Schema, name: &str, what: &str, rollup: &str) -> Result<&'a Field> {
    schema
        .fields()
        .iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
        .map(|f| f.as_ref())
        .ok_or_else(|| {
            anyhow::Error::new(JobError(format!(
                "[[rollup]] {rollup:?}: {what} {name:?} is not a column of the data"
            )))
        })
}

fn func(a: &AggregateConfig) -> AggFunc {
    match a.func {
        FuncName::Count => AggFunc::Count,
        FuncName::Sum => AggFunc::Sum,
        FuncName::Min => AggFunc::Min,
        FuncName::Max => AggFunc::Max,
        FuncName::Mean => AggFunc::Mean,
        FuncName::CountDistinct => AggFunc::CountDistinct {
            lg_k: a.precision.unwrap_or(DEFAULT_HLL_LG_K),
        },
        FuncName::Quantiles => AggFunc::Quantiles {
            k: tdigest_k(a.accuracy.unwrap_or(DEFAULT_ACCURACY)),
            quantiles: a
                .quantiles
                .clone()
                .unwrap_or_else(|| DEFAULT_QUANTILES.to_vec()),
        },
    }
}

impl Plan {
    /// Resolves `cfg`'s columns in the raw rows' schema.
    fn for_rows(cfg: &RollupConfig, schema: &Schema) -> Result<Plan> {
        let time = find(schema, &cfg.time, "time column", &cfg.name)?;
        if !matches!(time.data_type(), DataType::Timestamp(..)) {
            bail!(JobError(format!(
                "[[rollup]] {:?}: time column {:?} is {}, not a timestamp",
                cfg.name,
                cfg.time,
                time.data_type()
            )));
        }
        let mut keys = vec![time.name().clone()];
        for d in &cfg.dimensions {
            keys.push(find(schema, d, "dimension", &cfg.name)?.name().clone());
        }
        let mut aggs = Vec::new();
        for a in &cfg.aggregates {
            let column = match &a.column {
                Some(c) => Some(find(schema, c, "column", &cfg.name)?.name().clone()),
                None => None,
            };
            aggs.push(AggSpec {
                name: a.name.clone(),
                func: func(a),
                column,
            });
        }
        Ok(Plan {
            time: time.name().clone(),
            bucket: parse_bucket(&cfg.bucket)?,
            opts: AggregateOptions::new(keys, aggs),
            cfg: cfg.clone(),
        })
    }

    /// The plan that merges state rows of `state` (a rollup table's rows): the aggregates read
    /// synthetic input columns typed as their state columns need.
    fn for_states(cfg: &RollupConfig, state: &Schema) -> Result<(Plan, SchemaRef)> {
        let nkeys = 1 + cfg.dimensions.len();
        if state.fields().len() < nkeys {
            bail!("rollup {:?}: its rows lack the key columns", cfg.name);
        }
        let mut fields: Vec<Field> = state.fields()[..nkeys]
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let keys = fields.iter().map(|f| f.name().clone()).collect::<Vec<_>>();
        let mut aggs = Vec::new();
        for (i, a) in cfg.aggregates.iter().enumerate() {
            let col = |n: &str| {
                state
                    .fields()
                    .iter()
                    .find(|f| f.name() == n)
                    .map(|f| f.data_type().clone())
                    .with_context(|| format!("rollup {:?}: no column {n:?}", cfg.name))
            };
            let t = match a.func {
                FuncName::Sum | FuncName::Min | FuncName::Max => col(&a.name)?,
                FuncName::Count | FuncName::CountDistinct => DataType::Utf8,
                FuncName::Mean | FuncName::Quantiles => DataType::Float64,
            };
            let input = format!("__rollup_input_{i}");
            fields.push(Field::new(&input, t, true));
            aggs.push(AggSpec {
                name: a.name.clone(),
                func: func(a),
                column: Some(input),
            });
        }
        let plan = Plan {
            time: keys[0].clone(),
            bucket: parse_bucket(&cfg.bucket)?,
            opts: AggregateOptions::new(keys, aggs),
            cfg: cfg.clone(),
        };
        Ok((plan, Arc::new(Schema::new(fields))))
    }
}

/// The definition a rollup table records: what its rows mean (the path left out, since a
/// table may move, and `merge`, which only says how rows arrive).
fn definition(cfg: &RollupConfig) -> RollupConfig {
    RollupConfig {
        path: None,
        merge: MergeMode::default(),
        ..cfg.clone()
    }
}

/// [`ROLLUP_DOMAIN`]'s configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Domain {
    v: u32,
    definition: RollupConfig,
    /// Runs applied whose staged directories may still exist.
    applied: Vec<String>,
}

/// The time column bucketed: `floor(ts / bucket) * bucket`, in the column's unit.
fn bucketed(ts: &ArrayRef, bucket_micros: i64) -> Result<ArrayRef> {
    let DataType::Timestamp(unit, _) = ts.data_type() else {
        bail!("internal error: the rollup time column is not a timestamp");
    };
    let width = match unit {
        TimeUnit::Second => (bucket_micros / 1_000_000).max(1),
        TimeUnit::Millisecond => (bucket_micros / 1_000).max(1),
        TimeUnit::Microsecond => bucket_micros,
        TimeUnit::Nanosecond => bucket_micros.saturating_mul(1_000),
    };
    let raw = arrow_cast::cast(ts, &DataType::Int64)?;
    let floored: arrow_array::Int64Array = raw
        .as_primitive::<arrow_array::types::Int64Type>()
        .unary(|v| v.div_euclid(width) * width);
    Ok(arrow_cast::cast(&floored, ts.data_type())?)
}

/// The partition value (UTC day) of each bucket.
fn day_of(ts: &ArrayRef) -> Result<ArrayRef> {
    let micros = arrow_cast::cast(ts, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    Ok(crate::run::partition_values(&micros, Granularity::Day))
}

/// The columns the rollups read: time columns, dimensions and aggregated columns, each once,
/// in order of first use.
pub fn input_columns(rollups: &[RollupConfig]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rollups {
        let cols = std::iter::once(&r.time)
            .chain(&r.dimensions)
            .chain(r.aggregates.iter().filter_map(|a| a.column.as_ref()));
        for c in cols {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(c)) {
                out.push(c.clone());
            }
        }
    }
    out
}

/// The aggregations of a rollup-only run without dedup, which pushes each parsed chunk as it
/// comes: their input schema is fixed when the first chunk with rows comes, by `working` (the
/// table's columns and that chunk's: the table's spelling of a name wins). A column it lacks
/// or holds only nulls in is a string, the time columns a timestamp.
pub(crate) fn start_streamed(
    rollups: &[RollupConfig],
    working: &Schema,
    spill: &Arc<SpillManager>,
    memory: &Arc<MemoryPool>,
) -> Result<(SchemaRef, RunRollups)> {
    let fields: Vec<Field> = input_columns(rollups)
        .into_iter()
        .map(|c| {
            let found = working
                .fields()
                .iter()
                .find(|f| f.name().eq_ignore_ascii_case(&c))
                .map(|f| (f.name().clone(), f.data_type().clone()));
            let time = rollups.iter().any(|r| r.time.eq_ignore_ascii_case(&c));
            let (name, t) = match found {
                Some((n, t)) if t != DataType::Null => (n, t),
                Some((n, _)) => (n, DataType::Utf8),
                None => (c, DataType::Utf8),
            };
            let t = if time && t == DataType::Utf8 {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            } else {
                t
            };
            Field::new(name, t, true)
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let r = RunRollups::new(rollups, &schema, spill, memory)?
        .context("internal error: a rollup-only job without rollups")?;
    Ok((schema, r))
}

/// `batch` brought to the schema of [`start_streamed`]: columns matched case-insensitively,
/// missing or all-null ones filled with nulls, ints widened to floats where the first chunk had
/// floats. Any other type change fails the run (nothing is committed): a cast would turn the
/// values it cannot convert into nulls, silently.
pub(crate) fn conform_streamed(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| -> Result<ArrayRef> {
            let Some((_, found)) = batch
                .schema()
                .fields()
                .iter()
                .enumerate()
                .find(|(_, g)| g.name().eq_ignore_ascii_case(f.name()))
                .map(|(i, g)| (g.clone(), batch.column(i).clone()))
            else {
                return Ok(arrow_array::new_null_array(f.data_type(), batch.num_rows()));
            };
            match (found.data_type(), f.data_type()) {
                (a, b) if a == b => Ok(found),
                (DataType::Null, t) => Ok(arrow_array::new_null_array(t, batch.num_rows())),
                (DataType::Int64, DataType::Float64) => {
                    Ok(arrow_cast::cast(&found, f.data_type())?)
                }
                (a, b) => Err(anyhow::Error::new(JobError(format!(
                    "column {:?} is {a} in a later chunk but {b} in the first one; a rollup-only run types its columns from its first chunk: pin the type in [schema] (nothing was committed)",
                    f.name()
                )))),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// A run's rollup aggregations (step 1 of the module docs).
pub struct RunRollups {
    items: Vec<(Plan, HashAggregate)>,
}

impl RunRollups {
    /// One aggregation per rollup of the job over rows of `schema`; `None` without rollups.
    pub fn new(
        rollups: &[RollupConfig],
        schema: &SchemaRef,
        spill: &Arc<SpillManager>,
        memory: &Arc<MemoryPool>,
    ) -> Result<Option<RunRollups>> {
        if rollups.is_empty() {
            return Ok(None);
        }
        let mut items = Vec::new();
        for cfg in rollups {
            let plan = Plan::for_rows(cfg, schema)?;
            let agg =
                HashAggregate::try_new(plan.opts.clone(), schema.clone(), spill.clone(), memory)
                    .map_err(|e| match e {
                        compactor_engine::EngineError::Plan(m) => {
                            anyhow::Error::new(JobError(format!("[[rollup]] {:?}: {m}", cfg.name)))
                        }
                        e => e.into(),
                    })?;
            items.push((plan, agg));
        }
        Ok(Some(RunRollups { items }))
    }

    /// Aggregates rows that went into the detailed table.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        for (plan, agg) in &mut self.items {
            let i = batch.schema().index_of(&plan.time)?;
            let mut cols = batch.columns().to_vec();
            cols[i] = bucketed(&cols[i], plan.bucket)?;
            agg.push(&RecordBatch::try_new(batch.schema(), cols)?)?;
        }
        Ok(())
    }

    /// Finishes the aggregations and stages their state rows for the run `run_id`, whose
    /// detailed segments are `segments` (step 2). The returned directory is locked until
    /// dropped.
    pub fn stage(self, table_root: &Path, run_id: &str, segments: &[PathBuf]) -> Result<Staged> {
        let dir = table_root.join(STAGED_DIR).join(run_id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        lock.lock()?;
        let mut manifest = Manifest {
            v: 1,
            run_id: run_id.to_string(),
            segments: segments.to_vec(),
            rollups: Vec::new(),
        };
        for (plan, agg) in self.items {
            let schema = agg.state_schema().clone();
            let mut stream = agg.finish()?;
            let path = dir.join(format!("{}.parquet", plan.cfg.name));
            let file = File::create(&path)?;
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                .build();
            let mut w = ArrowWriter::try_new(file, schema, Some(props))?;
            write_bounded(&mut w, stream.by_ref(), STAGED_ROW_GROUP_BYTES)?;
            let stats = stream.stats();
            w.into_inner()?.sync_all()?;
            manifest.rollups.push(StagedRollup {
                config: plan.cfg.clone(),
                groups: stats.groups,
                rows: stats.rows_in,
            });
        }
        let m = dir.join("manifest.json");
        std::fs::write(&m, serde_json::to_vec_pretty(&manifest)?)?;
        File::open(&m)?.sync_all()?;
        segment::sync_dir(&dir)?;
        segment::sync_dir(&table_root.join(STAGED_DIR))?;
        Ok(Staged {
            dir,
            manifest,
            _lock: lock,
        })
    }
}

/// Writes `batches` with `w`, ending a row group whenever the open one's encoded pages (which
/// the writer holds in memory) reach `max_bytes`.
fn write_bounded<W: std::io::Write + Send>(
    w: &mut ArrowWriter<W>,
    batches: impl Iterator<Item = compactor_engine::Result<RecordBatch>>,
    max_bytes: usize,
) -> Result<()> {
    for b in batches {
        w.write(&b?)?;
        if w.memory_size() >= max_bytes {
            w.flush()?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    v: u32,
    run_id: String,
    /// The run's detailed segments: the first tells whether its commit landed. Empty for a
    /// rollup-only run, whose commit names its run id instead.
    segments: Vec<PathBuf>,
    rollups: Vec<StagedRollup>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StagedRollup {
    config: RollupConfig,
    groups: u64,
    rows: u64,
}

/// A run's staged rollup states, locked while it lives.
pub struct Staged {
    dir: PathBuf,
    manifest: Manifest,
    _lock: File,
}

impl Staged {
    /// Raw rows each rollup aggregated.
    pub fn rows(&self) -> impl Iterator<Item = u64> + '_ {
        self.manifest.rollups.iter().map(|r| r.rows)
    }

    /// Deletes the staged states (the detailed commit did not happen).
    pub fn discard(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir)
            .with_context(|| format!("removing {}", self.dir.display()))
    }

    /// Applies the states to each rollup table (step 3), then deletes them.
    pub fn apply(
        self,
        memory: &Arc<MemoryPool>,
        spill: &Arc<SpillManager>,
    ) -> Result<Vec<RollupReport>> {
        let reports = apply_dir(&self.dir, &self.manifest, memory, spill)?;
        failpoint("rollup-before-unstage");
        std::fs::remove_dir_all(&self.dir)?;
        Ok(reports)
    }
}

fn apply_dir(
    dir: &Path,
    manifest: &Manifest,
    memory: &Arc<MemoryPool>,
    spill: &Arc<SpillManager>,
) -> Result<Vec<RollupReport>> {
    let mut reports = Vec::new();
    let staged_root = dir.parent().map(Path::to_path_buf).unwrap_or_default();
    for r in &manifest.rollups {
        let started = Instant::now();
        let path = r
            .config
            .path
            .clone()
            .context("internal error: a staged rollup without a path")?;
        let file = dir.join(format!("{}.parquet", r.config.name));
        let reader = open_states(&file)?;
        let mut report = RollupReport {
            name: r.config.name.clone(),
            path: path.display().to_string(),
            run_id: manifest.run_id.clone(),
            groups: r.groups,
            rows: r.rows,
            ..Default::default()
        };
        if reader.metadata().file_metadata().num_rows() == 0 {
            report.note = Some("no rows".into());
            reports.push(report);
            continue;
        }
        let schema = reader.schema().clone();
        drop(reader);
        let outcome = merge_into_table(
            &path,
            &r.config,
            &schema,
            Some((&manifest.run_id, &file)),
            r.config.merge,
            &staged_root,
            CompactScope::default(),
            memory,
            spill,
        )
        .with_context(|| format!("applying rollup {:?} to {}", r.config.name, path.display()))?;
        report.committed = outcome.version.is_some();
        report.version = outcome.version;
        report.partitions_rewritten = outcome.partitions;
        report.rows_merged = outcome.rows_read;
        report.note = outcome.note;
        report.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            "rollup {}: {} groups from {} rows into {} partition(s) of {}{}",
            report.name,
            report.groups,
            report.rows,
            report.partitions_rewritten,
            report.path,
            report
                .version
                .map(|v| format!(", version {v}"))
                .unwrap_or_default()
        );
        reports.push(report);
    }
    Ok(reports)
}

/// Applies what crashed runs staged (step 4): states of runs whose detailed commit landed
/// and that a rollup table has not recorded are applied; the others are dropped.
pub fn recover(
    table_root: &Path,
    memory: &Arc<MemoryPool>,
    spill: &Arc<SpillManager>,
) -> Result<Vec<RollupReport>> {
    let root = table_root.join(STAGED_DIR);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut reports = Vec::new();
    for dir in dirs {
        let Ok(lock) = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
        else {
            continue;
        };
        if lock.try_lock().is_err() {
            continue; // a live run's
        }
        let manifest: Option<Manifest> = std::fs::read(dir.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let landed = match &manifest {
            Some(m) => match m.segments.first() {
                Some(s) => crate::table::committed_in(table_root, s)?.is_some(),
                None => crate::table::committed_run(table_root, &m.run_id)?.is_some(),
            },
            // died while staging: the detailed commit comes after the manifest
            None => false,
        };
        if let (true, Some(m)) = (landed, &manifest) {
            tracing::warn!(
                "applying the rollups of run {}, which committed but did not apply them",
                m.run_id
            );
            reports.extend(apply_dir(&dir, m, memory, spill)?);
        } else {
            tracing::warn!(
                "dropping the staged rollups of run {} (its commit did not happen)",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir)?;
        drop(lock);
    }
    Ok(reports)
}

/// Opens a Parquet file of state rows (a staged file or a rollup segment) for reading in
/// batches of about [`STATE_BATCH_BYTES`].
fn open_states(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(f)
        .with_context(|| format!("reading {}", path.display()))?;
    let rows = state_batch_rows(builder.metadata().row_groups().iter().map(|g| {
        (
            usize::try_from(g.total_byte_size()).unwrap_or(0),
            usize::try_from(g.num_rows()).unwrap_or(0),
        )
    }));
    Ok(builder.with_batch_size(rows))
}

/// Rows per batch for row groups of `(uncompressed bytes, rows)`: [`STATE_BATCH_BYTES`] over
/// the largest bytes per row among them.
fn state_batch_rows(groups: impl Iterator<Item = (usize, usize)>) -> usize {
    let per_row = groups
        .map(|(bytes, rows)| bytes.div_ceil(rows.max(1)))
        .max()
        .unwrap_or(0);
    (STATE_BATCH_BYTES / per_row.max(1)).clamp(1, STATE_BATCH_MAX_ROWS)
}

/// The state rows of a staged file or a rollup segment as rows of `schema` (columns by name;
/// a rollup segment does not hold the partition column), one batch at a time: what is read
/// is bounded by a batch, not by the file.
fn read_states<'a>(
    path: &'a Path,
    schema: &'a SchemaRef,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + 'a> {
    let reader = open_states(path)?.build()?;
    Ok(reader.map(move |b| {
        let b = b.with_context(|| format!("reading {}", path.display()))?;
        let mut cols = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            let c = b
                .column_by_name(f.name())
                .with_context(|| format!("{}: no column {}", path.display(), f.name()))?;
            cols.push(if c.data_type() == f.data_type() {
                c.clone()
            } else {
                arrow_cast::cast(c, f.data_type())?
            });
        }
        Ok(RecordBatch::try_new(schema.clone(), cols)?)
    }))
}

/// The partitions (UTC days, `None` for a null time) that the state rows in `path` fall in:
/// its time column alone is read.
fn days_in(path: &Path, time_idx: usize) -> Result<BTreeSet<Option<String>>> {
    let builder = open_states(path)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [time_idx]);
    let mut days = BTreeSet::new();
    let builder = builder
        .with_projection(mask)
        .with_batch_size(STATE_BATCH_MAX_ROWS);
    for b in builder.build()? {
        let b = b.with_context(|| format!("reading {}", path.display()))?;
        let d = day_of(b.column(0))?;
        let d = d.as_string::<i32>();
        for i in 0..d.len() {
            days.insert(d.is_valid(i).then(|| d.value(i).to_string()));
        }
    }
    Ok(days)
}

struct Outcome {
    version: Option<u64>,
    partitions: u64,
    rows_read: u64,
    segments_in: u64,
    bytes_in: u64,
    segments_out: u64,
    bytes_out: u64,
    rows_out: u64,
    note: Option<String>,
}

/// Takes `lock` (the rollup table `root`'s), waiting at most [`DEFAULT_ROLLUP_LOCK_WAIT`].
fn lock_waiting(lock: &File, root: &Path) -> Result<()> {
    let wait = std::env::var("COMPACTOR_ROLLUP_LOCK_WAIT_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_ROLLUP_LOCK_WAIT, Duration::from_millis);
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                bail!(crate::run::Locked(format!(
                    "another writer has held the rollup table {} for more than {:.1} s",
                    root.display(),
                    wait.as_secs_f64()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", root.display()))
            }
        }
    }
}

/// Which partitions a rollup compaction merges, and whether it only says so.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompactScope<'a> {
    /// Only this partition: its day (`2026-01-31`) or `dt=2026-01-31`.
    pub partition: Option<&'a str>,
    /// Say what would be merged; write nothing.
    pub dry_run: bool,
}

impl CompactScope<'_> {
    /// Whether the partition `day` (`None`: the null partition) is in scope.
    fn takes(&self, day: Option<&str>) -> bool {
        let Some(want) = self.partition else {
            return true;
        };
        let day = day.unwrap_or(NULL_PARTITION);
        want == day
            || want
                .strip_prefix(PARTITION_COLUMN)
                .and_then(|w| w.strip_prefix('='))
                == Some(day)
    }
}

/// How a null partition value is written in `--partition` (as Delta writes it in paths).
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Merges `new` state rows (the run id that made them, and the file it staged them in) into
/// the rollup table at `root`, or, with `new = None`, merges the table's segments per
/// partition in `scope` (compaction). Holds the table's `rollup.lock` throughout. State rows
/// are read a batch at a time ([`read_states`]) into the aggregation, which spills under its
/// memory pool, and written in row groups bounded by bytes
/// ([`MAX_ROLLUP_ROW_GROUP_BYTES`]), so neither a run's states nor a partition is held whole.
#[allow(clippy::too_many_arguments)]
fn merge_into_table(
    root: &Path,
    cfg: &RollupConfig,
    state: &SchemaRef,
    new: Option<(&str, &Path)>,
    mode: MergeMode,
    staged_root: &Path,
    scope: CompactScope<'_>,
    memory: &Arc<MemoryPool>,
    spill: &Arc<SpillManager>,
) -> Result<Outcome> {
    std::fs::create_dir_all(root.join("_compactor"))?;
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("_compactor").join("rollup.lock"))?;
    lock_waiting(&lock, root)?;
    let mut table = Table::open(root)?;
    let removed = crate::run::cleanup_crashed(&mut table)?;
    if removed > 0 {
        tracing::warn!("removed {removed} file(s) left by a crashed rollup writer");
    }
    table.refresh()?;
    let domain: Option<Domain> = table
        .domain(ROLLUP_DOMAIN)?
        .map(|s| serde_json::from_str(&s))
        .transpose()
        .context("reading the rollup table's definition")?;
    let mut outcome = Outcome {
        version: None,
        partitions: 0,
        rows_read: 0,
        segments_in: 0,
        bytes_in: 0,
        segments_out: 0,
        bytes_out: 0,
        rows_out: 0,
        note: None,
    };
    if let Some(d) = &domain {
        if d.definition != definition(cfg) {
            bail!(JobError(format!(
                "the rollup table {} was built by another definition of [[rollup]] {:?}; write this one to a new path",
                root.display(),
                cfg.name
            )));
        }
        if let Some((run_id, _)) = new {
            if d.applied.iter().any(|r| r == run_id) {
                outcome.note = Some(format!("run {run_id} was already applied"));
                return Ok(outcome);
            }
        }
    } else if table.version().is_some() {
        bail!(JobError(format!(
            "{} is a Delta table but not a compactor rollup; choose another path for [[rollup]] {:?}",
            root.display(),
            cfg.name
        )));
    }
    let (plan, fake_input) = Plan::for_states(cfg, state)?;
    let time_idx = 0usize;
    // The partitions touched, and the segments to merge.
    let mut touched: BTreeSet<Option<String>> = BTreeSet::new();
    if let Some((_, staged)) = new {
        touched = days_in(staged, time_idx)?;
    }
    let live = if table.version().is_some() {
        table.live_segments()?
    } else {
        Vec::new()
    };
    let part_of = |s: &LiveSegment| s.partition_values.get(PARTITION_COLUMN).cloned();
    let mut by_part: BTreeMap<Option<String>, Vec<&LiveSegment>> = BTreeMap::new();
    for s in &live {
        by_part.entry(part_of(s)).or_default().push(s);
    }
    let merged: Vec<&LiveSegment> = match (new, mode) {
        (Some(_), MergeMode::Append) => Vec::new(),
        (Some(_), MergeMode::Rewrite) => live
            .iter()
            .filter(|s| touched.contains(&part_of(s)))
            .collect(),
        (None, _) => by_part
            .iter()
            .filter(|(k, v)| v.len() > 1 && scope.takes(k.as_deref()))
            .flat_map(|(k, v)| {
                touched.insert(k.clone());
                v.iter().copied()
            })
            .collect(),
    };
    if new.is_none() && merged.is_empty() {
        outcome.note = Some(match scope.partition {
            Some(p) if !by_part.keys().any(|k| scope.takes(k.as_deref())) => {
                format!("no partition {p}")
            }
            Some(_) => "the partition has one segment".into(),
            None => "every partition has one segment".into(),
        });
        return Ok(outcome);
    }
    outcome.partitions = touched.len() as u64;
    if new.is_none() && scope.dry_run {
        outcome.segments_in = merged.len() as u64;
        outcome.bytes_in = merged.iter().map(|s| s.size).sum();
        outcome.note = Some(format!(
            "dry run: would merge {} segments of {} partition(s) into one each",
            merged.len(),
            touched.len()
        ));
        return Ok(outcome);
    }
    // A partition's sketches can outgrow the pool: segments end a row group by bytes too, and
    // the room for the open one is kept from the aggregation (which spills to stay within
    // the rest) and handed to the writer once the aggregation is done.
    let group_bytes = (memory.limit() / 4).clamp(64 << 10, MAX_ROLLUP_ROW_GROUP_BYTES);
    let mut writer_room = memory.reservation("rollup writer room");
    writer_room.try_grow(group_bytes)?;
    let mut agg = HashAggregate::try_new(plan.opts.clone(), fake_input, spill.clone(), memory)?;
    if agg.state_schema().fields().len() != state.fields().len()
        || agg
            .state_schema()
            .fields()
            .iter()
            .zip(state.fields())
            .any(|(a, b)| a.name() != b.name() || a.data_type() != b.data_type())
    {
        bail!(JobError(format!(
            "rollup {:?}: the stored rows do not have the layout of its definition",
            cfg.name
        )));
    }
    let state = agg.state_schema().clone();
    for s in &merged {
        let path = table.file_path(&s.path);
        outcome.segments_in += 1;
        outcome.bytes_in += s.size;
        for b in read_states(&path, &state)? {
            let b = b?;
            outcome.rows_read += b.num_rows() as u64;
            agg.push_states(&b)?;
        }
    }
    if let Some((_, staged)) = new {
        for b in read_states(staged, &state)? {
            agg.push_states(&b.context("staged rollup rows")?)?;
        }
    }
    let stream = agg.finish()?;
    drop(writer_room);
    // Write one segment per partition (the stream is sorted by time, so partitions are
    // contiguous), then commit.
    let data_change = new.is_some();
    let mut write = if data_change {
        table.begin_update(&state, Some(PARTITION_COLUMN))?
    } else {
        table.begin_rewrite(&state, Some(PARTITION_COLUMN))?
    };
    let id = match new {
        Some((run_id, _)) => run_id.to_string(),
        None => crate::run::new_run_id(),
    };
    let mut marker = PendingMarker::create(&pending::dir(table.root()), &id)?;
    let mut written: Vec<(WrittenSegment, Option<String>, _)> = Vec::new();
    let mut dirs = BTreeSet::new();
    let mut open: Option<(Option<String>, SegmentWriter, _)> = None;
    let props = || -> Result<WriterProperties> {
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(
                DEFAULT_ROLLUP_ZSTD_LEVEL,
            )?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_sorting_columns(Some(
                (0..plan.opts.keys.len())
                    .map(|i| parquet::file::metadata::SortingColumn {
                        column_idx: i as i32,
                        descending: false,
                        nulls_first: true,
                    })
                    .collect(),
            ))
            .build())
    };
    for b in stream {
        let b = b?;
        let days = day_of(b.column(time_idx))?;
        let days = days.as_string::<i32>();
        let mut at = 0;
        while at < b.num_rows() {
            let day = days.is_valid(at).then(|| days.value(at).to_string());
            let mut end = at + 1;
            while end < b.num_rows() && days.is_valid(end) == day.is_some() && {
                day.as_deref().is_none_or(|d| days.value(end) == d)
            } {
                end += 1;
            }
            if open.as_ref().is_some_and(|(p, _, _)| *p != day) {
                let (p, w, st) = open.take().expect("checked");
                let rows = w.rows();
                let (path, size) = w.finish()?;
                written.push((WrittenSegment { path, size, rows }, p, st));
            }
            if open.is_none() {
                let dir = write.dir_for(day.as_deref())?;
                let stem = dir.join(format!("part-{id}-{:05}", written.len()));
                marker.record(&stem)?;
                dirs.insert(dir);
                let w = SegmentWriter::create(&stem, state.clone(), props()?, memory)?
                    .with_max_group_bytes(group_bytes);
                open = Some((day.clone(), w, write.stats_collector(day.as_deref())?));
            }
            let (_, w, st) = open.as_mut().expect("opened");
            let piece = b.slice(at, end - at);
            w.write(&piece)?;
            st.merge(&piece)
                .map_err(|e| anyhow::anyhow!("rollup segment statistics: {e}"))?;
            at = end;
        }
    }
    if let Some((p, w, st)) = open.take() {
        let rows = w.rows();
        let (path, size) = w.finish()?;
        written.push((WrittenSegment { path, size, rows }, p, st));
    }
    for d in &dirs {
        segment::sync_dir(d)?;
    }
    failpoint("rollup-before-commit");
    let paths: Vec<PathBuf> = written.iter().map(|(s, _, _)| s.path.clone()).collect();
    for (s, p, st) in written {
        outcome.segments_out += 1;
        outcome.bytes_out += s.size;
        outcome.rows_out += s.rows;
        write.stage(&s, p.as_deref(), st)?;
    }
    for s in &merged {
        write.remove(&s.path);
    }
    // The runs applied whose staged directories still exist (the others can never be applied
    // again), and this one.
    let mut applied: Vec<String> = domain
        .map(|d| d.applied)
        .unwrap_or_default()
        .into_iter()
        .filter(|r| staged_root.join(r).exists())
        .collect();
    if let Some((run_id, _)) = new {
        applied.push(run_id.to_string());
    }
    write.set_domain(
        ROLLUP_DOMAIN,
        serde_json::to_string(&Domain {
            v: 1,
            definition: definition(cfg),
            applied,
        })?,
    );
    let metrics = BTreeMap::from([
        ("numOutputRows".to_string(), outcome.rows_out.to_string()),
        ("numFiles".to_string(), outcome.segments_out.to_string()),
        ("numOutputBytes".to_string(), outcome.bytes_out.to_string()),
    ]);
    match write.commit(&|_, _| Ok(None), metrics) {
        Ok(c) => outcome.version = Some(c.version),
        Err(e) => {
            if let Some(v) = crate::run::landed(table.root(), &paths) {
                tracing::warn!("the rollup commit landed as version {v}, then failed: {e:#}");
                outcome.version = Some(v);
            } else {
                if paths.iter().all(|p| std::fs::remove_file(p).is_ok()) {
                    marker.remove()?;
                }
                return Err(e);
            }
        }
    }
    failpoint("rollup-after-commit");
    marker.remove()?;
    if let Some(v) = outcome.version {
        if v > 0 && v % crate::table::DEFAULT_CHECKPOINT_INTERVAL == 0 {
            table.refresh()?;
            if let Err(e) = table.checkpoint(v) {
                tracing::warn!("checkpoint of {} failed: {e:#}", root.display());
            }
        }
    }
    drop(lock);
    Ok(outcome)
}

/// Checks, before a run commits anything, that each rollup table that exists was built by
/// the same definition (a mismatch found after the detailed commit would leave its states
/// staged until fixed).
pub fn check_tables(rollups: &[RollupConfig]) -> Result<()> {
    for cfg in rollups {
        let Some(root) = &cfg.path else { continue };
        if !root.join("_delta_log").is_dir() {
            continue;
        }
        let table = Table::open(root)?;
        let Some(text) = table.domain(ROLLUP_DOMAIN)? else {
            bail!(JobError(format!(
                "{} is a Delta table but not a compactor rollup; choose another path for [[rollup]] {:?}",
                root.display(),
                cfg.name
            )));
        };
        let d: Domain = serde_json::from_str(&text).context("reading the rollup's definition")?;
        if d.definition != definition(cfg) {
            bail!(JobError(format!(
                "the rollup table {} was built by another definition of [[rollup]] {:?}; write this one to a new path",
                root.display(),
                cfg.name
            )));
        }
    }
    Ok(())
}

/// Whether the table at `root` is a rollup table (it records [`ROLLUP_DOMAIN`]).
pub fn is_rollup(table: &Table) -> Result<bool> {
    Ok(table.version().is_some() && table.domain(ROLLUP_DOMAIN)?.is_some())
}

/// `compactor compact` on a rollup table: the segments of each partition in `scope` that has
/// several are merged into one (sketches union, counts add), in one commit
/// (`dataChange = false`). A rollup partition holds a row per group and bucket of one day,
/// so it is merged whole: no size tiers, no target size.
pub fn compact_rollup(
    root: &Path,
    scope: CompactScope<'_>,
    memory: &Arc<MemoryPool>,
    spill: &Arc<SpillManager>,
) -> Result<crate::compact::GroupReport> {
    let started = Instant::now();
    let table = Table::open(root)?;
    let d: Domain =
        serde_json::from_str(&table.domain(ROLLUP_DOMAIN)?.context("not a rollup table")?)?;
    let mut cfg = d.definition;
    cfg.path = Some(table.root().to_path_buf());
    let schema = table.schema()?.context("the rollup table has no schema")?;
    let state: SchemaRef = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| f.name() != PARTITION_COLUMN)
            .cloned()
            .collect::<Vec<_>>(),
    ));
    let o = merge_into_table(
        table.root(),
        &cfg,
        &state,
        None,
        cfg.merge,
        Path::new(""),
        scope,
        memory,
        spill,
    )?;
    Ok(crate::compact::GroupReport {
        partition: scope
            .partition
            .map(|p| match p.strip_prefix(PARTITION_COLUMN) {
                Some(rest) if rest.starts_with('=') => p.to_string(),
                _ => format!("{PARTITION_COLUMN}={p}"),
            }),
        segments_in: o.segments_in,
        bytes_in: o.bytes_in,
        rows_in: o.rows_read,
        segments_out: o.segments_out,
        bytes_out: o.bytes_out,
        rows_out: o.rows_out,
        duplicates: 0,
        sort_key: Vec::new(),
        committed: o.version.is_some(),
        version: o.version,
        commit_conflicts: 0,
        note: o.note,
        seconds: started.elapsed().as_secs_f64(),
        spilled_rows: 0,
        peak_reserved_bytes: memory.peak() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_parse() {
        assert_eq!(parse_bucket("hour").unwrap(), 3_600_000_000);
        assert_eq!(parse_bucket("5m").unwrap(), 300_000_000);
        assert_eq!(parse_bucket("15min").unwrap(), 900_000_000);
        assert_eq!(parse_bucket("1d").unwrap(), 86_400_000_000);
        assert_eq!(parse_bucket("30s").unwrap(), 30_000_000);
        for bad in ["7x", "0m", "", "m", "-1h", "400d", "99999999999999999d"] {
            assert!(parse_bucket(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn accuracy_sets_k() {
        assert_eq!(tdigest_k(0.01), 200);
        assert_eq!(tdigest_k(0.2), 10);
        assert_eq!(tdigest_k(0.001), 2000);
    }

    #[test]
    fn buckets_floor_before_the_epoch_too() {
        let ts: ArrayRef = Arc::new(
            arrow_array::TimestampMicrosecondArray::from(vec![Some(3_600_000_001), Some(-1), None])
                .with_timezone("UTC"),
        );
        let b = bucketed(&ts, 3_600_000_000).unwrap();
        let b = b.as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        assert_eq!(b.value(0), 3_600_000_000);
        assert_eq!(b.value(1), -3_600_000_000);
        assert!(b.is_null(2));
        assert_eq!(b.data_type(), ts.data_type());
    }

    #[test]
    fn batch_rows_follow_the_bytes_per_row() {
        assert_eq!(
            state_batch_rows([(100, 1_000)].into_iter()),
            STATE_BATCH_MAX_ROWS
        );
        assert_eq!(state_batch_rows(std::iter::empty()), STATE_BATCH_MAX_ROWS);
        assert_eq!(state_batch_rows([(0, 0)].into_iter()), STATE_BATCH_MAX_ROWS);
        // the widest row group decides
        let rows = state_batch_rows([(1_000, 1_000), (64 << 20, 512)].into_iter());
        assert_eq!(rows, STATE_BATCH_BYTES / (128 << 10));
        // a row bigger than a batch: one at a time
        assert_eq!(state_batch_rows([(32 << 20, 2)].into_iter()), 1);
    }

    /// State rows are read back a bounded batch at a time, whatever the file holds: here
    /// 600 rows of 64 KiB sketches (37.5 MiB) in one row group. Fails when a file is read
    /// whole or in batches of a fixed row count.
    #[test]
    fn state_files_are_read_in_bounded_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("states.parquet");
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("sketch", DataType::Binary, false),
        ]));
        let rows = 600usize;
        let n: ArrayRef = Arc::new(arrow_array::Int64Array::from_iter_values(0..rows as i64));
        let sketch: ArrayRef = Arc::new(arrow_array::BinaryArray::from_iter_values(
            (0..rows).map(|i| vec![(i % 251) as u8; 64 << 10]),
        ));
        let batch = RecordBatch::try_new(schema.clone(), vec![n, sketch]).unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(&path).unwrap(), schema.clone(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();

        let (mut seen, mut batches) = (0i64, 0);
        for b in read_states(&path, &schema).unwrap() {
            let b = b.unwrap();
            batches += 1;
            let bytes: usize = b
                .columns()
                .iter()
                .map(|c| c.to_data().get_slice_memory_size().unwrap())
                .sum();
            assert!(
                bytes <= STATE_BATCH_BYTES + (64 << 10),
                "a batch of {} rows holds {bytes} bytes",
                b.num_rows()
            );
            let n = b.column(0).as_primitive::<arrow_array::types::Int64Type>();
            for v in n.values() {
                assert_eq!(*v, seen);
                seen += 1;
            }
        }
        assert_eq!(seen, rows as i64);
        assert!(batches >= 5, "{batches} batches");
        // one row group: the bound is not the row group's
        assert_eq!(open_states(&path).unwrap().metadata().num_row_groups(), 1);
    }

    /// A staged file's row groups end at a byte bound, not at the writer's million rows.
    /// Fails without the flush (one row group of 2,000 rows).
    #[test]
    fn staged_row_groups_are_bounded_by_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staged.parquet");
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new(
            "sketch",
            DataType::Binary,
            false,
        )]));
        let batches = crate::segment::incompressible_batches(&schema);
        let batches = batches.into_iter().map(Ok);
        let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), schema, None).unwrap();
        write_bounded(&mut w, batches, 1 << 20).unwrap();
        w.close().unwrap();
        let b = open_states(&path).unwrap();
        let groups = b.metadata().row_groups();
        assert!(groups.len() >= 6, "{} row groups", groups.len());
        for g in groups {
            // the bound, plus the batch that crossed it
            assert!(
                g.compressed_size() <= (1 << 20) + 100 * 4200,
                "{}",
                g.compressed_size()
            );
        }
        assert_eq!(groups.iter().map(|g| g.num_rows()).sum::<i64>(), 2_000);
    }
}
