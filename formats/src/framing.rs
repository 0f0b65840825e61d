//! Records: where one ends and the next begins.
//!
//! # Why
//! Most logs hold one record per line, but a Java stack trace continues its record over many
//! lines, and a CSV field in quotes may hold a newline. Chunks are parsed in parallel, so a
//! chunk must start at a record boundary, and the parser must group a record's lines back
//! together. Both questions are answered here, from the options alone, so the reader that cuts
//! chunks and the parser that reads them agree.
//!
//! # Algorithm
//! - [`Framing::Lines`]: a record is a line (`\n`, with a `\r` before it dropped).
//! - [`Framing::MultiLine`]: a record is a line matching the `record_start` pattern plus every
//!   following line that does not. Lines before the first start line of a chunk form records
//!   of their own (only at the start of a file, since chunks are cut before start lines).
//! - [`Framing::Quoted`]: a record is a line plus following lines while a quoted field is open,
//!   by the rules the CSV parser splits fields with: a quote opens a field only at the field's
//!   start (`5" screen` is text), `""` and the escape byte (if any) quote a byte, and the field
//!   closes at a quote followed by anything else. A quoted record that reaches `limit` bytes
//!   ends at the line where it did (a stray quote must not swallow the chunk), in the
//!   parser and in the chunker alike.
//!
//! ```text
//!   2024-01-01 ERROR boom              ◀─ start ─┐
//!   java.lang.Exception: boom                    │ one record (3 lines)
//!       at Foo.bar(Foo.java:1)                   │
//!   2024-01-01 INFO ok                 ◀─ start ─┘ next record
//! ```
//!
//! A chunk boundary ([`Framing::boundary`]) is a line start that is also a record start. A
//! record is never allowed to hold a chunk open without bound: past `limit` bytes of search
//! the boundary falls back to the next line start, and the overlong record is rejected by the
//! line-length limit or parsed as two.

use std::sync::Arc;

use crate::grok::Pattern;
use crate::{Format, ParseOptions};

/// How records are delimited (see the module docs).
#[derive(Debug, Clone)]
pub enum Framing {
    /// One record per line.
    Lines,
    /// Records begin at lines matching the pattern.
    MultiLine(Arc<Pattern>),
    /// Records end at a newline outside a quoted field (see [`QuoteRule`]).
    Quoted(QuoteRule),
}

impl Framing {
    /// The framing of `opts` (its compiled `record_start`, see [`ParseOptions::prepare`]).
    pub fn of(opts: &ParseOptions) -> Framing {
        Self::with_start(opts, opts.prepared.record_start.clone())
    }

    pub(crate) fn with_start(opts: &ParseOptions, start: Option<Arc<Pattern>>) -> Framing {
        match start {
            Some(p) => Framing::MultiLine(p),
            None => {
                let d = &opts.delimited;
                let quoting = match opts.format {
                    Some(Format::Csv) => d.quoting.unwrap_or(true),
                    Some(Format::Tsv) => d.quoting.unwrap_or(d.quote.is_some()),
                    _ => false,
                };
                let ascii = |c: Option<char>| c.filter(char::is_ascii).map(|c| c as u8);
                let default_delim = if opts.format == Some(Format::Tsv) {
                    '\t'
                } else {
                    ','
                };
                let delim = ascii(Some(d.delimiter.unwrap_or(default_delim)));
                match (quoting, ascii(d.quote.or(Some('"'))), delim) {
                    (true, Some(quote), Some(delim)) => Framing::Quoted(QuoteRule {
                        quote,
                        escape: ascii(d.escape),
                        delim,
                        limit: opts.limits.max_line_bytes,
                    }),
                    _ => Framing::Lines,
                }
            }
        }
    }

    /// Calls `f(offset, record, lines)` for each record of `chunk`: its offset, its bytes
    /// without the final `\n` or `\r\n`, and how many lines it spans.
    pub fn for_each_record(&self, chunk: &[u8], mut f: impl FnMut(usize, &[u8], u64)) {
        match self {
            Framing::Lines => crate::for_each_line(chunk, |start, line| f(start, line, 1)),
            Framing::MultiLine(p) => {
                let mut open: Option<(usize, usize, u64)> = None; // (start, end, lines)
                crate::for_each_line(chunk, |start, line| {
                    let end = start + line.len();
                    match &mut open {
                        Some((s, e, n)) if !p.is_match(line) => {
                            *e = end;
                            *n += 1;
                            let _ = s;
                        }
                        _ => {
                            if let Some((s, e, n)) = open.take() {
                                f(s, &chunk[s..e], n);
                            }
                            open = Some((start, end, 1));
                        }
                    }
                });
                if let Some((s, e, n)) = open {
                    f(s, &chunk[s..e], n);
                }
            }
            Framing::Quoted(rule) => {
                let mut open: Option<(usize, usize, u64)> = None;
                crate::for_each_line(chunk, |start, line| {
                    let end = start + line.len();
                    let (s, st) = match &mut open {
                        Some((s, e, n)) => {
                            *e = end;
                            *n += 1;
                            (*s, rule.line(line, QuoteState::Open))
                        }
                        None => {
                            open = Some((start, end, 1));
                            (start, rule.line(line, QuoteState::Start))
                        }
                    };
                    // The raw length, with the `\r` that `for_each_line` strips, as `boundary`
                    // counts it.
                    let raw_end = end + usize::from(chunk.get(end) == Some(&b'\r'));
                    if rule.ends(st, raw_end - s) {
                        let (s, e, n) = open.take().expect("a record is open");
                        f(s, &chunk[s..e], n);
                    }
                });
                if let Some((s, e, n)) = open {
                    f(s, &chunk[s..e], n);
                }
            }
        }
    }

    /// Where to cut a chunk: the first record start in `buf` after byte `probe`, where
    /// `buf[0]` is a record start. `None` when `buf` does not yet show one (read more, or at
    /// the end of the input cut at `buf.len()`). After `limit` bytes past `probe` without a
    /// record start, the next line start is taken (see the module docs).
    pub fn boundary(&self, buf: &[u8], probe: usize, limit: usize) -> Option<usize> {
        let probe = probe.min(buf.len());
        let next_line = |from: usize| memchr::memchr(b'\n', &buf[from..]).map(|i| from + i + 1);
        match self {
            Framing::Lines => next_line(probe),
            Framing::MultiLine(p) => {
                let mut c = next_line(probe)?;
                loop {
                    if c == buf.len() {
                        return None;
                    }
                    // The candidate line must be whole to be matched.
                    let end = memchr::memchr(b'\n', &buf[c..]).map(|i| c + i)?;
                    let mut line = &buf[c..end];
                    if let Some(s) = line.strip_suffix(b"\r") {
                        line = s;
                    }
                    if p.is_match(line) || c - probe > limit {
                        return Some(c);
                    }
                    c = end + 1;
                }
            }
            Framing::Quoted(rule) => {
                // Records as `for_each_record` sees them, from `buf[0]` (a record start): the
                // first record end after `probe`.
                let (mut rec, mut st, mut from) = (0, QuoteState::Start, 0);
                loop {
                    let c = next_line(from)?;
                    let mut line = &buf[from..c - 1];
                    if let Some(s) = line.strip_suffix(b"\r") {
                        line = s;
                    }
                    st = rule.line(line, st);
                    // The caller's bound holds too (it is the rule's own in the chunker, so
                    // cuts agree with `for_each_record`; a smaller one only bounds memory).
                    // (Lengths count raw bytes up to the newline, a `\r` before it included.)
                    if st != QuoteState::Open || c - 1 - rec >= limit.min(rule.limit) {
                        if c > probe {
                            return Some(c);
                        }
                        (rec, st) = (c, QuoteState::Start);
                    }
                    from = c;
                }
            }
        }
    }
}

/// Where quoted fields begin and end, for [`Framing::Quoted`]: the CSV parser's rules
/// (`delimited::split`), reduced to what decides whether a newline is data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuoteRule {
    /// The quote byte.
    pub quote: u8,
    /// The escape byte: the byte after it is data.
    pub escape: Option<u8>,
    /// The field delimiter.
    pub delim: u8,
    /// A record still open at this many bytes ends at the end of its line.
    pub limit: usize,
}

/// Where in a record a line leaves the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteState {
    /// At the start of a field.
    Start,
    /// Inside an unquoted field (or after a quoted one's closing quote).
    Plain,
    /// Inside a quoted field: a newline here is data.
    Open,
}

impl QuoteRule {
    /// The state after `line` (without its newline), starting in `st`.
    pub fn line(&self, line: &[u8], mut st: QuoteState) -> QuoteState {
        let esc = self.escape.filter(|&e| e != self.quote);
        let mut i = 0;
        while i < line.len() {
            match st {
                QuoteState::Start => {
                    let b = line[i];
                    i += 1;
                    if b == self.quote {
                        st = QuoteState::Open;
                    } else if Some(b) == esc {
                        st = QuoteState::Plain;
                        i += 1;
                    } else if b != self.delim {
                        st = QuoteState::Plain;
                    }
                }
                QuoteState::Plain => {
                    let hit = match esc {
                        Some(e) => memchr::memchr2(self.delim, e, &line[i..]),
                        None => memchr::memchr(self.delim, &line[i..]),
                    };
                    let Some(j) = hit.map(|k| i + k) else { break };
                    if line[j] == self.delim {
                        st = QuoteState::Start;
                        i = j + 1;
                    } else {
                        i = j + 2;
                    }
                }
                QuoteState::Open => {
                    let hit = match esc {
                        Some(e) => memchr::memchr2(self.quote, e, &line[i..]),
                        None => memchr::memchr(self.quote, &line[i..]),
                    };
                    let Some(j) = hit.map(|k| i + k) else { break };
                    if Some(line[j]) == esc || line.get(j + 1) == Some(&self.quote) {
                        i = j + 2;
                    } else {
                        st = QuoteState::Plain;
                        i = j + 1;
                    }
                }
            }
        }
        st
    }

    /// Whether a record of `len` bytes so far, in state `st` at the end of a line, ends there:
    /// outside quotes, or once `limit` bytes are held (so a cut lies at most one line past
    /// `limit` bytes from the record's start).
    pub fn ends(&self, st: QuoteState, len: usize) -> bool {
        st != QuoteState::Open || len >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(f: &Framing, s: &str) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        f.for_each_record(s.as_bytes(), |_, r, n| {
            out.push((String::from_utf8(r.to_vec()).unwrap(), n))
        });
        out
    }

    fn multi() -> Framing {
        Framing::MultiLine(Arc::new(Pattern::compile(r"^\d{4}-", false).unwrap()))
    }

    #[test]
    fn multi_line_records_keep_their_continuations() {
        let s = "cont0\n2024-1 a\n  at x\n  at y\n2024-2 b\r\n2024-3 c\n tail";
        assert_eq!(
            records(&multi(), s),
            vec![
                ("cont0".into(), 1),
                ("2024-1 a\n  at x\n  at y".into(), 3),
                ("2024-2 b".into(), 1),
                ("2024-3 c\n tail".into(), 2),
            ]
        );
        let b = s.as_bytes();
        // The cut after byte 7 lands on the next start line, not on a continuation.
        assert_eq!(multi().boundary(b, 7, 1 << 20), Some(29));
        assert_eq!(&s[29..35], "2024-2");
        // Past the limit a plain line start is taken.
        assert_eq!(multi().boundary(b, 7, 4), Some(15));
        // The last start line is incomplete: no boundary yet.
        assert_eq!(multi().boundary(&b[..40], 30, 1 << 20), None);
    }

    #[test]
    fn quoted_newlines_stay_in_their_record() {
        let f = Framing::Quoted(QuoteRule {
            quote: b'"',
            escape: None,
            delim: b',',
            limit: 1 << 20,
        });
        let s = "a,\"x\ny\",1\nb,\"\"\"q\"\"\",2\nc,\"open\n";
        assert_eq!(
            records(&f, s),
            vec![
                ("a,\"x\ny\",1".into(), 2),
                ("b,\"\"\"q\"\"\",2".into(), 1),
                ("c,\"open".into(), 1),
            ]
        );
        // Cutting inside the quoted newline moves to the end of the record.
        assert_eq!(f.boundary(s.as_bytes(), 1, 1 << 20), Some(10));
        assert_eq!(Framing::Lines.boundary(s.as_bytes(), 1, 1 << 20), Some(5));
    }

    #[test]
    fn escaped_quotes_open_nothing() {
        let f = Framing::Quoted(QuoteRule {
            quote: b'"',
            escape: Some(b'\\'),
            delim: b',',
            limit: 1 << 20,
        });
        let s = "a,\\\"x,1\nb,\"y\nz\",2\nc,\"\\\\\",3\n";
        assert_eq!(
            records(&f, s),
            vec![
                ("a,\\\"x,1".into(), 1),
                ("b,\"y\nz\",2".into(), 2),
                ("c,\"\\\\\",3".into(), 1),
            ]
        );
        // Every cut agrees with the records.
        for probe in 1..s.len() {
            let cut = f.boundary(s.as_bytes(), probe, 1 << 20);
            assert!(
                matches!(cut, Some(8) | Some(18) | Some(27) | None),
                "{probe}: {cut:?}"
            );
        }
    }

    fn csv(limit: usize) -> Framing {
        Framing::Quoted(QuoteRule {
            quote: b'"',
            escape: None,
            delim: b',',
            limit,
        })
    }

    #[test]
    fn a_quote_inside_a_field_is_text() {
        // `5" screen` opens nothing: the next lines are records of their own.
        let s = "1,5\" screen\n2,ok\n3,\"a\nb\"\n4,x\"\"y\n";
        assert_eq!(
            records(&csv(1 << 20), s),
            vec![
                ("1,5\" screen".into(), 1),
                ("2,ok".into(), 1),
                ("3,\"a\nb\"".into(), 2),
                ("4,x\"\"y".into(), 1),
            ]
        );
    }

    #[test]
    fn an_open_quote_holds_at_most_limit_bytes() {
        // A stray opening quote: the record ends at the line where it passed 12 bytes.
        let s = "1,\"open\n2,aaaa\n3,bbbb\n4,ok\n";
        assert_eq!(
            records(&csv(12), s),
            vec![
                ("1,\"open\n2,aaaa".into(), 2),
                ("3,bbbb".into(), 1),
                ("4,ok".into(), 1),
            ]
        );
        let b = s.as_bytes();
        assert_eq!(csv(12).boundary(b, 1, 1 << 20), Some(15));
        assert_eq!(csv(12).boundary(b, 16, 1 << 20), Some(22));
    }

    proptest::proptest! {
        /// Cutting at any `boundary` and framing the pieces gives the records of the whole.
        #[test]
        fn quoted_cuts_agree_with_the_records(
            text in "[a\",\\\\ \n]{0,80}",
            probe in 0usize..80,
            limit in 1usize..30,
            escape in proptest::bool::ANY,
        ) {
            let f = Framing::Quoted(QuoteRule {
                quote: b'"',
                escape: escape.then_some(b'\\'),
                delim: b',',
                limit,
            });
            let whole = records(&f, &text);
            if let Some(c) = f.boundary(text.as_bytes(), probe, 1 << 20) {
                proptest::prop_assert!(c > probe.min(text.len()));
                let mut parts = records(&f, &text[..c]);
                parts.extend(records(&f, &text[c..]));
                proptest::prop_assert_eq!(parts, whole);
            }
        }
    }

    #[test]
    fn framing_follows_the_options() {
        let mut opts = ParseOptions::new(Format::Csv);
        assert!(matches!(
            Framing::of(&opts),
            Framing::Quoted(QuoteRule {
                quote: b'"',
                escape: None,
                delim: b',',
                ..
            })
        ));
        opts.delimited.quote = Some('\'');
        opts.delimited.escape = Some('\\');
        assert!(matches!(
            Framing::of(&opts),
            Framing::Quoted(QuoteRule {
                quote: b'\'',
                escape: Some(b'\\'),
                ..
            })
        ));
        opts.delimited.quoting = Some(false);
        assert!(matches!(Framing::of(&opts), Framing::Lines));
        opts.delimited = Default::default();
        assert!(matches!(
            Framing::of(&ParseOptions::new(Format::Tsv)),
            Framing::Lines
        ));
        opts.record_start = Some("^x".into());
        opts.prepare().unwrap();
        assert!(matches!(Framing::of(&opts), Framing::MultiLine(_)));
        assert!(matches!(
            Framing::of(&ParseOptions::new(Format::Json)),
            Framing::Lines
        ));
    }
}
