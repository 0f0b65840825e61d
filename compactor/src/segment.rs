//! Writing one immutable Parquet segment.
//!
//! Segments are plain Parquet that every engine reads: zstd pages, each column's encoding,
//! level and bloom filter as [`crate::layout`] chose them, page-level statistics with the page
//! index, and `sorting_columns` in the row-group metadata so readers know the order. The writer's output is a pure function of the rows and
//! the options (no timestamps, no random ids inside the file), which is what makes segments
//! byte-identical across runs and thread counts. Files are fsynced before they are committed.
//!
//! # Names and checksums
//! A segment is written under a temporary name (`<stem>.parquet.tmp`) while its bytes stream
//! through an xxh3-64 hasher; once complete and fsynced it is renamed to
//! `<stem>-c<16 hex digits>.parquet`. The checksum is part of the name, so the Delta log that
//! commits the name records the checksum in the same atomic step, without a side file or a
//! growing log entry; `compactor verify` re-hashes the file against it ([`recorded_checksum`]).
//! A crashed writer leaves a `.tmp` (never committed) or a complete segment; the run's pending
//! marker names the stem, which covers both ([`crate::pending`]).
//!
//! ```text
//!  <stem>.parquet.tmp ──write (hashed) + fsync──▶ rename ──▶ <stem>-c<xxh3-64>.parquet
//! ```

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use compactor_engine::{MemoryPool, MemoryReservation};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::arrow::arrow_writer::{compute_leaves, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use rayon::prelude::*;

/// Writes one new Parquet file (which must not exist) from a stream of batches; fsynced on
/// [`SegmentWriter::finish`].
///
/// Rows are cut into row groups of exactly `row_group_size` rows (the last may be shorter),
/// whatever the batch sizes. Each batch's columns are encoded in parallel (rayon) by parquet's
/// `ArrowColumnWriter`s, one per column, and the finished column chunks are appended in schema
/// order, so the bytes are the same as a sequential write whatever the thread count. The
/// encoded pages of the open row group are the only thing it buffers; their size is reserved
/// from the run's memory budget as they grow.
pub struct SegmentWriter {
    /// Where the finished file goes: `<stem>`; written at `<stem>.parquet.tmp` until then.
    stem: PathBuf,
    tmp: PathBuf,
    schema: SchemaRef,
    writer: SerializedFileWriter<BufWriter<HashingFile>>,
    factory: ArrowRowGroupWriterFactory,
    columns: Vec<ArrowColumnWriter>,
    /// Seconds each column took to encode its last piece: the next piece starts the slowest
    /// first (see `write`).
    cost: Vec<f64>,
    row_group: usize,
    group_rows: usize,
    group_size: usize,
    /// Encoded bytes at which a row group ends early ([`SegmentWriter::with_max_group_bytes`]).
    group_bytes: Option<usize>,
    rows: u64,
    reservation: MemoryReservation,
}

impl SegmentWriter {
    /// Starts the segment whose name begins with `stem` (a path without extension; see the
    /// module docs): its bytes go to `<stem>.parquet.tmp` until [`SegmentWriter::finish`].
    pub fn create(
        stem: &Path,
        schema: SchemaRef,
        props: WriterProperties,
        pool: &Arc<MemoryPool>,
    ) -> Result<Self> {
        let group_size = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
        let tmp = temp_path(stem);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .with_context(|| format!("creating segment {}", tmp.display()))?;
        let file = HashingFile {
            file,
            hasher: xxhash_rust::xxh3::Xxh3::new(),
        };
        // ArrowWriter maps the schema to Parquet's; then we take over the row groups. The
        // Arrow schema is not embedded (`ARROW:schema`, base64 IPC, about 100 bytes a column):
        // every type written maps back from its Parquet logical type alone (UTC timestamps,
        // narrow ints, UUID), so it would only repeat the schema (9 kB of a 64 kB file of 86
        // columns). `tests/tightening.rs` checks what pyarrow reads back.
        let writer = ArrowWriter::try_new_with_options(
            BufWriter::with_capacity(1 << 20, file),
            schema.clone(),
            ArrowWriterOptions::new()
                .with_properties(props)
                .with_skip_arrow_metadata(true),
        )?;
        let (writer, factory) = writer.into_serialized_writer()?;
        let columns = factory.create_column_writers(0)?;
        Ok(SegmentWriter {
            stem: stem.to_path_buf(),
            tmp,
            schema,
            writer,
            factory,
            cost: vec![0.0; columns.len()],
            columns,
            row_group: 0,
            group_rows: 0,
            group_size,
            group_bytes: None,
            rows: 0,
            reservation: pool.reservation("segment writer"),
        })
    }

    /// Also ends a row group, after the batch that makes it so, once its column writers'
    /// memory (pages and encoder buffers, held until then, reserved) reaches `bytes`: for rows
    /// whose size varies widely (a rollup's sketches). The cut depends on the rows and how they
    /// were cut into batches, not on timing.
    pub fn with_max_group_bytes(mut self, bytes: usize) -> Self {
        self.group_bytes = Some(bytes);
        self
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Appends rows.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = (self.group_size - self.group_rows).min(batch.num_rows() - offset);
            let slice = batch.slice(offset, len);
            let mut leaves = Vec::with_capacity(self.columns.len());
            for (field, array) in self.schema.fields().iter().zip(slice.columns()) {
                leaves.extend(compute_leaves(field, array)?);
            }
            // One task per column, the slowest last time started first (longest processing
            // time first): a core that would otherwise wait on one big column at the end of
            // the piece fills in with the small ones. Only the schedule depends on timing;
            // each column's bytes do not.
            let mut tasks: Vec<_> = self
                .columns
                .iter_mut()
                .zip(leaves)
                .zip(self.cost.iter_mut())
                .collect();
            tasks.sort_by(|(_, a), (_, b)| b.total_cmp(a));
            let errors = std::sync::Mutex::new(Vec::new());
            rayon::scope_fifo(|s| {
                for ((w, leaf), cost) in tasks {
                    let errors = &errors;
                    s.spawn_fifo(move |_| {
                        let started = std::time::Instant::now();
                        if let Err(e) = w.write(&leaf) {
                            errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                        }
                        *cost = started.elapsed().as_secs_f64();
                    });
                }
            });
            if let Some(e) = errors.into_inner().unwrap_or_else(|e| e.into_inner()).pop() {
                return Err(e.into());
            }
            self.group_rows += len;
            self.rows += len as u64;
            offset += len;
            if self.group_rows == self.group_size {
                self.flush_group()?;
            }
        }
        let held: usize = self.columns.iter().map(|c| c.memory_size()).sum();
        self.reservation.try_resize(held)?;
        if self.group_rows > 0 && self.group_bytes.is_some_and(|b| held >= b) {
            self.flush_group()?;
            let held = self.columns.iter().map(|c| c.memory_size()).sum();
            self.reservation.try_resize(held)?;
        }
        Ok(())
    }

    fn flush_group(&mut self) -> Result<()> {
        self.row_group += 1;
        let next = self.factory.create_column_writers(self.row_group)?;
        let columns = std::mem::replace(&mut self.columns, next);
        let chunks = columns
            .into_par_iter()
            .map(|w| w.close())
            .collect::<parquet::errors::Result<Vec<_>>>()?;
        let mut group = self.writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.group_rows = 0;
        Ok(())
    }

    /// Closes the last row group, writes the footer, fsyncs and renames the file to its final
    /// name (with its checksum). Returns that path and the file's size. The directory entry is
    /// not yet durable: the caller fsyncs the directory ([`sync_dir`]) before committing.
    pub fn finish(mut self) -> Result<(PathBuf, u64)> {
        if self.group_rows > 0 {
            self.flush_group()?;
        }
        let HashingFile { file, hasher } = self
            .writer
            .into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        crate::run::failpoint("segment-before-fsync");
        file.sync_all()
            .with_context(|| format!("fsync {}", self.tmp.display()))?;
        let size = file.metadata()?.len();
        drop(file);
        crate::run::failpoint("segment-before-rename");
        let path = final_path(&self.stem, hasher.digest());
        std::fs::rename(&self.tmp, &path)
            .with_context(|| format!("renaming {} to {}", self.tmp.display(), path.display()))?;
        Ok((path, size))
    }
}

/// 20 batches of 100 incompressible rows of 4 KiB (hashes) in the one binary column of
/// `schema`: 8 MB that zstd cannot shrink (tests of byte bounds).
#[cfg(test)]
pub(crate) fn incompressible_batches(schema: &SchemaRef) -> Vec<RecordBatch> {
    (0..20u64)
        .map(|b| {
            let rows = (0..100u64).map(|r| {
                (0..512u64)
                    .flat_map(|i| {
                        let at = (b * 100 + r) * 512 + i;
                        xxhash_rust::xxh3::xxh3_64(&at.to_le_bytes()).to_le_bytes()
                    })
                    .collect::<Vec<u8>>()
            });
            let col = arrow_array::BinaryArray::from_iter_values(rows);
            RecordBatch::try_new(schema.clone(), vec![Arc::new(col)]).expect("one binary column")
        })
        .collect()
}

/// A file whose bytes are hashed as they are written (the writer only appends).
struct HashingFile {
    file: File,
    hasher: xxhash_rust::xxh3::Xxh3,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Where a segment is written until it is complete: `<stem>.parquet.tmp`.
pub fn temp_path(stem: &Path) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(".parquet.tmp");
    PathBuf::from(s)
}

/// A complete segment's path: `<stem>-c<xxh3-64 of its bytes, 16 lowercase hex>.parquet`.
pub fn final_path(stem: &Path, checksum: u64) -> PathBuf {
    let mut s = stem.as_os_str().to_owned();
    s.push(format!("-c{checksum:016x}.parquet"));
    PathBuf::from(s)
}

/// The checksum recorded in a segment's file name (see the module docs), if it has one.
pub fn recorded_checksum(file_name: &str) -> Option<u64> {
    let base = file_name.strip_suffix(".parquet")?;
    let (_, last) = base.rsplit_once('-')?;
    let hex = last.strip_prefix('c')?;
    if hex.len() != 16 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The xxh3-64 of a file's bytes, read in 1 MiB blocks.
pub fn checksum_file(path: &Path) -> std::io::Result<u64> {
    let mut f = File::open(path)?;
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.digest());
        }
        hasher.update(&buf[..n]);
    }
}

/// Whether `file` is (or was being written as) the segment of `stem`: `<stem>.parquet.tmp`
/// or `<stem>-c<checksum>.parquet`.
pub fn belongs_to(stem: &Path, file: &Path) -> bool {
    if file.parent() != stem.parent() {
        return false;
    }
    let (Some(s), Some(f)) = (
        stem.file_name().and_then(|s| s.to_str()),
        file.file_name().and_then(|s| s.to_str()),
    ) else {
        return false;
    };
    match f.strip_prefix(s) {
        Some(".parquet.tmp") => true,
        // exactly "-c" + 16 hex digits + ".parquet"
        Some(rest) => rest.len() == 26 && rest.starts_with("-c") && recorded_checksum(f).is_some(),
        None => false,
    }
}

/// fsyncs a directory, so that the names of the files just created in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync directory {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_checksum() {
        let stem = Path::new("/t/day=1/part-R-00001");
        let p = final_path(stem, 0xdead_beef);
        assert_eq!(
            p,
            Path::new("/t/day=1/part-R-00001-c00000000deadbeef.parquet")
        );
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(recorded_checksum(name), Some(0xdead_beef));
        assert_eq!(recorded_checksum("part-R-00001.zstd.parquet"), None);
        assert_eq!(
            recorded_checksum("part-R-00001-cDEADBEEF00000000.parquet"),
            None
        );
        assert_eq!(recorded_checksum("part-R-00001-c0123.parquet"), None);
        assert!(belongs_to(stem, &p));
        assert!(belongs_to(stem, &temp_path(stem)));
        // another segment of the run whose number starts with the same digits
        assert!(!belongs_to(
            stem,
            &final_path(Path::new("/t/day=1/part-R-000010"), 1)
        ));
        assert!(!belongs_to(
            stem,
            &final_path(Path::new("/t/day=2/part-R-00001"), 1)
        ));
    }

    #[test]
    fn the_file_checksum_is_the_streamed_one() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("part-x-00000");
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "a",
            arrow_schema::DataType::Int64,
            false,
        )]));
        let pool = MemoryPool::new(1 << 30);
        let mut w =
            SegmentWriter::create(&stem, schema.clone(), WriterProperties::new(), &pool).unwrap();
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(arrow_array::Int64Array::from_iter_values(0..1000))],
        )
        .unwrap();
        w.write(&batch).unwrap();
        let (path, size) = w.finish().unwrap();
        assert!(!temp_path(&stem).exists());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), size);
        let recorded = recorded_checksum(path.file_name().unwrap().to_str().unwrap()).unwrap();
        assert_eq!(checksum_file(&path).unwrap(), recorded);
    }

    /// With a byte bound, row groups end once their pages reach it (and the reservation never
    /// holds much more); without, at the row count alone. Fails without the bound's flush.
    #[test]
    fn row_groups_end_at_the_byte_bound() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(arrow_schema::Schema::new(vec![arrow_schema::Field::new(
            "sketch",
            arrow_schema::DataType::Binary,
            false,
        )]));
        let batches = incompressible_batches(&schema);
        let groups = |bound: Option<usize>, name: &str| {
            let pool = MemoryPool::new(1 << 30);
            let mut w = SegmentWriter::create(
                &dir.path().join(name),
                schema.clone(),
                WriterProperties::new(),
                &pool,
            )
            .unwrap();
            if let Some(b) = bound {
                w = w.with_max_group_bytes(b);
            }
            let mut peak = 0;
            for b in &batches {
                w.write(b).unwrap();
                peak = peak.max(pool.used());
            }
            let (path, _) = w.finish().unwrap();
            let meta = parquet::file::reader::SerializedFileReader::new(File::open(path).unwrap())
                .unwrap();
            use parquet::file::reader::FileReader;
            let rows: Vec<i64> = meta
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect();
            (rows, peak)
        };
        let (unbounded, _) = groups(None, "a");
        assert_eq!(unbounded, vec![2_000]);
        let (bounded, peak) = groups(Some(1 << 20), "b");
        assert!(bounded.len() >= 6, "{bounded:?}");
        assert_eq!(bounded.iter().sum::<i64>(), 2_000);
        assert!(peak < 2 << 20, "held {peak} bytes");
    }
}
