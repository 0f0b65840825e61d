//! Columnar kernels the sort, dedup and merge are built from.
//!
//! # Why
//!
//! Sorting and deduplicating a run touches every row several times: once to encode its sort
//! key, once or more to order it, once to compare it with its neighbour and once to gather it
//! into the output. Each of those passes is a kernel here, written so that the hot loop is a
//! plain loop over slices (chunked where a validity bitmap is involved) with no per-row
//! allocation, no per-row type dispatch and, for fixed-width data, no per-row branching. That is
//! what lets the compiler vectorise them on stable Rust, without `std::simd` or intrinsics. The
//! kernels that are worth it run in parallel with rayon, inside whatever pool the caller has
//! installed, and their results never depend on the thread count.
//!
//! # Kernels
//!
//! - **Sort-key encoding** is arrow's [`arrow_row::RowConverter`]: every row becomes one byte
//!   string, and byte order (`memcmp`) is the row order. The kernels below only see those
//!   [`Rows`], through [`RowSet`]: one `Rows`, or [`RowParts`], several encoded in parallel
//!   and indexed as one (copying them into one `Rows` would be a serial pass over every byte).
//! - [`sort_row_indices`] is an MSD (most significant digit first) sort with 8-byte digits.
//!   Each index becomes a `u128` key `digit << 64 | digit_len << 32 | index`, where `digit` is
//!   the next 8 bytes of the row read big-endian (zero-padded past the end) and
//!   `digit_len = min(bytes left, 8)`. Sorting these plain integers (in parallel) orders the
//!   rows by their first 8 bytes, with a shorter row before a longer one it is a prefix of, and
//!   ties by index. Only a group of keys that are equal apart from the index *and* that
//!   still have bytes left (`digit_len == 8`) needs more work: its keys are rebuilt from the
//!   next 8 bytes and sorted again, recursively. Small groups (or very deep ones) finish with a
//!   plain comparison sort on the remaining bytes. When a whole group shares its next digit
//!   too (rows that agree on long leading strings, like the user agent and referer of access
//!   logs), one pass measures how many more bytes all its rows share and the next digit is
//!   taken past them, instead of one rekeying pass per shared digit. A sort mostly compares
//!   16-byte integers held in one array instead of chasing pointers into the row buffer on
//!   every comparison.
//!   [`sort_row_indices_comparison`] is the plain comparison sort it replaces, kept as the
//!   benchmark baseline and test oracle.
//! - [`dedup_sorted`] marks each position whose row differs from its predecessor's (byte-slice
//!   equality, which compares lengths first). Chunks of positions are marked in parallel, each
//!   carrying its previous row so that every row is looked up once; then one branchless pass
//!   compacts the indices with a write cursor.
//! - [`hash_rows`] hashes each row across columns. Every column folds into a per-row `u64`
//!   accumulator: `acc = mix64(acc.rotate_left(29) ^ value_bits)`, where `mix64` is the
//!   murmur3 finaliser (a bijection). Fixed-width values are folded by their raw bits (one loop
//!   per width: 1, 2, 4 or 8 bytes), booleans by their bit, strings and binaries by their
//!   xxh3. Where a column has nulls, rows are processed 64 at a time against one word of the
//!   validity bitmap, and a mask selects either the value or a fixed null sentinel, without a
//!   branch. Other types (decimals, dictionaries, views, nested) are hashed through the
//!   arrow-row encoding of that column alone. Rows are cut into chunks that are hashed in
//!   parallel.
//! - [`take_batch`] gathers a [`RecordBatch`] by indices, one column per rayon task, with
//!   [`arrow_select::take::take`].
//!
//! # Data flow
//!
//! ```text
//!   columns ──RowConverter──▶ Rows: one memcmp-ordered byte string per row
//!                               │
//!   sort_row_indices            ▼
//!   ┌────────────────────────────────────┐ par_sort_unstable ┌──────────────────────────┐
//!   │ key = be64(row[0..8]) | len | index│ ───(u128 keys)──▶ │ groups of equal          │
//!   └────────────────────────────────────┘                   │ (digit, len), by index   │
//!                                                            └────────────┬─────────────┘
//!          group of 1, or len < 8 (rows ended): done ◀────────────────────┤
//!          ≤ 24 keys or 256 bytes deep: comparison sort of the rest ◀─────┤
//!          otherwise: rebuild keys from bytes 8..16, sort, recurse ◀──────┘
//!          (a whole group still equal: skip the digits all its rows share)
//!                               │
//!                               ▼
//!   indices by (row bytes, index) ──dedup_sorted──▶ distinct ──take_batch──▶ RecordBatch
//!
//!   hash_rows (per chunk of 16k rows, in parallel; per column):
//!     acc[i] = mix64(rotl(acc[i], 29) ^ select(valid[i], bits[i], NULL))   64 rows per word
//! ```

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, UInt32Array};
use arrow_buffer::{ArrowNativeType, BooleanBuffer, Buffer, ScalarBuffer};
use arrow_row::{RowConverter, Rows, SortField};
use arrow_schema::{ArrowError, DataType};
use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

// ---------------------------------------------------------------------------------------------
// Sort
// ---------------------------------------------------------------------------------------------

/// Groups of at most this many keys finish with a comparison sort instead of another digit.
const SMALL_GROUP: usize = 24;
/// Groups of at least this many keys are sorted (and their keys rebuilt) in parallel.
const PAR_GROUP: usize = 1 << 14;
/// After this many 8-byte digits (256 bytes of common prefix), finish with a comparison sort
/// so that recursion depth stays bounded whatever the row length.
const MAX_DEPTH: usize = 32;

/// The sort key of row `idx` whose bytes are `data`, for the digit starting at byte `offset`:
/// `digit << 64 | digit_len << 32 | idx`. See the module documentation.
#[inline(always)]
fn sort_key(data: &[u8], offset: usize, idx: u32) -> u128 {
    let rest = data.get(offset..).unwrap_or(&[]);
    let (digit, len) = match rest.first_chunk::<8>() {
        Some(bytes) => (u64::from_be_bytes(*bytes), 8u64),
        None => {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            (u64::from_be_bytes(buf), rest.len() as u64)
        }
    };
    (u128::from(digit) << 64) | (u128::from(len) << 32) | u128::from(idx)
}

/// The part of a sort key that orders rows (everything but the index).
#[inline(always)]
fn key_group(key: u128) -> u128 {
    key >> 32
}

/// The row index stored in a sort key.
#[inline(always)]
fn key_index(key: u128) -> u32 {
    key as u32
}

fn sort_keys(keys: &mut [u128]) {
    if keys.len() >= PAR_GROUP {
        keys.par_sort_unstable();
    } else {
        keys.sort_unstable();
    }
}

/// Encoded rows read by index: the kernels' view of [`Rows`].
pub trait RowSet: Sync {
    /// Number of rows.
    fn num_rows(&self) -> usize;
    /// The encoded bytes of row `i`.
    fn bytes(&self, i: usize) -> &[u8];
}

impl RowSet for Rows {
    fn num_rows(&self) -> usize {
        Rows::num_rows(self)
    }
    #[inline(always)]
    fn bytes(&self, i: usize) -> &[u8] {
        self.row(i).data()
    }
}

/// Several [`Rows`] (encoded apart, e.g. in parallel) indexed as one: row `i` of the whole is
/// row `i - start` of the part that holds it.
#[derive(Debug)]
pub struct RowParts {
    parts: Vec<Rows>,
    /// The first whole-set index of each part.
    starts: Vec<usize>,
    rows: usize,
}

impl RowParts {
    /// The parts, in order.
    pub fn new(parts: Vec<Rows>) -> Self {
        let mut starts = Vec::with_capacity(parts.len());
        let mut rows = 0;
        for p in &parts {
            starts.push(rows);
            rows += p.num_rows();
        }
        RowParts {
            parts,
            starts,
            rows,
        }
    }

    /// Bytes held, as [`Rows::size`].
    pub fn size(&self) -> usize {
        self.parts.iter().map(Rows::size).sum()
    }
}

impl RowSet for RowParts {
    fn num_rows(&self) -> usize {
        self.rows
    }
    #[inline(always)]
    fn bytes(&self, i: usize) -> &[u8] {
        if let [one] = self.parts.as_slice() {
            return one.row(i).data();
        }
        let p = self.starts.partition_point(|&s| s <= i) - 1;
        self.parts[p].row(i - self.starts[p]).data()
    }
}

/// Sorts `indices` (row positions into `rows`) by encoded row bytes, ties by position, in
/// parallel on the current rayon pool.
///
/// The result is the same as
/// `indices.sort_by(|&a, &b| rows.row(a as usize).cmp(&rows.row(b as usize)).then(a.cmp(&b)))`,
/// whatever the thread count; see the module documentation for the algorithm.
///
/// # Panics
///
/// Panics if an index is out of bounds for `rows`.
pub fn sort_row_indices<R: RowSet + ?Sized>(rows: &R, indices: &mut [u32]) {
    if indices.len() < 2 {
        return;
    }
    let mut keys: Vec<u128> = Vec::new();
    indices
        .par_iter()
        .with_min_len(4096)
        .map(|&i| sort_key(rows.bytes(i as usize), 0, i))
        .collect_into_vec(&mut keys);
    sort_keys(&mut keys);
    refine(rows, &mut keys, 8, 1);
    indices
        .par_iter_mut()
        .with_min_len(4096)
        .zip(keys.par_iter())
        .for_each(|(out, &key)| *out = key_index(key));
}

/// `keys` are sorted by the digit that ends at byte `offset`; sorts every group of equal
/// digits whose rows continue past `offset` by the rest of their bytes.
fn refine<R: RowSet + ?Sized>(rows: &R, keys: &mut [u128], offset: usize, depth: usize) {
    keys.par_chunk_by_mut(|a, b| key_group(*a) == key_group(*b))
        .for_each(|group| {
            // digit_len < 8: the rows end inside this digit, so the group is all equal rows,
            // already ordered by index.
            if group.len() < 2 || (key_group(group[0]) & 0xF) != 8 {
                return;
            }
            if group.len() <= SMALL_GROUP || depth >= MAX_DEPTH {
                // Every row in the group is at least `offset` bytes long.
                group.sort_unstable_by(|&a, &b| {
                    let (ia, ib) = (key_index(a), key_index(b));
                    let ra = &rows.bytes(ia as usize)[offset..];
                    let rb = &rows.bytes(ib as usize)[offset..];
                    ra.cmp(rb).then(ia.cmp(&ib))
                });
                return;
            }
            let rekey = |key: &mut u128| {
                let i = key_index(*key);
                *key = sort_key(rows.bytes(i as usize), offset, i);
            };
            if group.len() >= PAR_GROUP {
                group.par_iter_mut().with_min_len(4096).for_each(rekey);
            } else {
                group.iter_mut().for_each(rekey);
            }
            // Often the next digit is the same for the whole group (the rest of a short string
            // block, the high bytes of small integers): the keys are then already in order.
            if !group.is_sorted() {
                sort_keys(group);
            }
            let mut next = offset + 8;
            let (first, last) = (key_group(group[0]), key_group(group[group.len() - 1]));
            if first == last && first & 0xF == 8 {
                // The whole group shares this digit too, as rows that agree on long leading
                // strings do: jump over every further digit they all share (one pass) instead
                // of rekeying the group once per digit.
                next += shared_prefix(rows, group, next) / 8 * 8;
            }
            refine(rows, group, next, depth + 1);
        });
}

/// How many bytes from `offset` every row of `group` shares with the group's first row (every
/// row is at least `offset` bytes long).
fn shared_prefix<R: RowSet + ?Sized>(rows: &R, group: &[u128], offset: usize) -> usize {
    let tail = |k: u128| {
        rows.bytes(key_index(k) as usize)
            .get(offset..)
            .unwrap_or(&[])
    };
    let first = tail(group[0]);
    if group.len() >= PAR_GROUP {
        return group
            .par_iter()
            .with_min_len(4096)
            .map(|&k| common_prefix(first, tail(k)))
            .min()
            .unwrap_or(0);
    }
    let mut shared = first.len();
    for &k in &group[1..] {
        shared = common_prefix(&first[..shared], tail(k));
        if shared < 8 {
            break;
        }
    }
    shared
}

/// Length of the common prefix of `a` and `b`, compared 8 bytes at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let (ca, cb) = (a[..n].chunks_exact(8), b[..n].chunks_exact(8));
    for (i, (x, y)) in ca.zip(cb).enumerate() {
        let diff = u64::from_le_bytes(x.try_into().expect("8 bytes"))
            ^ u64::from_le_bytes(y.try_into().expect("8 bytes"));
        if diff != 0 {
            return i * 8 + (diff.trailing_zeros() / 8) as usize;
        }
    }
    let done = n / 8 * 8;
    done + a[done..n]
        .iter()
        .zip(&b[done..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// The plain comparison sort that [`sort_row_indices`] replaces: the same result, but every
/// comparison dereferences both rows. Kept as the baseline for the benchmarks and as the test
/// oracle.
pub fn sort_row_indices_comparison<R: RowSet + ?Sized>(rows: &R, indices: &mut [u32]) {
    indices.par_sort_unstable_by(|&a, &b| {
        rows.bytes(a as usize)
            .cmp(rows.bytes(b as usize))
            .then(a.cmp(&b))
    });
}

// ---------------------------------------------------------------------------------------------
// Dedup
// ---------------------------------------------------------------------------------------------

/// Positions per parallel dedup task.
const DEDUP_CHUNK: usize = 8 * 1024;

/// Removes from sorted `indices` each entry whose row in `rows` equals its predecessor's
/// (byte equality of the encoded rows), keeping the first of each run. Returns how many were
/// removed.
///
/// The comparisons run in parallel; the compaction is a single branchless pass.
///
/// # Panics
///
/// Panics if an index is out of bounds for `rows`.
pub fn dedup_sorted<R: RowSet + ?Sized>(rows: &R, indices: &mut Vec<u32>) -> usize {
    let n = indices.len();
    if n < 2 {
        return 0;
    }
    // keep[i]: the row at position i differs from the one before it. Each task walks a
    // chunk, carrying the previous row so that every row is looked up once.
    let idx: &[u32] = indices;
    let mut keep = vec![false; n];
    keep.par_chunks_mut(DEDUP_CHUNK)
        .enumerate()
        .for_each(|(chunk, keep)| {
            let start = chunk * DEDUP_CHUNK;
            let mut prev = start.checked_sub(1).map(|p| rows.bytes(idx[p] as usize));
            for (k, &i) in keep.iter_mut().zip(&idx[start..]) {
                let cur = rows.bytes(i as usize);
                *k = prev != Some(cur);
                prev = Some(cur);
            }
        });
    let mut w = 0;
    for (i, &k) in keep.iter().enumerate() {
        // `w <= i`, so this only ever moves entries left.
        indices[w] = indices[i];
        w += usize::from(k);
    }
    indices.truncate(w);
    n - w
}

// ---------------------------------------------------------------------------------------------
// Hash
// ---------------------------------------------------------------------------------------------

/// Initial accumulator of every row hash.
const HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;
/// What a null folds into the accumulator instead of a value.
const NULL_BITS: u64 = 0x9e37_79b9_7f4a_7c15;
/// Rows per parallel hashing task (a multiple of 64, so bitmap words stay aligned to it).
const HASH_CHUNK: usize = 16 * 1024;

/// The murmur3 64-bit finaliser: a bijection with full avalanche.
#[inline(always)]
fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Folds one column's value bits into a row's accumulator.
#[inline(always)]
fn combine(acc: u64, bits: u64) -> u64 {
    mix64(acc.rotate_left(29) ^ bits)
}

/// `bits` where the validity mask `m` is all ones, the null sentinel where it is zero.
#[inline(always)]
fn select_null(bits: u64, m: u64) -> u64 {
    (bits & m) | (NULL_BITS & !m)
}

/// The all-ones mask if bit `j` of `word` is set, else zero.
#[inline(always)]
fn bit_mask(word: u64, j: usize) -> u64 {
    0u64.wrapping_sub((word >> j) & 1)
}

/// A column made ready for hashing: typed, sliced buffers, built once per call.
struct HashColumn {
    kind: HashKind,
    /// Validity, sliced like the column; `None` if the column has no nulls.
    nulls: Option<BooleanBuffer>,
}

enum HashKind {
    W8(ScalarBuffer<u8>),
    W16(ScalarBuffer<u16>),
    W32(ScalarBuffer<u32>),
    W64(ScalarBuffer<u64>),
    Bool(BooleanBuffer),
    Bytes32 {
        offsets: ScalarBuffer<i32>,
        values: Buffer,
    },
    Bytes64 {
        offsets: ScalarBuffer<i64>,
        values: Buffer,
    },
    /// Fallback: the column's own arrow-row encoding (which encodes nulls itself).
    Rows(Rows),
}

impl HashColumn {
    fn new(col: &ArrayRef) -> Result<Self, ArrowError> {
        let dt = col.data_type();
        let nulls = col
            .nulls()
            .filter(|n| n.null_count() > 0)
            .map(|n| n.inner().clone());
        let data = col.to_data();
        let (offset, len) = (data.offset(), data.len());
        let width = if dt.is_primitive() {
            dt.primitive_width()
        } else {
            None
        };
        let kind = match (dt, width) {
            (_, Some(1)) => HashKind::W8(ScalarBuffer::new(data.buffers()[0].clone(), offset, len)),
            (_, Some(2)) => {
                HashKind::W16(ScalarBuffer::new(data.buffers()[0].clone(), offset, len))
            }
            (_, Some(4)) => {
                HashKind::W32(ScalarBuffer::new(data.buffers()[0].clone(), offset, len))
            }
            (_, Some(8)) => {
                HashKind::W64(ScalarBuffer::new(data.buffers()[0].clone(), offset, len))
            }
            (DataType::Boolean, _) => HashKind::Bool(col.as_boolean().values().clone()),
            (DataType::Utf8 | DataType::Binary, _) => HashKind::Bytes32 {
                offsets: ScalarBuffer::new(data.buffers()[0].clone(), offset, len + 1),
                values: data.buffers()[1].clone(),
            },
            (DataType::LargeUtf8 | DataType::LargeBinary, _) => HashKind::Bytes64 {
                offsets: ScalarBuffer::new(data.buffers()[0].clone(), offset, len + 1),
                values: data.buffers()[1].clone(),
            },
            _ => {
                let conv = RowConverter::new(vec![SortField::new(dt.clone())])?;
                let rows = conv.convert_columns(std::slice::from_ref(col))?;
                return Ok(Self {
                    kind: HashKind::Rows(rows),
                    nulls: None,
                });
            }
        };
        Ok(Self { kind, nulls })
    }

    /// Folds rows `start..start + out.len()` of this column into `out`.
    fn fold(&self, start: usize, out: &mut [u64]) {
        let end = start + out.len();
        let nulls = self.nulls.as_ref().map(|n| n.slice(start, out.len()));
        match &self.kind {
            HashKind::W8(v) => fold_fixed(&v[start..end], nulls.as_ref(), out),
            HashKind::W16(v) => fold_fixed(&v[start..end], nulls.as_ref(), out),
            HashKind::W32(v) => fold_fixed(&v[start..end], nulls.as_ref(), out),
            HashKind::W64(v) => fold_fixed(&v[start..end], nulls.as_ref(), out),
            HashKind::Bool(values) => {
                fold_bool(&values.slice(start, out.len()), nulls.as_ref(), out)
            }
            HashKind::Bytes32 { offsets, values } => {
                fold_bytes(&offsets[start..=end], values, nulls.as_ref(), out)
            }
            HashKind::Bytes64 { offsets, values } => {
                fold_bytes(&offsets[start..=end], values, nulls.as_ref(), out)
            }
            HashKind::Rows(rows) => {
                for (i, o) in (start..end).zip(out.iter_mut()) {
                    *o = combine(*o, xxh3_64(rows.row(i).data()));
                }
            }
        }
    }
}

/// Fixed-width values: one straight loop without nulls, 64-row blocks against the validity
/// bitmap with them.
#[inline(always)]
fn fold_fixed<T: Copy + Into<u64>>(values: &[T], nulls: Option<&BooleanBuffer>, out: &mut [u64]) {
    match nulls {
        None => {
            for (o, &v) in out.iter_mut().zip(values) {
                *o = combine(*o, v.into());
            }
        }
        Some(valid) => {
            let words = valid.bit_chunks();
            for ((o64, v64), word) in out
                .chunks_mut(64)
                .zip(values.chunks(64))
                .zip(words.iter_padded())
            {
                for (j, (o, &v)) in o64.iter_mut().zip(v64).enumerate() {
                    *o = combine(*o, select_null(v.into(), bit_mask(word, j)));
                }
            }
        }
    }
}

/// Booleans: the value bit, 64 rows per bitmap word.
fn fold_bool(values: &BooleanBuffer, nulls: Option<&BooleanBuffer>, out: &mut [u64]) {
    let value_words = values.bit_chunks();
    match nulls {
        None => {
            for (o64, word) in out.chunks_mut(64).zip(value_words.iter_padded()) {
                for (j, o) in o64.iter_mut().enumerate() {
                    *o = combine(*o, (word >> j) & 1);
                }
            }
        }
        Some(valid) => {
            let valid_words = valid.bit_chunks();
            for ((o64, word), vword) in out
                .chunks_mut(64)
                .zip(value_words.iter_padded())
                .zip(valid_words.iter_padded())
            {
                for (j, o) in o64.iter_mut().enumerate() {
                    *o = combine(*o, select_null((word >> j) & 1, bit_mask(vword, j)));
                }
            }
        }
    }
}

/// Strings and binaries: xxh3 of each value's bytes (the bytes under a null slot are hashed
/// too, then masked out).
fn fold_bytes<O: ArrowNativeType>(
    offsets: &[O],
    values: &[u8],
    nulls: Option<&BooleanBuffer>,
    out: &mut [u64],
) {
    let value = |w: &[O]| -> u64 {
        let (s, e) = (w[0].as_usize(), w[1].as_usize());
        xxh3_64(&values[s..e])
    };
    match nulls {
        None => {
            for (o, w) in out.iter_mut().zip(offsets.windows(2)) {
                *o = combine(*o, value(w));
            }
        }
        Some(valid) => {
            let words = valid.bit_chunks();
            let mut h = [0u64; 64];
            for (block, (o64, word)) in out.chunks_mut(64).zip(words.iter_padded()).enumerate() {
                let base = block * 64;
                let offs = &offsets[base..=base + o64.len()];
                let h = &mut h[..o64.len()];
                for (hj, w) in h.iter_mut().zip(offs.windows(2)) {
                    *hj = value(w);
                }
                // The select and the mix run over the whole block without branches.
                for (j, (o, &hj)) in o64.iter_mut().zip(h.iter()).enumerate() {
                    *o = combine(*o, select_null(hj, bit_mask(word, j)));
                }
            }
        }
    }
}

/// Hashes each row of `columns` (all of the same length) into `out`, which is cleared and then
/// holds one `u64` per row. With no columns, `out` is left empty.
///
/// Rows that are equal column by column hash equal, wherever they sit: the hash depends only on
/// the values and the column order, not on the row position, the batch or the array offsets,
/// and not on the thread count. Equality is that of the arrow-row encoding, the one
/// [`dedup_sorted`] uses: floats hash by their bits, so `-0.0` and `0.0`, or two NaNs with
/// different payloads, hash differently (and are distinct rows to the dedup as well). A null
/// folds a fixed sentinel instead of a value, so it hashes differently from any value except by
/// a 64-bit collision. The hash is not stable across versions of this crate and is not
/// cryptographic.
///
/// Types handled natively: every primitive type of width 1, 2, 4 or 8 bytes (integers, floats,
/// dates, times, timestamps of any unit and time zone, durations), `Boolean`, `Utf8`,
/// `LargeUtf8`, `Binary` and `LargeBinary`. Every other type is hashed through its arrow-row
/// encoding.
///
/// # Errors
///
/// Columns of different lengths, or a type arrow-row cannot encode.
pub fn hash_rows(columns: &[ArrayRef], out: &mut Vec<u64>) -> Result<(), ArrowError> {
    out.clear();
    let Some(first) = columns.first() else {
        return Ok(());
    };
    let n = first.len();
    if let Some(bad) = columns.iter().find(|c| c.len() != n) {
        return Err(ArrowError::InvalidArgumentError(format!(
            "hash_rows: columns of {n} and {} rows",
            bad.len()
        )));
    }
    let prepared = columns
        .iter()
        .map(HashColumn::new)
        .collect::<Result<Vec<_>, _>>()?;
    out.resize(n, HASH_SEED);
    out.par_chunks_mut(HASH_CHUNK)
        .enumerate()
        .for_each(|(chunk, acc)| {
            for col in &prepared {
                col.fold(chunk * HASH_CHUNK, acc);
            }
        });
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Take
// ---------------------------------------------------------------------------------------------

/// Gathers the rows of `batch` at `indices` (in that order) into a new batch with the same
/// schema, one column per rayon task.
///
/// # Errors
///
/// An error from [`arrow_select::take::take`] (a null index into a non-nullable column, an
/// output too large for 32-bit offsets).
///
/// # Panics
///
/// Panics if an index is out of bounds, as `take` does.
pub fn take_batch(batch: &RecordBatch, indices: &UInt32Array) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .par_iter()
        .map(|c| arrow_select::take::take(c.as_ref(), indices, None))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        batch.schema(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(indices.len())),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::types::{Decimal128Type, Int32Type};
    use arrow_array::{
        BinaryArray, BooleanArray, DictionaryArray, Float64Array, Int32Array, Int64Array,
        LargeStringArray, PrimitiveArray, StringArray, TimestampMicrosecondArray,
    };
    use proptest::prelude::*;

    use super::*;

    fn encode(columns: &[ArrayRef]) -> Rows {
        let fields = columns
            .iter()
            .map(|c| SortField::new(c.data_type().clone()))
            .collect();
        RowConverter::new(fields)
            .unwrap()
            .convert_columns(columns)
            .unwrap()
    }

    /// Binary values over a tiny alphabet with zero bytes and lengths 0..40, plus nulls: many
    /// equal prefixes, rows that are prefixes of others, and long common prefixes.
    fn binary_col() -> impl Strategy<Value = Vec<Option<Vec<u8>>>> {
        prop::collection::vec(
            prop::option::weighted(
                0.9,
                prop::collection::vec(prop::sample::select(vec![0u8, 1, 255]), 0..40),
            ),
            0..300,
        )
    }

    fn binary_rows(values: &[Option<Vec<u8>>], ints: &[i64]) -> Rows {
        let bin: ArrayRef = Arc::new(BinaryArray::from_iter(values.iter().map(|v| v.as_deref())));
        let int: ArrayRef = Arc::new(Int64Array::from_iter_values(
            (0..values.len()).map(|i| ints[i % ints.len()]),
        ));
        encode(&[bin, int])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn sort_matches_comparison_sort(
            values in binary_col(),
            ints in prop::collection::vec(-2i64..2, 1..4),
            subset in any::<bool>(),
        ) {
            let rows = binary_rows(&values, &ints);
            let mut indices: Vec<u32> = (0..values.len() as u32).rev().collect();
            if subset {
                indices.retain(|i| i % 3 != 1);
            }
            let mut expected = indices.clone();
            sort_row_indices_comparison(&rows, &mut expected);
            sort_row_indices(&rows, &mut indices);
            prop_assert_eq!(indices, expected);
        }

        /// Rows that share long prefixes (the leading strings of access-log keys), so that
        /// large groups agree on many digits and the sort jumps over them; the same rows split
        /// into parts (`RowParts`) sort the same.
        #[test]
        fn sort_jumps_over_long_shared_prefixes(
            rows_spec in prop::collection::vec((0usize..3, 0usize..3, prop::collection::vec(0u8..3, 0..12)), 0..1500),
            cuts in prop::collection::vec(0usize..1500, 0..4),
        ) {
            let prefixes = [b"".to_vec(), vec![7u8; 61], [vec![7u8; 61], vec![9u8; 140]].concat()];
            let values: Vec<Option<Vec<u8>>> = rows_spec
                .iter()
                .map(|(p, q, tail)| Some([prefixes[*p].clone(), prefixes[*q].clone(), tail.clone()].concat()))
                .collect();
            let all = binary_rows(&values, &[1, 2]);
            let mut expected: Vec<u32> = (0..values.len() as u32).collect();
            sort_row_indices_comparison(&all, &mut expected);
            let mut got: Vec<u32> = (0..values.len() as u32).collect();
            sort_row_indices(&all, &mut got);
            prop_assert_eq!(&got, &expected);

            let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (values.len() + 1)).collect();
            bounds.extend([0, values.len()]);
            bounds.sort_unstable();
            // the same columns as `all`, sliced (binary_rows' int column follows the index)
            let bin: ArrayRef = Arc::new(BinaryArray::from_iter(values.iter().map(|v| v.as_deref())));
            let int: ArrayRef = Arc::new(Int64Array::from_iter_values((0..values.len()).map(|i| [1, 2][i % 2])));
            let parts = RowParts::new(
                bounds
                    .windows(2)
                    .map(|w| encode(&[bin.slice(w[0], w[1] - w[0]), int.slice(w[0], w[1] - w[0])]))
                    .collect(),
            );
            prop_assert_eq!(parts.num_rows(), values.len());
            let mut got: Vec<u32> = (0..values.len() as u32).collect();
            sort_row_indices(&parts, &mut got);
            prop_assert_eq!(&got, &expected);
            let mut deduped = got.clone();
            let mut expected_dedup = got;
            expected_dedup.dedup_by(|b, a| all.row(*a as usize) == all.row(*b as usize));
            dedup_sorted(&parts, &mut deduped);
            prop_assert_eq!(deduped, expected_dedup);
        }

        #[test]
        fn common_prefix_is_the_naive_one(
            a in prop::collection::vec(0u8..2, 0..40),
            b in prop::collection::vec(0u8..2, 0..40),
        ) {
            let naive = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            prop_assert_eq!(common_prefix(&a, &b), naive);
            prop_assert_eq!(common_prefix(&a, &a), a.len());
        }

        #[test]
        fn dedup_matches_dedup_by(
            values in binary_col(),
            ints in prop::collection::vec(-1i64..1, 1..3),
        ) {
            let rows = binary_rows(&values, &ints);
            let mut indices: Vec<u32> = (0..values.len() as u32).collect();
            sort_row_indices(&rows, &mut indices);
            let mut expected = indices.clone();
            expected.dedup_by(|b, a| rows.row(*a as usize) == rows.row(*b as usize));
            let removed = dedup_sorted(&rows, &mut indices);
            prop_assert_eq!(removed, values.len() - expected.len());
            prop_assert_eq!(indices, expected);
        }

        #[test]
        fn hash_agrees_with_row_equality(
            seeds in prop::collection::vec((0u8..4, 0u8..3, 0u8..3, 0u8..2), 0..400),
            split in 0usize..400,
        ) {
            let cols = hash_columns(&seeds);
            let mut hashes = Vec::new();
            hash_rows(&cols, &mut hashes).unwrap();
            prop_assert_eq!(hashes.len(), seeds.len());

            // deterministic
            let mut again = Vec::new();
            hash_rows(&cols, &mut again).unwrap();
            prop_assert_eq!(&again, &hashes);

            // equal rows hash equal, different rows differently (a 64-bit collision among a
            // few hundred rows is not going to happen)
            let rows = encode(&cols);
            for i in 0..seeds.len() {
                for j in 0..i {
                    prop_assert_eq!(rows.row(i) == rows.row(j), hashes[i] == hashes[j], "{} {}", i, j);
                }
            }

            // split batches: sliced arrays (odd bitmap offsets) and separately built arrays
            let split = split.min(seeds.len());
            let sliced: Vec<ArrayRef> = cols.iter().map(|c| c.slice(split, seeds.len() - split)).collect();
            hash_rows(&sliced, &mut again).unwrap();
            prop_assert_eq!(&again[..], &hashes[split..]);
            hash_rows(&hash_columns(&seeds[split..]), &mut again).unwrap();
            prop_assert_eq!(&again[..], &hashes[split..]);
            hash_rows(&hash_columns(&seeds[..split]), &mut again).unwrap();
            prop_assert_eq!(&again[..], &hashes[..split]);
        }
    }

    /// One column of each natively hashed kind, plus two fallback kinds, with nulls, from small
    /// seeds so that equal rows are common.
    fn hash_columns(seeds: &[(u8, u8, u8, u8)]) -> Vec<ArrayRef> {
        let opt = |v: u8, x: u8| (v != 0).then_some(x);
        let strings = ["", "a", "abc", "a longer string of more than 12 bytes"];
        vec![
            Arc::new(Int64Array::from_iter(
                seeds
                    .iter()
                    .map(|s| opt(s.0, s.1).map(|x| i64::from(x) - 1)),
            )),
            Arc::new(Float64Array::from_iter(
                seeds
                    .iter()
                    .map(|s| opt(s.1, s.0).map(|x| f64::from(x) * 0.5)),
            )),
            Arc::new(BooleanArray::from_iter(
                seeds.iter().map(|s| opt(s.2, s.3).map(|x| x == 1)),
            )),
            Arc::new(StringArray::from_iter(
                seeds
                    .iter()
                    .map(|s| opt(s.3, s.0).map(|x| strings[x as usize])),
            )),
            Arc::new(LargeStringArray::from_iter_values(
                seeds.iter().map(|s| strings[(s.2 as usize) % 4]),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter(
                    seeds
                        .iter()
                        .map(|s| opt(s.2, s.1).map(|x| i64::from(x) << 40)),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Int32Array::from_iter_values(
                seeds.iter().map(|s| i32::from(s.3)),
            )),
            Arc::new(
                PrimitiveArray::<Decimal128Type>::from_iter(
                    seeds.iter().map(|s| opt(s.1, s.2).map(i128::from)),
                )
                .with_precision_and_scale(10, 2)
                .unwrap(),
            ),
            Arc::new(DictionaryArray::<Int32Type>::from_iter(
                seeds
                    .iter()
                    .map(|s| opt(s.0, s.3).map(|x| strings[x as usize])),
            )),
        ]
    }

    #[test]
    fn hash_null_differs_from_values() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![None, Some(0), Some(-1)]));
        let strs: ArrayRef = Arc::new(StringArray::from(vec![None, Some(""), Some("x")]));
        let bools: ArrayRef = Arc::new(BooleanArray::from(vec![None, Some(false), Some(true)]));
        for col in [ints, strs, bools] {
            let mut h = Vec::new();
            hash_rows(&[col], &mut h).unwrap();
            assert_ne!(h[0], h[1]);
            assert_ne!(h[0], h[2]);
            assert_ne!(h[1], h[2]);
        }
    }

    #[test]
    fn hash_column_order_matters_and_lengths_checked() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![2, 1]));
        let mut h = Vec::new();
        hash_rows(&[a.clone(), b.clone()], &mut h).unwrap();
        assert_ne!(h[0], h[1]);
        let short: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        assert!(hash_rows(&[a, short], &mut h).is_err());
        hash_rows(&[], &mut h).unwrap();
        assert!(h.is_empty());
    }

    #[test]
    fn sort_large_input_with_long_common_prefixes() {
        // Enough rows for the parallel paths, with groups sharing 8, 16 and 40 bytes.
        let n = 60_000usize;
        let mut x = 0x1234_5678_9abc_def0u64;
        let strings: Vec<String> = (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let prefix = [
                    "",
                    "commonpr",
                    "common-prefix-of-sixteen",
                    "p".repeat(40).leak(),
                ][(x % 4) as usize];
                format!("{prefix}{}", (x >> 8) % 5000)
            })
            .collect();
        let col: ArrayRef = Arc::new(StringArray::from_iter_values(&strings));
        let rows = encode(&[col]);
        let mut indices: Vec<u32> = (0..n as u32).collect();
        let mut expected = indices.clone();
        sort_row_indices_comparison(&rows, &mut expected);
        sort_row_indices(&rows, &mut indices);
        assert_eq!(indices, expected);
        let mut dedup_expected = expected.clone();
        dedup_expected.dedup_by(|b, a| rows.row(*a as usize) == rows.row(*b as usize));
        dedup_sorted(&rows, &mut indices);
        assert_eq!(indices, dedup_expected);
    }

    #[test]
    fn take_batch_matches_take_record_batch() {
        let batch = RecordBatch::try_from_iter([
            (
                "a",
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
            ),
            (
                "b",
                Arc::new(StringArray::from(vec![Some("x"), Some("y"), None])) as ArrayRef,
            ),
        ])
        .unwrap();
        let idx = UInt32Array::from(vec![2, 0, 0, 1]);
        let got = take_batch(&batch, &idx).unwrap();
        let expected = arrow_select::take::take_record_batch(&batch, &idx).unwrap();
        assert_eq!(got, expected);
        let empty = RecordBatch::try_new_with_options(
            batch.schema().project(&[]).map(Arc::new).unwrap(),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(3)),
        )
        .unwrap();
        assert_eq!(take_batch(&empty, &idx).unwrap().num_rows(), 4);
    }
}
