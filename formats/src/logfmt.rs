//! logfmt: `key=value key2="quoted \" value" flag` pairs, one record per line (Heroku, Go's
//! `go-kit/log` and `logrus`, Grafana, Loki).
//!
//! # Why
//! logfmt is the plain-text format of many Go services. There is no formal specification;
//! this parser follows the de-facto one of `go-logfmt/logfmt` and `kr/logfmt`, lenient where
//! real logs need it. It is hand-written: one pass over the line, `memchr` for quoted values,
//! and no allocation unless a quoted value holds escapes.
//!
//! # Algorithm
//! Pairs are separated by whitespace (any byte up to `' '`). A key runs to `=`, whitespace or
//! the end of the line; it may not be empty nor contain `"`. After `=` comes a quoted value
//! (to the next unescaped `"`, which must be followed by whitespace or the end of the line),
//! or a bare value (to the next whitespace; `=` and `"` inside are kept, unlike go-logfmt,
//! which refuses them, so that `path=/a?b=c` is not lost).
//!
//! ```text
//! t=2022-04-05T07:04:43+0000 lvl=info msg="Config loaded" logger=settings ok port=3000 uname=
//!   └timestamp                   └string                         └string          └int
//!                                          └string (quotes removed)        └key: bool true   └null
//! ```
//!
//! # Columns
//! One column per key, named by the key (the builder sanitises names), in order of first
//! appearance. Values are typed like JSON scalars:
//!
//! | value | kind |
//! |---|---|
//! | bare `true` / `false` | bool |
//! | bare number in JSON syntax (`42`, `-1.5`, `2e3`; not `007`, `+1`, `.5`) | int (fits i64) or float; larger integers keep their text |
//! | bare or quoted ISO 8601 timestamp (`2022-04-05T07:04:43+0000`) | timestamp (UTC) |
//! | bare key with no `=` (`flag`) | bool `true` (go-logfmt's and Loki's reading) |
//! | `key=` (nothing after `=`) | null: an unquoted empty value has no type, so a typed column stays typed |
//! | `key=""` | empty string |
//! | anything else, and every other quoted value (`"42"` stays a string) | string |
//!
//! Quoted values are unescaped like JSON strings (`\"`, `\\`, `\/`, `\n`, `\t`, `\r`, `\b`,
//! `\f`, `\uXXXX` with surrogate pairs; a lone surrogate becomes U+FFFD); any other backslash
//! is kept as written. A bare `null` is the string `null`: logfmt has no null literal, and a
//! user or host named `null` must survive.
//!
//! # Rejected lines
//! Invalid UTF-8; an empty key (`=x`) or a `"` in a key; an unterminated quoted value; a quoted
//! value followed by something other than whitespace; a line without any `key=value` pair
//! (free text would otherwise become one boolean column per word); and, through the builder,
//! a key repeated in a line (`duplicate field`: the builder's rule for every format, which
//! also folds ASCII case, so `a=1 A=2` is a duplicate).

use crate::builder::RowsBuilder;
use crate::{LineParser, ParseOptions};

/// The logfmt parser. Keeps only a reusable unescape buffer between lines.
pub struct LogfmtParser {
    value: String,
}

impl LogfmtParser {
    /// A parser for these options (logfmt has none of its own).
    pub fn new(_opts: &ParseOptions) -> Self {
        LogfmtParser {
            value: String::new(),
        }
    }
}

/// Whether `c` separates pairs (go-logfmt: any byte up to the space).
fn is_space(c: u8) -> bool {
    c <= b' '
}

impl LineParser for LogfmtParser {
    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        let s = crate::utf8(line)?;
        let b = s.as_bytes();
        let mut pos = 0;
        let mut pairs = 0usize;
        loop {
            while pos < b.len() && is_space(b[pos]) {
                pos += 1;
            }
            if pos >= b.len() {
                break;
            }
            let k0 = pos;
            while pos < b.len() && !is_space(b[pos]) && b[pos] != b'=' && b[pos] != b'"' {
                pos += 1;
            }
            if pos == k0 {
                return Err(format!(
                    "expected a key at byte {pos}, found {:?}",
                    b[pos] as char
                ));
            }
            let key = sub(s, k0, pos);
            match b.get(pos) {
                Some(b'=') => pos += 1,
                Some(b'"') => return Err(format!("unexpected '\"' in key {key:?} at byte {pos}")),
                _ => {
                    rows.push_bool(key, true, base + k0, pos - k0);
                    continue;
                }
            }
            pairs += 1;
            match b.get(pos) {
                None => rows.push_null(key),
                Some(&c) if is_space(c) => rows.push_null(key),
                Some(b'"') => {
                    let v0 = pos + 1;
                    let mut i = v0;
                    let mut escaped = false;
                    let v1 = loop {
                        match memchr::memchr2(b'"', b'\\', &b[i.min(b.len())..]) {
                            Some(k) if b[i + k] == b'"' => break i + k,
                            Some(k) => {
                                escaped = true;
                                i += k + 2;
                            }
                            None => {
                                return Err(format!(
                                    "unterminated quoted value of {key:?} at byte {v0}"
                                ))
                            }
                        }
                    };
                    pos = v1 + 1;
                    if pos < b.len() && !is_space(b[pos]) {
                        return Err(format!(
                            "expected a space after the quoted value of {key:?} at byte {pos}"
                        ));
                    }
                    let raw = sub(s, v0, v1);
                    if escaped {
                        unescape(raw, &mut self.value);
                        rows.push_owned_str(key, &self.value);
                    } else {
                        rows.push_str(key, raw, base + v0);
                    }
                }
                Some(_) => {
                    let v0 = pos;
                    while pos < b.len() && !is_space(b[pos]) {
                        pos += 1;
                    }
                    let v = sub(s, v0, pos);
                    match v {
                        "true" => rows.push_bool(key, true, base + v0, 4),
                        "false" => rows.push_bool(key, false, base + v0, 5),
                        _ if is_json_number(v.as_bytes()) => rows.push_number(key, v, base + v0),
                        _ => rows.push_str(key, v, base + v0),
                    }
                }
            }
        }
        if pairs == 0 {
            return Err("not logfmt: no key=value pair".into());
        }
        Ok(())
    }
}

/// `s[a..e]`; never panics (spans are cut at ASCII bytes, so they are boundaries).
fn sub(s: &str, a: usize, e: usize) -> &str {
    s.get(a..e).unwrap_or("")
}

/// JSON number syntax: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_json_number(b: &[u8]) -> bool {
    let digits = |b: &[u8], i: usize| {
        b[i.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i += digits(b, i),
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        let n = digits(b, i + 1);
        if n == 0 {
            return false;
        }
        i += 1 + n;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(b, i);
        if n == 0 {
            return false;
        }
        i += n;
    }
    i == b.len()
}

/// Four hex digits at the start of `b`.
fn hex4(b: &[u8]) -> Option<u32> {
    let h = b.get(..4)?;
    h.iter()
        .try_fold(0u32, |acc, &c| Some(acc * 16 + char::from(c).to_digit(16)?))
}

/// Unescapes a quoted value into `out` (see the module docs).
fn unescape(raw: &str, out: &mut String) {
    out.clear();
    let b = raw.as_bytes();
    let mut from = 0; // start of the verbatim run not yet copied
    let mut i = 0;
    while let Some(k) = memchr::memchr(b'\\', &b[i.min(b.len())..]) {
        let at = i + k;
        let simple = match b.get(at + 1) {
            Some(b'"') => Some('"'),
            Some(b'\\') => Some('\\'),
            Some(b'/') => Some('/'),
            Some(b'n') => Some('\n'),
            Some(b't') => Some('\t'),
            Some(b'r') => Some('\r'),
            Some(b'b') => Some('\u{8}'),
            Some(b'f') => Some('\u{c}'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push_str(sub(raw, from, at));
            out.push(c);
            i = at + 2;
            from = i;
            continue;
        }
        if b.get(at + 1) == Some(&b'u') {
            if let Some(u) = hex4(&b[at + 2..]) {
                out.push_str(sub(raw, from, at));
                i = at + 6;
                let c = if (0xD800..0xDC00).contains(&u) {
                    // A high surrogate: a low one must follow to make a character.
                    match (b.get(i..i + 2), hex4(b.get(i + 2..).unwrap_or(&[]))) {
                        (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                            i += 6;
                            char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                        }
                        _ => None,
                    }
                } else {
                    char::from_u32(u)
                };
                out.push(c.unwrap_or('\u{FFFD}'));
                from = i;
                continue;
            }
        }
        i = at + 1; // not an escape: the backslash stays
    }
    out.push_str(sub(raw, from, b.len()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_all, Format, ParsedChunk};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;
    use arrow_schema::DataType;
    use proptest::prelude::*;

    fn parse(text: &str) -> ParsedChunk {
        parse_bytes(text.as_bytes())
    }

    fn parse_bytes(text: &[u8]) -> ParsedChunk {
        parse_all(&ParseOptions::new(Format::Logfmt), text).unwrap()
    }

    fn one(text: &str) -> ParsedChunk {
        let p = parse(text);
        assert!(p.rejects.is_empty(), "{text:?}: {:?}", p.rejects);
        assert_eq!(p.batch.num_rows(), 1);
        p
    }

    fn reason(text: &[u8]) -> String {
        let p = parse_bytes(text);
        assert_eq!(
            p.batch.num_rows(),
            0,
            "{:?} was accepted",
            String::from_utf8_lossy(text)
        );
        p.rejects[0].reason.clone()
    }

    fn col<'a>(p: &'a ParsedChunk, name: &str) -> Option<&'a dyn Array> {
        p.batch
            .column_by_name(name)
            .filter(|c| !c.data_type().is_null())
            .map(|c| c.as_ref())
    }

    fn str_at(p: &ParsedChunk, name: &str, row: usize) -> Option<String> {
        let c = col(p, name)?;
        (!c.is_null(row)).then(|| c.as_string::<i32>().value(row).to_string())
    }

    fn int_at(p: &ParsedChunk, name: &str, row: usize) -> Option<i64> {
        let c = col(p, name)?;
        (!c.is_null(row)).then(|| c.as_primitive::<Int64Type>().value(row))
    }

    fn float_at(p: &ParsedChunk, name: &str, row: usize) -> Option<f64> {
        let c = col(p, name)?;
        (!c.is_null(row)).then(|| c.as_primitive::<Float64Type>().value(row))
    }

    fn bool_at(p: &ParsedChunk, name: &str, row: usize) -> Option<bool> {
        let c = col(p, name)?;
        (!c.is_null(row)).then(|| c.as_boolean().value(row))
    }

    fn dtype(p: &ParsedChunk, name: &str) -> DataType {
        p.batch.column_by_name(name).unwrap().data_type().clone()
    }

    #[test]
    fn grafana_line_is_typed() {
        let p = one("t=2022-04-05T07:04:43+0000 lvl=info msg=\"Config loaded from\" logger=settings file=/usr/share/grafana/conf/defaults.ini status=302 time_ms=1.5 ok=true bad=false flag uname= empty=\"\"");
        assert!(matches!(dtype(&p, "t"), DataType::Timestamp(..)));
        let t = col(&p, "t")
            .unwrap()
            .as_primitive::<TimestampMicrosecondType>()
            .value(0);
        assert_eq!(t, 1_649_142_283_000_000);
        assert_eq!(str_at(&p, "lvl", 0).as_deref(), Some("info"));
        assert_eq!(str_at(&p, "msg", 0).as_deref(), Some("Config loaded from"));
        assert_eq!(
            str_at(&p, "file", 0).as_deref(),
            Some("/usr/share/grafana/conf/defaults.ini")
        );
        assert_eq!(int_at(&p, "status", 0), Some(302));
        assert_eq!(float_at(&p, "time_ms", 0), Some(1.5));
        assert_eq!(bool_at(&p, "ok", 0), Some(true));
        assert_eq!(bool_at(&p, "bad", 0), Some(false));
        assert_eq!(bool_at(&p, "flag", 0), Some(true), "a bare key is true");
        assert_eq!(dtype(&p, "uname"), DataType::Null, "key= is null");
        assert_eq!(
            str_at(&p, "empty", 0).as_deref(),
            Some(""),
            "key=\"\" is empty"
        );
        let names: Vec<_> = p
            .batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "t", "lvl", "msg", "logger", "file", "status", "time_ms", "ok", "bad", "flag",
                "uname", "empty"
            ]
        );
    }

    #[test]
    fn empty_values_keep_typed_columns_typed() {
        let p = parse("size=59 referer=\nsize= referer=x\n");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(dtype(&p, "size"), DataType::Int64);
        assert_eq!(int_at(&p, "size", 1), None);
        assert_eq!(str_at(&p, "referer", 0), None);
    }

    #[test]
    fn numbers_follow_json_syntax() {
        let p = one(
            "a=007 b=1e3 c=-0 d=+1 e=.5 f=99999999999999999999 g=1. h=-2.5E-3 i=0x10 j=null k=True",
        );
        assert_eq!(str_at(&p, "a", 0).as_deref(), Some("007"));
        assert_eq!(float_at(&p, "b", 0), Some(1000.0));
        assert_eq!(int_at(&p, "c", 0), Some(0));
        assert_eq!(str_at(&p, "d", 0).as_deref(), Some("+1"));
        assert_eq!(str_at(&p, "e", 0).as_deref(), Some(".5"));
        assert_eq!(
            str_at(&p, "f", 0).as_deref(),
            Some("99999999999999999999"),
            "too big: verbatim"
        );
        assert_eq!(str_at(&p, "g", 0).as_deref(), Some("1."));
        assert_eq!(float_at(&p, "h", 0), Some(-0.0025));
        assert_eq!(str_at(&p, "i", 0).as_deref(), Some("0x10"));
        assert_eq!(str_at(&p, "j", 0).as_deref(), Some("null"));
        assert_eq!(str_at(&p, "k", 0).as_deref(), Some("True"));
        // Quoted numbers stay strings; quoted timestamps are timestamps.
        let p = one("n=\"42\" at=\"2024-01-02 03:04:05\"");
        assert_eq!(str_at(&p, "n", 0).as_deref(), Some("42"));
        assert!(matches!(dtype(&p, "at"), DataType::Timestamp(..)));
        for (s, ok) in [
            ("0", true),
            ("-", false),
            ("1e", false),
            ("1e+", false),
            ("-01", false),
            ("1.5e+10", true),
            ("", false),
        ] {
            assert_eq!(is_json_number(s.as_bytes()), ok, "{s}");
        }
    }

    #[test]
    fn quoted_values_are_unescaped() {
        let p = one(
            r#"a="q \"x\" b\\s\/ n\nt\tr\rb\bf\f" u="\u00e9\ud83d\ude00|\ud800|\udc00|\u12" o="c:\path\x" w="a=b c""#,
        );
        assert_eq!(
            str_at(&p, "a", 0).as_deref(),
            Some("q \"x\" b\\s/ n\nt\tr\rb\u{8}f\u{c}")
        );
        assert_eq!(
            str_at(&p, "u", 0).as_deref(),
            Some("é😀|\u{FFFD}|\u{FFFD}|\\u12")
        );
        assert_eq!(
            str_at(&p, "o", 0).as_deref(),
            Some("c:\\path\\x"),
            "unknown escapes stay"
        );
        assert_eq!(str_at(&p, "w", 0).as_deref(), Some("a=b c"));
        // Unescaped text in the arena survives a rejected line after it.
        let p = parse("a=\"x\\\"y\"\na=\"open\nb=\"p\\\\q\" c=1\n");
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(str_at(&p, "a", 0).as_deref(), Some("x\"y"));
        assert_eq!(str_at(&p, "b", 1).as_deref(), Some("p\\q"));
    }

    #[test]
    fn separators_and_lenient_bare_values() {
        let p = one("\ta=1\t b=x=y  c=say\"hi\"  d=[::]:3000 sample#load-avg-1m=0.13 ");
        assert_eq!(int_at(&p, "a", 0), Some(1));
        assert_eq!(str_at(&p, "b", 0).as_deref(), Some("x=y"));
        assert_eq!(str_at(&p, "c", 0).as_deref(), Some("say\"hi\""));
        assert_eq!(str_at(&p, "d", 0).as_deref(), Some("[::]:3000"));
        assert_eq!(float_at(&p, "sample#load-avg-1m", 0), Some(0.13));
        // Unicode keys and values.
        let p = one("clé=été ✓=1");
        assert_eq!(str_at(&p, "clé", 0).as_deref(), Some("été"));
        assert_eq!(int_at(&p, "✓", 0), Some(1));
    }

    #[test]
    fn bad_lines_are_rejected() {
        for (line, why) in [
            ("=x", "expected a key at byte 0, found '='"),
            ("a=1 =x", "expected a key at byte 4, found '='"),
            ("a\"b=1", "unexpected '\"' in key \"a\" at byte 1"),
            ("\"a\"=1", "expected a key at byte 0, found '\"'"),
            (
                "a=\"unterminated",
                "unterminated quoted value of \"a\" at byte 3",
            ),
            (
                "a=\"ends in backslash\\",
                "unterminated quoted value of \"a\" at byte 3",
            ),
            (
                "a=\"x\"b c=1",
                "expected a space after the quoted value of \"a\" at byte 5",
            ),
            ("just some words", "not logfmt: no key=value pair"),
            ("a=1 a=2", "duplicate field \"a\""),
            ("a=1 A=2", "duplicate field \"A\""),
            ("flag flag a=1", "duplicate field \"flag\""),
        ] {
            assert_eq!(reason(line.as_bytes()), why, "{line}");
        }
        assert_eq!(reason(b"a=1 b=\xff"), "invalid UTF-8 at byte 6");
        assert_eq!(reason(b"   \t "), "blank line");
    }

    #[test]
    fn never_panics_on_prefixes() {
        let line = r#"t=2022-04-05T07:04:43+0000 msg="a \"b\" \u00e9 \ud83d\ude00 ✓" n=-1.5e3 f ok=true e= q="" x=y=z"#;
        for end in 0..=line.len() {
            let p = parse_bytes(&line.as_bytes()[..end]);
            assert_eq!(p.batch.num_rows() + p.rejects.len(), p.records as usize);
        }
    }

    /// A generated value, typed by its key's prefix so that columns keep one type.
    #[derive(Debug, Clone)]
    enum Value {
        Int(i64),
        Float(i64),
        Bool(bool),
        Word(String),
        Quoted(String),
        Null,
        Flag,
    }

    fn value_for(kind: usize) -> BoxedStrategy<Value> {
        match kind {
            0 => any::<i64>().prop_map(Value::Int).boxed(),
            1 => (-1_000_000_000i64..1_000_000_000)
                .prop_map(Value::Float)
                .boxed(),
            2 => any::<bool>().prop_map(Value::Bool).boxed(),
            3 => "[a-zA-Z/_.:][a-zA-Z0-9/_.:=\"-]{0,12}"
                .prop_filter("not a keyword", |w| w != "true" && w != "false")
                .prop_map(Value::Word)
                .boxed(),
            4 => "[a-z \"\\\\\n\té✓=]{0,16}".prop_map(Value::Quoted).boxed(),
            5 => Just(Value::Null).boxed(),
            _ => Just(Value::Flag).boxed(),
        }
    }

    const PREFIXES: [&str; 7] = ["i", "f", "b", "w", "q", "n", "flag"];

    fn record() -> impl Strategy<Value = Vec<(String, Value)>> {
        // Per kind, a subset of 3 keys; every record has at least one key=value pair.
        proptest::collection::vec((0usize..7, 0usize..3), 1..10).prop_flat_map(|picks| {
            let mut keys: Vec<(usize, String)> = Vec::new();
            for (kind, n) in picks {
                let key = format!("{}{n}", PREFIXES[kind]);
                if !keys.iter().any(|(_, k)| *k == key) {
                    keys.push((kind, key));
                }
            }
            keys.push((0, "seq".to_string()));
            keys.into_iter()
                .map(|(kind, key)| value_for(kind).prop_map(move |v| (key.clone(), v)))
                .collect::<Vec<_>>()
        })
    }

    fn render(v: &Value) -> String {
        match v {
            Value::Int(i) => i.to_string(),
            Value::Float(f) => {
                let sign = if *f < 0 { "-" } else { "" };
                format!(
                    "{sign}{}.{:02}",
                    f.unsigned_abs() / 100,
                    f.unsigned_abs() % 100
                )
            }
            Value::Bool(b) => b.to_string(),
            Value::Word(w) => w.clone(),
            Value::Quoted(q) => format!(
                "\"{}\"",
                q.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
                    .replace('\t', "\\t")
            ),
            Value::Null => String::new(),
            Value::Flag => unreachable!(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn round_trip(recs in proptest::collection::vec(record(), 1..8)) {
            let mut text = String::new();
            for r in &recs {
                let pairs: Vec<String> = r.iter().map(|(k, v)| match v {
                    Value::Flag => k.clone(),
                    _ => format!("{k}={}", render(v)),
                }).collect();
                text.push_str(&pairs.join(" "));
                text.push('\n');
            }
            let p = parse(&text);
            prop_assert!(p.rejects.is_empty(), "{:?}", p.rejects);
            for (row, r) in recs.iter().enumerate() {
                for (k, v) in r {
                    match v {
                        Value::Int(i) => prop_assert_eq!(int_at(&p, k, row), Some(*i)),
                        Value::Float(f) => prop_assert_eq!(float_at(&p, k, row), Some(*f as f64 / 100.0), "{}", render(v)),
                        Value::Bool(b) => prop_assert_eq!(bool_at(&p, k, row), Some(*b)),
                        Value::Flag => prop_assert_eq!(bool_at(&p, k, row), Some(true)),
                        Value::Word(w) => prop_assert_eq!(str_at(&p, k, row), Some(w.clone())),
                        Value::Quoted(q) => prop_assert_eq!(str_at(&p, k, row), Some(q.clone())),
                        Value::Null => prop_assert!(col(&p, k).is_none_or(|c| c.is_null(row))),
                    }
                }
                // Keys a record does not name are null in its row.
                for f in p.batch.schema().fields() {
                    if !r.iter().any(|(k, _)| k == f.name()) {
                        prop_assert!(col(&p, f.name()).is_none_or(|c| c.is_null(row)), "{}", f.name());
                    }
                }
            }
        }
    }
}
