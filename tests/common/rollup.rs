//! Helpers shared by the rollup tests (`tests/rollup.rs`, `tests/rollup_only.rs`,
//! `tests/rollup_recovery.rs`): generated JSON events and the exact per-group aggregates of a
//! `[[rollup]]` over them (the oracle), the test rollups' definitions, reading a rollup table
//! back by group, and running jobs through the CLI.
//!
//! Rollup tables are read with plain `parquet` from the live files of the current snapshot
//! ([`super::live_files`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Output;

use arrow::array::{Array, AsArray, RecordBatch, RecordBatchReader};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rand::seq::SliceRandom;
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::Val;

// ---------------------------------------------------------------------------------------------
// Generated events

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 60 * MINUTE_US;
pub const DAY_US: i64 = 24 * HOUR_US;

/// 2026-03-01T00:00:00Z in microseconds.
pub fn t0() -> i64 {
    chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

/// Seeded randomness (ChaCha8, from `rand_chacha`), so that failures reproduce, with the two
/// draws the generated data needs.
pub struct Rng(ChaCha8Rng);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }
    /// A draw in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.gen_range(0..n.max(1))
    }
    /// One of `choices`, by weight.
    pub fn pick<T: Copy>(&mut self, choices: &[(T, u64)]) -> T {
        choices
            .choose_weighted(&mut self.0, |c| c.1)
            .expect("positive weights")
            .0
    }
}

/// How a [`Gen`] numbers its events and writes their lines.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Style {
    /// Ids from `seed * 1_000_000_007 % 1_000_000`; lines hold only fields the test rollups
    /// read, `device` as `{"os", "model"}`.
    Plain,
    /// Ids from `seed * 10_000_000`; lines also hold a `payload` that no rollup reads (one of
    /// [`PAYLOADS`]: a projected parse skips it, checking that it is JSON), `device` as
    /// `{"model", "os"}`.
    Payload,
}

/// One generated event. Every event has a distinct `id`, so two events are never the same
/// record; re-deliveries are byte-identical copies of an event's line. `ts_us = None`: a
/// record with none of the rollups' columns ([`Gen::bare`]).
#[derive(Debug, Clone)]
pub struct Ev {
    pub id: u64,
    pub ts_us: Option<i64>,
    pub event: Option<&'static str>,
    pub country: Option<&'static str>,
    pub os: Option<&'static str>,
    pub user: u64,
    pub item: i64,
    pub bitrate: Option<i64>,
    pub dur: Option<f64>,
    /// How the line is written.
    pub style: Style,
}

/// Values of a field no rollup reads ([`Style::Payload`]): a projected parse skips them
/// (checking that they are JSON), the full parse keeps them.
pub const PAYLOADS: &[&str] = &[
    r#"{"tags":["a","b\"c",{"x":[1.5e3,-0.25,true,false,null]}],"msg":"caf\u00e9 \\ \/ \n"}"#,
    r#"[[],{},[{"deep":{"er":[0,-0,1E-2]}}]]"#,
    r#""plain text, with {braces} and [brackets]""#,
    r#"-12.5e+3"#,
    r#"null"#,
    r#"{"event":"not the top-level one","ts":"1999-01-01T00:00:00Z"}"#,
];

impl Ev {
    /// The JSON line (with its newline). Nulls are written in the several ways logs have them:
    /// `null`, a missing field, a missing parent object; `pad` bytes of a skipped string make
    /// it long.
    pub fn line_padded(&self, pad: usize) -> String {
        let Some(ts_us) = self.ts_us else {
            return format!(
                "{{\"id\":{},\"note\":\"no rollup column here\"}}\n",
                self.id
            );
        };
        let ts = chrono::DateTime::from_timestamp_micros(ts_us)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let mut s = format!("{{\"id\":{},\"ts\":\"{ts}\"", self.id);
        match self.event {
            Some(e) => s += &format!(",\"event\":\"{e}\""),
            None => s += ",\"event\":null",
        }
        if let Some(c) = self.country {
            s += &format!(",\"country\":\"{c}\"");
        }
        if self.style == Style::Payload {
            s += &format!(
                ",\"payload\":{}",
                PAYLOADS[(self.id % PAYLOADS.len() as u64) as usize]
            );
        }
        match (self.os, self.id % 2) {
            (Some(o), _) if self.style == Style::Payload => {
                s += &format!(
                    ",\"device\":{{\"model\":\"m{}\",\"os\":\"{o}\"}}",
                    self.id % 7
                )
            }
            (Some(o), _) => {
                s += &format!(
                    ",\"device\":{{\"os\":\"{o}\",\"model\":\"m{}\"}}",
                    self.id % 7
                )
            }
            (None, 0) => s += ",\"device\":{\"os\":null,\"model\":\"m0\"}",
            (None, _) => {}
        }
        s += &format!(
            ",\"user_id\":\"{}\",\"item\":{}",
            self.user_key(),
            self.item
        );
        match (self.bitrate, self.id % 2) {
            (Some(b), _) => s += &format!(",\"playback\":{{\"bitrate_kbps\":{b}}}"),
            (None, 0) => s += ",\"playback\":{\"bitrate_kbps\":null}",
            (None, _) => {}
        }
        match self.dur {
            // quarters: exact in binary, so sums do not depend on the order of addition
            Some(x) => s += &format!(",\"dur\":{x:.2}"),
            None => s += ",\"dur\":null",
        }
        if pad > 0 {
            s += &format!(",\"pad\":\"{}\"", "x".repeat(pad));
        }
        s += "}\n";
        s
    }

    /// The JSON line (with its newline).
    pub fn line(&self) -> String {
        self.line_padded(0)
    }

    /// The `user_id` value.
    pub fn user_key(&self) -> String {
        format!("u{}", self.user)
    }
}

/// Generates events with distinct ids.
pub struct Gen {
    rng: Rng,
    next_id: u64,
    /// Distinct user ids to draw from.
    users: u64,
    /// Distinct item ids to draw from.
    items: u64,
    style: Style,
}

impl Gen {
    pub fn new(style: Style, seed: u64, users: u64, items: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            next_id: match style {
                Style::Plain => seed.wrapping_mul(1_000_000_007) % 1_000_000,
                Style::Payload => seed * 10_000_000,
            },
            users,
            items,
            style,
        }
    }

    /// An event with a timestamp (millisecond precision) in `[from, from + span)`.
    pub fn ev(&mut self, from: i64, span: i64) -> Ev {
        let r = &mut self.rng;
        let id = self.next_id;
        self.next_id += 1;
        let ts_us = from + (r.below((span / 1000) as u64) as i64) * 1000;
        let event = r.pick(&[
            (Some("play"), 55),
            (Some("pause"), 20),
            (Some("seek"), 15),
            (None, 10),
        ]);
        let country = r.pick(&[
            (Some("US"), 50),
            (Some("DE"), 20),
            (Some("IN"), 15),
            (Some("BR"), 10),
            (None, 5),
        ]);
        let os = r.pick(&[
            (Some("ios"), 45),
            (Some("android"), 35),
            (Some("web"), 15),
            (None, 5),
        ]);
        let user = r.below(self.users);
        let item = r.below(self.items) as i64;
        let bitrate = if r.below(20) == 0 {
            None
        } else if r.below(10) == 0 {
            // a heavy tail
            Some(50_000 + r.below(200_000) as i64)
        } else {
            Some(100 + r.below(20_000) as i64)
        };
        let dur = (r.below(20) != 0).then(|| r.below(4000) as f64 / 4.0);
        Ev {
            id,
            ts_us: Some(ts_us),
            event,
            country,
            os,
            user,
            item,
            bitrate,
            dur,
            style: self.style,
        }
    }

    pub fn evs(&mut self, n: usize, from: i64, span: i64) -> Vec<Ev> {
        (0..n).map(|_| self.ev(from, span)).collect()
    }

    /// A record that has none of the rollups' columns (a row of nulls to them).
    pub fn bare(&mut self) -> Ev {
        let id = self.next_id;
        self.next_id += 1;
        Ev {
            id,
            ts_us: None,
            event: None,
            country: None,
            os: None,
            user: 0,
            item: 0,
            bitrate: None,
            dur: None,
            style: self.style,
        }
    }
}

/// The lines of `evs`.
pub fn text(evs: &[Ev]) -> String {
    evs.iter().map(Ev::line).collect()
}

/// Lines that are not JSON records, and must be rejected whether or not the parse is projected:
/// many are broken only inside `payload`, a field no rollup reads.
pub const BAD_LINES: &[&[u8]] = &[
    b"not json at all",
    b"{\"id\":1,\"ts\":\"2026-03-01T00:00:00.000Z\",\"event\":\"play\"",
    b"{\"id\":2,\"ts\":\"2026-03-01T00:10:00.000Z\",\"event\":\"play\",}",
    b"[1, 2, 3",
    b"{}",
    b"{\"id\":3,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"pl\\ay\"}",
    b"{\"id\":4,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\"} trailing",
    b"{\"id\":5,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":{\"a\":[1,2,]}}",
    b"{\"id\":6,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":\"bad \\q escape\"}",
    b"{\"id\":7,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":01}",
    b"{\"id\":8,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":tru}",
    b"{\"id\":9,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":\"a\x01b\"}",
    b"{\"id\":10,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":[1 2]}",
    b"{\"id\":11,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":{\"k\" 1}}",
    b"{\"id\":12,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":\"\\uZZZZ\"}",
    b"{\"id\":13,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":-}",
    b"{\"id\":14,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":1.}",
    b"{\"id\":15,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":1e}",
    b"{\"id\":16,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":\"\xff\xfe\"}",
    b"{\"id\":17,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"play\",\"payload\":{1:2}}",
];

/// An input file: the lines of `evs`, `repeats` byte-identical re-deliveries of earlier lines
/// and `bad` lines of [`BAD_LINES`] mixed in. Returns the bytes, every event delivered (in
/// order, re-deliveries included) and the 1-based numbers of the bad lines.
pub fn mixed_input(
    rng: &mut Rng,
    evs: &[Ev],
    repeats: usize,
    bad: usize,
) -> (Vec<u8>, Vec<Ev>, Vec<u64>) {
    // (line, the event it delivers)
    let mut lines: Vec<(Vec<u8>, Option<Ev>)> = evs
        .iter()
        .map(|e| (e.line().into_bytes(), Some(e.clone())))
        .collect();
    for _ in 0..repeats {
        let at = 1 + rng.below(lines.len() as u64) as usize;
        let of = rng.below(at as u64) as usize;
        let l = lines[of].clone();
        if l.1.is_some() {
            lines.insert(at, l);
        }
    }
    for i in 0..bad {
        let at = rng.below(lines.len() as u64 + 1) as usize;
        let mut l = BAD_LINES[i % BAD_LINES.len()].to_vec();
        l.push(b'\n');
        lines.insert(at, (l, None));
    }
    let bytes = lines.iter().flat_map(|l| l.0.clone()).collect();
    let delivered = lines.iter().filter_map(|l| l.1.clone()).collect();
    let bad_at = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.1.is_none())
        .map(|(i, _)| i as u64 + 1)
        .collect();
    (bytes, delivered, bad_at)
}

// ---------------------------------------------------------------------------------------------
// Rollup definitions and the oracle

/// A dimension of the test rollups.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dim {
    Event,
    Country,
    Os,
}

impl Dim {
    pub fn column(self) -> &'static str {
        match self {
            Dim::Event => "event",
            Dim::Country => "country",
            Dim::Os => "device.os",
        }
    }
    pub fn of(self, e: &Ev) -> Option<&'static str> {
        match self {
            Dim::Event => e.event,
            Dim::Country => e.country,
            Dim::Os => e.os,
        }
    }
}

pub const ALL_DIMS: &[Dim] = &[Dim::Event, Dim::Country, Dim::Os];

/// Which aggregates a test rollup has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregates {
    /// Every entry of [`AGGREGATE_ENTRIES`]: a count; sum, min, max and mean of the bitrate
    /// and of `dur`; two distinct counts; quantiles of the bitrate (`br`, the default ones)
    /// and of `dur` (`dq`).
    All,
    /// The same without `dur_mean` and `dq`.
    Lean,
}

/// The `aggregates` entries of the test rollups, and whether an [`Aggregates::Lean`] rollup
/// has the entry too.
pub const AGGREGATE_ENTRIES: &[(&str, bool)] = &[
    (r#"{ name = "events", fn = "count" }"#, true),
    (
        r#"{ name = "br_sum", fn = "sum", column = "playback.bitrate_kbps" }"#,
        true,
    ),
    (
        r#"{ name = "br_min", fn = "min", column = "playback.bitrate_kbps" }"#,
        true,
    ),
    (
        r#"{ name = "br_max", fn = "max", column = "playback.bitrate_kbps" }"#,
        true,
    ),
    (
        r#"{ name = "br_mean", fn = "mean", column = "playback.bitrate_kbps" }"#,
        true,
    ),
    (r#"{ name = "dur_sum", fn = "sum", column = "dur" }"#, true),
    (r#"{ name = "dur_min", fn = "min", column = "dur" }"#, true),
    (r#"{ name = "dur_max", fn = "max", column = "dur" }"#, true),
    (
        r#"{ name = "dur_mean", fn = "mean", column = "dur" }"#,
        false,
    ),
    (
        r#"{ name = "users", fn = "count_distinct", column = "user_id" }"#,
        true,
    ),
    (
        r#"{ name = "items", fn = "count_distinct", column = "item", precision = 16 }"#,
        true,
    ),
    (
        r#"{ name = "br", fn = "quantiles", column = "playback.bitrate_kbps" }"#,
        true,
    ),
    (
        r#"{ name = "dq", fn = "quantiles", column = "dur", quantiles = [0.1, 0.5, 0.999], accuracy = 0.01 }"#,
        false,
    ),
];

impl Aggregates {
    /// The `aggregates = [...]` lines of a `[[rollup]]`.
    pub fn toml(self) -> String {
        let mut s = "aggregates = [\n".to_string();
        for (entry, lean) in AGGREGATE_ENTRIES {
            if *lean || self == Aggregates::All {
                s += &format!("  {entry},\n");
            }
        }
        s + "]\n"
    }
}

/// The quantiles of `br` (the default) and of `dq`, with their column suffixes.
pub const BR_QUANTILES: &[(f64, &str)] = &[(0.5, "p50"), (0.95, "p95"), (0.99, "p99")];
pub const DQ_QUANTILES: &[(f64, &str)] = &[(0.1, "p10"), (0.5, "p50"), (0.999, "p99_9")];
/// The configured accuracy (normalized rank error) of the quantiles aggregates.
pub const ACCURACY: f64 = 0.01;
/// Groups with fewer values are not held to `ACCURACY` (the bound is asymptotic).
pub const MIN_QUANTILE_VALUES: usize = 500;

/// One `[[rollup]]` of a test job.
#[derive(Debug, Clone)]
pub struct Rollup {
    pub name: &'static str,
    /// The job's `bucket` value.
    pub bucket: &'static str,
    /// The same in microseconds (buckets are aligned to the epoch).
    pub bucket_us: i64,
    pub dims: &'static [Dim],
    /// `path = ...`, relative to the job's directory; `None`: the default `table_<name>`.
    pub path: Option<&'static str>,
    /// "rewrite" or "append"; `None`: not written (the default, rewrite).
    pub merge: Option<&'static str>,
    pub aggregates: Aggregates,
}

/// By hour and three dimensions: many small groups.
pub const fn hourly(merge: Option<&'static str>) -> Rollup {
    Rollup {
        name: "hourly",
        bucket: "hour",
        bucket_us: HOUR_US,
        dims: ALL_DIMS,
        path: None,
        merge,
        aggregates: Aggregates::All,
    }
}

/// By day and one dimension: few, large groups, where the sketches' accuracy is measured.
pub const fn daily(merge: Option<&'static str>) -> Rollup {
    Rollup {
        name: "daily",
        bucket: "day",
        bucket_us: DAY_US,
        dims: &[Dim::Event],
        path: None,
        merge,
        aggregates: Aggregates::All,
    }
}

impl Rollup {
    /// The `[[rollup]]` table of a job.
    pub fn toml(&self) -> String {
        let dims: Vec<&str> = self.dims.iter().map(|d| d.column()).collect();
        let mut s = format!(
            "\n[[rollup]]\nname = {}\ntime = \"ts\"\nbucket = {}\ndimensions = {}\n",
            super::toml_str(self.name),
            super::toml_str(self.bucket),
            super::toml_list(&dims)
        );
        if let Some(p) = self.path {
            s += &format!("path = {}\n", super::toml_str(p));
        }
        if let Some(m) = self.merge {
            s += &format!("merge = {}\n", super::toml_str(m));
        }
        s + &self.aggregates.toml()
    }

    /// The rollup table's directory for a job in `dir`.
    pub fn dir(&self, dir: &Path) -> PathBuf {
        match self.path {
            Some(p) => dir.join(p),
            None => dir.join(format!("table_{}", self.name)),
        }
    }

    /// The group of an event.
    pub fn key(&self, e: &Ev) -> Key {
        (
            e.ts_us
                .map(|t| t.div_euclid(self.bucket_us) * self.bucket_us),
            self.dims
                .iter()
                .map(|d| d.of(e).map(str::to_string))
                .collect(),
        )
    }
}

/// A group: bucket start (µs; `None`: no time) and the dimension values (`None`: null),
/// ordered as the rows of a rollup are (nulls first, strings bytewise).
pub type Key = (Option<i64>, Vec<Option<String>>);

/// The exact aggregates of one group.
#[derive(Debug, Default)]
pub struct Acc {
    pub count: i64,
    pub br: Vec<i64>,
    pub dur: Vec<f64>,
    /// `user_id` values ([`Ev::user_key`]).
    pub users: BTreeSet<String>,
    pub items: BTreeSet<i64>,
}

/// The exact aggregates of each group of `r` over `evs` (each counted once).
pub fn oracle(evs: &[Ev], r: &Rollup) -> BTreeMap<Key, Acc> {
    let mut m: BTreeMap<Key, Acc> = BTreeMap::new();
    for e in evs {
        let a = m.entry(r.key(e)).or_default();
        a.count += 1;
        if e.ts_us.is_none() {
            continue;
        }
        a.br.extend(e.bitrate);
        a.dur.extend(e.dur);
        a.users.insert(e.user_key());
        a.items.insert(e.item);
    }
    m
}

// ---------------------------------------------------------------------------------------------
// Reading a rollup table

/// A cell of a rollup table: sketch columns as bytes, the others as values.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    V(Val),
    B(Vec<u8>),
}

/// One row of a rollup table.
#[derive(Debug)]
pub struct RRow {
    /// The `dt` partition value (from the file's path).
    pub dt: Option<String>,
    pub file: PathBuf,
    /// The cells by column name.
    pub cells: BTreeMap<String, Cell>,
}

impl RRow {
    pub fn val(&self, name: &str) -> &Val {
        match self.cells.get(name) {
            Some(Cell::V(v)) => v,
            other => panic!("column {name}: {other:?} in {}", self.file.display()),
        }
    }
    pub fn int(&self, name: &str) -> Option<i64> {
        match self.val(name) {
            Val::Null => None,
            Val::Int(i) => Some(*i),
            v => panic!("{name} is {v:?}"),
        }
    }
    pub fn float(&self, name: &str) -> Option<f64> {
        match self.val(name) {
            Val::Null => None,
            Val::Float(f) => Some(*f),
            v => panic!("{name} is {v:?}"),
        }
    }
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        match self.cells.get(name) {
            Some(Cell::B(b)) => Some(b),
            Some(Cell::V(Val::Null)) => None,
            other => panic!("column {name}: {other:?}"),
        }
    }
    /// The row's group in `r`. Dimension columns are found by name in any case (the column
    /// keeps the data's spelling).
    pub fn key(&self, r: &Rollup) -> Key {
        let t = match self.val("ts") {
            Val::Ts(t) => Some(*t),
            Val::Null => None,
            v => panic!("ts is {v:?}"),
        };
        let dims = r
            .dims
            .iter()
            .map(|d| {
                let d = d.column();
                match self.cells.iter().find(|c| c.0.eq_ignore_ascii_case(d)) {
                    Some((_, Cell::V(Val::Str(s)))) => Some(s.clone()),
                    Some((_, Cell::V(Val::Null))) => None,
                    c => panic!("{d} is {c:?}"),
                }
            })
            .collect();
        (t, dims)
    }
}

/// Whether the live files of a rollup table must name their columns alike.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FileColumns {
    /// Every file has the same column names, spelled the same (asserted while reading).
    Same,
    /// Not checked: a later run may spell a column in another case.
    AnyCase,
}

/// A rollup table read back.
pub struct RollupRead {
    /// The columns of the first live file.
    pub columns: Vec<(String, DataType)>,
    /// The rows of every live file, in log order.
    pub rows: Vec<RRow>,
}

pub fn read_rollup(dir: &Path, file_columns: FileColumns) -> RollupRead {
    assert!(
        dir.join("_delta_log").is_dir(),
        "{} is not a table",
        dir.display()
    );
    let files = super::live_files(dir);
    let mut columns: Option<Vec<(String, DataType)>> = None;
    let mut rows = Vec::new();
    for f in &files {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&f.path).unwrap())
            .unwrap_or_else(|e| panic!("reading {}: {e}", f.path.display()))
            .build()
            .unwrap();
        let cols: Vec<(String, DataType)> = reader
            .schema()
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone()))
            .collect();
        match &columns {
            None => columns = Some(cols.clone()),
            Some(c) if file_columns == FileColumns::Same => {
                let names = |v: &[(String, DataType)]| -> Vec<String> {
                    v.iter().map(|c| c.0.clone()).collect()
                };
                assert_eq!(names(c), names(&cols), "{}", f.path.display());
            }
            Some(_) => {}
        }
        let dt = f
            .partitions
            .iter()
            .find(|(k, _)| k == "dt")
            .map(|(_, v)| v.clone());
        for batch in reader {
            let batch: RecordBatch = batch.unwrap();
            for i in 0..batch.num_rows() {
                let mut cells = BTreeMap::new();
                for (c, (name, _)) in batch.columns().iter().zip(&cols) {
                    let cell = match c.data_type() {
                        _ if c.is_null(i) => Cell::V(Val::Null),
                        DataType::Binary => Cell::B(c.as_binary::<i32>().value(i).to_vec()),
                        DataType::LargeBinary => Cell::B(c.as_binary::<i64>().value(i).to_vec()),
                        DataType::BinaryView => Cell::B(c.as_binary_view().value(i).to_vec()),
                        _ => Cell::V(super::val_at(c.as_ref(), i)),
                    };
                    cells.insert(name.clone(), cell);
                }
                rows.push(RRow {
                    dt: dt.clone(),
                    file: f.path.clone(),
                    cells,
                });
            }
        }
    }
    RollupRead {
        columns: columns.unwrap_or_default(),
        rows,
    }
}

/// The rows of a rollup table by group (several per group when segments were appended).
pub fn groups<'a>(rows: &'a [RRow], r: &Rollup) -> BTreeMap<Key, Vec<&'a RRow>> {
    let mut groups: BTreeMap<Key, Vec<&RRow>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.key(r)).or_default().push(row);
    }
    groups
}

/// Asserts that a rollup table has the groups of the oracle, no more, no fewer.
pub fn assert_groups<T>(what: &str, groups: &BTreeMap<Key, T>, oracle: &BTreeMap<Key, Acc>) {
    let missing: Vec<&Key> = oracle.keys().filter(|k| !groups.contains_key(k)).collect();
    let extra: Vec<&Key> = groups.keys().filter(|k| !oracle.contains_key(k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} groups, want {}; missing {:?}; unexpected {:?}",
        groups.len(),
        oracle.len(),
        &missing[..missing.len().min(5)],
        &extra[..extra.len().min(5)]
    );
}

/// Normalized rank distance of `x` from `q` in `sorted`: 0 when `q` lies in `x`'s true rank
/// interval `[#(v < x), #(v <= x)] / n`.
pub fn rank_error(sorted: &[f64], x: f64, q: f64) -> f64 {
    let n = sorted.len() as f64;
    let lo = sorted.partition_point(|v| *v < x) as f64 / n;
    let hi = sorted.partition_point(|v| *v <= x) as f64 / n;
    if q < lo {
        lo - q
    } else if q > hi {
        q - hi
    } else {
        0.0
    }
}

/// `f(a, b)` of two nullable values, null (`None`) counting as no value.
pub fn opt_fold<T: Copy>(a: Option<T>, b: Option<T>, f: fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(x), Some(y)) => Some(f(x, y)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The partition values and bytes of each live file of a table.
pub type TableBytes = Vec<(Vec<(String, String)>, Vec<u8>)>;

/// The bytes of every live file of a table, sorted by partition (file names hold run ids, so
/// only the contents are compared).
pub fn table_bytes(dir: &Path) -> TableBytes {
    let mut v: Vec<_> = super::live_files(dir)
        .into_iter()
        .map(|f| (f.partitions.clone(), std::fs::read(&f.path).unwrap()))
        .collect();
    v.sort();
    v
}

/// Makes the live files of the rollup tables of `rollups` in the job directory `dir` (none
/// empty) the `reference`, or checks that they have its bytes: `with` says how this job's runs
/// differ and `reference_is` which runs the reference is from (for the messages).
pub fn check_same_bytes(
    reference: &mut Option<Vec<TableBytes>>,
    rollups: &[Rollup],
    dir: &Path,
    with: &str,
    reference_is: &str,
) {
    let bytes: Vec<_> = rollups.iter().map(|r| table_bytes(&r.dir(dir))).collect();
    assert!(bytes.iter().all(|b| !b.is_empty()));
    match reference {
        None => *reference = Some(bytes),
        Some(want) => {
            for (i, r) in rollups.iter().enumerate() {
                assert!(
                    bytes[i] == want[i],
                    "{}: the rollup's files differ with {with} ({} files, {} {reference_is})",
                    r.name,
                    bytes[i].len(),
                    want[i].len()
                );
            }
        }
    }
}

/// The directories staged for rollup commits under the detailed table at `table`.
pub fn staged_dirs(table: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(table.join("_compactor/rollups"))
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Every Parquet file under the rollup table was added by some commit (rewritten ones stay
/// for time travel until vacuum; a crashed writer's are removed by the next).
pub fn assert_no_uncommitted(dir: &Path) {
    let root = dir.canonicalize().unwrap();
    let added = compactor::table::log_files(&root).unwrap().added;
    for p in super::parquet_files_under(&root) {
        assert!(added.contains(&p), "{} was never committed", p.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs and runs

/// A job reading JSON `inputs` into `table` (sorted by `ts`), then `extra`, then `rollups`.
pub fn job_text(inputs: &[&str], rollups: &[Rollup], extra: &str) -> String {
    let mut s = super::job_text(inputs, "json", "table", &["ts"], extra);
    for r in rollups {
        s += &r.toml();
    }
    s
}

/// Runs `compactor run JOB --report F --no-progress ARGS...` with the environment variables
/// `envs`; returns the output and the report (if the run wrote one).
pub fn run(job: &Path, args: &[&str], envs: &[(&str, &str)]) -> (Output, Option<Value>) {
    let report = job.with_extension("report.json");
    let _ = std::fs::remove_file(&report);
    let mut a = vec![
        "run",
        job.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--no-progress",
    ];
    a.extend_from_slice(args);
    let out = super::cli(&a, envs);
    let rep = std::fs::read(&report)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap());
    (out, rep)
}

/// A temporary directory (its canonical path) with an empty `in` directory in it.
pub fn tempdir() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let p = t.path().canonicalize().unwrap();
    std::fs::create_dir(p.join("in")).unwrap();
    (t, p)
}
