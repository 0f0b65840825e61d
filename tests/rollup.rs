//! Rollups (`[[rollup]]` in the job, issue 7) end to end, through the CLI: generated JSON
//! events whose exact per-group aggregates the test computes itself (the oracle, after dropping
//! byte-identical re-deliveries), compared with the rollup tables compactor writes.
//!
//! - count, sum, min, max and mean equal the oracle exactly; count_distinct (DataSketches HLL)
//!   is within 2% (or 1) of the exact distinct count, and the stored sketch hashes values the
//!   way DataSketches Java/C++ do (a sketch rebuilt here from the raw values unions with it
//!   without growing); quantiles (DataSketches t-digest) are within the configured normalized
//!   rank error (0.01) of the true ranks for groups of at least 500 values;
//! - for one run, for several incremental runs merged into the existing rows (only the affected
//!   day partitions rewritten), for appended segments merged by the test and by
//!   `compactor compact`, for any split of the input (proptest);
//! - re-delivered and rejected lines are never counted; the report's `rollups` entries account
//!   for the run's rows;
//! - the bytes do not depend on `--threads` (or the sort's spilling);
//! - two runs committing at once, and a run during a compaction of the rollup table, each land
//!   in the rollups exactly once;
//! - bad `[[rollup]]` tables are usage errors (exit 2) that write nothing, colliding rollup
//!   paths included.
//!
//! Rollup tables are read with plain `parquet` from the live files of the current snapshot
//! (`common::rollup::read_rollup`); sketches are decoded with the `datasketches` crate.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use common::rollup::{
    assert_groups, check_same_bytes, daily, groups, hourly, job_text, mixed_input, opt_fold,
    oracle, rank_error, read_rollup, run, t0, tempdir, text, Acc, Aggregates, Cell, Dim, Ev,
    FileColumns, Gen, Key, RRow, Rng, Rollup, Style, TableBytes, ACCURACY, ALL_DIMS, BR_QUANTILES,
    DAY_US, DQ_QUANTILES, HOUR_US, MINUTE_US, MIN_QUANTILE_VALUES,
};
use common::Val;
use datasketches::hash::value::raw_bytes;
use datasketches::hll::{HllSketch, HllType, HllUnion};
use datasketches::tdigest::TDigestMut;
use proptest::prelude::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// The rollup tables' columns

/// The kind of value a rollup column holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ts,
    Str,
    Int,
    Float,
    Bin,
}

/// The columns of a rollup with [`Aggregates::All`], in order (without the `dt` partition
/// column).
fn expected_columns(r: &Rollup) -> Vec<(String, Kind)> {
    let mut v = vec![("ts".to_string(), Kind::Ts)];
    for d in r.dims {
        v.push((d.column().to_string(), Kind::Str));
    }
    let mut add = |n: &str, k: Kind| v.push((n.to_string(), k));
    add("events", Kind::Int);
    add("br_sum", Kind::Int);
    add("br_min", Kind::Int);
    add("br_max", Kind::Int);
    add("br_mean", Kind::Float);
    add("br_mean_sum", Kind::Float);
    add("br_mean_count", Kind::Int);
    add("dur_sum", Kind::Float);
    add("dur_min", Kind::Float);
    add("dur_max", Kind::Float);
    add("dur_mean", Kind::Float);
    add("dur_mean_sum", Kind::Float);
    add("dur_mean_count", Kind::Int);
    add("users", Kind::Int);
    add("users_hll", Kind::Bin);
    add("items", Kind::Int);
    add("items_hll", Kind::Bin);
    for (_, s) in BR_QUANTILES {
        add(&format!("br_{s}"), Kind::Float);
    }
    add("br_tdigest", Kind::Bin);
    for (_, s) in DQ_QUANTILES {
        add(&format!("dq_{s}"), Kind::Float);
    }
    add("dq_tdigest", Kind::Bin);
    v
}

fn kind_of(t: &DataType) -> Option<Kind> {
    match common::logical_type(t) {
        DataType::Timestamp(_, Some(tz)) if ["UTC", "+00:00", "Z"].contains(&&*tz) => {
            Some(Kind::Ts)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Some(Kind::Str),
        DataType::Int64 => Some(Kind::Int),
        DataType::Float64 => Some(Kind::Float),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Some(Kind::Bin),
        _ => None,
    }
}

/// The UTC day (`YYYY-MM-DD`) of a timestamp.
fn day(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string()
}

/// The `dt` partitions the rows of `evs` fall into.
fn days_of(evs: &[Ev], r: &Rollup) -> BTreeSet<String> {
    evs.iter()
        .map(|e| day(r.key(e).0.expect("an event with a time")))
        .collect()
}

/// Live files of a table per `dt` partition.
fn files_by_day(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in common::live_files(dir) {
        let dt = f
            .partitions
            .iter()
            .find(|(k, _)| k == "dt")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{} is in no dt partition", f.logged));
        m.entry(dt).or_default().insert(f.logged);
    }
    m
}

// ---------------------------------------------------------------------------------------------
// Checking a rollup table against the oracle

/// How the groups of a rollup table are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// Each group is one row ("rewrite" mode, or after `compact`).
    Once,
    /// A group may have a row in several segments ("append" mode): the test merges them.
    Segments,
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1.0)
}

/// A distinct-count check: the estimate is within 2% of the exact count (or 1, for tiny
/// groups); a sketch rebuilt here from the raw values with DataSketches' hashing (UTF-8 bytes
/// for strings, 8 little-endian bytes for integers) unions with the stored one without
/// growing, which proves the stored sketch hashed the same way.
fn check_hll(
    what: &str,
    union: &HllUnion,
    estimate: f64,
    exact: usize,
    rebuild: impl Fn(&mut HllSketch),
) {
    let exact_f = exact as f64;
    assert!(
        (estimate - exact_f).abs() <= (0.02 * exact_f).max(1.0),
        "{what}: estimate {estimate} but {exact} distinct values (more than 2% off)"
    );
    let mut rebuilt = HllSketch::new(union.lg_config_k(), HllType::Hll8).unwrap();
    rebuild(&mut rebuilt);
    let mut both = HllUnion::new(union.lg_config_k()).unwrap();
    both.update(&union.to_sketch(HllType::Hll8));
    let before = both.composite_estimate();
    both.update(&rebuilt);
    let after = both.composite_estimate();
    assert!(
        close(before, after, 0.005),
        "{what}: the stored sketch (composite estimate {before}) and one built from the same \
         {exact} values with DataSketches' hashing union to {after}: the stored sketch hashes \
         values differently"
    );
}

fn check_tdigest(
    what: &str,
    td: Option<&mut TDigestMut>,
    values: &[f64],
    quantiles: &[(f64, &str)],
    readable: Option<&[Option<f64>]>,
) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let Some(td) = td.filter(|t| !t.is_empty()) else {
        assert!(
            values.is_empty(),
            "{what}: no t-digest but {} values",
            values.len()
        );
        if let Some(readable) = readable {
            assert!(
                readable.iter().all(Option::is_none),
                "{what}: quantiles {readable:?} of no values"
            );
        }
        return;
    };
    assert_eq!(
        td.total_weight(),
        values.len() as u64,
        "{what}: t-digest weight"
    );
    assert_eq!(td.min_value(), sorted.first().copied(), "{what}: min");
    assert_eq!(td.max_value(), sorted.last().copied(), "{what}: max");
    for (i, &(q, s)) in quantiles.iter().enumerate() {
        let est = td.quantile(q).unwrap().unwrap();
        let mut xs = vec![("the sketch's", est)];
        if let Some(readable) = readable {
            let col = readable[i].unwrap_or_else(|| panic!("{what}: _{s} is null"));
            assert!(
                close(col, est, 1e-6),
                "{what}: _{s} = {col} but the stored t-digest's quantile({q}) = {est}"
            );
            xs.push(("the readable", col));
        }
        for (which, x) in xs {
            assert!(
                sorted[0] <= x && x <= sorted[sorted.len() - 1],
                "{what}: {which} q{q} = {x} outside [{}, {}]",
                sorted[0],
                sorted[sorted.len() - 1]
            );
            if values.len() >= MIN_QUANTILE_VALUES {
                let err = rank_error(&sorted, x, q);
                assert!(
                    err <= ACCURACY,
                    "{what}: {which} q{q} = {x} has a normalized rank error of {err:.4} over {} \
                     values (accuracy {ACCURACY})",
                    values.len()
                );
            }
        }
    }
}

/// A group's state: its rows merged.
struct State {
    rows: usize,
    count: i64,
    br_sum: Option<i64>,
    br_min: Option<i64>,
    br_max: Option<i64>,
    br_mean_sum: f64,
    br_mean_count: i64,
    dur_sum: Option<f64>,
    dur_min: Option<f64>,
    dur_max: Option<f64>,
    dur_mean_sum: f64,
    dur_mean_count: i64,
    users: HllUnion,
    users_est: f64,
    items: HllUnion,
    items_est: f64,
    br: Option<TDigestMut>,
    dq: Option<TDigestMut>,
}

fn hll(row: &RRow, name: &str, lg_k: u8) -> HllSketch {
    let b = row
        .bytes(&format!("{name}_hll"))
        .unwrap_or_else(|| panic!("{name}_hll is null"));
    let s = HllSketch::deserialize(b)
        .unwrap_or_else(|e| panic!("{name}_hll does not deserialize as an HLL sketch: {e}"));
    assert_eq!(s.lg_config_k(), lg_k, "{name}_hll precision");
    assert_eq!(s.target_type(), HllType::Hll4, "{name}_hll is HLL_4");
    s
}

fn tdigest(row: &RRow, name: &str) -> Option<TDigestMut> {
    row.bytes(&format!("{name}_tdigest")).map(|b| {
        TDigestMut::deserialize(b)
            .unwrap_or_else(|e| panic!("{name}_tdigest does not deserialize as a t-digest: {e}"))
    })
}

fn merge_td(a: Option<TDigestMut>, b: Option<TDigestMut>) -> Option<TDigestMut> {
    match (a, b) {
        (Some(mut a), Some(b)) => {
            a.merge(&b);
            Some(a)
        }
        (a, None) => a,
        (None, b) => b,
    }
}

/// Merges the rows of one group as a reader would: counts and sums added, min/max, sketch
/// unions and t-digest merges.
fn merge_rows(rows: &[&RRow]) -> State {
    let mut s = State {
        rows: rows.len(),
        count: 0,
        br_sum: None,
        br_min: None,
        br_max: None,
        br_mean_sum: 0.0,
        br_mean_count: 0,
        dur_sum: None,
        dur_min: None,
        dur_max: None,
        dur_mean_sum: 0.0,
        dur_mean_count: 0,
        users: HllUnion::new(14).unwrap(),
        users_est: 0.0,
        items: HllUnion::new(16).unwrap(),
        items_est: 0.0,
        br: None,
        dq: None,
    };
    for row in rows {
        s.count += row.int("events").expect("events is null");
        s.br_sum = opt_fold(s.br_sum, row.int("br_sum"), |x, y| x + y);
        s.br_min = opt_fold(s.br_min, row.int("br_min"), i64::min);
        s.br_max = opt_fold(s.br_max, row.int("br_max"), i64::max);
        s.br_mean_sum += row.float("br_mean_sum").unwrap_or(0.0);
        s.br_mean_count += row.int("br_mean_count").unwrap_or(0);
        s.dur_sum = opt_fold(s.dur_sum, row.float("dur_sum"), |x, y| x + y);
        s.dur_min = opt_fold(s.dur_min, row.float("dur_min"), f64::min);
        s.dur_max = opt_fold(s.dur_max, row.float("dur_max"), f64::max);
        s.dur_mean_sum += row.float("dur_mean_sum").unwrap_or(0.0);
        s.dur_mean_count += row.int("dur_mean_count").unwrap_or(0);
        let u = hll(row, "users", 14);
        let i = hll(row, "items", 16);
        if rows.len() == 1 {
            s.users_est = u.estimate();
            s.items_est = i.estimate();
        }
        s.users.update(&u);
        s.items.update(&i);
        s.br = merge_td(s.br.take(), tdigest(row, "br"));
        s.dq = merge_td(s.dq.take(), tdigest(row, "dq"));
    }
    if rows.len() > 1 {
        s.users_est = s.users.estimate();
        s.items_est = s.items.estimate();
    }
    s
}

/// Compares a group's (merged) state with the oracle; with `row`, also the readable columns of
/// that one row with its own sketches.
fn check_group(what: &str, mut s: State, a: &Acc, row: Option<&RRow>) {
    assert_eq!(s.count, a.count, "{what}: count");
    let br_sum: i64 = a.br.iter().sum();
    assert_eq!(
        s.br_sum,
        (!a.br.is_empty()).then_some(br_sum),
        "{what}: br_sum"
    );
    assert_eq!(s.br_min, a.br.iter().min().copied(), "{what}: br_min");
    assert_eq!(s.br_max, a.br.iter().max().copied(), "{what}: br_max");
    assert_eq!(s.br_mean_sum, br_sum as f64, "{what}: br_mean_sum");
    assert_eq!(s.br_mean_count, a.br.len() as i64, "{what}: br_mean_count");
    let dur_sum: f64 = a.dur.iter().sum();
    assert_eq!(
        s.dur_sum,
        (!a.dur.is_empty()).then_some(dur_sum),
        "{what}: dur_sum"
    );
    let dmin = a.dur.iter().copied().reduce(f64::min);
    let dmax = a.dur.iter().copied().reduce(f64::max);
    assert_eq!(s.dur_min, dmin, "{what}: dur_min");
    assert_eq!(s.dur_max, dmax, "{what}: dur_max");
    assert_eq!(s.dur_mean_sum, dur_sum, "{what}: dur_mean_sum");
    assert_eq!(
        s.dur_mean_count,
        a.dur.len() as i64,
        "{what}: dur_mean_count"
    );

    check_hll(
        &format!("{what}: users"),
        &s.users,
        s.users_est,
        a.users.len(),
        |sk| {
            for u in &a.users {
                sk.update(raw_bytes::from_str(u));
            }
        },
    );
    check_hll(
        &format!("{what}: items"),
        &s.items,
        s.items_est,
        a.items.len(),
        |sk| {
            for i in &a.items {
                sk.update(*i);
            }
        },
    );

    let br: Vec<f64> = a.br.iter().map(|&b| b as f64).collect();
    let readable = |row: &RRow, name: &str, qs: &[(f64, &str)]| -> Vec<Option<f64>> {
        qs.iter()
            .map(|(_, s)| row.float(&format!("{name}_{s}")))
            .collect()
    };
    let br_readable = row.map(|r| readable(r, "br", BR_QUANTILES));
    let dq_readable = row.map(|r| readable(r, "dq", DQ_QUANTILES));
    check_tdigest(
        &format!("{what}: br ({} rows)", s.rows),
        s.br.as_mut(),
        &br,
        BR_QUANTILES,
        br_readable.as_deref(),
    );
    check_tdigest(
        &format!("{what}: dq ({} rows)", s.rows),
        s.dq.as_mut(),
        &a.dur,
        DQ_QUANTILES,
        dq_readable.as_deref(),
    );

    if let Some(row) = row {
        // the readable columns next to the states
        for (name, sum, n) in [
            ("br_mean", br_sum as f64, a.br.len()),
            ("dur_mean", dur_sum, a.dur.len()),
        ] {
            match (row.float(name), n) {
                (None, 0) => {}
                (Some(m), n) if n > 0 => assert!(
                    close(m, sum / n as f64, 1e-12),
                    "{what}: {name} = {m}, want {}",
                    sum / n as f64
                ),
                (m, n) => panic!("{what}: {name} = {m:?} over {n} values"),
            }
        }
        for (name, est) in [("users", s.users_est), ("items", s.items_est)] {
            let col = row
                .int(name)
                .unwrap_or_else(|| panic!("{what}: {name} is null"));
            assert!(
                (col as f64 - est).abs() <= 1.0_f64.max(est * 1e-3),
                "{what}: {name} = {col} but the stored sketch estimates {est}"
            );
        }
    }
}

/// Checks the rollup table of `r` (in the job directory `dir`) against the oracle of `evs`:
/// its columns and types, that every row sits in the `dt` partition of its bucket, that each
/// file is sorted by (time, dimensions), the set of groups, and every group's values. Returns
/// the number of rows.
fn check_rollup(dir: &Path, r: &Rollup, evs: &[Ev], layout: Layout) -> usize {
    let table = r.dir(dir);
    let read = read_rollup(&table, FileColumns::Same);
    let what = format!("rollup {} ({})", r.name, table.display());
    assert!(!read.rows.is_empty(), "{what} is empty");

    // columns and types (a `dt` column, if the files hold it, is checked below)
    let want = expected_columns(r);
    let got: Vec<(String, Option<Kind>)> = read
        .columns
        .iter()
        .filter(|(n, _)| n != "dt")
        .map(|(n, t)| (n.clone(), kind_of(t)))
        .collect();
    let want_named: Vec<(String, Option<Kind>)> =
        want.iter().map(|(n, k)| (n.clone(), Some(*k))).collect();
    assert_eq!(
        got, want_named,
        "{what}: columns and kinds (file types: {:?})",
        read.columns
    );

    // partitions, and each file sorted by (time, dimensions...)
    let mut prev: Option<(PathBuf, Key)> = None;
    for row in &read.rows {
        let key = row.key(r);
        let t = key
            .0
            .unwrap_or_else(|| panic!("ts is null in {}", row.file.display()));
        let want_dt = day(t);
        assert_eq!(
            row.dt.as_deref(),
            Some(want_dt.as_str()),
            "{what}: a row of bucket {want_dt} in {}",
            row.file.display()
        );
        if let Some(Cell::V(v)) = row.cells.get("dt") {
            assert_eq!(v, &Val::Str(want_dt.clone()), "{what}: dt column");
        }
        if let Some((f, k)) = &prev {
            if f == &row.file {
                assert!(
                    k < &key || (layout == Layout::Segments && k == &key),
                    "{what}: {} is not sorted by (time, dimensions): {k:?} before {key:?}",
                    f.display()
                );
            }
        }
        prev = Some((row.file.clone(), key));
    }

    // groups
    let oracle = oracle(evs, r);
    let groups = groups(&read.rows, r);
    assert_groups(&what, &groups, &oracle);
    for (key, rows) in &groups {
        let g = format!("{what} group {key:?}");
        if layout == Layout::Once {
            assert_eq!(rows.len(), 1, "{g}: in {} rows", rows.len());
        }
        let state = merge_rows(rows);
        let row = (rows.len() == 1).then(|| rows[0]);
        check_group(&g, state, &oracle[key], row);
    }
    read.rows.len()
}

// ---------------------------------------------------------------------------------------------
// Jobs and runs

/// A run that must succeed: checks the report's accounting, that every rollup committed and
/// counted exactly the run's rows. Returns the report.
fn run_ok(job: &Path, threads: usize) -> Value {
    let (out, rep) = run(job, &["--threads", &threads.to_string()], &[]);
    assert!(out.status.success(), "run failed: {}", common::stderr(&out));
    let rep = rep.expect("the run wrote its report");
    let n = |k: &str| {
        rep[k]
            .as_u64()
            .unwrap_or_else(|| panic!("report has no {k}: {rep}"))
    };
    assert_eq!(
        n("records_in"),
        n("rows_out") + n("duplicates") + n("rejected"),
        "accounting: {rep}"
    );
    let rollups = rep["rollups"]
        .as_array()
        .unwrap_or_else(|| panic!("report has no rollups: {rep}"));
    for r in rollups {
        assert_eq!(r["committed"], true, "{r}");
        assert!(r["version"].is_u64(), "{r}");
        assert_eq!(r["rows"].as_u64(), Some(n("rows_out")), "rollup rows: {r}");
    }
    rep
}

/// The report's entry for rollup `name`.
fn rollup_report<'a>(rep: &'a Value, name: &str) -> &'a Value {
    rep["rollups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap_or_else(|| panic!("no rollup {name} in the report: {rep}"))
}

/// Checks a run's report entry for rollup `r`: its path, version, and the groups it
/// contributed (those of `run_evs`, the run's rows after dedup).
fn check_report(rep: &Value, dir: &Path, r: &Rollup, run_evs: &[Ev], version: u64) {
    let e = rollup_report(rep, r.name);
    let path = PathBuf::from(e["path"].as_str().unwrap());
    assert_eq!(
        path.canonicalize().unwrap(),
        r.dir(dir).canonicalize().unwrap(),
        "{e}"
    );
    assert_eq!(e["version"].as_u64(), Some(version), "{e}");
    assert_eq!(e["rows"].as_u64(), Some(run_evs.len() as u64), "{e}");
    assert_eq!(
        e["groups"].as_u64(),
        Some(oracle(run_evs, r).len() as u64),
        "{}: {e}",
        r.name
    );
    assert_eq!(common::table_version(&r.dir(dir)), Some(version));
}

/// `compactor compact TABLE --threads 2 ARGS...`, which must succeed.
fn compact_with(table: &Path, args: &[&str]) {
    let mut all = vec!["compact", table.to_str().unwrap(), "--threads", "2"];
    all.extend_from_slice(args);
    let out = common::cli(&all, &[]);
    assert!(
        out.status.success(),
        "compact {} {args:?}: {}",
        table.display(),
        common::stderr(&out)
    );
}

fn compact(table: &Path) {
    let out = common::cli(
        &[
            "compact",
            table.to_str().unwrap(),
            // every segment below the target, whatever the size tiers
            "--policy",
            "all",
            "--threads",
            "2",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "compact {}: {}",
        table.display(),
        common::stderr(&out)
    );
}

fn verify(table: &Path) {
    let out = common::cli(&["verify", table.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "verify {}: {}{}",
        table.display(),
        String::from_utf8_lossy(&out.stdout),
        common::stderr(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. One run

/// One run, three rollups (hourly by three dimensions, daily by one, two-hourly by one into a
/// custom path): every aggregate against the oracle.
#[test]
fn one_run_matches_the_oracle() {
    let (_t, d) = tempdir();
    // 2.5 days, 3000 users and 50,000 items: the daily groups have thousands of distinct values
    let mut g = Gen::new(Style::Plain, 1, 3000, 50_000);
    let evs = g.evs(30_000, t0(), 5 * DAY_US / 2);
    std::fs::write(d.join("in/a.jsonl"), text(&evs)).unwrap();
    let by2h = Rollup {
        name: "by-2h",
        bucket: "2h",
        bucket_us: 2 * HOUR_US,
        dims: &[Dim::Country],
        path: Some("custom/by2h"),
        merge: None,
        aggregates: Aggregates::All,
    };
    let rollups = [hourly(None), daily(None), by2h];
    let job = common::write_job(&d, "job.toml", &job_text(&["in"], &rollups, ""));
    let rep = run_ok(&job, 2);
    assert_eq!(rep["rows_out"], 30_000, "{rep}");
    assert_eq!(rep["rollups"].as_array().unwrap().len(), 3, "{rep}");
    // the detailed table is written too
    assert_eq!(common::table_version(&d.join("table")), Some(0));
    for r in &rollups {
        check_report(&rep, &d, r, &evs, 0);
        // a first run writes partitions that did not exist: either count is fair
        let pr = rollup_report(&rep, r.name)["partitions_rewritten"].as_u64();
        let days = days_of(&evs, r).len() as u64;
        assert!(pr == Some(0) || pr == Some(days), "{days} days: {rep}");
        check_rollup(&d, r, &evs, Layout::Once);
    }
    // the daily groups are where the sketches' accuracy is measured: make sure they are big
    let big = oracle(&evs, &daily(None))
        .values()
        .filter(|a| a.users.len() >= 1000 && a.br.len() >= MIN_QUANTILE_VALUES)
        .count();
    assert!(big >= 6, "only {big} large daily groups");
    for r in &rollups {
        verify(&r.dir(&d));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Incremental runs, merge = "rewrite"

#[test]
fn incremental_runs_rewrite_only_the_affected_partitions() {
    let (_t, d) = tempdir();
    let mut g = Gen::new(Style::Plain, 2, 2500, 20_000);
    let day0 = t0();
    let (d0, d1, d2) = (day0, day0 + DAY_US, day0 + 2 * DAY_US);
    // run 0 touches all three days; later runs only days that already exist
    let runs: Vec<Vec<Ev>> = vec![
        g.evs(3000, d0, 3 * DAY_US),
        g.evs(4000, d1, DAY_US),
        [g.evs(2000, d0, DAY_US), g.evs(2000, d2, DAY_US)].concat(),
        g.evs(3000, d2, DAY_US),
    ];
    let rollups = [hourly(Some("rewrite")), daily(None)];
    let job = common::write_job(&d, "job.toml", &job_text(&["in"], &rollups, ""));
    let mut all: Vec<Ev> = Vec::new();
    let mut before: Vec<BTreeMap<String, BTreeSet<String>>> = vec![BTreeMap::new(); 2];
    for (k, evs) in runs.iter().enumerate() {
        // files are added to the input directory between runs
        std::fs::write(d.join(format!("in/{k}.jsonl")), text(evs)).unwrap();
        let rep = run_ok(&job, 2);
        assert_eq!(rep["files_in"], 1, "{rep}");
        all.extend(evs.iter().cloned());
        for (i, r) in rollups.iter().enumerate() {
            check_report(&rep, &d, r, evs, k as u64);
            let affected = days_of(evs, r);
            let pr = rollup_report(&rep, r.name)["partitions_rewritten"].as_u64();
            if k > 0 {
                assert_eq!(pr, Some(affected.len() as u64), "run {k}: {rep}");
            }
            check_rollup(&d, r, &all, Layout::Once);
            let now = files_by_day(&r.dir(&d));
            for (dt, files) in &now {
                if affected.contains(dt) {
                    if let Some(old) = before[i].get(dt) {
                        assert!(
                            files.is_disjoint(old),
                            "{} run {k}: partition {dt} was rewritten but kept {:?}",
                            r.name,
                            files.intersection(old).collect::<Vec<_>>()
                        );
                    }
                } else {
                    assert_eq!(
                        Some(files),
                        before[i].get(dt),
                        "{} run {k} (days {affected:?}): partition {dt} changed",
                        r.name
                    );
                }
            }
            assert_eq!(
                now.keys().collect::<BTreeSet<_>>(),
                before[i].keys().chain(affected.iter()).collect(),
                "{} run {k}: partitions",
                r.name
            );
            before[i] = now;
        }
    }
    // a run with no new input changes nothing
    let (out, rep) = run(&job, &["--threads", "2"], &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(
        rep.as_ref().map(|r| r["committed"].clone()),
        Some(false.into())
    );
    for r in &rollups {
        assert_eq!(common::table_version(&r.dir(&d)), Some(3));
        check_rollup(&d, r, &all, Layout::Once);
        verify(&r.dir(&d));
    }
}

// ---------------------------------------------------------------------------------------------
// 3. merge = "append", then `compactor compact`

#[test]
fn appended_segments_merge_in_compaction() {
    let (_t, d) = tempdir();
    let mut g = Gen::new(Style::Plain, 3, 2500, 20_000);
    let rollups = [hourly(Some("append")), daily(Some("append"))];
    let job = common::write_job(&d, "job.toml", &job_text(&["in"], &rollups, ""));
    let mut all: Vec<Ev> = Vec::new();
    for k in 0..3u64 {
        let evs = g.evs(3000, t0(), 3 * DAY_US);
        std::fs::write(d.join(format!("in/{k}.jsonl")), text(&evs)).unwrap();
        let rep = run_ok(&job, 2);
        all.extend(evs.iter().cloned());
        for r in &rollups {
            check_report(&rep, &d, r, &evs, k);
            // the segments of all runs, merged by the reader, equal the oracle
            check_rollup(&d, r, &all, Layout::Segments);
            let files = files_by_day(&r.dir(&d));
            assert!(
                files.values().all(|f| f.len() as u64 == k + 1),
                "{}: one segment per run and partition: {files:?}",
                r.name
            );
        }
    }
    // a dry run writes nothing and says what it would merge; `--partition` merges that day only
    let table = rollups[0].dir(&d);
    let before = files_by_day(&table);
    let days: Vec<&String> = before.keys().collect();
    assert!(days.len() >= 2, "{before:?}");
    let report = d.join("compact.json");
    compact_with(&table, &["--dry-run", "--report", report.to_str().unwrap()]);
    assert_eq!(files_by_day(&table), before, "a dry run wrote");
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let group = &rep["groups"][0];
    assert_eq!(
        group["segments_in"].as_u64(),
        Some(before.values().map(|f| f.len() as u64).sum()),
        "{rep}"
    );
    assert_eq!(group["committed"], false, "{rep}");
    assert!(
        group["note"].as_str().unwrap().starts_with("dry run"),
        "{rep}"
    );
    compact_with(&table, &["--partition", &format!("dt={}", days[0])]);
    let after = files_by_day(&table);
    assert_eq!(after[days[0]].len(), 1, "{after:?}");
    assert_eq!(
        after[days[1]], before[days[1]],
        "another day was merged: {after:?}"
    );
    check_rollup(&d, &rollups[0], &all, Layout::Segments);
    compact_with(&table, &["--partition", days[1]]);
    assert_eq!(files_by_day(&table)[days[1]].len(), 1);
    for r in &rollups {
        let table = r.dir(&d);
        let rows_before = read_rollup(&table, FileColumns::Same).rows.len();
        compact(&table);
        let rows = check_rollup(&d, r, &all, Layout::Once);
        assert!(
            rows < rows_before,
            "{}: {rows} rows, {rows_before} before",
            r.name
        );
        assert!(files_by_day(&table).values().all(|f| f.len() == 1));
        verify(&table);
    }
    // appending after a compaction, and compacting again
    let evs = g.evs(2000, t0() + DAY_US, DAY_US);
    std::fs::write(d.join("in/3.jsonl"), text(&evs)).unwrap();
    run_ok(&job, 1);
    all.extend(evs);
    for r in &rollups {
        check_rollup(&d, r, &all, Layout::Segments);
        compact(&r.dir(&d));
        check_rollup(&d, r, &all, Layout::Once);
        verify(&r.dir(&d));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Dedup before aggregation

#[test]
fn duplicates_are_dropped_before_aggregation() {
    for scope in ["run", "table"] {
        let (_t, d) = tempdir();
        let mut g = Gen::new(Style::Plain, 4, 800, 5000);
        let mut rng = Rng::new(44);
        let a = g.evs(3000, t0(), 2 * DAY_US);
        // with 1500 byte-identical re-deliveries of random earlier lines mixed in
        std::fs::write(d.join("in/a.jsonl"), mixed_input(&mut rng, &a, 1500, 0).0).unwrap();
        let rollups = [hourly(None), daily(None)];
        let extra = format!("\n[dedup]\nmode = \"exact\"\nscope = \"{scope}\"\n");
        let job = common::write_job(&d, "job.toml", &job_text(&["in"], &rollups, &extra));
        let rep = run_ok(&job, 2);
        assert_eq!(
            (rep["rows_out"].as_u64(), rep["duplicates"].as_u64()),
            (Some(3000), Some(1500)),
            "{rep}"
        );
        for r in &rollups {
            check_report(&rep, &d, r, &a, 0);
            check_rollup(&d, r, &a, Layout::Once);
        }

        // a second file: new events, and 600 lines of the first file sent again
        let b = g.evs(2000, t0() + DAY_US, 2 * DAY_US);
        let resent: Vec<Ev> = (0..600).map(|i| a[i * 5].clone()).collect();
        let mut lines: Vec<String> = b.iter().map(Ev::line).collect();
        for (i, e) in resent.iter().enumerate() {
            lines.insert(i * 3, e.line());
        }
        std::fs::write(d.join("in/b.jsonl"), lines.concat()).unwrap();
        let rep = run_ok(&job, 2);
        let mut all = a.clone();
        all.extend(b.iter().cloned());
        let this_run = if scope == "table" {
            // the table already holds the re-sent lines: dropped, never counted
            assert_eq!(rep["duplicates_in_table"], 600, "{rep}");
            b.clone()
        } else {
            // a run only deduplicates within itself: the detailed table holds the re-sent
            // lines twice, and the rollups count them twice, as that table does
            all.extend(resent.iter().cloned());
            [b.clone(), resent.clone()].concat()
        };
        assert_eq!(
            rep["rows_out"].as_u64(),
            Some(this_run.len() as u64),
            "{scope}: {rep}"
        );
        for r in &rollups {
            check_report(&rep, &d, r, &this_run, 1);
            check_rollup(&d, r, &all, Layout::Once);
        }
        assert_eq!(
            common::read_table_records(&d.join("table")).len(),
            all.len(),
            "{scope}: the detailed table"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Rejected lines

#[test]
fn rejected_lines_are_not_counted() {
    let (_t, d) = tempdir();
    let mut g = Gen::new(Style::Plain, 5, 500, 3000);
    let mut rng = Rng::new(55);
    let evs = g.evs(2000, t0(), 2 * DAY_US);
    let bad = [
        "not json at all\n",
        "{\"id\":1,\"ts\":\"2026-03-01T00:00:00.000Z\",\"event\":\"play\"\n",
        "{\"id\":2,\"ts\":\"2026-03-01T00:10:00.000Z\",\"event\":\"play\",}\n",
        "[1, 2, 3\n",
        "{\"id\":3,\"ts\":\"2026-03-01T00:20:00.000Z\",\"event\":\"pl\\ay\"}\n",
    ];
    let mut lines: Vec<String> = evs.iter().map(Ev::line).collect();
    for i in 0..60 {
        let at = rng.below(lines.len() as u64) as usize;
        lines.insert(at, bad[i % bad.len()].to_string());
    }
    std::fs::write(d.join("in/a.jsonl"), lines.concat()).unwrap();
    let rollups = [hourly(None), daily(None)];
    let job = common::write_job(
        &d,
        "job.toml",
        &job_text(&["in"], &rollups, "\n[limits]\nmax_rejected_share = 0.1\n"),
    );
    let rep = run_ok(&job, 2);
    assert_eq!(
        (
            rep["rows_out"].as_u64(),
            rep["rejected"].as_u64(),
            rep["lines_in"].as_u64()
        ),
        (Some(2000), Some(60), Some(2060)),
        "{rep}"
    );
    for r in &rollups {
        check_report(&rep, &d, r, &evs, 0);
        check_rollup(&d, r, &evs, Layout::Once);
    }
}

// ---------------------------------------------------------------------------------------------
// 6. Determinism

#[test]
fn rollup_bytes_do_not_depend_on_threads_or_spilling() {
    let mut g = Gen::new(Style::Plain, 6, 1000, 5000);
    let files = [
        g.evs(4000, t0(), 3 * DAY_US),
        g.evs(3000, t0() + DAY_US, DAY_US),
    ];
    let rollups = [hourly(None), daily(Some("append"))];
    let variants: [&[&str]; 3] = [
        &["--threads", "1"],
        &["--threads", "2"],
        // the detailed table's sort spills many runs
        &[
            "--threads",
            "2",
            "--run-bytes",
            "64KiB",
            "--memory",
            "200MiB",
        ],
    ];
    let mut reference: Option<Vec<TableBytes>> = None;
    let mut dirs = Vec::new();
    for args in variants {
        let (t, d) = tempdir();
        let job = common::write_job(&d, "job.toml", &job_text(&["in"], &rollups, ""));
        for (k, evs) in files.iter().enumerate() {
            std::fs::write(d.join(format!("in/{k}.jsonl")), text(evs)).unwrap();
            let (out, rep) = run(&job, args, &[]);
            assert!(out.status.success(), "{args:?}: {}", common::stderr(&out));
            assert_eq!(rep.unwrap()["rollups"][0]["committed"], true);
        }
        check_same_bytes(&mut reference, &rollups, &d, &format!("{args:?}"), "before");
        dirs.push(t);
    }
    let all: Vec<Ev> = files.concat();
    let d = dirs[0].path();
    check_rollup(d, &rollups[0], &all, Layout::Once);
    check_rollup(d, &rollups[1], &all, Layout::Segments);
}

// ---------------------------------------------------------------------------------------------
// 7. Bad jobs

#[test]
fn bad_rollups_are_usage_errors_that_write_nothing() {
    let (_t, d) = tempdir();
    let mut g = Gen::new(Style::Plain, 7, 100, 100);
    std::fs::write(d.join("in/a.jsonl"), text(&g.evs(200, t0(), DAY_US))).unwrap();
    let good = hourly(None).toml();
    // (what, the rollup tables, words the message must hold, checked before reading data)
    let cases: Vec<(&str, String, Vec<&str>, bool)> = vec![
        (
            "unknown key",
            good.replace("bucket = \"hour\"", "bucket = \"hour\"\ncolour = \"red\""),
            vec!["colour"],
            true,
        ),
        (
            "unknown dimension column",
            good.replace("\"device.os\"]", "\"device.os\", \"no_such_dim\"]"),
            vec!["no_such_dim"],
            false,
        ),
        (
            "unknown aggregate column",
            good.replace("column = \"dur\" }", "column = \"no_such_value\" }"),
            vec!["no_such_value"],
            false,
        ),
        (
            "unknown time column",
            good.replace("time = \"ts\"", "time = \"no_such_time\""),
            vec!["no_such_time"],
            false,
        ),
        (
            "bad bucket",
            good.replace("bucket = \"hour\"", "bucket = \"7x\""),
            vec!["7x"],
            true,
        ),
        (
            "duplicate name",
            format!(
                "{good}{}",
                daily(None).toml().replace("\"daily\"", "\"hourly\"")
            ),
            vec!["hourly"],
            true,
        ),
        (
            "bad name",
            good.replace("name = \"hourly\"", "name = \"hour ly\""),
            vec!["hour ly"],
            true,
        ),
        (
            "unknown function",
            good.replace("fn = \"count\"", "fn = \"median\""),
            vec!["median"],
            true,
        ),
        (
            "precision out of range",
            good.replace("precision = 16", "precision = 22"),
            vec!["precision"],
            true,
        ),
    ];
    for (i, (what, rollups, words, static_check)) in cases.into_iter().enumerate() {
        assert!(rollups != good, "{what}: the replacement did not apply");
        let sub = d.join(format!("case{i}"));
        std::fs::create_dir(&sub).unwrap();
        let text = common::job_text(&["../in"], "json", "table", &["ts"], "") + &rollups;
        let job = common::write_job(&sub, "job.toml", &text);
        let (out, rep) = run(&job, &["--threads", "1"], &[]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            rep.is_none() || rep.as_ref().unwrap()["committed"] == false,
            "{what}: {rep:?}"
        );
        for w in words {
            assert!(
                err.contains(w),
                "{what}: the message does not name {w:?}: {err}"
            );
        }
        // nothing written: no table, no rollup table, no segment
        for name in ["table", "table_hourly", "table_daily"] {
            let t = sub.join(name);
            if static_check {
                assert!(!t.exists(), "{what}: {} was created", t.display());
            }
            assert!(
                !t.join("_delta_log").exists(),
                "{what}: {} was committed",
                t.display()
            );
        }
        assert!(
            common::parquet_files_under(&sub).is_empty(),
            "{what}: {:?}",
            common::parquet_files_under(&sub)
        );
    }
}

/// A rollup whose path is the detailed table's, or two rollups with one path, can never be
/// applied: the job must be refused before anything is committed (as a changed definition is).
#[test]
fn colliding_rollup_paths_are_usage_errors_that_write_nothing() {
    let (_t, d) = tempdir();
    let mut g = Gen::new(Style::Plain, 9, 100, 100);
    std::fs::write(d.join("in/a.jsonl"), text(&g.evs(200, t0(), DAY_US))).unwrap();
    let same_as_table = Rollup {
        path: Some("table"),
        ..hourly(None)
    };
    let shared = |name| Rollup {
        name,
        path: Some("shared"),
        ..hourly(None)
    };
    for (what, rollups) in [
        ("rollup path = output.path", vec![same_as_table]),
        ("two rollups, one path", vec![shared("a"), shared("b")]),
    ] {
        let sub = d.join(what.replace(' ', "_").replace([',', '.', '='], ""));
        std::fs::create_dir(&sub).unwrap();
        let job = common::write_job(&sub, "job.toml", &job_text(&["../in"], &rollups, ""));
        let (out, _) = run(&job, &["--threads", "1"], &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{what}: {}",
            common::stderr(&out)
        );
        assert!(
            !sub.join("table/_delta_log").exists() && !sub.join("shared/_delta_log").exists(),
            "{what}: committed before the rollups were found impossible: {}",
            common::stderr(&out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Concurrent writers

/// Two runs that commit at once, and a run while a compaction of the rollup table works: every
/// run lands in the rollups exactly once.
#[test]
fn concurrent_runs_and_compactions_count_every_run_once() {
    let (_t, d) = tempdir();
    let mut g = Gen::new(Style::Plain, 8, 300, 1000);
    // the same day, so that both runs touch the same groups and partitions
    let a = g.evs(1500, t0(), DAY_US);
    let b = g.evs(1500, t0(), DAY_US);
    std::fs::write(d.join("in/a.jsonl"), text(&a)).unwrap();
    std::fs::write(d.join("in/b.jsonl"), text(&b)).unwrap();
    let rollups = [hourly(None), daily(Some("append"))];
    let ja = common::write_job(&d, "a.toml", &job_text(&["in/a.jsonl"], &rollups, ""));
    let jb = common::write_job(&d, "b.toml", &job_text(&["in/b.jsonl"], &rollups, ""));
    // both pause before committing, so both build on the same (empty) tables
    let pause = [("COMPACTOR_PAUSE", "before-commit:800")];
    let ta = std::thread::spawn(move || common::cli_run(&ja, 1, &pause));
    let (ob, rb) = common::cli_run(&jb, 1, &pause);
    let (oa, ra) = ta.join().unwrap();
    for (o, r) in [(&oa, &ra), (&ob, &rb)] {
        assert!(o.status.success(), "{}", common::stderr(o));
        let r = r.as_ref().unwrap();
        assert_eq!(r["committed"], true, "{r}");
        for e in r["rollups"].as_array().unwrap() {
            assert_eq!(e["committed"], true, "{e}");
        }
    }
    let mut all = [a, b].concat();
    check_rollup(&d, &rollups[0], &all, Layout::Once);
    check_rollup(&d, &rollups[1], &all, Layout::Segments);

    // a run while `compact` merges the append rollup (paused before its commit)
    let c = g.evs(1000, t0(), DAY_US);
    std::fs::write(d.join("in/c.jsonl"), text(&c)).unwrap();
    let jc = common::write_job(&d, "c.toml", &job_text(&["in/c.jsonl"], &rollups, ""));
    let daily_dir = rollups[1].dir(&d);
    let compaction = std::thread::spawn(move || {
        common::cli(
            &["compact", daily_dir.to_str().unwrap(), "--policy", "all"],
            &[("COMPACTOR_PAUSE", "rollup-before-commit:1500")],
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (oc, rc) = common::cli_run(&jc, 1, &[]);
    assert!(oc.status.success(), "{}", common::stderr(&oc));
    assert_eq!(rc.unwrap()["committed"], true);
    let out = compaction.join().unwrap();
    assert!(out.status.success(), "compact: {}", common::stderr(&out));
    all.extend(c);
    check_rollup(&d, &rollups[0], &all, Layout::Once);
    check_rollup(&d, &rollups[1], &all, Layout::Segments);
    compact(&rollups[1].dir(&d));
    check_rollup(&d, &rollups[1], &all, Layout::Once);
    for r in &rollups {
        verify(&r.dir(&d));
    }
}

// ---------------------------------------------------------------------------------------------
// Any split of the input, any bucket, either merge mode (proptest)

const BUCKETS: &[(&str, i64)] = &[
    ("minute", MINUTE_US),
    ("30s", 30_000_000),
    ("5m", 5 * MINUTE_US),
    ("15min", 15 * MINUTE_US),
    ("hour", HOUR_US),
    ("2h", 2 * HOUR_US),
    ("day", DAY_US),
    ("1d", DAY_US),
];

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 3,
        max_shrink_iters: 4,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Small inputs split into 1 to 3 runs: the rollup (after a compaction, in append mode)
    /// equals the oracle of all the rows.
    #[test]
    fn any_split_matches_the_oracle(
        seed in any::<u64>(),
        n in 20usize..400,
        cuts in proptest::collection::vec(0.0f64..1.0, 0..3),
        append in any::<bool>(),
        bucket in 0..BUCKETS.len(),
    ) {
        let (_t, d) = tempdir();
        let mut g = Gen::new(Style::Plain, seed, 50, 200);
        let evs = g.evs(n, t0(), 5 * DAY_US / 2);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| (c * n as f64) as usize).collect();
        cuts.push(n);
        cuts.sort();
        let r = Rollup {
            name: "r",
            bucket: BUCKETS[bucket].0,
            bucket_us: BUCKETS[bucket].1,
            dims: ALL_DIMS,
            path: Some("r"),
            merge: Some(if append { "append" } else { "rewrite" }),
            aggregates: Aggregates::All,
        };
        let job = common::write_job(&d, "job.toml", &job_text(&["in"], std::slice::from_ref(&r), ""));
        let mut from = 0;
        let mut version = 0;
        for (k, &to) in cuts.iter().enumerate() {
            if to == from {
                continue;
            }
            std::fs::write(d.join(format!("in/{k}.jsonl")), text(&evs[from..to])).unwrap();
            let rep = run_ok(&job, 2);
            check_report(&rep, &d, &r, &evs[from..to], version);
            version += 1;
            from = to;
        }
        let layout = if append { Layout::Segments } else { Layout::Once };
        check_rollup(&d, &r, &evs, layout);
        if append {
            compact(&r.dir(&d));
            check_rollup(&d, &r, &evs, Layout::Once);
        }
        verify(&r.dir(&d));
    }
}
