//! `compactor vacuum`: removed files go after the retention, orphans by their mtime, live files
//! and live writers' files never; dry runs delete nothing; the table reads the same after.
//!
//! There is no compaction command yet, so removes are written into the log by hand
//! ([`remove_commit`]), in the shape the kernel writes.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use compactor::pending::{self, PendingMarker};
use compactor::segment;
use compactor::vacuum::{self, VacuumOptions, VacuumReport};

const DAY: Duration = Duration::from_secs(86_400);

/// `n` JSON lines with distinct ids starting at `first`.
fn json_lines(first: u64, n: u64) -> String {
    (first..first + n)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"group\":\"g{}\",\"msg\":\"line {i}\"}}\n",
                i % 3
            )
        })
        .collect()
}

/// A table of 100 rows in 4 segments (30 rows each at most) at `<d>/table`; returns the job
/// and the table's canonical root.
fn table_of_four_segments(d: &Path) -> (PathBuf, PathBuf) {
    std::fs::create_dir(d.join("in")).unwrap();
    std::fs::write(d.join("in/a.jsonl"), json_lines(0, 100)).unwrap();
    let job = common::write_job(
        d,
        "job.toml",
        &common::job_text(
            &["in/*.jsonl"],
            "json",
            "table",
            &["group", "id"],
            "max_segment_rows = 30\n",
        ),
    );
    let r = common::run_job(&job, 2);
    assert!(r.committed, "{r:?}");
    let root = d.join("table").canonicalize().unwrap();
    assert_eq!(common::live_files(&root).len(), 4);
    (job, root)
}

fn ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn time_of_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms as u64)
}

/// Appends a commit that removes the given live files (paths as in the log) with the given
/// `deletionTimestamp`s, and re-adds (verbatim `add` lines of earlier commits) the given
/// paths. Returns its version.
fn remove_commit(root: &Path, removes: &[(&str, i64)], re_adds: &[&str]) -> u64 {
    let version = common::table_version(root).unwrap() + 1;
    let now = ms(SystemTime::now());
    let mut lines = vec![serde_json::json!({"commitInfo": {
        "timestamp": now,
        "operation": "DELETE",
        "operationParameters": {},
        "engineInfo": "tests/vacuum.rs",
    }})];
    for (path, at) in removes {
        let size = std::fs::metadata(root.join(common::percent_decode(path)))
            .unwrap()
            .len();
        lines.push(serde_json::json!({"remove": {
            "path": path,
            "deletionTimestamp": at,
            "dataChange": true,
            "extendedFileMetadata": true,
            "partitionValues": {},
            "size": size,
        }}));
    }
    for path in re_adds {
        let add = common::commits(root)
            .iter()
            .flat_map(|c| {
                std::fs::read_to_string(root.join("_delta_log").join(c))
                    .unwrap()
                    .lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .find(|v| v.pointer("/add/path").and_then(|p| p.as_str()) == Some(path))
            .unwrap_or_else(|| panic!("no add of {path} in the log"));
        lines.push(add);
    }
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let p = root.join(format!("_delta_log/{version:020}.json"));
    std::fs::write(&p, text).unwrap();
    assert_eq!(common::table_version(root), Some(version));
    version
}

fn set_mtime(p: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

/// Writes `p` (and its directory) with modification time `t`.
fn file_at(p: &Path, t: SystemTime) {
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, b"not really parquet").unwrap();
    set_mtime(p, t);
}

fn vacuum_at(root: &Path, retain: Duration, now: SystemTime) -> VacuumReport {
    vacuum::vacuum(
        root,
        &VacuumOptions {
            retain,
            dry_run: false,
            now,
        },
    )
    .unwrap()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap().to_string_lossy().into_owned()
}

#[test]
fn removed_files_go_after_the_retention_and_live_files_never() {
    let dir = tempfile::tempdir().unwrap();
    let (job, root) = table_of_four_segments(dir.path());
    let files = common::live_files(&root);
    let now = SystemTime::now();
    let old = ms(now - 10 * DAY);
    let recent = ms(now - DAY);
    // files[0] removed 10 days ago, files[1] a day ago; files[2] removed 10 days ago but
    // re-added since: live again, and in the log's removes with an old timestamp
    remove_commit(
        &root,
        &[
            (&files[0].logged, old),
            (&files[1].logged, recent),
            (&files[2].logged, old),
        ],
        &[],
    );
    remove_commit(&root, &[], &[&files[2].logged]);
    let live: Vec<String> = common::live_files(&root)
        .into_iter()
        .map(|f| f.logged)
        .collect();
    assert_eq!(live, [files[2].logged.clone(), files[3].logged.clone()]);
    // live files with an old mtime: only their being live keeps them
    for f in &files[2..] {
        set_mtime(&f.path, now - 30 * DAY);
    }
    let rows = common::read_table_records(&root);
    assert_eq!(rows.len(), 100 - 30 - 30, "the removes hide their rows");

    let size0 = std::fs::metadata(&files[0].path).unwrap().len();
    let r = vacuum_at(&root, vacuum::DEFAULT_RETAIN, now);
    assert_eq!(r.deleted, [rel(&root, &files[0].path)], "{r:?}");
    assert_eq!(r.bytes_freed, size0);
    assert_eq!(
        (r.kept_retained, r.kept_in_progress, r.dry_run),
        (1, 0, false)
    );
    assert!(!files[0].path.exists());
    assert!(files[1..].iter().all(|f| f.path.exists()));

    // the boundary: deleted once its deletionTimestamp is `retain` old, not a millisecond before
    let due = time_of_ms(recent) + vacuum::DEFAULT_RETAIN;
    let r = vacuum_at(
        &root,
        vacuum::DEFAULT_RETAIN,
        due - Duration::from_millis(1),
    );
    assert!(r.deleted.is_empty(), "{r:?}");
    assert_eq!(r.kept_retained, 1);
    let size1 = std::fs::metadata(&files[1].path).unwrap().len();
    let r = vacuum_at(&root, vacuum::DEFAULT_RETAIN, due);
    assert_eq!(r.deleted, [rel(&root, &files[1].path)], "{r:?}");
    assert_eq!((r.bytes_freed, r.kept_retained), (size1, 0));

    // retain 0: nothing left to delete; the live files stay
    let r = vacuum_at(&root, Duration::ZERO, SystemTime::now());
    assert!(r.deleted.is_empty(), "{r:?}");
    assert!(files[2..].iter().all(|f| f.path.exists()));
    assert_eq!(common::read_table_records(&root), rows);

    // and the table takes the next run as before
    std::fs::write(dir.path().join("in/b.jsonl"), json_lines(100, 10)).unwrap();
    let r = common::run_job(&job, 2);
    assert!(r.committed, "{r:?}");
    assert_eq!(common::read_table_records(&root).len(), rows.len() + 10);
}

#[test]
fn orphans_go_by_their_mtime_and_hidden_or_linked_files_are_never_touched() {
    let dir = tempfile::tempdir().unwrap();
    let (_job, root) = table_of_four_segments(dir.path());
    let rows = common::read_table_records(&root);
    let now = SystemTime::now();
    let old = now - 30 * DAY;
    let orphans = [
        "part-crashed-00000-c0123456789abcdef.parquet",
        "part-crashed-00001.parquet.tmp",
        "stray.txt",
        "day=2026-01-01/part-x-00000.parquet",
        "_p=1/part-x-00000.parquet",
    ];
    for o in orphans {
        file_at(&root.join(o), old);
    }
    file_at(&root.join("part-recent-00000.parquet.tmp"), now - DAY);
    let hidden = [
        ".hidden.parquet",
        "_SUCCESS",
        "_hidden/part-x.parquet",
        ".dot/part-x.parquet",
        "day=2026-01-01/.part-x.parquet.crc",
        "_compactor/part-x.parquet",
    ];
    for h in hidden {
        file_at(&root.join(h), old);
    }
    // links out of the table: neither followed nor deleted
    let outside = dir.path().join("outside");
    file_at(&outside.join("victim.parquet"), old);
    std::os::unix::fs::symlink(outside.join("victim.parquet"), root.join("link.parquet")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("linkdir")).unwrap();
    let before_sizes: u64 = orphans
        .iter()
        .map(|o| std::fs::metadata(root.join(o)).unwrap().len())
        .sum();

    let r = vacuum_at(&root, vacuum::DEFAULT_RETAIN, now);
    let mut want: Vec<String> = orphans.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(r.deleted, want, "{r:?}");
    assert_eq!(r.bytes_freed, before_sizes);
    assert_eq!((r.kept_retained, r.kept_in_progress), (1, 0), "{r:?}");
    assert!(orphans.iter().all(|o| !root.join(o).exists()));
    assert!(root.join("part-recent-00000.parquet.tmp").exists());
    assert!(hidden.iter().all(|h| root.join(h).exists()));
    assert!(outside.join("victim.parquet").exists());
    assert!(root.join("link.parquet").symlink_metadata().is_ok());
    assert!(common::live_files(&root).iter().all(|f| f.path.exists()));
    assert_eq!(common::read_table_records(&root), rows);

    // once it is old enough, the recent one goes too
    let r = vacuum_at(&root, Duration::ZERO, now);
    assert_eq!(r.deleted, ["part-recent-00000.parquet.tmp"], "{r:?}");
    assert!(outside.join("victim.parquet").exists());
    assert_eq!(common::read_table_records(&root), rows);
}

#[test]
fn a_live_writers_files_are_kept_until_it_dies() {
    let dir = tempfile::tempdir().unwrap();
    let (_job, root) = table_of_four_segments(dir.path());
    let old = SystemTime::now() - 30 * DAY;
    let mut marker = PendingMarker::create(&pending::dir(&root), "writer-1").unwrap();
    let stem = root.join("part-writer-1-00000");
    marker.record(&stem).unwrap();
    let tmp = segment::temp_path(&stem);
    let done = segment::final_path(&stem, 0x1234);
    file_at(&tmp, old);
    file_at(&done, old);
    // a file the marker does not name is not the writer's
    let other = segment::temp_path(&root.join("part-writer-1-000000"));
    file_at(&other, old);

    let r = vacuum_at(&root, Duration::ZERO, SystemTime::now());
    assert_eq!(r.deleted, [rel(&root, &other)], "{r:?}");
    assert_eq!((r.kept_in_progress, r.kept_retained), (2, 0), "{r:?}");
    assert!(tmp.exists() && done.exists());

    // the writer dies: its marker stays, unlocked
    drop(marker);
    let r = vacuum_at(&root, Duration::ZERO, SystemTime::now());
    let mut want = vec![rel(&root, &tmp), rel(&root, &done)];
    want.sort();
    assert_eq!(r.deleted, want, "{r:?}");
    assert_eq!(r.kept_in_progress, 0);
    assert!(!tmp.exists() && !done.exists());
    assert!(common::live_files(&root).iter().all(|f| f.path.exists()));
}

#[test]
fn a_dry_run_deletes_nothing_and_reports_what_a_run_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (_job, root) = table_of_four_segments(dir.path());
    let files = common::live_files(&root);
    let now = SystemTime::now();
    remove_commit(&root, &[(&files[0].logged, ms(now - 10 * DAY))], &[]);
    file_at(&root.join("part-orphan-00000.parquet.tmp"), now - 10 * DAY);
    file_at(&root.join("part-orphan-00001.parquet.tmp"), now);
    let before = common::files_under(&root);

    let opts = VacuumOptions {
        retain: vacuum::DEFAULT_RETAIN,
        dry_run: true,
        now,
    };
    let dry = vacuum::vacuum(&root, &opts).unwrap();
    assert_eq!(
        common::files_under(&root),
        before,
        "a dry run deleted files"
    );
    assert!(dry.dry_run);
    assert_eq!(dry.deleted.len(), 2, "{dry:?}");
    assert!(
        dry.summary().contains("would delete 2 file(s)"),
        "{}",
        dry.summary()
    );

    let real = vacuum::vacuum(
        &root,
        &VacuumOptions {
            dry_run: false,
            ..opts
        },
    )
    .unwrap();
    assert!(!real.dry_run);
    assert_eq!(real.deleted, dry.deleted);
    assert_eq!(
        (real.bytes_freed, real.kept_retained, real.kept_in_progress),
        (dry.bytes_freed, dry.kept_retained, dry.kept_in_progress)
    );
    assert!(
        real.summary().contains("deleted 2 file(s)"),
        "{}",
        real.summary()
    );
    assert!(dry.deleted.iter().all(|p| !root.join(p).exists()));
    let json = serde_json::to_value(&real).unwrap();
    assert_eq!(json["deleted"].as_array().unwrap().len(), 2);
}

#[test]
fn a_directory_that_is_not_a_table_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("part-x.parquet");
    file_at(&f, SystemTime::now() - 30 * DAY);
    let e = vacuum::vacuum(
        dir.path(),
        &VacuumOptions {
            retain: Duration::ZERO,
            dry_run: false,
            now: SystemTime::now(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("not a Delta table"), "{e:#}");
    assert!(f.exists());
    assert!(vacuum::vacuum(&dir.path().join("missing"), &VacuumOptions::default()).is_err());
}

#[test]
fn durations_parse() {
    assert_eq!(
        vacuum::parse_duration("7d").unwrap(),
        vacuum::DEFAULT_RETAIN
    );
    assert_eq!(vacuum::parse_duration("168h").unwrap(), 7 * DAY);
    assert_eq!(vacuum::parse_duration("1w").unwrap(), 7 * DAY);
    assert_eq!(
        vacuum::parse_duration("30m").unwrap(),
        Duration::from_secs(1800)
    );
    assert_eq!(
        vacuum::parse_duration("90s").unwrap(),
        Duration::from_secs(90)
    );
    assert_eq!(vacuum::parse_duration("0s").unwrap(), Duration::ZERO);
    assert!(vacuum::parse_duration("7").is_err());
    assert!(vacuum::parse_duration("7y").is_err());
}
