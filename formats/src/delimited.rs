//! Delimited values: CSV (RFC 4180), TSV, Zeek ASCII logs and the W3C extended log format
//! (IIS; CloudFront reuses this module through [`crate::aws`]).
//!
//! # Why
//! CSV and TSV carry their column names in a header line, and Zeek and W3C logs in `#`
//! directive lines, but chunks of one file are parsed independently and in parallel: only the
//! first chunk sees the header. So the header is read once per file, before the chunks, by
//! [`read_header`] (called from [`crate::ParseOptions::for_file`]) and shared with every
//! chunk's parser through [`crate::Prepared::header`]. Each chunk's parser still recognises
//! header and directive lines itself (`LineParser::meta_line`): the header line of
//! the first chunk, headers repeated by concatenated files, a Zeek `#close` at the end.
//!
//! # Algorithm
//! ```text
//!  file head ──read_header──▶ Header{dialect, names, types, line, separator, ...} ──Arc──┐
//!                                                                                        ▼
//!  chunk ──framing──▶ record ──meta_line?──▶ yes: header / directive (meta_lines)
//!                                  │ no
//!                                  ▼
//!          split at the delimiter (quotes, `""`, escapes) ──▶ field spans (reused Vec)
//!                                  │
//!                 count == header? ── no ──▶ Reject "expected N fields, found M"
//!                                  │ yes
//!                                  ▼
//!          per field: null rules, then the header's type (or inference) ──▶ RowsBuilder
//! ```
//! - A record is split with `memchr` (delimiter, quote, escape); an unquoted field, or a
//!   quoted one without `""` or escapes inside, is a span of the chunk (no copy). Only a field
//!   that needs unescaping is copied, into a reusable buffer, and pushed with
//!   [`RowsBuilder::push_owned_str`].
//! - Without a prepared header (tests calling [`crate::parse_all`] directly), the parser
//!   derives it lazily from the chunk's first record (or its leading directives).
//!
//! # Dialects
//! | dialect | recognised by | names | types | separator |
//! |---|---|---|---|---|
//! | plain CSV/TSV | anything else | the first record (unless `has_header = false`), or `columns` | inferred | `,` (csv) / tab (tsv), or `delimiter` |
//! | Zeek (tsv only) | first line `#separator`, `#fields`, ... | `#fields`, kept as written (`id.orig_h`) | `#types` | `#separator` (`\x09` escapes decoded) |
//! | W3C (tsv, cloudfront) | first line `#Version:`, `#Fields:`, ... | `#Fields:`, normalised (below) | inferred; `date` + `time` become `ts` | tab if the record has one, else space |
//!
//! # Column rules
//! - **Names** come from the header; the builder sanitises them for Delta (see
//!   [`crate::schema::sanitize_name`]). Surrounding whitespace and a UTF-8 byte order mark are
//!   dropped. An empty name becomes `column_N` (N = 1-based position). A name equal (after
//!   sanitising, ignoring ASCII case) to an earlier one gets a suffix: `a`, `a_2`, `a_3`.
//!   Without any header the columns are `column_1`, `column_2`, ...
//! - **W3C names** are normalised ([`w3c_column_name`]): lower case, every run of characters
//!   other than `[a-z0-9]` becomes one `_`, leading and trailing `_` dropped:
//!   `cs(User-Agent)` → `cs_user_agent`, `x-edge-location` → `x_edge_location`. The `date` and
//!   `time` fields are combined into one UTC timestamp column `ts` (both columns are dropped).
//! - **Nulls**: an empty unquoted field is null; a quoted empty field (`""`) is the empty
//!   string. Zeek: the `#unset_field` marker (`-`) is null, the `#empty_field` marker
//!   (`(empty)`) is the empty string (Zeek writes it for empty strings and empty sets; keeping
//!   it apart from unset loses nothing). W3C: `-` is null.
//! - **Inferred types** (plain CSV/TSV, W3C) follow JSON scalars: a value with the shape of a
//!   JSON number is an int (float if it has a fraction or exponent; ints beyond i64 stay
//!   strings); `true` / `false` are bools; ISO 8601 timestamps are timestamps; anything else is
//!   a string. So leading zeros (`081109`, ZIP codes) stay strings, verbatim. Quoted fields
//!   are typed the same way (many writers quote every field); a field that needed unescaping
//!   is always a string.
//! - **Zeek types**: `time` → timestamp (epoch seconds with fraction), `count` / `int` /
//!   `port` → int (a `count` beyond i64 is kept as a string), `double` / `interval` → float,
//!   `bool` (`T` / `F`) → bool, `string` / `addr` / `subnet` / `enum` / `pattern` → string,
//!   `set[..]` / `vector[..]` / `table[..]` → string kept verbatim (elements joined by the
//!   `#set_separator`, Zeek's `\x..` escapes untouched); an unknown type is inferred.
//!
//! # What is rejected
//! - a record that is not UTF-8 (`invalid UTF-8 at byte N`);
//! - a record whose field count differs from the header's (`expected N fields, found M`), with
//!   no tolerance for trailing empty fields: a writer that ends every line with a delimiter
//!   also ends its header with one, which then names an extra (`column_N`) column;
//! - an unterminated quoted field, or text between a closing quote and the next delimiter;
//! - a value that does not fit its declared (Zeek) type: `field "id.orig_p": "x" is not a
//!   valid int`;
//! - a `#fields` / `#types` / `#Fields:` directive that differs from the file's first one
//!   (a concatenation of different logs): `header differs from the file's first header`. The
//!   records after it are still read with the first header (chunks are parsed independently
//!   and cannot switch headers); the rejected directive makes the problem visible.
//! - more fields than [`crate::Limits::max_columns`].
//!
//! A record that equals the file's header line is a header (a concatenated file repeating
//! it), counted in `meta_lines`, never a row. Headerless files (`has_header = false` without
//! `columns`) accept any number of fields per record.
//!
//! Quoted fields may span lines: the record framing ([`crate::framing`]) groups lines while a
//! quote is open (the configured quote and escape characters; for TSV only with quoting on).

use std::collections::HashSet;
use std::sync::Arc;

use crate::builder::RowsBuilder;
use crate::error::{FormatError, Result};
use crate::schema::sanitize_name;
use crate::{ts, Format, LineParser, ParseOptions};

/// Default field delimiter of `csv`.
pub const DEFAULT_CSV_DELIMITER: char = ',';
/// Default field delimiter of `tsv`.
pub const DEFAULT_TSV_DELIMITER: char = '\t';
/// Default quote character (quoting is on by default for `csv`, off for `tsv`).
pub const DEFAULT_QUOTE: char = '"';
/// Zeek's default `#unset_field` marker (null).
pub const ZEEK_UNSET: &str = "-";
/// Zeek's default `#empty_field` marker (the empty string).
pub const ZEEK_EMPTY: &str = "(empty)";
/// The W3C null marker.
pub const W3C_NULL: &str = "-";

/// `csv` / `tsv` options (`[input.delimited]` in a job file). Every field is optional; the
/// defaults read RFC 4180 CSV and plain TSV, both with a header line.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelimitedOptions {
    /// Field delimiter, one ASCII character; default [`DEFAULT_CSV_DELIMITER`] for csv and
    /// [`DEFAULT_TSV_DELIMITER`] for tsv. (Zeek and W3C files use their own separator.)
    pub delimiter: Option<char>,
    /// Quote character, one ASCII character; default [`DEFAULT_QUOTE`]. Inside quotes the
    /// delimiter and newlines are data, and a doubled quote is one quote. Setting it for tsv
    /// turns quoting on. The record framing ([`crate::framing`]) uses the same quote and
    /// escape characters to find newlines inside quotes.
    pub quote: Option<char>,
    /// Whether fields may be quoted; default true for csv, false for tsv (unless `quote` is
    /// set).
    pub quoting: Option<bool>,
    /// Escape character (`\` usually), default none: the character after it is taken
    /// literally (Python's `escapechar`: `\,` is a comma, `\"` a quote, `\n` the letter `n`),
    /// in quoted and unquoted fields.
    pub escape: Option<char>,
    /// Whether the first record is a header line with the column names; default true unless
    /// `columns` is given. With `columns` and `has_header = true`, the header line is skipped
    /// and the `columns` names are used instead.
    pub has_header: Option<bool>,
    /// Column names, in order, when the input has no header line (or to rename it, see
    /// `has_header`). Empty: names come from the header line.
    #[serde(default)]
    pub columns: Vec<String>,
}

/// The checked byte-level syntax of [`DelimitedOptions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Syntax {
    delim: u8,
    quote: Option<u8>,
    escape: Option<u8>,
}

fn ascii_option(what: &str, c: char) -> Result<u8> {
    if !c.is_ascii() || c == '\n' || c == '\r' {
        return Err(FormatError::InvalidOption(format!(
            "delimited {what} must be one ASCII character other than a newline, got {c:?}"
        )));
    }
    Ok(c as u8)
}

impl DelimitedOptions {
    /// Whether the first record is a header line (see [`Self::has_header`]).
    pub fn header_line(&self) -> bool {
        self.has_header.unwrap_or(self.columns.is_empty())
    }

    fn syntax(&self, format: Format) -> Result<Syntax> {
        let tsv = format != Format::Csv;
        let default_delim = if tsv {
            DEFAULT_TSV_DELIMITER
        } else {
            DEFAULT_CSV_DELIMITER
        };
        let delim = ascii_option("delimiter", self.delimiter.unwrap_or(default_delim))?;
        let quoting = self.quoting.unwrap_or(!tsv || self.quote.is_some());
        let quote = match quoting {
            true => Some(ascii_option("quote", self.quote.unwrap_or(DEFAULT_QUOTE))?),
            false => None,
        };
        let mut escape = self.escape.map(|c| ascii_option("escape", c)).transpose()?;
        if escape == quote {
            escape = None; // `""` already is the quote's escape
        }
        if quote == Some(delim) || escape == Some(delim) {
            return Err(FormatError::InvalidOption(format!(
                "delimited delimiter {:?} is also the quote or escape character",
                delim as char
            )));
        }
        Ok(Syntax {
            delim,
            quote,
            escape,
        })
    }
}

/// How a file states its columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A CSV/TSV header line, `columns`, or nothing.
    Plain,
    /// Zeek ASCII log directives (`#separator`, `#fields`, `#types`, ...).
    Zeek,
    /// W3C extended log format directives (`#Version:`, `#Fields:`, ...).
    W3c,
}

/// The declared type of a field, deciding how its text becomes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// No declared type: typed like a JSON scalar (see the module docs).
    Infer,
    /// A string, kept verbatim.
    Str,
    /// An integer (a value of digits only beyond i64 is kept as a string).
    Int,
    /// A float (JSON number syntax).
    Float,
    /// A boolean written `T` / `F` (Zeek) or `true` / `false`.
    Bool,
    /// A timestamp written as epoch seconds with an optional fraction (Zeek `time`).
    Epoch,
    /// The W3C `date` field: combined with the `time` field into the `ts` column.
    Date,
    /// The W3C `time` field: consumed by the `date` field's `ts` column.
    Time,
}

impl FieldType {
    fn what(self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Float => "float",
            FieldType::Bool => "bool (T or F)",
            FieldType::Epoch => "epoch time",
            _ => "value",
        }
    }

    /// The type of a Zeek `#types` entry.
    pub fn from_zeek(t: &str) -> FieldType {
        match t {
            "time" => FieldType::Epoch,
            "count" | "int" | "port" => FieldType::Int,
            "double" | "interval" => FieldType::Float,
            "bool" => FieldType::Bool,
            "string" | "addr" | "subnet" | "enum" | "pattern" | "func" | "file" => FieldType::Str,
            t if t.starts_with("set[") || t.starts_with("vector[") || t.starts_with("table[") => {
                FieldType::Str
            }
            _ => FieldType::Infer,
        }
    }
}

/// A file's header: column names and types, and what its header lines look like. Shared by
/// every chunk of the file (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Where the names come from.
    pub dialect: Dialect,
    /// The column of each field, in order, unique (ignoring ASCII case). For a W3C `date` /
    /// `time` pair, the `date` field's column is `ts`.
    pub names: Vec<String>,
    /// The type of each field (same length as `names`).
    pub types: Vec<FieldType>,
    /// The header line, without a byte order mark, whose repetitions are header lines too:
    /// the CSV/TSV first line, the Zeek `#fields` line, the W3C `#Fields:` line. `None` when
    /// the names come from `columns` alone.
    pub line: Option<Vec<u8>>,
    /// Zeek: the `#types` line, which must not change within the file either.
    pub types_line: Option<Vec<u8>>,
    /// Zeek: the field separator (`#separator`).
    pub separator: u8,
    /// The null marker (Zeek `#unset_field`, W3C `-`), if any.
    pub unset: Option<String>,
    /// The empty-string marker (Zeek `#empty_field`), if any.
    pub empty: Option<String>,
    /// W3C: the indexes of the `date` and `time` fields combined into `ts`.
    pub ts_fields: Option<(usize, usize)>,
    /// Whether records may have fewer fields (the missing ones are null) or more (named
    /// `extra_N`, or `column_N` when there are no names at all) than `names`: headerless
    /// files and CloudFront's built-in field list.
    pub lenient: bool,
}

impl Header {
    fn plain(names: Vec<String>, line: Option<Vec<u8>>) -> Header {
        let n = names.len();
        Header {
            dialect: Dialect::Plain,
            names: unique_names(names),
            types: vec![FieldType::Infer; n],
            line,
            types_line: None,
            separator: b'\t',
            unset: None,
            empty: None,
            ts_fields: None,
            lenient: false,
        }
    }

    /// Whether `line` is one of this header's lines (see [`LineParser::meta_line`]).
    fn meta(&self, line: &[u8]) -> std::result::Result<bool, String> {
        match self.dialect {
            Dialect::Plain => Ok(self.line.as_deref() == Some(strip_bom(line))),
            Dialect::Zeek | Dialect::W3c => {
                if line.first() != Some(&b'#') {
                    return Ok(false);
                }
                let (own, what) = if self.dialect == Dialect::Zeek && zeek_key(line, b"#fields") {
                    (&self.line, "#fields")
                } else if self.dialect == Dialect::Zeek && zeek_key(line, b"#types") {
                    (&self.types_line, "#types")
                } else if self.dialect == Dialect::W3c && w3c_key(line, b"#fields:") {
                    (&self.line, "#Fields:")
                } else {
                    return Ok(true);
                };
                match own {
                    Some(own) if trim_end(own) == trim_end(line) => Ok(true),
                    Some(own) => Err(format!(
                        "header differs from the file's first header: this {what} line names \
                         other columns than {:?}; split the input by header",
                        shorten(own)
                    )),
                    None => Ok(true),
                }
            }
        }
    }
}

fn shorten(b: &[u8]) -> String {
    String::from_utf8_lossy(b).chars().take(120).collect()
}

fn trim_end(b: &[u8]) -> &[u8] {
    let n = b.len()
        - b.iter()
            .rev()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
    &b[..n]
}

fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)
}

/// Whether a Zeek directive line starts with `key` followed by a separator or its end.
fn zeek_key(line: &[u8], key: &[u8]) -> bool {
    line.starts_with(key)
        && line
            .get(key.len())
            .is_none_or(|c| c.is_ascii_whitespace() || !c.is_ascii_alphanumeric() && *c != b'_')
}

/// Whether a W3C directive line starts with `key` (lower case, with its colon), any case.
fn w3c_key(line: &[u8], key: &[u8]) -> bool {
    line.len() >= key.len() && line[..key.len()].eq_ignore_ascii_case(key)
}

const ZEEK_DIRECTIVES: [&[u8]; 9] = [
    b"#separator",
    b"#set_separator",
    b"#empty_field",
    b"#unset_field",
    b"#path",
    b"#open",
    b"#fields",
    b"#types",
    b"#close",
];
const W3C_DIRECTIVES: [&[u8]; 7] = [
    b"#version:",
    b"#fields:",
    b"#software:",
    b"#date:",
    b"#start-date:",
    b"#end-date:",
    b"#remark:",
];

/// The dialect a file's first record announces, if it is a Zeek or W3C directive.
fn directive_dialect(line: &[u8]) -> Option<Dialect> {
    if line.first() != Some(&b'#') {
        return None;
    }
    if ZEEK_DIRECTIVES.iter().any(|k| zeek_key(line, k)) {
        Some(Dialect::Zeek)
    } else if W3C_DIRECTIVES.iter().any(|k| w3c_key(line, k)) {
        Some(Dialect::W3c)
    } else {
        None
    }
}

/// Normalises a W3C field identifier to a column name (see the module docs):
/// `cs(User-Agent)` → `cs_user_agent`.
pub fn w3c_column_name(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut gap = false;
    for c in field.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

/// Makes names unique ignoring ASCII case after sanitising (`a`, `a_2`, ...); empty names
/// become `column_N`.
fn unique_names(raw: Vec<String>) -> Vec<String> {
    let mut seen = HashSet::with_capacity(raw.len());
    let fold = |s: &str| sanitize_name(s).to_ascii_lowercase();
    raw.into_iter()
        .enumerate()
        .map(|(i, n)| {
            let n = n.trim().trim_start_matches('\u{feff}').trim().to_string();
            let base = if n.is_empty() {
                format!("column_{}", i + 1)
            } else {
                n
            };
            let mut name = base.clone();
            let mut k = 2;
            while !seen.insert(fold(&name)) {
                name = format!("{base}_{k}");
                k += 1;
            }
            name
        })
        .collect()
}

/// Zeek/W3C directives seen so far, before the first data record.
#[derive(Debug, Clone, Default)]
struct Directives {
    zeek: bool,
    separator: Option<u8>,
    unset: Option<String>,
    empty: Option<String>,
    fields: Option<Vec<u8>>,
    types: Option<Vec<u8>>,
}

impl Directives {
    fn feed(&mut self, line: &[u8]) {
        let line = trim_end(line);
        if self.zeek {
            if let Some(v) = line.strip_prefix(b"#separator ") {
                // One ASCII byte other than a newline: splitting text at a non-ASCII byte
                // could cut a character in two. Anything else keeps the default (tab).
                self.separator = zeek_unescape(v)
                    .filter(|s| s.len() == 1 && s[0].is_ascii() && s[0] != b'\n' && s[0] != b'\r')
                    .map(|s| s[0]);
                return;
            }
            let sep = self.separator.unwrap_or(b'\t');
            let value = |key: &[u8]| -> Option<Vec<u8>> {
                zeek_key(line, key)
                    .then(|| line.get(key.len() + 1..).unwrap_or_default().to_vec())
                    .filter(|_| line.get(key.len()).is_none_or(|c| *c == sep))
            };
            if let Some(v) = value(b"#unset_field") {
                self.unset = Some(String::from_utf8_lossy(&v).into_owned());
            } else if let Some(v) = value(b"#empty_field") {
                self.empty = Some(String::from_utf8_lossy(&v).into_owned());
            } else if zeek_key(line, b"#fields") {
                self.fields = Some(line.to_vec());
            } else if zeek_key(line, b"#types") {
                self.types = Some(line.to_vec());
            }
        } else if w3c_key(line, b"#fields:") {
            self.fields = Some(line.to_vec());
        }
    }

    fn finish(self, cloudfront: bool) -> Header {
        if self.zeek {
            let sep = self.separator.unwrap_or(b'\t');
            let after = |l: &Option<Vec<u8>>, key: usize| -> Vec<String> {
                l.as_deref()
                    .and_then(|l| l.get(key + 1..))
                    .map(|rest| {
                        rest.split(|c| *c == sep)
                            .map(|f| String::from_utf8_lossy(f).into_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let names = after(&self.fields, b"#fields".len());
            let tnames = after(&self.types, b"#types".len());
            let types = (0..names.len())
                .map(|i| {
                    tnames
                        .get(i)
                        .map_or(FieldType::Infer, |t| FieldType::from_zeek(t))
                })
                .collect();
            Header {
                dialect: Dialect::Zeek,
                lenient: names.is_empty(),
                names: unique_names(names),
                types,
                line: self.fields,
                types_line: self.types,
                separator: sep,
                unset: Some(self.unset.unwrap_or_else(|| ZEEK_UNSET.into())),
                empty: Some(self.empty.unwrap_or_else(|| ZEEK_EMPTY.into())),
                ts_fields: None,
            }
        } else {
            let fields: Vec<String> = match &self.fields {
                Some(l) => String::from_utf8_lossy(&l[b"#fields:".len()..])
                    .split_ascii_whitespace()
                    .map(str::to_string)
                    .collect(),
                None if cloudfront => CLOUDFRONT_FIELDS.iter().map(|s| s.to_string()).collect(),
                None => Vec::new(),
            };
            let mut h = w3c_header(&fields, cloudfront);
            h.lenient = self.fields.is_none() || h.names.is_empty();
            h.line = self.fields;
            h
        }
    }
}

/// Decodes Zeek's `\xHH` escapes (used by `#separator`).
fn zeek_unescape(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && v.get(i + 1) == Some(&b'x') {
            let hex = std::str::from_utf8(v.get(i + 2..i + 4)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 4;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Some(out)
}

/// CloudFront's standard log fields, in order, for files without a `#Fields:` directive.
pub const CLOUDFRONT_FIELDS: [&str; 33] = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
];

/// The type of a CloudFront field (by its normalised name): the documented numeric fields
/// are typed, everything else is a verbatim string (URL-encoded fields stay encoded).
fn cloudfront_type(name: &str) -> FieldType {
    match name {
        "sc_bytes"
        | "sc_status"
        | "cs_bytes"
        | "c_port"
        | "sc_content_len"
        | "sc_range_start"
        | "sc_range_end"
        | "fle_encrypted_fields" => FieldType::Int,
        "time_taken" | "time_to_first_byte" | "origin_fbl" | "origin_lbl" => FieldType::Float,
        _ => FieldType::Str,
    }
}

/// The header of W3C fields (raw identifiers, in order).
fn w3c_header(fields: &[String], cloudfront: bool) -> Header {
    let normal: Vec<String> = fields.iter().map(|f| w3c_column_name(f)).collect();
    let date = normal.iter().position(|n| n == "date");
    let time = normal.iter().position(|n| n == "time");
    let ts_fields = date.zip(time);
    let mut types: Vec<FieldType> = normal
        .iter()
        .map(|n| match cloudfront {
            true => cloudfront_type(n),
            false => FieldType::Infer,
        })
        .collect();
    let mut raw = normal;
    if let Some((d, t)) = ts_fields {
        types[d] = FieldType::Date;
        types[t] = FieldType::Time;
        raw[d] = "ts".into();
    }
    Header {
        dialect: Dialect::W3c,
        names: unique_names(raw),
        types,
        line: None,
        types_line: None,
        separator: b'\t',
        unset: Some(W3C_NULL.into()),
        empty: None,
        ts_fields,
        lenient: false,
    }
}

/// Reads the header of a `csv`, `tsv` or `cloudfront` file from its first bytes (whole
/// lines); `None` for other formats, for an empty head, and for headerless files without
/// `columns` (and CloudFront files without directives: the parser then uses
/// [`CLOUDFRONT_FIELDS`]). Errors only for invalid [`DelimitedOptions`].
pub fn read_header(opts: &ParseOptions, head: &[u8]) -> Result<Option<Header>> {
    let format = match opts.format {
        Some(f @ (Format::Csv | Format::Tsv | Format::Cloudfront)) => f,
        _ => return Ok(None),
    };
    let syntax = opts.delimited.syntax(format)?;
    let mut reader = HeaderReader::new(opts, format, syntax);
    let mut done = false;
    opts.framing().for_each_record(head, |_, rec, _| {
        if done || rec.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match reader.feed(rec) {
            Ok(true) => {}
            Ok(false) | Err(_) => done = true,
        }
    });
    Ok(reader.finish())
}

/// Builds a header from a file's first records; shared by [`read_header`] and the parser's
/// lazy path.
#[derive(Debug, Clone)]
struct HeaderReader {
    format: Format,
    syntax: Syntax,
    header_line: bool,
    columns: Vec<String>,
    /// Directives collected so far (Zeek, W3C).
    directives: Option<Directives>,
    header: Option<Header>,
    started: bool,
}

impl HeaderReader {
    fn new(opts: &ParseOptions, format: Format, syntax: Syntax) -> Self {
        HeaderReader {
            format,
            syntax,
            header_line: opts.delimited.header_line(),
            columns: opts.delimited.columns.clone(),
            directives: None,
            header: None,
            started: false,
        }
    }

    /// Feeds one non-blank record; `Ok(true)`: it was a header or directive line,
    /// `Ok(false)`: it was the first data record (the header, if any, is complete).
    fn feed(&mut self, rec: &[u8]) -> std::result::Result<bool, String> {
        if let Some(h) = &self.header {
            return h.meta(rec);
        }
        if let Some(d) = &mut self.directives {
            if rec.first() == Some(&b'#') {
                d.feed(rec);
                return Ok(true);
            }
            let d = self.directives.take().unwrap_or_default();
            self.header = Some(d.finish(self.format == Format::Cloudfront));
            return Ok(false);
        }
        if self.started {
            return Ok(false); // headerless
        }
        self.started = true;
        if self.format != Format::Csv {
            if let Some(dialect) = directive_dialect(rec) {
                let mut d = Directives {
                    zeek: dialect == Dialect::Zeek && self.format == Format::Tsv,
                    ..Directives::default()
                };
                d.feed(rec);
                self.directives = Some(d);
                return Ok(true);
            }
        }
        if self.format == Format::Cloudfront {
            self.header = Some(Directives::default().finish(true));
            return Ok(false);
        }
        let line = self.header_line.then(|| strip_bom(rec).to_vec());
        let names = if !self.columns.is_empty() {
            self.columns.clone()
        } else if self.header_line {
            header_names(rec, self.syntax)
        } else {
            return Ok(false);
        };
        self.header = Some(Header::plain(names, line));
        Ok(self.header_line)
    }

    /// The header so far: a header still in its directives is completed; a headerless file
    /// gives its `columns`, or `None`.
    fn finish(self) -> Option<Header> {
        if let Some(h) = self.header {
            return Some(h);
        }
        if let Some(d) = self.directives {
            return Some(d.finish(self.format == Format::Cloudfront));
        }
        (!self.columns.is_empty() && !self.header_line)
            .then(|| Header::plain(self.columns.clone(), None))
    }
}

/// The names of a header line (unquoted and unescaped; split naively if it does not split).
fn header_names(rec: &[u8], syntax: Syntax) -> Vec<String> {
    let rec = strip_bom(rec);
    let mut spans = Vec::new();
    let mut scratch = Vec::new();
    if split(rec, syntax, &mut spans).is_err() {
        return rec
            .split(|c| *c == syntax.delim)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect();
    }
    spans
        .iter()
        .map(|s| {
            let text = match s.escaped {
                true => {
                    unescape(&rec[s.start..s.end], s.quoted, syntax, &mut scratch);
                    &scratch[..]
                }
                false => &rec[s.start..s.end],
            };
            String::from_utf8_lossy(text).into_owned()
        })
        .collect()
}

/// One field of a record: `line[start..end]` (inside the quotes for a quoted field).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    quoted: bool,
    /// It holds `""` or escapes: its value must be unescaped.
    escaped: bool,
}

/// Splits a record into field spans (see the module docs).
fn split(line: &[u8], syn: Syntax, out: &mut Vec<Span>) -> std::result::Result<(), String> {
    out.clear();
    if syn.quote.is_none() && syn.escape.is_none() {
        let mut start = 0;
        for i in memchr::memchr_iter(syn.delim, line) {
            out.push(Span {
                start,
                end: i,
                quoted: false,
                escaped: false,
            });
            start = i + 1;
        }
        out.push(Span {
            start,
            end: line.len(),
            quoted: false,
            escaped: false,
        });
        return Ok(());
    }
    let mut pos = 0;
    loop {
        if let Some(q) = syn.quote.filter(|q| line.get(pos) == Some(q)) {
            let start = pos + 1;
            let mut i = start;
            let mut escaped = false;
            let close = loop {
                let found = match syn.escape {
                    Some(e) => memchr::memchr2(q, e, &line[i..]),
                    None => memchr::memchr(q, &line[i..]),
                };
                let Some(j) = found.map(|j| i + j) else {
                    return Err(format!(
                        "unterminated quoted field {} starting at byte {pos}",
                        out.len() + 1
                    ));
                };
                if Some(line[j]) == syn.escape || line.get(j + 1) == Some(&q) {
                    escaped = true;
                    i = (j + 2).min(line.len());
                    continue;
                }
                break j;
            };
            out.push(Span {
                start,
                end: close,
                quoted: true,
                escaped,
            });
            match line.get(close + 1) {
                None => return Ok(()),
                Some(&d) if d == syn.delim => pos = close + 2,
                Some(&c) => {
                    return Err(format!(
                        "unexpected {:?} after the closing quote of field {} at byte {}",
                        c as char,
                        out.len(),
                        close + 1
                    ))
                }
            }
        } else {
            let mut i = pos;
            let mut escaped = false;
            let end = loop {
                let found = match syn.escape {
                    Some(e) => memchr::memchr2(syn.delim, e, &line[i..]),
                    None => memchr::memchr(syn.delim, &line[i..]),
                };
                match found.map(|j| i + j) {
                    Some(j) if Some(line[j]) == syn.escape => {
                        escaped = true;
                        i = (j + 2).min(line.len());
                    }
                    Some(j) => break Some(j),
                    None => break None,
                }
            };
            out.push(Span {
                start: pos,
                end: end.unwrap_or(line.len()),
                quoted: false,
                escaped,
            });
            match end {
                Some(j) => pos = j + 1,
                None => return Ok(()),
            }
        }
    }
}

/// Unescapes a field's text (`""` inside quotes, and the escape character) into `out`.
fn unescape(text: &[u8], quoted: bool, syn: Syntax, out: &mut Vec<u8>) {
    out.clear();
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if Some(c) == syn.escape || (quoted && Some(c) == syn.quote) {
            if let Some(&next) = text.get(i + 1) {
                out.push(next);
                i += 2;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
}

/// Whether `b` has the shape of a JSON number (so `081109`, `+1`, `.5` and `1.` do not).
pub(crate) fn json_number_shape(b: &[u8]) -> bool {
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > s
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// `text` shortened for a reject reason.
pub(crate) fn shown(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Pushes a value of declared type `ty` whose text is `text` at `chunk[off..]`.
pub(crate) fn push_typed(
    rows: &mut RowsBuilder,
    name: &str,
    ty: FieldType,
    text: &str,
    off: usize,
) -> std::result::Result<(), String> {
    let bad = || {
        format!(
            "field {name:?}: {:?} is not a valid {}",
            shown(text),
            ty.what()
        )
    };
    match ty {
        FieldType::Infer => push_inferred(rows, name, text, off),
        FieldType::Str | FieldType::Date | FieldType::Time => {
            rows.push_raw_str(name, off, text.len())
        }
        FieldType::Int => match text.parse::<i64>() {
            Ok(v) => rows.push_int(name, v, off, text.len()),
            // An unsigned Zeek count beyond i64: kept verbatim (the column becomes a string).
            Err(_) if !text.is_empty() && text.bytes().all(|c| c.is_ascii_digit()) => {
                rows.push_raw_str(name, off, text.len())
            }
            Err(_) => return Err(bad()),
        },
        FieldType::Float => {
            if !json_number_shape(text.as_bytes()) {
                return Err(bad());
            }
            rows.push_number(name, text, off);
        }
        FieldType::Bool => {
            let v = match text {
                "T" | "true" => true,
                "F" | "false" => false,
                _ => return Err(bad()),
            };
            rows.push_bool(name, v, off, text.len());
        }
        FieldType::Epoch => {
            let micros = ts::parse_epoch(text.as_bytes()).ok_or_else(bad)?;
            rows.push_ts(name, micros, off, text.len());
        }
    }
    Ok(())
}

/// Types a value like a JSON scalar (see the module docs).
pub(crate) fn push_inferred(rows: &mut RowsBuilder, name: &str, text: &str, off: usize) {
    match text {
        "true" => rows.push_bool(name, true, off, 4),
        "false" => rows.push_bool(name, false, off, 5),
        _ if json_number_shape(text.as_bytes()) => rows.push_number(name, text, off),
        _ => rows.push_str(name, text, off),
    }
}

/// A W3C `date` (`YYYY-MM-DD`) and `time` (`HH:MM:SS[.f]`) as UTC microseconds.
pub(crate) fn w3c_ts(date: &[u8], time: &[u8]) -> Option<i64> {
    let mut buf = [0u8; 40];
    if date.len() != 10 || time.len() < 8 || date.len() + 1 + time.len() > buf.len() {
        return None;
    }
    buf[..10].copy_from_slice(date);
    buf[10] = b'T';
    buf[11..11 + time.len()].copy_from_slice(time);
    ts::parse_iso(&buf[..11 + time.len()])
}

/// The delimited-values parser (csv, tsv, and CloudFront through [`crate::aws`]).
pub struct DelimitedParser {
    syntax: Syntax,
    header: Option<Arc<Header>>,
    /// The lazy header reader, while the chunk has shown no header yet.
    reader: Option<HeaderReader>,
    max_columns: usize,
    spans: Vec<Span>,
    scratch: Vec<u8>,
    /// Names of fields beyond the header (`extra_N`, `column_N`), made once.
    extra_names: Vec<String>,
}

impl DelimitedParser {
    /// A parser for these options: with the file's header when `opts.prepared.header` has it,
    /// else deriving it from the chunk's first records.
    pub fn new(opts: &ParseOptions) -> Result<Self> {
        let format = match opts.format {
            Some(f @ (Format::Tsv | Format::Cloudfront)) => f,
            _ => Format::Csv,
        };
        let syntax = opts.delimited.syntax(format)?;
        let header = opts.prepared.header.clone();
        let reader = header
            .is_none()
            .then(|| HeaderReader::new(opts, format, syntax));
        Ok(DelimitedParser {
            syntax,
            header,
            reader,
            max_columns: opts.limits.max_columns,
            spans: Vec::new(),
            scratch: Vec::new(),
            extra_names: Vec::new(),
        })
    }
}

impl LineParser for DelimitedParser {
    fn meta_line(&mut self, line: &[u8]) -> std::result::Result<bool, String> {
        if let Some(h) = &self.header {
            return h.meta(line);
        }
        let Some(reader) = &mut self.reader else {
            return Ok(false);
        };
        let outcome = reader.feed(line);
        if reader.header.is_some() {
            self.header = reader.header.take().map(Arc::new);
            self.reader = None;
        }
        outcome
    }

    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
    ) -> std::result::Result<(), String> {
        let text = crate::utf8(line)?;
        // Taken out and put back, not cloned: the file's header is shared by the parsers of
        // all its chunks, and an `Arc` clone per record is an atomic add on a counter whose
        // cache line then bounces between the parse threads' cores.
        let header = self.header.take();
        let outcome = self.parse_fields(text, line, base, rows, header.as_deref());
        self.header = header;
        outcome
    }
}

impl DelimitedParser {
    /// [`LineParser::parse_line`] for a record that is valid UTF-8, under `header`.
    fn parse_fields(
        &mut self,
        text: &str,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
        header: Option<&Header>,
    ) -> std::result::Result<(), String> {
        let syntax = match header.map(|h| h.dialect) {
            Some(Dialect::Zeek) | Some(Dialect::W3c) => Syntax {
                delim: match header {
                    Some(h) if h.dialect == Dialect::Zeek => h.separator,
                    // W3C: CloudFront separates with tabs, IIS with spaces.
                    _ if memchr::memchr(b'\t', line).is_some() => b'\t',
                    _ => b' ',
                },
                quote: None,
                escape: None,
            },
            _ => self.syntax,
        };
        split(line, syntax, &mut self.spans)?;
        let found = self.spans.len();
        if found > self.max_columns {
            return Err(format!(
                "record has {found} fields, more than max_columns ({})",
                self.max_columns
            ));
        }
        let (names, types, lenient, unset, empty, ts_fields) = match header {
            Some(h) => (
                &h.names[..],
                &h.types[..],
                h.lenient,
                h.unset.as_deref(),
                h.empty.as_deref(),
                h.ts_fields,
            ),
            None => (&[][..], &[][..], true, None, None, None),
        };
        if !lenient && found != names.len() {
            return Err(format!("expected {} fields, found {found}", names.len()));
        }
        let spans = std::mem::take(&mut self.spans);
        // Names for fields beyond the header, made once per parser (not per record).
        let prefix = if names.is_empty() {
            "column_"
        } else {
            "extra_"
        };
        for k in self.extra_names.len()..found.saturating_sub(names.len()) {
            self.extra_names.push(format!("{prefix}{}", k + 1));
        }
        let extra_names = std::mem::take(&mut self.extra_names);
        let result = (|| {
            for (i, s) in spans.iter().enumerate() {
                let Some(value) = text.get(s.start..s.end) else {
                    return Err(format!("field {} splits a UTF-8 character", i + 1));
                };
                let off = base + s.start;
                let Some(name) = names.get(i) else {
                    let name = extra_names.get(i - names.len()).map_or("", String::as_str);
                    if value.is_empty() && !s.quoted || Some(value) == unset {
                        rows.push_null(name);
                    } else if s.escaped {
                        unescape(value.as_bytes(), s.quoted, syntax, &mut self.scratch);
                        let v = std::str::from_utf8(&self.scratch)
                            .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
                        rows.push_owned_str(name, v);
                    } else {
                        push_inferred(rows, name, value, off);
                    }
                    continue;
                };
                let ty = types.get(i).copied().unwrap_or(FieldType::Infer);
                if ty == FieldType::Time {
                    continue;
                }
                if ty == FieldType::Date {
                    let t = ts_fields.and_then(|(_, t)| spans.get(t));
                    let tv = t.map_or("-", |t| &text[t.start..t.end]);
                    if value == W3C_NULL || tv == W3C_NULL {
                        rows.push_null(name);
                        continue;
                    }
                    let micros = w3c_ts(value.as_bytes(), tv.as_bytes()).ok_or_else(|| {
                        format!("invalid date and time {:?} {:?}", shown(value), shown(tv))
                    })?;
                    // The span covers both fields when they are adjacent.
                    let len = match t {
                        Some(t) if t.start == s.end + 1 => t.end - s.start,
                        _ => value.len(),
                    };
                    rows.push_ts(name, micros, off, len);
                    continue;
                }
                if (value.is_empty() && !s.quoted) || Some(value) == unset {
                    rows.push_null(name);
                } else if Some(value) == empty {
                    rows.push_raw_str(name, off, 0);
                } else if s.escaped {
                    unescape(value.as_bytes(), s.quoted, syntax, &mut self.scratch);
                    let v = std::str::from_utf8(&self.scratch)
                        .map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()))?;
                    rows.push_owned_str(name, v);
                } else {
                    push_typed(rows, name, ty, value, off)?;
                }
            }
            // Lenient headers: fields missing at the end are null, so the schema is stable.
            for (i, name) in names.iter().enumerate().skip(found) {
                if types.get(i) != Some(&FieldType::Time) {
                    rows.push_null(name);
                }
            }
            Ok(())
        })();
        self.spans = spans;
        self.extra_names = extra_names;
        result
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{parse_all, parse_chunk, ParsedChunk};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::{Array, RecordBatch};
    use arrow_schema::DataType;
    use proptest::prelude::*;

    pub(crate) fn strs(b: &RecordBatch, name: &str) -> Vec<Option<String>> {
        let c = b.column_by_name(name).unwrap_or_else(|| {
            panic!("no column {name} in {:?}", b.schema());
        });
        let c = c.as_string::<i32>();
        (0..c.len())
            .map(|i| (!c.is_null(i)).then(|| c.value(i).to_string()))
            .collect()
    }

    pub(crate) fn ints(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        let c = b.column_by_name(name).unwrap();
        let c = c.as_primitive::<Int64Type>();
        (0..c.len())
            .map(|i| (!c.is_null(i)).then(|| c.value(i)))
            .collect()
    }

    pub(crate) fn micros(b: &RecordBatch, name: &str) -> Vec<Option<i64>> {
        let c = b.column_by_name(name).unwrap();
        let c = c.as_primitive::<TimestampMicrosecondType>();
        (0..c.len())
            .map(|i| (!c.is_null(i)).then(|| c.value(i)))
            .collect()
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    fn csv(text: &str) -> ParsedChunk {
        parse_all(&ParseOptions::new(Format::Csv), text.as_bytes()).unwrap()
    }

    fn reasons(p: &ParsedChunk) -> Vec<(u64, String)> {
        p.rejects
            .iter()
            .map(|r| (r.line, r.reason.clone()))
            .collect()
    }

    #[test]
    fn csv_quotes_doubled_quotes_newlines_and_delimiters() {
        let p = csv(concat!(
            "name,note,n\r\n",
            "plain,\"a, b\",1\r\n",
            "\"q\"\"uote\",\"two\nlines\",2\n",
            "\"\",,3\n",
            "\"x\",\"\"\"\",4",
        ));
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!((p.lines, p.records, p.meta_lines), (6, 4, 1));
        let b = &p.batch;
        assert_eq!(strs(b, "name"), [s("plain"), s("q\"uote"), s(""), s("x")]);
        assert_eq!(strs(b, "note"), [s("a, b"), s("two\nlines"), None, s("\"")]);
        assert_eq!(ints(b, "n"), [Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn csv_typing_and_nulls() {
        let p = csv(concat!(
            "zip,int,float,flag,when,big,mixed\n",
            "02134,-7,1.5e3,true,2024-01-02T03:04:05Z,99999999999999999999,1\n",
            "10001,\"8\",-0.25,false,2024-01-02 03:04:05.5,1,x\n",
        ));
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        let schema = b.schema();
        let dt = |n: &str| schema.field_with_name(n).unwrap().data_type().clone();
        assert_eq!(dt("zip"), DataType::Utf8, "leading zeros stay strings");
        assert_eq!(strs(b, "zip"), [s("02134"), s("10001")]);
        assert_eq!(
            ints(b, "int"),
            [Some(-7), Some(8)],
            "quoted numbers are typed"
        );
        let f = b.column_by_name("float").unwrap();
        assert_eq!(f.as_primitive::<Float64Type>().values(), &[1500.0, -0.25]);
        assert_eq!(dt("flag"), DataType::Boolean);
        assert!(matches!(dt("when"), DataType::Timestamp(..)));
        assert_eq!(
            micros(b, "when")[1],
            Some(1_704_164_645_500_000),
            "ISO with a space and fraction"
        );
        assert_eq!(strs(b, "big")[0], s("99999999999999999999"));
        assert_eq!(
            strs(b, "mixed"),
            [s("1"), s("x")],
            "verbatim after widening"
        );
    }

    #[test]
    fn csv_header_repeated_in_a_concatenation_is_meta() {
        let p = csv("a,b\n1,2\na,b\n3,4\n");
        assert!(p.rejects.is_empty());
        assert_eq!((p.lines, p.records, p.meta_lines), (4, 2, 2));
        assert_eq!(ints(&p.batch, "a"), [Some(1), Some(3)]);
        // With a byte order mark on the first header only.
        let p = csv("\u{feff}a,b\n1,2\na,b\n");
        assert_eq!((p.batch.num_rows(), p.meta_lines), (1, 2));
        assert_eq!(p.batch.schema().field(0).name(), "a");
    }

    #[test]
    fn csv_bad_records_are_rejected_with_reasons() {
        let mut bytes = b"a,b\n1,2\n1,2,3\n1\n\"x\"y,2\n1,2,\n".to_vec();
        bytes.extend_from_slice(b"\xff,1\n\n7,8\n");
        let p = parse_all(&ParseOptions::new(Format::Csv), &bytes).unwrap();
        assert_eq!(p.batch.num_rows(), 2);
        assert_eq!(ints(&p.batch, "a"), [Some(1), Some(7)]);
        assert_eq!(
            reasons(&p),
            [
                (3, "expected 2 fields, found 3".to_string()),
                (4, "expected 2 fields, found 1".to_string()),
                (
                    5,
                    "unexpected 'y' after the closing quote of field 1 at byte 3".to_string()
                ),
                (6, "expected 2 fields, found 3".to_string()),
                (7, "invalid UTF-8 at byte 0".to_string()),
                (8, "blank line".to_string()),
            ]
        );
        assert_eq!(
            p.records,
            p.batch.num_rows() as u64 + p.rejects.len() as u64
        );
    }

    #[test]
    fn csv_open_quote_swallows_to_the_end_and_is_rejected() {
        // The framing keeps a record open while a quote is open: at the end of the chunk the
        // record is what is left, and it is rejected as a whole (4 lines, one reject).
        let p = csv("a,b\n1,\"x\n2,3\n4,5\n");
        assert_eq!((p.lines, p.records, p.batch.num_rows()), (4, 1, 0));
        assert_eq!(
            reasons(&p),
            [(2, "unterminated quoted field 2 starting at byte 2".into())]
        );
    }

    #[test]
    fn header_names_are_made_unique_and_never_empty() {
        let p = csv("a,A,,a_2,a,\"x y\"\n1,2,3,4,5,6\n");
        let schema = p.batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["a", "A_2", "column_3", "a_2_2", "a_3", "x_y"]);
        assert_eq!(p.batch.num_rows(), 1);
    }

    #[test]
    fn escape_option_and_custom_delimiter() {
        let mut opts = ParseOptions::new(Format::Csv);
        opts.delimited.delimiter = Some(';');
        opts.delimited.escape = Some('\\');
        let p = parse_all(&opts, b"a;b\nx\\;y;\"q\\\"\"\"z\"\n").unwrap();
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(strs(&p.batch, "a"), [s("x;y")]);
        assert_eq!(strs(&p.batch, "b"), [s("q\"\"z")]);
    }

    #[test]
    fn columns_option_and_headerless_files() {
        let mut opts = ParseOptions::new(Format::Csv);
        opts.delimited.columns = vec!["x".into(), "y".into()];
        let p = parse_all(&opts, b"1,2\n3,4\n5\n").unwrap();
        assert_eq!(ints(&p.batch, "x"), [Some(1), Some(3)]);
        assert_eq!(reasons(&p), [(3, "expected 2 fields, found 1".into())]);
        // Renaming a header line.
        opts.delimited.has_header = Some(true);
        let (o, _) = opts.for_file(b"a,b\n1,2\n").unwrap();
        let p = parse_chunk(&o, b"a,b\n1,2\n", 1).unwrap();
        assert_eq!((ints(&p.batch, "y"), p.meta_lines), (vec![Some(2)], 1));
        // No header at all: column_N, any number of fields.
        let mut opts = ParseOptions::new(Format::Tsv);
        opts.delimited.has_header = Some(false);
        let (o, _) = opts.for_file(b"1\t2\n").unwrap();
        assert!(o.prepared.header.is_none());
        let p = parse_chunk(&o, b"1\t2\n3\t4\t5\n", 1).unwrap();
        assert!(p.rejects.is_empty());
        assert_eq!(ints(&p.batch, "column_3"), [None, Some(5)]);
    }

    #[test]
    fn options_are_checked_and_deserialized_strictly() {
        let mut opts = ParseOptions::new(Format::Csv);
        opts.delimited.delimiter = Some('→');
        assert!(matches!(
            opts.for_file(b"a\n"),
            Err(FormatError::InvalidOption(_))
        ));
        opts.delimited.delimiter = Some('"');
        assert!(DelimitedParser::new(&opts).is_err());
        let o: DelimitedOptions =
            serde_json::from_str(r#"{"delimiter":";","escape":"\\","columns":["a"]}"#).unwrap();
        assert_eq!(o.delimiter, Some(';'));
        assert!(!o.header_line());
        assert!(serde_json::from_str::<DelimitedOptions>(r#"{"delimeter":";"}"#).is_err());
        assert!(DelimitedOptions::default().header_line());
    }

    #[test]
    fn plain_tsv_without_quoting() {
        let p = parse_all(&ParseOptions::new(Format::Tsv), b"a\tb\n\"x\t1\n\t2.5\n").unwrap();
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(strs(&p.batch, "a"), [s("\"x"), None]);
    }

    const ZEEK: &str = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tdemo\n#open\t2024-04-12-19-29-12\n#fields\tts\tuid\tid.orig_p\tok\tdur\tnames\tnote\n#types\ttime\tstring\tport\tbool\tinterval\tset[string]\tstring\n";

    #[test]
    fn zeek_types_sets_unset_and_empty() {
        let text = format!(
            "{ZEEK}1521911721.123456\tC1\t80\tT\t0.5\ta,b\t(empty)\n1521911722.5\tC2\t-\tF\t-\t(empty)\t-\n#close\t2024-04-12-19-34-07\n"
        );
        let p = parse_all(&ParseOptions::new(Format::Tsv), text.as_bytes()).unwrap();
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!((p.lines, p.meta_lines, p.records), (11, 9, 2));
        let b = &p.batch;
        assert_eq!(
            micros(b, "ts"),
            [Some(1_521_911_721_123_456), Some(1_521_911_722_500_000)]
        );
        assert_eq!(ints(b, "id.orig_p"), [Some(80), None]);
        let ok = b.column_by_name("ok").unwrap().as_boolean().clone();
        assert_eq!((ok.value(0), ok.value(1)), (true, false));
        assert_eq!(strs(b, "names"), [s("a,b"), s("")]);
        assert_eq!(strs(b, "note"), [s(""), None]);
        let dur = b.column_by_name("dur").unwrap();
        assert_eq!(dur.data_type(), &DataType::Float64);
        assert!(dur.is_null(1));
        // The header read up front gives the same result, also over two chunks.
        let (opts, _) = ParseOptions::new(Format::Tsv)
            .for_file(text.as_bytes())
            .unwrap();
        let h = opts.prepared.header.as_deref().unwrap();
        assert_eq!(h.dialect, Dialect::Zeek);
        assert_eq!(h.types[0], FieldType::Epoch);
        let cut = text.find("1521911722").unwrap();
        let a = parse_chunk(&opts, &text.as_bytes()[..cut], 1).unwrap();
        let c = parse_chunk(&opts, &text.as_bytes()[cut..], 10).unwrap();
        assert_eq!((a.batch.num_rows(), c.batch.num_rows()), (1, 1));
        assert_eq!(c.meta_lines, 1);
        let note = c.batch.column_by_name("note").unwrap();
        assert_eq!(note.data_type(), &DataType::Null);
        assert_eq!(strs(&c.batch, "names"), [s("")]);
    }

    #[test]
    fn a_non_ascii_zeek_separator_is_ignored() {
        // `\xa9` would split `é` (c3 a9) in two.
        let text = "#separator \\xa9\n#fields\ta\tb\né\tx\n";
        for format in [Format::Tsv, Format::Auto] {
            let opts = ParseOptions::new(format);
            let (opts, _) = opts.for_file(text.as_bytes()).unwrap();
            let p = crate::parse_chunk(&opts, text.as_bytes(), 1).unwrap();
            assert_eq!(
                p.records,
                p.batch.num_rows() as u64 + p.rejects.len() as u64
            );
        }
        let (opts, _) = ParseOptions::new(Format::Tsv)
            .for_file(text.as_bytes())
            .unwrap();
        let p = crate::parse_chunk(&opts, text.as_bytes(), 1).unwrap();
        assert_eq!((p.batch.num_rows(), p.meta_lines), (1, 2));
        assert_eq!(strs(&p.batch, "a"), [Some("é".to_string())]);
    }

    #[test]
    fn zeek_bad_values_and_a_differing_header_are_rejected() {
        let text = format!(
            "{ZEEK}x\tC1\t80\tT\t0.5\t-\t-\n1.5\tC1\t80\t1\t0.5\t-\t-\n1521911721.1\tC1\t80\tT\t.5\t-\t-\n#fields\tts\tother\n#types\ttime\tstring\n1521911721.1\tC1\t80\tT\t1\t-\t-\n"
        );
        let p = parse_all(&ParseOptions::new(Format::Tsv), text.as_bytes()).unwrap();
        let r = reasons(&p);
        assert_eq!(
            r[0],
            (9, "field \"ts\": \"x\" is not a valid epoch time".into())
        );
        assert_eq!(
            r[1],
            (10, "field \"ts\": \"1.5\" is not a valid epoch time".into())
        );
        assert_eq!(
            r[2],
            (11, "field \"dur\": \".5\" is not a valid float".into())
        );
        assert_eq!(r[3].0, 12);
        assert!(r[3]
            .1
            .starts_with("header differs from the file's first header"));
        assert_eq!(r[4].0, 13);
        assert_eq!(r.len(), 5);
        assert_eq!(p.batch.num_rows(), 1);
    }

    #[test]
    fn w3c_iis_with_spaces() {
        let text = "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2024-01-01 00:00:00\n#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs(User-Agent) sc-status time-taken\n2024-01-01 00:00:01 10.0.0.1 GET /index.html - 443 Mozilla/5.0+(Windows+NT+10.0) 200 15\n2024-01-01 00:00:02 10.0.0.1 GET /a q=1 443 - 404 3\n";
        let p = parse_all(&ParseOptions::new(Format::Tsv), text.as_bytes()).unwrap();
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(p.meta_lines, 4);
        let b = &p.batch;
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "ts",
                "s_ip",
                "cs_method",
                "cs_uri_stem",
                "cs_uri_query",
                "s_port",
                "cs_user_agent",
                "sc_status",
                "time_taken"
            ]
        );
        assert_eq!(micros(b, "ts")[1], Some(1_704_067_202_000_000));
        assert_eq!(strs(b, "cs_uri_query"), [None, s("q=1")]);
        assert_eq!(ints(b, "sc_status"), [Some(200), Some(404)]);
    }

    #[test]
    fn json_number_shapes() {
        for ok in ["0", "-0", "12", "-1.5", "1e9", "1.5E-3", "0.000"] {
            assert!(json_number_shape(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "", "-", "081109", "+1", ".5", "1.", "1e", "0x1", "1 ", "NaN", "--1",
        ] {
            assert!(!json_number_shape(bad.as_bytes()), "{bad}");
        }
    }

    /// Renders a CSV field, quoting when needed (or at random).
    fn render_csv(v: &Option<String>, force_quote: bool) -> String {
        match v {
            None => String::new(),
            Some(v)
                if force_quote
                    || v.is_empty()
                    || v.contains([',', '"', '\n', '\r'])
                    || v.starts_with(' ') =>
            {
                format!("\"{}\"", v.replace('"', "\"\""))
            }
            Some(v) => v.clone(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random rows -> RFC 4180 text -> parse (one chunk, and two chunks cut at a record
        /// boundary with the file's header) -> the columns hold exactly those values.
        #[test]
        fn csv_round_trip(
            rows in prop::collection::vec(
                (
                    prop::option::of("[a-eg-su-zA-Z][a-zA-Z0-9 ,\"\né;]{0,12}|"),
                    any::<i64>(),
                    any::<bool>(),
                ),
                1..20,
            ),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut text = String::from("text,num\n");
            let mut offsets = Vec::new();
            for (v, n, q) in &rows {
                offsets.push(text.len());
                text.push_str(&render_csv(v, *q));
                text.push(',');
                text.push_str(&n.to_string());
                text.push_str(if *q { "\r\n" } else { "\n" });
            }
            let want_text: Vec<Option<String>> = rows.iter().map(|r| r.0.clone()).collect();
            let want_num: Vec<Option<i64>> = rows.iter().map(|r| Some(r.1)).collect();
            let p = csv(&text);
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            let got = if want_text.iter().all(Option::is_none) {
                vec![None; rows.len()]
            } else {
                strs(&p.batch, "text")
            };
            prop_assert_eq!(&got, &want_text);
            prop_assert_eq!(ints(&p.batch, "num"), want_num.clone());
            // Two chunks with the header read up front.
            let (opts, _) = ParseOptions::new(Format::Csv).for_file(text.as_bytes()).unwrap();
            let at = offsets[cut.index(offsets.len())];
            let first = parse_chunk(&opts, &text.as_bytes()[..at], 1).unwrap();
            let second = parse_chunk(&opts, &text.as_bytes()[at..], 1 + first.lines).unwrap();
            prop_assert_eq!(first.batch.num_rows() + second.batch.num_rows(), rows.len());
            prop_assert_eq!(first.meta_lines + second.meta_lines, 1);
            let mut nums = Vec::new();
            for c in [&first, &second] {
                if c.batch.num_rows() > 0 {
                    nums.extend(ints(&c.batch, "num"));
                }
            }
            prop_assert_eq!(nums, want_num);
        }

        /// Arbitrary bytes (biased to the syntax's special characters) never panic, in any
        /// of the formats this module and `aws` serve, and every record is accounted for.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(
                prop::sample::select(b"ab1-\",\t \n\r#[]:.\\\xff\xc3".to_vec()),
                0..200,
            ),
            prefix in prop::sample::select(vec![
                "", "a,b\n", "#separator \\x09\n#fields\ta\tb\n#types\tcount\ttime\n",
                "#Version: 1.0\n#Fields: date time c-ip\n",
            ]),
        ) {
            let mut input = prefix.as_bytes().to_vec();
            input.extend_from_slice(&bytes);
            for format in [Format::Csv, Format::Tsv, Format::Cloudfront, Format::Alb, Format::Elb, Format::S3] {
                let mut o = ParseOptions::new(format);
                o.delimited.escape = Some('\\');
                for opts in [ParseOptions::new(format), o] {
                    let (opts, _) = opts.for_file(&input).unwrap();
                    let p = parse_chunk(&opts, &input, 1).unwrap();
                    prop_assert_eq!(p.records, p.batch.num_rows() as u64 + p.rejects.len() as u64);
                    let p = parse_all(&ParseOptions::new(format), &input).unwrap();
                    prop_assert_eq!(p.lines, crate::count_lines(&input));
                }
            }
        }

        /// Random typed Zeek rows -> Zeek text -> parse -> the same values.
        #[test]
        fn zeek_round_trip(
            rows in prop::collection::vec(
                (
                    1_000_000_000i64..4_000_000_000,
                    0u32..1_000_000,
                    prop::option::of(0u16..),
                    prop::option::of(any::<bool>()),
                    prop::option::of("[a-z]{1,6}|"),
                    prop::option::of(prop::collection::vec("[a-z]{1,4}", 0..3)),
                    prop::option::of(-1.0e6f64..1.0e6),
                ),
                1..20,
            ),
        ) {
            let mut text = ZEEK.to_string();
            text = text.replace(
                "#fields\tts\tuid\tid.orig_p\tok\tdur\tnames\tnote\n#types\ttime\tstring\tport\tbool\tinterval\tset[string]\tstring\n",
                "#fields\tts\tid.orig_p\tok\tnote\tnames\tdur\n#types\ttime\tport\tbool\tstring\tset[string]\tdouble\n",
            );
            for (secs, frac, port, ok, note, set, dur) in &rows {
                let opt = |o: Option<String>| o.unwrap_or_else(|| "-".into());
                let empty = |v: &str| if v.is_empty() { "(empty)".to_string() } else { v.to_string() };
                text.push_str(&format!(
                    "{secs}.{frac:06}\t{}\t{}\t{}\t{}\t{}\n",
                    opt(port.map(|p| p.to_string())),
                    opt(ok.map(|b| if b { "T".into() } else { "F".into() })),
                    opt(note.as_deref().map(empty)),
                    opt(set.as_ref().map(|s| empty(&s.join(",")))),
                    opt(dur.map(|d| format!("{d:.6}"))),
                ));
            }
            let p = parse_all(&ParseOptions::new(Format::Tsv), text.as_bytes()).unwrap();
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            let b = &p.batch;
            let want_ts: Vec<Option<i64>> =
                rows.iter().map(|r| Some(r.0 * 1_000_000 + i64::from(r.1))).collect();
            prop_assert_eq!(micros(b, "ts"), want_ts);
            if rows.iter().any(|r| r.2.is_some()) {
                let want: Vec<Option<i64>> = rows.iter().map(|r| r.2.map(i64::from)).collect();
                prop_assert_eq!(ints(b, "id.orig_p"), want);
            }
            if rows.iter().any(|r| r.4.is_some()) {
                prop_assert_eq!(strs(b, "note"), rows.iter().map(|r| r.4.clone()).collect::<Vec<_>>());
            }
            if rows.iter().any(|r| r.5.is_some()) {
                let want: Vec<Option<String>> =
                    rows.iter().map(|r| r.5.as_ref().map(|s| s.join(","))).collect();
                prop_assert_eq!(strs(b, "names"), want);
            }
            if rows.iter().any(|r| r.3.is_some()) {
                let c = b.column_by_name("ok").unwrap().as_boolean().clone();
                let got: Vec<Option<bool>> = (0..c.len()).map(|i| (!c.is_null(i)).then(|| c.value(i))).collect();
                prop_assert_eq!(got, rows.iter().map(|r| r.3).collect::<Vec<_>>());
            }
            if rows.iter().any(|r| r.6.is_some()) {
                let c = b.column_by_name("dur").unwrap();
                let c = arrow_cast::cast(c, &DataType::Float64).unwrap();
                let c = c.as_primitive::<Float64Type>();
                for (i, r) in rows.iter().enumerate() {
                    let want = r.6.map(|d| format!("{d:.6}").parse::<f64>().unwrap());
                    prop_assert_eq!((!c.is_null(i)).then(|| c.value(i)), want);
                }
            }
        }
    }
}
