//! JSON lines: one object per line, nested objects flattened to dotted column names.
//!
//! # Mapping
//! - `{"a": {"b": 1}}` becomes column `a.b`; flattening goes as deep as
//!   [`crate::Limits::max_depth`]. An empty nested object `{}` is kept as the string `{}`.
//! - Arrays are kept as their verbatim JSON text in a string column (`["x", 1]`), so that
//!   nothing is lost and readers can use their JSON functions on them.
//! - Strings become strings, or timestamps when they are ISO 8601 (see [`crate::ts`]).
//! - Numbers become ints (fit in i64) or floats (finite); other numbers keep their text.
//! - A line is rejected when it is not valid JSON, not an object, not UTF-8, nests too deep,
//!   or names a field twice (also after flattening: `{"a.b":1,"a":{"b":2}}`).
//!
//! Parsing uses `serde_json` with borrowed [`RawValue`]s, so each value's verbatim text span is
//! known without copying, and strings without escapes are never copied before Arrow.
//!
//! # Projection
//! With [`crate::ParseOptions::project`] (rollup-only runs) only the wanted columns are parsed:
//! the line is walked by [`crate::jsonscan`], each key is matched against a [`Projection`]
//! tree, a wanted leaf goes through the same value code as the full parse (`push_leaf`),
//! and every other value is skipped, checked to be JSON but not parsed. The walk goes over
//! the line's structurals ([`Walk`]); a line that walk does not accept is parsed again by the
//! byte walk ([`Scan`]), which decides and gives the reason, on a clean row (the
//! `the_walk_and_the_scan_agree` property test: same rows, values and reasons). A key with
//! no dot is matched by its whole length only (the index marks dots). A field named twice is
//! caught among the wanted fields only (the others' names are not kept). A wanted leaf goes to
//! a builder slot ([`crate::builder::Target::Slot`]), so its column is found once per chunk,
//! not by name on every line.
//! ```text
//!   {"ts":"…","event_id":"…","device":{"os":"tv","model":"…"},"tags":[…]}
//!    ^wanted   ^skipped              ^descend ^wanted ^skipped   ^skipped
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::builder::{RowsBuilder, Target};
use crate::jsonscan::{LineIndex, Miss, Scan, Walk, Walked};
use crate::LineParser;

/// The JSON-lines parser. Keeps only reusable path buffers between lines.
pub struct JsonParser {
    max_depth: usize,
    path: String,
    project: Option<Arc<Projection>>,
    /// The line's index, for the projected walk (see [`LineIndex::build`]).
    index: LineIndex,
    /// The slots (below 64) the structural walk pushed to in this line.
    slots_seen: u64,
}

/// The columns a projected parse keeps (see [`crate::ParseOptions::project`]), as a tree of
/// folded key segments (the builder's folding: invalid name characters become `_`, ASCII case
/// ignored): `device.os` is the child `os` of the child `device` of the root. A line's keys are
/// matched against the children of the node of the object they are in, so keys that are not
/// wanted cost a length compare or two and build no path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    root: Node,
    /// The first wanted column as given: a line with none of the wanted fields still makes a
    /// row, of nulls, by pushing it as null.
    first: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    /// This path is a wanted column: its builder slot ([`Target::Slot`]).
    leaf: Option<u32>,
    /// Wanted paths below it, by folded segment.
    children: Vec<(Box<[u8]>, Node)>,
    /// Per key length (the last entry for [`BY_LEN_LONG`] bytes or more): 0 when no child's
    /// segment has it, the child's index + 1 when one has, [`BY_LEN_SEVERAL`] otherwise. Most
    /// keys are not wanted, and most of those are told so by their length alone; a key
    /// without a dot is compared with one child at most, mostly.
    by_len: [u8; BY_LEN_LONG + 1],
}

/// [`Node::by_len`]'s last entry: this many bytes or more.
const BY_LEN_LONG: usize = 31;
/// [`Node::by_len`]: several children (or a long length): compare with each.
const BY_LEN_SEVERAL: u8 = u8::MAX;

impl Node {
    /// The node of `key` (which may hold dots: `{"a.b": 1}` is column `a.b` too): a child
    /// whose segment is the whole key, or, for a key that goes on with a dot after a child's
    /// segment, the rest of the key under that child. No scan of the key for dots: a key whose
    /// length is no child's, and that has no dot right after a child's length, is told apart
    /// by a length compare and a byte compare per child.
    fn find(&self, key: &[u8]) -> Option<&Node> {
        if self.by_len[key.len().min(BY_LEN_LONG)] == 0
            && !self
                .children
                .iter()
                .any(|(k, _)| key.get(k.len()) == Some(&b'.'))
        {
            return None;
        }
        let folded_eq = |k: &[u8], s: &[u8]| k.iter().zip(s).all(|(a, b)| *a == fold(*b));
        for (k, n) in &self.children {
            if key.len() == k.len() {
                if folded_eq(k, key) {
                    return Some(n);
                }
            } else if key.len() > k.len() && key[k.len()] == b'.' && folded_eq(k, key) {
                if let Some(found) = n.find(&key[k.len() + 1..]) {
                    return Some(found);
                }
            }
        }
        None
    }
}

impl Node {
    /// [`Self::find`] for a key without a dot: only a child whose segment is the whole key.
    #[inline]
    fn find_whole(&self, key: &[u8]) -> Option<&Node> {
        let folded_eq = |(k, _): &&(Box<[u8]>, Node)| {
            k.len() == key.len() && k.iter().zip(key).all(|(a, b)| *a == fold(*b))
        };
        match self.by_len[key.len().min(BY_LEN_LONG)] {
            0 => None,
            BY_LEN_SEVERAL => self.children.iter().find(folded_eq).map(|(_, n)| n),
            one => Some(&self.children[usize::from(one) - 1])
                .filter(folded_eq)
                .map(|(_, n)| n),
        }
    }
}

impl Projection {
    /// The projection onto `columns` (flattened names such as `device.os`).
    pub fn new<S: AsRef<str>>(columns: impl IntoIterator<Item = S>) -> Self {
        let mut p = Projection::default();
        let mut slots = 0;
        for c in columns {
            let c = c.as_ref();
            if p.first.is_empty() {
                p.first = c.to_string();
            }
            let mut node = &mut p.root;
            for segment in c.as_bytes().split(|b| *b == b'.') {
                let folded: Box<[u8]> = segment.iter().map(|b| fold(*b)).collect();
                let i = match node.children.iter().position(|(k, _)| *k == folded) {
                    Some(i) => i,
                    None => {
                        let at = folded.len().min(BY_LEN_LONG);
                        let i = node.children.len();
                        node.by_len[at] = match u8::try_from(i + 1) {
                            Ok(one) if node.by_len[at] == 0 && at < BY_LEN_LONG => one,
                            _ => BY_LEN_SEVERAL,
                        };
                        node.children.push((folded, Node::default()));
                        i
                    }
                };
                node = &mut node.children[i].1;
            }
            if node.leaf.is_none() {
                node.leaf = Some(slots);
                slots += 1;
            }
        }
        p
    }
}

/// One byte of a name, folded the way the builder matches column names: a table lookup, as
/// keys are matched byte by byte on every line.
#[inline]
fn fold(b: u8) -> u8 {
    FOLD[usize::from(b)]
}

/// [`fold`]'s table: ASCII lowercase, and `_` for the bytes of
/// [`crate::schema::INVALID_NAME_CHARS`] (checked by a test).
const FOLD: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = (i as u8).to_ascii_lowercase();
        i += 1;
    }
    let invalid = b" ,;{}()\n\t=";
    let mut j = 0;
    while j < invalid.len() {
        t[invalid[j] as usize] = b'_';
        j += 1;
    }
    t
};

impl JsonParser {
    /// A parser that rejects objects nested deeper than `max_depth`.
    pub fn new(max_depth: usize) -> Self {
        JsonParser {
            max_depth,
            path: String::new(),
            project: None,
            index: LineIndex::default(),
            slots_seen: 0,
        }
    }

    /// A parser that keeps only the fields of `project` (all of them if `None`): the values of
    /// the others are skipped, checked to be JSON but not parsed.
    pub fn with_projection(mut self, project: Option<Arc<Projection>>) -> Self {
        self.project = project;
        self
    }

    /// The projected parse of the object at `s.pos` (`depth`: 1 for the line's object), whose
    /// wanted fields are `node`'s children. A wanted leaf is parsed as the full parse would
    /// (an object value is flattened whole), a wanted prefix is descended into when it holds an
    /// object, and every other value is skipped by [`Scan::skip_value`]. Returns whether the
    /// object had any field.
    fn projected(
        &mut self,
        s: &mut Scan<'_>,
        line: &str,
        base: usize,
        depth: usize,
        rows: &mut RowsBuilder,
        node: &Node,
    ) -> Result<bool, String> {
        if depth > self.max_depth {
            return Err(format!(
                "objects nest deeper than max_depth ({})",
                self.max_depth
            ));
        }
        let prefix_len = self.path.len();
        let fields = s.object(|s, (ks, ke, escaped)| {
            // matched as bytes (a `str` slice checks char boundaries), as most keys are not
            // wanted
            let unescaped: Option<String> = if escaped {
                Some(
                    serde_json::from_str(&line[ks - 1..=ke])
                        .map_err(|e| format!("invalid JSON string: {e}"))?,
                )
            } else {
                None
            };
            let key = unescaped
                .as_deref()
                .map_or(&line.as_bytes()[ks..ke], str::as_bytes);
            let Some(wanted) = node.find(key) else {
                return s.skip_value(depth).map(drop);
            };
            self.enter(
                prefix_len,
                depth,
                unescaped.as_deref().unwrap_or(&line[ks..ke]),
            );
            if let Some(slot) = wanted.leaf {
                let start = s.pos;
                s.skip_value(depth)?;
                let may_escape = s.may_escape();
                Ok(self.wanted_leaf(slot, line, start, s.pos, base, depth, rows, may_escape)?)
            } else if s.peek() == Some(b'{') {
                self.projected(s, line, base, depth + 1, rows, wanted)?;
                Ok(())
            } else {
                s.skip_value(depth).map(drop)
            }
        })?;
        self.path.truncate(prefix_len);
        Ok(fields)
    }

    /// The projected parse of a whole line, by its structurals when `index` has them and they
    /// accept it, else by [`Self::projected`] (which decides, and gives the reason).
    fn walk_or_scan(
        &mut self,
        text: &str,
        base: usize,
        rows: &mut RowsBuilder,
        root: &Node,
        index: &LineIndex,
    ) -> Result<bool, String> {
        #[cfg(test)]
        let index = if tests::SCAN_ONLY.with(std::cell::Cell::get) {
            &LineIndex::default()
        } else {
            index
        };
        if let Some(mut w) = Walk::new(text.as_bytes(), index) {
            self.slots_seen = 0;
            match self.projected_walk(&mut w, text, base, 1, rows, root) {
                Ok(fields) if w.end().is_ok() => return Ok(fields),
                // no verdict: the scan decides, on a clean row
                _ => {
                    rows.abort_row();
                    rows.begin_row();
                    self.path.clear();
                }
            }
        }
        let mut s = Scan::indexed(text.as_bytes(), index);
        let fields = self.projected(&mut s, text, base, 1, rows, root)?;
        s.end()?;
        Ok(fields)
    }

    /// [`Self::projected`] by the line's structurals ([`Walk`]), the same walk step for step.
    /// A [`Miss`] is no verdict: the caller walks the line
    /// again with [`Self::projected`].
    fn projected_walk(
        &mut self,
        w: &mut Walk<'_>,
        line: &str,
        base: usize,
        depth: usize,
        rows: &mut RowsBuilder,
        node: &Node,
    ) -> Walked<bool> {
        if depth > self.max_depth {
            return Err(Miss);
        }
        let prefix_len = self.path.len();
        let fields = w.object(|w, (ks, ke)| {
            let key = &line.as_bytes()[ks..ke];
            // (a byte loop: keys are short, and `contains` calls memchr)
            #[allow(clippy::manual_contains)]
            if w.may_escape() && key.iter().any(|&b| b == b'\\') {
                // an escaped key: the scan unescapes it
                return Err(Miss);
            }
            let found = if w.has_dot(ks, ke) {
                node.find(key)
            } else {
                node.find_whole(key)
            };
            let Some(wanted) = found else {
                return w.value(depth).map(drop);
            };
            if let Some(slot) = wanted.leaf {
                let (c, start, end) = w.value(depth)?;
                // An object value (flattened by name), or a slot named twice in the line: the
                // scan parses the line (and names the field as the line spells it).
                let bit = 1u64.checked_shl(slot).unwrap_or(0);
                if c == b'{' || self.slots_seen & bit != 0 {
                    return Err(Miss);
                }
                self.slots_seen |= bit;
                let may_escape = w.may_escape();
                let v = &line[start..end];
                if bit != 0 && rows.slot_known(slot) {
                    // the column is known: no path to build
                    return push_leaf(Target::KnownSlot(slot), v, base + start, rows, may_escape)
                        .map_err(|_| Miss);
                }
                self.enter(prefix_len, depth, &line[ks..ke]);
                push_leaf(
                    Target::Slot(slot, &self.path),
                    v,
                    base + start,
                    rows,
                    may_escape,
                )
                .map_err(|_| Miss)
            } else if w.peek() == Some(b'{') {
                self.enter(prefix_len, depth, &line[ks..ke]);
                self.projected_walk(w, line, base, depth + 1, rows, wanted)?;
                Ok(())
            } else {
                w.value(depth).map(drop)
            }
        })?;
        self.path.truncate(prefix_len);
        Ok(fields)
    }

    /// Sets the path to the prefix's first `prefix_len` bytes and `key` under it.
    #[inline]
    fn enter(&mut self, prefix_len: usize, depth: usize, key: &str) {
        self.path.truncate(prefix_len);
        if depth > 1 {
            self.path.push('.');
        }
        self.path.push_str(key);
    }

    /// The value `line[start..end]` of a wanted leaf (at `depth`, its path in `self.path`):
    /// parsed as the full parse would, an object value flattened whole.
    #[allow(clippy::too_many_arguments)]
    fn wanted_leaf(
        &mut self,
        slot: u32,
        line: &str,
        start: usize,
        end: usize,
        base: usize,
        depth: usize,
        rows: &mut RowsBuilder,
        may_escape: bool,
    ) -> Result<(), String> {
        let v = &line[start..end];
        let off = base + start;
        if !v.starts_with('{') {
            push_leaf(Target::Slot(slot, &self.path), v, off, rows, may_escape)
        } else if v[1..v.len() - 1].trim().is_empty() {
            rows.push_raw_str(&self.path, off, v.len());
            Ok(())
        } else {
            self.object(v, line, base, depth + 1, rows)
        }
    }

    fn object(
        &mut self,
        text: &str,
        line: &str,
        base: usize,
        depth: usize,
        rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        if depth > self.max_depth {
            return Err(format!(
                "objects nest deeper than max_depth ({})",
                self.max_depth
            ));
        }
        let entries = parse_entries(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let prefix_len = self.path.len();
        for (key, raw) in &entries {
            self.path.truncate(prefix_len);
            if depth > 1 {
                self.path.push('.');
            }
            self.path.push_str(key);
            let v = raw.get();
            let off = base + (v.as_ptr() as usize - line.as_ptr() as usize);
            match v.as_bytes()[0] {
                b'{' => {
                    if v[1..v.len() - 1].trim().is_empty() {
                        rows.push_raw_str(&self.path, off, v.len());
                    } else {
                        // The builder catches a field named twice only among the leaves; a key
                        // repeated with an object value (`{"a":1,"a":{"b":2}}`) flattens to
                        // distinct leaves, so it is caught here.
                        let top = prefix_len == 0;
                        if entries
                            .iter()
                            .filter(|(k, _)| same_field(k, key, top))
                            .count()
                            > 1
                        {
                            return Err(format!("duplicate field {:?}", self.path));
                        }
                        self.object(v, line, base, depth + 1, rows)?;
                    }
                }
                _ => push_leaf(Target::Name(&self.path), v, off, rows, true)?,
            }
        }
        self.path.truncate(prefix_len);
        Ok(())
    }
}

impl LineParser for JsonParser {
    fn rejects_nul(&self) -> bool {
        true
    }

    fn parse_line(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
    ) -> Result<(), String> {
        self.path.clear();
        // Taken out and put back, not cloned: an `Arc` clone per line is an atomic add on a
        // counter that the other parse threads' parsers share, and the cache line it bounces
        // between cores holds the projection's root too (measured: most of `Node::find`).
        let Some(project) = self.project.take() else {
            let text = crate::utf8(line)?;
            return self.object(text, text, base, 1, rows);
        };
        let outcome = self.parse_projected(line, base, rows, &project);
        self.project = Some(project);
        outcome
    }
}

impl JsonParser {
    /// [`LineParser::parse_line`] with a projection.
    fn parse_projected(
        &mut self,
        line: &[u8],
        base: usize,
        rows: &mut RowsBuilder,
        project: &Projection,
    ) -> Result<(), String> {
        let mut index = std::mem::take(&mut self.index);
        // The index is built from the bytes, and tells whether they are all ASCII: most lines
        // are, and skip the UTF-8 check (about 3% of a rollup-only run).
        index.build(line);
        let text = if index.is_ascii() {
            debug_assert!(line.is_ascii());
            // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
            Ok(unsafe { std::str::from_utf8_unchecked(line) })
        } else {
            crate::utf8(line)
        };
        let fields =
            text.and_then(|text| self.walk_or_scan(text, base, rows, &project.root, &index));
        self.index = index;
        let fields = fields?;
        if fields && rows.pending_fields() == 0 {
            // a record, just not one with any wanted field: a row of nulls
            rows.push_null(&project.first);
        }
        Ok(())
    }
}

/// A JSON leaf (or array) value `v`, at chunk offset `off`, as the cell of column `path`.
/// `may_escape`: false when the line is known to hold no `\` (a string is then taken as is).
fn push_leaf(
    path: Target<'_>,
    v: &str,
    off: usize,
    rows: &mut RowsBuilder,
    may_escape: bool,
) -> Result<(), String> {
    match v.as_bytes()[0] {
        b'[' => rows.push_raw_str(path, off, v.len()),
        b'"' => {
            let inner = &v[1..v.len() - 1];
            if may_escape && inner.contains('\\') {
                let s: String =
                    serde_json::from_str(v).map_err(|e| format!("invalid JSON string: {e}"))?;
                rows.push_owned_str(path, &s);
            } else {
                rows.push_str(path, inner, off + 1);
            }
        }
        b't' => rows.push_bool(path, true, off, 4),
        b'f' => rows.push_bool(path, false, off, 5),
        b'n' => rows.push_null(path),
        _ => rows.push_number(path, v, off),
    }
    Ok(())
}

/// Whether two keys of one object name the same column: the builder's folding (invalid name
/// characters become `_`, ASCII case ignored), applied to their paths under the same prefix.
fn same_field(a: &str, b: &str, top: bool) -> bool {
    use crate::schema::{sanitize_name, INVALID_NAME_CHARS};
    if top && (a.is_empty() || b.is_empty()) {
        // an empty top-level name becomes `_`
        return sanitize_name(a).eq_ignore_ascii_case(&sanitize_name(b));
    }
    let fold = |c: u8| {
        if INVALID_NAME_CHARS.contains(&char::from(c)) {
            b'_'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

type Entries<'a> = Vec<(Cow<'a, str>, &'a RawValue)>;

/// Parses one JSON object into its entries, values left raw.
fn parse_entries(text: &str) -> serde_json::Result<Entries<'_>> {
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = EntriesSeed.deserialize(&mut de)?;
    de.end()?;
    Ok(entries)
}

struct EntriesSeed;

impl<'de> DeserializeSeed<'de> for EntriesSeed {
    type Value = Entries<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EntriesVisitor)
    }
}

struct EntriesVisitor;

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::with_capacity(map.size_hint().unwrap_or(16));
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let value: &'de RawValue = map.next_value()?;
            out.push((key, value));
        }
        Ok(out)
    }
}

/// Deserializes a key borrowed when it has no escapes, owned otherwise.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

#[cfg(test)]
mod tests {
    use super::fold;
    use crate::{parse_all, Format, ParseOptions};
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampMicrosecondType};
    use arrow_schema::DataType;

    fn parse(text: &str) -> crate::ParsedChunk {
        parse_all(&ParseOptions::new(Format::Json), text.as_bytes()).unwrap()
    }

    #[test]
    fn flattens_and_types() {
        let p = parse("{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[1, 2]},\"t\":\"2026-01-01T00:00:00Z\",\"f\":1.5}\r\n{\"a\":2,\"e\":null,\"b\":{}}");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        let b = &p.batch;
        let names: Vec<_> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names, ["a", "b.c", "b.d", "t", "f", "e", "b"]);
        assert_eq!(b.column(0).as_primitive::<Int64Type>().values(), &[1, 2]);
        assert_eq!(b.column(2).as_string::<i32>().value(0), "[1, 2]");
        assert_eq!(
            b.column(3)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_767_225_600_000_000
        );
        assert_eq!(b.column(4).as_primitive::<Float64Type>().value(0), 1.5);
        assert_eq!(b.column(5).data_type(), &DataType::Null);
        assert_eq!(b.column(6).as_string::<i32>().value(1), "{}");
    }

    #[test]
    fn widening_keeps_verbatim_text() {
        let p = parse("{\"v\":1.50}\n{\"v\":\"x\"}\n{\"v\":true}\n{\"v\":12345678901234567890}");
        let v = p.batch.column(0).as_string::<i32>();
        assert_eq!(
            (v.value(0), v.value(1), v.value(2), v.value(3)),
            ("1.50", "x", "true", "12345678901234567890")
        );
        let p = parse("{\"v\":1}\n{\"v\":2.5}");
        assert_eq!(
            p.batch.column(0).as_primitive::<Float64Type>().values(),
            &[1.0, 2.5]
        );
    }

    #[test]
    fn escapes_and_unicode() {
        let p = parse(r#"{"k\"ey":"a\"b\\c\u00e9\ud83d\ude00","s":"東京"}"#);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(p.batch.schema().field(0).name(), "k\"ey");
        assert_eq!(p.batch.column(0).as_string::<i32>().value(0), "a\"b\\cé😀");
        assert_eq!(p.batch.column(1).as_string::<i32>().value(0), "東京");
    }

    #[test]
    fn rejects_bad_lines_with_line_numbers() {
        let text: &[u8] = b"{\"a\":1}\nnot json\n[1]\n\n{\"a\":1,\"a\":2}\n{\"a.b\":1,\"a\":{\"b\":2}}\n{\"a\":\"\xff\"}\n{\"a\":3}";
        let p = parse_all(&ParseOptions::new(Format::Json), text).unwrap();
        let lines: Vec<u64> = p.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 3, 4, 5, 6, 7]);
        assert_eq!(p.batch.num_rows(), 2);
        assert_eq!(p.lines, 8);
        assert!(
            p.rejects[3].reason.contains("duplicate"),
            "{}",
            p.rejects[3].reason
        );
        assert!(
            p.rejects[4].reason.contains("duplicate"),
            "{}",
            p.rejects[4].reason
        );
        // The rejected rows left nothing behind: only column a exists.
        assert_eq!(p.batch.num_columns(), 1);
    }

    #[test]
    fn key_repeated_with_an_object_value_is_a_duplicate() {
        let text = "{\"a\":1,\"a\":{\"b\":2}}\n{\"a\":{\"b\":1},\"A\":{\"c\":2}}\n{\"x\":{\"a\":{\"b\":1},\"a\":{\"c\":2}}}\n{\"a\":{\"b\":1},\"ab\":{\"b\":2},\"a b\":{\"c\":3}}";
        let p = parse(text);
        assert_eq!(
            p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(p.rejects.iter().all(|r| r.reason.contains("duplicate")));
        assert_eq!(p.batch.num_rows(), 1);
    }

    #[test]
    fn unescaped_string_survives_a_following_blank_or_long_line() {
        // A rejected line that never began a row must not roll back the previous row's arena.
        let mut opts = ParseOptions::new(Format::Json);
        opts.limits.max_line_bytes = 20;
        let text = "{\"a\":\"\\u0041\"}\n\n{\"a\":\"\\u0042\"}\n{\"a\":\"0123456789012345\"}\n{\"a\":\"\\u0043\"}";
        let p = parse_all(&opts, text.as_bytes()).unwrap();
        assert_eq!(p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4]);
        let a = p.batch.column(0).as_string::<i32>();
        assert_eq!((a.value(0), a.value(1), a.value(2)), ("A", "B", "C"));
    }

    #[test]
    fn limits() {
        let mut opts = ParseOptions::new(Format::Json);
        opts.limits.max_depth = 2;
        opts.limits.max_line_bytes = 40;
        opts.limits.max_columns = 3;
        let text = "{\"a\":{\"b\":{\"c\":1}}}\n{\"a\":\"0123456789012345678901234567890123456789\"}\n{\"a\":1,\"b\":2,\"c\":3}\n{\"d\":4}\n{\"x\":{\"y\":1}}";
        let p = parse_all(&opts, text.as_bytes()).unwrap();
        let lines: Vec<u64> = p.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 2, 4, 5]);
        assert_eq!(p.rejects[1].raw.len(), 40);
    }

    #[test]
    fn records_without_fields_and_reserved_names_are_rejected() {
        let mut opts = ParseOptions::new(Format::Json);
        opts.reserved.push("dt".into());
        let p = parse_all(&opts, b"{}\n{\"a\":1}\n{\"DT\":\"x\",\"a\":2}\n{\"a\":{}}").unwrap();
        assert_eq!(p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3]);
        assert!(p.rejects[0].reason.contains("no fields"));
        assert!(p.rejects[1].reason.contains("reserved"));
        assert_eq!(p.batch.num_rows(), 2);
    }

    #[test]
    fn empty_keys_keep_their_place_in_the_path() {
        let p = parse("{\"\":{\"x\":1},\"x\":2}");
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(column_names(&p.batch), [".x", "x"]);
    }

    #[test]
    fn forced_names_are_sanitized_and_case_insensitive() {
        let mut opts = ParseOptions::new(Format::Json);
        opts.forced.insert("x y".into(), crate::ColumnType::String);
        let p = parse_all(&opts, b"{\"X Y\":1}").unwrap();
        assert_eq!(
            p.batch.schema().field(0).data_type(),
            &arrow_schema::DataType::Utf8
        );
    }

    #[test]
    fn forced_types() {
        let mut opts = ParseOptions::new(Format::Json);
        opts.forced.insert("n".into(), crate::ColumnType::Int);
        opts.forced.insert("s".into(), crate::ColumnType::String);
        let p = parse_all(
            &opts,
            b"{\"n\":\"42\",\"s\":7}\n{\"n\":\"x\"}\n{\"n\":1.5}\n{\"N\":3}",
        )
        .unwrap();
        assert_eq!(p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(
            p.batch.column(0).as_primitive::<Int64Type>().values(),
            &[42, 3]
        );
        assert_eq!(p.batch.column(1).as_string::<i32>().value(0), "7");
    }

    fn projected(cols: &[&str], text: &str) -> crate::ParsedChunk {
        let mut opts = ParseOptions::new(Format::Json);
        opts.project = Some(std::sync::Arc::new(super::Projection::new(cols)));
        parse_all(&opts, text.as_bytes()).unwrap()
    }

    thread_local! {
        /// Set: this thread's projected parses never take the structural walk (an empty
        /// index has no structurals), only the scan.
        pub(super) static SCAN_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// [`projected`] by the scan alone.
    fn projected_by_scan(cols: &[&str], text: &str) -> crate::ParsedChunk {
        SCAN_ONLY.with(|c| c.set(true));
        let p = projected(cols, text);
        SCAN_ONLY.with(|c| c.set(false));
        p
    }

    /// Column `name` of `b` as display strings (`None`: absent or null).
    fn column_names(b: &arrow_array::RecordBatch) -> Vec<String> {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn column_text(b: &arrow_array::RecordBatch, name: &str) -> Vec<Option<String>> {
        use arrow_array::Array;
        let opts = arrow_cast::display::FormatOptions::default();
        // (by folded name: both parses name a column by its first spelling in the chunk)
        let schema = b.schema();
        match schema
            .fields()
            .iter()
            .position(|f| f.name().eq_ignore_ascii_case(name))
        {
            None => vec![None; b.num_rows()],
            Some(i) => {
                let mut c = b.column(i).clone();
                if let DataType::Timestamp(u, Some(_)) = c.data_type() {
                    // (displaying a named time zone needs chrono-tz)
                    c = arrow_cast::cast(&c, &DataType::Timestamp(*u, None)).unwrap();
                }
                let f = arrow_cast::display::ArrayFormatter::try_new(c.as_ref(), &opts).unwrap();
                let nulls = c.logical_nulls();
                (0..c.len())
                    .map(|r| {
                        let valid = nulls.as_ref().is_none_or(|n| n.is_valid(r));
                        valid.then(|| f.value(r).to_string())
                    })
                    .collect()
            }
        }
    }

    #[test]
    fn projection_keeps_the_wanted_fields_and_rejects_what_is_not_json() {
        let text = "{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[1,{\"z\":2}]},\"skip\":{\"deep\":[\"\\u00e9\",null]}}\n\
                    {\"B\":{\"C\":\"y\"},\"other\":true}\n\
                    {\"a\":2,\"skip\":[1,]}\n\
                    {\"a\":3,\"skip\":\"unterminated}\n\
                    {\"nothing\":\"wanted\"}\n\
                    {}\n\
                    {\"a\":4} trailing\n\
                    {\"a\":5,\"b\":{\"c\":{\"e\":1}}}";
        let p = projected(&["a", "b.c"], text);
        assert_eq!(
            p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(),
            [3, 4, 6, 7],
            "{:?}",
            p.rejects
        );
        let b = &p.batch;
        assert_eq!(b.num_rows(), 4);
        let a = column_text(b, "a");
        assert_eq!(a, [Some("1".into()), None, None, Some("5".into())]);
        let c = column_text(b, "b.c");
        assert_eq!(c, [Some("x".into()), Some("y".into()), None, None]);
        // an object value of a wanted column flattens whole, as in the full parse
        assert_eq!(column_text(b, "b.c.e")[3].as_deref(), Some("1"));
        assert!(b.schema().index_of("skip").is_err());
        assert!(b.schema().index_of("other").is_err());
    }

    #[test]
    fn the_fold_table_folds_as_the_builder_does() {
        for b in 0..=255u8 {
            let want = if crate::schema::INVALID_NAME_CHARS.contains(&char::from(b)) {
                b'_'
            } else {
                b.to_ascii_lowercase()
            };
            assert_eq!(fold(b), want, "byte {b:#04x}");
        }
    }

    #[test]
    fn projected_fields_keep_one_column_per_folded_name_and_reject_duplicates() {
        let text = concat!(
            "{\"Country\":\"US\",\"device\":{\"os\":\"tv\"}}\n",
            "{\"country\":\"FR\",\"device.OS\":\"ios\"}\n",
            "{\"country\":\"DE\",\"COUNTRY\":\"DE\"}\n",
            "{\"device.os\":\"a\",\"device\":{\"os\":\"b\"}}\n",
            "{\"other\":1,\"OTHER\":2}\n",
            "{\"COUNTRY\":\"JP\"}",
        );
        let wanted = ["country", "device.os"];
        let (p, full) = (projected(&wanted, text), parse(text));
        let lines = |c: &crate::ParsedChunk| c.rejects.iter().map(|r| r.line).collect::<Vec<_>>();
        // a wanted field named twice is rejected by both; an unwanted one by the full parse only
        assert_eq!(lines(&p), [3, 4]);
        assert_eq!(lines(&full), [3, 4, 5]);
        // the reason spells the field as the line does, not as the column's first spelling
        // (which depends on where the chunk starts)
        let reasons: Vec<_> = p.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                r#"duplicate field "COUNTRY""#,
                r#"duplicate field "device.os""#
            ]
        );
        assert_eq!(p.batch.num_columns(), 2, "{:?}", p.batch.schema());
        assert_eq!(column_names(&p.batch), ["Country", "device.os"]);
        let country = column_text(&p.batch, "country");
        let want = |v: &[Option<&str>]| v.iter().map(|s| s.map(String::from)).collect::<Vec<_>>();
        assert_eq!(country, want(&[Some("US"), Some("FR"), None, Some("JP")]));
        let os = column_text(&p.batch, "device.os");
        assert_eq!(os, want(&[Some("tv"), Some("ios"), None, None]));
    }

    #[test]
    fn projection_matches_dotted_keys_and_folded_names() {
        let text = "{\"b.c\":\"dotted\"}\n{\"B\":{\"C.D\":1}}\n{\"x y\":2,\"b.\":3,\"b\":{\"\":4}}";
        let p = projected(&["b.c", "b.c.d", "x_y"], text);
        assert!(p.rejects.is_empty(), "{:?}", p.rejects);
        assert_eq!(column_text(&p.batch, "b.c")[0].as_deref(), Some("dotted"));
        assert_eq!(column_text(&p.batch, "B.C.D")[1].as_deref(), Some("1"));
        assert_eq!(column_text(&p.batch, "x_y")[2].as_deref(), Some("2"));
        assert_eq!(p.batch.num_columns(), 3, "{:?}", p.batch.schema());
    }

    use proptest::prelude::*;

    fn json_value(depth: u32) -> BoxedStrategy<String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            (-1000i64..1000).prop_map(|i| i.to_string()),
            (-1e6f64..1e6).prop_map(|f| format!("{f:.2}")),
            "[ -~é]{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            Just("\"2026-01-02T03:04:05Z\"".to_string()),
            Just("[1, {\"x\": 2}]".to_string()),
        ];
        if depth == 0 {
            return leaf.boxed();
        }
        prop_oneof![
            3 => leaf,
            1 => prop::collection::btree_map("[a-d]", json_value(depth - 1), 0..4).prop_map(|m| {
                let body: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                format!("{{{}}}", body.join(", "))
            }),
        ]
        .boxed()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// On random lines (valid ones and ones with a byte broken), the projected parse keeps
        /// exactly the full parse's rows and rejects, and its columns equal the full parse's.
        #[test]
        fn projection_agrees_with_the_full_parse(
            lines in prop::collection::vec(
                (prop::collection::btree_map("[a-d]", json_value(2), 1..5), any::<prop::sample::Index>(), 0..6u8),
                1..30,
            ),
            wanted in prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c.a", "c.b", "d.d.a", "a.b"]), 1..4),
        ) {
            let text: Vec<String> = lines
                .iter()
                .map(|(m, at, edit)| {
                    let body: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                    let mut l = format!("{{{}}}", body.join(", ")).into_bytes();
                    if *edit == 0 {
                        let i = at.index(l.len());
                        l[i] = b'"'; // usually breaks the line
                    }
                    String::from_utf8_lossy(&l).into_owned()
                })
                .collect();
            let text = text.join("\n");
            let full = parse(&text);
            let wanted: Vec<&str> = wanted.into_iter().collect();
            let proj = projected(&wanted, &text);
            let lines_of = |p: &crate::ParsedChunk| p.rejects.iter().map(|r| r.line).collect::<Vec<_>>();
            prop_assert_eq!(lines_of(&proj), lines_of(&full), "{}", text);
            for w in &wanted {
                prop_assert_eq!(column_text(&proj.batch, w), column_text(&full.batch, w), "{} {}", w, text);
            }
        }

        /// The structural walk and the scan make the same projected parse: the same rows,
        /// values and column names, the same rejects with the same reasons. Keys here may
        /// hold dots or capitals and values escapes, so lines also name a field twice (which
        /// a projected parse catches among the wanted fields only, by either walk).
        #[test]
        fn the_walk_and_the_scan_agree(
            lines in prop::collection::vec(
                (
                    prop::collection::vec(("[a-c]|[a-c]\\.[a-c]|[A-C]|\"|é", json_value(2)), 1..5),
                    any::<prop::sample::Index>(),
                    prop::sample::select(b"\"\\{}[],: .9e-tx\t".to_vec()),
                    0..4u8,
                ),
                1..30,
            ),
            wanted in prop::collection::btree_set(prop::sample::select(vec!["a", "b", "c.a", "a.b", "b.c.a", "\"", "é"]), 1..4),
        ) {
            let text: Vec<String> = lines
                .iter()
                .map(|(m, at, byte, edit)| {
                    let body: Vec<String> = m
                        .iter()
                        .map(|(k, v)| format!("{}: {v}", serde_json::to_string(k).unwrap()))
                        .collect();
                    let mut l = format!("{{{}}}", body.join(",")).into_bytes();
                    let i = at.index(l.len());
                    match edit {
                        0 => l[i] = *byte,
                        1 => l.insert(i, *byte),
                        _ => {}
                    }
                    String::from_utf8_lossy(&l).into_owned()
                })
                .collect();
            let text = text.join("\n");
            let wanted: Vec<&str> = wanted.into_iter().collect();
            let (walked, scanned) = (projected(&wanted, &text), projected_by_scan(&wanted, &text));
            let rejects = |p: &crate::ParsedChunk| {
                p.rejects.iter().map(|r| (r.line, r.reason.clone())).collect::<Vec<_>>()
            };
            prop_assert_eq!(rejects(&walked), rejects(&scanned), "{}", text);
            prop_assert_eq!(column_names(&walked.batch), column_names(&scanned.batch), "{}", text);
            for name in column_names(&scanned.batch) {
                prop_assert_eq!(column_text(&walked.batch, &name), column_text(&scanned.batch, &name), "{} {}", name, text);
            }
        }
    }
}
