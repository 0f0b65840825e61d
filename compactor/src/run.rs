//! One `compactor run`: inputs in, one atomic commit out.
//!
//! # Algorithm
//! 1. Clean up what crashed writers left (the files of unlocked markers in
//!    `_compactor/pending/` that no commit added, see [`crate::pending`]). No lock is taken on
//!    the table: other runs and a compaction may work beside this one.
//! 2. Find the inputs; drop those the table's ledger says were consumed (by size, then, for a
//!    file whose size matches, by content hash) and, with `[input] ledger_retention`, those
//!    last modified before it (counted as `files_expired`; the commit forgets the ledger
//!    entries older than the retention, see [`crate::table::Ledger::prune`]).
//! 3. Cut each input into chunks and parse them as tasks on the pool, a window of them in
//!    flight, taking the results in input order and hashing the file for the ledger. Rejected
//!    lines go to the quarantine file, numbered from each chunk's parsed line count. Each
//!    batch widens the run's schema (`SchemaTracker`), is conformed to it and pushed into the
//!    engine's `ExternalSort`, which spills sorted runs to disk when its share of the memory
//!    budget is full.
//! 4. Fail without committing if the rejected share is above `max_rejected_share`.
//! 5. Check the final schema (partition column, column cap) and finish the sort: the sorted,
//!    deduplicated rows stream out of a k-way merge (or straight from memory).
//! 6. Write segments as the rows stream (a new one at each partition change and every
//!    `max_segment_rows`): the merge runs on a producer thread and hands batches over a
//!    bounded queue to the writer, whose columns are encoded in parallel; rows the table already
//!    holds are dropped here for `[dedup] scope` = `table`/`partition` ([`crate::tabledup`]).
//!    fsync, then commit every segment together with the updated ledger in one Delta
//!    transaction, optimistically: on a conflict it is rebased on the newer version and
//!    retried, or abandoned (segments deleted) when a concurrent run consumed one of its inputs.
//! 7. With `[[rollup]]`s ([`crate::rollup`]): the rows written in step 6 (after every dedup)
//!    are also aggregated into one `HashAggregate` per rollup, in a memory pool of their own;
//!    their states are staged and fsynced before the commit, and applied to each rollup table
//!    after it. What a crashed run staged is applied (or dropped) by the next run, in step 1.
//!
//! ```text
//!   cleanup ─▶ discover ─▶ ledger filter ─▶ chunk ─▶ parse ∥ ─▶ quarantine
//!                                                              │
//!                                   schema tracker + conform ◀─┘
//!                                              │
//!                      ExternalSort::push ─▶ (spill sorted runs when full)
//!                                              │ finish
//!   commit(adds + ledger, retried) ◀─ segments ◀─ queue(4) ◀─ merge + dedup (producer thread)
//! ```
//! Invariant checked before committing: `records_in == rows_out + duplicates + rejected`
//! (a record is a line, or a multi-line record's lines; header lines are counted apart, in
//! `meta_lines`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use compactor_engine::{
    DedupMode, ExternalSort, MemoryPool, MemoryReservation, SortOptions, SortStats, SpillConfig,
    SpillManager,
};
use compactor_formats::{parse_chunk, schema, ParsedChunk};
use delta_kernel_default_engine::stats::FileStatsAccumulator;
use rayon::prelude::*;
use serde::Serialize;

use crate::input::{self, Chunker, InputFile};
use crate::job::{DedupModeName, Granularity, Job, DEFAULT_CHUNK_BYTES};
use crate::pending::{self, PendingMarker};
use crate::progress::Progress;
use crate::quarantine::Quarantine;
use crate::segment::{self, SegmentWriter};
use crate::table::{Ledger, LedgerEntry, Table, WrittenSegment};
use crate::{layout, sortkey};

/// With `[[rollup]]`s, 1/this of the memory budget is theirs (see `run_in_pool`).
pub const ROLLUP_MEMORY_DIVISOR: usize = 4;

/// A commit lost to a concurrent writer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Conflict(pub String);

/// The run rejected more lines than the job allows; nothing was committed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TooManyRejected(pub String);

/// The job does not fit the table or the data (a usage error: exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

/// Some of a run's inputs were committed by a concurrent run while it read them; it committed
/// nothing (its rows would have been duplicates).
#[derive(Debug, thiserror::Error)]
#[error("{} of this run's input files were consumed by a concurrent run ({}); nothing was committed, run again to read the others", files.len(), files.join(", "))]
pub struct ConsumedConcurrently {
    /// Every input was.
    pub all: bool,
    /// Which.
    pub files: Vec<String>,
}

/// Another process holds a lock this command needs.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Locked(pub String);

/// How to run (from the command line, not the job).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads.
    pub threads: usize,
    /// Memory budget in bytes (default: the job's, else a share of the machine's memory).
    pub memory: Option<usize>,
    /// Spill directory (default: the job's, else `<table>/_compactor/spill`).
    pub spill_dir: Option<PathBuf>,
    /// Cap on spill bytes (default: the job's, else 1 TiB).
    pub max_spill_bytes: Option<u64>,
    /// Size of the sort's in-memory runs (default: derived from the budget). For tests and
    /// tuning: a small value forces many spilled runs.
    pub run_bytes: Option<usize>,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a run did. `records_in == rows_out + duplicates + rejected` always holds, and
/// `lines_in == records_in + meta_lines` unless records span several lines.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// Unique id of the run (names its quarantine file).
    pub run_id: String,
    /// Table directory.
    pub table: String,
    /// Whether a commit was made.
    pub committed: bool,
    /// Table version after the run (`null` if there is no table).
    pub version: Option<u64>,
    /// Why nothing was committed, when nothing was.
    pub note: Option<String>,
    /// The sort key the rows were written in (chosen by compactor for `sort_by = "auto"`).
    pub sort_key: Vec<String>,
    /// Input files read.
    pub files_in: u64,
    /// Input files skipped because the table already consumed them.
    pub files_skipped: u64,
    /// Input files not read because they were last modified before `[input]
    /// ledger_retention` and the ledger does not name them (it may have forgotten them).
    pub files_expired: u64,
    /// Lines read.
    pub lines_in: u64,
    /// Records read: lines, or groups of lines for multi-line records, not counting
    /// `meta_lines`.
    pub records_in: u64,
    /// Header and directive lines consumed as format metadata (a CSV header, Zeek `#fields`,
    /// W3C `#Fields:`), neither rows nor rejects.
    pub meta_lines: u64,
    /// Inputs that could not be read to their end (a truncated or corrupt gzip/zstd stream,
    /// or more than `max_decompressed_bytes` decoded): file, compression and offset. The
    /// records decoded before the error were kept; the error counts as one rejected record
    /// and is in the quarantine.
    pub input_errors: Vec<String>,
    /// Per input file whose format was `auto`: the format chosen and how sure the detection
    /// was (`"syslog (confidence 1.00 on 200 records)"`).
    pub detected: BTreeMap<String, String>,
    /// Rows written.
    pub rows_out: u64,
    /// A rollup-only run (`[output] detailed = false`): the rows aggregated into the rollups,
    /// which stand for `rows_out` in the accounting (`records_in` = these + `duplicates` +
    /// `rejected`). `None` for a run that writes rows.
    pub rows_rolled_up: Option<u64>,
    /// Of `duplicates`, those the table already held (`[dedup] scope` = `table`/`partition`).
    pub duplicates_in_table: u64,
    /// Segments of the table read to find them, of how many.
    pub dedup_segments_read: Option<(u64, u64)>,
    /// How many times a concurrent writer committed first and this run's commit was rebased.
    pub commit_conflicts: u32,
    /// Records dropped as duplicates.
    pub duplicates: u64,
    /// Records rejected (see the quarantine file).
    pub rejected: u64,
    /// Bytes of input as stored.
    pub bytes_in: u64,
    /// Bytes of input after decompression.
    pub bytes_decoded: u64,
    /// Bytes of segments written.
    pub bytes_out: u64,
    /// Segments written.
    pub segments: u64,
    /// Columns in the output.
    pub columns: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Quarantine file, if any line was rejected.
    pub quarantine: Option<String>,
    /// Most memory reserved at once from the budget.
    pub peak_reserved_bytes: u64,
    /// The memory budget.
    pub memory_limit_bytes: u64,
    /// Memory still reserved when the run ended: always 0 (tests check it).
    pub reserved_at_end: u64,
    /// What this run (and the recovery of crashed runs' staged rollups) did to each rollup
    /// table (see `rollup.rs`).
    pub rollups: Vec<crate::rollup::RollupReport>,
    /// Sorted runs written to disk (merge passes included).
    pub spilled_runs: u64,
    /// Rows written to spill files (merge passes included).
    pub spilled_rows: u64,
    /// Intermediate merge passes.
    pub merge_passes: u64,
    /// Most bytes of spill files on disk at once.
    pub spill_peak_bytes: u64,
    /// Worker threads used.
    pub threads: usize,
    /// Seconds spent in each phase: `parse` (read, decode, parse), `sort` (unify, sort,
    /// dedup), `write` (encode and fsync segments), `commit` (stage and commit).
    pub phase_seconds: BTreeMap<String, f64>,
    /// CPU seconds (user + system, all threads) of each phase; divided by `phase_seconds`, the
    /// number of cores the phase kept busy.
    pub phase_cpu_seconds: BTreeMap<String, f64>,
}

/// Bytes of each input file read for format detection and headers (see
/// [`ParseOptions::for_file`](compactor_formats::ParseOptions::for_file)).
pub const HEAD_BYTES: usize = 256 << 10;

/// Opens an input and reads its first [`HEAD_BYTES`] (decoded), cut after the last whole line
/// if there is more, for [`file_options`]. The source still starts at the beginning: a map is
/// only looked at, and the bytes read from a stream (standard input, a compressed file) are
/// put back in front of the rest. A stream that fails within its head gives the bytes before
/// the fault; the fault itself comes again when the chunker reads on.
pub(crate) fn open_with_head(
    file: &InputFile,
    max_decoded: u64,
    consumed: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<(Vec<u8>, input::Opened)> {
    use std::io::Read;
    let mut opened = input::open(file, max_decoded, consumed.clone())?;
    let mut head = match opened.source {
        input::Source::Mapped(None) => Vec::new(),
        input::Source::Mapped(Some(ref map)) => map[..map.len().min(HEAD_BYTES)].to_vec(),
        input::Source::Stream(r) => {
            let mut r = r;
            let mut v = Vec::with_capacity(HEAD_BYTES);
            let mut failed = false;
            while v.len() < HEAD_BYTES && !failed {
                let mut buf = [0u8; 64 << 10];
                let want = buf.len().min(HEAD_BYTES - v.len());
                match r.read(&mut buf[..want]) {
                    Ok(0) => break,
                    Ok(n) => v.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => failed = true,
                }
            }
            // A decoder repeats its error on every later read, so the chunker meets the fault
            // again right after the head's bytes, and reports it there.
            let again = std::io::Cursor::new(v.clone()).chain(r);
            opened.source = input::Source::Stream(Box::new(again));
            v
        }
    };
    if head.len() == HEAD_BYTES {
        let keep = memchr::memrchr(b'\n', &head).map_or(head.len(), |i| i + 1);
        head.truncate(keep);
    }
    Ok((head, opened))
}

/// The parse options for one input file: `auto` resolved on its first bytes `head`, its header
/// read, and the reference instant for formats whose timestamps lack the year (the job's
/// `year`, else the file's modification time). Returns the detection for `auto`.
pub(crate) fn file_options(
    job_opts: &compactor_formats::ParseOptions,
    file: &InputFile,
    head: &[u8],
) -> Result<(
    compactor_formats::ParseOptions,
    Option<compactor_formats::detect::Detection>,
)> {
    let mut opts = job_opts.clone();
    // Standard input has no modification time, and the clock would make the output depend on
    // when the job ran: without `year`, its year-less syslog dates are 1970's (documented).
    if opts.reference_micros.is_none() && !file.is_stdin() {
        let mtime = std::fs::metadata(&file.path)?.modified()?;
        let since = mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        opts.reference_micros = Some(since.as_micros() as i64);
    }
    opts.for_file(head)
        .with_context(|| format!("reading the header of {}", file.display()))
}

/// [`file_options`] for a run: a detection is logged and reported.
fn run_file_options(
    job_opts: &compactor_formats::ParseOptions,
    file: &InputFile,
    head: &[u8],
    report: &mut RunReport,
) -> Result<compactor_formats::ParseOptions> {
    let (opts, detection) = file_options(job_opts, file, head)?;
    if let Some(d) = detection {
        let what = d.to_string();
        tracing::info!("{}: format auto: {what}", file.display());
        report.detected.insert(file.display(), what);
    }
    Ok(opts)
}

/// Lets glibc's malloc keep and reuse freed buffers instead of returning them to the kernel.
/// Parsing allocates and frees the same few MiB-sized column buffers for every chunk; with the
/// default dynamic mmap threshold each of them is fresh pages that the kernel faults in and
/// zeroes: a quarter of a single-threaded `compactor parse`'s time, 5% of a rollup-only run's.
/// Holding on to them is right for a command that keeps nothing (`parse`), or keeps nothing
/// but what it reserved (a rollup-only run without dedup: the chunks in flight and the
/// groups), unlike a run that sorts, whose memory budget counts what is held (see
/// [`AllocatorTrim`]).
pub(crate) fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; glibc's takes its own lock.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Keeps glibc's malloc from holding on to freed memory once a run is memory-bound.
///
/// glibc keeps freed blocks in per-thread arenas, and raises its mmap threshold as large
/// blocks are freed, so that later large blocks come from (and stay in) the arenas. With
/// batches of many sizes freed by other threads than the ones that allocated them, a 10 GB run
/// under `--memory 512MiB` reached 646 MiB of RSS. Once the sort has spilled (the budget is
/// what limits the run), [`AllocatorTrim::tighten`] fixes the mmap threshold at 4 MiB (large
/// arrays are mapped and unmapped, not kept) and [`AllocatorTrim::tick`] calls `malloc_trim`
/// every [`TRIM_EVERY`] parse groups or written pieces: 503 MiB, for a few percent of run
/// time. A run that fits in memory is left alone (the tuning costs it about 10%, see
/// DESIGN.md, "Memory"). Elsewhere than glibc this does nothing.
#[derive(Default)]
struct AllocatorTrim {
    ticks: usize,
    tight: bool,
}

/// Calls of [`AllocatorTrim::tick`] between two `malloc_trim`s.
const TRIM_EVERY: usize = 16;

impl AllocatorTrim {
    fn tighten(&mut self) {
        if self.tight {
            return;
        }
        self.tight = true;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: mallopt only tunes the allocator.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        }
    }

    fn tick(&mut self) {
        if !self.tight {
            return;
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(TRIM_EVERY) {
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            // SAFETY: malloc_trim only returns free memory to the OS; it is thread-safe.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }
}

/// CPU time of this process so far (user + system), from `/proc/self/stat`; 0 elsewhere.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // fields after the command name (which may hold spaces) start after the last ')'
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name
    (ticks(11) + ticks(12)) / 100.0
}

impl RunReport {
    /// The sort's spilling, and the spill files' peak.
    fn record_sort(&mut self, stats: &SortStats, spill: &SpillManager) {
        self.spilled_runs = SortStats::get(&stats.spilled_runs);
        self.spilled_rows = SortStats::get(&stats.spilled_rows);
        self.merge_passes = SortStats::get(&stats.merge_passes);
        self.spill_peak_bytes = spill.peak();
    }

    /// A short human summary.
    pub fn summary(&self) -> String {
        let ratio = |n: u64| {
            if self.bytes_out > 0 {
                n as f64 / self.bytes_out as f64
            } else {
                0.0
            }
        };
        let mbps = if self.seconds > 0.0 {
            self.bytes_decoded as f64 / 1e6 / self.seconds
        } else {
            0.0
        };
        let head = match (self.committed, &self.note) {
            (true, _) => format!("committed version {}", self.version.unwrap_or(0)),
            (false, Some(n)) => format!("nothing committed: {n}"),
            (false, None) => "nothing committed".to_string(),
        };
        let expired = if self.files_expired > 0 {
            format!(
                ", {} older than the ledger retention (not read)",
                self.files_expired
            )
        } else {
            String::new()
        };
        if self.files_in == 0 {
            return format!(
                "{head}\n  files 0 read, {} already consumed{expired}",
                self.files_skipped
            );
        }
        let mut s = format!(
            "{head}\n  files {} read, {} already consumed{expired}\n  records {} = rows {} + duplicates {} + rejected {}\n  bytes {} raw ({} stored) -> {} out in {} segment(s), ratio {:.1}x raw, {:.1}x stored\n  {:.2} s, {mbps:.0} MB/s raw, {} thread(s)",
            self.files_in,
            self.files_skipped,
            self.records_in,
            self.rows_rolled_up.unwrap_or(self.rows_out),
            self.duplicates,
            self.rejected,
            self.bytes_decoded,
            self.bytes_in,
            self.bytes_out,
            self.segments,
            ratio(self.bytes_decoded),
            ratio(self.bytes_in),
            self.seconds,
            self.threads
        );
        if self.rows_rolled_up.is_some() {
            s.push_str("\n  rollup-only run ([output] detailed = false): the rows went into the rollups alone");
        }
        // (An input error is a record of no line.)
        if self.records_in - self.input_errors.len() as u64 != self.lines_in {
            s.push_str(&format!(
                "\n  lines {}: {} header lines, the rest in records (multi-line records join lines)",
                self.lines_in, self.meta_lines
            ));
        }
        for (file, d) in &self.detected {
            s.push_str(&format!("\n  format of {file}: {d}"));
        }
        for e in &self.input_errors {
            s.push_str(&format!("\n  input error: {e}"));
        }
        for r in &self.rollups {
            s.push_str(&format!(
                "\n  rollup {}: {} groups from {} rows, {} partition(s) {}",
                r.name,
                r.groups,
                r.rows,
                r.partitions_rewritten,
                match (r.version, &r.note) {
                    (Some(v), _) => format!("committed as version {v} of {}", r.path),
                    (None, Some(n)) => n.clone(),
                    (None, None) => "not committed".into(),
                }
            ));
        }
        if let Some(q) = &self.quarantine {
            s.push_str(&format!("\n  rejected lines: {q}"));
        }
        s
    }
}

/// A duration in milliseconds (saturating).
fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch (0 before it).
fn unix_millis(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH).map_or(0, millis)
}

/// Crashes the process at a named point when `COMPACTOR_FAILPOINT` names it, to test that a
/// crash at any point leaves the table as it was; `COMPACTOR_PAUSE=<name>:<ms>` sleeps there
/// instead, so tests can make writers overlap. Costs two env lookups per point.
pub fn failpoint(name: &str) {
    if std::env::var("COMPACTOR_FAILPOINT").is_ok_and(|v| v == name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    if let Ok(v) = std::env::var("COMPACTOR_PAUSE") {
        if let Some(ms) = v
            .strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .and_then(|ms| ms.parse::<u64>().ok())
        {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

/// Every fail point, in the order a run or a compaction reaches them (for crash tests).
pub const FAILPOINTS: &[&str] = &[
    "after-sort",
    "before-segments",
    "segment-before-fsync",
    "segment-before-rename",
    "after-segments",
    "before-commit",
    "commit-before-log",
    "after-commit",
    "before-checkpoint",
    "cleanup-before-marker",
    "compact-after-read",
    "compact-before-segments",
    "compact-after-segments",
    "compact-before-commit",
    "compact-after-commit",
    "vacuum-before-delete",
    "rollup-after-stage",
    "rollup-before-commit",
    "rollup-after-commit",
    "rollup-before-unstage",
];

pub(crate) fn new_run_id() -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{now}-{}", &id[..12])
}

/// Holds an exclusive lock file; released on drop (the OS releases it if the process dies).
pub(crate) struct LockFile(#[allow(dead_code)] File);

/// Takes the lock file `path` (created if needed), or fails with [`Locked`] naming `what`.
pub(crate) fn lock_exclusive(path: &Path, what: &str) -> Result<LockFile> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match f.try_lock() {
        Ok(()) => Ok(LockFile(f)),
        Err(std::fs::TryLockError::WouldBlock) => bail!(Locked(format!(
            "another {what} holds the lock {}",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(e).context("locking the table"),
    }
}

/// Deletes what crashed writers left (see [`pending`]): the files of dead markers that no
/// commit ever added. Returns how many.
pub fn cleanup_crashed(table: &mut Table) -> Result<usize> {
    let markers = pending::read(&pending::dir(table.root()))?;
    if markers.0.iter().all(|m| m.live) {
        return Ok(0);
    }
    // The log is read after the dead markers are locked: a dead writer commits no more.
    let committed = crate::table::log_files(table.root())?.added;
    pending::cleanup_dead(table.root(), markers, &committed)
}

/// Runs a job. See the module docs.
pub fn run(job: &Job, opts: &RunOptions) -> Result<RunReport> {
    // Every parallel step (parse, sort, take, column encoding) runs in this pool, so
    // `--threads` bounds the whole run.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .thread_name(|i| format!("compactor-{i}"))
        .build()?;
    pool.install(|| run_in_pool(job, opts, &pool))
}

fn run_in_pool(job: &Job, opts: &RunOptions, pool: &rayon::ThreadPool) -> Result<RunReport> {
    let started = Instant::now();
    let started_cpu = cpu_seconds();
    let mut report = RunReport {
        run_id: new_run_id(),
        threads: opts.threads,
        ..Default::default()
    };
    let parse_opts = job.parse_options()?;

    let mut table = Table::open(&job.output.path)?;
    report.table = table.root().display().to_string();
    let meta = table.root().join("_compactor");
    let pending_dir = pending::dir(table.root());
    // No lock on the table: concurrent runs and compactions commit optimistically (table.rs).
    // What crashed writers left is told by their unlocked pending markers.
    let removed = cleanup_crashed(&mut table)?;
    if removed > 0 {
        tracing::warn!("removed {removed} file(s) left by a crashed writer");
    }
    let memory_limit = opts
        .memory
        .or(job.resources.memory.map(|s| s.0 as usize))
        .unwrap_or_else(compactor_engine::memory::default_memory_limit);
    report.memory_limit_bytes = memory_limit as u64;
    // Rollups aggregate in a pool of their own (a fixed share of the budget): where they spill
    // then depends on their input alone, not on what the sort and the writer hold at that
    // moment, so their output is the same whatever the thread count.
    let rollup_share = if job.rollup.is_empty() {
        0
    } else {
        memory_limit / ROLLUP_MEMORY_DIVISOR
    };
    let memory = MemoryPool::new(memory_limit - rollup_share);
    let rollup_memory = MemoryPool::new(rollup_share);
    let spill = SpillManager::new(&SpillConfig {
        dir: opts
            .spill_dir
            .clone()
            .or(job.resources.spill_dir.clone())
            .unwrap_or_else(|| meta.join("spill")),
        max_bytes: opts
            .max_spill_bytes
            .or(job.resources.max_spill_bytes.map(|s| s.0))
            .unwrap_or(compactor_engine::spill::DEFAULT_MAX_SPILL_BYTES),
    })?;
    // Rollup states a crashed run staged: applied if its commit landed, else dropped.
    report.rollups = crate::rollup::recover(table.root(), &MemoryPool::new(memory_limit), &spill)?;
    crate::rollup::check_tables(&job.rollup)?;
    // Every commit that lands after this instant is in the snapshot read next, or the commit
    // check sees it (see `rebase` below).
    let listed_at = unix_millis(std::time::SystemTime::now());
    table.refresh()?;
    let ledger = table.ledger()?;
    let consumed = ledger.index();
    // Files last modified before the horizon are not read: the ledger may have forgotten them
    // (see `Ledger::prune`). The horizon is this run's retention, or how far the ledger was
    // pruned already if that is later (a longer retention, or none, does not bring forgotten
    // files back).
    let horizon = job
        .input
        .ledger_retention
        .map(|r| listed_at.saturating_sub(millis(r.0)))
        .into_iter()
        .chain(ledger.pruned_before)
        .max();

    // 2. inputs
    let mut inputs: Vec<InputFile> = Vec::new();
    let mut expired = Vec::new();
    for path in input::discover(&job.input.paths)? {
        let mut f = input::stat(&path)?;
        let key = f.display();
        if let (Some(h), false) = (horizon, f.is_stdin()) {
            let Some(m) = f.modified else {
                bail!("{key} has no modification time, which a ledger with a retention needs to tell a forgotten file from a new one");
            };
            if unix_millis(m) < h {
                // A file the ledger still names (by path and size) was consumed; any other
                // may never have been, so it is named in a warning.
                if consumed.has_path_size(&key, f.size) {
                    report.files_skipped += 1;
                } else {
                    expired.push(key);
                    report.files_expired += 1;
                }
                continue;
            }
        }
        if !f.is_stdin() {
            // Content decides only between files of one size: hash now only then (the rest
            // are hashed as they are read).
            let size = f.size;
            let same_size = move |i: &InputFile| !i.is_stdin() && i.size == size;
            if consumed.has_size(f.size) || inputs.iter().any(same_size) {
                f.hash()?;
                for i in inputs.iter_mut().filter(|i| same_size(i)) {
                    i.hash()?;
                }
            }
            if let Some(earlier) = inputs.iter().find(|i| {
                f.fingerprint.is_some() && i.size == f.size && i.fingerprint == f.fingerprint
            }) {
                tracing::warn!(
                    "skipping {key}: same content as {}, read in this run",
                    earlier.display()
                );
                report.files_skipped += 1;
                continue;
            }
            if let Some(e) = f
                .fingerprint
                .as_deref()
                .and_then(|h| consumed.consumed(f.size, h))
            {
                if e.path != key {
                    tracing::info!(
                        "skipping {key}: same content as {} consumed in version {}",
                        e.path,
                        e.version
                    );
                }
                report.files_skipped += 1;
                continue;
            }
            if consumed.has_path(&key) {
                tracing::warn!("{key} changed since the table consumed it; reading it again whole");
            }
        }
        inputs.push(f);
    }
    if !expired.is_empty() {
        let shown = expired
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        let since = match job.input.ledger_retention {
            Some(r) => format!("the ledger retention ({r}) or "),
            None => String::new(),
        };
        tracing::warn!(
            "not reading {} file(s) last modified before {since}what the ledger has already forgotten (the ledger cannot tell them from consumed ones; give a file a new modification time to read it): {shown}{}",
            expired.len(),
            if expired.len() > 10 { ", ..." } else { "" }
        );
    }
    report.version = table.version();
    if inputs.is_empty() {
        report.note = Some(if report.files_expired > 0 && report.files_skipped == 0 {
            "every input file was older than the ledger retention".into()
        } else if report.files_skipped + report.files_expired > 0 {
            "every input file was already consumed".into()
        } else {
            "no input files found".into()
        });
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    report.files_in = inputs.len() as u64;
    report.bytes_in = inputs.iter().map(|f| f.size).sum();

    // forced types: the table's schema wins over inference; the job's [schema] must agree.
    let table_schema = table.schema()?;
    let partition = job.output.partition.clone();
    let mut parse_opts = parse_opts;
    if let Some(p) = &partition {
        parse_opts.reserved.push(p.name.clone());
    }
    let mut table_data_schema: Option<Schema> = None;
    let mut table_uuid_columns: Vec<String> = Vec::new();
    if let Some(ts) = &table_schema {
        let fields: Vec<_> = ts
            .fields()
            .iter()
            .filter(|f| {
                partition
                    .as_ref()
                    .is_none_or(|p| !f.name().eq_ignore_ascii_case(&p.name))
            })
            .cloned()
            .collect();
        // A `binary` table column is a UUID column (the only binary compactor writes): parsed
        // as text, written as 16 bytes.
        let fields: Vec<_> = fields
            .into_iter()
            .map(|f| {
                if matches!(f.data_type(), DataType::Binary) {
                    table_uuid_columns.push(f.name().clone());
                    Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8))
                } else {
                    f
                }
            })
            .collect();
        for f in &fields {
            let t = schema::ColumnType::from_data_type(f.data_type()).with_context(|| {
                format!(
                    "table column {} has a type compactor does not write",
                    f.name()
                )
            })?;
            if let Some(want) = parse_opts
                .forced
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(f.name()))
                .map(|(_, v)| *v)
            {
                if want != t {
                    bail!(JobError(format!(
                        "column {} is {t} in the table but the job's [schema] says {want}",
                        f.name()
                    )));
                }
            }
            parse_opts.forced.insert(f.name().clone(), t);
        }
        table_data_schema = Some(Schema::new(fields));
    }

    // A rollup-only run parses only what its rollups (and its dedup keys) read; exact dedup
    // compares whole rows, so it parses them whole.
    let detailed = job.output.detailed;
    if !detailed && job.dedup.mode != DedupModeName::Exact {
        let mut cols = crate::rollup::input_columns(&job.rollup);
        cols.extend(job.dedup.keys.iter().cloned());
        parse_opts.project = Some(Arc::new(compactor_formats::json::Projection::new(cols)));
    }
    // Rollup-only without dedup: parsed chunks go straight into the aggregations.
    let stream_rollups = !detailed && job.dedup.mode == DedupModeName::None;
    let mut streamed: Option<(SchemaRef, crate::rollup::RunRollups)> = None;
    if stream_rollups {
        // nothing is held but the chunks in flight (reserved) and the rollups' groups
        keep_freed_memory();
    }
    let mut rows_streamed = 0u64;

    // 3. parse, feeding the external sort as chunks are parsed
    let group = opts.threads.max(1) * 2;
    // In flight while parsing: a window of chunks and their parsed batches (about 2x the text).
    let parse_bytes = group * DEFAULT_CHUNK_BYTES * 3;
    let run_bytes = opts
        .run_bytes
        .unwrap_or((memory_limit - rollup_share).saturating_sub(parse_bytes) / 3);
    if run_bytes < 4 * DEFAULT_CHUNK_BYTES && opts.run_bytes.is_none() {
        bail!(compactor_engine::EngineError::ResourcesExhausted {
            consumer: "run setup".into(),
            requested: parse_bytes + 12 * DEFAULT_CHUNK_BYTES,
            used: 0,
            limit: memory_limit - rollup_share,
        });
    }
    let dedup = match job.dedup.mode {
        DedupModeName::Exact => DedupMode::Exact,
        DedupModeName::None => DedupMode::None,
        DedupModeName::Keys => DedupMode::Keys(job.dedup.keys.clone()),
    };
    let make_sorter = |key: &[String]| -> Result<ExternalSort> {
        let mut sort_by = key.to_vec();
        if let Some(p) = &partition {
            sort_by.insert(0, p.name.clone());
        }
        let mut sort_opts = SortOptions::new(sort_by, dedup.clone(), run_bytes);
        sort_opts.conform = Arc::new(|b: &RecordBatch, s: &SchemaRef| {
            schema::conform(b, s).map_err(|e| arrow_schema::ArrowError::CastError(e.to_string()))
        });
        Ok(ExternalSort::try_new(sort_opts, spill.clone(), &memory)?)
    };
    // `sort_by = "auto"`: the first rows are held (reserved) as the sample the key is chosen
    // from; the sort starts when the key is known.
    // A rollup-only run sorts only to deduplicate: by the dedup keys (`keys`), or by all
    // columns (`exact`), whatever `sort_by` says (its columns may not even be parsed).
    let auto_key = job.output.sort_by_auto() && detailed;
    let sort_key = if detailed {
        job.output.sort_by.clone()
    } else {
        job.dedup.keys.clone()
    };
    let mut sorter = if auto_key || stream_rollups {
        None
    } else {
        report.sort_key = sort_key.clone();
        Some(make_sorter(&sort_key)?)
    };
    let mut sample = AutoSample {
        batches: Vec::new(),
        rows: 0,
        held: memory.reservation("sort key sample"),
    };
    let partition_name: Vec<String> = partition.iter().map(|p| p.name.clone()).collect();
    let start_sort = |sample: &mut AutoSample,
                      working: &SchemaRef,
                      report: &mut RunReport|
     -> Result<ExternalSort> {
        let batch = sortkey::sample_batch(&sample.batches, working)?;
        let choice = sortkey::choose(&batch, &partition_name)?;
        tracing::info!(
            "sort_by = \"auto\" chose {:?} from {} sampled rows (trial bytes per key: {})",
            choice.key,
            batch.num_rows(),
            choice
                .trials
                .iter()
                .map(|(k, s)| format!("{k:?}={s}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        report.sort_key = choice.key.clone();
        let mut s = make_sorter(&choice.key)?;
        for b in sample.batches.drain(..) {
            s.push(b)?;
        }
        sample.rows = 0;
        sample.held.free();
        Ok(s)
    };
    let mut tracker = schema::SchemaTracker::new(table_data_schema.as_ref())?;
    let mut profile = layout::Profile::default();
    let track_ranges = job.dedup.scope != crate::job::DedupScope::Run;
    let mut ranges = crate::tabledup::RangeTracker::default();
    let mut in_flight = memory.reservation("parsing");
    let mut trim = AllocatorTrim::default();
    let qdir = job
        .output
        .quarantine_dir
        .clone()
        .unwrap_or_else(|| meta.join("quarantine"));
    let mut quarantine = Quarantine::new(qdir.join(format!("{}.jsonl", report.run_id)));
    let progress = Progress::new(opts.progress, report.bytes_in);
    let mut done_bytes = 0u64;
    for file in inputs.iter_mut() {
        tracing::info!("reading {} ({} bytes)", file.display(), file.size);
        let consumed = Arc::new(std::sync::atomic::AtomicU64::new(0));
        // Per file: `auto` resolved, the header read, the syslog year's reference instant;
        // all from the file's head, before any chunk is cut (the framing depends on them).
        let (head, opened) = open_with_head(file, job.limits.max_decompressed_bytes, &consumed)
            .with_context(|| format!("reading {}", file.display()))?;
        let file_opts = run_file_options(&parse_opts, file, &head, &mut report)?;
        drop(head);
        let mapped = matches!(opened.source, input::Source::Mapped(_));
        let hash = opened.hash;
        // Chunks are cut at record boundaries of this framing.
        let mut chunker = Chunker::new(
            opened.source,
            DEFAULT_CHUNK_BYTES,
            job.limits.max_line_bytes,
            file_opts.framing(),
        );
        // Parsing is a pipeline, not a sequence of barriers: up to `group` chunks are parsed
        // as tasks on the pool while this thread takes their results in input order (helping
        // with the parsing while it waits), so no core waits for the slowest chunk of a
        // group. Chunks are parsed numbering their lines from 1 (line counts come from the
        // parser) and renumbered here; the file is hashed here, in order (mapped inputs;
        // streams hash as they are read).
        type Parsed = (u64, input::Chunk, compactor_formats::Result<ParsedChunk>);
        let (tx, rx) = crossbeam::channel::unbounded::<Parsed>();
        let parse_opts = &file_opts;
        // 1-based number of the next chunk's first line
        let mut next_line = 1u64;
        // A stream that could not be decoded to its end (truncated, corrupt, over the cap):
        // what was decoded before is parsed and kept; the error becomes a rejected record.
        let mut input_error: Option<String> = None;
        rayon::in_place_scope_fifo(|s| -> Result<()> {
            let (mut spawned, mut taken) = (0u64, 0u64);
            let mut ready = BTreeMap::new();
            let mut eof = false;
            loop {
                while !eof && spawned - taken < group as u64 {
                    let next = match chunker.next_chunk() {
                        Ok(c) => c,
                        Err(e) if input::decode_error(&e).is_some() => {
                            input_error = Some(format!("{e:#}"));
                            None
                        }
                        Err(e) => return Err(e.context(format!("reading {}", file.display()))),
                    };
                    match next {
                        Some(c) => {
                            in_flight.try_grow(c.bytes().len() * 3)?;
                            let (tx, id) = (tx.clone(), spawned);
                            s.spawn_fifo(move |_| {
                                let p = parse_chunk(parse_opts, c.bytes(), 1);
                                let _ = tx.send((id, c, p));
                            });
                            spawned += 1;
                        }
                        None => eof = true,
                    }
                }
                if taken == spawned {
                    return Ok(());
                }
                let (chunk, p) = loop {
                    if let Some(x) = ready.remove(&taken) {
                        break x;
                    }
                    let (id, c, p) = next_queued(&rx).expect("a sender is alive");
                    ready.insert(id, (c, p));
                };
                taken += 1;
                hash.advance_mapped(std::slice::from_ref(&chunk));
                in_flight.shrink(chunk.bytes().len() * 3);
                drop(chunk);
                let mut p = p?;
                for r in &mut p.rejects {
                    r.line += next_line - 1;
                }
                next_line += p.lines;
                report.lines_in += p.lines;
                report.records_in += p.records;
                report.meta_lines += p.meta_lines;
                report.rejected += p.rejects.len() as u64;
                quarantine.write(&file.display(), &p.rejects)?;
                if p.batch.num_rows() > 0 {
                    tracker.observe(&p.batch)?;
                    if tracker.len() > job.limits.max_columns {
                        bail!(
                            "the inputs have more than {} distinct columns ([limits] max_columns); nothing was committed",
                            job.limits.max_columns
                        );
                    }
                    if stream_rollups {
                        let (schema, rollups) = match streamed.as_mut() {
                            Some(s) => s,
                            None => streamed.insert(crate::rollup::start_streamed(
                                &job.rollup,
                                &tracker.working_schema(),
                                &spill,
                                &rollup_memory,
                            )?),
                        };
                        let b = crate::rollup::conform_streamed(&p.batch, schema)?;
                        rollups.push(&b)?;
                        rows_streamed += b.num_rows() as u64;
                    } else {
                        let current = tracker.working_schema();
                        let mut b = schema::conform(&p.batch, &current)?;
                        profile.observe(&b);
                        if track_ranges {
                            ranges.observe(&b);
                        }
                        if let Some(p) = &partition {
                            b = with_partition(&b, p)?;
                            if track_ranges {
                                ranges.observe_partitions(b.column(b.num_columns() - 1));
                            }
                        }
                        match sorter.as_mut() {
                            Some(s) => s.push(b)?,
                            None => {
                                sample.held.try_grow(b.get_array_memory_size())?;
                                sample.rows += b.num_rows();
                                sample.batches.push(b);
                                if sample.rows >= sortkey::AUTO_SAMPLE_ROWS {
                                    let working = with_partition_field(
                                        &tracker.working_schema(),
                                        partition.as_ref(),
                                    );
                                    sorter = Some(start_sort(&mut sample, &working, &mut report)?);
                                }
                            }
                        }
                    }
                }
                if taken % group as u64 == 0 {
                    let spilled = sorter
                        .as_ref()
                        .is_some_and(|s| SortStats::get(&s.stats().spilled_runs) > 0);
                    if spilled {
                        trim.tighten();
                    }
                    trim.tick();
                    let stored = if mapped {
                        chunker.bytes_read
                    } else {
                        consumed.load(std::sync::atomic::Ordering::Relaxed)
                    };
                    progress.set(done_bytes + stored.min(file.size));
                }
            }
        })?;
        in_flight.free();
        if let Some(e) = input_error {
            tracing::warn!("{e}; the records before it were kept");
            // The line the stream broke off in (if it did inside one) is this record's bytes.
            let raw = chunker.take_incomplete_tail();
            let reason = if raw.is_empty() {
                format!("input error: {e}")
            } else {
                format!("input error inside this line, cut off here: {e}")
            };
            let reject = compactor_formats::Reject {
                line: next_line,
                reason,
                raw,
            };
            quarantine.write(&file.display(), std::slice::from_ref(&reject))?;
            report.records_in += 1;
            report.rejected += 1;
            report.input_errors.push(e);
        }
        report.bytes_decoded += chunker.bytes_read;
        drop(chunker);
        if !file.is_stdin() {
            let read = hash.finish();
            if file.fingerprint.is_some() && read != file.fingerprint {
                bail!("{} changed while it was being read (is it still being written?); nothing was committed", file.display());
            }
            file.fingerprint = read;
        }
        done_bytes += file.size;
        progress.set(done_bytes);
    }
    drop(in_flight);
    progress.finish();
    let mut phase = Instant::now();
    let mut phase_cpu = cpu_seconds();
    report
        .phase_cpu_seconds
        .insert("parse".into(), phase_cpu - started_cpu);
    let mut lap = |report: &mut RunReport, name: &str| {
        report
            .phase_seconds
            .insert(name.to_string(), phase.elapsed().as_secs_f64());
        let cpu = cpu_seconds();
        report
            .phase_cpu_seconds
            .insert(name.to_string(), cpu - phase_cpu);
        phase = Instant::now();
        phase_cpu = cpu;
    };
    report
        .phase_seconds
        .insert("parse".into(), started.elapsed().as_secs_f64());
    report.quarantine = quarantine.finish()?.map(|p| p.display().to_string());

    // 4. rejected share
    if report.rejected > 0 {
        let share = report.rejected as f64 / report.records_in.max(1) as f64;
        if share > job.limits.max_rejected_share {
            bail!(TooManyRejected(format!(
                "{} of {} records ({:.2}%) were rejected, above max_rejected_share ({:.2}%); nothing was committed. See {}",
                report.rejected,
                report.records_in,
                share * 100.0,
                job.limits.max_rejected_share * 100.0,
                report.quarantine.as_deref().unwrap_or("the quarantine")
            )));
        }
    }

    // 5. the final schema; sort, dedup (merging spilled runs)
    let unified = tracker.schema();
    if unified.fields().is_empty() {
        report.note = Some("the inputs hold no rows".into());
        report.seconds = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    let mut sort_schema = unified.clone();
    if let Some(p) = &partition {
        if unified
            .fields()
            .iter()
            .any(|f| f.name().eq_ignore_ascii_case(&p.name))
        {
            bail!(JobError(format!("the partition column name {:?} is also a column of the table; choose another [output.partition] name", p.name)));
        }
        let src = unified
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(&p.column))
            .ok_or_else(|| {
                JobError(format!(
                    "partition column {:?} is not in the data",
                    p.column
                ))
            })?;
        if !matches!(unified.field(src).data_type(), DataType::Timestamp(..)) {
            bail!(JobError(format!(
                "partition column {:?} is {} but must be a timestamp",
                p.column,
                unified.field(src).data_type()
            )));
        }
        let mut fields = unified.fields().to_vec();
        fields.push(Arc::new(Field::new(&p.name, DataType::Utf8, true)));
        sort_schema = Arc::new(Schema::new(fields));
    }
    // (a streamed rollup-only run has nothing to sort)
    let sorted = if stream_rollups {
        None
    } else {
        let sorter = match sorter {
            Some(s) => s,
            None => start_sort(&mut sample, &sort_schema, &mut report)?,
        };
        let stats = sorter.stats();
        let sorted = sorter.finish(&sort_schema)?;
        failpoint("after-sort");
        Some((sorted, stats))
    };
    drop(sample);
    let (mut write, marker, written, mut rollups) = if detailed {
        let (mut sorted, stats) = sorted.context("internal error: a detailed run sorts")?;
        let table_rows = crate::tabledup::load(
            &table,
            &job.dedup,
            &unified,
            &report.sort_key,
            partition.as_ref().map(|p| p.name.as_str()),
            &ranges,
            &memory,
        )?;
        report.dedup_segments_read = table_rows
            .as_ref()
            .map(|t| (t.segments_read, t.segments_total));
        report.columns = unified.fields().len() as u64;
        lap(&mut report, "sort");

        // 6. write segments as the sorted rows stream out, then commit
        let sorted_idx = column_positions(&unified, &report.sort_key);
        // The written types (layout.rs): integers narrowed to this run's range (the table keeps
        // `long`); canonical UUID columns as 16 bytes (`binary` in the table), for columns new to
        // the table or already stored so.
        let mut uuid_columns = Vec::new();
        for f in unified.fields() {
            let p = profile.column(f.name());
            let in_table = table_schema.as_ref().is_some_and(|t| {
                t.fields()
                    .iter()
                    .any(|e| e.name().eq_ignore_ascii_case(f.name()))
            });
            let table_uuid = table_uuid_columns
                .iter()
                .any(|u| u.eq_ignore_ascii_case(f.name()));
            let not_uuid = p.is_none_or(|p| p.not_uuid);
            if table_uuid && not_uuid {
                bail!(JobError(format!(
                "column {} is stored as 16-byte UUIDs in the table, but this run's values are not all canonical UUIDs (lowercase 8-4-4-4-12); nothing was committed. Write these rows to a new table, with tighten_types = false",
                f.name()
            )));
            }
            let uuid = p.is_some_and(|p| p.uuid) && job.output.tighten_types && !in_table;
            if table_uuid || uuid {
                uuid_columns.push(f.name().clone());
            }
        }
        let small_run = report.records_in - report.rejected <= layout::SMALL_SEGMENT_ROWS;
        let file_schema = if job.output.tighten_types {
            layout::file_schema(&unified, &profile, &uuid_columns, small_run)
        } else {
            layout::file_schema(&unified, &layout::Profile::default(), &uuid_columns, false)
        };
        let table_fields = table_fields(&unified, &uuid_columns);
        let layout_opts = layout_options(
            &job.output,
            sorted_idx,
            (report.records_in - report.rejected).min(job.output.max_segment_rows as u64),
        );
        let mut write = table.begin(
            &Arc::new(Schema::new(table_fields)),
            partition.as_ref().map(|p| p.name.as_str()),
        )?;
        write.set_domain(crate::job::DEDUP_DOMAIN, serde_json::to_string(&job.dedup)?);
        let mut marker = PendingMarker::create(&pending_dir, &report.run_id)?;
        failpoint("before-segments");
        let spilled = SortStats::get(&stats.spilled_runs) > 0;
        // Rollups aggregate the rows as they are written: after every dedup.
        let mut rollups =
            crate::rollup::RunRollups::new(&job.rollup, &sort_schema, &spill, &rollup_memory)?;
        let mut observe = |b: &RecordBatch| -> Result<()> {
            match rollups.as_mut() {
                Some(r) => r.push(b),
                None => Ok(()),
            }
        };
        let (written, in_table) = write_segments(
            &write,
            &mut marker,
            &mut sorted,
            &mut observe,
            &SegmentPlan {
                table_rows: table_rows.as_ref(),
                id: &report.run_id,
                file_schema: &file_schema,
                layout: &layout_opts,
                data_columns: unified.fields().len(),
                partitioned: partition.is_some(),
                max_segment_rows: job.output.max_segment_rows,
                threads: opts.threads,
                spilled,
            },
            &memory,
            pool,
        )?;
        report.duplicates = SortStats::get(&stats.duplicates) + in_table;
        report.duplicates_in_table = in_table;
        drop(table_rows);
        report.record_sort(&stats, &spill);
        drop(sorted);
        for (seg, _, _) in &written {
            report.rows_out += seg.rows;
            report.bytes_out += seg.size;
            report.segments += 1;
        }
        if report.records_in != report.rows_out + report.duplicates + report.rejected {
            bail!("internal error: accounting does not add up ({} records != {} rows + {} duplicates + {} rejected)", report.records_in, report.rows_out, report.duplicates, report.rejected);
        }
        failpoint("after-segments");
        lap(&mut report, "write");
        (write, marker, written, rollups)
    } else {
        // A rollup-only run: the rows go into the rollups alone (see rollup.rs).
        let (rollups, rows, duplicates) = match sorted {
            None => {
                let (_, r) = streamed
                    .take()
                    .context("internal error: rows were parsed but no rollup was started")?;
                (r, rows_streamed, 0)
            }
            Some((mut sorted, stats)) => {
                let mut r = crate::rollup::RunRollups::new(
                    &job.rollup,
                    &sort_schema,
                    &spill,
                    &rollup_memory,
                )?
                .context("internal error: a rollup-only job without rollups")?;
                let mut rows = 0u64;
                while let Some(b) = sorted.next_batch()? {
                    rows += b.num_rows() as u64;
                    r.push(&b)?;
                }
                drop(sorted);
                report.record_sort(&stats, &spill);
                (r, rows, SortStats::get(&stats.duplicates))
            }
        };
        report.rows_rolled_up = Some(rows);
        report.duplicates = duplicates;
        report.columns = unified.fields().len() as u64;
        if report.records_in != rows + report.duplicates + report.rejected {
            bail!("internal error: accounting does not add up ({} records != {} rows rolled up + {} duplicates + {} rejected)", report.records_in, rows, report.duplicates, report.rejected);
        }
        lap(&mut report, "aggregate");
        // The table holds no rows: its commit carries the ledger and the run id (not a blind
        // append, which the kernel refuses without files).
        let mut write = table.begin_update(&unified, None)?;
        write.set_domain(crate::job::DEDUP_DOMAIN, serde_json::to_string(&job.dedup)?);
        let marker = PendingMarker::create(&pending_dir, &report.run_id)?;
        (write, marker, Vec::new(), Some(rollups))
    };
    let segment_paths: Vec<PathBuf> = written.iter().map(|(seg, _, _)| seg.path.clone()).collect();
    // Rollup states are staged (fsynced) before the commit, applied after it.
    let staged = match rollups.take() {
        Some(r) if !segment_paths.is_empty() || !detailed => {
            Some(r.stage(table.root(), &report.run_id, &segment_paths)?)
        }
        _ => None,
    };
    if let Some(s) = &staged {
        let want = report.rows_rolled_up.unwrap_or(report.rows_out);
        if let Some(rows) = s.rows().find(|r| *r != want) {
            bail!("internal error: a rollup aggregated {rows} rows of the {want} it was given");
        }
    }
    failpoint("rollup-after-stage");
    for (seg, part, stats) in written {
        write.stage(&seg, part.as_deref(), stats)?;
    }
    // The ledger entries of this run's inputs. The commit adds them to the ledger of whatever
    // snapshot it lands on; if a concurrent run consumed one of them meanwhile, committing
    // would duplicate its rows, so the commit is abandoned instead.
    let mut entries = Vec::new();
    for f in inputs.iter().filter(|f| !f.is_stdin()) {
        entries.push(LedgerEntry {
            path: f.display(),
            size: f.size,
            xxh3: f
                .fingerprint
                .clone()
                .context("internal error: an input was not hashed")?,
            version: 0,
            // the file's modification time: the commit stamps the later of it and its own time
            at: f.modified.map(unix_millis),
        });
    }
    let rebase = |current: &Ledger, version: u64| -> Result<Option<Ledger>> {
        // Rows were checked against the table as of the run's start: a run that committed since
        // may hold the same re-sent lines.
        if job.dedup.scope != crate::job::DedupScope::Run && *current != ledger {
            bail!(Conflict(
                "another run committed while this one deduplicated against the table ([dedup] scope); nothing was committed, run again".into()
            ));
        }
        // A commit that pruned the ledger past this run's listing may have forgotten a file
        // that some run consumed after it: the check below could not see it.
        if current.pruned_before.is_some_and(|p| p > listed_at) {
            bail!(Conflict(
                "a concurrent run's commit pruned the ledger past this run's start (its ledger_retention is shorter than this run took), so whether this run's inputs were consumed meanwhile cannot be told; nothing was committed, run again".into()
            ));
        }
        let consumed = current.index();
        let taken: Vec<&str> = entries
            .iter()
            .filter(|e| consumed.consumed(e.size, &e.xxh3).is_some())
            .map(|e| e.path.as_str())
            .collect();
        if !taken.is_empty() {
            bail!(ConsumedConcurrently {
                all: taken.len() == entries.len(),
                files: taken.iter().map(|s| s.to_string()).collect(),
            });
        }
        let mut l = current.clone();
        l.v = 1;
        l.runs += 1;
        // The commit's time: later than the listing, so later than each input's modification
        // time (a file changed after it was listed fails the hash check instead).
        let now = unix_millis(std::time::SystemTime::now());
        l.files.extend(entries.iter().map(|e| LedgerEntry {
            version,
            at: Some(e.at.map_or(now, |modified| modified.max(now))),
            ..e.clone()
        }));
        if let Some(r) = job.input.ledger_retention {
            // never past this run's own listing: a run forgets nothing consumed while it ran
            let horizon = now.saturating_sub(millis(r.0)).min(listed_at);
            let forgotten = l.prune(horizon, now);
            if forgotten > 0 {
                tracing::info!(
                    "the ledger forgets {forgotten} file(s) consumed before the retention ({r})"
                );
            }
        }
        Ok(Some(l))
    };
    let metrics = BTreeMap::from([
        ("numOutputRows".to_string(), report.rows_out.to_string()),
        ("numFiles".to_string(), report.segments.to_string()),
        ("numOutputBytes".to_string(), report.bytes_out.to_string()),
        ("compactorLinesIn".to_string(), report.lines_in.to_string()),
        (
            "compactorRecordsIn".to_string(),
            report.records_in.to_string(),
        ),
        (
            "compactorDuplicates".to_string(),
            report.duplicates.to_string(),
        ),
        ("compactorRejected".to_string(), report.rejected.to_string()),
        (
            crate::table::RUN_ID_METRIC.to_string(),
            report.run_id.clone(),
        ),
    ]);
    failpoint("before-commit");
    // (a run without segments is found in the log by its run id)
    let landed_now = || match segment_paths.is_empty() {
        true => crate::table::committed_run(table.root(), &report.run_id)
            .ok()
            .flatten(),
        false => landed(table.root(), &segment_paths),
    };
    let committed = match write.commit(&rebase, metrics) {
        Ok(c) => c,
        Err(e) if landed_now().is_some() => {
            // the log entry was written, then something failed: the rows are committed
            let version = landed_now().expect("checked");
            tracing::warn!("the commit landed as version {version}, then failed: {e:#}");
            crate::table::Committed {
                version,
                conflicts: 0,
            }
        }
        Err(e) => {
            // Nothing was committed: this run's segments are nobody's. (If removing them
            // fails, the marker stays and the next writer removes them.)
            if segment_paths
                .iter()
                .all(|p| std::fs::remove_file(p).is_ok())
            {
                marker.remove()?;
            }
            if let Some(s) = staged {
                s.discard()?;
            }
            if let Some(c) = e.downcast_ref::<ConsumedConcurrently>() {
                if c.all {
                    report.note = Some(format!("every input file was consumed by a concurrent run while this one read it ({}); nothing was committed", c.files.join(", ")));
                    report.files_skipped += report.files_in;
                    report.seconds = started.elapsed().as_secs_f64();
                    return Ok(report);
                }
            }
            return Err(e);
        }
    };
    failpoint("after-commit");
    marker.remove()?;
    lap(&mut report, "commit");
    if let Some(s) = staged {
        let applied = s.apply(&rollup_memory, &spill).with_context(|| {
            format!(
                "the rows were committed as version {} of the table, but a rollup failed; the next run applies it again",
                committed.version
            )
        })?;
        report.rollups.extend(applied);
        lap(&mut report, "rollup");
    }
    report.committed = true;
    report.version = Some(committed.version);
    report.commit_conflicts = committed.conflicts;
    report.peak_reserved_bytes = (memory.peak() + rollup_memory.peak()) as u64;
    report.seconds = started.elapsed().as_secs_f64();
    drop(spill);
    report.reserved_at_end = (memory.used() + rollup_memory.used()) as u64;
    Ok(report)
}

/// The table's fields for rows of `schema`: UUID columns are `binary` (16 bytes).
pub(crate) fn table_fields(schema: &Schema, uuid_columns: &[String]) -> Vec<Arc<Field>> {
    schema
        .fields()
        .iter()
        .map(|f| {
            if uuid_columns.contains(f.name()) {
                Arc::new(f.as_ref().clone().with_data_type(DataType::Binary))
            } else {
                f.clone()
            }
        })
        .collect()
}

/// The positions in `schema` of the columns `names` (case-insensitively), skipping those it
/// lacks.
pub(crate) fn column_positions(schema: &Schema, names: &[String]) -> Vec<usize> {
    names
        .iter()
        .filter_map(|n| {
            schema
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(n))
        })
        .collect()
}

/// The version whose commit added the first of `segments`, if one did (a commit can land and
/// still report an error, e.g. when fsyncing the log directory fails afterwards).
pub(crate) fn landed(root: &Path, segments: &[PathBuf]) -> Option<u64> {
    let first = segments.first()?;
    crate::table::committed_in(root, first).ok().flatten()
}

/// The layout options a job's `[output]` asks for.
pub(crate) fn layout_options(
    output: &crate::job::OutputConfig,
    sorted_by: Vec<usize>,
    expected_rows: u64,
) -> layout::LayoutOptions {
    layout::LayoutOptions {
        zstd_level: output.zstd_level,
        trial: output.encoding_trial,
        max_zstd_level: output
            .max_zstd_level
            .unwrap_or(layout::DEFAULT_MAX_ZSTD_LEVEL)
            .max(output.zstd_level),
        tiny_max_zstd_level: output
            .max_zstd_level
            .unwrap_or(layout::TINY_SEGMENT_MAX_ZSTD_LEVEL)
            .max(output.zstd_level),
        row_group_size: output.row_group_size,
        sorted_by,
        bloom_columns: output.bloom_filters.clone(),
        expected_rows,
    }
}

/// A written segment, its partition value and its statistics.
pub(crate) type Segment = (WrittenSegment, Option<String>, FileStatsAccumulator);

/// What [`write_segments`] writes: the segments of one run or one compaction.
pub(crate) struct SegmentPlan<'a> {
    /// Names the segments (`part-<id>-<n>`) and the log lines.
    pub id: &'a str,
    /// The written types (see `layout::file_schema`).
    pub file_schema: &'a SchemaRef,
    pub layout: &'a layout::LayoutOptions,
    /// The sorted batches hold these data columns, then the partition column if `partitioned`.
    pub data_columns: usize,
    pub partitioned: bool,
    pub max_segment_rows: usize,
    pub threads: usize,
    /// The sort spilled (the allocator is kept tight from the start).
    pub spilled: bool,
    /// Rows of the table this run's rows must not repeat (`[dedup] scope`).
    pub table_rows: Option<&'a crate::tabledup::TableRows>,
}

/// Writes the sorted stream into segments: a new one at each partition change and every
/// `max_segment_rows`, each recorded in `marker` before it is created. With more than one
/// thread the merge runs on a producer thread and hands batches over a bounded queue to the
/// writer, whose columns are encoded in parallel. Returns the segments with their partition
/// values and statistics; their directories are fsynced.
pub(crate) fn write_segments(
    write: &crate::table::Write<'_>,
    marker: &mut PendingMarker,
    sorted: &mut compactor_engine::SortedStream,
    observe: &mut dyn FnMut(&RecordBatch) -> Result<()>,
    plan: &SegmentPlan<'_>,
    memory: &Arc<MemoryPool>,
    pool: &rayon::ThreadPool,
) -> Result<(Vec<Segment>, u64)> {
    let mut dirs = std::collections::BTreeSet::new();
    let mut dropped = 0u64;
    let data_cols: Vec<usize> = (0..plan.data_columns).collect();
    let mut written: Vec<Segment> = Vec::new();
    let mut open: Option<OpenSegment> = None;
    let run_id = plan.id;
    let spilled = plan.spilled;
    let mut consume = |batch: RecordBatch| -> Result<()> {
        let batch = match plan.table_rows {
            Some(t) => {
                let (b, n) = t.filter(batch)?;
                dropped += n;
                b
            }
            None => batch,
        };
        observe(&batch)?;
        for (part, range) in split_partitions(&batch, plan.partitioned) {
            let mut at = range.start;
            while at < range.end {
                let full = open
                    .as_ref()
                    .is_some_and(|o| o.part != part || o.rows >= plan.max_segment_rows);
                if full {
                    let o = open.take().expect("checked");
                    written.push(o.finish()?);
                }
                if open.is_none() {
                    let dir = write.dir_for(part.as_deref())?;
                    let path = dir.join(format!("part-{run_id}-{:05}", written.len()));
                    marker.record(&path)?;
                    dirs.insert(dir);
                    open = Some(OpenSegment {
                        writer: None,
                        file_schema: plan.file_schema.clone(),
                        layout: plan.layout.clone(),
                        pool: Arc::clone(memory),
                        stats: write.stats_collector(part.as_deref())?,
                        stem: path,
                        part: part.clone(),
                        pending: Vec::new(),
                        pending_rows: 0,
                        rows: 0,
                        held: memory.reservation("segment batches"),
                        trim: AllocatorTrim {
                            ticks: 0,
                            tight: spilled,
                        },
                    });
                }
                let o = open.as_mut().expect("opened");
                let room = plan.max_segment_rows - o.rows;
                let len = room.min(range.end - at);
                o.push(batch.slice(at, len).project(&data_cols)?)?;
                at += len;
            }
        }
        Ok(())
    };
    if plan.threads > 1 {
        // Pipeline: the merge produces sorted batches on one worker while this one encodes
        // them; the bounded queue makes a slow encoder hold the merge back (no unbounded
        // growth).
        type Queued = compactor_engine::Result<(RecordBatch, MemoryReservation)>;
        let (tx, rx) = crossbeam::channel::bounded::<Queued>(WRITE_QUEUE_BATCHES);
        std::thread::scope(|s| -> Result<()> {
            // The producer thread only drives the merge: each batch is made by the pool (the
            // gather is parallel by column), and the thread blocks outside the pool on the
            // queue, so no worker ever waits on it.
            std::thread::Builder::new()
                .name("compactor-merge".into())
                .spawn_scoped(s, move || loop {
                    // a queued batch is reserved until the writer has taken it over
                    let next = pool.install(|| sorted.next_batch()).transpose().map(|b| {
                        let b = b?;
                        let mut r = memory.reservation("write queue");
                        r.try_grow(b.get_array_memory_size())?;
                        Ok((b, r))
                    });
                    let stop = !matches!(next, Some(Ok(_)));
                    if next.is_some_and(|b| tx.send(b).is_err()) || stop {
                        return;
                    }
                })?;
            while let Some(queued) = next_queued(&rx) {
                let (batch, reserved) = queued?;
                consume(batch)?;
                drop(reserved);
            }
            Ok(())
        })?;
    } else {
        while let Some(batch) = sorted.next_batch()? {
            consume(batch)?;
        }
    }
    if let Some(o) = open.take() {
        written.push(o.finish()?);
    }
    for d in &dirs {
        segment::sync_dir(d)?;
    }
    Ok((written, dropped))
}

/// The next item of a queue read by a rayon worker; `None` once the queue is closed and empty.
/// While the queue is empty the worker runs the pool's pending jobs (the producer's work is
/// among them) instead of blocking: a blocked worker is a core the producer cannot use.
fn next_queued<T>(rx: &crossbeam::channel::Receiver<T>) -> Option<T> {
    use crossbeam::channel::{RecvTimeoutError, TryRecvError};
    loop {
        match rx.try_recv() {
            Ok(item) => return Some(item),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        if rayon::yield_now() == Some(rayon::Yield::Executed) {
            continue;
        }
        match rx.recv_timeout(std::time::Duration::from_micros(100)) {
            Ok(item) => return Some(item),
            Err(RecvTimeoutError::Disconnected) => return None,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Concatenates batches of one schema, a column per task.
fn concat_parallel(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    if let [one] = batches {
        return Ok(one.clone());
    }
    let rows = batches.iter().map(RecordBatch::num_rows).sum();
    let columns = (0..schema.fields().len())
        .into_par_iter()
        .map(|c| {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(c).as_ref()).collect();
            arrow_select::concat::concat(&arrays)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &opts,
    )?)
}

/// Rows handed to the Parquet column writers at once: large enough that each column's
/// encoding runs long (cheap per row), small enough to hold in memory. A constant, so page
/// boundaries do not depend on how the sort cut its output.
const WRITE_ROWS: usize = 64 * 1024;

/// Sorted batches queued between the merge and the segment writer.
const WRITE_QUEUE_BATCHES: usize = 4;

/// The rows held for `sort_by = "auto"` until the key is chosen.
struct AutoSample {
    batches: Vec<RecordBatch>,
    rows: usize,
    held: MemoryReservation,
}

/// `schema` with the partition column appended, as batches are pushed to the sort.
fn with_partition_field(
    schema: &SchemaRef,
    partition: Option<&crate::job::PartitionConfig>,
) -> SchemaRef {
    match partition {
        None => schema.clone(),
        Some(p) => {
            let mut fields = schema.fields().to_vec();
            fields.push(Arc::new(Field::new(&p.name, DataType::Utf8, true)));
            Arc::new(Schema::new(fields))
        }
    }
}

/// A segment being written. The file is created at the first flush, when the layout has been
/// chosen from the segment's first rows.
struct OpenSegment {
    writer: Option<SegmentWriter>,
    file_schema: SchemaRef,
    layout: layout::LayoutOptions,
    pool: Arc<MemoryPool>,
    stats: FileStatsAccumulator,
    /// The segment's name without its checksum and extension (see `segment`).
    stem: PathBuf,
    part: Option<String>,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    rows: usize,
    held: MemoryReservation,
    trim: AllocatorTrim,
}

impl OpenSegment {
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        self.held.try_grow(batch.get_array_memory_size())?;
        self.pending_rows += batch.num_rows();
        self.rows += batch.num_rows();
        self.pending.push(batch);
        if self.pending_rows >= WRITE_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let schema = self.pending[0].schema();
        // the concatenated copy, until the pieces are dropped
        self.held.try_grow(self.held.size())?;
        let batch = concat_parallel(&schema, &self.pending)?;
        self.pending.clear();
        self.pending_rows = 0;
        let file_batch = layout::to_file_batch(&batch, &self.file_schema)?;
        // Table statistics see the table's types: UUIDs as binary, integers as long.
        let stats_batch = stats_view(&batch, &file_batch)?;
        if self.writer.is_none() {
            let sample = file_batch.slice(0, file_batch.num_rows().min(layout::DEFAULT_TRIAL_ROWS));
            let started = Instant::now();
            let chosen = layout::choose(&sample, &self.layout)?;
            tracing::info!(
                "layout of {} (chosen in {:.2} s): {}",
                self.stem.display(),
                started.elapsed().as_secs_f64(),
                chosen.describe()
            );
            self.writer = Some(SegmentWriter::create(
                &self.stem,
                self.file_schema.clone(),
                chosen.properties()?,
                &self.pool,
            )?);
        }
        let writer = self.writer.as_mut().expect("created above");
        // Statistics are collected while the columns are encoded.
        let (w, st) = rayon::join(
            || writer.write(&file_batch),
            || self.stats.merge(&stats_batch),
        );
        w?;
        st.map_err(|e| anyhow::anyhow!("segment statistics: {e}"))?;
        self.held.free();
        self.trim.tick();
        Ok(())
    }

    fn finish(mut self) -> Result<(WrittenSegment, Option<String>, FileStatsAccumulator)> {
        self.flush()?;
        let writer = self
            .writer
            .take()
            .context("internal error: a segment without rows")?;
        let rows = writer.rows();
        let (path, size) = writer.finish()?;
        Ok((WrittenSegment { path, size, rows }, self.part, self.stats))
    }
}

/// The rows as the table's statistics see them: `rows` (the parsed types) with the UUID
/// columns of `file` as binary.
fn stats_view(rows: &RecordBatch, file: &RecordBatch) -> Result<RecordBatch> {
    let mut fields = rows.schema().fields().to_vec();
    let mut cols = rows.columns().to_vec();
    for (i, f) in file.schema().fields().iter().enumerate() {
        if matches!(f.data_type(), DataType::FixedSizeBinary(_)) {
            cols[i] = arrow_cast::cast(file.column(i), &DataType::Binary)?;
            fields[i] = Arc::new(fields[i].as_ref().clone().with_data_type(DataType::Binary));
        }
    }
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        cols,
        &opts,
    )?)
}

/// Appends the partition column (the day or hour of the source timestamp column; null while
/// that column is missing or not a timestamp: the run fails later if it never becomes one).
fn with_partition(b: &RecordBatch, p: &crate::job::PartitionConfig) -> Result<RecordBatch> {
    let values = match b
        .schema()
        .fields()
        .iter()
        .position(|f| f.name().eq_ignore_ascii_case(&p.column))
    {
        Some(i) if matches!(b.column(i).data_type(), DataType::Timestamp(..)) => {
            partition_values(b.column(i), p.by)
        }
        _ => arrow_array::new_null_array(&DataType::Utf8, b.num_rows()),
    };
    let mut fields = b.schema().fields().to_vec();
    fields.push(Arc::new(Field::new(&p.name, DataType::Utf8, true)));
    let mut cols = b.columns().to_vec();
    cols.push(values);
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// Day or hour of each timestamp as a partition value (`2026-01-31` / `2026-01-31-23`), null
/// for a null timestamp. Values are built from digits only, so they cannot name a path.
pub fn partition_values(ts: &ArrayRef, by: Granularity) -> ArrayRef {
    let ts = ts.as_primitive::<TimestampMicrosecondType>();
    let unit: i64 = match by {
        Granularity::Day => 86_400_000_000,
        Granularity::Hour => 3_600_000_000,
    };
    let mut last: Option<(i64, String)> = None;
    let values: StringArray = (0..ts.len())
        .map(|i| {
            if ts.is_null(i) {
                return None;
            }
            let bucket = ts.value(i).div_euclid(unit);
            if let Some((b, s)) = &last {
                if *b == bucket {
                    return Some(s.clone());
                }
            }
            let dt = chrono::DateTime::from_timestamp_micros(bucket * unit).unwrap_or_default();
            let s = match by {
                Granularity::Day => dt.format("%Y-%m-%d").to_string(),
                Granularity::Hour => dt.format("%Y-%m-%d-%H").to_string(),
            };
            last = Some((bucket, s.clone()));
            Some(s)
        })
        .collect();
    Arc::new(values)
}

/// Cuts a sorted batch where the partition value (its last column) changes.
fn split_partitions(
    batch: &RecordBatch,
    partitioned: bool,
) -> Vec<(Option<String>, std::ops::Range<usize>)> {
    let n = batch.num_rows();
    if !partitioned {
        return vec![(None, 0..n)];
    }
    let parts = batch.column(batch.num_columns() - 1).as_string::<i32>();
    let value = |i: usize| (!parts.is_null(i)).then(|| parts.value(i));
    let mut out = Vec::new();
    let mut start = 0;
    while start < n {
        let v = value(start);
        let mut end = start + 1;
        while end < n && value(end) == v {
            end += 1;
        }
        out.push((v.map(str::to_string), start..end));
        start = end;
    }
    out
}
