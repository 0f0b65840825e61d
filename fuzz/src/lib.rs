//! Invariant checks shared by the fuzz targets.
//!
//! Every parser target parses its input with [`parse_and_check`], which asserts what must hold
//! for *any* input and any options (line and record accounting, reject bookkeeping, limits,
//! schema shape), and then may run a format oracle that re-reads each accepted record
//! independently and compares the row the parser produced with it ([`check_json_rows`],
//! [`check_access_rows`]), and [`check_split`], which parses the input again in two chunks cut
//! at a record boundary, as the chunker would. [`check_framing`] checks the record splitter
//! itself and [`check_decode`] the decompressor. A failed assertion is a finding: libFuzzer
//! saves the input under `fuzz/artifacts/`.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use compactor_formats::framing::Framing;
use compactor_formats::schema::{sanitize_name, INVALID_NAME_CHARS};
use compactor_formats::{count_lines, parse_chunk, Format, ParseOptions, ParsedChunk};
use serde_json::value::RawValue;

pub mod decode;
pub mod framing;

pub use decode::check_decode;
pub use framing::check_framing;

/// A parse of one input with its records and which of them became rows.
pub struct Checked<'a> {
    /// What `parse_chunk` returned.
    pub parsed: ParsedChunk,
    /// The input's records as the options' framing splits them (for one-line formats, its
    /// lines), without terminators.
    pub records: Vec<&'a [u8]>,
    /// The 1-based line number (from `first_line`) of each record's first line.
    pub record_lines: Vec<u64>,
    /// Indices into `records` of the accepted records: row `k` of the batch is
    /// `records[accepted[k]]`. Only known when the chunk has no metadata lines (`exact`).
    pub accepted: Vec<usize>,
    /// Whether `accepted` is exact (no metadata lines, whose records are neither rows nor
    /// rejects).
    pub exact: bool,
}

/// The records of `data` under `framing`: (offset, bytes without the terminator, lines).
pub fn split_records(framing: &Framing, data: &[u8]) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    framing.for_each_record(data, |start, r, n| out.push((start, r.len(), n)));
    out
}

/// The framing `parse_chunk` uses for `opts` (its `record_start` compiled if it was not).
pub fn framing_of(opts: &ParseOptions) -> Framing {
    if opts.record_start.is_some() && opts.prepared.record_start.is_none() {
        let mut o = opts.clone();
        if o.prepare().is_ok() {
            return o.framing();
        }
    }
    opts.framing()
}

/// Whether compactor may produce a column of this Arrow type.
pub fn allowed_type(dt: &DataType) -> bool {
    match dt {
        DataType::Boolean | DataType::Int64 | DataType::Float64 | DataType::Utf8 => true,
        DataType::Null => true,
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => tz.as_ref() == "UTC",
        _ => false,
    }
}

/// The forced type of output column `name`, if any (same lookup as the builder's).
fn forced_type(opts: &ParseOptions, name: &str) -> Option<DataType> {
    let folded = sanitize_name(name).to_ascii_lowercase();
    opts.forced
        .iter()
        .find(|(k, _)| sanitize_name(k).to_ascii_lowercase() == folded)
        .map(|(_, t)| t.data_type())
}

/// Formats whose accepted records are always valid UTF-8 as a whole (pattern formats may
/// accept a line whose unmatched part is not).
fn whole_record_utf8(opts: &ParseOptions) -> bool {
    matches!(
        opts.format,
        None | Some(Format::Json | Format::Combined | Format::Common | Format::Text)
    )
}

/// Parses `data` with `opts` and asserts the invariants that hold for any input:
///
/// - `parse_chunk` does not fail; `lines == count_lines(data)`; `records == rows + rejects`;
///   `records + meta_lines <= lines`, with equality for one-line framings; the framing's
///   records are the parsed records plus at least one record per metadata line group;
/// - rejects are in order, each at the first line of one of the framing's records, with a
///   reason, its `raw` the record's prefix of at most `max_line_bytes`;
/// - accepted records (when known) are not blank, within `max_line_bytes`, and UTF-8 for the
///   formats that require it; no rows means no columns;
/// - columns: allowed types, nullable, sanitized names unique case-insensitively, at most
///   `max_columns`, forced types honoured.
pub fn parse_and_check<'a>(opts: &ParseOptions, data: &'a [u8], first_line: u64) -> Checked<'a> {
    let parsed = match parse_chunk(opts, data, first_line) {
        Ok(p) => p,
        Err(e) => panic!("parse_chunk returned an error (only bugs should): {e}"),
    };
    let framing = framing_of(opts);
    let spans = split_records(&framing, data);
    let mut records = Vec::with_capacity(spans.len());
    let mut record_lines = Vec::with_capacity(spans.len());
    let mut line = first_line;
    for &(start, len, n) in &spans {
        records.push(&data[start..start + len]);
        record_lines.push(line);
        line += n;
    }
    let rows = parsed.batch.num_rows() as u64;
    let rejected = parsed.rejects.len() as u64;
    assert_eq!(
        parsed.lines,
        count_lines(data),
        "lines != count_lines(data)"
    );
    assert_eq!(line - first_line, parsed.lines, "framing lines != lines");
    assert_eq!(rows + rejected, parsed.records, "rows + rejects != records");
    assert!(
        parsed.records + parsed.meta_lines <= parsed.lines,
        "records {} + meta_lines {} > lines {}",
        parsed.records,
        parsed.meta_lines,
        parsed.lines
    );
    if matches!(framing, Framing::Lines) {
        assert_eq!(
            parsed.records + parsed.meta_lines,
            parsed.lines,
            "one-line records: records + meta_lines != lines"
        );
    }
    let meta_records = (records.len() as u64).checked_sub(parsed.records);
    let meta_records = meta_records.unwrap_or_else(|| {
        panic!(
            "{} records parsed but the framing splits {}",
            parsed.records,
            records.len()
        )
    });
    assert!(
        meta_records <= parsed.meta_lines && (meta_records > 0) == (parsed.meta_lines > 0),
        "{meta_records} metadata records for {} metadata lines",
        parsed.meta_lines
    );

    let max = opts.limits.max_line_bytes;
    let mut is_rejected = vec![false; records.len()];
    let mut prev: Option<u64> = None;
    for r in &parsed.rejects {
        if let Some(p) = prev {
            assert!(
                r.line > p,
                "reject lines not increasing: {p} then {}",
                r.line
            );
        }
        prev = Some(r.line);
        let i = record_lines.binary_search(&r.line).unwrap_or_else(|_| {
            panic!(
                "reject line {} is not the first line of a record (records start at {:?})",
                r.line,
                &record_lines[..record_lines.len().min(20)]
            )
        });
        assert!(!r.reason.is_empty(), "empty reject reason");
        assert!(
            r.raw.len() <= max,
            "reject raw is {} bytes > max_line_bytes {max}",
            r.raw.len()
        );
        let rec = records[i];
        assert_eq!(
            r.raw,
            &rec[..rec.len().min(max)],
            "reject raw is not the record's prefix (line {})",
            r.line
        );
        is_rejected[i] = true;
    }
    let exact = parsed.meta_lines == 0;
    let accepted: Vec<usize> = if exact {
        (0..records.len()).filter(|&i| !is_rejected[i]).collect()
    } else {
        Vec::new()
    };
    if exact {
        assert_eq!(accepted.len() as u64, rows, "accepted records != rows");
    }
    for &i in &accepted {
        let l = records[i];
        let at = record_lines[i];
        assert!(
            l.len() <= max,
            "accepted record {at} longer than max_line_bytes"
        );
        if whole_record_utf8(opts) {
            assert!(
                std::str::from_utf8(l).is_ok(),
                "accepted a non-UTF-8 record {at}"
            );
        }
        assert!(
            !l.iter().all(u8::is_ascii_whitespace),
            "accepted a blank record {at}"
        );
    }

    let schema = parsed.batch.schema();
    assert!(
        schema.fields().len() <= opts.limits.max_columns,
        "{} columns > max_columns {}",
        schema.fields().len(),
        opts.limits.max_columns
    );
    if rows == 0 && exact {
        assert_eq!(
            schema.fields().len(),
            0,
            "rejected records left columns behind: {schema:?}"
        );
    }
    let mut seen = HashSet::new();
    for f in schema.fields() {
        assert!(
            allowed_type(f.data_type()),
            "column {} has type {}",
            f.name(),
            f.data_type()
        );
        assert!(f.is_nullable(), "column {} is not nullable", f.name());
        assert!(
            !f.name().is_empty() && !f.name().contains(INVALID_NAME_CHARS),
            "column name {:?} is not sanitized",
            f.name()
        );
        assert!(
            seen.insert(f.name().to_ascii_lowercase()),
            "two columns named {:?} (case-insensitively)",
            f.name()
        );
        if let Some(t) = forced_type(opts, f.name()) {
            assert_eq!(
                f.data_type(),
                &t,
                "forced column {} has the wrong type",
                f.name()
            );
        }
    }
    Checked {
        parsed,
        records,
        record_lines,
        accepted,
        exact,
    }
}

/// Parses `data` whole and again in two chunks cut at a record boundary near the middle
/// ([`Framing::boundary`], as the chunker cuts), and asserts that the same records are
/// rejected for the same reasons and the rows and lines add up. Only valid when no per-chunk
/// limit (`max_columns`) comes into play.
pub fn check_split(opts: &ParseOptions, data: &[u8], whole: &ParsedChunk) {
    if whole.batch.num_columns() * 2 >= opts.limits.max_columns || data.len() < 2 {
        return;
    }
    let framing = framing_of(opts);
    let Some(cut) = framing.boundary(data, data.len() / 2, usize::MAX) else {
        return;
    };
    if cut >= data.len() {
        return;
    }
    let (a, b) = data.split_at(cut);
    let pa = parse_and_check(opts, a, 1);
    let pb = parse_and_check(opts, b, 1 + pa.parsed.lines);
    assert_eq!(pa.parsed.lines + pb.parsed.lines, whole.lines);
    assert_eq!(
        pa.parsed.records + pb.parsed.records,
        whole.records,
        "records differ when the input is split at byte {cut}"
    );
    assert_eq!(
        pa.parsed.batch.num_rows() + pb.parsed.batch.num_rows(),
        whole.batch.num_rows(),
        "rows differ when the input is split at byte {cut}"
    );
    let split: Vec<_> = pa
        .parsed
        .rejects
        .iter()
        .chain(&pb.parsed.rejects)
        .cloned()
        .collect();
    assert_eq!(
        split, whole.rejects,
        "rejects differ when the input is split at byte {cut}"
    );
}

fn column_index(batch: &RecordBatch, name: &str) -> Option<usize> {
    let folded = sanitize_name(name).to_ascii_lowercase();
    batch
        .schema()
        .fields()
        .iter()
        .position(|f| f.name().to_ascii_lowercase() == folded)
}

/// Whether a cell is null; a `NullArray` has no validity buffer, so `Array::is_null` is false.
fn is_null(a: &dyn Array, row: usize) -> bool {
    a.data_type() == &DataType::Null || a.is_null(row)
}

/// A value the oracle expects in a cell.
#[derive(Debug)]
enum Expect<'a> {
    Null,
    /// Verbatim or decoded text; read according to the column's type.
    Text(String),
    /// A JSON value, raw.
    Json(&'a str),
    /// Anything (a value the oracle does not model).
    Any,
}

/// `+HHMM`, `-HH:MM`: minutes east of UTC.
fn zone_minutes(z: &str) -> Option<i64> {
    let (sign, rest) = match z.as_bytes().first()? {
        b'+' => (1, &z[1..]),
        b'-' => (-1, &z[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|&c| c != ':').collect();
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let h: i64 = digits[..2].parse().ok()?;
    let m: i64 = digits[2..].parse().ok()?;
    Some(sign * (h * 60 + m))
}

/// Checks one cell against what the oracle expects.
fn check_cell(batch: &RecordBatch, col: usize, row: usize, want: &Expect<'_>, what: &str) {
    let a = batch.column(col);
    let dt = a.data_type().clone();
    let ctx = || {
        format!(
            "{what}: column {:?} ({dt}) row {row}",
            batch.schema().field(col).name()
        )
    };
    // The JSON value as text: decoded for strings, verbatim for the rest.
    let json_text = |raw: &str| -> Option<String> {
        if raw == "null" {
            None
        } else if raw.starts_with('"') {
            Some(serde_json::from_str::<String>(raw).expect("oracle: string"))
        } else {
            Some(raw.to_string())
        }
    };
    let (text, is_json_string) = match want {
        Expect::Any => return,
        Expect::Null => (None, false),
        Expect::Text(t) => (Some(t.clone()), false),
        Expect::Json(raw) => (json_text(raw), raw.starts_with('"')),
    };
    let Some(text) = text else {
        assert!(is_null(a.as_ref(), row), "{}: expected null", ctx());
        return;
    };
    assert!(
        !is_null(a.as_ref(), row),
        "{}: expected {text:?}, got null",
        ctx()
    );
    match &dt {
        DataType::Null => panic!("{}: Null column holds {text:?}", ctx()),
        DataType::Utf8 => {
            assert_eq!(a.as_string::<i32>().value(row), text, "{}", ctx());
        }
        DataType::Boolean => {
            assert!(!is_json_string, "{}: string in a bool column", ctx());
            let want = match text.as_str() {
                "true" => true,
                "false" => false,
                _ => panic!("{}: {text:?} in a bool column", ctx()),
            };
            assert_eq!(a.as_boolean().value(row), want, "{}", ctx());
        }
        DataType::Int64 => {
            assert!(!is_json_string, "{}: string in an int column", ctx());
            let want: i64 = text
                .parse()
                .unwrap_or_else(|_| panic!("{}: {text:?} in an int column", ctx()));
            assert_eq!(a.as_primitive::<Int64Type>().value(row), want, "{}", ctx());
        }
        DataType::Float64 => {
            assert!(!is_json_string, "{}: string in a float column", ctx());
            let want: f64 = text
                .parse()
                .unwrap_or_else(|_| panic!("{}: {text:?} in a float column", ctx()));
            let got = a.as_primitive::<Float64Type>().value(row);
            assert!(
                got == want,
                "{}: got {got}, want {want} from {text:?}",
                ctx()
            );
        }
        DataType::Timestamp(..) => {
            let got = a.as_primitive::<TimestampMicrosecondType>().value(row);
            // A JSON number in a timestamp column (only a forced type makes one): an epoch,
            // its unit read from its magnitude; checked against an independent scaling.
            if let Expect::Json(raw) = want {
                if !raw.starts_with('"') {
                    assert_eq!(Some(got), epoch_oracle(&text), "{}: {raw}", ctx());
                    return;
                }
            }
            let ours = compactor_formats::ts::parse_iso(text.as_bytes())
                .or_else(|| compactor_formats::ts::parse_clf(text.as_bytes()))
                .or_else(|| compactor_formats::ts::parse_epoch(text.as_bytes()));
            assert_eq!(ours, Some(got), "{}: {text:?}", ctx());
            if let Some(theirs) = chrono_iso(&text).or_else(|| chrono_clf(&text)) {
                assert_eq!(got, theirs, "{}: {text:?} (chrono disagrees)", ctx());
            }
        }
        other => panic!("{}: unexpected type {other}", ctx()),
    }
}

/// An epoch in microseconds, by the digits' count (9-11 seconds, 12-14 ms, 15-17 us, 18-19 ns
/// with zero sub-microsecond digits; seconds may have up to 6 fraction digits), computed with
/// 128-bit arithmetic on the text.
fn epoch_oracle(text: &str) -> Option<i64> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if text.contains('.') && (frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let v: i128 = int.parse().ok()?;
    let micros: i128 = match (int.len(), frac.len()) {
        (9..=11, 0) => v * 1_000_000,
        (9..=11, 1..=6) => {
            v * 1_000_000 + frac.parse::<i128>().ok()? * 10i128.pow(6 - frac.len() as u32)
        }
        (12..=14, 0) => v * 1_000,
        (15..=17, 0) => v,
        (18..=19, 0) if v % 1_000 == 0 => v / 1_000,
        _ => return None,
    };
    i64::try_from(micros).ok()
}

/// chrono's reading of an RFC 3339 timestamp, when chrono accepts it.
fn chrono_iso(s: &str) -> Option<i64> {
    Some(
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()?
            .timestamp_micros(),
    )
}

/// chrono's reading of an access-log timestamp `10/Oct/2000:13:55:36[.f] [zone]`.
pub fn chrono_clf(s: &str) -> Option<i64> {
    let (main, zone) = s.split_once(' ').unwrap_or((s, ""));
    let naive = chrono::NaiveDateTime::parse_from_str(main, "%d/%b/%Y:%H:%M:%S%.f").ok()?;
    let offset: i64 = match zone.as_bytes() {
        b"" | b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let digits: Vec<u8> = rest.iter().copied().filter(|&c| c != b':').collect();
            if !(digits.len() == 2 || digits.len() == 4) || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let num = |d: &[u8]| i64::from(d[0] - b'0') * 10 + i64::from(d[1] - b'0');
            let h = num(&digits[0..2]);
            let m = if digits.len() == 4 {
                num(&digits[2..4])
            } else {
                0
            };
            let off = h * 3600 + m * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    Some(naive.and_utc().timestamp_micros() - offset * 1_000_000)
}

/// A JSON object's entries in order, duplicates kept, values raw (serde_json's own reading,
/// independent of the parser's).
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Entries<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The column a flattened path lands in, folded: sanitized, ASCII lower case.
fn fold(path: &str) -> String {
    sanitize_name(path).to_ascii_lowercase()
}

/// Flattens a JSON object the way the JSON parser documents it: nested non-empty objects
/// become dotted names; everything else is a leaf with its raw text. Panics if `text` is not a
/// JSON object, or if one object names a field twice (such a line must be rejected).
fn flatten<'a>(text: &'a str, prefix: Option<&str>, out: &mut Vec<(String, &'a str)>) {
    let entries: Entries<'a> =
        serde_json::from_str(text).expect("oracle: accepted line is not a JSON object");
    let mut names = HashSet::new();
    for (k, v) in entries.0 {
        // Nested names are joined with dots even when a key is empty (`{"":{"x":1}}` is `.x`).
        let name = match prefix {
            None => k,
            Some(p) => format!("{p}.{k}"),
        };
        assert!(
            names.insert(fold(&name)),
            "accepted a line that names field {name:?} twice"
        );
        let raw = v.get();
        if raw.starts_with('{') && !raw[1..raw.len() - 1].trim().is_empty() {
            flatten(raw, Some(&name), out);
        } else {
            out.push((name, raw));
        }
    }
}

/// For each accepted JSON line: it is a JSON object, and its row holds exactly its flattened
/// fields (other columns null), each value read as the column's type. Forced columns skipped.
pub fn check_json_rows(opts: &ParseOptions, c: &Checked<'_>) {
    let batch = &c.parsed.batch;
    for (row, &li) in c.accepted.iter().enumerate() {
        let text = std::str::from_utf8(c.records[li]).unwrap();
        let mut fields = Vec::new();
        flatten(text, None, &mut fields);
        let mut present = vec![false; batch.num_columns()];
        for (name, raw) in &fields {
            let col = column_index(batch, name)
                .unwrap_or_else(|| panic!("line {}: field {name:?} has no column", li + 1));
            assert!(!present[col], "line {}: two fields in column {col}", li + 1);
            present[col] = true;
            if forced_type(opts, batch.schema().field(col).name()).is_some() {
                continue;
            }
            check_cell(
                batch,
                col,
                row,
                &Expect::Json(raw),
                &format!("json line {}", li + 1),
            );
        }
        for (col, p) in present.iter().enumerate() {
            if !p {
                assert!(
                    is_null(batch.column(col).as_ref(), row),
                    "line {}: column {:?} is not in the line but not null",
                    li + 1,
                    batch.schema().field(col).name()
                );
            }
        }
    }
}

/// An independent tokenizer for access-log lines.
struct Tok<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Tok<'a> {
    fn skip(&mut self) {
        while self.s[self.i..].starts_with(' ') {
            self.i += 1;
        }
    }
    fn at_end(&mut self) -> bool {
        self.skip();
        self.i >= self.s.len()
    }
    fn bare(&mut self) -> &'a str {
        self.skip();
        let rest = &self.s[self.i..];
        let n = rest.find(' ').unwrap_or(rest.len());
        self.i += n;
        &rest[..n]
    }
    fn enclosed(&mut self, open: char, close: char, escapes: bool) -> &'a str {
        self.skip();
        assert!(
            self.s[self.i..].starts_with(open),
            "oracle: expected {open}"
        );
        let start = self.i + 1;
        let b = self.s.as_bytes();
        let mut j = start;
        loop {
            assert!(j < b.len(), "oracle: unterminated field");
            if escapes && b[j] == b'\\' {
                j += 2;
            } else if b[j] == close as u8 {
                break;
            } else {
                j += 1;
            }
        }
        self.i = j + 1;
        &self.s[start..j]
    }
}

/// For each accepted access-log line: its row holds the line's fields as documented in
/// `compactor_formats::access`. Forced columns skipped.
pub fn check_access_rows(opts: &ParseOptions, combined: bool, c: &Checked<'_>) {
    let batch = &c.parsed.batch;
    let nullable = |v: &str| {
        if v == "-" {
            Expect::Null
        } else {
            Expect::Text(v.to_string())
        }
    };
    for (row, &li) in c.accepted.iter().enumerate() {
        let line = std::str::from_utf8(c.records[li]).unwrap();
        let what = format!("access line {}", li + 1);
        let mut t = Tok { s: line, i: 0 };
        let mut expect: Vec<(String, Expect<'_>)> = vec![
            ("ip".into(), Expect::Text(t.bare().to_string())),
            ("ident".into(), nullable(t.bare())),
            ("user".into(), nullable(t.bare())),
        ];
        let ts = t.enclosed('[', ']', false);
        let ts_micros = compactor_formats::ts::parse_clf(ts.as_bytes())
            .unwrap_or_else(|| panic!("{what}: accepted timestamp [{ts}]"));
        if let Some(theirs) = chrono_clf(ts) {
            assert_eq!(ts_micros, theirs, "{what}: [{ts}] (chrono disagrees)");
        }
        expect.push(("ts".into(), Expect::Text(ts.to_string())));
        // ts_offset: the zone as written, in minutes east of UTC (null without a zone)
        let has_offset_column = column_index(batch, "ts_offset").is_some();
        if has_offset_column {
            match ts.rsplit_once(' ').map(|(_, z)| zone_minutes(z)) {
                None => expect.push(("ts_offset".into(), Expect::Null)),
                Some(Some(m)) => expect.push(("ts_offset".into(), Expect::Text(m.to_string()))),
                // a zone this oracle does not read: not checked
                Some(None) => expect.push(("ts_offset".into(), Expect::Any)),
            }
        }
        let req = t.enclosed('"', '"', true);
        expect.push(("status".into(), Expect::Text(t.bare().to_string())));
        expect.push(("bytes".into(), nullable(t.bare())));
        if combined {
            expect.push(("referer".into(), nullable(t.enclosed('"', '"', true))));
            expect.push(("user_agent".into(), nullable(t.enclosed('"', '"', true))));
        }
        let mut n = 0;
        while !t.at_end() {
            let name = opts
                .extra_columns
                .get(n)
                .cloned()
                .unwrap_or_else(|| format!("extra_{}", n + 1));
            let v = if t.s[t.i..].starts_with('"') {
                t.enclosed('"', '"', true)
            } else {
                t.bare()
            };
            expect.push((name, nullable(v)));
            n += 1;
        }
        let mut present = vec![false; batch.num_columns()];
        for (name, want) in &expect {
            let col = column_index(batch, name)
                .unwrap_or_else(|| panic!("{what}: field {name:?} has no column"));
            assert!(!present[col], "{what}: two fields in column {name:?}");
            present[col] = true;
            if forced_type(opts, name).is_some() {
                continue;
            }
            check_cell(batch, col, row, want, &what);
        }
        // method / path / protocol: the request, split or whole
        let get = |name: &str| -> Option<String> {
            let col = column_index(batch, name).expect("request columns exist");
            let a = batch.column(col);
            (!is_null(a.as_ref(), row)).then(|| match a.data_type() {
                DataType::Utf8 => a.as_string::<i32>().value(row).to_string(),
                _ => String::from("<forced>"),
            })
        };
        let forced_req = ["method", "path", "protocol"]
            .iter()
            .any(|n| forced_type(opts, n).is_some());
        for n in ["method", "path", "protocol"] {
            let col = column_index(batch, n).expect("request columns exist");
            assert!(!present[col], "{what}: two fields in column {n:?}");
            present[col] = true;
        }
        if !forced_req {
            match (get("method"), get("path"), get("protocol")) {
                (None, None, None) => assert_eq!(req, "-", "{what}: request dropped"),
                (None, Some(p), None) => assert_eq!(p, req, "{what}: request kept whole"),
                (Some(m), Some(p), None) => assert_eq!(format!("{m} {p}"), req, "{what}"),
                (Some(m), Some(p), Some(v)) => {
                    assert_eq!(format!("{m} {p} {v}"), req, "{what}");
                    assert!(v.starts_with("HTTP/"), "{what}: protocol {v:?}");
                }
                other => panic!("{what}: request {req:?} split as {other:?}"),
            }
        }
        for (col, p) in present.iter().enumerate() {
            if !p {
                assert!(
                    is_null(batch.column(col).as_ref(), row),
                    "{what}: column {:?} is not in the line but not null",
                    batch.schema().field(col).name()
                );
            }
        }
    }
}
