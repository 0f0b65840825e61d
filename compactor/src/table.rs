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
}

/// The input files a table has consumed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// Format version of the ledger.
    pub v: u32,
    /// Consumed files.
    pub files: Vec<LedgerEntry>,
}

impl Ledger {
    /// The consumed file with this content (size and xxh3-128), if any. Content, not path, is
    /// the identity: a file re-delivered under another name or moved is still consumed.
    pub fn consumed(&self, size: u64, xxh3: &str) -> Option<&LedgerEntry> {
        self.files.iter().find(|e| e.size == size && e.xxh3 == xxh3)
    }
    /// Whether this path was consumed (with whatever content).
    pub fn changed(&self, path: &str) -> bool {
        self.files.iter().any(|e| e.path == path)
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

    /// Starts a write of rows of `data_schema`, partitioned by `partition` (a string column not
    /// in `data_schema`) if given. Creates the table on its first write; adds columns the table
    /// lacks.
    pub fn begin(&self, data_schema: &SchemaRef, partition: Option<&str>) -> Result<Write<'_>> {
        let mut full = data_schema.fields().iter().cloned().collect::<Vec<_>>();
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
        let txn = match &self.snapshot {
            None => {
                let mut b = create_table(self.url.as_str(), kschema, ENGINE_INFO, true)
                    .with_table_properties([("delta.feature.domainMetadata", "supported")]);
                if let Some(p) = partition {
                    b = b.with_data_layout(DataLayout::partitioned([p]));
                }
                Txn::Create(
                    b.build(&self.engine, Box::new(FileSystemCommitter::new()))
                        .map_err(kernel_err)?,
                )
            }
            Some(snap) => {
                let existing = snap.schema();
                let mut b =
                    snap.clone()
                        .update_table(UpdateTableOperation::Write, ENGINE_INFO, true);
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
                if !added {
                    b = b.with_blind_append();
                }
                let txn = b
                    .build(&self.engine, Box::new(FileSystemCommitter::new()))
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
        };
        Ok(Write {
            table: self,
            txn,
            partition: partition.map(str::to_string),
        })
    }
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

/// An open write transaction. Dropping it without [`Write::commit`] commits nothing.
pub struct Write<'a> {
    table: &'a Table,
    txn: Txn,
    partition: Option<String>,
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

impl Write<'_> {
    fn context(
        &self,
        partition_value: Option<&str>,
    ) -> Result<delta_kernel::transaction::BoundWriteContext> {
        let state = with_txn!(&self.txn, t => t.write_state()).map_err(kernel_err)?;
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
        let ctx = self.context(partition_value)?;
        let url = Url::from_file_path(&seg.path)
            .map_err(|_| anyhow!("segment path {} is not absolute", seg.path.display()))?;
        let stats = stats
            .finish()
            .map_err(kernel_err)?
            .ok_or_else(|| anyhow!("segment {} has no rows", seg.path.display()))?;
        let modified = std::fs::metadata(&seg.path)?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
        let meta = DataFileMetadata::new(
            FileMeta {
                location: url,
                last_modified: modified,
                size: seg.size,
            },
            stats,
        );
        let add =
            delta_kernel_default_engine::build_add_file_metadata(meta, &ctx).map_err(kernel_err)?;
        with_txn!(&mut self.txn, t => t.add_files(add));
        Ok(())
    }

    /// Commits the staged segments, the ledger and the run's metrics. Returns the new version.
    pub fn commit(self, ledger: &Ledger, metrics: BTreeMap<String, String>) -> Result<u64> {
        let engine = &self.table.engine;
        let ledger = serde_json::to_string(ledger)?;
        let version = with_txn!(self.txn, t => {
            let t = t.with_domain_metadata(LEDGER_DOMAIN.to_string(), ledger).with_operation_metrics(metrics.into_iter().map(|(k, v)| (k, Some(v))));
            match t.commit(engine).map_err(kernel_err)? {
                CommitResult::Committed(c) => c.commit_version(),
                CommitResult::Conflicted(c) => bail!(crate::run::Conflict(format!("another writer committed version {} first; nothing was committed, run again", c.conflict_version()))),
                CommitResult::Retryable(_) => bail!("the commit failed with a retryable I/O error; nothing was committed, run again"),
            }
        });
        Ok(version)
    }
}
