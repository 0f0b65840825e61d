//! `compactor compact`: merges a partition's small segments into few large, sorted ones.
//!
//! # Why
//! Log pipelines deliver small files and hourly runs add small segments to every partition:
//! readers then open thousands of files, and each small file is sorted and compressed on its
//! own. Rewriting a partition's segments as one globally sorted stream, cut at a target size,
//! gives readers few files and the compressor long runs of equal values.
//!
//! # Algorithm
//! 1. Take the table's compaction lock (`_compactor/compact.lock`: one compaction at a time;
//!    runs are not blocked) and clean up what crashed writers left ([`crate::run::cleanup_crashed`]).
//! 2. Group the snapshot's segments by partition; the [`MergePolicy`] picks, per partition,
//!    groups of segments to merge ([`SizeTiered`] by default).
//! 3. Per group: read every segment's batches, bring them back to the parsed types (the
//!    written types are tightened: narrow integers, 16-byte UUIDs, millisecond timestamps),
//!    and stream them through the engine's `ExternalSort` (k-way merge of sorted runs, spilling
//!    under `--memory`) with the table's sort key and the dedup the runs recorded
//!    ([`crate::job::DEDUP_DOMAIN`]); duplicates across the segments are dropped.
//! 4. Write the merged rows as new segments of about the target size (the same writer and
//!    layout choice as a run), listed in a pending marker before they are created.
//! 5. Commit `remove` (the inputs) + `add` (the outputs) with `dataChange = false` in one Delta
//!    commit. If a concurrent run appended meanwhile, the commit is rebased and retried (its
//!    segments are untouched); if a concurrent writer removed one of the inputs, the
//!    compaction of that group is abandoned and its new segments deleted.
//!
//! ```text
//!  snapshot ─▶ per partition: policy ─▶ group ─▶ read + widen ─▶ ExternalSort (merge, dedup)
//!                                                                        │
//!  commit(remove inputs + add outputs, dataChange=false) ◀── segments ◀──┘
//!        └─ conflict: appends only → rebase + retry; inputs gone → abandon
//! ```
//! Invariant checked before committing: `rows_in == rows_out + duplicates`.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow_array::builder::StringBuilder;
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use compactor_engine::{
    DedupMode, ExternalSort, MemoryPool, SortOptions, SortStats, SpillConfig, SpillManager,
};
use compactor_formats::schema;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use serde::Serialize;

use crate::job::{DedupConfig, DedupModeName, OutputConfig};
use crate::layout;
use crate::pending::{self, PendingMarker};
use crate::run::{self, failpoint, SegmentPlan};
use crate::table::{LiveSegment, Table};

/// Default size of a compacted segment.
pub const DEFAULT_TARGET_SEGMENT_BYTES: u64 = 512 << 20;
/// [`SizeTiered`]: the fewest segments of one tier worth merging.
pub const DEFAULT_MIN_MERGE: usize = 4;
/// [`SizeTiered`]: each tier holds segments up to this many times larger than the one below.
pub const DEFAULT_TIER_FACTOR: u64 = 8;
/// [`SizeTiered`]: every segment below this size is in the lowest tier.
pub const DEFAULT_TIER_FLOOR_BYTES: u64 = 1 << 20;
/// Rows per batch read from a segment.
pub const READ_BATCH_ROWS: usize = 64 * 1024;

/// A segment as a [`MergePolicy`] sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
}

/// Picks which segments of one partition to merge.
pub trait MergePolicy: Send + Sync {
    /// Groups of indices into `segments` (one partition's); each group is merged into new
    /// segments of about `target` bytes. A segment is in at most one group.
    fn pick(&self, segments: &[Candidate], target: u64) -> Vec<Vec<usize>>;
}

/// The default policy: segments of at least half the target are done; the others are put in
/// size tiers (each [`DEFAULT_TIER_FACTOR`] times the one below, from
/// [`DEFAULT_TIER_FLOOR_BYTES`]), and a tier with [`DEFAULT_MIN_MERGE`] or more segments is
/// merged. Many small segments become one larger one; once enough of those exist, they merge
/// in turn, so each row is rewritten about log(total / floor) / log(factor) times, not once per
/// run.
#[derive(Debug, Clone)]
pub struct SizeTiered {
    /// The fewest segments of one tier worth merging.
    pub min_merge: usize,
    /// Size ratio between tiers.
    pub tier_factor: u64,
    /// Upper bound of the lowest tier.
    pub floor_bytes: u64,
}

impl Default for SizeTiered {
    fn default() -> Self {
        SizeTiered {
            min_merge: DEFAULT_MIN_MERGE,
            tier_factor: DEFAULT_TIER_FACTOR,
            floor_bytes: DEFAULT_TIER_FLOOR_BYTES,
        }
    }
}

impl SizeTiered {
    fn tier(&self, size: u64) -> u32 {
        let mut t = 0;
        let mut bound = self.floor_bytes.max(1);
        while size >= bound {
            t += 1;
            bound = bound.saturating_mul(self.tier_factor.max(2));
        }
        t
    }
}

impl MergePolicy for SizeTiered {
    fn pick(&self, segments: &[Candidate], target: u64) -> Vec<Vec<usize>> {
        let mut tiers: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, s) in segments.iter().enumerate() {
            if s.size < target / 2 {
                tiers.entry(self.tier(s.size)).or_default().push(i);
            }
        }
        tiers
            .into_values()
            .filter(|g| g.len() >= self.min_merge.max(2))
            .collect()
    }
}

/// Merges every segment below the target size of a partition, when there are two or more
/// (`--policy all`: one pass to the target size).
#[derive(Debug, Clone, Default)]
pub struct MergeAll;

impl MergePolicy for MergeAll {
    fn pick(&self, segments: &[Candidate], target: u64) -> Vec<Vec<usize>> {
        let small: Vec<usize> = (0..segments.len())
            .filter(|&i| segments[i].size < target)
            .collect();
        if small.len() >= 2 {
            vec![small]
        } else {
            Vec::new()
        }
    }
}

/// How to compact.
pub struct CompactOptions {
    /// Only this partition (its value, or `name=value`).
    pub partition: Option<String>,
    /// Size of the new segments.
    pub target_size: u64,
    /// Which segments to merge.
    pub policy: Box<dyn MergePolicy>,
    /// Worker threads.
    pub threads: usize,
    /// Memory budget (default: a share of the machine's).
    pub memory: Option<usize>,
    /// Spill directory (default `<table>/_compactor/spill`).
    pub spill_dir: Option<PathBuf>,
    /// The layout settings of the new segments (default: a job's defaults).
    pub output: Option<OutputConfig>,
    /// Dedup (default: what the table's runs recorded, else `exact`).
    pub dedup: Option<DedupConfig>,
    /// Only say what would be merged.
    pub dry_run: bool,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            partition: None,
            target_size: DEFAULT_TARGET_SEGMENT_BYTES,
            policy: Box::new(SizeTiered::default()),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory: None,
            spill_dir: None,
            output: None,
            dedup: None,
            dry_run: false,
        }
    }
}

/// What one merged group did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroupReport {
    /// The partition (`name=value`), if the table is partitioned.
    pub partition: Option<String>,
    /// Segments merged.
    pub segments_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Their rows.
    pub rows_in: u64,
    /// New segments.
    pub segments_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Their rows.
    pub rows_out: u64,
    /// Rows dropped as duplicates across the merged segments.
    pub duplicates: u64,
    /// The sort key the rows were merged in.
    pub sort_key: Vec<String>,
    /// Whether it was committed (false: dry run, or abandoned on a conflict; see `note`).
    pub committed: bool,
    /// The version committed.
    pub version: Option<u64>,
    /// How many times a concurrent commit came first and this one was rebased.
    pub commit_conflicts: u32,
    /// Why it was not committed.
    pub note: Option<String>,
    /// Seconds.
    pub seconds: f64,
    /// Rows spilled to disk by the merge.
    pub spilled_rows: u64,
    /// Peak bytes reserved against the memory budget.
    pub peak_reserved_bytes: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactReport {
    /// Table directory.
    pub table: String,
    /// Segments in the snapshot before.
    pub segments_before: u64,
    /// Files left by crashed writers that were removed first.
    pub orphans_removed: u64,
    /// One entry per merged group.
    pub groups: Vec<GroupReport>,
    /// Seconds.
    pub seconds: f64,
    /// Memory budget.
    pub memory_limit_bytes: u64,
    /// Reserved bytes at the end (0).
    pub reserved_at_end: u64,
}

impl CompactReport {
    /// A short human summary.
    pub fn summary(&self) -> String {
        if self.groups.is_empty() {
            return format!(
                "nothing to compact in {} ({} segments)",
                self.table, self.segments_before
            );
        }
        let mut s = String::new();
        for g in &self.groups {
            let ratio = g.bytes_in as f64 / g.bytes_out.max(1) as f64;
            s.push_str(&format!(
                "{}: {} segments ({} rows, {} bytes) -> {} ({} rows, {} bytes, {:.2}x smaller), {} duplicates dropped, {}\n",
                g.partition.as_deref().unwrap_or("table"),
                g.segments_in,
                g.rows_in,
                g.bytes_in,
                g.segments_out,
                g.rows_out,
                g.bytes_out,
                ratio,
                g.duplicates,
                match (g.committed, &g.note, g.version) {
                    (true, _, Some(v)) => format!("committed as version {v}"),
                    (_, Some(n), _) => n.clone(),
                    _ => "not committed".into(),
                }
            ));
        }
        s.push_str(&format!("{:.2} s", self.seconds));
        s
    }
}

/// Compacts the table at `root`. See the module docs.
pub fn compact(root: &Path, opts: &CompactOptions) -> Result<CompactReport> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .thread_name(|i| format!("compactor-{i}"))
        .build()?;
    pool.install(|| compact_in_pool(root, opts, &pool))
}

fn compact_in_pool(
    root: &Path,
    opts: &CompactOptions,
    pool: &rayon::ThreadPool,
) -> Result<CompactReport> {
    let started = Instant::now();
    if !root.join("_delta_log").is_dir() {
        bail!(run::JobError(format!(
            "{} is not a table (no _delta_log)",
            root.display()
        )));
    }
    let mut table = Table::open(root)?;
    let meta = table.root().join("_compactor");
    std::fs::create_dir_all(&meta)?;
    let _lock = run::lock_exclusive(&meta.join("compact.lock"), "compaction")?;
    let mut report = CompactReport {
        table: table.root().display().to_string(),
        ..Default::default()
    };
    report.orphans_removed = run::cleanup_crashed(&mut table)? as u64;
    table.refresh()?;
    let live = table.live_segments()?;
    report.segments_before = live.len() as u64;

    let dedup = match &opts.dedup {
        Some(d) => d.clone(),
        None => match table.domain(crate::job::DEDUP_DOMAIN)? {
            Some(text) => serde_json::from_str(&text).context("reading the table's dedup")?,
            None => DedupConfig::default(),
        },
    };
    let output = match &opts.output {
        Some(o) => o.clone(),
        None => default_output()?,
    };
    let memory_limit = opts
        .memory
        .unwrap_or_else(compactor_engine::memory::default_memory_limit);
    report.memory_limit_bytes = memory_limit as u64;
    if crate::rollup::is_rollup(&table)? {
        // A rollup table: merge each partition's state rows (sketches union, counts add).
        if opts.output.is_some() || opts.dedup.is_some() {
            tracing::warn!(
                "--job does not apply to a rollup table: its layout is its [[rollup]] definition's, and it holds no duplicates"
            );
        }
        tracing::info!(
            "rollup table: each partition's segments are merged into one (the merge policy and target size apply to detailed tables)"
        );
        let memory = MemoryPool::new(memory_limit);
        let spill = SpillManager::new(&SpillConfig {
            dir: opts.spill_dir.clone().unwrap_or_else(|| meta.join("spill")),
            max_bytes: compactor_engine::spill::DEFAULT_MAX_SPILL_BYTES,
        })?;
        let scope = crate::rollup::CompactScope {
            partition: opts.partition.as_deref(),
            dry_run: opts.dry_run,
        };
        let g = crate::rollup::compact_rollup(table.root(), scope, &memory, &spill)?;
        if g.segments_in > 0 {
            report.groups.push(g);
        }
        drop(spill);
        report.reserved_at_end = memory.used() as u64;
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }

    // per partition, in partition order (the null partition is `None`)
    let part_col = table.partition_columns()?.into_iter().next();
    let mut parts: BTreeMap<Option<String>, Vec<LiveSegment>> = BTreeMap::new();
    for seg in live {
        let value = part_col.as_ref().and_then(|c| {
            seg.partition_values
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(c))
                .map(|(_, v)| v.clone())
        });
        parts.entry(value).or_default().push(seg);
    }
    for (value, segs) in parts {
        let label = part_col
            .as_ref()
            .map(|c| format!("{c}={}", value.as_deref().unwrap_or("null")));
        if let Some(want) = &opts.partition {
            let hit = value.as_deref() == Some(want.as_str()) || label.as_deref() == Some(want);
            if !hit {
                continue;
            }
        }
        let cands: Vec<Candidate> = segs
            .iter()
            .map(|s| Candidate {
                size: s.size,
                rows: s.num_records.unwrap_or(0),
            })
            .collect();
        for group in opts.policy.pick(&cands, opts.target_size) {
            let group: Vec<&LiveSegment> = group.iter().map(|&i| &segs[i]).collect();
            let g = if opts.dry_run {
                GroupReport {
                    partition: label.clone(),
                    segments_in: group.len() as u64,
                    bytes_in: group.iter().map(|s| s.size).sum(),
                    rows_in: group.iter().filter_map(|s| s.num_records).sum(),
                    note: Some("dry run".into()),
                    ..Default::default()
                }
            } else {
                let memory = MemoryPool::new(memory_limit);
                let g = compact_group(
                    &mut table,
                    &group,
                    part_col.clone().map(|c| (c, value.clone())),
                    label.clone(),
                    &dedup,
                    &output,
                    opts,
                    &memory,
                    pool,
                )?;
                if memory.used() != 0 {
                    bail!(
                        "internal error: {} bytes still reserved after a compaction",
                        memory.used()
                    );
                }
                g
            };
            report.groups.push(g);
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// A job's `[output]` defaults.
fn default_output() -> Result<OutputConfig> {
    Ok(toml::from_str("path = \"\"")?)
}

#[allow(clippy::too_many_arguments)]
fn compact_group(
    table: &mut Table,
    group: &[&LiveSegment],
    partition: Option<(String, Option<String>)>,
    label: Option<String>,
    dedup: &DedupConfig,
    output: &OutputConfig,
    opts: &CompactOptions,
    memory: &Arc<MemoryPool>,
    pool: &rayon::ThreadPool,
) -> Result<GroupReport> {
    let started = Instant::now();
    let mut rep = GroupReport {
        partition: label,
        segments_in: group.len() as u64,
        bytes_in: group.iter().map(|s| s.size).sum(),
        ..Default::default()
    };
    table.refresh()?;
    let table_schema = table.schema()?.context("the table has no schema")?;
    let part_name = partition.as_ref().map(|(k, _)| k.clone());
    // The merge works in the parsed types: UUID columns (binary in the table) as text.
    let mut uuid_columns = Vec::new();
    let fields: Vec<Arc<Field>> = table_schema
        .fields()
        .iter()
        .filter(|f| {
            part_name
                .as_ref()
                .is_none_or(|p| !f.name().eq_ignore_ascii_case(p))
        })
        .map(|f| {
            if matches!(f.data_type(), DataType::Binary) {
                uuid_columns.push(f.name().clone());
                Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8))
            } else {
                f.clone()
            }
        })
        .collect();
    let unified: SchemaRef = Arc::new(Schema::new(fields));
    let mut sort_schema = unified.clone();
    if let Some(p) = &part_name {
        let mut f = unified.fields().to_vec();
        f.push(Arc::new(Field::new(p, DataType::Utf8, true)));
        sort_schema = Arc::new(Schema::new(f));
    }

    // The key: the segments' own (`sorting_columns`), the one covering the most rows.
    let mut keys: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    let mut readers = Vec::with_capacity(group.len());
    let mut footers = memory.reservation("segment footers");
    for seg in group {
        let path = table.file_path(&seg.path);
        // footers only here; each file is opened again when it is read (one open at a time,
        // whatever the number of segments)
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let arrow_md = ArrowReaderMetadata::load(&file, Default::default())
            .with_context(|| format!("reading the footer of {}", path.display()))?;
        drop(file);
        let md = arrow_md.metadata().clone();
        footers.try_grow(md.memory_size())?;
        let rows = md.file_metadata().num_rows().max(0) as u64;
        rep.rows_in += rows;
        let descr = md.file_metadata().schema_descr();
        let key: Vec<String> = md
            .row_groups()
            .first()
            .and_then(|rg| rg.sorting_columns())
            .map(|cols| {
                cols.iter()
                    .filter_map(|c| {
                        let i = usize::try_from(c.column_idx).ok()?;
                        (i < descr.num_columns()).then(|| descr.column(i).name().to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        *keys.entry(key).or_default() += rows;
        readers.push((path, arrow_md));
    }
    let key: Vec<String> = keys
        .into_iter()
        .max_by_key(|(_, rows)| *rows)
        .map(|(k, _)| k)
        .unwrap_or_default()
        .into_iter()
        .filter(|k| {
            unified
                .fields()
                .iter()
                .any(|f| f.name().eq_ignore_ascii_case(k))
        })
        .collect();
    rep.sort_key = key.clone();

    let spill = SpillManager::new(&SpillConfig {
        dir: opts
            .spill_dir
            .clone()
            .unwrap_or_else(|| table.root().join("_compactor").join("spill")),
        max_bytes: compactor_engine::spill::DEFAULT_MAX_SPILL_BYTES,
    })?;
    let dedup_mode = match dedup.mode {
        DedupModeName::Exact => DedupMode::Exact,
        DedupModeName::None => DedupMode::None,
        DedupModeName::Keys => DedupMode::Keys(dedup.keys.clone()),
    };
    let mut sort_by = key.clone();
    if let Some(p) = &part_name {
        sort_by.insert(0, p.clone());
    }
    let run_bytes = memory.limit().saturating_sub(memory.limit() / 4) / 3;
    let mut sort_opts = SortOptions::new(sort_by, dedup_mode, run_bytes.max(1 << 20));
    sort_opts.conform = Arc::new(|b: &RecordBatch, s: &SchemaRef| {
        schema::conform(b, s).map_err(|e| arrow_schema::ArrowError::CastError(e.to_string()))
    });
    let mut sorter = ExternalSort::try_new(sort_opts, spill.clone(), memory)?;
    let mut profile = layout::Profile::default();
    for (path, arrow_md) in readers {
        let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, arrow_md)
            .with_batch_size(READ_BATCH_ROWS)
            .build()
            .with_context(|| format!("reading {}", path.display()))?;
        for batch in reader {
            let batch = batch.with_context(|| format!("reading {}", path.display()))?;
            let b = to_parsed_types(&batch, &unified)?;
            profile.observe(&b);
            let b = match &partition {
                Some((name, value)) => with_constant(&b, name, value.as_deref())?,
                None => b,
            };
            sorter.push(b)?;
        }
    }
    drop(footers);
    failpoint("compact-after-read");
    let stats = sorter.stats();
    let mut sorted = sorter.finish(&sort_schema)?;

    let sorted_idx = crate::run::column_positions(&unified, &key);
    let small = rep.rows_in <= layout::SMALL_SEGMENT_ROWS;
    let file_schema = if output.tighten_types {
        layout::file_schema(&unified, &profile, &uuid_columns, small)
    } else {
        layout::file_schema(&unified, &layout::Profile::default(), &uuid_columns, false)
    };
    // Segments of about the target size: rows per segment from the inputs' bytes per row (the
    // merged rows compress at least as well, so outputs come out at or below the target).
    let per_row = rep.bytes_in as f64 / rep.rows_in.max(1) as f64;
    let max_rows = ((opts.target_size as f64 / per_row.max(1.0)) as usize)
        .clamp(1, output.max_segment_rows.max(1));
    let layout_opts = run::layout_options(output, sorted_idx, rep.rows_in.min(max_rows as u64));
    let table_fields = run::table_fields(&unified, &uuid_columns);
    let id = format!("{}-compact", run::new_run_id());
    let mut write =
        table.begin_rewrite(&Arc::new(Schema::new(table_fields)), part_name.as_deref())?;
    let mut marker = PendingMarker::create(&pending::dir(table.root()), &id)?;
    failpoint("compact-before-segments");
    let (written, _) = run::write_segments(
        &write,
        &mut marker,
        &mut sorted,
        &mut |_| Ok(()),
        &SegmentPlan {
            id: &id,
            file_schema: &file_schema,
            layout: &layout_opts,
            data_columns: unified.fields().len(),
            partitioned: part_name.is_some(),
            max_segment_rows: max_rows,
            threads: opts.threads,
            spilled: SortStats::get(&stats.spilled_runs) > 0,
            table_rows: None,
        },
        memory,
        pool,
    )?;
    drop(sorted);
    rep.duplicates = SortStats::get(&stats.duplicates);
    rep.spilled_rows = SortStats::get(&stats.spilled_rows);
    for (seg, _, _) in &written {
        rep.rows_out += seg.rows;
        rep.bytes_out += seg.size;
        rep.segments_out += 1;
    }
    if rep.rows_in != rep.rows_out + rep.duplicates {
        bail!(
            "internal error: compaction accounting does not add up ({} rows in != {} rows out + {} duplicates); nothing was committed",
            rep.rows_in,
            rep.rows_out,
            rep.duplicates
        );
    }
    failpoint("compact-after-segments");
    let paths: Vec<PathBuf> = written.iter().map(|(s, _, _)| s.path.clone()).collect();
    for (seg, part, st) in written {
        write.stage(&seg, part.as_deref(), st)?;
    }
    for seg in group {
        write.remove(&seg.path);
    }
    let metrics = BTreeMap::from([
        ("numRemovedFiles".to_string(), rep.segments_in.to_string()),
        ("numAddedFiles".to_string(), rep.segments_out.to_string()),
        ("numRemovedBytes".to_string(), rep.bytes_in.to_string()),
        ("numAddedBytes".to_string(), rep.bytes_out.to_string()),
        (
            "compactorDuplicates".to_string(),
            rep.duplicates.to_string(),
        ),
    ]);
    failpoint("compact-before-commit");
    match write.commit(&|_, _| Ok(None), metrics) {
        Ok(c) => {
            failpoint("compact-after-commit");
            marker.remove()?;
            rep.committed = true;
            rep.version = Some(c.version);
            rep.commit_conflicts = c.conflicts;
        }
        Err(e) if run::landed(table.root(), &paths).is_some() => {
            let version = run::landed(table.root(), &paths).expect("checked");
            tracing::warn!(
                "the compaction's commit landed as version {version}, then failed: {e:#}"
            );
            marker.remove()?;
            rep.committed = true;
            rep.version = Some(version);
        }
        Err(e) if e.downcast_ref::<run::Conflict>().is_some() => {
            if paths.iter().all(|p| std::fs::remove_file(p).is_ok()) {
                marker.remove()?;
            }
            tracing::warn!("compaction of {:?} abandoned: {e:#}", rep.partition);
            rep.note = Some(format!("abandoned: {e:#}"));
        }
        Err(e) => return Err(e),
    }
    rep.peak_reserved_bytes = memory.peak() as u64;
    rep.seconds = started.elapsed().as_secs_f64();
    drop(spill);
    Ok(rep)
}

/// Brings a batch read from a segment back to the parsed types of `schema`: 16-byte UUIDs to
/// their canonical text, narrow integers to 64 bits, millisecond timestamps to microseconds;
/// columns the segment lacks are null.
pub fn to_parsed_types(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (f, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let want = schema
            .fields()
            .iter()
            .find(|t| t.name().eq_ignore_ascii_case(f.name()));
        let Some(want) = want else {
            bail!(
                "segment column {} is not a column of the table; run `compactor verify`",
                f.name()
            );
        };
        let arr: ArrayRef = match (col.data_type(), want.data_type()) {
            (DataType::FixedSizeBinary(16), DataType::Utf8) => {
                let fsb = col.as_fixed_size_binary();
                let mut b = StringBuilder::with_capacity(fsb.len(), fsb.len() * 36);
                for i in 0..fsb.len() {
                    if fsb.is_null(i) {
                        b.append_null();
                    } else {
                        let u = uuid::Uuid::from_slice(fsb.value(i))?;
                        b.append_value(u.hyphenated().to_string());
                    }
                }
                Arc::new(b.finish()) as ArrayRef
            }
            (a, b) if a == b => col.clone(),
            (_, DataType::Timestamp(TimeUnit::Microsecond, _) | DataType::Int64) => {
                arrow_cast::cast_with_options(
                    col,
                    want.data_type(),
                    &arrow_cast::CastOptions {
                        safe: false,
                        ..Default::default()
                    },
                )?
            }
            (a, b) => bail!(
                "segment column {} is {a}, which does not read back as the table's {b}",
                f.name()
            ),
        };
        fields.push(Arc::new(Field::new(
            want.name(),
            arr.data_type().clone(),
            true,
        )));
        cols.push(arr);
    }
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    let b = RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), cols, &opts)?;
    Ok(schema::conform(&b, schema)?)
}

fn with_constant(b: &RecordBatch, name: &str, value: Option<&str>) -> Result<RecordBatch> {
    let mut fields = b.schema().fields().to_vec();
    fields.push(Arc::new(Field::new(name, DataType::Utf8, true)));
    let mut cols = b.columns().to_vec();
    cols.push(Arc::new(StringArray::from(vec![value; b.num_rows()])));
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(size: u64) -> Candidate {
        Candidate { size, rows: 1 }
    }

    #[test]
    fn size_tiered_merges_full_tiers_only() {
        let p = SizeTiered::default();
        let target = 512 << 20;
        // three tiny: not enough
        assert!(p.pick(&[c(10), c(20), c(30)], target).is_empty());
        // four tiny and two mid-sized (one tier up) and one done
        let segs = [
            c(10),
            c(20),
            c(30),
            c(40),
            c(2 << 20),
            c(3 << 20),
            c(400 << 20),
        ];
        assert_eq!(p.pick(&segs, target), vec![vec![0, 1, 2, 3]]);
        // 1,000 small segments: one merge
        let many: Vec<Candidate> = (0..1000).map(|i| c(100_000 + i)).collect();
        let g = p.pick(&many, target);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].len(), 1000);
        // segments at half the target or more are left alone
        assert!(p.pick(&[c(300 << 20); 8], target).is_empty());
    }

    #[test]
    fn merge_all_takes_everything_below_the_target() {
        assert_eq!(MergeAll.pick(&[c(1), c(600), c(2)], 500), vec![vec![0, 2]]);
        assert!(MergeAll.pick(&[c(1), c(600)], 500).is_empty());
    }

    #[test]
    fn segments_read_back_in_parsed_types() {
        use arrow_array::{FixedSizeBinaryArray, Int8Array, TimestampMillisecondArray};
        let u = uuid::Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap();
        let file = RecordBatch::try_from_iter([
            (
                "n",
                Arc::new(Int8Array::from(vec![Some(-3), None])) as ArrayRef,
            ),
            (
                "id",
                Arc::new(
                    FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                        vec![Some(u.as_bytes().to_vec()), None].into_iter(),
                        16,
                    )
                    .unwrap(),
                ) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(TimestampMillisecondArray::from(vec![1_000, 2_000]).with_timezone("UTC"))
                    as ArrayRef,
            ),
        ])
        .unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int64, true),
            Field::new("id", DataType::Utf8, true),
            Field::new("later", DataType::Utf8, true),
        ]));
        let b = to_parsed_types(&file, &schema).unwrap();
        assert_eq!(b.schema().fields().len(), 4);
        let n = b
            .column_by_name("n")
            .unwrap()
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(n.value(0), -3);
        assert!(n.is_null(1));
        let id = b.column_by_name("id").unwrap().as_string::<i32>();
        assert_eq!(id.value(0), "67e55044-10b1-426f-9247-bb680e5fe0c8");
        assert!(id.is_null(1));
        let ts = b
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<arrow_array::types::TimestampMicrosecondType>();
        assert_eq!(ts.value(1), 2_000_000);
        assert_eq!(b.column_by_name("later").unwrap().null_count(), 2);
    }
}
