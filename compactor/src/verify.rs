//! `compactor verify`: does every file of the table still hold what the log committed?
//!
//! # Why
//! The Delta log is the table's truth, but it only names files: a segment that was deleted,
//! truncated by a full disk, copied half-way or hit by a flipped bit on the way to cold storage
//! is found only when a query reads it, maybe months later and maybe as wrong numbers rather
//! than an error. Segments are immutable and carry their xxh3-64 checksum in their name
//! ([`crate::segment`]), so every change to their bytes can be found without trusting the
//! bytes themselves; what the log says of each file (size, row count) and what the table's
//! schema allows are checked against the footer, and, when asked, every page is decoded and
//! the recorded sort order (`sorting_columns`) re-checked, so a reader that relies on it for
//! pruning or merge joins is not misled.
//!
//! # How
//! Each file of the current snapshot is checked on its own (in parallel, on the caller's rayon
//! pool) and every check that fails becomes a [`Problem`] naming the file; a file that fails one
//! check still gets the others that can run, and one bad file never stops the others. Problems
//! are reported in the log's path order, table-level ones (`file` empty) first.
//!
//! 1. the file exists (nothing else can be checked otherwise);
//! 2. its size is the log's `size`;
//! 3. the xxh3-64 of its bytes is the checksum in its name (a name without one is a problem:
//!    compactor writes none);
//! 4. the footer (and the page index, if any) parses; its row count is the log's `numRecords`
//!    and the sum of its row groups';
//! 5. every column is a column of the table (case-insensitive, partition columns excluded) of
//!    a compatible type ([`type_compatible`]: the written types are tightened, see
//!    [`crate::layout::file_schema`]);
//! 6. deep (the default): every row group is decoded, which catches corrupt pages, and each
//!    row is compared with the one before it on the `sorting_columns` (encoded with
//!    `arrow_row`, so one byte comparison per row), across batches and row groups; the first
//!    pair out of order is reported ([`check_order`]).
//!
//! ```text
//!  _delta_log ─▶ Table::open ─▶ live_segments (path, size, numRecords) ─┐
//!                                                                      ▼  rayon, per file
//!   exists? ─▶ size == log ─▶ xxh3(bytes) == name's c<16 hex> ─▶ footer + page index
//!                                                                      │
//!          rows == numRecords ◀─ schema ⊆ table (tightened types) ◀────┘
//!                 │ deep
//!                 ▼
//!          decode every row group ─▶ RowConverter(sorting_columns): row[i-1] <= row[i]
//!                 │
//!                 ▼
//!          Vec<Problem> per file ─▶ joined in path order ─▶ VerifyReport
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_row::{OwnedRow, RowConverter, SortField};
use arrow_schema::{DataType, Schema, SortOptions, TimeUnit};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader, SortingColumn,
};
use rayon::prelude::*;
use serde::Serialize;

use crate::table::{LiveSegment, Table};

/// Rows decoded at a time in the deep check.
const BATCH_ROWS: usize = 8192;

/// What [`verify`] checks.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Also decode every page and check the sort order (default true).
    pub deep: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions { deep: true }
    }
}

/// One thing wrong with the table or one of its files.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The file's path relative to the table root, as in the log (percent-encoded); empty
    /// for a problem of the table itself.
    pub file: String,
    /// What is wrong, in words.
    pub what: String,
}

/// What [`verify`] found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// The table version checked.
    pub version: Option<u64>,
    /// Files in that version's snapshot.
    pub segments: u64,
    /// Rows in them, as the log records them (`numRecords`; files without one count 0).
    pub rows: u64,
    /// Their bytes, as the log records them.
    pub bytes: u64,
    /// Every problem found, in path order (table-level ones first).
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// Human text: one line per problem (`FILE: what`, `table: what`), then a total line.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        for p in &self.problems {
            let file = if p.file.is_empty() { "table" } else { &p.file };
            let _ = writeln!(out, "{file}: {}", p.what);
        }
        let version = match self.version {
            Some(v) => format!("version {v}"),
            None => "no version".to_string(),
        };
        let verdict = if self.ok() {
            "no problems".to_string()
        } else {
            let files: BTreeSet<&str> = self
                .problems
                .iter()
                .filter(|p| !p.file.is_empty())
                .map(|p| p.file.as_str())
                .collect();
            let mut v = plural(self.problems.len() as u64, "problem");
            if !files.is_empty() {
                let _ = write!(v, " in {}", plural(files.len() as u64, "file"));
            }
            v
        };
        let _ = writeln!(
            out,
            "{version}: {}, {}, {} checked: {verdict}",
            plural(self.segments, "segment"),
            plural(self.rows, "row"),
            plural(self.bytes, "byte"),
        );
        out
    }
}

/// `1 file`, `2 files`.
fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Checks every file of the current snapshot of the table at `table` (see the module docs).
/// Fails only when the table cannot be read at all (no `_delta_log`, an unreadable log); what
/// is wrong with its files is in the report.
pub fn verify(table: &Path, opts: &VerifyOptions) -> Result<VerifyReport> {
    if !table.join("_delta_log").is_dir() {
        bail!("{} is not a Delta table (no _delta_log)", table.display());
    }
    let t = Table::open(table).with_context(|| format!("opening table {}", table.display()))?;
    let segments = t
        .live_segments()
        .with_context(|| format!("listing the files of table {}", table.display()))?;
    let mut report = VerifyReport {
        version: t.version(),
        segments: segments.len() as u64,
        rows: segments
            .iter()
            .map(|s| s.num_records.unwrap_or(0))
            .fold(0u64, u64::saturating_add),
        bytes: segments
            .iter()
            .map(|s| s.size)
            .fold(0u64, u64::saturating_add),
        problems: Vec::new(),
    };
    let columns = match t.schema() {
        Ok(Some(schema)) => Some(TableColumns::new(&schema)),
        Ok(None) => None,
        Err(e) => {
            report.problems.push(Problem {
                file: String::new(),
                what: format!(
                    "the table's schema cannot be read, so no file's columns were checked: {e:#}"
                ),
            });
            None
        }
    };
    let paths: Vec<PathBuf> = segments.iter().map(|s| t.file_path(&s.path)).collect();
    let found: Vec<Vec<Problem>> = segments
        .par_iter()
        .zip(paths.par_iter())
        .map(|(seg, path)| check_segment(seg, path, columns.as_ref(), opts.deep))
        .collect();
    report.problems.extend(found.into_iter().flatten());
    Ok(report)
}

/// The table's columns by lower-cased name.
struct TableColumns {
    types: HashMap<String, DataType>,
}

impl TableColumns {
    fn new(schema: &Schema) -> Self {
        TableColumns {
            types: schema
                .fields()
                .iter()
                .map(|f| (f.name().to_ascii_lowercase(), f.data_type().clone()))
                .collect(),
        }
    }
}

/// The problems of one file.
struct Findings {
    file: String,
    problems: Vec<Problem>,
}

impl Findings {
    fn add(&mut self, what: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.clone(),
            what: what.into(),
        });
    }
}

/// Every check of one file; a panic in a reader (malformed bytes) is a problem too.
fn check_segment(
    seg: &LiveSegment,
    path: &Path,
    columns: Option<&TableColumns>,
    deep: bool,
) -> Vec<Problem> {
    let mut f = Findings {
        file: seg.path.clone(),
        problems: Vec::new(),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_file(seg, path, columns, deep, &mut f)
    }));
    if let Err(panic) = outcome {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        f.add(format!("the Parquet reader failed on this file: {msg}"));
    }
    f.problems
}

fn check_file(
    seg: &LiveSegment,
    path: &Path,
    columns: Option<&TableColumns>,
    deep: bool,
    f: &mut Findings,
) {
    // 1. exists
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            f.add(format!("missing: no file at {}", path.display()));
            return;
        }
        Err(e) => {
            f.add(format!("cannot be read: {e}"));
            return;
        }
    };
    if !meta.is_file() {
        f.add(format!("{} is not a regular file", path.display()));
        return;
    }
    // 2. size
    let size = meta.len();
    if size != seg.size {
        let hint = if size < seg.size {
            " (truncated?)"
        } else {
            " (overwritten or appended to?)"
        };
        f.add(format!(
            "size is {size} bytes, the log says {}{hint}",
            seg.size
        ));
    }
    // 3. checksum
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match crate::segment::recorded_checksum(name) {
        None => f.add("no checksum recorded in the name"),
        Some(want) => match crate::segment::checksum_file(path) {
            Ok(got) if got == want => {}
            Ok(got) => f.add(format!(
                "checksum mismatch: the file's bytes changed since it was written (recorded c{want:016x}, found c{got:016x})"
            )),
            Err(e) => f.add(format!("cannot be read: {e}")),
        },
    }
    // 4. footer and row counts
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            f.add(format!("cannot be opened: {e}"));
            return;
        }
    };
    let footer = match read_footer(&file, f) {
        Some(m) => m,
        None => return,
    };
    let footer_rows = footer.file_metadata().num_rows();
    let group_rows: i64 = footer.row_groups().iter().map(|g| g.num_rows()).sum();
    if footer_rows != group_rows {
        f.add(format!(
            "the footer says {footer_rows} rows, but its row groups hold {group_rows}"
        ));
    }
    match seg.num_records {
        None => f.add("the log records no row count (numRecords)"),
        Some(n) if i64::try_from(n).ok() != Some(footer_rows) => f.add(format!(
            "the footer says {footer_rows} rows, the log says {n}"
        )),
        Some(_) => {}
    }
    let footer = Arc::new(footer);
    let arrow = match ArrowReaderMetadata::try_new(footer.clone(), ArrowReaderOptions::new()) {
        Ok(a) => a,
        Err(e) => {
            f.add(format!("the file's schema has no Arrow equivalent: {e}"));
            return;
        }
    };
    // 5. schema
    if let Some(columns) = columns {
        check_schema(arrow.schema(), columns, seg, f);
    }
    // 6. pages and order
    if deep {
        check_pages(file, arrow, &footer, f);
    }
}

/// The footer with its page index; a page index that does not parse is a problem, the footer
/// without it is still returned. `None` (with the problem added) when the footer does not
/// parse.
fn read_footer(file: &File, f: &mut Findings) -> Option<ParquetMetaData> {
    let with_index = ParquetMetaDataReader::new()
        .with_page_index_policy(PageIndexPolicy::Optional)
        .parse_and_finish(file);
    let index_err = match with_index {
        Ok(m) => return Some(m),
        Err(e) => e,
    };
    match ParquetMetaDataReader::new().parse_and_finish(file) {
        Ok(m) => {
            f.add(format!("the page index does not parse: {index_err}"));
            Some(m)
        }
        Err(e) => {
            f.add(format!("the Parquet footer does not parse: {e}"));
            None
        }
    }
}

fn check_schema(file: &Schema, table: &TableColumns, seg: &LiveSegment, f: &mut Findings) {
    let mut seen = BTreeSet::new();
    for field in file.fields() {
        let name = field.name();
        let lower = name.to_ascii_lowercase();
        if !seen.insert(lower.clone()) {
            f.add(format!("column {name} appears twice"));
            continue;
        }
        if seg
            .partition_values
            .keys()
            .any(|p| p.eq_ignore_ascii_case(name))
        {
            f.add(format!(
                "column {name} is a partition column: its values belong in the path, not the file"
            ));
            continue;
        }
        match table.types.get(&lower) {
            None => f.add(format!("column {name} is not a column of the table")),
            Some(want) if !type_compatible(field.data_type(), want) => f.add(format!(
                "column {name} is written as {}, which the table's {want} cannot hold",
                field.data_type()
            )),
            Some(_) => {}
        }
    }
}

/// Whether a file column written as `file` can hold values of a table column of type `table`,
/// as readers widen them: the same type; an integer of a narrower (or equal) range than the
/// table's integer; a 16-byte UUID where the table says `binary`; a UTC (or zoneless)
/// timestamp in milliseconds or microseconds where the table's is in microseconds; a column
/// of nulls for anything. See [`crate::layout::file_schema`] for what is written.
pub fn type_compatible(file: &DataType, table: &DataType) -> bool {
    use DataType::*;
    if file.equals_datatype(table) {
        return true;
    }
    match (file, table) {
        (Null, _) => true,
        (f, t) if f.is_integer() && t.is_integer() => match (int_range(f), int_range(t)) {
            (Some((flo, fhi)), Some((tlo, thi))) => tlo <= flo && fhi <= thi,
            _ => false,
        },
        (FixedSizeBinary(16), Binary | LargeBinary | BinaryView) => true,
        (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View) => true,
        (Binary | LargeBinary | BinaryView, Binary | LargeBinary | BinaryView) => true,
        (Timestamp(unit, ftz), Timestamp(TimeUnit::Microsecond, ttz)) => {
            matches!(unit, TimeUnit::Millisecond | TimeUnit::Microsecond)
                && ftz.is_some() == ttz.is_some()
        }
        _ => false,
    }
}

/// The range of an integer type.
fn int_range(t: &DataType) -> Option<(i128, i128)> {
    use DataType::*;
    Some(match t {
        Int8 => (i8::MIN.into(), i8::MAX.into()),
        Int16 => (i16::MIN.into(), i16::MAX.into()),
        Int32 => (i32::MIN.into(), i32::MAX.into()),
        Int64 => (i64::MIN.into(), i64::MAX.into()),
        UInt8 => (0, u8::MAX.into()),
        UInt16 => (0, u16::MAX.into()),
        UInt32 => (0, u32::MAX.into()),
        UInt64 => (0, u64::MAX.into()),
        _ => return None,
    })
}

/// Decodes every row group of the file, checking the sort order the footer records.
fn check_pages(file: File, arrow: ArrowReaderMetadata, footer: &ParquetMetaData, f: &mut Findings) {
    let mut order = match sort_key(footer, f) {
        None => None,
        Some(key) => match OrderCheck::new(arrow.schema(), &key) {
            Ok(c) => Some(c),
            Err(e) => {
                f.add(e);
                None
            }
        },
    };
    let reader = match ParquetRecordBatchReaderBuilder::new_with_metadata(file, arrow)
        .with_batch_size(BATCH_ROWS)
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            f.add(format!("the file cannot be decoded: {e}"));
            return;
        }
    };
    let mut decoded = 0u64;
    for batch in reader {
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                f.add(format!(
                    "row group {} does not decode: {e}",
                    row_group_of(footer, decoded)
                ));
                return;
            }
        };
        decoded += batch.num_rows() as u64;
        if let Some(check) = &mut order {
            match check.push(&batch) {
                Ok(None) => {}
                Ok(Some(msg)) | Err(msg) => {
                    f.add(msg);
                    order = None;
                }
            }
        }
    }
    let footer_rows = footer.file_metadata().num_rows();
    if i64::try_from(decoded).ok() != Some(footer_rows) {
        f.add(format!(
            "{decoded} rows decode, the footer says {footer_rows}"
        ));
    }
}

/// The row group that holds row `row` (counting from 0 across the file).
fn row_group_of(footer: &ParquetMetaData, row: u64) -> usize {
    let mut end = 0u64;
    for (i, g) in footer.row_groups().iter().enumerate() {
        end += g.num_rows().max(0) as u64;
        if row < end {
            return i;
        }
    }
    footer.num_row_groups().saturating_sub(1)
}

/// The file's sort key as (Arrow column index, order), from the row groups'
/// `sorting_columns`; `None` when none is recorded, or when it cannot be used (a problem).
fn sort_key(footer: &ParquetMetaData, f: &mut Findings) -> Option<Vec<(usize, SortOptions)>> {
    let groups = footer.row_groups();
    let first = groups.first()?.sorting_columns();
    if let Some(i) = groups.iter().position(|g| g.sorting_columns() != first) {
        f.add(format!(
            "row groups 0 and {i} record different sorting_columns; the order was not checked"
        ));
        return None;
    }
    let schema = footer.file_metadata().schema_descr();
    let mut key = Vec::new();
    for s in first? {
        let leaf = match usize::try_from(s.column_idx) {
            Ok(i) if i < schema.num_columns() => i,
            _ => {
                f.add(format!(
                    "sorting column #{} is not a column of the file; the order was not checked",
                    s.column_idx
                ));
                return None;
            }
        };
        key.push((
            schema.get_column_root_idx(leaf),
            SortOptions {
                descending: s.descending,
                nulls_first: s.nulls_first,
            },
        ));
    }
    (!key.is_empty()).then_some(key)
}

/// Compares each row with the one before it on a sort key, batch after batch.
struct OrderCheck {
    converter: RowConverter,
    columns: Vec<usize>,
    /// The key's columns, for messages: `ts`, `group, id desc`.
    names: String,
    /// The last row of the batches so far.
    last: Option<OwnedRow>,
    /// Rows seen so far.
    rows: u64,
}

impl OrderCheck {
    fn new(schema: &Schema, key: &[(usize, SortOptions)]) -> std::result::Result<Self, String> {
        let mut fields = Vec::with_capacity(key.len());
        let mut names = Vec::with_capacity(key.len());
        for &(i, options) in key {
            let Some(field) = schema.fields().get(i) else {
                return Err(format!(
                    "sorting column #{i} is not a column of the file; the order was not checked"
                ));
            };
            fields.push(SortField::new_with_options(
                field.data_type().clone(),
                options,
            ));
            names.push(if options.descending {
                format!("{} desc", field.name())
            } else {
                field.name().clone()
            });
        }
        let names = names.join(", ");
        let converter = RowConverter::new(fields)
            .map_err(|e| format!("rows cannot be compared on ({names}): {e}"))?;
        Ok(OrderCheck {
            converter,
            columns: key.iter().map(|(i, _)| *i).collect(),
            names,
            last: None,
            rows: 0,
        })
    }

    /// The next rows: `Some` message naming the first pair of adjacent rows out of order
    /// (counting from 0 across every batch pushed), if there is one.
    fn push(&mut self, batch: &RecordBatch) -> std::result::Result<Option<String>, String> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(None);
        }
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for &i in &self.columns {
            match batch.columns().get(i) {
                Some(c) => cols.push(c.clone()),
                None => return Err(format!("sorting column #{i} is not in the rows")),
            }
        }
        let rows = self
            .converter
            .convert_columns(&cols)
            .map_err(|e| format!("rows cannot be compared on ({}): {e}", self.names))?;
        let base = self.rows;
        self.rows += n as u64;
        let out_of_order = |before: u64| {
            Some(format!(
                "rows {before} and {} are out of order on ({})",
                before + 1,
                self.names
            ))
        };
        if let Some(last) = &self.last {
            if rows.row(0) < last.row() {
                return Ok(out_of_order(base - 1));
            }
        }
        for i in 1..n {
            if rows.row(i) < rows.row(i - 1) {
                return Ok(out_of_order(base + i as u64 - 1));
            }
        }
        self.last = Some(rows.row(n - 1).owned());
        Ok(None)
    }
}

/// Whether `batches` (consecutive rows of one file) are in the order of `sorting_columns`
/// (whose `column_idx` are the batches' column indexes): `None` if they are, else a message
/// naming the first pair of adjacent rows out of order (`rows 41 and 42 are out of order on
/// (ts)`, counting from 0), or why the order cannot be checked.
pub fn check_order(batches: &[RecordBatch], sorting_columns: &[SortingColumn]) -> Option<String> {
    let first = batches.first()?;
    let mut key = Vec::with_capacity(sorting_columns.len());
    for s in sorting_columns {
        let Ok(i) = usize::try_from(s.column_idx) else {
            return Some(format!("sorting column #{} is not a column", s.column_idx));
        };
        key.push((
            i,
            SortOptions {
                descending: s.descending,
                nulls_first: s.nulls_first,
            },
        ));
    }
    if key.is_empty() {
        return None;
    }
    let mut check = match OrderCheck::new(first.schema_ref(), &key) {
        Ok(c) => c,
        Err(e) => return Some(e),
    };
    for b in batches {
        match check.push(b) {
            Ok(None) => {}
            Ok(Some(msg)) | Err(msg) => return Some(msg),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::Field;

    fn batch(ts: Vec<Option<i64>>, name: Vec<Option<&str>>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("ts", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ts)),
                Arc::new(StringArray::from(name)),
            ],
        )
        .unwrap()
    }

    fn key(cols: &[(i32, bool, bool)]) -> Vec<SortingColumn> {
        cols.iter()
            .map(|&(column_idx, descending, nulls_first)| SortingColumn {
                column_idx,
                descending,
                nulls_first,
            })
            .collect()
    }

    #[test]
    fn sorted_rows_pass_and_the_first_pair_out_of_order_is_named() {
        let asc = key(&[(0, false, true)]);
        let sorted = [
            batch(
                vec![None, Some(1), Some(1)],
                vec![Some("a"), None, Some("b")],
            ),
            batch(vec![Some(2), Some(5)], vec![None, None]),
        ];
        assert_eq!(check_order(&sorted, &asc), None);
        // ties on ts, then name: nulls first
        let two = key(&[(0, false, true), (1, false, true)]);
        assert_eq!(check_order(&sorted, &two), None);
        let b = [batch(
            vec![Some(1), Some(1), Some(1)],
            vec![Some("b"), None, Some("c")],
        )];
        assert_eq!(
            check_order(&b, &two).as_deref(),
            Some("rows 0 and 1 are out of order on (ts, name)")
        );

        // within a batch: rows 3 and 4 (counting across batches); only the first is named
        let unsorted = [
            batch(vec![Some(1), Some(2), Some(3)], vec![None; 3]),
            batch(vec![Some(4), Some(0), Some(-1)], vec![None; 3]),
        ];
        assert_eq!(
            check_order(&unsorted, &asc).as_deref(),
            Some("rows 3 and 4 are out of order on (ts)")
        );
        // across a batch boundary
        let across = [
            batch(vec![Some(1), Some(7)], vec![None; 2]),
            batch(vec![Some(6)], vec![None]),
        ];
        assert_eq!(
            check_order(&across, &asc).as_deref(),
            Some("rows 1 and 2 are out of order on (ts)")
        );
        // an empty batch in between changes nothing
        let gap = [
            batch(vec![Some(1), Some(7)], vec![None; 2]),
            batch(vec![], vec![]),
            batch(vec![Some(6)], vec![None]),
        ];
        assert_eq!(
            check_order(&gap, &asc).as_deref(),
            Some("rows 1 and 2 are out of order on (ts)")
        );
        // no key: nothing to check
        assert_eq!(check_order(&unsorted, &[]), None);
    }

    #[test]
    fn nulls_and_descending_follow_the_recorded_options() {
        let nulls_last = [batch(vec![Some(1), Some(2), None], vec![None; 3])];
        assert_eq!(check_order(&nulls_last, &key(&[(0, false, false)])), None);
        assert_eq!(
            check_order(&nulls_last, &key(&[(0, false, true)])).as_deref(),
            Some("rows 1 and 2 are out of order on (ts)")
        );
        let nulls_first = [batch(vec![None, Some(1), Some(2)], vec![None; 3])];
        assert_eq!(check_order(&nulls_first, &key(&[(0, false, true)])), None);
        assert!(check_order(&nulls_first, &key(&[(0, false, false)])).is_some());

        let desc = [batch(
            vec![None, Some(9), Some(3), Some(3)],
            vec![Some("x"), Some("b"), Some("z"), Some("a")],
        )];
        // ts descending, nulls first; then name descending
        assert_eq!(
            check_order(&desc, &key(&[(0, true, true), (1, true, true)])),
            None
        );
        assert_eq!(
            check_order(&desc, &key(&[(0, false, true)])).as_deref(),
            Some("rows 1 and 2 are out of order on (ts)")
        );
        assert_eq!(
            check_order(&desc, &key(&[(0, true, true), (1, false, true)])).as_deref(),
            Some("rows 2 and 3 are out of order on (ts desc, name)")
        );
        // a key naming a column the rows lack is reported, not a panic
        assert!(check_order(&desc, &key(&[(5, false, true)])).is_some_and(|m| m.contains("#5")));
    }

    #[test]
    fn tightened_types_are_compatible_and_others_are_not() {
        use DataType::*;
        let utc = || Some(Arc::from("UTC"));
        for (file, table) in [
            (Int8, Int64),
            (Int16, Int64),
            (Int32, Int64),
            (UInt32, Int64),
            (Int64, Int64),
            (FixedSizeBinary(16), Binary),
            (
                Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
                Timestamp(TimeUnit::Microsecond, utc()),
            ),
            (
                Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                Timestamp(TimeUnit::Microsecond, utc()),
            ),
            (Utf8, Utf8),
            (Null, Int64),
            (Float64, Float64),
        ] {
            assert!(type_compatible(&file, &table), "{file} in {table}");
        }
        for (file, table) in [
            (Utf8, Int64),
            (Int64, Int32),
            (UInt64, Int64),
            (Float64, Int64),
            (Int64, Float64),
            (FixedSizeBinary(8), Binary),
            (FixedSizeBinary(16), Utf8),
            (Binary, Utf8),
            (
                Timestamp(TimeUnit::Nanosecond, utc()),
                Timestamp(TimeUnit::Microsecond, utc()),
            ),
            (
                Timestamp(TimeUnit::Millisecond, None),
                Timestamp(TimeUnit::Microsecond, utc()),
            ),
            (Boolean, Utf8),
        ] {
            assert!(!type_compatible(&file, &table), "{file} in {table}");
        }
    }

    #[test]
    fn the_summary_lists_problems_then_a_total() {
        let mut r = VerifyReport {
            version: Some(3),
            segments: 2,
            rows: 10,
            bytes: 1234,
            problems: Vec::new(),
        };
        assert!(r.ok());
        assert_eq!(
            r.summary(),
            "version 3: 2 segments, 10 rows, 1234 bytes checked: no problems\n"
        );
        r.problems = vec![
            Problem {
                file: String::new(),
                what: "t".into(),
            },
            Problem {
                file: "a.parquet".into(),
                what: "x".into(),
            },
            Problem {
                file: "a.parquet".into(),
                what: "y".into(),
            },
        ];
        assert!(!r.ok());
        assert_eq!(
            r.summary(),
            "table: t\na.parquet: x\na.parquet: y\nversion 3: 2 segments, 10 rows, 1234 bytes checked: 3 problems in 1 file\n"
        );
    }
}
