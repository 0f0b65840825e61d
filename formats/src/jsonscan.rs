//! A validating JSON skipper: finds where a value ends without building it.
//!
//! # Why
//! A projected parse ([`crate::ParseOptions::project`]) needs a handful of a line's fields and
//! must still reject the line when any part of it is not JSON, as the full parse does. This
//! skipper validates the grammar without building anything, and hands the projected walk in
//! `json.rs` the spans of keys and values it wants, so that a field that is not wanted costs a
//! skip and nothing else.
//!
//! # Algorithm
//! A recursive descent over the bytes (the line is valid UTF-8 already: the caller checked it):
//! ```text
//!   value  := object | array | string | number | true | false | null
//!   string := '"' (byte >= 0x20 except '"' '\' | '\' escape)* '"'
//!   number := '-'? ('0' | [1-9][0-9]*) ('.' [0-9]+)? ([eE] [+-]? [0-9]+)?
//! ```
//! Most of a line is strings, and a byte-at-a-time walk spends its time finding where they
//! end. So a line is first indexed ([`LineIndex::build`], sixteen bytes a step with SSE2): a bit
//! per `"` byte, and whether the line has any `\` or control byte. When it has none, every
//! quote delimits a string, a string is valid whatever it holds, and its end is the next bit
//! set after its opening quote: the walk never reads a string's bytes. Otherwise (11% of the
//! generated events have an escaped quote) strings are read eight bytes a step (SWAR: one
//! subtraction-and-mask finds the first `"`, `\` or control byte among eight) and escapes
//! checked. Both ways accept the same lines with the same reasons.
//! ```text
//!   {"a":"xy","b":1}
//!    ^ ^ ^  ^ ^ ^       quote bits 1, 3, 5, 8, 10, 12
//!   the string opening at 5 ends at the lowest bit above it: 8
//! ```
//! Nesting (objects and arrays together) is bounded by [`MAX_NESTING`], serde_json's own
//! recursion limit, so no input can exhaust the stack. What it accepts is exactly what
//! serde_json accepts (the `scan_agrees_with_serde_json` property test, which also checks
//! that the indexed and the byte-at-a-time walks agree), except that `\u` escapes are checked
//! for four hex digits only, not for unpaired surrogates (as serde_json does when it ignores a
//! string).
//!
//! The crate's only `unsafe` is here: the SSE2 compares of [`LineIndex::build`] (SSE2 is part of
//! every x86-64 CPU; a plain loop elsewhere, checked against it by a property test).

/// Deepest nesting of objects and arrays accepted (serde_json's recursion limit).
pub const MAX_NESTING: usize = 128;

/// The reason a line is not JSON, with the position. Boxed, so that a scan's result is two
/// words (returned in registers) on the path that matters, where the line is JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::box_collection)] // the point: one word, where a `String` is three
pub(crate) struct ScanError(Box<String>);

impl From<String> for ScanError {
    fn from(reason: String) -> Self {
        ScanError(Box::new(reason))
    }
}

impl From<ScanError> for String {
    fn from(e: ScanError) -> String {
        *e.0
    }
}

/// A scan step's result.
pub(crate) type ScanResult<T> = std::result::Result<T, ScanError>;

/// Cursor over one line's bytes.
pub(crate) struct Scan<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
    /// The line's index, when [`LineIndex::build`] found that each of its quotes delimits a
    /// string (no `\`, no control byte in the line).
    index: Option<&'a LineIndex>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

impl<'a> Scan<'a> {
    /// A byte-at-a-time scan of `b`.
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Scan {
            b,
            pos: 0,
            index: None,
        }
    }

    /// A scan of `b` that finds where strings end in `index` (built for `b`), when
    /// [`LineIndex::build`] returned true; the byte-at-a-time one otherwise. Both accept and
    /// reject the same lines, with the same reasons.
    pub(crate) fn indexed(b: &'a [u8], index: &'a LineIndex) -> Self {
        Scan {
            index: index.plain.then_some(index),
            ..Scan::new(b)
        }
    }

    /// Whether the line may hold escapes: false when it is indexed (it has no `\` at all).
    pub(crate) fn may_escape(&self) -> bool {
        self.index.is_none()
    }

    pub(crate) fn err<T>(&self, what: &str) -> ScanResult<T> {
        Err(ScanError::from(if self.pos >= self.b.len() {
            format!("invalid JSON: {what}, found the end of the line")
        } else {
            format!("invalid JSON: {what} at byte {}", self.pos)
        }))
    }

    /// Skips whitespace. Most calls find none (a compact line has none at all): one compare
    /// tells them so, as every whitespace byte is at most `b' '`.
    #[inline(always)]
    pub(crate) fn ws(&mut self) {
        if self.b.get(self.pos).is_some_and(|&c| c > b' ') {
            return;
        }
        self.ws_slow();
    }

    #[inline(never)]
    fn ws_slow(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Consumes `c` (after whitespace) or fails.
    #[inline]
    pub(crate) fn expect(&mut self, c: u8, what: &str) -> ScanResult<()> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(what)
        }
    }

    /// A string starting at `self.pos` (its `"`): returns the span of its contents (between
    /// the quotes) and whether it has escapes; leaves `pos` after the closing quote.
    #[inline(always)]
    pub(crate) fn string(&mut self) -> ScanResult<(usize, usize, bool)> {
        debug_assert_eq!(self.b[self.pos], b'"');
        if let Some(ix) = self.index {
            // Every quote delimits a string, so this one ends at the next quote; there is
            // nothing to check in between (no escape, no control byte).
            let start = self.pos + 1;
            let mut w = start / 64;
            let mut bits = ix
                .quotes
                .get(w)
                .map_or(0, |m| m >> (start % 64) << (start % 64));
            while bits == 0 {
                w += 1;
                let Some(&m) = ix.quotes.get(w) else {
                    self.pos = self.b.len();
                    return self.err("unterminated string");
                };
                bits = m;
            }
            let end = w * 64 + bits.trailing_zeros() as usize;
            self.pos = end + 1;
            return Ok((start, end, false));
        }
        self.string_plain()
    }

    /// [`Self::string`] byte by byte (eight at a time), checking escapes and control bytes.
    #[inline(never)]
    fn string_plain(&mut self) -> ScanResult<(usize, usize, bool)> {
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // eight bytes a step: the first '"', '\\' or byte below 0x20
            while let Some(w) = self.b.get(self.pos..self.pos + 8) {
                let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                let q = v ^ (ONES * u64::from(b'"'));
                let s = v ^ (ONES * u64::from(b'\\'));
                let hit = (q.wrapping_sub(ONES) & !q)
                    | (s.wrapping_sub(ONES) & !s)
                    | (v.wrapping_sub(ONES * 0x20) & !v);
                let hit = hit & HIGHS;
                if hit == 0 {
                    self.pos += 8;
                } else {
                    // the lowest flagged byte is exact (borrows only run upwards)
                    self.pos += (hit.trailing_zeros() / 8) as usize;
                    break;
                }
            }
            let Some(c) = self.peek() else {
                return self.err("unterminated string");
            };
            match c {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok((start, end, escaped));
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = self.b.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return self.err("invalid \\u escape");
                            }
                            self.pos += 5;
                        }
                        _ => return self.err("invalid escape"),
                    }
                }
                c if c < 0x20 => return self.err("control character in string"),
                _ => self.pos += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> ScanResult<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return self.err("invalid number"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return self.err("invalid number");
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return self.err("invalid number");
            }
        }
        Ok(())
    }

    #[inline]
    fn literal(&mut self, lit: &[u8]) -> ScanResult<()> {
        // byte by byte: `starts_with` calls memcmp, which costs more than four or five bytes
        let rest = &self.b[self.pos..];
        if rest.len() >= lit.len() && lit.iter().zip(rest).all(|(a, b)| a == b) {
            self.pos += lit.len();
            Ok(())
        } else {
            self.err("expected a value")
        }
    }

    /// Skips the value at `self.pos` (after whitespace). `nesting`: objects and arrays around
    /// it. Returns the value's first byte. Inlined into its callers; only objects and arrays
    /// make a call ([`Self::skip_nested`], the recursion).
    #[inline(always)]
    pub(crate) fn skip_value(&mut self, nesting: usize) -> ScanResult<u8> {
        self.ws();
        let Some(c) = self.peek() else {
            return self.err("expected a value");
        };
        match c {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => self.skip_nested(c, nesting)?,
            b't' => self.literal(b"true")?,
            b'f' => self.literal(b"false")?,
            b'n' => self.literal(b"null")?,
            b'-' | b'0'..=b'9' => self.number()?,
            _ => return self.err("expected a value"),
        }
        Ok(c)
    }

    /// [`Self::skip_value`] of an object or array (`c`: its opening bracket).
    #[inline(never)]
    fn skip_nested(&mut self, c: u8, nesting: usize) -> ScanResult<()> {
        if nesting >= MAX_NESTING {
            return self.err("recursion limit exceeded");
        }
        if c == b'{' {
            self.object(|s, _| s.skip_value(nesting + 1).map(drop))?;
        } else {
            self.pos += 1;
            self.entries(b']', |s| s.skip_value(nesting + 1).map(drop))?;
        }
        Ok(())
    }

    /// Walks the object at `pos` (after whitespace): for each entry, `entry(self, key)` is
    /// called with `pos` at the value (after whitespace) and must move it past the value. `key`
    /// is the span of the key's text (between its quotes) and whether it has escapes. Returns
    /// whether the object had any entry.
    pub(crate) fn object(
        &mut self,
        mut entry: impl FnMut(&mut Self, (usize, usize, bool)) -> ScanResult<()>,
    ) -> ScanResult<bool> {
        self.expect(b'{', "expected an object")?;
        self.entries(b'}', |s| {
            if s.peek() != Some(b'"') {
                return s.err("expected a string key");
            }
            let key = s.string()?;
            s.expect(b':', "expected ':'")?;
            s.ws();
            entry(s, key)
        })
    }

    /// The items of an object or array whose opening bracket was consumed, up to `close`:
    /// `item` is called at each one (after whitespace), then a `,` or `close` must follow.
    fn entries(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> ScanResult<()>,
    ) -> ScanResult<bool> {
        self.ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(false);
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(true);
                }
                _ if close == b'}' => return self.err("expected ',' or '}'"),
                _ => return self.err("expected ',' or ']'"),
            }
        }
    }

    /// Fails unless only whitespace is left.
    pub(crate) fn end(&mut self) -> ScanResult<()> {
        self.ws();
        if self.pos == self.b.len() {
            Ok(())
        } else {
            self.err("trailing characters")
        }
    }
}

/// Whether `text` is one JSON value (with surrounding whitespace), by this skipper (indexed
/// when [`LineIndex::build`] allows it). `index`: scratch space, reused between calls.
pub fn is_valid(text: &[u8], index: &mut LineIndex) -> bool {
    index.build(text);
    let mut s = Scan::indexed(text, index);
    s.skip_value(0).is_ok() && s.end().is_ok()
}

/// A line's `"` bytes, a bit each (bit `i % 64` of word `i / 64`), and whether every one of
/// them delimits a string. Kept between lines to reuse its buffer.
#[derive(Debug, Default, Clone)]
pub struct LineIndex {
    quotes: Vec<u64>,
    plain: bool,
}

impl LineIndex {
    /// Indexes `line` and returns whether every one of its quotes delimits a string: true when
    /// the line has no `\` and no byte below 0x20. Then a string's end is the next quote bit
    /// after its opening quote, found without reading the string (see [`Scan::indexed`]);
    /// otherwise the scan reads strings byte by byte, checking escapes and control bytes.
    ///
    /// Sixteen bytes a step: each block's quotes, backslashes and control bytes as bit masks
    /// (SSE2 on x86-64, a plain loop elsewhere). 11% of the generated events have an
    /// escaped quote somewhere and take the byte-at-a-time path.
    pub fn build(&mut self, line: &[u8]) -> bool {
        self.quotes.clear();
        let mut bad = 0u32;
        let mut padded = [b' '; 64];
        for block in line.chunks(64) {
            let block: &[u8; 64] = match block.try_into() {
                Ok(full) => full,
                Err(_) => {
                    // the tail, padded with spaces (neither a quote nor a bad byte)
                    padded[..block.len()].copy_from_slice(block);
                    &padded
                }
            };
            let mut quotes = 0u64;
            for (k, part) in block.chunks_exact(16).enumerate() {
                let (q, b) = classify(part.try_into().expect("16 bytes"));
                quotes |= u64::from(q) << (16 * k);
                bad |= b;
            }
            self.quotes.push(quotes);
        }
        self.plain = bad == 0;
        self.plain
    }

    /// Whether the line has a quote at `i` (tests).
    #[cfg(test)]
    fn quote_at(&self, i: usize) -> bool {
        self.quotes
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
}

/// A block's quotes and its bad bytes (`\` or below 0x20), a bit per byte.
#[inline]
fn classify(block: &[u8; 16]) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
    unsafe {
        sse2::classify(block)
    }
    #[cfg(not(target_arch = "x86_64"))]
    classify_plain(block)
}

/// [`classify`] a byte at a time (other targets than x86-64, and the tests' oracle).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_plain(block: &[u8; 16]) -> (u32, u32) {
    let (mut quotes, mut bad) = (0u32, 0u32);
    for (i, &b) in block.iter().enumerate() {
        quotes |= u32::from(b == b'"') << i;
        bad |= u32::from(b == b'\\' || b < 0x20) << i;
    }
    (quotes, bad)
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// [`super::classify`]: three byte compares and two movemasks.
    #[target_feature(enable = "sse2")]
    pub(super) fn classify(block: &[u8; 16]) -> (u32, u32) {
        // SAFETY: reads the 16 bytes of `block` (an unaligned load).
        let v = unsafe { _mm_loadu_si128(block.as_ptr().cast::<__m128i>()) };
        let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
        // below 0x20: min(v, 0x1f) == v
        let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
        (
            _mm_movemask_epi8(quote) as u32,
            _mm_movemask_epi8(_mm_or_si128(backslash, control)) as u32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// [`is_valid`], checking that the byte-at-a-time scan agrees with it.
    fn valid(text: &[u8]) -> bool {
        let indexed = is_valid(text, &mut LineIndex::default());
        let mut s = Scan::new(text);
        let plain = s.skip_value(0).is_ok() && s.end().is_ok();
        assert_eq!(
            indexed, plain,
            "indexed and plain scans disagree on {text:?}"
        );
        indexed
    }

    fn serde_ok(text: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(text).is_ok()
    }

    #[test]
    fn known_cases() {
        for ok in [
            "{}",
            "[]",
            " {\"a\" : [1, -2.5e+3, true, false, null, \"x\\\"y\\u00e9\"] } ",
            "0",
            "-0.0E-0",
            "\"\\/\\b\\f\\n\\r\\t\"",
            "{\"a\":{\"b\":{}}}",
            "\"long string without escapes, more than eight bytes\"",
            "\"é東京😀\"",
        ] {
            assert!(valid(ok.as_bytes()), "{ok}");
            assert!(serde_ok(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "{",
            "{\"a\"}",
            "{\"a\":}",
            "{\"a\":1,}",
            "[1,]",
            "01",
            "1.",
            "1e",
            "-",
            "+1",
            "tru",
            "nul",
            "\"abc",
            "\"a\\x\"",
            "\"\\u12g4\"",
            "\"a\tb\"",
            "{1:2}",
            "[1 2]",
            "{} x",
            ".5",
            "NaN",
            "\"\\u12\"",
        ] {
            assert!(!valid(bad.as_bytes()), "{bad}");
            assert!(!serde_ok(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "[".repeat(MAX_NESTING + 1) + &"]".repeat(MAX_NESTING + 1);
        assert!(!valid(deep.as_bytes()));
        let ok = "[".repeat(MAX_NESTING) + &"]".repeat(MAX_NESTING);
        assert!(valid(ok.as_bytes()));
        // a million brackets: an error, not a stack overflow
        assert!(!valid("{\"a\":[".repeat(1_000_000).as_bytes()));
    }

    fn json_value() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            "[ -~é\\t\\\\\"]{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-z]{0,4}", inner), 0..5).prop_map(|v| {
                    let body: Vec<String> =
                        v.iter().map(|(k, x)| format!("\"{k}\" : {x}")).collect();
                    format!("{{ {} }}", body.join(","))
                }),
            ]
        })
    }

    #[test]
    fn line_index_marks_quotes_and_falls_back_on_escapes_and_control_bytes() {
        let mut ix = LineIndex::default();
        let line = br#"{"a.b":"xy","bc":[1.5,"z"]} "#.repeat(3);
        assert!(ix.build(&line));
        for (i, &b) in line.iter().enumerate() {
            assert_eq!(ix.quote_at(i), b == b'"', "byte {i}");
        }
        for bad in [&br#"{"a":"x\"y"}"#[..], b"{\"a\":\"x\ty\"}", b"{\"a\":1}\r"] {
            assert!(!ix.build(bad), "{bad:?}");
        }
        // both scans give the same reason, with the same position
        for text in [&br#"{"a":"x"#[..], br#"{"a":"x","b":tru}"#, br#"{"a" "b"}"#] {
            assert!(ix.build(text));
            let mut fast = Scan::indexed(text, &ix);
            let mut plain = Scan::new(text);
            let reason = |s: &mut Scan<'_>| s.skip_value(0).and_then(|_| s.end()).unwrap_err();
            assert_eq!(reason(&mut fast), reason(&mut plain));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The SIMD classification agrees with the plain loop on every byte.
        #[test]
        fn classify_agrees_with_the_plain_loop(block in prop::array::uniform16(
            prop::sample::select(b"\"\\\x00\x1f\x20\x7f\x80\xffa{".to_vec())
        )) {
            prop_assert_eq!(classify(&block), classify_plain(&block));
        }

        /// Valid documents, and the same with one byte changed, cut or inserted: the skipper
        /// and serde_json agree on every one.
        #[test]
        fn scan_agrees_with_serde_json(
            doc in json_value(),
            at in any::<prop::sample::Index>(),
            byte in prop::sample::select(b"{}[]\",:\\ 0-.eE+tfnux\x01\x7f".to_vec()),
            edit in 0..4u8,
        ) {
            prop_assert!(valid(doc.as_bytes()), "{}", doc);
            let mut b = doc.clone().into_bytes();
            let i = at.index(b.len() + 1);
            match edit {
                0 => b.insert(i, byte),
                1 if i < b.len() => b[i] = byte,
                2 => b.truncate(i),
                _ => {}
            }
            if let Ok(text) = std::str::from_utf8(&b) {
                prop_assert_eq!(valid(text.as_bytes()), serde_ok(text.as_bytes()), "{}", text);
            }
        }
    }
}
