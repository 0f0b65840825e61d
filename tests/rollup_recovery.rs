//! Rollups are exactly once across crashes: a run killed at each rollup fail point (and at the
//! detailed commit's) leaves the rollup tables so that, after the next run, every row of the
//! detailed table is counted once in each rollup: never lost, never twice. A held rollup lock
//! makes a run give up after a bounded wait, and the next run applies what it staged.

mod common;

use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use common::rollup::{assert_no_uncommitted, staged_dirs};

/// Sum of the Int64 column `col` over the live files of the table at `dir` (0 if none).
fn column_sum(dir: &Path, col: &str) -> i64 {
    if !dir.join("_delta_log").is_dir() {
        return 0;
    }
    let mut total = 0;
    for f in common::live_files(dir) {
        let file = std::fs::File::open(&f.path).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            let b = b.unwrap();
            let c = b.column_by_name(col).unwrap();
            let c = c.as_primitive::<Int64Type>();
            total += (0..c.len())
                .filter(|&i| c.is_valid(i))
                .map(|i| c.value(i))
                .sum::<i64>();
        }
    }
    total
}

/// Rows of the table at `dir` (from the files' footers).
fn table_rows(dir: &Path) -> i64 {
    if !dir.join("_delta_log").is_dir() {
        return 0;
    }
    common::live_files(dir)
        .iter()
        .map(|f| {
            let file = std::fs::File::open(&f.path).unwrap();
            parquet::file::reader::SerializedFileReader::new(file)
                .map(|r| {
                    use parquet::file::reader::FileReader;
                    r.metadata().file_metadata().num_rows()
                })
                .unwrap()
        })
        .sum()
}

fn write_input(dir: &Path, name: &str, seed: u64, lines: u64) {
    let out = common::cli(
        &[
            "gen",
            "--format",
            "json",
            "--lines",
            &lines.to_string(),
            "--seed",
            &seed.to_string(),
            "--output",
            dir.join(name).to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
}

fn job(dir: &Path, merge: &str) -> PathBuf {
    let text = common::job_text(
        &["in"],
        "json",
        "table",
        &["ts"],
        &format!(
            r#"
[output.partition]
column = "ts"
by = "day"

[[rollup]]
name = "hourly"
time = "ts"
bucket = "hour"
dimensions = ["event", "country"]
merge = "{merge}"
aggregates = [
  {{ name = "events", fn = "count" }},
  {{ name = "users", fn = "count_distinct", column = "user_id" }},
  {{ name = "bitrate", fn = "quantiles", column = "playback.bitrate_kbps" }},
]
"#
        ),
    );
    common::write_job(dir, "job.toml", &text)
}

/// After each crash and one more run: every detailed row counted once; nothing left staged.
#[test]
fn a_crash_at_any_rollup_step_counts_each_row_once() {
    for merge in ["rewrite", "append"] {
        for failpoint in [
            "before-commit",
            "after-commit",
            "rollup-after-stage",
            "rollup-before-commit",
            "commit-before-log",
            "rollup-after-commit",
            "rollup-before-unstage",
        ] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::create_dir(d.join("in")).unwrap();
            let job = job(d, merge);
            let table = d.join("table");
            let rollup = d.join("table_hourly");
            // a first run lands cleanly, so that the rollup has rows to rewrite
            write_input(&d.join("in"), "a.jsonl", 1, 3000);
            let (out, _) = common::cli_run(&job, 2, &[]);
            assert!(out.status.success(), "{}", common::stderr(&out));
            assert_eq!(column_sum(&rollup, "events"), table_rows(&table));
            // the second crashes
            write_input(&d.join("in"), "b.jsonl", 2, 3000);
            let (out, _) = common::cli_run(&job, 2, &[("COMPACTOR_FAILPOINT", failpoint)]);
            assert!(
                !out.status.success(),
                "{merge} {failpoint}: did not crash\n{}",
                common::stderr(&out)
            );
            // the next run (no new input, or the crashed run's input again) repairs
            let (out, report) = common::cli_run(&job, 2, &[]);
            assert!(
                out.status.success(),
                "{merge} {failpoint}: {}",
                common::stderr(&out)
            );
            let rows = table_rows(&table);
            assert_eq!(
                column_sum(&rollup, "events"),
                rows,
                "{merge} {failpoint}: rollup counts vs detailed rows; report {report:?}"
            );
            assert!(
                staged_dirs(&table).is_empty(),
                "{merge} {failpoint}: left staged: {:?}",
                staged_dirs(&table)
            );
            assert_no_uncommitted(&rollup);
            // and a run with nothing new changes nothing
            let (out, _) = common::cli_run(&job, 2, &[]);
            assert!(out.status.success(), "{}", common::stderr(&out));
            assert_eq!(column_sum(&rollup, "events"), rows);
            let out = common::cli(&["verify", rollup.to_str().unwrap()], &[]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
    }
}

/// A job whose rollup definition differs from the table's fails before committing anything.
#[test]
fn a_changed_definition_is_refused_before_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let job_path = job(d, "rewrite");
    write_input(&d.join("in"), "a.jsonl", 1, 500);
    let (out, _) = common::cli_run(&job_path, 1, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let version = common::table_version(&d.join("table"));
    let text = std::fs::read_to_string(&job_path).unwrap().replace(
        "dimensions = [\"event\", \"country\"]",
        "dimensions = [\"event\"]",
    );
    std::fs::write(&job_path, text).unwrap();
    write_input(&d.join("in"), "b.jsonl", 2, 500);
    let (out, _) = common::cli_run(&job_path, 1, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("another definition"),
        "{}",
        common::stderr(&out)
    );
    assert_eq!(common::table_version(&d.join("table")), version);
}

/// A rollup table whose lock another process holds makes a run give up after the wait (exit
/// 5, the detailed rows committed, the states left staged), not hang; the next run applies the
/// states once the lock is free, so every row is still counted once.
#[test]
fn a_held_rollup_lock_times_out_and_the_next_run_applies_the_states() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let job = job(d, "rewrite");
    let table = d.join("table");
    let rollup = d.join("table_hourly");
    write_input(&d.join("in"), "a.jsonl", 1, 1000);
    let (out, _) = common::cli_run(&job, 2, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // a stuck writer holds the rollup table's lock
    let lock = std::fs::File::options()
        .write(true)
        .open(rollup.join("_compactor").join("rollup.lock"))
        .unwrap();
    lock.lock().unwrap();
    write_input(&d.join("in"), "b.jsonl", 2, 1000);
    let started = std::time::Instant::now();
    let (out, _) = common::cli_run(&job, 2, &[("COMPACTOR_ROLLUP_LOCK_WAIT_MS", "300")]);
    assert_eq!(out.status.code(), Some(5), "{}", common::stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(
        common::stderr(&out).contains("rollup table"),
        "{}",
        common::stderr(&out)
    );
    assert!(column_sum(&rollup, "events") < table_rows(&table));
    assert_eq!(staged_dirs(&table).len(), 1);
    // freed: the next run applies the staged states, once
    drop(lock);
    let (out, _) = common::cli_run(&job, 2, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(column_sum(&rollup, "events"), table_rows(&table));
    assert!(staged_dirs(&table).is_empty());
    assert_no_uncommitted(&rollup);
}
