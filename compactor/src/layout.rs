//! The Parquet layout of a segment: types, encodings, zstd levels and bloom filters, chosen
//! per column from the data.
//!
//! # Why
//! On logs, one or two columns (random ids, timestamps sorted late in the key, IPs) hold most
//! of the bytes, and the encoding that suits each one differs: random hex ids compress best as
//! `DELTA_LENGTH_BYTE_ARRAY` (the lengths vanish, zstd's Huffman stage packs the hex digits to
//! 4 bits), timestamps sorted inside small groups as `DELTA_BINARY_PACKED`, repeated strings
//! as a dictionary. No single setting is right for every column, and guessing from the type
//! is wrong often enough (a timestamp of whole seconds repeats and wants a dictionary). So
//! each column's layout is chosen by *trial*: encode a sample of it every sensible way and
//! keep the smallest. Sizes are a pure function of the sample, so the choice, and therefore
//! the segment's bytes, are deterministic (no timings are involved; the speed bound is the
//! level cap [`DEFAULT_MAX_ZSTD_LEVEL`], measured once, see below).
//!
//! # Algorithm
//! 1. *Types* ([`Profile`], [`file_schema`]): while parsing, every batch is profiled: the
//!    range of each integer column, whether every timestamp is a whole millisecond, and
//!    whether every value of a text column is a canonical UUID (lowercase `8-4-4-4-12`, so
//!    that 16 bytes print back to the same text). At write time integers get the narrowest
//!    width holding the range (`Int8`..`Int64`), timestamps of whole milliseconds the
//!    `MILLIS` unit (their deltas lose ten always-zero bits; Parquet has no seconds unit), UUID
//!    columns `FixedSizeBinary(16)` with the Parquet `UUID` logical type (only for columns new
//!    to the table; see `run.rs`). In a small run, a column with a value in every parsed row
//!    is written `REQUIRED`: its pages carry no definition levels and its footer entry no null
//!    count (see [`file_schema`] for why only small runs). The
//!    table schema keeps `long`, `timestamp` (µs) and nullable columns: Delta readers widen on
//!    read.
//! 2. *Encodings* ([`choose`]): on the first [`DEFAULT_TRIAL_ROWS`] rows of the segment (a
//!    contiguous piece of the sorted output, so run lengths and time deltas are those of the
//!    file), each column is written alone with each candidate: dictionary (falling back to
//!    plain when it grows past the dictionary page limit), plain, and by type
//!    `DELTA_BINARY_PACKED` (integers, timestamps), `DELTA_LENGTH_BYTE_ARRAY` /
//!    `DELTA_BYTE_ARRAY` (text), `BYTE_STREAM_SPLIT` (floats). The smallest wins; a candidate
//!    other than the dictionary must beat it by [`DEFAULT_MIN_GAIN`].
//! 3. *Levels*: columns holding at least [`LEVEL_TRIAL_SHARE`] of the sample's bytes are tried
//!    again at each level of [`LEVEL_CANDIDATES`] up to the cap, lowest first; a level is
//!    kept only when it beats every lower one by [`DEFAULT_MIN_GAIN`] (so the faster level
//!    wins ties). Random data (ids) ends up at level 1, which packs it best *and* fastest.
//!    Small columns keep the base level. When the sample is the whole segment, a column whose
//!    chunk is no larger stored uncompressed (dense delta-packed counters, random numbers:
//!    zstd's frame is pure cost) is stored so. In a *tiny* segment ([`TINY_SEGMENT_BYTES`], all of it the sample) every
//!    column tries every level up to 22: its slow levels cost little time in total.
//! 4. *Bloom filters*: text, binary and integer columns whose name says "lookup key" (`id`,
//!    `*_id`, `uuid`, `ip`, `trace`, `session`, ...) and whose sample is mostly distinct get a
//!    split-block bloom filter sized for the expected distinct values of a row group at
//!    [`DEFAULT_BLOOM_FPP`], when the segment is expected to hold at least
//!    [`DEFAULT_BLOOM_MIN_ROWS`] rows (below that a reader scans the file anyway).
//! 5. *Statistics*: page statistics on every column of a big segment. A small one
//!    ([`SMALL_SEGMENT_ROWS`]) has one page per column chunk, so no page index, and chunk
//!    statistics only on the columns readers prune on (sort key, timestamps, lookup keys) and
//!    those of at least [`STATISTICS_MIN_COLUMN_BYTES`]: on a file of 500 rows and 86 columns,
//!    statistics were 3.6 kB of 64 kB.
//!
//! ```text
//!  parse ──▶ Profile (ranges, UUID?) ─────────────▶ file_schema ─┐
//!  sorted rows ─▶ first DEFAULT_TRIAL_ROWS ─▶ choose ─▶ Layout ──┴─▶ WriterProperties ─▶ segment
//!                 (dict | plain | delta* | bss) × column, levels for the big columns,
//!                 uncompressed, statistics where they pay
//! ```
//!
//! # Measured
//! zstd levels on the generated 500 MB JSON events (sorted `event,country,ts`, 2-core VM):
//! level 3 → 9 → 15 → 19 shrink the table by about 5% more at each step up to 15 and 4% to 19,
//! while compression runs at roughly 300, 90, 25 and 6 MB/s per core. The encode time of a run
//! is dominated by its biggest columns, so [`DEFAULT_MAX_ZSTD_LEVEL`] caps the trial at 15 for
//! the columns that hold [`LEVEL_TRIAL_SHARE`] of the bytes, and the base level is
//! [`crate::job::DEFAULT_ZSTD_LEVEL`].

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int64Type, TimestampMicrosecondType};
use arrow_array::{Array, ArrayRef, FixedSizeBinaryArray, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::metadata::SortingColumn;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder};
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

/// Rows of each segment's trial sample.
pub const DEFAULT_TRIAL_ROWS: usize = 32 * 1024;
/// A dictionary within this share of the best candidate is kept for a column whose sample
/// values repeat (see `choose_encoding`).
pub const DICT_ALLOWANCE: f64 = 0.25;
/// "Repeats": at most this share of the sample's values distinct.
pub const DICT_MAX_DISTINCT_SHARE: f64 = 0.5;
/// Segments of at most this many rows are *small*: fixed overheads matter there, so every
/// column's level is tried, and the page index (one page per column chunk: it would repeat the
/// chunk statistics) is not written.
pub const SMALL_SEGMENT_ROWS: u64 = 64 * 1024;
/// Fewest non-null values of a column in the sample for its trial to count: a column that is
/// (almost) all null in the segment's first rows (fields of one event type, when the rows are
/// sorted by type) keeps the dictionary encoding, which adapts to whatever comes later. A
/// sample that is the whole segment is always tried.
pub const MIN_TRIAL_VALUES: usize = 1024;
/// Share by which a candidate must beat the default (dictionary, base level) to be chosen.
pub const DEFAULT_MIN_GAIN: f64 = 0.01;
/// Highest zstd level the trial may choose: the speed bound (about 6 MB/s per core at 19 on
/// log columns; see the module docs).
pub const DEFAULT_MAX_ZSTD_LEVEL: i32 = 15;
/// Levels tried for the big columns, lowest first (a level is kept only if it beats the ones
/// below it by [`DEFAULT_MIN_GAIN`]). Low levels are there because they win on random data:
/// on random hex ids level 1 packs 16.005 bytes per 32-digit id at 965 MB/s, level 9 17.0 at
/// 54 MB/s (it finds short chance matches that cost more than the literals), level 19 16.04 at
/// 3 MB/s (measured with the `zstandard` module on 200,000 generated ids, 1 MiB blocks).
pub const LEVEL_CANDIDATES: [i32; 8] = [1, 3, 6, 9, 12, 15, 19, 22];
/// A segment whose whole content is the trial sample and whose columns hold at most this
/// many bytes in memory is *tiny*: every level up to [`TINY_SEGMENT_MAX_ZSTD_LEVEL`] is tried
/// on every column (unless the job sets `max_zstd_level`). The level cap is a speed bound for
/// the bulk of the data; a tiny segment costs at most a few seconds of CPU at the slowest
/// levels, and its fixed costs make every byte count (on a 2.8 MB corpus file of nginx status
/// dumps, caps 15 → 19 → 22 take the table from 64.1 to 61.0 to 60.3 kB).
pub const TINY_SEGMENT_BYTES: usize = 4 << 20;
/// Highest level tried on the columns of a tiny segment (zstd's highest).
pub const TINY_SEGMENT_MAX_ZSTD_LEVEL: i32 = 22;
/// `zstd_level` of a column stored uncompressed: the trial found that zstd's frame costs more
/// than it saves (short, already dense columns such as delta-packed counters).
pub const UNCOMPRESSED: i32 = 0;
/// In a small segment, a column's chunk statistics (min, max, nulls: about 40 bytes in the
/// footer) are written only when its bytes are at least this many, or it is a column readers
/// prune on (sort key, timestamp, lookup key). Below that, reading the column costs about what
/// its statistics would; the Delta log still records the table's file statistics.
pub const STATISTICS_MIN_COLUMN_BYTES: usize = 4 << 10;
/// Share of the sample's bytes a column must hold to have its level tried.
pub const LEVEL_TRIAL_SHARE: f64 = 0.02;
/// Most bytes of one column chunk's dictionary before it falls back to the plain encoding.
/// Larger than parquet's 1 MiB default: a dictionary of a few hundred thousand session ids or
/// URL paths still beats plain text (measured on the generated events: `session_id` 3.16 →
/// 2.51 MB, `page` 1.70 → 1.60 MB).
pub const DEFAULT_DICTIONARY_PAGE_BYTES: usize = 16 << 20;
/// Target size of a data page before compression. Larger pages give zstd more context; the page
/// index still lets readers skip pages.
pub const DEFAULT_DATA_PAGE_BYTES: usize = 1 << 20;
/// False-positive rate of bloom filters.
pub const DEFAULT_BLOOM_FPP: f64 = 0.05;
/// Fewest rows a segment must be expected to hold before it gets bloom filters.
pub const DEFAULT_BLOOM_MIN_ROWS: u64 = 100_000;
/// Most bytes the chosen bloom filters may add, as a share of the segment's estimated bytes:
/// a filter on a unique random id costs about 5% of that id's own bytes, so with a budget
/// not every key column gets one. Name them in `bloom_filters` to have them regardless.
pub const DEFAULT_BLOOM_BUDGET: f64 = 0.02;
/// Bytes of a split-block bloom filter per distinct value at [`DEFAULT_BLOOM_FPP`] (6.9 bits),
/// times 1.5 for the rounding of its size up to a power of two.
const BLOOM_BYTES_PER_VALUE: f64 = 6.9 / 8.0 * 1.5;
/// Share of distinct values in the sample above which a key-named column gets a bloom filter.
pub const BLOOM_MIN_DISTINCT_SHARE: f64 = 0.2;
/// Statistics and page-index values are cut to this many bytes (long URLs and user agents
/// would otherwise be copied whole into every footer).
pub const STATISTICS_TRUNCATE_BYTES: usize = 32;

/// What the layout may do; built from the job's `[output]`.
#[derive(Debug, Clone)]
pub struct LayoutOptions {
    /// Base zstd level (every column unless the trial picks a higher one).
    pub zstd_level: i32,
    /// Whether encodings and levels are chosen by trial (`false`: dictionary everywhere at
    /// the base level, as a plain Parquet writer would).
    pub trial: bool,
    /// Highest level the trial may pick.
    pub max_zstd_level: i32,
    /// Highest level the trial may pick in a tiny segment (see [`TINY_SEGMENT_BYTES`]).
    pub tiny_max_zstd_level: i32,
    /// Rows per row group.
    pub row_group_size: usize,
    /// Indices (in the written schema) of the columns the rows are sorted by.
    pub sorted_by: Vec<usize>,
    /// Bloom filters: `None` chooses by name and cardinality; `Some(cols)` puts them exactly
    /// on these columns (empty: none).
    pub bloom_columns: Option<Vec<String>>,
    /// Rows the segment is expected to hold at most (bloom filter sizing).
    pub expected_rows: u64,
}

impl Default for LayoutOptions {
    fn default() -> Self {
        LayoutOptions {
            zstd_level: crate::job::DEFAULT_ZSTD_LEVEL,
            trial: true,
            max_zstd_level: DEFAULT_MAX_ZSTD_LEVEL,
            tiny_max_zstd_level: TINY_SEGMENT_MAX_ZSTD_LEVEL,
            row_group_size: crate::job::DEFAULT_ROW_GROUP_SIZE,
            sorted_by: Vec::new(),
            bloom_columns: None,
            expected_rows: u64::MAX,
        }
    }
}

/// One column's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnLayout {
    /// Column name.
    pub name: String,
    /// Dictionary encoding (with plain fallback).
    pub dictionary: bool,
    /// The encoding when not dictionary-encoded.
    pub encoding: Encoding,
    /// zstd level, or [`UNCOMPRESSED`].
    pub zstd_level: i32,
    /// Whether the column chunk carries min/max/null statistics (always, except in small
    /// segments: see [`STATISTICS_MIN_COLUMN_BYTES`]).
    pub statistics: bool,
    /// Bloom filter: expected distinct values per row group.
    pub bloom_ndv: Option<u64>,
    /// Trial sizes in bytes, `(candidate, bytes)`, for logs and `inspect`.
    pub trials: Vec<(String, usize)>,
}

/// The layout of every column of a segment.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per column, in schema order.
    pub columns: Vec<ColumnLayout>,
    options: LayoutOptions,
}

impl Layout {
    /// The default layout (dictionary, base level) without trial: what `trial = false` and
    /// empty segments use.
    pub fn plain(schema: &Schema, options: &LayoutOptions) -> Layout {
        Layout {
            columns: schema
                .fields()
                .iter()
                .map(|f| ColumnLayout {
                    name: f.name().clone(),
                    dictionary: true,
                    encoding: Encoding::PLAIN,
                    zstd_level: options.zstd_level,
                    statistics: true,
                    bloom_ndv: None,
                    trials: Vec::new(),
                })
                .collect(),
            options: options.clone(),
        }
    }

    /// Parquet writer properties for this layout.
    pub fn properties(&self) -> Result<WriterProperties> {
        let o = &self.options;
        let sorting = o
            .sorted_by
            .iter()
            .map(|&i| SortingColumn {
                column_idx: i as i32,
                descending: false,
                nulls_first: true,
            })
            .collect::<Vec<_>>();
        let mut b = base_properties(o.zstd_level)?
            .set_max_row_group_row_count(Some(o.row_group_size.max(1)))
            .set_sorting_columns((!sorting.is_empty()).then_some(sorting))
            .set_created_by(concat!("compactor ", env!("CARGO_PKG_VERSION")).to_string());
        if o.expected_rows <= SMALL_SEGMENT_ROWS {
            // one page per column chunk: a page index would repeat the chunk statistics
            b = b
                .set_statistics_enabled(EnabledStatistics::Chunk)
                .set_offset_index_disabled(true);
        }
        for c in &self.columns {
            let path = ColumnPath::new(vec![c.name.clone()]);
            b = b.set_column_dictionary_enabled(path.clone(), c.dictionary);
            if !c.dictionary {
                b = b.set_column_encoding(path.clone(), c.encoding);
            }
            if c.zstd_level != o.zstd_level {
                b = b.set_column_compression(path.clone(), compression(c.zstd_level)?);
            }
            if !c.statistics {
                b = b.set_column_statistics_enabled(path.clone(), EnabledStatistics::None);
            }
            if let Some(ndv) = c.bloom_ndv {
                b = b
                    .set_column_bloom_filter_enabled(path.clone(), true)
                    .set_column_bloom_filter_fpp(path.clone(), DEFAULT_BLOOM_FPP)
                    .set_column_bloom_filter_max_ndv(path, ndv.max(1));
            }
        }
        Ok(b.build())
    }

    /// One line per column for the log: `name: encoding @level [bloom]`.
    pub fn describe(&self) -> String {
        self.columns
            .iter()
            .map(|c| {
                let enc = if c.dictionary {
                    "dict".to_string()
                } else {
                    format!("{:?}", c.encoding).to_lowercase()
                };
                let bloom = c
                    .bloom_ndv
                    .map_or(String::new(), |n| format!(" bloom({n})"));
                let codec = match c.zstd_level {
                    UNCOMPRESSED => "uncompressed".to_string(),
                    l => format!("zstd({l})"),
                };
                let stats = if c.statistics { "" } else { " no-stats" };
                format!("{}: {enc} {codec}{bloom}{stats}", c.name)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn compression(level: i32) -> Result<Compression> {
    Ok(match level {
        UNCOMPRESSED => Compression::UNCOMPRESSED,
        l => Compression::ZSTD(ZstdLevel::try_new(l)?),
    })
}

/// Settings shared by trials and segments: zstd, pages cut by size only (not by the 20,000-row
/// default, which makes small pages of narrow columns and costs zstd its context), page
/// statistics with truncated values.
fn base_properties(level: i32) -> Result<WriterPropertiesBuilder> {
    Ok(WriterProperties::builder()
        .set_compression(compression(level)?)
        .set_dictionary_enabled(true)
        .set_data_page_size_limit(DEFAULT_DATA_PAGE_BYTES)
        .set_dictionary_page_size_limit(DEFAULT_DICTIONARY_PAGE_BYTES)
        .set_data_page_row_count_limit(usize::MAX)
        .set_write_batch_size(8 * 1024)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_statistics_truncate_length(Some(STATISTICS_TRUNCATE_BYTES))
        .set_column_index_truncate_length(Some(STATISTICS_TRUNCATE_BYTES)))
}

/// A way to encode a column, tried on the sample.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    dictionary: bool,
    encoding: Encoding,
}

impl Candidate {
    const DICT: Candidate = Candidate {
        dictionary: true,
        encoding: Encoding::PLAIN,
    };
    fn name(self) -> String {
        if self.dictionary {
            "dict".into()
        } else {
            format!("{:?}", self.encoding).to_lowercase()
        }
    }
}

fn candidates(t: &DataType) -> Vec<Candidate> {
    let plain = |encoding| Candidate {
        dictionary: false,
        encoding,
    };
    let mut c = vec![Candidate::DICT, plain(Encoding::PLAIN)];
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Timestamp(..) => c.push(plain(Encoding::DELTA_BINARY_PACKED)),
        DataType::Float32 | DataType::Float64 => c.push(plain(Encoding::BYTE_STREAM_SPLIT)),
        DataType::Utf8 | DataType::Binary => {
            c.push(plain(Encoding::DELTA_LENGTH_BYTE_ARRAY));
            c.push(plain(Encoding::DELTA_BYTE_ARRAY));
        }
        DataType::Boolean => return vec![Candidate::DICT],
        _ => {}
    }
    c
}

/// Compressed bytes of `array` written alone as one column chunk.
fn trial_size(field: &FieldRef, array: &ArrayRef, cand: Candidate, level: i32) -> Result<usize> {
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let path = ColumnPath::new(vec![field.name().clone()]);
    let mut b = base_properties(level)?
        .set_statistics_enabled(EnabledStatistics::None)
        .set_column_dictionary_enabled(path.clone(), cand.dictionary);
    if !cand.dictionary {
        b = b.set_column_encoding(path, cand.encoding);
    }
    let mut w = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(b.build()))?;
    w.write(&RecordBatch::try_new(schema, vec![array.clone()])?)?;
    let meta = w.close()?;
    Ok(meta
        .row_groups()
        .iter()
        .map(|g| g.column(0).compressed_size() as usize)
        .sum())
}

/// Chooses every column's layout from `sample` (rows in the file's types and order).
pub fn choose(sample: &RecordBatch, options: &LayoutOptions) -> Result<Layout> {
    let mut layout = Layout::plain(&sample.schema(), options);
    // segment rows per sample row
    let scale = options.expected_rows.min(u32::MAX as u64) as f64 / sample.num_rows().max(1) as f64;
    if sample.num_rows() > 0 && options.trial {
        let schema = sample.schema();
        let chosen = schema
            .fields()
            .par_iter()
            .zip(sample.columns().par_iter())
            .map(|(f, a)| {
                let whole = options.expected_rows <= a.len() as u64;
                if a.len() - a.null_count() < MIN_TRIAL_VALUES && !whole {
                    // too few values to tell the encodings apart: the dictionary, which adapts
                    return Ok((Candidate::DICT, 0, Vec::new()));
                }
                choose_encoding(f, a, options.zstd_level)
            })
            .collect::<Result<Vec<_>>>()?;
        let total: usize = chosen.iter().map(|(_, s, _)| *s).sum::<usize>().max(1);
        let small = options.expected_rows <= SMALL_SEGMENT_ROWS;
        let whole = options.expected_rows <= sample.num_rows() as u64;
        let tiny = whole && sample.get_array_memory_size() <= TINY_SEGMENT_BYTES;
        let max_level = if tiny {
            options.tiny_max_zstd_level
        } else {
            options.max_zstd_level
        }
        .max(options.zstd_level);
        let levels = schema
            .fields()
            .par_iter()
            .zip(sample.columns().par_iter())
            .zip(chosen.par_iter())
            .map(|((f, a), (cand, size, _))| {
                if !small && (*size as f64) < LEVEL_TRIAL_SHARE * total as f64 {
                    return Ok((options.zstd_level, Vec::new()));
                }
                choose_level(f, a, *cand, *size, options.zstd_level, max_level, whole)
            })
            .collect::<Result<Vec<_>>>()?;
        for (i, (c, ((cand, _, mut trials), (level, level_trials)))) in layout
            .columns
            .iter_mut()
            .zip(chosen.into_iter().zip(levels))
            .enumerate()
        {
            c.dictionary = cand.dictionary;
            c.encoding = cand.encoding;
            c.zstd_level = level;
            trials.extend(level_trials);
            c.trials = trials;
            let sample_bytes = c.trials.iter().map(|(_, s)| *s).min().unwrap_or(usize::MAX);
            let bytes = sample_bytes as f64 * scale.max(1.0);
            let pruned_on = options.sorted_by.contains(&i)
                || matches!(schema.field(i).data_type(), DataType::Timestamp(..))
                || key_like(&c.name);
            c.statistics = !small || pruned_on || bytes >= STATISTICS_MIN_COLUMN_BYTES as f64;
        }
    }
    // the segment's bytes, estimated from the sample's trial sizes (or its memory size)
    let sample_bytes: usize = if layout.columns.iter().any(|c| !c.trials.is_empty()) {
        layout
            .columns
            .iter()
            .map(|c| c.trials.iter().map(|(_, s)| *s).min().unwrap_or(0))
            .sum()
    } else {
        sample.get_array_memory_size() / 4
    };
    choose_blooms(&mut layout, sample, options, sample_bytes as f64 * scale);
    Ok(layout)
}

/// A column's chosen candidate, its trial bytes, and every trial `(candidate, bytes)`.
type EncodingChoice = (Candidate, usize, Vec<(String, usize)>);

fn choose_encoding(field: &FieldRef, array: &ArrayRef, level: i32) -> Result<EncodingChoice> {
    let mut trials = Vec::new();
    let mut best: Option<(Candidate, usize)> = None;
    let mut dict_size = usize::MAX;
    for cand in candidates(field.data_type()) {
        let size = trial_size(field, array, cand, level)
            .with_context(|| format!("layout trial of column {}", field.name()))?;
        trials.push((cand.name(), size));
        if cand == Candidate::DICT {
            dict_size = size;
        }
        let better = (size as f64) < dict_size as f64 * (1.0 - DEFAULT_MIN_GAIN)
            && best.is_none_or(|(_, s)| size < s);
        if best.is_none() || better {
            best = Some((cand, size));
        }
    }
    let (mut cand, mut size) = best.expect("every type has the dictionary candidate");
    // A dictionary pays more on a whole row group than on the sample: its values are stored
    // once per row group while the other encodings pay per row (and zstd sees repeats only
    // within a page). So a column whose sample repeats its values keeps the dictionary when
    // it is close.
    if cand != Candidate::DICT
        && (dict_size as f64) <= size as f64 * (1.0 + DICT_ALLOWANCE)
        && distinct_share(array) <= DICT_MAX_DISTINCT_SHARE
    {
        cand = Candidate::DICT;
        size = dict_size;
    }
    Ok((cand, size, trials))
}

/// The level for a column (`base` is the level `base_size` was measured at): the lowest that
/// no higher one up to `max_level` beats by [`DEFAULT_MIN_GAIN`], or, when `array` is the
/// whole column chunk (`whole`), [`UNCOMPRESSED`] if that is no larger. (On a part, a near
/// tie is no evidence: on a 49,474-row corpus file whose first 32,768 rows tied, zstd saved
/// 4.5% of the timestamps over the whole.)
fn choose_level(
    field: &FieldRef,
    array: &ArrayRef,
    cand: Candidate,
    base_size: usize,
    base: i32,
    max_level: i32,
    whole: bool,
) -> Result<(i32, Vec<(String, usize)>)> {
    let mut sizes: Vec<(i32, usize)> = Vec::new();
    let mut trials = Vec::new();
    for level in LEVEL_CANDIDATES
        .into_iter()
        .chain([base])
        .filter(|&l| l <= max_level.max(base))
    {
        if sizes.iter().any(|(l, _)| *l == level) {
            continue;
        }
        let size = if level == base {
            base_size
        } else {
            let s = trial_size(field, array, cand, level)?;
            trials.push((format!("{}@{level}", cand.name()), s));
            s
        };
        sizes.push((level, size));
    }
    sizes.sort();
    // lowest level first; a higher one must beat the best so far by DEFAULT_MIN_GAIN
    let mut best = sizes[0];
    for &(level, size) in &sizes[1..] {
        if (size as f64) < best.1 as f64 * (1.0 - DEFAULT_MIN_GAIN) {
            best = (level, size);
        }
    }
    if whole {
        // stored as is: no zstd frame, and the fastest to read
        let raw = trial_size(field, array, cand, UNCOMPRESSED)?;
        trials.push((format!("{}@uncompressed", cand.name()), raw));
        if raw <= best.1 {
            best = (UNCOMPRESSED, raw);
        }
    }
    Ok((best.0, trials))
}

/// Whether a column name reads as a lookup key.
pub fn key_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let last = n.rsplit(['.', '_', '-']).next().unwrap_or(&n);
    matches!(
        last,
        "id" | "ids" | "uuid" | "guid" | "uid" | "ip" | "addr" | "trace" | "span" | "session"
    ) || (name.len() > 2 && (name.ends_with("Id") || name.ends_with("ID")))
}

/// Bloom filters. Chosen ones must fit, cheapest first, in [`DEFAULT_BLOOM_BUDGET`] of the
/// segment's estimated bytes (`segment_bytes`).
fn choose_blooms(
    layout: &mut Layout,
    sample: &RecordBatch,
    options: &LayoutOptions,
    segment_bytes: f64,
) {
    let group = (options.row_group_size as u64).min(options.expected_rows);
    let mut wanted: Vec<(f64, usize)> = Vec::new();
    for (i, c) in layout.columns.iter().enumerate() {
        match &options.bloom_columns {
            Some(cols) => {
                if cols.iter().any(|n| n.eq_ignore_ascii_case(&c.name)) {
                    wanted.push((0.0, i));
                }
            }
            None => {
                let f = sample.schema_ref().field(i).clone();
                let typed = matches!(
                    f.data_type(),
                    DataType::Utf8
                        | DataType::Binary
                        | DataType::FixedSizeBinary(_)
                        | DataType::Int32
                        | DataType::Int64
                );
                if !typed || options.expected_rows < DEFAULT_BLOOM_MIN_ROWS || !key_like(&c.name) {
                    continue;
                }
                let share = distinct_share(sample.column(i));
                if share >= BLOOM_MIN_DISTINCT_SHARE {
                    // distinct values over the segment (at most one per row) times the
                    // filter's bytes per value, with the power-of-two rounding on average
                    let cost = share * options.expected_rows as f64 * BLOOM_BYTES_PER_VALUE;
                    wanted.push((cost, i));
                }
            }
        }
    }
    wanted.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut spent = 0.0;
    for (cost, i) in wanted {
        if options.bloom_columns.is_none() && spent + cost > DEFAULT_BLOOM_BUDGET * segment_bytes {
            continue;
        }
        spent += cost;
        // sized for a row group of distinct values; parquet folds the filter down to the
        // values actually inserted
        layout.columns[i].bloom_ndv = Some(group.max(1));
    }
}

/// Distinct non-null values over rows, by hashing the values of the array.
fn distinct_share(a: &ArrayRef) -> f64 {
    match distinct_values(a, false) {
        Some(d) if !a.is_empty() => d as f64 / a.len() as f64,
        _ => 0.0,
    }
}

/// Distinct values of `a` by hash (null counted as one value when `with_null`); `None` for a
/// type that cannot be hashed.
pub(crate) fn distinct_values(a: &ArrayRef, with_null: bool) -> Option<usize> {
    let mut hashes = Vec::new();
    compactor_engine::kernels::hash_rows(std::slice::from_ref(a), &mut hashes).ok()?;
    let seen: std::collections::HashSet<u64> = hashes
        .iter()
        .enumerate()
        .filter(|(i, _)| with_null || a.is_valid(*i))
        .map(|(_, h)| *h)
        .collect();
    Some(seen.len())
}

/// What parsing learned about each column, for the written types.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    columns: HashMap<String, ColumnProfile>,
    /// Rows observed.
    rows: u64,
}

/// One column's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnProfile {
    /// Smallest and largest integer seen (integer columns).
    pub range: Option<(i64, i64)>,
    /// Every non-null text value so far is a canonical UUID (and there was one).
    pub uuid: bool,
    /// Some value was not a canonical UUID (or not text).
    pub not_uuid: bool,
    /// Timestamps: some value is not a whole millisecond.
    pub sub_milli: bool,
    /// Non-null values seen.
    pub non_null: u64,
}

impl Profile {
    /// Looks at a batch of parsed rows.
    pub fn observe(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        for (f, a) in batch.schema().fields().iter().zip(batch.columns()) {
            let p = self
                .columns
                .entry(f.name().to_ascii_lowercase())
                .or_insert(ColumnProfile {
                    range: None,
                    uuid: false,
                    not_uuid: false,
                    sub_milli: false,
                    non_null: 0,
                });
            p.non_null += (a.len() - a.logical_null_count()) as u64;
            match a.data_type() {
                DataType::Int64 => {
                    let a = a.as_primitive::<Int64Type>();
                    if let (Some(lo), Some(hi)) = (
                        arrow_arith::aggregate::min(a),
                        arrow_arith::aggregate::max(a),
                    ) {
                        p.range = Some(match p.range {
                            Some((l, h)) => (l.min(lo), h.max(hi)),
                            None => (lo, hi),
                        });
                    }
                }
                DataType::Utf8 if !p.not_uuid => {
                    let s = a.as_string::<i32>();
                    if s.iter().flatten().all(is_canonical_uuid) {
                        p.uuid |= s.null_count() < s.len();
                    } else {
                        p.not_uuid = true;
                        p.uuid = false;
                    }
                }
                DataType::Timestamp(TimeUnit::Microsecond, _) => {
                    p.not_uuid = true;
                    if !p.sub_milli {
                        let a = a.as_primitive::<TimestampMicrosecondType>();
                        p.sub_milli = a.iter().flatten().any(|v| v % 1000 != 0);
                    }
                }
                DataType::Null => {}
                _ => {
                    p.not_uuid = true;
                    p.uuid = false;
                }
            }
        }
    }

    /// The profile of a column.
    pub fn column(&self, name: &str) -> Option<&ColumnProfile> {
        self.columns.get(&name.to_ascii_lowercase())
    }

    /// Whether every observed row has a value in the column (a column first seen after some
    /// rows, or seen in no row, has nulls).
    pub fn no_nulls(&self, name: &str) -> bool {
        self.rows > 0 && self.column(name).is_some_and(|p| p.non_null == self.rows)
    }
}

/// Whether `s` is a UUID in the canonical text form that 16 bytes print back to: lowercase
/// hex digits in groups 8-4-4-4-12.
pub fn is_canonical_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

fn uuid_bytes(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    let hex = s.bytes().filter(|&c| c != b'-');
    let nib = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
    for (i, c) in hex.enumerate() {
        out[i / 2] |= nib(c) << if i % 2 == 0 { 4 } else { 0 };
    }
    out
}

/// The narrowest integer type holding `lo..=hi`.
pub fn narrowest_int(lo: i64, hi: i64) -> DataType {
    if lo >= i8::MIN as i64 && hi <= i8::MAX as i64 {
        DataType::Int8
    } else if lo >= i16::MIN as i64 && hi <= i16::MAX as i64 {
        DataType::Int16
    } else if lo >= i32::MIN as i64 && hi <= i32::MAX as i64 {
        DataType::Int32
    } else {
        DataType::Int64
    }
}

/// The schema segments are written in: `table` (the rows' schema) with integers narrowed to
/// their range, the columns in `uuid_columns` as 16-byte UUIDs, and, when `required`, columns
/// that had a value in every row `REQUIRED` (not nullable: no definition levels in the pages,
/// no null counts in the footer; the table's schema stays nullable).
///
/// `required` is for small runs ([`SMALL_SEGMENT_ROWS`]) only. Measured: on a 500-row corpus
/// file of 86 columns it saves 737 of 56,240 bytes; on the generated events (1.1 million rows)
/// parquet-rs 60 writes the same layout 22 kB larger (33,245,970 → 33,268,007 bytes, on
/// `event_id`, `session_id` and `page`), on the access logs 11 kB; pyarrow's writer does not
/// (its `session_id` chunk shrinks by 414 bytes), so the cause is in the writer, not found.
pub fn file_schema(
    table: &Schema,
    profile: &Profile,
    uuid_columns: &[String],
    required: bool,
) -> SchemaRef {
    let fields = table
        .fields()
        .iter()
        .map(|f| {
            let p = profile.column(f.name());
            let nullable = f.is_nullable() && !(required && profile.no_nulls(f.name()));
            let t = match (f.data_type(), p) {
                (
                    DataType::Int64,
                    Some(ColumnProfile {
                        range: Some((lo, hi)),
                        ..
                    }),
                ) => narrowest_int(*lo, *hi),
                (DataType::Utf8, _) if uuid_columns.iter().any(|u| u == f.name()) => {
                    return Arc::new(
                        Field::new(f.name(), DataType::FixedSizeBinary(16), nullable)
                            .with_extension_type(arrow_schema::extension::Uuid),
                    );
                }
                (DataType::Timestamp(TimeUnit::Microsecond, tz), Some(p)) if !p.sub_milli => {
                    DataType::Timestamp(TimeUnit::Millisecond, tz.clone())
                }
                (t, _) => t.clone(),
            };
            Arc::new(Field::new(f.name(), t, nullable).with_metadata(f.metadata().clone()))
        })
        .collect::<Vec<_>>();
    Arc::new(Schema::new(fields))
}

/// Casts rows of the table's schema to `file` (see [`file_schema`]). Fails (an internal error)
/// if a value does not fit, which the profile rules out.
pub fn to_file_batch(batch: &RecordBatch, file: &SchemaRef) -> Result<RecordBatch> {
    let cols = batch
        .columns()
        .iter()
        .zip(file.fields())
        .map(|(a, f)| -> Result<ArrayRef> {
            if a.data_type() == f.data_type() {
                return Ok(a.clone());
            }
            match f.data_type() {
                DataType::FixedSizeBinary(16) => {
                    let s = a.as_string::<i32>();
                    let mut values = Vec::with_capacity(s.len());
                    for v in s.iter() {
                        match v {
                            Some(v) if is_canonical_uuid(v) => values.push(Some(uuid_bytes(v))),
                            Some(v) => anyhow::bail!(
                                "internal error: column {} holds {v:?}, not a canonical UUID",
                                f.name()
                            ),
                            None => values.push(None),
                        }
                    }
                    Ok(Arc::new(
                        FixedSizeBinaryArray::try_from_sparse_iter_with_size(
                            values.into_iter(),
                            16,
                        )?,
                    ))
                }
                t => {
                    let opts = arrow_cast::CastOptions {
                        safe: false,
                        ..Default::default()
                    };
                    Ok(arrow_cast::cast_with_options(a, t, &opts)
                        .with_context(|| format!("narrowing column {}", f.name()))?)
                }
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(
        file.clone(),
        cols,
        &opts,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Float64Array, Int64Array, StringArray};

    #[test]
    fn canonical_uuids_only() {
        assert!(is_canonical_uuid("123e4567-e89b-12d3-a456-426614174000"));
        for s in [
            "123E4567-E89B-12D3-A456-426614174000",
            "{123e4567-e89b-12d3-a456-426614174000}",
            "123e4567e89b12d3a456426614174000",
            "123e4567-e89b-12d3-a456-42661417400g",
            "123e4567-e89b-12d3-a456_426614174000",
            "",
        ] {
            assert!(!is_canonical_uuid(s), "{s}");
        }
        let s = "123e4567-e89b-12d3-a456-426614174000";
        let b = uuid_bytes(s);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(hex, s.replace('-', ""));
    }

    #[test]
    fn narrowest_widths() {
        assert_eq!(narrowest_int(-128, 127), DataType::Int8);
        assert_eq!(narrowest_int(0, 128), DataType::Int16);
        assert_eq!(narrowest_int(-32769, 0), DataType::Int32);
        assert_eq!(narrowest_int(0, i32::MAX as i64 + 1), DataType::Int64);
    }

    fn batch(cols: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[test]
    fn profile_and_file_schema() {
        let mut p = Profile::default();
        p.observe(&batch(vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(3), None, Some(-200)])) as ArrayRef,
            ),
            (
                "u",
                Arc::new(StringArray::from(vec![
                    Some("123e4567-e89b-12d3-a456-426614174000"),
                    None,
                    Some("00000000-0000-0000-0000-000000000000"),
                ])),
            ),
            ("v", Arc::new(StringArray::from(vec!["a", "b", "c"]))),
        ]));
        p.observe(&batch(vec![(
            "v",
            Arc::new(StringArray::from(vec![
                "123e4567-e89b-12d3-a456-426614174000",
            ])) as ArrayRef,
        )]));
        assert_eq!(p.column("n").unwrap().range, Some((-200, 3)));
        assert!(p.column("u").unwrap().uuid);
        assert!(!p.column("v").unwrap().uuid, "one value was not a UUID");
        let table = Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("u", DataType::Utf8, true),
            Field::new("v", DataType::Utf8, true),
        ]);
        let fs = file_schema(&table, &p, &["u".to_string()], true);
        assert_eq!(fs.field(0).data_type(), &DataType::Int16);
        assert_eq!(fs.field(1).data_type(), &DataType::FixedSizeBinary(16));
        assert_eq!(fs.field(2).data_type(), &DataType::Utf8);
        let b = batch(vec![
            (
                "n",
                Arc::new(Int64Array::from(vec![Some(3), None])) as ArrayRef,
            ),
            (
                "u",
                Arc::new(StringArray::from(vec![
                    None,
                    Some("123e4567-e89b-12d3-a456-426614174000"),
                ])),
            ),
            ("v", Arc::new(StringArray::from(vec!["x", "y"]))),
        ]);
        let out = to_file_batch(&b, &fs).unwrap();
        assert_eq!(out.column(1).null_count(), 1);
        assert_eq!(out.column(0).data_type(), &DataType::Int16);
        // a value out of the profiled range is an error, never a silent wrap
        let bad = batch(vec![
            ("n", Arc::new(Int64Array::from(vec![70_000])) as ArrayRef),
            ("u", Arc::new(StringArray::from(vec![None::<&str>]))),
            ("v", Arc::new(StringArray::from(vec!["x"]))),
        ]);
        assert!(to_file_batch(&bad, &fs).is_err());
    }

    #[test]
    fn columns_with_a_value_in_every_row_are_required() {
        let mut p = Profile::default();
        p.observe(&batch(vec![
            ("full", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("holey", Arc::new(Int64Array::from(vec![Some(1), None]))),
        ]));
        // `late` first appears in the second batch: the first one's rows lack it
        p.observe(&batch(vec![
            ("full", Arc::new(Int64Array::from(vec![3])) as ArrayRef),
            ("holey", Arc::new(Int64Array::from(vec![4]))),
            ("late", Arc::new(StringArray::from(vec!["x"]))),
        ]));
        assert!(p.no_nulls("FULL"));
        assert!(!p.no_nulls("holey"));
        assert!(!p.no_nulls("late"));
        assert!(!p.no_nulls("absent"));
        assert!(!Profile::default().no_nulls("full"));
        let table = Schema::new(vec![
            Field::new("full", DataType::Int64, true),
            Field::new("holey", DataType::Int64, true),
            Field::new("late", DataType::Utf8, true),
            Field::new("absent", DataType::Utf8, true),
        ]);
        let fs = file_schema(&table, &p, &[], true);
        let nullable: Vec<bool> = fs.fields().iter().map(|f| f.is_nullable()).collect();
        assert_eq!(nullable, [false, true, true, true]);
        // big runs and the untightened schema keep the table's nullability
        let big = file_schema(&table, &p, &[], false);
        assert!(big.fields().iter().all(|f| f.is_nullable()));
        let plain = file_schema(&table, &Profile::default(), &[], true);
        assert!(plain.fields().iter().all(|f| f.is_nullable()));
    }

    /// Small segments: a column that zstd cannot shrink is stored uncompressed, statistics go
    /// only where they pay or readers prune, and a tiny segment tries levels past the cap.
    #[test]
    fn small_segments_size_their_fixed_costs() {
        let n = 2000;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let random: Vec<i64> = (0..n).map(|_| next() as i64).collect();
        let text: Vec<String> = (0..n)
            .map(|i| format!("line {} of the log", i % 7))
            .collect();
        let s = batch(vec![
            ("random", Arc::new(Int64Array::from(random)) as ArrayRef),
            ("text", Arc::new(StringArray::from(text))),
            ("seq", Arc::new(Int64Array::from_iter_values(0..n as i64))),
        ]);
        let opts = LayoutOptions {
            expected_rows: n as u64,
            sorted_by: vec![2],
            ..Default::default()
        };
        let l = choose(&s, &opts).unwrap();
        assert_eq!(l.columns[0].zstd_level, UNCOMPRESSED, "{:?}", l.columns[0]);
        assert_ne!(l.columns[1].zstd_level, UNCOMPRESSED, "{:?}", l.columns[1]);
        // 16 kB of random numbers carry statistics, a few hundred bytes of text do not, the
        // sort key column always does
        assert!(l.columns[0].statistics);
        assert!(!l.columns[1].statistics, "{:?}", l.columns[1]);
        assert!(l.columns[2].statistics);
        let tried =
            |l: &Layout, level: &str| l.columns[1].trials.iter().any(|(t, _)| t.ends_with(level));
        assert!(tried(&l, "@22"), "{:?}", l.columns[1].trials);
        // the same rows as the sample of a big segment: every statistic, and the level cap
        let big = LayoutOptions {
            expected_rows: 10_000_000,
            ..opts.clone()
        };
        let l = choose(&s, &big).unwrap();
        assert!(l.columns.iter().all(|c| c.statistics));
        assert!(!tried(&l, "@19") && !tried(&l, "@22"));
        // the properties carry the choices
        let small = choose(&s, &opts).unwrap();
        let props = small.properties().unwrap();
        let path = |n: &str| ColumnPath::new(vec![n.to_string()]);
        assert_eq!(
            props.compression(&path("random")),
            Compression::UNCOMPRESSED
        );
        assert_eq!(
            props.statistics_enabled(&path("text")),
            EnabledStatistics::None
        );
        assert_eq!(
            props.statistics_enabled(&path("seq")),
            EnabledStatistics::Chunk
        );
    }

    #[test]
    fn trial_picks_delta_for_sorted_ints_and_dictionary_for_repeats() {
        let n = 20_000;
        let ts: Vec<i64> = (0..n)
            .map(|i| 1_700_000_000_000_000 + i * 1_000_003)
            .collect();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let rep: Vec<&str> = (0..n)
            .map(|_| ["GET", "POST", "PUT", "DELETE"][(next() % 4) as usize])
            .collect();
        let f: Vec<f64> = (0..n).map(|_| (next() % 7) as f64 * 0.5).collect();
        let s = batch(vec![
            ("ts", Arc::new(Int64Array::from(ts)) as ArrayRef),
            ("method", Arc::new(StringArray::from(rep))),
            ("x", Arc::new(Float64Array::from(f))),
        ]);
        let l = choose(&s, &LayoutOptions::default()).unwrap();
        assert_eq!(l.columns[0].encoding, Encoding::DELTA_BINARY_PACKED);
        assert!(!l.columns[0].dictionary);
        assert!(l.columns[1].dictionary);
        assert!(l.columns[2].dictionary);
        // every candidate was measured
        assert_eq!(l.columns[0].trials.len(), 3, "{:?}", l.columns[0].trials);
        // deterministic
        let again = choose(&s, &LayoutOptions::default()).unwrap();
        assert_eq!(l.columns, again.columns);
        // no trial: dictionary everywhere
        let plain = choose(
            &s,
            &LayoutOptions {
                trial: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(plain.columns.iter().all(|c| c.dictionary));
    }

    #[test]
    fn bloom_filters_on_key_like_distinct_columns_only() {
        let n = 1000;
        let ids: Vec<String> = (0..n).map(|i| format!("id-{i}")).collect();
        let s = batch(vec![
            (
                "request_id",
                Arc::new(StringArray::from(ids.clone())) as ArrayRef,
            ),
            (
                "message",
                Arc::new(StringArray::from(
                    ids.iter().map(|i| i.repeat(200)).collect::<Vec<_>>(),
                )),
            ),
            (
                "user_id",
                Arc::new(Int64Array::from(vec![1; n as usize])) as ArrayRef,
            ),
        ]);
        let opts = LayoutOptions {
            trial: false,
            expected_rows: 1 << 20,
            ..Default::default()
        };
        let l = choose(&s, &opts).unwrap();
        assert!(l.columns[0].bloom_ndv.is_some());
        assert!(l.columns[1].bloom_ndv.is_none(), "not a key name");
        assert!(l.columns[2].bloom_ndv.is_none(), "not distinct");
        // without the big column the filter would cost more than the budget ...
        let ids_only = s.project(&[0]).unwrap();
        assert!(choose(&ids_only, &opts).unwrap().columns[0]
            .bloom_ndv
            .is_none());
        // ... unless the job names it
        let named = LayoutOptions {
            bloom_columns: Some(vec!["REQUEST_ID".into()]),
            ..opts.clone()
        };
        assert!(choose(&ids_only, &named).unwrap().columns[0]
            .bloom_ndv
            .is_some());
        let small = choose(
            &s,
            &LayoutOptions {
                expected_rows: 10_000,
                ..opts
            },
        )
        .unwrap();
        assert!(small.columns.iter().all(|c| c.bloom_ndv.is_none()));
        assert!(key_like("event_id") && key_like("ip") && key_like("client.ip"));
        assert!(key_like("requestId") && key_like("uid") && key_like("trace-id"));
        assert!(!key_like("paid") && !key_like("valid") && !key_like("android"));
    }
}
