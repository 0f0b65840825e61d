//! Spill files: sorted runs written to disk when the memory budget is full.
//!
//! # Why
//! A run's input can be far larger than its memory budget. The sort keeps what fits, sorts it,
//! and writes it out as a *sorted run*; a merge later reads the runs back a batch at a time.
//! Spill files are private scratch: they must never outlive the run that wrote them, must not
//! fill the disk unnoticed, and must be cheap to write and read.
//!
//! # How
//! - A [`SpillManager`] owns one directory per run, `<spill_dir>/compactor-spill-<pid>-<n>/`,
//!   holding a lock file (`owner.lock`) that the run keeps locked while it lives.
//! - Each run is an Arrow IPC stream, LZ4-compressed, of batches of a bounded size
//!   ([`SpillFile`]); the file is deleted when its handle drops, and the directory when the
//!   manager drops, so success and failure both clean up.
//! - A killed process cannot clean up, so [`SpillManager::new`] first removes every sibling
//!   `compactor-spill-*` directory whose lock it can take (its owner is dead).
//! - Every byte written counts against `max_bytes`; a write past it, or a full disk, fails with
//!   [`EngineError::SpillFull`] instead of filling the disk.
//!
//! ```text
//!  <spill_dir>/compactor-spill-4711-0/ ── owner.lock (locked while the run lives)
//!                                      ├─ run-000000.arrows  (IPC stream, LZ4, deleted on drop)
//!                                      └─ run-000001.arrows
//! ```

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_ipc::CompressionType;
use arrow_schema::SchemaRef;

use crate::{EngineError, Result};

/// Default cap on the bytes a run may spill: 1 TiB (in practice the disk's free space decides).
pub const DEFAULT_MAX_SPILL_BYTES: u64 = 1 << 40;

const DIR_PREFIX: &str = "compactor-spill-";
/// A spill directory without its lock file is only taken for a dead run's after this long.
const STARTUP_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// Where and how much a run may spill.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    /// Parent directory of the run's spill directory.
    pub dir: PathBuf,
    /// Most bytes the run may have on disk at once.
    pub max_bytes: u64,
}

impl SpillConfig {
    /// Spill under `dir`, at most [`DEFAULT_MAX_SPILL_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SpillConfig {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_SPILL_BYTES,
        }
    }
}

/// One run's spill directory, removed (with whatever is left in it) on drop.
#[derive(Debug)]
pub struct SpillManager {
    dir: PathBuf,
    max_bytes: u64,
    used: Arc<AtomicU64>,
    peak: AtomicU64,
    written: AtomicU64,
    files: AtomicUsize,
    _lock: File,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> EngineError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        EngineError::SpillFull(format!(
            "the disk holding {} is full ({what}); free space or point --spill-dir elsewhere",
            path.display()
        ))
    } else {
        EngineError::Io(format!("{what} {}: {e}", path.display()))
    }
}

impl SpillManager {
    /// Creates the run's spill directory under `config.dir`, after removing the directories of
    /// dead runs there.
    pub fn new(config: &SpillConfig) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| io_err("creating spill directory", &config.dir, e))?;
        Self::remove_stale(&config.dir)?;
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = config.dir.join(format!(
            "{DIR_PREFIX}{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| io_err("creating", &dir, e))?;
        let lock_path = dir.join("owner.lock");
        let lock = File::create(&lock_path).map_err(|e| io_err("creating", &lock_path, e))?;
        lock.try_lock()
            .map_err(|e| EngineError::Io(format!("locking {}: {e}", lock_path.display())))?;
        Ok(Arc::new(SpillManager {
            dir,
            max_bytes: config.max_bytes,
            used: Arc::new(AtomicU64::new(0)),
            peak: AtomicU64::new(0),
            written: AtomicU64::new(0),
            files: AtomicUsize::new(0),
            _lock: lock,
        }))
    }

    /// Removes every `compactor-spill-*` directory under `parent` whose owner is gone (its
    /// lock can be taken). Returns how many were removed.
    pub fn remove_stale(parent: &Path) -> Result<usize> {
        let Ok(entries) = std::fs::read_dir(parent) else {
            return Ok(0);
        };
        let mut removed = 0;
        for e in entries.flatten() {
            let name = e.file_name();
            if !name.to_string_lossy().starts_with(DIR_PREFIX) || !e.path().is_dir() {
                continue;
            }
            let lock = e.path().join("owner.lock");
            // Read-only is enough for `flock`, and works on another user's file.
            let dead = match File::open(&lock) {
                Ok(f) => f.try_lock().is_ok(),
                // No lock file: a run died between creating the directory and its lock, or
                // one is starting right now; only an old directory counts as dead.
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => e
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > STARTUP_GRACE),
                // Unreadable (another user's): not ours to judge.
                Err(_) => false,
            };
            // Best effort: another run may be removing the same directory, or it may not be
            // ours to remove; either way this run can go on.
            if dead && std::fs::remove_dir_all(e.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The run's spill directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes on disk now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }

    /// Most bytes on disk at once.
    pub fn peak(&self) -> u64 {
        self.peak.load(Ordering::Acquire)
    }

    /// Bytes written in all (a merge pass rewrites its inputs, so this can exceed the peak).
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Spill files created in all.
    pub fn files_created(&self) -> usize {
        self.files.load(Ordering::Acquire)
    }

    /// Starts a new spill file for batches of `schema`.
    pub fn create(self: &Arc<Self>, schema: &SchemaRef) -> Result<SpillWriter> {
        let n = self.files.fetch_add(1, Ordering::AcqRel);
        let path = self.dir.join(format!("run-{n:06}.arrows"));
        let f = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err("creating spill file", &path, e))?;
        let bytes = Arc::new(AtomicU64::new(0));
        let file = SpillFile {
            path,
            bytes: Arc::clone(&bytes),
            rows: 0,
            max_batch_bytes: 0,
            schema: schema.clone(),
            manager: Arc::clone(self),
        };
        let sink = Counting {
            inner: BufWriter::with_capacity(1 << 20, f),
            manager: Arc::clone(self),
            bytes,
            over_cap: false,
        };
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::LZ4_FRAME))
            .map_err(EngineError::Arrow)?;
        let writer = StreamWriter::try_new_with_options(sink, schema, options)
            .map_err(|e| file.write_error(e, false))?;
        Ok(SpillWriter { writer, file })
    }

    fn add(&self, bytes: u64) -> bool {
        let now = self.used.fetch_add(bytes, Ordering::AcqRel) + bytes;
        self.peak.fetch_max(now, Ordering::AcqRel);
        self.written.fetch_add(bytes, Ordering::AcqRel);
        now <= self.max_bytes
    }
}

impl Drop for SpillManager {
    fn drop(&mut self) {
        // Files still open delete themselves (they hold an `Arc` to this manager, so by now
        // none is left); the directory and its lock file go last.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Counts bytes against the manager's cap on their way to the file.
struct Counting {
    inner: BufWriter<File>,
    manager: Arc<SpillManager>,
    bytes: Arc<AtomicU64>,
    over_cap: bool,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::AcqRel);
        if !self.manager.add(n as u64) {
            self.over_cap = true;
            return Err(std::io::Error::other("spill cap reached"));
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A spill file being written. Dropping it unfinished deletes the file.
pub struct SpillWriter {
    writer: StreamWriter<Counting>,
    file: SpillFile,
}

impl std::fmt::Debug for SpillWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillWriter")
            .field("file", &self.file)
            .finish()
    }
}

impl SpillWriter {
    /// Appends a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.file.rows += batch.num_rows() as u64;
        self.file.max_batch_bytes = self.file.max_batch_bytes.max(batch.get_array_memory_size());
        let over = |w: &StreamWriter<Counting>| w.get_ref().over_cap;
        self.writer
            .write(batch)
            .map_err(|e| self.file.write_error(e, over(&self.writer)))
    }

    /// Finishes the file (flushed, not fsynced: spill files never need to survive a crash).
    pub fn finish(mut self) -> Result<SpillFile> {
        let over = self.writer.get_ref().over_cap;
        self.writer
            .finish()
            .map_err(|e| self.file.write_error(e, over))?;
        let over = self.writer.get_ref().over_cap;
        self.writer
            .get_mut()
            .flush()
            .map_err(|e| self.file.write_error(e.into(), over))?;
        Ok(self.file)
    }
}

/// A finished spill file: a sorted run. Deleted from disk when dropped.
#[derive(Debug)]
pub struct SpillFile {
    path: PathBuf,
    bytes: Arc<AtomicU64>,
    rows: u64,
    max_batch_bytes: usize,
    schema: SchemaRef,
    manager: Arc<SpillManager>,
}

impl SpillFile {
    /// Rows in the file.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// In-memory size of the largest batch written (what reading one batch back costs).
    pub fn max_batch_bytes(&self) -> usize {
        self.max_batch_bytes
    }

    /// Schema of the batches.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Reads the batches back, in order.
    pub fn reader(&self) -> Result<SpillReader> {
        let f = File::open(&self.path).map_err(|e| io_err("opening spill file", &self.path, e))?;
        let reader = StreamReader::try_new(BufReader::with_capacity(1 << 20, f), None)
            .map_err(EngineError::Arrow)?;
        Ok(SpillReader { reader })
    }

    fn write_error(&self, e: arrow_schema::ArrowError, over_cap: bool) -> EngineError {
        if over_cap {
            return EngineError::SpillFull(format!(
                "spill files reached max_spill_bytes ({} bytes) in {}; raise the cap, the memory budget, or free disk",
                self.manager.max_bytes,
                self.manager.dir.display()
            ));
        }
        match e {
            arrow_schema::ArrowError::IoError(_, io) => {
                io_err("writing spill file", &self.path, io)
            }
            e => EngineError::Arrow(e),
        }
    }
}

impl Drop for SpillFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        let bytes = self.bytes.swap(0, Ordering::AcqRel);
        self.manager.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Batches of a spill file, read back one at a time.
pub struct SpillReader {
    reader: StreamReader<BufReader<File>>,
}

impl Iterator for SpillReader {
    type Item = Result<RecordBatch>;
    fn next(&mut self) -> Option<Self::Item> {
        self.reader.next().map(|r| r.map_err(EngineError::Arrow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    fn batch(n: i64) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(0..n))]).unwrap()
    }

    #[test]
    fn round_trip_and_cleanup() {
        let tmp = tempfile::tempdir().unwrap();
        let m = SpillManager::new(&SpillConfig::new(tmp.path())).unwrap();
        let b = batch(1000);
        let mut w = m.create(&b.schema()).unwrap();
        w.write(&b).unwrap();
        w.write(&b).unwrap();
        let f = w.finish().unwrap();
        assert_eq!(f.rows(), 2000);
        assert!(m.used() > 0 && m.used() == f.bytes());
        let back: Vec<_> = f.reader().unwrap().map(|r| r.unwrap()).collect();
        assert_eq!(back, vec![b.clone(), b.clone()]);
        let dir = m.dir().to_path_buf();
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2); // lock + run
        drop(f);
        assert_eq!(m.used(), 0);
        // an unfinished writer deletes its file too
        let mut w = m.create(&b.schema()).unwrap();
        w.write(&b).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        assert_eq!(m.used(), 0);
        drop(m);
        assert!(!dir.exists());
    }

    #[test]
    fn cap_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = SpillConfig {
            dir: tmp.path().into(),
            max_bytes: 4096,
        };
        let m = SpillManager::new(&cfg).unwrap();
        let b = batch(100_000);
        let mut w = m.create(&b.schema()).unwrap();
        let err = w.write(&b).and_then(|_| w.finish().map(drop)).unwrap_err();
        assert!(matches!(err, EngineError::SpillFull(_)), "{err}");
        assert_eq!(m.used(), 0);
    }

    #[test]
    fn stale_directories_of_dead_runs_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        // a dead run: a directory whose lock nobody holds
        let dead = tmp.path().join("compactor-spill-1-0");
        std::fs::create_dir_all(&dead).unwrap();
        File::create(dead.join("owner.lock")).unwrap();
        std::fs::write(dead.join("run-000000.arrows"), b"x").unwrap();
        // a run starting right now: its directory has no lock file yet
        let starting = tmp.path().join("compactor-spill-2-0");
        std::fs::create_dir_all(&starting).unwrap();
        // a live run
        let live = SpillManager::new(&SpillConfig::new(tmp.path())).unwrap();
        assert!(!dead.exists());
        assert!(starting.exists());
        assert_eq!(SpillManager::remove_stale(tmp.path()).unwrap(), 0);
        assert!(live.dir().exists());
    }
}
