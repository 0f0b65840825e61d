//! The table: a Delta Lake table whose protocol is handled by `delta_kernel`.
//!
//! # Why Delta and delta_kernel
//! A table must change atomically and be readable by Spark, Athena, Trino, DuckDB, Polars and
//! pyarrow-based readers. Delta's `_delta_log` gives atomic snapshots with put-if-absent commits
//! of numbered JSON files. `delta_kernel` (the Delta project's kernel for engines) implements
//! the protocol; compactor writes the Parquet segments itself and hands the kernel their
//! metadata and statistics. See DESIGN.md for the measured build cost of this choice.
//!
//! # What a run commits, in one transaction
//! - `add` actions for its segments (with min/max/null-count statistics),
//! - new columns, when the input has fields the table does not (schema evolution),
//! - the *ledger* ([`Ledger`]): the input files consumed so far, in the domain metadata
//!   `compactor.inputs`. Because it rides in the same commit as the data, "these files were
//!   consumed" and "their rows are in the table" become true together, or not at all.
//!
//! ```text
//!  begin(schema) ─▶ write_dir(partition) ─▶ segment files (fsync) ─▶ stage(add) ... ─▶ commit(ledger)
//!                                                                                      │
//!                                                  _delta_log/000…N.json (put-if-absent) ◀┘
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use arrow_schema::{Schema, SchemaRef};
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::{TryFromArrow, TryIntoArrow};
use delta_kernel::expressions::Scalar;
use delta_kernel::object_store::local::LocalFileSystem;
use delta_kernel::schema::{DataType as KDataType, StructField, StructType};
use delta_kernel::snapshot::{Snapshot, SnapshotRef};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{CommitResult, Transaction, UpdateTableOperation};
use delta_kernel::FileMeta;
use delta_kernel_default_engine::executor::tokio::TokioBackgroundExecutor;
use delta_kernel_default_engine::parquet::DataFileMetadata;
use delta_kernel_default_engine::stats::FileStatsAccumulator;
use delta_kernel_default_engine::{DefaultEngine, DefaultEngineBuilder};
use serde::{Deserialize, Serialize};
use url::Url;

/// Domain-metadata domain holding the ledger of consumed inputs.
pub const LEDGER_DOMAIN: &str = "compactor.inputs";
/// The `commitInfo.operationMetrics` key holding the id of the run that made a commit: how a
/// run without segments of its own (a rollup-only run) tells that its commit landed.
pub const RUN_ID_METRIC: &str = "compactorRunId";
/// `engineInfo` written into each commit.
pub const ENGINE_INFO: &str = concat!("compactor/", env!("CARGO_PKG_VERSION"));

/// One consumed input file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Path as given by the job (absolute).
    pub path: String,
    /// Size as stored.
    pub size: u64,
    /// xxh3-128 of the content as stored, hex.
    pub xxh3: String,
    /// Table version that consumed it.
    pub version: u64,
    /// When it was consumed: the consuming run's commit time, or the file's modification time
    /// if that is later (a clock ahead of this one), in milliseconds since the Unix epoch.
    /// Absent in entries written before compactor recorded it; [`Ledger::prune`] then stamps
    /// them with the time of the first pruning commit, so that they are forgotten one
    /// retention later, never sooner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<u64>,
}

/// The input files a table has consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Format version of the ledger.
    pub v: u32,
    /// Consumed files.
    pub files: Vec<LedgerEntry>,
    /// Commits of rows so far (every run's commit counts one, standard input included): a
    /// commit that must know whether another run committed since it read the table compares it.
    #[serde(default)]
    pub runs: u64,
    /// The latest horizon the ledger was pruned to ([`Ledger::prune`]), in milliseconds since
    /// the Unix epoch: it may have forgotten any file consumed before. It only grows, whatever
    /// the retention of later runs or their clocks, so every run leaves unread the files last
    /// modified before it, with or without a retention of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned_before: Option<u64>,
}

impl Ledger {
    /// Lookups by size, content and path, in constant time: a table that consumed a million
    /// files answers a run of a thousand without a billion compares.
    pub fn index(&self) -> LedgerIndex<'_> {
        let mut ix = LedgerIndex::default();
        for e in &self.files {
            ix.sizes.insert(e.size);
            ix.content.entry((e.size, e.xxh3.as_str())).or_insert(e);
            ix.paths.insert(e.path.as_str());
            ix.path_sizes.insert((e.path.as_str(), e.size));
        }
        ix
    }

    /// Forgets the files consumed before `horizon` (milliseconds since the Unix epoch), raises
    /// [`Self::pruned_before`] to it, and returns how many were forgotten. Entries without a
    /// time are stamped `now` first: they are forgotten one retention after the first pruning
    /// commit, never sooner. What keeps a forgotten file from being read again is the runs' age
    /// check against `pruned_before`: a file consumed before the horizon was last modified
    /// before it too (an entry's time is never before its file's modification time).
    pub fn prune(&mut self, horizon: u64, now: u64) -> usize {
        let before = self.files.len();
        for e in &mut self.files {
            e.at.get_or_insert(now);
        }
        self.files.retain(|e| e.at.is_some_and(|at| at >= horizon));
        self.pruned_before = Some(self.pruned_before.map_or(horizon, |p| p.max(horizon)));
        before - self.files.len()
    }
}

/// [`Ledger::index`]: the ledger's entries by size, by content and by path.
#[derive(Debug, Default)]
pub struct LedgerIndex<'a> {
    sizes: std::collections::HashSet<u64>,
    content: HashMap<(u64, &'a str), &'a LedgerEntry>,
    paths: std::collections::HashSet<&'a str>,
    /// (path, size) of each entry.
    path_sizes: std::collections::HashSet<(&'a str, u64)>,
}

impl LedgerIndex<'_> {
    /// The consumed file with this content (size and xxh3-128), if any. Content, not path, is
    /// the identity: a file re-delivered under another name or moved is still consumed.
    pub fn consumed(&self, size: u64, xxh3: &str) -> Option<&LedgerEntry> {
        self.content.get(&(size, xxh3)).copied()
    }
    /// Whether some consumed file has this size (only then can content tell a file apart).
    pub fn has_size(&self, size: u64) -> bool {
        self.sizes.contains(&size)
    }
    /// Whether this path was consumed (with whatever content).
    pub fn has_path(&self, path: &str) -> bool {
        self.paths.contains(path)
    }
    /// Whether this path was consumed with this size (whatever the content).
    pub fn has_path_size(&self, path: &str, size: u64) -> bool {
        self.path_sizes.contains(&(path, size))
    }
}

/// A committed table and the engine that reads and writes it.
pub struct Table {
    root: PathBuf,
    url: Url,
    engine: DefaultEngine<TokioBackgroundExecutor>,
    snapshot: Option<SnapshotRef>,
}

fn kernel_err(e: delta_kernel::KernelError) -> anyhow::Error {
    anyhow!("delta: {e}")
}

impl Table {
    /// Opens the table at `root` (the directory is created if needed; the table itself only on
    /// the first commit).
    pub fn open(root: &Path) -> Result<Table> {
        std::fs::create_dir_all(root)
            .with_context(|| format!("creating table directory {}", root.display()))?;
        let root = root.canonicalize()?;
        let url = Url::from_directory_path(&root)
            .map_err(|_| anyhow!("table path {} is not absolute", root.display()))?;
        // fsync on: a commit (`_delta_log/N.json` and its directory entry) must be durable
        // before the run reports success and its inputs may be deleted upstream.
        let store = Arc::new(LocalFileSystem::new().with_fsync(true));
        let engine = DefaultEngineBuilder::new(store).build();
        let mut t = Table {
            root,
            url,
            engine,
            snapshot: None,
        };
        t.refresh()?;
        Ok(t)
    }

    /// Reloads the latest snapshot.
    pub fn refresh(&mut self) -> Result<()> {
        self.snapshot = if self.root.join("_delta_log").is_dir() {
            Some(
                Snapshot::builder_for(self.url.as_str())
                    .build(&self.engine)
                    .map_err(kernel_err)?,
            )
        } else {
            None
        };
        Ok(())
    }

    /// The table directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The current version, if the table exists.
    pub fn version(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.version())
    }

    /// The table's columns as Arrow fields (partition columns included), if it exists.
    pub fn schema(&self) -> Result<Option<Schema>> {
        let Some(s) = &self.snapshot else {
            return Ok(None);
        };
        let schema: Schema = s
            .schema()
            .as_ref()
            .try_into_arrow()
            .map_err(|e| anyhow!("table schema: {e}"))?;
        Ok(Some(schema))
    }

    /// Writes the checkpoint of `version` (the kernel writes it with put-if-absent semantics and
    /// then `_last_checkpoint`; a crash in between leaves a checkpoint readers may use or not).
    pub fn checkpoint(&self, version: u64) -> Result<()> {
        crate::run::failpoint("before-checkpoint");
        // The checkpoint writer reads the snapshot while it writes the file: it needs a
        // multi-threaded executor (on the default single background thread it deadlocks).
        let executor = delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor::new_owned_runtime(Some(2), None)
            .map_err(kernel_err)?;
        let engine = DefaultEngineBuilder::new(Arc::new(LocalFileSystem::new().with_fsync(true)))
            .with_task_executor(Arc::new(executor))
            .build();
        let snap = Snapshot::builder_for(self.url.as_str())
            .at_version(version)
            .build(&engine)
            .map_err(kernel_err)?;
        snap.checkpoint(&engine, None).map_err(kernel_err)?;
        Ok(())
    }

    /// The table's partition columns (none if it does not exist).
    pub fn partition_columns(&self) -> Result<Vec<String>> {
        let Some(s) = &self.snapshot else {
            return Ok(Vec::new());
        };
        let txn = s
            .clone()
            .update_table(UpdateTableOperation::Write, ENGINE_INFO, true)
            .build(&self.engine, Box::new(FileSystemCommitter::new()))
            .map_err(kernel_err)?;
        Ok(txn.logical_partition_columns().to_vec())
    }

    /// A domain-metadata entry of the current snapshot.
    pub fn domain(&self, domain: &str) -> Result<Option<String>> {
        let Some(s) = &self.snapshot else {
            return Ok(None);
        };
        s.get_domain_metadata(domain, &self.engine)
            .map_err(kernel_err)
    }

    /// The consumed-input ledger.
    pub fn ledger(&self) -> Result<Ledger> {
        let Some(s) = &self.snapshot else {
            return Ok(Ledger::default());
        };
        match s
            .get_domain_metadata(LEDGER_DOMAIN, &self.engine)
            .map_err(kernel_err)?
        {
            None => Ok(Ledger::default()),
            Some(text) => serde_json::from_str(&text).context("reading the table's input ledger"),
        }
    }

    /// Paths (relative to the root, as in the log) of the files in the current snapshot.
    pub fn live_files(&self) -> Result<Vec<String>> {
        let Some(s) = &self.snapshot else {
            return Ok(Vec::new());
        };
        if s.schema().fields().len() == 0 {
            return Ok(Vec::new());
        }
        let scan = s.clone().scan_builder().build().map_err(kernel_err)?;
        let mut out = Vec::new();
        for meta in scan.scan_metadata(&self.engine).map_err(kernel_err)? {
            let meta = meta.map_err(kernel_err)?;
            out = meta
                .visit_scan_files(out, |v: &mut Vec<String>, f| v.push(f.path))
                .map_err(kernel_err)?;
        }
        out.sort();
        Ok(out)
    }

    /// The files of the current snapshot, with what the log says of each.
    pub fn live_segments(&self) -> Result<Vec<LiveSegment>> {
        self.live_segments_where(None)
    }

    /// The files of the current snapshot that may hold rows matching `predicate`, judged from
    /// the statistics in the log alone (the kernel's data skipping; files without statistics
    /// for its columns are kept).
    pub fn live_segments_where(
        &self,
        predicate: Option<delta_kernel::expressions::PredicateRef>,
    ) -> Result<Vec<LiveSegment>> {
        let Some(s) = &self.snapshot else {
            return Ok(Vec::new());
        };
        if s.schema().fields().len() == 0 {
            return Ok(Vec::new());
        }
        let scan = s
            .clone()
            .scan_builder()
            .with_predicate(predicate)
            .build()
            .map_err(kernel_err)?;
        let mut out = Vec::new();
        for meta in scan.scan_metadata(&self.engine).map_err(kernel_err)? {
            let meta = meta.map_err(kernel_err)?;
            out = meta
                .visit_scan_files(out, |v: &mut Vec<LiveSegment>, f| {
                    v.push(LiveSegment {
                        path: f.path,
                        size: f.size.max(0) as u64,
                        num_records: f.stats.map(|s| s.num_records),
                        modification_time: f.modification_time,
                        partition_values: f.partition_values.into_iter().collect(),
                    })
                })
                .map_err(kernel_err)?;
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The absolute path of a file named in the log (relative and percent-encoded there).
    pub fn file_path(&self, log_path: &str) -> PathBuf {
        resolve(&self.root, log_path)
    }

    /// Starts a write of rows of `data_schema`, partitioned by `partition` (a string column not
    /// in `data_schema`) if given: an append (`dataChange = true`, operation `WRITE`). Creates
    /// the table on its first write; adds columns the table lacks.
    pub fn begin(&self, data_schema: &SchemaRef, partition: Option<&str>) -> Result<Write<'_>> {
        self.begin_with(
            data_schema,
            partition,
            UpdateTableOperation::Write,
            true,
            true,
        )
    }

    /// Starts a write that may also remove files (`dataChange = true`, operation `WRITE`, not
    /// a blind append): a rollup's rewrite of its partitions.
    pub fn begin_update(
        &self,
        data_schema: &SchemaRef,
        partition: Option<&str>,
    ) -> Result<Write<'_>> {
        self.begin_with(
            data_schema,
            partition,
            UpdateTableOperation::Write,
            true,
            false,
        )
    }

    /// Starts a rewrite that changes no data (`dataChange = false`, operation `OPTIMIZE`):
    /// compaction's `remove` + `add`.
    pub fn begin_rewrite(
        &self,
        data_schema: &SchemaRef,
        partition: Option<&str>,
    ) -> Result<Write<'_>> {
        self.begin_with(
            data_schema,
            partition,
            UpdateTableOperation::Optimize,
            false,
            false,
        )
    }

    fn begin_with(
        &self,
        data_schema: &SchemaRef,
        partition: Option<&str>,
        operation: UpdateTableOperation,
        data_change: bool,
        blind: bool,
    ) -> Result<Write<'_>> {
        let mut w = Write {
            table: self,
            snapshot: self.snapshot.clone(),
            txn: None,
            data_schema: data_schema.clone(),
            partition: partition.map(str::to_string),
            operation,
            data_change,
            staged: Vec::new(),
            removes: Vec::new(),
            domains: Vec::new(),
            attempts: 0,
            blind,
            run_id: None,
        };
        w.txn = Some(w.build_txn()?);
        Ok(w)
    }
}

/// A file of the current snapshot.
#[derive(Debug, Clone)]
pub struct LiveSegment {
    /// Path relative to the table root, as in the log (percent-encoded): see
    /// [`Table::file_path`].
    pub path: String,
    /// Size in bytes, as committed.
    pub size: u64,
    /// Rows, as committed (`stats.numRecords`).
    pub num_records: Option<u64>,
    /// Milliseconds since the epoch, as committed.
    pub modification_time: i64,
    /// Partition column → value.
    pub partition_values: BTreeMap<String, String>,
}

/// What every commit in `_delta_log` ever said about files: for [`crate::pending`] cleanup and
/// `vacuum`, which must not delete a file some snapshot can read.
#[derive(Debug, Default)]
pub struct LogFiles {
    /// Absolute paths of every file any commit added.
    pub added: std::collections::HashSet<PathBuf>,
    /// Absolute paths of removed files → the latest `deletionTimestamp` (ms since the epoch).
    pub removed: HashMap<PathBuf, i64>,
}

/// Reads every JSON commit of the table's log (add and remove actions only). Files re-added
/// after a remove are in both sets; callers check the current snapshot first.
pub fn log_files(root: &Path) -> Result<LogFiles> {
    let log = root.join("_delta_log");
    let mut out = LogFiles::default();
    let entries = match std::fs::read_dir(&log) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("listing {}", log.display())),
    };
    for e in entries {
        let p = e?.path();
        let is_commit = p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
            n.ends_with(".json") && n.bytes().take(20).all(|b| b.is_ascii_digit())
        });
        if !is_commit {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        for line in text
            .lines()
            .filter(|l| l.contains("\"add\"") || l.contains("\"remove\""))
        {
            let v: serde_json::Value =
                serde_json::from_str(line).with_context(|| format!("parsing {}", p.display()))?;
            if let Some(path) = v.pointer("/add/path").and_then(|p| p.as_str()) {
                out.added.insert(resolve(root, path));
            }
            if let Some(path) = v.pointer("/remove/path").and_then(|p| p.as_str()) {
                let at = v
                    .pointer("/remove/deletionTimestamp")
                    .and_then(|t| t.as_i64())
                    .unwrap_or(0);
                let e = out.removed.entry(resolve(root, path)).or_insert(at);
                *e = (*e).max(at);
            }
        }
    }
    Ok(out)
}

/// A path as the log writes it: relative to the root and percent-encoded, or an absolute
/// `file://` URL.
fn resolve(root: &Path, log_path: &str) -> PathBuf {
    if log_path.contains("://") {
        if let Some(p) = Url::parse(log_path)
            .ok()
            .and_then(|u| u.to_file_path().ok())
        {
            return p;
        }
    }
    root.join(
        percent_encoding::percent_decode_str(log_path)
            .decode_utf8_lossy()
            .as_ref(),
    )
}

enum Txn {
    Create(Transaction<delta_kernel::transaction::CreateTable>),
    Update(Transaction),
}

macro_rules! with_txn {
    ($txn:expr, $t:ident => $body:expr) => {
        match $txn {
            Txn::Create($t) => $body,
            Txn::Update($t) => $body,
        }
    };
}

/// A checkpoint (the whole snapshot in one Parquet file) is written after every this many
/// versions, so that loading a snapshot reads at most this many JSON commits (Delta's default).
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 10;

/// How many times a commit is tried against newer versions before it gives up.
pub const DEFAULT_COMMIT_ATTEMPTS: u32 = 25;

/// An open write. Segments are staged (with their statistics); [`Write::commit`] commits
/// them, optimistically: if another writer committed first, the write is rebuilt on the newer
/// snapshot (schema evolution and removes checked again, the ledger rebased by the caller) and
/// tried again. Dropping it without committing commits nothing.
///
/// ```text
///  snapshot N ─▶ txn(N) ─▶ put-if-absent N+1 ─┬─ ok ─▶ version N+1
///                   ▲                          └─ taken ─▶ snapshot M ─▶ rebase ─┐
///                   └──────────────────────────────────────────────── retry ◀────┘
/// ```
pub struct Write<'a> {
    table: &'a Table,
    snapshot: Option<SnapshotRef>,
    txn: Option<Txn>,
    data_schema: SchemaRef,
    partition: Option<String>,
    operation: UpdateTableOperation,
    data_change: bool,
    staged: Vec<Staged>,
    removes: Vec<String>,
    domains: Vec<(String, String)>,
    attempts: u32,
    /// A blind append (`begin`): no removes, so the kernel may commit it as one.
    blind: bool,
    /// The run committing, when its metrics carry [`RUN_ID_METRIC`].
    run_id: Option<String>,
}

/// A segment file written into the table directory, ready to be staged.
#[derive(Debug, Clone)]
pub struct WrittenSegment {
    /// Absolute path.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Rows.
    pub rows: u64,
}

struct Staged {
    path: PathBuf,
    size: u64,
    modified: i64,
    partition_value: Option<String>,
    stats: arrow_array::StructArray,
}

/// How a commit was rebased and retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct Committed {
    /// The version committed.
    pub version: u64,
    /// How many times another writer's commit came first.
    pub conflicts: u32,
}

impl Write<'_> {
    /// A transaction on `self.snapshot`: creates the table if there is none, adds the columns
    /// of `data_schema` it lacks, checks the partitioning.
    fn build_txn(&self) -> Result<Txn> {
        let table = self.table;
        let partition = self.partition.as_deref();
        let mut full = self
            .data_schema
            .fields()
            .iter()
            .cloned()
            .collect::<Vec<_>>();
        if let Some(p) = partition {
            full.push(Arc::new(arrow_schema::Field::new(
                p,
                arrow_schema::DataType::Utf8,
                true,
            )));
        }
        let full_schema = Schema::new(full);
        let kschema = Arc::new(
            StructType::try_from_arrow(&full_schema).map_err(|e| anyhow!("table schema: {e}"))?,
        );
        Ok(match &self.snapshot {
            None => {
                if !self.data_change {
                    bail!("internal error: a rewrite of a table that does not exist");
                }
                let mut b = create_table(table.url.as_str(), kschema, ENGINE_INFO, true)
                    .with_table_properties([("delta.feature.domainMetadata", "supported")]);
                if let Some(p) = partition {
                    b = b.with_data_layout(DataLayout::partitioned([p]));
                }
                Txn::Create(
                    b.build(&table.engine, Box::new(FileSystemCommitter::new()))
                        .map_err(kernel_err)?,
                )
            }
            Some(snap) => {
                let existing = snap.schema();
                // A concurrent writer may have added one of our new columns with another type.
                for f in kschema.fields() {
                    if let Some(e) = existing
                        .fields()
                        .find(|e| e.name().eq_ignore_ascii_case(f.name()))
                    {
                        if e.data_type() != f.data_type() {
                            bail!(crate::run::Conflict(format!(
                                "column {} is {} in the table but {} in this write (a concurrent writer added it first); nothing was committed, run again",
                                f.name(),
                                e.data_type(),
                                f.data_type()
                            )));
                        }
                    }
                }
                let mut b = snap.clone().update_table(
                    self.operation.clone(),
                    ENGINE_INFO,
                    self.data_change,
                );
                let mut added = false;
                for f in kschema.fields() {
                    if existing
                        .fields()
                        .all(|e| !e.name().eq_ignore_ascii_case(f.name()))
                    {
                        b = b.add_column(StructField::nullable(
                            f.name().clone(),
                            f.data_type().clone(),
                        ));
                        added = true;
                    }
                }
                if !added && self.data_change && self.blind {
                    b = b.with_blind_append();
                }
                let txn = b
                    .build(&table.engine, Box::new(FileSystemCommitter::new()))
                    .map_err(kernel_err)?;
                let have: Vec<String> = txn.logical_partition_columns().to_vec();
                let want: Vec<String> = partition.map(|p| vec![p.to_string()]).unwrap_or_default();
                if !have
                    .iter()
                    .map(|s| s.to_ascii_lowercase())
                    .eq(want.iter().map(|s| s.to_ascii_lowercase()))
                {
                    bail!(crate::run::JobError(format!(
                        "the table is partitioned by {have:?} but the job asks for {want:?}"
                    )));
                }
                Txn::Update(txn)
            }
        })
    }

    fn txn(&self) -> &Txn {
        self.txn
            .as_ref()
            .expect("a write always holds a transaction")
    }

    fn context(
        &self,
        partition_value: Option<&str>,
    ) -> Result<delta_kernel::transaction::BoundWriteContext> {
        let state = with_txn!(self.txn(), t => t.write_state()).map_err(kernel_err)?;
        let mut b = state.write_context_builder();
        if let Some(p) = &self.partition {
            let v = match partition_value {
                Some(v) => Scalar::String(v.to_string()),
                None => Scalar::Null(KDataType::STRING),
            };
            b = b.with_partition_values(HashMap::from([(p.clone(), v)]));
        }
        b.build().map_err(kernel_err)
    }

    /// The directory new segment files of this partition go to (created).
    pub fn dir_for(&self, partition_value: Option<&str>) -> Result<PathBuf> {
        let ctx = self.context(partition_value)?;
        let dir = ctx
            .write_dir()
            .to_file_path()
            .map_err(|_| anyhow!("write dir is not a local path"))?;
        if !dir.starts_with(&self.table.root) {
            bail!("refusing to write outside the table: {}", dir.display());
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// A collector of a new segment's statistics: give it every batch written to the segment,
    /// then pass it to [`Write::stage`].
    pub fn stats_collector(&self, partition_value: Option<&str>) -> Result<FileStatsAccumulator> {
        let ctx = self.context(partition_value)?;
        Ok(FileStatsAccumulator::new(
            ctx.stats_columns(),
            ctx.physical_data_schema(),
        ))
    }

    /// Stages a written segment, with the statistics of its rows.
    pub fn stage(
        &mut self,
        seg: &WrittenSegment,
        partition_value: Option<&str>,
        stats: FileStatsAccumulator,
    ) -> Result<()> {
        if Url::from_file_path(&seg.path).is_err() {
            bail!("segment path {} is not absolute", seg.path.display());
        }
        let stats = stats
            .finish()
            .map_err(kernel_err)?
            .ok_or_else(|| anyhow!("segment {} has no rows", seg.path.display()))?;
        let modified = std::fs::metadata(&seg.path)?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        self.staged.push(Staged {
            path: seg.path.clone(),
            size: seg.size,
            modified,
            partition_value: partition_value.map(str::to_string),
            stats,
        });
        Ok(())
    }

    /// Removes a file of the snapshot (its path as in the log, see [`LiveSegment::path`]). If a
    /// concurrent writer removed it first, the commit is abandoned with a [`crate::run::Conflict`].
    pub fn remove(&mut self, log_path: &str) {
        self.removes.push(log_path.to_string());
    }

    /// Sets a domain-metadata entry (other than the ledger) in this commit.
    pub fn set_domain(&mut self, domain: &str, configuration: String) {
        self.domains.push((domain.to_string(), configuration));
    }

    /// Stages the adds and removes on the current transaction.
    fn stage_actions(&mut self) -> Result<()> {
        let mut adds = Vec::with_capacity(self.staged.len());
        for st in &self.staged {
            let ctx = self.context(st.partition_value.as_deref())?;
            let url = Url::from_file_path(&st.path).expect("checked in stage");
            let meta = DataFileMetadata::new(
                FileMeta {
                    location: url,
                    last_modified: st.modified,
                    size: st.size,
                },
                st.stats.clone(),
            );
            adds.push(
                delta_kernel_default_engine::build_add_file_metadata(meta, &ctx)
                    .map_err(kernel_err)?,
            );
        }
        let removes = if self.removes.is_empty() {
            Vec::new()
        } else {
            let snap = self
                .snapshot
                .clone()
                .context("internal error: removing files from a table that does not exist")?;
            let wanted: std::collections::HashSet<&str> =
                self.removes.iter().map(String::as_str).collect();
            let scan = snap.scan_builder().build().map_err(kernel_err)?;
            let mut found = 0usize;
            let mut out = Vec::new();
            for meta in scan.scan_metadata(&self.table.engine).map_err(kernel_err)? {
                let meta = meta.map_err(kernel_err)?;
                let paths = meta
                    .visit_scan_files(Vec::new(), |v: &mut Vec<(usize, String)>, f| {
                        v.push((v.len(), f.path))
                    })
                    .map_err(kernel_err)?;
                // visit_scan_files reports only selected rows, in order: map them back to rows
                // (a selection vector shorter than the data selects the rows past its end)
                let n = meta.scan_files.data().len();
                let sv = meta.scan_files.selection_vector();
                let selected: Vec<usize> = (0..n)
                    .filter(|&i| sv.get(i).copied().unwrap_or(true))
                    .collect();
                if paths.len() != selected.len() {
                    bail!(
                        "internal error: the scan listed {} files for {} selected rows",
                        paths.len(),
                        selected.len()
                    );
                }
                let mut keep = vec![false; n];
                for (k, path) in paths {
                    if wanted.contains(path.as_str()) {
                        keep[selected[k]] = true;
                        found += 1;
                    }
                }
                if keep.iter().any(|k| *k) {
                    out.push(
                        delta_kernel::engine_data::FilteredEngineData::try_new(
                            meta.scan_files.into_parts().0,
                            keep,
                        )
                        .map_err(kernel_err)?,
                    );
                }
            }
            if found != wanted.len() {
                bail!(crate::run::Conflict(format!(
                    "{} of the {} files this rewrite replaces were removed by a concurrent writer; nothing was committed",
                    wanted.len() - found,
                    wanted.len()
                )));
            }
            out
        };
        match self
            .txn
            .as_mut()
            .expect("a write always holds a transaction")
        {
            Txn::Create(t) => {
                if !removes.is_empty() {
                    bail!("internal error: removing files while creating the table");
                }
                for a in adds {
                    t.add_files(a);
                }
            }
            Txn::Update(t) => {
                for a in adds {
                    t.add_files(a);
                }
                for r in removes {
                    t.remove_files(r);
                }
            }
        }
        Ok(())
    }

    /// Commits the staged segments and removes, with the ledger `rebase` returns for the
    /// snapshot the commit is built on (given its ledger and the version the commit would get) (`None`: leave the ledger as it is), and the run's
    /// metrics. When another writer commits first, the snapshot is reloaded, the write rebuilt
    /// on it and `rebase` asked again (it fails the commit, typically with
    /// [`crate::run::Conflict`], when the newer snapshot makes this commit wrong), up to
    /// [`DEFAULT_COMMIT_ATTEMPTS`] times.
    pub fn commit(
        mut self,
        rebase: &dyn Fn(&Ledger, u64) -> Result<Option<Ledger>>,
        metrics: BTreeMap<String, String>,
    ) -> Result<Committed> {
        self.run_id = metrics.get(RUN_ID_METRIC).cloned();
        let engine = &self.table.engine;
        let mut conflicts = 0u32;
        loop {
            self.attempts += 1;
            let current = match &self.snapshot {
                None => Ledger::default(),
                Some(s) => read_ledger(s, engine)?,
            };
            let next = self.snapshot.as_ref().map_or(0, |s| s.version() + 1);
            let ledger = rebase(&current, next)?;
            self.stage_actions()?;
            crate::run::failpoint("commit-before-log");
            let txn = self.txn.take().expect("a write always holds a transaction");
            let m = metrics.clone().into_iter().map(|(k, v)| (k, Some(v)));
            let ledger_json = ledger.as_ref().map(serde_json::to_string).transpose()?;
            let domains = &self.domains;
            let result = with_txn!(txn, t => {
                let mut t = t.with_operation_metrics(m);
                for (d, c) in domains {
                    t = t.with_domain_metadata(d.clone(), c.clone());
                }
                if let Some(l) = &ledger_json {
                    t = t.with_domain_metadata(LEDGER_DOMAIN.to_string(), l.clone());
                }
                match t.commit(engine).map_err(kernel_err)? {
                    CommitResult::Committed(c) => Ok(c.commit_version()),
                    CommitResult::Conflicted(c) => Err(Some(c.conflict_version())),
                    CommitResult::Retryable(_) => Err(None),
                }
            });
            match result {
                Ok(version) => {
                    if version > 0 && version % DEFAULT_CHECKPOINT_INTERVAL == 0 {
                        // Best effort: a checkpoint only makes later snapshots faster to load.
                        if let Err(e) = self.table.checkpoint(version) {
                            tracing::warn!("writing the checkpoint of version {version}: {e:#}");
                        }
                    }
                    return Ok(Committed { version, conflicts });
                }
                Err(conflict) => {
                    // An I/O error or a conflict may hide our own commit having landed (the log
                    // entry was written, then something failed): look before trying again.
                    if let Some(v) = self.landed()? {
                        return Ok(Committed {
                            version: v,
                            conflicts,
                        });
                    }
                    if let Some(v) = conflict {
                        conflicts += 1;
                        tracing::info!(
                            "version {v} was committed by another writer first; rebasing (attempt {})",
                            self.attempts + 1
                        );
                    }
                    if self.attempts >= DEFAULT_COMMIT_ATTEMPTS {
                        bail!(crate::run::Conflict(format!(
                            "the commit lost to other writers {} times; nothing was committed, run again",
                            self.attempts
                        )));
                    }
                    // back off a little, more each time, so racing writers spread out
                    let jitter = u64::from(std::process::id() % 7);
                    std::thread::sleep(std::time::Duration::from_millis(
                        (5 + jitter) * u64::from(self.attempts),
                    ));
                    self.snapshot = Some(
                        Snapshot::builder_for(self.table.url.as_str())
                            .build(engine)
                            .map_err(kernel_err)?,
                    );
                    self.txn = Some(self.build_txn()?);
                }
            }
        }
    }
}

impl Write<'_> {
    /// The version whose commit added this write's first segment (or, without segments,
    /// whose commit names this write's run), if one did.
    fn landed(&self) -> Result<Option<u64>> {
        match (self.staged.first(), &self.run_id) {
            (Some(first), _) => committed_in(&self.table.root, &first.path),
            (None, Some(id)) => committed_run(&self.table.root, id),
            (None, None) => Ok(None),
        }
    }
}

/// The version of the commit whose metrics name the run `run_id` ([`RUN_ID_METRIC`]), if any.
pub fn committed_run(root: &Path, run_id: &str) -> Result<Option<u64>> {
    let Ok(entries) = std::fs::read_dir(root.join("_delta_log")) else {
        return Ok(None);
    };
    for e in entries {
        let p = e?.path();
        let Some(v) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|v| v.parse::<u64>().ok())
        else {
            continue;
        };
        let text = std::fs::read_to_string(&p)?;
        if !text.contains(run_id) {
            continue;
        }
        for line in text.lines().filter(|l| l.contains(run_id)) {
            let a: serde_json::Value = serde_json::from_str(line)?;
            let named = a
                .pointer(&format!("/commitInfo/operationMetrics/{RUN_ID_METRIC}"))
                .and_then(|x| x.as_str());
            if named == Some(run_id) {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// The version of the commit that added `file` (absolute path), if any commit did.
pub fn committed_in(root: &Path, file: &Path) -> Result<Option<u64>> {
    let Some(name) = file.file_name().and_then(|n| n.to_str()) else {
        return Ok(None);
    };
    let log = root.join("_delta_log");
    let Ok(entries) = std::fs::read_dir(&log) else {
        return Ok(None);
    };
    for e in entries {
        let p = e?.path();
        let Some(n) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(v) = n.strip_suffix(".json").and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        let text = std::fs::read_to_string(&p)?;
        if text.contains(name) {
            for line in text.lines().filter(|l| l.contains(name)) {
                let a: serde_json::Value = serde_json::from_str(line)?;
                if a.pointer("/add/path")
                    .and_then(|x| x.as_str())
                    .is_some_and(|x| resolve(root, x) == file)
                {
                    return Ok(Some(v));
                }
            }
        }
    }
    Ok(None)
}

fn read_ledger(s: &SnapshotRef, engine: &DefaultEngine<TokioBackgroundExecutor>) -> Result<Ledger> {
    match s
        .get_domain_metadata(LEDGER_DOMAIN, engine)
        .map_err(kernel_err)?
    {
        None => Ok(Ledger::default()),
        Some(text) => serde_json::from_str(&text).context("reading the table's input ledger"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, size: u64, hash: &str, at: Option<u64>) -> LedgerEntry {
        LedgerEntry {
            path: path.into(),
            size,
            xxh3: hash.into(),
            version: 0,
            at,
        }
    }

    #[test]
    fn the_index_finds_entries_by_content_size_and_path() {
        let l = Ledger {
            v: 1,
            files: vec![entry("/a", 10, "aa", None), entry("/b", 20, "bb", Some(5))],
            runs: 2,
            pruned_before: None,
        };
        let ix = l.index();
        assert_eq!(ix.consumed(10, "aa").map(|e| e.path.as_str()), Some("/a"));
        assert!(ix.consumed(10, "bb").is_none() && ix.consumed(20, "aa").is_none());
        assert!(ix.has_size(20) && !ix.has_size(30));
        assert!(ix.has_path_size("/b", 20) && !ix.has_path_size("/b", 10));
        assert!(!ix.has_path_size("/c", 20));
        assert!(ix.has_path("/b") && !ix.has_path("/c"));
    }

    #[test]
    fn prune_forgets_entries_before_the_horizon_and_stamps_old_ones() {
        let mut l = Ledger {
            v: 1,
            files: vec![
                entry("/old", 1, "1", Some(100)),
                entry("/edge", 2, "2", Some(200)),
                entry("/unstamped", 3, "3", None),
                entry("/new", 4, "4", Some(300)),
            ],
            runs: 4,
            pruned_before: None,
        };
        assert_eq!(l.prune(200, 1000), 1);
        assert_eq!(l.pruned_before, Some(200));
        let kept: Vec<_> = l.files.iter().map(|e| (e.path.as_str(), e.at)).collect();
        assert_eq!(
            kept,
            [
                ("/edge", Some(200)),
                ("/unstamped", Some(1000)),
                ("/new", Some(300))
            ]
        );
        // the stamped entry goes one retention after its stamp
        assert_eq!(l.prune(1001, 2000), 3);
        assert!(l.files.is_empty());
        // the mark never goes back (a shorter horizon: another retention, or a clock behind)
        assert_eq!(l.prune(500, 2000), 0);
        assert_eq!(l.pruned_before, Some(1001));
    }

    #[test]
    fn ledgers_written_before_entry_times_still_read() {
        let old = r#"{"v":1,"files":[{"path":"/a","size":1,"xxh3":"ff","version":3}],"runs":1}"#;
        let l: Ledger = serde_json::from_str(old).unwrap();
        assert_eq!(l.files[0].at, None);
        // and an entry without a time is written as it was
        assert_eq!(serde_json::to_string(&l).unwrap(), old);
    }
}
