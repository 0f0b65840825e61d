//! Writing one immutable Parquet segment.
//!
//! Segments are plain Parquet that every engine reads: zstd pages, each column's encoding,
//! level and bloom filter as [`crate::layout`] chose them, page-level statistics with the page
//! index, and `sorting_columns` in the row-group metadata so readers know the order. The writer's output is a pure function of the rows and
//! the options (no timestamps, no random ids inside the file), which is what makes segments
//! byte-identical across runs and thread counts. Files are fsynced before they are committed.

use std::fs::File;
use std::io::BufWriter;
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
    path: PathBuf,
    schema: SchemaRef,
    writer: SerializedFileWriter<BufWriter<File>>,
    factory: ArrowRowGroupWriterFactory,
    columns: Vec<ArrowColumnWriter>,
    /// Seconds each column took to encode its last piece: the next piece starts the slowest
    /// first (see `write`).
    cost: Vec<f64>,
    row_group: usize,
    group_rows: usize,
    group_size: usize,
    rows: u64,
    reservation: MemoryReservation,
}

impl SegmentWriter {
    /// Creates the file at `path`.
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        props: WriterProperties,
        pool: &Arc<MemoryPool>,
    ) -> Result<Self> {
        let group_size = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .with_context(|| format!("creating segment {}", path.display()))?;
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
            path: path.to_path_buf(),
            schema,
            writer,
            factory,
            cost: vec![0.0; columns.len()],
            columns,
            row_group: 0,
            group_rows: 0,
            group_size,
            rows: 0,
            reservation: pool.reservation("segment writer"),
        })
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

    /// Closes the last row group, writes the footer and fsyncs. Returns the file's size.
    pub fn finish(mut self) -> Result<u64> {
        if self.group_rows > 0 {
            self.flush_group()?;
        }
        let file = self
            .writer
            .into_inner()?
            .into_inner()
            .map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("fsync {}", self.path.display()))?;
        Ok(file.metadata()?.len())
    }
}

/// fsyncs a directory, so that the names of the files just created in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync directory {}", dir.display()))
}
