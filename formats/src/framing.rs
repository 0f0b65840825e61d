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
//! - [`Framing::Quoted`]: a record is a line plus following lines while a quote is open (the
//!   count of quote bytes so far is odd; a doubled `""` counts twice, so it is neutral).
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
    /// Records end at a newline outside quotes: the quote byte, and the escape byte (which
    /// takes the byte after it literally, so an escaped quote opens nothing).
    Quoted(u8, Option<u8>),
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
                match (quoting, ascii(d.quote.or(Some('"')))) {
                    (true, Some(q)) => Framing::Quoted(q, ascii(d.escape)),
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
            Framing::Quoted(q, e) => {
                let mut open: Option<(usize, usize, u64)> = None;
                let mut odd = false;
                crate::for_each_line(chunk, |start, line| {
                    let end = start + line.len();
                    match &mut open {
                        Some((_, e, n)) => {
                            *e = end;
                            *n += 1;
                        }
                        None => open = Some((start, end, 1)),
                    }
                    odd = toggles(line, *q, *e, odd);
                    if !odd {
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
            Framing::Quoted(q, e) => {
                // An escape byte just before `probe` would be split from its byte: scan whole
                // lines, from the line start at or before `probe`.
                let line_start = memchr::memrchr(b'\n', &buf[..probe]).map_or(0, |i| i + 1);
                let mut odd = toggles(&buf[..line_start], *q, *e, false);
                let mut from = line_start;
                loop {
                    let c = next_line(from.max(probe))?;
                    odd = toggles(&buf[from..c], *q, *e, odd);
                    if !odd || c - probe > limit {
                        return Some(c);
                    }
                    from = c;
                }
            }
        }
    }
}

/// Whether `bytes` leave a quote open (an odd number of unescaped quote bytes), starting
/// from `open`.
fn toggles(bytes: &[u8], quote: u8, escape: Option<u8>, open: bool) -> bool {
    match escape {
        None => open ^ (memchr::memchr_iter(quote, bytes).count() % 2 == 1),
        Some(e) => {
            let mut open = open;
            let mut i = 0;
            while let Some(k) = memchr::memchr2(quote, e, &bytes[i..]) {
                let at = i + k;
                if bytes[at] == e && e != quote {
                    i = at + 2;
                    if i > bytes.len() {
                        break;
                    }
                } else {
                    open = !open;
                    i = at + 1;
                }
            }
            open
        }
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
        let f = Framing::Quoted(b'"', None);
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
        let f = Framing::Quoted(b'"', Some(b'\\'));
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

    #[test]
    fn framing_follows_the_options() {
        let mut opts = ParseOptions::new(Format::Csv);
        assert!(matches!(Framing::of(&opts), Framing::Quoted(b'"', None)));
        opts.delimited.quote = Some('\'');
        opts.delimited.escape = Some('\\');
        assert!(matches!(
            Framing::of(&opts),
            Framing::Quoted(b'\'', Some(b'\\'))
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
