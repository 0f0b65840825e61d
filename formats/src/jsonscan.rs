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
//! A byte-at-a-time walk ([`Scan`]) spends its time finding where strings end, and each step
//! waits on the one before (where the next token starts depends on where this one ends). So a
//! line is walked in two stages, as simdjson does:
//! 1. [`LineIndex::build`] classifies the line 64 bytes at a time (AVX2 or SSE2 compares into
//!    bit masks) and, with a few word operations per block, finds its *structurals*: the
//!    operators outside strings, the opening quotes, the first byte of each number or literal.
//!    Escapes are found without a loop (a backslash run's parity), strings by a prefix XOR of
//!    the quotes that are not escaped.
//! 2. [`Walk`] checks the grammar over the structurals alone: a step is a bit scan and a
//!    byte compare, a string is skipped whole, a scalar is checked by [`Scan`]'s number and
//!    literal rules.
//!
//! The walk gives no reasons: a line it does not accept (or a line with a control byte, an
//! unpaired quote or a bad escape, which stage 1 does not hand it) is walked again by
//! [`Scan`], which decides and says why. [`Scan`] also uses the index: when the line has no
//! `\` and no control byte, every quote delimits a string and a string ends at the next quote
//! bit; otherwise strings are read eight bytes a step (SWAR: one subtraction-and-mask finds
//! the first `"`, `\` or control byte among eight) and escapes checked.
//! ```text
//!   {"a":"x\"y","b":[1,true]}
//!   ^^  ^^     ^^  ^^^^ ^  ^^     structurals: { " : " , " : [ 1 , t ] }
//!        ^ ^      ^          quote bits of the byte walk (here it reads strings instead:
//!                            the line has a backslash)
//! ```
//! Nesting (objects and arrays together) is bounded by [`MAX_NESTING`], serde_json's own
//! recursion limit, so no input can exhaust the stack. What it accepts is exactly what
//! serde_json accepts (the `scan_agrees_with_serde_json` property test, which also checks
//! that the structural walk, the indexed scan and the byte-at-a-time scan agree, the walk
//! accepting every valid line it is handed), except that `\u` escapes are checked for four
//! hex digits only, not for unpaired surrogates (as serde_json does when it ignores a string).
//!
//! Most of the crate's `unsafe` is here: the SIMD compares of [`LineIndex::build`] (SSE2 is
//! part of every x86-64 CPU; AVX2 only where the CPU has it; a plain loop on other targets,
//! and the oracle of a property test for both). The rest: `json.rs` takes a line as text
//! without a UTF-8 check when this classification saw only ASCII bytes, and `builder.rs`
//! asks for cache lines ahead (a hint that reads nothing).

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

/// Whether `text` is one JSON value (with surrounding whitespace), by this skipper: by its
/// structurals ([`Walk`]) when [`LineIndex::build`] allows it and they accept it, else by
/// [`Scan`]. `index`: scratch space, reused between calls.
pub fn is_valid(text: &[u8], index: &mut LineIndex) -> bool {
    index.build(text);
    if let Some(mut w) = Walk::new(text, index) {
        if w.value(0).is_ok() && w.end().is_ok() {
            return true;
        }
    }
    let mut s = Scan::indexed(text, index);
    s.skip_value(0).is_ok() && s.end().is_ok()
}

/// Whether `s` is one JSON number, whole (the rule of [`Scan::number`], on a slice whose end is
/// known).
#[inline]
fn is_number(s: &[u8]) -> bool {
    fn digits(s: &[u8]) -> usize {
        s.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let s = s.strip_prefix(b"-").unwrap_or(s);
    let int = digits(s);
    if int == 0 || (int > 1 && s[0] == b'0') {
        return false;
    }
    let mut rest = &s[int..];
    if let Some(r) = rest.strip_prefix(b".") {
        let frac = digits(r);
        if frac == 0 {
            return false;
        }
        rest = &r[frac..];
    }
    match rest {
        [] => true,
        [b'e' | b'E', exp @ ..] => {
            let exp = match exp {
                [b'+' | b'-', e @ ..] => e,
                e => e,
            };
            !exp.is_empty() && digits(exp) == exp.len()
        }
        _ => false,
    }
}

/// The [`Walk`] did not accept the line. Not a verdict: the caller walks it again with
/// [`Scan`], which accepts or rejects it and gives the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Miss;

/// A [`Walk`] step's result.
pub(crate) type Walked<T> = std::result::Result<T, Miss>;

/// A walk over a line's structurals ([`LineIndex::tokens`]) instead of its bytes: the
/// next token's position is known without reading what lies between, so a walk step is a
/// load and a compare, not a loop, and steps do not wait on one another.
///
/// Between two structurals there can only be spaces, a string's contents (after its opening
/// quote, up to and with its closing quote) or a scalar's other bytes, so checking the grammar
/// over the structurals checks the line: a string is valid whatever it holds (the line has no
/// control byte, and [`LineIndex::build`] checked its escapes), and a scalar is checked by
/// [`Scan`]'s own number and literal rules, then must end at a space or at the next
/// structural. It accepts only lines that [`Scan`] accepts (the `scan_agrees_with_serde_json`
/// property test); a line it does not accept ([`Miss`]) is walked again by [`Scan`] for the
/// verdict and the reason.
/// ```text
///   {"ab": [1,true], "c":"x,y"}
///   ^^    ^^ ^^    ^ ^  ^^    ^     tokens: { " : [ 1 , t ] , " : " }
/// ```
pub(crate) struct Walk<'a> {
    b: &'a [u8],
    tokens: &'a [u64],
    /// The word of `tokens` being walked, and its tokens not taken yet.
    w: usize,
    bits: u64,
    /// [`LineIndex::backslash`].
    backslash: bool,
    /// [`LineIndex::dots`], and [`Self::has_dot`]'s cursor: the first dot at or after the
    /// last key asked about (0 before the first: every key starts after its quote).
    dots: &'a [u64],
    dot: usize,
    /// The last key start [`Self::seek_dot`] was asked for (checked in debug builds).
    #[cfg(debug_assertions)]
    dot_from: usize,
}

impl<'a> Walk<'a> {
    /// A walk of `b` by `index` (built for `b`), when [`LineIndex::build`] made its
    /// structurals.
    pub(crate) fn new(b: &'a [u8], index: &'a LineIndex) -> Option<Self> {
        index.structural.then(|| Walk {
            b,
            tokens: &index.tokens,
            w: 0,
            bits: index.tokens.first().copied().unwrap_or(0),
            backslash: index.backslash,
            dots: &index.dots,
            dot: 0,
            #[cfg(debug_assertions)]
            dot_from: 0,
        })
    }

    /// Whether the line has a `\` (a string may need unescaping).
    pub(crate) fn may_escape(&self) -> bool {
        self.backslash
    }

    /// Whether `b[start..end]` (a key) holds a `.`. Keys are asked about in the order they
    /// come in the line (`start` never goes back), so this keeps the position of the first
    /// dot not before the last key asked about and moves it on only past a key: a compare per
    /// key, and a word or so per dot in the line.
    #[inline(always)]
    pub(crate) fn has_dot(&mut self, start: usize, end: usize) -> bool {
        #[cfg(debug_assertions)]
        assert!(start >= self.dot_from, "keys asked about out of order");
        if self.dot < start {
            self.seek_dot(start);
        }
        self.dot < end
    }

    /// Moves [`Self::has_dot`]'s cursor to the first dot at or after `start`.
    #[inline(never)]
    fn seek_dot(&mut self, start: usize) {
        #[cfg(debug_assertions)]
        {
            self.dot_from = start;
        }
        let mut w = start / 64;
        let Some(&first) = self.dots.get(w) else {
            self.dot = usize::MAX;
            return;
        };
        let mut bits = first & (!0u64 << (start % 64));
        while bits == 0 {
            w += 1;
            let Some(&next) = self.dots.get(w) else {
                self.dot = usize::MAX;
                return;
            };
            bits = next;
        }
        self.dot = w * 64 + bits.trailing_zeros() as usize;
    }

    /// Takes the next token: its position and byte.
    #[inline(always)]
    fn next(&mut self) -> Walked<(usize, u8)> {
        let p = self.next_pos();
        let &c = self.b.get(p).ok_or(Miss)?;
        self.bits &= self.bits - 1;
        Ok((p, c))
    }

    /// The next token's byte.
    #[inline(always)]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        let p = self.next_pos();
        self.b.get(p).copied()
    }

    /// Where the next token is (the line's end after the last).
    #[inline(always)]
    fn next_pos(&mut self) -> usize {
        while self.bits == 0 {
            let Some(&bits) = self.tokens.get(self.w + 1) else {
                return self.b.len();
            };
            self.w += 1;
            self.bits = bits;
        }
        self.w * 64 + self.bits.trailing_zeros() as usize
    }

    /// After the closing quote of the string just taken: the last byte before the next token
    /// that is not a space.
    #[inline(always)]
    fn string_end(&mut self) -> usize {
        let mut e = self.next_pos();
        while self.b[e - 1] == b' ' {
            e -= 1;
        }
        e
    }

    /// Takes the next value (`nesting`: objects and arrays around it, as for
    /// [`Scan::skip_value`]): its first byte and its span.
    #[inline(always)]
    pub(crate) fn value(&mut self, nesting: usize) -> Walked<(u8, usize, usize)> {
        let (p, c) = self.next()?;
        let end = match c {
            b'"' => self.string_end(),
            b'{' | b'[' => self.nested(c, nesting)?,
            _ => self.scalar(p, c)?,
        };
        Ok((c, p, end))
    }

    /// The rest of an object or array whose opening token (`c`) was taken; returns where it
    /// ends.
    #[inline(never)]
    fn nested(&mut self, c: u8, nesting: usize) -> Walked<usize> {
        if nesting >= MAX_NESTING {
            return Err(Miss);
        }
        if c == b'{' {
            return Ok(self.object_rest(|w, _| w.value(nesting + 1).map(drop))?.1 + 1);
        }
        if self.peek() == Some(b']') {
            return Ok(self.next()?.0 + 1);
        }
        loop {
            self.value(nesting + 1)?;
            match self.next()? {
                (_, b',') => {}
                (p, b']') => return Ok(p + 1),
                _ => return Err(Miss),
            }
        }
    }

    /// A number or literal at `p` (`c`: its first byte), by [`Scan`]'s rules; returns where it
    /// ends.
    ///
    /// Its bytes are known without reading them one by one: from `p` up to the next token
    /// there is one run of scalar bytes (neither an operator, a space nor a quote), then only
    /// spaces ([`LineIndex::build`] makes the first byte of each such run a token). So the run
    /// is the line's bytes up to the next token less the spaces at its end, and the scalar is
    /// valid when the whole run is one number or literal: a slice compare or a loop over
    /// digits with a known end.
    #[inline]
    fn scalar(&mut self, p: usize, c: u8) -> Walked<usize> {
        let mut e = self.next_pos();
        // `b[p]` is not a space, so this stops at `p + 1` at the latest
        while self.b[e - 1] == b' ' {
            e -= 1;
        }
        let run = &self.b[p..e];
        let ok = match c {
            b't' => run == b"true",
            b'f' => run == b"false",
            b'n' => run == b"null",
            _ => is_number(run),
        };
        if ok {
            Ok(e)
        } else {
            Err(Miss)
        }
    }

    /// Walks the object at the next token: `entry(self, key)` is called for each entry with
    /// the span of its key (between the quotes) and must take the value. Returns whether the
    /// object had any entry.
    #[inline(always)]
    pub(crate) fn object(
        &mut self,
        entry: impl FnMut(&mut Self, (usize, usize)) -> Walked<()>,
    ) -> Walked<bool> {
        if self.next()?.1 != b'{' {
            return Err(Miss);
        }
        Ok(self.object_rest(entry)?.0)
    }

    /// [`Self::object`] after its `{`; also returns where its `}` is.
    #[inline(always)]
    fn object_rest(
        &mut self,
        mut entry: impl FnMut(&mut Self, (usize, usize)) -> Walked<()>,
    ) -> Walked<(bool, usize)> {
        let (mut q, mut c) = self.next()?;
        if c == b'}' {
            return Ok((false, q));
        }
        loop {
            if c != b'"' {
                return Err(Miss);
            }
            let (colon, c2) = self.next()?;
            if c2 != b':' {
                return Err(Miss);
            }
            // the key's closing quote: the last byte before the colon that is not a space
            let mut close = colon - 1;
            while self.b[close] == b' ' {
                close -= 1;
            }
            entry(self, (q + 1, close))?;
            match self.next()? {
                (_, b',') => (q, c) = self.next()?,
                (p, b'}') => return Ok((true, p)),
                _ => return Err(Miss),
            }
        }
    }

    /// Fails unless every token was taken.
    pub(crate) fn end(&mut self) -> Walked<()> {
        if self.next_pos() == self.b.len() {
            Ok(())
        } else {
            Err(Miss)
        }
    }
}

/// A line's `"` bytes, a bit each (bit `i % 64` of word `i / 64`), whether every one of them
/// delimits a string, and the line's structurals for [`Walk`]. Kept between lines to reuse its
/// buffers.
#[derive(Debug, Default, Clone)]
pub struct LineIndex {
    quotes: Vec<u64>,
    /// No `\` and no control byte: every quote delimits a string ([`Scan::indexed`]).
    plain: bool,
    /// The line has a `\` (a string may need unescaping).
    backslash: bool,
    /// The line's structurals (see [`Walk`]), a bit each like `quotes`: each `{ } [ ] : ,`
    /// outside strings, each opening quote, and the first byte of each run of other bytes
    /// outside strings (numbers, literals, or garbage). Only when [`Self::structural`].
    tokens: Vec<u64>,
    /// No control byte, the quotes that are not escaped pair up, and every escape in a string
    /// is valid: [`Walk`] may walk the line.
    structural: bool,
    /// The line's `.` bytes, a bit each like `quotes` (a key without one is matched by its
    /// whole length, see [`Walk::has_dot`]).
    dots: Vec<u64>,
    /// Every byte is ASCII (so the line is UTF-8 without a check of its own).
    ascii: bool,
}

impl LineIndex {
    /// Indexes `line` and returns whether every one of its quotes delimits a string: true when
    /// the line has no `\` and no byte below 0x20. Then a string's end is the next quote bit
    /// after its opening quote, found without reading the string (see [`Scan::indexed`]);
    /// otherwise the scan reads strings byte by byte, checking escapes and control bytes.
    ///
    /// It also finds the line's structurals, for [`Walk`] (also when the line has escapes:
    /// 11% of the generated events have an escaped quote somewhere). A 64-byte block at a
    /// time: its quotes, backslashes, control bytes, operators, spaces, dots and non-ASCII
    /// bytes as bit masks (AVX2 or SSE2 on x86-64, a plain loop elsewhere), then per block, in
    /// 64-bit words:
    /// ```text
    ///   line       {"k":"a\"b", "n":12}
    ///   escaped          ^               bytes after an odd run of backslashes
    ///   quotes      ^ ^ ^    ^  ^ ^      not escaped
    ///   inside      ^^^ ^^^^^   ^^       prefix XOR of quotes: opening quote and contents
    ///   tokens     ^^  ^^     ^ ^  ^^ ^  operators and opening quotes outside strings, and
    ///                                    the first byte of each scalar
    /// ```
    pub fn build(&mut self, line: &[u8]) -> bool {
        self.quotes.clear();
        self.tokens.clear();
        self.dots.clear();
        let (mut backslashes, mut controls, mut high) = (0u64, 0u64, 0u64);
        let mut bad_escape = false;
        let mut padded = [b' '; 64];
        // all ones while the previous block ended inside a string
        let mut in_string = 0u64;
        // bit 0: the previous block's last byte was a scalar's (see below)
        let mut scalar_carry = 0u64;
        // bit 0: the previous block ended with a backslash that escapes the next byte
        let mut escape_carry = 0u64;
        let wide = simd::wide();
        let blocks = line.chunks_exact(64);
        let tail = blocks.remainder();
        // the tail, padded with spaces (neither a quote nor a bad byte)
        let last = (!tail.is_empty()).then(|| {
            padded[..tail.len()].copy_from_slice(tail);
            (&padded, (1u64 << tail.len()) - 1)
        });
        let blocks = blocks.map(|b| (<&[u8; 64]>::try_from(b).expect("64 bytes"), !0u64));
        for (n, (block, valid)) in blocks.chain(last).enumerate() {
            let m = classify(block, wide);
            self.quotes.push(m.quotes);
            self.dots.push(m.dots);
            backslashes |= m.backslashes;
            controls |= m.controls;
            high |= m.high;
            let mut quotes = m.quotes;
            if m.backslashes | escape_carry != 0 {
                let (escaped, escapes) = escaped(m.backslashes, &mut escape_carry);
                quotes &= !escaped;
                let mut escapes = escapes;
                while escapes != 0 {
                    let at = n * 64 + escapes.trailing_zeros() as usize;
                    bad_escape |= !valid_escape(line, at);
                    escapes &= escapes - 1;
                }
            }
            // `inside`: the opening quote and the contents of each string (a prefix XOR of
            // the quote bits: a bit is set when an odd number of quotes precede it or sit on
            // it); the closing quote is outside.
            let inside = prefix_xor(quotes) ^ in_string;
            in_string = ((inside as i64) >> 63) as u64;
            // bytes of numbers and literals (or garbage, escaped quotes outside strings
            // included): neither an operator, a space nor a quote, outside strings; a run's
            // first byte is a structural
            let scalar = !(m.ops | m.spaces | quotes | inside) & valid;
            let starts = scalar & !((scalar << 1) | scalar_carry);
            scalar_carry = scalar >> 63;
            self.tokens
                .push((m.ops & !inside) | (quotes & inside) | starts);
        }
        self.backslash = backslashes != 0;
        self.ascii = high == 0;
        self.plain = backslashes | controls == 0;
        self.structural = controls == 0 && in_string == 0 && !bad_escape;
        self.plain
    }

    /// Whether every byte of the line last built is ASCII: then it is UTF-8 with no check of
    /// its own (the check is the classification's seventh movemask, of the bytes themselves).
    pub fn is_ascii(&self) -> bool {
        self.ascii
    }

    /// Whether the line has a quote at `i` (tests).
    #[cfg(test)]
    fn quote_at(&self, i: usize) -> bool {
        self.quotes
            .get(i / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }
}

/// Whether the backslash at `at` of `line` starts a valid escape, by [`Scan`]'s rule (`\u`
/// then four hex digits). A backslash that turns out to be outside a string is refused by the
/// walk anyway (it is part of a scalar), whatever this says.
fn valid_escape(line: &[u8], at: usize) -> bool {
    match line.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => true,
        Some(b'u') => line
            .get(at + 2..at + 6)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
        _ => false,
    }
}

/// The bytes that a backslash escapes, and the backslashes that escape them, in a block with
/// these `backslashes` (`carry`: bit 0 when the previous block's last byte escapes this
/// block's first; updated for the next block). In a run of backslashes, each odd one (first,
/// third, ...) escapes the byte after it. Without a loop (simdjson's `json_escape_scanner`):
/// subtracting the backslashes from the bytes after them, with all odd bits set, turns
/// even-aligned runs and odd-aligned runs into the same pattern once the odd bits are flipped
/// back.
#[inline]
fn escaped(backslashes: u64, carry: &mut u64) -> (u64, u64) {
    const ODD_BITS: u64 = 0xAAAA_AAAA_AAAA_AAAA;
    // a backslash escaped by the previous block's last one escapes nothing
    let potential = backslashes & !*carry;
    let maybe_escaped = potential << 1;
    let escape_and_terminal = (maybe_escaped | ODD_BITS).wrapping_sub(potential) ^ ODD_BITS;
    let escaped = escape_and_terminal ^ (backslashes | *carry);
    let escapes = escape_and_terminal & backslashes;
    *carry = escapes >> 63;
    (escaped, escapes)
}

/// [`escaped`] a byte at a time (the tests' oracle).
#[cfg(test)]
fn escaped_plain(backslashes: u64, carry: &mut u64) -> (u64, u64) {
    let (mut escaped, mut escapes) = (0u64, 0u64);
    let mut next_escaped = *carry == 1;
    for i in 0..64 {
        if next_escaped {
            escaped |= 1 << i;
            next_escaped = false;
        } else if backslashes >> i & 1 == 1 {
            escapes |= 1 << i;
            next_escaped = true;
        }
    }
    *carry = u64::from(next_escaped);
    (escaped, escapes)
}

/// A 64-byte block's bytes of interest, a bit per byte.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Masks {
    /// `"`
    quotes: u64,
    /// `\`
    backslashes: u64,
    /// below 0x20
    controls: u64,
    /// `{ } [ ] : ,`
    ops: u64,
    /// ` `
    spaces: u64,
    /// `.`
    dots: u64,
    /// 0x80 and above (not ASCII)
    high: u64,
}

/// Each bit the parity of the set bits at or below it: with quote bits, the bytes from an
/// opening quote up to (not including) its closing one. Six shifts (a carry-less multiply by
/// all ones would do it in one, with a CPU feature check).
#[inline]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// A block's masks. `wide`: [`simd::wide`].
#[inline]
fn classify(block: &[u8; 64], wide: bool) -> Masks {
    #[cfg(target_arch = "x86_64")]
    {
        if wide {
            // SAFETY: `wide` is true only when the CPU has AVX2 (`simd::wide`).
            unsafe { simd::classify_avx2(block) }
        } else {
            // SAFETY: SSE2 is part of the x86-64 baseline: every x86-64 CPU has it.
            unsafe { simd::classify_sse2(block) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = wide;
        classify_plain(block)
    }
}

/// [`classify`] a byte at a time (other targets than x86-64, and the tests' oracle).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn classify_plain(block: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for (i, &b) in block.iter().enumerate() {
        m.quotes |= u64::from(b == b'"') << i;
        m.backslashes |= u64::from(b == b'\\') << i;
        m.controls |= u64::from(b < 0x20) << i;
        m.ops |= u64::from(matches!(b, b'{' | b'}' | b'[' | b']' | b':' | b',')) << i;
        m.spaces |= u64::from(b == b' ') << i;
        m.dots |= u64::from(b == b'.') << i;
        m.high |= u64::from(b >= 0x80) << i;
    }
    m
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::{
        __m128i, __m256i, _mm256_cmpeq_epi8, _mm256_loadu_si256, _mm256_min_epu8,
        _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _mm_cmpeq_epi8, _mm_loadu_si128,
        _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };

    /// Whether this CPU has AVX2 (checked once, then cached by the standard library).
    #[inline]
    pub(super) fn wide() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// A `classify` at one vector width: `$lanes` bytes a step, with that width's load,
    /// compare, minimum, or, splat and movemask (seven compares and seven movemasks a step).
    macro_rules! classify_at {
        ($name:ident, $feature:literal, $vec:ty, $lanes:literal, $mask:ty, $load:ident,
         $cmpeq:ident, $min:ident, $or:ident, $set1:ident, $movemask:ident) => {
            #[target_feature(enable = $feature)]
            pub(super) fn $name(block: &[u8; 64]) -> super::Masks {
                let mut m = super::Masks::default();
                for k in 0..64 / $lanes {
                    // SAFETY: reads bytes $lanes * k .. $lanes * (k + 1) of `block` (an
                    // unaligned load).
                    let v = unsafe { $load(block.as_ptr().add($lanes * k).cast::<$vec>()) };
                    let eq = |c: u8| $cmpeq(v, $set1(c as i8));
                    let bits = |x: $vec| u64::from($movemask(x) as $mask) << ($lanes * k);
                    // below 0x20: min(v, 0x1f) == v
                    let control = $cmpeq($min(v, $set1(0x1f)), v);
                    // `[` and `]` are `{` and `}` with bit 0x20 clear: one compare each for both
                    let lower = $or(v, $set1(0x20));
                    let brackets = $or(
                        $cmpeq(lower, $set1(b'{' as i8)),
                        $cmpeq(lower, $set1(b'}' as i8)),
                    );
                    let ops = $or(brackets, $or(eq(b':'), eq(b',')));
                    m.quotes |= bits(eq(b'"'));
                    m.backslashes |= bits(eq(b'\\'));
                    m.controls |= bits(control);
                    m.ops |= bits(ops);
                    m.spaces |= bits(eq(b' '));
                    m.dots |= bits(eq(b'.'));
                    m.high |= bits(v);
                }
                m
            }
        };
    }

    classify_at!(
        classify_sse2,
        "sse2",
        __m128i,
        16,
        u16,
        _mm_loadu_si128,
        _mm_cmpeq_epi8,
        _mm_min_epu8,
        _mm_or_si128,
        _mm_set1_epi8,
        _mm_movemask_epi8
    );
    classify_at!(
        classify_avx2,
        "avx2",
        __m256i,
        32,
        u32,
        _mm256_loadu_si256,
        _mm256_cmpeq_epi8,
        _mm256_min_epu8,
        _mm256_or_si256,
        _mm256_set1_epi8,
        _mm256_movemask_epi8
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether [`classify`] may take the AVX2 path here.
    fn simd_wide() -> bool {
        #[cfg(target_arch = "x86_64")]
        return simd::wide();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// [`is_valid`], checking that the byte-at-a-time scan, the indexed scan and (where it
    /// may walk the line) the structural walk all agree with it.
    fn valid(text: &[u8]) -> bool {
        let mut ix = LineIndex::default();
        let verdict = is_valid(text, &mut ix);
        assert_eq!(ix.is_ascii(), text.is_ascii(), "ASCII flag of {text:?}");
        let mut s = Scan::new(text);
        let plain = s.skip_value(0).is_ok() && s.end().is_ok();
        assert_eq!(
            verdict, plain,
            "is_valid and the plain scan disagree on {text:?}"
        );
        let mut s = Scan::indexed(text, &ix);
        let indexed = s.skip_value(0).is_ok() && s.end().is_ok();
        assert_eq!(
            indexed, plain,
            "indexed and plain scans disagree on {text:?}"
        );
        if let Some(mut w) = Walk::new(text, &ix) {
            // not only never wrong: it accepts every valid line it walks (else no speed-up)
            let walked = w.value(0).is_ok() && w.end().is_ok();
            assert_eq!(walked, plain, "the walk and the scans disagree on {text:?}");
        }
        verdict
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
            // strings, numbers and literals across 64-byte blocks
            &format!(
                "{{\"a\":\"{}\",\"b\":[{}]}}",
                "x,:{}[] ".repeat(20),
                "12345.5,".repeat(30) + "true"
            ),
            &format!("{}{}", " ".repeat(60), "-12345e+10 "),
            &format!("[{}null]", "false ,".repeat(40)),
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
            "[1\"a\"]",
            "[truefalse]",
            "[1.5.5]",
            "{\"a\"\"b\":1}",
            "{\"a\":1 \"b\":2}",
            "[,]",
            "{,}",
            "[1,]",
            "{\"a\":[}",
            "{\"a\":1]",
            "[\"a\":1]",
            "\"a\" \"b\"",
            "{\"a\":\"x\",\"b\":\"unterminated}",
            &format!("[{}1x]", "1,".repeat(40)),
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

    /// Random JSON documents, their strings made of `chars` (a regex character class).
    fn json_value(chars: &'static str) -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            proptest::string::string_regex(&format!("{chars}{{0,20}}"))
                .expect("a regex")
                .prop_map(|s| serde_json::to_string(&s).unwrap()),
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
        // the structurals: operators outside strings, opening quotes, a scalar's first byte
        let line = br#"{"ab": [1,true], "c":"x,y"}"#;
        assert!(ix.build(line));
        let tokens: Vec<u8> = (0..line.len())
            .filter(|&i| ix.tokens[i / 64] >> (i % 64) & 1 == 1)
            .map(|i| line[i])
            .collect();
        assert_eq!(tokens, b"{\":[1,t],\":\"}");
        // an unpaired quote: no walk
        assert!(ix.build(br#"{"a":"x}"#) && !ix.structural);
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

    /// Every line of up to three pieces of scalars, operators, quotes, spaces and bad bytes, in
    /// six surroundings, at the start of a block and across a block boundary: the structural
    /// walk and the byte-at-a-time scan agree on each (all of a scalar's edges: where it ends,
    /// what may follow it, a sign or exponent alone, garbage outside strings).
    #[test]
    fn the_walk_and_the_scan_agree_on_every_short_line() {
        let pieces: Vec<&[u8]> = [
            "0", "1", "-", ".", "e", "E", "+", " ", "\"", ",", "[", "]", "{", "}", ":", "t", "\\",
            "x", "\u{e9}", "\x7f", "true", "null",
        ]
        .iter()
        .map(|p| p.as_bytes())
        .collect();
        let around: &[(&[u8], &[u8])] = &[
            (b"", b""),
            (b"[", b"]"),
            (b" ", b" "),
            (b"{\"a\":", b"}"),
            (b"[1,", b",2]"),
            (b"[\"a\"", b"\"b\"]"),
        ];
        let mut ix = LineIndex::default();
        let mut check = |text: &[u8]| {
            ix.build(text);
            let mut s = Scan::new(text);
            let plain = s.skip_value(0).is_ok() && s.end().is_ok();
            if let Some(mut w) = Walk::new(text, &ix) {
                let walked = w.value(0).is_ok() && w.end().is_ok();
                assert_eq!(walked, plain, "{:?}", String::from_utf8_lossy(text));
            }
        };
        let n = pieces.len();
        for len in 0..=3u32 {
            for k in 0..n.pow(len) {
                let mut mid = Vec::new();
                let mut rest = k;
                for _ in 0..len {
                    mid.extend_from_slice(pieces[rest % n]);
                    rest /= n;
                }
                for (pre, post) in around {
                    let line = [*pre, &mid, *post].concat();
                    check(&line);
                    check(&[&[b' '; 62][..], &line].concat());
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The SIMD classification agrees with the plain loop on every byte.
        #[test]
        fn classify_agrees_with_the_plain_loop(block in prop::collection::vec(
            prop::sample::select(b"\"\\\x00\x1f\x20\x7f\x80\xffa{}[]:,;\x5b\x5d\x7c\x1b.".to_vec()),
            64,
        )) {
            let block: &[u8; 64] = block.as_slice().try_into().unwrap();
            let want = classify_plain(block);
            prop_assert_eq!(classify(block, false), want);
            if simd_wide() {
                prop_assert_eq!(classify(block, true), want);
            }
        }

        /// The walk's number check on a run of known end agrees with the scan's byte-at-a-time
        /// rule reading that run whole.
        #[test]
        fn is_number_agrees_with_the_scan(s in "[-+.eE0-9x]{0,9}") {
            let mut scan = Scan::new(s.as_bytes());
            let whole = scan.number().is_ok() && scan.pos == s.len();
            prop_assert_eq!(is_number(s.as_bytes()), whole, "{}", s);
        }

        /// The branch-free escape scan agrees with the byte-at-a-time one, runs of
        /// backslashes across blocks included.
        #[test]
        fn escaped_agrees_with_the_plain_loop(
            blocks in prop::collection::vec(prop::collection::vec(prop::bool::weighted(0.4), 64), 1..4),
        ) {
            let (mut carry, mut carry_plain) = (0, 0);
            for block in blocks {
                let backslashes = block.iter().enumerate().fold(0u64, |m, (i, &b)| m | u64::from(b) << i);
                prop_assert_eq!(
                    escaped(backslashes, &mut carry),
                    escaped_plain(backslashes, &mut carry_plain)
                );
                prop_assert_eq!(carry, carry_plain);
            }
        }

        /// Valid documents, and the same with one byte changed, cut or inserted: the skipper
        /// and serde_json agree on every one.
        #[test]
        fn scan_agrees_with_serde_json(
            // strings with escapes (walked by the scan), and without (by the structural walk)
            doc in prop_oneof![json_value("[ -~é\\t\\\\\"]"), json_value("[ !#-\\[\\]-~é]")],
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
