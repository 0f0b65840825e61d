//! Pure log parsers and schema inference for compactor: bytes in, Arrow batches out.
//!
//! # Why
//! Parsing reads untrusted bytes at hundreds of MB/s. Keeping it pure (no I/O, no threads, no
//! global state) makes it easy to fuzz, to run in parallel on independent chunks, and to test
//! against oracles. The caller ([`parse_chunk`]) hands in a chunk of whole lines and gets back
//! one [`RecordBatch`] plus the lines it rejected, each with its line number and reason.
//!
//! # Algorithm
//! 1. Split the chunk at `\n` (a trailing `\r` is dropped; the last line may lack `\n`).
//! 2. A format parser ([`json`], [`access`]) turns one line into `(field name, value)` pairs and
//!    hands them to a [`builder::RowsBuilder`] as *cells*: a kind (null, bool, int, float,
//!    timestamp, string) plus the value's verbatim text span.
//! 3. The builder validates the row as a whole (duplicate fields, forced types, column limit);
//!    a bad row is rolled back and reported as a [`Reject`], never half-written.
//! 4. At the end of the chunk each column's type is decided once from the kinds it saw, using
//!    the widening rules of [`schema::ColumnType::widen`], and the Arrow array is built from the
//!    cells. Strings keep the verbatim source text, so widening within a chunk is lossless.
//!
//! ```text
//!   chunk bytes ──split──▶ line ──format parser──▶ cells ──RowsBuilder──▶ RecordBatch
//!                            │                                │
//!                            └──── bad line ──▶ Reject{line, reason, raw} ◀── bad row
//! ```
//!
//! Batches of different chunks may have different schemas; [`schema::unify`] and
//! [`schema::conform`] bring them to one.

pub mod access;
pub mod builder;
pub mod error;
pub mod json;
pub mod schema;
pub mod ts;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::RecordBatch;

pub use error::{FormatError, Result};
pub use schema::ColumnType;

/// Default for [`Limits::max_line_bytes`]: 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;
/// Default for [`Limits::max_depth`]: nesting depth of JSON objects and arrays.
pub const DEFAULT_MAX_DEPTH: usize = 64;
/// Default for [`Limits::max_columns`]: distinct columns one chunk may create.
pub const DEFAULT_MAX_COLUMNS: usize = 2048;

/// The log formats compactor parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Format {
    /// JSON lines: one object per line, nested objects flattened to dotted names.
    Json,
    /// NCSA combined access log (nginx and Apache default), plus trailing extra fields.
    Combined,
    /// NCSA common access log, plus trailing extra fields.
    Common,
}

impl Format {
    /// Every format with its name as written in job files.
    pub const ALL: [(&'static str, Format); 3] = [
        ("json", Format::Json),
        ("combined", Format::Combined),
        ("common", Format::Common),
    ];
}

impl std::str::FromStr for Format {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Self> {
        Format::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                FormatError::InvalidOption(format!(
                    "unknown format {s:?}; expected one of: json, combined, common"
                ))
            })
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Format::ALL.iter().find(|(_, x)| x == self).map(|(n, _)| *n);
        f.write_str(name.unwrap_or("?"))
    }
}

/// Safety limits for untrusted input. A line that breaks a limit is rejected, never parsed
/// partly, and never makes memory grow without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest accepted line in bytes, without the line terminator.
    pub max_line_bytes: usize,
    /// Deepest accepted nesting of JSON objects (arrays are kept as raw text and bounded only by
    /// serde_json's own recursion limit of 128).
    pub max_depth: usize,
    /// Most distinct columns one chunk may create; a line that would add more is rejected.
    pub max_columns: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            max_columns: DEFAULT_MAX_COLUMNS,
        }
    }
}

/// Everything a parser needs to know; cheap to share between threads.
#[derive(Debug, Clone, Default)]
pub struct ParseOptions {
    /// Which format the lines are in.
    pub format: Option<Format>,
    /// Safety limits.
    pub limits: Limits,
    /// Forced column types (from a job's `[schema]` table or an existing table's schema). A
    /// value that cannot be read as its forced type rejects its line.
    pub forced: BTreeMap<String, ColumnType>,
    /// Access logs: names for the trailing fields after the standard ones, in order. Fields
    /// beyond these are named `extra_N` (1-based position among the trailing fields).
    pub extra_columns: Vec<String>,
    /// Column names the input may not use (for example the partition column, which the
    /// writer adds): a line naming one is rejected.
    pub reserved: Vec<String>,
}

impl ParseOptions {
    /// Options for `format` with default limits and no forced types.
    pub fn new(format: Format) -> Self {
        ParseOptions {
            format: Some(format),
            ..Default::default()
        }
    }

    fn format(&self) -> Format {
        self.format.unwrap_or(Format::Json)
    }
}

/// One rejected input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// 1-based line number in the input file.
    pub line: u64,
    /// Why the line was rejected, for people.
    pub reason: String,
    /// The line's bytes, cut at [`Limits::max_line_bytes`].
    pub raw: Vec<u8>,
}

/// What [`parse_chunk`] returns.
#[derive(Debug, Clone)]
pub struct ParsedChunk {
    /// The accepted lines as rows, in input order.
    pub batch: RecordBatch,
    /// The rejected lines, in input order.
    pub rejects: Vec<Reject>,
    /// Lines seen: `batch.num_rows() + rejects.len()`.
    pub lines: u64,
}

/// A line parser for one format: turns a line into cells of `rows`.
pub(crate) trait LineParser {
    /// Adds the line's fields to the open row of `rows`. An `Err` is the reject reason.
    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut builder::RowsBuilder,
    ) -> std::result::Result<(), String>;
}

/// Parses a chunk of whole lines. `first_line` is the 1-based number of the chunk's first line.
///
/// Every line ends up either as a row of the batch or as a [`Reject`]: a blank line is rejected
/// too (reason `blank line`), so that `lines == rows + rejects` holds without exceptions.
pub fn parse_chunk(opts: &ParseOptions, chunk: &[u8], first_line: u64) -> Result<ParsedChunk> {
    let mut rows = builder::RowsBuilder::new(opts);
    let mut rejects = Vec::new();
    let mut parser: Box<dyn LineParser> = match opts.format() {
        Format::Json => Box::new(json::JsonParser::new(opts.limits.max_depth)),
        Format::Combined => Box::new(access::AccessParser::new(true, &opts.extra_columns)),
        Format::Common => Box::new(access::AccessParser::new(false, &opts.extra_columns)),
    };
    let mut line_no = first_line;
    let mut lines = 0u64;
    for_each_line(chunk, |start, line| {
        lines += 1;
        let outcome = if start + line.len() > u32::MAX as usize {
            Err("line lies beyond the 4 GiB chunk offset limit".to_string())
        } else if line.len() > opts.limits.max_line_bytes {
            Err(format!(
                "line is longer than max_line_bytes ({} bytes)",
                opts.limits.max_line_bytes
            ))
        } else if line.iter().all(|b| b.is_ascii_whitespace()) {
            Err("blank line".to_string())
        } else {
            rows.begin_row();
            let outcome = parser.parse_line(line, start, &mut rows).and_then(|()| {
                if rows.pending_fields() == 0 {
                    return Err("record has no fields".to_string());
                }
                rows.commit_row(chunk)
            });
            // Only a row that was begun may be aborted: aborting rolls the arena back to the
            // mark of the last `begin_row`, which after a blank or overlong line is the
            // previous, committed row (its unescaped strings would be lost or overwritten).
            if outcome.is_err() {
                rows.abort_row();
            }
            outcome
        };
        if let Err(reason) = outcome {
            let keep = line.len().min(opts.limits.max_line_bytes);
            rejects.push(Reject {
                line: line_no,
                reason,
                raw: line[..keep].to_vec(),
            });
        }
        line_no += 1;
    });
    let batch = rows.finish(chunk)?;
    debug_assert_eq!(batch.num_rows() as u64 + rejects.len() as u64, lines);
    Ok(ParsedChunk {
        batch,
        rejects,
        lines,
    })
}

/// Calls `f(offset, line)` for each line of `chunk`, without its `\n` or `\r\n`.
pub fn for_each_line(chunk: &[u8], mut f: impl FnMut(usize, &[u8])) {
    let mut start = 0;
    while start < chunk.len() {
        let end = memchr::memchr(b'\n', &chunk[start..]).map_or(chunk.len(), |i| start + i);
        let mut line = &chunk[start..end];
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        f(start, line);
        start = end + 1;
    }
}

/// Counts the lines in `chunk` the way [`parse_chunk`] does.
pub fn count_lines(chunk: &[u8]) -> u64 {
    let newlines = memchr::memchr_iter(b'\n', chunk).count() as u64;
    newlines + u64::from(!chunk.is_empty() && !chunk.ends_with(b"\n"))
}

/// A convenience for tests and tools: parse a whole buffer with one chunk.
pub fn parse_all(opts: &ParseOptions, bytes: &[u8]) -> Result<ParsedChunk> {
    parse_chunk(opts, bytes, 1)
}

/// Shared empty schema.
pub fn empty_batch() -> RecordBatch {
    RecordBatch::new_empty(Arc::new(arrow_schema::Schema::empty()))
}
