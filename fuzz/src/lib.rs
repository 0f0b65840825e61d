//! Invariant checks shared by the fuzz targets.
//!
//! Every target parses its input with [`parse_and_check`], which asserts what must hold for
//! *any* input and any options (line accounting, reject bookkeeping, limits, schema shape), and
//! then runs a format oracle that re-reads each accepted line independently and compares the
//! row the parser produced with it ([`check_json_rows`], [`check_access_rows`]).
//! A failed assertion is a finding: libFuzzer saves the input under `fuzz/artifacts/`.

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use compactor_formats::schema::{sanitize_name, INVALID_NAME_CHARS};
use compactor_formats::{count_lines, for_each_line, parse_chunk, ParseOptions, ParsedChunk};
use serde_json::value::RawValue;

/// A parse of one input with its lines and which of them became rows.
pub struct Checked<'a> {
    /// What `parse_chunk` returned.
    pub parsed: ParsedChunk,
    /// The input's lines, as `parse_chunk` splits them.
    pub lines: Vec<&'a [u8]>,
    /// Indices into `lines` of the accepted lines; row `k` of the batch is `lines[accepted[k]]`.
    pub accepted: Vec<usize>,
}

/// The lines of `data` without terminators, as `parse_chunk` sees them.
pub fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut spans = Vec::new();
    for_each_line(data, |start, l| spans.push((start, l.len())));
    spans
        .into_iter()
        .map(|(start, len)| &data[start..start + len])
        .collect()
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
        .find(|(k, _)| k.to_ascii_lowercase() == folded)
        .map(|(_, t)| t.data_type())
}

/// Parses `data` with `opts` and asserts the invariants that hold for any input.
pub fn parse_and_check<'a>(opts: &ParseOptions, data: &'a [u8], first_line: u64) -> Checked<'a> {
    let parsed = match parse_chunk(opts, data, first_line) {
        Ok(p) => p,
        Err(e) => panic!("parse_chunk returned an error (only bugs should): {e}"),
    };
    let lines = split_lines(data);
    let n = lines.len() as u64;
    assert_eq!(
        parsed.lines,
        count_lines(data),
        "lines != count_lines(data)"
    );
    assert_eq!(parsed.lines, n, "lines != for_each_line count");
    assert_eq!(
        parsed.batch.num_rows() as u64 + parsed.rejects.len() as u64,
        parsed.lines,
        "rows + rejects != lines"
    );

    let max = opts.limits.max_line_bytes;
    let mut rejected = vec![false; lines.len()];
    let mut prev: Option<u64> = None;
    for r in &parsed.rejects {
        assert!(
            r.line >= first_line && r.line - first_line < n,
            "reject line {} outside {first_line}..{}",
            r.line,
            first_line + n
        );
        if let Some(p) = prev {
            assert!(
                r.line > p,
                "reject lines not increasing: {p} then {}",
                r.line
            );
        }
        prev = Some(r.line);
        assert!(!r.reason.is_empty(), "empty reject reason");
        assert!(
            r.raw.len() <= max,
            "reject raw is {} bytes > max_line_bytes {max}",
            r.raw.len()
        );
        let i = (r.line - first_line) as usize;
        let line = lines[i];
        assert_eq!(
            r.raw,
            &line[..line.len().min(max)],
            "reject raw is not the line's prefix (line {})",
            r.line
        );
        rejected[i] = true;
    }
    let accepted: Vec<usize> = (0..lines.len()).filter(|&i| !rejected[i]).collect();
    for &i in &accepted {
        let l = lines[i];
        assert!(l.len() <= max, "accepted a line longer than max_line_bytes");
        assert!(
            std::str::from_utf8(l).is_ok(),
            "accepted a non-UTF-8 line {}",
            i as u64 + first_line
        );
        assert!(
            !l.iter().all(u8::is_ascii_whitespace),
            "accepted a blank line {}",
            i as u64 + first_line
        );
    }

    let schema = parsed.batch.schema();
    assert!(
        schema.fields().len() <= opts.limits.max_columns,
        "{} columns > max_columns {}",
        schema.fields().len(),
        opts.limits.max_columns
    );
    if accepted.is_empty() {
        assert_eq!(
            schema.fields().len(),
            0,
            "rejected lines left columns behind: {schema:?}"
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
        lines,
        accepted,
    }
}

/// Parses `data` whole and again split in two at a line boundary near the middle, and asserts
/// that the same lines are rejected for the same reasons and the rows add up. Only valid when
/// no per-chunk limit (`max_columns`) comes into play.
pub fn check_split(opts: &ParseOptions, data: &[u8], whole: &ParsedChunk) {
    if whole.batch.num_columns() * 2 >= opts.limits.max_columns || data.len() < 2 {
        return;
    }
    let Some(nl) = memchr_back(&data[..data.len() / 2]) else {
        return;
    };
    let (a, b) = data.split_at(nl + 1);
    let pa = parse_and_check(opts, a, 1);
    let pb = parse_and_check(opts, b, 1 + pa.parsed.lines);
    assert_eq!(pa.parsed.lines + pb.parsed.lines, whole.lines);
    assert_eq!(
        pa.parsed.batch.num_rows() + pb.parsed.batch.num_rows(),
        whole.batch.num_rows(),
        "rows differ when the input is split"
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
        "rejects differ when the input is split"
    );
}

fn memchr_back(b: &[u8]) -> Option<usize> {
    b.iter().rposition(|&c| c == b'\n')
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
            if let Expect::Json(raw) = want {
                assert!(
                    raw.starts_with('"'),
                    "{}: {raw} in a timestamp column",
                    ctx()
                );
            }
            let got = a.as_primitive::<TimestampMicrosecondType>().value(row);
            let ours = compactor_formats::ts::parse_iso(text.as_bytes())
                .or_else(|| compactor_formats::ts::parse_clf(text.as_bytes()));
            assert_eq!(ours, Some(got), "{}: {text:?}", ctx());
            if let Some(theirs) = chrono_iso(&text).or_else(|| chrono_clf(&text)) {
                assert_eq!(got, theirs, "{}: {text:?} (chrono disagrees)", ctx());
            }
        }
        other => panic!("{}: unexpected type {other}", ctx()),
    }
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
fn flatten<'a>(text: &'a str, prefix: &str, out: &mut Vec<(String, &'a str)>) {
    let entries: Entries<'a> =
        serde_json::from_str(text).expect("oracle: accepted line is not a JSON object");
    let mut names = HashSet::new();
    for (k, v) in entries.0 {
        let name = if prefix.is_empty() {
            k
        } else {
            format!("{prefix}.{k}")
        };
        assert!(
            names.insert(fold(&name)),
            "accepted a line that names field {name:?} twice"
        );
        let raw = v.get();
        if raw.starts_with('{') && !raw[1..raw.len() - 1].trim().is_empty() {
            flatten(raw, &name, out);
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
        let text = std::str::from_utf8(c.lines[li]).unwrap();
        let mut fields = Vec::new();
        flatten(text, "", &mut fields);
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
        let line = std::str::from_utf8(c.lines[li]).unwrap();
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
