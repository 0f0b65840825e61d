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
pub mod aws;
pub mod builder;
mod cursor;
pub mod decode;
pub mod delimited;
pub mod detect;
pub mod error;
pub mod framing;
pub mod grok;
pub mod json;
pub mod jsonscan;
pub mod logfmt;
pub mod schema;
pub mod syslog;
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
    /// Syslog: RFC 3164 (BSD, with or without PRI) and RFC 5424, octet-counted framing too.
    Syslog,
    /// logfmt: `key=value key="quoted value"` pairs.
    Logfmt,
    /// Comma-separated values with a header line (RFC 4180 quoting).
    Csv,
    /// Tab-separated values with a header line, a Zeek `#fields` header or a W3C `#Fields:`
    /// header.
    Tsv,
    /// AWS CloudFront standard (web distribution) access log.
    Cloudfront,
    /// AWS Application Load Balancer access log.
    Alb,
    /// AWS Classic Load Balancer access log.
    Elb,
    /// AWS S3 server access log.
    S3,
    /// A regular expression with named captures (`[input] pattern`).
    Regex,
    /// A grok pattern (`%{IP:client} %{LOGLEVEL:level} ...`, `[input] pattern`).
    Grok,
    /// Each line (or multi-line record) whole, as one `message` column.
    Text,
    /// Detect the format of each input file from a sample of its first lines.
    Auto,
}

impl Format {
    /// Every format with its name as written in job files.
    pub const ALL: [(&'static str, Format); 15] = [
        ("json", Format::Json),
        ("combined", Format::Combined),
        ("common", Format::Common),
        ("syslog", Format::Syslog),
        ("logfmt", Format::Logfmt),
        ("csv", Format::Csv),
        ("tsv", Format::Tsv),
        ("cloudfront", Format::Cloudfront),
        ("alb", Format::Alb),
        ("elb", Format::Elb),
        ("s3", Format::S3),
        ("regex", Format::Regex),
        ("grok", Format::Grok),
        ("text", Format::Text),
        ("auto", Format::Auto),
    ];

    /// The names of every format, for messages.
    pub fn names() -> String {
        Format::ALL.map(|(n, _)| n).join(", ")
    }
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
                    "unknown format {s:?}; expected one of: {}",
                    Format::names()
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
    /// `regex` and `grok`: the pattern whose named captures become columns.
    pub pattern: Option<String>,
    /// Multi-line records: a regex or grok pattern that matches the first line of a record;
    /// lines that do not match it are continuation lines of the record before them.
    pub record_start: Option<String>,
    /// `csv` and `tsv`: delimiter, quoting and header options.
    pub delimited: delimited::DelimitedOptions,
    /// Syslog RFC 3164 timestamps carry no year: the year is the one of this instant
    /// (microseconds since the epoch, UTC; the caller passes the input file's modification
    /// time), minus one for a month more than one month after it. `None`: 1970... never
    /// guessed from the clock, so that output stays deterministic.
    pub reference_micros: Option<i64>,
    /// Per column: a chrono `strftime` format that string values of that column are read
    /// with, for timestamp layouts the fast paths do not know. A value that does not match
    /// stays a string (or rejects its line if the column's type is forced).
    pub timestamp_formats: BTreeMap<String, String>,
    /// Only these columns are needed (`None`: all). JSON then parses just the wanted fields
    /// and skips the values of the others: it still rejects a line that is not JSON, but checks
    /// limits, duplicate names and reserved names only on the fields it keeps. Other formats
    /// parse whole lines; the caller drops the columns it does not need.
    pub project: Option<Arc<json::Projection>>,
    /// What [`ParseOptions::prepare`] and [`ParseOptions::for_file`] worked out.
    pub prepared: Prepared,
}

/// Compiled patterns and a file's header, computed once and shared by every chunk.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// The compiled `pattern` (`regex`, `grok`).
    pub pattern: Option<Arc<grok::Pattern>>,
    /// The compiled `record_start`.
    pub record_start: Option<Arc<grok::Pattern>>,
    /// The file's header (`csv`, `tsv`, `cloudfront`): column names and types.
    pub header: Option<Arc<delimited::Header>>,
    /// `auto`: the candidate formats, compiled once for every file.
    pub detector: Option<Arc<detect::Detector>>,
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

    /// Checks the options and compiles the patterns; call once before parsing (parsing works
    /// without it, compiling per chunk).
    pub fn prepare(&mut self) -> Result<()> {
        // `pattern = "%{HDFS}"`: a built-in layout brings its multi-line record start.
        if let (Format::Grok, Some(p), None) = (self.format(), &self.pattern, &self.record_start) {
            let name = p
                .trim()
                .strip_prefix("%{")
                .and_then(|r| r.strip_suffix('}'));
            if let Some(l) = name.and_then(grok::layout) {
                self.record_start = l.record_start.map(str::to_string);
            }
        }
        match (self.format(), &self.pattern) {
            (Format::Regex | Format::Grok, None) => {
                return Err(FormatError::InvalidOption(format!(
                    "format {} needs a pattern",
                    self.format()
                )))
            }
            (f @ (Format::Regex | Format::Grok), Some(p)) if self.prepared.pattern.is_none() => {
                let p = grok::Pattern::compile(p, f == Format::Grok)?;
                self.prepared.pattern = Some(Arc::new(p));
            }
            _ => {}
        }
        if let (Some(p), None) = (&self.record_start, &self.prepared.record_start) {
            self.prepared.record_start = Some(Arc::new(grok::Pattern::compile(p, true)?));
        }
        if self.format() == Format::Auto && self.prepared.detector.is_none() {
            self.prepared.detector = Some(Arc::new(detect::Detector::new(self)));
        }
        Ok(())
    }

    /// The options for one input file whose first bytes are `head` (a whole number of lines,
    /// up to a few hundred KiB): resolves `auto` to the detected format and reads the header
    /// of header-driven formats. Returns the detection when the format was `auto`.
    pub fn for_file(&self, head: &[u8]) -> Result<(ParseOptions, Option<detect::Detection>)> {
        let mut opts = self.clone();
        let mut detection = None;
        if opts.format() == Format::Auto {
            let d = detect::detect(&opts, head);
            d.apply(&mut opts);
            opts.prepared.detector = None;
            detection = Some(d);
        }
        opts.prepare()?;
        if opts.prepared.header.is_none() {
            opts.prepared.header = delimited::read_header(&opts, head)?.map(Arc::new);
        }
        Ok((opts, detection))
    }

    /// The framing of records for these options (see [`framing`]).
    pub fn framing(&self) -> framing::Framing {
        framing::Framing::of(self)
    }
}

/// One rejected input record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// 1-based number, in the input file, of the record's first line.
    pub line: u64,
    /// Why the record was rejected, for people.
    pub reason: String,
    /// The record's bytes, cut at [`Limits::max_line_bytes`].
    pub raw: Vec<u8>,
}

/// What [`parse_chunk`] returns.
#[derive(Debug, Clone)]
pub struct ParsedChunk {
    /// The accepted records as rows, in input order.
    pub batch: RecordBatch,
    /// The rejected records, in input order.
    pub rejects: Vec<Reject>,
    /// Physical lines seen (what [`count_lines`] counts).
    pub lines: u64,
    /// Records seen: `batch.num_rows() + rejects.len()`. Equal to `lines - meta_lines` unless
    /// records span several lines (multi-line records, quoted newlines in CSV).
    pub records: u64,
    /// Lines that are not records but format metadata, consumed as such: a CSV header line
    /// (and its repetitions), Zeek `#separator`/`#fields`/... and W3C `#Version`/`#Fields`
    /// directives.
    pub meta_lines: u64,
}

/// A line parser for one format: turns a record into cells of `rows`.
pub(crate) trait LineParser {
    /// Adds the record's fields to the open row of `rows`. An `Err` is the reject reason.
    /// `line` is `chunk[base..base + line.len()]`; it holds no `\n` unless the record spans
    /// several lines.
    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut builder::RowsBuilder,
    ) -> std::result::Result<(), String>;

    /// Whether `line` is a metadata line (a header or directive, see
    /// [`ParsedChunk::meta_lines`]) rather than a record. `Err` rejects it (a directive that
    /// contradicts the file's header, say). Called before [`Self::parse_line`] for every
    /// record.
    fn meta_line(&mut self, _line: &[u8]) -> std::result::Result<bool, String> {
        Ok(false)
    }

    /// Whether [`Self::parse_line`] rejects every record holding a NUL byte by itself (JSON
    /// allows none anywhere). Then [`parse_chunk`] looks for NUL bytes only in rejected records,
    /// to give the reason, instead of in every record first.
    fn rejects_nul(&self) -> bool {
        false
    }
}

/// `text`: the whole record as one `message` column.
struct TextParser;

impl LineParser for TextParser {
    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut builder::RowsBuilder,
    ) -> std::result::Result<(), String> {
        crate::utf8(line)?;
        rows.push_raw_str("message", base, line.len());
        Ok(())
    }
}

fn parser_for(opts: &ParseOptions) -> Result<Box<dyn LineParser>> {
    let pattern = || -> Result<Arc<grok::Pattern>> {
        match (&opts.prepared.pattern, &opts.pattern) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(src)) => Ok(Arc::new(grok::Pattern::compile(
                src,
                opts.format() == Format::Grok,
            )?)),
            (None, None) => Err(FormatError::InvalidOption(format!(
                "format {} needs a pattern",
                opts.format()
            ))),
        }
    };
    Ok(match opts.format() {
        Format::Json => Box::new(
            json::JsonParser::new(opts.limits.max_depth).with_projection(opts.project.clone()),
        ),
        Format::Combined => Box::new(access::AccessParser::new(true, &opts.extra_columns)),
        Format::Common => Box::new(access::AccessParser::new(false, &opts.extra_columns)),
        Format::Syslog => Box::new(syslog::SyslogParser::new(opts)),
        Format::Logfmt => Box::new(logfmt::LogfmtParser::new(opts)),
        Format::Csv | Format::Tsv => Box::new(delimited::DelimitedParser::new(opts)?),
        Format::Cloudfront | Format::Alb | Format::Elb | Format::S3 => {
            Box::new(aws::AwsParser::new(opts)?)
        }
        Format::Regex | Format::Grok => Box::new(grok::GrokParser::new(pattern()?)),
        Format::Text => Box::new(TextParser),
        Format::Auto => {
            return Err(FormatError::InvalidOption(
                "format auto must be resolved per file (ParseOptions::for_file) before parsing"
                    .into(),
            ))
        }
    })
}

/// Parses a chunk of whole records. `first_line` is the 1-based number of the chunk's first
/// line.
///
/// Every record ends up either as a row of the batch or as a [`Reject`]: a blank line is
/// rejected too (reason `blank line`), so that `records == rows + rejects` holds without
/// exceptions; metadata lines are counted in [`ParsedChunk::meta_lines`].
pub fn parse_chunk(opts: &ParseOptions, chunk: &[u8], first_line: u64) -> Result<ParsedChunk> {
    let mut rows = builder::RowsBuilder::new(opts);
    let mut rejects = Vec::new();
    let mut parser = parser_for(opts)?;
    let rejects_nul = parser.rejects_nul();
    let record_start = match (&opts.prepared.record_start, &opts.record_start) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(src)) => Some(Arc::new(grok::Pattern::compile(src, true)?)),
        (None, None) => None,
    };
    let framing = framing::Framing::with_start(opts, record_start);
    let (mut lines, mut records, mut meta_lines) = (0u64, 0u64, 0u64);
    let nul = |line: &[u8]| {
        // Binary data, such as the zero-filled tail a crash leaves in a log file: no text
        // format writes NUL bytes.
        memchr::memchr(0, line)
            .map(|at| format!("NUL byte at byte {at}: binary data, not a log record"))
    };
    framing.for_each_record(chunk, |start, line, nlines| {
        let line_no = first_line + lines;
        lines += nlines;
        if records == ROWS_HINT_AFTER && start > 0 {
            // Dense columns reserve room for the whole chunk (see
            // `RowsBuilder::set_rows_hint`): extrapolate from the records so far rather than
            // count the chunk's lines in a pass of its own.
            let per_record = start.div_ceil(ROWS_HINT_AFTER as usize);
            rows.set_rows_hint((chunk.len() / per_record * 5 / 4).min(chunk.len() / 16));
        }
        let outcome = if start + line.len() > u32::MAX as usize {
            Err("line lies beyond the 4 GiB chunk offset limit".to_string())
        } else if line.len() > opts.limits.max_line_bytes {
            Err(format!(
                "line is longer than max_line_bytes ({} bytes)",
                opts.limits.max_line_bytes
            ))
        } else if line.iter().all(|b| b.is_ascii_whitespace()) {
            Err("blank line".to_string())
        } else if let Some(why) = (!rejects_nul).then(|| nul(line)).flatten() {
            Err(why)
        } else {
            match parser.meta_line(line) {
                Ok(true) => {
                    meta_lines += nlines;
                    return;
                }
                Ok(false) => {
                    rows.begin_row();
                    let mut outcome = parser.parse_line(line, start, &mut rows).and_then(|()| {
                        if rows.pending_fields() == 0 {
                            return Err("record has no fields".to_string());
                        }
                        rows.commit_row(chunk)
                    });
                    // Only a row that was begun may be aborted: aborting rolls the arena back
                    // to the mark of the last `begin_row`, which after a blank or overlong
                    // line is the previous, committed row (its unescaped strings would be
                    // lost or overwritten).
                    if outcome.is_err() {
                        rows.abort_row();
                        if let Some(why) = rejects_nul.then(|| nul(line)).flatten() {
                            outcome = Err(why);
                        }
                    }
                    outcome
                }
                Err(reason) => Err(reason),
            }
        };
        records += 1;
        if let Err(reason) = outcome {
            let keep = line.len().min(opts.limits.max_line_bytes);
            rejects.push(Reject {
                line: line_no,
                reason,
                raw: line[..keep].to_vec(),
            });
        }
    });
    let batch = rows.finish(chunk)?;
    debug_assert_eq!(batch.num_rows() as u64 + rejects.len() as u64, records);
    Ok(ParsedChunk {
        batch,
        rejects,
        lines,
        records,
        meta_lines,
    })
}

/// Records parsed before [`parse_chunk`] sizes the chunk's dense columns.
const ROWS_HINT_AFTER: u64 = 256;

/// `line` as text, or the reject reason naming the first invalid byte. Validation runs on
/// every record, so the common (valid) case takes `simdutf8`'s vectorised check; only an
/// invalid record pays for the standard library's error position.
pub(crate) fn utf8(line: &[u8]) -> std::result::Result<&str, String> {
    match simdutf8::basic::from_utf8(line) {
        Ok(s) => Ok(s),
        Err(_) => std::str::from_utf8(line)
            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to())),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_is_a_row_a_reject_or_a_header_line() {
        let text = b"a b\n\n   \nzero\x00filled\n\x00\x00\x00\nlast";
        for format in [Format::Text, Format::Logfmt, Format::Syslog] {
            let p = parse_all(&ParseOptions::new(format), text).unwrap();
            assert_eq!((p.lines, p.records, p.meta_lines), (6, 6, 0), "{format}");
            assert_eq!(
                p.records,
                p.batch.num_rows() as u64 + p.rejects.len() as u64
            );
        }
        let p = parse_all(&ParseOptions::new(Format::Text), text).unwrap();
        let why: Vec<(u64, &str)> = p
            .rejects
            .iter()
            .map(|r| (r.line, r.reason.as_str()))
            .collect();
        assert_eq!(
            why,
            [
                (2, "blank line"),
                (3, "blank line"),
                (4, "NUL byte at byte 4: binary data, not a log record"),
                (5, "NUL byte at byte 0: binary data, not a log record"),
            ]
        );
        assert_eq!(p.batch.num_rows(), 2);
    }

    #[test]
    fn overlong_records_are_rejected_and_cut_in_the_quarantine() {
        let mut opts = ParseOptions::new(Format::Text);
        opts.limits.max_line_bytes = 8;
        let p = parse_all(&opts, b"short\n0123456789abcdef\nok\n").unwrap();
        assert_eq!(p.batch.num_rows(), 2);
        assert_eq!(p.rejects[0].line, 2);
        assert_eq!(p.rejects[0].raw, b"01234567");
        assert!(p.rejects[0].reason.contains("max_line_bytes (8 bytes)"));
    }

    use arrow_array::Array;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// `text` keeps every record whole: generated lines come back verbatim, in order.
        #[test]
        fn text_round_trip(lines in prop::collection::vec("[^\r\n\x00]*[^\r\n\x00 \t\x0c]", 1..40)) {
            let input = lines.join("\n");
            let p = parse_all(&ParseOptions::new(Format::Text), input.as_bytes()).unwrap();
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            let m = p.batch.column_by_name("message").unwrap();
            let m = arrow_array::cast::AsArray::as_string::<i32>(m);
            let got: Vec<&str> = (0..m.len()).map(|i| m.value(i)).collect();
            prop_assert_eq!(got, lines.iter().map(String::as_str).collect::<Vec<_>>());
        }

        /// Multi-line records: each generated record (a start line and continuation lines)
        /// comes back as one row, whole, with a cut at any `boundary` giving the same rows.
        #[test]
        fn multi_line_records_round_trip(
            records in prop::collection::vec(
                ("[a-z ]{0,12}", prop::collection::vec("[ \t][!-~ ]{0,12}", 0..4)),
                1..30,
            ),
            cut in 0usize..2000,
        ) {
            let texts: Vec<String> = records
                .iter()
                .enumerate()
                .map(|(i, (head, cont))| {
                    let mut t = format!("REC{i} {head}");
                    for c in cont {
                        t.push('\n');
                        t.push_str(c);
                    }
                    t
                })
                .collect();
            let input = format!("{}\n", texts.join("\n"));
            let mut opts = ParseOptions::new(Format::Text);
            opts.record_start = Some("^REC".into());
            opts.prepare().unwrap();
            let rows = |chunks: &[&[u8]]| {
                let mut out = Vec::new();
                for c in chunks {
                    let p = parse_chunk(&opts, c, 1).unwrap();
                    assert!(p.rejects.is_empty(), "{:?}", p.rejects);
                    let Some(m) = p.batch.column_by_name("message") else { continue };
                    let m = arrow_array::cast::AsArray::as_string::<i32>(m);
                    out.extend((0..m.len()).map(|i| m.value(i).to_string()));
                }
                out
            };
            let b = input.as_bytes();
            prop_assert_eq!(&rows(&[b]), &texts);
            let at = opts.framing().boundary(b, cut.min(b.len()), 1 << 20).unwrap_or(b.len());
            prop_assert_eq!(&rows(&[&b[..at], &b[at..]]), &texts);
        }
    }
}
