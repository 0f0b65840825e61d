//! Row-at-a-time accumulation of typed columns for one chunk.
//!
//! # Why
//! A line's fields arrive one by one, but a line must be accepted or rejected as a whole, and a
//! column's type is only known once the whole chunk has been seen. So fields are first recorded
//! as small [`Cell`]s (a kind, a parsed number, and the span of the value's verbatim text), the
//! row is validated on [`RowsBuilder::commit_row`], and arrays are built once in
//! [`RowsBuilder::finish`] with the column's final type. Each value is parsed once; strings are
//! copied once, into the Arrow buffer.
//!
//! A field's column is found by name when the row is committed (by its position in the last
//! row first, then by a map), unless the parser pushed it to a [`Target::Slot`]: a field it
//! already told apart, whose column is then known after the first row. Once it is, a row whose
//! fields all go to known slots ([`Target::KnownSlot`], a rollup-only run's rows) skips the
//! pending row: each field is appended to its column as it comes, the commit only counts the
//! row, and an abort takes the cells back out.
//!
//! ```text
//!  parser ──push_*──▶ pending row ──commit_row──▶ column cells ──finish──▶ Arrow arrays
//!                         │ (duplicate field? forced type? too many columns?)
//!                         └──▶ Err(reason): row rolled back, caller records a Reject
//! ```

use std::collections::HashMap;

/// Field-name lookups run once per field per line: a fast, non-cryptographic hasher. (Field
/// names come from untrusted input, but the column limit bounds each map's size.)
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Arc;

use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, NullArray, RecordBatch, RecordBatchOptions,
    StringArray, TimestampMicrosecondArray,
};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, Schema};

use crate::error::{FormatError, Result};
use crate::schema::{sanitize_name, ColumnType};
use crate::{ts, ParseOptions};

/// What a value looked like in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// JSON `null`, a missing field, or `-` in an access log.
    Null = 0,
    /// `true` / `false`.
    Bool = 1,
    /// An integer that fits in i64.
    Int = 2,
    /// A finite float.
    Float = 3,
    /// A recognised timestamp.
    Ts = 4,
    /// Anything else: text, arrays, numbers too large for i64.
    Str = 5,
}

/// One recorded value: its kind, its parsed number (int, float bits, micros or bool) and the
/// span of its verbatim text, either in the chunk or in the builder's arena.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    kind: Kind,
    in_arena: bool,
    off: u32,
    len: u32,
    num: u64,
}

impl Cell {
    const NULL: Cell = Cell {
        kind: Kind::Null,
        in_arena: false,
        off: 0,
        len: 0,
        num: 0,
    };
}

/// Cells after which a column is taken to be dense (see [`RowsBuilder::set_rows_hint`]).
const DENSE_CELLS: usize = 1024;

/// Largest integer magnitude a float represents exactly.
const MAX_EXACT_INT: u64 = 1 << 53;

struct Column {
    name: String,
    cells: Vec<Cell>,
    kinds: u8,
    big_int: bool,
    forced: Option<ColumnType>,
}

struct Pending {
    /// The field's name in `names` ([`BY_SLOT`]: pushed to a [`Target::KnownSlot`], named by
    /// its column).
    name: (usize, usize),
    /// The slot pushed to ([`Target::Slot`]), or [`NO_SLOT`].
    slot: u32,
    cell: Cell,
}

const NO_SLOT: u32 = u32::MAX;

/// [`Pending::name`] of a field pushed to a [`Target::KnownSlot`].
const BY_SLOT: (usize, usize) = (usize::MAX, usize::MAX);

/// Where a pushed value goes.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The field of this name: its column is looked up by name when the row is committed.
    Name(&'a str),
    /// A field the parser has already told apart (a projected column, see
    /// [`crate::json::Projection`]): slot `n`, whose column the builder remembers after its
    /// first row, so that no lookup by name is made after it. The name (as the line spells
    /// it) must fold to the same name every time.
    Slot(u32, &'a str),
    /// Slot `n` once its column is known ([`RowsBuilder::slot_known`]): no name is copied, so
    /// the parser need not build one. A reject reason would name the field by its column (its
    /// first spelling in the chunk), so the parser must catch a field named twice itself.
    KnownSlot(u32),
}

impl<'a> From<&'a str> for Target<'a> {
    fn from(name: &'a str) -> Self {
        Target::Name(name)
    }
}

impl<'a> From<&'a String> for Target<'a> {
    fn from(name: &'a String) -> Self {
        Target::Name(name)
    }
}

/// Accumulates rows for one chunk. See the module docs.
pub struct RowsBuilder {
    forced: FastMap<String, ColumnType>,
    /// Per folded column name: a user timestamp format (`ParseOptions::timestamp_formats`).
    ts_formats: FastMap<String, String>,
    reserved: Vec<String>,
    max_columns: usize,
    columns: Vec<Column>,
    exact: FastMap<Box<str>, usize>,
    folded: FastMap<String, usize>,
    arena: Vec<u8>,
    rows: usize,
    pending: Vec<Pending>,
    names: String,
    arena_mark: usize,
    /// Per column: the row that last named it, to catch duplicate fields in O(1).
    marks: Vec<usize>,
    /// Stamp of the open row attempt (rows that get rejected reuse their row number).
    attempt: usize,
    /// Per field position: the name the last committed row had there and its column. Rows of
    /// one format name their fields in the same order, so a name is usually resolved by one
    /// string comparison instead of a hash lookup.
    by_pos: Vec<(Box<str>, usize)>,
    /// Scratch for [`Self::commit_row`]: the open row's fields, resolved.
    resolved: Vec<(Option<usize>, Cell, Found)>,
    /// Per [`Target::Slot`]: its column, once a row with it was committed.
    slots: Vec<Option<usize>>,
    /// Bit `n`: slot `n` (below 64) has its column, without a forced type
    /// ([`Self::slot_known`] by one bit test).
    known: u64,
    /// The open row's fields that went straight to their columns ([`Self::push_direct`]), in
    /// the order pushed: slot, column, and the column's `kinds` and `big_int` before.
    direct: Vec<(u32, usize, u8, bool)>,
    /// Rows the chunk is expected to hold (an estimate), see [`Self::set_rows_hint`].
    rows_hint: usize,
    /// Recognises timestamps in strings, reading a run of them of one hour faster.
    iso: ts::IsoParser,
}

/// How a field name was resolved to its column (see [`RowsBuilder::lookup`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// The last row had this name at this position.
    ByPosition,
    /// By its exact spelling.
    Exact,
    /// By its folded name (a new spelling), or not found (a new column).
    Folded,
    /// By its slot ([`Target::Slot`]).
    Slot,
}

impl RowsBuilder {
    /// A builder for the options' forced types and limits.
    pub fn new(opts: &ParseOptions) -> Self {
        RowsBuilder {
            forced: opts
                .forced
                .iter()
                .map(|(k, v)| (sanitize_name(k).to_ascii_lowercase(), *v))
                .collect(),
            ts_formats: opts
                .timestamp_formats
                .iter()
                .map(|(k, v)| (sanitize_name(k).to_ascii_lowercase(), v.clone()))
                .collect(),
            reserved: opts
                .reserved
                .iter()
                .map(|n| sanitize_name(n).to_ascii_lowercase())
                .collect(),
            max_columns: opts.limits.max_columns,
            columns: Vec::new(),
            exact: FastMap::default(),
            folded: FastMap::default(),
            arena: Vec::new(),
            rows: 0,
            pending: Vec::new(),
            names: String::new(),
            arena_mark: 0,
            marks: Vec::new(),
            attempt: 0,
            by_pos: Vec::new(),
            resolved: Vec::new(),
            slots: Vec::new(),
            known: 0,
            direct: Vec::new(),
            rows_hint: 0,
            iso: ts::IsoParser::default(),
        }
    }

    /// Expects about `rows` rows: a column that reaches [`DENSE_CELLS`] cells after this
    /// reserves room for all of them at once.
    pub fn set_rows_hint(&mut self, rows: usize) {
        self.rows_hint = rows;
    }

    /// Rows committed so far.
    pub fn num_rows(&self) -> usize {
        self.rows
    }

    /// Fields recorded in the open row so far.
    pub fn pending_fields(&self) -> usize {
        self.pending.len() + self.direct.len()
    }

    /// Opens a new row.
    pub fn begin_row(&mut self) {
        self.drop_direct();
        self.attempt += 1;
        self.pending.clear();
        self.names.clear();
        self.arena_mark = self.arena.len();
    }

    /// Drops the open row and everything it wrote.
    pub fn abort_row(&mut self) {
        self.drop_direct();
        self.pending.clear();
        self.arena.truncate(self.arena_mark);
    }

    /// Takes the open row's direct fields out of their columns again.
    fn drop_direct(&mut self) {
        for &(_, i, kinds, big_int) in &self.direct {
            let col = &mut self.columns[i];
            col.cells.truncate(self.rows);
            col.kinds = kinds;
            col.big_int = big_int;
        }
        self.direct.clear();
    }

    /// A [`Target::KnownSlot`] field of a row that so far has only such fields, and none in
    /// this column: appended to its column now, not recorded for [`Self::commit_row`] to copy
    /// (a rollup-only run's rows, after the chunk's first). Such a row can only be committed,
    /// so the commit only counts it; an abort takes the cells out again. Returns false (having
    /// done nothing) for any other field.
    #[inline]
    fn push_direct(&mut self, slot: u32, cell: Cell) -> bool {
        if !self.pending.is_empty() || !self.ts_formats.is_empty() {
            return false;
        }
        let Some(i) = self.slot_column(slot) else {
            return false;
        };
        let col = &self.columns[i];
        if col.cells.len() > self.rows {
            // named twice: the commit's check reports it
            return false;
        }
        self.direct.push((slot, i, col.kinds, col.big_int));
        self.append(i, self.rows, cell);
        true
    }

    /// Moves the open row's direct fields back to `pending` (a field that cannot go straight
    /// to its column follows them), as if they had been recorded.
    fn undirect(&mut self) {
        debug_assert!(self.pending.is_empty() || self.direct.is_empty());
        for &(slot, i, _, _) in &self.direct {
            let cell = *self.columns[i].cells.last().expect("a direct field's cell");
            self.pending.push(Pending {
                name: BY_SLOT,
                slot,
                cell,
            });
        }
        self.drop_direct();
    }

    fn push<'n>(&mut self, to: impl Into<Target<'n>>, cell: Cell) {
        // (a slot's name is kept too: a reject reason names the field as the line spells it,
        // whichever spelling named the column first in the chunk)
        let (name, slot) = match to.into() {
            Target::Name(name) => (name, NO_SLOT),
            Target::Slot(slot, name) => (name, slot),
            Target::KnownSlot(slot) => {
                debug_assert!(self.slot_known(slot), "slot {slot} has no column yet");
                if self.push_direct(slot, cell) {
                    return;
                }
                self.undirect();
                self.pending.push(Pending {
                    name: BY_SLOT,
                    slot,
                    cell,
                });
                return;
            }
        };
        self.undirect();
        let start = self.names.len();
        self.names.push_str(name);
        self.pending.push(Pending {
            name: (start, self.names.len()),
            slot,
            cell,
        });
    }

    /// Whether slot `slot` has its column (a row with it was committed in this chunk) and
    /// that column has no forced type: then values may go to [`Target::KnownSlot`], and a row
    /// of such values can fail only on a field named twice (which the parser, catching it
    /// first, reports with the line's spelling).
    #[inline]
    pub fn slot_known(&self, slot: u32) -> bool {
        match 1u64.checked_shl(slot) {
            Some(bit) => self.known & bit != 0,
            None => self
                .slot_column(slot)
                .is_some_and(|i| self.columns[i].forced.is_none()),
        }
    }

    fn slot_column(&self, slot: u32) -> Option<usize> {
        self.slots.get(slot as usize).copied().flatten()
    }

    /// The name of a pending field, as the line spells it.
    fn pending_name(&self, p: &Pending) -> &str {
        match self.slot_column(p.slot) {
            Some(i) if p.name == BY_SLOT => &self.columns[i].name,
            _ => &self.names[p.name.0..p.name.1],
        }
    }

    fn span(off: usize, len: usize) -> Cell {
        Cell {
            kind: Kind::Str,
            in_arena: false,
            off: off as u32,
            len: len as u32,
            num: 0,
        }
    }

    /// A null value.
    pub fn push_null<'n>(&mut self, name: impl Into<Target<'n>>) {
        self.push(name, Cell::NULL);
    }

    /// A boolean whose text is `chunk[off..off + len]`.
    pub fn push_bool<'n>(
        &mut self,
        name: impl Into<Target<'n>>,
        value: bool,
        off: usize,
        len: usize,
    ) {
        self.push(
            name,
            Cell {
                kind: Kind::Bool,
                num: u64::from(value),
                ..Self::span(off, len)
            },
        );
    }

    /// An integer whose text is `chunk[off..off + len]`.
    pub fn push_int<'n>(
        &mut self,
        name: impl Into<Target<'n>>,
        value: i64,
        off: usize,
        len: usize,
    ) {
        self.push(
            name,
            Cell {
                kind: Kind::Int,
                num: value as u64,
                ..Self::span(off, len)
            },
        );
    }

    /// A float whose text is `chunk[off..off + len]` (a declared float: `1` stays a float).
    pub fn push_float<'n>(
        &mut self,
        name: impl Into<Target<'n>>,
        value: f64,
        off: usize,
        len: usize,
    ) {
        self.push(
            name,
            Cell {
                kind: Kind::Float,
                num: value.to_bits(),
                ..Self::span(off, len)
            },
        );
    }

    /// A timestamp (microseconds, UTC) whose text is `chunk[off..off + len]`.
    pub fn push_ts<'n>(
        &mut self,
        name: impl Into<Target<'n>>,
        micros: i64,
        off: usize,
        len: usize,
    ) {
        self.push(
            name,
            Cell {
                kind: Kind::Ts,
                num: micros as u64,
                ..Self::span(off, len)
            },
        );
    }

    /// A number in its source text `text` (at `chunk[off..]`): int if it fits i64, float if
    /// finite, otherwise kept as a string so that nothing is lost.
    pub fn push_number<'n>(&mut self, name: impl Into<Target<'n>>, text: &str, off: usize) {
        self.push(name, classify_number(text, off));
    }

    /// Verbatim text from the chunk, kept as a string (arrays, for instance).
    pub fn push_raw_str<'n>(&mut self, name: impl Into<Target<'n>>, off: usize, len: usize) {
        self.push(name, Self::span(off, len));
    }

    /// A string from the chunk, recognised as a timestamp when it looks like one.
    pub fn push_str<'n>(&mut self, name: impl Into<Target<'n>>, text: &str, off: usize) {
        let mut cell = Self::span(off, text.len());
        if let Some(micros) = looks_like_ts(text.as_bytes())
            .then(|| self.iso.parse(text.as_bytes()))
            .flatten()
        {
            cell.kind = Kind::Ts;
            cell.num = micros as u64;
        }
        self.push(name, cell);
    }

    /// A string not in the chunk (an unescaped JSON string): copied to the arena.
    pub fn push_owned_str<'n>(&mut self, name: impl Into<Target<'n>>, text: &str) {
        let off = self.arena.len();
        self.arena.extend_from_slice(text.as_bytes());
        let mut cell = Cell {
            in_arena: true,
            ..Self::span(off, text.len())
        };
        if let Some(micros) = looks_like_ts(text.as_bytes())
            .then(|| self.iso.parse(text.as_bytes()))
            .flatten()
        {
            cell.kind = Kind::Ts;
            cell.num = micros as u64;
        }
        self.push(name, cell);
    }

    fn text<'a>(&'a self, chunk: &'a [u8], cell: &Cell) -> &'a [u8] {
        let (off, len) = (cell.off as usize, cell.len as usize);
        if cell.in_arena {
            &self.arena[off..off + len]
        } else {
            &chunk[off..off + len]
        }
    }

    /// The column of field `name`, the `k`th of its row: by position (the last row's `k`th
    /// name), by exact spelling, then by folded name. The flag says whether the exact-spelling
    /// map already knows the name.
    fn lookup(&self, k: usize, name: &str) -> (Option<usize>, Found) {
        if let Some((n, i)) = self.by_pos.get(k) {
            if **n == *name {
                return (Some(*i), Found::ByPosition);
            }
        }
        if let Some(&i) = self.exact.get(name) {
            return (Some(i), Found::Exact);
        }
        let i = self
            .folded
            .get(&sanitize_name(name).to_ascii_lowercase())
            .copied();
        (i, Found::Folded)
    }

    /// Phase 1 of [`Self::commit_row`]: resolve names, convert to forced types and find
    /// duplicate fields. Mutates nothing but `marks`.
    #[allow(clippy::type_complexity)]
    fn resolve(
        &self,
        chunk: &[u8],
        stamp: usize,
        marks: &mut [usize],
        resolved: &mut Vec<(Option<usize>, Cell, Found)>,
    ) -> std::result::Result<Vec<String>, String> {
        resolved.clear();
        let mut new_names: Vec<String> = Vec::new();
        for (k, p) in self.pending.iter().enumerate() {
            let name = || self.pending_name(p);
            let (idx, known) = match self.slot_column(p.slot) {
                Some(i) => (Some(i), Found::Slot),
                None => self.lookup(k, name()),
            };
            let forced = match idx {
                Some(i) => {
                    if marks[i] == stamp {
                        return Err(format!("duplicate field {:?}", name()));
                    }
                    marks[i] = stamp;
                    self.columns[i].forced
                }
                None => {
                    let name = name();
                    let folded = sanitize_name(name).to_ascii_lowercase();
                    if self.reserved.contains(&folded) {
                        return Err(format!("field {name:?} uses a reserved column name"));
                    }
                    if new_names.contains(&folded) {
                        return Err(format!("duplicate field {name:?}"));
                    }
                    let forced = self.forced.get(&folded).copied();
                    new_names.push(folded);
                    forced
                }
            };
            let cell = match forced {
                Some(t) => convert(p.cell, t, self.text(chunk, &p.cell))
                    .map_err(|why| format!("field {:?}: {why}", name()))?,
                None => p.cell,
            };
            resolved.push((idx, cell, known));
        }
        Ok(new_names)
    }

    /// Validates the open row and appends it. On `Err(reason)` nothing was appended; the caller
    /// then calls [`Self::abort_row`].
    pub fn commit_row(&mut self, chunk: &[u8]) -> std::result::Result<(), String> {
        if !self.direct.is_empty() {
            // every field went straight to its column (`push_direct`)
            debug_assert!(self.pending.is_empty());
            self.direct.clear();
            self.rows += 1;
            return Ok(());
        }
        if !self.ts_formats.is_empty() {
            self.apply_ts_formats(chunk);
        } else if self.commit_known_slots()? {
            return Ok(());
        }
        let row = self.rows;
        let mut marks = std::mem::take(&mut self.marks);
        marks.resize(self.columns.len(), usize::MAX);
        let mut resolved = std::mem::take(&mut self.resolved);
        let new_names = self.resolve(chunk, self.attempt, &mut marks, &mut resolved);
        self.marks = marks;
        let new_names = match new_names {
            Ok(n) => n,
            Err(e) => {
                self.resolved = resolved;
                return Err(e);
            }
        };
        if self.columns.len() + new_names.len() > self.max_columns {
            self.resolved = resolved;
            return Err(format!(
                "line adds columns beyond max_columns ({})",
                self.max_columns
            ));
        }
        // Phase 2: append.
        let mut unknown = Vec::new();
        let all_by_position = resolved
            .iter()
            .all(|r| matches!(r.2, Found::ByPosition | Found::Slot))
            && self.by_pos.len() == resolved.len();
        for (k, &(idx, cell, known)) in resolved.iter().enumerate() {
            if known == Found::Folded {
                unknown.push(k);
            }
            let i = match idx {
                Some(i) => i,
                None => {
                    let raw = self.pending_name(&self.pending[k]);
                    let name = sanitize_name(raw).into_owned();
                    let folded = name.to_ascii_lowercase();
                    let i = self.columns.len();
                    self.columns.push(Column {
                        name,
                        cells: Vec::new(),
                        kinds: 0,
                        big_int: false,
                        forced: self.forced.get(&folded).copied(),
                    });
                    self.folded.insert(folded, i);
                    i
                }
            };
            let slot = self.pending[k].slot;
            if slot != NO_SLOT {
                let slot = slot as usize;
                if self.slots.len() <= slot {
                    self.slots.resize(slot + 1, None);
                }
                self.slots[slot] = Some(i);
                if self.columns[i].forced.is_none() {
                    self.known |= 1u64.checked_shl(slot as u32).unwrap_or(0);
                }
            }
            self.append(i, row, cell);
        }
        // Remember exact spellings for the fast path (bounded by the column limit times a few).
        for k in unknown {
            let name = self.pending_name(&self.pending[k]);
            if self.exact.len() < 4 * self.max_columns {
                if let Some(i) = self.folded.get(&sanitize_name(name).to_ascii_lowercase()) {
                    self.exact.insert(name.into(), *i);
                }
            }
        }
        self.resolved = resolved;
        // Remember each position's name for the next row (unless this row was the last one's
        // shape again).
        if all_by_position {
            self.rows += 1;
            return Ok(());
        }
        self.by_pos.truncate(self.pending.len());
        for (k, p) in self.pending.iter().enumerate() {
            // (`pending_name`, by fields: `by_pos` is borrowed mutably below)
            let name: &str = match self.slots.get(p.slot as usize).copied().flatten() {
                Some(i) if p.name == BY_SLOT => &self.columns[i].name,
                _ => &self.names[p.name.0..p.name.1],
            };
            match self.by_pos.get_mut(k) {
                Some((n, _)) if **n == *name => {}
                slot => {
                    let Some(i) = self.exact.get(name).copied().or_else(|| {
                        self.folded
                            .get(&sanitize_name(name).to_ascii_lowercase())
                            .copied()
                    }) else {
                        // (Never: every name of a committed row is a column.)
                        self.by_pos.truncate(k);
                        break;
                    };
                    match slot {
                        Some(s) => *s = (name.into(), i),
                        None => self.by_pos.push((name.into(), i)),
                    }
                }
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// [`Self::commit_row`] for a row whose every field went to a slot whose column is known
    /// and has no forced type (a projected parse's rows after its first): nothing to look up
    /// or convert, only duplicates to catch. Returns `Ok(false)`, having appended nothing,
    /// for any other row.
    fn commit_known_slots(&mut self) -> std::result::Result<bool, String> {
        let known = |p: &Pending| {
            self.slot_column(p.slot)
                .filter(|&i| self.columns[i].forced.is_none())
        };
        if !self.pending.iter().all(|p| known(p).is_some()) {
            return Ok(false);
        }
        self.marks.resize(self.columns.len(), usize::MAX);
        for p in &self.pending {
            let i = self.slot_column(p.slot).expect("checked above");
            if self.marks[i] == self.attempt {
                return Err(format!("duplicate field {:?}", self.pending_name(p)));
            }
            self.marks[i] = self.attempt;
        }
        let row = self.rows;
        for k in 0..self.pending.len() {
            let p = &self.pending[k];
            let (i, cell) = (self.slot_column(p.slot).expect("checked above"), p.cell);
            self.append(i, row, cell);
        }
        self.rows += 1;
        Ok(true)
    }

    /// Appends `cell` to column `i` as row `row` (the rows before it that did not name the
    /// column are nulls).
    #[inline]
    fn append(&mut self, i: usize, row: usize, cell: Cell) {
        let col = &mut self.columns[i];
        if col.cells.len() < row {
            col.cells.resize(row, Cell::NULL);
        }
        // A column this dense is likely in every row: size it for the chunk once instead of
        // doubling (and copying) its way there. Sparse columns never get here.
        if col.cells.len() == DENSE_CELLS {
            col.cells
                .reserve(self.rows_hint.saturating_sub(DENSE_CELLS));
        }
        col.cells.push(cell);
        col.kinds |= 1 << cell.kind as u8;
        if cell.kind == Kind::Int && (cell.num as i64).unsigned_abs() > MAX_EXACT_INT {
            col.big_int = true;
        }
    }

    /// Reads cells of columns with a user timestamp format as timestamps: strings through a
    /// `strftime` format, numbers and strings through `epoch_s`, `epoch_ms`, `epoch_us` or
    /// `epoch_ns`. A written zone offset goes to a `<name>_offset` column (minutes east of
    /// UTC). A value that does not match the format stays as it was.
    fn apply_ts_formats(&mut self, chunk: &[u8]) {
        let mut offsets = Vec::new();
        for k in 0..self.pending.len() {
            let p = &self.pending[k];
            if p.cell.kind != Kind::Str {
                continue;
            }
            let name = self.pending_name(p);
            let Some(format) = self
                .ts_formats
                .get(&sanitize_name(name).to_ascii_lowercase())
            else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(self.text(chunk, &p.cell)) else {
                continue;
            };
            if let Some((micros, offset)) = ts::parse_with_format(text, format) {
                if let Some(minutes) = offset {
                    let mut cell = p.cell;
                    cell.kind = Kind::Int;
                    cell.num = i64::from(minutes) as u64;
                    offsets.push((format!("{name}_offset"), cell));
                }
                let p = &mut self.pending[k];
                p.cell.kind = Kind::Ts;
                p.cell.num = micros as u64;
            }
        }
        for (name, cell) in offsets {
            self.push(&name, cell);
        }
    }

    /// Builds the batch: one column per field seen, typed by the widening rules.
    pub fn finish(mut self, chunk: &[u8]) -> Result<RecordBatch> {
        // (an open row is dropped, as its cells beyond `rows` are below)
        self.drop_direct();
        let rows = self.rows;
        let mut fields = Vec::with_capacity(self.columns.len());
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        let columns = std::mem::take(&mut self.columns);
        for mut col in columns {
            col.cells.resize(rows, Cell::NULL);
            let t = col.forced.or_else(|| decide(col.kinds, col.big_int));
            let array: ArrayRef = match t {
                None => Arc::new(NullArray::new(rows)),
                Some(ColumnType::Bool) => Arc::new(
                    col.cells
                        .iter()
                        .map(|c| (c.kind != Kind::Null).then_some(c.num != 0))
                        .collect::<BooleanArray>(),
                ),
                Some(ColumnType::Int) => Arc::new(Int64Array::new(
                    col.cells.iter().map(|c| c.num as i64).collect(),
                    validity(&col.cells),
                )),
                Some(ColumnType::Float) => Arc::new(Float64Array::new(
                    col.cells
                        .iter()
                        .map(|c| match c.kind {
                            Kind::Int => c.num as i64 as f64,
                            _ => f64::from_bits(c.num),
                        })
                        .collect(),
                    validity(&col.cells),
                )),
                Some(ColumnType::Timestamp) => Arc::new(
                    TimestampMicrosecondArray::new(
                        col.cells.iter().map(|c| c.num as i64).collect(),
                        validity(&col.cells),
                    )
                    .with_timezone("UTC"),
                ),
                Some(ColumnType::String) => Arc::new(self.string_array(chunk, &col.cells)?),
            };
            let dt = t.map_or(DataType::Null, ColumnType::data_type);
            fields.push(Field::new(col.name, dt, true));
            arrays.push(array);
        }
        let opts = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::new(Schema::new(fields)),
            arrays,
            &opts,
        )?)
    }
}

impl RowsBuilder {
    /// A string column of `cells`. Cells are mostly a few bytes long, and a `memcpy` call per
    /// cell cost more than the copy (8% of a rollup run): a short cell is copied as a fixed
    /// [`SHORT_COPY`] bytes (one vector move) and the values cut back to its length. Bytes
    /// first, then one UTF-8 validation of the whole column (a pass over long runs, not a call
    /// per short cell); the parsers only make cells of validated text, so a failure here is
    /// an internal error.
    fn string_array(&self, chunk: &[u8], cells: &[Cell]) -> Result<StringArray> {
        let bytes: usize = cells.iter().map(|c| c.len as usize).sum();
        let internal =
            |e: String| FormatError::Arrow(arrow_schema::ArrowError::InvalidArgumentError(e));
        if i32::try_from(bytes).is_err() {
            return Err(internal(format!("a string column of {bytes} bytes")));
        }
        let mut values: Vec<u8> = Vec::with_capacity(bytes + SHORT_COPY);
        let mut offsets: Vec<i32> = Vec::with_capacity(cells.len() + 1);
        offsets.push(0);
        for (k, c) in cells.iter().enumerate() {
            // The chunk's bytes were parsed long ago (the whole chunk since), so each cell's
            // text is a cache miss: ask for the one PREFETCH_CELLS ahead now.
            if let Some(a) = cells.get(k + PREFETCH_CELLS) {
                let src = if a.in_arena { &self.arena } else { chunk };
                prefetch(src.as_ptr().wrapping_add(a.off as usize));
            }
            if c.kind != Kind::Null {
                let src: &[u8] = if c.in_arena { &self.arena } else { chunk };
                let (off, len) = (c.off as usize, c.len as usize);
                match src.get(off..off + SHORT_COPY) {
                    Some(w) if len <= SHORT_COPY => {
                        let end = values.len() + len;
                        let w: &[u8; SHORT_COPY] = w.try_into().expect("SHORT_COPY bytes");
                        values.extend_from_slice(w);
                        values.truncate(end);
                    }
                    _ => values.extend_from_slice(&src[off..off + len]),
                }
            }
            // (fits: the total was checked above)
            offsets.push(values.len() as i32);
        }
        StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from_vec(values),
            validity(cells),
        )
        .map_err(|e| internal(format!("non-UTF-8 cell: {e}")))
    }
}

/// The validity of `cells` (`None` when none is null): the arrays are built from the cells'
/// numbers and spans in one pass each, not value by value through a builder.
fn validity(cells: &[Cell]) -> Option<NullBuffer> {
    Some(NullBuffer::new(BooleanBuffer::collect_bool(
        cells.len(),
        |i| cells[i].kind != Kind::Null,
    )))
    .filter(|n| n.null_count() > 0)
}

/// How far ahead [`RowsBuilder::string_array`] prefetches a cell's text.
const PREFETCH_CELLS: usize = 16;

/// Asks for the cache line at `p` before it is read: a hint, which never faults and changes
/// no result.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing the program sees and never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Bytes copied at once for a short string cell (see [`RowsBuilder::string_array`]).
const SHORT_COPY: usize = 16;

/// The column type for a set of value kinds; `None` if only nulls were seen.
fn decide(kinds: u8, big_int: bool) -> Option<ColumnType> {
    let k = kinds & !(1 << Kind::Null as u8);
    const B: u8 = 1 << Kind::Bool as u8;
    const I: u8 = 1 << Kind::Int as u8;
    const F: u8 = 1 << Kind::Float as u8;
    const T: u8 = 1 << Kind::Ts as u8;
    Some(match k {
        0 => return None,
        B => ColumnType::Bool,
        I => ColumnType::Int,
        F => ColumnType::Float,
        x if x == I | F && !big_int => ColumnType::Float,
        T => ColumnType::Timestamp,
        _ => ColumnType::String,
    })
}

fn classify_number(text: &str, off: usize) -> Cell {
    let mut cell = RowsBuilder::span(off, text.len());
    let b = text.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        // Up to 18 digits cannot overflow an i64: summed here, without `parse`'s checks.
        let v = if digits.len() <= 18 {
            let v = digits
                .iter()
                .fold(0i64, |v, &c| v * 10 + i64::from(c - b'0'));
            Some(if digits.len() < b.len() { -v } else { v })
        } else {
            text.parse::<i64>().ok()
        };
        if let Some(v) = v {
            cell.kind = Kind::Int;
            cell.num = v as u64;
        }
        return cell; // too large for i64: a string, verbatim
    }
    if let Ok(v) = text.parse::<f64>() {
        if v.is_finite() && b.first().is_some_and(|c| c.is_ascii_digit() || *c == b'-') {
            cell.kind = Kind::Float;
            cell.num = v.to_bits();
        }
    }
    cell
}

/// Cheap shape test before trying to parse a timestamp.
fn looks_like_ts(b: &[u8]) -> bool {
    b.len() >= 19 && b.len() <= 40 && b[4] == b'-' && b[0].is_ascii_digit() && b[13] == b':'
}

/// Converts a cell to a forced type, or says why it cannot be.
fn convert(cell: Cell, t: ColumnType, text: &[u8]) -> std::result::Result<Cell, String> {
    let bad = || {
        let shown = String::from_utf8_lossy(&text[..text.len().min(64)]).into_owned();
        format!("{shown:?} is not a valid {t}")
    };
    let s = std::str::from_utf8(text).unwrap_or("");
    let mut out = cell;
    match (cell.kind, t) {
        (Kind::Null, _) | (_, ColumnType::String) => {}
        (Kind::Bool, ColumnType::Bool)
        | (Kind::Int, ColumnType::Int)
        | (Kind::Float, ColumnType::Float)
        | (Kind::Ts, ColumnType::Timestamp) => {}
        (Kind::Int, ColumnType::Float) if (cell.num as i64).unsigned_abs() <= MAX_EXACT_INT => {
            out.kind = Kind::Float;
            out.num = (cell.num as i64 as f64).to_bits();
        }
        (Kind::Str, ColumnType::Int) => {
            out.kind = Kind::Int;
            out.num = s.parse::<i64>().map_err(|_| bad())? as u64;
        }
        (Kind::Str, ColumnType::Float) => {
            let v = s
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(bad)?;
            out.kind = Kind::Float;
            out.num = v.to_bits();
        }
        (Kind::Str, ColumnType::Bool) => {
            out.kind = Kind::Bool;
            out.num = match s {
                "true" => 1,
                "false" => 0,
                _ => return Err(bad()),
            };
        }
        (Kind::Str, ColumnType::Timestamp) => {
            out.kind = Kind::Ts;
            out.num = ts::parse_iso(text)
                .or_else(|| ts::parse_clf(text))
                .or_else(|| ts::parse_epoch(text))
                .ok_or_else(bad)? as u64;
        }
        // Epoch seconds, milliseconds, microseconds or nanoseconds, by magnitude (see
        // `ts::parse_epoch`; a stated unit is a `timestamp_formats` entry such as `epoch_ms`).
        (Kind::Int | Kind::Float, ColumnType::Timestamp) => {
            out.kind = Kind::Ts;
            out.num = ts::parse_epoch(text).ok_or_else(bad)? as u64;
        }
        _ => return Err(bad()),
    }
    if t == ColumnType::String && cell.kind != Kind::Null {
        out.kind = Kind::Str;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Int64Type, TimestampMicrosecondType};
    use arrow_array::Array;

    use super::{classify_number, Kind, RowsBuilder, Target};
    use crate::{parse_all, Format, ParseOptions};
    use proptest::prelude::*;

    proptest! {
        /// Integers are read as `str::parse` reads those with integer syntax (an optional `-`
        /// and digits), other numbers as floats, anything else stays a string.
        #[test]
        fn numbers_classify_as_parse_reads_them(text in "-?-?[0-9]{0,21}(\\.[0-9]{0,3})?|[+-]?[0-9a-f.e-]{0,6}") {
            let cell = classify_number(&text, 0);
            let digits = text.strip_prefix('-').unwrap_or(&text);
            let int_syntax = !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit());
            match text.parse::<i64>() {
                Ok(v) if int_syntax => {
                    prop_assert_eq!(cell.kind, Kind::Int);
                    prop_assert_eq!(cell.num as i64, v);
                }
                _ => prop_assert_ne!(cell.kind, Kind::Int),
            }
            prop_assert_eq!((cell.off, cell.len as usize), (0, text.len()));
        }
    }

    /// Known-slot fields go straight to their columns; an abort takes them (and what they
    /// did to the column's type) back, a field named twice is still caught, and a field that
    /// cannot go straight to its column moves the row's others back to the commit's path.
    #[test]
    fn direct_fields_commit_abort_and_fall_back_like_recorded_ones() {
        let chunk = b"1x2y3z7q";
        let mut b = RowsBuilder::new(&ParseOptions::new(Format::Json));
        let known = |b: &RowsBuilder| (b.slot_known(0), b.slot_known(1));
        assert_eq!(known(&b), (false, false));
        b.begin_row();
        b.push_int(Target::Slot(0, "a"), 1, 0, 1);
        b.push_str(Target::Slot(1, "b"), "x", 1);
        b.commit_row(chunk).unwrap();
        assert_eq!(known(&b), (true, true));
        // straight to the columns
        b.begin_row();
        b.push_int(Target::KnownSlot(0), 2, 2, 1);
        b.push_str(Target::KnownSlot(1), "y", 3);
        assert_eq!(
            (b.direct.len(), b.pending.len(), b.pending_fields()),
            (2, 0, 2)
        );
        b.commit_row(chunk).unwrap();
        // aborted: `a` would have become a string column
        b.begin_row();
        b.push_str(Target::KnownSlot(0), "q", 7);
        b.abort_row();
        // named twice
        b.begin_row();
        b.push_int(Target::KnownSlot(0), 3, 4, 1);
        b.push_int(Target::KnownSlot(0), 3, 4, 1);
        assert!(b
            .commit_row(chunk)
            .unwrap_err()
            .contains("duplicate field \"a\""));
        b.abort_row();
        // a new column after a direct field
        b.begin_row();
        b.push_str(Target::KnownSlot(1), "z", 5);
        b.push_int("c", 7, 6, 1);
        assert_eq!((b.direct.len(), b.pending.len()), (0, 2));
        b.commit_row(chunk).unwrap();
        b.begin_row();
        b.push_int(Target::KnownSlot(0), 3, 4, 1);
        b.commit_row(chunk).unwrap();
        // an open row is not in the batch
        b.begin_row();
        b.push_str(Target::KnownSlot(0), "q", 7);
        let batch = b.finish(chunk).unwrap();
        assert_eq!(batch.num_rows(), 4);
        let a = batch
            .column_by_name("a")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            [Some(1), Some(2), None, Some(3)]
        );
        let s = batch.column_by_name("b").unwrap();
        let s = s.as_string::<i32>();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Some("x"), Some("y"), Some("z"), None]
        );
        let c = batch
            .column_by_name("c")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!(c.iter().collect::<Vec<_>>(), [None, None, Some(7), None]);
    }

    #[test]
    fn user_timestamp_formats_type_their_columns_and_keep_offsets() {
        let mut opts = ParseOptions::new(Format::Json);
        opts.timestamp_formats
            .insert("t".into(), "%y/%m/%d %H:%M:%S %z".into());
        opts.timestamp_formats
            .insert("d".into(), "%d.%m.%Y %H:%M".into());
        let p = parse_all(
            &opts,
            br#"{"t":"17/06/09 20:10:40 +0100","d":"03.06.2005 15:42","x":"17/06/09 20:10:40 +0100"}
{"t":"not a time","d":"04.06.2005 00:00"}
"#,
        )
        .unwrap();
        assert!(p.rejects.is_empty());
        let b = &p.batch;
        // `t` saw a non-matching value: it stays a string column, verbatim.
        let t = b.column_by_name("t").unwrap();
        assert_eq!(t.as_string::<i32>().value(0), "17/06/09 20:10:40 +0100");
        let off = b
            .column_by_name("t_offset")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert_eq!((off.value(0), off.is_null(1)), (60, true));
        let d = b.column_by_name("d").unwrap();
        let d = d.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(d.value(0), 1_117_813_320_000_000);
        assert!(b.column_by_name("d_offset").is_none());
        // Columns without a format are untouched.
        assert!(b
            .column_by_name("x")
            .unwrap()
            .as_string_opt::<i32>()
            .is_some());
    }
}
