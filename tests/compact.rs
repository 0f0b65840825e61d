//! Compaction and concurrent writers: small segments merged into sorted ones with duplicates
//! across runs dropped; runs committing while a compaction works; two runs at once.

mod common;

use std::path::{Path, PathBuf};

use common::{Record, Val};

/// `n` JSON events with distinct ids from `first`, two days of timestamps.
fn events(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-01-{:02}T{:02}:{:02}:00Z\",\"id\":{i},\"level\":\"{}\",\"msg\":\"event {i}\"}}\n",
                1 + (i * 7) % 2,
                (i * 13) % 24,
                i % 60,
                ["info", "warn", "error"][(i % 3) as usize]
            )
        })
        .collect()
}

fn job(dir: &Path, name: &str, inputs: &[&str], extra: &str) -> PathBuf {
    common::write_job(
        dir,
        name,
        &common::job_text(
            inputs,
            "json",
            "table",
            &["ts", "id"],
            &format!("{extra}\n[output.partition]\ncolumn = \"ts\"\nby = \"day\"\n"),
        ),
    )
}

fn ids(records: &[Record]) -> Vec<i64> {
    let mut v: Vec<i64> = records
        .iter()
        .map(|r| match r.get("id") {
            Some(Val::Int(i)) => *i,
            other => panic!("id is {other:?}"),
        })
        .collect();
    v.sort();
    v
}

fn compact(
    table: &Path,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (std::process::Output, serde_json::Value) {
    let report = table.with_extension(format!("compact-{}.json", std::process::id()));
    let _ = std::fs::remove_file(&report);
    let mut a = vec![
        "compact",
        table.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--threads",
        "2",
        "--memory",
        "256MiB",
    ];
    a.extend_from_slice(args);
    let out = common::cli(&a, envs);
    let rep = std::fs::read(&report)
        .ok()
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (out, rep)
}

/// Rows of each live file, checking each is sorted by (ts, id).
fn assert_each_file_sorted(table: &Path) {
    for f in common::live_files(table) {
        let rows = common::read_parquet(&f.path);
        let ts = rows.columns.iter().position(|(n, _)| n == "ts").unwrap();
        let id = rows.columns.iter().position(|(n, _)| n == "id").unwrap();
        let keys: Vec<(Val, Val)> = rows
            .rows
            .iter()
            .map(|r| (r[ts].clone(), r[id].clone()))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{} is not sorted", f.path.display());
    }
}

#[test]
fn small_segments_merge_and_cross_run_duplicates_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let table = d.join("table");
    // 6 runs, 40 events each; each run re-delivers 5 events of the run before it
    for r in 0..6u64 {
        let first = r * 40;
        let mut text = events(first, 40);
        if r > 0 {
            text.push_str(&events(first - 5, 5));
        }
        std::fs::write(d.join(format!("in/{r}.jsonl")), text).unwrap();
        let j = job(
            d,
            "job.toml",
            &[&format!("in/{r}.jsonl")],
            "max_segment_rows = 16\n",
        );
        let rep = common::run_job(&j, 2);
        assert!(rep.committed);
        assert_eq!(rep.duplicates, 0, "within a run there are none");
    }
    let before = common::live_files(&table);
    assert!(before.len() >= 12, "{} segments", before.len());
    let version_before = common::table_version(&table).unwrap();
    // 240 distinct events + 25 re-deliveries that landed in later runs
    assert_eq!(common::read_table_records(&table).len(), 265);

    let (out, rep) = compact(&table, &["--policy", "all"], &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let groups = rep["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "one group per day: {rep}");
    let dups: u64 = groups
        .iter()
        .map(|g| g["duplicates"].as_u64().unwrap())
        .sum();
    assert_eq!(dups, 25, "{rep}");
    for g in groups {
        assert_eq!(g["committed"], true, "{g}");
        assert_eq!(g["segments_out"], 1, "{g}");
        assert_eq!(
            g["rows_in"].as_u64().unwrap(),
            g["rows_out"].as_u64().unwrap() + g["duplicates"].as_u64().unwrap()
        );
    }
    let after = common::live_files(&table);
    assert_eq!(after.len(), 2);
    assert_eq!(common::table_version(&table), Some(version_before + 2));
    assert_eq!(
        ids(&common::read_table_records(&table)),
        (0..240).map(|i| i as i64).collect::<Vec<_>>()
    );
    assert_each_file_sorted(&table);
    // the rewrite is dataChange = false, remove + add
    let last = std::fs::read_to_string(
        table
            .join("_delta_log")
            .join(common::commits(&table).pop().unwrap()),
    )
    .unwrap();
    assert!(last.contains("\"remove\""), "{last}");
    assert!(last.contains("\"dataChange\":false"), "{last}");
    assert!(!last.contains("\"dataChange\":true"), "{last}");
    assert!(last.contains("OPTIMIZE"), "{last}");
    // the old files stay until vacuum; nothing pending
    for f in &before {
        assert!(f.path.exists());
    }
    assert!(common::files_under(&table.join("_compactor/pending")).is_empty());

    // nothing left to do
    let (out, rep) = compact(&table, &["--policy", "all"], &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(rep["groups"].as_array().unwrap().is_empty(), "{rep}");
    assert_eq!(common::table_version(&table), Some(version_before + 2));
}

#[test]
fn dedup_none_keeps_repeated_lines_through_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let table = d.join("table");
    for r in 0..3 {
        // the same 10 events in every run
        std::fs::write(
            d.join(format!("in/{r}.jsonl")),
            events(0, 10) + &format!("{{\"run\":{r}}}\n"),
        )
        .unwrap();
        let j = job(
            d,
            "job.toml",
            &[&format!("in/{r}.jsonl")],
            "[dedup]\nmode = \"none\"\n",
        );
        common::run_job(&j, 1);
    }
    let (out, rep) = compact(&table, &["--policy", "all"], &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    // the table recorded dedup = none: nothing dropped
    let rows = common::read_table_records(&table);
    assert_eq!(rows.len(), 33, "{rep}");
    assert!(rep["groups"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["duplicates"] == 0));
}

/// A run that commits while a compaction is working is kept: the compaction's commit is
/// rebased on it.
#[test]
fn a_run_during_a_compaction_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let table = d.join("table");
    for r in 0..4u64 {
        std::fs::write(d.join(format!("in/{r}.jsonl")), events(r * 20, 20)).unwrap();
        let j = job(d, "job.toml", &[&format!("in/{r}.jsonl")], "");
        common::run_job(&j, 1);
    }
    let t = table.clone();
    let compaction = std::thread::spawn(move || {
        compact(
            &t,
            &["--policy", "all"],
            &[("COMPACTOR_PAUSE", "compact-before-commit:1500")],
        )
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(d.join("in/late.jsonl"), events(1000, 20)).unwrap();
    let j = job(d, "late.toml", &["in/late.jsonl"], "");
    let (out, rep) = common::cli_run(&j, 1, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(rep.unwrap()["committed"], true);
    let (out, rep) = compaction.join().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    let groups = rep["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| g["committed"] == true), "{rep}");
    let conflicts: u64 = groups
        .iter()
        .map(|g| g["commit_conflicts"].as_u64().unwrap())
        .sum();
    assert!(conflicts >= 1, "the run committed first: {rep}");
    let mut want: Vec<i64> = (0..80).collect();
    want.extend(1000..1020);
    assert_eq!(ids(&common::read_table_records(&table)), want);
}

/// Two runs on different inputs at once both land; two runs on the same input commit it
/// once.
#[test]
fn concurrent_runs_both_land_and_a_shared_input_is_committed_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let table = d.join("table");
    std::fs::write(d.join("in/a.jsonl"), events(0, 30)).unwrap();
    std::fs::write(d.join("in/b.jsonl"), events(100, 30)).unwrap();
    let ja = job(d, "a.toml", &["in/a.jsonl"], "");
    let jb = job(d, "b.toml", &["in/b.jsonl"], "");
    // both pause before committing, so both build on the same (empty) table
    let pause = [("COMPACTOR_PAUSE", "before-commit:800")];
    let ta = std::thread::spawn(move || common::cli_run(&ja, 1, &pause));
    let (ob, rb) = common::cli_run(&jb, 1, &pause);
    let (oa, ra) = ta.join().unwrap();
    assert!(oa.status.success(), "{}", common::stderr(&oa));
    assert!(ob.status.success(), "{}", common::stderr(&ob));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        (ra["committed"].clone(), rb["committed"].clone()),
        (true.into(), true.into())
    );
    let conflicts =
        ra["commit_conflicts"].as_u64().unwrap() + rb["commit_conflicts"].as_u64().unwrap();
    assert!(conflicts >= 1, "{ra}\n{rb}");
    let mut want: Vec<i64> = (0..30).collect();
    want.extend(100..130);
    assert_eq!(ids(&common::read_table_records(&table)), want);
    common::assert_no_orphans(&table);

    // the same new input given to two runs at once
    std::fs::write(d.join("in/c.jsonl"), events(200, 30)).unwrap();
    let j1 = job(d, "c1.toml", &["in/c.jsonl"], "");
    let j2 = job(d, "c2.toml", &["in/c.jsonl"], "");
    let t1 = std::thread::spawn(move || common::cli_run(&j1, 1, &pause));
    let (o2, r2) = common::cli_run(&j2, 1, &pause);
    let (o1, r1) = t1.join().unwrap();
    assert!(o1.status.success(), "{}", common::stderr(&o1));
    assert!(o2.status.success(), "{}", common::stderr(&o2));
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    let committed = [&r1, &r2].iter().filter(|r| r["committed"] == true).count();
    assert_eq!(committed, 1, "{r1}\n{r2}");
    let loser = if r1["committed"] == true { &r2 } else { &r1 };
    assert!(
        loser["note"].as_str().unwrap().contains("concurrent run"),
        "{loser}"
    );
    want.extend(200..230);
    assert_eq!(ids(&common::read_table_records(&table)), want);
    common::assert_no_orphans(&table);
    assert!(common::files_under(&table.join("_compactor/pending")).is_empty());
}

/// `n` events with ids from `first`, all in hour `hour` of 2026-01-01.
fn events_in_hour(hour: u64, first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| {
            format!(
                "{{\"ts\":\"2026-01-01T{hour:02}:{:02}:{:02}Z\",\"id\":{i},\"msg\":\"event {i}\"}}\n",
                i % 60,
                (i * 7) % 60
            )
        })
        .collect()
}

/// `[dedup] scope = "table"`: a line re-sent in a later run is dropped, and only the segments
/// whose statistics overlap the run's time range are read.
#[test]
fn table_scope_drops_lines_resent_in_later_runs_reading_only_overlapping_segments() {
    for scope in ["table", "partition"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("in")).unwrap();
        let table = d.join("table");
        for h in 0..5u64 {
            // hour h, plus 7 lines re-sent from hour h-1
            let mut text = events_in_hour(h, h * 100, 50);
            if h > 0 {
                text.push_str(&events_in_hour(h - 1, (h - 1) * 100 + 10, 7));
            }
            std::fs::write(d.join(format!("in/{h}.jsonl")), text).unwrap();
            let j = job(
                d,
                "job.toml",
                &[&format!("in/{h}.jsonl")],
                &format!("[dedup]\nscope = \"{scope}\"\n"),
            );
            let rep = common::run_job(&j, 2);
            assert!(rep.committed, "{rep:?}");
            let want = if h > 0 { 7 } else { 0 };
            assert_eq!(rep.duplicates_in_table, want, "{scope} hour {h}: {rep:?}");
            assert_eq!(rep.rows_out, 50, "{scope} hour {h}");
            if h > 1 {
                let (read, total) = rep.dedup_segments_read.unwrap();
                assert_eq!(
                    (read, total),
                    (1, h),
                    "{scope} hour {h}: only the hour before"
                );
            }
        }
        let want: Vec<i64> = (0..5).flat_map(|h| h * 100..h * 100 + 50).collect();
        assert_eq!(ids(&common::read_table_records(&table)), want, "{scope}");
    }
}

/// 1,000 small segments of one partition become one segment of the target size, with the same
/// rows, sorted, and `verify` clean.
#[test]
fn a_thousand_small_segments_compact_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let table = d.join("table");
    let text: String = (0..2000u64).map(|i| events_in_hour(i % 24, i, 1)).collect();
    std::fs::write(d.join("in/a.jsonl"), text).unwrap();
    let j = common::write_job(
        d,
        "job.toml",
        &common::job_text(
            &["in"],
            "json",
            "table",
            &["ts", "id"],
            "max_segment_rows = 2\n",
        ),
    );
    let rep = common::run_job(&j, 2);
    assert_eq!(rep.segments, 1000);
    let before = common::read_table_records(&table);
    // the default policy: size-tiered, 512 MiB target
    let (out, rep) = compact(&table, &[], &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let g = &rep["groups"][0];
    assert_eq!(
        (g["segments_in"].as_u64(), g["segments_out"].as_u64()),
        (Some(1000), Some(1)),
        "{rep}"
    );
    assert!(
        g["bytes_out"].as_u64().unwrap() * 20 < g["bytes_in"].as_u64().unwrap(),
        "{g}"
    );
    assert_eq!(common::live_files(&table).len(), 1);
    assert_eq!(ids(&common::read_table_records(&table)), ids(&before));
    assert_each_file_sorted(&table);
    let v = compactor::verify::verify(&table, &compactor::verify::VerifyOptions { deep: true })
        .unwrap();
    assert!(v.ok(), "{}", v.summary());
    assert_eq!(v.rows, 2000);
}

/// Two runs racing to add the same new column with different types: one lands, the other is a
/// conflict (exit 5) that commits nothing and leaves no file behind; the table stays readable.
#[test]
fn racing_runs_that_add_a_column_with_different_types_do_not_corrupt_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let table = d.join("table");
    std::fs::write(d.join("in/base.jsonl"), events(0, 10)).unwrap();
    common::run_job(&job(d, "base.toml", &["in/base.jsonl"], ""), 1);
    std::fs::write(
        d.join("in/a.jsonl"),
        "{\"ts\":\"2026-01-01T00:00:00Z\",\"id\":100,\"extra\":7}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("in/b.jsonl"),
        "{\"ts\":\"2026-01-01T00:00:00Z\",\"id\":200,\"extra\":\"seven\"}\n",
    )
    .unwrap();
    let ja = job(d, "a.toml", &["in/a.jsonl"], "");
    let jb = job(d, "b.toml", &["in/b.jsonl"], "");
    let pause = [("COMPACTOR_PAUSE", "before-commit:800")];
    let ta = std::thread::spawn(move || common::cli_run(&ja, 1, &pause));
    let (ob, _) = common::cli_run(&jb, 1, &pause);
    let (oa, _) = ta.join().unwrap();
    let codes = [oa.status.code(), ob.status.code()];
    assert!(codes.contains(&Some(0)), "{codes:?}");
    assert!(
        codes.contains(&Some(5)),
        "{codes:?}\n{}\n{}",
        common::stderr(&oa),
        common::stderr(&ob)
    );
    let loser = if oa.status.code() == Some(5) {
        &oa
    } else {
        &ob
    };
    assert!(
        common::stderr(loser).contains("extra"),
        "{}",
        common::stderr(loser)
    );
    assert_eq!(common::read_table_records(&table).len(), 11);
    common::assert_no_orphans(&table);
    let v = compactor::verify::verify(&table, &compactor::verify::VerifyOptions { deep: true })
        .unwrap();
    assert!(v.ok(), "{}", v.summary());
}
