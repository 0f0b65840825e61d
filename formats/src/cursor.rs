//! A cursor over a line of space-separated fields, some quoted (`"..."`, backslash escapes
//! kept verbatim) or bracketed (`[...]`): the shape of access logs and of AWS's logs.
//! Fields are returned as spans of the line, never copied.

/// A position in a line (see the module docs).
pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    pub(crate) fn skip_spaces(&mut self) {
        while self.s.as_bytes().get(self.pos) == Some(&b' ') {
            self.pos += 1;
        }
    }

    /// Whether the line is used up (trailing spaces aside).
    pub(crate) fn done(&mut self) -> bool {
        self.skip_spaces();
        self.pos >= self.s.len()
    }

    /// A bare field up to the next space. Returns (offset in line, text).
    pub(crate) fn bare(&mut self, what: &str) -> Result<(usize, &'a str), String> {
        self.skip_spaces();
        let start = self.pos;
        let end =
            memchr::memchr(b' ', &self.s.as_bytes()[start..]).map_or(self.s.len(), |i| start + i);
        if end == start {
            return Err(format!("missing {what}"));
        }
        self.pos = end;
        Ok((start, &self.s[start..end]))
    }

    /// Where the field opened at `self.pos` closes: the first `close` from `from`, a
    /// backslash escaping the next byte when `escapes`.
    fn closing(&self, from: usize, close: u8, escapes: bool) -> Option<usize> {
        let b = self.s.as_bytes();
        let mut i = from;
        // Jump between the bytes that matter: the closing byte, and backslashes when they
        // escape (most fields have none).
        while i < b.len() {
            let hit = if escapes {
                memchr::memchr2(close, b'\\', &b[i..])
            } else {
                memchr::memchr(close, &b[i..])
            };
            i += hit?;
            if b[i] == close {
                return Some(i);
            }
            i += 2;
        }
        None
    }

    /// A field between `open` and `close`; backslash escapes the next byte when `escapes`.
    pub(crate) fn delimited(
        &mut self,
        open: u8,
        close: u8,
        escapes: bool,
        what: &str,
    ) -> Result<(usize, &'a str), String> {
        self.skip_spaces();
        if self.s.as_bytes().get(self.pos) != Some(&open) {
            return Err(format!("expected {} before {what}", open as char));
        }
        let start = self.pos + 1;
        let end = self
            .closing(start, close, escapes)
            .ok_or_else(|| format!("unterminated {what}"))?;
        self.pos = end + 1;
        Ok((start, &self.s[start..end]))
    }

    /// A `"`-quoted field with backslash escapes.
    pub(crate) fn quoted(&mut self, what: &str) -> Result<(usize, &'a str), String> {
        self.delimited(b'"', b'"', true, what)
    }

    /// The next field, whichever its shape: `(offset, text, quoted)`, where quoted and
    /// bracketed text is what is inside. `n` (1-based) names it in errors.
    pub(crate) fn field(&mut self, n: usize) -> Result<(usize, &'a str, bool), String> {
        self.skip_spaces();
        let (close, escapes, kind) = match self.s.as_bytes().get(self.pos) {
            Some(b'"') => (b'"', true, "quoted"),
            Some(b'[') => (b']', false, "bracketed"),
            _ => {
                let start = self.pos;
                let b = self.s.as_bytes();
                let end = memchr::memchr(b' ', &b[start..]).map_or(b.len(), |i| start + i);
                self.pos = end;
                return Ok((start, &self.s[start..end], false));
            }
        };
        let start = self.pos + 1;
        let end = self.closing(start, close, escapes).ok_or_else(|| {
            format!(
                "unterminated {kind} field {n} starting at byte {}",
                self.pos
            )
        })?;
        self.pos = end + 1;
        Ok((start, &self.s[start..end], true))
    }
}
