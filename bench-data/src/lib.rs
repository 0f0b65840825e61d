//! Deterministic, realistic log generators for `compactor gen`, benchmarks
//! and tests.
//!
//! # Why
//!
//! Compaction speed and compression ratio depend heavily on the *shape* of
//! the input: how skewed the dimensions are (dictionary encoding), how
//! nearly-sorted the timestamps are (sort cost), how many exact re-deliveries
//! there are (dedup), and how often awkward values (escapes, nulls, missing
//! keys, nested objects, arrays, non-ASCII) show up (parser and schema
//! inference paths). Uniform random data gets all of those wrong, and real
//! production logs cannot be shipped with the repository. This crate produces
//! input with realistic shape that is **byte-for-byte reproducible** from a
//! seed, on every platform, so benchmark numbers and ratio checks are
//! comparable across machines and runs.
//!
//! Two formats are available ([`GenFormat`]):
//!
//! * [`GenFormat::Json`]: JSON lines, click / playback events of a streaming
//!   service, e.g.
//!   `{"ts":"2026-01-01T00:00:00.123Z","event_id":"<32 hex>","event":"play","user_id":123456,…,"device":{"os":"ios",…},…,"playback":{"position_s":12.5,…},"tags":["hd"],"ab_bucket":3}`
//! * [`GenFormat::Combined`]: nginx `combined` access log plus a trailing
//!   `$request_time`, e.g.
//!   `203.0.113.7 - - [01/Jan/2026:00:00:00 +0000] "GET /api/v1/items/123?page=2 HTTP/1.1" 200 5123 "-" "Mozilla/5.0 (…)" 0.042`
//!
//! # Algorithm
//!
//! 1. A single [ChaCha8](rand_chacha::ChaCha8Rng) stream is seeded from
//!    [`GenConfig::seed`]; every random decision is drawn from it in a fixed
//!    order (no `thread_rng`, no hash-map iteration, no `usize` ranges), and
//!    the first draw salts stable per-entity attributes (a user's country and
//!    device, an IP's user agent) that are derived by hashing the entity id.
//! 2. **Clock.** A base clock starts at [`GenConfig::start_ts_ms`] and
//!    advances by an exponentially distributed gap with mean
//!    [`GenConfig::mean_interval_ms`] (kept in integer microseconds). Each
//!    event's timestamp is `clock - jitter`, where `jitter` is in
//!    `0..=MAX_JITTER_MS`: usually a few milliseconds (clock skew), for
//!    [`LATE_SHARE`] of events anywhere up to [`MAX_JITTER_MS`] (late
//!    arrivals). Timestamps never precede `start_ts_ms`. Hence output is
//!    *mostly* but not strictly ordered, and every timestamp is at least the
//!    running maximum minus `MAX_JITTER_MS`.
//! 3. **Dimensions.** Categorical fields are drawn from fixed vocabularies
//!    through Zipf distributions (exponent 1.1, precomputed CDF table + binary
//!    search): users (100k), titles (50k), client IPs (50k), paths, user
//!    agents, countries, devices, ... Ranks are permuted into ids so the hottest
//!    entity is not always id 0.
//! 4. **Ids.** `event_id` is a random 128-bit value rendered as 32 lowercase
//!    hex characters, which makes every fresh JSON line unique. Combined
//!    lines have no id, so a fresh line that renders identically to an
//!    earlier one (same second, client, request, size, latency, …) is
//!    discarded and redrawn; a recently seen set of line hashes, pruned as the
//!    clock moves past the jitter window, makes that check exact.
//! 5. **Re-deliveries.** Every line after the first is, with probability
//!    [`GenConfig::duplicate_share`], an exact byte copy of one of the last
//!    [`DUPLICATE_WINDOW`] fresh lines (kept in a ring buffer of reused
//!    allocations) instead of a new event. Hence [`GenStats::duplicates`] is
//!    exactly the number of lines identical to an earlier line, and
//!    `lines - duplicates` is the number of distinct lines.
//! 6. Lines are rendered into one reused byte buffer with hand-written
//!    integer / hex / JSON-escape / timestamp formatters (no per-line
//!    allocation) and written through a `BufWriter`.
//!
//! ```text
//!   seed ──► ChaCha8Rng ──┬──────────────────────────────────────────────┐
//!                         ▼                                              │
//!   clock += Exp(mean) ──► ts = max(start, clock - jitter)               │
//!                         │                                              │
//!                         ▼                                              ▼
//!             Zipf tables (users, titles, IPs, paths, UAs, ...) ──► render line
//!                                                                        │
//!          ┌────────── p = duplicate_share ──────────────┐               │
//!          ▼                                             │ 1 - p         ▼
//!   copy a line from the ring ◄── ring buffer (last 1024 fresh lines) ◄──┤
//!          │                                                             │
//!          └───────────────────────────► BufWriter<W> ◄──────────────────┘
//! ```
//!
//! # Example
//!
//! ```
//! use compactor_bench_data::{generate, GenConfig, GenFormat};
//!
//! let cfg = GenConfig::new(GenFormat::Json, 1_000, 42);
//! let mut out = Vec::new();
//! let stats = generate(&cfg, &mut out).unwrap();
//! assert_eq!(stats.lines, 1_000);
//! assert_eq!(stats.bytes, out.len() as u64);
//! assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1_000);
//! ```

#![warn(missing_docs)]

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::io::{self, BufWriter, Write};
use std::str::FromStr;

mod combined;
mod json;
mod rng;
pub mod samples;
mod text;

use rng::Rng;

/// Default fraction of lines that are exact re-deliveries of an earlier line.
pub const DEFAULT_DUPLICATE_SHARE: f64 = 0.03;

/// Default first timestamp: 2026-01-01T00:00:00Z in unix milliseconds.
pub const DEFAULT_START_TS_MS: i64 = 1_767_225_600_000;

/// Default mean gap between consecutive events, in milliseconds
/// (500 events per second).
pub const DEFAULT_MEAN_INTERVAL_MS: f64 = 2.0;

/// Largest amount, in milliseconds, by which an event's timestamp lags the
/// generator's clock. Every timestamp is `>=` the maximum timestamp of all
/// earlier fresh lines minus this value.
pub const MAX_JITTER_MS: i64 = 500;

/// Fraction of events that are "late" (jitter drawn from the whole
/// `0..=MAX_JITTER_MS` range); the others lag by at most 3 ms.
pub const LATE_SHARE: f64 = 0.1;

/// Jitter bound for events that are not late.
const SMALL_JITTER_MS: u32 = 3;

/// How many of the most recent fresh lines a re-delivered line may copy.
pub const DUPLICATE_WINDOW: usize = 1024;

/// Capacity of the internal `BufWriter`.
const OUT_BUFFER_BYTES: usize = 256 * 1024;

/// Output format of the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenFormat {
    /// JSON lines: one click / playback event object per line.
    Json,
    /// nginx `combined` access log with a trailing `$request_time` field.
    Combined,
}

impl GenFormat {
    /// All formats, in the order they are listed in messages.
    pub const ALL: [GenFormat; 2] = [GenFormat::Json, GenFormat::Combined];

    /// The name accepted by [`FromStr`] (`"json"` or `"combined"`).
    pub fn as_str(self) -> &'static str {
        match self {
            GenFormat::Json => "json",
            GenFormat::Combined => "combined",
        }
    }
}

impl fmt::Display for GenFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when parsing an unknown [`GenFormat`] name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseGenFormatError {
    /// The rejected input.
    pub input: String,
}

impl fmt::Display for ParseGenFormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown log format {:?}; expected one of: ", self.input)?;
        for (i, format) in GenFormat::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(format.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseGenFormatError {}

impl FromStr for GenFormat {
    type Err = ParseGenFormatError;

    /// Parses `"json"` or `"combined"` (ASCII case-insensitive, surrounding
    /// whitespace ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        GenFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| ParseGenFormatError {
                input: s.to_string(),
            })
    }
}

/// What to generate. Identical configs produce byte-identical output.
#[derive(Debug, Clone)]
pub struct GenConfig {
    /// Output format.
    pub format: GenFormat,
    /// Total number of lines written, re-delivered duplicates included.
    pub lines: u64,
    /// Seed of the ChaCha8 stream all content is drawn from.
    pub seed: u64,
    /// Fraction of lines (in `0.0..=1.0`) that are exact re-deliveries of an
    /// earlier line; default [`DEFAULT_DUPLICATE_SHARE`].
    pub duplicate_share: f64,
    /// Base clock at the first event, in unix milliseconds; no timestamp is
    /// earlier. Default [`DEFAULT_START_TS_MS`] (2026-01-01T00:00:00Z).
    pub start_ts_ms: i64,
    /// Mean gap between consecutive events in milliseconds (finite, `>= 0`);
    /// default [`DEFAULT_MEAN_INTERVAL_MS`].
    pub mean_interval_ms: f64,
}

impl GenConfig {
    /// Config for `lines` lines of `format` from `seed`, with default
    /// duplicate share, start timestamp and event rate.
    pub fn new(format: GenFormat, lines: u64, seed: u64) -> Self {
        Self {
            format,
            lines,
            seed,
            duplicate_share: DEFAULT_DUPLICATE_SHARE,
            start_ts_ms: DEFAULT_START_TS_MS,
            mean_interval_ms: DEFAULT_MEAN_INTERVAL_MS,
        }
    }

    /// Checks the numeric fields; [`generate`] calls this first.
    ///
    /// Errors (kind [`io::ErrorKind::InvalidInput`]) when `duplicate_share`
    /// is not in `0.0..=1.0`, `mean_interval_ms` is negative or not finite,
    /// or `start_ts_ms` is outside years 0000..=9999.
    pub fn validate(&self) -> io::Result<()> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if !(0.0..=1.0).contains(&self.duplicate_share) {
            return invalid(format!(
                "duplicate_share must be within 0.0..=1.0, got {}",
                self.duplicate_share
            ));
        }
        if !(self.mean_interval_ms.is_finite() && self.mean_interval_ms >= 0.0) {
            return invalid(format!(
                "mean_interval_ms must be finite and >= 0, got {}",
                self.mean_interval_ms
            ));
        }
        if !(text::MIN_TS_MS..=text::MAX_TS_MS).contains(&self.start_ts_ms) {
            return invalid(format!(
                "start_ts_ms {} is outside years 0000..=9999",
                self.start_ts_ms
            ));
        }
        Ok(())
    }
}

/// Counts reported by [`generate`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenStats {
    /// Lines written (always `GenConfig::lines` on success).
    pub lines: u64,
    /// Lines that are exact copies of an earlier line (re-deliveries).
    pub duplicates: u64,
    /// Bytes written, newlines included.
    pub bytes: u64,
}

/// Writes `cfg.lines` newline-terminated lines of `cfg.format` to `out`.
///
/// `out` is wrapped in an internal [`BufWriter`], so unbuffered writers
/// (`File`, `Stdout`) are fine; it is flushed before returning. Pass
/// `&mut writer` to keep using the writer afterwards. The same `cfg` always
/// yields byte-identical output, on any platform.
///
/// # Errors
///
/// Returns [`io::ErrorKind::InvalidInput`] for an invalid config (see
/// [`GenConfig::validate`]) or if the clock runs past year 9999, and any
/// error from `out`.
pub fn generate<W: Write>(cfg: &GenConfig, out: W) -> io::Result<GenStats> {
    cfg.validate()?;
    let mut rng = Rng::new(cfg.seed);
    let salt = rng.next_u64();
    match cfg.format {
        GenFormat::Json => run(cfg, rng, json::JsonSource::new(salt), out),
        GenFormat::Combined => run(cfg, rng, combined::CombinedSource::new(salt), out),
    }
}

/// Convenience wrapper around [`generate`] returning the output in memory.
pub fn generate_to_vec(cfg: &GenConfig) -> io::Result<(Vec<u8>, GenStats)> {
    let mut out = Vec::new();
    let stats = generate(cfg, &mut out)?;
    Ok((out, stats))
}

/// Renders fresh (non-duplicate) lines of one format.
trait LineSource {
    /// Whether fresh lines can never repeat (they carry a random 128-bit id);
    /// otherwise the generator filters accidental repeats.
    const UNIQUE_BY_CONSTRUCTION: bool;

    /// Appends one complete line, `\n` included, for an event at `ts_ms`.
    fn push_line(&mut self, rng: &mut Rng, ts_ms: i64, buf: &mut Vec<u8>) -> io::Result<()>;
}

/// Event clock: exponential gaps plus bounded backwards jitter.
struct Clock {
    now_us: i64,
    floor_ms: i64,
    mean_us: f64,
}

impl Clock {
    fn new(start_ms: i64, mean_interval_ms: f64) -> Self {
        Self {
            now_us: start_ms.saturating_mul(1000),
            floor_ms: start_ms,
            mean_us: mean_interval_ms * 1000.0,
        }
    }

    /// Timestamp of the next event; then advances the clock.
    fn next_event(&mut self, rng: &mut Rng) -> i64 {
        let bound = if rng.chance(LATE_SHARE) {
            MAX_JITTER_MS as u32
        } else {
            SMALL_JITTER_MS
        };
        let jitter = i64::from(rng.below(bound + 1));
        let ts = (self.now_us.div_euclid(1000) - jitter).max(self.floor_ms);
        // `as` saturates, and the clock saturates instead of wrapping; the
        // renderer reports timestamps past year 9999 as errors.
        let gap_us = rng.exp(self.mean_us).round() as i64;
        self.now_us = self.now_us.saturating_add(gap_us);
        ts
    }

    /// No future event can have a timestamp below this.
    fn min_future_ms(&self) -> i64 {
        (self.now_us.div_euclid(1000) - MAX_JITTER_MS).max(self.floor_ms)
    }
}

/// The most recent fresh lines, in reused allocations.
struct Ring {
    slots: Vec<Vec<u8>>,
    next: usize,
}

impl Ring {
    fn new() -> Self {
        Self {
            slots: Vec::with_capacity(DUPLICATE_WINDOW),
            next: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn push(&mut self, line: &[u8]) {
        if self.slots.len() < DUPLICATE_WINDOW {
            self.slots.push(line.to_vec());
        } else {
            let slot = &mut self.slots[self.next];
            slot.clear();
            slot.extend_from_slice(line);
        }
        self.next = (self.next + 1) % DUPLICATE_WINDOW;
    }

    /// A uniformly chosen line of the window.
    fn pick(&self, rng: &mut Rng) -> &[u8] {
        &self.slots[rng.below(self.slots.len() as u32) as usize]
    }
}

/// Exact "was this fresh line already written?" check for formats without
/// unique ids. Lines rendered in different seconds always differ, so only
/// hashes of lines whose second can still recur are kept.
#[derive(Default)]
struct UniqueGuard {
    seen: HashSet<u64>,
    order: VecDeque<(i64, u64)>,
}

impl UniqueGuard {
    /// Records `line` (for an event at `ts_ms`) and returns `true` if it was
    /// not seen before; `min_future_ms` bounds all later timestamps.
    fn admit(&mut self, ts_ms: i64, min_future_ms: i64, line: &[u8]) -> bool {
        let horizon = min_future_ms.div_euclid(1000);
        while let Some(&(sec, hash)) = self.order.front() {
            if sec >= horizon {
                break;
            }
            self.seen.remove(&hash);
            self.order.pop_front();
        }
        // A (vanishingly unlikely) hash collision only causes a redraw; it
        // can never let a repeat through.
        let mut hasher = DefaultHasher::new();
        hasher.write(line);
        let hash = hasher.finish();
        if !self.seen.insert(hash) {
            return false;
        }
        self.order.push_back((ts_ms.div_euclid(1000), hash));
        true
    }
}

fn run<S: LineSource, W: Write>(
    cfg: &GenConfig,
    mut rng: Rng,
    mut source: S,
    out: W,
) -> io::Result<GenStats> {
    let mut out = BufWriter::with_capacity(OUT_BUFFER_BYTES, out);
    let mut clock = Clock::new(cfg.start_ts_ms, cfg.mean_interval_ms);
    let mut ring = Ring::new();
    let mut guard = (!S::UNIQUE_BY_CONSTRUCTION).then(UniqueGuard::default);
    let mut line = Vec::with_capacity(1024);
    let mut stats = GenStats::default();

    for _ in 0..cfg.lines {
        if !ring.is_empty() && cfg.duplicate_share > 0.0 && rng.chance(cfg.duplicate_share) {
            let copy = ring.pick(&mut rng);
            out.write_all(copy)?;
            stats.duplicates += 1;
            stats.bytes += copy.len() as u64;
        } else {
            loop {
                line.clear();
                let ts = clock.next_event(&mut rng);
                source.push_line(&mut rng, ts, &mut line)?;
                let admitted = match guard.as_mut() {
                    Some(g) => g.admit(ts, clock.min_future_ms(), &line),
                    None => true,
                };
                if admitted {
                    break;
                }
            }
            out.write_all(&line)?;
            ring.push(&line);
            stats.bytes += line.len() as u64;
        }
        stats.lines += 1;
    }
    out.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests;
