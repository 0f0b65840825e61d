//! Checks of the record splitter ([`Framing`]) and of chunking at its boundaries.

use compactor_formats::framing::Framing;
use compactor_formats::{count_lines, parse_chunk, ParseOptions};

use crate::split_records;

/// Asserts that the records of `data` cover it exactly, in order: each record is the bytes
/// from its offset, followed by `\n` or `\r\n` (`\r` or nothing at the very end), the next
/// record starts right after, and the line counts add up to `count_lines(data)`.
fn check_cover(framing: &Framing, data: &[u8]) -> Vec<(usize, usize, u64)> {
    let recs = split_records(framing, data);
    let mut at = 0usize;
    let mut lines = 0u64;
    for (k, &(start, len, n)) in recs.iter().enumerate() {
        assert_eq!(start, at, "record {k} starts at {start}, expected {at}");
        let end = start + len;
        assert!(end <= data.len(), "record {k} ends past the input");
        let rec = &data[start..end];
        assert!(n >= 1, "record {k} spans no line");
        assert_eq!(
            memchr_count(rec) + 1,
            n,
            "record {k}: {n} lines but {} newlines inside",
            memchr_count(rec)
        );
        if matches!(framing, Framing::Lines) {
            assert_eq!(n, 1, "a one-line framing made a multi-line record");
        }
        let rest = &data[end..];
        let term = if rest.starts_with(b"\r\n") {
            2
        } else if rest.starts_with(b"\n") || rest == b"\r" {
            1
        } else {
            assert!(rest.is_empty(), "record {k} is not followed by a line end");
            0
        };
        at = end + term;
        lines += n;
    }
    assert_eq!(
        at,
        data.len(),
        "the records do not reach the end of the input"
    );
    assert_eq!(lines, count_lines(data), "record lines != count_lines");
    recs
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// Cuts `data` where the chunker would (`boundary(rest, probe, limit)`, the whole rest when
/// it finds none) and asserts the memory bound of each cut: it lies after `probe`, at a line
/// start, and no further than the first line start past `probe + limit`. Returns the pieces.
fn cut<'a>(framing: &Framing, data: &'a [u8], probe: usize, limit: usize) -> Vec<&'a [u8]> {
    let mut pieces = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let rest = &data[pos..];
        let end = match framing.boundary(rest, probe, limit) {
            Some(b) => {
                assert!(
                    b > probe.min(rest.len()) && b <= rest.len(),
                    "boundary {b} outside ({probe}, {}]",
                    rest.len()
                );
                assert_eq!(rest[b - 1], b'\n', "boundary {b} is not a line start");
                if let Some(t) = probe.checked_add(limit).filter(|&t| t < rest.len()) {
                    if let Some(nl) = rest[t..].iter().position(|&c| c == b'\n') {
                        assert!(
                            b <= t + nl + 1,
                            "boundary {b} past the limit (probe {probe}, limit {limit})"
                        );
                    }
                }
                b
            }
            None => rest.len(),
        };
        pieces.push(&rest[..end]);
        pos += end;
    }
    pieces
}

/// The record splitter's invariants on `data` (see the module docs and `split_records` in
/// README.md): exact cover; cuts at `boundary()` with an unbounded search give exactly the
/// whole input's records; cuts with the bounded search `limit` keep the memory bound and the
/// line count, and for one-line records still give the same records.
pub fn check_framing(framing: &Framing, data: &[u8], probe: usize, limit: usize) {
    let whole = check_cover(framing, data);
    for (limit, same_records) in [
        (usize::MAX, true),
        (limit, matches!(framing, Framing::Lines)),
    ] {
        let pieces = cut(framing, data, probe, limit);
        let mut lines = 0;
        let mut got = Vec::new();
        let mut base = 0;
        for p in &pieces {
            lines += count_lines(p);
            for (s, l, n) in check_cover(framing, p) {
                got.push((base + s, l, n));
            }
            base += p.len();
        }
        assert_eq!(lines, count_lines(data), "pieces' lines != input's lines");
        if same_records {
            assert_eq!(
                got, whole,
                "records differ when cut at boundaries (probe {probe}, limit {limit})"
            );
        }
    }
}

/// Parses `data` whole and in pieces cut at `boundary(rest, probe, ∞)` (as the chunker cuts,
/// without the overlong fallback), and asserts the same lines, records, rows and rejects.
pub fn check_chunked_parse(opts: &ParseOptions, data: &[u8], probe: usize) {
    let Ok(whole) = parse_chunk(opts, data, 1) else {
        return;
    };
    let framing = crate::framing_of(opts);
    let (mut lines, mut records, mut rows, mut rejects) = (0u64, 0u64, 0usize, Vec::new());
    for p in cut(&framing, data, probe, usize::MAX) {
        let Ok(pp) = parse_chunk(opts, p, 1 + lines) else {
            panic!("a piece fails to parse but the whole does not");
        };
        lines += pp.lines;
        records += pp.records;
        rows += pp.batch.num_rows();
        rejects.extend(pp.rejects);
    }
    // A per-chunk column limit may reject differently in pieces.
    if whole.batch.num_columns() * 2 >= opts.limits.max_columns {
        return;
    }
    assert_eq!(lines, whole.lines, "chunked lines != whole");
    assert_eq!(records, whole.records, "chunked records != whole");
    assert_eq!(rows, whole.batch.num_rows(), "chunked rows != whole");
    assert_eq!(rejects, whole.rejects, "chunked rejects != whole");
}
