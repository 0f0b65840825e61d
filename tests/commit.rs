//! Commits: idempotent re-runs, crash safety at every fail point, the rejected-lines limit and
//! the quarantine, compressed inputs, job-file errors, and partitioned output.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use common::{Record, Val};

/// `n` JSON lines with distinct ids starting at `first`, in a few groups.
fn json_lines(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"group\":\"g{}\",\"msg\":\"line {i}\",\"score\":{}.5}}\n",
                i % 3,
                i % 7
            )
        })
        .collect()
}

fn json_job(dir: &Path, inputs: &[&str], extra: &str) -> PathBuf {
    common::write_job(
        dir,
        "job.toml",
        &common::job_text(inputs, "json", "table", &["group", "id"], extra),
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

fn pending_markers(table: &Path) -> Vec<PathBuf> {
    common::files_under(&table.join("_compactor/pending"))
}

// ---------------------------------------------------------------------------------------------
// (a) re-runs

#[test]
fn rerun_commits_nothing_and_new_files_are_picked_up_alone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.jsonl"), json_lines(0, 50)).unwrap();
    // b repeats a's last 10 lines: duplicates within one run
    std::fs::write(d.join("in/b.jsonl"), json_lines(40, 60)).unwrap();
    let job = json_job(d, &["in/*.jsonl"], "");
    let table = d.join("table");

    let r = common::run_job(&job, 2);
    assert!(r.committed);
    assert_eq!((r.version, r.files_in, r.files_skipped), (Some(0), 2, 0));
    assert_eq!((r.lines_in, r.rows_out, r.duplicates), (110, 100, 10));
    let live = common::live_files(&table);
    let log = common::commits(&table);
    assert_eq!(log.len(), 1);

    let r = common::run_job(&job, 2);
    assert!(!r.committed, "{r:?}");
    assert_eq!(r.version, Some(0));
    assert_eq!((r.files_in, r.files_skipped, r.lines_in), (0, 2, 0));
    assert_eq!(common::commits(&table), log);
    assert_eq!(
        common::live_files(&table)
            .iter()
            .map(|f| &f.logged)
            .collect::<Vec<_>>(),
        live.iter().map(|f| &f.logged).collect::<Vec<_>>()
    );

    // a new file matching the glob is read alone; its rows are not compared with the table's
    std::fs::write(d.join("in/c.jsonl"), json_lines(100, 25)).unwrap();
    let r = common::run_job(&job, 2);
    assert!(r.committed);
    assert_eq!((r.version, r.files_in, r.files_skipped), (Some(1), 1, 2));
    assert_eq!((r.lines_in, r.rows_out, r.duplicates), (25, 25, 0));
    let records = common::read_table_records(&table);
    assert_eq!(ids(&records), (0..125).collect::<Vec<_>>());

    // a consumed file that changed is read again whole
    std::fs::write(d.join("in/c.jsonl"), json_lines(100, 30)).unwrap();
    let r = common::run_job(&job, 2);
    assert!(r.committed);
    assert_eq!((r.version, r.files_in, r.files_skipped), (Some(2), 1, 2));
    assert_eq!(r.lines_in, 30);
    let ledger = compactor::table::Table::open(&table)
        .unwrap()
        .ledger()
        .unwrap();
    // both contents of c.jsonl stay recorded: the old one reappearing is still consumed
    assert_eq!(ledger.files.len(), 4, "{ledger:?}");
    let c: Vec<_> = ledger
        .files
        .iter()
        .filter(|e| e.path.ends_with("c.jsonl"))
        .map(|e| (e.version, e.size))
        .collect();
    assert_eq!(
        c,
        [
            (1, json_lines(100, 25).len() as u64),
            (2, json_lines(100, 30).len() as u64)
        ]
    );

    // content, not path, identifies an input: a re-delivered copy under a new name is skipped
    std::fs::copy(d.join("in/a.jsonl"), d.join("in/a-redelivered.jsonl")).unwrap();
    let r = common::run_job(&job, 2);
    assert!(!r.committed, "{r:?}");
    assert_eq!((r.files_in, r.files_skipped), (0, 4));
    common::assert_no_orphans(&table);
}

/// `job`'s text with `ledger_retention = r`, written as `name`.
fn with_retention(d: &Path, job: &Path, name: &str, r: &str) -> PathBuf {
    common::write_job(
        d,
        name,
        &std::fs::read_to_string(job).unwrap().replace(
            "format = ",
            &format!("ledger_retention = \"{r}\"\nformat = "),
        ),
    )
}

/// Sets `path`'s modification time.
fn set_mtime(path: &Path, t: std::time::SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Sets `path`'s modification time `ago` in the past.
fn age_file(path: &Path, ago: std::time::Duration) {
    set_mtime(path, std::time::SystemTime::now() - ago);
}

#[test]
fn ledger_retention_forgets_old_files_and_never_reads_them_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let two_days = std::time::Duration::from_secs(2 * 86_400);
    std::fs::write(d.join("in/a.jsonl"), json_lines(0, 50)).unwrap();
    // last modified before the retention and never consumed: not read, counted apart
    std::fs::write(d.join("in/old.jsonl"), json_lines(500, 5)).unwrap();
    age_file(&d.join("in/old.jsonl"), two_days);
    let job = json_job(d, &["in/*.jsonl"], "");
    let hour = with_retention(d, &job, "hour.toml", "1h");
    let table = d.join("table");
    let ledger = || {
        compactor::table::Table::open(&table)
            .unwrap()
            .ledger()
            .unwrap()
    };

    let r = common::run_job(&hour, 2);
    assert!(r.committed);
    assert_eq!((r.files_in, r.files_skipped, r.files_expired), (1, 0, 1));
    assert_eq!(r.rows_out, 50);
    let l = ledger();
    assert_eq!(l.files.len(), 1);
    assert!(l.files[0].path.ends_with("a.jsonl") && l.files[0].at.is_some());

    // a consumed file that has grown old is still named by the ledger: skipped as consumed
    age_file(&d.join("in/a.jsonl"), two_days);
    let r = common::run_job(&hour, 2);
    assert!(!r.committed, "{r:?}");
    assert_eq!((r.files_in, r.files_skipped, r.files_expired), (0, 1, 1));

    // A commit under a retention of one second forgets `a` (consumed over a second ago) and
    // keeps `b`, just consumed.
    let second = with_retention(d, &job, "second.toml", "1s");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(d.join("in/b.jsonl"), json_lines(100, 20)).unwrap();
    let r = common::run_job(&second, 2);
    assert!(r.committed, "{r:?}");
    assert_eq!((r.files_in, r.rows_out), (1, 20));
    let l = ledger();
    assert_eq!(l.files.len(), 1, "{l:?}");
    assert!(l.files[0].path.ends_with("b.jsonl"));

    // `a`, forgotten, is older than the retention: not read again (no duplicate rows)
    let r = common::run_job(&hour, 2);
    assert!(!r.committed, "{r:?}");
    assert_eq!((r.files_in, r.files_skipped, r.files_expired), (0, 1, 2));
    assert_eq!(ids(&common::read_table_records(&table)).len(), 70);

    // Dropping the retention (or lengthening it) does not bring `a` back: the ledger keeps how
    // far it was pruned, and no run reads a file older than that.
    let r = common::run_job(&job, 2);
    assert!(!r.committed, "{r:?}");
    assert_eq!((r.files_in, r.files_skipped, r.files_expired), (0, 1, 2));
    // A file given a new modification time is read (how to backfill an old file).
    age_file(&d.join("in/old.jsonl"), std::time::Duration::ZERO);
    let r = common::run_job(&job, 2);
    assert!(r.committed, "{r:?}");
    assert_eq!((r.files_in, r.rows_out), (1, 5));
    assert_eq!(ids(&common::read_table_records(&table)).len(), 75);
    common::assert_no_orphans(&table);
}

#[test]
fn a_longer_retention_does_not_read_forgotten_files_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.jsonl"), json_lines(0, 50)).unwrap();
    let job = json_job(d, &["in/*.jsonl"], "");
    let second = with_retention(d, &job, "second.toml", "1s");
    let hour = with_retention(d, &job, "hour.toml", "1h");
    let table = d.join("table");
    assert!(common::run_job(&second, 2).committed);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(d.join("in/b.jsonl"), json_lines(100, 20)).unwrap();
    // consumes b; the commit forgets a (and a, older than 1s, is not read)
    assert!(common::run_job(&second, 2).committed);
    assert_eq!(ids(&common::read_table_records(&table)).len(), 70);
    // a is within an hour, but the ledger forgot it: not read
    let r = common::run_job(&hour, 2);
    assert!(
        !r.committed,
        "a was consumed already, yet read again: {r:?}"
    );
    assert_eq!((r.files_skipped, r.files_expired), (1, 1));
    assert_eq!(ids(&common::read_table_records(&table)).len(), 70);
}

#[test]
fn a_file_from_a_clock_ahead_is_remembered_until_its_own_time_has_passed() {
    // An entry's time is the later of its commit and its file's modification time, so a file
    // dated in the future stays in the ledger until it is older than the retention itself.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    let ahead = d.join("in/ahead.jsonl");
    std::fs::write(&ahead, json_lines(0, 10)).unwrap();
    set_mtime(
        &ahead,
        std::time::SystemTime::now() + std::time::Duration::from_secs(86_400),
    );
    let job = with_retention(d, &json_job(d, &["in/*.jsonl"], ""), "second.toml", "1s");
    let table = d.join("table");
    assert!(common::run_job(&job, 2).committed);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::write(d.join("in/b.jsonl"), json_lines(100, 5)).unwrap();
    let r = common::run_job(&job, 2);
    assert_eq!((r.files_in, r.files_skipped), (1, 1), "{r:?}");
    let r = common::run_job(&job, 2);
    assert!(
        !r.committed,
        "the file from the future was read again: {r:?}"
    );
    assert_eq!(ids(&common::read_table_records(&table)).len(), 15);
}

#[test]
fn a_run_longer_than_a_concurrent_retention_commits_nothing() {
    // Runs A and B both list c. B commits it; a later commit, more than its retention after
    // B's, forgets c. A, still running, must not commit c again: the ledger no longer names it,
    // but it was pruned past A's start, which A's commit check sees.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/c.jsonl"), json_lines(0, 30)).unwrap();
    let base = json_job(d, &["in/c.jsonl"], "");
    let ja = with_retention(d, &base, "a.toml", "1s");
    let jb = with_retention(d, &base, "b.toml", "1s");
    let jd = common::write_job(
        d,
        "d.toml",
        &std::fs::read_to_string(&ja)
            .unwrap()
            .replace("in/c.jsonl", "in/d.jsonl"),
    );
    let table = d.join("table");
    // the table exists first, so that both runs read the same (empty) ledger
    std::fs::write(d.join("in/d.jsonl"), json_lines(1000, 1)).unwrap();
    assert!(common::run_job(&jd, 1).committed);
    let slow = [("COMPACTOR_PAUSE", "before-commit:5000")];
    let fast = [("COMPACTOR_PAUSE", "before-commit:300")];
    let ta = std::thread::spawn(move || common::cli_run(&ja, 1, &slow));
    let (ob, rb) = common::cli_run(&jb, 1, &fast);
    assert!(ob.status.success(), "{}", common::stderr(&ob));
    assert_eq!(rb.unwrap()["committed"], true);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    std::fs::write(d.join("in/d.jsonl"), json_lines(2000, 1)).unwrap();
    assert!(common::run_job(&jd, 1).committed);
    let (oa, _) = ta.join().unwrap();
    assert_eq!(oa.status.code(), Some(5), "{}", common::stderr(&oa));
    assert!(
        common::stderr(&oa).contains("pruned the ledger past this run's start"),
        "{}",
        common::stderr(&oa)
    );
    assert_eq!(ids(&common::read_table_records(&table)).len(), 32);
    common::assert_no_orphans(&table);
}

#[test]
fn a_zero_ledger_retention_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = common::job_text(&["in/*.jsonl"], "json", "table", &["id"], "");
    let plain = common::write_job(d, "plain.toml", &text);
    let job = with_retention(d, &plain, "job.toml", "0s");
    let err = compactor::job::Job::load(&job).unwrap_err();
    assert!(
        format!("{err:#}").contains("would forget every file"),
        "{err:#}"
    );
}

// ---------------------------------------------------------------------------------------------
// (b) crashes

fn crash(job: &Path, failpoint: &str) -> String {
    let (out, report) = common::cli_run(job, 2, &[("COMPACTOR_FAILPOINT", failpoint)]);
    assert!(
        !out.status.success() && out.status.code() != Some(0),
        "the run did not crash at {failpoint}: {:?}\n{}",
        out.status,
        common::stderr(&out)
    );
    assert!(report.is_none(), "a crashed run wrote a report");
    common::stderr(&out)
}

fn orphans(table: &Path) -> Vec<PathBuf> {
    let live: Vec<PathBuf> = common::live_files(table)
        .into_iter()
        .map(|f| f.path)
        .collect();
    common::parquet_files_under(&table.canonicalize().unwrap())
        .into_iter()
        .filter(|p| !live.contains(p))
        .collect()
}

/// Crash before the commit: the table is as it was; the next run commits and cleans up.
#[test]
fn crash_before_commit_leaves_table_unchanged() {
    for failpoint in ["before-segments", "after-segments", "before-commit"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("in")).unwrap();
        std::fs::write(d.join("in/a.jsonl"), json_lines(0, 40)).unwrap();
        let job = json_job(d, &["in"], "max_segment_rows = 16\n");
        let table = d.join("table");

        // a brand-new table
        let err = crash(&job, failpoint);
        assert!(err.contains(failpoint), "{err}");
        assert!(
            common::commits(&table).is_empty(),
            "{failpoint}: a commit exists"
        );
        assert_eq!(common::table_version(&table), None, "{failpoint}");
        let left = orphans(&table);
        if failpoint == "before-segments" {
            assert!(left.is_empty(), "{failpoint}: {left:?}");
        } else {
            assert!(
                !left.is_empty(),
                "{failpoint}: the crash left no segment to clean"
            );
        }
        let (out, rep) = common::cli_run(&job, 2, &[]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let rep = rep.unwrap();
        assert_eq!(rep["committed"], true);
        assert_eq!(rep["version"], 0);
        assert_eq!(rep["rows_out"], 40);
        assert!(rep["segments"].as_u64().unwrap() >= 3);
        common::assert_no_orphans(&table);
        assert!(pending_markers(&table).is_empty());
        assert_eq!(
            ids(&common::read_table_records(&table)),
            (0..40).collect::<Vec<_>>()
        );

        // an existing table
        std::fs::write(d.join("in/b.jsonl"), json_lines(40, 40)).unwrap();
        let before: Vec<String> = common::live_files(&table)
            .into_iter()
            .map(|f| f.logged)
            .collect();
        let log = common::commits(&table);
        crash(&job, failpoint);
        assert_eq!(common::table_version(&table), Some(0), "{failpoint}");
        assert_eq!(common::commits(&table), log, "{failpoint}");
        let after: Vec<String> = common::live_files(&table)
            .into_iter()
            .map(|f| f.logged)
            .collect();
        assert_eq!(after, before, "{failpoint}");
        assert_eq!(
            ids(&common::read_table_records(&table)),
            (0..40).collect::<Vec<_>>()
        );
        let (out, rep) = common::cli_run(&job, 2, &[]);
        assert!(out.status.success(), "{}", common::stderr(&out));
        let rep = rep.unwrap();
        assert_eq!(rep["committed"], true);
        assert_eq!(rep["version"], 1);
        assert_eq!(rep["files_in"], 1);
        assert_eq!(rep["files_skipped"], 1);
        assert_eq!(rep["rows_out"], 40);
        common::assert_no_orphans(&table);
        assert!(pending_markers(&table).is_empty());
        assert_eq!(
            ids(&common::read_table_records(&table)),
            (0..80).collect::<Vec<_>>()
        );
    }
}

/// Crash right after the commit: the commit stands; the next run removes the pending marker,
/// deletes nothing that is live, and commits nothing (the input was consumed).
#[test]
fn crash_after_commit_keeps_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.jsonl"), json_lines(0, 30)).unwrap();
    let job = json_job(d, &["in"], "max_segment_rows = 8\n");
    let table = d.join("table");

    crash(&job, "after-commit");
    assert_eq!(common::table_version(&table), Some(0));
    assert_eq!(common::commits(&table).len(), 1);
    assert_eq!(pending_markers(&table).len(), 1, "the marker of the run");
    let live = common::live_files(&table);
    assert_eq!(live.len(), 4);
    assert_eq!(
        ids(&common::read_table_records(&table)),
        (0..30).collect::<Vec<_>>()
    );

    let (out, rep) = common::cli_run(&job, 2, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rep = rep.unwrap();
    assert_eq!(rep["committed"], false);
    assert_eq!(rep["version"], 0);
    assert_eq!(rep["files_skipped"], 1);
    assert!(pending_markers(&table).is_empty());
    assert_eq!(common::live_files(&table).len(), 4);
    for f in &live {
        assert!(f.path.exists(), "{} was deleted", f.path.display());
    }
    common::assert_no_orphans(&table);

    // and the table goes on normally
    std::fs::write(d.join("in/b.jsonl"), json_lines(30, 5)).unwrap();
    let r = common::run_job(&job, 1);
    assert_eq!((r.committed, r.version, r.rows_out), (true, Some(1), 5));
    assert_eq!(
        ids(&common::read_table_records(&table)),
        (0..35).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// (c) rejected lines

/// 100 lines; the bad ones at `bad` (1-based) are of several kinds.
fn input_with_bad_lines(bad: &[u64]) -> (Vec<u8>, Vec<Vec<u8>>) {
    input_of_lines_with_bad_ones(100, bad)
}

/// `n` lines; the bad ones at `bad` (1-based) are of several kinds.
fn input_of_lines_with_bad_ones(n: u64, bad: &[u64]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let kinds: [&[u8]; 6] = [
        b"not json at all",
        b"",
        b"[1, 2]",
        b"{\"id\": 1, \"id\": 2}",
        b"{\"id\": 5, \"msg\": \"\xff\xfe\"}",
        b"{\"id\": 7,",
    ];
    let mut out = Vec::new();
    let mut bad_raw = Vec::new();
    for line in 1..=n {
        if let Some(k) = bad.iter().position(|&b| b == line) {
            let raw = kinds[k % kinds.len()];
            out.extend_from_slice(raw);
            bad_raw.push(raw.to_vec());
        } else {
            out.extend_from_slice(json_lines(line, 1).trim_end().as_bytes());
        }
        out.push(b'\n');
    }
    (out, bad_raw)
}

fn quarantine_entries(table: &Path) -> Vec<serde_json::Value> {
    let files = common::files_under(&table.join("_compactor/quarantine"));
    assert_eq!(files.len(), 1, "{files:?}");
    common::quarantine(table)
}

fn check_quarantine(entries: &[serde_json::Value], input: &Path, bad: &[u64], raw: &[Vec<u8>]) {
    let lines: Vec<u64> = entries
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, bad);
    for (e, raw) in entries.iter().zip(raw) {
        assert_eq!(
            Path::new(e["file"].as_str().unwrap()),
            input,
            "{e}: names the input file"
        );
        assert!(
            !e["reason"].as_str().unwrap().is_empty(),
            "{e}: has a reason"
        );
        match std::str::from_utf8(raw) {
            Ok(s) => assert_eq!(e["raw"].as_str(), Some(s), "{e}"),
            Err(_) => {
                let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(e["raw_hex"].as_str(), Some(hex.as_str()), "{e}");
            }
        }
    }
}

#[test]
fn too_many_rejected_lines_commit_nothing() {
    let bad = [3u64, 17, 18, 50, 77, 100];
    let (input, raw) = input_with_bad_lines(&bad);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("in.jsonl"), &input).unwrap();
    let in_path = d.join("in.jsonl");
    let table = d.join("table");

    let job = json_job(d, &["in.jsonl"], "");
    let (out, rep) = common::cli_run(&job, 2, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", common::stderr(&out));
    assert!(rep.is_none());
    let err = common::stderr(&out);
    assert!(
        err.contains("6 of 100") && err.contains("quarantine"),
        "{err}"
    );
    assert!(common::commits(&table).is_empty());
    assert_eq!(common::table_version(&table), None);
    assert!(common::parquet_files_under(&table).is_empty());
    check_quarantine(&quarantine_entries(&table), &in_path, &bad, &raw);

    // the same input under a looser limit commits, and the quarantine lists the same lines
    std::fs::remove_dir_all(&table).unwrap();
    let job = json_job(d, &["in.jsonl"], "\n[limits]\nmax_rejected_share = 0.5\n");
    let (out, rep) = common::cli_run(&job, 2, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let rep = rep.unwrap();
    assert_eq!(rep["committed"], true);
    assert_eq!(rep["rejected"], 6);
    assert_eq!(rep["rows_out"], 94);
    let q = PathBuf::from(rep["quarantine"].as_str().unwrap());
    assert!(q.exists());
    check_quarantine(&quarantine_entries(&table), &in_path, &bad, &raw);
    let good: Vec<i64> = (1..=100).filter(|l| !bad.contains(&(*l as u64))).collect();
    assert_eq!(ids(&common::read_table_records(&table)), good);
}

/// Inputs are parsed a chunk (`DEFAULT_CHUNK_BYTES`) per task, several at once, and each
/// chunk numbers its lines from 1: the quarantine must still name each bad line's number in
/// the whole file, in every chunk.
#[test]
fn rejected_lines_are_numbered_in_the_file_across_chunks() {
    let n = 400_000;
    let bad = [1u64, 2, 99_999, 140_000, 280_001, 399_999, 400_000];
    let (input, raw) = input_of_lines_with_bad_ones(n, &bad);
    let chunk = compactor::job::DEFAULT_CHUNK_BYTES;
    assert!(input.len() > 2 * chunk, "at least 3 chunks");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), &input).unwrap();
    let job = json_job(dir.path(), &["in.jsonl"], "");
    for threads in [1, 2] {
        let table = dir.path().join("table");
        let _ = std::fs::remove_dir_all(&table);
        let r = common::run_job(&job, threads);
        assert_eq!((r.lines_in, r.rejected), (n, bad.len() as u64));
        check_quarantine(
            &quarantine_entries(&table),
            &std::fs::canonicalize(dir.path().join("in.jsonl")).unwrap(),
            &bad,
            &raw,
        );
    }
}

/// Exactly at the limit (1 of 100 = 1%) is not above it.
#[test]
fn rejected_share_at_the_limit_commits() {
    let (input, raw) = input_with_bad_lines(&[42]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), &input).unwrap();
    let job = json_job(dir.path(), &["in.jsonl"], "");
    let (out, rep) = common::cli_run(&job, 1, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(rep.unwrap()["rejected"], 1);
    check_quarantine(
        &quarantine_entries(&dir.path().join("table")),
        &dir.path().join("in.jsonl"),
        &[42],
        &raw,
    );
}

// ---------------------------------------------------------------------------------------------
// (d) compressed inputs

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_and_zstd_inputs_give_the_same_rows() {
    let cfg = compactor_bench_data::GenConfig::new(compactor_bench_data::GenFormat::Json, 3000, 11);
    let (plain, _) = compactor_bench_data::generate_to_vec(&cfg).unwrap();
    let half = plain.len() / 2
        + plain[plain.len() / 2..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap()
        + 1;
    // odd split points on purpose: members and frames need not end at a line
    let (a, b) = plain.split_at(half - 17);
    let variants: Vec<(&str, Vec<u8>)> = vec![
        ("plain.jsonl", plain.clone()),
        ("events.jsonl.gz", gzip(&plain)),
        ("multi-member.gz", [gzip(a), gzip(b)].concat()),
        ("events.jsonl.zst", zstd::encode_all(&plain[..], 3).unwrap()),
        (
            "multi-frame.log",
            [
                zstd::encode_all(a, 1).unwrap(),
                zstd::encode_all(b, 19).unwrap(),
            ]
            .concat(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut reference: Option<common::FileRows> = None;
    for (i, (name, bytes)) in variants.iter().enumerate() {
        let sub = dir.path().join(format!("v{i}"));
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join(name), bytes).unwrap();
        let job = common::write_job(
            &sub,
            "job.toml",
            &common::job_text(&[name], "json", "table", &["event", "ts"], ""),
        );
        let r = common::run_job(&job, 2);
        assert_eq!(r.lines_in, 3000, "{name}");
        assert_eq!(r.bytes_decoded, plain.len() as u64, "{name}");
        assert_eq!(r.bytes_in, bytes.len() as u64, "{name}");
        let rows = common::read_table_ordered(&sub.join("table"));
        match &reference {
            None => {
                assert!(rows.rows.len() > 2000);
                reference = Some(rows);
            }
            Some(want) => {
                assert_eq!(rows.columns, want.columns, "{name}");
                assert!(rows.rows == want.rows, "{name}: rows differ from plain");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (e) job file errors

#[test]
fn unknown_job_key_is_a_usage_error_naming_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), json_lines(0, 3)).unwrap();
    // line 7 holds the typo
    let text = "[input]\npaths = [\"in.jsonl\"]\nformat = \"json\"\n\n[output]\npath = \"table\"\nsort_bu = [\"id\"]\n";
    assert_eq!(text.lines().nth(6), Some("sort_bu = [\"id\"]"));
    let job = common::write_job(dir.path(), "job.toml", text);
    let (out, rep) = common::cli_run(&job, 1, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    assert!(rep.is_none());
    let err = common::stderr(&out);
    assert!(err.contains("sort_bu") && err.contains("line 7"), "{err}");
    assert!(!dir.path().join("table").exists(), "nothing was created");

    let text = "[input]\npaths = [\"in.jsonl\"]\nformat = \"json\"\n[output]\npath = \"table\"\n[dedupe]\nmode = \"exact\"\n";
    let job = common::write_job(dir.path(), "job2.toml", text);
    let (out, _) = common::cli_run(&job, 1, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(err.contains("dedupe") && err.contains("line 6"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// (f) partitions

/// Directory value of the null partition (the Hive convention Delta readers expect).
const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

fn expected_micros(ts: &str) -> i64 {
    let with_zone = if ts.len() == 19 {
        format!("{}Z", ts.replace(' ', "T"))
    } else {
        ts.to_string()
    };
    chrono::DateTime::parse_from_rfc3339(&with_zone)
        .unwrap()
        .timestamp_micros()
}

#[test]
fn partitioned_by_day_and_hour() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    // Local times near midnight in other zones land on other UTC days.
    let stamps = [
        ("2026-01-01T00:00:00Z", "2026-01-01"),
        ("2026-01-01T23:59:59.999999Z", "2026-01-01"),
        ("2026-01-01T23:30:00-02:00", "2026-01-02"),
        ("2026-01-02T01:00:00+02:00", "2026-01-01"),
        ("2026-01-02T12:00:00Z", "2026-01-02"),
        ("2026-01-03T00:00:00+00:00", "2026-01-03"),
        ("2026-01-03 05:06:07", "2026-01-03"),
        ("2026-01-02T23:59:59-01:00", "2026-01-03"),
    ];
    let mut input = String::new();
    for (i, (ts, _)) in stamps.iter().enumerate() {
        input.push_str(&format!(
            "{{\"id\":{i},\"ts\":\"{ts}\",\"user\":\"u{}\"}}\n",
            i % 2
        ));
        // and a duplicate of each
        input.push_str(&format!(
            "{{\"user\":\"u{}\",\"ts\":\"{ts}\",\"id\":{i}}}\n",
            i % 2
        ));
    }
    // rows without a timestamp go to the null partition
    input.push_str("{\"id\":8,\"user\":\"u0\"}\n{\"id\":9,\"user\":\"u1\",\"ts\":null}\n");
    std::fs::write(d.join("in/events.jsonl"), &input).unwrap();
    let before: Vec<PathBuf> = common::files_under(d);

    for (by, name) in [("day", "daily"), ("hour", "hourly")] {
        let job = common::write_job(
            d,
            &format!("{name}.toml"),
            &common::job_text(
                &["in/events.jsonl"],
                "json",
                name,
                &["user"],
                &format!("\n[output.partition]\ncolumn = \"ts\"\nby = \"{by}\"\n"),
            ),
        );
        let r = common::run_job(&job, 2);
        assert_eq!((r.rows_out, r.duplicates), (10, 8), "{by}");
        let table = d.join(name);
        let schema = compactor::table::Table::open(&table)
            .unwrap()
            .schema()
            .unwrap()
            .unwrap();
        assert!(schema.field_with_name("dt").is_ok(), "{schema:?}");

        let files = common::live_files(&table);
        let mut seen_ids = Vec::new();
        let mut dirs = Vec::new();
        for f in &files {
            assert_eq!(f.partitions.len(), 1, "{f:?}");
            let (k, v) = &f.partitions[0];
            assert_eq!(k, "dt");
            assert!(
                f.path
                    .starts_with(table.canonicalize().unwrap().join(format!("dt={v}"))),
                "{f:?}"
            );
            dirs.push(v.clone());
            let rows = common::read_parquet(&f.path);
            assert!(
                rows.columns.iter().all(|(n, _)| n != "dt"),
                "the partition column is in the file: {:?}",
                rows.columns
            );
            let ts = rows.columns.iter().position(|(n, _)| n == "ts").unwrap();
            let id = rows.columns.iter().position(|(n, _)| n == "id").unwrap();
            for row in &rows.rows {
                let Val::Int(i) = row[id] else { panic!() };
                seen_ids.push(i);
                if v == NULL_PARTITION {
                    assert_eq!(row[ts], Val::Null, "row {i} in the null partition");
                    continue;
                }
                let Val::Ts(t) = row[ts] else {
                    panic!("row {i}: ts is {:?} in partition {v}", row[ts])
                };
                assert_eq!(t, expected_micros(stamps[i as usize].0), "row {i}");
                let utc = chrono::DateTime::from_timestamp_micros(t).unwrap();
                let want = if by == "day" {
                    assert_eq!(stamps[i as usize].1, v.as_str(), "row {i}");
                    utc.format("%Y-%m-%d").to_string()
                } else {
                    utc.format("%Y-%m-%d-%H").to_string()
                };
                assert_eq!(&want, v, "row {i} in the wrong partition");
            }
        }
        seen_ids.sort();
        assert_eq!(seen_ids, (0..10).collect::<Vec<_>>());
        dirs.sort();
        dirs.dedup();
        if by == "day" {
            assert_eq!(
                dirs,
                ["2026-01-01", "2026-01-02", "2026-01-03", NULL_PARTITION]
            );
            assert_eq!(files.len(), 4);
        } else {
            let mut hours: Vec<String> = stamps
                .iter()
                .map(|(ts, _)| {
                    chrono::DateTime::from_timestamp_micros(expected_micros(ts))
                        .unwrap()
                        .format("%Y-%m-%d-%H")
                        .to_string()
                })
                .collect();
            hours.push(NULL_PARTITION.to_string());
            hours.sort();
            hours.dedup();
            assert_eq!(dirs, hours);
            assert_eq!(files.len(), hours.len());
        }
        common::assert_no_orphans(&table);
    }

    // nothing was written outside the two tables (besides the job files)
    let after: Vec<PathBuf> = common::files_under(d)
        .into_iter()
        .filter(|p| !p.starts_with(d.join("daily")) && !p.starts_with(d.join("hourly")))
        .filter(|p| p.extension().is_none_or(|e| e != "toml"))
        .collect();
    assert_eq!(after, before);
}

// ---------------------------------------------------------------------------------------------
// exit codes 4 and 5

#[test]
fn memory_budget_and_compaction_lock_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.jsonl"), json_lines(0, 200)).unwrap();
    let job = json_job(d, &["in"], "");
    let table = d.join("table");
    let job_s = job.to_str().unwrap();

    let out = common::cli(&["run", job_s, "--memory", "1KiB", "--no-progress"], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", common::stderr(&out));
    assert!(common::stderr(&out).contains("--memory"));
    assert!(common::commits(&table).is_empty());
    assert!(common::parquet_files_under(&table).is_empty());

    // a compaction holds the table's compaction lock: runs are not blocked by it (writers
    // commit optimistically), a second compaction is (exit 5)
    std::fs::create_dir_all(table.join("_compactor")).unwrap();
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(table.join("_compactor/compact.lock"))
        .unwrap();
    lock.try_lock().unwrap();
    let out = common::cli(&["run", job_s, "--no-progress"], &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_eq!(common::table_version(&table), Some(0));
    let table_s = table.to_str().unwrap();
    let out = common::cli(&["compact", table_s, "--policy", "all"], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("compaction"),
        "{}",
        common::stderr(&out)
    );
    lock.unlock().unwrap();
    let out = common::cli(&["compact", table_s, "--policy", "all"], &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

// ---------------------------------------------------------------------------------------------
// input paths

/// A job in a folder whose name holds glob metacharacters finds its inputs: relative plain
/// paths, relative globs (the folder is literal text) and absolute paths.
#[test]
fn job_folder_with_glob_characters_finds_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("jobs [1] *?");
    std::fs::create_dir_all(d.join("logs")).unwrap();
    std::fs::create_dir_all(d.join("more")).unwrap();
    std::fs::write(d.join("a.jsonl"), json_lines(0, 5)).unwrap();
    std::fs::write(d.join("logs/b.jsonl"), json_lines(5, 5)).unwrap();
    std::fs::write(d.join("logs/c.jsonl"), json_lines(10, 5)).unwrap();
    std::fs::write(d.join("logs/skip.txt"), json_lines(100, 5)).unwrap();
    std::fs::write(d.join("more/d.jsonl"), json_lines(15, 5)).unwrap();
    // a sibling folder the unescaped pattern `jobs [1] *?/logs/*.jsonl` would match
    let decoy = dir.path().join("jobs 1 xy/logs");
    std::fs::create_dir_all(&decoy).unwrap();
    std::fs::write(decoy.join("e.jsonl"), json_lines(200, 5)).unwrap();
    let abs = d.join("abs.jsonl");
    std::fs::write(&abs, json_lines(20, 5)).unwrap();
    let job = json_job(
        &d,
        &["a.jsonl", "logs/*.jsonl", "more", abs.to_str().unwrap()],
        "",
    );
    let r = common::run_job(&job, 1);
    assert_eq!((r.files_in, r.rows_out), (5, 25), "{r:?}");
    assert_eq!(
        ids(&common::read_table_records(&d.join("table"))),
        (0..25).collect::<Vec<_>>()
    );
}

/// Regression: the ledger once keyed inputs by the path as written, so running the same job
/// from another working directory ingested its inputs a second time.
#[test]
fn rerun_from_another_working_directory_commits_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("jobs/in")).unwrap();
    std::fs::write(d.join("jobs/in/a.jsonl"), json_lines(0, 10)).unwrap();
    std::fs::write(
        d.join("jobs/job.toml"),
        "[input]\npaths = [\"in/*.jsonl\"]\nformat = \"json\"\n[output]\npath = \"table\"\nsort_by = [\"id\"]\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_compactor-test-cli");
    let first = std::process::Command::new(bin)
        .args(["run", "job.toml"])
        .current_dir(d.join("jobs"))
        .output()
        .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let second = std::process::Command::new(bin)
        .args(["run", "jobs/job.toml"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("nothing committed"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(common::table_version(&d.join("jobs/table")), Some(0));
}

/// Job mistakes found only at run time (an unknown sort column) are usage errors: exit 2.
#[test]
fn unknown_sort_column_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("a.jsonl"), json_lines(0, 3)).unwrap();
    std::fs::write(
        d.join("job.toml"),
        "[input]\npaths = [\"a.jsonl\"]\nformat = \"json\"\n[output]\npath = \"t\"\nsort_by = [\"nope\"]\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_compactor-test-cli"))
        .args(["run", "job.toml"])
        .current_dir(d)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

/// A field named like the partition column is a rejected line, not a run that fails forever.
#[test]
fn a_field_named_like_the_partition_column_is_quarantined() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let mut text = String::new();
    for i in 0..20 {
        text.push_str(&format!(
            "{{\"id\":{i},\"ts\":\"2026-01-01T00:00:{:02}Z\"}}\n",
            i
        ));
    }
    text.push_str("{\"id\":99,\"ts\":\"2026-01-01T00:00:00Z\",\"dt\":\"../../etc\"}\n");
    std::fs::write(d.join("a.jsonl"), text).unwrap();
    std::fs::write(
        d.join("job.toml"),
        "[input]\npaths = [\"a.jsonl\"]\nformat = \"json\"\n[output]\npath = \"t\"\nsort_by = [\"id\"]\n[output.partition]\ncolumn = \"ts\"\nby = \"day\"\n[limits]\nmax_rejected_share = 0.1\n",
    )
    .unwrap();
    let r = common::run_job(&d.join("job.toml"), 2);
    assert!(r.committed);
    assert_eq!((r.rows_out, r.rejected), (20, 1));
    let q = std::fs::read_to_string(r.quarantine.unwrap()).unwrap();
    assert!(q.contains("reserved") && q.contains("\"line\":21"), "{q}");
}
