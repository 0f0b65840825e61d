//! Rollup-only runs (`[output] detailed = false`) end to end, through the CLI: a run that
//! writes no detailed rows must still count every record exactly once in its `[[rollup]]`
//! tables, as a detailed run of the same job would, because the rollups are all that is kept.
//!
//! - with `[dedup] mode = "exact"` (sorted, deduplicated rows) the rollups equal those of the
//!   same job run with `detailed = true` (counts, sums, minima and maxima exactly, distinct
//!   counts and quantiles within their sketches' error) and a test-computed oracle; the table
//!   at `[output] path` gets a commit with no data files that names the run; the report
//!   accounts `records_in = rows_rolled_up + duplicates + rejected`, and the rejected lines
//!   are in the quarantine;
//! - with `mode = "none"` (the streamed path: a projected parse whose chunks go straight into
//!   the aggregations) re-delivered lines are counted, lines that are not JSON only in a field
//!   the projection skips are still rejected, and a record with none of the rollup's columns is
//!   still a row;
//! - the input ledger makes runs exactly-once: the same input again adds nothing, a new file
//!   merges in;
//! - a crash at every fail point of the commit protocol, then another run, counts every row
//!   once (the recovery finds a rollup-only run's commit by its run id, not by a segment);
//! - jobs that cannot be rollup-only (no `[[rollup]]`, `[output.partition]`, a table-wide
//!   dedup scope) are usage errors (exit 2) that write nothing;
//! - a column whose type changes between the chunks of a streamed run fails the run, naming
//!   `[schema]`, and commits nothing; pinning the type there makes it pass;
//! - the rollup's bytes do not depend on `--threads`;
//! - a later run may spell a column in another case (names are case-insensitive).
//!
//! Rollup tables are read with plain `parquet` from the live files of the current snapshot
//! (`common::rollup::read_rollup`); distinct counts and quantiles are checked from their readable
//! columns.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::rollup::{
    assert_groups, assert_no_uncommitted, check_same_bytes, daily, groups, hourly, mixed_input,
    opt_fold, oracle, rank_error, read_rollup, run, staged_dirs, t0, table_bytes, tempdir, text,
    Aggregates, Cell, Ev, FileColumns, Gen, Rng, Rollup, Style, TableBytes, ACCURACY, BR_QUANTILES,
    DAY_US, MIN_QUANTILE_VALUES,
};
use common::Val;
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Inputs and rollups

/// A generator of this file's events: each line has a `payload` that no rollup reads, for a
/// projected parse to skip.
fn generator(seed: u64, users: u64, items: u64) -> Gen {
    Gen::new(Style::Payload, seed, users, items)
}

/// `evs` without re-deliveries (events are distinct by id), in first-seen order.
fn distinct(evs: &[Ev]) -> Vec<Ev> {
    let mut seen = BTreeSet::new();
    evs.iter().filter(|e| seen.insert(e.id)).cloned().collect()
}

/// By hour and three dimensions, rewritten in place: many small groups.
const HOURLY: Rollup = Rollup {
    aggregates: Aggregates::Lean,
    ..hourly(Some("rewrite"))
};

/// By day and one dimension, appended: few large groups, where the sketches are measured.
const DAILY: Rollup = Rollup {
    aggregates: Aggregates::Lean,
    ..daily(Some("append"))
};

const ROLLUPS: &[Rollup] = &[HOURLY, DAILY];

/// Columns holding sketch estimates (distinct counts and quantiles), compared with a tolerance.
const ESTIMATES: &[&str] = &["users", "items", "br_p50", "br_p95", "br_p99"];

// ---------------------------------------------------------------------------------------------
// Checking a rollup table

/// Checks the rollup `r` of the job in `dir` against the oracle of `evs` (the rows the rollup
/// must have counted, each once): the groups, and in each group (its rows merged) the count,
/// sums, minima and maxima exactly. With `sketches` (each group in one row), also the
/// readable distinct counts (within 2%, or 1) and quantiles (within the accuracy, in rank).
/// `ctx` starts the failure messages.
fn check_rollup(ctx: &str, dir: &Path, r: &Rollup, evs: &[Ev], sketches: bool) {
    let what = format!("{ctx}: {} of {}", r.name, dir.display());
    let read = read_rollup(&r.dir(dir), FileColumns::AnyCase);
    let groups = groups(&read.rows, r);
    let want = oracle(evs, r);
    assert_groups(&what, &groups, &want);
    let total: i64 = groups
        .values()
        .flatten()
        .map(|row| row.int("events").unwrap())
        .sum();
    assert_eq!(total, evs.len() as i64, "{what}: rows counted");
    for (key, rows) in &groups {
        let g = format!("{what} group {key:?}");
        let a = &want[key];
        let mut count = 0;
        let (mut br_sum, mut br_min, mut br_max, mut br_n) = (None, None, None, 0);
        let (mut dur_sum, mut dur_min, mut dur_max) = (None, None, None);
        for row in rows {
            count += row.int("events").unwrap();
            br_sum = opt_fold(br_sum, row.int("br_sum"), |x, y| x + y);
            br_min = opt_fold(br_min, row.int("br_min"), i64::min);
            br_max = opt_fold(br_max, row.int("br_max"), i64::max);
            br_n += row.int("br_mean_count").unwrap_or(0);
            dur_sum = opt_fold(dur_sum, row.float("dur_sum"), |x, y| x + y);
            dur_min = opt_fold(dur_min, row.float("dur_min"), f64::min);
            dur_max = opt_fold(dur_max, row.float("dur_max"), f64::max);
        }
        assert_eq!(count, a.count, "{g}: count");
        let exact_br_sum = a.br.iter().sum::<i64>();
        assert_eq!(
            br_sum,
            (!a.br.is_empty()).then_some(exact_br_sum),
            "{g}: br_sum"
        );
        assert_eq!(br_min, a.br.iter().min().copied(), "{g}: br_min");
        assert_eq!(br_max, a.br.iter().max().copied(), "{g}: br_max");
        assert_eq!(br_n, a.br.len() as i64, "{g}: br_mean_count");
        assert_eq!(
            dur_sum,
            (!a.dur.is_empty()).then(|| a.dur.iter().sum::<f64>()),
            "{g}: dur_sum"
        );
        assert_eq!(
            dur_min,
            a.dur.iter().copied().reduce(f64::min),
            "{g}: dur_min"
        );
        assert_eq!(
            dur_max,
            a.dur.iter().copied().reduce(f64::max),
            "{g}: dur_max"
        );
        if !sketches {
            continue;
        }
        assert_eq!(rows.len(), 1, "{g}: in {} rows", rows.len());
        let row = &rows[0];
        for (name, exact) in [("users", a.users.len()), ("items", a.items.len())] {
            let est = row.int(name).unwrap_or(0) as f64;
            let exact = exact as f64;
            assert!(
                (est - exact).abs() <= (0.02 * exact).max(1.0),
                "{g}: {name} = {est}, but {exact} distinct values"
            );
        }
        let mut sorted: Vec<f64> = a.br.iter().map(|&b| b as f64).collect();
        sorted.sort_by(f64::total_cmp);
        for &(q, s) in BR_QUANTILES {
            let col = format!("br_{s}");
            let Some(x) = row.float(&col) else {
                assert!(sorted.is_empty(), "{g}: {col} is null");
                continue;
            };
            assert!(
                sorted[0] <= x && x <= sorted[sorted.len() - 1],
                "{g}: {col} = {x} is outside the values"
            );
            if sorted.len() >= MIN_QUANTILE_VALUES {
                let err = rank_error(&sorted, x, q);
                assert!(
                    err <= ACCURACY,
                    "{g}: {col} = {x} is {err:.4} off in rank over {} values",
                    sorted.len()
                );
            }
        }
    }
}

/// Two rollup tables of one definition hold the same groups and, group by group, the same
/// values: exactly, except the sketch estimates (distinct counts within 1%, quantiles within
/// twice the accuracy in rank of the group's true values).
fn assert_same_rollup(a_dir: &Path, b_dir: &Path, r: &Rollup, evs: &[Ev]) {
    let (a, b) = (
        read_rollup(&r.dir(a_dir), FileColumns::AnyCase),
        read_rollup(&r.dir(b_dir), FileColumns::AnyCase),
    );
    let (a, b) = (groups(&a.rows, r), groups(&b.rows, r));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{}: the groups differ",
        r.name
    );
    let want = oracle(evs, r);
    for (key, rows) in &a {
        assert_eq!(rows.len(), 1, "{}: group {key:?}", r.name);
        let (ra, rb) = (&rows[0], &b[key][0]);
        assert_eq!(
            ra.cells.keys().collect::<Vec<_>>(),
            rb.cells.keys().collect::<Vec<_>>(),
            "{}: columns",
            r.name
        );
        let mut sorted: Vec<f64> = want[key].br.iter().map(|&b| b as f64).collect();
        sorted.sort_by(f64::total_cmp);
        for (col, va) in &ra.cells {
            let vb = &rb.cells[col];
            let what = format!("{} group {key:?} column {col}: {va:?} vs {vb:?}", r.name);
            if matches!(va, Cell::B(_)) || va == vb {
                continue;
            }
            assert!(ESTIMATES.contains(&col.as_str()), "{what}");
            match (va, vb) {
                (Cell::V(Val::Int(x)), Cell::V(Val::Int(y))) => {
                    let (x, y) = (*x as f64, *y as f64);
                    assert!((x - y).abs() <= 0.01 * x.max(y), "{what}");
                }
                (Cell::V(Val::Float(x)), Cell::V(Val::Float(y))) => {
                    let q = BR_QUANTILES
                        .iter()
                        .find(|q| format!("br_{}", q.1) == *col)
                        .unwrap()
                        .0;
                    let (lo, hi) = (x.min(*y), x.max(*y));
                    // the values between the two estimates are few
                    let between =
                        sorted.partition_point(|v| *v <= hi) - sorted.partition_point(|v| *v < lo);
                    assert!(
                        between as f64 <= (2.0 * ACCURACY * sorted.len() as f64).max(2.0),
                        "{what} ({q}: {between} of {} values between)",
                        sorted.len()
                    );
                }
                _ => panic!("{what}"),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs and runs

/// A job in `dir` reading `inputs`: detailed rows or not, `[dedup] mode`, then `extra`.
fn job_text(inputs: &[&str], detailed: bool, dedup: &str, extra: &str) -> String {
    common::rollup::job_text(
        inputs,
        ROLLUPS,
        &format!("detailed = {detailed}\n\n[dedup]\nmode = \"{dedup}\"\n{extra}"),
    )
}

fn n(rep: &Value, k: &str) -> u64 {
    rep[k]
        .as_u64()
        .unwrap_or_else(|| panic!("report has no {k}: {rep}"))
}

/// A run that must succeed and commit: checks the report's accounting (a rollup-only run's
/// `rows_rolled_up` standing for `rows_out`) and that every rollup committed the run's rows.
fn run_ok(job: &Path, threads: usize) -> Value {
    let (out, rep) = run(job, &["--threads", &threads.to_string()], &[]);
    assert!(out.status.success(), "run failed: {}", common::stderr(&out));
    let rep = rep.expect("the run wrote its report");
    assert_eq!(rep["committed"], true, "{rep}");
    let rows = match rep["rows_rolled_up"].as_u64() {
        Some(r) => {
            assert_eq!(n(&rep, "rows_out"), 0, "a rollup-only run: {rep}");
            r
        }
        None => {
            assert!(rep["rows_rolled_up"].is_null(), "{rep}");
            n(&rep, "rows_out")
        }
    };
    assert_eq!(
        n(&rep, "records_in"),
        rows + n(&rep, "duplicates") + n(&rep, "rejected"),
        "accounting: {rep}"
    );
    let rollups = rep["rollups"].as_array().expect("report lists the rollups");
    assert_eq!(rollups.len(), ROLLUPS.len(), "{rep}");
    for r in rollups {
        assert_eq!(r["committed"], true, "{r}");
        assert_eq!(r["rows"].as_u64(), Some(rows), "rollup rows: {r}");
    }
    rep
}

/// The table of a rollup-only job: commits (versions `0..versions`), none with a data file,
/// each naming its run in `commitInfo`; `runs` (run ids) are among them.
fn assert_rowless_table(table: &Path, versions: usize, runs: &[&str]) {
    let commits = common::commits(table);
    assert_eq!(commits.len(), versions, "{commits:?}");
    assert!(common::live_files(table).is_empty(), "live files");
    assert!(
        common::parquet_files_under(table).is_empty(),
        "{:?}",
        common::parquet_files_under(table)
    );
    for c in &commits {
        let text = std::fs::read_to_string(table.join("_delta_log").join(c)).unwrap();
        for line in text.lines() {
            let a: Value = serde_json::from_str(line).unwrap();
            assert!(a.get("add").is_none(), "{c} adds a file: {line}");
            if let Some(ci) = a.get("commitInfo") {
                assert!(
                    ci["operationMetrics"][compactor::table::RUN_ID_METRIC].is_string(),
                    "{c} names no run: {line}"
                );
            }
        }
    }
    for id in runs {
        let v = compactor::table::committed_run(&table.canonicalize().unwrap(), id).unwrap();
        assert!(
            v.is_some_and(|v| (v as usize) < versions),
            "run {id}: {v:?}"
        );
    }
}

/// `(file, line)` of every quarantined line of the table.
fn quarantined(table: &Path) -> BTreeSet<(String, u64)> {
    common::quarantine(table)
        .iter()
        .map(|e| {
            assert!(!e["reason"].as_str().unwrap().is_empty(), "{e}");
            (
                e["file"].as_str().unwrap().to_string(),
                e["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// A job's subdirectory of `d` reading `d/in`.
fn sub(d: &Path, name: &str, detailed: bool, dedup: &str, extra: &str) -> (PathBuf, PathBuf) {
    let s = d.join(name);
    std::fs::create_dir_all(&s).unwrap();
    let job = common::write_job(
        &s,
        "job.toml",
        &job_text(&["../in"], detailed, dedup, extra),
    );
    (s, job)
}

const LOOSE: &str = "\n[limits]\nmax_rejected_share = 0.1\n";

// ---------------------------------------------------------------------------------------------
// 1. Exact dedup: the same rollups as a detailed run

#[test]
fn exact_dedup_rolls_up_as_a_detailed_run_does() {
    let (_t, d) = tempdir();
    let mut g = generator(1, 2000, 20_000);
    let mut rng = Rng::new(11);
    let evs = g.evs(6000, t0(), 2 * DAY_US);
    let (bytes, delivered, bad) = mixed_input(&mut rng, &evs, 800, 40);
    let input = d.join("in/a.jsonl");
    std::fs::write(&input, bytes).unwrap();
    let repeats = (delivered.len() - evs.len()) as u64;
    assert!(repeats > 700, "{repeats}");

    let (det, det_job) = sub(&d, "detailed", true, "exact", LOOSE);
    let (only, only_job) = sub(&d, "only", false, "exact", LOOSE);
    let det_rep = run_ok(&det_job, 2);
    let rep = run_ok(&only_job, 2);
    for r in [&det_rep, &rep] {
        assert_eq!(
            (n(r, "duplicates"), n(r, "rejected"), n(r, "lines_in")),
            (
                repeats,
                bad.len() as u64,
                delivered.len() as u64 + bad.len() as u64
            ),
            "{r}"
        );
    }
    assert_eq!(n(&det_rep, "rows_out"), 6000, "{det_rep}");
    assert_eq!(rep["rows_rolled_up"], 6000, "{rep}");

    // no rows in the detailed table: one commit, no files, naming the run
    assert_rowless_table(&only.join("table"), 1, &[rep["run_id"].as_str().unwrap()]);
    assert!(!common::live_files(&det.join("table")).is_empty());
    // the rejected lines are quarantined, as the detailed run's
    let want: BTreeSet<(String, u64)> = bad
        .iter()
        .map(|l| (input.display().to_string(), *l))
        .collect();
    assert_eq!(quarantined(&only.join("table")), want);
    assert_eq!(quarantined(&det.join("table")), want);

    for r in ROLLUPS {
        check_rollup("detailed", &det, r, &evs, true);
        check_rollup("rollup-only", &only, r, &evs, true);
        assert_same_rollup(&det, &only, r, &evs);
        let e = rep["rollups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == r.name)
            .unwrap();
        assert_eq!(e["groups"].as_u64(), Some(oracle(&evs, r).len() as u64));
        assert_eq!(common::table_version(&r.dir(&only)), Some(0));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. No dedup: the streamed path

#[test]
fn without_dedup_every_delivered_line_is_counted() {
    let (_t, d) = tempdir();
    let mut g = generator(2, 1500, 10_000);
    let mut rng = Rng::new(22);
    // three files: the streamed aggregations are fed chunk after chunk; records with none of
    // the rollups' columns are rows too (of nulls)
    let mut delivered_all = Vec::new();
    let mut bad_all = BTreeSet::new();
    for k in 0..3 {
        let mut evs = g.evs(2000, t0() + k * DAY_US / 2, 2 * DAY_US);
        for i in 0..5 {
            let at = 300 * i + k as usize;
            evs.insert(at, g.bare());
        }
        let (bytes, delivered, bad) = mixed_input(&mut rng, &evs, 300, 25);
        let input = d.join(format!("in/{k}.jsonl"));
        std::fs::write(&input, bytes).unwrap();
        delivered_all.extend(delivered);
        bad_all.extend(bad.iter().map(|l| (input.display().to_string(), *l)));
    }
    let (only, job) = sub(&d, "only", false, "none", LOOSE);
    let rep = run_ok(&job, 2);
    assert_eq!(
        (
            n(&rep, "files_in"),
            n(&rep, "duplicates"),
            n(&rep, "rejected")
        ),
        (3, 0, bad_all.len() as u64),
        "{rep}"
    );
    assert_eq!(
        rep["rows_rolled_up"].as_u64(),
        Some(delivered_all.len() as u64),
        "{rep}"
    );
    assert_rowless_table(&only.join("table"), 1, &[rep["run_id"].as_str().unwrap()]);
    assert_eq!(quarantined(&only.join("table")), bad_all);
    for r in ROLLUPS {
        check_rollup("rollup-only", &only, r, &delivered_all, true);
    }
    // the same job writing detailed rows (parsing whole lines, sorting) rolls up the same
    let (det, det_job) = sub(&d, "detailed", true, "none", LOOSE);
    let det_rep = run_ok(&det_job, 2);
    assert_eq!(
        n(&det_rep, "rows_out"),
        delivered_all.len() as u64,
        "{det_rep}"
    );
    for r in ROLLUPS {
        assert_same_rollup(&det, &only, r, &delivered_all);
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Exactly once: the ledger

#[test]
fn each_input_is_rolled_up_once() {
    for dedup in ["none", "exact"] {
        let (_t, d) = tempdir();
        let mut g = generator(3, 500, 3000);
        let mut rng = Rng::new(33);
        let a = g.evs(2000, t0(), 2 * DAY_US);
        let (bytes, mut all, _) = mixed_input(&mut rng, &a, 200, 0);
        std::fs::write(d.join("in/a.jsonl"), bytes).unwrap();
        if dedup == "exact" {
            all = distinct(&all);
        }
        let (only, job) = sub(&d, "only", false, dedup, "");
        let rep = run_ok(&job, 2);
        let mut runs = vec![rep["run_id"].as_str().unwrap().to_string()];
        for r in ROLLUPS {
            check_rollup(dedup, &only, r, &all, true);
        }
        let before: Vec<_> = ROLLUPS.iter().map(|r| table_bytes(&r.dir(&only))).collect();

        // the same input again: nothing to do
        let (out, rep) = run(&job, &["--threads", "2"], &[]);
        assert!(out.status.success(), "{dedup}: {}", common::stderr(&out));
        let rep = rep.unwrap();
        assert_eq!(
            (
                rep["committed"].as_bool(),
                n(&rep, "files_in"),
                n(&rep, "files_skipped"),
                n(&rep, "records_in")
            ),
            (Some(false), 0, 1, 0),
            "{dedup}: {rep}"
        );
        for (r, b) in ROLLUPS.iter().zip(&before) {
            assert_eq!(common::table_version(&r.dir(&only)), Some(0), "{dedup}");
            assert!(
                &table_bytes(&r.dir(&only)) == b,
                "{dedup}: {} changed",
                r.name
            );
        }
        assert_eq!(common::commits(&only.join("table")).len(), 1, "{dedup}");

        // a new file merges in (the same days: groups of both runs merge)
        let b = g.evs(1500, t0() + DAY_US / 2, DAY_US);
        let (bytes, mut delivered, _) = mixed_input(&mut rng, &b, 150, 0);
        std::fs::write(d.join("in/b.jsonl"), bytes).unwrap();
        if dedup == "exact" {
            delivered = distinct(&delivered);
        }
        let rep = run_ok(&job, 2);
        assert_eq!(
            (n(&rep, "files_in"), n(&rep, "files_skipped")),
            (1, 1),
            "{dedup}: {rep}"
        );
        assert_eq!(
            rep["rows_rolled_up"].as_u64(),
            Some(delivered.len() as u64),
            "{dedup}: {rep}"
        );
        runs.push(rep["run_id"].as_str().unwrap().to_string());
        all.extend(delivered);
        for r in ROLLUPS {
            assert_eq!(common::table_version(&r.dir(&only)), Some(1), "{dedup}");
            // rewrite: one row per group; append: the test merges the segments
            check_rollup(dedup, &only, r, &all, r.merge == Some("rewrite"));
        }
        let ids: Vec<&str> = runs.iter().map(String::as_str).collect();
        assert_rowless_table(&only.join("table"), 2, &ids);
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Crashes

/// A run killed at each fail point of the commit protocol, then another run (on the same
/// input, or with a later file too): every row counted once in each rollup, nothing left
/// staged, and a run with nothing new changes nothing.
#[test]
fn a_crash_at_any_step_counts_each_row_once() {
    const POINTS: &[&str] = &[
        "rollup-after-stage",
        "before-commit",
        "commit-before-log",
        "after-commit",
        "rollup-before-commit",
        "rollup-after-commit",
        "rollup-before-unstage",
    ];
    let mut g = generator(4, 300, 2000);
    let a = g.evs(800, t0(), DAY_US);
    let b = g.evs(800, t0() + DAY_US / 2, DAY_US);
    let c = g.evs(500, t0() + DAY_US, DAY_US);
    let mut cases = Vec::new();
    for (i, &point) in POINTS.iter().enumerate() {
        for later_input in [false, true] {
            // both paths: streamed (none) and sorted (exact); either dedup keeps every row here
            let dedup = if (i + later_input as usize).is_multiple_of(2) {
                "none"
            } else {
                "exact"
            };
            cases.push((point, later_input, dedup));
        }
    }
    // two cases at a time (each is four short runs)
    let cases = std::sync::Mutex::new(cases);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let Some((point, later_input, dedup)) = cases.lock().unwrap().pop() else {
                    return;
                };
                crash_case(point, later_input, dedup, &a, &b, &c);
            });
        }
    });
}

fn crash_case(point: &str, later_input: bool, dedup: &str, a: &[Ev], b: &[Ev], c: &[Ev]) {
    let what = format!("{point} (dedup {dedup}, later input {later_input})");
    let (_t, d) = tempdir();
    let (only, job) = sub(&d, "only", false, dedup, "");
    let table = only.join("table");
    // a first run lands cleanly, so that the rollups have rows to merge with
    std::fs::write(d.join("in/a.jsonl"), text(a)).unwrap();
    run_ok(&job, 2);
    // the second crashes
    std::fs::write(d.join("in/b.jsonl"), text(b)).unwrap();
    let (out, _) = run(&job, &["--threads", "2"], &[("COMPACTOR_FAILPOINT", point)]);
    assert!(
        !out.status.success() && common::stderr(&out).contains(point),
        "{what}: did not crash: {}",
        common::stderr(&out)
    );
    // the next run repairs (and re-reads b if its commit did not land)
    let mut all = [a, b].concat();
    if later_input {
        std::fs::write(d.join("in/c.jsonl"), text(c)).unwrap();
        all.extend_from_slice(c);
    }
    let (out, rep) = run(&job, &["--threads", "2"], &[]);
    assert!(out.status.success(), "{what}: {}", common::stderr(&out));
    let rep = rep.unwrap();
    for r in ROLLUPS {
        check_rollup(&what, &only, r, &all, false);
        assert_no_uncommitted(&r.dir(&only));
    }
    assert!(
        staged_dirs(&table).is_empty(),
        "{what}: left staged: {:?}",
        staged_dirs(&table)
    );
    let versions = common::commits(&table).len();
    assert!((2..=3).contains(&versions), "{what}: {versions} commits");
    assert_rowless_table(&table, versions, &[]);
    // a run with nothing new changes nothing
    let (out, rep2) = run(&job, &["--threads", "2"], &[]);
    assert!(out.status.success(), "{what}: {}", common::stderr(&out));
    assert_eq!(rep2.unwrap()["committed"], false, "{what}: after {rep}");
    for r in ROLLUPS {
        check_rollup(&what, &only, r, &all, false);
    }
    assert_eq!(common::commits(&table).len(), versions, "{what}");
}

// ---------------------------------------------------------------------------------------------
// 5. Jobs that cannot be rollup-only

#[test]
fn impossible_rollup_only_jobs_are_usage_errors_that_write_nothing() {
    let (_t, d) = tempdir();
    let mut g = generator(5, 100, 100);
    std::fs::write(d.join("in/a.jsonl"), text(&g.evs(200, t0(), DAY_US))).unwrap();
    let no_rollup = common::job_text(
        &["../in"],
        "json",
        "table",
        &["ts"],
        "detailed = false\n\n[dedup]\nmode = \"none\"\n",
    );
    let base = job_text(&["../in"], false, "exact", "");
    let cases = [
        ("no [[rollup]]", no_rollup, "[[rollup]]"),
        (
            "[output.partition]",
            base.replace(
                "\n[dedup]",
                "\n[output.partition]\ncolumn = \"ts\"\nby = \"day\"\n\n[dedup]",
            ),
            "[output.partition]",
        ),
        (
            "scope = table",
            base.replace("mode = \"exact\"", "mode = \"exact\"\nscope = \"table\""),
            "scope",
        ),
        (
            "scope = partition",
            base.replace(
                "mode = \"exact\"",
                "mode = \"exact\"\nscope = \"partition\"",
            ),
            "scope",
        ),
    ];
    for (i, (what, text, word)) in cases.into_iter().enumerate() {
        assert!(text != base, "{what}: the replacement did not apply");
        let s = d.join(format!("case{i}"));
        std::fs::create_dir(&s).unwrap();
        let job = common::write_job(&s, "job.toml", &text);
        let (out, rep) = run(&job, &["--threads", "1"], &[]);
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert!(
            err.contains(word) && err.contains("detailed = false"),
            "{what}: {err}"
        );
        assert!(
            rep.is_none() || rep.as_ref().unwrap()["committed"] == false,
            "{what}: {rep:?}"
        );
        // nothing written: no table, no rollup table, no segment
        for name in ["table", "table_hourly", "table_daily"] {
            assert!(!s.join(name).exists(), "{what}: {name} was created");
        }
        assert!(
            common::parquet_files_under(&s).is_empty(),
            "{what}: {:?}",
            common::parquet_files_under(&s)
        );
    }
    // the control: the same job with detailed rows is fine
    let s = d.join("control");
    std::fs::create_dir(&s).unwrap();
    let text = base.replace(
        "\n[dedup]",
        "\n[output.partition]\ncolumn = \"ts\"\nby = \"day\"\n\n[dedup]",
    );
    let job = common::write_job(&s, "job.toml", &text.replace("detailed = false", ""));
    run_ok(&job, 1);
}

// ---------------------------------------------------------------------------------------------
// 6. A column whose type changes between chunks

/// A file whose first chunk ([`compactor::job::DEFAULT_CHUNK_BYTES`]) has `country` as
/// integers only, and whose later lines have it as strings; lines padded with a skipped field
/// so that few of them fill a chunk. Returns the bytes and the events (countries as strings).
fn int_then_string_input(g: &mut Gen) -> (Vec<u8>, Vec<Ev>) {
    let chunk = compactor::job::DEFAULT_CHUNK_BYTES;
    let mut out = Vec::new();
    let mut evs = Vec::new();
    const CODES: &[(&str, &str)] = &[("1", "US"), ("49", "DE"), ("91", "IN"), ("55", "BR")];
    let mut k = 0;
    // integers well past the first chunk, then strings
    while out.len() < chunk + chunk / 4 {
        let mut e = g.ev(t0(), DAY_US);
        let (code, _) = CODES[k % CODES.len()];
        k += 1;
        e.country = None;
        let line = e.line_padded(900);
        let at = line.find(",\"payload\"").unwrap();
        out.extend_from_slice(&line.as_bytes()[..at]);
        out.extend_from_slice(format!(",\"country\":{code}").as_bytes());
        out.extend_from_slice(&line.as_bytes()[at..]);
        e.country = Some(code);
        evs.push(e);
    }
    for _ in 0..2000 {
        let e = g.ev(t0(), DAY_US);
        out.extend_from_slice(e.line_padded(100).as_bytes());
        evs.push(e);
    }
    (out, evs)
}

#[test]
fn a_type_change_between_chunks_fails_and_commits_nothing() {
    let (_t, d) = tempdir();
    let mut g = generator(6, 300, 1000);
    let (bytes, evs) = int_then_string_input(&mut g);
    assert!(bytes.len() > compactor::job::DEFAULT_CHUNK_BYTES + 1000);
    std::fs::write(d.join("in/a.jsonl"), bytes).unwrap();
    let (only, job) = sub(&d, "only", false, "none", "");
    let (out, rep) = run(&job, &["--threads", "2"], &[]);
    let err = common::stderr(&out);
    assert!(!out.status.success(), "the run passed: {err}");
    assert!(
        err.contains("[schema]") && err.contains("country"),
        "the message does not say to pin country's type in [schema]: {err}"
    );
    assert!(rep.is_none_or(|r| r["committed"] == false));
    let table = only.join("table");
    assert!(
        common::commits(&table).is_empty(),
        "{:?}",
        common::commits(&table)
    );
    assert_eq!(common::table_version(&table), None);
    for r in ROLLUPS {
        assert!(
            !r.dir(&only).join("_delta_log").exists(),
            "{} was committed",
            r.name
        );
    }
    assert!(common::parquet_files_under(&only).is_empty());
    assert!(staged_dirs(&table).is_empty());

    // pinned as a string, the same input rolls up (the integers as their digits)
    let text = std::fs::read_to_string(&job).unwrap() + "\n[schema]\ncountry = \"string\"\n";
    std::fs::write(&job, text).unwrap();
    let rep = run_ok(&job, 2);
    assert_eq!(rep["rows_rolled_up"].as_u64(), Some(evs.len() as u64));
    for r in ROLLUPS {
        check_rollup("pinned", &only, r, &evs, true);
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Determinism

#[test]
fn streamed_rollup_bytes_do_not_depend_on_threads() {
    let mut g = generator(7, 1000, 5000);
    // the first file spans several chunks (padded lines), parsed in parallel with 2 threads
    let mut big = Vec::new();
    let mut first = Vec::new();
    while big.len() < 2 * compactor::job::DEFAULT_CHUNK_BYTES + 100_000 {
        let e = g.ev(t0(), 3 * DAY_US);
        big.extend_from_slice(e.line_padded(1500).as_bytes());
        first.push(e);
    }
    let second = g.evs(3000, t0() + DAY_US, DAY_US);
    let mut reference: Option<Vec<TableBytes>> = None;
    let mut dirs = Vec::new();
    for threads in [1, 2] {
        let (t, d) = tempdir();
        let (only, job) = sub(&d, "only", false, "none", "");
        std::fs::write(d.join("in/0.jsonl"), &big).unwrap();
        run_ok(&job, threads);
        std::fs::write(d.join("in/1.jsonl"), text(&second)).unwrap();
        run_ok(&job, threads);
        let with = format!("--threads {threads}");
        check_same_bytes(&mut reference, ROLLUPS, &only, &with, "with 1 thread");
        dirs.push((t, only));
    }
    let all = [first, second].concat();
    for r in ROLLUPS {
        check_rollup("threads", &dirs[0].1, r, &all, r.merge == Some("rewrite"));
    }
}

// ---------------------------------------------------------------------------------------------
// 8. A column spelled differently in a later run

/// Column names are case-insensitive: a later run whose lines spell a dimension `country`
/// where the first run's spelled it `Country` merges into the same rollup, whether its rows
/// were sorted (exact dedup) or streamed (none), as a detailed run does.
#[test]
fn a_later_run_may_spell_a_column_in_another_case() {
    for dedup in ["none", "exact"] {
        let (_t, d) = tempdir();
        let mut g = generator(8, 100, 100);
        let a = g.evs(300, t0(), DAY_US);
        let b = g.evs(300, t0(), DAY_US);
        let (only, job) = sub(&d, "only", false, dedup, "");
        std::fs::write(
            d.join("in/a.jsonl"),
            text(&a).replace("\"country\":", "\"Country\":"),
        )
        .unwrap();
        run_ok(&job, 1);
        std::fs::write(d.join("in/b.jsonl"), text(&b)).unwrap();
        run_ok(&job, 1);
        let all = [a, b].concat();
        for r in ROLLUPS {
            check_rollup(dedup, &only, r, &all, r.merge == Some("rewrite"));
        }
    }
}
