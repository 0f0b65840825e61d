//! Writing one immutable Parquet segment.
//!
//! Segments are plain Parquet that every engine reads: zstd pages, dictionary encoding where it
//! pays (parquet-rs falls back to plain encoding when a column's dictionary grows past its page
//! limit), page-level statistics with the page index, and `sorting_columns` in the row-group
//! metadata so readers know the order. The writer's output is a pure function of the rows and
//! the options (no timestamps, no random ids inside the file), which is what makes segments
//! byte-identical across runs and thread counts. Files are fsynced before they are committed.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use arrow_array::RecordBatch;
use parquet::arrow::arrow_writer::compute_leaves;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use rayon::prelude::*;

/// How segments are encoded.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// zstd level.
    pub zstd_level: i32,
    /// Rows per row group.
    pub row_group_size: usize,
    /// Indices (in the written schema) of the columns the rows are sorted by.
    pub sorted_by: Vec<usize>,
}

impl SegmentOptions {
    /// Parquet writer properties for these options.
    pub fn properties(&self) -> Result<WriterProperties> {
        let sorting = self
            .sorted_by
            .iter()
            .map(|&i| SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: true,
            })
            .collect::<Vec<_>>();
        Ok(WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(self.zstd_level)?))
            .set_dictionary_enabled(true)
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_max_row_group_row_count(Some(self.row_group_size))
            .set_sorting_columns((!sorting.is_empty()).then_some(sorting))
            .set_created_by(concat!("compactor ", env!("CARGO_PKG_VERSION")).to_string())
            .build())
    }
}

/// Writes `batch` as a new Parquet file at `path` (which must not exist), fsynced. Returns the
/// file's size.
///
/// Columns of each row group are encoded in parallel (rayon) with parquet's
/// `ArrowColumnWriter`s and appended in schema order, so the bytes are the same as a
/// sequential write, whatever the thread count.
pub fn write_segment(path: &Path, batch: &RecordBatch, props: WriterProperties) -> Result<u64> {
    let rg = props.max_row_group_row_count().unwrap_or(usize::MAX).max(1);
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("creating segment {}", path.display()))?;
    let schema = batch.schema();
    // ArrowWriter embeds the Arrow schema in the footer (time zones, for readers); then we take
    // over the row groups.
    let writer = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, file),
        schema.clone(),
        Some(props),
    )?;
    let (mut writer, factory) = writer.into_serialized_writer()?;
    let mut offset = 0;
    let mut index = 0;
    while offset < batch.num_rows() {
        let len = rg.min(batch.num_rows() - offset);
        let slice = batch.slice(offset, len);
        let col_writers = factory.create_column_writers(index)?;
        let mut leaves = Vec::with_capacity(col_writers.len());
        for (field, array) in schema.fields().iter().zip(slice.columns()) {
            leaves.extend(compute_leaves(field, array)?);
        }
        let chunks = col_writers
            .into_par_iter()
            .zip(leaves.into_par_iter())
            .map(|(mut w, leaf)| {
                w.write(&leaf)?;
                w.close()
            })
            .collect::<parquet::errors::Result<Vec<_>>>()?;
        let mut group = writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        offset += len;
        index += 1;
    }
    let file = writer
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()
        .with_context(|| format!("fsync {}", path.display()))?;
    Ok(file.metadata()?.len())
}

/// fsyncs a directory, so that the names of the files just created in it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("fsync directory {}", dir.display()))
}
